"""The historical set-up of a calibration: the growth engine on a past pair of land-use maps.

The growth engine starts from the land use at an earlier date (a ``layers.history`` year) and grows, in one period,
the amount of change that was **observed** up to the scenario's start year, given as ``calibration.amounts`` says
(:mod:`landuse.calibration.amounts`). :func:`historical_setup` computes once everything a calibration needs
(:class:`HistoricalSetup`): the earlier Landscape, the amounts, the suitability (a weighted-linear one at any
distance scale from distances computed once), the constraint factor with the soft greenbelt apart (its leakage is a
parameter) and the joint histogram of the pair (:class:`landuse.evaluation.agreement.ChangeHistogram`).
:meth:`HistoricalSetup.evaluate` simulates and scores one parameter point, the unit of work of a calibration. Every
point runs with the same seeds (common random numbers), so differences between points are differences of
parameters, not of dice.

A null model (:func:`null_model`) converts, per zone and type, the developable cells closest to existing urban land.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.calibration.amounts import (
    AMOUNTS,
    allocator_targets,
    observed_targets,
    quantity_zones,
    reachable_cells,
    resolve_amounts,
    unreachable_gain,
)
from landuse.calibration.objective import new_patch_stats, patch_error
from landuse.calibration.parameters import PARAMETERS
from landuse.core.config import Scenario
from landuse.core.errors import ConfigError
from landuse.evaluation.agreement import ChangeHistogram, change_scores

__all__ = [
    "HistoricalSetup",
    "build_setup",
    "ensemble_scores",
    "historical_setup",
    "null_model",
    "scores_of_map",
]

_MIN_TRAIN_CELLS = 20  # a trained suitability needs this many observed gains of a type


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
        """Cells of observed change the engine grows (the sum of the ``cells`` column of ``targets``)."""
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
    amounts = resolve_amounts(amounts, quantities, scenario)
    zones = quantity_zones(landscape, scenario, quantities="zone" if amounts == "observed_zone" else "cluster")
    ds_before = landscape.copy()
    ds_before["landuse"] = (("y", "x"), before)
    # a soft greenbelt only lowers the potential (its leakage may be calibrated): never a transition ruled out
    reach = reachable_cells(ds_before, scenario, before, soft_greenbelt=False)
    unreachable, unreach_info = unreachable_gain(before, observed, valid, reach, scenario)
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
