"""What a solved plan hands on: the growth engine's units (:func:`unit_raster`) and the next period's zone table.

:func:`unit_raster` maps every cell to its plan unit (zone, source group, band), the zones the growth engine
fills per unit; :func:`advance_zone_table` updates a zone table at zone level by an allocation, for planners
running the allocator alone over several periods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from landuse.allocation.model import _band_capacities, _source_columns
from landuse.allocation.pieces import (
    ALL_SOURCE_ROLES,
    BAND_GREENBELT,
    BAND_NEAR,
    BAND_OUTSIDE,
    N_BANDS,
    CellPieces,
    _flat,
    cell_pieces,
    source_classes,
)
from landuse.allocation.results import Allocation
from landuse.allocation.zones import ZoneGrid
from landuse.core.config import Scenario
from landuse.core.errors import LanduseError
from landuse.core.store import store_zeros


def unit_raster(landscape: xr.Dataset, scenario: Scenario, allocation: Allocation, *, landuse: np.ndarray,
                zones: ZoneGrid | np.ndarray, suitability: xr.DataArray | np.ndarray,
                pieces: CellPieces | None = None) -> np.ndarray:
    """The unit id (``allocation.units.unit``) of every cell, 0 where no unit holds the cell.

    Cells are matched to units by zone, source group and band (:func:`cell_pieces`, the
    definition the zone table counted the capacities with), so ``land use``, ``zones`` and
    ``suitability`` must be those the allocation's zone table was built from. The growth
    engine takes this raster as its zones and ``allocation.unit_targets`` as its targets:
    it then converts, per unit, exactly the cells the plan takes from that source, band
    and zone. ``pieces``, the :func:`cell_pieces` the zone table was given, saves computing
    them again.
    """
    z = np.asarray(zones.zones if isinstance(zones, ZoneGrid) else zones)
    lu = np.asarray(landuse, dtype=np.uint8)
    if pieces is None:
        suit = np.asarray(getattr(suitability, "values", suitability), dtype=np.float32)
        pieces = cell_pieces(landscape, scenario, lu, z, suit)
    cp = pieces
    units = allocation.units
    out = store_zeros(lu.shape, np.int32)  # the growth's zones for the period: in the raster store, if any
    if units.empty:
        return out
    names = [name for name, _, _ in source_classes(scenario.classes)]
    G = len(allocation.group_classes)
    group_of_source = np.full(len(names) + 1, -1, dtype=np.int64)
    for g, cls in enumerate(allocation.group_classes):
        for name in cls:
            group_of_source[names.index(name)] = g
    band = (units["near_station"].to_numpy() * BAND_NEAR + units["greenbelt"].to_numpy() * BAND_GREENBELT
            + units["outside_boundary"].to_numpy() * BAND_OUTSIDE)
    unit_key = (units["zone"].to_numpy(dtype=np.int64) * G + units["group"].to_numpy(dtype=np.int64)) * N_BANDS + band
    unit_id = units["unit"].to_numpy(dtype=np.int64)
    n_keys = (int(z.max(initial=0)) + 1) * G * N_BANDS
    if n_keys <= max(1 << 22, 2 * z.size) and unit_key.size and 0 <= unit_key.min() and unit_key.max() < n_keys:
        # a dense table key -> unit (0: no unit): one compiled gather per cell, no key raster
        from landuse.evaluation.metrics_kernels import unit_of_cells

        lut = np.zeros(n_keys, dtype=np.int32)
        lut[unit_key] = unit_id
        unit_of_cells(_flat(z), _flat(cp.source), _flat(cp.band), group_of_source, G, N_BANDS, lut, out.reshape(-1))
        return out
    g_cell = group_of_source.astype(np.int32)[cp.source]  # source -1 reads the last entry, -1
    inside = g_cell >= 0
    cell_key = (z[inside].astype(np.int64) * G + g_cell[inside]) * N_BANDS + cp.band[inside]
    del g_cell
    order = np.argsort(unit_key)
    sk = unit_key[order]
    pos = np.clip(np.searchsorted(sk, cell_key), 0, sk.size - 1)
    hit = sk[pos] == cell_key
    ids = np.where(hit, unit_id[order][pos], 0)
    out[inside] = ids.astype(np.int32)
    return out

def advance_zone_table(zone_table: pd.DataFrame, allocation: Allocation, scenario: Scenario) -> pd.DataFrame:
    """The zone table at the start of the next period, updated at zone level by ``allocation``.

    For planners running the allocator on its own over several periods (the pipeline
    instead rebuilds the table from the grown land use). Developable hectares of each
    source role fall by what the allocation took from that role (inside and outside the
    station radius separately), shared among the role's classes in proportion to their
    capacity; ``urban_ha`` and ``<type>_ha`` grow and ``open_space_ha`` falls by the open
    space taken. Mean distances and suitability are kept as they were.

    Examples
    --------
    The next period's allocation then reads ``allocate(advance_zone_table(zt, a, sc), sc, next_year)``.
    """
    zt = zone_table.copy()
    zt.attrs.update(zone_table.attrs)
    if allocation.taken.shape[0] != len(zt):
        raise LanduseError("advance_zone_table: the allocation was not solved on this zone table")
    srcs = _source_columns(zt, scenario)
    has_tod = all(f"tod_{n}_ha" in zt.columns for n, _, _ in srcs)
    has_bands = any(c.startswith("band") for c in zt.columns)
    bands = _band_capacities(zt, srcs, has_tod)
    for r_i, role in enumerate(ALL_SOURCE_ROLES):
        names = [n for n, r, _ in srcs if r == role]
        for m_band, per in bands.items():
            arr = np.stack([per[n] for n in names], axis=1) if names else np.zeros((len(zt), 0))
            tot = arr.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                frac = np.where(tot > 0, np.clip(allocation.taken[:, r_i, m_band] / tot, 0.0, 1.0), 0.0)
            for j, n in enumerate(names):
                per[n] = np.clip(arr[:, j] * (1.0 - frac), 0.0, None)
    for n, _, _ in srcs:
        zt[f"cap_{n}_ha"] = sum(per[n] for per in bands.values())
        if has_tod:
            zt[f"tod_{n}_ha"] = sum(per[n] for m_band, per in bands.items() if m_band & BAND_NEAR)
        if has_bands:
            for m_band, per in bands.items():
                zt[f"band{m_band}_{n}_ha"] = per[n]
    new = allocation.targets
    row_of = pd.Series(np.arange(len(zt)), index=zt["zone"].to_numpy())
    rows = row_of.reindex(new["zone"].to_numpy()).to_numpy()
    for t in scenario.urban_types:
        col = f"{t}_ha"
        add = np.bincount(rows[(new["type"] == t).to_numpy()], weights=new.loc[new["type"] == t, "hectares"],
                          minlength=len(zt))
        if col in zt.columns:
            zt[col] = zt[col] + add
    if "urban_ha" in zt.columns:
        zt["urban_ha"] = zt["urban_ha"] + allocation.taken.sum(axis=(1, 2))
    if "open_space_ha" in zt.columns:
        zt["open_space_ha"] = zt["open_space_ha"] - allocation.taken[:, ALL_SOURCE_ROLES.index("open_space"), :].sum(axis=1)
    return zt
