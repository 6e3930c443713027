"""What the pipeline keeps in memory: probabilities as run counts, one copy per wrapped raster."""

from __future__ import annotations

import numpy as np
import rasterio
import yaml
from affine import Affine

from landuse.core.landscape import like, new_landscape
from landuse.pipeline.run import PeriodProbability, run_scenario


def _grid(shape=(6, 5)):
    lu = np.full(shape, 4, np.uint8)
    return new_landscape({"landuse": lu}, crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 30 * shape[0]))


def test_like_and_new_landscape_never_share_the_callers_memory_unless_told() -> None:
    ds = _grid()
    a = np.arange(30, dtype=np.float32).reshape(6, 5)
    da = like(ds, a, "x")
    assert not np.shares_memory(da.values, a)
    assert da.rio.crs == ds.rio.crs and da.rio.transform() == ds.rio.transform()
    assert np.shares_memory(like(ds, a, "x", copy=False).values, a)
    lu = np.full((6, 5), 4, np.uint8)
    zones = np.ones((6, 5), np.int32)
    kept = new_landscape({"landuse": lu, "cities": zones}, crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 180))
    assert not np.shares_memory(kept["landuse"].values, lu) and not np.shares_memory(kept["cities"].values, zones)
    given = new_landscape({"landuse": lu, "cities": zones}, crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 180),
                          copy=False)
    assert np.shares_memory(given["landuse"].values, lu) and np.shares_memory(given["cities"].values, zones)
    lu[0, 0] = 1  # the copying Landscape does not see a later change to the caller's array
    assert int(kept["landuse"].values[0, 0]) == 4


def test_period_probability_is_counts_over_runs_built_on_read() -> None:
    import xarray as xr

    ds = _grid((2, 3))
    counts = np.array([[[0, 1, 3], [7, 7, 2]], [[7, 0, 0], [0, 0, 5]]], np.uint8)
    da = xr.DataArray(counts, dims=("type", "y", "x"), coords={"type": ["residential", "industrial"]})
    pp = PeriodProbability(ds, da, runs=7, year=2030)
    assert list(pp) == ["residential", "industrial"] and len(pp) == 2
    assert pp.counts.dtype == np.uint8 and not np.shares_memory(pp.counts, counts)
    p = pp["industrial"]
    assert p.dtype == np.float32 and p.name == "probability_industrial_2030"
    np.testing.assert_array_equal(p.values, counts[1].astype(np.float32) / np.float32(7))
    assert p.rio.transform() == ds.rio.transform()
    try:
        pp["commercial"]
    except KeyError:
        pass
    else:
        raise AssertionError("an unknown type must be a KeyError")


def test_run_keeps_counts_and_writes_the_same_probabilities(tmp_path, tiny_layers) -> None:
    from conftest import scenario_dict

    d = scenario_dict(tiny_layers, tmp_path, name="mem", outputs={"figures": False})
    cfg = tmp_path / "mem.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    res = run_scenario(cfg, runs=3, out=tmp_path / "out")
    for y, per in res.probability.items():
        assert isinstance(per, PeriodProbability)
        assert per.counts.dtype == np.uint8 and per.counts.shape[0] == len(res.scenario.urban_types)
        for t in res.scenario.urban_types:
            with rasterio.open(tmp_path / "out" / f"probability_{t}_{y}.tif") as src:
                written = src.read(1)
            np.testing.assert_array_equal(written, per[t].values)
            assert set(np.unique(per.counts[per.types.index(t)])) <= {0, 1, 2, 3}


def test_a_wrapped_raster_is_freed_when_its_last_reference_goes() -> None:
    """like() and new_landscape() leave no .rio reference cycle: no wait for the garbage collector."""
    import gc
    import weakref

    ds = _grid()
    gc.disable()
    try:
        da = like(ds, np.zeros((6, 5), np.float32), "x")
        assert da.rio.crs == ds.rio.crs  # the accessor works again after the cycle was dropped...
        from landuse.core.landscape import drop_accessor_cycle

        drop_accessor_cycle(da)
        ref = weakref.ref(da)
        del da
        assert ref() is None  # ...and without the cycle the array goes at once
        fresh = like(ds, np.zeros((6, 5), np.float32), "y")
        ref = weakref.ref(fresh)
        del fresh
        assert ref() is None
        land = _grid((4, 4))
        ref = weakref.ref(land)
        del land
        assert ref() is None
    finally:
        gc.enable()


def test_zone_sums_add_in_cell_order_as_bincount_does() -> None:
    """The compiled per-zone sums equal np.bincount's float64 sums bit for bit, NaN and inf left out."""
    from landuse.evaluation.metrics_kernels import masked_zone_sums

    rng = np.random.default_rng(5)
    n_cells, n = 5000, 17
    v = (rng.random(n_cells) * 10.0 ** rng.integers(-3, 6, n_cells)).astype(np.float32)
    v[rng.random(n_cells) < 0.05] = np.nan
    v[rng.random(n_cells) < 0.01] = np.inf
    sel = rng.random(n_cells) < 0.7
    zone = rng.integers(1, n + 1, int(sel.sum())).astype(np.int32)
    s, c = masked_zone_sums(v, sel, zone, n)
    vs = v[sel]
    fin = np.isfinite(vs)
    want_s = np.bincount(zone[fin], weights=vs[fin].astype(np.float64), minlength=n + 1)
    want_c = np.bincount(zone[fin], minlength=n + 1)
    assert s.tobytes() == want_s.tobytes() and np.array_equal(c, want_c)


def test_a_periods_suitability_is_freed_before_its_growth_without_the_collector(tiny_config, tmp_path, monkeypatch):
    """No reference cycle keeps a period's suitability alive: with the garbage collector off, every suitability
    raster computed so far is gone when the growth of its period starts (run_scenario does not collect)."""
    import gc
    import weakref

    import landuse.growth as growth
    import landuse.surfaces.suitability as suitability

    made: list[weakref.ref] = []
    alive_at_growth: list[int] = []
    real_suit, real_sim = suitability.compute_suitability, growth.simulate

    def suit(*a, **k):
        da = real_suit(*a, **k)
        made.append(weakref.ref(da))
        return da

    def sim(*a, **k):
        alive_at_growth.append(sum(r() is not None for r in made))
        return real_sim(*a, **k)

    monkeypatch.setattr(suitability, "compute_suitability", suit)
    monkeypatch.setattr(growth, "simulate", sim)
    was = gc.isenabled()
    gc.disable()
    try:
        run_scenario(tiny_config, out=tmp_path / "out", runs=1, outputs="maps")
    finally:
        if was:
            gc.enable()
    assert made and alive_at_growth and alive_at_growth == [0] * len(alive_at_growth), (len(made), alive_at_growth)


def test_static_driver_scores_are_kept_between_periods_and_freed_before_the_last_growth(tiny_layers, tmp_path,
                                                                                        monkeypatch):
    """The land-use-independent driver scores are computed once and reused by every period's suitability, and none
    is alive once the last period's suitability is computed (its growth, the evaluation and writing run without)."""
    import weakref

    from conftest import scenario_dict

    import landuse.growth as growth
    import landuse.surfaces.suitability as suitability

    cfg = scenario_dict(tiny_layers, tmp_path, periods=[2020, 2025, 2030],
                        demand={"residential": {2025: 3.0, 2030: 2.0}, "industrial": {2025: 1.0, 2030: 1.0},
                                "commercial": {2025: 1.0, 2030: 0.5}})
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    scores: dict[str, weakref.ref] = {}
    live_at_growth: list[int] = []
    real_suit, real_sim = suitability.compute_suitability, growth.simulate

    def suit(*a, static=None, **k):
        out = real_suit(*a, static=static, **k)
        for name, arr in (static or {}).items():
            if arr is not None:
                assert name not in scores or scores[name]() is arr  # computed once, the same array every period
                scores[name] = weakref.ref(arr)
        return out

    def sim(*a, **k):
        live_at_growth.append(sum(r() is not None for r in scores.values()))
        return real_sim(*a, **k)

    monkeypatch.setattr(suitability, "compute_suitability", suit)
    monkeypatch.setattr(growth, "simulate", sim)
    run_scenario(path, out=tmp_path / "out", runs=1, outputs="maps")
    assert scores and len(live_at_growth) == 2
    assert live_at_growth[0] == len(scores) and live_at_growth[-1] == 0, (len(scores), live_at_growth)


def test_not_converted_equals_the_whole_raster_product_for_any_strip_height(monkeypatch) -> None:
    """``not_urban *= clip(1 - sum_t counts_t / runs, 0, 1)`` strip by strip: bit for bit the whole-raster product."""
    import xarray as xr

    import landuse.io.rasters
    from landuse.pipeline.steps import _not_converted

    shape = (13, 11)
    ds = _grid(shape)
    rng = np.random.default_rng(5)
    types = ["residential", "industrial", "commercial"]
    counts = xr.DataArray(rng.integers(0, 8, (3, *shape)).astype(np.uint8), dims=("type", "y", "x"),
                          coords={"type": types[::-1]})  # stored in another order than the types are added in
    prob = PeriodProbability(ds, counts, 7, 2030)
    start = rng.random(shape).astype(np.float32)
    p_any = np.zeros(shape, np.float32)
    for t in types:
        p_any += prob[t].values
    want = start * np.clip(1.0 - p_any, 0.0, 1.0)
    for strip in (1, 5, 11, 12, 23, 1 << 22):
        monkeypatch.setattr(landuse.core.strips, "STRIP_CELLS", strip)
        got = start.copy()
        _not_converted(got, prob, types)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
