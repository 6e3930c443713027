"""Class-scheme presets of land-cover products: codes, roles, urban types, and their use in a scenario."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import write_array
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.classes import NON_URBAN_ROLES
from landuse.core.config import load_scenario, scenario_from_dict
from landuse.core.errors import ConfigError, UnknownClassError
from landuse.core.presets import (
    PRESET_ALIASES,
    PRESET_NAMES,
    corine_grid_code,
    main,
    preset_records,
    preset_scheme,
    preset_yaml,
)
from landuse.io.rasters import read_landscape

runner = CliRunner()

# urban types and nodata as documented in docs/presets.md
DOCUMENTED = {
    "default": (("residential", "industrial", "commercial"), 255, 9),
    "corine": (("residential", "industrial"), 48, 44),
    "worldcover": (("built",), 0, 11),
    "clcd": (("built",), 0, 9),
    "globeland30": (("built",), 255, 10),
}


def test_every_preset_is_listed_and_documented() -> None:
    """docs/presets.md has a row for every class of every preset, as the code declares it."""
    assert PRESET_NAMES == tuple(DOCUMENTED)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "presets.md").read_text()
    missing = []
    for name in PRESET_NAMES:
        assert f"## `{name}`" in doc
        for c in preset_scheme(name):
            role = f"urban: {c.role}" if c.urban else c.role
            row = f"| {c.code} | {c.name} | {role}{' (primary)' if c.primary else ''} | `{c.colour}` |"
            if row not in doc:
                missing.append(f"{name}: {row}")
    assert not missing, f"docs/presets.md is out of step with landuse/core/presets.py: {missing[:3]}"


@pytest.mark.parametrize("name", list(DOCUMENTED))
def test_preset_loads_with_valid_codes_and_documented_types(name: str) -> None:
    scheme = preset_scheme(name)
    types, nodata, count = DOCUMENTED[name]
    codes = [c.code for c in scheme]
    assert len(scheme) == count
    assert len(set(codes)) == len(codes), "codes must be unique"
    assert all(0 <= c <= 254 for c in codes)
    assert scheme.nodata == nodata and nodata not in codes
    assert len({c.name for c in scheme}) == len(scheme)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c.colour) for c in scheme)
    assert scheme.urban_types == types
    for c in scheme:
        assert c.urban == (c.role in types)
        assert c.urban or c.role in NON_URBAN_ROLES
    # every class has a GDAL colour and a category name, nodata transparent
    cmap = scheme.colormap()
    assert cmap[nodata] == (0, 0, 0, 0) and all(cmap[c][3] == 255 for c in codes)


def _by_clc(scheme) -> dict[int, object]:
    return {int(c.name.split()[0]): c for c in scheme}


def test_corine_has_the_44_level3_classes_with_their_roles() -> None:
    s = preset_scheme("corine")
    by_clc = _by_clc(s)
    assert len(by_clc) == 44
    assert [c.code for c in s] == list(range(1, 45))  # the grid codes of the 100 m rasters
    # grid code of each CLC code follows the legend order
    assert corine_grid_code(111) == 1 and corine_grid_code(335) == 34 and corine_grid_code(523) == 44
    assert s.by_code(corine_grid_code(242)).name == "242 Complex cultivation patterns"
    with pytest.raises(ValueError, match="not a level-3 CLC code"):
        corine_grid_code(120)

    def roles(*clc: int) -> set[str]:
        return {by_clc[k].role for k in clc}

    # continuous and discontinuous urban fabric are both residential; new residential land is discontinuous
    assert roles(111, 112) == {"residential"}
    assert s.codes_of_type("residential") == (corine_grid_code(111), corine_grid_code(112))
    assert s.code_of("residential") == corine_grid_code(112)
    assert s.codes_of_type("industrial") == (corine_grid_code(121),)
    # roads and rail, ports, airports, mines and dumps: infrastructure, not urban land
    assert set(s.codes_with_role("infrastructure")) == {corine_grid_code(k) for k in (122, 123, 124, 131, 132)}
    assert set(s.codes_with_role("urban_green")) == {corine_grid_code(141), corine_grid_code(142)}
    assert roles(133) == {"other"}
    assert set(s.codes_with_role("urban")) == {corine_grid_code(k) for k in (111, 112, 121)}
    assert roles(*(k for k in by_clc if 200 <= k < 300)) == {"farmland"}
    assert roles(*(k for k in by_clc if 300 <= k < 500)) == {"open_space"}
    assert roles(*(k for k in by_clc if k >= 500)) == {"water"}
    # official CLC colours, e.g. continuous urban fabric 230-000-077, sea and ocean 230-242-255
    assert by_clc[111].rgb == (230, 0, 77) and by_clc[523].rgb == (230, 242, 255)


def test_single_type_products_name_their_built_up_class() -> None:
    assert preset_scheme("worldcover").codes_of_type("built") == (50,)
    assert preset_scheme("clcd").codes_of_type("built") == (8,)
    assert preset_scheme("globeland30").codes_of_type("built") == (80,)
    assert preset_scheme("worldcover").by_code(80).role == "water"
    assert preset_scheme("clcd").by_code(1).role == "farmland"
    assert preset_scheme("globeland30").by_code(10).role == "farmland"


def test_names_are_case_insensitive_with_aliases() -> None:
    assert preset_scheme(" CLC ") == preset_scheme("corine")
    assert preset_scheme("ESA-WorldCover") == preset_scheme("worldcover")
    assert preset_scheme("GlobeLand30") == preset_scheme("glc30")
    assert set(PRESET_ALIASES.values()) <= set(PRESET_NAMES)
    with pytest.raises(ConfigError, match="unknown preset 'corinne'; presets are default, corine, worldcover"):
        preset_scheme("corinne")


@pytest.mark.parametrize("name", list(DOCUMENTED))
def test_printed_yaml_is_a_class_list_a_scenario_accepts(name: str, tmp_path: Path) -> None:
    text = preset_yaml(name)
    assert text.startswith("# landuse preset")
    printed = yaml.safe_load(text)
    classes = printed["classes"]
    assert classes == preset_records(name)
    d = {"name": "x", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030], **printed}
    sc = scenario_from_dict(d, base_dir=tmp_path)
    assert sc.classes.classes == preset_scheme(name).classes
    assert sc.classes.urban_types == preset_scheme(name).urban_types
    assert sc.classes.nodata == preset_scheme(name).nodata  # the printed landuse_nodata keeps the preset's nodata
    if preset_scheme(name).nodata != 255:  # without the key a list has nodata 255
        assert scenario_from_dict({**d, "landuse_nodata": None}, base_dir=tmp_path).classes.nodata == 255


def test_main_prints_a_preset_and_refuses_an_unknown_one(capsys) -> None:
    assert main(["clcd"]) == 0
    out = capsys.readouterr().out
    assert "  - {code: 8, name: Impervious, colour: '#e24290', role: urban, type: built}" in out
    assert main([]) == 0 and "globeland30" in capsys.readouterr().out
    assert main(["corinne"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'corinne'" in err and "corine, worldcover, clcd, globeland30" in err


def _corine_raster(tmp_path: Path) -> Path:
    """4 x 8 CORINE grid codes: urban fabric, industry, roads, parks, farmland, forest, water, two NODATA (48)."""
    g = corine_grid_code
    lu = np.array(
        [
            [g(111), g(112), g(112), g(121), g(211), g(211), g(311), g(311)],
            [g(112), g(112), g(122), g(122), g(211), g(231), g(311), g(511)],
            [g(141), g(142), g(133), g(131), g(211), g(211), g(321), g(512)],
            [g(211), g(211), g(211), g(211), g(411), 48, 48, g(523)],
        ],
        dtype=np.uint8,
    )
    return write_array(tmp_path / "clc.tif", lu, classes=preset_scheme("corine"))


def _corine_config(tmp_path: Path, classes: str = "corine") -> Path:
    _corine_raster(tmp_path)
    d = {
        "name": "clc",
        "layers": {"landuse": "clc.tif"},
        "classes": classes,
        "periods": [2018, 2024],
        "demand": {"residential": {2024: 3.0}, "industrial": {2024: 1.0}},
    }
    p = tmp_path / "clc.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def test_corine_raster_reads_with_the_preset(tmp_path: Path) -> None:
    cfg = _corine_config(tmp_path)
    sc = load_scenario(cfg)
    assert sc.classes == preset_scheme("corine")
    ds = read_landscape(sc.layer_paths(), classes=sc.classes)
    lu = ds["landuse"].values
    assert int((lu == 48).sum()) == 2
    assert int(ds["study_area"].values.sum()) == lu.size - 2  # NODATA cells are outside the study area
    assert int(sc.classes.is_role(lu, "infrastructure").sum()) == 3
    # the default scheme refuses the same raster, naming the codes it does not declare
    with pytest.raises(UnknownClassError, match="class codes the class scheme does not declare"):
        read_landscape(sc.layer_paths(), classes=preset_scheme("default"))


def test_corine_scenario_validates(tmp_path: Path) -> None:
    res = runner.invoke(app, ["validate", str(_corine_config(tmp_path))])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == 0, res.output
    assert "is valid" in res.output and "classes: 44 (111 Continuous urban fabric" in res.output
    # developable by default: 10 farmland + 5 forest, grassland and marsh + 1 construction-site cells of 1 ha;
    # not roads, the mine, parks, sport grounds, water or urban land
    assert "developable now: 16 ha" in res.output


def test_unknown_preset_in_a_scenario_exits_2_listing_the_presets(tmp_path: Path) -> None:
    res = runner.invoke(app, ["validate", str(_corine_config(tmp_path, classes="corinne"))])
    assert res.exit_code == 2, res.output
    assert "unknown preset 'corinne'" in res.output
    assert "presets are default, corine, worldcover, clcd, globeland30" in res.output
    assert "Traceback" not in res.output
