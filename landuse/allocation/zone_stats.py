"""The zone table: a Landscape aggregated into one row per allocation zone (:func:`zone_table`).

Counts whole cells per zone, class and study-area bit (:class:`_ClassCounts`), developable hectares per
source class and band (from :func:`landuse.allocation.pieces.cell_pieces`), and per-zone means of suitability
and distances over the developable cells (:class:`_ZoneMeans`). The table is what the LP
(:mod:`landuse.allocation.model`) is built from.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from landuse.allocation.pieces import BAND_NEAR, N_BANDS, CellPieces, _flat, cell_pieces, source_classes
from landuse.allocation.zones import ZoneGrid, zone_grid
from landuse.core.config import Scenario
from landuse.core.errors import LanduseError
from landuse.core.landscape import cell_area_ha, cell_size, cell_sizes
from landuse.core.store import store_by_strips, store_empty
from landuse.core.strips import row_strips
from landuse.surfaces.constraints import land_area_mask, open_space_mask, protected_open_space
from landuse.surfaces.suitability import compute_suitability, distance_to


def _zones_and_base_table(ds: xr.Dataset, scenario: Scenario,
                          zones: ZoneGrid | np.ndarray | None) -> tuple[np.ndarray, pd.DataFrame]:
    """The zone id of every cell and the zone table's first columns (zone, city, cells), from ``zones`` or built."""
    if zones is None:
        zones = zone_grid(ds, block_size_m=scenario.config.allocation.block_size_m)
    if isinstance(zones, ZoneGrid):
        return np.asarray(zones.zones), zones.table.copy()  # int32: the kernels read it as it is
    z = np.asarray(zones)
    if z.dtype.kind not in "iu" or z.dtype == np.uint64:
        z = z.astype(np.int64)
    if z.shape != ds["landuse"].shape:
        raise LanduseError(f"zone raster has shape {z.shape}, the Landscape {ds['landuse'].shape}; "
                           "build it with landuse.allocation.zones.zone_grid on the same Landscape")
    n = int(z.max(initial=0))
    city = np.asarray(ds["cities"].values, dtype=np.int64) if "cities" in ds else np.zeros(z.shape, np.int64)
    cells = np.bincount(z.ravel(), minlength=n + 1)[1:]
    # city of a zone: the city of its cells (zones from zone_grid never straddle a city border)
    first = np.zeros(n + 1, dtype=np.int64)
    inside = z > 0
    first[z[inside]] = city[inside]
    return z, pd.DataFrame({"zone": np.arange(1, n + 1, dtype=np.int32), "city": first[1:].astype(np.int32),
                            "cells": cells.astype(np.int64)})

def zone_table(
    landscape: xr.Dataset,
    scenario: Scenario,
    *,
    landuse: np.ndarray | None = None,
    zones: ZoneGrid | np.ndarray | None = None,
    suitability: xr.DataArray | np.ndarray | None = None,
    pieces: CellPieces | None = None,
) -> pd.DataFrame:
    """Aggregate a Landscape into one row per allocation zone (compiled per-zone counts and sums).

    Parameters
    ----------
    landscape : xarray.Dataset
        The Landscape.
    scenario : Scenario
        Supplies the class scheme, the policy switches and the TOD radius.
    landuse : ndarray, optional
        Land use at the start of the period (default ``landscape.landuse``).
    zones : ZoneGrid or ndarray, optional
        Zones to aggregate over (default: :func:`landuse.allocation.zones.zone_grid` with
        ``allocation.block_size_m``). Pass the same zones every period.
    suitability : DataArray or ndarray (type, y, x), optional
        Pre-computed suitability (default :func:`landuse.surfaces.suitability.compute_suitability`
        on ``landuse``).
    pieces : CellPieces, optional
        :func:`cell_pieces` of this land use, zones and suitability, when already at hand
        (the pipeline computes them once per period for the table and :func:`~landuse.allocation.handoff.unit_raster`).

    Returns
    -------
    pandas.DataFrame
        One row per zone, ordered by zone id, with columns

        ``zone, city, [block_row, block_col,] cells, area_ha``
            identity and size;
        ``land_ha``
            land area counted by the open-space quota (:func:`landuse.surfaces.constraints.land_area_mask`);
        ``open_space_ha``
            protected open space already present (:func:`landuse.surfaces.constraints.open_space_mask`);
        ``urban_ha``, ``<type>_ha``
            existing urban land, in total and per urban type;
        ``cap_<class>_ha``
            developable hectares per source class (farmland, each open-space class,
            other): not red line, permanent farmland, water, existing urban land, a hard
            greenbelt or outside a hard growth boundary (:func:`landuse.surfaces.constraints.never_convert`);
        ``tod_<class>_ha``
            the part of ``cap_<class>_ha`` within ``policy.tod.radius_m`` of a station
            (only when the TOD policy is on and a ``stations`` layer is present);
        ``suit_<type>``
            mean suitability per urban type over the developable cells (all cells of the
            zone when none is developable);
        ``dist_urban_m``, ``dist_station_m``, ``dist_centre_m``
            mean distance over the same cells to existing urban land, the nearest station
            and the nearest city centre (NaN when the layer or feature is absent).

        ``attrs`` holds ``cell_area_ha``, ``cell_size_m`` and ``tod_radius_m``.
    """
    ds = landscape
    lu = np.asarray(ds["landuse"].values if landuse is None else landuse, dtype=np.uint8)
    z, base = _zones_and_base_table(ds, scenario, zones)
    n = len(base)
    zf = z.ravel()
    cell_ha = cell_area_ha(ds)
    cell = cell_size(ds)

    out = base.copy()
    out["area_ha"] = out["cells"].to_numpy(dtype=np.float64) * cell_ha
    _add_class_areas(out, ds, scenario, lu, z, cell_ha)
    suit = compute_suitability(ds, scenario, landuse=lu) if suitability is None else suitability
    suit = np.asarray(getattr(suit, "values", suit), dtype=np.float32)
    cp = cell_pieces(ds, scenario, lu, z, suit) if pieces is None else pieces
    src_f = _flat(cp.source)
    use_dev = _add_piece_areas(out, scenario, cp, zf, src_f, cell_ha)
    _add_means(out, ds, scenario, lu, z, _ZoneMeans(zf, src_f, use_dev, n), suit)
    out.attrs.update({"cell_area_ha": cell_ha, "cell_size_m": cell, "tod_radius_m": cp.tod_radius_m})
    return out


def _add_class_areas(out: pd.DataFrame, ds: xr.Dataset, scenario: Scenario, lu: np.ndarray, z: np.ndarray,
                     cell_ha: float) -> None:
    """The zone table's ``land_ha``, ``open_space_ha``, ``urban_ha`` and ``<type>_ha`` columns, from whole-cell counts.

    One integer count per zone, class and study-area bit (no float raster per class).
    """
    classes = scenario.classes
    pol = scenario.config.policy
    include_water = bool(pol.open_space_quota.include_water) if pol.open_space_quota else False
    n = len(out)
    by_class = _ClassCounts(z.ravel(), lu.ravel(), np.asarray(ds["study_area"].values, dtype=bool).ravel(), n)
    water = set(classes.codes_with_role("water")) if not include_water else set()
    out["land_ha"] = by_class.cells(set(range(256)) - water, study=True) * cell_ha
    protected = protected_open_space(ds, scenario)
    if protected is None:
        space = set(classes.codes_with_role(*(("open_space", "water") if include_water else ("open_space",))))
        out["open_space_ha"] = by_class.cells(space - water, study=True) * cell_ha
    else:
        counted = np.zeros(n + 1, dtype=np.int64)
        for a, b in row_strips(*lu.shape):  # strip by strip: protected open space in the quota's land area
            space = open_space_mask(lu[a:b], classes, include_water=include_water, protected=protected[a:b])
            space &= land_area_mask(ds, classes, include_water=include_water, landuse=lu[a:b], rows=slice(a, b))
            counted += np.bincount(z[a:b][space], minlength=n + 1)
        out["open_space_ha"] = counted[1:] * cell_ha
    out["urban_ha"] = by_class.cells(classes.codes_with_role("urban")) * cell_ha
    for t in classes.urban_types:
        out[f"{t}_ha"] = by_class.cells(classes.codes_with_role(t)) * cell_ha


def _add_piece_areas(out: pd.DataFrame, scenario: Scenario, cp: CellPieces, zf: np.ndarray, src_f: np.ndarray,
                     cell_ha: float) -> np.ndarray:
    """The zone table's ``cap_<class>_ha``, ``tod_<class>_ha`` and ``band<m>_<class>_ha`` columns.

    From the developable cells per piece; returns which zones have developable cells.
    """
    from landuse.evaluation.metrics_kernels import piece_counts

    sources = source_classes(scenario.classes)
    counts = piece_counts(zf, src_f, _flat(cp.band), len(out), len(sources), N_BANDS)[1:]  # developable cells per piece
    for i, (name, _, _) in enumerate(sources):
        out[f"cap_{name}_ha"] = counts[:, i].sum(axis=1) * cell_ha
        if cp.tod_radius_m is not None:
            out[f"tod_{name}_ha"] = counts[:, i, BAND_NEAR::2].sum(axis=1) * cell_ha
    if cp.soft_bands:
        for m in np.flatnonzero(counts.sum(axis=(0, 1))):
            for i, (name, _, _) in enumerate(sources):
                out[f"band{m}_{name}_ha"] = counts[:, i, m] * cell_ha
    return counts.sum(axis=(1, 2)) > 0


def _add_means(out: pd.DataFrame, ds: xr.Dataset, scenario: Scenario, lu: np.ndarray, z: np.ndarray,
               mean_over: _ZoneMeans, suit: np.ndarray) -> None:
    """The zone table's ``suit_<type>`` and ``dist_*_m`` columns.

    Means over developable cells, falling back to the whole zone (only those cells are read).
    """
    classes = scenario.classes
    for t, m in zip(classes.urban_types, mean_over(suit[: len(classes.urban_types)]), strict=True):
        out[f"suit_{t}"] = np.nan_to_num(m, nan=0.0)
    # the masks and distances are rasters of the run's store, the mask filled strip by strip
    urban = store_by_strips(lu.shape, bool, lambda a, b: classes.is_role(lu[a:b], "urban") & (z[a:b] > 0))
    out["dist_urban_m"] = mean_over(distance_to(urban, cell=cell_sizes(ds), out=store_empty(lu.shape, np.float32)))
    del urban
    for col, layer in (("dist_station_m", "stations"), ("dist_centre_m", "centres")):
        out[col] = (mean_over(distance_to(np.asarray(ds[layer].values, dtype=bool), cell=cell_sizes(ds),
                                          out=store_empty(lu.shape, np.float32)))
                    if layer in ds else np.nan)

_CHUNK_CELLS = 1 << 22
"""Cells per slice of the raster when counting classes per zone (one compiled call per slice)."""


class _ClassCounts:
    """Cells per zone 1 .. ``n``, land-use code and study-area bit, as int64 counts.

    Only the codes present in the raster get a bin (a compact index), so the table is
    ``n x (present codes) x 2``; it is filled slice by slice of the raster, each slice in one
    compiled pass (:func:`landuse.evaluation.metrics_kernels.add_class_counts`), without key temporaries.
    """

    def __init__(self, zf: np.ndarray, lu: np.ndarray, study: np.ndarray, n: int) -> None:
        from landuse.evaluation.metrics_kernels import add_class_counts, code_presence

        zf, lu, study = _flat(zf), _flat(np.asarray(lu, dtype=np.uint8)), _flat(np.asarray(study, dtype=bool))
        present = np.flatnonzero(code_presence(lu))
        self.compact = np.full(256, -1, dtype=np.int64)
        self.compact[present] = np.arange(present.size)
        nc = present.size
        tab = np.zeros((n + 1) * nc * 2, dtype=np.int64)
        for s in range(0, lu.size, _CHUNK_CELLS):
            e = s + _CHUNK_CELLS
            add_class_counts(tab, zf[s:e], lu[s:e], study[s:e], self.compact, nc)
        self.tab = tab.reshape(n + 1, nc, 2)[1:]

    def cells(self, codes: Iterable[int], *, study: bool = False) -> np.ndarray:
        """Cells per zone of the classes ``codes`` (inside the study area only when ``study``)."""
        idx = [int(self.compact[c]) for c in sorted(set(codes)) if self.compact[c] >= 0]
        sel = self.tab[:, idx]
        return (sel[:, :, 1] if study else sel).reshape(len(sel), -1).sum(axis=1)


class _ZoneMeans:
    """Mean of a raster per zone over its developable cells, over all its cells when it has none.

    Non-finite values are left out; a zone with no finite value gets NaN. Each mean is one
    compiled pass over the raster (:func:`landuse.evaluation.metrics_kernels.dev_zone_sums`) that picks
    the cells from the zones and the pieces' sources as it goes (no mask or gathered copy is
    kept), and sums run in cell order in float64, as one ``np.bincount`` over the whole
    raster would.
    """

    def __init__(self, zf: np.ndarray, source: np.ndarray, use_dev: np.ndarray, n: int) -> None:
        self.zf = zf
        self.source = source
        self.whole_zone = np.concatenate([[False], ~use_dev])  # zone 0 never counts
        self.n = n

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Means of one raster ``(rows, cols)``, or of each layer of ``(layers, rows, cols)`` in one pass."""
        v = np.ascontiguousarray(values)
        one = v.ndim == 2
        v = v.reshape(1 if one else v.shape[0], -1)
        if v.dtype.kind not in "fiub":
            v = v.astype(np.float64)
        from landuse.evaluation.metrics_kernels import dev_zone_sums

        s, c = dev_zone_sums(v, self.zf, self.source, self.whole_zone, self.n)
        s, c = s[:, 1:], c[:, 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            m = s / c
        m = np.where(c > 0, m, np.nan)
        return m[0] if one else m
