"""Suitability learned from observed change between two land-use maps.

For each urban type *k*, cells that could become *k* at the earlier date (``t0``) are
labelled 1 if they had become *k* at the later date (``t1``) and 0 otherwise. A
balanced sample (equal numbers of converted and unconverted cells, at most
``max_samples`` each) is split into a training and a held-out part; a logistic
regression (standardised features) or a random forest is fitted on the training part,
and the area under the ROC curve (AUC) is measured on the held-out part — for the
trained model and, on the same cells, for the weighted-linear suitability, so the two
can be compared.

Features (all computed from the land use at the date the model is applied to):

* ``log_dist_<x>`` — ``log(1 + distance in metres)`` to urban land (any and each type),
  roads, rail, stations and city centres (those layers present);
* ``share_<type>_5x5`` — share of each urban type in the 5 x 5 Moore window;
* ``slope``, ``elevation`` and any extra driver layers;
* ``city_urban_share`` — the urban share of the cell's city (a zone attribute).

The fitted model is then applied to features of the scenario's start land use, giving
``suitability_<type>`` rasters in [0, 1] that a scenario uses with
``growth.suitability.method: raster``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import ndimage

from landuse.core.config import Scenario
from landuse.core.errors import LanduseError
from landuse.core.landscape import cell_size, cell_sizes, georef_of, set_georef
from landuse.surfaces.constraints import convertible
from landuse.surfaces.suitability import compute_suitability, distance_to

_MASKS = ("roads", "rail", "stations", "centres")
_SKIP_DRIVERS = {"study_area", "landuse", "zones", "cities", "counties"}


def feature_stack(ds: xr.Dataset, scenario: Scenario, landuse: np.ndarray, *,
                  radii_m: Sequence[float] | None = None) -> tuple[list[str], np.ndarray]:
    """Feature names and a float32 array ``(n_features, rows, cols)`` for a land-use state.

    ``radii_m`` (default ``growth.suitability.density_radii_m``) adds, per radius, the
    share of urban land (any type) in the disc of that radius around the cell
    (``urban_share_<r>m``): neighbourhood density at several scales.
    """
    classes = scenario.classes
    cell = cell_size(ds)
    cell_yx = cell_sizes(ds)
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    names: list[str] = []
    layers: list[np.ndarray] = []

    def add(name: str, arr: np.ndarray) -> None:
        names.append(name)
        layers.append(np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=0.0))

    urban = classes.is_role(landuse, "urban") & inside
    big = float(np.hypot(*landuse.shape) * cell)
    for name, mask in [("urban", urban)] + [(t, classes.is_role(landuse, t) & inside) for t in classes.urban_types]:
        d = distance_to(mask, cell=cell_yx)
        add(f"log_dist_{name}", np.log1p(np.where(np.isfinite(d), d, big)))
    for m in _MASKS:
        if m in ds:
            d = distance_to(np.asarray(ds[m].values, dtype=bool), cell=cell_yx)
            add(f"log_dist_{m}", np.log1p(np.where(np.isfinite(d), d, big)))
    for t in classes.urban_types:
        share = ndimage.uniform_filter(classes.is_role(landuse, t).astype(np.float32), size=5, mode="constant")
        add(f"share_{t}_5x5", share)
    radii = scenario.config.growth.suitability.density_radii_m if radii_m is None else radii_m
    for r in radii:
        from scipy.signal import fftconvolve

        from landuse.evaluation.metrics import disk_offsets

        dy, dx = disk_offsets(float(r) / cell_yx[1], aspect=cell_yx[0] / cell_yx[1])
        h = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
        k = np.zeros((2 * h + 1, 2 * h + 1), np.float64)
        k[dy + h, dx + h] = 1.0
        k[h, h] = 1.0  # the cell itself
        share = np.clip(fftconvolve(urban.astype(np.float64), k / k.sum(), mode="same"), 0.0, 1.0)
        add(f"urban_share_{float(r):g}m", share)
    for name, var in ds.data_vars.items():
        if name in _SKIP_DRIVERS or name.startswith(("landuse_", "suitability_")) or var.dtype != np.float32:
            continue
        add(name, var.values)
    if "cities" in ds:
        cities = np.asarray(ds["cities"].values, dtype=np.int64)
        n = int(cities.max(initial=0)) + 1
        area = np.bincount(cities[inside], minlength=n).astype(np.float64)
        urb = np.bincount(cities[urban], minlength=n).astype(np.float64)
        share = np.divide(urb, area, out=np.zeros(n), where=area > 0)
        add("city_urban_share", share[cities])
    return names, np.stack(layers)


@dataclass
class TypeFit:
    """Fit of one urban type."""

    urban_type: str
    n_converted: int
    n_sampled: int
    auc: float
    auc_linear: float
    importances: dict[str, float]
    model: object = field(repr=False)


@dataclass
class TrainedSuitability:
    """Result of :func:`train_suitability`."""

    method: str
    t0: int
    t1: int
    features: list[str]
    fits: dict[str, TypeFit]
    suitability: xr.DataArray = field(repr=False)
    radii_m: tuple[float, ...] | None = None
    cv: str = "random"

    def predict(self, ds: xr.Dataset, scenario: Scenario, landuse: np.ndarray) -> xr.DataArray:
        """Suitability of another land-use state (e.g. each period's start) from the fitted models."""
        return predict_suitability({t: f.model for t, f in self.fits.items()}, ds, scenario, landuse,
                                   radii_m=self.radii_m)

    def summary(self) -> dict:
        """The fit as JSON-ready data: method, years, features, and per type cell counts, held-out AUCs, importances."""
        return {
            "method": self.method,
            "t0": self.t0,
            "t1": self.t1,
            "features": self.features,
            "types": {
                t: {
                    "converted_cells": f.n_converted,
                    "sampled_cells": f.n_sampled,
                    "auc_heldout": round(f.auc, 4),
                    "auc_heldout_linear": round(f.auc_linear, 4),
                    "importances": {k: round(v, 4) for k, v in f.importances.items()},
                }
                for t, f in self.fits.items()
            },
        }


def _make_model(method: str, seed: int):
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    if method == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=120, max_depth=14, min_samples_leaf=5, n_jobs=2, random_state=seed
        )
    raise LanduseError(f"unknown suitability method {method!r}; use 'logistic' or 'forest'")


def _importances(model, names: list[str]) -> dict[str, float]:
    if hasattr(model, "feature_importances_"):
        imp = np.asarray(model.feature_importances_, dtype=float)
    else:
        imp = np.abs(model[-1].coef_[0])
    total = imp.sum() or 1.0
    order = np.argsort(-imp)
    return {names[i]: float(imp[i] / total) for i in order}


def _draw_sample(rng: np.random.Generator, pos: np.ndarray, neg: np.ndarray, *, balanced: bool, max_samples: int,
                 heldout: float, block_of: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The cells (flat indices) one type is fitted and tested on, their labels, and how many of the first are held out.

    Converted (``pos``) and unconverted (``neg``) cells drawn without replacement — as many of each when
    ``balanced``, else the observed proportion with at most ``max_samples`` converted — shuffled; the first
    ``heldout`` share is the test set, or, with ``block_of`` (the block of every cell), whole blocks held out first
    in the order when both classes fall in them.
    """
    if balanced:
        n = n_neg = min(pos.size, neg.size, max_samples)
    else:  # the observed proportion of converted cells, at most max_samples of them
        n = min(pos.size, max_samples)
        n_neg = min(neg.size, round(n * neg.size / pos.size))
    idx = np.concatenate([rng.choice(pos, n, replace=False), rng.choice(neg, n_neg, replace=False)])
    y = np.concatenate([np.ones(n, dtype=np.int8), np.zeros(n_neg, dtype=np.int8)])
    perm = rng.permutation(idx.size)
    idx, y = idx[perm], y[perm]
    n_test = max(2, round(heldout * idx.size))
    if block_of is not None:  # whole blocks held out, first in the order
        blocks = np.unique(block_of[idx])
        held = rng.choice(blocks, max(1, round(heldout * blocks.size)), replace=False)
        test = np.isin(block_of[idx], held)
        if 0 < y[test].sum() < test.sum():  # both classes held out, else keep the random split
            order = np.argsort(~test, kind="stable")
            idx, y, n_test = idx[order], y[order], int(test.sum())
    return idx, y, n_test


def train_suitability(
    ds: xr.Dataset,
    scenario: Scenario,
    *,
    t0: int | None = None,
    method: str = "forest",
    max_samples: int = 20_000,
    heldout: float = 0.3,
    seed: int = 0,
    types: Sequence[str] | None = None,
    radii_m: Sequence[float] | None = None,
    cv: str = "random",
    balanced: bool | None = None,
    skip_scarce: bool = False,
) -> TrainedSuitability:
    """Learn suitability per urban type from the change between ``landuse_<t0>`` and ``landuse``.

    Parameters
    ----------
    ds : xarray.Dataset
        Landscape with ``landuse`` (the later date, the scenario's start year) and
        ``landuse_<t0>`` (the earlier date, from ``layers.history``).
    scenario : Scenario
        Class scheme, conversion matrix, constraints, linear-suitability weights.
    t0 : int, optional
        Earlier year; default the latest history year before the start year.
    method : {"forest", "logistic"}
    max_samples : int
        At most this many converted and this many unconverted cells per type.
    heldout : float
        Share of the balanced sample kept for the AUC.
    seed : int
        Seeds sampling and the model.
    types : sequence of str, optional
        Urban types to fit (default all); the others get suitability 0 (e.g. a history
        with a single urban class).
    radii_m : sequence of float, optional
        Radii of the urban-density features (default ``growth.suitability.density_radii_m``;
        ``()`` for none), see :func:`feature_stack`.
    cv : {"random", "blocked"}
        How the held-out cells are chosen: at random, or **spatially blocked** (whole
        ``allocation.block_size_m`` blocks held out, so neighbouring cells, which share
        their density features, are never split between fit and test; a more honest AUC).
    balanced : bool, optional
        Default ``growth.suitability.balanced``. Sample as many unconverted as converted
        cells, or keep the observed
        proportion (all converted cells up to ``max_samples``, unconverted ones in
        proportion): the probabilities are then calibrated to the observed rate, and on
        the demo200 hindcast the ranking was better (docs/calibration.md).
    skip_scarce : bool
        Leave out (suitability 0) a type with fewer than 20 converted cells instead of
        raising, e.g. a history with a single urban class.

    Returns
    -------
    TrainedSuitability
        Per-type fits (AUC held-out, AUC of the linear suitability on the same cells,
        importances) and ``suitability`` (type, y, x) float32 applied to the start land use.
    """
    from sklearn.metrics import roc_auc_score

    start = scenario.periods[0]
    years = sorted(int(v[8:]) for v in ds.data_vars if v.startswith("landuse_"))
    years = [y for y in years if y < start]
    if t0 is None:
        if not years:
            raise LanduseError(
                "training suitability needs land use at an earlier date: add layers.history "
                "(e.g. {2010: landuse_2010.tif}) to the scenario"
            )
        t0 = years[-1]
    if f"landuse_{t0}" not in ds:
        raise LanduseError(f"no land use for {t0}: layers.history has {years}")
    lu0 = np.asarray(ds[f"landuse_{t0}"].values)
    lu1 = np.asarray(ds["landuse"].values)
    if balanced is None:
        balanced = scenario.config.growth.suitability.balanced
    if cv not in ("random", "blocked"):
        raise LanduseError(f"cv must be 'random' or 'blocked', got {cv!r}")
    names, feats0 = feature_stack(ds, scenario, lu0, radii_m=radii_m)
    block_of = None
    if cv == "blocked":
        from landuse.allocation.zones import block_ids

        block_of = block_ids(ds, block_size_m=scenario.config.allocation.block_size_m).ravel()
    linear0 = compute_suitability(ds, _linear(scenario), landuse=lu0).values
    rng = np.random.default_rng(seed)
    fits: dict[str, TypeFit] = {}
    models = {}
    for t in scenario.urban_types:
        if types is not None and t not in types:
            continue
        cand = convertible(ds, scenario, t, landuse=lu0)
        target = scenario.classes.is_role(lu1, t)
        pos = np.flatnonzero((cand & target).ravel())
        neg = np.flatnonzero((cand & ~target).ravel())
        if skip_scarce and pos.size < 20:
            continue
        if pos.size < 20 or neg.size < 20:
            raise LanduseError(
                f"too little observed change to train {t} suitability between {t0} and {start} "
                f"({pos.size} converted cells, need at least 20)"
            )
        idx, y, n_test = _draw_sample(rng, pos, neg, balanced=balanced, max_samples=max_samples, heldout=heldout,
                                      block_of=block_of)
        X = feats0.reshape(len(names), -1)[:, idx].T
        model = _make_model(method, seed)
        model.fit(X[n_test:], y[n_test:])
        p = model.predict_proba(X[:n_test])[:, 1]
        auc = float(roc_auc_score(y[:n_test], p))
        auc_lin = float(roc_auc_score(y[:n_test], linear0[scenario.urban_types.index(t)].ravel()[idx[:n_test]]))
        fits[t] = TypeFit(t, int(pos.size), int(idx.size), auc, auc_lin, _importances(model, names), model)
        models[t] = model

    radii = None if radii_m is None else tuple(float(r) for r in radii_m)
    da = predict_suitability(models, ds, scenario, lu1, radii_m=radii)
    da.attrs.update({"method": method, "t0": t0, "t1": start, "cv": cv})
    return TrainedSuitability(method, t0, start, names, fits, da, radii_m=radii, cv=cv)


def _linear(scenario: Scenario) -> Scenario:
    """The scenario with the weighted-linear suitability (the baseline a trained model is compared with)."""
    if scenario.config.growth.suitability.method == "linear":
        return scenario
    # a copy, not a re-validation: a run's config holds the demand it derived (demand.people, share or
    # extrapolate beside the demand.by_city they set), which as input would be two sources of demand
    g = scenario.config.growth
    growth = g.model_copy(update={"suitability": g.suitability.model_copy(update={"method": "linear"})})
    cfg = scenario.config.model_copy(update={"growth": growth})
    return Scenario(cfg, path=scenario.path, base_dir=scenario.base_dir)


def predict_suitability(models: dict, ds: xr.Dataset, scenario: Scenario, landuse: np.ndarray, *,
                        radii_m: Sequence[float] | None = None) -> xr.DataArray:
    """Apply fitted per-type models to the features of a land-use state: (type, y, x) float32 in [0, 1]."""
    names, feats = feature_stack(ds, scenario, landuse, radii_m=radii_m)
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    flat = feats.reshape(len(names), -1)
    types = scenario.urban_types
    out = np.zeros((len(types), *landuse.shape), dtype=np.float32)
    cells = np.flatnonzero(inside.ravel())
    for k, t in enumerate(types):
        if models.get(t) is None:
            continue  # a type not fitted: suitability 0
        vals = np.empty(cells.size, dtype=np.float32)
        for a in range(0, cells.size, 500_000):
            sl = cells[a : a + 500_000]
            vals[a : a + sl.size] = models[t].predict_proba(flat[:, sl].T)[:, 1]
        out[k].ravel()[cells] = vals
    da = xr.DataArray(
        out,
        dims=("type", "y", "x"),
        coords={"type": list(types), "y": ds.y, "x": ds.x},
        name="suitability",
    )
    return set_georef(da, None, coord=georef_of(ds))


def write_trained(result: TrainedSuitability, out_dir, *, scenario: Scenario) -> list:
    """Write ``suitability_<type>.tif``, ``suitability_report.json`` and ``.md`` into ``out_dir``."""
    import json
    from pathlib import Path

    from landuse.io.rasters import write_geotiff, write_text

    out = Path(out_dir)
    written = []
    types = [str(t) for t in result.suitability.coords["type"].values]
    for t in types:
        da = result.suitability.sel(type=t, drop=True)
        da.name = f"suitability_{t}"
        written.append(write_geotiff(da, out / f"suitability_{t}.tif", tags={"method": result.method}))
    summary = result.summary()
    summary["scenario"] = scenario.name
    written.append(write_text(out / "suitability_report.json", json.dumps(summary, indent=2) + "\n"))
    lines = [
        f"# Trained suitability — {scenario.name}",
        "",
        f"Model: {result.method}; observed change {result.t0} → {result.t1}; balanced sample, 30 % held out.",
        "",
        "| type | converted cells | sampled | AUC (held-out) | AUC weighted-linear | top drivers |",
        "|---|---|---|---|---|---|",
    ]
    for t, f in result.fits.items():
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(f.importances.items())[:4])
        lines.append(f"| {t} | {f.n_converted} | {f.n_sampled} | {f.auc:.3f} | {f.auc_linear:.3f} | {top} |")
    rel = {t: f"suitability_{t}.tif" for t in types}
    lines += [
        "",
        "Use in a scenario (paths may also be given relative to the scenario file):",
        "",
        "```yaml",
        "layers:",
        "  suitability:",
        *[f"    {t}: {out / p}" for t, p in rel.items()],
        "growth:",
        "  suitability:",
        "    method: raster",
        "```",
        "",
    ]
    written.append(write_text(out / "suitability_report.md", "\n".join(lines)))
    return written
