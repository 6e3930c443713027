"""Evaluation metrics: quotas and protection, landscape (sprawl) metrics, expansion types.

Three groups, all working on plain class-code arrays (numpy or xarray) of one grid (the validation statistics
against an observed map — figure of merit, Kappa, Kappa-simulation, Lee–Sallee, disagreement — are in
:mod:`landuse.evaluation.agreement`):

* **Quotas and protection** — :func:`quota_report`: the state of one map per city and for
  the cluster: protected open space against ``policy.open_space_quota``, farmland before
  and after, red-line and permanent-farmland cells converted (with their coordinates).
  Open space and land area are those of :mod:`landuse.surfaces.constraints`
  (:func:`~landuse.surfaces.constraints.open_space_mask` with the ``protected_open_space`` layer,
  :func:`~landuse.surfaces.constraints.land_area_mask`), the same definitions the LP allocator uses.
  Whether a run or a map complies is decided by :func:`landuse.evaluation.checks.policy_checks`,
  per period and unit; this table describes one map.
* **Landscape metrics** — :func:`landscape_metrics` (class level, FRAGSTATS names and
  formulas) and :func:`urban_metrics` (all urban land and each urban type).
* **Expansion types** — :func:`expansion_types`: the Landscape Expansion Index (LEI) of
  every new urban patch, classed as infilling, edge-expansion or outlying.

Undefined values (a mean over no patch, a ratio 0/0) are returned as ``nan`` and
written as ``null`` in ``report.json``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from landuse.core.classes import ClassScheme
from landuse.core.config import Scenario
from landuse.core.errors import ArgumentError, LanduseError
from landuse.core.landscape import cell_area_ha, landuse_nodata, transform_of
from landuse.core.store import label_sizes, store_by_strips, store_empty, store_label
from landuse.evaluation.metrics_kernels import (
    QUOTA_FARMLAND,
    QUOTA_NOT_PROTECTABLE,
    QUOTA_OPEN,
    QUOTA_URBAN,
    QUOTA_WATER,
    _class_counts,
    _lei_buffer_counts,
    max_positive_inside,
    quota_counts,
)
from landuse.surfaces.constraints import protected_open_space

ArrayLike = np.ndarray | xr.DataArray

EXPANSION_TYPES: tuple[str, ...] = ("infilling", "edge_expansion", "outlying")
"""LEI expansion types; codes 1, 2, 3 in :attr:`Expansion.type_map` follow this order."""


def _values(a: ArrayLike) -> np.ndarray:
    return np.asarray(a.values if isinstance(a, xr.DataArray) else a)


def _structure(connectivity: int) -> np.ndarray:
    if connectivity == 8:
        return np.ones((3, 3), dtype=bool)
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    raise ArgumentError(f"connectivity must be 4 or 8, got {connectivity!r}")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


# =========================================================================== landscape metrics


def min_perimeter(area_cells: np.ndarray | int) -> np.ndarray:
    """Smallest perimeter (cell sides) of a raster patch of ``area_cells`` cells.

    With ``n = floor(sqrt(a))`` and ``m = a - n**2``: ``4n`` if ``m = 0``, ``4n + 2`` if
    ``0 < m <= n``, ``4n + 4`` if ``m > n`` (the patch as close to a square as possible).

    >>> min_perimeter(np.array([1, 2, 3, 4, 6, 7])).tolist()
    [4, 6, 8, 8, 10, 12]
    """
    a = np.asarray(area_cells, dtype=np.int64)
    n = np.floor(np.sqrt(a)).astype(np.int64)
    n -= (n * n > a).astype(np.int64)  # guard against float rounding
    m = a - n * n
    return np.where(m == 0, 4 * n, np.where(m <= n, 4 * n + 2, 4 * n + 4))


def max_like_adjacencies(area_cells: int) -> int:
    """Largest number of like adjacencies ``max g_ii`` of ``area_cells`` cells (single count).

    FRAGSTATS' largest-integer-square formula: with ``n = floor(sqrt(A))`` and
    ``m = A - n**2``: ``2n(n-1)`` if ``m = 0``, ``2n(n-1) + 2m - 1`` if ``m <= n``,
    ``2n(n-1) + 2m - 2`` if ``m > n``.

    >>> [max_like_adjacencies(a) for a in (1, 2, 3, 4, 6, 7, 9)]
    [0, 1, 2, 4, 7, 8, 12]
    """
    a = int(area_cells)
    if a <= 0:
        return 0
    n = math.isqrt(a)
    m = a - n * n
    base = 2 * n * (n - 1)
    if m == 0:
        return base
    return base + 2 * m - 1 if m <= n else base + 2 * m - 2


def _cell_yx(cell_size: float | tuple[float, float]) -> tuple[float, float]:
    """``(height, width)`` of a cell from an edge (square cells) or a ``(height, width)`` pair."""
    if isinstance(cell_size, tuple | list):
        return float(cell_size[0]), float(cell_size[1])
    return float(cell_size), float(cell_size)


def _class_in_study(mask: ArrayLike, study_area: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """The class mask (2-D) restricted to the study area, and the study area (every cell when None)."""
    m = np.asarray(_values(mask), dtype=bool)
    if m.ndim != 2:
        raise ArgumentError(f"mask must be 2-D, got shape {m.shape}")
    if study_area is None:
        study = store_by_strips(m.shape, bool, lambda a, b: True)
    else:
        study = np.asarray(_values(study_area), dtype=bool)
        if study.shape != m.shape:
            raise ArgumentError(f"study_area shape {study.shape} differs from mask shape {m.shape}")
        m = store_by_strips(m.shape, bool, lambda a, b: m[a:b] & study[a:b])
    return m, study


def _patch_figures(areas: np.ndarray, perims: np.ndarray, n: int, a_cells: int, land_cells: int,
                   cell_ha: float) -> tuple[float, float, float, float]:
    """LPI, compactness index, SHAPE_AM and mean patch area of :func:`landscape_metrics`.

    From the per-label areas and perimeters (label 0 the background) of ``n`` patches.
    """
    if not n:
        return 0.0, math.nan, math.nan, math.nan
    areas = areas[1:]
    perims = perims[1:].astype(np.float64)
    lpi = 100.0 * float(areas.max()) / land_cells
    pmin = min_perimeter(areas)
    compact = float(np.sum(pmin / perims)) / float(n) ** 2
    shape_am = float(np.sum(areas * (perims / pmin))) / float(areas.sum())
    mean_area = a_cells * cell_ha / n
    return lpi, compact, shape_am, mean_area


def landscape_metrics(
    mask: ArrayLike,
    *,
    cell_size: float | tuple[float, float],
    connectivity: int = 8,
    study_area: ArrayLike | None = None,
    count_boundary: bool = False,
) -> dict[str, float]:
    """Class-level landscape metrics of one class (``mask``) with FRAGSTATS names and formulas.

    The landscape is the study area (all cells when ``study_area`` is omitted); class
    cells outside it are ignored. Notation: ``A`` landscape area, ``a_ij`` area of patch
    ``j`` of the class, ``n`` number of patches, ``e`` class edge length, ``E*`` class edge
    in cell sides *including* the landscape boundary, ``a`` class area in cells,
    ``g_ii`` like adjacencies (orthogonal cell pairs both in the class, counted once).

    ==========================  ===========================================  ============  ==========
    key                         formula                                      units         range
    ==========================  ===========================================  ============  ==========
    ``total_area`` (CA)         ``sum_j a_ij``                               ha            >= 0
    ``percentage_of_landscape`` ``100 sum_j a_ij / A`` (PLAND)               %             [0, 100]
    ``number_of_patches`` (NP)  ``n`` (patches under ``connectivity``)       count         >= 0
    ``largest_patch_index``     ``100 max_j a_ij / A`` (LPI)                 %             [0, 100]
    ``mean_patch_area``         ``sum_j a_ij / n`` (AREA_MN)                 ha            > 0; nan if n = 0
    ``edge_density`` (ED)       ``e / A``                                    m/ha          >= 0
    ``landscape_shape_index``   ``0.25 E* / sqrt(a)`` (LSI, cell units)      -             >= 1; nan if a = 0
    ``aggregation_index`` (AI)  ``100 g_ii / max g_ii``                      %             [0, 100]; nan if a = 1 or 0
    ``shape_index_am``          ``sum_j a_ij (p_ij / Pmin(a_ij)) / sum a``   -             >= 1; nan if n = 0
    ``compactness_index``       ``sum_j (Pmin(a_ij) / p_ij) / n**2``         -             (0, 1]; nan if n = 0
    ==========================  ===========================================  ============  ==========

    Edge conventions: ``edge_density`` counts the edges between class cells and other
    cells of the study area (background); edges on the landscape boundary (the grid
    border and the border with cells outside the study area) are *not* counted unless
    ``count_boundary`` is set — FRAGSTATS' "count none of the boundary as edge" choice.
    ``landscape_shape_index`` always includes the boundary (``E*``), as FRAGSTATS defines
    it; LSI is 1 for a single square patch and grows as the class becomes more
    dispersed or convoluted. ``max g_ii`` follows the largest-integer-square formula of
    :func:`max_like_adjacencies`; like adjacencies are orthogonal whatever the patch
    ``connectivity``. ``compactness_index`` is the compactness index of Li & Yeh (2004)
    with each patch's circle perimeter replaced by the smallest raster perimeter
    ``Pmin`` of its area (:func:`min_perimeter`), so it is exactly 1 for one maximally
    compact patch and falls with irregular shapes and with more patches (as ``1/n``: with
    thousands of patches it is ~1e-4 whatever their shapes, so it compares only maps with
    similar patch counts). ``shape_index_am`` is FRAGSTATS' area-weighted mean shape index
    (SHAPE_AM): each patch's perimeter over the smallest raster perimeter of its area,
    weighted by area; 1 when every patch is as compact as a raster patch can be, larger as
    the (large) patches grow irregular, whatever the number of patches.

    Parameters
    ----------
    mask : bool array (rows, cols)
        Cells of the class (e.g. urban land).
    cell_size : float or (float, float)
        Cell edge in metres, or ``(height, width)`` of non-square cells.
    connectivity : {8, 4}
        Patch neighbourhood rule: 8 (queen's case, default) or 4 (rook's case).
    study_area : bool array, optional
        Cells of the landscape; nodata cells are outside it.
    count_boundary : bool
        Count landscape-boundary edges in ``edge_density``.

    Returns
    -------
    dict of str to float
        The keys of the table above.

    Examples
    --------
    >>> m = np.zeros((4, 4), dtype=bool); m[1:3, 1:3] = True
    >>> r = landscape_metrics(m, cell_size=100.0)
    >>> r["number_of_patches"], r["largest_patch_index"], r["landscape_shape_index"], r["aggregation_index"]
    (1.0, 25.0, 1.0, 100.0)
    >>> r["edge_density"]  # 8 sides of 100 m over 16 ha
    50.0
    """
    struct = _structure(connectivity)
    m, study = _class_in_study(mask, study_area)
    cy, cx = _cell_yx(cell_size)
    cell_ha = cy * cx / 10_000.0
    land_cells = int(np.count_nonzero(study))
    if land_cells == 0:
        raise LanduseError("landscape_metrics: the study area is empty (every cell is nodata)")
    land_ha = land_cells * cell_ha

    labels, n = store_label(m, structure=struct)
    totals, areas, perims = _class_counts(m, study, labels, n)
    a_cells, like_h, like_v, boundary_sides, boundary_lr = (int(v) for v in totals)
    g_ii = like_h + like_v
    e_star = 4 * a_cells - 2 * g_ii  # every class cell side not shared with another class cell
    # edge length in metres: left/right sides are a cell high (cy), top/bottom sides a cell wide (cx)
    lr = 2 * a_cells - 2 * like_h
    tb = 2 * a_cells - 2 * like_v
    if not count_boundary:  # sides facing the landscape boundary (grid edge or outside the study area) are not edge
        lr -= boundary_lr
        tb -= boundary_sides - boundary_lr
    edge_m = lr * cy + tb * cx

    lpi, compact, shape_am, mean_area = _patch_figures(areas, perims, n, a_cells, land_cells, cell_ha)
    return {
        "total_area": a_cells * cell_ha,
        "percentage_of_landscape": 100.0 * a_cells / land_cells,
        "number_of_patches": float(n),
        "largest_patch_index": lpi,
        "mean_patch_area": mean_area,
        "edge_density": edge_m / land_ha,
        "landscape_shape_index": 0.25 * e_star / math.sqrt(a_cells) if a_cells else math.nan,
        "aggregation_index": 100.0 * _ratio(g_ii, max_like_adjacencies(a_cells)),
        "shape_index_am": shape_am,
        "compactness_index": compact,
    }


def landscape_counts(
    mask: ArrayLike,
    *,
    study_area: ArrayLike | None = None,
    strip_rows: int | None = None,
) -> dict[str, int]:
    """The cell and side counts behind the patch-free landscape metrics, strip by strip.

    ``class_cells`` (``a``), ``like_adjacencies_h`` and ``like_adjacencies_v`` (``g_ii``
    of left-right and top-bottom pairs), ``boundary_sides`` (class cell sides facing the
    grid edge or a cell outside the study area) and ``boundary_sides_lr`` (those of them
    that are left or right sides), and ``study_cells``. CA, PLAND, ED, LSI and AI of
    :func:`landscape_metrics` follow from them; NP, LPI, AREA_MN, SHAPE_AM and the
    compactness index need whole patches (connected components) and do not.

    Each strip of ``strip_rows`` rows is read with one row of halo above and below, so
    the sums equal the whole-raster counts exactly whatever the strip height; only a
    strip (plus two rows) is ever copied to a contiguous array.

    >>> m = np.zeros((5, 4), dtype=bool); m[1:4, 1:3] = True
    >>> landscape_counts(m, strip_rows=2) == landscape_counts(m)
    True
    >>> landscape_counts(m)["like_adjacencies_v"]
    4
    """
    mv = _values(mask)
    rows = mv.shape[0]
    st = None if study_area is None else _values(study_area)
    if st is not None and st.shape != mv.shape:
        raise ArgumentError(f"study_area shape {st.shape} differs from mask shape {mv.shape}")
    step = rows if strip_rows is None else int(strip_rows)
    if step < 1 and rows:
        raise ArgumentError(f"strip_rows must be at least 1, got {strip_rows!r}")
    totals = np.zeros(5, dtype=np.int64)
    study_cells = 0
    for r0 in range(0, rows, max(step, 1)):
        r1 = min(r0 + step, rows)
        h0, h1 = max(r0 - 1, 0), min(r1 + 1, rows)
        m = np.ascontiguousarray(mv[h0:h1], dtype=bool)
        study = np.ones(m.shape, dtype=bool) if st is None else np.ascontiguousarray(st[h0:h1], dtype=bool)
        m = m & study
        t, _, _ = _class_counts(m, study, np.zeros(m.shape, dtype=np.int32), 0, r0 - h0, r1 - h0)
        totals += t
        study_cells += int(np.count_nonzero(study[r0 - h0 : r1 - h0]))
    keys = ("class_cells", "like_adjacencies_h", "like_adjacencies_v", "boundary_sides", "boundary_sides_lr")
    out = {k: int(v) for k, v in zip(keys, totals, strict=True)}
    out["study_cells"] = study_cells
    return out


def urban_metrics(
    landuse: ArrayLike,
    classes: ClassScheme,
    *,
    cell_size: float | tuple[float, float],
    connectivity: int = 8,
    study_area: ArrayLike | None = None,
    count_boundary: bool = False,
) -> dict[str, dict[str, float]]:
    """:func:`landscape_metrics` of all urban land together (``"urban"``) and of each urban type.

    ``study_area`` defaults to the cells whose code is not the scheme's nodata value.
    """
    lu = _values(landuse)
    study = (store_by_strips(lu.shape, bool, lambda a, b: lu[a:b] != classes.nodata) if study_area is None
             else np.asarray(_values(study_area), dtype=bool))
    out = {}
    for t in ("urban", *classes.urban_types):  # each class mask built strip by strip (in the store, if any)
        out[t] = landscape_metrics(store_by_strips(lu.shape, bool, lambda a, b, t=t: classes.is_role(lu[a:b], t)),
                                   cell_size=cell_size, connectivity=connectivity, study_area=study,
                                   count_boundary=count_boundary)
    return out


# =========================================================================== expansion types


def disk_offsets(radius_cells: float, *, aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of cells whose centre lies within ``radius_cells`` of the origin (origin excluded).

    ``radius_cells`` is in cell widths; ``aspect`` = cell height / cell width (non-square
    cells: the disc in metres is an ellipse in cells).
    """
    r = math.floor(radius_cells + 1e-9)
    ry = math.floor(radius_cells / aspect + 1e-9)
    yy, xx = np.mgrid[-ry : ry + 1, -r : r + 1]
    keep = ((yy * aspect) ** 2 + xx**2 <= radius_cells**2 + 1e-9) & ~((yy == 0) & (xx == 0))
    return yy[keep].astype(np.int64), xx[keep].astype(np.int64)


@dataclass
class Expansion:
    """Expansion types of the new urban patches of one period (see :func:`expansion_types`).

    Attributes
    ----------
    buffer_m : float
    lei : ndarray of float64, shape (P,)
        LEI of each new patch (patch ``k`` has label ``k + 1`` in ``labels``).
    patch_type : ndarray of int8, shape (P,)
        1 infilling, 2 edge-expansion, 3 outlying.
    patch_area_ha : ndarray of float64, shape (P,)
    labels : ndarray of int32, shape (rows, cols)
        New-urban patch labels, 0 elsewhere.
    """

    buffer_m: float
    lei: np.ndarray
    patch_type: np.ndarray
    patch_area_ha: np.ndarray
    labels: np.ndarray = field(repr=False)

    @property
    def type_map(self) -> np.ndarray:
        """uint8 raster: 1 infilling, 2 edge-expansion, 3 outlying, 0 not new urban.

        Strip by strip, in the run's raster store when a disk store is active.
        """
        from landuse.core.strips import row_strips

        lut = np.concatenate([[0], self.patch_type]).astype(np.uint8)
        out = store_empty(self.labels.shape, np.uint8)
        for a, b in row_strips(*self.labels.shape):
            np.take(lut, self.labels[a:b], out=out[a:b])
        return out

    def summary(self) -> dict[str, Any]:
        """Counts, areas and shares per type (JSON-compatible)."""
        n = int(self.lei.size)
        total_area = float(self.patch_area_ha.sum())
        count, area = {}, {}
        for i, t in enumerate(EXPANSION_TYPES, start=1):
            sel = self.patch_type == i
            count[t] = int(sel.sum())
            area[t] = float(self.patch_area_ha[sel].sum())
        return {
            "buffer_m": float(self.buffer_m),
            "patches": n,
            "new_urban_ha": total_area,
            "count": count,
            "area_ha": area,
            "share_count": {t: _ratio(count[t], n) for t in EXPANSION_TYPES},
            "share_area": {t: _ratio(area[t], total_area) for t in EXPANSION_TYPES},
            "mean_lei": float(self.lei.mean()) if n else math.nan,
            "area_weighted_lei": _ratio(float((self.lei * self.patch_area_ha).sum()), total_area),
        }


def expansion_types(
    before: ArrayLike,
    after: ArrayLike,
    classes: ClassScheme,
    *,
    cell_size: float | tuple[float, float],
    buffer_m: float = 100.0,
    connectivity: int = 8,
    study_area: ArrayLike | None = None,
) -> Expansion:
    """Landscape Expansion Index (LEI) and expansion type of every new urban patch.

    New urban land is urban (any urban type) in ``after`` and not in ``before``; its
    patches follow ``connectivity``. For each patch the buffer is the set of study-area
    cells, outside the patch, whose centre lies within ``buffer_m`` of a patch cell centre.

    ``LEI = 100 * A_o / (A_o + A_v)``, where ``A_o`` is the old urban area (urban in
    ``before``) in the buffer and ``A_v`` the rest of the buffer (range [0, 100];
    0 when the buffer is empty). Types (Liu et al. 2010): **infilling** ``LEI > 50``,
    **edge-expansion** ``0 < LEI <= 50``, **outlying** (leapfrog) ``LEI = 0``.

    Parameters
    ----------
    before, after : uint8 arrays (rows, cols)
        Land use at the start and end of the period.
    classes : ClassScheme
    cell_size : float or (float, float)
        Cell edge in metres, or ``(height, width)`` of non-square cells.
    buffer_m : float
        Buffer distance in metres; at least one cell edge.
    connectivity : {8, 4}
    study_area : bool array, optional
        Default: cells with data in both maps.

    Returns
    -------
    Expansion
    """
    cy, cx = _cell_yx(cell_size)
    if buffer_m < max(cy, cx):
        raise LanduseError(
            f"evaluation.lei_buffer_m ({buffer_m:g} m) is smaller than one cell ({max(cy, cx):g} m); "
            "the LEI buffer must reach at least the neighbouring cells"
        )
    b, a = _values(before), _values(after)
    if b.shape != a.shape:
        raise ArgumentError(f"before {b.shape} and after {a.shape} differ in shape")
    given = None if study_area is None else _values(study_area)

    def study_cells(r0: int, r1: int) -> np.ndarray:
        s = (b[r0:r1] != classes.nodata) & (a[r0:r1] != classes.nodata)
        return s if given is None else s & np.asarray(given[r0:r1], dtype=bool)

    # the masks are built strip by strip, in the run's store when a disk store is active
    study = store_by_strips(b.shape, bool, study_cells)
    old = store_by_strips(b.shape, bool, lambda r0, r1: classes.is_role(b[r0:r1], "urban") & study[r0:r1])
    new = store_by_strips(b.shape, bool, lambda r0, r1: classes.is_role(a[r0:r1], "urban") & ~old[r0:r1] & study[r0:r1])
    labels, n = store_label(new, structure=_structure(connectivity))
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    order = idx[np.argsort(flat[idx], kind="stable")]
    counts = label_sizes(labels, n)[1:]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows_, cols_ = np.divmod(order.astype(np.int64), b.shape[1])
    dy, dx = disk_offsets(buffer_m / cx, aspect=cy / cx)  # a disc in metres: an ellipse in cells if not square
    buf, old_in = _lei_buffer_counts(labels, old, study, rows_, cols_, starts, dy, dx)
    lei = np.where(buf > 0, 100.0 * old_in / np.maximum(buf, 1), 0.0)
    ptype = np.where(lei > 50.0, 1, np.where(lei > 0.0, 2, 3)).astype(np.int8)
    return Expansion(
        buffer_m=float(buffer_m),
        lei=lei,
        patch_type=ptype,
        patch_area_ha=counts * (cy * cx / 10_000.0),
        labels=labels,
    )


# =========================================================================== quotas


_LISTED = 100  # converted protected cells listed individually in a quota report


@dataclass
class QuotaReport:
    """Open space, farmland and protected land of one land-use map, per city and for the cluster.

    A description of the map; the checks of record (per period and unit, with the
    farmland-loss cap, TOD, jobs-housing and the rest) are :func:`landuse.evaluation.checks.policy_checks`.

    Attributes
    ----------
    scenario : str
    units : list of dict
        One row per city (``unit = "city <id>"``) and one for the cluster, with
        ``land_area_ha``, ``open_space_ha``, ``open_space_share``, ``open_space_before_ha``,
        ``quota_share`` (None where the quota does not apply), ``quota_met``
        (None where it does not apply), ``margin_ha`` (open space above the quota; negative
        when it fails), ``farmland_before_ha``, ``farmland_after_ha``, ``farmland_loss_ha``
        (farmland cells that are no longer farmland, to any class) and ``new_urban_ha``.
    permanent_farmland, red_line : dict
        ``{present, enforced, cells, converted_cells, intact, converted}``; ``converted``
        lists up to 100 cells as ``{row, col, x, y, before, after}``.
    """

    scenario: str
    cell_area_ha: float
    units: list[dict[str, Any]]
    permanent_farmland: dict[str, Any]
    red_line: dict[str, Any]
    quota: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return {
            "scenario": self.scenario,
            "cell_area_ha": self.cell_area_ha,
            "quota": self.quota,
            "units": self.units,
            "permanent_farmland": self.permanent_farmland,
            "red_line": self.red_line,
        }

    def to_frame(self) -> pd.DataFrame:
        """The per-unit rows as a DataFrame."""
        return pd.DataFrame(self.units)

    def table(self) -> str:
        """Plain-text table of the units and the protected layers, as printed by ``landuse evaluate``."""
        head = (f"{'unit':<10} {'land ha':>11} {'open ha':>11} {'share':>7} {'quota':>7} {'margin ha':>11} "
                f"{'status':<6} {'farm before':>12} {'farm after':>11} {'farm loss':>10}")
        lines = [f"scenario {self.scenario!r}", head, "-" * len(head)]
        for u in self.units:
            quota = "-" if u["quota_share"] is None else f"{100 * u['quota_share']:.1f}%"
            margin = "-" if u["margin_ha"] is None else f"{u['margin_ha']:,.1f}"
            status = "-" if u["quota_met"] is None else ("ok" if u["quota_met"] else "FAIL")
            share = "-" if math.isnan(u["open_space_share"]) else f"{100 * u['open_space_share']:.1f}%"
            lines.append(
                f"{u['unit']:<10} {u['land_area_ha']:>11,.1f} {u['open_space_ha']:>11,.1f} {share:>7} "
                f"{quota:>7} {margin:>11} {status:<6} {u['farmland_before_ha']:>12,.1f} "
                f"{u['farmland_after_ha']:>11,.1f} {u['farmland_loss_ha']:>10,.1f}"
            )
        lines.append("")
        if self.quota is None:
            lines.append("open-space quota: none configured (policy.open_space_quota)")
        for key, label in (("permanent_farmland", "permanent farmland"), ("red_line", "red line")):
            d = getattr(self, key)
            if not d["present"]:
                lines.append(f"{label}: no layer")
                continue
            state = "intact" if d["intact"] else f"{d['converted_cells']} cell(s) converted"
            enf = "" if d["enforced"] else " (policy off, not enforced)"
            lines.append(f"{label}: {d['cells']} cells, {state}{enf}")
            for c in d["converted"][:10]:
                lines.append(f"  row {c['row']} col {c['col']} (x {c['x']:.1f}, y {c['y']:.1f}): "
                             f"{c['before']} -> {c['after']}")
            if d["converted_cells"] > 10:
                lines.append(f"  ... {d['converted_cells'] - 10} more (see the JSON report)")
        return "\n".join(lines)


def _protection(
    ds: xr.Dataset, layer: str, enforced: bool, before: np.ndarray, after: np.ndarray, classes: ClassScheme
) -> dict[str, Any]:
    if layer not in ds:
        return {"present": False, "enforced": bool(enforced), "cells": 0, "converted_cells": 0,
                "intact": True, "converted": []}
    from landuse.core.strips import row_strips

    layer_all, study_all = np.asarray(ds[layer].values), np.asarray(ds["study_area"].values, dtype=bool)
    cells, n, rr, cc = 0, 0, [], []
    for a, b in row_strips(*before.shape):  # counted strip by strip; the first cells in row-major order
        mask = np.asarray(layer_all[a:b], dtype=bool) & study_all[a:b]
        conv = mask & (before[a:b] != after[a:b])
        cells += int(np.count_nonzero(mask))
        k = int(np.count_nonzero(conv))
        if k and len(rr) < _LISTED:
            r_, c_ = np.nonzero(conv)
            rr += (r_[:_LISTED - len(rr)] + a).tolist()
            cc += c_[:_LISTED - len(cc)].tolist()
        n += k
    t = transform_of(ds)
    names = {c.code: c.name for c in classes}
    listed = []
    for r, c in zip(rr, cc, strict=True):
        x, y = t @ (c + 0.5, r + 0.5)
        listed.append({"row": r, "col": c, "x": float(x), "y": float(y),
                       "before": names.get(int(before[r, c]), str(int(before[r, c]))),
                       "after": names.get(int(after[r, c]), str(int(after[r, c])))})
    return {"present": True, "enforced": bool(enforced), "cells": cells, "converted_cells": n,
            "intact": n == 0, "converted": listed}


def quota_report(
    landscape: xr.Dataset,
    landuse_map: ArrayLike,
    scenario: Scenario,
) -> QuotaReport:
    """Open space, farmland loss and protected land of ``landuse_map``, per city and for the cluster.

    The baseline is the Landscape's start land use (``landscape.landuse``). Units are the
    cities of the ``cities`` layer (ids > 0) and the whole cluster. Land area and
    protected open space follow :func:`landuse.surfaces.constraints.land_area_mask` and
    :func:`landuse.surfaces.constraints.open_space_mask` with ``policy.open_space_quota.include_water``,
    evaluated on ``landuse_map``. With ``unit: city`` the quota applies to every city,
    with ``unit: cluster`` to the cluster row only.

    Parameters
    ----------
    landscape : xarray.Dataset
        The scenario's Landscape (start land use, ``cities``, optional ``red_line`` and
        ``permanent_farmland``).
    landuse_map : uint8 array (rows, cols)
        The land use to evaluate, on the Landscape's grid.
    scenario : Scenario

    Returns
    -------
    QuotaReport

    Raises
    ------
    LanduseError
        The map's shape differs from the Landscape's, or it has nodata inside the study area.
    """
    classes = scenario.classes
    pol = scenario.config.policy
    before = np.asarray(landscape["landuse"].values)
    after = _values(landuse_map)
    if after.shape != before.shape:
        raise LanduseError(f"land-use map has shape {after.shape}, the scenario's grid is {before.shape}")
    from landuse.core.strips import row_strips

    strips = row_strips(*before.shape)  # every count is a sum over cells: added strip by strip
    study = np.asarray(landscape["study_area"].values, dtype=bool)
    n_holes, first = 0, None
    for a, b in strips:
        holes = study[a:b] & (after[a:b] == classes.nodata)
        k = int(np.count_nonzero(holes))
        if k and first is None:
            r, c = np.argwhere(holes)[0]
            first = (int(r) + a, int(c))
        n_holes += k
    if n_holes:
        raise LanduseError(
            f"land-use map has {n_holes} nodata cells inside the study area (first at row {first[0]}, "
            f"column {first[1]}); every study-area cell needs a class to evaluate quotas"
        )
    cell_ha = cell_area_ha(landscape)
    qc = pol.open_space_quota
    include_water = bool(qc.include_water) if qc is not None else False
    raw_all = np.asarray(landscape["cities"].values) if "cities" in landscape else None
    # ids as they are (int32 or narrower), else cast to intp strip by strip
    cast = raw_all is not None and (raw_all.dtype.kind not in "iu" or raw_all.dtype.itemsize > 4)
    # per class code: the roles the masks of the table read (constraints.land_area_mask, open_space_mask)
    codes = np.arange(256, dtype=np.uint8)
    lut = np.zeros(256, dtype=np.uint8)
    open_roles = ("open_space", "water") if include_water else ("open_space",)
    not_protectable = ("urban",) if include_water else ("water", "urban")
    for bit, roles in ((QUOTA_WATER, ("water",)), (QUOTA_URBAN, ("urban",)), (QUOTA_FARMLAND, ("farmland",)),
                       (QUOTA_OPEN, open_roles), (QUOTA_NOT_PROTECTABLE, not_protectable)):
        lut[classes.is_role(codes, *roles)] |= np.uint8(bit)
    protected_all = protected_open_space(landscape, scenario)
    no_layer, no_ids = np.zeros((1, 1), dtype=bool), np.zeros((1, 1), dtype=np.int32)  # placeholders of absent layers
    keys = ("land", "space", "space_before", "farm_b", "farm_a", "farm_loss", "new_urban")
    present = np.zeros(1, dtype=np.int64)
    counts = np.zeros((1, len(keys)), dtype=np.int64)
    for a, b in strips:  # one compiled pass a strip counts every amount per city (the tables grow with the ids seen)
        st_ = np.ascontiguousarray(study[a:b])
        cities = no_ids
        if raw_all is not None:
            cities = np.ascontiguousarray(raw_all[a:b].astype(np.intp) if cast else raw_all[a:b])
        n_lab = max(present.size, max_positive_inside(cities, st_) + 1 if raw_all is not None else 1)
        if n_lab > present.size:
            present = np.pad(present, (0, n_lab - present.size))
            counts = np.pad(counts, ((0, n_lab - counts.shape[0]), (0, 0)))
        quota_counts(np.ascontiguousarray(before[a:b]), np.ascontiguousarray(after[a:b]), st_,
                     no_layer if protected_all is None else np.ascontiguousarray(protected_all[a:b]),
                     protected_all is not None, cities, raw_all is not None, lut, include_water, present, counts)
    ids = [int(i) for i in np.flatnonzero(present) if i > 0]
    sums = {k: counts[:, b] * cell_ha for b, k in enumerate(keys)}
    units: list[dict[str, Any]] = []

    def row(name: str, city: int | None, pick) -> dict[str, Any]:
        land_ha = float(pick(sums["land"]))
        space_ha = float(pick(sums["space"]))
        applies = qc is not None and ((qc.unit == "city") == (city is not None))
        share = qc.share if applies else None
        margin = space_ha - qc.share * land_ha if applies else None
        met = bool(margin >= -1e-9 * max(land_ha, 1.0)) if applies else None
        return {
            "unit": name, "city": city, "land_area_ha": land_ha, "open_space_ha": space_ha,
            "open_space_share": _ratio(space_ha, land_ha),
            "open_space_before_ha": float(pick(sums["space_before"])),
            "quota_share": share, "quota_met": met, "margin_ha": margin,
            "farmland_before_ha": float(pick(sums["farm_b"])), "farmland_after_ha": float(pick(sums["farm_a"])),
            "farmland_loss_ha": float(pick(sums["farm_loss"])), "new_urban_ha": float(pick(sums["new_urban"])),
        }

    for i in ids:
        units.append(row(f"city {i}", i, lambda a, i=i: a[i]))
    units.append(row("cluster", None, lambda a: a.sum()))

    pf = _protection(landscape, "permanent_farmland", pol.permanent_farmland, before, after, classes)
    rl = _protection(landscape, "red_line", pol.red_line, before, after, classes)
    return QuotaReport(
        scenario=scenario.name,
        cell_area_ha=cell_ha,
        units=units,
        permanent_farmland=pf,
        red_line=rl,
        quota=None if qc is None else {"share": qc.share, "unit": qc.unit, "include_water": qc.include_water},
    )


LANDUSE_AGREEMENT_MIN = 0.5
"""Least share of study-area cells an evaluated map must share with the start land use to be taken as a land-use map."""


def check_is_landuse_map(path: str | os.PathLike, landscape: xr.Dataset) -> None:
    """Refuse a raster that is no land-use map of the region (a cities, probability or other layer).

    A land-use map holds whole class codes, and a later map of the same region keeps the
    class of most cells (growth converts a few per cent of them per period).
    """
    from landuse.core.errors import LanduseError
    from landuse.io.rasters import read_band

    data, _ = read_band(path)
    vals = np.ma.getdata(data)
    valid = ~np.ma.getmaskarray(data)
    if vals.dtype.kind == "f":
        valid &= np.isfinite(vals)
        frac = valid & (vals != np.round(vals))
        if frac.any():
            raise LanduseError(
                f"{path} is not a land-use map: {int(frac.sum()):,} cells hold fractional values (e.g. "
                f"{float(vals[frac][0]):.3g}), not class codes (is it a probability raster?); give a land-use map, "
                "e.g. landuse_<year>.tif of a run"
            )
    study = landuse_study_area(landscape)
    start = np.asarray(landscape["landuse"].values)
    share = float((valid & study & (vals == start)).sum()) / max(int(study.sum()), 1)
    if share < LANDUSE_AGREEMENT_MIN:
        raise LanduseError(
            f"{path} is not a land-use map of this scenario's region: only {share:.0%} of the study-area cells "
            f"hold the class they have in the start land use ({landscape['landuse'].attrs.get('source', 'layers.landuse')}), "
            f"where a later land-use map keeps most of them (is it a cities, zone or other layer?); give a land-use "
            "map, e.g. landuse_<year>.tif of a run"
        )


def landuse_study_area(landscape: xr.Dataset) -> np.ndarray:
    """The Landscape's study-area mask as a numpy array."""
    if "study_area" in landscape:
        return np.asarray(landscape["study_area"].values, dtype=bool)
    return np.asarray(landscape["landuse"].values) != landuse_nodata(landscape)


def class_areas(landuse: ArrayLike, classes: ClassScheme, *, cell_ha: float) -> dict[str, float]:
    """Area (ha) of each class by name."""
    counts = np.bincount(np.asarray(_values(landuse), dtype=np.uint8).ravel(), minlength=256)
    return {c.name: float(counts[c.code]) * cell_ha for c in classes}


def as_jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars into Python ones and nan/inf into None (for JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): as_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [as_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return as_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
