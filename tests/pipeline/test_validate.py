"""`landuse validate`: alignment, class codes and demand checks through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from affine import Affine
from conftest import CRS, scenario_dict, tiny_landuse, write_array
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.classes import default_scheme

runner = CliRunner()


def _write_cfg(tmp_path: Path, d: dict) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def test_help_lists_commands() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("validate", "sample"):
        assert cmd in res.output


def test_misaligned_layer_is_reported_with_both_files(tmp_path: Path, tiny_layers) -> None:
    bad = write_array(tmp_path / "elevation.tif", np.ones((6, 8), np.float32),
                      transform=Affine(90.0, 0, 300_000.0, 0, -90.0, 3_500_000.0), crs=CRS)
    layers = dict(tiny_layers, elevation=bad)
    res = runner.invoke(app, ["validate", str(_write_cfg(tmp_path, scenario_dict(layers, tmp_path)))])
    assert res.exit_code == 2
    assert "layers.elevation" in res.output and "cell size 90 x 90" in res.output
    assert str(tiny_layers["landuse"]) in res.output and str(bad) in res.output


def test_unknown_codes_in_history_layer(tmp_path: Path, tiny_layers) -> None:
    lu = tiny_landuse()
    lu[2, 2] = 200
    write_array(tmp_path / "lu2010.tif", lu, classes=default_scheme())
    d = scenario_dict(tiny_layers, tmp_path)
    d["layers"]["history"] = {2010: "lu2010.tif"}
    res = runner.invoke(app, ["validate", str(_write_cfg(tmp_path, d))])
    assert res.exit_code == 2
    assert "layers.history.2010" in res.output and "200 (1 cells)" in res.output


def test_demand_larger_than_developable_says_by_how_much(tmp_path: Path, tiny_layers) -> None:
    d = scenario_dict(tiny_layers, tmp_path)
    d["demand"] = {"residential": {2025: 1000.0}}
    res = runner.invoke(app, ["validate", str(_write_cfg(tmp_path, d))])
    assert res.exit_code == 2
    # tiny region: 1 ha cells; developable = non-urban, non-water, not red line / permanent farmland, in study area
    lu = tiny_landuse()
    s = default_scheme()
    dev = s.is_role(lu, "farmland", "open_space", "other")
    dev[0, 5:] = False  # red line
    dev[5, 0:3] = False  # permanent farmland
    dev_ha = int(dev.sum())
    assert f"exceeds the developable land ({dev_ha:,} ha) by {1000 - dev_ha:,} ha" in res.output


def test_per_city_demand_checked_against_city_land(tmp_path: Path, tiny_layers) -> None:
    d = scenario_dict(tiny_layers, tmp_path)
    d["demand"] = {"by_city": {2: {"residential": {2025: 30.0}}, 9: {"residential": {2025: 1.0}}}}
    res = runner.invoke(app, ["validate", str(_write_cfg(tmp_path, d))])
    assert res.exit_code == 2
    assert "demand.by_city.2: total demand 30 ha exceeds the city's developable land" in res.output
    assert "demand.by_city.9: no cell of the cities raster (layers.cities, " in res.output
    assert "has id 9; city ids are 1, 2" in res.output


def test_validate_reads_nothing_but_reports_summary(tiny_config: Path) -> None:
    before = {p: p.read_bytes() for p in tiny_config.parent.glob("*.tif")}
    res = runner.invoke(app, ["validate", str(tiny_config)])
    assert res.exit_code == 0
    assert "demand: 8 ha over 1 periods" in res.output
    assert {p: p.read_bytes() for p in tiny_config.parent.glob("*.tif")} == before


def test_help_gives_whole_one_line_descriptions() -> None:
    res = runner.invoke(app, ["--help"])
    lines = [ln for ln in res.output.splitlines() if ln.startswith("  ") and not ln.strip().startswith("--")]
    assert len(lines) >= 9
    for ln in lines:
        assert not ln.rstrip().endswith("..."), ln


def test_quota_already_unmet_at_the_start_is_refused_by_validate_and_run(tmp_path, tiny_layers) -> None:
    d = scenario_dict(tiny_layers, tmp_path, policy={"open_space_quota": {"share": 0.9, "unit": "cluster"}})
    cfg = _write_cfg(tmp_path, d)
    for args in (["validate", str(cfg)], ["run", str(cfg), "--out", str(tmp_path / "out")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert "no plan can meet it" in res.output and "lower policy.open_space_quota.share to" in res.output
    assert not (tmp_path / "out").exists()
    d["policy"]["open_space_quota"]["already_below"] = "no_further_loss"
    assert runner.invoke(app, ["validate", str(_write_cfg(tmp_path, d))]).exit_code == 0


def test_input_problems_are_the_same_whatever_the_strip_height(monkeypatch) -> None:
    """The checks of the layers together count strip by strip (``landuse.core.strips.STRIP_CELLS`` cells a strip): the same
    problems, with the same figures, as in one strip."""
    import landuse.io.rasters
    from landuse.core.config import scenario_from_dict
    from landuse.core.landscape import new_landscape
    from landuse.pipeline.validate import input_problems

    S = default_scheme()
    rng = np.random.default_rng(4)
    shape = (14, 9)
    farm, forest = S.codes_with_role("farmland")[0], S.codes_with_role("open_space")[0]
    lu = rng.choice(np.array([farm, forest, S.code_of("residential")], np.uint8), size=shape, p=[0.7, 0.1, 0.2])
    lu[:2] = S.nodata
    cities = np.repeat(np.arange(1, 4), 3)[None, :].repeat(shape[0], 0)
    cities[9:, 6:] = 7
    stations = np.zeros(shape, bool)
    stations[0, 0] = True  # outside the study area only
    ds = new_landscape({"landuse": lu, "cities": cities, "stations": stations, "red_line": lu == farm},
                       crs=CRS, transform=Affine(30, 0, 0, 0, -30, 30 * shape[0]))
    doc = {"name": "v", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
           "demand": {"residential": {2030: 5.0}},
           "policy": {"open_space_quota": {"share": 0.15, "unit": "city"}, "tod": {"radius_m": 500, "share": 0.5},
                      "city_growth_limits": {5: 1.0}},
           "growth": {"conversion": {t: ["farmland"] for t in S.urban_types}}}
    sc = scenario_from_dict(doc)
    whole = input_problems(ds, sc)
    assert len(whole) == 4, whole  # city 5 absent, no station in the study area, quota unmet, nothing developable
    assert any("4 unit(s) already hold less" in p and "city 7 13.33 %" in p for p in whole)
    assert any("no land may be developed" in p and "covers 79 of them" in p for p in whole)
    for strip in (1, 5, 9, 10, 40):
        monkeypatch.setattr(landuse.core.strips, "STRIP_CELLS", strip)
        assert input_problems(ds, sc) == whole
    monkeypatch.setattr(landuse.core.strips, "STRIP_CELLS", 10)
    ds["red_line"].values[-1, -1] = False  # one developable farmland cell, in the last strip
    ds["landuse"].values[-1, -1] = farm
    assert not any("no land may be developed" in p for p in input_problems(ds, sc))
