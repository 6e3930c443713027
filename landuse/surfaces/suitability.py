"""Suitability of each cell for each urban type, from driver layers.

The weighted-linear method combines normalised driver scores in [0, 1]:

``S[i, k] = sum_d w[k, d] * score_d(i) / sum_d w[k, d]``

with scores

* ``dist_urban``, ``dist_residential``, ``dist_industrial``, ``dist_commercial`` —
  distance to existing urban land (any / of one type), computed from the current land
  use with a Euclidean distance transform;
* ``dist_roads``, ``dist_rail``, ``dist_stations``, ``dist_centres`` — distance to the
  cells of that mask layer;
* distance scores decay as ``exp(-ln 2 * d / distance_scale_m)`` (1 on the feature,
  0.5 at ``distance_scale_m``);
* ``slope`` — ``clip(1 - slope / max_slope_deg, 0, 1)``;
* ``elevation`` and any other float driver — min-max normalised over the study area,
  ``elevation`` reversed (low is suitable), others as given (high is suitable).

Drivers whose layer is absent are dropped and their names recorded in
``attrs["dropped_drivers"]`` (``landuse validate`` lists them); an unknown driver name is
a :class:`~landuse.core.errors.ConfigError` when the scenario is loaded.

The ``raster`` method reads pre-computed ``suitability_<type>`` layers (e.g. trained on
observed change); values are clipped to [0, 1].
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

# Passive waiting for numba's OpenMP threads, as in landuse/__init__.py (a caller's value wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import xarray as xr
from numba import njit, prange

from landuse.core.config import Scenario
from landuse.core.config_stages import default_type_weights
from landuse.core.errors import ArgumentError, ConfigError
from landuse.core.landscape import cell_sizes, georef_of, set_georef
from landuse.core.store import store_by_strips, store_empty, store_full, store_zeros
from landuse.core.strips import row_strips

MAX_SLOPE_DEG = 25.0
_MASK_DRIVERS = {"dist_roads": "roads", "dist_rail": "rail", "dist_stations": "stations", "dist_centres": "centres"}

DEFAULT_TYPE_WEIGHTS: dict[str, dict[str, float]] = default_type_weights()
"""Per-type default driver weights (industrial favours roads and rail, commercial centres and stations)."""


_STRIP = 256  # columns per strip of the column pass, rows per strip of the row pass


@njit(cache=True, nogil=True, parallel=True)
def _nearest_in_column(mask: np.ndarray, near: np.ndarray) -> None:
    """``near[r, c]``: row of the nearest True cell of column ``c`` (-1 if the column has none).

    Ties go to the upper cell. Columns are processed in strips of ``_STRIP`` in parallel;
    each strip sweeps down then up, so access stays row-major within a strip.
    """
    h, w = mask.shape
    for s in prange((w + _STRIP - 1) // _STRIP):
        c0 = s * _STRIP
        c1 = min(w, c0 + _STRIP)
        for c in range(c0, c1):
            near[0, c] = 0 if mask[0, c] else -1
        for r in range(1, h):
            for c in range(c0, c1):
                near[r, c] = r if mask[r, c] else near[r - 1, c]
        below = np.full(c1 - c0, -1, np.int32)
        for r in range(h - 1, -1, -1):
            for c in range(c0, c1):
                if mask[r, c]:
                    below[c - c0] = r
                else:
                    d = below[c - c0]
                    if d >= 0:
                        u = near[r, c]
                        if u < 0 or d - r < r - u:
                            near[r, c] = d


@njit(cache=True, nogil=True, parallel=True)
def _edt_rows(near: np.ndarray, sy: float, sx: float, out: np.ndarray) -> None:
    """Row pass of the exact Euclidean distance transform.

    For each row the lower envelope of the parabolas of its columns' nearest True cells (Maurer's Voronoi
    construction), then each cell's distance from its site.

    Every comparison and the distance are computed in float64 from the integer offsets
    times the cell size, ``sqrt((dy*sy)**2 + (dx*sx)**2)``; ties keep the leftmost site.
    Rows are independent, so the result does not depend on the number of threads.
    """
    h, w = near.shape
    for s in prange((h + _STRIP - 1) // _STRIP):
        sites = np.empty(w, np.int32)  # columns on the envelope
        height = np.empty(w, np.float64)  # (dy * sy) ** 2 of each envelope site
        for r in range(s * _STRIP, min(h, (s + 1) * _STRIP)):
            top = -1
            for c in range(w):
                fr = near[r, c]
                if fr < 0:
                    continue
                t = float(fr - r) * sy
                hw = t * t
                while top >= 1:
                    v = sites[top]
                    u = sites[top - 1]
                    a = float(v - u) * sx
                    b = float(c - v) * sx
                    ab = a + b
                    if ab * height[top] - b * height[top - 1] - a * hw - a * b * ab <= 0.0:
                        break
                    top -= 1
                top += 1
                sites[top] = c
                height[top] = hw
            if top < 0:  # no True cell anywhere (the caller handles it)
                for x in range(w):
                    out[r, x] = np.inf
                continue
            k = 0
            for x in range(w):
                t = float(sites[k] - x) * sx
                best = height[k] + t * t
                while k < top:
                    t = float(sites[k + 1] - x) * sx
                    nxt = height[k + 1] + t * t
                    if best <= nxt:
                        break
                    best = nxt
                    k += 1
                out[r, x] = np.float32(math.sqrt(best))


@njit(cache=True, nogil=True, parallel=True)
def _add_weighted(acc: np.ndarray, score: np.ndarray, weight: np.float32) -> None:
    """``acc += weight * score`` in float32, parallel over row strips (one driver of a weighted mean)."""
    h, w = acc.shape
    for s in prange((h + _STRIP - 1) // _STRIP):
        for r in range(s * _STRIP, min(h, (s + 1) * _STRIP)):
            for c in range(w):
                acc[r, c] = acc[r, c] + weight * score[r, c]


@njit(cache=True, nogil=True, parallel=True)
def _divide_inside(acc: np.ndarray, total: np.float32, inside: np.ndarray) -> None:
    """``acc = acc / total`` inside the study area, 0 outside."""
    h, w = acc.shape
    for s in prange((h + _STRIP - 1) // _STRIP):
        for r in range(s * _STRIP, min(h, (s + 1) * _STRIP)):
            for c in range(w):
                acc[r, c] = acc[r, c] / total if inside[r, c] else np.float32(0.0)


def weighted_suitability(scores: Sequence[np.ndarray], weights: Sequence[float], inside: np.ndarray, *,
                         out: np.ndarray | None = None) -> np.ndarray:
    """One urban type's weighted-linear suitability: ``sum_d w_d s_d / sum_d w_d`` inside the study area, 0 outside.

    Parameters
    ----------
    scores : sequence of float32 arrays (rows, cols)
        The drivers' scores in [0, 1] (:func:`driver_score`), in the order of ``weights``.
    weights : sequence of float
        The drivers' positive weights; none (or a zero sum) gives 1 inside the study area.
    inside : bool array (rows, cols)
        The study area.
    out : float32 array (rows, cols), optional
        Written and returned (default a new array).

    Notes
    -----
    float32 throughout, added in the drivers' order from 0 (the sum of the weights in float64, in their order): the
    same operations, in the same order, as accumulating with numpy (``acc += np.float32(w) * s``, then
    ``acc / np.float32(total)``), one compiled pass per driver (a typed list of the drivers would cost ~0.4 s of
    compilation per process).
    """
    inside = np.ascontiguousarray(inside, dtype=bool)
    if out is None:
        out = np.empty(inside.shape, dtype=np.float32)
    total = 0.0
    for w in weights:
        total += w
    if total > 0:
        out[...] = 0.0
        for score, weight in zip(scores, np.array(weights, dtype=np.float32), strict=True):
            _add_weighted(out, np.ascontiguousarray(score, dtype=np.float32), np.float32(weight))
        _divide_inside(out, np.float32(total), inside)
    else:
        out[...] = inside
    return out


def distance_to(mask: np.ndarray, *, cell: float | tuple[float, float], out: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance (metres, float32) from every cell to the nearest True cell.

    ``cell`` is the cell edge, or ``(height, width)`` for non-square cells
    (:func:`landuse.core.landscape.cell_sizes`). Where ``mask`` has no True cell the distance is ``inf``.
    ``out``: a float32 array of the mask's shape to write into (returned).

    An exact separable transform (nearest True cell per column, then a lower envelope per
    row) in compiled code, parallel over strips: memory is one int32 per cell besides the
    output (in the raster store when one is active), and the result is bit for bit
    ``scipy.ndimage.distance_transform_edt(~mask, sampling=cell).astype(np.float32)``
    whatever the number of threads.

    Examples
    --------
    >>> distance_to(np.array([[True, False, False]]), cell=(10.0, 30.0))
    array([[ 0., 30., 60.]], dtype=float32)
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ArgumentError(f"distance_to takes a 2-D mask, got {mask.ndim} dimensions")
    sy, sx = (float(v) for v in np.broadcast_to(np.asarray(cell, dtype=np.float64), (2,)))
    if out is None:
        out = np.empty(mask.shape, dtype=np.float32)
    elif out.shape != mask.shape or out.dtype != np.float32:
        raise ArgumentError(f"out must be float32 of shape {mask.shape}, got {out.dtype} {out.shape}")
    if mask.size == 0:
        return out
    if not mask.any():
        out[...] = np.inf
        return out
    near = store_empty(mask.shape, np.int32)  # file-backed when a disk store is active
    _nearest_in_column(mask, near)
    _edt_rows(near, sy, sx, out)
    return out


def distance_score(distance: np.ndarray, *, scale_m: float, in_place: bool = False) -> np.ndarray:
    """``exp(-ln 2 * d / scale_m)``: 1 at the feature, 0.5 at ``scale_m``, 0 at infinity.

    ``in_place``: overwrite ``distance`` (float32) with the score and return it (no second raster).
    """
    if in_place and distance.dtype == np.float32:
        np.multiply(distance, np.float32(-math.log(2.0) / scale_m), out=distance)
        return np.exp(distance, out=distance)
    score = np.float32(-math.log(2.0) / scale_m) * distance
    return np.exp(score, out=score).astype(np.float32, copy=False)


def _minmax(a: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``(a - lo) / (hi - lo)`` (NaN -> 0) with ``lo, hi`` the extremes of ``a``'s finite values inside the study area.

    0 everywhere when it has none, 1 everywhere when they are equal. Computed strip by strip into the run's raster
    store (minimum and maximum are the whole raster's whatever the strips, the rest is cell by cell).
    """
    lo, hi = math.inf, -math.inf
    for r0, r1 in row_strips(*a.shape):
        vals = a[r0:r1][inside[r0:r1] & np.isfinite(a[r0:r1])]
        if vals.size:
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
    if lo > hi:  # no finite value inside
        return store_zeros(a.shape, np.float32)
    if hi <= lo:
        return store_full(a.shape, 1.0, np.float32)
    return store_by_strips(a.shape, np.float32,
                           lambda r0, r1: np.nan_to_num((a[r0:r1] - lo) / (hi - lo), nan=0.0).astype(np.float32))


def type_weights(scenario: Scenario) -> dict[str, dict[str, float]]:
    """Driver weights per urban type: ``by_type[type]`` where given, else ``weights``."""
    return scenario.driver_weights()


def depends_on_landuse(name: str, scenario: Scenario) -> bool:
    """Whether driver ``name`` is computed from the current land use (``dist_urban``, ``dist_<urban type>``)."""
    return name == "dist_urban" or (name.startswith("dist_") and name[5:] in scenario.classes.urban_types)


def distance_driver_mask(ds: xr.Dataset, scenario: Scenario, name: str, *,
                         landuse: np.ndarray) -> np.ndarray | None:
    """The cells a distance driver measures from, or None when ``name`` is no distance driver or its layer is absent.

    ``dist_urban``: urban land of ``landuse`` in the study area; ``dist_<urban type>``: land of that type in the study
    area; ``dist_roads``, ``dist_rail``, ``dist_stations``, ``dist_centres``: the cells of that mask layer. The score
    of the driver is :func:`distance_score` of :func:`distance_to` this mask (:func:`driver_score`). A mask computed
    from ``landuse`` is a raster of the run's store, filled strip by strip.
    """
    classes = scenario.classes
    if name == "dist_urban" or (name.startswith("dist_") and name[5:] in classes.urban_types):
        role = "urban" if name == "dist_urban" else name[5:]
        inside = np.asarray(ds["study_area"].values, dtype=bool)
        return store_by_strips(inside.shape, bool, lambda a, b: classes.is_role(landuse[a:b], role) & inside[a:b])
    layer = _MASK_DRIVERS.get(name)
    if layer is None or layer not in ds:
        return None
    return np.asarray(ds[layer].values, dtype=bool)


def driver_score(ds: xr.Dataset, scenario: Scenario, name: str, *, landuse: np.ndarray) -> np.ndarray | None:
    """Score in [0, 1] of one driver, or None when its layer is absent.

    The score, and the mask a distance is measured from, are rasters of the run's raster store (file-backed when a
    disk store is active) filled strip by strip, so a score kept beyond a period (the cache of land-use-independent
    scores) is file-backed too.
    """
    cfg = scenario.config.growth.suitability
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    shape = inside.shape
    mask = distance_driver_mask(ds, scenario, name, landuse=landuse)
    if mask is not None:  # the distance, then its score in the same raster
        out = store_empty(shape, np.float32)
        return distance_score(distance_to(mask, cell=cell_sizes(ds), out=out), scale_m=cfg.distance_scale_m,
                              in_place=True)
    if name in _MASK_DRIVERS:  # its layer is absent
        return None
    if name == "slope":
        if "slope" not in ds:
            return None
        slope = np.asarray(ds["slope"].values)

        def slope_score(a: int, b: int) -> np.ndarray:
            s = np.nan_to_num(np.asarray(slope[a:b], dtype=np.float32), nan=MAX_SLOPE_DEG)
            return np.clip(1.0 - s / np.float32(MAX_SLOPE_DEG), 0.0, 1.0).astype(np.float32)

        return store_by_strips(shape, np.float32, slope_score)
    if name not in ds:
        return None
    score = _minmax(np.asarray(ds[name].values, dtype=np.float32), inside)
    if name == "elevation":
        for a, b in row_strips(*shape):
            score[a:b] = (1.0 - score[a:b]).astype(np.float32)
    return score


def compute_suitability(
    ds: xr.Dataset,
    scenario: Scenario,
    *,
    landuse: np.ndarray | None = None,
    method: str | None = None,
    static: dict[str, np.ndarray | None] | None = None,
) -> xr.DataArray:
    """Suitability per urban type, float32 in [0, 1], dims ``(type, y, x)``.

    Parameters
    ----------
    ds : xarray.Dataset
        The Landscape.
    scenario : Scenario
        Supplies ``growth.suitability`` (method, weights, distance scale).
    landuse : ndarray, optional
        Current land use for the distance-to-urban drivers (default ``ds.landuse``);
        pass the land use at the start of each period.
    method : {"linear", "raster"}, optional
        Overrides ``growth.suitability.method`` (the trained method computes the
        weighted-linear suitability as its baseline this way).
    static : dict, optional
        Scores of the drivers that do not depend on land use (roads, rail, stations,
        centres, slope, elevation, other layers; see :func:`depends_on_landuse`), filled
        on the first call and reused by later ones. Pass the same (initially empty) dict
        for every period of one Landscape and scenario: the result is bit-identical to
        computing every driver again, and only the distances to urban land are
        recomputed. It holds one float32 raster per such driver.

    Returns
    -------
    xarray.DataArray
        0 outside the study area.
    """
    cfg = scenario.config.growth.suitability
    method = method or cfg.method
    lu = np.asarray(ds["landuse"].values if landuse is None else landuse, dtype=np.uint8)
    inside = np.ascontiguousarray(ds["study_area"].values, dtype=bool)
    shape = lu.shape
    types = scenario.urban_types
    out = store_zeros((len(types), *shape), np.float32)  # in the run's raster store, if one is active
    dropped: set[str] = set()
    if method == "raster":
        for k, t in enumerate(types):
            name = f"suitability_{t}"
            if name not in ds:
                raise ConfigError(
                    f"growth.suitability.method is 'raster' but layers.suitability.{t} is not given; "
                    "add it or use method 'linear'"
                )
            layer = ds[name].values
            for a, b in row_strips(*shape):  # strip by strip: no whole-raster temporaries
                out[k, a:b] = np.clip(np.nan_to_num(layer[a:b], nan=0.0), 0.0, 1.0)
                np.copyto(out[k, a:b], np.float32(0.0), where=~inside[a:b])
    elif method == "linear":
        cache: dict[str, np.ndarray | None] = {}
        for k, weights in enumerate(type_weights(scenario).values()):
            scores, ws = [], []
            for name, w in weights.items():
                if w <= 0:
                    continue
                if name not in cache:
                    if static is not None and not depends_on_landuse(name, scenario):
                        if name not in static:  # kept from period to period: in the raster store, if any
                            static[name] = driver_score(ds, scenario, name, landuse=lu)
                        cache[name] = static[name]
                    else:
                        cache[name] = driver_score(ds, scenario, name, landuse=lu)
                score = cache[name]
                if score is None:
                    dropped.add(name)
                    continue
                scores.append(np.ascontiguousarray(score, dtype=np.float32))
                ws.append(w)
            weighted_suitability(scores, ws, inside, out=out[k])
    else:
        raise ConfigError(
            f"growth.suitability.method {method!r} is computed by landuse.calibration.suitability_model.train_suitability "
            "(landuse run trains it at the start of the run); compute_suitability takes 'linear' or 'raster'"
        )
    da = xr.DataArray(
        out,
        dims=("type", "y", "x"),
        coords={"type": list(types), "y": ds.y, "x": ds.x},
        name="suitability",
        attrs={"method": method, "dropped_drivers": sorted(dropped)},
    )
    return set_georef(da, None, coord=georef_of(ds))  # in place: no copy of the data
