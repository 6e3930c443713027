"""Class scheme: roles, validation, colour tables."""

from __future__ import annotations

import numpy as np
import pytest

from landuse.core.classes import URBAN_TYPES, ClassScheme, LandClass, default_scheme
from landuse.core.errors import ConfigError


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
    with pytest.raises(ConfigError, match="no urban class"):
        ClassScheme((LandClass(4, "farm", "#ffff00", "farmland"),))
    with pytest.raises(ConfigError, match="role of 'x' must be one of"):
        ClassScheme((a, LandClass(2, "x", "#000000", "farmlnd")))
    with pytest.raises(ConfigError, match="urban type of 'y' must be"):
        ClassScheme((a, LandClass(2, "y", "#000000", "water", urban=True)))
    with pytest.raises(ConfigError, match="2 primary classes"):
        ClassScheme((LandClass(1, "a", "#000000", "residential", primary=True),
                     LandClass(2, "b", "#000000", "residential", primary=True)))
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


def test_any_urban_types_and_shared_types() -> None:
    """One urban class is enough; a scheme may add types; several classes may hold one type."""
    one = ClassScheme((LandClass(1, "built", "#ff0000", "residential"), LandClass(2, "rest", "#cccccc", "other")))
    assert one.urban_types == ("residential",)
    assert one.codes_with_role("industrial") == ()
    assert one.codes_with_role("urban") == (1,)
    s = ClassScheme((
        LandClass(7, "schools", "#0000ff", "institutional", urban=True),
        LandClass(11, "continuous fabric", "#e6004d", "residential"),
        LandClass(12, "discontinuous fabric", "#ff0000", "residential", primary=True),
        LandClass(21, "industry", "#cc4df2", "industrial"),
        LandClass(31, "roads", "#cc0000", "infrastructure"),
        LandClass(32, "parks", "#ffa6ff", "urban_green"),
        LandClass(40, "rice", "#ffff00", "farmland"),
    ))
    assert s.urban_types == ("residential", "industrial", "institutional")
    assert s.codes_of_type("residential") == (11, 12)
    assert s.code_of("residential") == 12 and s.code_of("institutional") == 7
    assert s.urban_codes == (12, 21, 7)
    assert s.codes_with_role("urban") == (7, 11, 12, 21)
    lut = s.type_lut()
    assert (lut[11], lut[12], lut[21], lut[7], lut[31], lut[40]) == (0, 0, 1, 2, -1, -1)
    lu = np.array([[11, 12, 31, 7]], dtype=np.uint8)
    assert s.is_role(lu, "residential").tolist() == [[True, True, False, False]]
    assert s.is_role(lu, "urban").tolist() == [[True, True, False, True]]
    rec = {r["name"]: r for r in s.to_records()}
    assert rec["schools"]["role"] == "urban" and rec["schools"]["type"] == "institutional"
    assert rec["discontinuous fabric"]["primary"] is True
