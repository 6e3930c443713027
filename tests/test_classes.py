"""Class scheme: roles, validation, colour tables."""

from __future__ import annotations

import numpy as np
import pytest

from landuse.classes import URBAN_TYPES, ClassScheme, LandClass, default_scheme
from landuse.errors import ConfigError


def test_default_scheme_roles() -> None:
    s = default_scheme()
    assert s.urban_codes == tuple(s.code_of(t) for t in URBAN_TYPES)
    assert len(set(s.urban_codes)) == 3
    assert s.codes_with_role("water")
    lu = np.array([[s.code_of("residential"), s.codes_with_role("water")[0]]], dtype=np.uint8)
    assert s.is_role(lu, "residential").tolist() == [[True, False]]
    assert s.colormap()[s.nodata] == (0, 0, 0, 0)
    names = s.category_names()
    assert names[s.code_of("commercial")] == "commercial" and names[s.nodata] == "nodata"


def test_scheme_rejects_duplicates_and_missing_urban_roles() -> None:
    a = LandClass(1, "res", "#ff0000", "residential")
    with pytest.raises(ConfigError, match="codes must be unique"):
        ClassScheme((a, LandClass(1, "x", "#000000", "other")))
    with pytest.raises(ConfigError, match="exactly one class must have role 'industrial'"):
        ClassScheme((a,))
    with pytest.raises(ConfigError, match="equals the land-use nodata"):
        ClassScheme((*default_scheme().classes, LandClass(200, "z", "#000000", "other")), nodata=200)


def test_custom_codes_are_honoured() -> None:
    s = ClassScheme(
        (
            LandClass(10, "housing", "#ff0000", "residential"),
            LandClass(20, "factories", "#00ff00", "industrial"),
            LandClass(30, "shops", "#0000ff", "commercial"),
            LandClass(40, "rice", "#ffff00", "farmland"),
        ),
        nodata=0,
    )
    assert s.urban_codes == (10, 20, 30)
    assert s.codes_with_role("farmland") == (40,)
