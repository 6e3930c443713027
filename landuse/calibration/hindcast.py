"""Hindcast: whether the model, fitted on the past, predicts the next observed map better than simple rules.

From three land-use maps ``t0 < t1 < t2`` (``layers.history`` and ``layers.landuse``):

1. **fit** on ``t0 -> t1`` only: the growth parameters are calibrated
   (:func:`landuse.calibration.search.calibrate`) on the change observed between ``t0`` and ``t1``,
   and a trained suitability (when the scenario uses one) learns from that change;
2. **predict** ``t1 -> t2`` from the map of ``t1`` with the *quantities* of ``t2`` — per
   urban type, the number of cells gained, either cluster-wide (one total per type; the
   model decides where) or per allocation zone (``quantities="zone"``);
3. **score** against the map of ``t2``, with the null models given the same quantities in
   the same run: the developable cells nearest to urban land (``distance``), the cells of
   highest probability of a logistic regression on the same drivers fitted on
   ``t0 -> t1`` (``logistic``), and cells drawn at random (``random``).

Two maps of the model are scored: the representative Monte Carlo run (``model``) and the
**expected map** (``model_expected``): per zone and type, the period's exact amounts placed
on the cells of highest ensemble probability (ties by suitability, then cell index).

Leakage: the prediction (:func:`predict_hindcast`) receives a Landscape holding no map
after ``t1`` and a table of amounts; the map of ``t2`` is read only by
:func:`observed_targets <landuse.calibration.amounts.observed_targets>` (the amounts) and by the
scoring. ``tests/calibration/test_hindcast.py`` scrambles ``t2`` (same amounts) and checks that every
predicted map is unchanged.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.calibration.amounts import QUANTITIES, observed_targets, quantity_zones
from landuse.calibration.search import calibrate
from landuse.calibration.setup import build_setup, historical_setup
from landuse.core.config import Scenario
from landuse.core.errors import ConfigError, LanduseError
from landuse.evaluation.agreement import kappa_simulation, validation_metrics
from landuse.evaluation.expected import allocate_by_rank, expected_map

__all__ = [
    "CHANGE_CODES",
    "NULL_MODELS",
    "HindcastPrediction",
    "HindcastResult",
    "change_map",
    "hindcast",
    "hindcast_amounts",
    "hindcast_scenario",
    "hindcast_years",
    "multiresolution_fom",
    "null_maps",
    "past_landscape",
    "predict_hindcast",
    "score_map",
    "unreachable_sources",
    "write_hindcast",
]

NULL_MODELS: tuple[str, ...] = ("distance", "logistic", "random")
"""The null models scored beside the model in every hindcast."""

CHANGE_CODES: dict[int, str] = {0: "no gain in either", 1: "hit", 2: "miss", 3: "false alarm"}
"""Codes of the hits / misses / false-alarms maps of urban gain (255 outside the study area)."""

DEFAULT_WINDOWS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
"""Window edges (cells) of the multiple-resolution figure of merit."""


# =========================================================================== scoring


def multiresolution_fom(gain_observed: np.ndarray, gain_simulated: np.ndarray, valid: np.ndarray,
                        *, windows: Sequence[int] = DEFAULT_WINDOWS) -> dict[int, float]:
    """Figure of merit of a gain at coarser resolutions (non-overlapping ``w x w`` windows).

    In each window ``b`` with observed gain ``O_b`` and simulated gain ``S_b`` (cells),
    ``hits = min(O_b, S_b)``, ``misses = O_b - hits``, ``false alarms = S_b - hits``, so
    ``FoM_w = sum_b min(O_b, S_b) / sum_b max(O_b, S_b)``, in [0, 1]; at ``w = 1`` this is
    the cell-level FoM. It grows with ``w`` as location errors shorter than the window
    stop counting (Pontius et al. 2008's multiple-resolution comparison). nan if neither
    map gains anything.

    >>> o = np.array([[1, 0, 0, 0]], bool); s = np.array([[0, 1, 0, 0]], bool)
    >>> multiresolution_fom(o, s, np.ones((1, 4), bool), windows=(1, 2))
    {1: 0.0, 2: 1.0}
    """
    out: dict[int, float] = {}
    o = np.asarray(gain_observed, dtype=bool) & valid
    s = np.asarray(gain_simulated, dtype=bool) & valid
    rows, cols = o.shape
    for w in windows:
        r, c = math.ceil(rows / w) * w, math.ceil(cols / w) * w
        ob = np.zeros((r, c), dtype=np.int64)
        sb = np.zeros((r, c), dtype=np.int64)
        ob[:rows, :cols] = o
        sb[:rows, :cols] = s
        ob = ob.reshape(r // w, w, c // w, w).sum(axis=(1, 3))
        sb = sb.reshape(r // w, w, c // w, w).sum(axis=(1, 3))
        den = int(np.maximum(ob, sb).sum())
        out[int(w)] = float(np.minimum(ob, sb).sum() / den) if den else math.nan
    return out


def change_map(before: np.ndarray, observed: np.ndarray, simulated: np.ndarray, valid: np.ndarray,
               urban_codes: Sequence[int]) -> np.ndarray:
    """Hits / misses / false alarms of urban gain as a uint8 map (:data:`CHANGE_CODES`, 255 outside)."""
    uc = np.asarray(urban_codes, dtype=np.uint8)
    was = np.isin(before, uc)
    go = np.isin(observed, uc) & ~was
    gs = np.isin(simulated, uc) & ~was
    out = np.zeros(before.shape, dtype=np.uint8)
    out[go & gs] = 1
    out[go & ~gs] = 2
    out[gs & ~go] = 3
    out[~valid] = 255
    return out


def score_map(before: np.ndarray, observed: np.ndarray, simulated: np.ndarray, valid: np.ndarray,
              scenario: Scenario, *, windows: Sequence[int] = DEFAULT_WINDOWS) -> dict[str, Any]:
    """Every hindcast score of one predicted map against the observed one.

    ``built_gain``: hits, misses, false alarms and FoM of urban gain (any urban type from
    any non-urban class); ``fom_by_type``: FoM of each urban type's gain; ``fom_all``:
    FoM over every class (wrong hits counted); ``quantity_disagreement`` and
    ``allocation_disagreement`` (Pontius & Millones 2011, shares of the study area);
    ``kappa_simulation`` (van Vliet et al. 2011); ``lee_sallee`` of urban land;
    ``fom_by_window``: :func:`multiresolution_fom` of urban gain. All metrics come from
    :mod:`landuse.evaluation.agreement`.
    """
    classes = scenario.classes
    m = validation_metrics(before, observed, simulated, classes, study_area=valid)
    codes = np.asarray(classes.urban_codes, dtype=np.uint8)
    was = np.isin(before, codes)
    go = np.isin(observed, codes) & ~was & valid
    gs = np.isin(simulated, codes) & ~was & valid
    h, mi, fa = int((go & gs).sum()), int((go & ~gs).sum()), int((gs & ~go).sum())
    den = h + mi + fa
    names = {c.code: c.name for c in classes}
    by_type = {}
    for t in classes.urban_types:
        g = m["gains_by_class"][names[classes.code_of(t)]]
        if g["hits"] + g["misses"] + g["false_alarms"] > 0:
            by_type[t] = g["figure_of_merit"]
    return {
        "built_gain": {"hits": h, "misses": mi, "false_alarms": fa, "fom": h / den if den else math.nan,
                       "observed": int(go.sum()), "simulated": int(gs.sum())},
        "fom_by_type": by_type,
        "fom_all": m["figure_of_merit"],
        "quantity_disagreement": m["quantity_disagreement"],
        "allocation_disagreement": m["allocation_disagreement"],
        "kappa_simulation": kappa_simulation(before, observed, simulated, study_area=valid, nodata=classes.nodata),
        "lee_sallee": m["lee_sallee"]["urban"],
        "fom_by_window": multiresolution_fom(go, gs, valid, windows=windows),
    }


# =========================================================================== years and the past


def hindcast_years(landscape: xr.Dataset, scenario: Scenario, *, t0: int | None = None,
                   t1: int | None = None) -> tuple[int, int, int]:
    """The years ``(t0, t1, t2)``.

    ``t2`` is the start year (``layers.landuse``), ``t1`` by default the latest history year, ``t0`` by default the
    earliest history year before ``t1``.
    """
    t2 = int(scenario.periods[0])
    years = sorted(int(v[8:]) for v in landscape.data_vars if v.startswith("landuse_") and v[8:].isdigit())
    years = [y for y in years if y < t2]
    t1 = years[-1] if t1 is None and years else t1
    if t1 is None or t1 not in years:
        raise ConfigError(f"a hindcast needs two history years before {t2} (layers.history); "
                          f"t1 = {t1} is not one of {years or 'none'}")
    before = [y for y in years if y < t1]
    t0 = before[0] if t0 is None and before else t0
    if t0 is None or t0 not in before:
        raise ConfigError(f"a hindcast needs a history year before t1 = {t1} to fit on; "
                          f"t0 = {t0} is not one of {before or 'none'} (add one to layers.history)")
    return int(t0), int(t1), t2


def past_landscape(landscape: xr.Dataset, t1: int) -> xr.Dataset:
    """The Landscape as known at ``t1``: ``landuse`` = the map of ``t1``, no map after it."""
    keep = [v for v in landscape.data_vars
            if not (v == "landuse" or (str(v).startswith("landuse_") and str(v)[8:].isdigit() and int(str(v)[8:]) >= t1))]
    ds = landscape[keep].copy()
    ds["landuse"] = landscape[f"landuse_{t1}"].copy()
    ds["landuse"].attrs.update(landscape["landuse"].attrs)
    return ds[["landuse", *keep]]


def _scenario_at(scenario: Scenario, t1: int, t2: int) -> Scenario:
    """The scenario with one period ``t1 -> t2`` and no demand (amounts come from the targets)."""
    data = scenario.config.model_dump()
    data["periods"] = [int(t1), int(t2)]
    data["demand"] = {**data["demand"], **{t: {} for t in scenario.classes.urban_types}, "by_city": {},
                      "people": None, "share": None, "extrapolate": None}
    # the map of t1 is the start map: history is what lies before it
    data["layers"]["history"] = {y: p for y, p in data["layers"]["history"].items() if int(y) < int(t1)}
    return Scenario(type(scenario.config).model_validate(data), path=scenario.path, base_dir=scenario.base_dir)


# =========================================================================== null models


def null_maps(
    past: xr.Dataset,
    scenario: Scenario,
    targets: pd.DataFrame,
    *,
    t0: int,
    zones: np.ndarray,
    developable: np.ndarray,
    type_codes: Sequence[int],
    seed: int = 0,
    types: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], Any]:
    """The maps of the three null models (:data:`NULL_MODELS`), all on the same amounts.

    Each places ``targets`` with :func:`allocate_by_rank` on the ``developable`` cells of
    ``past`` (``landuse`` = the map of ``t1``):

    * ``distance``: nearest (Euclidean) to urban land at ``t1`` first;
    * ``logistic``: highest probability of a logistic regression on the drivers of
      :func:`landuse.calibration.suitability_model.feature_stack` (without the extra density radii
      a trained model may use), fitted on the change ``t0 -> t1``
      (:func:`landuse.calibration.suitability_model.train_suitability`, the observed rate of
      conversion kept — a stronger null than a balanced sample on demo200 — seeded);
    * ``random``: uniform random order (``numpy`` generator seeded with ``[seed, 4]``).

    Returns the maps and the fitted logistic :class:`~landuse.calibration.suitability_model.TrainedSuitability`.
    """
    from landuse.calibration.suitability_model import train_suitability
    from landuse.core.landscape import cell_sizes
    from landuse.surfaces.suitability import distance_to

    before = np.ascontiguousarray(past["landuse"].values, dtype=np.uint8)
    inside = np.asarray(past["study_area"].values, dtype=bool)
    urban = scenario.classes.is_role(before, "urban") & inside
    dist = distance_to(urban, cell=cell_sizes(past))
    kw = {"developable": developable, "type_codes": type_codes, "types": tuple(scenario.classes.urban_types)}
    maps = {"distance": allocate_by_rank(before, -dist, zones, targets, **kw)}
    logistic = train_suitability(past, scenario, t0=t0, method="logistic", seed=seed, types=types, radii_m=(),
                                 cv="blocked", balanced=False)
    p_log = np.asarray(logistic.predict(past, scenario, before).values, dtype=np.float64)
    maps["logistic"] = allocate_by_rank(before, p_log, zones, targets, **kw)
    rnd = np.random.default_rng([seed, 4]).random(before.shape)
    maps["random"] = allocate_by_rank(before, rnd, zones, targets, **kw)
    return maps, logistic


# =========================================================================== prediction


@dataclass
class HindcastPrediction:
    """What :func:`predict_hindcast` made without seeing ``t2``: maps and how they were made."""

    maps: dict[str, np.ndarray]
    calibrated: dict[str, Any]
    calibration: dict[str, Any]
    suitability: dict[str, Any]
    shortfall: int
    seconds: float


def _patch_part(scores: dict[str, Any]) -> dict[str, float]:
    return {k: scores[k] for k in ("new_patches", "outlying_share", "patch_error")}


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in d.items()}


def hindcast_amounts(scenario: Scenario, quantities: str) -> str:
    """The chain of a hindcast's fit and prediction (see :data:`landuse.calibration.amounts.AMOUNTS`).

    ``quantities="zone"``: the amounts of every allocation zone, ``observed_zone``;
    ``quantities="cluster"``: ``calibration.amounts`` when it is ``allocator`` (the
    cluster totals planned by the LP allocator, then grown) or ``cluster`` (grown by the
    engine alone); ``observed_zone`` there would fit on per-zone amounts and predict from
    cluster totals, so ``cluster`` is used instead.
    """
    if quantities not in QUANTITIES:
        raise ConfigError(f"quantities must be one of {', '.join(QUANTITIES)}, got {quantities!r}")
    if quantities == "zone":
        return "observed_zone"
    a = scenario.config.calibration.amounts
    return a if a in ("allocator", "cluster") else "cluster"


def _types_with(targets: pd.DataFrame, minimum: int, types: Sequence[str]) -> list[str]:
    s = targets.groupby("type")["cells"].sum()
    return [t for t in types if int(s.get(t, 0)) >= minimum]


def predict_hindcast(
    past: xr.Dataset,
    scenario: Scenario,
    targets: pd.DataFrame,
    *,
    t0: int,
    t2: int,
    quantities: str = "cluster",
    budget: int | None = None,
    runs: int | None = None,
    seed: int = 0,
    parallel: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    prediction_runs: int | None = None,
) -> HindcastPrediction:
    """Fit on ``t0 -> t1`` and predict ``t2`` for the model and every null model.

    Parameters
    ----------
    past : xarray.Dataset
        The Landscape at ``t1`` (:func:`past_landscape`): ``landuse`` = the map of ``t1``,
        ``landuse_<t0>``, drivers and constraints; nothing after ``t1``.
    scenario : Scenario
        With one period ``t1 -> t2`` (its start year is ``t1``).
    targets : pandas.DataFrame
        ``period, zone, type, cells``: the amounts to place (zones of
        :func:`landuse.calibration.amounts.quantity_zones` with ``quantities``).
    t0, t2 : int
    quantities : {"cluster", "zone"}
    budget, runs : int, optional
        Calibration points and Monte Carlo runs (default the scenario's ``calibration``).
    seed : int
    parallel : {"threads", "dask"}, optional
    progress : callable, optional

    Returns
    -------
    HindcastPrediction
        ``maps``: ``model`` (representative run), ``model_expected``, ``distance``,
        ``logistic``, ``random``.
    """
    from landuse.calibration.suitability_model import train_suitability
    from landuse.surfaces.constraints import constraint_factor

    t_start = time.perf_counter()
    t1 = int(scenario.periods[0])
    classes = scenario.classes
    sc = scenario.config
    cal = sc.calibration
    runs = int(cal.runs if runs is None else runs)
    before = np.ascontiguousarray(past["landuse"].values, dtype=np.uint8)
    inside = np.asarray(past["study_area"].values, dtype=bool)
    valid1 = inside & (before != classes.nodata)

    # 1. fit on t0 -> t1 (the scenario's suitability; the growth parameters calibrated)
    fit_types = _types_with(observed_targets(np.asarray(past[f"landuse_{t0}"].values), before, inside.astype(np.int32),
                                             valid1, scenario, period=t1), 20, classes.urban_types)
    trained = None
    if sc.growth.suitability.method == "trained":
        trained = train_suitability(past, scenario, t0=t0, method=sc.growth.suitability.model, seed=seed,
                                    types=fit_types, cv="blocked")
    amounts = hindcast_amounts(scenario, quantities)
    cal_setup = historical_setup(past, scenario, history_year=t0, amounts=amounts, trained=trained)
    result = calibrate(cal_setup, budget=budget, runs=runs, seed=seed, parallel=parallel, progress=progress)

    # 2. predict t1 -> t2 with the quantities of t2, through the same chain as the fit
    zones = quantity_zones(past, scenario, quantities=quantities)
    pred = build_setup(past, scenario, before=before, observed=None, valid=valid1, zones=zones, targets=targets,
                       before_year=t1, after_year=t2, trained=trained, amounts=amounts)
    sim_seed = int(np.random.default_rng([seed, 3]).integers(2**62))
    pruns = runs if prediction_runs is None else int(prediction_runs)
    if pruns < 1:
        raise ConfigError(f"prediction_runs must be at least 1, got {pruns}")
    res = pred.simulate(result.best, runs=pruns, seed=sim_seed)
    params = pred.params_at(result.best)
    counts = np.asarray(res.counts.sel(period=t2).values, dtype=np.float64)
    type_codes = tuple(int(c) for c in params.type_codes)
    c = constraint_factor(pred.landscape, scenario, landuse=before)
    allowed = np.asarray(params.allowed)
    developable = np.stack([allowed[k][before] & (c > 0) & valid1 for k in range(allowed.shape[0])])
    maps = {
        "model": np.asarray(res.landuse[t2].values, dtype=np.uint8),
        "model_expected": expected_map(before, counts, params, np.asarray(pred.landscape["zones"].values),
                                       pred.targets),
    }

    # 3. null models on the same amounts
    nulls, logistic = null_maps(past, scenario, targets, t0=t0, zones=zones, developable=developable,
                                type_codes=type_codes, seed=seed, types=fit_types)
    maps.update(nulls)

    suit: dict[str, Any] = {"method": sc.growth.suitability.method,
                            "logistic_null_auc_blocked": {t: round(f.auc, 4) for t, f in logistic.fits.items()}}
    if trained is not None:
        suit.update({"model": trained.method, "density_radii_m": list(sc.growth.suitability.density_radii_m),
                     "auc_blocked": {t: round(f.auc, 4) for t, f in trained.fits.items()},
                     "auc_blocked_linear": {t: round(f.auc_linear, 4) for t, f in trained.fits.items()}})
    sf = res.shortfall
    v = result.validation
    return HindcastPrediction(
        maps=maps, calibrated=dict(result.best),
        calibration={"budget": result.info["budget"], "runs": runs, "points": result.info["points"],
                     "objective": result.objective, "fom_calibrated": v["calibrated"]["fom"],
                     "fom_default": v["default"]["fom"], "fom_null": v["null"]["fom"],
                     "observed_change_cells": result.info["observed_change_cells"],
                     "amounts": amounts, "unreachable": cal_setup.unreachable,
                     "plan_fit": cal_setup.plan, "plan_predict": pred.plan,
                     "at_edge": result.info["at_edge"], "finalists": result.info["finalists"],
                     "refine_points": result.info["refine_points"], "patch_weight": result.info["patch_weight"],
                     "patches": {"observed": _rounded(result.info["observed_patches"]),
                                 "calibrated": _rounded(_patch_part(v["calibrated"])),
                                 "default": _rounded(_patch_part(v["default"]))},
                     "seconds": round(result.info["seconds"], 2)},
        suitability=suit, shortfall=int(sf["shortfall"].sum()) if len(sf) else 0,
        seconds=time.perf_counter() - t_start,
    )


# =========================================================================== the hindcast


@dataclass
class HindcastResult:
    """Outcome of :func:`hindcast`."""

    years: tuple[int, int, int]
    quantities: str
    amounts: dict[str, int]
    scores: dict[str, dict[str, Any]]
    prediction: HindcastPrediction = field(repr=False)
    before: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)
    valid: np.ndarray = field(repr=False)
    urban_codes: tuple[int, ...] = ()
    seed: int = 0

    @property
    def best_null(self) -> str:
        """The null model of highest built-gain FoM."""
        return max(NULL_MODELS, key=lambda n: _nan0(self.scores[n]["built_gain"]["fom"]))

    def table(self) -> pd.DataFrame:
        """One row per map: built-gain FoM, hits, misses, false alarms, disagreement, KSim, Lee-Sallee."""
        rows = []
        for name, s in self.scores.items():
            b = s["built_gain"]
            rows.append({"map": name, "fom": b["fom"], "hits": b["hits"], "misses": b["misses"],
                         "false_alarms": b["false_alarms"], "quantity_dis": s["quantity_disagreement"],
                         "allocation_dis": s["allocation_disagreement"], "kappa_sim": s["kappa_simulation"],
                         "lee_sallee": s["lee_sallee"],
                         **{f"fom_w{w}": f for w, f in s["fom_by_window"].items() if w != 1}})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data, as written to ``hindcast.json``."""
        from landuse.evaluation.metrics import as_jsonable

        t0, t1, t2 = self.years
        best = self.best_null
        nb = self.scores[best]["built_gain"]["fom"]
        return as_jsonable({
            "t0": t0, "t1": t1, "t2": t2, "fit": f"{t0} -> {t1}", "predict": f"{t1} -> {t2}",
            "quantities": self.quantities, "amounts": self.amounts, "seed": self.seed,
            "scores": self.scores, "best_null": best,
            "model_over_best_null": {m: _nan0(self.scores[m]["built_gain"]["fom"]) / nb - 1.0 if nb else math.nan
                                     for m in ("model", "model_expected")},
            "calibrated": self.prediction.calibrated, "calibration": self.prediction.calibration,
            "suitability": self.prediction.suitability, "shortfall_cells": self.prediction.shortfall,
            "seconds": round(self.prediction.seconds, 2),
        })

    def markdown(self) -> str:
        """The result as a Markdown report, as written to ``hindcast.md``."""
        t0, t1, t2 = self.years
        d = self.to_dict()
        lines = [
            f"# Hindcast: fitted on {t0} -> {t1}, predicting {t1} -> {t2}",
            "",
            f"Quantities of {t2} given **{'cluster-wide' if self.quantities == 'cluster' else 'per allocation zone'}**"
            f" to every model: " + ", ".join(f"{t} {n} cells" for t, n in self.amounts.items()) + ".",
            "Built gain = cells that became urban (any type) between t1 and t2. Null models get the same amounts.",
            "",
            "| map | FoM built gain | hits | misses | false alarms | quantity dis. | allocation dis. | KSim | Lee-Sallee |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for _, r in self.table().iterrows():
            lines.append(f"| {r['map']} | {r['fom']:.4f} | {r['hits']} | {r['misses']} | {r['false_alarms']} | "
                         f"{r['quantity_dis']:.4f} | {r['allocation_dis']:.4f} | {r['kappa_sim']:.4f} | "
                         f"{r['lee_sallee']:.4f} |")
        windows = list(next(iter(self.scores.values()))["fom_by_window"])
        lines += ["", "Figure of merit of built gain at coarser windows (cells per window edge):", "",
                  "| map | " + " | ".join(f"{w}x{w}" for w in windows) + " |",
                  "|---|" + "---|" * len(windows)]
        for name, s in self.scores.items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in s["fom_by_window"].values()) + " |")
        ratio = d["model_over_best_null"]
        lines += ["", f"Best null model: **{d['best_null']}**. Model over it: representative run "
                  f"{100 * ratio['model']:+.1f} %, expected map {100 * ratio['model_expected']:+.1f} %.", "",
                  "Calibrated on the fit interval: " + ", ".join(f"`{k}` = {v}" for k, v in d["calibrated"].items()),
                  f"(budget {d['calibration']['budget']}, {d['calibration']['runs']} runs per point).", ""]
        return "\n".join(lines)


def _nan0(x: float) -> float:
    return 0.0 if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def hindcast(
    landscape: xr.Dataset,
    scenario: Scenario,
    *,
    t0: int | None = None,
    t1: int | None = None,
    quantities: str = "cluster",
    budget: int | None = None,
    runs: int | None = None,
    seed: int | None = None,
    parallel: str | None = None,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    progress: Callable[[dict[str, Any]], None] | None = None,
    prediction_runs: int | None = None,
) -> HindcastResult:
    """Fit on ``t0 -> t1``, predict ``t1 -> t2`` with the amounts of ``t2``, score against ``t2``.

    ``runs`` are the calibration's Monte Carlo runs per point; ``prediction_runs`` (default
    the same) those of the prediction, whose ensemble the expected map ranks.

    ``t2`` is the scenario's start year (``layers.landuse``); ``t0`` and ``t1`` are
    ``layers.history`` years (defaults: :func:`hindcast_years`). See the module docstring.

    Returns
    -------
    HindcastResult
        Scores of ``model``, ``model_expected`` and each of :data:`NULL_MODELS`.
    """
    if quantities not in QUANTITIES:
        raise ConfigError(f"quantities must be one of {', '.join(QUANTITIES)}, got {quantities!r}")
    if prediction_runs is not None and prediction_runs < 1:
        raise ConfigError(f"prediction_runs must be at least 1, got {prediction_runs}")
    t0, t1, t2 = hindcast_years(landscape, scenario, t0=t0, t1=t1)
    seed = int(scenario.config.calibration.seed if seed is None else seed)
    sc = _scenario_at(scenario, t1, t2)
    past = past_landscape(landscape, t1)
    classes = scenario.classes
    before = np.ascontiguousarray(past["landuse"].values, dtype=np.uint8)
    observed = np.ascontiguousarray(landscape["landuse"].values, dtype=np.uint8)
    valid = np.asarray(landscape["study_area"].values, dtype=bool) & (before != classes.nodata) & (
        observed != classes.nodata)
    zones = quantity_zones(past, sc, quantities=quantities)
    targets = observed_targets(before, observed, zones, valid, sc, period=t2)  # the only use of t2 before scoring
    if targets.empty:
        raise LanduseError(f"no urban land was gained between {t1} and {t2}: there is nothing to predict")
    pred = predict_hindcast(past, sc, targets, t0=t0, t2=t2, quantities=quantities, budget=budget, runs=runs,
                            prediction_runs=prediction_runs,
                            seed=seed, parallel=parallel, progress=progress)
    scores = {name: score_map(before, observed, m, valid, scenario, windows=windows) for name, m in pred.maps.items()}
    amounts = {t: int(n) for t, n in targets.groupby("type")["cells"].sum().items()}
    return HindcastResult(years=(t0, t1, t2), quantities=quantities, amounts=amounts, scores=scores, prediction=pred,
                          before=before, observed=observed, valid=valid,
                          urban_codes=tuple(int(c) for c in classes.urban_codes), seed=seed)


# =========================================================================== output


def write_hindcast(result: HindcastResult, out_dir: str | Path, *, landscape: xr.Dataset,
                   scenario: Scenario) -> dict[str, Path]:
    """Write ``hindcast.json``, ``hindcast.md``, ``hindcast.png`` and the maps.

    The maps: the expected map ``expected_<t2>.tif``, the representative run ``simulated_<t2>.tif`` and one
    ``change_<map>.tif`` (hits / misses / false alarms, :data:`CHANGE_CODES`) per map.
    """
    from landuse.core.landscape import like
    from landuse.io.rasters import write_geotiff, write_text

    out = Path(out_dir)
    t2 = result.years[2]
    files = {
        "json": write_text(out / "hindcast.json", json.dumps(result.to_dict(), indent=2) + "\n"),
        "md": write_text(out / "hindcast.md", result.markdown()),
    }
    maps = result.prediction.maps
    files["expected"] = write_geotiff(like(landscape, maps["model_expected"], "landuse"), out / f"expected_{t2}.tif",
                                      classes=scenario.classes, tags={"seed": result.seed, "map": "expected"})
    files["simulated"] = write_geotiff(like(landscape, maps["model"], "landuse"), out / f"simulated_{t2}.tif",
                                       classes=scenario.classes, tags={"seed": result.seed, "map": "representative"})
    legend = ", ".join(f"{k} = {v}" for k, v in CHANGE_CODES.items()) + ", 255 = outside"
    for name, m in maps.items():
        cm = change_map(result.before, result.observed, m, result.valid, result.urban_codes)
        files[f"change_{name}"] = write_geotiff(like(landscape, cm, f"change_{name}"), out / f"change_{name}.tif",
                                                nodata=255, tags={"codes": legend, "map": name})
    from landuse.report.figures import hindcast_figure

    changes = {name: change_map(result.before, result.observed, m, result.valid, result.urban_codes)
               for name, m in result.prediction.maps.items()}
    hindcast_figure(result, changes, out / "hindcast.png")
    files["png"] = out / "hindcast.png"
    return files


def hindcast_scenario(
    config: str | Path | Scenario,
    *,
    out: str | Path | None = None,
    t0: int | None = None,
    t1: int | None = None,
    quantities: str = "cluster",
    budget: int | None = None,
    runs: int | None = None,
    seed: int | None = None,
    parallel: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    write: bool = True,
    force: bool = False,
) -> tuple[HindcastResult, dict[str, Path]]:
    """Read a scenario, run :func:`hindcast` and write its folder (default ``<outputs.folder>/hindcast``)."""
    from landuse.core.config import load_scenario
    from landuse.io.folders import OutputFolder, check_target
    from landuse.io.rasters import read_landscape

    scenario = config if isinstance(config, Scenario) else load_scenario(config)
    target = Path(out) if out is not None else scenario.output_dir() / "hindcast"
    inputs = [*scenario.layer_paths().values(), *([scenario.path] if scenario.path else [])]
    if write:
        check_target(target, command="hindcast", owner=scenario.name, force=force, protected=inputs)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    result = hindcast(ds, scenario, t0=t0, t1=t1, quantities=quantities, budget=budget, runs=runs, seed=seed,
                      parallel=parallel, progress=progress)
    files: dict[str, Path] = {}
    if write:
        with OutputFolder(target, command="hindcast", owner=scenario.name, force=force, protected=inputs) as stage:
            staged = write_hindcast(result, stage.path, landscape=ds, scenario=scenario)
            d = result.to_dict()
            stage.commit({"scenario": scenario.name, "years": list(result.years), "quantities": result.quantities,
                          "seed": result.seed, "calibrated": d["calibrated"]})
        files = {k: target / p.name for k, p in staged.items()}
    return result, files


# =========================================================================== history vs plan


SOURCE_ROLES_OF_GAIN: tuple[str, ...] = ("farmland", "open_space", "other")
"""Roles whose land may become urban (the allocator's source roles)."""


def unreachable_sources(landscape: xr.Dataset, scenario: Scenario, plan: pd.DataFrame, *,
                        min_share: float = 0.05) -> list[str]:
    """Warnings for source roles that supplied urban gain in the history but the plan makes unreachable.

    For each ``layers.history`` year before the start year, the observed urban gain up to
    the start map is split by the role of the class it came from (farmland, open space,
    other). A role that supplied at least ``min_share`` of it is *unreachable* when
    ``growth.conversion`` lets no urban type come from it, or when the allocation
    (``plan``: the ``targets`` of :func:`landuse.allocation.planner.allocate` with
    ``from_<role>_ha`` columns) takes no hectare from it in any period — the growth
    engine converts only from the sources the plan names, so none of that land can then
    become urban. Returns one message per case (empty when none).
    """
    from landuse.core.strips import row_strips

    classes = scenario.classes
    start = int(scenario.periods[0])
    now = np.asarray(landscape["landuse"].values)
    inside = np.asarray(landscape["study_area"].values, dtype=bool)
    urban = np.asarray(classes.urban_codes, dtype=np.uint8)
    names = {c.code: c.name for c in classes}
    allowed = {code for codes in scenario.conversion_codes().values() for code in codes}
    planned = float(plan["hectares"].sum()) if "hectares" in plan else 0.0
    weights = scenario.config.allocation.weights
    out: list[str] = []
    years = sorted(int(v[8:]) for v in landscape.data_vars if str(v).startswith("landuse_") and str(v)[8:].isdigit())
    for y in [y for y in years if y < start]:
        before = np.asarray(landscape[f"landuse_{y}"].values)
        counts = np.zeros(256, dtype=np.int64)  # the classes the gain came from, counted strip by strip
        for a, b in row_strips(*now.shape):
            was = before[a:b]
            gain = inside[a:b] & np.isin(now[a:b], urban) & ~np.isin(was, urban) & (was != classes.nodata)
            counts += np.bincount(was[gain], minlength=256)
        total = int(counts.sum())
        if total == 0:
            continue
        for role in SOURCE_ROLES_OF_GAIN:
            codes = [c for c in classes.codes_with_role(role) if counts[c] > 0]
            n = int(sum(counts[c] for c in codes))
            if n < min_share * total:
                continue
            detail = ", ".join(f"{names[c]} {counts[c] / total:.0%}" for c in codes)
            label = role.replace("_", " ")
            head = f"{n / total:.0%} of the urban gain {y} -> {start} came from {label} ({detail})"
            if not any(c in allowed for c in codes):
                out.append(f"{head}, but growth.conversion lets no urban type come from it; add '{role}' (or the "
                           "class names) to growth.conversion")
                continue
            col = f"from_{role}_ha"
            if planned > 0 and col in plan and float(plan[col].sum()) <= 0.0:
                hint = (f"lower allocation.weights.{role} (now {getattr(weights, role):g}) or give "
                        f"these classes another role" if hasattr(weights, role) else "check the allocation weights")
                out.append(f"{head}, but the plan takes no {label} land in any period, so none of it can become "
                           f"urban; {hint}")
    return out
