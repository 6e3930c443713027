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
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
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

CHECK_COLUMNS: tuple[str, ...] = (
    "check", "period", "unit", "limit", "planned", "achieved", "margin", "units", "passed", "detail",
)
"""Columns of the table :func:`policy_checks` returns."""

HARD_MASKS: tuple[str, ...] = ("red_line", "permanent_farmland", "protected_open_space", "greenbelt",
                               "growth_boundary")
"""Hard-mask checks, in table order."""

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
    """City ids of a strip inside the study area, 0 elsewhere (the layer's own integer type when it is at most
    4 bytes, else int64).
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
    classes = scenario.classes
    pol = scenario.config.policy
    start_year = scenario.periods[0]
    base = _values(landscape["landuse"] if start_landuse is None else start_landuse)
    study = np.asarray(landscape["study_area"].values, dtype=bool)
    strips = _strips(base.shape[0], base.shape[1] if base.ndim == 2 else 1, strip_rows)
    maps: dict[int, np.ndarray] = {start_year: base}
    for y, a in sorted(landuse_by_year.items()):
        if int(y) == start_year:
            continue
        arr = _values(a)
        if arr.shape != base.shape:
            raise LanduseError(f"land use of {y} has shape {arr.shape}, the scenario's grid is {base.shape}")
        n_holes, at = 0, None
        for sl in strips:
            holes = study[sl] & (arr[sl] == classes.nodata)
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
    years = sorted(maps)
    cell_ha = cell_area_ha(landscape)
    raw_cities = np.asarray(landscape["cities"].values) if "cities" in landscape else None
    seen = np.zeros(1, dtype=np.int64)
    for sl in strips if raw_cities is not None else []:
        counts = np.bincount(_city_strip(raw_cities[sl], study[sl]).reshape(-1))
        if counts.size > seen.size:
            seen = np.pad(seen, (0, counts.size - seen.size))
        seen[:counts.size] += counts
    city_ids = [int(i) for i in np.flatnonzero(seen) if i > 0]
    n_city = max(city_ids, default=0) + 1
    names = {c.code: c.name for c in classes}
    ends = [b for _, b in scenario.period_pairs]
    rows: list[dict[str, Any]] = []

    def span(a: int, b: int) -> list[int]:
        """Scenario period ends in (a, b]; the period itself when it is none of them."""
        return [e for e in ends if a < e <= b] or [b]

    masks = _hard_masks(landscape, scenario)
    prob = _probability_by_period(probability)
    qc = pol.open_space_quota
    include_water = bool(qc.include_water) if qc is not None else False
    protected = protected_open_space(landscape, scenario)
    dist_station = None
    if pol.tod is not None and "stations" in landscape:
        dist_station = distance_to(np.asarray(landscape["stations"].values, dtype=bool),
                                   cell=cell_sizes(landscape), out=store_empty(base.shape, np.float32))
    fc = pol.farmland_loss_cap
    jh = pol.jobs_housing
    tr = pol.transfers
    dem = scenario.config.demand
    gb_soft = np.asarray(landscape["greenbelt"].values, dtype=bool) if (
        pol.greenbelt.mode == "soft" and "greenbelt" in landscape) else None
    ugb_soft = np.asarray(landscape["growth_boundary"].values, dtype=bool) if (
        pol.growth_boundary.mode == "soft" and "growth_boundary" in landscape) else None
    lost_so_far_cells = 0
    planned_so_far = 0.0

    for a, b in itertools.pairwise(years):
        before_all, after_all = maps[a], maps[b]
        plan_periods = span(a, b)
        k = len(plan_periods)
        spans = "" if k == 1 else (f" (map spans {k} periods {a}-{b}: checked against {k} x the per-period limit, "
                                   "a necessary condition only)")
        plan_amounts = k == 1 and allocation is not None and "from_farmland_cells" in allocation
        transfers = (tr is not None and tr.max_export_share < 1 and dem.by_city and pol.coordination == "cluster"
                     and k == 1)
        converted_somewhere = None  # cells some run converted to some type in the period (in the raster store)
        if b in prob and masks:
            converted_somewhere = store_zeros(base.shape, bool)
            for p in _period_rasters(prob[b]):
                for sl in strips:
                    converted_somewhere[sl] |= p[sl] > 0  # NaN (outside) compares False, as 0 would

        # ---------------------------------------------------------------- the period's counts, strip by strip
        tally = _Tally(n_city)
        for sl in strips:
            before, after, st = before_all[sl], after_all[sl], study[sl]
            cities = _city_strip(None if raw_cities is None else raw_cities[sl], st)
            restored = classes.is_role(before, "urban") & ~classes.is_role(after, "urban")
            for name, layer, outside, _, _ in masks:
                mask = (~layer[sl] if outside else layer[sl]) & st
                # urban land restored to a non-urban class (shrinking cities) is not a breach of a no-build layer
                changed = mask & (before != after) & ~restored
                tally.add(f"mask:{name}", mask)
                tally.add(f"changed:{name}", changed)
                tally.add_first(name, changed, sl.start, before, after)
                if converted_somewhere is not None:
                    tally.add(f"prob:{name}", mask & converted_somewhere[sl])
            urban_b = classes.is_role(before, "urban") & st
            urban_a = classes.is_role(after, "urban") & st
            new_urban = urban_a & ~urban_b
            if fc is not None:
                tally.add("farmland_lost", classes.is_role(before, "farmland") & st & urban_a)
            if qc is not None:
                land = land_area_mask(landscape.isel(y=sl), classes, include_water=include_water, landuse=after)
                prot = None if protected is None else protected[sl]
                tally.add_city("land", land, cities)
                tally.add_city("space", open_space_mask(after, classes, include_water=include_water,
                                                        protected=prot) & land, cities)
                tally.add_city("space_start", open_space_mask(before, classes, include_water=include_water,
                                                              protected=prot) & land, cities)
            new_res = ~classes.is_role(before, "residential") & classes.is_role(after, "residential") & st
            near = None if dist_station is None else dist_station[sl] <= pol.tod.radius_m
            if near is not None or (jh is not None and city_ids):
                tally.add_city("new_res", new_res, cities)
            if near is not None:
                tally.add_city("new_res_near", new_res & near, cities)
                tally.add_city("reach", near & convertible(landscape.isel(y=sl), scenario, "residential", landuse=before), cities)
            if jh is not None and city_ids:
                new_jobs = np.zeros(st.shape, dtype=bool)
                for t in ("industrial", "commercial"):
                    new_jobs |= ~classes.is_role(before, t) & classes.is_role(after, t) & st
                tally.add_city("new_jobs", new_jobs, cities)
            if plan_amounts:
                tally.add("plan:farmland", new_urban & classes.is_role(before, "farmland") & st)
                tally.add("plan:open_space", new_urban & classes.is_role(before, "open_space") & st)
                if gb_soft is not None:
                    tally.add("plan:soft_greenbelt", new_urban & gb_soft[sl] & st)
                if ugb_soft is not None:
                    tally.add("plan:outside_soft_boundary", new_urban & ~ugb_soft[sl] & st)
                if near is not None:
                    tally.add("plan:residential_outside_tod_radius", new_res & ~near & st)
            if transfers:
                for t in scenario.urban_types:
                    tally.add_city(f"new:{t}", ~classes.is_role(before, t) & classes.is_role(after, t) & st, cities)
            if pol.city_growth_limits:
                tally.add_city("new_urban", new_urban, cities)

        def per_city(key: str) -> dict[str, int]:
            return tally.per_city(key, city_ids)  # noqa: B023 (used within this period only)

        # ---------------------------------------------------------------- hard masks
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

        # ---------------------------------------------------------------- farmland loss cap
        if fc is not None:
            lost = tally.total.get("farmland_lost", 0)
            planned = _plan(allocation, plan_periods, "from_farmland", cell_ha)
            lost_so_far_cells += lost
            planned_so_far += planned
            if fc.per == "period":
                limit, achieved, planned_v = fc.hectares * k, lost * cell_ha, planned
                detail = f"{achieved:,.1f} ha of farmland became urban in {a}-{b}; cap {fc.hectares:,.1f} ha per period"
            else:
                limit, achieved, planned_v = fc.hectares, lost_so_far_cells * cell_ha, planned_so_far
                detail = (f"{achieved:,.1f} ha of farmland became urban {start_year}-{b} ({lost * cell_ha:,.1f} ha "
                          f"in {a}-{b}); cap {fc.hectares:,.1f} ha over the horizon")
            margin = limit - achieved
            rows.append(_row("farmland_loss_cap", b, "cluster", limit=limit, planned=planned_v, achieved=achieved,
                             margin=margin, units="ha", passed=margin >= -_TOL * max(limit, 1.0),
                             detail=detail + spans))

        # ---------------------------------------------------------------- open-space quota
        if qc is not None:
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

        # ---------------------------------------------------------------- TOD share
        if pol.tod is not None:
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

        # ---------------------------------------------------------------- jobs-housing balance
        if jh is not None and city_ids:
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

        # ---------------------------------------------------------------- the plan's amounts by source and band
        # no map takes more land of a source role or band than the plan converts (soft greenbelt, outside a soft
        # boundary, outside the TOD radius); only where the map is one period of a plan in whole cells
        if plan_amounts:
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

        # ---------------------------------------------------------------- transfers: demand kept at home
        if transfers:
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

        # ---------------------------------------------------------------- city growth limits
        if pol.city_growth_limits:
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

    # -------------------------------------------------------------------- demand met (shortfall)
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
    name (``landuse_2040.tif``), else the scenario's last year.
    """
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
