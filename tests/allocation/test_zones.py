"""Zone numbering: the counting path gives exactly what sorting the keys (np.unique) gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from landuse.allocation.zones import _number_keys, block_ids, zone_grid
from landuse.core.landscape import new_landscape


def np_zone_grid(ds, block_size_m: float) -> tuple[np.ndarray, pd.DataFrame]:
    """Slow twin: zones and table by np.unique over (block, city) keys."""
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    city = np.asarray(ds["cities"].values, dtype=np.int64) if "cities" in ds else np.zeros(inside.shape, np.int64)
    n_city = int(city.max(initial=0)) + 1
    block = block_ids(ds, block_size_m=block_size_m)
    uniq, inverse, counts = np.unique((block * n_city + city)[inside], return_inverse=True, return_counts=True)
    zones = np.zeros(inside.shape, dtype=np.int32)
    zones[inside] = inverse + 1
    cols = inside.shape[1]
    b = max(1, round(block_size_m / 100))
    nbx = -(-cols // b)
    table = pd.DataFrame({"zone": np.arange(1, uniq.size + 1, dtype=np.int32),
                          "city": (uniq % n_city).astype(np.int32),
                          "block_row": (uniq // n_city // nbx).astype(np.int32),
                          "block_col": (uniq // n_city % nbx).astype(np.int32),
                          "cells": counts.astype(np.int64)})
    return zones, table


@st.composite
def _regions(draw):
    rows, cols = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    n_city = draw(st.integers(0, 6))
    cities = draw(st.lists(st.integers(0, n_city), min_size=rows * cols, max_size=rows * cols))
    outside = draw(st.lists(st.booleans(), min_size=rows * cols, max_size=rows * cols))
    lu = np.where(np.array(outside).reshape(rows, cols), 255, 4).astype(np.uint8)
    layers = {"landuse": lu}
    if n_city:
        layers["cities"] = np.array(cities, dtype=np.int32).reshape(rows, cols)
    ds = new_landscape(layers, crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 100 * rows))
    return ds, draw(st.sampled_from([100, 200, 300, 500, 1000, 5000]))


@settings(max_examples=80, deadline=None)
@given(_regions())
def test_zone_grid_matches_the_sorting_twin(case) -> None:
    ds, block_m = case
    zg = zone_grid(ds, block_size_m=block_m)
    zones, table = np_zone_grid(ds, block_m)
    assert zg.zones.dtype == np.int32
    assert np.array_equal(zg.zones, zones)
    pd.testing.assert_frame_equal(zg.table, table)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5000), max_size=300), st.integers(0, 3))
def test_number_keys_counting_and_sorting_agree(keys, spread) -> None:
    k = np.array(keys, dtype=np.int64) * (1 + 10_000 ** spread)  # spread: a key range far beyond the counting limit
    uniq, number, counts = _number_keys(k, int(k.max(initial=0)) + 1)
    u, inv, c = np.unique(k, return_inverse=True, return_counts=True)
    assert np.array_equal(uniq, u) and np.array_equal(number, inv + 1) and np.array_equal(counts, c)
    assert number.dtype == np.int32
