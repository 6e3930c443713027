"""The zone table's integer counting against a slow float reference (same table bit for bit).

``_reference_zone_table`` is the straightforward version: one float64 ``np.bincount`` over the
whole raster per mask and per mean. :func:`landuse.allocation.zone_stats.zone_table` counts whole cells as
integers (one class x study-area table filled slice by slice, a compact key of developable
cells) and reads only the cells a mean needs; the results must not differ in any bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import landuse.allocation.model as model
import landuse.allocation.zone_stats as zone_stats
from landuse.allocation.pieces import BAND_NEAR, N_BANDS, cell_pieces, source_classes
from landuse.allocation.zone_stats import zone_table
from landuse.core.classes import default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.landscape import cell_area_ha, cell_sizes, new_landscape
from landuse.surfaces.constraints import land_area_mask, open_space_mask, protected_open_space
from landuse.surfaces.suitability import compute_suitability, distance_to

CODES = [c.code for c in default_scheme()]


def _reference_zone_table(ds, scenario, zones: np.ndarray) -> pd.DataFrame:
    """Per-zone sums and means with one float64 bincount over every cell per quantity."""
    classes = scenario.classes
    pol = scenario.config.policy
    lu = np.asarray(ds["landuse"].values, dtype=np.uint8)
    z = np.asarray(zones, dtype=np.int64)
    n = int(z.max(initial=0))
    zf = z.ravel()
    cell_ha = cell_area_ha(ds)
    include_water = bool(pol.open_space_quota.include_water) if pol.open_space_quota else False

    def per_zone(w: np.ndarray) -> np.ndarray:
        return np.bincount(zf, weights=np.asarray(w, dtype=np.float64).ravel(), minlength=n + 1)[1:]

    out = {}
    land = land_area_mask(ds, classes, include_water=include_water, landuse=lu)
    out["land_ha"] = per_zone(land) * cell_ha
    space = open_space_mask(lu, classes, include_water=include_water, protected=protected_open_space(ds, scenario))
    out["open_space_ha"] = per_zone(space & land & (z > 0)) * cell_ha
    urban = classes.is_role(lu, "urban") & (z > 0)
    out["urban_ha"] = per_zone(urban) * cell_ha
    for t in classes.urban_types:
        out[f"{t}_ha"] = per_zone(classes.is_role(lu, t) & (z > 0)) * cell_ha
    suit = np.asarray(compute_suitability(ds, scenario, landuse=lu).values, dtype=np.float32)
    sources = source_classes(classes)
    ns = len(sources)
    cp = cell_pieces(ds, scenario, lu, z, suit)
    dev = cp.source >= 0
    key = ((zf * ns + cp.source.ravel()) * N_BANDS + cp.band.ravel())[dev.ravel()]
    counts = np.bincount(key, minlength=(n + 1) * ns * N_BANDS).reshape(n + 1, ns, N_BANDS)[1:]
    for i, (name, _, _) in enumerate(sources):
        out[f"cap_{name}_ha"] = counts[:, i].sum(axis=1) * cell_ha
        if cp.tod_radius_m is not None:
            out[f"tod_{name}_ha"] = counts[:, i, BAND_NEAR::2].sum(axis=1) * cell_ha
    if cp.soft_bands:
        for m in np.flatnonzero(counts.sum(axis=(0, 1))):
            for i, (name, _, _) in enumerate(sources):
                out[f"band{m}_{name}_ha"] = counts[:, i, m] * cell_ha
    use_dev = per_zone(dev) > 0

    def zone_mean(values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(v) & (z > 0)
        vv = np.where(finite, v, 0.0)
        s_dev, c_dev = per_zone(np.where(dev, vv, 0.0)), per_zone(dev & finite)
        s_all, c_all = per_zone(vv), per_zone(finite)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(use_dev, s_dev / c_dev, s_all / c_all)
        return np.where(np.where(use_dev, c_dev, c_all) > 0, m, np.nan)

    for k, t in enumerate(classes.urban_types):
        out[f"suit_{t}"] = np.nan_to_num(zone_mean(suit[k]), nan=0.0)
    out["dist_urban_m"] = zone_mean(distance_to(urban, cell=cell_sizes(ds)))
    for col, layer in (("dist_station_m", "stations"), ("dist_centre_m", "centres")):
        out[col] = zone_mean(distance_to(np.asarray(ds[layer].values, dtype=bool), cell=cell_sizes(ds))) \
            if layer in ds else np.nan
    return pd.DataFrame({k: (np.full(n, v) if np.isscalar(v) else v) for k, v in out.items()})


def _case(seed: int, shape: tuple[int, int], *, protected: bool, include_water: bool, greenbelt: str,
          stations: bool, nodata_share: float):
    rng = np.random.default_rng(seed)
    lu = rng.choice(np.array(CODES, dtype=np.uint8), size=shape)
    lu[rng.random(shape) < nodata_share] = 255
    layers = {"landuse": lu, "cities": (np.arange(shape[1])[None, :] * 3 // shape[1] + 1).repeat(shape[0], 0),
              "red_line": rng.random(shape) < 0.1, "greenbelt": rng.random(shape) < 0.3,
              "centres": rng.random(shape) < 0.02}
    if stations:
        layers["stations"] = rng.random(shape) < 0.03
    if protected:
        layers["protected_open_space"] = rng.random(shape) < 0.2
    ds = new_landscape(layers, crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 30 * shape[0]))
    policy = {"greenbelt": {"mode": greenbelt, "strength": 0.5},
              "open_space_quota": {"share": 0.1, "include_water": include_water}}
    if stations:
        policy["tod"] = {"radius_m": 90, "share": 0.2}
    sc = scenario_from_dict({"name": "zt", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
                             "policy": policy})
    zones = rng.integers(0, max(2, shape[0] * shape[1] // 6), size=shape)  # zone 0: outside every zone
    zones[rng.random(shape) < 0.3] = 0
    zones[0, 0] = max(int(zones.max()), 1)  # some ids may hold no cell at all
    return ds, sc, zones


def _assert_same(new: pd.DataFrame, ref: pd.DataFrame) -> None:
    for col in ref.columns:
        a = new[col].to_numpy(dtype=np.float64)
        b = ref[col].to_numpy(dtype=np.float64)
        assert a.tobytes() == b.tobytes(), col  # bit for bit, NaN where the reference has NaN
    assert set(new.columns) - set(ref.columns) <= {"zone", "city", "cells", "area_ha"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 14), cols=st.integers(1, 14),
       protected=st.booleans(), include_water=st.booleans(), greenbelt=st.sampled_from(["none", "soft", "hard"]),
       stations=st.booleans(), nodata_share=st.sampled_from([0.0, 0.2]), chunk=st.integers(1, 64),
       strip=st.integers(1, 120))
def test_zone_table_equals_float_reference(monkeypatch, seed, rows, cols, protected, include_water, greenbelt,
                                           stations, nodata_share, chunk, strip):
    import landuse.core.strips

    ds, sc, zones = _case(seed, (rows, cols), protected=protected, include_water=include_water,
                          greenbelt=greenbelt, stations=stations, nodata_share=nodata_share)
    ref = _reference_zone_table(ds, sc, zones)  # every mask in one strip
    with monkeypatch.context() as mp:
        mp.setattr(zone_stats, "_CHUNK_CELLS", chunk)  # the class table filled in slices of any size
        mp.setattr(landuse.core.strips, "STRIP_CELLS", strip)  # masks, constraint factor and scores in strips of any height
        new = zone_table(ds, sc, zones=zones)
    assert len(new) == len(ref)
    _assert_same(new, ref)


def test_zone_without_developable_cells_takes_the_mean_of_all_its_cells():
    ds, sc, _ = _case(7, (6, 6), protected=False, include_water=False, greenbelt="none", stations=True,
                      nodata_share=0.0)
    lu = np.asarray(ds["landuse"].values).copy()
    water = default_scheme().codes_with_role("water")[0]
    lu[:, :3] = water  # zone 1: water only, nothing developable
    ds["landuse"].values[:] = lu
    zones = np.ones((6, 6), dtype=np.int64)
    zones[:, 3:] = 2
    zt = zone_table(ds, sc, zones=zones)
    ref = _reference_zone_table(ds, sc, zones)
    assert zt.cap_farmland_ha[0] == 0 and np.isfinite(zt.dist_station_m[0])
    _assert_same(zt, ref)


@pytest.mark.parametrize("chunk", [1, 5, 1 << 22])
def test_class_counts_are_integers_per_zone_code_and_study_bit(chunk, monkeypatch):
    monkeypatch.setattr(zone_stats, "_CHUNK_CELLS", chunk)
    zf = np.array([0, 1, 1, 2, 2, 2, 1])
    lu = np.array([3, 3, 7, 7, 7, 255, 3], dtype=np.uint8)
    study = np.array([1, 1, 1, 0, 1, 0, 0], dtype=bool)
    cc = zone_stats._ClassCounts(zf, lu, study, 3)
    assert cc.tab.dtype == np.int64
    assert cc.cells([3]).tolist() == [2, 0, 0]
    assert cc.cells([3], study=True).tolist() == [1, 0, 0]
    assert cc.cells([7, 255]).tolist() == [1, 3, 0]
    assert cc.cells([7, 9], study=True).tolist() == [1, 1, 0]  # code 9 absent: reads 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_rows=st.integers(1, 12), n_cols=st.integers(1, 12),
       nnz=st.integers(0, 60), sort_rows=st.booleans())
def test_csr_from_rows_equals_the_coo_constructor(seed, n_rows, n_cols, nnz, sort_rows):
    from scipy import sparse

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_rows, nnz)
    if sort_rows:
        rows = np.sort(rows)
    cols = rng.integers(0, n_cols, nnz)  # duplicates and unsorted columns within a row included
    vals = rng.normal(size=nnz)
    a = model._csr_from_rows(rows.copy(), cols.copy(), vals.copy(), (n_rows, n_cols))  # it may reuse its arrays
    b = sparse.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))
    for name in ("indptr", "indices", "data"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
    assert a.has_canonical_format == b.has_canonical_format


def test_build_model_matrix_is_the_coo_matrix(monkeypatch):
    """The model's matrix, built from a row pointer, holds the very arrays of the COO constructor."""
    from scipy import sparse

    ds, sc, zones = _case(11, (12, 12), protected=False, include_water=False, greenbelt="soft", stations=True,
                          nodata_share=0.0)
    zt = zone_table(ds, sc, zones=zones)
    m = model.build_model(zt, sc, 2030, coordination="city")
    assert m.A.nnz > 0
    monkeypatch.setattr(model, "_csr_from_rows", lambda r, c, v, shape: sparse.csr_matrix((v, (r, c)), shape=shape))
    ref = model.build_model(zt, sc, 2030, coordination="city")
    for name in ("indptr", "indices", "data"):
        assert getattr(m.A, name).tobytes() == getattr(ref.A, name).tobytes(), name


def test_first_rows_is_the_row_slice():
    from scipy import sparse

    rng = np.random.default_rng(5)
    A = sparse.random(9, 7, density=0.4, format="csr", random_state=rng)
    for n in range(10):
        v = model._first_rows(A, n)
        ref = A[:n]
        for name in ("indptr", "indices", "data"):
            assert getattr(v, name).tobytes() == getattr(ref, name).tobytes(), (n, name)
        x = rng.normal(size=7)
        assert (v @ x).tobytes() == (ref @ x).tobytes()
