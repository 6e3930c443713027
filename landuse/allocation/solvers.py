"""Solving an :class:`~landuse.allocation.model.AllocationModel` whole: HiGHS straight from the matrix, or PuLP.

* ``cbc``: the matrix is handed to PuLP as an ``LpProblem`` (variables and constraints built from lists, not
  ``lpSum``; :func:`build_pulp_problem` returns it for planners who want to inspect or extend it) and solved by
  CBC;
* ``highs`` (default): the matrix goes straight to ``highspy`` (``allocation.highs_interface: direct``, the
  default, :func:`_solve_highs_direct`) or through PuLP's HiGHS interface (``pulp``), with
  ``allocation.highs_method`` (``auto`` by default: the dual simplex, except the interior point with crossover
  for a cluster-wide plan of :data:`IPM_MIN_VARIABLES` variables or more, see ``docs/allocation.md``).

HiGHS's banner is silenced at the file-descriptor level (:func:`_quiet_stdout`). Every path returns a
:class:`_Solution` (status, values, row duals).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from landuse.allocation.model import AllocationModel
from landuse.allocation.pieces import _TOL
from landuse.core.config import Scenario
from landuse.core.errors import ConfigError, SolverError


@dataclass
class _Solution:
    status: str  # "optimal" | "infeasible" | other text
    x: np.ndarray | None
    row_dual: np.ndarray | None
    seconds: float
    detail: str = ""


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level writes to stdout (the HiGHS banner) while the body runs."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


def _new_highs(method: str, time_limit: float) -> Any:
    """A silent HiGHS instance set to ``method`` (``ipm`` with crossover) and ``time_limit``."""
    import highspy

    with _quiet_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", method)
    h.setOptionValue("time_limit", float(time_limit))
    if method == "ipm":
        h.setOptionValue("run_crossover", "on")
    return h


def _highs_solution(h: Any, t0: float) -> _Solution:
    """The outcome of ``h.run()``: optimal (values and row duals), infeasible, or another status."""
    import highspy

    st = h.getModelStatus()
    text = h.modelStatusToString(st)
    secs = time.perf_counter() - t0
    if st == highspy.HighsModelStatus.kOptimal:
        sol = h.getSolution()
        return _Solution("optimal", np.asarray(sol.col_value), np.asarray(sol.row_dual), secs, text)
    if st in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return _Solution("infeasible", None, None, secs, text)
    if st == highspy.HighsModelStatus.kModelEmpty:
        # no column (a period where no zone can gain land, e.g. every city shrinks): HiGHS 1.16 solves nothing and
        # says "Empty"; the empty plan is optimal when every row admits an activity of 0, else infeasible
        lp = h.getLp()
        lo, hi = np.asarray(lp.row_lower_, dtype=float), np.asarray(lp.row_upper_, dtype=float)
        tol = 1e-7
        if np.all(lo <= tol) and np.all(hi >= -tol):
            return _Solution("optimal", np.zeros(lp.num_col_), np.zeros(lp.num_row_), secs, "Optimal (empty model)")
        return _Solution("infeasible", None, None, secs, text)
    return _Solution(text.lower(), None, None, secs, text)


def _solve_highs_direct(m: AllocationModel, *, method: str, time_limit: float) -> _Solution:
    import highspy

    t0 = time.perf_counter()
    h = _new_highs(method, time_limit)
    inf = highspy.kHighsInf
    A = m.A.tocsc()
    lp = highspy.HighsLp()
    lp.num_col_ = m.n_cols
    lp.num_row_ = m.n_rows
    lp.col_cost_ = m.cost
    lp.col_lower_ = np.zeros(m.n_cols)
    lp.col_upper_ = m.col_ub
    lp.row_lower_ = np.where(np.isinf(m.row_lo), -inf, m.row_lo)
    lp.row_upper_ = np.where(np.isinf(m.row_hi), inf, m.row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.a_matrix_.num_col_ = m.n_cols
    lp.a_matrix_.num_row_ = m.n_rows
    h.passModel(lp)
    h.run()
    return _highs_solution(h, t0)

def build_pulp_problem(m: AllocationModel) -> tuple[Any, list[Any], list[Any]]:
    """The LP as a PuLP ``LpProblem`` (variables ``x<col>``, constraints ``r<row>``).

    Returns ``(problem, variables, constraints)``; ``constraints[i]`` is row ``i`` of
    ``m.A`` (a ranged row becomes two constraints, the second appended at the end).
    Expressions are built from lists, not ``lpSum``, which is about 40 % faster.
    """
    import pulp

    prob = pulp.LpProblem(f"landuse_allocation_{m.period}", pulp.LpMinimize)
    xs = [pulp.LpVariable(f"x{j}", 0.0, float(ub)) for j, ub in enumerate(m.col_ub)]
    prob.setObjective(pulp.LpAffineExpression(list(zip(xs, m.cost.tolist(), strict=True))))
    A = m.A
    indptr, indices, data = A.indptr, A.indices.tolist(), A.data.tolist()
    cons: list[Any] = []
    extra: list[Any] = []
    for i in range(m.n_rows):
        a, b = indptr[i], indptr[i + 1]
        expr = pulp.LpAffineExpression([(xs[j], v) for j, v in zip(indices[a:b], data[a:b], strict=True)])
        lo, hi = m.row_lo[i], m.row_hi[i]
        if lo == hi:
            c = pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}", float(lo))
        elif np.isinf(lo):
            c = pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{i}", float(hi))
        else:
            c = pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}", float(lo))
            if not np.isinf(hi):
                extra.append(pulp.LpConstraint(pulp.LpAffineExpression(expr), pulp.LpConstraintLE,
                                               f"r{i}_hi", float(hi)))
        prob.addConstraint(c, f"r{i}")
        cons.append(c)
    for c in extra:
        prob.addConstraint(c, c.name)
    return prob, xs, cons + extra


def _solve_pulp(m: AllocationModel, *, solver: str, time_limit: float, method: str) -> _Solution:
    import pulp

    t0 = time.perf_counter()
    prob, xs, cons = build_pulp_problem(m)
    t_build = time.perf_counter() - t0
    if solver == "cbc":
        s = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)
    else:
        if not pulp.HiGHS().available():
            raise SolverError("allocation.solver 'highs' through PuLP needs the highspy package: pip install highspy")
        s = pulp.HiGHS(msg=False, timeLimit=time_limit, solver=method)
    try:
        with _quiet_stdout():
            prob.solve(s)
    except pulp.PulpSolverError as exc:
        raise SolverError(f"the {solver} solver failed: {exc}; try allocation.solver: "
                          f"{'highs' if solver == 'cbc' else 'cbc'}") from exc
    secs = time.perf_counter() - t0
    status = pulp.LpStatus[prob.status]
    if prob.status == pulp.LpStatusOptimal:
        x = np.array([v.varValue or 0.0 for v in xs])
        y = np.array([c.pi if c.pi is not None else 0.0 for c in cons[: m.n_rows]], dtype=np.float64)
        return _Solution("optimal", x, y, secs, f"pulp build {t_build:.2f}s")
    if prob.status == pulp.LpStatusInfeasible:
        return _Solution("infeasible", None, None, secs, status)
    return _Solution(status.lower(), None, None, secs, status)


IPM_MIN_VARIABLES = 150_000
"""``allocation.highs_method: auto`` uses the interior point (then crossover) from this many variables on."""


def _highs_method(option: str, n_cols: int, coordination: str) -> str:
    """The HiGHS method for a model of ``n_cols`` variables.

    ``auto`` is the dual simplex, except for a large cluster-wide plan: there the interior point with crossover
    (measured on the 100 000-zone benchmark's first working set, 262 000 variables: 5.8 s against 9.2 s for
    the simplex). A city-by-city plan's rows are local and the simplex wins by far (2.4 s against 40 s).
    """
    if option != "auto":
        return option
    return "ipm" if coordination == "cluster" and n_cols >= IPM_MIN_VARIABLES else "simplex"


def _solve(m: AllocationModel, scenario: Scenario, solver: str) -> _Solution:
    """Solve the whole model with the chosen solver."""
    acfg = scenario.config.allocation
    if solver not in ("cbc", "highs"):
        raise ConfigError(f"allocation.solver must be 'cbc' or 'highs', got {solver!r}")
    method = _highs_method(acfg.highs_method, m.n_cols, m.coordination)
    if m.n_cols == 0:
        feasible = bool(np.all(m.row_lo <= _TOL) and np.all(m.row_hi >= -_TOL))
        return _Solution("optimal" if feasible else "infeasible", np.zeros(0),
                         np.zeros(m.n_rows), 0.0, "empty model")
    if solver == "highs" and acfg.highs_interface == "direct":
        return _solve_highs_direct(m, method=method, time_limit=acfg.time_limit_s)
    return _solve_pulp(m, solver=solver, time_limit=acfg.time_limit_s, method=method)
