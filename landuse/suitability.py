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
a :class:`~landuse.errors.ConfigError` when the scenario is loaded.

The ``raster`` method reads pre-computed ``suitability_<type>`` layers (e.g. trained on
observed change); values are clipped to [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import ndimage

from landuse.config import Scenario, _default_type_weights
from landuse.errors import ConfigError
from landuse.landscape import cell_sizes

MAX_SLOPE_DEG = 25.0
_MASK_DRIVERS = {"dist_roads": "roads", "dist_rail": "rail", "dist_stations": "stations", "dist_centres": "centres"}

DEFAULT_TYPE_WEIGHTS: dict[str, dict[str, float]] = _default_type_weights()
"""Per-type default driver weights (industrial favours roads and rail, commercial centres and stations)."""


def distance_to(mask: np.ndarray, *, cell: float | tuple[float, float]) -> np.ndarray:
    """Euclidean distance (metres, float32) from every cell to the nearest True cell.

    ``cell`` is the cell edge, or ``(height, width)`` for non-square cells
    (:func:`landuse.landscape.cell_sizes`). Where ``mask`` has no True cell the distance is ``inf``.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(~mask, sampling=cell).astype(np.float32)


def distance_score(distance: np.ndarray, *, scale_m: float) -> np.ndarray:
    """``exp(-ln 2 * d / scale_m)``: 1 at the feature, 0.5 at ``scale_m``, 0 at infinity."""
    return np.exp(np.float32(-math.log(2.0) / scale_m) * distance).astype(np.float32)


def _minmax(a: np.ndarray, inside: np.ndarray) -> np.ndarray:
    vals = a[inside & np.isfinite(a)]
    if vals.size == 0:
        return np.zeros_like(a, dtype=np.float32)
    lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        return np.ones_like(a, dtype=np.float32)
    out = (a - lo) / (hi - lo)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def type_weights(scenario: Scenario) -> dict[str, dict[str, float]]:
    """Driver weights per urban type: ``by_type[type]`` where given, else ``weights``."""
    return scenario.driver_weights()


def driver_score(ds: xr.Dataset, scenario: Scenario, name: str, *, landuse: np.ndarray) -> np.ndarray | None:
    """Score in [0, 1] of one driver, or None when its layer is absent."""
    cfg = scenario.config.growth.suitability
    cell = cell_sizes(ds)
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    classes = scenario.classes
    if name == "dist_urban":
        return distance_score(distance_to(classes.is_role(landuse, "urban") & inside, cell=cell),
                              scale_m=cfg.distance_scale_m)
    if name.startswith("dist_") and name[5:] in classes.urban_types:
        return distance_score(distance_to(classes.is_role(landuse, name[5:]) & inside, cell=cell),
                              scale_m=cfg.distance_scale_m)
    if name in _MASK_DRIVERS:
        layer = _MASK_DRIVERS[name]
        if layer not in ds:
            return None
        return distance_score(distance_to(np.asarray(ds[layer].values, dtype=bool), cell=cell),
                              scale_m=cfg.distance_scale_m)
    if name == "slope":
        if "slope" not in ds:
            return None
        s = np.nan_to_num(np.asarray(ds["slope"].values, dtype=np.float32), nan=MAX_SLOPE_DEG)
        return np.clip(1.0 - s / np.float32(MAX_SLOPE_DEG), 0.0, 1.0).astype(np.float32)
    if name not in ds:
        return None
    score = _minmax(np.asarray(ds[name].values, dtype=np.float32), inside)
    return (1.0 - score).astype(np.float32) if name == "elevation" else score


def compute_suitability(
    ds: xr.Dataset, scenario: Scenario, *, landuse: np.ndarray | None = None, method: str | None = None
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

    Returns
    -------
    xarray.DataArray
        0 outside the study area.
    """
    cfg = scenario.config.growth.suitability
    method = method or cfg.method
    lu = np.asarray(ds["landuse"].values if landuse is None else landuse, dtype=np.uint8)
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    shape = lu.shape
    types = scenario.urban_types
    out = np.zeros((len(types), *shape), dtype=np.float32)
    dropped: set[str] = set()
    if method == "raster":
        for k, t in enumerate(types):
            name = f"suitability_{t}"
            if name not in ds:
                raise ConfigError(
                    f"growth.suitability.method is 'raster' but layers.suitability.{t} is not given; "
                    "add it or use method 'linear'"
                )
            out[k] = np.clip(np.nan_to_num(ds[name].values, nan=0.0), 0.0, 1.0)
    elif method == "linear":
        cache: dict[str, np.ndarray | None] = {}
        for k, weights in enumerate(type_weights(scenario).values()):
            total = 0.0
            acc = np.zeros(shape, dtype=np.float32)
            for name, w in weights.items():
                if w <= 0:
                    continue
                if name not in cache:
                    cache[name] = driver_score(ds, scenario, name, landuse=lu)
                score = cache[name]
                if score is None:
                    dropped.add(name)
                    continue
                acc += np.float32(w) * score
                total += w
            out[k] = acc / np.float32(total) if total > 0 else 1.0
    else:
        raise ConfigError(
            f"growth.suitability.method {method!r} is computed by landuse.suitability_model.train_suitability "
            "(landuse run trains it at the start of the run); compute_suitability takes 'linear' or 'raster'"
        )
    out[:, ~inside] = 0.0
    da = xr.DataArray(
        out,
        dims=("type", "y", "x"),
        coords={"type": list(types), "y": ds.y, "x": ds.x},
        name="suitability",
        attrs={"method": method, "dropped_drivers": sorted(dropped)},
    )
    return da.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())
