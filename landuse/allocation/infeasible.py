"""Explaining an infeasible period: which policies must give, by how much, and the loosest setting that works.

:func:`_elastic` adds penalised slack to every policy row; :func:`_explain` turns the slack of its optimum into
an :class:`~landuse.core.errors.InfeasibleAllocationError` naming each relaxed constraint with a fix and
machine-readable advice; :func:`_least_feasible_jobs_housing_max` finds by bisection the jobs-housing maximum
the slack cannot express (a city of jobs without housing).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from landuse.allocation.merged import _aggregate
from landuse.allocation.model import AllocationModel
from landuse.allocation.pieces import _INF
from landuse.allocation.solvers import _Solution, _solve_highs_direct
from landuse.core.config import Scenario
from landuse.core.errors import InfeasibleAllocationError


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
