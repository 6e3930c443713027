"""Demand from the land there is (landuse.allocation.demand_trend): share, linear trend, Markov chain, one source per scenario."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from affine import Affine
from conftest import scenario_dict, tiny_landuse, write_array
from typer.testing import CliRunner

from landuse.allocation.demand_trend import apply_trend_demand, matrix_power, resolve_trend_demand
from landuse.calibration.suitability_model import train_suitability
from landuse.cli.app import app
from landuse.core.classes import default_scheme
from landuse.core.config import load_scenario, scenario_from_dict
from landuse.core.errors import ConfigError
from landuse.core.landscape import new_landscape
from landuse.pipeline.run import run_scenario

S = default_scheme()
R, IND, COM = S.code_of("residential"), S.code_of("industrial"), S.code_of("commercial")
F = S.codes_with_role("farmland")[0]
T1HA = Affine(100, 0, 0, 0, -100, 1000)  # 1-ha cells


def _scenario(demand: dict, periods=(2020, 2030), history=(2000, 2010)) -> object:
    return scenario_from_dict({"name": "t", "layers": {"landuse": "lu.tif", "history": {y: f"{y}.tif" for y in history}},
                               "periods": list(periods), "demand": demand})


def _paint(counts: dict[int, int], shape=(4, 10)) -> np.ndarray:
    """Farmland with ``counts[code]`` cells of each urban code, filled row by row from the top left."""
    lu = np.full(shape, F, dtype=np.uint8)
    flat = lu.reshape(-1)
    i = 0
    for code, n in counts.items():
        flat[i:i + n] = code
        i += n
    return lu


def _three_maps() -> dict[str, np.ndarray]:
    """Residential 2, 4, 7 ha in 2000, 2010, 2020; industrial 3, 2, 1 ha; commercial 1 ha throughout."""
    return {"landuse_2000": _paint({R: 2, IND: 3, COM: 1}), "landuse_2010": _paint({R: 4, IND: 2, COM: 1}),
            "landuse": _paint({R: 7, IND: 1, COM: 1})}


def test_linear_trend_extends_the_least_squares_slope_by_hand() -> None:
    ds = new_landscape(_three_maps(), crs="EPSG:32651", transform=T1HA)
    sc = _scenario({"extrapolate": {"method": "linear"}}, periods=(2020, 2030, 2045))
    d = resolve_trend_demand(sc, ds)
    # residential 2, 4, 7 ha at -10, 0, +10 years from the mean: slope (10 * (7 - 2)) / 200 = 0.25 ha a year
    assert d.cluster["residential"] == pytest.approx({2030: 2.5, 2045: 3.75})
    assert d.cluster["commercial"] == pytest.approx({2030: 0.0, 2045: 0.0})
    # industrial shrinks by 0.1 ha a year: planned as 0 and noted
    assert d.cluster["industrial"] == {2030: 0.0, 2045: 0.0}
    raw = d.table.set_index(["period", "type"]).trend_ha
    assert raw[(2030, "industrial")] == pytest.approx(-1.0) and raw[(2045, "industrial")] == pytest.approx(-1.5)
    assert any("negative gains planned as 0" in n and "industrial 2030: -1.0 ha" in n for n in d.notes)
    assert d.by_city is None  # no cities layer: cluster-wide
    assert d.statement().startswith("Demand: extrapolated from history 2000, 2010, 2020 (linear trend); "
                                    "residential 2030: 2 ha, 2045: 4 ha; industrial 2030: 0 ha")
    apply_trend_demand(sc, ds)
    assert sc.config.demand.cluster("residential", 2045) == pytest.approx(3.75)


def test_linear_trend_per_city_and_chosen_years() -> None:
    maps = _three_maps()
    cities = np.ones((4, 10), dtype=np.int32)
    cities[:, 5:] = 2
    ds = new_landscape({**maps, "cities": cities}, crs="EPSG:32651", transform=T1HA)
    sc = _scenario({"extrapolate": {"method": "linear"}})
    d = resolve_trend_demand(sc, ds)
    own = {c: [int(((m == R) & (cities == c)).sum()) for m in maps.values()] for c in (1, 2)}
    assert own == {1: [2, 4, 5], 2: [0, 0, 2]}
    # city 1: slope 10 * (5 - 2) / 200 = 0.15 ha a year; city 2: 10 * 2 / 200 = 0.1
    assert d.by_city[1]["residential"] == pytest.approx({2030: 1.5})
    assert d.by_city[2]["residential"] == pytest.approx({2030: 1.0})
    assert d.cluster["residential"] == pytest.approx({2030: 2.5})
    # only the 2010 history map and the start map: slope (7 - 4) / 10
    sc = _scenario({"extrapolate": {"method": "linear", "years": [2010], "per_city": False}})
    d = resolve_trend_demand(sc, ds)
    assert d.by_city is None and d.cluster["residential"] == pytest.approx({2030: 3.0})
    assert "history 2010, 2020" in d.text


def _markov_maps() -> dict[str, np.ndarray]:
    """2010: 100 ha farmland, 20 ha residential; 2020: 10 % of the farmland (10 ha) became residential."""
    before = np.full((10, 12), F, dtype=np.uint8)
    before[:, 10:] = R
    after = before.copy()
    after[0, :10] = R
    return {"landuse_2010": before, "landuse": after}


def test_markov_gain_by_hand_and_matrix_powers() -> None:
    ds = new_landscape(_markov_maps(), crs="EPSG:32651", transform=T1HA)
    # two periods of one interval each: 10 % of 90 ha, then 10 % of the 81 ha left
    d = resolve_trend_demand(_scenario({"extrapolate": {"method": "markov"}}, periods=(2020, 2030, 2040),
                                       history=(2010,)), ds)
    assert d.cluster["residential"] == pytest.approx({2030: 9.0, 2040: 8.1})
    assert d.cluster["industrial"] == {2030: 0.0, 2040: 0.0}
    assert "Markov chain of the 2010-2020 transitions" in d.text
    # one period twice as long: the matrix squared, 90 * (1 - 0.9 ** 2) = 17.1 ha
    d = resolve_trend_demand(_scenario({"extrapolate": {"method": "markov"}}, periods=(2020, 2040),
                                       history=(2010,)), ds)
    assert d.cluster["residential"] == pytest.approx({2040: 17.1})
    # half an interval: the square root, 90 * (1 - sqrt(0.9)) ha
    d = resolve_trend_demand(_scenario({"extrapolate": {"method": "markov"}}, periods=(2020, 2025),
                                       history=(2010,)), ds)
    assert d.cluster["residential"] == pytest.approx({2025: 90 * (1 - np.sqrt(0.9))})
    assert not d.notes


def test_the_scheme_declares_the_types() -> None:
    """A scheme with one urban type of two classes: its land is both, and demand is for that type only."""
    classes = [{"code": 1, "name": "dense", "colour": "#ff0000", "role": "urban", "type": "built"},
               {"code": 2, "name": "sparse", "colour": "#ff8080", "role": "urban", "type": "built"},
               {"code": 3, "name": "other", "colour": "#c0c0c0", "role": "other"}]
    before = np.full((10, 12), 3, dtype=np.uint8)
    before[:, 10] = 1
    before[:, 11] = 2  # 20 ha built in 2010
    after = before.copy()
    after[0, :10] = 2  # 10 % of the other land became sparse built land
    ds = new_landscape({"landuse_2010": before, "landuse": after}, crs="EPSG:32651", transform=T1HA)
    sc = scenario_from_dict({"name": "one", "classes": classes, "periods": [2020, 2040],
                             "layers": {"landuse": "lu.tif", "history": {2010: "h.tif"}},
                             "demand": {"extrapolate": {"method": "markov"}}})
    d = resolve_trend_demand(sc, ds)
    assert list(d.cluster) == ["built"] and d.cluster["built"] == pytest.approx({2040: 17.1})
    sc.config.demand.extrapolate = {"method": "linear"}
    assert resolve_trend_demand(sc, ds).cluster["built"] == pytest.approx({2040: 20.0})  # 20 -> 30 ha in 10 years


def test_fractional_power_without_a_real_root_blends_whole_powers() -> None:
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])  # eigenvalue -1: no real square root that is a transition matrix
    q, note = matrix_power(swap, 1.5)
    assert q == pytest.approx(np.full((2, 2), 0.5)) and "blend of its powers 1 and 2" in note
    q, note = matrix_power(swap, 2)
    assert q == pytest.approx(np.eye(2)) and note is None


def test_share_compounds_the_start_land_by_hand() -> None:
    lu = _paint({R: 10, IND: 4, COM: 0})
    cities = np.ones((4, 10), dtype=np.int32)
    cities[:, 5:] = 2  # residential: row 0, 5 ha in each city; industrial: row 1, cells 0..3, city 1
    ds = new_landscape({"landuse": lu, "cities": cities}, crs="EPSG:32651", transform=T1HA)
    sc = _scenario({"share": {"rate_per_year": {"residential": 0.02, "industrial": 0.1}}},
                   periods=(2020, 2025, 2035), history=())
    d = resolve_trend_demand(sc, ds)
    g5, g15 = 1.02 ** 5, 1.02 ** 15
    assert d.cluster["residential"] == pytest.approx({2025: 10 * (g5 - 1), 2035: 10 * (g15 - g5)})
    assert d.cluster["industrial"] == pytest.approx({2025: 4 * (1.1 ** 5 - 1), 2035: 4 * (1.1 ** 15 - 1.1 ** 5)})
    assert d.cluster["commercial"] == {2025: 0.0, 2035: 0.0}
    assert any("no rate for commercial" in n for n in d.notes)
    # per city by each city's own land of the type: city 1 holds cells 0..4 of row 0 (5 ha residential)
    assert d.by_city[1]["residential"][2025] == pytest.approx(5 * (g5 - 1))
    assert d.by_city[2]["industrial"][2025] == 0.0 and d.by_city[1]["industrial"][2025] == pytest.approx(
        4 * (1.1 ** 5 - 1))
    apply_trend_demand(sc, ds)
    assert sc.config.demand.by_city[2]["residential"][2035] == pytest.approx(5 * (g15 - g5))
    bad = _scenario({"share": {"rate_per_year": {"housing": 0.02}}}, history=())
    with pytest.raises(ConfigError, match=r"\['housing'\] are not urban types.*residential, industrial, commercial"):
        resolve_trend_demand(bad, ds)


@pytest.mark.parametrize("demand, keys", [
    ({"residential": {2030: 5.0}, "share": {"rate_per_year": 0.01}}, "demand.residential and demand.share"),
    ({"by_city": {1: {"residential": {2030: 5.0}}}, "extrapolate": {"method": "linear"}},
     "demand.by_city and demand.extrapolate"),
    ({"share": {"rate_per_year": 0.01}, "extrapolate": {"method": "markov"}}, "demand.share and demand.extrapolate"),
    ({"people": {"cities": {1: {2020: {"population": 1, "jobs": 1}}}}, "share": {"rate_per_year": 0.01}},
     "demand.people and demand.share"),
])
def test_one_source_of_demand(demand, keys) -> None:
    with pytest.raises(ConfigError, match=f"one source of demand per scenario, got {keys}"):
        _scenario(demand)


def test_extrapolate_needs_history_years() -> None:
    with pytest.raises(ConfigError, match="demand.extrapolate needs layers.history"):
        _scenario({"extrapolate": {"method": "linear"}}, history=())
    with pytest.raises(ConfigError, match=r"demand.extrapolate.years: \[1990\] are not years of layers.history"):
        _scenario({"extrapolate": {"method": "linear", "years": [1990]}})


def test_a_run_plans_and_reports_the_extrapolated_demand(tmp_path, tiny_layers) -> None:
    lu = tiny_landuse()
    past = lu.copy()
    past[1, 1:3] = F  # 2010: 3 ha residential; 2020: 5 ha, all in city 1 -> +0.2 ha a year, 2 ha by 2030
    past[4, 2] = IND  # 2010: 3 ha industrial; 2020: 2 ha -> a negative trend, planned as 0 and noted
    write_array(tmp_path / "landuse_2010.tif", past, classes=S)
    d = scenario_dict(tiny_layers, tmp_path, name="trend", periods=[2020, 2030])
    d["layers"]["history"] = {2010: "landuse_2010.tif"}
    d["demand"] = {"extrapolate": {"method": "linear"}}
    d["growth"] = {"runs": 2}
    cfg = tmp_path / "trend.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    res = run_scenario(load_scenario(cfg), out=tmp_path / "out")
    got = res.allocations[0].targets.groupby("type").hectares.sum()
    assert got.get("residential") == pytest.approx(2.0) and got.drop("residential").sum() == pytest.approx(0.0)
    new = res.landuse[2030].values
    assert int((new == R).sum()) - int((lu == R).sum()) == 2
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    trend = rep["extra"]["demand_trend"]
    assert trend["method"] == "linear" and trend["per_city"] is True
    assert trend["cluster"]["residential"] == {"2030": pytest.approx(2.0)}
    md = (tmp_path / "out" / "report.md").read_text()
    assert ("Demand: extrapolated from history 2010, 2020 (linear trend, per city); residential 2030: 2 ha; "
            "industrial 2030: 0 ha; commercial 2030: 0 ha.") in md
    assert "Note: negative gains planned as 0 (industrial 2030 city 1: -1.0 ha)" in md


def test_demo_config_resolves_the_sample_history() -> None:
    """configs/trend.yaml: the sample's 2010 -> 2020 gain of each type, halved for five-year periods."""
    res = CliRunner().invoke(app, ["validate", str(Path(__file__).resolve().parents[2] / "configs" / "trend.yaml")])
    assert res.exit_code == 0, res.output
    assert "demand: 11,449 ha over 3 periods (2025: 3,816, 2030: 3,816, 2035: 3,816)" in res.output


def test_suitability_trained_on_history_after_the_demand_is_derived(tmp_path) -> None:
    """A run derives its demand before it trains suitability, whose linear baseline copies the scenario: the copy
    must not take the derived demand.by_city beside demand.extrapolate for two sources of demand."""
    before = np.full((20, 12), F, dtype=np.uint8)
    before[:, 10:] = R
    after = before.copy()
    after[:3, :10] = R  # 30 of the 200 ha of farmland: enough converted cells to fit a model on
    cities = np.ones((20, 12), dtype=np.int32)
    cities[:, 6:] = 2
    ds = new_landscape({"landuse_2010": before, "landuse": after, "cities": cities}, crs="EPSG:32651",
                       transform=T1HA)
    sc = scenario_from_dict({"name": "t", "layers": {"landuse": "lu.tif", "history": {2010: "h.tif"}},
                             "periods": [2020, 2030], "demand": {"extrapolate": {"method": "markov"}},
                             "growth": {"suitability": {"method": "trained"}}})
    apply_trend_demand(sc, ds)
    assert sc.config.demand.by_city[1]["residential"] == pytest.approx({2030: 15.3})  # 15 % of its 102 ha of farmland
    trained = train_suitability(ds, sc, method="logistic", seed=0, skip_scarce=True)
    assert set(trained.fits) == {"residential"}  # the type that changed is fitted, the others skipped as scarce
