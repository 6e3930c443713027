"""Urban growth boundary (UGB) delineation from the ensemble's growth probability.

:func:`delineate_ugb` turns the Monte Carlo growth probability plus existing urban land
into a smooth boundary: threshold, morphological closing then opening (isotropic, i.e.
Euclidean disks: an O(rows * cols) numba kernel on square cells, the same cells as
scikit-image's distance-map operations, which non-square cells use), fill holes, drop patches under a minimum area, and
remove every ecological red-line cell. :func:`write_ugb` writes it as a GeoTIFF mask and
as GeoJSON polygons in the raster's CRS; :func:`ugb_summary` gives its area and share of
the region for the report.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from rasterio import features
from skimage import morphology

from landuse.core.config import Scenario
from landuse.core.config_stages import UgbConfig
from landuse.core.errors import LanduseError
from landuse.core.landscape import cell_area_ha, cell_size, cell_sizes, crs_of, like, transform_of
from landuse.core.store import label_sizes, store_empty, store_label
from landuse.core.strips import STRIP_CELLS
from landuse.evaluation.metrics_kernels import _within_disk
from landuse.io.rasters import write_geotiff, write_text


def _study(landscape: xr.Dataset) -> np.ndarray:
    return np.asarray(landscape["study_area"].values, dtype=bool)


def _row_ranges(rows: int, cols: int, strip_rows: int | None, halo: int = 0) -> list[tuple[int, int]]:
    """Row ranges of ``strip_rows`` rows.

    By default about :data:`~landuse.core.strips.STRIP_CELLS` cells, and at least four halos, so the halo rows a strip
    reads around it stay a small share of it.
    """
    step = strip_rows if strip_rows is not None else max(STRIP_CELLS // max(cols, 1), 4 * halo, 1)
    if step < 1:
        raise LanduseError(f"strip_rows must be at least 1, got {strip_rows}")
    return [(a, min(a + step, rows)) for a in range(0, rows, step)]


def _fill_holes(mask: np.ndarray, strip_rows: int | None = None) -> np.ndarray:
    """Fill background regions (4-connected) that do not touch the grid border; one labelling pass.

    The background and its labels are rasters of the run's store (:mod:`landuse.core.store`); the filled mask is
    written strip by strip (a new array: ``mask`` is not changed).
    """
    rows, cols = mask.shape
    background = store_empty(mask.shape, bool)
    np.logical_not(mask, out=background)
    labels, n = store_label(background)
    del background
    out = store_empty(mask.shape, bool)
    if n == 0:
        np.copyto(out, mask)
        return out
    outer = np.zeros(n + 1, dtype=bool)
    outer[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    outer[0] = True
    for a, b in _row_ranges(rows, cols, strip_rows):
        np.logical_not(outer[labels[a:b]], out=out[a:b])
        out[a:b] |= mask[a:b]
    return out


def _disk_half_widths(radius: float) -> np.ndarray:
    """``half_width[g]``: the largest ``dx`` with ``sqrt(dx**2 + g**2) <= radius``, for ``g = 0 .. reach``.

    The comparison is the one of a Euclidean distance map thresholded at ``radius``
    (``sqrt`` of an integer in float64, correctly rounded and monotone), so the disk is
    the same cell for cell.
    """
    r2 = math.floor(radius * radius)
    while math.sqrt(r2 + 1) <= radius:
        r2 += 1
    while r2 > 0 and math.sqrt(r2) > radius:
        r2 -= 1
    return np.array([math.isqrt(r2 - g * g) for g in range(math.isqrt(r2) + 1)], dtype=np.int64)


def _within(feature: np.ndarray, radius: float) -> np.ndarray:
    half = _disk_half_widths(radius)
    work = np.empty(feature.shape, dtype=np.uint16 if half.size < np.iinfo(np.uint16).max else np.int64)
    return _within_disk(feature, half, work)


def _dilate_window(mask: np.ndarray, radius: float, spacing: tuple[float, float]) -> np.ndarray:
    if not mask.any():  # no feature cell: nothing within the disk (skimage's distance map has no zero to measure)
        return np.zeros(mask.shape, dtype=bool)
    if spacing != (1.0, 1.0):
        return morphology.isotropic_dilation(mask, radius, spacing=spacing)
    return _within(mask, radius)


def _erode_window(mask: np.ndarray, radius: float, spacing: tuple[float, float]) -> np.ndarray:
    if mask.all():  # no background cell: every cell stays (skimage's distance map has no zero to measure)
        return np.ones(mask.shape, dtype=bool)
    if spacing != (1.0, 1.0):
        return morphology.isotropic_erosion(mask, radius, spacing=spacing)
    out = _within(~mask, radius)
    np.logical_not(out, out=out)
    return out


def _disk_op(mask: np.ndarray, radius: float, spacing: tuple[float, float], *, dilate: bool,
             strip_rows: int | None = None) -> np.ndarray:
    """Dilation or erosion by a Euclidean disk, strip by strip.

    A cell's result depends only on the cells within ``radius`` of it, so each strip is computed on a window
    reaching ``halo`` rows (the disk's reach in rows, plus one) above and below it and cut back to the strip:
    the same cells as on the whole raster, in the memory of one window (and a result in the run's store).
    """
    rows, cols = mask.shape
    halo = math.floor(radius / spacing[0]) + 1
    op = _dilate_window if dilate else _erode_window
    out = store_empty(mask.shape, bool)
    for a, b in _row_ranges(rows, cols, strip_rows, halo):
        w0, w1 = max(0, a - halo), min(rows, b + halo)
        out[a:b] = op(np.ascontiguousarray(mask[w0:w1]), radius, spacing)[a - w0:b - w0]
    return out


def _dilate(mask: np.ndarray, radius: float, spacing: tuple[float, float], strip_rows: int | None = None) -> np.ndarray:
    """Dilation by a Euclidean disk: equals ``skimage.morphology.isotropic_dilation``.

    Cells within ``radius`` of a mask cell; none for an empty mask.

    Square cells take the O(rows * cols) kernel (:func:`~landuse.evaluation.metrics_kernels._within_disk`, two bytes per
    cell of a window of working memory); non-square cells keep skimage's distance map. Strip by strip
    (:func:`_disk_op`).
    """
    return _disk_op(mask, radius, spacing, dilate=True, strip_rows=strip_rows)


def _erode(mask: np.ndarray, radius: float, spacing: tuple[float, float], strip_rows: int | None = None) -> np.ndarray:
    """Erosion by a Euclidean disk: equals ``skimage.morphology.isotropic_erosion``.

    Cells farther than ``radius`` from every non-mask cell of the grid; all of them for a full mask. Strip by strip.
    """
    return _disk_op(mask, radius, spacing, dilate=False, strip_rows=strip_rows)


def _close_and_open(mask: np.ndarray, landscape: xr.Dataset, closing_radius_m: float, opening_radius_m: float,
                    strip_rows: int | None) -> np.ndarray:
    """Step 2 of :func:`delineate_ugb`: the closing, then the opening, by Euclidean disks.

    A radius under one cell skips its step.
    """
    cs = cell_size(landscape)
    # radii in metres: isotropic in metres on non-square cells too (spacing = cell height, width)
    dy, dx = cell_sizes(landscape)
    r_close = closing_radius_m / cs
    r_open = opening_radius_m / cs
    spacing = (dy / cs, dx / cs)
    if r_close >= 1.0:  # closing = erosion of the dilation
        mask = _erode(_dilate(mask, r_close, spacing, strip_rows), r_close, spacing, strip_rows)
    if r_open >= 1.0:  # opening = dilation of the erosion
        mask = _dilate(_erode(mask, r_open, spacing, strip_rows), r_open, spacing, strip_rows)
    return mask


def _probability_on_grid(probability: xr.DataArray | np.ndarray,
                         landscape: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The growth probability as a float array (integers converted to float64) and the study area, of one shape."""
    p = np.asarray(probability.values if isinstance(probability, xr.DataArray) else probability)
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    study = _study(landscape)
    if p.shape != study.shape:
        raise LanduseError(f"growth probability has shape {p.shape}, the Landscape's grid is {study.shape}")
    return p, study


def _large_patches(mask: np.ndarray, min_cells: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Step 4 of :func:`delineate_ugb`: the 8-connected labels of ``mask`` and which labels are kept.

    Kept: whether each label (0 the background, never kept) has at least ``min_cells`` cells. ``(None, None)`` when
    ``min_cells`` is at most 1 (every patch kept).
    """
    if min_cells <= 1:
        return None, None
    labels, n = store_label(mask, structure=np.ones((3, 3), dtype=bool))
    keep = label_sizes(labels, n) >= min_cells
    keep[0] = False
    return labels, keep


def delineate_ugb(
    probability: xr.DataArray | np.ndarray,
    landscape: xr.Dataset,
    *,
    threshold: float,
    closing_radius_m: float,
    min_area_ha: float,
    fill_holes: bool = True,
    opening_radius_m: float | None = None,
    include_urban: bool = True,
    landuse: xr.DataArray | np.ndarray | None = None,
    classes=None,
    strip_rows: int | None = None,
) -> xr.DataArray:
    """Delineate a growth boundary from growth probability and existing urban land.

    Steps, in order:

    1. candidate = study-area cells with ``probability >= threshold`` (NaN counts as 0),
       plus existing urban land when ``include_urban``;
    2. morphological closing with a disk of ``closing_radius_m`` (joins patches and
       bridges gaps narrower than about twice the radius), then opening with a disk of
       ``opening_radius_m`` (default: the closing radius; removes spurs and strips
       narrower than about twice the radius) — both Euclidean, cell for cell those of
       ``skimage.morphology.isotropic_closing`` / ``isotropic_opening`` (a numba kernel
       on square cells); a radius under one cell skips the step;
    3. fill holes (enclosed non-boundary areas) when ``fill_holes``;
    4. drop patches (8-connected) smaller than ``min_area_ha``;
    5. add existing urban land back when ``include_urban`` (so every urban cell is inside,
       even a village too small to pass step 4);
    6. remove every red-line cell (if the Landscape has a ``red_line`` layer, whatever
       ``policy.red_line`` says) and every cell outside the study area.

    Parameters
    ----------
    probability : array (rows, cols)
        Growth probability in [0, 1] on the Landscape's grid (e.g. the share of Monte
        Carlo runs in which a cell is urban at the horizon).
    landscape : xarray.Dataset
        Supplies the grid, the study area, the existing land use and ``red_line``.
    threshold : float
        Minimum probability for a cell to enter the boundary, in (0, 1].
    closing_radius_m, min_area_ha : float
        Closing radius in metres, minimum patch area in hectares.
    fill_holes : bool
        Fill enclosed holes.
    opening_radius_m : float, optional
        Opening radius in metres (default: ``closing_radius_m``; 0 skips the opening).
    include_urban : bool
        Include existing urban land (default). When False the boundary comes from the
        probability alone.
    landuse : array, optional
        Existing land use (default ``landscape.landuse``), e.g. the land use at the
        horizon's start year when delineating for a later period.
    classes : ClassScheme, optional
        Class scheme giving the urban roles (default: the shipped scheme).
    strip_rows : int, optional
        Rows per strip of the cell-by-cell steps (default: about :data:`~landuse.core.strips.STRIP_CELLS` cells a strip).
        The result is the same for any value: the morphology reads a halo of the disk's reach around each strip,
        and the labelling (holes, patches) is done on the whole raster, in the run's store. The working memory is
        a few strips; the masks and labels are rasters of the run's store (:mod:`landuse.core.store`).

    Returns
    -------
    xarray.DataArray
        Boolean ``growth_boundary`` on the Landscape's grid, attrs recording the parameters.
    """
    from landuse.core.classes import default_scheme

    classes = classes or default_scheme()
    if not 0.0 < threshold <= 1.0:
        raise LanduseError(f"evaluation.ugb.threshold must be within (0, 1], got {threshold:g}")
    if closing_radius_m < 0 or min_area_ha < 0 or (opening_radius_m is not None and opening_radius_m < 0):
        raise LanduseError("evaluation.ugb: radii and min_area_ha must not be negative")
    p, study = _probability_on_grid(probability, landscape)
    lu = np.asarray(landscape["landuse"].values if landuse is None else getattr(landuse, "values", landuse))
    red = np.asarray(landscape["red_line"].values, dtype=bool) if "red_line" in landscape else None
    rows, cols = study.shape
    strips = _row_ranges(rows, cols, strip_rows)

    def urban(a: int, b: int) -> np.ndarray:
        return classes.is_role(lu[a:b], "urban") & study[a:b]

    # compared in float64 without a float64 copy of the grid (a float64 scalar promotes the
    # comparison loop, not the array); NaN is never >= a positive threshold, as if it were 0
    mask = store_empty(study.shape, bool)
    for a, b in strips:
        np.greater_equal(p[a:b], np.float64(threshold), out=mask[a:b])
        mask[a:b] &= study[a:b]
        if include_urban:
            mask[a:b] |= urban(a, b)
    mask = _close_and_open(mask, landscape, closing_radius_m,
                           closing_radius_m if opening_radius_m is None else opening_radius_m, strip_rows)
    if fill_holes:
        mask = _fill_holes(mask, strip_rows)
    min_cells = math.ceil(min_area_ha / cell_area_ha(landscape) - 1e-9)
    labels, keep = _large_patches(mask, min_cells)
    for a, b in strips:
        if keep is not None:
            np.take(keep, labels[a:b], out=mask[a:b])
        if include_urban:
            mask[a:b] |= urban(a, b)
        mask[a:b] &= study[a:b]
        if red is not None:
            mask[a:b] &= ~red[a:b]
    return like(
        landscape,
        mask,
        "growth_boundary",
        copy=False,
        threshold=float(threshold),
        closing_radius_m=float(closing_radius_m),
        opening_radius_m=float(closing_radius_m if opening_radius_m is None else opening_radius_m),
        min_area_ha=float(min_area_ha),
        fill_holes=int(bool(fill_holes)),
        include_urban=int(bool(include_urban)),
    )


def ugb_from_config(
    probability: xr.DataArray | np.ndarray, landscape: xr.Dataset, scenario: Scenario,
    *, landuse: xr.DataArray | np.ndarray | None = None,
) -> xr.DataArray:
    """:func:`delineate_ugb` with the parameters of ``evaluation.ugb`` in the scenario."""
    cfg: UgbConfig = scenario.config.evaluation.ugb
    return delineate_ugb(
        probability,
        landscape,
        threshold=cfg.threshold,
        closing_radius_m=cfg.closing_radius_m,
        opening_radius_m=cfg.opening_radius_m,
        min_area_ha=cfg.min_area_ha,
        fill_holes=cfg.fill_holes,
        landuse=landuse,
        classes=scenario.classes,
    )


def _ring_area(ring: list) -> float:
    xy = np.asarray(ring, dtype=np.float64)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def _crs_name(crs) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs.to_wkt()


def ugb_geojson(ugb: xr.DataArray) -> dict[str, Any]:
    """The boundary as a GeoJSON FeatureCollection of polygons (raster CRS, CRS named in ``crs``).

    One feature per 4-connected region (``rasterio.features.shapes``), with properties
    ``id`` and ``area_ha``; holes are interior rings. Coordinates are in the raster's CRS
    (not WGS 84), which the ``crs`` member names (``urn:ogc:def:crs:EPSG::<code>``).
    """
    mask = np.asarray(ugb.values, dtype=bool)
    transform = transform_of(ugb)
    feats = []
    for i, (geom, _value) in enumerate(
        features.shapes(mask.view(np.uint8), mask=mask, transform=transform, connectivity=4), start=1
    ):
        rings = geom["coordinates"]
        area_m2 = abs(_ring_area(rings[0])) - sum(abs(_ring_area(r)) for r in rings[1:])
        feats.append({"type": "Feature", "properties": {"id": i, "area_ha": area_m2 / 10_000.0}, "geometry": geom})
    out: dict[str, Any] = {"type": "FeatureCollection", "name": str(ugb.name or "growth_boundary"), "features": feats}
    name = _crs_name(crs_of(ugb))
    if name:
        out["crs"] = {"type": "name", "properties": {"name": name}}
    return out


def write_ugb(
    ugb: xr.DataArray,
    out_dir: str | os.PathLike,
    *,
    stem: str = "growth_boundary",
    tags: dict[str, object] | None = None,
) -> list[Path]:
    """Write the boundary as ``<stem>.tif`` (uint8 0/1 COG) and ``<stem>.geojson``, atomically.

    Returns the paths written.
    """
    out = Path(out_dir)
    as_uint8 = ugb.copy(deep=False, data=np.asarray(ugb.values, dtype=bool).view(np.uint8))  # 0/1, no copy
    tif = write_geotiff(as_uint8.rename(stem), out / f"{stem}.tif", nodata=255, tags=tags)
    gj = write_text(out / f"{stem}.geojson", json.dumps(ugb_geojson(ugb)))
    return [tif, gj]


def ugb_summary(ugb: xr.DataArray, landscape: xr.Dataset, *, landuse=None, classes=None) -> dict[str, Any]:
    """Area, share of the region, polygon count and existing urban land inside the boundary."""
    from landuse.core.classes import default_scheme

    classes = classes or default_scheme()
    mask = np.asarray(ugb.values, dtype=bool)
    study = _study(landscape)
    cell_ha = cell_area_ha(landscape)
    lu = np.asarray(landscape["landuse"].values if landuse is None else getattr(landuse, "values", landuse))
    red = np.asarray(landscape["red_line"].values, dtype=bool) if "red_line" in landscape else None
    _, n = store_label(mask, structure=np.ones((3, 3), dtype=bool))
    cells = {"area": 0, "region": 0, "urban": 0, "inside": 0, "red": 0}
    for a, b in _row_ranges(*mask.shape, None):  # counts strip by strip: no whole-raster temporaries
        urban = classes.is_role(lu[a:b], "urban") & study[a:b]
        cells["area"] += int(np.count_nonzero(mask[a:b]))
        cells["region"] += int(np.count_nonzero(study[a:b]))
        cells["urban"] += int(np.count_nonzero(urban))
        cells["inside"] += int(np.count_nonzero(urban & mask[a:b]))
        if red is not None:
            cells["red"] += int(np.count_nonzero(mask[a:b] & red[a:b]))
    area, region = float(cells["area"]) * cell_ha, float(cells["region"]) * cell_ha
    urban_ha, inside = float(cells["urban"]) * cell_ha, float(cells["inside"]) * cell_ha
    return {
        "area_ha": area,
        "region_ha": region,
        "share_of_region": area / region if region else None,
        "patches": int(n),
        "urban_ha": urban_ha,
        "urban_inside_ha": inside,
        "urban_inside_share": inside / urban_ha if urban_ha else None,
        "red_line_cells_inside": cells["red"],
        "parameters": {k: v for k, v in ugb.attrs.items() if k not in ("_FillValue",)},
    }
