"""Solving a large model on a working set of cheap pieces whose duals price the rest, exactly.

Large models (``allocation.working_set``) are solved on a working set (:func:`_initial_working_set`) grown by
the pieces of negative reduced cost until none is left (:func:`_solve_working_set`); with HiGHS the set grows
inside one solver instance, each round warm-started from the last basis (:class:`_HighsIncremental`). An
infeasible restriction is settled on the merged model (:mod:`landuse.allocation.merged`) or, failing that, by
the whole model. :func:`_solve_model` picks the working set or the whole model.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from landuse.allocation.merged import _aggregate
from landuse.allocation.model import AllocationModel
from landuse.allocation.pieces import ALL_SOURCE_ROLES
from landuse.allocation.solvers import (
    _highs_method,
    _highs_solution,
    _new_highs,
    _Solution,
    _solve,
    _solve_highs_direct,
)
from landuse.core.config import Scenario


class _HighsIncremental:
    """One HiGHS instance over a growing working set.

    Pieces are added as columns and capacity rows, and each solve starts from the basis of the one before (a cold
    re-solve of the larger set costs several times more).

    Rows are ordered as passed: the policy rows, then the capacity rows of the pieces in the order they joined;
    ``rows`` and ``cols`` map them back to the whole model.
    """

    def __init__(self, m: AllocationModel, pieces: np.ndarray, *, method: str, time_limit: float) -> None:
        import highspy

        self.m = m
        self.t0 = time.perf_counter()
        self.h = h = _new_highs(method, time_limit)
        self.inf = highspy.kHighsInf
        self.Acsc = m.A.tocsc()
        self.cap_row_of_piece = np.full(m.piece_cap.size, -1, dtype=np.int64)
        self.cap_row_of_piece[m.cap_piece] = len(m.rows) + np.arange(m.cap_piece.size)
        self.in_set = np.zeros(m.piece_cap.size, dtype=bool)
        pol = np.arange(len(m.rows))
        self.rows = pol
        self.cols = np.zeros(0, dtype=np.int64)
        self.pos = np.full(m.n_rows, -1, dtype=np.int64)
        self.pos[pol] = np.arange(pol.size)
        h.addRows(pol.size, self._lo(pol), self._hi(pol), 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
        self.add(pieces)

    def _lo(self, r: np.ndarray) -> np.ndarray:
        return np.where(np.isinf(self.m.row_lo[r]), -self.inf, self.m.row_lo[r])

    def _hi(self, r: np.ndarray) -> np.ndarray:
        return np.where(np.isinf(self.m.row_hi[r]), self.inf, self.m.row_hi[r])

    def add(self, piece_mask: np.ndarray) -> None:
        """Add the pieces of ``piece_mask`` not yet in the set (their capacity rows, then their columns)."""
        m = self.m
        new = piece_mask & ~self.in_set
        if not new.any():
            return
        self.in_set |= new
        r = self.cap_row_of_piece[np.flatnonzero(new)]
        r = r[r >= 0]
        self.h.addRows(r.size, self._lo(r), self._hi(r), 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                       np.zeros(0))
        self.pos[r] = self.rows.size + np.arange(r.size)
        self.rows = np.concatenate([self.rows, r])
        c = np.flatnonzero(new[m.col_piece])
        sub = self.Acsc[:, c]
        idx = self.pos[sub.indices]
        self.h.addCols(c.size, m.cost[c], np.zeros(c.size), m.col_ub[c], sub.nnz, sub.indptr[:-1].astype(np.int32),
                       idx.astype(np.int32), sub.data.astype(np.float64))
        self.cols = np.concatenate([self.cols, c])

    def solve(self) -> _Solution:
        """Solve the current set (warm from the last basis); ``x`` and duals in the set's own order."""
        self.h.run()
        return _highs_solution(self.h, self.t0)

WORKING_SET_MIN_VARIABLES = 20_000
"""``allocation.working_set: auto`` uses the working set from this many variables on."""


def _submodel(m: AllocationModel, piece_mask: np.ndarray) -> tuple[AllocationModel, np.ndarray, np.ndarray]:
    """The model restricted to the columns of the pieces in ``piece_mask`` (all policy rows kept)."""
    cols = np.flatnonzero(piece_mask[m.col_piece])
    n_pol = len(m.rows)
    keep = np.flatnonzero(piece_mask[m.cap_piece])
    rows = np.concatenate([np.arange(n_pol), n_pol + keep])
    A = m.A[rows][:, cols].tocsr()
    sub = dataclasses.replace(
        m, cost=m.cost[cols], col_ub=m.col_ub[cols], col_piece=m.col_piece[cols], col_type=m.col_type[cols],
        A=A, row_lo=m.row_lo[rows], row_hi=m.row_hi[rows], cap_piece=m.cap_piece[keep],
        cost_terms={k: v[cols] for k, v in m.cost_terms.items()}, warnings=list(m.warnings),
    )
    return sub, cols, rows

def _cheapest(m: AllocationModel, sel: np.ndarray, group: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pieces of the cheapest selected columns per group until their capacity reaches ``target[group]``."""
    idx = np.flatnonzero(sel)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    g = group[idx]
    order = idx[np.lexsort((m.cost[idx], g))]
    g = group[order]
    return m.col_piece[order[_before_group_total(m.col_ub[order], g) < target[g]]]


def _before_group_total(amount: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For items sorted by ``group`` (then by price): the amount of the items before each one in its group."""
    cum = np.cumsum(amount)
    start = np.searchsorted(group, group, "left")
    return cum - amount - np.where(start > 0, cum[start - 1], 0.0)


ROLE_SHARE = 0.5
"""Share of each demand unit's demand the first working set holds per source role (see :func:`_initial_working_set`)."""


def _initial_working_set(m: AllocationModel, alpha: float) -> np.ndarray:
    """Pieces holding, per demand unit, the cheapest land worth ``alpha`` x demand.

    Of each role ``ROLE_SHARE`` x that (so the set can meet caps on one role, e.g. farmland loss, from the others),
    near stations (TOD), and of every role and type together (:func:`_cheapest_for_all_types`).

    The per-role share was 1 (each role alone worth the whole demand): a set twice as large whose first solve
    cost more than the rounds it saved (``benchmarks/allocate.py --compare``: 100 000 zones, 89 000 -> 68 000
    pieces, cluster plan 11.2-14.0 -> 8.4-9.9 s; 400 000 zones, solve 83.0 -> 41.1 s; see docs/allocation.md). A set that still cannot meet the
    policies is widened (``alpha`` 4) and, failing that, the whole model is solved: the result is exact either way.
    """
    ws = np.zeros(m.piece_cap.size, dtype=bool)
    col_city = m.piece_city[m.col_piece]
    units = sorted(m.demand, key=lambda u: (-1 if u[0] is None else u[0], m.types.index(u[1])))
    uid = {u: i for i, u in enumerate(units)}
    target = np.array([alpha * m.demand[u] for u in units] + [0.0])
    if m.coordination == "cluster":
        unit_of_col = m.col_type.copy()
        lookup = np.array([uid[(None, t)] for t in m.types])
        unit_of_col = lookup[unit_of_col]
    else:
        cities = np.array(sorted({u[0] for u in units}), dtype=np.int64)
        pos = np.searchsorted(cities, col_city)
        pos = np.clip(pos, 0, max(cities.size - 1, 0))
        known = cities.size > 0
        ok = (cities[pos] == col_city) if known else np.zeros(col_city.size, bool)
        table = np.array([[uid.get((int(c), t), len(units)) for t in m.types] for c in cities],
                         dtype=np.int64).reshape(-1, len(m.types))
        unit_of_col = np.where(ok, table[pos, m.col_type] if known else len(units), len(units))
    n_u = len(units) + 1
    role = m.piece_role[m.col_piece]
    for r in range(len(ALL_SOURCE_ROLES)):
        ws[_cheapest(m, role == r, unit_of_col + n_u * r, np.tile(ROLE_SHARE * target, len(ALL_SOURCE_ROLES)))] = True
    if "residential" in m.types:
        near_res = m.piece_near[m.col_piece] & (m.col_type == m.types.index("residential"))
        ws[_cheapest(m, near_res, unit_of_col, target)] = True
    ws[_cheapest_for_all_types(m, alpha)] = True
    return ws


def _cheapest_for_all_types(m: AllocationModel, alpha: float) -> np.ndarray:
    """Pieces of every role, per demand city (one group in a cluster plan), cheapest first by their cheapest type.

    They are taken until their land reaches ``alpha`` x the demand of every type together.

    The per-role, per-type passes of :func:`_initial_working_set` can hold too little of the land the optimum
    uses: when the types' costs hardly differ (suitability alike for all types) they pick the same pieces for
    every type, so the cheapest role holds one type's demand, not all types'; the restricted optimum then reaches
    for dear land of the other roles and its duals price in most of the model (4 000² megaregion: 8 800 ->
    55 000 of 67 000 pieces in the second round).
    """
    n_p = m.piece_cap.size
    piece_cost = np.full(n_p, np.inf)
    np.minimum.at(piece_cost, m.col_piece, m.cost)
    need: dict[int, float] = {}
    if m.coordination == "cluster":
        group = np.zeros(n_p, dtype=np.int64)
        need[0] = alpha * sum(m.demand.values())
    else:
        group = m.piece_city.astype(np.int64)
        for (city, _), d in m.demand.items():
            need[int(city)] = need.get(int(city), 0.0) + alpha * d
    idx = np.flatnonzero(np.isfinite(piece_cost))
    order = idx[np.lexsort((piece_cost[idx], group[idx]))]
    g = group[order]
    keys = np.unique(g)
    target = np.array([need.get(int(k), 0.0) for k in keys])[np.searchsorted(keys, g)]
    return order[_before_group_total(m.piece_cap[order], g) < target]


def _solve_working_set(m: AllocationModel, scenario: Scenario, solver: str) -> _Solution:
    """Solve on a working set of cheap pieces, pricing the others with the duals (exact).

    A column left out is priced by its reduced cost ``c_j - A_j^T y`` with the duals ``y``
    of the restricted problem (the capacity rows of left-out pieces are slack, dual 0).
    Pieces with a negative reduced cost join the set and the problem is solved again;
    when none is left, the restricted optimum is optimal for the whole LP.
    """
    t0 = time.perf_counter()
    tol = 1e-7 * max(1.0, float(np.abs(m.cost).max(initial=0.0)))
    alpha = 1.0
    ws = _initial_working_set(m, alpha)
    acfg = scenario.config.allocation
    if solver == "highs" and acfg.highs_interface == "direct":
        first = _highs_method(acfg.highs_method, int(ws[m.col_piece].sum()), m.coordination)
        return _solve_working_set_highs(m, ws, first, acfg.time_limit_s, tol, t0)
    rounds = 0
    while True:
        rounds += 1
        if ws.all() or rounds > 30:
            sol = _solve(m, scenario, solver)
            sol.seconds = time.perf_counter() - t0
            sol.detail += f"; working set gave up after {rounds - 1} rounds, whole model solved"
            return sol
        sub, cols, rows = _submodel(m, ws)
        sol = _solve(sub, scenario, solver)
        if sol.status == "infeasible":
            merged = _merged_infeasible(m, scenario.config.allocation.time_limit_s, t0) if alpha == 1.0 else None
            if merged is not None:
                return merged
            if alpha == 1.0:  # widen once
                alpha *= 4.0
                ws |= _initial_working_set(m, alpha)
                continue
            # a second infeasible restriction most likely means an infeasible model: HiGHS tells it from the
            # matrix in one solve, far faster than a PuLP model of the whole; else the whole model is solved
            probe = _solve_highs_direct(m, method="simplex", time_limit=scenario.config.allocation.time_limit_s)
            if probe.status == "infeasible":
                probe.seconds = time.perf_counter() - t0
                probe.detail += "; working set: whole model infeasible"
                return probe
            ws[:] = True
            continue
        if sol.status != "optimal":
            sol.seconds = time.perf_counter() - t0
            return sol
        y = np.zeros(m.n_rows)
        y[rows] = sol.row_dual
        rc = m.cost - m.A.T @ y
        bad = (rc < -tol) & ~ws[m.col_piece]
        if not bad.any():
            x = np.zeros(m.n_cols)
            x[cols] = sol.x
            return _Solution("optimal", x, y, time.perf_counter() - t0,
                             f"working set: {int(ws.sum())} of {ws.size} pieces, {rounds} rounds")
        ws[m.col_piece[bad]] = True


def _solve_working_set_highs(m: AllocationModel, ws: np.ndarray, method: str, time_limit: float, tol: float,
                             t0: float) -> _Solution:
    """The working-set loop of :func:`_solve_working_set` on one warm-started HiGHS instance.

    The first solve uses ``method``; later rounds add the priced-in pieces and re-solve with the dual simplex
    from the previous basis, unless the priced-in pieces outnumber the set: then a fresh instance over the larger
    set is solved by the dual simplex from scratch (several times faster there than the warm start). An infeasible
    restriction is widened once (4 x the demand); a second one is settled by solving the whole model.
    """
    inc = _HighsIncremental(m, ws, method=method, time_limit=time_limit)
    widened = False
    for rounds in range(1, 31):
        sol = inc.solve()
        if sol.status == "infeasible":
            # an infeasible restriction: is the whole model infeasible? the merged model tells in well under a
            # second (the restricted and whole solves took minutes at 400 000 zones); if not, widen once
            merged = None if widened else _merged_infeasible(m, time_limit, t0)
            if merged is not None:
                return merged
            if not widened:
                widened = True
                inc.add(_initial_working_set(m, 4.0))
                inc.h.setOptionValue("solver", "simplex")
                continue
            return _whole_after(m, time_limit, t0, "whole model solved after an infeasible restriction")
        if sol.status != "optimal":
            sol.seconds = time.perf_counter() - t0
            return sol
        y = np.zeros(m.n_rows)
        y[inc.rows] = sol.row_dual
        rc = m.cost - m.A.T @ y
        bad = (rc < -tol) & ~inc.in_set[m.col_piece]
        if not bad.any():
            x = np.zeros(m.n_cols)
            x[inc.cols] = sol.x
            return _Solution("optimal", x, y, time.perf_counter() - t0,
                             f"working set (warm HiGHS): {int(inc.in_set.sum())} of {inc.in_set.size} pieces, "
                             f"{rounds} rounds")
        grow = np.zeros(m.piece_cap.size, dtype=bool)
        grow[m.col_piece[bad]] = True
        if int(grow.sum()) > int(inc.in_set.sum()):
            # the priced-in pieces outnumber the set: a basis of the small set is a poor start (4 000² megaregion,
            # 8 800 -> 55 000 pieces: warm 5.6-9 s against 0.65 s for a fresh dual simplex of the larger set)
            inc = _HighsIncremental(m, inc.in_set | grow, method="simplex", time_limit=time_limit)
            continue
        inc.add(grow)
        inc.h.setOptionValue("solver", "simplex")
    return _whole_after(m, time_limit, t0, "gave up after 30 rounds, whole model solved")


def _merged_infeasible(m: AllocationModel, time_limit: float, t0: float) -> _Solution | None:
    """The infeasible outcome when the merged model of :func:`_aggregate` is infeasible.

    The merged model has the same feasibility as ``m`` and a few thousand columns. ``None`` when it is feasible or
    cannot be formed.
    """
    agg = _aggregate(m)
    if agg is None:
        return None
    probe = _solve_highs_direct(agg, method="simplex", time_limit=time_limit)
    if probe.status != "infeasible":
        return None
    probe.seconds = time.perf_counter() - t0
    probe.detail += f"; working set: merged model of {agg.n_cols} columns infeasible"
    return probe


def _whole_after(m: AllocationModel, time_limit: float, t0: float, why: str) -> _Solution:
    """The whole model solved by the HiGHS simplex when the working set cannot settle it (``why`` in the detail)."""
    whole = _solve_highs_direct(m, method="simplex", time_limit=time_limit)
    whole.seconds = time.perf_counter() - t0
    whole.detail += f"; working set: {why}"
    return whole


def _solve_model(m: AllocationModel, scenario: Scenario, solver: str) -> _Solution:
    mode = scenario.config.allocation.working_set
    if mode == "always" or (mode == "auto" and m.n_cols >= WORKING_SET_MIN_VARIABLES):
        return _solve_working_set(m, scenario, solver)
    return _solve(m, scenario, solver)
