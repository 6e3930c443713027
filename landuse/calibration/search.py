"""The search of a calibration (:func:`calibrate`), in the unit cube of normalised parameters.

The scenario's own values (the uncalibrated default), a scrambled Sobol design, then Bayesian steps — a Gaussian
process (Matérn 5/2 with automatic relevance, plus a white-noise term) fitted to every point so far proposes, by
expected improvement, two points at a time ("constant liar" for the second). The best points (by score and by the
GP's smoothed mean) are re-run as finalists with fresh seeds and three times the runs; the best of them is refined
by coordinate steps on the same seeds; a value at the edge of its range is reported. The chosen point and the
default are then re-run with fresh seeds again to report an honest, out-of-sample figure, with the null model
(:func:`landuse.calibration.setup.null_model`) alongside.

Points are evaluated in this process (each simulation on the engine's numba threads) or two at a time on a loopback
Dask cluster; the results are identical either way.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from landuse.calibration.objective import OBJECTIVES, objective_value
from landuse.calibration.parameters import SearchSpace, resolve_ranges
from landuse.calibration.result import SEARCH_STAGES, CalibrationResult
from landuse.calibration.setup import HistoricalSetup, null_model
from landuse.core.errors import ConfigError

__all__ = ["calibrate"]

_BATCH = 2  # points proposed per Bayesian step (one per worker of the Dask path)
_REFINE_PER_PARAMETER = 4  # at most this many refinement points per fitted parameter


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


def _gp_mean(U: np.ndarray, y: np.ndarray, kernel: Any) -> np.ndarray:
    """The GP's posterior mean at the evaluated points (with the fitted kernel).

    Scores smoothed by their neighbours, so a point that was lucky on the search seeds ranks lower.
    """
    from sklearn.gaussian_process import GaussianProcessRegressor

    ok = np.isfinite(y)
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=None)
    gp.fit(U[ok], y[ok])
    mu = np.full(y.shape, -np.inf)
    mu[ok] = gp.predict(U[ok])
    return mu


@dataclass(frozen=True)
class _Options:
    """The options of one calibration, the scenario's ``calibration`` section overridden by the arguments."""

    budget: int
    runs: int
    objective: str
    seed: int
    parallel: str
    finalists: int
    refine: bool
    patch_weight: float
    parameters: Mapping[str, Sequence[float]] | None


def _options(cal: Any, *, budget: int | None, runs: int | None, objective: str | None, seed: int | None,
             parameters: Mapping[str, Sequence[float]] | None, parallel: str | None, finalists: int | None,
             refine: bool | None, patch_weight: float | None) -> _Options:
    """The options, checked (a :class:`~landuse.core.errors.ConfigError` names the first one out of bounds)."""
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
    return _Options(budget=budget, runs=runs, objective=objective, seed=seed, parallel=parallel,
                    finalists=finalists, refine=refine, patch_weight=patch_weight,
                    parameters=cal.parameters if parameters is None else parameters)


@dataclass
class _Search:
    """The points of one calibration so far, and the stages that add them, in order.

    ``records`` are the table's rows; ``U_list`` the positions of the search stages (the GP's data) and ``seen``
    their rounded keys. Every stage evaluates through ``evaluate`` (an :class:`_Evaluator`).
    """

    space: SearchSpace
    opts: _Options
    evaluate: Callable[..., list[dict]]
    progress: Callable[[dict[str, Any]], None] | None
    records: list[dict[str, Any]] = field(default_factory=list)
    U_list: list[np.ndarray] = field(default_factory=list)
    seen: set = field(default_factory=set)

    def value(self, scores: Mapping[str, float]) -> float:
        return objective_value(scores, self.opts.objective, patch_weight=self.opts.patch_weight)

    def record(self, stage: str, values: dict[str, Any], u: np.ndarray, scores: dict[str, float],
               n_runs: int) -> None:
        records = self.records
        row = {"point": len(records), "stage": stage, **values, "runs": n_runs, "objective": self.value(scores),
               **scores}
        records.append(row)
        if stage in SEARCH_STAGES:
            self.U_list.append(u)
            self.seen.add(tuple(np.round(u, 9)))
        if self.progress is not None:
            self.progress({"stage": stage, "point": len(records), "budget": self.opts.budget,
                           "objective": row["objective"], "best": max(r["objective"] for r in records)})

    def start(self, default: dict[str, Any], rng: np.random.Generator) -> None:
        """The default point, then a space-filling start: scrambled Sobol, about 40 % of the budget.

        The number of Sobol points is a power of two.
        """
        from scipy.stats import qmc

        space, budget, runs = self.space, self.opts.budget, self.opts.runs
        self.record("default", default, space.encode(default), self.evaluate([default])[0], runs)
        n_sobol = min(2 ** max(1, math.floor(math.log2(max(2.0, 0.4 * budget)))), budget - 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # balance of Sobol points when n is not 2**m
            design = qmc.Sobol(space.d, scramble=True, seed=rng).random(n_sobol)
        batch_u: list[np.ndarray] = []
        for u in space.snap(design):
            key = tuple(np.round(u, 9))
            if key not in self.seen and all(tuple(np.round(b, 9)) != key for b in batch_u):
                batch_u.append(u)
        batch_v = [space.decode(u) for u in batch_u]
        for u, v, s in zip(batch_u, batch_v, self.evaluate(batch_v), strict=True):
            self.record("sobol", v, u, s, runs)

    def bayesian(self, rng: np.random.Generator) -> Any:
        """Bayesian steps until the budget is spent (or three steps propose nothing new); the GP's fitted kernel."""
        space, budget = self.space, self.opts.budget
        stalls = 0
        kernel = None
        while len(self.records) < budget and stalls < 3:
            U = np.array(self.U_list)
            y = np.array([r["objective"] for r in self.records], dtype=np.float64)
            new, kernel = _propose(U, y, min(_BATCH, budget - len(self.records)), rng,
                                   snap_discrete=space.snap_discrete, exact=lambda u: space.snap(u)[0],
                                   seen=self.seen, kernel=kernel)
            if not new:
                stalls += 1
                continue
            vals = [space.decode(u) for u in new]
            for u, v, s in zip(new, vals, self.evaluate(vals), strict=True):
                self.record("gp", v, u, s, self.opts.runs)
        return kernel

    def finalists(self, kernel: Any, *, runs: int, seed: int) -> list[tuple[float, np.ndarray, dict[str, Any]]]:
        """The best points of the search re-run with fresh seeds and ``runs`` runs, all with the same seeds.

        Best by their score and by the GP's smoothed mean; the search's winner's luck stays behind. Returns
        ``(value, u, values)``.
        """
        U = np.array(self.U_list)
        y = np.array([r["objective"] for r in self.records], dtype=np.float64)
        n = self.opts.finalists
        picks: list[int] = list(np.argsort(-np.nan_to_num(y, nan=-np.inf), kind="stable")[:n])
        if kernel is not None and n > 1:
            mu = _gp_mean(U, y, kernel)
            for i in np.argsort(-mu, kind="stable")[: max(1, n // 2)]:
                if int(i) not in picks:
                    picks.append(int(i))
        fin_u = [U[i] for i in picks]
        fin_v = [self.space.decode(u) for u in fin_u]
        final: list[tuple[float, np.ndarray, dict[str, Any]]] = []
        for u, v, sc in zip(fin_u, fin_v, self.evaluate(fin_v, runs=runs, seed=seed), strict=True):
            self.record("final", v, u, sc, runs)
            final.append((self.value(sc), u, v))
        return final

    def refine(self, final: list[tuple[float, np.ndarray, dict[str, Any]]], *, runs: int,
               seed: int) -> tuple[float, dict[str, Any], int]:
        """The best finalist, refined (when asked) by coordinate steps on the finalists' seeds, halving the step.

        Returns its value, its parameter values and the number of refinement points.
        """
        space = self.space
        cur_val, cur_u, cur_v = max(final, key=lambda f: f[0])
        tried = {tuple(np.round(u, 9)) for _, u, _ in final}
        n_refine = 0
        if not self.opts.refine:
            return cur_val, cur_v, n_refine
        for step in (0.1, 0.05, 0.025):
            for _ in range(2):
                if n_refine >= _REFINE_PER_PARAMETER * space.d:
                    break
                trial: list[np.ndarray] = []
                for k in range(space.d):
                    moves = ([cur_u[k] - step, cur_u[k] + step] if space.specs[k].kind != "bool"
                             else ([0.75 if cur_u[k] < 0.5 else 0.25] if step == 0.1 else []))
                    for x in moves:
                        u = cur_u.copy()
                        u[k] = min(max(x, 0.0), 1.0)
                        u = space.snap(u)[0]
                        key = tuple(np.round(u, 9))
                        if key not in tried:
                            tried.add(key)
                            trial.append(u)
                if not trial:
                    break
                tv = [space.decode(u) for u in trial]
                moved = False
                for u, v, sc in zip(trial, tv, self.evaluate(tv, runs=runs, seed=seed), strict=True):
                    self.record("refine", v, u, sc, runs)
                    n_refine += 1
                    if self.value(sc) > cur_val:
                        cur_val, cur_u, cur_v, moved = self.value(sc), u, v, True
                if not moved:
                    break
        return cur_val, cur_v, n_refine


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
        From :func:`landuse.calibration.setup.historical_setup`.
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
        applicable parameter with its default range, see :data:`landuse.calibration.parameters.PARAMETERS`).
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
        Weight of :func:`landuse.calibration.objective.patch_error` subtracted from the objective (default
        ``calibration.patch_weight``; 0 = patches reported, not fitted).

    Returns
    -------
    CalibrationResult
    """
    o = _options(setup.scenario.config.calibration, budget=budget, runs=runs, objective=objective, seed=seed,
                 parameters=parameters, parallel=parallel, finalists=finalists, refine=refine,
                 patch_weight=patch_weight)
    space = SearchSpace(resolve_ranges(o.parameters, applicable=setup.applicable, skipped=setup.skipped))
    t_start = time.perf_counter()
    rng = np.random.default_rng(o.seed)
    sim_seed = int(np.random.default_rng([o.seed, 1]).integers(2**62))
    val_seed = int(np.random.default_rng([o.seed, 2]).integers(2**62))
    default_all = setup.default_values()
    default = {n: default_all[n] for n in space.names}
    use_patches = o.patch_weight > 0
    with _Evaluator(setup, runs=o.runs, seed=sim_seed, parallel=o.parallel, patches=use_patches) as evaluate:
        search = _Search(space, o, evaluate, progress)
        search.start(default, rng)
        kernel = search.bayesian(rng)
        fin_runs = 3 * o.runs
        fin_seed = int(np.random.default_rng([o.seed, 3]).integers(2**62))
        final = search.finalists(kernel, runs=fin_runs, seed=fin_seed)
        cur_val, cur_v, n_refine = search.refine(final, runs=fin_runs, seed=fin_seed)
        table = pd.DataFrame.from_records(search.records)
        best = space.native(cur_v)
        # fresh seeds: the calibrated point, the default and the null model
        res = setup.simulate(best, runs=o.runs, seed=val_seed, keep_runs=True)
        calibrated = setup.score_result(res)
        calibrated_map = np.asarray(res.landuse[setup.after_year].values)
        rep = setup.score_map(calibrated_map)
        default_scores = evaluate([default], seed=val_seed, patches=True)[0]
    null = setup.score_map(null_model(setup))
    info = {
        "before_year": setup.before_year, "after_year": setup.after_year, "budget": o.budget, "runs": o.runs,
        "seed": o.seed, "parallel": o.parallel, "seconds": time.perf_counter() - t_start, "points": len(table),
        "search_points": int(table["stage"].isin(SEARCH_STAGES).sum()), "finalists": len(final),
        "final_runs": fin_runs, "refine_points": n_refine, "best_objective": float(cur_val),
        "observed_change_cells": setup.observed_change_cells,
        "zones_with_change": int(setup.targets["zone"].nunique()), "amounts": setup.amounts,
        "unreachable": dict(setup.unreachable), "plan": dict(setup.plan), "at_edge": space.at_edge(best),
        "patch_weight": float(o.patch_weight), "observed_patches": setup.observed_patches,
    }
    return CalibrationResult(table=table, best=best, default=default, objective=o.objective, ranges=space.ranges,
                             skipped={k: v for k, v in setup.skipped.items()},
                             validation={"calibrated": calibrated, "calibrated_map": rep, "default": default_scores,
                                         "null": null},
                             info=info, calibrated_map=calibrated_map)
