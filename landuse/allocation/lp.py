"""The allocation LP: how many hectares of each urban type go to each zone in a period.

Zones are administrative units crossed with square blocks (:mod:`landuse.allocation.zones`).
:func:`zone_table` aggregates a Landscape into one row per zone; :func:`allocate`
builds and solves the linear programme for one period; :func:`compare_coordination`
measures what fragmentation (each city planning alone) costs.

The LP
------
Variables ``x[p, k]`` are hectares of a *piece* ``p`` converted to urban type ``k``. A
piece is the developable land of one zone held by one *source group* — source classes
of one role (``farmland``, ``open_space``, ``other``) that the conversion matrix
(``growth.conversion``) lets become the same urban types — and, when the TOD policy is
on, lying inside or outside the station radius. Grouping classes that no cost or
constraint tells apart is exact, so farmland and open-space losses are accounted
exactly, never by zone averages.

Objective (minimised; see :func:`allocate` for the formula) and constraints (each
switchable from ``policy``) are documented in ``docs/allocation.md``.

Solvers
-------
The model is assembled once as a sparse matrix with numpy/scipy (vectorised, about
0.1 s for 100 000 zones), then solved by

* ``cbc``: the matrix is handed to PuLP as an ``LpProblem`` (variables and
  constraints built from lists, not ``lpSum``) and solved by CBC; :func:`build_pulp_problem`
  returns that model for planners who want to inspect or extend it;
* ``highs`` (default): the matrix goes straight to ``highspy`` (``allocation.highs_interface:
  direct``, the default) or through PuLP's HiGHS interface (``pulp``), with
  ``allocation.highs_method`` (``auto`` by default: the dual simplex, except the interior point with
  crossover for a cluster-wide plan of :data:`IPM_MIN_VARIABLES` variables or more, see ``docs/allocation.md``).

Large models (``allocation.working_set``) are solved on a working set of cheap zones whose
duals price the rest, exactly (:func:`_solve_working_set`); with HiGHS the set grows inside one solver
instance, each round warm-started from the last basis (:class:`_HighsIncremental`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from landuse.allocation.zones import ZoneGrid, zone_grid
from landuse.core.classes import DEFAULT_URBAN_TYPES, ClassScheme
from landuse.core.config import Scenario
from landuse.core.errors import ConfigError, InfeasibleAllocationError, LanduseError, SolverError
from landuse.core.landscape import cell_area_ha, cell_size, cell_sizes
from landuse.core.store import store_by_strips, store_empty, store_zeros
from landuse.core.strips import row_strips
from landuse.io.rasters import write_text
from landuse.surfaces.constraints import land_area_mask, open_space_mask, protected_open_space
from landuse.surfaces.suitability import compute_suitability, distance_to

SOURCE_ROLES: tuple[str, ...] = ("farmland", "open_space", "other")
"""Roles whose classes may be converted to urban land in every scheme (water never is); the plan reports
``from_<role>`` amounts for each."""

EXTRA_SOURCE_ROLES: tuple[str, ...] = ("infrastructure", "urban_green")
"""Roles whose classes are sources only when ``growth.conversion`` lists them (by role or class name); the plan
reports their ``from_<role>`` amounts when the scheme has such classes."""

ALL_SOURCE_ROLES: tuple[str, ...] = (*SOURCE_ROLES, *EXTRA_SOURCE_ROLES)
"""Every source role; ``piece_role`` / ``unit_role`` index into it."""


def plan_roles(classes: ClassScheme) -> tuple[str, ...]:
    """Source roles the plan reports for a scheme: :data:`SOURCE_ROLES`, then the extra roles it has classes of."""
    present = {c.role for c in classes if not c.urban}
    return (*SOURCE_ROLES, *(r for r in EXTRA_SOURCE_ROLES if r in present))

_TOL = 1e-6
_INF = math.inf

# --------------------------------------------------------------------------- zone table


def source_classes(classes: ClassScheme) -> list[tuple[str, int, str]]:
    """``(name, code, role)`` of every class that may be a source of new urban land."""
    return [(c.name, c.code, c.role) for c in classes if not c.urban and c.role in ALL_SOURCE_ROLES]


def _zone_raster(ds: xr.Dataset, scenario: Scenario, zones: ZoneGrid | np.ndarray | None) -> tuple[np.ndarray, pd.DataFrame]:
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


BAND_NEAR, BAND_GREENBELT, BAND_OUTSIDE = 1, 2, 4
"""Bits of a piece's *band*: within the TOD radius of a station, inside a soft greenbelt,
outside a soft growth boundary. Each band of a zone's source group is its own LP piece and
its own growth group, so the plan's amounts per band hold on every simulated map."""
N_BANDS = 8


@dataclass(frozen=True)
class CellPieces:
    """Per cell: which source class it offers to new urban land (``source``, an index into
    :func:`source_classes`, -1 where the cell is not developable now; int8, int16 beyond 127
    source classes) and its band bits (uint8)."""

    source: np.ndarray
    band: np.ndarray
    tod_radius_m: float | None
    soft_bands: bool


def _source_dtype(n_sources: int) -> np.dtype:
    """The smallest signed dtype holding source indices ``-1 .. n_sources - 1``."""
    return np.dtype(np.int8) if n_sources <= 127 else np.dtype(np.int16)


def _flat(a: np.ndarray) -> np.ndarray:
    """A C-contiguous 1-D view (a copy only when ``a`` is not contiguous)."""
    return np.ascontiguousarray(a).reshape(-1)


def cell_pieces(ds: xr.Dataset, scenario: Scenario, landuse: np.ndarray, zones: np.ndarray,
                suitability: np.ndarray) -> CellPieces:
    """Developable source class and band of every cell (the cell-level definition of LP pieces).

    A cell is developable when it lies in a zone, its class is a source class
    (:func:`source_classes`), :func:`landuse.surfaces.constraints.constraint_factor` is positive
    there (not red line, permanent farmland, protected open space, water, hard greenbelt,
    outside a hard boundary, nor a soft greenbelt of strength 1) and some urban type its
    class may become (``growth.conversion``) has positive suitability there — exactly the
    cells the growth engine may convert.
    """
    from landuse.evaluation.metrics_kernels import cell_source_band
    from landuse.surfaces.constraints import constraint_factor, source_allowed_lut

    pol = scenario.config.policy
    lu = np.ascontiguousarray(landuse, dtype=np.uint8)
    sources = source_classes(scenario.classes)
    src_index = np.full(256, -1, dtype=_source_dtype(len(sources)))
    for i, (_, code, _) in enumerate(sources):
        src_index[code] = i
    factor = constraint_factor(ds, scenario, landuse=lu)
    lut = source_allowed_lut(scenario)
    suit = np.ascontiguousarray(getattr(suitability, "values", suitability))
    near = gb = ugb = np.zeros(0, dtype=bool)  # an absent band layer: an empty array
    tod_radius = None
    if pol.tod is not None and "stations" in ds:
        tod_radius = float(pol.tod.radius_m)
        dist = distance_to(np.asarray(ds["stations"].values, dtype=bool), cell=cell_sizes(ds),
                           out=store_empty(lu.shape, np.float32))
        near = store_by_strips(lu.shape, bool, lambda a, b: dist[a:b] <= tod_radius)
        del dist
    soft = False
    if pol.greenbelt.mode == "soft" and pol.greenbelt.strength > 0 and "greenbelt" in ds:
        gb = np.asarray(ds["greenbelt"].values, dtype=bool)
        soft = True
    gbd = pol.growth_boundary
    if gbd.mode == "soft" and gbd.outside_factor < 1 and "growth_boundary" in ds:
        ugb = np.asarray(ds["growth_boundary"].values, dtype=bool)
        soft = True
    if suit.shape[0] < lut.shape[0] or suit.shape[1:] != lu.shape:
        raise ValueError(f"suitability has shape {suit.shape}, expected ({lut.shape[0]}, {lu.shape[0]}, {lu.shape[1]})")
    if np.shape(zones) != lu.shape:
        raise ValueError(f"zone raster has shape {np.shape(zones)}, the land use {lu.shape}")
    source = store_empty(lu.shape, src_index.dtype)  # kept for the period: in the raster store, if any
    band = store_empty(lu.shape, np.uint8)
    # one compiled pass: no index, bool or int64 raster besides the two outputs
    cell_source_band(lu.reshape(-1), _flat(zones), factor.reshape(-1), suit.reshape(suit.shape[0], -1), lut,
                     src_index, _flat(near), _flat(gb), _flat(ugb), source.reshape(-1), band.reshape(-1))
    return CellPieces(source=source, band=band, tod_radius_m=tod_radius, soft_bands=soft)


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
        (the pipeline computes them once per period for the table and :func:`unit_raster`).

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
    from landuse.evaluation.metrics_kernels import piece_counts

    ds = landscape
    classes = scenario.classes
    pol = scenario.config.policy
    lu = np.asarray(ds["landuse"].values if landuse is None else landuse, dtype=np.uint8)
    z, base = _zone_raster(ds, scenario, zones)
    n = len(base)
    zf = z.ravel()
    cell_ha = cell_area_ha(ds)
    cell = cell_size(ds)
    include_water = bool(pol.open_space_quota.include_water) if pol.open_space_quota else False

    out = base.copy()
    out["area_ha"] = out["cells"].to_numpy(dtype=np.float64) * cell_ha
    # whole-cell counts: one integer count per zone, class and study-area bit (no float raster per class)
    by_class = _ClassCounts(zf, lu.ravel(), np.asarray(ds["study_area"].values, dtype=bool).ravel(), n)
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
    del by_class

    suit = compute_suitability(ds, scenario, landuse=lu) if suitability is None else suitability
    suit = np.asarray(getattr(suit, "values", suit), dtype=np.float32)
    sources = source_classes(classes)
    ns = len(sources)
    cp = cell_pieces(ds, scenario, lu, z, suit) if pieces is None else pieces
    tod_radius = cp.tod_radius_m
    src_f = _flat(cp.source)
    counts = piece_counts(zf, src_f, _flat(cp.band), n, ns, N_BANDS)[1:]  # developable cells per piece
    for i, (name, _, _) in enumerate(sources):
        out[f"cap_{name}_ha"] = counts[:, i].sum(axis=1) * cell_ha
        if tod_radius is not None:
            out[f"tod_{name}_ha"] = counts[:, i, BAND_NEAR::2].sum(axis=1) * cell_ha
    if cp.soft_bands:
        for m in np.flatnonzero(counts.sum(axis=(0, 1))):
            for i, (name, _, _) in enumerate(sources):
                out[f"band{m}_{name}_ha"] = counts[:, i, m] * cell_ha

    # means over developable cells, falling back to the whole zone: only those cells are read
    use_dev = counts.sum(axis=(1, 2)) > 0
    del counts
    mean_over = _ZoneMeans(zf, src_f, use_dev, n)
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
    out.attrs.update({"cell_area_ha": cell_ha, "cell_size_m": cell, "tod_radius_m": tod_radius})
    return out


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


# --------------------------------------------------------------------------- model


@dataclass
class _Rows:
    """Policy rows (named) collected while building; capacity rows are appended after."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)

    def add(self, cols: np.ndarray, vals: np.ndarray | float, lo: float, hi: float, **meta: Any) -> None:
        i = len(self.lo)
        cols = np.asarray(cols, dtype=np.int64)
        self.rows.append(np.full(cols.size, i, dtype=np.int64))
        self.cols.append(cols)
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), cols.shape).copy())
        self.lo.append(lo)
        self.hi.append(hi)
        self.meta.append(meta)


@dataclass
class AllocationModel:
    """The LP of one period as a sparse matrix (the single source every solver path uses).

    ``minimise cost @ x  s.t.  row_lo <= A @ x <= row_hi,  0 <= x <= col_ub``. The first
    ``len(rows)`` rows are the named policy rows described by ``rows``; the rest are the
    per-piece capacity rows.
    """

    period: int
    coordination: str
    cost: np.ndarray
    col_ub: np.ndarray
    col_piece: np.ndarray
    col_type: np.ndarray
    piece_zone: np.ndarray  # row index into the zone table
    piece_role: np.ndarray  # index into ALL_SOURCE_ROLES
    piece_near: np.ndarray
    piece_cap: np.ndarray
    A: sparse.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    rows: pd.DataFrame
    cost_terms: dict[str, np.ndarray]
    demand: dict[tuple[int | None, str], float]
    warnings: list[str]
    cap_piece: np.ndarray  # piece of each capacity row (rows len(rows) ... n_rows - 1)
    piece_city: np.ndarray
    piece_unit: np.ndarray  # unit of each piece (a piece is one fill tranche of a unit)
    piece_band: np.ndarray  # band bits (BAND_NEAR | BAND_GREENBELT | BAND_OUTSIDE)
    n_tranches: int
    unit_zone: np.ndarray  # unit = (zone, source group, band): row index into the zone table
    unit_group: np.ndarray  # index into group_classes
    unit_band: np.ndarray
    unit_cap: np.ndarray  # developable hectares
    unit_role: np.ndarray  # index into ALL_SOURCE_ROLES
    group_classes: list[tuple[str, ...]]  # source class names of each group
    build_seconds: float = 0.0
    types: tuple[str, ...] = DEFAULT_URBAN_TYPES  # urban types: col_type indexes them
    roles: tuple[str, ...] = SOURCE_ROLES  # source roles the plan reports (plan_roles)

    @property
    def n_cols(self) -> int:
        return int(self.cost.size)

    @property
    def n_rows(self) -> int:
        return int(self.row_lo.size)


def _cell_area(zt: pd.DataFrame, cell_area_ha: float | None) -> float:
    if cell_area_ha is not None:
        return float(cell_area_ha)
    v = zt.attrs.get("cell_area_ha")
    if v is None:
        raise LanduseError("the zone table carries no cell area: build it with landuse.allocation.lp.zone_table, "
                           "set zone_table.attrs['cell_area_ha'], or pass cell_area_ha=")
    return float(v)


def _source_columns(zt: pd.DataFrame, scenario: Scenario) -> list[tuple[str, str, tuple[bool, ...]]]:
    """``(class name, role, allowed-per-type)`` of each ``cap_<class>_ha`` column present."""
    conv = scenario.conversion_codes()
    out = []
    by_name = {c.name: c for c in scenario.classes}
    for col in zt.columns:
        if not (col.startswith("cap_") and col.endswith("_ha")):
            continue
        name = col[4:-3]
        if name not in by_name:
            raise LanduseError(f"zone table column {col!r}: {name!r} is not a class of the scenario's class scheme "
                               f"({', '.join(by_name)})")
        c = by_name[name]
        if c.urban or c.role not in ALL_SOURCE_ROLES:
            raise LanduseError(f"zone table column {col!r}: class {name!r} has role {c.role!r}; only "
                               f"{', '.join(ALL_SOURCE_ROLES)} classes can be sources of new urban land")
        out.append((name, c.role, tuple(c.code in conv[t] for t in scenario.urban_types)))
    if not out:
        raise LanduseError("the zone table has no cap_<class>_ha columns; build it with landuse.allocation.lp.zone_table")
    return out


def _band_capacities(zt: pd.DataFrame, srcs: list[tuple[str, str, tuple[bool, ...]]],
                     tod: bool) -> dict[int, dict[str, np.ndarray]]:
    """Developable hectares per band and source class: from the ``band<m>_<class>_ha`` columns
    when the zone table has them (soft greenbelt or boundary), else ``cap_`` and ``tod_``."""
    out: dict[int, dict[str, np.ndarray]] = {}
    for col in zt.columns:
        if col.startswith("band") and col.endswith("_ha") and "_" in col:
            head, name = col[4:-3].split("_", 1)
            if head.isdigit():
                out.setdefault(int(head), {})[name] = zt[col].to_numpy(dtype=np.float64)
    if out:
        zero = np.zeros(len(zt))
        return {m: {name: per.get(name, zero) for name, _, _ in srcs} for m, per in out.items()}
    cap = {name: zt[f"cap_{name}_ha"].to_numpy(dtype=np.float64) for name, _, _ in srcs}
    if not tod:
        return {0: cap}
    near = {name: zt[f"tod_{name}_ha"].to_numpy(dtype=np.float64) for name, _, _ in srcs}
    return {BAND_NEAR: near, 0: {name: cap[name] - near[name] for name in cap}}


def city_demand(
    zt: pd.DataFrame, scenario: Scenario, period: int
) -> tuple[dict[tuple[int, str], float], list[str]]:
    """Demand (hectares) per ``(city, type)`` for a fragmented plan.

    ``demand.by_city`` when given; otherwise the cluster demand split among the cities of
    the zone table in proportion to their existing urban area (``demand.split:
    urban_area``, falling back to land area when there is no urban land) or their land
    area (``land_area``).
    """
    dem = scenario.config.demand
    cities = sorted(int(c) for c in pd.unique(zt["city"]))
    notes: list[str] = []
    out: dict[tuple[int, str], float] = {}
    if dem.by_city:
        for c in sorted(set(cities) | {int(c) for c in dem.by_city}):
            for t in scenario.urban_types:
                out[(c, t)] = float(dem.by_city.get(c, {}).get(t, {}).get(period, 0.0))
        return out, notes
    by_city = zt.groupby("city")
    basis = "urban_ha" if dem.split == "urban_area" else "land_ha"
    if basis not in zt.columns:
        basis = "area_ha" if "area_ha" in zt.columns else "cells"
    weight = by_city[basis].sum().astype(float)
    if weight.sum() <= 0:
        fallback = "land_ha" if "land_ha" in zt.columns else "cells"
        notes.append(f"demand.split {dem.split!r}: the cities hold no {basis}; split by {fallback} instead")
        weight = by_city[fallback].sum().astype(float)
    share = weight / weight.sum()
    for t in scenario.urban_types:
        total = dem.cluster(t, period)
        for c in cities:
            out[(c, t)] = total * float(share.get(c, 0.0))
    return out, notes


def _csr_from_rows(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """``csr_matrix((vals, (rows, cols)), shape)`` without the COO round trip when ``rows`` never decreases.

    The model's entries come row by row (policy rows in order, then the capacity rows), so the CSR arrays are
    the entries as they are plus a row pointer; ``sum_duplicates`` then does what the COO constructor does
    (nothing, for canonical rows), so both give the same arrays. The matrix may share (and, to sum
    duplicates, overwrite) ``cols`` and ``vals``.
    """
    if rows.size and bool(np.any(rows[1:] < rows[:-1])):
        return sparse.csr_matrix((vals, (rows, cols)), shape=shape)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    A = sparse.csr_matrix((vals, cols, indptr), shape=shape)
    A.sum_duplicates()
    return A


def build_model(
    zone_table: pd.DataFrame,
    scenario: Scenario,
    period: int,
    *,
    coordination: str | None = None,
    farmland_lost_so_far_ha: float = 0.0,
    cell_area_ha: float | None = None,
) -> AllocationModel:
    """Assemble the LP of one period as a sparse matrix (vectorised; no solver involved).

    Parameters are those of :func:`allocate`. Raises :class:`ConfigError` when a policy
    needs a zone-table column that is absent (e.g. TOD without a stations layer). When
    the cell area is known (``cell_area_ha`` or the zone table's attrs), each demand row
    asks for the demand rounded to whole cells, so that the LP and its whole-cell plan
    meet the same amount.
    """
    t0 = time.perf_counter()
    zt = zone_table
    cfg = scenario.config
    pol = cfg.policy
    w = cfg.allocation.weights
    coordination = coordination or pol.coordination
    if coordination not in ("cluster", "city"):
        raise ConfigError(f"coordination must be 'cluster' or 'city', got {coordination!r}")
    ends = scenario.periods[1:]
    if period not in ends:
        raise ConfigError(f"period {period} is not a period end year of the scenario {ends}; "
                          "allocate by the year a period ends")
    warnings: list[str] = []
    nz = len(zt)
    city_z = zt["city"].to_numpy(dtype=np.int64)
    types = scenario.urban_types
    nt = len(types)

    # ---------------------------------------------------------------- pieces
    srcs = _source_columns(zt, scenario)
    tod = pol.tod
    has_tod_cols = all(f"tod_{name}_ha" in zt.columns for name, _, _ in srcs)
    if tod is not None and not has_tod_cols:
        raise ConfigError("policy.tod is on but the zone table has no tod_<class>_ha columns: give "
                          "layers.stations and rebuild the zone table, or remove policy.tod")
    groups: dict[tuple[str, tuple[bool, ...]], list[str]] = {}
    for name, role, allowed in srcs:
        if any(allowed):
            groups.setdefault((role, allowed), []).append(name)
    band_caps = _band_capacities(zt, srcs, tod is not None)
    # units: (zone, source group, band) with developable land -- the pieces before fill tranches,
    # and the growth groups of the engine (see piece_raster)
    u_zone, u_group, u_band, u_cap, u_allowed, u_role = [], [], [], [], [], []
    for g, ((role, allowed), names) in enumerate(groups.items()):
        for band in sorted(band_caps):
            c = sum(band_caps[band][name] for name in names)
            idx = np.flatnonzero(c > _TOL)
            u_zone.append(idx)
            u_group.append(np.full(idx.size, g))
            u_band.append(np.full(idx.size, band))
            u_cap.append(c[idx])
            u_role.append(np.full(idx.size, ALL_SOURCE_ROLES.index(role)))
            u_allowed.append(np.tile(np.array(allowed), (idx.size, 1)))

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    unit_zone, unit_group, unit_band = cat(u_zone, np.int64), cat(u_group, np.int64), cat(u_band, np.int64)
    unit_cap, unit_role = cat(u_cap, np.float64), cat(u_role, np.int64)
    unit_allowed = np.concatenate(u_allowed) if u_allowed else np.zeros((0, nt), bool)
    # fill tranches: each piece splits into equal parts whose cost rises by weights.fill per part,
    # so the LP (convex, piecewise-linear in the filled share) spreads growth over neighbouring zones
    n_tr = int(cfg.allocation.fill_tranches)
    if not (n_tr > 1 and w.fill > 0):
        n_tr = 1
    piece_unit = np.repeat(np.arange(unit_cap.size, dtype=np.int64), n_tr)
    piece_tranche = np.tile(np.arange(n_tr, dtype=np.int64), unit_cap.size)
    piece_zone, piece_role = unit_zone[piece_unit], unit_role[piece_unit]
    piece_band = unit_band[piece_unit]
    piece_near = (piece_band & BAND_NEAR) > 0
    piece_cap = unit_cap[piece_unit] / n_tr
    allowed = unit_allowed[piece_unit]

    # ---------------------------------------------------------------- columns and costs
    pi, ki = np.nonzero(allowed)  # row-major: pieces in order, types within a piece
    col_piece = pi.astype(np.int64)
    col_type = ki.astype(np.int64)
    col_zone = piece_zone[col_piece]
    col_role = piece_role[col_piece]
    col_city = city_z[col_zone]
    col_ub = piece_cap[col_piece]

    def km(col: str) -> np.ndarray:
        if col not in zt.columns:
            return np.zeros(nz)
        return np.nan_to_num(zt[col].to_numpy(dtype=np.float64), nan=0.0, posinf=0.0) / 1000.0

    suit = np.stack([zt[f"suit_{t}"].to_numpy(dtype=np.float64) if f"suit_{t}" in zt.columns else np.zeros(nz)
                     for t in types], axis=1).reshape(nz, nt)
    terms = {
        "sprawl": w.sprawl * km("dist_urban_m")[col_zone],
        "centre": w.centre * km("dist_centre_m")[col_zone],
        "farmland": w.farmland * (col_role == ALL_SOURCE_ROLES.index("farmland")),
        "open_space": w.open_space * (col_role == ALL_SOURCE_ROLES.index("open_space")),
        "suitability": -w.suitability * suit[col_zone, col_type],
        "fill": w.fill * piece_tranche[col_piece],
    }
    col_band = piece_band[col_piece]
    if pol.greenbelt.mode == "soft":
        terms["greenbelt"] = w.greenbelt * pol.greenbelt.strength * ((col_band & BAND_GREENBELT) > 0)
    if pol.growth_boundary.mode == "soft":
        terms["outside_boundary"] = (w.outside_boundary * (1.0 - pol.growth_boundary.outside_factor)
                                     * ((col_band & BAND_OUTSIDE) > 0))
    cost = sum(terms.values()) if col_piece.size else np.zeros(0)
    cost = np.asarray(cost, dtype=np.float64)

    # ---------------------------------------------------------------- policy rows
    R = _Rows()
    cities_in = sorted(int(c) for c in np.unique(city_z))
    demand: dict[tuple[int | None, str], float] = {}
    ca = cell_area_ha if cell_area_ha is not None else zt.attrs.get("cell_area_ha")

    def whole(d: float) -> float:
        return d if ca is None else round(d / float(ca)) * float(ca)

    key = col_city * nt + col_type
    order = np.argsort(key, kind="stable")
    sk = key[order]

    def city_cols(c: int, k: int) -> np.ndarray:
        kk = c * nt + k
        return order[np.searchsorted(sk, kk, "left"):np.searchsorted(sk, kk, "right")]

    by_city = np.argsort(col_city, kind="stable")  # columns grouped by city, ascending within a city
    sorted_city = col_city[by_city]

    def in_city(c: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Columns of city ``c`` (where ``mask``), ascending: one search instead of a mask over every column."""
        idx = by_city[np.searchsorted(sorted_city, c, "left"):np.searchsorted(sorted_city, c, "right")]
        return idx if mask is None else idx[mask[idx]]

    if coordination == "cluster":
        for k, t in enumerate(types):
            d = cfg.demand.cluster(t, period)
            demand[(None, t)] = d
            R.add(np.flatnonzero(col_type == k), 1.0, whole(d), whole(d), kind="demand", city=None, type=t,
                  name=f"demand[{t}]", bound=whole(d), demand_ha=d)
        tr = pol.transfers
        if tr is not None and tr.max_export_share < 1 and cfg.demand.by_city:
            per_city, _ = city_demand(zt, scenario, period)
            for (c, t), d in sorted(per_city.items()):
                keep = (1.0 - tr.max_export_share) * d
                if keep <= 0:
                    continue
                R.add(city_cols(c, types.index(t)), 1.0, keep, _INF, kind="export_limit", city=c, type=t,
                      name=f"export_limit[{t},city={c}]", bound=keep, demand_ha=d, share=tr.max_export_share)
    else:
        per_city, notes = city_demand(zt, scenario, period)
        warnings += notes
        for (c, t), d in sorted(per_city.items()):
            demand[(c, t)] = d
            R.add(city_cols(c, types.index(t)), 1.0, whole(d), whole(d), kind="demand", city=c, type=t,
                  name=f"demand[{t},city={c}]", bound=whole(d), demand_ha=d)

    farm = col_role == ALL_SOURCE_ROLES.index("farmland")
    if pol.farmland_loss_cap is not None:
        cap = float(pol.farmland_loss_cap.hectares)
        if pol.farmland_loss_cap.per == "horizon":
            cap -= float(farmland_lost_so_far_ha)
            if cap < 0:
                warnings.append(f"farmland already lost in earlier periods ({farmland_lost_so_far_ha:.1f} ha) "
                                f"exceeds the horizon cap ({pol.farmland_loss_cap.hectares:g} ha)")
        R.add(np.flatnonzero(farm), 1.0, -_INF, cap, kind="farmland_cap", city=None, type=None,
              name="farmland_cap", bound=cap, cap_ha=float(pol.farmland_loss_cap.hectares),
              per=pol.farmland_loss_cap.per)

    q = pol.open_space_quota
    if q is not None:
        for col in ("land_ha", "open_space_ha"):
            if col not in zt.columns:
                raise ConfigError(f"policy.open_space_quota needs the zone-table column {col!r}; "
                                  "build the table with landuse.allocation.lp.zone_table")
        osv = col_role == ALL_SOURCE_ROLES.index("open_space")
        if q.unit == "city":
            g = zt.groupby("city")[["land_ha", "open_space_ha"]].sum()
            quota_units = [(int(c), float(g.loc[c, "land_ha"]), float(g.loc[c, "open_space_ha"])) for c in g.index]
        else:
            quota_units = [(None, float(zt["land_ha"].sum()), float(zt["open_space_ha"].sum()))]
        below = []
        for unit, land_u, os_u in quota_units:
            allow = os_u - q.share * land_u
            where = "the cluster" if unit is None else f"city {unit}"
            if allow < -1e-9:
                have = 100 * os_u / max(land_u, 1e-12)
                below.append((where, have, -allow))
                warnings.append(f"open-space quota: {where} already holds only {have:.1f} % open space, below "
                                f"{100 * q.share:g} %; no further open-space loss is allowed there")
                allow = 0.0
            R.add(np.flatnonzero(osv) if unit is None else in_city(int(unit), osv), 1.0, -_INF, max(allow, 0.0), kind="open_space_quota",
                  city=None if unit is None else int(unit), type=None,
                  name="open_space_quota[cluster]" if unit is None else f"open_space_quota[city={unit}]",
                  bound=allow, land_ha=land_u, open_space_ha=os_u, share=q.share)

        if below and q.already_below == "error":
            reach = min(have for _, have, _ in below)
            share = math.floor(reach * 10) / 1000  # a share every unit meets now, rounded down to 0.1 pp
            parts = [f"{where} holds {have:.2f} % open space at the start of the period, {short:.1f} ha short of "
                     f"the {100 * q.share:g} % quota" for where, have, short in below]
            raise InfeasibleAllocationError(
                f"allocation {period}: no plan can meet the open-space quota (no land is turned back into open "
                f"space): {'; '.join(parts)}; lower policy.open_space_quota.share to {100 * share:.1f} % or less, "
                "or set policy.open_space_quota.already_below: no_further_loss to plan on without losing open "
                "space there (the quota check then fails for those units)",
                violations={f"open_space_quota[{w.replace('the ', '').replace(' ', '=')}]": 100 * q.share - h
                            for w, h, _ in below},
                advice={"policy.open_space_quota.share": share})

    if tod is not None:
        if "residential" not in types:
            raise ConfigError(f"policy.tod steers new residential land, but the class scheme has no residential "
                              f"type ({', '.join(types)}); remove policy.tod")
        res = col_type == types.index("residential")
        coef = piece_near[col_piece].astype(np.float64) - tod.share
        units: list[int | None] = [None] if coordination == "cluster" else cities_in
        col_near = piece_near[col_piece]
        for unit in units:
            idx = np.flatnonzero(res) if unit is None else in_city(unit, res)
            if unit is not None and not col_near[idx].any():
                warnings.append(f"TOD: city {unit} has no developable land within {tod.radius_m:g} m of a station; "
                                "its TOD share is not enforced")
                continue
            R.add(idx, coef[idx], 0.0, _INF, kind="tod", city=unit, type="residential",
                  name="tod[cluster]" if unit is None else f"tod[city={unit}]", bound=0.0, share=tod.share,
                  radius_m=tod.radius_m)

    jh = pol.jobs_housing
    if jh is not None:
        if "residential" not in types:
            raise ConfigError(f"policy.jobs_housing needs a residential type; the class scheme has "
                              f"{', '.join(types)}; remove policy.jobs_housing")
        res = col_type == types.index("residential")
        jobs = np.isin(col_type, [k for k, t in enumerate(types) if t in ("industrial", "commercial")])
        coef_min = np.where(res, -jh.min, 1.0)
        coef_max = np.where(res, -jh.max, 1.0)
        counted = res | jobs
        for c in cities_in:
            idx = in_city(c, counted)  # another type (e.g. institutional) is neither jobs nor housing
            if jh.min > 0:
                R.add(idx, coef_min[idx], 0.0, _INF, kind="jobs_housing_min", city=c, type=None,
                      name=f"jobs_housing_min[city={c}]", bound=0.0, ratio=jh.min)
            R.add(idx, coef_max[idx], -_INF, 0.0, kind="jobs_housing_max", city=c, type=None,
                  name=f"jobs_housing_max[city={c}]", bound=0.0, ratio=jh.max)

    for c, limit in sorted(pol.city_growth_limits.items()):
        R.add(in_city(int(c)), 1.0, -_INF, float(limit), kind="growth_limit", city=int(c),
              type=None, name=f"growth_limit[city={c}]", bound=float(limit))

    # ---------------------------------------------------------------- capacity rows
    n_pol = len(R.lo)
    n_types = allowed.sum(axis=1)
    multi = np.flatnonzero(n_types > 1)  # single-type pieces are bounded by the column bound
    cap_row_of_piece = np.full(piece_cap.size, -1, dtype=np.int64)
    cap_row_of_piece[multi] = n_pol + np.arange(multi.size)
    cap_cols = np.flatnonzero(cap_row_of_piece[col_piece] >= 0)
    rows = np.concatenate([*R.rows, cap_row_of_piece[col_piece[cap_cols]]])
    cols = np.concatenate([*R.cols, cap_cols])
    vals = np.concatenate([*R.vals, np.ones(cap_cols.size)])
    n_rows = n_pol + multi.size
    A = _csr_from_rows(rows, cols, vals, (n_rows, col_piece.size))
    row_lo = np.concatenate([np.array(R.lo, dtype=np.float64), np.full(multi.size, -_INF)])
    row_hi = np.concatenate([np.array(R.hi, dtype=np.float64), piece_cap[multi]])
    meta = pd.DataFrame(R.meta) if R.meta else pd.DataFrame(columns=["kind", "city", "type", "name", "bound"])
    return AllocationModel(
        period=int(period), coordination=coordination, cost=cost, col_ub=col_ub, col_piece=col_piece,
        col_type=col_type, piece_zone=piece_zone, piece_role=piece_role, piece_near=piece_near,
        piece_cap=piece_cap, A=A, row_lo=row_lo, row_hi=row_hi, rows=meta, cost_terms=terms,
        demand=demand, warnings=warnings, cap_piece=multi.astype(np.int64), piece_city=city_z[piece_zone],
        piece_unit=piece_unit, piece_band=piece_band, n_tranches=n_tr, unit_zone=unit_zone, unit_group=unit_group,
        unit_band=unit_band, unit_cap=unit_cap, unit_role=unit_role,
        group_classes=[tuple(names) for names in groups.values()], build_seconds=time.perf_counter() - t0,
        types=tuple(types), roles=plan_roles(scenario.classes),
    )


# --------------------------------------------------------------------------- solvers


@dataclass
class _Solution:
    status: str  # "optimal" | "infeasible" | other text
    x: np.ndarray | None
    row_dual: np.ndarray | None
    seconds: float
    detail: str = ""


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level writes to stdout (the HiGHS banner) while the body runs."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


def _new_highs(method: str, time_limit: float) -> Any:
    """A silent HiGHS instance set to ``method`` (``ipm`` with crossover) and ``time_limit``."""
    import highspy

    with _quiet_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", method)
    h.setOptionValue("time_limit", float(time_limit))
    if method == "ipm":
        h.setOptionValue("run_crossover", "on")
    return h


def _highs_solution(h: Any, t0: float) -> _Solution:
    """The outcome of ``h.run()``: optimal (values and row duals), infeasible, or another status."""
    import highspy

    st = h.getModelStatus()
    text = h.modelStatusToString(st)
    secs = time.perf_counter() - t0
    if st == highspy.HighsModelStatus.kOptimal:
        sol = h.getSolution()
        return _Solution("optimal", np.asarray(sol.col_value), np.asarray(sol.row_dual), secs, text)
    if st in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return _Solution("infeasible", None, None, secs, text)
    if st == highspy.HighsModelStatus.kModelEmpty:
        # no column (a period where no zone can gain land, e.g. every city shrinks): HiGHS 1.16 solves nothing and
        # says "Empty"; the empty plan is optimal when every row admits an activity of 0, else infeasible
        lp = h.getLp()
        lo, hi = np.asarray(lp.row_lower_, dtype=float), np.asarray(lp.row_upper_, dtype=float)
        tol = 1e-7
        if np.all(lo <= tol) and np.all(hi >= -tol):
            return _Solution("optimal", np.zeros(lp.num_col_), np.zeros(lp.num_row_), secs, "Optimal (empty model)")
        return _Solution("infeasible", None, None, secs, text)
    return _Solution(text.lower(), None, None, secs, text)


def _solve_highs_direct(m: AllocationModel, *, method: str, time_limit: float) -> _Solution:
    import highspy

    t0 = time.perf_counter()
    h = _new_highs(method, time_limit)
    inf = highspy.kHighsInf
    A = m.A.tocsc()
    lp = highspy.HighsLp()
    lp.num_col_ = m.n_cols
    lp.num_row_ = m.n_rows
    lp.col_cost_ = m.cost
    lp.col_lower_ = np.zeros(m.n_cols)
    lp.col_upper_ = m.col_ub
    lp.row_lower_ = np.where(np.isinf(m.row_lo), -inf, m.row_lo)
    lp.row_upper_ = np.where(np.isinf(m.row_hi), inf, m.row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.a_matrix_.num_col_ = m.n_cols
    lp.a_matrix_.num_row_ = m.n_rows
    h.passModel(lp)
    h.run()
    return _highs_solution(h, t0)


class _HighsIncremental:
    """One HiGHS instance over a growing working set: pieces are added as columns and capacity rows, and each
    solve starts from the basis of the one before (a cold re-solve of the larger set costs several times more).

    Rows are ordered as passed: the policy rows, then the capacity rows of the pieces in the order they joined;
    ``rows`` and ``cols`` map them back to the whole model.
    """

    def __init__(self, m: AllocationModel, pieces: np.ndarray, *, method: str, time_limit: float) -> None:
        import highspy

        self.m = m
        self.t0 = time.perf_counter()
        self.h = h = _new_highs(method, time_limit)
        self.inf = highspy.kHighsInf
        self.Acsc = m.A.tocsc()
        self.cap_row_of_piece = np.full(m.piece_cap.size, -1, dtype=np.int64)
        self.cap_row_of_piece[m.cap_piece] = len(m.rows) + np.arange(m.cap_piece.size)
        self.in_set = np.zeros(m.piece_cap.size, dtype=bool)
        pol = np.arange(len(m.rows))
        self.rows = pol
        self.cols = np.zeros(0, dtype=np.int64)
        self.pos = np.full(m.n_rows, -1, dtype=np.int64)
        self.pos[pol] = np.arange(pol.size)
        h.addRows(pol.size, self._lo(pol), self._hi(pol), 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
        self.add(pieces)

    def _lo(self, r: np.ndarray) -> np.ndarray:
        return np.where(np.isinf(self.m.row_lo[r]), -self.inf, self.m.row_lo[r])

    def _hi(self, r: np.ndarray) -> np.ndarray:
        return np.where(np.isinf(self.m.row_hi[r]), self.inf, self.m.row_hi[r])

    def add(self, piece_mask: np.ndarray) -> None:
        """Add the pieces of ``piece_mask`` not yet in the set (their capacity rows, then their columns)."""
        m = self.m
        new = piece_mask & ~self.in_set
        if not new.any():
            return
        self.in_set |= new
        r = self.cap_row_of_piece[np.flatnonzero(new)]
        r = r[r >= 0]
        self.h.addRows(r.size, self._lo(r), self._hi(r), 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                       np.zeros(0))
        self.pos[r] = self.rows.size + np.arange(r.size)
        self.rows = np.concatenate([self.rows, r])
        c = np.flatnonzero(new[m.col_piece])
        sub = self.Acsc[:, c]
        idx = self.pos[sub.indices]
        self.h.addCols(c.size, m.cost[c], np.zeros(c.size), m.col_ub[c], sub.nnz, sub.indptr[:-1].astype(np.int32),
                       idx.astype(np.int32), sub.data.astype(np.float64))
        self.cols = np.concatenate([self.cols, c])

    def solve(self) -> _Solution:
        """Solve the current set (warm from the last basis); ``x`` and duals in the set's own order."""
        self.h.run()
        return _highs_solution(self.h, self.t0)


def build_pulp_problem(m: AllocationModel) -> tuple[Any, list[Any], list[Any]]:
    """The LP as a PuLP ``LpProblem`` (variables ``x<col>``, constraints ``r<row>``).

    Returns ``(problem, variables, constraints)``; ``constraints[i]`` is row ``i`` of
    ``m.A`` (a ranged row becomes two constraints, the second appended at the end).
    Expressions are built from lists, not ``lpSum``, which is about 40 % faster.
    """
    import pulp

    prob = pulp.LpProblem(f"landuse_allocation_{m.period}", pulp.LpMinimize)
    xs = [pulp.LpVariable(f"x{j}", 0.0, float(ub)) for j, ub in enumerate(m.col_ub)]
    prob.setObjective(pulp.LpAffineExpression(list(zip(xs, m.cost.tolist(), strict=True))))
    A = m.A
    indptr, indices, data = A.indptr, A.indices.tolist(), A.data.tolist()
    cons: list[Any] = []
    extra: list[Any] = []
    for i in range(m.n_rows):
        a, b = indptr[i], indptr[i + 1]
        expr = pulp.LpAffineExpression([(xs[j], v) for j, v in zip(indices[a:b], data[a:b], strict=True)])
        lo, hi = m.row_lo[i], m.row_hi[i]
        if lo == hi:
            c = pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}", float(lo))
        elif np.isinf(lo):
            c = pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{i}", float(hi))
        else:
            c = pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}", float(lo))
            if not np.isinf(hi):
                extra.append(pulp.LpConstraint(pulp.LpAffineExpression(expr), pulp.LpConstraintLE,
                                               f"r{i}_hi", float(hi)))
        prob.addConstraint(c, f"r{i}")
        cons.append(c)
    for c in extra:
        prob.addConstraint(c, c.name)
    return prob, xs, cons + extra


def _solve_pulp(m: AllocationModel, *, solver: str, time_limit: float, method: str) -> _Solution:
    import pulp

    t0 = time.perf_counter()
    prob, xs, cons = build_pulp_problem(m)
    t_build = time.perf_counter() - t0
    if solver == "cbc":
        s = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)
    else:
        if not pulp.HiGHS().available():
            raise SolverError("allocation.solver 'highs' through PuLP needs the highspy package: pip install highspy")
        s = pulp.HiGHS(msg=False, timeLimit=time_limit, solver=method)
    try:
        with _quiet_stdout():
            prob.solve(s)
    except pulp.PulpSolverError as exc:
        raise SolverError(f"the {solver} solver failed: {exc}; try allocation.solver: "
                          f"{'highs' if solver == 'cbc' else 'cbc'}") from exc
    secs = time.perf_counter() - t0
    status = pulp.LpStatus[prob.status]
    if prob.status == pulp.LpStatusOptimal:
        x = np.array([v.varValue or 0.0 for v in xs])
        y = np.array([c.pi if c.pi is not None else 0.0 for c in cons[: m.n_rows]], dtype=np.float64)
        return _Solution("optimal", x, y, secs, f"pulp build {t_build:.2f}s")
    if prob.status == pulp.LpStatusInfeasible:
        return _Solution("infeasible", None, None, secs, status)
    return _Solution(status.lower(), None, None, secs, status)


IPM_MIN_VARIABLES = 150_000
"""``allocation.highs_method: auto`` uses the interior point (then crossover) from this many variables on."""


def _highs_method(option: str, n_cols: int, coordination: str) -> str:
    """The HiGHS method for a model of ``n_cols`` variables.

    ``auto`` is the dual simplex, except for a large cluster-wide plan: there the interior point with crossover
    (measured on the 100 000-zone benchmark's first working set, 262 000 variables: 5.8 s against 9.2 s for
    the simplex). A city-by-city plan's rows are local and the simplex wins by far (2.4 s against 40 s).
    """
    if option != "auto":
        return option
    return "ipm" if coordination == "cluster" and n_cols >= IPM_MIN_VARIABLES else "simplex"


def _solve(m: AllocationModel, scenario: Scenario, solver: str) -> _Solution:
    """Solve the whole model with the chosen solver."""
    acfg = scenario.config.allocation
    if solver not in ("cbc", "highs"):
        raise ConfigError(f"allocation.solver must be 'cbc' or 'highs', got {solver!r}")
    method = _highs_method(acfg.highs_method, m.n_cols, m.coordination)
    if m.n_cols == 0:
        feasible = bool(np.all(m.row_lo <= _TOL) and np.all(m.row_hi >= -_TOL))
        return _Solution("optimal" if feasible else "infeasible", np.zeros(0),
                         np.zeros(m.n_rows), 0.0, "empty model")
    if solver == "highs" and acfg.highs_interface == "direct":
        return _solve_highs_direct(m, method=method, time_limit=acfg.time_limit_s)
    return _solve_pulp(m, solver=solver, time_limit=acfg.time_limit_s, method=method)


WORKING_SET_MIN_VARIABLES = 20_000
"""``allocation.working_set: auto`` uses the working set from this many variables on."""


def _submodel(m: AllocationModel, piece_mask: np.ndarray) -> tuple[AllocationModel, np.ndarray, np.ndarray]:
    """The model restricted to the columns of the pieces in ``piece_mask`` (all policy rows kept)."""
    cols = np.flatnonzero(piece_mask[m.col_piece])
    n_pol = len(m.rows)
    keep = np.flatnonzero(piece_mask[m.cap_piece])
    rows = np.concatenate([np.arange(n_pol), n_pol + keep])
    A = m.A[rows][:, cols].tocsr()
    sub = dataclasses.replace(
        m, cost=m.cost[cols], col_ub=m.col_ub[cols], col_piece=m.col_piece[cols], col_type=m.col_type[cols],
        A=A, row_lo=m.row_lo[rows], row_hi=m.row_hi[rows], cap_piece=m.cap_piece[keep],
        cost_terms={k: v[cols] for k, v in m.cost_terms.items()}, warnings=list(m.warnings),
    )
    return sub, cols, rows


def _aggregate(m: AllocationModel) -> AllocationModel | None:
    """The model with its pieces merged into one per city, source role, station band and allowed types.

    Every policy row sees a column only through its city, type, role and station band (the hectares of a
    demand, farmland, open-space, TOD, jobs-housing, export or growth-limit row), so pieces that agree on
    those and on the types they may take are interchangeable but for their cost: the merged model (one
    capacity, the sum of theirs) reaches exactly the policy-row activities the whole model reaches (split a
    merged amount among its pieces in proportion to their capacity). It has the same feasibility and the
    same least elastic violation, in a few thousand columns instead of millions; its cost is 0, so it
    serves feasibility and the elastic explanation only. ``None`` when a policy row gives two merged
    columns different coefficients (a row kind that looks at the zone): the caller then uses ``m``. Kept
    on ``m`` once formed (an infeasible period asks twice: to settle and to explain).
    """
    if "_merged" not in m.__dict__:
        m.__dict__["_merged"] = _merge_pieces(m)
    return m.__dict__["_merged"]


def _merge_pieces(m: AllocationModel) -> AllocationModel | None:
    n_pol = len(m.rows)
    nt = len(m.types)
    n_p = m.piece_cap.size
    if m.n_cols == 0 or n_p == 0:
        return None
    pattern = np.zeros(n_p, dtype=np.int64)
    np.bitwise_or.at(pattern, m.col_piece, np.left_shift(np.int64(1), m.col_type))
    _, city_rank = np.unique(m.piece_city, return_inverse=True)
    key = ((city_rank.ravel().astype(np.int64) * len(ALL_SOURCE_ROLES) + m.piece_role) * 2
           + m.piece_near.astype(np.int64)) << nt | pattern
    gk, g_of_piece = np.unique(key, return_inverse=True)
    g_of_piece = g_of_piece.ravel()
    n_g = gk.size
    g_cap = np.bincount(g_of_piece, weights=m.piece_cap, minlength=n_g)
    # merged columns (group, type), numbered in that order without a sort
    ckey = g_of_piece[m.col_piece] * nt + m.col_type
    present = np.zeros(n_g * nt, dtype=bool)
    present[ckey] = True
    new_keys = np.flatnonzero(present)
    new_of_col = (np.cumsum(present) - 1)[ckey]
    n_new = new_keys.size
    col_piece = (new_keys // nt).astype(np.int64)
    col_type = (new_keys % nt).astype(np.int64)
    # policy coefficients of the merged columns: sums, counts and sums of squares through one 0/1 matrix;
    # every entry summed must be the same (count * sum of squares = sum squared)
    P = sparse.csr_matrix((np.ones(m.n_cols), (np.arange(m.n_cols), new_of_col)), shape=(m.n_cols, n_new))
    pol = m.A[:n_pol]
    ones = pol.copy()
    ones.data = np.ones_like(ones.data)
    # (the counts give the pattern: a product drops the entries that sum to 0, an explicit 0 is kept)
    C, S, Q = (ones @ P).tocoo(), (pol @ P).tocsr(), (pol.multiply(pol) @ P).tocsr()
    tot = np.asarray(S[C.row, C.col]).ravel()
    sq = np.asarray(Q[C.row, C.col]).ravel()
    if C.nnz and not np.allclose(C.data * sq, tot ** 2, rtol=1e-9, atol=1e-12):
        return None
    p_rows, p_cols, p_vals = C.row.astype(np.int64), C.col.astype(np.int64), tot / C.data
    multi = np.flatnonzero(np.bincount(col_piece, minlength=n_g) > 1)
    cap_row = np.full(n_g, -1, dtype=np.int64)
    cap_row[multi] = n_pol + np.arange(multi.size)
    cc = np.flatnonzero(cap_row[col_piece] >= 0)
    A = _csr_from_rows(np.concatenate([p_rows, cap_row[col_piece[cc]]]), np.concatenate([p_cols, cc]),
                       np.concatenate([p_vals, np.ones(cc.size)]), (n_pol + multi.size, n_new))
    first_piece = np.zeros(n_g, dtype=np.int64)
    first_piece[g_of_piece[::-1]] = np.arange(n_p)[::-1]
    return dataclasses.replace(
        m, cost=np.zeros(n_new), col_ub=g_cap[col_piece], col_piece=col_piece, col_type=col_type,
        piece_zone=m.piece_zone[first_piece], piece_role=m.piece_role[first_piece],
        piece_near=m.piece_near[first_piece],
        piece_cap=g_cap, A=A, row_lo=np.concatenate([m.row_lo[:n_pol], np.full(multi.size, -_INF)]),
        row_hi=np.concatenate([m.row_hi[:n_pol], g_cap[multi]]), cost_terms={}, warnings=list(m.warnings),
        cap_piece=multi.astype(np.int64), piece_city=m.piece_city[first_piece], piece_unit=m.piece_unit[first_piece],
        piece_band=m.piece_band[first_piece],
    )


def _cheapest(m: AllocationModel, sel: np.ndarray, group: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pieces of the cheapest selected columns per group until their capacity reaches ``target[group]``."""
    idx = np.flatnonzero(sel)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    g = group[idx]
    order = idx[np.lexsort((m.cost[idx], g))]
    g = group[order]
    return m.col_piece[order[_before_group_total(m.col_ub[order], g) < target[g]]]


def _before_group_total(amount: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For items sorted by ``group`` (then by price): the amount of the items before each one in its group."""
    cum = np.cumsum(amount)
    start = np.searchsorted(group, group, "left")
    return cum - amount - np.where(start > 0, cum[start - 1], 0.0)


ROLE_SHARE = 0.5
"""Share of each demand unit's demand the first working set holds per source role (see :func:`_initial_working_set`)."""


def _initial_working_set(m: AllocationModel, alpha: float) -> np.ndarray:
    """Pieces holding, per demand unit, the cheapest land worth ``alpha`` x demand: of each role
    ``ROLE_SHARE`` x that (so the set can meet caps on one role, e.g. farmland loss, from the others),
    near stations (TOD), and of every role and type together (:func:`_cheapest_for_all_types`).

    The per-role share was 1 (each role alone worth the whole demand): a set twice as large whose first solve
    cost more than the rounds it saved (``benchmarks/allocate.py --compare``: 100 000 zones, 89 000 -> 68 000
    pieces, cluster plan 11.2-14.0 -> 8.4-9.9 s; 400 000 zones, solve 83.0 -> 41.1 s; see docs/allocation.md). A set that still cannot meet the
    policies is widened (``alpha`` 4) and, failing that, the whole model is solved: the result is exact either way.
    """
    ws = np.zeros(m.piece_cap.size, dtype=bool)
    col_city = m.piece_city[m.col_piece]
    units = sorted(m.demand, key=lambda u: (-1 if u[0] is None else u[0], m.types.index(u[1])))
    uid = {u: i for i, u in enumerate(units)}
    target = np.array([alpha * m.demand[u] for u in units] + [0.0])
    if m.coordination == "cluster":
        unit_of_col = m.col_type.copy()
        lookup = np.array([uid[(None, t)] for t in m.types])
        unit_of_col = lookup[unit_of_col]
    else:
        cities = np.array(sorted({u[0] for u in units}), dtype=np.int64)
        pos = np.searchsorted(cities, col_city)
        pos = np.clip(pos, 0, max(cities.size - 1, 0))
        known = cities.size > 0
        ok = (cities[pos] == col_city) if known else np.zeros(col_city.size, bool)
        table = np.array([[uid.get((int(c), t), len(units)) for t in m.types] for c in cities],
                         dtype=np.int64).reshape(-1, len(m.types))
        unit_of_col = np.where(ok, table[pos, m.col_type] if known else len(units), len(units))
    n_u = len(units) + 1
    role = m.piece_role[m.col_piece]
    for r in range(len(ALL_SOURCE_ROLES)):
        ws[_cheapest(m, role == r, unit_of_col + n_u * r, np.tile(ROLE_SHARE * target, len(ALL_SOURCE_ROLES)))] = True
    if "residential" in m.types:
        near_res = m.piece_near[m.col_piece] & (m.col_type == m.types.index("residential"))
        ws[_cheapest(m, near_res, unit_of_col, target)] = True
    ws[_cheapest_for_all_types(m, alpha)] = True
    return ws


def _cheapest_for_all_types(m: AllocationModel, alpha: float) -> np.ndarray:
    """Pieces of every role, per demand city (one group in a cluster plan), cheapest first by their cheapest type,
    until their land reaches ``alpha`` x the demand of every type together.

    The per-role, per-type passes of :func:`_initial_working_set` can hold too little of the land the optimum
    uses: when the types' costs hardly differ (suitability alike for all types) they pick the same pieces for
    every type, so the cheapest role holds one type's demand, not all types'; the restricted optimum then reaches
    for dear land of the other roles and its duals price in most of the model (4 000² megaregion: 8 800 ->
    55 000 of 67 000 pieces in the second round).
    """
    n_p = m.piece_cap.size
    piece_cost = np.full(n_p, np.inf)
    np.minimum.at(piece_cost, m.col_piece, m.cost)
    need: dict[int, float] = {}
    if m.coordination == "cluster":
        group = np.zeros(n_p, dtype=np.int64)
        need[0] = alpha * sum(m.demand.values())
    else:
        group = m.piece_city.astype(np.int64)
        for (city, _), d in m.demand.items():
            need[int(city)] = need.get(int(city), 0.0) + alpha * d
    idx = np.flatnonzero(np.isfinite(piece_cost))
    order = idx[np.lexsort((piece_cost[idx], group[idx]))]
    g = group[order]
    keys = np.unique(g)
    target = np.array([need.get(int(k), 0.0) for k in keys])[np.searchsorted(keys, g)]
    return order[_before_group_total(m.piece_cap[order], g) < target]


def _solve_working_set(m: AllocationModel, scenario: Scenario, solver: str) -> _Solution:
    """Solve on a working set of cheap pieces, pricing the others with the duals (exact).

    A column left out is priced by its reduced cost ``c_j - A_j^T y`` with the duals ``y``
    of the restricted problem (the capacity rows of left-out pieces are slack, dual 0).
    Pieces with a negative reduced cost join the set and the problem is solved again;
    when none is left, the restricted optimum is optimal for the whole LP.
    """
    t0 = time.perf_counter()
    tol = 1e-7 * max(1.0, float(np.abs(m.cost).max(initial=0.0)))
    alpha = 1.0
    ws = _initial_working_set(m, alpha)
    acfg = scenario.config.allocation
    if solver == "highs" and acfg.highs_interface == "direct":
        first = _highs_method(acfg.highs_method, int(ws[m.col_piece].sum()), m.coordination)
        return _solve_working_set_highs(m, ws, first, acfg.time_limit_s, tol, t0)
    rounds = 0
    while True:
        rounds += 1
        if ws.all() or rounds > 30:
            sol = _solve(m, scenario, solver)
            sol.seconds = time.perf_counter() - t0
            sol.detail += f"; working set gave up after {rounds - 1} rounds, whole model solved"
            return sol
        sub, cols, rows = _submodel(m, ws)
        sol = _solve(sub, scenario, solver)
        if sol.status == "infeasible":
            merged = _merged_infeasible(m, scenario.config.allocation.time_limit_s, t0) if alpha == 1.0 else None
            if merged is not None:
                return merged
            if alpha == 1.0:  # widen once
                alpha *= 4.0
                ws |= _initial_working_set(m, alpha)
                continue
            # a second infeasible restriction most likely means an infeasible model: HiGHS tells it from the
            # matrix in one solve, far faster than a PuLP model of the whole; else the whole model is solved
            probe = _solve_highs_direct(m, method="simplex", time_limit=scenario.config.allocation.time_limit_s)
            if probe.status == "infeasible":
                probe.seconds = time.perf_counter() - t0
                probe.detail += "; working set: whole model infeasible"
                return probe
            ws[:] = True
            continue
        if sol.status != "optimal":
            sol.seconds = time.perf_counter() - t0
            return sol
        y = np.zeros(m.n_rows)
        y[rows] = sol.row_dual
        rc = m.cost - m.A.T @ y
        bad = (rc < -tol) & ~ws[m.col_piece]
        if not bad.any():
            x = np.zeros(m.n_cols)
            x[cols] = sol.x
            return _Solution("optimal", x, y, time.perf_counter() - t0,
                             f"working set: {int(ws.sum())} of {ws.size} pieces, {rounds} rounds")
        ws[m.col_piece[bad]] = True


def _solve_working_set_highs(m: AllocationModel, ws: np.ndarray, method: str, time_limit: float, tol: float,
                             t0: float) -> _Solution:
    """The working-set loop of :func:`_solve_working_set` on one warm-started HiGHS instance.

    The first solve uses ``method``; later rounds add the priced-in pieces and re-solve with the dual simplex
    from the previous basis, unless the priced-in pieces outnumber the set: then a fresh instance over the larger
    set is solved by the dual simplex from scratch (several times faster there than the warm start). An infeasible
    restriction is widened once (4 x the demand); a second one is settled by solving the whole model.
    """
    inc = _HighsIncremental(m, ws, method=method, time_limit=time_limit)
    widened = False
    for rounds in range(1, 31):
        sol = inc.solve()
        if sol.status == "infeasible":
            # an infeasible restriction: is the whole model infeasible? the merged model tells in well under a
            # second (the restricted and whole solves took minutes at 400 000 zones); if not, widen once
            merged = None if widened else _merged_infeasible(m, time_limit, t0)
            if merged is not None:
                return merged
            if not widened:
                widened = True
                inc.add(_initial_working_set(m, 4.0))
                inc.h.setOptionValue("solver", "simplex")
                continue
            return _whole_after(m, time_limit, t0, "whole model solved after an infeasible restriction")
        if sol.status != "optimal":
            sol.seconds = time.perf_counter() - t0
            return sol
        y = np.zeros(m.n_rows)
        y[inc.rows] = sol.row_dual
        rc = m.cost - m.A.T @ y
        bad = (rc < -tol) & ~inc.in_set[m.col_piece]
        if not bad.any():
            x = np.zeros(m.n_cols)
            x[inc.cols] = sol.x
            return _Solution("optimal", x, y, time.perf_counter() - t0,
                             f"working set (warm HiGHS): {int(inc.in_set.sum())} of {inc.in_set.size} pieces, "
                             f"{rounds} rounds")
        grow = np.zeros(m.piece_cap.size, dtype=bool)
        grow[m.col_piece[bad]] = True
        if int(grow.sum()) > int(inc.in_set.sum()):
            # the priced-in pieces outnumber the set: a basis of the small set is a poor start (4 000² megaregion,
            # 8 800 -> 55 000 pieces: warm 5.6-9 s against 0.65 s for a fresh dual simplex of the larger set)
            inc = _HighsIncremental(m, inc.in_set | grow, method="simplex", time_limit=time_limit)
            continue
        inc.add(grow)
        inc.h.setOptionValue("solver", "simplex")
    return _whole_after(m, time_limit, t0, "gave up after 30 rounds, whole model solved")


def _merged_infeasible(m: AllocationModel, time_limit: float, t0: float) -> _Solution | None:
    """The infeasible outcome when the merged model of :func:`_aggregate` (same feasibility as ``m``, a few
    thousand columns) is infeasible; ``None`` when it is feasible or cannot be formed."""
    agg = _aggregate(m)
    if agg is None:
        return None
    probe = _solve_highs_direct(agg, method="simplex", time_limit=time_limit)
    if probe.status != "infeasible":
        return None
    probe.seconds = time.perf_counter() - t0
    probe.detail += f"; working set: merged model of {agg.n_cols} columns infeasible"
    return probe


def _whole_after(m: AllocationModel, time_limit: float, t0: float, why: str) -> _Solution:
    """The whole model solved by the HiGHS simplex when the working set cannot settle it (``why`` in the detail)."""
    whole = _solve_highs_direct(m, method="simplex", time_limit=time_limit)
    whole.seconds = time.perf_counter() - t0
    whole.detail += f"; working set: {why}"
    return whole


def _solve_model(m: AllocationModel, scenario: Scenario, solver: str) -> _Solution:
    mode = scenario.config.allocation.working_set
    if mode == "always" or (mode == "auto" and m.n_cols >= WORKING_SET_MIN_VARIABLES):
        return _solve_working_set(m, scenario, solver)
    return _solve(m, scenario, solver)


# --------------------------------------------------------------------------- results


@dataclass
class Allocation:
    """The solved allocation of one period.

    Attributes
    ----------
    period : int
        End year of the period.
    coordination : str
        ``cluster`` or ``city``.
    status : str
        ``optimal``.
    objective : float
        Value of the objective (see :func:`allocate`).
    objective_terms : dict
        The objective split into its terms (sprawl, centre, farmland, open_space, suitability).
    targets : pandas.DataFrame
        One row per zone and urban type with new land: ``period, zone, city, type,
        hectares, cells, from_farmland_ha, from_open_space_ha, from_other_ha,
        near_station_ha`` (the last: hectares within the TOD radius, 0 without TOD).
    losses : pandas.DataFrame
        Per city: ``farmland_lost_ha, open_space_lost_ha, other_lost_ha``, new hectares
        per type, ``new_urban_ha`` and the open-space share before and after.
    duals : pandas.DataFrame
        One row per policy constraint: ``constraint, kind, city, type, activity, bound,
        binding, dual, cost, unit, meaning`` (see :func:`allocate`).
    mean_distance_new_m : float
        Hectare-weighted mean distance of the new land to existing urban land.
    warnings : list of str
    solver, build_seconds, solve_seconds
    taken : ndarray (zone row, role, band)
        Hectares taken per zone-table row, source role (:data:`ALL_SOURCE_ROLES`) and band
        (bits :data:`BAND_NEAR`, :data:`BAND_GREENBELT`, :data:`BAND_OUTSIDE`); used by
        :func:`advance_zone_table`.
    units : pandas.DataFrame
        One row per unit — a zone's developable land of one source group in one band
        (near a station, soft greenbelt, outside a soft boundary): ``unit`` (1..U), ``zone,
        city, group, role, near_station, greenbelt, outside_boundary, cap_cells``.
        :func:`unit_raster` maps every cell to its unit.
    unit_targets : pandas.DataFrame
        The plan in whole cells: ``period, unit, type, cells`` — what the growth engine
        converts, exactly (or falls short of), per unit and type.
    group_classes : list of tuple of str
        Source class names of each group.
    transfers : pandas.DataFrame
        Cluster-wide plans with ``demand.by_city``: ``period, type, origin_city, host_city,
        hectares`` — where each city's demand is placed (origin == host: at home).
    plan_broken, plan_unplaced : dict
        Policy rows the whole-cell plan could not meet (hectares off) and demand cells it
        could not place (see :func:`_whole_cells`); empty when the plan is exact.
    """

    period: int
    coordination: str
    status: str
    objective: float
    objective_terms: dict[str, float]
    targets: pd.DataFrame
    losses: pd.DataFrame
    duals: pd.DataFrame
    mean_distance_new_m: float
    warnings: list[str]
    solver: str
    build_seconds: float
    solve_seconds: float
    taken: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, len(ALL_SOURCE_ROLES), N_BANDS)))
    units: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    unit_targets: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    group_classes: list[tuple[str, ...]] = field(repr=False, default_factory=list)
    transfers: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    plan_broken: dict[str, float] = field(default_factory=dict)
    plan_unplaced: dict[str, int] = field(default_factory=dict)

    @property
    def farmland_lost_ha(self) -> float:
        return float(self.losses["farmland_lost_ha"].sum())

    @property
    def open_space_lost_ha(self) -> float:
        return float(self.losses["open_space_lost_ha"].sum())

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"allocation {self.period} ({self.coordination}, {self.solver}): {self.status}, "
                 f"objective {self.objective:.4f}; build {self.build_seconds:.2f} s, solve {self.solve_seconds:.2f} s"]
        by_type = self.targets.groupby("type")[["hectares", "cells"]].sum()
        seen = list(dict.fromkeys(self.targets["type"]))  # the scheme's order: default types first
        for t in sorted(seen, key=lambda t: (DEFAULT_URBAN_TYPES + tuple(seen)).index(t)):
            if t in by_type.index:
                lines.append(f"  {t:<12} {by_type.loc[t, 'hectares']:12.1f} ha  {int(by_type.loc[t, 'cells']):9d} cells "
                             f"in {int((self.targets.type == t).sum())} zones")
        lines.append(f"  farmland lost {self.farmland_lost_ha:.1f} ha, open space lost {self.open_space_lost_ha:.1f} ha, "
                     f"mean distance of new land to urban land {self.mean_distance_new_m:.0f} m")
        binding = self.duals[self.duals.binding & (self.duals.kind != "demand")]
        for r in binding.itertuples():
            lines.append(f"  binding {r.constraint}: {r.cost:.4g} {r.unit}")
        lines += [f"  note: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class WholeCells:
    """The plan in whole cells per unit (zone, source group, band) and urban type.

    ``cells[u, k]`` are the cells unit ``u`` of the model converts to type ``k``; every
    policy row of the LP holds on them (see :func:`_whole_cells`) unless ``broken`` names
    it; ``unplaced`` holds demand cells that no unit could take without breaking a policy.
    """

    cells: np.ndarray  # (units, types) int64
    broken: dict[str, float]
    unplaced: dict[str, int]


def _violation(act: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, np.maximum(act - hi, lo - act) - 1e-9)


def _whole_cells(m: AllocationModel, x: np.ndarray, cell_ha: float) -> WholeCells:
    """Round the LP solution to whole cells per (unit, type) so that every policy row holds.

    Works in cells: the policy rows of the LP are homogeneous in the hectares, so a row
    ``lo <= a.x <= hi`` reads ``lo / cell <= a.y <= hi / cell`` on cells ``y``; a demand row
    asks for exactly ``round(demand / cell)`` cells. Starting from the cells the LP chose,
    rounded down, each demand unit takes its missing cells one at a time: first from the
    units the LP had fractions of (largest fraction first), then from the cheapest units
    with room, in both passes preferring cells that repair a row the rounding broke and
    taking a cell only where no policy row gets worse. Rows still broken (a share that no
    whole number of cells meets, say) are then repaired by moving single cells between two
    units of one demand unit. What cannot be repaired is reported, never hidden.
    """
    n_pol = len(m.rows)
    U = m.unit_cap.size
    nt = len(m.types)
    empty = WholeCells(cells=np.zeros((U, nt), dtype=np.int64), broken={}, unplaced={})
    if m.n_cols == 0 or n_pol == 0:
        return empty
    ucol = m.piece_unit[m.col_piece] * nt + m.col_type
    agg, col_agg = np.unique(ucol, return_inverse=True)
    na = agg.size
    Pm = sparse.csr_matrix((np.ones(m.n_cols), (np.arange(m.n_cols), col_agg)), shape=(m.n_cols, na))
    Au = (_first_rows(m.A, n_pol) @ Pm) / float(m.n_tranches)  # every tranche of a unit has the same coefficients
    Au = sparse.csr_matrix(Au)
    Ac = Au.tocsc()
    xc = (Pm.T @ x) / cell_ha
    a_unit = agg // nt
    ucap = np.rint(m.unit_cap / cell_ha).astype(np.int64)
    a_cost = np.full(na, np.inf)
    np.minimum.at(a_cost, col_agg, m.cost)
    kinds = m.rows["kind"].to_numpy()
    lo = m.row_lo[:n_pol] / cell_ha
    hi = m.row_hi[:n_pol] / cell_ha
    is_dem = kinds == "demand"
    lo[is_dem] = np.rint(lo[is_dem])
    hi[is_dem] = lo[is_dem]
    names = m.rows["name"].tolist()

    y = np.minimum(np.floor(xc + 1e-6).astype(np.int64), ucap[a_unit])
    used = np.bincount(a_unit, weights=y, minlength=U).astype(np.int64)
    act = Au @ y.astype(np.float64)
    pol_rows = ~is_dem

    def col(j: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = Ac.indptr[j], Ac.indptr[j + 1]
        return Ac.indices[a:b], Ac.data[a:b]

    def delta_ok(rows: np.ndarray, vals: np.ndarray, sign: int) -> tuple[bool, float]:
        """May ``sign`` cells of a column be added (no policy row worse)? Returns (ok, violation gain)."""
        keep = pol_rows[rows]
        r, v = rows[keep], vals[keep] * sign
        if r.size == 0:
            return True, 0.0
        before = _violation(act[r], lo[r], hi[r])
        after = _violation(act[r] + v, lo[r], hi[r])
        return bool(np.all(after <= before + 1e-9)), float(before.sum() - after.sum())

    def add(j: int, sign: int = 1) -> None:
        r, v = col(j)
        y[j] += sign
        used[a_unit[j]] += sign
        act[r] += v * sign

    unplaced: dict[str, int] = {}
    dem_rows = np.flatnonzero(is_dem)
    for r in dem_rows:
        cols = Au.indices[Au.indptr[r]:Au.indptr[r + 1]]
        need = int(lo[r] - round(act[r]))
        if need <= 0 or cols.size == 0:
            if need > 0:
                unplaced[names[r]] = need
            continue
        frac = xc[cols] - y[cols]
        first = cols[frac > 1e-6]
        first = first[np.argsort(-(xc[first] - y[first]), kind="stable")]
        rest = cols[np.argsort(a_cost[cols], kind="stable")]
        for cand, repeat in ((first, False), (rest, True)):
            if need <= 0:
                break
            # two passes: cells that repair a broken row first, then any cell that breaks nothing
            for want_gain in (True, False):
                if need <= 0:
                    break
                if want_gain and not _violation(act[pol_rows], lo[pol_rows], hi[pol_rows]).any():
                    continue
                for j in cand:
                    while need > 0 and used[a_unit[j]] < ucap[a_unit[j]]:
                        ok, gain = delta_ok(*col(j), 1)
                        if not ok or (want_gain and gain <= 0):
                            break
                        add(j)
                        need -= 1
                        if not repeat:
                            break
                    if need <= 0:
                        break
        if need > 0:
            unplaced[names[r]] = need

    # repair: move one cell at a time between two columns of one demand row
    def try_move(j_out: int, j_in: int) -> bool:
        r_out, r_in = col(j_out), col(j_in)
        if not np.array_equal(r_out[0][is_dem[r_out[0]]], r_in[0][is_dem[r_in[0]]]):
            return False
        if used[a_unit[j_in]] - (a_unit[j_in] == a_unit[j_out]) >= ucap[a_unit[j_in]]:
            return False
        rows = np.union1d(r_out[0], r_in[0])
        rows = rows[pol_rows[rows]]
        before = _violation(act[rows], lo[rows], hi[rows])
        add(j_out, -1)
        add(j_in)
        after = _violation(act[rows], lo[rows], hi[rows])
        if after.sum() < before.sum() - 1e-9 and np.all(after <= before + 1e-9):
            return True
        add(j_in, -1)
        add(j_out)
        return False

    dem_of = np.full(na, -1, dtype=np.int64)  # the demand row of each column
    for r in dem_rows:
        dem_of[Au.indices[Au.indptr[r]:Au.indptr[r + 1]]] = r

    def row_cols(r: int) -> np.ndarray:
        return Au.indices[Au.indptr[r]:Au.indptr[r + 1]] if r >= 0 else np.zeros(0, np.int64)

    def try_drop(j: int) -> bool:
        """Leave one planned cell unplaced (demand falls short, reported) when that repairs a row."""
        r, v = col(j)
        keep = pol_rows[r]
        before = _violation(act[r[keep]], lo[r[keep]], hi[r[keep]])
        after = _violation(act[r[keep]] - v[keep], lo[r[keep]], hi[r[keep]])
        if after.sum() < before.sum() - 1e-9 and np.all(after <= before + 1e-9):
            add(j, -1)
            unplaced[names[dem_of[j]]] = unplaced.get(names[dem_of[j]], 0) + 1
            return True
        return False

    for _ in range(10_000):
        viol = _violation(act, lo, hi)
        viol[is_dem] = 0.0
        moved = False
        for i in np.flatnonzero(viol > 0):
            rc = Au.indices[Au.indptr[i]:Au.indptr[i + 1]]
            rv = Au.data[Au.indptr[i]:Au.indptr[i + 1]]
            up = act[i] < lo[i]  # the row needs more activity
            gain_in = rc[(rv > 0) == up]
            gain_in = gain_in[np.argsort(a_cost[gain_in], kind="stable")][:30]
            gain_out = rc[((rv < 0) == up) & (y[rc] > 0)]
            gain_out = gain_out[np.argsort(-a_cost[gain_out], kind="stable")][:30]
            # a cell moves into the row's better side from elsewhere in its demand unit, or out of its
            # worse side to elsewhere in its demand unit
            for jo in gain_out:
                alt = row_cols(dem_of[jo])
                alt = alt[np.argsort(a_cost[alt], kind="stable")][:100]
                if any(try_move(int(jo), int(ji)) for ji in alt if ji != jo):
                    moved = True
                    break
            if not moved:
                for ji in gain_in:
                    alt = row_cols(dem_of[ji])
                    alt = alt[y[alt] > 0]
                    alt = alt[np.argsort(-a_cost[alt], kind="stable")][:100]
                    if any(try_move(int(jo), int(ji)) for jo in alt if ji != jo):
                        moved = True
                        break
            if not moved:  # policies before demand: leave a cell unplaced
                moved = any(try_drop(int(jo)) for jo in gain_out)
            if moved:
                break
        if not moved:
            break
    viol = _violation(act, lo, hi)
    if ((viol > 0) & ~is_dem).any():
        # single-cell moves got stuck (several ratio rows binding together): an integer programme over the
        # columns finds whole cells that keep every policy row and place as much demand as possible
        mip = _whole_cells_mip(Au, lo, hi, is_dem, a_unit, ucap, a_cost, xc)
        if mip is not None:
            y = mip
            act = Au @ y.astype(np.float64)
            viol = _violation(act, lo, hi)
            unplaced = {names[r]: round(lo[r] - act[r]) for r in dem_rows if lo[r] - act[r] > 0.5}
    broken = {names[i]: float(viol[i] * cell_ha) for i in np.flatnonzero((viol > 0) & ~is_dem)}
    cells = np.zeros((U, nt), dtype=np.int64)
    cells[a_unit, agg % nt] = y
    return WholeCells(cells=cells, broken=broken, unplaced=unplaced)


def _whole_cells_mip(Au: sparse.csr_matrix, lo: np.ndarray, hi: np.ndarray, is_dem: np.ndarray, a_unit: np.ndarray,
                     ucap: np.ndarray, a_cost: np.ndarray, xc: np.ndarray, *,
                     max_columns: int = 20_000, time_limit: float = 60.0) -> np.ndarray | None:
    """Whole cells per column keeping every policy row, most demand placed, then cheapest (HiGHS MIP).

    Demand rows become ``<= demand``, and each unplaced cell costs more than any placement, so the
    programme places all it can. Every policy row has ``y = 0`` as a solution, so the programme is
    always feasible. On large models only the columns the LP used and, per demand row, its 200
    cheapest columns enter. Returns None when HiGHS finds no solution within ``time_limit``.
    """
    import highspy

    na = xc.size
    keep = np.zeros(na, dtype=bool)
    if na <= max_columns:
        keep[:] = True
    else:
        keep |= xc > 1e-9
        for r in np.flatnonzero(is_dem):
            cols = Au.indices[Au.indptr[r]:Au.indptr[r + 1]]
            keep[cols[np.argsort(a_cost[cols], kind="stable")][:200]] = True
    cols = np.flatnonzero(keep)
    # unit capacity rows: the columns of one unit share its cells
    units, inv = np.unique(a_unit[cols], return_inverse=True)
    cap = sparse.csr_matrix((np.ones(cols.size), (inv, np.arange(cols.size))), shape=(units.size, cols.size))
    A = sparse.vstack([Au[:, cols], cap], format="csc")
    row_lo = np.concatenate([np.where(is_dem, -np.inf, lo), np.full(units.size, -np.inf)])
    row_hi = np.concatenate([hi, ucap[units].astype(np.float64)])
    cost = a_cost[cols]
    span = float(np.abs(cost).max(initial=0.0)) if cost.size else 0.0
    penalty = 10.0 * (span + 1.0) * max(1.0, float(np.abs(xc).sum()))  # one unplaced cell outweighs every cost
    dem_weight = np.asarray(Au[np.flatnonzero(is_dem)][:, cols].sum(axis=0)).ravel()
    obj = cost - penalty * dem_weight
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", 1e-6)
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = cols.size, A.shape[0]
    lp.col_cost_ = obj
    lp.col_lower_ = np.zeros(cols.size)
    lp.col_upper_ = ucap[a_unit[cols]].astype(np.float64)
    lp.row_lower_ = np.where(np.isinf(row_lo), -inf, row_lo)
    lp.row_upper_ = np.where(np.isinf(row_hi), inf, row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = cols.size, A.shape[0]
    lp.integrality_ = [highspy.HighsVarType.kInteger] * cols.size
    h.passModel(lp)
    h.run()
    if h.getInfo().primal_solution_status != 2:  # no feasible solution found
        return None
    y = np.zeros(na, dtype=np.int64)
    y[cols] = np.rint(np.asarray(h.getSolution().col_value)).astype(np.int64)
    return y


def _unit_table(m: AllocationModel, zt: pd.DataFrame, cell_ha: float) -> pd.DataFrame:
    """One row per unit (zone, source group, band): ids 1..U, as the growth engine's groups."""
    band = m.unit_band
    return pd.DataFrame({
        "unit": np.arange(1, m.unit_cap.size + 1, dtype=np.int64),
        "zone": zt["zone"].to_numpy()[m.unit_zone].astype(np.int64),
        "city": zt["city"].to_numpy()[m.unit_zone].astype(np.int64),
        "group": m.unit_group,
        "role": np.asarray(ALL_SOURCE_ROLES, dtype=object)[m.unit_role],
        "near_station": (band & BAND_NEAR) > 0,
        "greenbelt": (band & BAND_GREENBELT) > 0,
        "outside_boundary": (band & BAND_OUTSIDE) > 0,
        "cap_cells": np.rint(m.unit_cap / cell_ha).astype(np.int64),
    })


def _transfers(m: AllocationModel, zt: pd.DataFrame, scenario: Scenario, hosted: pd.DataFrame) -> pd.DataFrame:
    """Where each city's own demand went in a cluster-wide plan (``demand.by_city`` given).

    ``hosted`` holds the planned hectares per ``city, type``. A city serves its own demand
    first (``origin == host``); its unserved demand is shared among the cities hosting more
    than their own demand, in proportion to their surplus.
    """
    cols = ["period", "type", "origin_city", "host_city", "hectares"]
    if m.coordination != "cluster" or not scenario.config.demand.by_city:
        return pd.DataFrame(columns=cols)
    per_city, _ = city_demand(zt, scenario, m.period)
    rows = []
    for t in m.types:
        h = hosted[hosted["type"] == t].set_index("city")["hectares"]
        cities = sorted({c for c, tt in per_city if tt == t} | {int(c) for c in h.index})
        d = np.array([per_city.get((c, t), 0.0) for c in cities])
        got = np.array([float(h.get(c, 0.0)) for c in cities])
        own = np.minimum(d, got)
        export = d - own
        surplus = got - own
        total = surplus.sum()
        for i, c in enumerate(cities):
            if own[i] > 1e-9:
                rows.append((m.period, t, c, c, float(own[i])))
            if export[i] > 1e-9 and total > 1e-9:
                for j, c2 in enumerate(cities):
                    if surplus[j] > 1e-9:
                        rows.append((m.period, t, c, c2, float(export[i] * surplus[j] / total)))
    return pd.DataFrame(rows, columns=cols)


def _results(m: AllocationModel, zt: pd.DataFrame, sol: _Solution, cell_ha: float, solver: str,
             scenario: Scenario) -> Allocation:
    x = np.clip(np.asarray(sol.x, dtype=np.float64), 0.0, None)
    x = np.minimum(x, m.col_ub)
    x[x < 1e-9] = 0.0
    nz = len(zt)
    col_zone = m.piece_zone[m.col_piece]
    col_role = m.piece_role[m.col_piece]
    nt = len(m.types)
    roles = {r: ALL_SOURCE_ROLES.index(r) for r in m.roles}
    key = col_zone * nt + m.col_type
    ha = np.bincount(key, weights=x, minlength=nz * nt)
    by_role = {r: np.bincount(key, weights=np.where(col_role == i, x, 0.0), minlength=nz * nt)
               for r, i in roles.items()}
    near_ha = np.bincount(key, weights=np.where(m.piece_near[m.col_piece], x, 0.0), minlength=nz * nt)
    nr = len(ALL_SOURCE_ROLES)
    key2 = (col_zone * nr + col_role) * N_BANDS + m.piece_band[m.col_piece]
    taken = np.bincount(key2, weights=x, minlength=nz * nr * N_BANDS).reshape(nz, nr, N_BANDS)
    # the plan in whole cells per unit and type; every policy row holds on it (or is reported)
    whole = _whole_cells(m, x, cell_ha)
    for name, v in whole.broken.items():
        m.warnings.append(f"whole-cell plan: {name} cannot be met in whole cells (off by {v:.2f} ha)")
    for name, n_cells in whole.unplaced.items():
        m.warnings.append(f"whole-cell plan: {n_cells} cell(s) of {name} fit nowhere without breaking a policy")
    ucells = whole.cells
    ukey = m.unit_zone[:, None] * nt + np.arange(nt)[None, :]
    band = m.unit_band[:, None]

    def per_zone_type(weights: np.ndarray) -> np.ndarray:
        return np.bincount(ukey.ravel(), weights=weights.ravel(), minlength=nz * nt).astype(np.int64)

    cells_zt = per_zone_type(ucells)
    role_cells = {r: per_zone_type(np.where(m.unit_role[:, None] == i, ucells, 0)) for r, i in roles.items()}
    band_cells = {name: per_zone_type(np.where((band & bit) > 0, ucells, 0))
                  for name, bit in (("near_station", BAND_NEAR), ("greenbelt", BAND_GREENBELT),
                                    ("outside_boundary", BAND_OUTSIDE))}
    ent = np.flatnonzero((ha > 1e-9) | (cells_zt > 0))
    zi, ki = ent // nt, ent % nt
    city = zt["city"].to_numpy(dtype=np.int64)
    targets = pd.DataFrame({
        "period": np.full(ent.size, m.period, dtype=np.int64),
        "zone": zt["zone"].to_numpy()[zi].astype(np.int64),
        "city": city[zi],
        "type": np.asarray(m.types, dtype=object)[ki],
        "hectares": ha[ent],
        "cells": cells_zt[ent],
        **{f"from_{r}_ha": by_role[r][ent] for r in m.roles},
        "near_station_ha": near_ha[ent],
        **{f"from_{r}_cells": role_cells[r][ent] for r in m.roles},
        **{f"{b}_cells": band_cells[b][ent] for b in band_cells},
    })
    units = _unit_table(m, zt, cell_ha)
    uu, kk = np.nonzero(ucells)
    unit_targets = pd.DataFrame({
        "period": np.full(uu.size, m.period, dtype=np.int64),
        "unit": uu.astype(np.int64) + 1,
        "type": np.asarray(m.types, dtype=object)[kk],
        "cells": ucells[uu, kk],
    })
    hosted = targets.groupby(["city", "type"], as_index=False)["cells"].sum()
    hosted["hectares"] = hosted["cells"] * cell_ha
    transfers = _transfers(m, zt, scenario, hosted)

    # losses by city
    cities_arr = np.unique(city)
    ci = np.searchsorted(cities_arr, city[col_zone])
    cities = [int(c) for c in cities_arr]
    nc = len(cities)
    losses = pd.DataFrame({"city": cities})
    for r, i in roles.items():
        losses[f"{r}_lost_ha"] = np.bincount(ci, weights=np.where(col_role == i, x, 0.0), minlength=nc)
    for k, t in enumerate(m.types):
        losses[f"new_{t}_ha"] = np.bincount(ci, weights=np.where(m.col_type == k, x, 0.0), minlength=nc)
    losses["new_urban_ha"] = np.bincount(ci, weights=x, minlength=nc)
    if "land_ha" in zt.columns and "open_space_ha" in zt.columns:
        g = zt.groupby("city")[["land_ha", "open_space_ha"]].sum().reindex(cities).fillna(0.0)
        land = g["land_ha"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            losses["open_space_share_before"] = g["open_space_ha"].to_numpy() / land
            losses["open_space_share_after"] = (g["open_space_ha"].to_numpy() - losses["open_space_lost_ha"]) / land

    total = float(x.sum())
    dist = zt["dist_urban_m"].to_numpy(dtype=np.float64) if "dist_urban_m" in zt.columns else np.zeros(nz)
    dist = np.nan_to_num(dist, nan=0.0, posinf=0.0)
    mean_dist = float((x * dist[col_zone]).sum() / total) if total > 0 else 0.0
    terms = {k: float(v @ x) for k, v in m.cost_terms.items()}
    duals = _duals(m, x, sol.row_dual, cell_ha)
    return Allocation(
        period=m.period, coordination=m.coordination, status="optimal", objective=float(m.cost @ x),
        objective_terms=terms, targets=targets, losses=losses, duals=duals, mean_distance_new_m=mean_dist,
        warnings=list(m.warnings), solver=solver, build_seconds=m.build_seconds, solve_seconds=sol.seconds,
        taken=taken, units=units, unit_targets=unit_targets, group_classes=list(m.group_classes),
        transfers=transfers, plan_broken=dict(whole.broken), plan_unplaced=dict(whole.unplaced),
    )


def _first_rows(A: sparse.csr_matrix, n: int) -> sparse.csr_matrix:
    """``A[:n]`` as a view of ``A``'s arrays (no copy of the policy rows, which hold most of the non-zeros)."""
    end = int(A.indptr[n])
    return sparse.csr_matrix((A.data[:end], A.indices[:end], A.indptr[:n + 1]), shape=(n, A.shape[1]), copy=False)


def _duals(m: AllocationModel, x: np.ndarray, y: np.ndarray | None, cell_ha: float) -> pd.DataFrame:
    n = len(m.rows)
    cols = ["constraint", "kind", "city", "type", "activity", "bound", "binding", "dual", "cost", "unit", "meaning"]
    if n == 0:
        return pd.DataFrame(columns=cols)
    act = _first_rows(m.A, n) @ x
    y = np.zeros(n) if y is None else np.asarray(y[:n], dtype=np.float64)
    res_k = m.types.index("residential") if "residential" in m.types else -1
    col_city = None
    recs = []
    for i, r in enumerate(m.rows.to_dict("records")):
        kind = r["kind"]
        lo, hi = m.row_lo[i], m.row_hi[i]
        bound = hi if np.isfinite(hi) else lo
        binding = bool(abs(act[i] - bound) <= 1e-6 * max(1.0, abs(bound)))
        dual = float(y[i])  # d objective / d bound
        where = "the cluster" if r.get("city") is None or pd.isna(r.get("city")) else f"city {int(r['city'])}"
        if kind == "demand":
            cost, unit = dual, "per ha of demand"
            meaning = f"change in the objective if {r['type']} demand of {where} grew by 1 ha"
        elif kind == "export_limit":
            cost, unit = dual, "per ha more kept at home"
            meaning = (f"increase in the objective if {where} had to host 1 ha more of its own {r['type']} demand")
        elif kind in ("farmland_cap", "growth_limit"):
            cost, unit = -dual, "per ha the limit is lowered"
            what = "the farmland-loss cap" if kind == "farmland_cap" else f"the growth limit of {where}"
            meaning = f"increase in the objective if {what} were 1 ha lower"
        elif kind == "open_space_quota":
            cost, unit = -dual * r["land_ha"] / 100.0, "per percentage point of quota"
            meaning = f"increase in the objective if the open-space quota of {where} rose by 1 percentage point"
        else:
            if col_city is None:
                col_city = m.piece_zone[m.col_piece]
            cols_i = m.A.indices[m.A.indptr[i]:m.A.indptr[i + 1]]
            res_ha = float(x[cols_i][m.col_type[cols_i] == res_k].sum())
            if kind == "tod":
                cost, unit = dual * res_ha / 100.0, "per percentage point of TOD share"
                meaning = (f"increase in the objective if the share of new residential land of {where} within "
                           f"{r['radius_m']:g} m of a station had to rise by 1 percentage point")
            elif kind == "jobs_housing_min":
                cost, unit = dual * res_ha * 0.1, "per 0.1 of the jobs-housing ratio"
                meaning = f"increase in the objective if the minimum jobs-housing ratio of {where} rose by 0.1"
            else:
                cost, unit = -dual * res_ha * 0.1, "per 0.1 of the jobs-housing ratio"
                meaning = f"increase in the objective if the maximum jobs-housing ratio of {where} fell by 0.1"
        recs.append({"constraint": r["name"], "kind": kind, "city": r.get("city"), "type": r.get("type"),
                     "activity": float(act[i]), "bound": float(bound), "binding": binding, "dual": dual,
                     "cost": float(cost) + 0.0, "unit": unit, "meaning": meaning})
    out = pd.DataFrame(recs, columns=cols)
    out["city"] = out["city"].astype("Int64")
    return out


# --------------------------------------------------------------------------- infeasibility


def _elastic(m: AllocationModel) -> AllocationModel:
    """The model with penalised slack on every policy row (demand slack 10x dearer, 1e-6 more per type rank)."""
    n = len(m.rows)
    kinds = m.rows["kind"].to_numpy()
    lo, hi = m.row_lo[:n], m.row_hi[:n]
    # ">= lo" rows (and demand equalities) get +s, "<= hi" rows get -s
    plus = np.flatnonzero(np.isfinite(lo))
    minus = np.flatnonzero(np.isfinite(hi) & ~np.isfinite(lo))
    slack_rows = np.concatenate([plus, minus])
    signs = np.concatenate([np.ones(plus.size), -np.ones(minus.size)])
    ns = slack_rows.size
    S = sparse.csr_matrix((signs, (slack_rows, np.arange(ns))), shape=(m.n_rows, ns))
    A = sparse.hstack([m.A, S], format="csr")
    # demand slack 10x dearer than a policy's, and a hair dearer per type in the scheme's order, so that when a
    # unit's land is short for several types' demand (any split costs the same) the shortfall is put on the first
    # types, the same whatever the solver's pivoting or the model's size
    type_rank = {t: k for k, t in enumerate(m.types)}
    ranks = np.array([type_rank.get(t, 0) for t in m.rows["type"].to_numpy()[slack_rows]], dtype=np.float64) \
        if "type" in m.rows else np.zeros(slack_rows.size)
    pen = np.where(kinds[slack_rows] == "demand", 10.0 * (1.0 + 1e-6 * ranks), 1.0)
    em = dataclasses.replace(m)
    em.A = A
    em.cost = np.concatenate([np.zeros(m.n_cols), pen])
    em.col_ub = np.concatenate([m.col_ub, np.full(ns, 1e12)])
    em.slack_rows = slack_rows  # type: ignore[attr-defined]
    return em


def _explain(m: AllocationModel, sol: _Solution, zt: pd.DataFrame, scenario: Scenario) -> InfeasibleAllocationError:
    em_rows = m.rows.to_dict("records")
    slack_rows = m.slack_rows  # type: ignore[attr-defined]
    s = sol.x[m.n_cols - slack_rows.size:] if sol.x is not None else np.zeros(0)
    x = sol.x[: m.n_cols - slack_rows.size] if sol.x is not None else None
    col_type = m.col_type
    res_k = m.types.index("residential") if "residential" in m.types else -1
    jobs_k = [k for k, t in enumerate(m.types) if t in ("industrial", "commercial")]
    parts: list[str] = []
    violations: dict[str, float] = {}
    advice: dict[str, float] = {}

    def advise(key: str, value: float, loosest: Any) -> None:
        advice[key] = loosest(advice[key], value) if key in advice else value

    def down(v: float, step: float) -> float:  # round towards the looser side of a lower bound
        return math.floor(v / step + 1e-9) * step

    def up(v: float, step: float) -> float:
        return math.ceil(v / step - 1e-9) * step

    ca = zt.attrs.get("cell_area_ha")
    for r_i, v in zip(slack_rows, s, strict=True):
        if v <= 1e-6:
            continue
        r = em_rows[r_i]
        kind = r["kind"]
        where = "the cluster" if r.get("city") is None or pd.isna(r.get("city")) else f"city {int(r['city'])}"
        yr = m.period
        if kind == "demand":
            msg = (f"{r['type']} demand of {where} in {yr} ({r['bound']:.1f} ha) exceeds its developable land by "
                   f"{v:.1f} ha; lower the demand, allow more source classes (growth.conversion) or relax "
                   "red line / greenbelt / growth boundary" + (", or plan cluster-wide (policy.coordination: "
                                                               "cluster)" if m.coordination == "city" else ""))
            violations[r["name"]] = float(v)
            if m.coordination == "cluster":
                lower = r["bound"] - v
                advise(f"demand.{r['type']}.{yr}", down(lower, float(ca)) if ca else down(lower, 0.1), min)
        elif kind == "farmland_cap":
            need = up(r["cap_ha"] + v, 0.1)
            msg = (f"the farmland-loss cap in {yr} ({r['bound']:.1f} ha available) is exceeded by {v:.1f} ha; "
                   f"raise policy.farmland_loss_cap.hectares to at least {need:.1f} or lower demand")
            violations[r["name"]] = float(v)
            advise("policy.farmland_loss_cap.hectares", need, max)
        elif kind == "open_space_quota":
            L = r["land_ha"]
            pp = 100.0 * v / L if L > 0 else _INF
            new_share = max(down(100.0 * r["share"] - pp, 0.1), 0.0)
            advise("policy.open_space_quota.share", new_share / 100.0, min)
            msg = (f"the {100 * r['share']:g} % open-space quota of {where} in {yr} cannot be met with this demand: "
                   f"{v:.1f} ha more open space must be built on; relax the quota to {new_share:.1f} % "
                   + ("or move demand to other cities (policy.coordination: cluster)" if m.coordination == "city"
                      else "or lower the demand"))
            violations[r["name"]] = float(pp)
        elif kind == "export_limit":
            share = max(0.0, 1.0 - (r["bound"] - v) / r["demand_ha"]) if r["demand_ha"] > 0 else 1.0
            share = min(1.0, up(share, 1e-4))
            msg = (f"{where} cannot host {r['bound']:.1f} ha of its own {r['type']} demand in {yr} ({v:.1f} ha "
                   f"short); raise policy.transfers.max_export_share to at least {share:.4f}")
            violations[r["name"]] = float(share - r["share"])
            advise("policy.transfers.max_export_share", share, max)
        elif kind == "growth_limit":
            need = up(r["bound"] + v, 0.1)
            msg = (f"the growth limit of {where} ({r['bound']:.1f} ha) is exceeded by {v:.1f} ha in {yr}; raise "
                   f"policy.city_growth_limits.{int(r['city'])} to at least {need:.1f}"
                   + (" or move demand to other cities" if m.coordination == "cluster" else ""))
            violations[r["name"]] = float(v)
            advise(f"policy.city_growth_limits.{int(r['city'])}", need, max)
        else:
            cols_i = m.A.indices[m.A.indptr[r_i]:m.A.indptr[r_i + 1]]
            cols_i = cols_i[cols_i < x.size]
            res_ha = float(x[cols_i][col_type[cols_i] == res_k].sum())
            jobs_ha = float(x[cols_i][np.isin(col_type[cols_i], jobs_k)].sum())
            if kind == "tod":
                near_ha = float(x[cols_i][(col_type[cols_i] == res_k) & m.piece_near[m.col_piece[cols_i]]].sum())
                reach = down(100.0 * near_ha / res_ha, 0.1) if res_ha > 0 else 0.0
                msg = (f"the TOD share of {where} in {yr} ({100 * r['share']:g} % of new residential within "
                       f"{r['radius_m']:g} m of a station) is short by {v:.1f} ha; lower policy.tod.share to "
                       f"{reach:.1f} % or widen policy.tod.radius_m")
                violations[r["name"]] = float(100 * r["share"] - reach)
                advise("policy.tod.share", reach / 100.0, min)
            elif kind == "jobs_housing_min":
                ratio = down(jobs_ha / res_ha, 0.001) if res_ha > 0 else 0.0
                msg = (f"the jobs-housing minimum of {where} in {yr} ({r['ratio']:g}) is short by {v:.1f} ha of "
                       f"industrial + commercial land; lower policy.jobs_housing.min to {ratio:.3f} or change the "
                       "demand mix")
                violations[r["name"]] = float(r["ratio"] - ratio)
                advise("policy.jobs_housing.min", ratio, min)
            else:
                ratio = up(jobs_ha / res_ha, 0.001) if res_ha > 0 else _INF
                msg = (f"the jobs-housing maximum of {where} in {yr} ({r['ratio']:g}) is exceeded by {v:.1f} ha of "
                       f"industrial + commercial land; raise policy.jobs_housing.max to {ratio:.3f} or change the "
                       "demand mix")
                violations[r["name"]] = float(ratio - r["ratio"])
                if math.isfinite(ratio):
                    advise("policy.jobs_housing.max", ratio, max)
        parts.append(f"{r['name']}: {msg}")
    if not parts:
        parts.append("the solver reported infeasibility but the elastic re-solve needs no relaxation; "
                     "check for numerical trouble (very large or tiny hectares) and retry with the other solver")
    head = f"allocation {m.period} ({m.coordination}) is infeasible; "
    return InfeasibleAllocationError(head + "; ".join(parts), violations=violations, advice=advice)


def _least_feasible_jobs_housing_max(m: AllocationModel, time_limit: float) -> float | None:
    """The least ``policy.jobs_housing.max`` (to 0.001) under which the model ``m`` is feasible, by bisection.

    Each step sets the residential coefficient ``-max`` of every jobs-housing maximum row of the merged model
    (:func:`_aggregate`; the whole model when it cannot be formed) and asks HiGHS whether it is feasible.
    """
    base = _aggregate(m) or m
    A = base.A.tocsr(copy=True)
    rows = np.flatnonzero(base.rows["kind"].to_numpy() == "jobs_housing_max")
    res_k = base.types.index("residential")
    ent = np.concatenate([np.arange(A.indptr[r], A.indptr[r + 1]) for r in rows]) if rows.size else np.zeros(0, int)
    res_ent = ent[base.col_type[A.indices[ent]] == res_k]

    def feasible(v: float) -> bool:
        A.data[res_ent] = -v
        sol = _solve_highs_direct(dataclasses.replace(base, A=A, cost=np.zeros(base.n_cols)), method="simplex",
                                  time_limit=time_limit)
        return sol.status == "optimal"

    lo, hi = float(base.rows.loc[rows[0], "ratio"]) if rows.size else 0.0, 1000.0
    if not rows.size or not feasible(hi):
        return None
    while hi - lo > 0.0005:
        mid = (lo + hi) / 2
        if feasible(mid):
            hi = mid
        else:
            lo = mid
    return math.ceil(hi * 1000 - 1e-9) / 1000


# --------------------------------------------------------------------------- public API


def allocate(
    zone_table: pd.DataFrame,
    scenario: Scenario,
    period: int,
    *,
    solver: str | None = None,
    coordination: str | None = None,
    farmland_lost_so_far_ha: float = 0.0,
    cell_area_ha: float | None = None,
) -> Allocation:
    r"""Solve the allocation LP of one period.

    Variables ``x[p, k] >= 0`` are hectares of piece ``p`` (zone ``z(p)``, source role
    ``r(p)``, in or out of a station radius, fill tranche ``j(p)``) converted to urban type
    ``k``. The objective, minimised, is

    .. math::

        \sum_{p,k} x_{pk}\,\bigl( w_s\,d^{urban}_{z(p)} + w_c\,d^{centre}_{z(p)}
            + w_f\,[r(p)=\mathrm{farmland}] + w_o\,[r(p)=\mathrm{open\ space}]
            - w_u\,S_{z(p),k} + w_{fill}\,j(p) \bigr)

    with ``d`` mean distances in km (``dist_urban_m``, ``dist_centre_m`` / 1000; 0 when
    absent), ``S`` mean suitability and the weights ``w`` from ``allocation.weights``
    (``sprawl``, ``centre``, ``farmland``, ``open_space``, ``suitability``, ``fill``); every
    term is per hectare. Each zone's developable land of a role is split into
    ``allocation.fill_tranches`` equal tranches ``j = 0, 1, ...``; the rising fill cost makes
    the objective convex in the share of a zone that is filled, so growth spreads over
    neighbouring zones instead of filling the cheapest zones to the last hectare.

    Constraints (each present only when configured):

    * demand: ``sum_p x[p,k] = D_k`` per type (``coordination: cluster``) or
      ``sum_{p in city i} x[p,k] = D_{i,k}`` per city and type (``city``; ``demand.by_city``,
      or the cluster demand split by ``demand.split``, see :func:`city_demand`);
    * capacity: ``sum_k x[p,k] <= cap_p`` (developable hectares of the piece);
    * farmland cap: ``sum_{farmland p,k} x <= H`` (``per: horizon`` subtracts
      ``farmland_lost_so_far_ha``);
    * open-space quota: per city or cluster ``O - sum_{open-space p,k} x >= share * L``
      (``O``, ``L`` from ``open_space_ha``, ``land_ha``; a unit already below the quota may
      lose no more open space, with a warning);
    * TOD: ``sum_{near p} x[p,res] >= share * sum_p x[p,res]`` for the cluster (per city
      in ``city`` mode, cities without station land skipped with a warning);
    * jobs-housing per city: ``min * R_i <= I_i + C_i <= max * R_i`` on new hectares;
    * growth limits: ``sum_{p in city i,k} x <= limit_i``.

    Parameters
    ----------
    zone_table : pandas.DataFrame
        From :func:`zone_table` (or hand-built with the same columns and
        ``attrs["cell_area_ha"]``).
    scenario : Scenario
    period : int
        End year of the period; demand is read for it.
    solver : {"cbc", "highs"}, optional
        Default ``allocation.solver``.
    coordination : {"cluster", "city"}, optional
        Default ``policy.coordination``.
    farmland_lost_so_far_ha : float
        Farmland lost in earlier periods (for a ``per: horizon`` cap).
    cell_area_ha : float, optional
        Overrides ``zone_table.attrs["cell_area_ha"]``.

    Returns
    -------
    Allocation
        ``targets``, ``objective``, ``losses``, ``duals``, ``status`` ... The duals'
        ``dual`` column is the solver's d(objective)/d(bound); ``cost`` restates it as what
        tightening the policy by one planner unit (``unit``) would add to the objective.

    Raises
    ------
    InfeasibleAllocationError
        Naming each constraint the elastic re-solve had to relax, by how much, and a fix.
    SolverError
        The solver failed or hit ``allocation.time_limit_s``.
    """
    solver = solver or scenario.config.allocation.solver
    cell_ha = _cell_area(zone_table, cell_area_ha)
    m = build_model(zone_table, scenario, period, coordination=coordination,
                    farmland_lost_so_far_ha=farmland_lost_so_far_ha, cell_area_ha=cell_ha)
    sol = _solve_model(m, scenario, solver)
    if sol.status == "infeasible":
        # the elastic re-solve only explains, on the merged model (same least violation, a few thousand columns:
        # 0.2 s where the whole model took minutes at 400 000 zones); HiGHS straight from the matrix is several
        # times faster than building a PuLP model for CBC, so it explains for either solver
        em = _elastic(_aggregate(m) or m)
        esol = _solve_highs_direct(em, method="simplex", time_limit=scenario.config.allocation.time_limit_s)
        if esol.status != "optimal":
            raise SolverError(f"allocation {period} is infeasible and the elastic re-solve failed ({esol.detail})")
        err = _explain(em, esol, zone_table, scenario)
        if any(k.startswith("jobs_housing_max") for k in err.violations) and "policy.jobs_housing.max" not in err.advice:
            # a city hosting jobs and no housing has an infinite ratio: find the least maximum that works
            need = _least_feasible_jobs_housing_max(m, scenario.config.allocation.time_limit_s)
            if need is not None:
                err.advice["policy.jobs_housing.max"] = need
                err.args = (f"{err.args[0]}; a maximum of {need:.3f} makes the period feasible",)
        raise err
    if sol.status != "optimal":
        raise SolverError(f"allocation {period}: the {solver} solver stopped with status {sol.detail!r}; "
                          f"raise allocation.time_limit_s ({scenario.config.allocation.time_limit_s:g} s) or try "
                          f"allocation.solver: {'highs' if solver == 'cbc' else 'cbc'}")
    return _results(m, zone_table, sol, cell_ha, solver, scenario)


@dataclass
class CoordinationComparison:
    """A cluster-wide plan against city-by-city plans for the same period.

    ``differences`` holds fragmented minus coordinated: ``objective``,
    ``farmland_lost_ha``, ``open_space_lost_ha``, ``mean_distance_new_m`` — the cost of
    fragmentation (positive = fragmentation is worse).
    """

    coordinated: Allocation
    fragmented: Allocation
    differences: dict[str, float]

    def summary(self) -> str:
        c, f = self.coordinated, self.fragmented
        lines = [f"cost of fragmentation, {c.period} (fragmented - coordinated):"]
        for key, a, b, unit in (
            ("objective", c.objective, f.objective, ""),
            ("farmland_lost_ha", c.farmland_lost_ha, f.farmland_lost_ha, " ha"),
            ("open_space_lost_ha", c.open_space_lost_ha, f.open_space_lost_ha, " ha"),
            ("mean_distance_new_m", c.mean_distance_new_m, f.mean_distance_new_m, " m"),
        ):
            lines.append(f"  {key:<22} coordinated {a:12.3f}{unit}  fragmented {b:12.3f}{unit}  "
                         f"difference {self.differences[key]:+.3f}{unit}")
        return "\n".join(lines)


def compare_coordination(
    zone_table: pd.DataFrame,
    scenario: Scenario,
    period: int,
    *,
    solver: str | None = None,
    farmland_lost_so_far_ha: float = 0.0,
    cell_area_ha: float | None = None,
    solved: Allocation | None = None,
) -> CoordinationComparison:
    """Solve the period cluster-wide and city by city; return both and the differences.

    The fragmented plan uses ``demand.by_city`` or the split of :func:`city_demand`; the
    coordinated plan meets the same total per type, so it is never worse in objective.
    ``solved``, an allocation of this zone table and period already at hand (e.g. the
    scenario's own plan, solved with the same options), is reused for its coordination
    instead of being solved again.
    """
    import dataclasses

    kw = dict(solver=solver, farmland_lost_so_far_ha=farmland_lost_so_far_ha, cell_area_ha=cell_area_ha)
    plans = {}
    if solved is not None and solved.period == period:
        plans[solved.coordination] = dataclasses.replace(solved, warnings=list(solved.warnings))
    for mode in ("city", "cluster"):
        if mode not in plans:
            plans[mode] = allocate(zone_table, scenario, period, coordination=mode, **kw)
    frag, coord = plans["city"], plans["cluster"]
    per_city, _ = city_demand(zone_table, scenario, period)
    for t in scenario.urban_types:
        tot = sum(v for (_, tt), v in per_city.items() if tt == t)
        cl = scenario.config.demand.cluster(t, period)
        if abs(tot - cl) > 1e-6 * max(1.0, cl):
            coord.warnings.append(f"{t}: cluster demand {cl:.1f} ha differs from the sum of city demands "
                                  f"{tot:.1f} ha; the comparison is not like for like")
    diff = {
        "objective": frag.objective - coord.objective,
        "farmland_lost_ha": frag.farmland_lost_ha - coord.farmland_lost_ha,
        "open_space_lost_ha": frag.open_space_lost_ha - coord.open_space_lost_ha,
        "mean_distance_new_m": frag.mean_distance_new_m - coord.mean_distance_new_m,
    }
    return CoordinationComparison(coordinated=coord, fragmented=frag, differences=diff)


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


# --------------------------------------------------------------------------- writers


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.6f", lineterminator="\n")


def write_allocation_csv(allocations: Allocation | Sequence[Allocation], path: str | os.PathLike) -> Path:
    """Write the targets of one or several periods as ``allocation.csv`` (atomically)."""
    allocs = [allocations] if isinstance(allocations, Allocation) else list(allocations)
    frames = [a.targets.assign(coordination=a.coordination) for a in allocs]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return write_text(path, _csv(df))


def write_duals_csv(allocations: Allocation | Sequence[Allocation], path: str | os.PathLike) -> Path:
    """Write the shadow prices of one or several periods as ``duals.csv`` (atomically)."""
    allocs = [allocations] if isinstance(allocations, Allocation) else list(allocations)
    frames = [a.duals.assign(period=a.period, coordination=a.coordination) for a in allocs]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not df.empty:
        df = df[["period", "coordination", *[c for c in df.columns if c not in ("period", "coordination")]]]
    return write_text(path, _csv(df))
