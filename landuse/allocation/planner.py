"""The allocator's entry point: :func:`allocate` solves the LP of one period into a whole-cell plan.

It builds the model (:mod:`landuse.allocation.model`), solves it whole or on a working set
(:mod:`landuse.allocation.working_set`), explains an infeasible period (:mod:`landuse.allocation.infeasible`)
and assembles the :class:`~landuse.allocation.results.Allocation` (:mod:`landuse.allocation.results`).
"""

from __future__ import annotations

import pandas as pd

from landuse.allocation.infeasible import _elastic, _explain, _least_feasible_jobs_housing_max
from landuse.allocation.merged import _aggregate
from landuse.allocation.model import _cell_area, build_model
from landuse.allocation.results import Allocation, _results
from landuse.allocation.solvers import _solve_highs_direct
from landuse.allocation.working_set import _solve_model
from landuse.core.config import Scenario
from landuse.core.errors import SolverError


def allocate(
    zone_table: pd.DataFrame,
    scenario: Scenario,
    period: int,
    *,
    solver: str | None = None,
    coordination: str | None = None,
    farmland_lost_so_far_ha: float = 0.0,
    cell_area_ha: float | None = None,
) -> Allocation:
    r"""Solve the allocation LP of one period.

    Variables ``x[p, k] >= 0`` are hectares of piece ``p`` (zone ``z(p)``, source role
    ``r(p)``, in or out of a station radius, fill tranche ``j(p)``) converted to urban type
    ``k``. The objective, minimised, is

    .. math::

        \sum_{p,k} x_{pk}\,\bigl( w_s\,d^{urban}_{z(p)} + w_c\,d^{centre}_{z(p)}
            + w_f\,[r(p)=\mathrm{farmland}] + w_o\,[r(p)=\mathrm{open\ space}]
            - w_u\,S_{z(p),k} + w_{fill}\,j(p) \bigr)

    with ``d`` mean distances in km (``dist_urban_m``, ``dist_centre_m`` / 1000; 0 when
    absent), ``S`` mean suitability and the weights ``w`` from ``allocation.weights``
    (``sprawl``, ``centre``, ``farmland``, ``open_space``, ``suitability``, ``fill``); every
    term is per hectare. Each zone's developable land of a role is split into
    ``allocation.fill_tranches`` equal tranches ``j = 0, 1, ...``; the rising fill cost makes
    the objective convex in the share of a zone that is filled, so growth spreads over
    neighbouring zones instead of filling the cheapest zones to the last hectare.

    Constraints (each present only when configured):

    * demand: ``sum_p x[p,k] = D_k`` per type (``coordination: cluster``) or
      ``sum_{p in city i} x[p,k] = D_{i,k}`` per city and type (``city``; ``demand.by_city``,
      or the cluster demand split by ``demand.split``, see :func:`~landuse.allocation.model.city_demand`);
    * capacity: ``sum_k x[p,k] <= cap_p`` (developable hectares of the piece);
    * farmland cap: ``sum_{farmland p,k} x <= H`` (``per: horizon`` subtracts
      ``farmland_lost_so_far_ha``);
    * open-space quota: per city or cluster ``O - sum_{open-space p,k} x >= share * L``
      (``O``, ``L`` from ``open_space_ha``, ``land_ha``; a unit already below the quota may
      lose no more open space, with a warning);
    * TOD: ``sum_{near p} x[p,res] >= share * sum_p x[p,res]`` for the cluster (per city
      in ``city`` mode, cities without station land skipped with a warning);
    * jobs-housing per city: ``min * R_i <= I_i + C_i <= max * R_i`` on new hectares;
    * growth limits: ``sum_{p in city i,k} x <= limit_i``.

    Parameters
    ----------
    zone_table : pandas.DataFrame
        From :func:`~landuse.allocation.zone_stats.zone_table` (or hand-built with the same columns and
        ``attrs["cell_area_ha"]``).
    scenario : Scenario
    period : int
        End year of the period; demand is read for it.
    solver : {"cbc", "highs"}, optional
        Default ``allocation.solver``.
    coordination : {"cluster", "city"}, optional
        Default ``policy.coordination``.
    farmland_lost_so_far_ha : float
        Farmland lost in earlier periods (for a ``per: horizon`` cap).
    cell_area_ha : float, optional
        Overrides ``zone_table.attrs["cell_area_ha"]``.

    Returns
    -------
    Allocation
        ``targets``, ``objective``, ``losses``, ``duals``, ``status`` ... The duals'
        ``dual`` column is the solver's d(objective)/d(bound); ``cost`` restates it as what
        tightening the policy by one planner unit (``unit``) would add to the objective.

    Raises
    ------
    InfeasibleAllocationError
        Naming each constraint the elastic re-solve had to relax, by how much, and a fix.
    SolverError
        The solver failed or hit ``allocation.time_limit_s``.
    """
    solver = solver or scenario.config.allocation.solver
    cell_ha = _cell_area(zone_table, cell_area_ha)
    m = build_model(zone_table, scenario, period, coordination=coordination,
                    farmland_lost_so_far_ha=farmland_lost_so_far_ha, cell_area_ha=cell_ha)
    sol = _solve_model(m, scenario, solver)
    if sol.status == "infeasible":
        # the elastic re-solve only explains, on the merged model (same least violation, a few thousand columns:
        # 0.2 s where the whole model took minutes at 400 000 zones); HiGHS straight from the matrix is several
        # times faster than building a PuLP model for CBC, so it explains for either solver
        em = _elastic(_aggregate(m) or m)
        esol = _solve_highs_direct(em, method="simplex", time_limit=scenario.config.allocation.time_limit_s)
        if esol.status != "optimal":
            raise SolverError(f"allocation {period} is infeasible and the elastic re-solve failed ({esol.detail})")
        err = _explain(em, esol, zone_table, scenario)
        if any(k.startswith("jobs_housing_max") for k in err.violations) and "policy.jobs_housing.max" not in err.advice:
            # a city hosting jobs and no housing has an infinite ratio: find the least maximum that works
            need = _least_feasible_jobs_housing_max(m, scenario.config.allocation.time_limit_s)
            if need is not None:
                err.advice["policy.jobs_housing.max"] = need
                err.args = (f"{err.args[0]}; a maximum of {need:.3f} makes the period feasible",)
        raise err
    if sol.status != "optimal":
        raise SolverError(f"allocation {period}: the {solver} solver stopped with status {sol.detail!r}; "
                          f"raise allocation.time_limit_s ({scenario.config.allocation.time_limit_s:g} s) or try "
                          f"allocation.solver: {'highs' if solver == 'cbc' else 'cbc'}")
    return _results(m, zone_table, sol, cell_ha, solver, scenario)
