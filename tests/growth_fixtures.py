"""Small random landscapes and scenarios for the growth-engine tests (import as ``from growth_fixtures import ...``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine

from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.landscape import new_landscape

CRS = "EPSG:32651"
SCHEME = default_scheme()
RES, IND, COM = SCHEME.urban_codes
FARM = SCHEME.codes_with_role("farmland")[0]
FOREST = SCHEME.codes_with_role("open_space")[0]
WATER = SCHEME.codes_with_role("water")[0]
BARE = SCHEME.codes_with_role("other")[0]
NODATA = SCHEME.nodata


def transform(cell: float = 30.0, rows: int = 10) -> Affine:
    return Affine(cell, 0.0, 500_000.0, 0.0, -cell, 3_000_000.0 + rows * cell)


def random_landscape(seed: int, rows: int, cols: int, *, zone_block: int = 6, urban_share: float = 0.08,
                     nodata_share: float = 0.03, layers: bool = True) -> xr.Dataset:
    """Random land use of the default scheme with urban seeds, masks and a block zone raster."""
    rng = np.random.default_rng(seed)
    lu = rng.choice(np.array([FARM, FARM, FARM, FOREST, BARE, WATER], dtype=np.uint8), size=(rows, cols))
    urban = rng.random((rows, cols)) < urban_share
    lu[urban] = rng.choice(np.array([RES, IND, COM], dtype=np.uint8), size=int(urban.sum()))
    lu[rng.random((rows, cols)) < nodata_share] = NODATA
    data: dict[str, np.ndarray] = {"landuse": lu}
    if layers:
        data["red_line"] = rng.random((rows, cols)) < 0.1
        data["permanent_farmland"] = (rng.random((rows, cols)) < 0.15) & (lu == FARM)
        data["greenbelt"] = rng.random((rows, cols)) < 0.1
        data["roads"] = rng.random((rows, cols)) < 0.05
    zr = np.arange(rows)[:, None] // zone_block
    zc = np.arange(cols)[None, :] // zone_block
    nzc = -(-cols // zone_block)
    zones = (zr * nzc + zc + 1).astype(np.int32)
    zones[lu == NODATA] = 0
    data["zones"] = zones
    return new_landscape(data, crs=CRS, transform=transform(rows=rows))


def scenario(*, conversion: dict[str, list[str]] | None = None, periods: tuple[int, ...] = (2020, 2030),
             policy: dict | None = None, **growth):
    """A validated scenario with growth options (no files needed)."""
    g = dict(growth)
    if conversion is not None:
        g["conversion"] = conversion
    g.setdefault("suitability", {"weights": {"dist_urban": 1.0}})
    return scenario_from_dict({"name": "growth-test", "layers": {"landuse": "landuse.tif"}, "periods": list(periods),
                               "policy": policy or {}, "growth": g})


def targets(years: list[int], zones: np.ndarray, cells: dict[str, int], *, rng=None,
            spread: bool = False) -> pd.DataFrame:
    """One row per (year, zone, type): ``cells[type]`` each (random 0..2x when ``spread``)."""
    rows = []
    for y in years:
        for z in np.unique(zones[zones > 0]).tolist():
            for t in URBAN_TYPES:
                c = cells.get(t, 0)
                if spread and rng is not None:
                    c = int(rng.integers(0, 2 * c + 1))
                if c:
                    rows.append((y, z, t, c))
    return pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])


def patch_count(mask: np.ndarray) -> int:
    """Number of 8-connected patches of a Boolean mask."""
    from scipy import ndimage

    return int(ndimage.label(mask, structure=np.ones((3, 3), dtype=int))[1])


def assert_same(a, b) -> None:
    """Two growth results are the same: maps, counts, run scores, representative run, shortfall."""
    assert list(a.landuse) == list(b.landuse)
    for y in a.landuse:
        assert a.landuse[y].dtype == b.landuse[y].dtype
        np.testing.assert_array_equal(a.landuse[y].values, b.landuse[y].values, err_msg=f"landuse {y}")
        assert a.landuse[y].attrs == b.landuse[y].attrs
    assert a.counts.dtype == b.counts.dtype
    np.testing.assert_array_equal(a.counts.values, b.counts.values)
    np.testing.assert_array_equal(a.run_scores, b.run_scores)
    assert a.representative_run == b.representative_run
    assert a.shortfall.equals(b.shortfall)
