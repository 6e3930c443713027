"""Allocation zones: administrative units crossed with square grid blocks.

Zone ids are ``1..Z`` (0 = outside the study area), numbered in block-major order
(block row, block column, then city id), so they are stable for a given grid, city
layer and block size. Both the LP allocator (how much per zone) and the growth engine
(which cells in a zone) use the same zone raster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.errors import ArgumentError
from landuse.core.landscape import cell_sizes
from landuse.core.store import store_empty, store_zeros


@dataclass(frozen=True)
class ZoneGrid:
    """A zone raster and one row per zone.

    Attributes
    ----------
    zones : ndarray of int32, shape (rows, cols)
        Zone id per cell, 0 outside the study area.
    table : pandas.DataFrame
        Columns ``zone, city, block_row, block_col, cells``, one row per zone, ordered by zone.
    block_cells : int
        Block edge in cells.
    """

    zones: np.ndarray
    table: pd.DataFrame
    block_cells: int

    @property
    def n_zones(self) -> int:
        """Number of zones (rows of ``table``)."""
        return len(self.table)


_CITY_DTYPES = tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32))
"""Administrative id dtypes read as they are; any other is cast to int64 first, as before."""


def _block_cells(ds: xr.Dataset, block_size_m: float) -> tuple[int, int]:
    """Block height and width in cells (each at least one): non-square cells keep their own sizes."""
    dy, dx = cell_sizes(ds)
    return max(1, round(block_size_m / dy)), max(1, round(block_size_m / dx))


def block_ids(ds: xr.Dataset, *, block_size_m: float) -> np.ndarray:
    """Id (int64, row-major over blocks) of the ``block_size_m`` grid block of every cell.

    A block is ``round(block_size_m / height)`` rows by ``round(block_size_m / width)``
    columns (:func:`landuse.core.landscape.cell_sizes`), so it covers about the same metres
    along x and y whatever the cell shape.
    """
    rows, cols = ds["landuse"].shape
    by, bx = _block_cells(ds, block_size_m)
    nbx = -(-cols // bx)
    return (np.arange(rows)[:, None] // by) * nbx + (np.arange(cols)[None, :] // bx)


def _number_keys(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct ``keys`` ascending, each key's number 1.. in that order (int32) and the count of each.

    What ``np.unique(keys, return_inverse=True, return_counts=True)`` gives (numbers one higher), by
    counting over the key range ``0..n_keys-1`` instead of sorting, when that range is not much larger
    than the keys themselves; by sorting otherwise.
    """
    if n_keys <= max(4 * keys.size, 1 << 20):
        counts = np.bincount(keys, minlength=n_keys)
        present = counts > 0
        number = np.cumsum(present, dtype=np.int32)  # number of each key in ascending order
        uniq = np.flatnonzero(present)
        return uniq, number[keys], counts[uniq]
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return uniq, (inverse + 1).astype(np.int32), counts


def zone_grid(ds: xr.Dataset, *, block_size_m: float, admin: str = "cities") -> ZoneGrid:
    """Cross the administrative layer with square blocks of ``block_size_m``.

    Parameters
    ----------
    ds : xarray.Dataset
        The Landscape. Without an ``admin`` layer all cells belong to city 0.
    block_size_m : float
        Block edge in metres; rounded to a whole number of cells (at least one).
    admin : str
        Name of the administrative layer.

    Examples
    --------
    >>> from affine import Affine
    >>> from landuse.core.landscape import new_landscape
    >>> lu = np.full((4, 4), 4, dtype=np.uint8)
    >>> cities = np.array([[1, 1, 2, 2]] * 4)
    >>> ds = new_landscape({"landuse": lu, "cities": cities}, crs="EPSG:32651",
    ...                    transform=Affine(100, 0, 0, 0, -100, 400))
    >>> zg = zone_grid(ds, block_size_m=200)
    >>> zg.n_zones, zg.table.cells.tolist()
    (4, [4, 4, 4, 4])
    """
    rows, cols = ds["landuse"].shape
    by, b = _block_cells(ds, block_size_m)
    nbx = -(-cols // b)
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    city = np.asarray(ds[admin].values) if admin in ds else np.zeros((rows, cols), dtype=np.int32)
    if city.dtype not in _CITY_DTYPES:
        city = city.astype(np.int64)
    if city.dtype.kind == "i" and city.min(initial=0) < 0:
        raise ArgumentError(f"administrative layer {admin!r} holds negative ids")
    n_city = int(city.max(initial=0)) + 1
    n_keys = (-(-rows // by) * nbx if rows and cols else 1) * n_city
    n_inside = int(np.count_nonzero(inside))
    if n_keys <= max(4 * n_inside, 1 << 20):
        # compiled passes count every (block, city) key, then write the zone numbers:
        # no int64 raster of blocks or keys, no sort
        from landuse.evaluation.metrics_kernels import number_zone_keys

        zones = store_empty((rows, cols), np.int32)  # in the run's raster store, if one is active
        uniq, counts = number_zone_keys(inside, city, np.arange(cols, dtype=np.int64) // b, by, nbx, n_city, n_keys,
                                        zones)
    else:  # a key range far beyond the cells (sparse city ids): number the keys by sorting
        block = block_ids(ds, block_size_m=block_size_m)
        keys_in = (block.astype(np.int64) * n_city + city)[inside]
        del block
        uniq, zone_in, counts = _number_keys(keys_in, n_keys)
        zones = store_zeros((rows, cols), np.int32)
        zones[inside] = zone_in
    blk = uniq // n_city
    table = pd.DataFrame(
        {
            "zone": np.arange(1, uniq.size + 1, dtype=np.int32),
            "city": (uniq % n_city).astype(np.int32),
            "block_row": (blk // nbx).astype(np.int32),
            "block_col": (blk % nbx).astype(np.int32),
            "cells": counts.astype(np.int64),
        }
    )
    return ZoneGrid(zones=zones, table=table, block_cells=b)
