"""The in-memory engine's memory savings keep every result bit: run template, state copies, probability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from growth_fixtures import random_landscape, scenario, targets

from landuse.growth import GrowthParams, GrowthResult, simulate
from landuse.growth import plan as plan_module
from landuse.growth.plan import build_plan, zone_raster
from landuse.growth.state import RunState, initial_state


def _case(seed: int = 2):
    ds = random_landscape(seed, 48, 40, zone_block=16, urban_share=0.05, nodata_share=0.02)
    params = GrowthParams.from_scenario(scenario(periods=(2020, 2025, 2030), iterations=4), ds)
    tg = targets([2025, 2030], ds["zones"].values, {"residential": 25, "industrial": 9, "commercial": 6})
    return ds, params, tg


def _digest(res) -> tuple:
    return (
        tuple((y, m.values.tobytes()) for y, m in res.landuse.items()),
        res.counts.values.tobytes(), res.counts.dtype.str,
        res.shortfall.to_csv(), res.representative_run, res.run_scores.tobytes(),
    )


def _old_initial_state(st, lu0, *, template=False):
    """The state every run started from before the template: own start map and scratch buffers."""
    return initial_state(st, lu0)


def _old_copy(self, lu=None):
    """The former full copy (spare capacity and scratch buffers of ``self``'s size)."""
    start = self.lu if lu is None else lu
    return RunState(lu=np.ascontiguousarray(start, dtype=np.uint8).reshape(-1).copy(), elig=self.elig.copy(),
                    frontier=self.frontier.copy(), lock=np.zeros_like(self.lock), cand=self.cand.copy(),
                    cz=self.cz.copy(), cpot=self.cpot.copy(), m=self.m, starts=list(self.starts), dead=self.dead,
                    group=np.empty_like(self.group), t=np.empty_like(self.t), seg_v=np.empty_like(self.seg_v),
                    seg_p=np.empty_like(self.seg_p), scan=np.empty(0, np.int64))


@pytest.mark.parametrize("seed", [2, 7])
def test_template_and_partial_copies_give_the_former_results(seed: int, monkeypatch) -> None:
    ds, params, tg = _case(seed)
    new = simulate(ds, tg, params=params, runs=4, seed=seed, keep_runs=True)
    with monkeypatch.context() as mp:
        mp.setattr(plan_module, "initial_state", _old_initial_state)  # as run_ensemble looks it up
        mp.setattr(RunState, "copy", _old_copy)
        old = simulate(ds, tg, params=params, runs=4, seed=seed, keep_runs=True)
    assert _digest(new) == _digest(old)
    for a, b in zip(new.run_landuse, old.run_landuse, strict=True):
        assert all(np.array_equal(a[y], b[y]) for y in a)


def test_template_shares_the_start_map_and_copies_only_used_slots() -> None:
    ds, params, tg = _case()
    plan = build_plan(zone_raster(ds), tg, params)
    lu0 = np.asarray(ds["landuse"].values)
    base = initial_state(plan.st, lu0, template=True)
    assert np.shares_memory(base.lu, lu0) and base.group.size == base.t.size == 0
    full = initial_state(plan.st, lu0)
    assert not np.shares_memory(full.lu, lu0) and full.group.size == full.cand.size
    run = base.copy(lu0)
    m = base.m
    assert not np.shares_memory(run.lu, lu0) and np.array_equal(run.lu, lu0.reshape(-1))
    assert run.cand.size == base.cand.size and run.group.size >= run.cand.size and run.t.size >= run.cand.size
    assert np.array_equal(run.cand[:m], full.cand[:m]) and np.array_equal(run.cpot[:m], full.cpot[:m])
    assert np.array_equal(run.cz, full.cz)  # zeros beyond the used slots, as in the built state
    # a read-only start map is copied (a writeable one keeps one numba specialisation)
    ro = lu0.copy()
    ro.flags.writeable = False
    assert initial_state(plan.st, ro, template=True).lu.flags.writeable


def test_read_only_landuse_gives_the_same_result() -> None:
    ds, params, tg = _case()
    ref = simulate(ds, tg, params=params, runs=3, seed=1)
    ro = ds.copy(deep=True)
    ro["landuse"].values.flags.writeable = False
    assert _digest(simulate(ro, tg, params=params, runs=3, seed=1)) == _digest(ref)


@pytest.mark.parametrize(("dtype", "runs"), [(np.uint8, 10), (np.uint8, 255), (np.uint16, 300), (np.uint32, 70_000)])
def test_probability_equals_the_xarray_division(dtype, runs: int) -> None:
    rng = np.random.default_rng(runs)
    counts = xr.DataArray(
        rng.integers(0, runs + 1, (2, 3, 5, 4)).astype(dtype), dims=("period", "type", "y", "x"),
        coords={"period": [2030, 2040], "type": ["residential", "industrial", "commercial"],
                "y": np.arange(5.0), "x": np.arange(4.0)},
        name="conversion_counts", attrs={"runs": runs, "seed": 1},
    )
    counts.encoding = {"dtype": counts.dtype.name}
    res = GrowthResult(landuse={}, counts=counts, runs=runs, seed=1, shortfall=pd.DataFrame(),
                       representative_run=0, run_scores=np.zeros(1))
    for t, p in res.probability.items():
        old = (counts.sel(type=t).astype(np.float32) / np.float32(runs)).astype(np.float32)
        old.name = f"probability_{t}"
        xr.testing.assert_identical(p, old)
        assert p.values.tobytes() == old.values.tobytes() and p.dtype == np.float32
        assert p.attrs == old.attrs and p.encoding == old.encoding
        assert p.values.flags.owndata and p.values.flags.writeable and not np.shares_memory(p.values, counts.values)
        p.attrs["changed"] = True
        assert "changed" not in counts.attrs


def test_probability_of_a_simulation_equals_the_xarray_division() -> None:
    ds, params, tg = _case()
    res = simulate(ds, tg, params=params, runs=5, seed=3)
    for t, p in res.probability.items():
        old = (res.counts.sel(type=t).astype(np.float32) / np.float32(res.runs)).astype(np.float32)
        old.name = f"probability_{t}"
        xr.testing.assert_identical(p, old)
        assert p.values.tobytes() == old.values.tobytes()


def test_zone_raster_outside_the_study_area_is_int32_zero() -> None:
    ds, _, _ = _case()
    ds = ds.copy(deep=True)
    ds["study_area"].values[:5] = False
    z = zone_raster(ds)
    assert z.dtype == np.int32 and not z[:5].any()
    assert np.array_equal(z[5:], ds["zones"].values[5:])
