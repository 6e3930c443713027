"""Shrinking cities (landuse.allocation.shrink and the pipeline): known answers, mass balance, allowed classes, invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from conftest import scenario_dict, write_array

from landuse.allocation.shrink import release_cells, reoccupy
from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.config import scenario_from_dict
from landuse.pipeline.run import run_scenario

S = default_scheme()
R, F = S.code_of("residential"), S.codes_with_role("farmland")[0]
FOREST = next(c.code for c in S if c.name == "forest")


def _block() -> tuple[np.ndarray, np.ndarray]:
    lu = np.full((7, 7), F, dtype=np.uint8)
    lu[1:6, 1:6] = R
    zones = np.ones((7, 7), dtype=np.int32)
    return lu, zones


def _scenario(**shrinkage):
    return scenario_from_dict({"name": "s", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
                               "shrinkage": shrinkage})


def _plan(cells: int) -> pd.DataFrame:
    return pd.DataFrame({"period": [2030], "zone": [1], "city": [1], "type": ["residential"], "cells": [cells],
                         "cost_per_ha": [0.0]})


def test_contraction_takes_the_corners_first_perforation_does_not() -> None:
    lu, zones = _block()
    vac = np.zeros(lu.shape, dtype=bool)
    corners = {(1, 1), (1, 5), (5, 1), (5, 5)}
    sc = _scenario(pattern="contraction", outcome="vacant")
    lu2, vac2, done = release_cells(lu, vac, zones, _plan(4), sc, seed=3, period=2030, period_index=0)
    assert {tuple(x) for x in np.argwhere(vac2)} == corners  # the cells with most unoccupied neighbours
    assert (lu2 == lu).all() and done.vacant_cells.sum() == 4 and done.restored_cells.sum() == 0
    picked = set()
    for seed in range(3):
        sp = _scenario(pattern="perforation", outcome="vacant")
        _, vp, _ = release_cells(lu, vac, zones, _plan(4), sp, seed=seed, period=2030, period_index=0)
        assert vp.sum() == 4 and (lu[vp] == R).all()
        picked |= {tuple(x) for x in np.argwhere(vp)}
    assert not picked <= corners  # scattered: interior cells too


def test_contraction_peels_from_the_edge_inwards() -> None:
    lu, zones = _block()
    sc = _scenario(pattern="contraction", outcome="restore", restore_to="forest")
    lu2, vac2, done = release_cells(lu, np.zeros(lu.shape, bool), zones, _plan(16), sc, seed=1, period=2030,
                                    period_index=0)
    restored = lu2 == FOREST
    assert restored.sum() == 16 and not vac2.any() and done.restored_cells.sum() == 16
    # what is left is one compact, connected core of 9 cells (no cell of it on the block's edge ring has more
    # released neighbours than the core's own corners)
    left = np.argwhere(lu2 == R)
    assert len(left) == 9 and (left.max(axis=0) - left.min(axis=0)).max() <= 3


def test_mix_restores_the_share_and_neighbour_rule_takes_the_surrounding_class() -> None:
    lu, zones = _block()
    sc = _scenario(pattern="contraction", outcome="mix", restore_share=0.5, restore_to="neighbours")
    lu2, vac2, done = release_cells(lu, np.zeros(lu.shape, bool), zones, _plan(8), sc, seed=2, period=2030,
                                    period_index=0)
    assert done.vacant_cells.sum() == 4 and done.restored_cells.sum() == 4
    changed = lu2 != lu
    assert changed.sum() == 4 and (lu2[changed] == F).all()  # restored to the surrounding farmland
    assert vac2.sum() == 4 and (lu2[vac2] == R).all()


def test_reoccupy_fills_vacant_land_infill_first() -> None:
    lu, _ = _block()
    vac = np.zeros(lu.shape, bool)
    vac[1, 1] = vac[3, 3] = True  # a corner and the centre
    cities = np.ones(lu.shape, dtype=np.int64)
    vac2, done = reoccupy(lu, vac, cities, {(1, "residential"): 1}, _scenario(), seed=0, period_index=0)
    assert done == {(1, "residential"): 1} and vac2[1, 1] and not vac2[3, 3]  # the centre has 8 occupied neighbours


@pytest.fixture
def region(tmp_path):
    """80 x 80 cells of 1 ha: two cities with a residential town each, a red line across city 2's town edge."""
    lu = np.full((80, 80), F, dtype=np.uint8)
    lu[50:70, 5:30] = FOREST
    lu[20:35, 10:25] = R
    lu[20:40, 50:65] = R
    cities = np.ones((80, 80), dtype=np.int32)
    cities[:, 40:] = 2
    red = np.zeros((80, 80), dtype=np.uint8)
    red[38:45, 45:70] = 1
    return {"landuse": write_array(tmp_path / "landuse.tif", lu, classes=S),
            "cities": write_array(tmp_path / "cities.tif", cities),
            "red_line": write_array(tmp_path / "red_line.tif", red)}


def _people_run(tmp_path, layers, name="shrink", **extra):
    # city 1 grows by 2 then 1 ha of housing per 100 people; city 2 loses 60 ha, then 80 ha
    pop = "city,year,population,jobs\n1,2020,22500,0\n1,2030,22700,0\n1,2040,22800,0\n2,2020,30000,0\n" \
          "2,2030,24000,0\n2,2040,16000,0\n"
    (tmp_path / "pop.csv").write_text(pop)
    d = scenario_dict(layers, tmp_path, name=name)
    d["periods"] = [2020, 2030, 2040]
    d["demand"] = {"people": {"table": "pop.csv", "persons_per_ha": 100.0, "industrial_jobs_per_ha": 50.0,
                              "commercial_jobs_per_ha": 50.0}}
    d["policy"] = {"coordination": "city"}
    d["growth"] = {"runs": 3, "iterations": 3}
    d.update(extra)
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    return run_scenario(cfg, out=tmp_path / f"out_{name}", force=True)


def test_mass_balance_per_city_and_period(tmp_path, region) -> None:
    res = _people_run(tmp_path, region, shrinkage={"outcome": "mix", "restore_share": 0.5})
    ds = res.report.landscape
    cities = ds["cities"].values
    lu_prev = ds["landuse"].values
    vac_prev = np.zeros(lu_prev.shape, bool)
    table = pd.DataFrame(res.report.data["extra"]["shrinkage"])
    change = pd.DataFrame(res.report.data["extra"]["demand_from_people"])
    red = ds["red_line"].values.astype(bool)
    start = ds["landuse"].values
    for y in res.scenario.periods[1:]:
        lu = res.landuse[y].values
        with rasterio.open(res.out_dir / f"vacancy_{y}.tif") as src:
            vac = src.read(1).astype(bool)
        sf = res.shortfall[res.shortfall.period == y]
        for c in (1, 2):
            occ = lambda m, v, c=c: int((S.is_role(m, "residential") & ~v & (cities == c)).sum())  # noqa: E731
            derived = change[(change.period == y) & (change.city == c) & (change.type == "residential")].hectares
            want = round(float(derived.iloc[0]))  # 1 ha cells
            growth_short = int(sf[(sf.city == c) & (sf.type == "residential")].shortfall.sum())
            row = table[(table.period == y) & (table.city == c)].iloc[0]
            release_short = round(row.release_shortfall_ha)
            assert occ(lu, vac) - occ(lu_prev, vac_prev) == want - growth_short + release_short, (y, c)
        # never urbanised on the red line; restored cells take a non-urban, non-water class
        assert not (red & S.is_role(lu, *URBAN_TYPES) & ~S.is_role(start, *URBAN_TYPES)).any()
        gone = S.is_role(lu_prev, *URBAN_TYPES) & ~S.is_role(lu, *URBAN_TYPES)
        assert not S.is_role(lu[gone], *URBAN_TYPES, "water").any()
        lu_prev, vac_prev = lu, vac
    assert table.released_ha.sum() > 0 and table.restored_ha.iloc[-1] >= 0


def test_restored_cells_take_the_configured_class(tmp_path, region) -> None:
    res = _people_run(tmp_path, region, name="forest", shrinkage={"outcome": "restore", "restore_to": "forest"})
    start = res.report.landscape["landuse"].values
    final = res.landuse[2040].values
    gone = S.is_role(start, *URBAN_TYPES) & ~S.is_role(final, *URBAN_TYPES)
    assert gone.sum() > 0 and (final[gone] == FOREST).all()


def test_shrinking_run_is_identical_with_one_and_two_threads_and_tiles(tmp_path, region) -> None:
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = _people_run(tmp_path, region, name="one")
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = _people_run(tmp_path, region, name="two")
    finally:
        numba.set_num_threads(before)
    c = _people_run(tmp_path, region, name="tiles", compute={"chunks": 64})
    for y in (2030, 2040):
        for other in (b, c):
            assert np.array_equal(a.landuse[y].values, other.landuse[y].values)
            with rasterio.open(a.out_dir / f"vacancy_{y}.tif") as s1, \
                    rasterio.open(other.out_dir / f"vacancy_{y}.tif") as s2:
                assert np.array_equal(s1.read(1), s2.read(1))


def test_bad_restore_class_is_a_clear_error(tmp_path, region) -> None:
    from landuse.core.errors import ConfigError

    with pytest.raises(ConfigError, match="shrinkage.restore_to: 'castle' is neither a class name"):
        _people_run(tmp_path, region, name="bad", shrinkage={"outcome": "restore", "restore_to": "castle"})



def test_variants_run_as_one_batch_and_robustness_is_computed_from_the_maps(tmp_path, region) -> None:
    from landuse.pipeline.variants import run_variants

    (tmp_path / "low.csv").write_text("city,year,population,jobs\n1,2020,22500,0\n1,2040,22500,0\n"
                                      "2,2020,30000,0\n2,2040,10000,0\n")
    (tmp_path / "high.csv").write_text("city,year,population,jobs\n1,2020,22500,0\n1,2040,23500,0\n"
                                       "2,2020,30000,0\n2,2040,26000,0\n")
    d = scenario_dict(region, tmp_path, name="var")
    d["periods"] = [2020, 2030, 2040]
    d["demand"] = {"people": {"variants": {"low": "low.csv", "high": "high.csv"}, "persons_per_ha": 100.0,
                              "industrial_jobs_per_ha": 50.0, "commercial_jobs_per_ha": 50.0}}
    d["policy"] = {"coordination": "city"}
    d["shrinkage"] = {"outcome": "restore"}
    d["growth"] = {"runs": 2, "iterations": 3}
    cfg = tmp_path / "var.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    res = run_variants(cfg, out=tmp_path / "out")
    assert res.high == "high" and set(res.runs) == {"low", "high"}
    start = res.runs["low"].report.landscape["landuse"].values
    u0 = S.is_role(start, *URBAN_TYPES)
    new = {v: S.is_role(r.landuse[2040].values, *URBAN_TYPES) & ~u0 for v, r in res.runs.items()}
    gone = {v: u0 & ~S.is_role(r.landuse[2040].values, *URBAN_TYPES) for v, r in res.runs.items()}
    with rasterio.open(tmp_path / "out" / "robustness" / "urbanised_only_high.tif") as src:
        assert np.array_equal(src.read(1).astype(bool), new["high"] & ~new["low"])
    with rasterio.open(tmp_path / "out" / "robustness" / "restored_every_variant.tif") as src:
        every = src.read(1).astype(bool)
        assert np.array_equal(every, gone["low"] & gone["high"]) and every.sum() > 0
    # low loses 200 ha in city 2, high 40 ha: restored under every variant is at most the high variant's release
    assert gone["low"].sum() == 200 and gone["high"].sum() == 40
    assert res.table.set_index("city").loc[2, "restored_every_variant_ha"] == every.sum()
    assert (tmp_path / "out" / "low" / "manifest.json").exists() and (tmp_path / "out" / "robustness" /
                                                                       "robustness.md").exists()
