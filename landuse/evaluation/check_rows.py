"""The rows of :func:`landuse.evaluation.checks.policy_checks`, family by family.

:class:`_Checks` holds what every period's checks read — the maps (checked for shape and nodata), the layers, the
policies, the plan — and the rows so far; per period it counts every amount strip by strip (:class:`_Tally`, the
temporaries of one strip only) and adds each family of checks in table order: hard masks, farmland loss cap,
open-space quota, TOD share, jobs-housing balance, the plan's amounts, export limits, city growth limits;
:func:`_demand_rows` adds the ``demand_met`` rows of the growth engine's shortfall table.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario
from landuse.core.errors import LanduseError
from landuse.core.landscape import cell_area_ha, cell_sizes
from landuse.core.store import store_empty, store_zeros
from landuse.core.strips import row_strips
from landuse.surfaces.constraints import convertible, land_area_mask, open_space_mask, protected_open_space
from landuse.surfaces.suitability import distance_to

_LISTED = 5  # changed cells named in a hard-mask row's detail
_TOL = 1e-9

ArrayLike = np.ndarray | xr.DataArray


def _values(a: ArrayLike) -> np.ndarray:
    return np.asarray(a.values if isinstance(a, xr.DataArray) else a)


def _row(check: str, period: int, unit: str, *, limit: float, planned: float, achieved: float, margin: float,
         units: str, passed: bool | None, detail: str) -> dict[str, Any]:
    return {"check": check, "period": int(period), "unit": unit, "limit": float(limit), "planned": float(planned),
            "achieved": float(achieved), "margin": float(margin), "units": units, "passed": passed,
            "detail": detail}


def _hard_masks(ds: xr.Dataset, scenario: Scenario) -> list[tuple[str, np.ndarray, bool, bool, str]]:
    """(name, layer, outside, enforced, description) of each hard-mask layer present.

    The mask is the layer (``outside``: its complement) inside the study area; :func:`policy_checks` forms it
    strip by strip.
    """
    pol = scenario.config.policy
    out = []
    switches = {"red_line": pol.red_line, "permanent_farmland": pol.permanent_farmland,
                "protected_open_space": pol.protected_open_space}
    for name, on in switches.items():
        if name in ds:
            out.append((name, np.asarray(ds[name].values, dtype=bool), False, bool(on), f"{name} layer"))
    if "greenbelt" in ds and pol.greenbelt.mode == "hard":
        out.append(("greenbelt", np.asarray(ds["greenbelt"].values, dtype=bool), False, True, "hard greenbelt"))
    if "growth_boundary" in ds and pol.growth_boundary.mode == "hard":
        out.append(("growth_boundary", np.asarray(ds["growth_boundary"].values, dtype=bool), True, True,
                    "land outside the hard growth boundary"))
    return out


def _city_strip(raw: np.ndarray | None, study: np.ndarray) -> np.ndarray:
    """City ids of a strip inside the study area, 0 elsewhere.

    In the layer's own integer type when it is at most 4 bytes, else int64.
    """
    if raw is None:
        return np.zeros(study.shape, dtype=np.intp)
    if raw.dtype.kind not in "iu" or raw.dtype.itemsize > 4:
        raw = raw.astype(np.int64)
    return np.where(study & (raw > 0), raw, 0)


def _strips(height: int, width: int, strip_rows: int | None) -> list[slice]:
    """Row slices of ``strip_rows`` rows (default about :data:`STRIP_CELLS` cells each)."""
    if strip_rows:
        return [slice(r, min(r + strip_rows, height)) for r in range(0, height, strip_rows)] or [slice(0, 0)]
    return [slice(a, b) for a, b in row_strips(height, width)] or [slice(0, 0)]


class _Tally:
    """Counts of one period, added strip by strip: totals, per-city counts, the first changed cells of a mask."""

    def __init__(self, n_city: int) -> None:
        self.total: dict[str, int] = {}
        self.city: dict[str, np.ndarray] = {}
        self.first: dict[str, list[tuple[int, int, int, int]]] = {}
        self.n_city = n_city

    def add(self, key: str, mask: np.ndarray) -> None:
        self.total[key] = self.total.get(key, 0) + int(np.count_nonzero(mask))

    def add_city(self, key: str, mask: np.ndarray, cities: np.ndarray) -> None:
        self.add(key, mask)
        counts = np.bincount(cities[mask], minlength=self.n_city)
        self.city[key] = self.city[key] + counts if key in self.city else counts

    def add_first(self, key: str, mask: np.ndarray, row0: int, before: np.ndarray, after: np.ndarray) -> None:
        """Keep the first :data:`_LISTED` cells of ``mask`` in row-major order (rows offset by ``row0``)."""
        got = self.first.setdefault(key, [])
        if len(got) >= _LISTED or not mask.any():
            return
        rr, cc = np.nonzero(mask)
        for r, c in zip(rr[:_LISTED - len(got)].tolist(), cc[:_LISTED - len(got)].tolist(), strict=True):
            got.append((r + row0, c, int(before[r, c]), int(after[r, c])))

    def per_city(self, key: str, city_ids: list[int]) -> dict[str, int]:
        counts = self.city.get(key, np.zeros(self.n_city, dtype=np.int64))
        return {"cluster": self.total.get(key, 0), **{f"city {i}": int(counts[i]) for i in city_ids}}


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


def _probability_by_period(probability: Mapping[Any, Any] | None) -> dict[int, Any]:
    """``{end year: {type: p} or p}``, the rasters read one at a time by :func:`_period_rasters`."""
    return {int(y): v for y, v in (probability or {}).items()}


def _period_rasters(v: Any) -> Iterator[np.ndarray]:
    """The conversion probability rasters of one period, one at a time (a lazy mapping builds each on access)."""
    for a in (v.values() if isinstance(v, Mapping) else [v]):
        yield _values(a)


def _checked_maps(maps_in: Mapping[int, ArrayLike], base: np.ndarray, study: np.ndarray, strips: list[slice],
                  start_year: int, nodata: int) -> dict[int, np.ndarray]:
    """The start map and each period end's map, checked: the grid's shape, no nodata inside the study area."""
    maps: dict[int, np.ndarray] = {start_year: base}
    for y, a in sorted(maps_in.items()):
        if int(y) == start_year:
            continue
        arr = _values(a)
        if arr.shape != base.shape:
            raise LanduseError(f"land use of {y} has shape {arr.shape}, the scenario's grid is {base.shape}")
        n_holes, at = 0, None
        for sl in strips:
            holes = study[sl] & (arr[sl] == nodata)
            n = int(np.count_nonzero(holes))
            if n and at is None:
                r, c = np.argwhere(holes)[0]
                at = (int(r) + sl.start, int(c))
            n_holes += n
        if n_holes:
            raise LanduseError(f"land use of {y} has {n_holes} nodata cells inside the study area "
                               f"(first at row {at[0]}, column {at[1]}); every study-area cell needs a class to be "
                               "checked")
        maps[int(y)] = arr
    return maps


def _city_ids(raw_cities: np.ndarray | None, study: np.ndarray, strips: list[slice]) -> list[int]:
    """The ids of the cities with a cell in the study area, ascending."""
    seen = np.zeros(1, dtype=np.int64)
    for sl in strips if raw_cities is not None else []:
        counts = np.bincount(_city_strip(raw_cities[sl], study[sl]).reshape(-1))
        if counts.size > seen.size:
            seen = np.pad(seen, (0, counts.size - seen.size))
        seen[:counts.size] += counts
    return [int(i) for i in np.flatnonzero(seen) if i > 0]


@dataclass
class _Period:
    """One period of the checks, from the map of ``a`` to the map of ``b``, with its counts (``tally``)."""

    a: int
    b: int
    plan_periods: list[int]  # the scenario periods the map spans
    spans: str  # a note for the per-period limits when it spans several
    plan_amounts: bool  # the map is one period of a plan in whole cells
    transfers: bool  # the export limits of demand transfers apply
    converted_somewhere: np.ndarray | None  # cells some run converted to some type (in the raster store)
    tally: _Tally | None = None

    @property
    def k(self) -> int:
        return len(self.plan_periods)


class _Checks:
    """What every period's checks read (maps, layers, policies, the plan), and the rows so far, in table order.

    Each ``*_rows`` method adds one family of checks for a period, from its :class:`_Tally` (:meth:`count`).
    """

    def __init__(self, scenario: Scenario, landscape: xr.Dataset, landuse_by_year: Mapping[int, ArrayLike], *,
                 start_landuse: ArrayLike | None, allocation: pd.DataFrame | None,
                 probability: Mapping[int, Any] | None, strip_rows: int | None) -> None:
        self.scenario, self.landscape, self.allocation = scenario, landscape, allocation
        self.classes = classes = scenario.classes
        self.pol = pol = scenario.config.policy
        self.start_year = scenario.periods[0]
        base = _values(landscape["landuse"] if start_landuse is None else start_landuse)
        self.study = np.asarray(landscape["study_area"].values, dtype=bool)
        self.strips = _strips(base.shape[0], base.shape[1] if base.ndim == 2 else 1, strip_rows)
        self.maps = _checked_maps(landuse_by_year, base, self.study, self.strips, self.start_year, classes.nodata)
        self.years = sorted(self.maps)
        self.cell_ha = cell_area_ha(landscape)
        self.raw_cities = np.asarray(landscape["cities"].values) if "cities" in landscape else None
        self.city_ids = _city_ids(self.raw_cities, self.study, self.strips)
        self.n_city = max(self.city_ids, default=0) + 1
        self.names = {c.code: c.name for c in classes}
        self.ends = [b for _, b in scenario.period_pairs]
        self.masks = _hard_masks(landscape, scenario)
        self.prob = _probability_by_period(probability)
        qc = pol.open_space_quota
        self.include_water = bool(qc.include_water) if qc is not None else False
        self.protected = protected_open_space(landscape, scenario)
        self.dist_station = None
        if pol.tod is not None and "stations" in landscape:
            self.dist_station = distance_to(np.asarray(landscape["stations"].values, dtype=bool),
                                            cell=cell_sizes(landscape), out=store_empty(base.shape, np.float32))
        self.gb_soft = np.asarray(landscape["greenbelt"].values, dtype=bool) if (
            pol.greenbelt.mode == "soft" and "greenbelt" in landscape) else None
        self.ugb_soft = np.asarray(landscape["growth_boundary"].values, dtype=bool) if (
            pol.growth_boundary.mode == "soft" and "growth_boundary" in landscape) else None
        self.lost_so_far_cells = 0
        self.planned_so_far = 0.0
        self.rows: list[dict[str, Any]] = []

    def per_city(self, per: _Period, key: str) -> dict[str, int]:
        return per.tally.per_city(key, self.city_ids)

    def period(self, a: int, b: int) -> _Period:
        """The period ``a -> b`` with its counts."""
        plan_periods = [e for e in self.ends if a < e <= b] or [b]  # scenario period ends in (a, b], else itself
        k = len(plan_periods)
        spans = "" if k == 1 else (f" (map spans {k} periods {a}-{b}: checked against {k} x the per-period limit, "
                                   "a necessary condition only)")
        allocation, tr, pol = self.allocation, self.pol.transfers, self.pol
        plan_amounts = k == 1 and allocation is not None and "from_farmland_cells" in allocation
        transfers = (tr is not None and tr.max_export_share < 1 and self.scenario.config.demand.by_city
                     and pol.coordination == "cluster" and k == 1)
        converted_somewhere = None
        if b in self.prob and self.masks:
            converted_somewhere = store_zeros(self.maps[a].shape, bool)
            for p in _period_rasters(self.prob[b]):
                for sl in self.strips:
                    converted_somewhere[sl] |= p[sl] > 0  # NaN (outside) compares False, as 0 would
        per = _Period(a, b, plan_periods, spans, plan_amounts, transfers, converted_somewhere)
        per.tally = self.count(per)
        return per

    def count(self, per: _Period) -> _Tally:
        """The period's counts, strip by strip."""
        classes, pol, study, landscape = self.classes, self.pol, self.study, self.landscape
        fc, qc, jh, include_water = pol.farmland_loss_cap, pol.open_space_quota, pol.jobs_housing, self.include_water
        tally = _Tally(self.n_city)
        for sl in self.strips:
            before, after, st = self.maps[per.a][sl], self.maps[per.b][sl], study[sl]
            cities = _city_strip(None if self.raw_cities is None else self.raw_cities[sl], st)
            restored = classes.is_role(before, "urban") & ~classes.is_role(after, "urban")
            for name, layer, outside, _, _ in self.masks:
                mask = (~layer[sl] if outside else layer[sl]) & st
                # urban land restored to a non-urban class (shrinking cities) is not a breach of a no-build layer
                changed = mask & (before != after) & ~restored
                tally.add(f"mask:{name}", mask)
                tally.add(f"changed:{name}", changed)
                tally.add_first(name, changed, sl.start, before, after)
                if per.converted_somewhere is not None:
                    tally.add(f"prob:{name}", mask & per.converted_somewhere[sl])
            urban_b = classes.is_role(before, "urban") & st
            urban_a = classes.is_role(after, "urban") & st
            new_urban = urban_a & ~urban_b
            if fc is not None:
                tally.add("farmland_lost", classes.is_role(before, "farmland") & st & urban_a)
            if qc is not None:
                land = land_area_mask(landscape.isel(y=sl), classes, include_water=include_water, landuse=after)
                prot = None if self.protected is None else self.protected[sl]
                tally.add_city("land", land, cities)
                tally.add_city("space", open_space_mask(after, classes, include_water=include_water,
                                                        protected=prot) & land, cities)
                tally.add_city("space_start", open_space_mask(before, classes, include_water=include_water,
                                                              protected=prot) & land, cities)
            new_res = ~classes.is_role(before, "residential") & classes.is_role(after, "residential") & st
            near = None if self.dist_station is None else self.dist_station[sl] <= pol.tod.radius_m
            if near is not None or (jh is not None and self.city_ids):
                tally.add_city("new_res", new_res, cities)
            if near is not None:
                tally.add_city("new_res_near", new_res & near, cities)
                tally.add_city("reach", near & convertible(landscape.isel(y=sl), self.scenario, "residential",
                                                           landuse=before), cities)
            if jh is not None and self.city_ids:
                new_jobs = np.zeros(st.shape, dtype=bool)
                for t in ("industrial", "commercial"):
                    new_jobs |= ~classes.is_role(before, t) & classes.is_role(after, t) & st
                tally.add_city("new_jobs", new_jobs, cities)
            if per.plan_amounts:
                tally.add("plan:farmland", new_urban & classes.is_role(before, "farmland") & st)
                tally.add("plan:open_space", new_urban & classes.is_role(before, "open_space") & st)
                if self.gb_soft is not None:
                    tally.add("plan:soft_greenbelt", new_urban & self.gb_soft[sl] & st)
                if self.ugb_soft is not None:
                    tally.add("plan:outside_soft_boundary", new_urban & ~self.ugb_soft[sl] & st)
                if near is not None:
                    tally.add("plan:residential_outside_tod_radius", new_res & ~near & st)
            if per.transfers:
                for t in self.scenario.urban_types:
                    tally.add_city(f"new:{t}", ~classes.is_role(before, t) & classes.is_role(after, t) & st, cities)
            if pol.city_growth_limits:
                tally.add_city("new_urban", new_urban, cities)
        return tally

    def mask_rows(self, per: _Period) -> None:
        """The hard masks: cells changed (and converted in some run), per layer."""
        b, tally = per.b, per.tally
        rows, names, masks = self.rows, self.names, self.masks
        converted_somewhere = per.converted_somewhere
        for name, _, _, enforced, what in masks:
            n = tally.total.get(f"changed:{name}", 0)
            detail = (f"{tally.total.get(f'mask:{name}', 0):,} cells of the {what}; "
                      + ("none changed class" if n == 0 else f"{n:,} changed class: "
                         + _changed_cells(tally.first.get(name, []), n, names)))
            rows.append(_row(name, b, "cluster", limit=0, planned=math.nan, achieved=n, margin=-n, units="cells",
                             passed=(n == 0) if enforced else None,
                             detail=detail if enforced else detail + " (policy off: not enforced)"))
            if converted_somewhere is not None:
                n = tally.total.get(f"prob:{name}", 0)
                detail = (f"conversion probability is 0 on every cell of the {what}" if n == 0 else
                          f"{n:,} cells of the {what} converted in some Monte Carlo run")
                rows.append(_row(f"{name}_probability", b, "cluster", limit=0, planned=math.nan, achieved=n,
                                 margin=-n, units="cells", passed=(n == 0) if enforced else None,
                                 detail=detail if enforced else detail + " (policy off: not enforced)"))

    def farmland_rows(self, per: _Period) -> None:
        """The farmland loss cap, per period or cumulated over the horizon."""
        fc = self.pol.farmland_loss_cap
        if fc is None:
            return
        a, b, k, spans, tally = per.a, per.b, per.k, per.spans, per.tally
        rows, allocation, plan_periods, cell_ha, start_year = (self.rows, self.allocation, per.plan_periods,
                                                               self.cell_ha, self.start_year)
        lost = tally.total.get("farmland_lost", 0)
        planned = _plan(allocation, plan_periods, "from_farmland", cell_ha)
        self.lost_so_far_cells += lost
        self.planned_so_far += planned
        if fc.per == "period":
            limit, achieved, planned_v = fc.hectares * k, lost * cell_ha, planned
            detail = f"{achieved:,.1f} ha of farmland became urban in {a}-{b}; cap {fc.hectares:,.1f} ha per period"
        else:
            limit, achieved, planned_v = fc.hectares, self.lost_so_far_cells * cell_ha, self.planned_so_far
            detail = (f"{achieved:,.1f} ha of farmland became urban {start_year}-{b} ({lost * cell_ha:,.1f} ha "
                      f"in {a}-{b}); cap {fc.hectares:,.1f} ha over the horizon")
        margin = limit - achieved
        rows.append(_row("farmland_loss_cap", b, "cluster", limit=limit, planned=planned_v, achieved=achieved,
                         margin=margin, units="ha", passed=margin >= -_TOL * max(limit, 1.0),
                         detail=detail + spans))

    def quota_rows(self, per: _Period) -> None:
        """The open-space quota, per city or for the cluster."""
        qc = self.pol.open_space_quota
        if qc is None:
            return
        b, rows, allocation, plan_periods, cell_ha, city_ids = (per.b, self.rows, self.allocation,
                                                                per.plan_periods, self.cell_ha, self.city_ids)
        per_city = functools.partial(self.per_city, per)
        land_n, space_n, start_n = per_city("land"), per_city("space"), per_city("space_start")
        units = ["cluster"] if qc.unit == "cluster" or not city_ids else [f"city {i}" for i in city_ids]
        for u in units:
            city = None if u == "cluster" else int(u.split()[1])
            share = 100.0 * _ratio(space_n[u], land_n[u]) if land_n[u] else math.nan
            lost_plan = _plan(allocation, plan_periods, "from_open_space", cell_ha, city=city)
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

    def tod_rows(self, per: _Period) -> None:
        """The share of new residential land near stations, per city or for the cluster."""
        pol = self.pol
        if pol.tod is None:
            return
        b, rows, allocation, plan_periods, cell_ha, city_ids = (per.b, self.rows, self.allocation,
                                                                per.plan_periods, self.cell_ha, self.city_ids)
        dist_station = self.dist_station
        per_city = functools.partial(self.per_city, per)
        tod = pol.tod
        units = (["cluster"] if pol.coordination == "cluster" or not city_ids
                 else [f"city {i}" for i in city_ids])
        if dist_station is None:
            for u in units:
                rows.append(_row("tod_share", b, u, limit=100.0 * tod.share, planned=math.nan,
                                 achieved=math.nan, margin=math.nan, units="%", passed=None,
                                 detail="no stations layer: not enforced"))
        else:
            res_n, near_n, reach = per_city("new_res"), per_city("new_res_near"), per_city("reach")
            for u in units:
                city = None if u == "cluster" else int(u.split()[1])
                plan_res = _plan(allocation, plan_periods, "hectares", cell_ha, types=("residential",), city=city)
                plan_near = _plan(allocation, plan_periods, "near_station", cell_ha, types=("residential",),
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

    def jobs_housing_rows(self, per: _Period) -> None:
        """The jobs-housing ratio of each city's new land."""
        jh, city_ids = self.pol.jobs_housing, self.city_ids
        if jh is None or not city_ids:
            return
        b, rows, allocation, plan_periods, cell_ha = per.b, self.rows, self.allocation, per.plan_periods, self.cell_ha
        per_city = functools.partial(self.per_city, per)
        res_n, jobs_n = per_city("new_res"), per_city("new_jobs")
        for i in city_ids:
            u = f"city {i}"
            ratio = _ratio(jobs_n[u], res_n[u])
            p_res = _plan(allocation, plan_periods, "hectares", cell_ha, types=("residential",), city=i)
            p_jobs = _plan(allocation, plan_periods, "hectares", cell_ha, types=("industrial", "commercial"),
                           city=i)
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

    def plan_rows(self, per: _Period) -> None:
        """No map takes more land of a source role or band than the plan converts."""
        if not per.plan_amounts:
            return
        a, b, tally = per.a, per.b, per.tally
        rows, allocation, plan_periods, cell_ha = self.rows, self.allocation, per.plan_periods, self.cell_ha
        gb_soft, ugb_soft, dist_station = self.gb_soft, self.ugb_soft, self.dist_station
        amounts = [("farmland", "from_farmland", None), ("open_space", "from_open_space", None)]
        if gb_soft is not None and "greenbelt_cells" in allocation:
            amounts.append(("soft_greenbelt", "greenbelt", None))
        if ugb_soft is not None and "outside_boundary_cells" in allocation:
            amounts.append(("outside_soft_boundary", "outside_boundary", None))
        if dist_station is not None and "near_station_cells" in allocation:
            amounts.append(("residential_outside_tod_radius", "outside_tod", ("residential",)))
        for label, what, types in amounts:
            achieved = tally.total.get(f"plan:{label}", 0) * cell_ha
            if what == "outside_tod":
                planned_v = (_plan(allocation, plan_periods, "hectares", cell_ha, types=types)
                             - _plan(allocation, plan_periods, "near_station", cell_ha, types=types))
            else:
                planned_v = _plan(allocation, plan_periods, what, cell_ha, types=types)
            if math.isnan(planned_v):
                continue
            margin = planned_v - achieved
            rows.append(_row(f"plan_{label}", b, "cluster", limit=planned_v, planned=planned_v,
                             achieved=achieved, margin=margin, units="ha",
                             passed=margin >= -_TOL * max(planned_v, 1.0),
                             detail=f"{achieved:,.1f} ha taken in {a}-{b}, {planned_v:,.1f} ha planned "
                                    "(never more on any map)"))

    def export_rows(self, per: _Period) -> None:
        """Demand transfers: each city's demand kept at home."""
        if not per.transfers:
            return
        b, rows, allocation, plan_periods, cell_ha = per.b, self.rows, self.allocation, per.plan_periods, self.cell_ha
        scenario, tr, dem = self.scenario, self.pol.transfers, self.scenario.config.demand
        per_city = functools.partial(self.per_city, per)
        for t in scenario.urban_types:
            new_t = per_city(f"new:{t}")
            for c in sorted(dem.by_city):
                d = float(dem.by_city[c].get(t, {}).get(b, 0.0))
                need = (1.0 - tr.max_export_share) * d
                if need <= 0:
                    continue
                home = new_t.get(f"city {c}", 0) * cell_ha
                rows.append(_row("export_limit", b, f"city {c} {t}", limit=need,
                                 planned=_plan(allocation, plan_periods, "hectares", cell_ha, types=(t,), city=c),
                                 achieved=home, margin=home - need, units="ha",
                                 passed=home >= need - _TOL * max(need, 1.0),
                                 detail=f"{home:,.1f} ha of the city's {d:,.1f} ha {t} demand placed at home; "
                                        f"at most {100 * tr.max_export_share:g} % may go elsewhere"))

    def city_limit_rows(self, per: _Period) -> None:
        """The new urban land of each limited city."""
        pol = self.pol
        if not pol.city_growth_limits:
            return
        a, b, k, spans = per.a, per.b, per.k, per.spans
        rows, allocation, plan_periods, cell_ha = self.rows, self.allocation, per.plan_periods, self.cell_ha
        per_city = functools.partial(self.per_city, per)
        new_urban_n = per_city("new_urban")
        for i, lim in sorted(pol.city_growth_limits.items()):
            u = f"city {int(i)}"
            achieved = new_urban_n.get(u, 0) * cell_ha
            limit = float(lim) * k
            margin = limit - achieved
            rows.append(_row("city_growth_limit", b, u, limit=limit,
                             planned=_plan(allocation, plan_periods, "hectares", cell_ha, city=int(i)),
                             achieved=achieved, margin=margin, units="ha",
                             passed=margin >= -_TOL * max(limit, 1.0),
                             detail=f"{achieved:,.1f} ha new urban land in {a}-{b}" + spans))


def _demand_rows(shortfall: pd.DataFrame | None, cell_ha: float) -> list[dict[str, Any]]:
    """The ``demand_met`` rows: per period and urban type, from the growth engine's shortfall table."""
    rows: list[dict[str, Any]] = []
    if shortfall is not None and len(shortfall):
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
