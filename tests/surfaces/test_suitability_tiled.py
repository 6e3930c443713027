"""Suitability at megaregion scale: the compiled distance transform against scipy's, bit for bit,
and the per-run cache of land-use-independent driver scores against recomputing every driver."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from growth_fixtures import COM, FARM, IND, RES, random_landscape, scenario
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import landuse.surfaces.suitability as suitability
from landuse.core.landscape import new_landscape
from landuse.pipeline.steps import _suitability_provider
from landuse.surfaces.suitability import compute_suitability, depends_on_landuse, distance_to

SETTINGS = settings(max_examples=150, deadline=None)
CELLS = st.sampled_from([1.0, 30.0, 0.1, 2.5, 1 / 3, 7.3, 1e-3, 250.0])


def _scipy(mask: np.ndarray, cell) -> np.ndarray:
    """The reference: scipy's exact EDT (float64) cast to float32."""
    return ndimage.distance_transform_edt(~mask, sampling=cell).astype(np.float32)


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


@SETTINGS
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       density=st.sampled_from([0.0005, 0.01, 0.05, 0.3, 0.9, 1.0]), sy=CELLS, sx=CELLS,
       square=st.booleans())
def test_distance_to_is_scipy_bit_for_bit(rows, cols, seed, density, sy, sx, square) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((rows, cols)) < density
    mask[rng.integers(rows), rng.integers(cols)] = True  # at least one feature
    cell = sy if square else (sy, sx)
    _same_bits(distance_to(mask, cell=cell), _scipy(mask, cell))


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (1, 600), (600, 1)])
@pytest.mark.parametrize("cell", [30.0, (10.0, 3.0)])
def test_distance_to_lines(shape, cell) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    mask = rng.random(shape) < 0.05
    mask.flat[shape[0] * shape[1] // 2] = True
    _same_bits(distance_to(mask, cell=cell), _scipy(mask, cell))


def test_distance_to_full_and_empty_masks() -> None:
    full = np.ones((5, 7), bool)
    _same_bits(distance_to(full, cell=(2.0, 3.0)), _scipy(full, (2.0, 3.0)))
    assert (distance_to(full, cell=30.0) == 0).all()
    # scipy measures an all-background input to a phantom feature at index -1; distance_to says inf
    empty = np.zeros((4, 6), bool)
    assert np.isposinf(distance_to(empty, cell=(2.0, 3.0))).all()
    assert distance_to(np.zeros((0, 3), bool), cell=1.0).shape == (0, 3)


def test_distance_to_across_strips_and_out() -> None:
    """Rasters wider and taller than one parallel strip, sparse and dense features."""
    rng = np.random.default_rng(7)
    for density in (2e-5, 0.002, 0.2):
        mask = rng.random((530, 610)) < density
        mask[300, 20] = True
        out = np.full(mask.shape, -1.0, np.float32)
        got = distance_to(mask, cell=(30.0, 20.0), out=out)
        assert got is out
        _same_bits(out, _scipy(mask, (30.0, 20.0)))
    with pytest.raises(ValueError, match="out must be float32"):
        distance_to(mask, cell=1.0, out=np.empty(mask.shape, np.float64))


def test_distance_and_suitability_do_not_depend_on_threads() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((700, 650)) < 0.001
    ds = _driver_landscape(5, 530, 300)
    sc = scenario(suitability={"weights": WEIGHTS})
    before = numba.get_num_threads()
    got = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            got.append((distance_to(mask, cell=(30.0, 25.0)), compute_suitability(ds, sc, static={}).values))
    finally:
        numba.set_num_threads(before)
    _same_bits(got[0][0], got[1][0])
    _same_bits(got[0][0], _scipy(mask, (30.0, 25.0)))
    _same_bits(got[0][1], got[1][1])
    _same_bits(got[0][1], _numpy_twin(ds, sc, ds["landuse"].values))


def _driver_landscape(seed: int = 0, rows: int = 40, cols: int = 50):
    """Every kind of driver: land-use distances, mask distances, slope, elevation and an extra float layer."""
    ds = random_landscape(seed, rows, cols)
    rng = np.random.default_rng(seed + 1)
    data = {name: ds[name].values for name in ds.data_vars}
    data["rail"] = rng.random((rows, cols)) < 0.01
    data["stations"] = rng.random((rows, cols)) < 0.003
    data["centres"] = rng.random((rows, cols)) < 0.002
    data["slope"] = (rng.random((rows, cols)) * 30).astype(np.float32)
    data["elevation"] = (rng.random((rows, cols)) * 200).astype(np.float32)
    return new_landscape(data, crs=ds.rio.crs, transform=ds.rio.transform())


WEIGHTS = {"dist_urban": 0.3, "dist_roads": 0.2, "dist_residential": 0.1, "dist_rail": 0.1, "slope": 0.1,
           "dist_stations": 0.05, "elevation": 0.1, "dist_centres": 0.05}


def _periods(ds, n: int = 3):
    """Land use at the start of ``n`` periods: urban land grows on farmland each period."""
    rng = np.random.default_rng(11)
    lu = ds["landuse"].values.copy()
    out = []
    for _ in range(n):
        out.append(lu.copy())
        grow = (lu == FARM) & (rng.random(lu.shape) < 0.05)
        lu[grow] = rng.choice(np.array([RES, IND, COM], np.uint8), size=int(grow.sum()))
    return out


@pytest.mark.parametrize("by_type", [False, True])
def test_static_cache_is_bit_identical_over_periods(by_type, monkeypatch) -> None:
    ds = _driver_landscape()
    sc = scenario(suitability={"weights": WEIGHTS, **({} if by_type else {"by_type": {}})})
    periods = _periods(ds)
    assert not np.array_equal(periods[0], periods[-1])
    calls: list[str] = []
    real = suitability.driver_score

    def counting(ds_, sc_, name, *, landuse, **kw):
        calls.append(name)
        return real(ds_, sc_, name, landuse=landuse, **kw)

    static: dict = {}
    for lu in periods:
        plain = compute_suitability(ds, sc, landuse=lu)
        monkeypatch.setattr(suitability, "driver_score", counting)
        cached = compute_suitability(ds, sc, landuse=lu, static=static)
        monkeypatch.setattr(suitability, "driver_score", real)
        _same_bits(cached.values, plain.values)
        assert cached.attrs == plain.attrs and plain.attrs["dropped_drivers"] == []
    used = {n for w in sc.driver_weights().values() for n, v in w.items() if v > 0}
    dynamic = {n for n in used if depends_on_landuse(n, sc)}
    assert set(static) == used - dynamic
    assert dynamic <= {"dist_urban", "dist_residential", "dist_industrial", "dist_commercial"}
    # land-use-independent drivers computed in the first period only, the others every period
    for name in used:
        assert calls.count(name) == (len(periods) if name in dynamic else 1), name


def test_run_provider_reuses_static_drivers(monkeypatch) -> None:
    ds = _driver_landscape(seed=4)
    sc = scenario(suitability={"weights": WEIGHTS})
    calls: list[str] = []
    real = suitability.driver_score

    def counting(ds_, sc_, name, *, landuse, **kw):
        calls.append(name)
        return real(ds_, sc_, name, landuse=landuse, **kw)

    periods = _periods(ds)
    want = [compute_suitability(ds, sc, landuse=lu).values for lu in periods]
    monkeypatch.setattr(suitability, "driver_score", counting)
    provider = _suitability_provider(ds, sc, {})
    got = [np.asarray(provider(lu).values) for lu in periods]
    for g, w in zip(got, want, strict=True):
        _same_bits(g, w)
    assert calls.count("dist_roads") == 1 and calls.count("slope") == 1
    assert calls.count("dist_urban") == len(periods)


def _numpy_twin(ds, sc, lu: np.ndarray) -> np.ndarray:
    """The weighted mean with plain numpy: ``acc += w * score`` in the drivers' order, ``acc / total``."""
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    out = []
    for weights in sc.driver_weights().values():
        acc = np.zeros(lu.shape, np.float32)
        total = 0.0
        for name, w in weights.items():
            score = suitability.driver_score(ds, sc, name, landuse=lu) if w > 0 else None
            if score is not None:
                acc += np.float32(w) * score
                total += w
        out.append(acc / np.float32(total) if total > 0 else np.ones_like(acc))
    res = np.stack(out)
    res[:, ~inside] = 0.0
    return res


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), rows=st.integers(1, 30), cols=st.integers(1, 30),
       weights=st.dictionaries(st.sampled_from(sorted(WEIGHTS)), st.sampled_from([0.0, 0.05, 0.1, 0.3, 1 / 3, 1.0]),
                               min_size=1))
def test_weighted_mean_equals_numpy_twin(seed, rows, cols, weights) -> None:
    ds = _driver_landscape(seed, rows, cols)
    sc = scenario(suitability={"weights": weights, "by_type": {}})
    lu = ds["landuse"].values
    _same_bits(compute_suitability(ds, sc, landuse=lu).values, _numpy_twin(ds, sc, lu))
    _same_bits(compute_suitability(ds, sc, landuse=lu, static={}).values, _numpy_twin(ds, sc, lu))


def _whole_score(ds, sc, name: str, lu: np.ndarray) -> np.ndarray | None:
    """A driver's score with whole-raster numpy (the formulas before the strips)."""
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    cell = (30.0, 30.0)
    scale = sc.config.growth.suitability.distance_scale_m
    if name.startswith("dist_"):
        key = name[5:]
        if key == "urban" or key in sc.classes.urban_types:
            mask = sc.classes.is_role(lu, key) & inside
        elif {"roads": "roads", "rail": "rail", "stations": "stations", "centres": "centres"}.get(key) in ds:
            mask = np.asarray(ds[key].values, dtype=bool)
        else:
            return None
        return suitability.distance_score(_scipy(mask, cell) if mask.any() else np.full(lu.shape, np.inf, np.float32),
                                          scale_m=scale)
    if name not in ds:
        return None
    a = np.asarray(ds[name].values, dtype=np.float32)
    if name == "slope":
        s = np.nan_to_num(a, nan=suitability.MAX_SLOPE_DEG)
        return np.clip(1.0 - s / np.float32(suitability.MAX_SLOPE_DEG), 0.0, 1.0).astype(np.float32)
    vals = a[inside & np.isfinite(a)]
    if vals.size == 0:
        score = np.zeros_like(a)
    elif vals.max() <= vals.min():
        score = np.ones_like(a)
    else:
        lo, hi = float(vals.min()), float(vals.max())
        score = np.nan_to_num((a - lo) / (hi - lo), nan=0.0).astype(np.float32)
    return (1.0 - score).astype(np.float32) if name == "elevation" else score


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), rows=st.integers(1, 24), cols=st.integers(1, 24), strip_cells=st.integers(1, 90),
       holes=st.sampled_from(["none", "nan", "all_nan", "constant"]))
def test_scores_and_suitability_are_the_same_whatever_the_strip_height(seed, rows, cols, strip_cells, holes) -> None:
    """Masks and scores are built strip by strip (``landuse.core.strips.STRIP_CELLS`` cells a strip): each driver's score
    is the whole-raster formula's bit for bit (the min-max range is the whole raster's), and the suitability
    (linear and from rasters) is the same for any strip height."""
    import landuse.io.rasters

    ds = _driver_landscape(seed, rows, cols)
    rng = np.random.default_rng(seed + 7)
    for name in ("slope", "elevation"):
        a = ds[name].values
        if holes == "nan":
            a[rng.random(a.shape) < 0.3] = np.nan
        elif holes == "all_nan":
            a[...] = np.nan
        elif holes == "constant":
            a[...] = 12.5
    ds["population"] = (("y", "x"), (rng.random((rows, cols)) * 1e4).astype(np.float32))  # a plain min-max driver
    for t in ("residential", "industrial", "commercial"):
        ds[f"suitability_{t}"] = (("y", "x"), np.where(rng.random((rows, cols)) < 0.2, np.nan,
                                                      rng.normal(0.5, 0.5, (rows, cols))).astype(np.float32))
    sc = scenario(suitability={"weights": WEIGHTS})
    lu = ds["landuse"].values
    whole = {m: compute_suitability(ds, sc, landuse=lu, method=m).values for m in ("linear", "raster")}
    old = landuse.core.strips.STRIP_CELLS
    landuse.core.strips.STRIP_CELLS = strip_cells
    try:
        for name in [*WEIGHTS, "dist_industrial", "dist_missing", "population", "other"]:
            got, want = suitability.driver_score(ds, sc, name, landuse=lu), _whole_score(ds, sc, name, lu)
            assert (got is None) == (want is None), name
            if got is not None:
                _same_bits(got, want)
        for m in ("linear", "raster"):
            _same_bits(compute_suitability(ds, sc, landuse=lu, method=m).values, whole[m])
    finally:
        landuse.core.strips.STRIP_CELLS = old
