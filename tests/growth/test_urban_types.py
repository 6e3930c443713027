"""Any class scheme through the whole pipeline: one urban type, four, several classes of one type,
and the infrastructure and urban-green roles that are not converted by default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from conftest import write_array
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.classes import ClassScheme, LandClass
from landuse.core.config import Scenario, ScenarioConfig, load_scenario, scenario_from_dict
from landuse.core.errors import ConfigError
from landuse.io.rasters import read_landscape
from landuse.pipeline.run import run_scenario

runner = CliRunner()

FARM, FOREST, WATER, ROAD, PARK = 4, 5, 8, 20, 21
ROWS, COLS = 20, 24


def _classes(urban: list[dict]) -> list[dict]:
    """A class list: the given urban classes plus farmland, forest, water, a road and a park class."""
    return [*urban,
            {"code": FARM, "name": "farmland", "colour": "#f6e8a6", "role": "farmland"},
            {"code": FOREST, "name": "forest", "colour": "#1b7837", "role": "open_space"},
            {"code": WATER, "name": "water", "colour": "#2b83ba", "role": "water"},
            {"code": ROAD, "name": "road", "colour": "#555555", "role": "infrastructure"},
            {"code": PARK, "name": "park", "colour": "#33a02c", "role": "urban_green"}]


def _scheme(classes: list[dict]) -> ClassScheme:
    return ClassScheme(tuple(LandClass(c["code"], c["name"], c["colour"], c.get("type", c["role"]),
                                       urban=c["role"] == "urban" or None, primary=c.get("primary", False))
                             for c in classes))


def _landuse(core: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Farmland with a forest strip, a water corner, a road across and parks around an urban core."""
    lu = np.full((ROWS, COLS), FARM, dtype=np.uint8)
    lu[:, 19:] = FOREST
    lu[16:, 21:] = WATER
    lu[10, :] = ROAD  # a road through the region, beside the core
    lu[4:7, 4:7] = PARK
    for r0, r1, c0, c1, code in core:  # rows r0:r1, columns c0:c1
        lu[r0:r1, c0:c1] = code
    return lu


def _write(tmp_path: Path, lu: np.ndarray, classes: list[dict], demand: dict, **extra) -> Path:
    cities = np.ones((ROWS, COLS), dtype=np.int32)
    cities[:, 12:] = 2
    write_array(tmp_path / "landuse.tif", lu, classes=_scheme(classes))
    write_array(tmp_path / "cities.tif", cities)
    d = {"name": "types", "layers": {"landuse": "landuse.tif", "cities": "cities.tif"}, "classes": classes,
         "periods": [2020, 2025], "demand": demand,
         "growth": {"runs": 2, "seed": 3, "suitability": {"weights": {"dist_urban": 1.0}}},
         "outputs": {"folder": "out", "figures": False, "html": False}}
    for key, value in extra.items():
        d[key] = {**d.get(key, {}), **value}
    p = tmp_path / "scenario.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _changed(before: np.ndarray, after: np.ndarray) -> dict[tuple[int, int], int]:
    """``(from code, to code) -> cells`` of every change."""
    m = before != after
    pairs, n = np.unique(np.stack([before[m], after[m]]), axis=1, return_counts=True)
    return {(int(a), int(b)): int(k) for (a, b), k in zip(pairs.T, n, strict=True)}


# --------------------------------------------------------------------------- one urban class


def test_single_urban_class_runs_end_to_end_from_the_cli(tmp_path: Path) -> None:
    built = {"code": 1, "name": "built", "colour": "#e31a1c", "role": "residential"}
    lu = _landuse([(7, 10, 7, 13, 1), (11, 13, 8, 11, 1)])
    cfg = _write(tmp_path, lu, _classes([built]), {"residential": {2025: 12.0}})
    res = runner.invoke(app, ["run", str(cfg)])
    assert res.exit_code in (0, 1), res.output  # 1 only when a check fails; the run itself completes
    out = tmp_path / "out"
    after = _read(out / "landuse_2025.tif")
    change = _changed(lu, after)
    assert sum(n for (_, b), n in change.items() if b == 1) == 12  # the map meets the demand (1 ha cells)
    assert {a for a, _ in change} <= {FARM, FOREST}  # never a road, park or water cell
    assert sorted(p.name for p in out.glob("probability_*_2025.tif")) == ["probability_residential_2025.tif"]
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["landscape_metrics"]["2025"]) == {"urban", "residential"}
    demand_rows = [c for c in rep["checks"] if c["check"] == "demand_met"]
    assert demand_rows and {c["unit"] for c in demand_rows} == {"residential"}
    md = (out / "report.md").read_text()
    assert "industrial" not in md and "commercial" not in md  # no phantom types
    alloc = pd.read_csv(out / "allocation.csv")
    assert set(alloc["type"]) == {"residential"} and alloc["hectares"].sum() == pytest.approx(12.0)


# --------------------------------------------------------------------------- four types


FOUR = [{"code": 1, "name": "residential", "colour": "#e31a1c", "role": "residential"},
        {"code": 2, "name": "industrial", "colour": "#7b3294", "role": "industrial"},
        {"code": 3, "name": "commercial", "colour": "#ff7f00", "role": "commercial"},
        {"code": 10, "name": "campus", "colour": "#fb9a99", "role": "urban", "type": "institutional"}]


def test_four_types_place_institutional_demand_on_allowed_sources_only(tmp_path: Path) -> None:
    lu = _landuse([(7, 10, 7, 10, 1), (7, 9, 10, 12, 2), (11, 12, 8, 10, 3), (11, 13, 13, 15, 10)])
    # institutional land only on farmland: a forest cell may become any other type but not a campus
    cfg = _write(tmp_path, lu, _classes(FOUR),
                 {"residential": {2025: 6.0}, "industrial": {2025: 3.0}, "commercial": {2025: 2.0},
                  "institutional": {2025: 5.0}},
                 growth={"conversion": {"residential": ["farmland", "open_space"], "industrial": ["farmland"],
                                        "commercial": ["farmland"], "institutional": ["farmland"]}})
    res = run_scenario(cfg, progress=None)
    after = _read(tmp_path / "out" / "landuse_2025.tif")
    change = _changed(lu, after)
    gained = {b: sum(n for (_, bb), n in change.items() if bb == b) for b in (1, 2, 3, 10)}
    assert gained == {1: 6, 2: 3, 3: 2, 10: 5}
    assert {a for (a, b) in change if b == 10} == {FARM}
    assert {a for a, _ in change} <= {FARM, FOREST}
    assert res.scenario.urban_types == ("residential", "industrial", "commercial", "institutional")
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert list(rep["landscape_metrics"]["2025"]) == ["urban", "residential", "industrial", "commercial",
                                                      "institutional"]
    assert rep["landscape_metrics"]["2025"]["institutional"]["total_area"] == pytest.approx(4 + 5)
    assert {c["unit"] for c in rep["checks"] if c["check"] == "demand_met"} == {
        "residential", "industrial", "commercial", "institutional"}
    assert (tmp_path / "out" / "probability_institutional_2025.tif").exists()
    assert "institutional" in (tmp_path / "out" / "report.md").read_text()


# --------------------------------------------------------------------------- several classes of one type


def test_shared_type_grows_as_the_primary_class_and_counts_both(tmp_path: Path) -> None:
    from landuse.allocation.zone_stats import zone_table

    urban = [{"code": 11, "name": "continuous_fabric", "colour": "#e31a1c", "role": "urban", "type": "residential"},
             {"code": 12, "name": "discontinuous_fabric", "colour": "#fb9a99", "role": "urban",
              "type": "residential", "primary": True},
             {"code": 2, "name": "industry", "colour": "#7b3294", "role": "industrial"}]
    lu = _landuse([(7, 10, 7, 10, 11), (7, 10, 10, 12, 12), (11, 12, 8, 10, 2)])
    # each residential class listed as a source of residential land: neither may be taken (its own type)
    cfg = _write(tmp_path, lu, _classes(urban), {"residential": {2025: 8.0}, "industrial": {2025: 2.0}},
                 growth={"conversion": {"residential": ["farmland", "continuous_fabric", "discontinuous_fabric"],
                                        "industrial": ["farmland"]}})
    sc = load_scenario(cfg)
    assert sc.conversion_codes()["residential"] == (FARM,)
    zt = zone_table(read_landscape(sc.layer_paths(), classes=sc.classes), sc)
    assert zt["residential_ha"].sum() == pytest.approx(9 + 6)  # both classes are residential land
    assert zt["urban_ha"].sum() == pytest.approx(9 + 6 + 2)
    run_scenario(cfg, progress=None)
    after = _read(tmp_path / "out" / "landuse_2025.tif")
    change = _changed(lu, after)
    assert {b for _, b in change} == {12, 2}  # new residential land takes the primary class's code
    assert sum(n for (_, b), n in change.items() if b == 12) == 8
    assert not {a for a, _ in change} & {11, 12}  # existing residential land is never a source
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["landscape_metrics"]["2025"]["residential"]["total_area"] == pytest.approx(9 + 6 + 8)
    assert set(rep["landscape_metrics"]["2025"]) == {"urban", "residential", "industrial"}


# --------------------------------------------------------------------------- infrastructure and urban green


def test_infrastructure_and_urban_green_convert_only_when_allowed(tmp_path: Path) -> None:
    built = {"code": 1, "name": "built", "colour": "#e31a1c", "role": "residential"}
    lu = _landuse([(7, 10, 7, 10, 1)])
    lu[lu == FARM] = FOREST  # only forest, roads and parks beside the core
    lu[:, 19:] = FOREST
    lu[12:, :] = FARM  # farmland far from the core
    # with the default conversion list the demand must go to forest/farmland, however close roads and parks are
    cfg = _write(tmp_path, lu, _classes([built]), {"residential": {2025: 10.0}})
    sc = load_scenario(cfg)
    assert ROAD not in sc.conversion_codes()["residential"] and PARK not in sc.conversion_codes()["residential"]
    run_scenario(cfg, progress=None)
    after = _read(tmp_path / "out" / "landuse_2025.tif")
    assert (after[lu == ROAD] == ROAD).all() and (after[lu == PARK] == PARK).all()
    assert int(((after == 1) & (lu != 1)).sum()) == 10

    # allowed explicitly, by role and by class name, and cheaper than the rest: they do convert
    d = yaml.safe_load(cfg.read_text())
    d["growth"]["conversion"] = {"residential": ["infrastructure", "park"]}
    d["outputs"]["folder"] = "out2"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    assert set(load_scenario(cfg).conversion_codes()["residential"]) == {ROAD, PARK}
    res = run_scenario(cfg, progress=None)
    after = _read(tmp_path / "out2" / "landuse_2025.tif")
    change = _changed(lu, after)
    assert {a for a, _ in change} <= {ROAD, PARK} and sum(change.values()) == 10
    assert {a for a, _ in change} == {ROAD, PARK} or len({a for a, _ in change}) == 1
    t = res.allocations[0].targets
    assert t["from_infrastructure_ha"].sum() + t["from_urban_green_ha"].sum() == pytest.approx(10.0)


def test_default_scheme_plan_reports_only_the_three_source_roles(tiny_config: Path) -> None:
    from landuse.allocation.planner import allocate
    from landuse.allocation.zone_stats import zone_table

    sc = load_scenario(tiny_config)
    a = allocate(zone_table(read_landscape(sc.layer_paths(), classes=sc.classes), sc), sc, 2025)
    assert [c for c in a.targets.columns if c.startswith("from_") and c.endswith("_ha")] == [
        "from_farmland_ha", "from_open_space_ha", "from_other_ha"]


# --------------------------------------------------------------------------- config errors


def _cfg(classes: list[dict], **keys) -> dict:
    return {"name": "x", "layers": {"landuse": "landuse.tif"}, "periods": [2020, 2030], "classes": classes, **keys}


ONE = _classes([{"code": 1, "name": "built", "colour": "#e31a1c", "role": "residential"}])


@pytest.mark.parametrize(("keys", "where"), [
    ({"demand": {"industrial": {2030: 5}}}, "demand.industrial"),
    ({"demand": {"institutional": {2030: 5}}}, "demand.institutional"),
    ({"demand": {"by_city": {1: {"commercial": {2030: 5}}}}}, "demand.by_city.1.commercial"),
    ({"growth": {"neighbourhood_weights": {"residential": {"industrial": 0.5}}}},
     "growth.neighbourhood_weights.residential.industrial"),
    ({"growth": {"neighbourhood_weights": {"institutional": {"residential": 0.5}}}},
     "growth.neighbourhood_weights.institutional"),
    ({"growth": {"conversion": {"commercial": ["farmland"]}}}, "growth.conversion.commercial"),
    ({"growth": {"suitability": {"by_type": {"industrial": {"dist_urban": 1}}}}},
     "growth.suitability.by_type.industrial"),
    ({"layers": {"landuse": "landuse.tif", "suitability": {"industrial": "s.tif"}}}, "layers.suitability.industrial"),
    ({"policy": {"jobs_housing": {"min": 0.1}}}, "policy.jobs_housing"),
])
def test_a_type_the_scheme_does_not_declare_is_a_config_error(keys: dict, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        scenario_from_dict(_cfg(ONE, **keys))
    assert where in str(err.value) and "residential" in str(err.value)  # names the key, lists the types


def test_defaults_follow_the_scheme() -> None:
    sc = scenario_from_dict(_cfg(_classes(FOUR), demand={"institutional": {2030: 4.0}}))
    assert sc.config.demand.cluster("institutional", 2030) == 4.0
    assert sc.urban_types == ("residential", "industrial", "commercial", "institutional")
    assert all(set(codes) == {FARM, FOREST} for codes in sc.conversion_codes().values())  # no road, park, water
    w = np.array(sc.neighbourhood_matrix())
    assert w.shape == (4, 4) and w[3, 3] == 1.0 and w[3, 0] == w[0, 3] == 0.1
    assert w[0, 2] == 0.5  # the default types keep their default weights
    one = scenario_from_dict(_cfg(ONE, demand={"residential": {2030: 4.0}}))
    assert one.neighbourhood_matrix() == [[1.0]]
    # a config dumped and validated again (as derived scenarios are built) keeps the scheme's defaults
    again = Scenario(ScenarioConfig.model_validate(one.config.model_dump()))
    assert again.neighbourhood_matrix() == [[1.0]] and again.conversion_codes() == one.conversion_codes()


def test_people_need_a_residential_type() -> None:
    ind = _classes([{"code": 2, "name": "industry", "colour": "#7b3294", "role": "industrial"}])
    with pytest.raises(ConfigError, match="no urban type 'residential'"):
        scenario_from_dict(_cfg(ind, demand={"people": {"cities": {1: {2020: {"population": 10, "jobs": 5}}}}}))


# --------------------------------------------------------------------------- the growth engine


def _engine_case():
    from growth_fixtures import random_landscape

    from landuse.growth import GrowthParams

    ds = random_landscape(5, 40, 44, zone_block=11, urban_share=0.0, layers=False)
    lu = ds["landuse"].values
    lu[lu != 255] = FARM
    for r, c in ((8, 8), (25, 30), (30, 12)):  # seeds of the secondary residential class only
        lu[r:r + 2, c:c + 2] = 11
    lu[15:17, 20:22] = 10  # one campus
    ds["landuse"].values[:] = lu
    lut = np.full(256, -1, dtype=np.int8)
    lut[[1, 11]] = 0
    lut[10] = 1
    allowed = np.zeros((2, 256), bool)
    allowed[:, FARM] = True
    rng = np.random.default_rng(2)
    p = GrowthParams.from_arrays(rng.random((2, 40, 44)).astype(np.float32), allowed=allowed, type_codes=(1, 10),
                                 types=("residential", "institutional"), type_lut=lut, spontaneous_share=0.0,
                                 neighbourhood_weights=np.array([[1.0, 0.1], [0.1, 1.0]]), periods=(2030,))
    zones = ds["zones"].values
    seeded = sorted(set(np.unique(zones[lu == 11]).tolist()) - {0})
    t = pd.DataFrame([(2030, z, "residential", 3) for z in seeded]
                     + [(2030, int(zones[15, 20]), "institutional", 2)], columns=["period", "zone", "type", "cells"])
    return ds, p, t


def test_engine_counts_every_class_of_a_type_as_its_neighbour_and_tiles_agree() -> None:
    from scipy import ndimage

    from landuse.growth import simulate
    from landuse.scale.tiled import simulate_tiled

    ds, p, t = _engine_case()
    lu = ds["landuse"].values
    n_seeds = ndimage.label(np.isin(lu, (10, 11)), structure=np.ones((3, 3)))[1]

    def patches(res) -> int:
        return ndimage.label(np.isin(res.landuse[2030].values, (1, 10, 11)), structure=np.ones((3, 3)))[1]

    a = simulate(ds, t, params=p, runs=2, seed=4)
    after = a.landuse[2030].values
    new = after != lu
    assert set(np.unique(after[new]).tolist()) == {1, 10}  # new land takes the primary codes
    assert int(new.sum()) == int(t.cells.sum())
    assert patches(a) <= n_seeds  # growth extends the class-11 seeds: they are residential neighbours
    # without the look-up, class 11 is no urban neighbour: residential land must start new patches
    plain = p.replace(type_lut=None)
    assert patches(simulate(ds, t, params=plain, runs=2, seed=4)) > n_seeds
    b = simulate_tiled(ds, t, params=p, runs=2, seed=4, chunks=16)
    np.testing.assert_array_equal(a.landuse[2030].values, b.landuse[2030].values)
    np.testing.assert_array_equal(a.counts.values, b.counts.values)


def test_people_demand_on_a_scheme_with_residential_land_only(tmp_path: Path) -> None:
    from landuse.allocation.demand import derive_demand

    built = {"code": 1, "name": "built", "colour": "#e31a1c", "role": "residential"}
    lu = _landuse([(7, 10, 7, 13, 1)])
    people = {"cities": {1: {2020: {"population": 900}, 2025: {"population": 1200}},
                         2: {2020: {"population": 300}, 2025: {"population": 300}}}}
    cfg = _write(tmp_path, lu, _classes([built]), {"people": people})
    sc = load_scenario(cfg)
    ds = read_landscape(sc.layer_paths(), classes=sc.classes)
    d = derive_demand(sc, ds)  # no jobs column needed: the scheme has no land for jobs
    assert set(d.need["type"]) == {"residential"}
    assert d.by_city[1]["residential"][2025] == pytest.approx(300 / 60)  # 900 people on 15 ha: 60 per ha
    with_jobs = {"cities": {c: {y: {**v, "jobs": 100} for y, v in per.items()} for c, per in people["cities"].items()}}
    cfg = _write(tmp_path, lu, _classes([built]), {"people": with_jobs})
    sc = load_scenario(cfg)
    with pytest.raises(ConfigError, match="neither an 'industrial' nor a 'commercial'"):
        derive_demand(sc, ds)
