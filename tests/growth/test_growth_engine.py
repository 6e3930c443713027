"""Growth engine: properties on random landscapes, exact targets, reproducibility, behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from growth_fixtures import (
    BARE,
    COM,
    FARM,
    FOREST,
    IND,
    RES,
    SCHEME,
    WATER,
    patch_count,
    random_landscape,
    scenario,
    targets,
    transform,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landuse.core.classes import URBAN_TYPES
from landuse.core.errors import GridMismatchError, LanduseError
from landuse.core.landscape import new_landscape
from landuse.growth import GrowthInputError, GrowthParams, simulate, targets_frame

TESTS = Path(__file__).parents[1]  # tests/: the shared fixtures' folder
CODE = dict(zip(URBAN_TYPES, SCHEME.urban_codes, strict=True))


def _check_result(ds, params, tg, res) -> None:
    """Every property the issue asks for, on the representative run's maps."""
    lu0 = ds["landuse"].values
    zones = ds["zones"].values if "zones" in ds else ds["study_area"].values.astype(np.int32)
    pot = params.potential
    frozen = SCHEME.is_role(lu0, "water") | ~ds["study_area"].values
    for name in ("red_line", "permanent_farmland"):
        if name in ds:
            frozen |= ds[name].values
    years = sorted(res.landuse)
    prev = lu0
    sf = res.shortfall.set_index(["period", "zone", "type"])
    for y in years:
        cur = res.landuse[y].values
        assert cur.dtype == np.uint8 and cur.shape == lu0.shape
        assert not (cur != lu0)[frozen].any(), "a red-line, permanent-farmland, water or nodata cell changed"
        changed = cur != prev
        for k, t in enumerate(URBAN_TYPES):
            to_k = changed & (cur == CODE[t])
            # only classes the conversion matrix allows
            assert params.allowed[k, prev[to_k]].all(), f"a cell became {t} from a class the matrix forbids"
            got = np.bincount(zones[to_k], minlength=zones.max() + 1)
            for z in range(1, zones.max() + 1):
                key = (y, z, t)
                target = int(sf.loc[key, "target"]) if key in sf.index else 0
                assert got[z] <= target, f"zone {z} got {got[z]} {t} cells, allowance {target}"
                if target:
                    row = sf.loc[key]
                    assert row.converted == got[z] and row.shortfall == target - got[z]
                    assert row.converted_max <= target
                    if row.shortfall > 0:  # then the zone had no capacity left for the type
                        room = (zones == z) & params.allowed[k, cur] & (pot[k] > 0) & ~changed
                        assert not room.any(), f"shortfall in zone {z} ({t}) though {int(room.sum())} cells could convert"
        # nothing but the listed changes: every changed cell is now urban
        assert np.isin(cur[changed], SCHEME.urban_codes).all()
        prev = cur
    for t, p in res.probability.items():
        assert p.dtype == np.float32 and float(p.min()) >= 0.0 and float(p.max()) <= 1.0
        assert list(p.coords["period"].values) == years
        assert not (p.values[:, frozen] > 0).any(), f"probability of {t} on a frozen cell"
    total = sum(p.values for p in res.probability.values())
    assert float(total.max()) <= 1.0 + 1e-6


conversions = st.sampled_from([
    None,
    {"residential": ["farmland", "other"], "industrial": ["farmland", "open_space", "other"],
     "commercial": ["farmland", "residential"]},
    {"residential": ["farmland"], "industrial": ["farmland"], "commercial": ["farmland"]},
])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(6, 22),
    cols=st.integers(6, 22),
    conversion=conversions,
    greenbelt=st.sampled_from(["none", "soft", "hard"]),
    iterations=st.integers(1, 4),
    share=st.sampled_from([0.0, 0.2, 1.0]),
    neighbourhood=st.sampled_from([3, 5, 7]),
    demand=st.integers(1, 25),
)
def test_properties_on_random_landscapes(seed, rows, cols, conversion, greenbelt, iterations, share, neighbourhood,
                                         demand) -> None:
    ds = random_landscape(seed, rows, cols)
    scn = scenario(conversion=conversion, periods=(2020, 2025, 2030), policy={"greenbelt": {"mode": greenbelt}},
                   iterations=iterations, spontaneous_share=share, neighbourhood=neighbourhood,
                   suitability={"weights": {"dist_urban": 0.6, "dist_roads": 0.4}})
    params = GrowthParams.from_scenario(scn, ds)
    rng = np.random.default_rng(seed)
    tg = targets([2025, 2030], ds["zones"].values, {"residential": demand, "industrial": demand // 2,
                                                    "commercial": demand // 3}, rng=rng, spread=True)
    res = simulate(ds, tg, params=params, runs=2, seed=seed)
    _check_result(ds, params, tg, res)


def _plain(rows=30, cols=30, seed=0, **kw):
    ds = random_landscape(seed, rows, cols, urban_share=0.03, nodata_share=0.0, **kw)
    return ds


def test_targets_met_exactly_in_every_run_when_capacity_allows() -> None:
    ds = _plain(40, 40, zone_block=20)
    params = GrowthParams.from_scenario(scenario(periods=(2020, 2025, 2030), iterations=4), ds)
    tg = targets([2025, 2030], ds["zones"].values, {"residential": 30, "industrial": 12, "commercial": 8})
    res = simulate(ds, tg, params=params, runs=4, seed=5)
    s = res.shortfall
    assert len(s) == len(tg) and (s.shortfall == 0).all()
    assert (s.converted_min == s.target).all() and (s.converted_max == s.target).all()
    _check_result(ds, params, tg, res)


def test_shortfall_equals_missing_capacity() -> None:
    lu = np.full((8, 8), FOREST, dtype=np.uint8)
    lu[3, 3] = RES
    lu[0, :3] = FARM  # zone 1: 3 farmland cells, the only convertible class below
    lu[6:, 6:] = FARM  # zone 2: 4 farmland cells
    zones = np.ones((8, 8), np.int32)
    zones[4:, 4:] = 2
    ds = new_landscape({"landuse": lu, "zones": zones}, crs="EPSG:32651", transform=transform(rows=8))
    scn = scenario(conversion={t: ["farmland"] for t in URBAN_TYPES})
    params = GrowthParams.from_scenario(scn, ds)
    tg = targets_frame({(2030, 1, "residential"): 10, (2030, 2, "industrial"): 2, (2030, 2, "commercial"): 3})
    res = simulate(ds, tg, params=params, runs=3, seed=1)
    s = res.shortfall.set_index(["zone", "type"])
    assert s.loc[(1, "residential"), "converted"] == 3 and s.loc[(1, "residential"), "shortfall"] == 7
    # zone 2: 4 cells for 5 wanted; both types get what the cells allow, never more than asked
    assert s.loc[(2, "industrial"), "converted"] + s.loc[(2, "commercial"), "converted"] == 4
    assert s.loc[(2, "industrial"), "shortfall"] + s.loc[(2, "commercial"), "shortfall"] == 1
    out = res.landuse[2030].values
    assert (out[0, :3] == RES).all() and (out[lu == FOREST] == FOREST).all()
    _check_result(ds, params, tg, res)


def _run_in_subprocess(threads: int, seed: int) -> str:
    code = textwrap.dedent(f"""
        import hashlib, json, sys
        sys.path.insert(0, {str(TESTS)!r})
        import numpy as np
        from growth_fixtures import random_landscape, scenario, targets
        from landuse.growth import GrowthParams, simulate
        from landuse.growth import engine
        from numba import get_num_threads
        engine._SERIAL_BELOW_CELLS = 0  # small grids would otherwise run on one thread
        ds = random_landscape(4, 240, 250, zone_block=40, urban_share=0.02)
        params = GrowthParams.from_scenario(scenario(periods=(2020, 2025, 2030), iterations=3,
                                                     spontaneous_share=0.1), ds)
        tg = targets([2025, 2030], ds["zones"].values, {{"residential": 300, "industrial": 100, "commercial": 60}})
        r = simulate(ds, tg, params=params, runs=3, seed={seed})
        h = hashlib.sha256()
        for y in sorted(r.landuse):
            h.update(r.landuse[y].values.tobytes())
        h.update(r.counts.values.tobytes())
        h.update(r.shortfall.to_csv().encode())
        print(json.dumps({{"threads": get_num_threads(), "hash": h.hexdigest()}}))
    """)
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    assert d["threads"] == threads
    return d["hash"]


def test_same_seed_is_bit_identical_across_thread_counts_and_seeds_differ() -> None:
    one = _run_in_subprocess(1, 21)
    two = _run_in_subprocess(2, 21)
    assert one == two
    assert _run_in_subprocess(2, 22) != one


def test_different_seeds_give_different_maps_in_process() -> None:
    ds = _plain(40, 40, seed=3)
    params = GrowthParams.from_scenario(scenario(iterations=3), ds)
    tg = targets([2030], ds["zones"].values, {"residential": 20, "commercial": 5})
    a = simulate(ds, tg, params=params, runs=2, seed=1)
    b = simulate(ds, tg, params=params, runs=2, seed=1)
    c = simulate(ds, tg, params=params, runs=2, seed=2)
    assert (a.landuse[2030].values == b.landuse[2030].values).all()
    assert (a.counts.values == b.counts.values).all()
    assert (a.landuse[2030].values != c.landuse[2030].values).any()
    assert a.seed == 1 and c.seed == 2


def _greenbelt_landscape():
    rows = cols = 40
    lu = np.full((rows, cols), FARM, dtype=np.uint8)
    lu[17:23, 17:23] = RES
    gb = np.zeros((rows, cols), bool)
    gb[:, 24:] = True  # a belt east of the town; growth can go west instead
    return new_landscape({"landuse": lu, "greenbelt": gb}, crs="EPSG:32651", transform=transform(rows=rows)), gb


def test_stronger_greenbelt_means_less_growth_inside_it() -> None:
    ds, gb = _greenbelt_landscape()
    tg = targets_frame({(2030, 1, "residential"): 150})
    inside = {}
    for strength in (0.1, 0.9):
        scn = scenario(policy={"greenbelt": {"mode": "soft", "strength": strength}}, iterations=5,
                       spontaneous_share=0.0)
        res = simulate(ds, tg, params=GrowthParams.from_scenario(scn, ds), runs=6, seed=4)
        inside[strength] = float(res.probability["residential"].sel(period=2030).values[gb].sum())
        assert (res.shortfall.shortfall == 0).all()
    assert inside[0.9] < 0.6 * inside[0.1], inside


def test_higher_neighbourhood_weight_gives_fewer_patches() -> None:
    rng = np.random.default_rng(8)
    rows = cols = 60
    lu = np.full((rows, cols), FARM, dtype=np.uint8)
    for r, c in rng.integers(5, 55, size=(12, 2)):
        lu[r - 1:r + 2, c - 1:c + 2] = RES
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=transform(rows=rows))
    tg = targets_frame({(2030, 1, "residential"): 400})
    patches = {}
    for strength in (0.0, 4.0):
        scn = scenario(neighbourhood=5, neighbourhood_strength=strength, spontaneous_share=0.0, iterations=8)
        params = GrowthParams.from_scenario(scn, ds)
        counts = []
        for seed in range(4):
            res = simulate(ds, tg, params=params, runs=1, seed=seed)
            counts.append(patch_count(res.landuse[2030].values == RES))
        patches[strength] = np.mean(counts)
    assert patches[4.0] < patches[0.0], patches


def test_spontaneous_share_creates_new_patches() -> None:
    lu = np.full((50, 50), FARM, dtype=np.uint8)
    lu[24:27, 24:27] = RES
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=transform(rows=50))
    tg = targets_frame({(2030, 1, "residential"): 60})
    n = {}
    for share in (0.0, 0.5):
        res = simulate(ds, tg, params=GrowthParams.from_scenario(scenario(spontaneous_share=share), ds), runs=1,
                       seed=2)
        n[share] = patch_count(res.landuse[2030].values == RES)
    assert n[0.0] == 1  # pure edge growth from one seed stays one patch: it builds on earlier conversions
    assert n[0.5] > 5


def test_growth_builds_on_cells_converted_earlier_in_the_period() -> None:
    lu = np.full((30, 30), FARM, dtype=np.uint8)
    lu[15, 15] = RES  # 8 frontier cells at the start; 60 cells need several rings
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=transform(rows=30))
    params = GrowthParams.from_scenario(scenario(spontaneous_share=0.0, iterations=10), ds)
    res = simulate(ds, targets_frame({(2030, 1, "residential"): 60}), params=params, runs=2, seed=0)
    out = res.landuse[2030].values == RES
    assert out.sum() == 61 and patch_count(out) == 1
    rr, cc = np.nonzero(out)
    assert max(np.abs(rr - 15).max(), np.abs(cc - 15).max()) >= 3  # grew beyond the first two rings


def test_urban_cells_change_type_only_when_the_matrix_allows() -> None:
    lu = np.full((20, 20), FOREST, dtype=np.uint8)
    lu[5:15, 5:15] = RES
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=transform(rows=20))
    tg = targets_frame({(2030, 1, "commercial"): 10})
    forbid = scenario(conversion={t: ["farmland"] for t in URBAN_TYPES})
    res = simulate(ds, tg, params=GrowthParams.from_scenario(forbid, ds), runs=2, seed=0)
    assert (res.landuse[2030].values == lu).all() and res.shortfall.shortfall.tolist() == [10]
    allow = scenario(conversion={"residential": ["farmland"], "industrial": ["farmland"],
                                 "commercial": ["residential"]})
    res = simulate(ds, tg, params=GrowthParams.from_scenario(allow, ds), runs=2, seed=0)
    out = res.landuse[2030].values
    assert ((out == COM) & (lu == RES)).sum() == 10 and res.shortfall.shortfall.tolist() == [0]
    assert (out[lu == FOREST] == FOREST).all()


def test_hard_boundary_and_red_line_block_growth_and_soft_boundary_discourages() -> None:
    lu = np.full((30, 30), FARM, dtype=np.uint8)
    lu[13:17, 13:17] = RES
    ugb = np.zeros((30, 30), bool)
    ugb[8:22, 8:22] = True
    red = np.zeros((30, 30), bool)
    red[8:22, 8:11] = True
    ds = new_landscape({"landuse": lu, "growth_boundary": ugb, "red_line": red}, crs="EPSG:32651",
                       transform=transform(rows=30))
    tg = targets_frame({(2030, 1, "residential"): 250})
    hard = simulate(ds, tg, params=GrowthParams.from_scenario(
        scenario(policy={"growth_boundary": {"mode": "hard"}}), ds), runs=2, seed=0)
    out = hard.landuse[2030].values
    assert (out[~ugb | red] == lu[~ugb | red]).all()
    capacity = int((ugb & ~red & (lu == FARM)).sum())
    assert hard.shortfall.converted.tolist() == [capacity] and hard.shortfall.shortfall.tolist() == [250 - capacity]
    soft = simulate(ds, tg, params=GrowthParams.from_scenario(
        scenario(policy={"growth_boundary": {"mode": "soft", "outside_factor": 0.05}}), ds), runs=2, seed=0)
    assert soft.shortfall.shortfall.tolist() == [0]
    assert (soft.landuse[2030].values[red] == lu[red]).all()


def test_result_shape_progress_representative_and_no_zones_layer() -> None:
    lu = np.full((20, 20), FARM, dtype=np.uint8)
    lu[9:11, 9:11] = IND
    lu[0, 0] = WATER
    lu[19, 19] = BARE
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=transform(rows=20))
    scn = scenario(periods=(2020, 2025, 2030, 2035))
    params = GrowthParams.from_scenario(scn, ds)
    events = []
    tg = targets_frame({(2025, 1, "industrial"): 12, (2035, 1, "residential"): 6})  # nothing in 2030
    res = simulate(ds, tg, params=params, runs=3, seed=9, progress=events.append)
    assert sorted(res.landuse) == [2025, 2030, 2035]
    assert (res.landuse[2030].values == res.landuse[2025].values).all()
    assert len(events) == 9 and {"run", "runs", "period", "period_index", "periods", "converted",
                                 "shortfall"} <= set(events[0])
    assert [e["period"] for e in events[:3]] == [2025, 2030, 2035]
    assert res.counts.dims == ("period", "type", "y", "x") and res.counts.dtype == np.uint8
    assert res.run_scores.shape == (3,) and res.representative_run == int(np.argmax(res.run_scores))
    assert res.landuse[2025].rio.crs == ds.rio.crs and res.landuse[2025].attrs["run"] == res.representative_run
    p = res.probability["industrial"].sel(period=2025).values
    assert p[9:11, 9:11].max() == 0.0  # already industrial: not a conversion
    assert np.isclose(p.sum(), 12.0)  # 12 cells per run on average


def test_bad_inputs_raise_clear_errors() -> None:
    ds = _plain(12, 12, zone_block=6)
    params = GrowthParams.from_scenario(scenario(), ds)
    with pytest.raises(GrowthInputError, match="unknown urban type"):
        simulate(ds, targets_frame({(2030, 1, "housing"): 3}), params=params)
    with pytest.raises(GrowthInputError, match="do not occur in the zone raster"):
        simulate(ds, targets_frame({(2030, 99, "residential"): 3}), params=params)
    dup = pd.DataFrame({"period": [2030, 2030], "zone": [1, 1], "type": ["residential"] * 2, "cells": [1, 2]})
    with pytest.raises(GrowthInputError, match="duplicate"):
        simulate(ds, dup, params=params)
    with pytest.raises(GrowthInputError, match="missing column"):
        simulate(ds, pd.DataFrame({"period": [2030], "zone": [1], "cells": [1]}), params=params)
    with pytest.raises(GrowthInputError, match="non-negative whole"):
        simulate(ds, targets_frame({(2030, 1, "residential"): -1}), params=params)
    other = _plain(10, 12)
    with pytest.raises(GridMismatchError, match="rebuild"):
        simulate(other, targets_frame({(2030, 1, "residential"): 1}), params=params)
    with pytest.raises(LanduseError, match="neighbourhood must be 3, 5 or 7"):
        params.replace(neighbourhood=4)
    with pytest.raises(LanduseError, match="seed"):
        simulate(ds, targets_frame({(2030, 1, "residential"): 1}), params=params, seed=-1)


def test_from_arrays_and_quantised_potential_order() -> None:
    lu = np.full((10, 10), FARM, dtype=np.uint8)
    lu[5, 5] = RES
    s = np.zeros((3, 10, 10), np.float32)
    s[0] = np.linspace(0.01, 1.0, 100).reshape(10, 10)
    allowed = np.zeros((3, 256), bool)
    allowed[:, FARM] = True
    params = GrowthParams.from_arrays(s, allowed=allowed, type_codes=SCHEME.urban_codes, iterations=2)
    assert params.potential.dtype == np.uint8 and (np.diff(params.potential[0].ravel().astype(int)) >= 0).all()
    assert (params.potential[1:] == 0).all()  # zero suitability: never
    with pytest.raises(GrowthInputError, match="exceeds 1"):
        GrowthParams.from_arrays(s * 2, allowed=allowed, type_codes=SCHEME.urban_codes)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_one_period_alone_draws_as_within_the_scenario(index: int) -> None:
    """Growing one period alone (periods=(year,), period_offset=its index) gives that period's map, counts and
    representative run of a call given every scenario period with targets in that period only (what landuse run
    does period by period); without the offset a later period draws other numbers."""
    ds = random_landscape(7, 40, 45, zone_block=9)
    sc = scenario(periods=(2020, 2025, 2030, 2035), spontaneous_share=0.2, iterations=4)
    years = [2025, 2030, 2035]
    p = GrowthParams.from_scenario(sc, ds)
    assert p.periods == tuple(years)
    y = years[index]
    t = targets([y], ds["zones"].values, {"residential": 9, "industrial": 4, "commercial": 2})
    whole = simulate(ds, t, params=p, runs=4, seed=3)
    alone = simulate(ds, t, params=p.replace(periods=(y,), period_offset=index), runs=4, seed=3)
    assert list(alone.landuse) == [y] and list(alone.counts.period.values) == [y]
    np.testing.assert_array_equal(alone.landuse[y].values, whole.landuse[y].values)
    np.testing.assert_array_equal(alone.counts.sel(period=y).values, whole.counts.sel(period=y).values)
    assert alone.representative_run == whole.representative_run
    np.testing.assert_array_equal(alone.run_scores, whole.run_scores)
    if index > 0:
        other = simulate(ds, t, params=p.replace(periods=(y,)), runs=4, seed=3)
        assert not np.array_equal(other.counts.sel(period=y).values, whole.counts.sel(period=y).values)


def test_period_offset_is_checked() -> None:
    ds = random_landscape(1, 10, 10)
    p = GrowthParams.from_scenario(scenario(), ds)
    for bad in (-1, 1.5, 2**15):
        with pytest.raises(GrowthInputError, match="period_offset"):
            p.replace(period_offset=bad)
