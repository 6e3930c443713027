"""The compiled passes of the zones, the cell pieces and the zone table against plain numpy twins.

Each twin below is the straightforward numpy definition (whole-raster int64 keys, boolean masks,
``np.unique`` / ``np.bincount`` / ``np.where``) the compiled pass replaced; they must agree in every
value, on small random rasters with non-square cells, zone 0, nodata, several cities and every
band policy.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landuse.allocation.handoff import unit_raster
from landuse.allocation.pieces import BAND_GREENBELT, BAND_NEAR, BAND_OUTSIDE, N_BANDS, cell_pieces, source_classes
from landuse.allocation.zones import zone_grid
from landuse.core.classes import default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.landscape import cell_sizes, new_landscape
from landuse.evaluation.metrics_kernels import dev_zone_sums, piece_counts
from landuse.surfaces.constraints import constraint_factor, source_allowed_lut
from landuse.surfaces.suitability import distance_to

CODES = [c.code for c in default_scheme()]
_SLOW = [HealthCheck.too_slow]


# --------------------------------------------------------------------------- numpy twins


def np_zone_grid(ds, block_size_m: float) -> tuple[np.ndarray, pd.DataFrame]:
    """Zones and table by ``np.unique`` over int64 ``(block, city)`` keys of every cell."""
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    rows, cols = inside.shape
    city = np.asarray(ds["cities"].values, dtype=np.int64) if "cities" in ds else np.zeros((rows, cols), np.int64)
    dy, dx = cell_sizes(ds)
    by, bx = max(1, round(block_size_m / dy)), max(1, round(block_size_m / dx))
    nbx = -(-cols // bx)
    block = (np.arange(rows)[:, None] // by) * nbx + np.arange(cols)[None, :] // bx
    n_city = int(city.max(initial=0)) + 1
    uniq, inverse, counts = np.unique((block * n_city + city)[inside], return_inverse=True, return_counts=True)
    zones = np.zeros((rows, cols), dtype=np.int32)
    zones[inside] = inverse + 1
    blk = uniq // n_city
    table = pd.DataFrame({"zone": np.arange(1, uniq.size + 1, dtype=np.int32),
                          "city": (uniq % n_city).astype(np.int32),
                          "block_row": (blk // nbx).astype(np.int32),
                          "block_col": (blk % nbx).astype(np.int32),
                          "cells": counts.astype(np.int64)})
    return zones, table


def np_cell_pieces(ds, scenario, lu: np.ndarray, zones: np.ndarray, suit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source index (int64) and band bits of every cell with whole-raster numpy temporaries."""
    pol = scenario.config.policy
    src_index = np.full(256, -1, dtype=np.int64)
    for i, (_, code, _) in enumerate(source_classes(scenario.classes)):
        src_index[code] = i
    source = src_index[lu]
    ok = (source >= 0) & (zones > 0) & (constraint_factor(ds, scenario, landuse=lu) > 0)
    lut = source_allowed_lut(scenario)
    positive = np.zeros(lu.shape, dtype=bool)
    for k in range(lut.shape[0]):
        positive |= lut[k][lu] & (suit[k] > 0)
    source = np.where(ok & positive, source, -1)
    band = np.zeros(lu.shape, dtype=np.uint8)
    if pol.tod is not None and "stations" in ds:
        near = distance_to(np.asarray(ds["stations"].values, dtype=bool), cell=cell_sizes(ds)) <= pol.tod.radius_m
        band |= near.astype(np.uint8) * BAND_NEAR
    if pol.greenbelt.mode == "soft" and pol.greenbelt.strength > 0 and "greenbelt" in ds:
        band |= np.asarray(ds["greenbelt"].values, dtype=bool).astype(np.uint8) * BAND_GREENBELT
    gbd = pol.growth_boundary
    if gbd.mode == "soft" and gbd.outside_factor < 1 and "growth_boundary" in ds:
        band |= (~np.asarray(ds["growth_boundary"].values, dtype=bool)).astype(np.uint8) * BAND_OUTSIDE
    return source, band


def np_dev_zone_sums(v: np.ndarray, zones: np.ndarray, source: np.ndarray, whole_zone: np.ndarray, n: int):
    """Per layer: float64 ``np.bincount`` sums and counts over the finite values of the cells that count."""
    counted = (source >= 0) | whole_zone[zones]
    s, c = [], []
    for layer in v:
        m = counted & np.isfinite(layer)
        s.append(np.bincount(zones[m], weights=layer[m].astype(np.float64), minlength=n + 1))
        c.append(np.bincount(zones[m], minlength=n + 1))
    return np.array(s).reshape(len(v), n + 1), np.array(c).reshape(len(v), n + 1)


# --------------------------------------------------------------------------- zones


@st.composite
def _regions(draw):
    rows, cols = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    dy, dx = draw(st.sampled_from([(100, 100), (100, 40), (30, 70)]))  # non-square cells included
    n_city = draw(st.integers(0, 5))
    ids = draw(st.sampled_from(["small", "sparse", "huge"]))
    cities = np.array(draw(st.lists(st.integers(0, n_city), min_size=rows * cols, max_size=rows * cols)))
    if ids == "sparse":
        cities = cities * 1013  # ids like administrative codes: more keys than cells, still counted
    elif ids == "huge":
        cities = cities * 400_000_003  # a key range far beyond any count table: the sorting path
    outside = np.array(draw(st.lists(st.booleans(), min_size=rows * cols, max_size=rows * cols)))
    lu = np.where(outside.reshape(rows, cols), 255, 4).astype(np.uint8)
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=Affine(dx, 0, 0, 0, -dy, dy * rows))
    if n_city:  # the ids in a dtype of their own (new_landscape would make them int32)
        dtype = draw(st.sampled_from([np.int32, np.int64, np.uint16, np.float32])) if ids != "huge" else np.int64
        ds["cities"] = ds["landuse"].copy(data=cities.reshape(rows, cols).astype(dtype))
    return ds, draw(st.sampled_from([40, 100, 200, 300, 1000, 5000]))


@settings(max_examples=150, deadline=None, suppress_health_check=_SLOW)
@given(_regions())
def test_zone_grid_equals_the_numpy_twin(case) -> None:
    ds, block_m = case
    zg = zone_grid(ds, block_size_m=block_m)
    zones, table = np_zone_grid(ds, block_m)
    assert zg.zones.dtype == np.int32
    assert zg.zones.tobytes() == zones.tobytes()
    pd.testing.assert_frame_equal(zg.table, table, check_exact=True)


def test_zone_grid_rejects_negative_ids_even_outside_the_study_area() -> None:
    lu = np.full((3, 3), 4, dtype=np.uint8)
    lu[0, 0] = 255
    cities = np.ones((3, 3), dtype=np.int32)
    cities[0, 0] = -1
    ds = new_landscape({"landuse": lu, "cities": cities}, crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 300))
    try:
        zone_grid(ds, block_size_m=200)
    except ValueError as exc:
        assert "negative" in str(exc)
    else:
        raise AssertionError("negative city ids accepted")


# --------------------------------------------------------------------------- cell pieces


def _case(seed: int, shape: tuple[int, int], cell: tuple[int, int], *, greenbelt: str, boundary: str,
          stations: bool, protected: bool, nodata_share: float, conversion: bool):
    rng = np.random.default_rng(seed)
    lu = rng.choice(np.array(CODES, dtype=np.uint8), size=shape)
    lu[rng.random(shape) < nodata_share] = 255
    layers = {"landuse": lu, "cities": (np.arange(shape[1])[None, :] * 3 // shape[1] + 1).repeat(shape[0], 0),
              "red_line": rng.random(shape) < 0.1, "permanent_farmland": rng.random(shape) < 0.1,
              "greenbelt": rng.random(shape) < 0.3, "growth_boundary": rng.random(shape) < 0.6,
              "centres": rng.random(shape) < 0.02}
    if stations:
        layers["stations"] = rng.random(shape) < 0.03
    if protected:
        layers["protected_open_space"] = rng.random(shape) < 0.2
    dy, dx = cell
    ds = new_landscape(layers, crs="EPSG:32651", transform=Affine(dx, 0, 0, 0, -dy, dy * shape[0]))
    policy = {"greenbelt": {"mode": greenbelt, "strength": float(rng.choice([0.5, 1.0]))},
              "growth_boundary": {"mode": boundary, "outside_factor": float(rng.choice([0.0, 0.3]))}}
    if stations:
        policy["tod"] = {"radius_m": 90, "share": 0.2}
    cfg = {"name": "zk", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030], "policy": policy}
    if conversion:  # types that may take only some sources
        cfg["growth"] = {"conversion": {"residential": ["farmland", "other"], "industrial": ["farmland"],
                                        "commercial": ["other", "open_space"]}}
    sc = scenario_from_dict(cfg)
    zones = rng.integers(0, max(2, shape[0] * shape[1] // 5), size=shape).astype(np.int32)
    zones[rng.random(shape) < 0.3] = 0  # zone 0: outside every zone
    suit = rng.random((len(sc.urban_types), *shape)).astype(np.float32)
    suit[rng.random(suit.shape) < 0.3] = 0.0
    suit[rng.random(suit.shape) < 0.05] = np.nan
    return ds, sc, lu, zones, suit


_CASES = dict(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 14), cols=st.integers(1, 14),
              cell=st.sampled_from([(30, 30), (20, 45)]), greenbelt=st.sampled_from(["none", "soft", "hard"]),
              boundary=st.sampled_from(["none", "soft", "hard"]), stations=st.booleans(), protected=st.booleans(),
              nodata_share=st.sampled_from([0.0, 0.25]), conversion=st.booleans())


@settings(max_examples=120, deadline=None, suppress_health_check=_SLOW)
@given(**_CASES)
def test_cell_pieces_equal_the_numpy_twin(seed, rows, cols, cell, greenbelt, boundary, stations, protected,
                                          nodata_share, conversion) -> None:
    ds, sc, lu, zones, suit = _case(seed, (rows, cols), cell, greenbelt=greenbelt, boundary=boundary,
                                    stations=stations, protected=protected, nodata_share=nodata_share,
                                    conversion=conversion)
    want_source, want_band = np_cell_pieces(ds, sc, lu, zones, suit)
    for z in (zones, zones.astype(np.int64)):  # int32 (the pipeline, the zone table) or int64 zones
        cp = cell_pieces(ds, sc, lu, z, suit)
        assert cp.source.dtype == np.int8 and cp.source.shape == lu.shape
        assert np.array_equal(cp.source.astype(np.int64), want_source)
        assert cp.band.dtype == np.uint8 and cp.band.tobytes() == want_band.tobytes()
        assert cp.soft_bands == ((greenbelt == "soft" and sc.config.policy.greenbelt.strength > 0)
                                 or (boundary == "soft" and sc.config.policy.growth_boundary.outside_factor < 1))


@settings(max_examples=80, deadline=None, suppress_health_check=_SLOW)
@given(**_CASES, whole=st.floats(0, 1))
def test_piece_counts_and_zone_sums_equal_bincount(seed, rows, cols, cell, greenbelt, boundary, stations, protected,
                                                   nodata_share, conversion, whole) -> None:
    ds, sc, lu, zones, suit = _case(seed, (rows, cols), cell, greenbelt=greenbelt, boundary=boundary,
                                    stations=stations, protected=protected, nodata_share=nodata_share,
                                    conversion=conversion)
    cp = cell_pieces(ds, sc, lu, zones, suit)
    n, ns = int(zones.max()), len(source_classes(sc.classes))
    zf, src, band = zones.ravel(), cp.source.ravel(), cp.band.ravel()
    dev = src >= 0
    key = ((zf.astype(np.int64) * ns + src) * N_BANDS + band)[dev]
    want = np.bincount(key, minlength=(n + 1) * ns * N_BANDS).reshape(n + 1, ns, N_BANDS)
    got = piece_counts(zf, src, band, n, ns, N_BANDS)
    assert got.dtype == np.int64 and np.array_equal(got, want)

    rng = np.random.default_rng(seed)
    whole_zone = np.concatenate([[False], rng.random(n) < whole])
    v = np.concatenate([suit.reshape(len(suit), -1),
                        (rng.random((1, zf.size)) * 10.0 ** rng.integers(-3, 6, zf.size)).astype(np.float32)])
    v[-1, rng.random(zf.size) < 0.1] = np.inf
    s, c = dev_zone_sums(v, zf, src, whole_zone, n)
    ws, wc = np_dev_zone_sums(v, zf, src, whole_zone, n)
    assert s.tobytes() == ws.tobytes() and np.array_equal(c, wc)


# --------------------------------------------------------------------------- unit raster


@settings(max_examples=100, deadline=None, suppress_health_check=_SLOW)
@given(**_CASES, share=st.floats(0.2, 1))
def test_unit_raster_equals_a_sorted_lookup(seed, rows, cols, cell, greenbelt, boundary, stations, protected,
                                            nodata_share, conversion, share) -> None:
    ds, sc, lu, zones, suit = _case(seed, (rows, cols), cell, greenbelt=greenbelt, boundary=boundary,
                                    stations=stations, protected=protected, nodata_share=nodata_share,
                                    conversion=conversion)
    cp = cell_pieces(ds, sc, lu, zones, suit)
    names = [name for name, _, _ in source_classes(sc.classes)]
    groups = [tuple(names[:2]), tuple(names[2:])]  # two source groups
    group_of = {name: g for g, cls in enumerate(groups) for name in cls}
    # units: some (zone, group, band) present among the cells, some not
    rng = np.random.default_rng(seed)
    dev = np.flatnonzero(cp.source.ravel() >= 0)
    cand = {(int(zones.ravel()[i]), group_of[names[cp.source.ravel()[i]]], int(cp.band.ravel()[i])) for i in dev}
    cand |= {(int(rng.integers(1, zones.max() + 2)), int(rng.integers(0, 2)), int(rng.integers(0, 8))) for _ in range(3)}
    keep = sorted(k for k in cand if rng.random() < share)
    units = pd.DataFrame({"unit": np.arange(1, len(keep) + 1), "zone": [k[0] for k in keep],
                          "group": [k[1] for k in keep],
                          "near_station": [bool(k[2] & BAND_NEAR) for k in keep],
                          "greenbelt": [bool(k[2] & BAND_GREENBELT) for k in keep],
                          "outside_boundary": [bool(k[2] & BAND_OUTSIDE) for k in keep]})
    alloc = SimpleNamespace(units=units, group_classes=groups)
    got = unit_raster(ds, sc, alloc, landuse=lu, zones=zones, suitability=suit, pieces=cp)
    want = np.zeros(lu.shape, dtype=np.int32)
    lookup = {k: u for u, k in enumerate(keep, start=1)}
    for i in dev:
        r, c = divmod(int(i), lu.shape[1])
        want[r, c] = lookup.get((int(zones[r, c]), group_of[names[cp.source[r, c]]], int(cp.band[r, c])), 0)
    assert got.dtype == np.int32 and got.tobytes() == want.tobytes()
