"""Policy checks computed from the rasters themselves: one row per check, period and unit.

:func:`policy_checks` is the one place where a run's (or any map's) compliance is decided;
the report, ``landuse run`` and ``landuse evaluate`` all read its table. Every *achieved*
value comes from the land-use maps (and the probability rasters), never from the plan;
*planned* comes from the allocation table when one is given, so a reader sees where the
map departs from the plan.

Columns of the table (:data:`CHECK_COLUMNS`):

``check``     policy name (see below)
``period``    end year of the period (int); ``start-end`` spans are in ``detail``
``unit``      ``"cluster"`` or ``"city <id>"``, or ``"residential"`` ... for ``demand_met``
``limit``     the policy's bound, in ``units``
``planned``   what the allocation planned, in ``units`` (NaN without an allocation table)
``achieved``  what the maps hold, in ``units``
``margin``    signed distance to the bound, ``>= 0`` when the check passes
``units``     ``ha``, ``cells``, ``%`` (shares; margins in percentage points) or ``ratio``
``passed``    True / False; None when the check is not enforced or not applicable
``detail``    a sentence for the reader (hectares, cells converted, why not enforced)

Checks (each period ``p`` goes from the map at its start to the map at its end):

* ``red_line``, ``permanent_farmland``, ``protected_open_space``, ``greenbelt`` (hard mode),
  ``growth_boundary`` (hard mode; the mask is the land *outside* the boundary): cells of
  the mask, inside the study area, whose class changed in ``p`` (limit 0). With
  probability rasters, ``<mask>_probability``: mask cells where any type's conversion
  probability of ``p`` is above 0 (limit 0) -- every Monte Carlo run respected the mask.
  A layer present while its policy switch is off gives a row that is not enforced.
* ``farmland_loss_cap``: farmland-role cells at the start of ``p`` that are urban at its
  end, in ha; ``per: period`` against ``hectares`` in each period, ``per: horizon`` the
  cumulative loss up to the end of ``p`` against ``hectares``.
* ``open_space_quota``: protected open space (:func:`landuse.surfaces.constraints.open_space_mask`,
  with the ``protected_open_space`` layer) as a share of land area
  (:func:`landuse.surfaces.constraints.land_area_mask`) on the map at the end of ``p``, per city or
  for the cluster; margin in percentage points.
* ``tod_share``: new residential cells (not residential at the start of ``p``, residential
  at its end) within ``policy.tod.radius_m`` of a station, as a share of all new
  residential cells; per cluster (``coordination: cluster``) or city (``city``). A city
  with no developable land within the radius at the start of ``p`` is not enforced (as in
  the LP).
* ``jobs_housing_min`` / ``jobs_housing_max``: (new industrial + new commercial) / new
  residential per city; the minimum only when ``policy.jobs_housing.min > 0``.
* ``city_growth_limit``: new urban ha (urban at the end of ``p``, not at its start) per
  limited city.
* ``demand_met``: per period and urban type, from the growth engine's shortfall table:
  passes when no cell is short (``margin = -shortfall`` cells).

A "period" of a map spanning ``k`` scenario periods (``landuse evaluate`` on a later
year's map) compares per-period limits (farmland cap ``per: period``, city growth
limits) with ``k`` times the limit, a necessary condition only; ``detail`` says so.

The cells each check reads are counted in :mod:`landuse.evaluation.check_counts` (one pass per period, strip by
strip); here each family of checks turns the counts into its rows (one function per family, in table order).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario
from landuse.evaluation.check_counts import (
    _LISTED,
    ArrayLike,
    _checked_maps,
    _converted_somewhere,
    _Inputs,
    _inputs,
    _Period,
    _period,
    _probability_by_period,
    _strips,
    _tally_period,
    _values,
)

CHECK_COLUMNS: tuple[str, ...] = (
    "check", "period", "unit", "limit", "planned", "achieved", "margin", "units", "passed", "detail",
)
"""Columns of the table :func:`policy_checks` returns."""

HARD_MASKS: tuple[str, ...] = ("red_line", "permanent_farmland", "protected_open_space", "greenbelt",
                               "growth_boundary")
"""Hard-mask checks, in table order."""

_TOL = 1e-9


def _row(check: str, period: int, unit: str, *, limit: float, planned: float, achieved: float, margin: float,
         units: str, passed: bool | None, detail: str) -> dict[str, Any]:
    return {"check": check, "period": int(period), "unit": unit, "limit": float(limit), "planned": float(planned),
            "achieved": float(achieved), "margin": float(margin), "units": units, "passed": passed,
            "detail": detail}


def _plan(allocation: pd.DataFrame | None, periods: list[int], what: str, cell_ha: float, *,
          types: tuple[str, ...] | None = None, city: int | None = None) -> float:
    """Planned hectares of ``what`` (``hectares``, ``from_farmland`` ...) over ``periods``; NaN without a plan.

    Whole cells (``<what>_cells``, or ``cells`` for ``hectares``) are used when the table has them.
    """
    if allocation is None or len(allocation) == 0 or "period" not in allocation:
        return math.nan
    cells_col = "cells" if what == "hectares" else f"{what}_cells"
    ha_col = "hectares" if what == "hectares" else f"{what}_ha"
    sel = allocation["period"].isin(periods)
    if types is not None and "type" in allocation:
        sel &= allocation["type"].isin(types)
    if city is not None:
        if "city" not in allocation:
            return math.nan
        sel &= allocation["city"] == city
    if cells_col in allocation:
        return float(allocation.loc[sel, cells_col].sum()) * cell_ha
    if ha_col in allocation:
        return float(allocation.loc[sel, ha_col].sum())
    return math.nan


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return math.nan if num == 0 else math.inf


def _changed_cells(first: list[tuple[int, int, int, int]], n: int, names: dict[int, str]) -> str:
    items = [f"row {r} col {c} ({names.get(b, b)} -> {names.get(a, a)})" for r, c, b, a in first[:_LISTED]]
    more = f" and {n - _LISTED} more" if n > _LISTED else ""
    return ", ".join(items) + more




class _Horizon:
    """Farmland lost since the start year (cells) and planned to be lost (ha): the ``per: horizon`` cap."""

    def __init__(self) -> None:
        self.lost_cells = 0
        self.planned = 0.0


def _hard_mask_rows(inputs: _Inputs, period: _Period, with_probability: bool) -> list[dict[str, Any]]:
    """``red_line``, ``permanent_farmland``, ... (and ``<mask>_probability`` with probability rasters): cells of a
    hard mask whose class changed (or that some Monte Carlo run converted), limit 0."""
    tally, b, rows = period.tally, period.b, []
    for name, _, _, enforced, what in inputs.masks:
        n = tally.total.get(f"changed:{name}", 0)
        detail = (f"{tally.total.get(f'mask:{name}', 0):,} cells of the {what}; "
                  + ("none changed class" if n == 0 else f"{n:,} changed class: "
                     + _changed_cells(tally.first.get(name, []), n, inputs.names)))
        rows.append(_row(name, b, "cluster", limit=0, planned=math.nan, achieved=n, margin=-n, units="cells",
                         passed=(n == 0) if enforced else None,
                         detail=detail if enforced else detail + " (policy off: not enforced)"))
        if with_probability:
            n = tally.total.get(f"prob:{name}", 0)
            detail = (f"conversion probability is 0 on every cell of the {what}" if n == 0 else
                      f"{n:,} cells of the {what} converted in some Monte Carlo run")
            rows.append(_row(f"{name}_probability", b, "cluster", limit=0, planned=math.nan, achieved=n,
                             margin=-n, units="cells", passed=(n == 0) if enforced else None,
                             detail=detail if enforced else detail + " (policy off: not enforced)"))
    return rows


def _farmland_cap_rows(inputs: _Inputs, period: _Period, horizon: _Horizon) -> list[dict[str, Any]]:
    """``farmland_loss_cap``: farmland that became urban in the period (``per: period``) or since the start year
    (``per: horizon``, ``horizon`` carried from period to period) against the cap."""
    fc = inputs.scenario.config.policy.farmland_loss_cap
    if fc is None:
        return []
    a, b, k, cell_ha = period.a, period.b, period.k, inputs.cell_ha
    start_year = inputs.scenario.periods[0]
    lost = period.tally.total.get("farmland_lost", 0)
    planned = _plan(inputs.allocation, period.plan_periods, "from_farmland", cell_ha)
    horizon.lost_cells += lost
    horizon.planned += planned
    if fc.per == "period":
        limit, achieved, planned_v = fc.hectares * k, lost * cell_ha, planned
        detail = f"{achieved:,.1f} ha of farmland became urban in {a}-{b}; cap {fc.hectares:,.1f} ha per period"
    else:
        limit, achieved, planned_v = fc.hectares, horizon.lost_cells * cell_ha, horizon.planned
        detail = (f"{achieved:,.1f} ha of farmland became urban {start_year}-{b} ({lost * cell_ha:,.1f} ha "
                  f"in {a}-{b}); cap {fc.hectares:,.1f} ha over the horizon")
    margin = limit - achieved
    return [_row("farmland_loss_cap", b, "cluster", limit=limit, planned=planned_v, achieved=achieved,
                 margin=margin, units="ha", passed=margin >= -_TOL * max(limit, 1.0), detail=detail + period.spans)]


def _quota_rows(inputs: _Inputs, period: _Period) -> list[dict[str, Any]]:
    """``open_space_quota``: protected open space as a share of land area at the end of the period, per city or for
    the cluster (margin in percentage points)."""
    qc = inputs.scenario.config.policy.open_space_quota
    if qc is None:
        return []
    b, cell_ha, city_ids, rows = period.b, inputs.cell_ha, inputs.city_ids, []
    land_n, space_n, start_n = period.per_city("land"), period.per_city("space"), period.per_city("space_start")
    units = ["cluster"] if qc.unit == "cluster" or not city_ids else [f"city {i}" for i in city_ids]
    for u in units:
        city = None if u == "cluster" else int(u.split()[1])
        share = 100.0 * _ratio(space_n[u], land_n[u]) if land_n[u] else math.nan
        lost_plan = _plan(inputs.allocation, period.plan_periods, "from_open_space", cell_ha, city=city)
        planned = (100.0 * (start_n[u] * cell_ha - lost_plan) / (land_n[u] * cell_ha)
                   if land_n[u] and math.isfinite(lost_plan) else math.nan)
        need = qc.share * land_n[u]
        ok = space_n[u] >= need - _TOL * max(need, 1.0)
        margin_ha = (space_n[u] - need) * cell_ha
        rows.append(_row(
            "open_space_quota", b, u, limit=100.0 * qc.share, planned=planned, achieved=share,
            margin=share - 100.0 * qc.share if land_n[u] else math.nan, units="%", passed=bool(ok),
            detail=(f"{space_n[u] * cell_ha:,.1f} ha protected open space of {land_n[u] * cell_ha:,.1f} ha "
                    f"land; {abs(margin_ha):,.1f} ha {'above' if margin_ha >= 0 else 'short of'} the quota")))
    return rows


def _tod_rows(inputs: _Inputs, period: _Period) -> list[dict[str, Any]]:
    """``tod_share``: new residential land within the station radius as a share of all new residential land, per
    cluster or city (not enforced without stations, or for a city with no developable land within the radius)."""
    pol = inputs.scenario.config.policy
    if pol.tod is None:
        return []
    tod, b, cell_ha, city_ids, rows = pol.tod, period.b, inputs.cell_ha, inputs.city_ids, []
    units = (["cluster"] if pol.coordination == "cluster" or not city_ids
             else [f"city {i}" for i in city_ids])
    if inputs.dist_station is None:
        for u in units:
            rows.append(_row("tod_share", b, u, limit=100.0 * tod.share, planned=math.nan,
                             achieved=math.nan, margin=math.nan, units="%", passed=None,
                             detail="no stations layer: not enforced"))
        return rows
    res_n, near_n, reach = period.per_city("new_res"), period.per_city("new_res_near"), period.per_city("reach")
    for u in units:
        city = None if u == "cluster" else int(u.split()[1])
        plan_res = _plan(inputs.allocation, period.plan_periods, "hectares", cell_ha, types=("residential",),
                         city=city)
        plan_near = _plan(inputs.allocation, period.plan_periods, "near_station", cell_ha, types=("residential",),
                          city=city)
        planned = 100.0 * plan_near / plan_res if plan_res > 0 else math.nan
        if u != "cluster" and reach[u] == 0:
            rows.append(_row("tod_share", b, u, limit=100.0 * tod.share, planned=planned,
                             achieved=100.0 * _ratio(near_n[u], res_n[u]) if res_n[u] else math.nan,
                             margin=math.nan, units="%", passed=None,
                             detail=f"no developable land within {tod.radius_m:g} m of a station at "
                                    f"the start of the period: not enforced"))
            continue
        if res_n[u] == 0:
            rows.append(_row("tod_share", b, u, limit=100.0 * tod.share, planned=planned,
                             achieved=math.nan, margin=math.nan, units="%", passed=True,
                             detail="no new residential land: the share holds trivially"))
            continue
        share = 100.0 * near_n[u] / res_n[u]
        need = tod.share * res_n[u]
        rows.append(_row(
            "tod_share", b, u, limit=100.0 * tod.share, planned=planned, achieved=share,
            margin=share - 100.0 * tod.share, units="%", passed=near_n[u] >= need - _TOL * max(need, 1.0),
            detail=(f"{near_n[u] * cell_ha:,.1f} of {res_n[u] * cell_ha:,.1f} ha new residential land "
                    f"within {tod.radius_m:g} m of a station")))
    return rows


def _jobs_housing_rows(inputs: _Inputs, period: _Period) -> list[dict[str, Any]]:
    """``jobs_housing_min`` (when the minimum is above 0) and ``jobs_housing_max``: (new industrial + new
    commercial) / new residential per city."""
    jh = inputs.scenario.config.policy.jobs_housing
    if jh is None or not inputs.city_ids:
        return []
    b, cell_ha, rows = period.b, inputs.cell_ha, []
    res_n, jobs_n = period.per_city("new_res"), period.per_city("new_jobs")
    for i in inputs.city_ids:
        u = f"city {i}"
        ratio = _ratio(jobs_n[u], res_n[u])
        p_res = _plan(inputs.allocation, period.plan_periods, "hectares", cell_ha, types=("residential",), city=i)
        p_jobs = _plan(inputs.allocation, period.plan_periods, "hectares", cell_ha,
                       types=("industrial", "commercial"), city=i)
        planned = _ratio(p_jobs, p_res) if math.isfinite(p_res) and math.isfinite(p_jobs) else math.nan
        detail = (f"{jobs_n[u] * cell_ha:,.1f} ha new industrial + commercial, "
                  f"{res_n[u] * cell_ha:,.1f} ha new residential")
        bounds = ((("jobs_housing_min", jh.min, +1),) if jh.min > 0 else ()) + (("jobs_housing_max", jh.max, -1),)
        for check, bound, sign in bounds:
            # the LP's linear form: sign * (jobs - bound * res) >= 0
            lhs = sign * (jobs_n[u] - bound * res_n[u])
            ok = lhs >= -_TOL * max(bound * res_n[u], 1.0)
            margin = sign * (ratio - bound) if math.isfinite(ratio) else (math.nan if math.isnan(ratio)
                                                                        else sign * math.inf)
            rows.append(_row(check, b, u, limit=bound, planned=planned, achieved=ratio, margin=margin,
                             units="ratio", passed=bool(ok),
                             detail=detail + ("" if res_n[u] or jobs_n[u] else ": holds trivially")))
    return rows


def _plan_amount_rows(inputs: _Inputs, period: _Period) -> list[dict[str, Any]]:
    """``plan_<source or band>``: no map takes more land of a source role or band than the plan converts (soft
    greenbelt, outside a soft boundary, outside the TOD radius); only where the map is one period of a plan in whole
    cells."""
    if not period.plan_amounts:
        return []
    allocation, plan_periods, cell_ha = inputs.allocation, period.plan_periods, inputs.cell_ha
    amounts = [("farmland", "from_farmland", None), ("open_space", "from_open_space", None)]
    if inputs.gb_soft is not None and "greenbelt_cells" in allocation:
        amounts.append(("soft_greenbelt", "greenbelt", None))
    if inputs.ugb_soft is not None and "outside_boundary_cells" in allocation:
        amounts.append(("outside_soft_boundary", "outside_boundary", None))
    if inputs.dist_station is not None and "near_station_cells" in allocation:
        amounts.append(("residential_outside_tod_radius", "outside_tod", ("residential",)))
    rows = []
    for label, what, types in amounts:
        achieved = period.tally.total.get(f"plan:{label}", 0) * cell_ha
        if what == "outside_tod":
            planned_v = (_plan(allocation, plan_periods, "hectares", cell_ha, types=types)
                         - _plan(allocation, plan_periods, "near_station", cell_ha, types=types))
        else:
            planned_v = _plan(allocation, plan_periods, what, cell_ha, types=types)
        if math.isnan(planned_v):
            continue
        margin = planned_v - achieved
        rows.append(_row(f"plan_{label}", period.b, "cluster", limit=planned_v, planned=planned_v,
                         achieved=achieved, margin=margin, units="ha",
                         passed=margin >= -_TOL * max(planned_v, 1.0),
                         detail=f"{achieved:,.1f} ha taken in {period.a}-{period.b}, {planned_v:,.1f} ha planned "
                                "(never more on any map)"))
    return rows


def _export_rows(inputs: _Inputs, period: _Period) -> list[dict[str, Any]]:
    """``export_limit``: per city and urban type, the demand a city keeps at home under policy.transfers."""
    if not period.transfers:
        return []
    scenario, b, cell_ha, rows = inputs.scenario, period.b, inputs.cell_ha, []
    tr, dem = scenario.config.policy.transfers, scenario.config.demand
    for t in scenario.urban_types:
        new_t = period.per_city(f"new:{t}")
        for c in sorted(dem.by_city):
            d = float(dem.by_city[c].get(t, {}).get(b, 0.0))
            need = (1.0 - tr.max_export_share) * d
            if need <= 0:
                continue
            home = new_t.get(f"city {c}", 0) * cell_ha
            rows.append(_row("export_limit", b, f"city {c} {t}", limit=need,
                             planned=_plan(inputs.allocation, period.plan_periods, "hectares", cell_ha, types=(t,),
                                           city=c),
                             achieved=home, margin=home - need, units="ha",
                             passed=home >= need - _TOL * max(need, 1.0),
                             detail=f"{home:,.1f} ha of the city's {d:,.1f} ha {t} demand placed at home; "
                                    f"at most {100 * tr.max_export_share:g} % may go elsewhere"))
    return rows


def _city_limit_rows(inputs: _Inputs, period: _Period) -> list[dict[str, Any]]:
    """``city_growth_limit``: new urban land per limited city against its limit (``k`` times it for a map spanning
    ``k`` periods)."""
    limits = inputs.scenario.config.policy.city_growth_limits
    if not limits:
        return []
    rows = []
    new_urban_n = period.per_city("new_urban")
    for i, lim in sorted(limits.items()):
        u = f"city {int(i)}"
        achieved = new_urban_n.get(u, 0) * inputs.cell_ha
        limit = float(lim) * period.k
        margin = limit - achieved
        rows.append(_row("city_growth_limit", period.b, u, limit=limit,
                         planned=_plan(inputs.allocation, period.plan_periods, "hectares", inputs.cell_ha,
                                       city=int(i)),
                         achieved=achieved, margin=margin, units="ha",
                         passed=margin >= -_TOL * max(limit, 1.0),
                         detail=f"{achieved:,.1f} ha new urban land in {period.a}-{period.b}" + period.spans))
    return rows


def _demand_met_rows(shortfall: pd.DataFrame | None, cell_ha: float) -> list[dict[str, Any]]:
    """``demand_met``: per period and urban type, from the growth engine's shortfall table."""
    if shortfall is None or not len(shortfall):
        return []
    rows = []
    has_range = {"converted_min", "converted_max"} <= set(shortfall.columns)
    for (period, typ), g in shortfall.groupby(["period", "type"], sort=True):
        short = int(g["shortfall"].sum())
        target, converted = int(g["target"].sum()), int(g["converted"].sum())
        detail = f"{converted:,} of {target:,} cells placed"
        if short:
            detail += f"; {short:,} cells ({short * cell_ha:,.1f} ha) in {int((g['shortfall'] != 0).sum())} zone(s) short"
        if has_range:
            detail += (f"; over the runs {int(g['converted_min'].sum()):,} to "
                       f"{int(g['converted_max'].sum()):,} cells (zone minima / maxima summed)")
        rows.append(_row("demand_met", int(period), str(typ), limit=target, planned=target, achieved=converted,
                         margin=-short, units="cells", passed=short == 0, detail=detail))
    return rows


def policy_checks(
    scenario: Scenario,
    landscape: xr.Dataset,
    landuse_by_year: Mapping[int, ArrayLike],
    *,
    start_landuse: ArrayLike | None = None,
    allocation: pd.DataFrame | None = None,
    shortfall: pd.DataFrame | None = None,
    probability: Mapping[int, Mapping[str, ArrayLike] | ArrayLike] | None = None,
    strip_rows: int | None = None,
) -> pd.DataFrame:
    """Every policy check of a run, computed from the maps: one row per check, period and unit.

    Every achieved amount is a count of cells, added strip by strip over the rows (about
    :data:`landuse.core.strips.STRIP_CELLS` cells each, or ``strip_rows`` rows): the temporaries are
    those of one strip, whatever the size of the maps, and the table is the same for any strip
    height.

    Parameters
    ----------
    scenario : Scenario
        Supplies the policies, the class scheme and the periods.
    landscape : xarray.Dataset
        The Landscape: ``study_area``, and the layers the checks use when present
        (``cities``, ``red_line``, ``permanent_farmland``, ``protected_open_space``,
        ``greenbelt``, ``growth_boundary``, ``stations``).
    landuse_by_year : mapping of int to array
        Land use at each period end (an entry for the start year is ignored). Consecutive
        years form the periods.
    start_landuse : array, optional
        Land use at the start year (default ``landscape.landuse``).
    allocation : pandas.DataFrame, optional
        The allocation table (``period, zone, city, type, hectares, cells, from_*_ha``,
        ``near_station_ha`` and optionally the ``*_cells`` columns): the ``planned`` column.
    shortfall : pandas.DataFrame, optional
        The growth engine's ``period, zone, type, target, converted, shortfall`` table:
        the ``demand_met`` rows.
    probability : mapping, optional
        Per period end year, the conversion probability rasters (``{type: p}`` or one
        raster): the ``<mask>_probability`` rows.
    strip_rows : int, optional
        Rows per strip (default: about ``STRIP_CELLS`` cells a strip).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CHECK_COLUMNS`; see the module docstring for each check.

    Raises
    ------
    LanduseError
        A map's shape differs from the Landscape's, or it has nodata inside the study area.

    Examples
    --------
    >>> from affine import Affine
    >>> from landuse.core.config import scenario_from_dict
    >>> from landuse.core.landscape import new_landscape
    >>> sc = scenario_from_dict({"name": "d", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
    ...                          "policy": {"farmland_loss_cap": {"hectares": 1.0}}})
    >>> farm, res = sc.classes.codes_with_role("farmland")[0], sc.classes.code_of("residential")
    >>> lu = np.full((2, 2), farm, dtype=np.uint8)
    >>> ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 200))
    >>> after = lu.copy(); after[0, :] = res
    >>> t = policy_checks(sc, ds, {2030: after})
    >>> t[["check", "period", "achieved", "margin", "passed"]].to_dict("records")
    [{'check': 'farmland_loss_cap', 'period': 2030, 'achieved': 2.0, 'margin': -1.0, 'passed': False}]
    """
    base = _values(landscape["landuse"] if start_landuse is None else start_landuse)
    study = np.asarray(landscape["study_area"].values, dtype=bool)
    strips = _strips(base.shape[0], base.shape[1] if base.ndim == 2 else 1, strip_rows)
    maps = _checked_maps(scenario, base, study, strips, landuse_by_year)
    inputs = _inputs(scenario, landscape, base, study, strips, allocation)
    prob = _probability_by_period(probability)
    horizon = _Horizon()
    rows: list[dict[str, Any]] = []
    for a, b in itertools.pairwise(sorted(maps)):
        period = _period(inputs, a, b)
        converted = None  # cells some run converted to some type in the period (in the raster store)
        if b in prob and inputs.masks:
            converted = _converted_somewhere(inputs, prob[b])
        period.tally = _tally_period(inputs, period, maps[a], maps[b], converted)
        rows += _hard_mask_rows(inputs, period, converted is not None)
        rows += _farmland_cap_rows(inputs, period, horizon)
        rows += _quota_rows(inputs, period)
        rows += _tod_rows(inputs, period)
        rows += _jobs_housing_rows(inputs, period)
        rows += _plan_amount_rows(inputs, period)
        rows += _export_rows(inputs, period)
        rows += _city_limit_rows(inputs, period)
    rows += _demand_met_rows(shortfall, inputs.cell_ha)
    table = pd.DataFrame(rows, columns=list(CHECK_COLUMNS))
    table["passed"] = table["passed"].astype(object)
    return table


def failed(checks: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``checks`` that failed (``passed`` is False)."""
    return checks[checks["passed"].map(lambda v: v is False or v is np.False_)]


def summary(checks: pd.DataFrame) -> dict[str, int]:
    """Counts: ``checks`` (rows), ``passed``, ``failed`` and ``not_enforced`` (``passed`` is None)."""
    p = checks["passed"]
    n_failed = len(failed(checks))
    n_none = int(p.map(lambda v: v is None or (isinstance(v, float) and math.isnan(v))).sum())
    return {"checks": len(checks), "passed": len(checks) - n_failed - n_none, "failed": n_failed,
            "not_enforced": n_none}


def _num(v: float, units: str) -> str:
    if not math.isfinite(v):
        return "-" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    digits = {"cells": 0, "ratio": 3, "%": 2}.get(units, 1)
    return f"{round(v, digits) + 0.0:,.{digits}f}"  # no "-0.0"


def describe(row: Mapping[str, Any]) -> str:
    """One line for a check: ``check period unit: achieved X vs limit Y units (margin M)``."""
    u = row["units"]
    unit_s = {"%": " %", "ratio": "", "cells": " cells", "ha": " ha"}.get(u, f" {u}")
    margin_u = " pp" if u == "%" else unit_s
    status = {True: "ok", False: "FAIL", None: "not enforced"}[row["passed"] if row["passed"] in (True, False) else None]
    return (f"{status}: {row['check']} {row['period']} {row['unit']}: achieved {_num(row['achieved'], u)}{unit_s} "
            f"vs limit {_num(row['limit'], u)}{unit_s} (margin {_num(row['margin'], u)}{margin_u}); {row['detail']}")


def failure_lines(checks: pd.DataFrame) -> list[str]:
    """One line per failing check (see :func:`describe`)."""
    return [describe(r) for r in failed(checks).to_dict("records")]


def ordered(checks: pd.DataFrame) -> pd.DataFrame:
    """Failing rows first, then passing, then not enforced; each group in table order."""
    rank = checks["passed"].map(lambda v: 0 if v is False or v is np.False_ else (1 if v in (True,) else 2))
    return checks.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank")


def records(checks: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-compatible rows (nan and inf become None via :func:`landuse.evaluation.metrics.as_jsonable`)."""
    from landuse.evaluation.metrics import as_jsonable

    out = []
    for r in checks.to_dict("records"):
        r["passed"] = None if r["passed"] is None else bool(r["passed"])
        out.append(as_jsonable(r))
    return out


_EVALUATION_LAYERS = ("landuse", "cities", "red_line", "permanent_farmland", "protected_open_space", "greenbelt",
                      "growth_boundary", "stations")


def map_year(path: str | Any, scenario: Scenario, year: int | None = None) -> int:
    """The period end year a map stands for: ``year`` if given, else a period end year in the file
    name (``landuse_2040.tif``), else the scenario's last year."""
    import re
    from pathlib import Path

    ends = scenario.periods[1:]
    if year is not None:
        if int(year) not in ends:
            from landuse.core.errors import ConfigError

            raise ConfigError(f"year {year} is not a period end year of the scenario ({', '.join(map(str, ends))})")
        return int(year)
    found = [int(y) for y in re.findall(r"(?<!\d)(\d{4})(?!\d)", Path(path).stem) if int(y) in ends]
    return found[-1] if found else scenario.periods[-1]


def evaluate_file(
    landuse_path: str | Any, config_path: str | Any, *, year: int | None = None
) -> tuple[pd.DataFrame, Any, Scenario, int]:
    """Check a land-use GeoTIFF against a scenario (what ``landuse evaluate`` runs).

    The map is the land use at the end of the period ending ``year`` (see :func:`map_year`);
    the start is the scenario's start land use, so the checks cover the span from the
    start year to ``year`` as one period. The map must share the scenario grid (CRS, cell
    size, origin, shape) and use codes of the scenario's class scheme.

    Returns
    -------
    (checks, quota, scenario, year)
        The :func:`policy_checks` table, the :func:`landuse.evaluation.metrics.quota_report` of the
        map (open space and farmland per unit, for the table printed beside the checks),
        the scenario and the year used.

    Raises
    ------
    ConfigError, GridMismatchError, UnknownClassError, LanduseError
        Bad scenario or year, misaligned map, undeclared codes, nodata inside the study area.
    """
    from landuse.core.config import load_scenario
    from landuse.evaluation.metrics import check_is_landuse_map, quota_report
    from landuse.io.rasters import check_same_grid, read_header, read_landscape

    scenario = load_scenario(config_path)
    paths = {k: v for k, v in scenario.layer_paths().items() if k in _EVALUATION_LAYERS}
    ref = read_header(paths["landuse"])
    check_same_grid(ref, read_header(landuse_path), ref_name="landuse", name="evaluated map")
    y = map_year(landuse_path, scenario, year)
    landscape = read_landscape(paths, classes=scenario.classes)
    check_is_landuse_map(landuse_path, landscape)  # a cities or probability raster is refused, not evaluated
    evaluated = np.asarray(read_landscape({"landuse": landuse_path}, classes=scenario.classes)["landuse"].values)
    checks = policy_checks(scenario, landscape, {y: evaluated})
    return checks, quota_report(landscape, evaluated, scenario), scenario, y


__all__ = ["CHECK_COLUMNS", "HARD_MASKS", "describe", "evaluate_file", "failed", "failure_lines", "map_year",
           "ordered", "policy_checks", "records", "summary"]
