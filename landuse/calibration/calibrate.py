"""Calibration of the growth parameters against a historical pair of land-use maps.

The historical set-up (:func:`historical_setup`): the growth engine starts from the land
use at an earlier date (a ``layers.history`` year) and grows, in one period, the amount of
change that was **observed** up to the scenario's start year, given as ``calibration.amounts``
says: ``allocator`` (default) — the cluster total per urban type planned by the scenario's
LP allocator, the engine growing the plan's units as in a run (:func:`allocator_targets`);
``observed_zone`` — the observed gain of each allocation zone; ``cluster`` — one total per
type placed by the engine alone. Observed gain the model cannot make (:func:`reachable_cells`)
is left out of the amounts and the scores, and reported. The simulated map is compared
with the observed one cell by cell.

Objectives (all maximised; see ``docs/calibration.md``):

* ``fom`` — figure of merit ``H / (H + M + W + F)`` (Pontius et al. 2008);
* ``kappa_simulation`` — Kappa-simulation (van Vliet et al. 2011), kappa with the
  agreement expected from the observed and simulated *transitions* out of each class;
* ``lee_sallee`` — ``|O ∩ S| / |O ∪ S|`` of urban land at the later date.

Each is computed from the **ensemble-mean** joint histogram of (before, observed,
simulated) classes over the Monte Carlo runs of a point: a cell converted to type *k* in
*c* of *R* runs counts ``c / R`` towards that class. Every point runs with the same
seeds (common random numbers), so differences between points are differences of
parameters, not of dice.

Search (:func:`calibrate`), in the unit cube of normalised parameters: the scenario's
own values (the uncalibrated default), a scrambled Sobol design, then Bayesian steps —
a Gaussian process (Matérn 5/2 with automatic relevance, plus a white-noise term) fitted
to every point so far proposes, by expected improvement, two points at a time
("constant liar" for the second). The best points (by score and by the GP's smoothed
mean) are re-run as finalists with fresh seeds and three times the runs; the best of them
is refined by coordinate steps on the same seeds; a value at the edge of its range is
reported. The chosen point and the default are then re-run with fresh seeds again to
report an honest, out-of-sample figure. A null model that converts, per zone and type,
the developable cells closest to existing urban land is reported alongside, and the new
patches of the observed and simulated change (:func:`new_patch_stats`) — a second
objective with ``calibration.patch_weight``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario
from landuse.core.errors import ConfigError, InfeasibleAllocationError, SolverError
from landuse.evaluation.agreement import ChangeHistogram, change_scores

__all__ = [
    "AMOUNTS",
    "OBJECTIVES",
    "PARAMETERS",
    "QUANTITIES",
    "CalibrationResult",
    "HistoricalSetup",
    "Parameter",
    "allocator_targets",
    "apply_calibration",
    "build_setup",
    "calibrate",
    "calibrate_scenario",
    "ensemble_scores",
    "historical_setup",
    "new_patch_stats",
    "null_model",
    "observed_targets",
    "patch_error",
    "quantity_zones",
    "reachable_cells",
    "scores_of_map",
    "write_calibration",
]

OBJECTIVES: tuple[str, ...] = ("fom", "kappa_simulation", "lee_sallee")
_BATCH = 2  # points proposed per Bayesian step (one per worker of the Dask path)
_SIG = 4  # significant digits of evaluated continuous values (so the YAML holds exactly them)
_MIN_TRAIN_CELLS = 20  # a trained suitability needs this many observed gains of a type
_SEARCH_STAGES = ("default", "sobol", "gp")  # stages evaluated on the search seeds (the GP's data)
_REFINE_PER_PARAMETER = 4  # at most this many refinement points per fitted parameter
_EDGE = 0.02  # a calibrated value this close to an end of its range (unit scale) is reported as at the edge


# =========================================================================== parameters


@dataclass(frozen=True)
class Parameter:
    """One calibrated parameter and how it maps to the unit interval.

    Attributes
    ----------
    name : str
    low, high : float
        Default search range.
    limit : tuple of float
        Hard limits a user range must stay within.
    kind : {"float", "log", "int", "bool"}
        ``log``: log-uniform; ``int``: log-uniform then rounded; ``bool``: ``u >= 0.5``.
    meaning : str
        What it sets in a scenario.
    """

    name: str
    low: float
    high: float
    limit: tuple[float, float]
    kind: Literal["float", "log", "int", "bool"]
    meaning: str

    def decode(self, u: float, low: float, high: float) -> float | int | bool:
        """Value at ``u`` in [0, 1] within ``[low, high]`` (rounded to what is evaluated)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "bool":
            return bool(u >= 0.5)
        if self.kind in ("log", "int"):
            v = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            v = low + u * (high - low)
        if self.kind == "int":
            return int(min(max(round(v), math.ceil(low)), math.floor(high)))
        v = float(f"{v:.{_SIG}g}")
        return min(max(v, low), high)

    def snap_discrete(self, u: np.ndarray, low: float, high: float) -> np.ndarray:
        """Positions ``u`` moved onto the values a bool or int parameter can take (vectorised)."""
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        if self.kind == "bool":
            return np.where(u >= 0.5, 0.75, 0.25)
        if self.kind == "int":
            a, b = math.log(low), math.log(high)
            v = np.clip(np.round(np.exp(a + u * (b - a))), math.ceil(low), math.floor(high))
            return np.clip((np.log(v) - a) / (b - a), 0.0, 1.0)
        return u

    def encode(self, v: float | int | bool, low: float, high: float) -> float:
        """Position of value ``v`` in [0, 1] (clipped)."""
        if self.kind == "bool":
            return 0.75 if v else 0.25
        if self.kind in ("log", "int"):
            u = (math.log(max(float(v), 1e-300)) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            u = (float(v) - low) / (high - low) if high > low else 0.5
        return min(max(u, 0.0), 1.0)


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("neighbourhood_strength", 0.0, 10.0, (0.0, 50.0), "float",
                  "growth.neighbourhood_strength: exponent on the neighbourhood share (higher = more compact)"),
        Parameter("spontaneous_share", 0.0, 0.5, (0.0, 1.0), "float",
                  "growth.spontaneous_share: share of each target placed as new patches away from urban land"),
        Parameter("cross_weight", 0.0, 4.0, (0.0, 100.0), "float",
                  "factor on the off-diagonal growth.neighbourhood_weights (how much a type is drawn to "
                  "the other types' land; the diagonal is kept)"),
        Parameter("greenbelt_leakage", 0.0, 1.0, (0.0, 1.0), "float",
                  "1 - policy.greenbelt.strength: potential kept inside a soft greenbelt"),
        Parameter("iterations", 2.0, 40.0, (1.0, 1000.0), "int",
                  "growth.iterations: edge-growth iterations per period"),
        Parameter("adaptive_inertia", 0.0, 1.0, (0.0, 1.0), "bool",
                  "growth.adaptive_inertia: raise a (zone, type) that falls behind its schedule"),
        Parameter("distance_scale_m", 50.0, 30_000.0, (1.0, 1e7), "log",
                  "growth.suitability.distance_scale_m: distance at which a distance score halves"),
    )
}


# =========================================================================== suitability


class _LinearSuitability:
    """Weighted-linear suitability at any distance scale, from distances computed once.

    Bit-identical to :func:`landuse.surfaces.suitability.compute_suitability` at any scale (tested): the distance
    drivers' masks (:func:`~landuse.surfaces.suitability.distance_driver_mask`) and distances are computed once,
    their scores (:func:`~landuse.surfaces.suitability.distance_score`) at each scale, the other drivers' scores
    (:func:`~landuse.surfaces.suitability.driver_score`) are scale-free, and the drivers are combined by
    :func:`~landuse.surfaces.suitability.weighted_suitability`.
    """

    def __init__(self, ds: xr.Dataset, scenario: Scenario, landuse: np.ndarray) -> None:
        from landuse.core.landscape import cell_sizes
        from landuse.surfaces.suitability import (
            compute_suitability,
            distance_driver_mask,
            distance_to,
            driver_score,
            type_weights,
        )

        base = compute_suitability(ds, scenario, landuse=landuse)  # raises the config errors, lists dropped drivers
        self.base_scale = float(scenario.config.growth.suitability.distance_scale_m)
        self.base = np.asarray(base.values, dtype=np.float32)
        dropped = set(base.attrs.get("dropped_drivers", ()))
        self.weights = {t: {n: w for n, w in ws.items() if w > 0 and n not in dropped}
                        for t, ws in type_weights(scenario).items()}
        self.inside = np.ascontiguousarray(ds["study_area"].values, dtype=bool)
        cell = cell_sizes(ds)
        self.types = tuple(scenario.classes.urban_types)
        self.distances: dict[str, np.ndarray] = {}
        self.static: dict[str, np.ndarray] = {}
        for name in dict.fromkeys(n for ws in self.weights.values() for n in ws):
            mask = distance_driver_mask(ds, scenario, name, landuse=landuse)
            if mask is not None:
                self.distances[name] = distance_to(mask, cell=cell)
            else:
                score = driver_score(ds, scenario, name, landuse=landuse)
                if score is not None:
                    self.static[name] = score

    @property
    def uses_distance(self) -> bool:
        return bool(self.distances)

    def at(self, scale_m: float) -> np.ndarray:
        """Suitability (type, rows, cols) float32 with distance scores halving at ``scale_m``."""
        from landuse.surfaces.suitability import distance_score, weighted_suitability

        if float(scale_m) == self.base_scale:
            return self.base
        scores = {n: distance_score(d, scale_m=float(scale_m)) for n, d in self.distances.items()}
        scores.update(self.static)
        out = np.zeros(self.base.shape, dtype=np.float32)
        for k, t in enumerate(self.types):
            ws = self.weights[t]
            weighted_suitability([scores[n] for n in ws], list(ws.values()), self.inside, out=out[k])
        return out


# =========================================================================== set-up


@dataclass(eq=False)
class HistoricalSetup:
    """Everything a calibration needs, computed once (see :func:`historical_setup`).

    Attributes
    ----------
    scenario : Scenario
    before_year, after_year : int
        The earlier (history) date and the later one (the scenario's start year).
    landscape : xarray.Dataset
        The Landscape at ``before_year`` (``landuse`` = the earlier map) with ``zones``.
    before, observed : ndarray of uint8
        Land use at the two dates.
    valid : ndarray of bool
        Study-area cells that are not nodata in either map (where scores are counted).
    targets : pandas.DataFrame
        The amounts the engine grows: ``period`` (= ``after_year``), ``zone``, ``type``,
        ``cells`` — zones of ``landscape["zones"]`` (allocation zones, the whole study area,
        or the allocator's units, see ``amounts``).
    amounts : {"allocator", "observed_zone", "cluster"}
        How the observed change is given (``calibration.amounts``).
    unreachable : dict
        Observed gain the model cannot make (its source class may not become that type,
        or the constraint factor is 0 there): ``cells``, ``share`` of the observed gain and
        ``by_type``. Left out of the amounts and of the scores.
    plan : dict
        With ``amounts: allocator``: the allocator's units and objective; else empty.
    plan_scenario : Scenario or None
        With ``amounts: allocator``: the scenario of the period the allocator solved (the
        observed totals as its demand).
    base_params : GrowthParams
        Parameters of the scenario as configured, on the earlier map.
    applicable : dict of str to tuple
        Parameter -> its default range, for every parameter that matters here.
    skipped : dict of str to str
        Parameter -> why it is not calibrated here.
    """

    scenario: Scenario
    before_year: int
    after_year: int
    landscape: xr.Dataset
    before: np.ndarray
    observed: np.ndarray
    valid: np.ndarray
    targets: pd.DataFrame
    base_params: Any
    applicable: dict[str, tuple[float, float]]
    skipped: dict[str, str]
    amounts: str = "observed_zone"
    unreachable: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    plan_scenario: Scenario | None = None
    _suit_linear: _LinearSuitability | None = None
    _suit_fixed: np.ndarray | None = None
    _c_free: np.ndarray | None = None
    _greenbelt: np.ndarray | None = None
    _hist: ChangeHistogram | None = None
    _cache: dict = field(default_factory=dict)

    # ---- defaults
    def default_values(self) -> dict[str, float | int | bool]:
        """The scenario's own value of every parameter (the uncalibrated default)."""
        g = self.scenario.config.growth
        pol = self.scenario.config.policy
        return {
            "neighbourhood_strength": float(g.neighbourhood_strength),
            "spontaneous_share": float(g.spontaneous_share),
            "cross_weight": 1.0,
            "greenbelt_leakage": 1.0 - float(pol.greenbelt.strength),
            "iterations": int(g.iterations),
            "adaptive_inertia": bool(g.adaptive_inertia),
            "distance_scale_m": float(g.suitability.distance_scale_m),
        }

    @property
    def observed_change_cells(self) -> int:
        return int(self.targets["cells"].sum())

    # ---- parameters -> GrowthParams
    def _potential(self, scale: float, leakage: float) -> np.ndarray:
        from landuse.growth import quantise_potential
        from landuse.surfaces.constraints import with_soft_greenbelt

        key = (float(scale), float(leakage))
        hit = self._cache.get("potential")
        if hit is not None and hit[0] == key:
            return hit[1]
        suit = self._suit_linear.at(scale) if self._suit_linear is not None else self._suit_fixed
        c = with_soft_greenbelt(self._c_free, self._greenbelt, leakage)
        pot = np.empty(suit.shape, dtype=np.uint8)
        for k in range(suit.shape[0]):
            pot[k] = quantise_potential(suit[k] * c)
        self._cache["potential"] = (key, pot)
        return pot

    def params_at(self, values: Mapping[str, float | int | bool]):
        """GrowthParams with ``values`` (any subset of :data:`PARAMETERS`; the rest as configured)."""
        v = {**self.default_values(), **values}
        base = self.base_params
        w0 = np.asarray(base.neighbourhood_weights, dtype=np.float64)
        diag = np.diag(np.diag(w0))
        weights = diag + float(v["cross_weight"]) * (w0 - diag)
        return base.replace(
            potential=self._potential(float(v["distance_scale_m"]), float(v["greenbelt_leakage"])),
            neighbourhood_weights=weights,
            neighbourhood_strength=float(v["neighbourhood_strength"]),
            spontaneous_share=float(v["spontaneous_share"]),
            iterations=int(v["iterations"]),
            adaptive_inertia=bool(v["adaptive_inertia"]),
        )

    def simulate(self, values: Mapping[str, float | int | bool], *, runs: int, seed: int, keep_runs: bool = False):
        """Simulate the historical period with ``values``; returns the GrowthResult."""
        from landuse.growth import simulate

        return simulate(self.landscape, self.targets, params=self.params_at(values), runs=runs, seed=seed,
                        keep_runs=keep_runs)

    @property
    def observed_patches(self) -> dict[str, float]:
        """:func:`new_patch_stats` of the observed change (cached)."""
        if "observed_patches" not in self._cache:
            self._cache["observed_patches"] = new_patch_stats(self.before, self.observed, self.landscape,
                                                              self.scenario, valid=self.valid)
        return self._cache["observed_patches"]

    def score_result(self, result) -> dict[str, float]:
        """Ensemble-mean scores (:func:`ensemble_scores`) of a GrowthResult of this set-up.

        With every run's maps (``keep_runs``) also the new patches' mean statistics over
        the runs (``new_patches``, ``outlying_share``) and :func:`patch_error` against
        the observed ones; otherwise these are nan.
        """
        counts = np.asarray(result.counts.sel(period=self.after_year).values)
        h = self._hist.of_counts(counts, result.runs, self.base_params.type_codes)
        out = change_scores(h, self._hist.codes, self.scenario.classes.urban_codes)
        sf = result.shortfall
        out["shortfall"] = float(sf["shortfall"].sum()) if len(sf) else 0.0
        out.update({"new_patches": math.nan, "outlying_share": math.nan, "patch_error": math.nan})
        if result.run_landuse:
            stats = [new_patch_stats(self.before, m[self.after_year], self.landscape, self.scenario, valid=self.valid)
                     for m in result.run_landuse]
            sim = {k: float(np.mean([st[k] for st in stats])) for k in ("new_patches", "outlying_share")}
            out.update(sim)
            out["patch_error"] = patch_error(sim, self.observed_patches)
        return out

    def score_map(self, simulated: np.ndarray) -> dict[str, float]:
        """Scores of one simulated map of the later date."""
        return change_scores(self._hist.of_map(simulated), self._hist.codes, self.scenario.classes.urban_codes)

    def evaluate(self, values: Mapping[str, float | int | bool], *, runs: int, seed: int,
                 patches: bool = False) -> dict[str, float]:
        """Simulate and score one parameter point (the unit of work of a calibration).

        ``patches``: also the new-patch statistics of every run (see :meth:`score_result`).
        """
        return self.score_result(self.simulate(values, runs=runs, seed=seed, keep_runs=patches))


def _present_types(before: np.ndarray, targets: pd.DataFrame, classes: Any) -> set[str]:
    """Urban types with land at the start or an amount to grow."""
    have = {t for t in classes.urban_types if np.isin(before, np.asarray(classes.codes_of_type(t), np.uint8)).any()}
    return have | {str(t) for t in targets.loc[targets["cells"] > 0, "type"].unique()}


def new_patch_stats(before: np.ndarray, after: np.ndarray, landscape: xr.Dataset, scenario: Scenario, *,
                    valid: np.ndarray) -> dict[str, float]:
    """The new urban patches of a change: how many, how large, how many far from urban land.

    New urban land is urban in ``after`` and not in ``before`` (8-connected patches);
    ``outlying`` patches have no urban land of ``before`` among their 8 neighbours
    (Landscape Expansion Index 0 with a 1.5-cell buffer, :func:`landuse.evaluation.metrics.expansion_types`). Returns
    ``new_patches`` (count), ``mean_patch_cells``, ``outlying_patches`` and
    ``outlying_share`` (share of the new cells lying in outlying patches).
    """
    from landuse.core.landscape import cell_sizes
    from landuse.evaluation.metrics import expansion_types

    cx, cy = cell_sizes(landscape)
    e = expansion_types(before, after, scenario.classes, cell_size=float(cx),
                        buffer_m=1.5 * float(max(cx, cy)), study_area=valid)
    cells = e.patch_area_ha / (float(cx) * float(cy) / 10_000.0)
    n = int(cells.size)
    total = float(cells.sum())
    out_cells = float(cells[e.patch_type == 3].sum())
    return {"new_patches": float(n), "mean_patch_cells": total / n if n else 0.0,
            "outlying_patches": float((e.patch_type == 3).sum()), "outlying_share": out_cells / total if total else 0.0}


def patch_error(simulated: Mapping[str, float], observed: Mapping[str, float]) -> float:
    """Distance of simulated new patches from the observed ones (0 = the same; the second objective).

    ``|ln((n_sim + 1) / (n_obs + 1))| + |outlying_sim - outlying_obs|``: the log ratio of
    the patch counts (with the amount of change fixed, the same as of the mean patch
    sizes) plus the difference of the shares of new land in outlying patches.

    >>> patch_error({"new_patches": 9, "outlying_share": 0.2}, {"new_patches": 9, "outlying_share": 0.1})
    0.1
    """
    return float(round(abs(math.log((simulated["new_patches"] + 1.0) / (observed["new_patches"] + 1.0)))
                       + abs(simulated["outlying_share"] - observed["outlying_share"]), 12))


QUANTITIES: tuple[str, ...] = ("zone", "cluster")
"""How observed amounts are given to a historical simulation: per allocation zone, or one cluster-wide total."""

AMOUNTS: tuple[str, ...] = ("allocator", "observed_zone", "cluster")
"""``calibration.amounts``: the cluster totals through the scenario's LP allocator (as in a run), the
observed gain of each allocation zone, or one cluster-wide total per type grown directly by the engine."""


def _amounts_of(amounts: str | None, quantities: str | None, scenario: Scenario) -> str:
    if amounts is None:
        if quantities is not None:
            if quantities not in QUANTITIES:
                raise ConfigError(f"quantities must be one of {', '.join(QUANTITIES)}, got {quantities!r}")
            return "observed_zone" if quantities == "zone" else "cluster"
        return scenario.config.calibration.amounts
    if amounts not in AMOUNTS:
        raise ConfigError(f"calibration.amounts must be one of {', '.join(AMOUNTS)}, got {amounts!r}")
    return amounts


def reachable_cells(landscape: xr.Dataset, scenario: Scenario, before: np.ndarray, *,
                    soft_greenbelt: bool = True) -> np.ndarray:
    """``(types, rows, cols)`` bool: may the model turn the cell into that urban type at all?

    True where ``growth.conversion`` lets the cell's class (in ``before``) become the type
    and the constraint factor (:func:`landuse.surfaces.constraints.constraint_factor`: red line,
    permanent farmland, water, hard greenbelt or boundary) is positive. Observed change
    elsewhere is a transition no parameter can produce. ``soft_greenbelt=False``: a soft
    greenbelt rules out no cell, whatever its strength (a calibration varies its leakage).
    """
    from landuse.surfaces.constraints import constraint_factor, source_allowed_lut

    lut = source_allowed_lut(scenario)
    c = constraint_factor(landscape, scenario, landuse=before, soft_greenbelt=soft_greenbelt) > 0
    return np.stack([lut[k][before] & c for k in range(lut.shape[0])])


def _unreachable_gain(before: np.ndarray, after: np.ndarray, valid: np.ndarray, reach: np.ndarray,
                      scenario: Scenario) -> tuple[np.ndarray, dict[str, Any]]:
    """Observed gain cells no parameter can produce, and a summary (cells, share, by type)."""
    classes = scenario.classes
    out = np.zeros(before.shape, dtype=bool)
    total = 0
    by_type: dict[str, int] = {}
    for k, t in enumerate(classes.urban_types):
        codes = np.asarray(classes.codes_of_type(t), dtype=np.uint8)
        gain = valid & np.isin(after, codes) & ~np.isin(before, codes)
        bad = gain & ~reach[k]
        total += int(gain.sum())
        by_type[t] = int(bad.sum())
        out |= bad
    n = int(out.sum())
    return out, {"cells": n, "share": n / total if total else 0.0, "by_type": by_type, "observed_gain": total}


def allocator_targets(landscape: xr.Dataset, scenario: Scenario, before: np.ndarray, suitability: np.ndarray,
                      totals: pd.DataFrame, *, start: int,
                      period: int) -> tuple[np.ndarray, pd.DataFrame, dict, Scenario]:
    """The cluster totals of ``totals`` planned by the scenario's LP allocator, as a run plans a period.

    ``totals`` (``type, cells``, any zones: summed per type) becomes the cluster-wide demand
    of one period ``start -> period`` (hectares = cells x cell area; ``demand.by_city``,
    ``people``, ``share`` and ``extrapolate`` dropped); the zone table of ``before`` (with ``suitability``) is
    solved by :func:`landuse.allocation.lp.allocate` with the scenario's weights and policies,
    and the plan is turned into growth units (:func:`landuse.allocation.lp.unit_raster`) exactly
    as ``landuse run`` does. Returns the unit raster (int32), the unit targets
    (``period, zone, type, cells``), a summary of the plan and the scenario of the period
    the allocator solved.
    """
    from landuse.allocation.lp import allocate, cell_pieces, unit_raster, zone_table
    from landuse.allocation.zones import zone_grid
    from landuse.core.landscape import cell_area_ha

    types = tuple(scenario.classes.urban_types)
    cells = totals.groupby("type")["cells"].sum()
    ha = cell_area_ha(landscape)
    data = scenario.config.model_dump()
    data["periods"] = [int(start), int(period)]
    data["demand"] = {**data["demand"], "by_city": {}, "people": None, "share": None, "extrapolate": None,
                      **{t: ({int(period): float(cells.get(t, 0)) * ha} if int(cells.get(t, 0)) > 0 else {})
                         for t in types}}
    data["layers"]["history"] = {y: q for y, q in data["layers"].get("history", {}).items() if int(y) < int(start)}
    sc = Scenario(type(scenario.config).model_validate(data), path=scenario.path, base_dir=scenario.base_dir)
    cfg = sc.config
    zg = zone_grid(landscape, block_size_m=cfg.allocation.block_size_m)
    suit = np.asarray(suitability, dtype=np.float32)
    pieces = cell_pieces(landscape, sc, before, zg.zones, suit)
    zt = zone_table(landscape, sc, landuse=before, zones=zg, suitability=suit, pieces=pieces)
    try:
        alloc = allocate(zt, sc, int(period))
    except (InfeasibleAllocationError, SolverError) as exc:
        raise type(exc)(f"calibration.amounts is 'allocator', but the scenario's LP allocator could not plan the "
                        f"observed change {start} -> {period} ({exc}); loosen the policies named, or set "
                        "calibration.amounts to 'cluster' or 'observed_zone'") from None
    units = unit_raster(landscape, sc, alloc, landuse=before, zones=zg, suitability=suit, pieces=pieces)
    targets = alloc.unit_targets.rename(columns={"unit": "zone"})[["period", "zone", "type", "cells"]].copy()
    targets["period"] = int(period)
    targets = targets[targets["cells"] > 0].reset_index(drop=True)
    plan = {"units": int(targets["zone"].nunique()), "zones": int(zt.shape[0]),
            "cells": {t: int(n) for t, n in targets.groupby("type")["cells"].sum().items()},
            "objective": float(alloc.objective), "warnings": list(getattr(alloc, "warnings", []) or [])}
    return np.asarray(units, dtype=np.int32), targets, plan, sc


def quantity_zones(landscape: xr.Dataset, scenario: Scenario, *, quantities: str = "zone") -> np.ndarray:
    """Zone ids (int32, 0 outside) of a historical simulation's amounts.

    ``zone``: the allocation zones (:func:`landuse.allocation.zones.zone_grid`, cities crossed with
    ``allocation.block_size_m`` blocks); ``cluster``: one zone, the whole study area.
    """
    from landuse.allocation.zones import zone_grid

    if quantities not in QUANTITIES:
        raise ConfigError(f"quantities must be one of {', '.join(QUANTITIES)}, got {quantities!r}")
    if quantities == "cluster":
        return np.asarray(landscape["study_area"].values, dtype=bool).astype(np.int32)
    return np.asarray(zone_grid(landscape, block_size_m=scenario.config.allocation.block_size_m).zones, dtype=np.int32)


def observed_targets(before: np.ndarray, after: np.ndarray, zones: np.ndarray, valid: np.ndarray, scenario: Scenario,
                     *, period: int) -> pd.DataFrame:
    """Per zone and urban type, the cells that became that type between ``before`` and ``after``.

    Returns a frame ``period, zone, type, cells`` (zones with no gain left out): the
    demand of a historical simulation. It is the only thing of the later map a
    hindcast's prediction sees.
    """
    classes = scenario.classes
    n_zones = int(zones.max(initial=0))
    rows = []
    for t in classes.urban_types:
        codes = np.asarray(classes.codes_of_type(t), dtype=np.uint8)
        gain = valid & np.isin(after, codes) & ~np.isin(before, codes)
        cnt = np.bincount(zones[gain], minlength=n_zones + 1)
        rows += [(int(period), int(z), t, int(cnt[z])) for z in np.flatnonzero(cnt) if z > 0]
    return pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])


def historical_setup(landscape: xr.Dataset, scenario: Scenario, *, history_year: int | None = None,
                     amounts: str | None = None, quantities: str | None = None,
                     trained: Any = None) -> HistoricalSetup:
    """Prepare the simulation of the observed change from a history year to the start year.

    Parameters
    ----------
    landscape : xarray.Dataset
        The Landscape: ``landuse`` at the scenario's start year and ``landuse_<year>`` at
        an earlier date (``layers.history``).
    scenario : Scenario
        Its policies, conversion matrix, suitability and growth options are those of the
        simulation (only the calibrated parameters vary).
    history_year : int, optional
        The earlier date; default the latest history year before the start year.
    amounts : {"allocator", "observed_zone", "cluster"}, optional
        How the observed change is given to the simulation (default
        ``calibration.amounts``): ``allocator`` — its cluster total per type becomes the
        demand of the scenario's LP allocator and the engine grows the plan's units
        (:func:`allocator_targets`), the chain of a run; ``observed_zone`` — the observed
        gain of each allocation zone; ``cluster`` — one total per type for the whole study
        area, placed by the engine alone (:func:`quantity_zones`). In every case the
        observed gain the model cannot make (:func:`reachable_cells`) is left out of the
        amounts and of the scores, and reported (``setup.unreachable``).
    quantities : {"zone", "cluster"}, optional
        Older name: ``zone`` = ``observed_zone``, ``cluster`` = ``cluster``.
    trained : TrainedSuitability, optional
        With ``growth.suitability.method: trained``, a model fitted beforehand on this
        change; by default one is fitted here for each urban type that gained at least 20
        cells (the others get suitability 0).

    Returns
    -------
    HistoricalSetup

    Raises
    ------
    ConfigError
        No usable history layer, or no observed urban gain between the two dates.
    """
    start = scenario.periods[0]
    years = sorted(int(v[8:]) for v in landscape.data_vars if v.startswith("landuse_") and v[8:].isdigit())
    earlier = [y for y in years if y < start]
    if history_year is None:
        if not earlier:
            raise ConfigError(
                f"calibration needs land use at a date before the start year {start}: add layers.history "
                "(e.g. {2010: landuse_2010.tif}) to the scenario"
            )
        history_year = earlier[-1]
    elif history_year not in earlier:
        raise ConfigError(
            f"calibration.history_year: {history_year} is not a layers.history year before the start year {start} "
            f"(available: {earlier or 'none'})"
        )
    classes = scenario.classes
    before = np.ascontiguousarray(landscape[f"landuse_{history_year}"].values, dtype=np.uint8)
    observed = np.ascontiguousarray(landscape["landuse"].values, dtype=np.uint8)
    nodata = classes.nodata
    inside = np.asarray(landscape["study_area"].values, dtype=bool)
    valid = inside & (before != nodata) & (observed != nodata)
    amounts = _amounts_of(amounts, quantities, scenario)
    zones = quantity_zones(landscape, scenario, quantities="zone" if amounts == "observed_zone" else "cluster")
    ds_before = landscape.copy()
    ds_before["landuse"] = (("y", "x"), before)
    # a soft greenbelt only lowers the potential (its leakage may be calibrated): never a transition ruled out
    reach = reachable_cells(ds_before, scenario, before, soft_greenbelt=False)
    unreachable, unreach_info = _unreachable_gain(before, observed, valid, reach, scenario)
    if unreach_info["observed_gain"] and unreach_info["cells"] == unreach_info["observed_gain"]:
        raise ConfigError(
            f"none of the urban gain {history_year} -> {start} can be made by the model: its source classes may not "
            "become urban (growth.conversion) or the constraints forbid those cells; check growth.conversion and "
            "the constraint layers"
        )
    valid = valid & ~unreachable
    targets = observed_targets(before, observed, zones, valid, scenario, period=start)
    if targets.empty:
        raise ConfigError(
            f"no urban land was gained between {history_year} and {start} "
            f"(layers.history.{history_year} and layers.landuse); there is nothing to calibrate against"
        )
    if trained is None and scenario.config.growth.suitability.method == "trained":
        from landuse.calibration.suitability_model import train_suitability

        gained = targets.groupby("type")["cells"].sum()
        trained = train_suitability(landscape, scenario, t0=history_year, method=scenario.config.growth.suitability.model,
                                    seed=scenario.config.growth.seed,
                                    types=[t for t in classes.urban_types if int(gained.get(t, 0)) >= _MIN_TRAIN_CELLS])
    setup = build_setup(landscape, scenario, before=before, observed=observed, valid=valid, zones=zones,
                        targets=targets, before_year=int(history_year), after_year=int(start), trained=trained,
                        amounts=amounts)
    setup.unreachable = unreach_info
    return setup


def build_setup(landscape: xr.Dataset, scenario: Scenario, *, before: np.ndarray, observed: np.ndarray | None,
                valid: np.ndarray, zones: np.ndarray, targets: pd.DataFrame, before_year: int, after_year: int,
                trained: Any = None, amounts: str = "observed_zone") -> HistoricalSetup:
    """A :class:`HistoricalSetup` growing ``targets`` from the map ``before``.

    With ``amounts="allocator"`` the ``targets`` are summed per type and planned by the
    scenario's LP allocator (:func:`allocator_targets`); the setup then grows the plan's
    units (its ``landscape["zones"]`` and ``targets`` are the units').

    ``observed`` (the later map) is used only for scoring; pass ``None`` for a forecast
    (a hindcast's prediction), which can then simulate but not score. ``trained`` is a
    :class:`landuse.calibration.suitability_model.TrainedSuitability` fitted beforehand (applied to
    ``before``) when the suitability method is ``trained``. Only the layers of
    ``landscape`` that are not land use are read, so a later map in it is never seen.
    """
    from landuse.growth import GrowthParams
    from landuse.surfaces.constraints import constraint_factor, soft_greenbelt_cells

    classes = scenario.classes
    ds0 = landscape.drop_vars([v for v in landscape.data_vars if str(v).startswith("landuse")])
    ds0["landuse"] = (("y", "x"), before)
    ds0["landuse"].attrs.update(landscape["landuse"].attrs if "landuse" in landscape else {})
    ds0 = ds0.assign(zones=(("y", "x"), zones))
    ds0 = ds0[["landuse", *[v for v in ds0.data_vars if v != "landuse"]]]

    method = scenario.config.growth.suitability.method
    suit_linear: _LinearSuitability | None = None
    suit_fixed: np.ndarray | None = None
    if method == "linear":
        suit_linear = _LinearSuitability(ds0, scenario, before)
        suit0 = suit_linear.base
    elif method == "trained":
        if trained is None:
            raise ConfigError("growth.suitability.method is 'trained': fit the suitability first (train_suitability)")
        suit_fixed = np.asarray(trained.predict(ds0, scenario, before).values, dtype=np.float32)
        suit0 = suit_fixed
    else:
        from landuse.surfaces.suitability import compute_suitability

        suit_fixed = np.asarray(compute_suitability(ds0, scenario).values, dtype=np.float32)
        suit0 = suit_fixed

    pol = scenario.config.policy
    # the soft greenbelt apart: its leakage is a calibrated parameter (HistoricalSetup._potential puts it back)
    c_free = constraint_factor(ds0, scenario, landuse=before, soft_greenbelt=False)
    greenbelt = soft_greenbelt_cells(ds0, scenario, c_free)
    base_params = GrowthParams.from_scenario(scenario, ds0, suitability=suit0).replace(periods=(after_year,))
    if amounts not in AMOUNTS:
        raise ConfigError(f"calibration.amounts must be one of {', '.join(AMOUNTS)}, got {amounts!r}")
    plan: dict[str, Any] = {}
    plan_scenario = None
    if amounts == "allocator":
        units, targets, plan, plan_scenario = allocator_targets(ds0, scenario, before, suit0, targets,
                                                                start=before_year, period=after_year)
        ds0["zones"] = (("y", "x"), units)

    applicable: dict[str, tuple[float, float]] = {}
    skipped: dict[str, str] = {}
    w0 = np.asarray(base_params.neighbourhood_weights)
    for name, p in PARAMETERS.items():
        if name == "greenbelt_leakage" and (greenbelt is None or not greenbelt.any()):
            skipped[name] = ("policy.greenbelt.mode is not 'soft'" if pol.greenbelt.mode != "soft"
                             else "the greenbelt holds no developable cell")
            if pol.greenbelt.mode == "soft" and "greenbelt" not in ds0:
                skipped[name] = "the scenario has no greenbelt layer"
        elif name == "distance_scale_m" and (suit_linear is None or not suit_linear.uses_distance):
            skipped[name] = (f"growth.suitability.method is {method!r}, not 'linear'" if suit_linear is None
                             else "no distance driver has a positive weight")
        elif name == "cross_weight" and not np.any(w0 - np.diag(np.diag(w0))):
            skipped[name] = "growth.neighbourhood_weights has no off-diagonal weight to scale"
        elif name == "cross_weight" and len(_present_types(before, targets, classes)) < 2:
            skipped[name] = "fewer than two urban types exist or grow, so no type has another type's land to weigh"
        else:
            applicable[name] = (p.low, p.high)

    hist = None
    if observed is not None:
        hist = ChangeHistogram(before, observed, valid, codes=base_params.type_codes)
    return HistoricalSetup(
        scenario=scenario, before_year=int(before_year), after_year=int(after_year), landscape=ds0, before=before,
        observed=observed, valid=valid, targets=targets, base_params=base_params, applicable=applicable,
        skipped=skipped, amounts=amounts, plan=plan, plan_scenario=plan_scenario, _suit_linear=suit_linear, _suit_fixed=suit_fixed, _c_free=c_free,
        _greenbelt=greenbelt, _hist=hist,
    )


# =========================================================================== null model


def null_model(setup: HistoricalSetup) -> np.ndarray:
    """Later-date map of the null model: per zone and type, the developable cells closest to urban land.

    The same per-zone demand as the simulation (``setup.targets``). A cell is
    developable for type ``k`` when the conversion matrix lets its class become ``k``
    and the constraint factor (red line, permanent farmland, water, hard greenbelt or
    boundary) is positive. Types are served in the scheme's ``urban_types`` order; within a zone the
    cells nearest (Euclidean) to urban land at the earlier date go first, ties by cell
    index. Fully deterministic.
    """
    from landuse.core.landscape import cell_sizes
    from landuse.evaluation.expected import allocate_by_rank
    from landuse.surfaces.constraints import constraint_factor
    from landuse.surfaces.suitability import distance_to

    sc = setup.scenario
    ds0 = setup.landscape
    before = setup.before
    inside = np.asarray(ds0["study_area"].values, dtype=bool)
    dist = distance_to(sc.classes.is_role(before, "urban") & inside, cell=cell_sizes(ds0))
    c = constraint_factor(ds0, sc, landuse=before)
    allowed = setup.base_params.allowed
    developable = np.stack([allowed[k][before] & (c > 0) for k in range(allowed.shape[0])])
    return allocate_by_rank(before, -dist, np.asarray(ds0["zones"].values), setup.targets, developable=developable,
                            type_codes=setup.base_params.type_codes, types=setup.base_params.types)


def scores_of_map(setup: HistoricalSetup, simulated: np.ndarray) -> dict[str, float]:
    """FoM, Kappa-simulation, Lee-Sallee and change components of one later-date map."""
    return setup.score_map(simulated)


def ensemble_scores(setup: HistoricalSetup, values: Mapping[str, Any], *, runs: int, seed: int) -> dict[str, float]:
    """Scores of a parameter point from the ensemble-mean histogram of ``runs`` runs."""
    return setup.evaluate(values, runs=runs, seed=seed)


# =========================================================================== search


def _evaluate_task(setup: HistoricalSetup, values: dict[str, Any], runs: int, seed: int,
                   threads: int | None = None, patches: bool = False) -> dict[str, float]:
    """One point on a Dask worker (module-level so it pickles)."""
    if threads is not None:
        import numba

        numba.set_num_threads(threads)
    return setup.evaluate(values, runs=runs, seed=seed, patches=patches)


class _Evaluator:
    """Evaluates batches of points, in this process (engine threads) or on a local Dask cluster."""

    def __init__(self, setup: HistoricalSetup, *, runs: int, seed: int, parallel: str, patches: bool = False) -> None:
        self.setup, self.runs, self.seed, self.parallel, self.patches = setup, runs, seed, parallel, patches
        self.client = self.cluster = self.remote = None

    def __enter__(self) -> _Evaluator:
        if self.parallel == "dask":
            from landuse.scale.distributed import dask_client

            self.cluster = dask_client("local", workers=2)
            self.client = self.cluster.__enter__()
            self.remote = self.client.scatter(self.setup, broadcast=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cluster is not None:
            self.cluster.__exit__(*exc)

    def __call__(self, batch: list[dict[str, Any]], *, runs: int | None = None, seed: int | None = None,
                 patches: bool | None = None) -> list[dict]:
        r, s = runs or self.runs, self.seed if seed is None else seed
        p = self.patches if patches is None else patches
        if self.client is None or len(batch) == 1:
            return [self.setup.evaluate(v, runs=r, seed=s, patches=p) for v in batch]
        futures = [self.client.submit(_evaluate_task, self.remote, v, r, s, 1, p, pure=False) for v in batch]
        return self.client.gather(futures)


def _propose(U: np.ndarray, y: np.ndarray, q: int, rng: np.random.Generator, *,
             snap_discrete: Callable[[np.ndarray], np.ndarray], exact: Callable[[np.ndarray], np.ndarray],
             seen: set, kernel: Any = None) -> tuple[list[np.ndarray], Any]:
    """``q`` new points by expected improvement of a GP fitted to (U, y); constant liar for the rest.

    ``kernel`` (the previous step's fitted kernel) starts the hyperparameter search; the
    fitted kernel is returned for the next step.
    """
    from scipy.stats import norm, qmc
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    d = U.shape[1]
    ok = np.isfinite(y)
    U, y = U[ok], y[ok]
    if kernel is None:
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * Matern(length_scale=np.full(d, 0.3), length_scale_bounds=(1e-2, 1e1), nu=2.5)
                  + WhiteKernel(1e-3, (1e-8, 1e-1)))
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        gp.fit(U, y)
    # candidates: a global Sobol set plus clouds around the best points
    glob = qmc.Sobol(d, scramble=True, seed=rng).random(1024)
    top = U[np.argsort(-y, kind="stable")[:5]]
    local = [np.clip(t + rng.normal(0.0, s, size=(96, d)), 0.0, 1.0) for t in top for s in (0.02, 0.07, 0.2)]
    cand = snap_discrete(np.vstack([glob, *local]))
    out: list[np.ndarray] = []
    fit_U, fit_y = U, y
    model = gp
    chosen: set = set()
    while len(out) < q and cand.shape[0]:
        mu, sd = model.predict(cand, return_std=True)
        best = float(fit_y.max())
        xi = 0.01 * float(np.std(fit_y)) if fit_y.size > 1 else 0.0
        imp = mu - best - xi
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, imp / sd, 0.0)
        ei = np.where(sd > 0, imp * norm.cdf(z) + sd * norm.pdf(z), np.maximum(imp, 0.0))
        i = int(np.argmax(ei))
        u = exact(cand[i])
        cand = np.delete(cand, i, axis=0)
        key = tuple(np.round(u, 9))
        if key in seen or key in chosen:
            continue
        chosen.add(key)
        out.append(u)
        # constant liar: pretend the chosen point returned its predicted mean, refit with the fitted kernel
        fit_U = np.vstack([fit_U, u])
        fit_y = np.append(fit_y, mu[i])
        model = GaussianProcessRegressor(kernel=gp.kernel_, normalize_y=True, optimizer=None)
        model.fit(fit_U, fit_y)
    return out, gp.kernel_


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per evaluated point: ``point, stage`` (default, sobol, gp), the parameter
        values, ``objective`` and the scores ``fom, kappa_simulation, lee_sallee, hits,
        misses, wrong_hits, false_alarms, shortfall`` (ensemble means).
    best : dict
        Calibrated value of every fitted parameter.
    default : dict
        The scenario's own values of the fitted parameters.
    objective : str
    ranges : dict of str to tuple
        Search range of each fitted parameter.
    skipped : dict of str to str
        Parameters not fitted, and why.
    validation : dict
        Scores with fresh seeds (not used by the search): ``calibrated`` and ``default``
        (ensemble means), ``calibrated_map`` (the representative run's map) and ``null``
        (the null model, deterministic).
    info : dict
        Years, budget, runs, seed, parallel mode, timings, observed change.
    """

    table: pd.DataFrame
    best: dict[str, Any]
    default: dict[str, Any]
    objective: str
    ranges: dict[str, tuple[float, float]]
    skipped: dict[str, str]
    validation: dict[str, dict[str, float]]
    info: dict[str, Any]
    calibrated_map: np.ndarray | None = None

    @property
    def best_objective(self) -> float:
        """Objective of the chosen point on the finalists' seeds (``3 x runs``)."""
        if "best_objective" in self.info:
            return float(self.info["best_objective"])
        return float(self.table["objective"].max())

    @property
    def search_best_objective(self) -> float:
        """Best objective during the search (the search seeds; biased upwards by the luck of the draw)."""
        t = self.table
        return float(t.loc[t["stage"].isin(_SEARCH_STAGES), "objective"].max())

    @property
    def default_objective(self) -> float:
        return float(self.table.loc[self.table["stage"] == "default", "objective"].iloc[0])

    def yaml_block(self, scenario: Scenario) -> str:
        """The calibrated parameters as YAML keys to merge into ``scenario``'s sections."""
        import yaml

        g: dict[str, Any] = {}
        b = self.best
        for name in ("neighbourhood_strength", "spontaneous_share", "iterations", "adaptive_inertia"):
            if name in b:
                g[name] = b[name]
        if "cross_weight" in b:
            nw = scenario.config.growth.neighbourhood_weights
            g["neighbourhood_weights"] = {
                k: {j: (float(nw.get(k, {}).get(j, 0.0)) if j == k
                        else float(b["cross_weight"]) * float(nw.get(k, {}).get(j, 0.0)))  # exactly as evaluated
                    for j in scenario.classes.urban_types}
                for k in scenario.classes.urban_types
            }
        if "distance_scale_m" in b:
            g["suitability"] = {"distance_scale_m": b["distance_scale_m"]}
        data: dict[str, Any] = {}
        if g:
            data["growth"] = g
        if "greenbelt_leakage" in b:
            data["policy"] = {"greenbelt": {"mode": "soft", "strength": 1.0 - float(b["greenbelt_leakage"])}}
        v = self.validation
        head = (
            f"# Growth parameters calibrated by `landuse calibrate` against the change {self.info['before_year']} -> "
            f"{self.info['after_year']}\n"
            f"# (objective {self.objective}, budget {self.info['budget']}, {self.info['runs']} runs per point, "
            f"seed {self.info['seed']}).\n"
            f"# FoM with fresh seeds: calibrated {v['calibrated']['fom']:.4f}, uncalibrated default "
            f"{v['default']['fom']:.4f}, null model {v['null']['fom']:.4f}.\n"
            "# Apply with `landuse run CONFIG --calibration calibrated.yaml`, or merge these keys into the scenario's\n"
            "# growth: and policy: sections.\n"
        )
        return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    def markdown(self, scenario: Scenario) -> str:
        """A short report of the calibration."""
        v, i = self.validation, self.info
        lines = [
            f"# Calibration of scenario `{scenario.name}`",
            "",
            f"Simulated the observed change {i['before_year']} -> {i['after_year']} ({i['observed_change_cells']} cells "
            f"gained by urban types in {i['zones_with_change']} zones, one period) and maximised **{self.objective}** "
            f"over {len(self.table)} parameter points ({i['runs']} Monte Carlo runs each, the same seeds at every "
            f"point; seed {i['seed']}) in {i['seconds']:.1f} s ({i['parallel']}).",
            "",
            "## Figures (fresh seeds, not used by the search)",
            "",
            "| model | FoM | Kappa-simulation | Lee-Sallee | hits | misses | wrong hits | false alarms |",
            "|---|---|---|---|---|---|---|---|",
        ]
        labels = (("calibrated", "calibrated (ensemble mean)"), ("calibrated_map", "calibrated (representative run)"),
                  ("default", "uncalibrated default (ensemble mean)"),
                  ("null", "null model (nearest developable cells)"))
        for key, label in labels:
            s = v[key]
            lines.append(f"| {label} | {s['fom']:.4f} | {s['kappa_simulation']:.4f} | {s['lee_sallee']:.4f} | "
                         f"{s['hits']:.0f} | {s['misses']:.0f} | {s['wrong_hits']:.0f} | {s['false_alarms']:.0f} |")
        un = i.get("unreachable") or {}
        amounts = {"allocator": "the cluster totals planned by the scenario's LP allocator, the plan's units grown",
                   "observed_zone": "the observed gain of each allocation zone",
                   "cluster": "one cluster-wide total per type, placed by the growth engine"}.get(i.get("amounts"), "")
        lines += [
            "",
            f"Best objective during the search: {self.search_best_objective:.4f} (default "
            f"{self.default_objective:.4f}); the chosen point on the finalists' fresh seeds ({i.get('finalists', 0)} "
            f"finalists, {i.get('final_runs', 0)} runs each, {i.get('refine_points', 0)} refinement points): "
            f"{self.best_objective:.4f}.",
            "",
            f"Amounts: **{i.get('amounts', '')}** ({amounts}). Observed gain the model cannot make (class not "
            f"convertible, or constraint factor 0): {un.get('cells', 0)} cells, {100 * un.get('share', 0.0):.1f} % "
            "of the observed gain, left out of the amounts and the scores.",
        ]
        op = i.get("observed_patches")
        if op:
            cp, dp = v["calibrated"], v["default"]
            lines += ["", "New patches (8-connected; outlying = no urban neighbour at the start):", "",
                      "| | patches | outlying share of new cells | patch error |", "|---|---|---|---|",
                      f"| observed | {op['new_patches']:.0f} | {op['outlying_share']:.3f} | 0 |",
                      f"| calibrated (mean of runs) | {cp['new_patches']:.1f} | {cp['outlying_share']:.3f} | "
                      f"{cp['patch_error']:.3f} |",
                      f"| default (mean of runs) | {dp['new_patches']:.1f} | {dp['outlying_share']:.3f} | "
                      f"{dp['patch_error']:.3f} |"]
        if i.get("at_edge"):
            lines += ["", "At the edge of its range: " + ", ".join(f"`{k}` ({side})" for k, side in
                                                                     i["at_edge"].items())
                      + " — widen the range in calibration.parameters if its limits allow."]
        lines += [
            "",
            "## Parameters",
            "",
            "| parameter | calibrated | default | range |",
            "|---|---|---|---|",
        ]
        for name, (lo, hi) in self.ranges.items():
            kind = PARAMETERS[name].kind
            span = "true or false" if kind == "bool" else f"[{lo:g}, {hi:g}]" + (" (log scale)" if kind == "log" else "")

            def fmt(x: Any, kind: str = kind) -> str:
                return str(bool(x)).lower() if kind == "bool" else f"{x:g}"

            lines.append(f"| {name} | {fmt(self.best[name])} | {fmt(self.default[name])} | {span} |")
        if self.skipped:
            lines += ["", "Not calibrated: " + "; ".join(f"{k} ({r})" for k, r in self.skipped.items()) + "."]
        shortfall = float(self.table["shortfall"].max()) if len(self.table) else 0.0
        if shortfall > 0:
            lines += ["", f"Note: up to {shortfall:.0f} observed cells could not be placed at some points (their zone "
                      "had no cell left that the conversion matrix and constraints allow)."]
        lines += [
            "",
            "Files: `calibrated.yaml` (keys to merge into the scenario), `calibration.csv` (every point), "
            "`calibration.png` (objective against each parameter).",
            "",
        ]
        return "\n".join(lines)


def _resolve_ranges(setup: HistoricalSetup, parameters: Mapping[str, Sequence[float]] | None) -> dict[str, tuple]:
    if parameters is None:
        return dict(setup.applicable)
    out: dict[str, tuple[float, float]] = {}
    for name, rng in parameters.items():
        where = f"calibration.parameters.{name}"
        if name not in PARAMETERS:
            raise ConfigError(f"{where}: unknown parameter; choose among {', '.join(PARAMETERS)}")
        if name in setup.skipped:
            raise ConfigError(f"{where}: cannot be calibrated here: {setup.skipped[name]}")
        p = PARAMETERS[name]
        if rng is None or len(rng) == 0:
            out[name] = (p.low, p.high)
            continue
        if len(rng) != 2:
            raise ConfigError(f"{where}: give [low, high], got {list(rng)}")
        lo, hi = float(rng[0]), float(rng[1])
        if not (p.limit[0] <= lo < hi <= p.limit[1]):
            raise ConfigError(f"{where}: need {p.limit[0]:g} <= low < high <= {p.limit[1]:g}, got [{lo:g}, {hi:g}]")
        if p.kind in ("log", "int") and lo <= 0:
            raise ConfigError(f"{where}: the range is searched on a log scale; low must be > 0, got {lo:g}")
        out[name] = (lo, hi)
    if not out:
        raise ConfigError("calibration.parameters: no parameter to calibrate")
    return out


def calibrate(
    setup: HistoricalSetup,
    *,
    budget: int | None = None,
    runs: int | None = None,
    objective: str | None = None,
    seed: int | None = None,
    parameters: Mapping[str, Sequence[float]] | None = None,
    parallel: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    finalists: int | None = None,
    refine: bool | None = None,
    patch_weight: float | None = None,
) -> CalibrationResult:
    """Fit the growth parameters to the observed change of ``setup``.

    Parameters
    ----------
    setup : HistoricalSetup
        From :func:`historical_setup`.
    budget : int, optional
        Parameter points evaluated, the default point included (default
        ``calibration.budget``); at least 4.
    runs : int, optional
        Monte Carlo runs per point (default ``calibration.runs``).
    objective : {"fom", "kappa_simulation", "lee_sallee"}, optional
        Maximised score (default ``calibration.objective``).
    seed : int, optional
        Seeds the design, the Bayesian steps and the simulations (default
        ``calibration.seed``). The same seed gives the same calibration.
    parameters : mapping, optional
        Parameter -> ``[low, high]`` to fit (default ``calibration.parameters``, else every
        applicable parameter with its default range, see :data:`PARAMETERS`).
    parallel : {"threads", "dask"}, optional
        ``threads``: points one after another, each simulation on the engine's numba
        threads; ``dask``: two points at a time on a loopback ``LocalCluster`` of two
        single-threaded workers. Results are identical either way.
    progress : callable, optional
        Called with a dict after each point: ``stage, point, budget, objective, best``.
    finalists : int, optional
        Best points of the search re-run with fresh seeds and ``3 x runs`` (default
        ``calibration.finalists``); the best of them is chosen.
    refine : bool, optional
        Coordinate steps around the chosen point (steps 0.1, 0.05, 0.025 of each range)
        on the finalists' seeds (default ``calibration.refine``).
    patch_weight : float, optional
        Weight of :func:`patch_error` subtracted from the objective (default
        ``calibration.patch_weight``; 0 = patches reported, not fitted).

    Returns
    -------
    CalibrationResult
    """
    from scipy.stats import qmc

    cal = setup.scenario.config.calibration
    budget = int(cal.budget if budget is None else budget)
    runs = int(cal.runs if runs is None else runs)
    objective = cal.objective if objective is None else objective
    seed = int(cal.seed if seed is None else seed)
    parallel = cal.parallel if parallel is None else parallel
    finalists = int(cal.finalists if finalists is None else finalists)
    refine = bool(cal.refine if refine is None else refine)
    patch_weight = float(cal.patch_weight if patch_weight is None else patch_weight)
    if finalists < 1:
        raise ConfigError(f"finalists must be at least 1, got {finalists}")
    if not 0.0 <= patch_weight <= 10.0:
        raise ConfigError(f"patch_weight must be within [0, 10], got {patch_weight:g}")
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if budget < 4:
        raise ConfigError(f"budget must be at least 4 points, got {budget}")
    if runs < 1:
        raise ConfigError(f"runs must be at least 1, got {runs}")
    if not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be within [0, 2**63 - 1], got {seed}")
    if parallel not in ("threads", "dask"):
        raise ConfigError(f"parallel must be 'threads' or 'dask', got {parallel!r}")
    ranges = _resolve_ranges(setup, cal.parameters if parameters is None else parameters)
    names = list(ranges)
    specs = [PARAMETERS[n] for n in names]
    d = len(names)
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    sim_seed = int(np.random.default_rng([seed, 1]).integers(2**62))
    val_seed = int(np.random.default_rng([seed, 2]).integers(2**62))

    def decode(u: np.ndarray) -> dict[str, Any]:
        return {n: p.decode(float(x), *ranges[n]) for n, p, x in zip(names, specs, u, strict=True)}

    def encode(values: Mapping[str, Any]) -> np.ndarray:
        return np.array([p.encode(values[n], *ranges[n]) for n, p in zip(names, specs, strict=True)])

    def snap(U: np.ndarray) -> np.ndarray:
        return np.array([encode(decode(u)) for u in np.atleast_2d(U)])

    def snap_discrete(U: np.ndarray) -> np.ndarray:
        U = np.array(U, dtype=np.float64)
        for k, n in enumerate(names):
            U[:, k] = specs[k].snap_discrete(U[:, k], *ranges[n])
        return U

    default_all = setup.default_values()
    default = {n: default_all[n] for n in names}
    records: list[dict[str, Any]] = []
    U_list: list[np.ndarray] = []
    seen: set = set()
    use_patches = patch_weight > 0

    def value(scores: Mapping[str, float]) -> float:
        v = float(scores[objective])
        return v - patch_weight * float(scores["patch_error"]) if use_patches else v

    def record(stage: str, values: dict[str, Any], u: np.ndarray, scores: dict[str, float], n_runs: int) -> None:
        row = {"point": len(records), "stage": stage, **values, "runs": n_runs, "objective": value(scores), **scores}
        records.append(row)
        if stage in _SEARCH_STAGES:
            U_list.append(u)
            seen.add(tuple(np.round(u, 9)))
        if progress is not None:
            progress({"stage": stage, "point": len(records), "budget": budget, "objective": row["objective"],
                      "best": max(r["objective"] for r in records)})

    with _Evaluator(setup, runs=runs, seed=sim_seed, parallel=parallel, patches=use_patches) as evaluate:
        record("default", default, encode(default), evaluate([default])[0], runs)
        # space-filling start: scrambled Sobol, about 40 % of the budget (a power of two)
        n_sobol = min(2 ** max(1, math.floor(math.log2(max(2.0, 0.4 * budget)))), budget - 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # balance of Sobol points when n is not 2**m
            design = qmc.Sobol(d, scramble=True, seed=rng).random(n_sobol)
        batch_u: list[np.ndarray] = []
        for u in snap(design):
            key = tuple(np.round(u, 9))
            if key not in seen and all(tuple(np.round(b, 9)) != key for b in batch_u):
                batch_u.append(u)
        batch_v = [decode(u) for u in batch_u]
        for u, v, s in zip(batch_u, batch_v, evaluate(batch_v), strict=True):
            record("sobol", v, u, s, runs)
        # Bayesian steps
        stalls = 0
        kernel = None
        while len(records) < budget and stalls < 3:
            U = np.array(U_list)
            y = np.array([r["objective"] for r in records], dtype=np.float64)
            new, kernel = _propose(U, y, min(_BATCH, budget - len(records)), rng, snap_discrete=snap_discrete,
                                   exact=lambda u: snap(u)[0], seen=seen, kernel=kernel)
            if not new:
                stalls += 1
                continue
            vals = [decode(u) for u in new]
            for u, v, s in zip(new, vals, evaluate(vals), strict=True):
                record("gp", v, u, s, runs)

        # finalists: the best points of the search (by their score and by the GP's smoothed mean) re-run with
        # fresh seeds and three times the runs, all with the same seeds; the search's winner's luck stays behind
        U = np.array(U_list)
        y = np.array([r["objective"] for r in records], dtype=np.float64)
        fin_runs = 3 * runs
        fin_seed = int(np.random.default_rng([seed, 3]).integers(2**62))
        picks: list[int] = list(np.argsort(-np.nan_to_num(y, nan=-np.inf), kind="stable")[:finalists])
        if kernel is not None and finalists > 1:
            mu = _gp_mean(U, y, kernel)
            for i in np.argsort(-mu, kind="stable")[: max(1, finalists // 2)]:
                if int(i) not in picks:
                    picks.append(int(i))
        fin_u = [U[i] for i in picks]
        fin_v = [decode(u) for u in fin_u]
        final: list[tuple[float, np.ndarray, dict[str, Any]]] = []
        for u, v, sc in zip(fin_u, fin_v, evaluate(fin_v, runs=fin_runs, seed=fin_seed), strict=True):
            record("final", v, u, sc, fin_runs)
            final.append((value(sc), u, v))
        cur_val, cur_u, cur_v = max(final, key=lambda f: f[0])
        # local refinement: coordinate steps around the chosen point on the finalists' seeds, halving the step
        tried = {tuple(np.round(u, 9)) for _, u, _ in final}
        n_refine = 0
        if refine:
            for step in (0.1, 0.05, 0.025):
                for _ in range(2):
                    if n_refine >= _REFINE_PER_PARAMETER * d:
                        break
                    trial: list[np.ndarray] = []
                    for k in range(d):
                        moves = ([cur_u[k] - step, cur_u[k] + step] if specs[k].kind != "bool"
                                 else ([0.75 if cur_u[k] < 0.5 else 0.25] if step == 0.1 else []))
                        for x in moves:
                            u = cur_u.copy()
                            u[k] = min(max(x, 0.0), 1.0)
                            u = snap(u)[0]
                            key = tuple(np.round(u, 9))
                            if key not in tried:
                                tried.add(key)
                                trial.append(u)
                    if not trial:
                        break
                    tv = [decode(u) for u in trial]
                    moved = False
                    for u, v, sc in zip(trial, tv, evaluate(tv, runs=fin_runs, seed=fin_seed),
                                        strict=True):
                        record("refine", v, u, sc, fin_runs)
                        n_refine += 1
                        if value(sc) > cur_val:
                            cur_val, cur_u, cur_v, moved = value(sc), u, v, True
                    if not moved:
                        break
        table = pd.DataFrame.from_records(records)
        best = {n: _native(cur_v[n], PARAMETERS[n].kind) for n in names}
        # fresh seeds: the calibrated point, the default and the null model
        res = setup.simulate(best, runs=runs, seed=val_seed, keep_runs=True)
        calibrated = setup.score_result(res)
        calibrated_map = np.asarray(res.landuse[setup.after_year].values)
        rep = setup.score_map(calibrated_map)
        default_scores = evaluate([default], seed=val_seed, patches=True)[0]
    null = setup.score_map(null_model(setup))
    seconds = time.perf_counter() - t_start
    at_edge = {}
    for n, p, x in zip(names, specs, encode(best), strict=True):
        if p.kind != "bool" and (x <= _EDGE or x >= 1.0 - _EDGE):
            at_edge[n] = "low" if x <= _EDGE else "high"
    info = {
        "before_year": setup.before_year, "after_year": setup.after_year, "budget": budget, "runs": runs,
        "seed": seed, "parallel": parallel, "seconds": seconds, "points": len(table),
        "search_points": int(table["stage"].isin(_SEARCH_STAGES).sum()), "finalists": len(fin_u),
        "final_runs": fin_runs, "refine_points": n_refine, "best_objective": float(cur_val),
        "observed_change_cells": setup.observed_change_cells,
        "zones_with_change": int(setup.targets["zone"].nunique()), "amounts": setup.amounts,
        "unreachable": dict(setup.unreachable), "plan": dict(setup.plan), "at_edge": at_edge,
        "patch_weight": float(patch_weight), "observed_patches": setup.observed_patches,
    }
    return CalibrationResult(table=table, best=best, default=default, objective=objective, ranges=ranges,
                             skipped={k: v for k, v in setup.skipped.items()},
                             validation={"calibrated": calibrated, "calibrated_map": rep, "default": default_scores,
                                         "null": null},
                             info=info, calibrated_map=calibrated_map)


def _gp_mean(U: np.ndarray, y: np.ndarray, kernel: Any) -> np.ndarray:
    """The GP's posterior mean at the evaluated points (with the fitted kernel): scores smoothed by their
    neighbours, so a point that was lucky on the search seeds ranks lower."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    ok = np.isfinite(y)
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=None)
    gp.fit(U[ok], y[ok])
    mu = np.full(y.shape, -np.inf)
    mu[ok] = gp.predict(U[ok])
    return mu


def _native(v: Any, kind: str) -> Any:
    if kind == "bool":
        return bool(v)
    if kind == "int":
        return int(v)
    return float(v)


# =========================================================================== outputs


def _figure(result: CalibrationResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landuse.io.rasters import atomic_path

    names = list(result.ranges)
    n = len(names)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    t = result.table
    colours = {"default": "#d62728", "sobol": "#7f7f7f", "gp": "#1f77b4", "final": "#ff7f0e", "refine": "#9467bd"}
    chosen = t[t["stage"].isin(["final", "refine"])]
    best = (chosen if len(chosen) else t).loc[lambda f: f["objective"].idxmax()]
    for ax, name in zip(axes.ravel(), names, strict=False):
        for stage, c in colours.items():
            s = t[t["stage"] == stage]
            x = s[name].astype(float)
            ax.scatter(x, s["objective"], s=14 if stage != "default" else 40, c=c, label=stage,
                       marker="o" if stage != "default" else "D", alpha=0.8)
        ax.scatter([float(best[name])], [best["objective"]], s=120, facecolors="none", edgecolors="k", label="best")
        ax.axhline(result.validation["null"][result.objective], color="#2ca02c", ls="--", lw=1, label="null model")
        kind = PARAMETERS[name].kind
        if kind == "log":
            ax.set_xscale("log")
        elif kind == "bool":
            ax.set_xticks([0, 1], ["false", "true"])
            ax.set_xlim(-0.5, 1.5)
        ax.set_xlabel(name)
        ax.set_ylabel(result.objective)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Calibration {result.info['before_year']} -> {result.info['after_year']}: {result.objective} "
                 f"of {len(t)} points ({result.info['runs']} runs each)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_calibration(result: CalibrationResult, out_dir: str | Path, *, scenario: Scenario) -> dict[str, Path]:
    """Write ``calibrated.yaml``, ``calibration.csv``, ``calibration.png`` and ``calibration.md`` atomically."""
    from landuse.io.rasters import write_text

    out = Path(out_dir)
    files = {
        "yaml": write_text(out / "calibrated.yaml", result.yaml_block(scenario)),
        "csv": write_text(out / "calibration.csv", result.table.to_csv(index=False, float_format="%.10g")),
        "md": write_text(out / "calibration.md", result.markdown(scenario)),
    }
    _figure(result, out / "calibration.png")
    files["png"] = out / "calibration.png"
    return files


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def apply_calibration(scenario: Scenario, path: str | Path) -> tuple[Scenario, dict[str, Any]]:
    """The scenario with the parameters of a ``calibrated.yaml`` merged in, and a record of it.

    The file's ``growth`` and ``policy`` keys (written by :func:`write_calibration`) are
    merged into the scenario's sections and the result is validated like a scenario
    file. Returns the new scenario and ``{"file", "sha256", "values"}`` for the manifest.

    Raises
    ------
    ConfigError
        No such file, not a mapping, a key outside ``growth`` / ``policy``, or a value
        the scenario model refuses (named by its key path).
    """
    import hashlib

    import yaml
    from pydantic import ValidationError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"calibration file not found: {p}; write one with `landuse calibrate CONFIG`")
    raw = p.read_bytes()
    data = yaml.safe_load(raw) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a calibration file must be a mapping with growth: and policy: keys")
    extra = sorted(set(data) - {"growth", "policy"})
    if extra:
        raise ConfigError(f"{p}: only growth: and policy: keys can be applied from a calibration file, "
                          f"got {', '.join(extra)}")
    merged = _merge(scenario.config.model_dump(), data)
    try:
        cfg = type(scenario.config).model_validate(merged)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{p}: {where}") from None
    record = {"file": str(p.resolve()), "sha256": hashlib.sha256(raw).hexdigest(), "values": data}
    return Scenario(cfg, path=scenario.path, base_dir=scenario.base_dir), record


def calibrate_scenario(
    config: str | Path | Scenario,
    *,
    out: str | Path | None = None,
    budget: int | None = None,
    runs: int | None = None,
    objective: str | None = None,
    seed: int | None = None,
    parallel: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    write: bool = True,
    force: bool = False,
) -> tuple[CalibrationResult, dict[str, Path]]:
    """Read a scenario, calibrate it against its history and write the outputs.

    ``out`` defaults to ``<outputs.folder>/calibration``; it is written as a whole
    (:class:`landuse.io.folders.OutputFolder`), and a folder another command or scenario
    wrote is replaced only with ``force``. Other options override the scenario's
    ``calibration`` section. Returns the result and the written files.
    """
    from landuse.core.config import load_scenario
    from landuse.io.folders import OutputFolder, check_target
    from landuse.io.rasters import read_landscape

    scenario = config if isinstance(config, Scenario) else load_scenario(config)
    target = Path(out) if out is not None else scenario.output_dir() / "calibration"
    inputs = [*scenario.layer_paths().values(), *([scenario.path] if scenario.path else [])]
    if write:  # before the search, which takes minutes
        check_target(target, command="calibrate", owner=scenario.name, force=force, protected=inputs)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    setup = historical_setup(ds, scenario, history_year=scenario.config.calibration.history_year)
    result = calibrate(setup, budget=budget, runs=runs, objective=objective, seed=seed, parallel=parallel,
                       progress=progress)
    files: dict[str, Path] = {}
    if write:
        with OutputFolder(target, command="calibrate", owner=scenario.name, force=force, protected=inputs) as stage:
            staged = write_calibration(result, stage.path, scenario=scenario)
            stage.commit({"scenario": scenario.name, "objective": result.objective, "best": result.best})
        files = {k: target / p.name for k, p in staged.items()}
    return result, files

