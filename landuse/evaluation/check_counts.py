"""What the policy checks count: the maps checked, the scenario's layers they read, and each period's cell counts.

:func:`landuse.evaluation.checks.policy_checks` decides every check from counts of cells; this module makes them. The
maps are validated once (:func:`_checked_maps`), the layers every period reads are gathered once (:class:`_Inputs`),
and each period is one pass over the rows, strip by strip (:func:`_tally_period`): the temporaries are those of one
strip, whatever the size of the maps, and the counts are the same for any strip height.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.classes import ClassScheme
from landuse.core.config import Scenario
from landuse.core.errors import LanduseError
from landuse.core.landscape import cell_area_ha, cell_sizes
from landuse.core.store import store_empty, store_zeros
from landuse.core.strips import row_strips
from landuse.surfaces.constraints import convertible, land_area_mask, open_space_mask, protected_open_space
from landuse.surfaces.suitability import distance_to

_LISTED = 5  # changed cells named in a hard-mask row's detail

ArrayLike = np.ndarray | xr.DataArray


def _values(a: ArrayLike) -> np.ndarray:
    return np.asarray(a.values if isinstance(a, xr.DataArray) else a)


def _hard_masks(ds: xr.Dataset, scenario: Scenario) -> list[tuple[str, np.ndarray, bool, bool, str]]:
    """(name, layer, outside, enforced, description) of each hard-mask layer present.

    The mask is the layer (``outside``: its complement) inside the study area; :func:`_tally_period` forms it
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
    4 bytes, else int64)."""
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


def _probability_by_period(probability: Mapping[Any, Any] | None) -> dict[int, Any]:
    """``{end year: {type: p} or p}``, the rasters read one at a time by :func:`_period_rasters`."""
    return {int(y): v for y, v in (probability or {}).items()}


def _period_rasters(v: Any) -> Iterator[np.ndarray]:
    """The conversion probability rasters of one period, one at a time (a lazy mapping builds each on access)."""
    for a in (v.values() if isinstance(v, Mapping) else [v]):
        yield _values(a)


def _checked_maps(scenario: Scenario, base: np.ndarray, study: np.ndarray, strips: list[slice],
                  landuse_by_year: Mapping[int, ArrayLike]) -> dict[int, np.ndarray]:
    """Land use per year, the start year (``base``) first; a map of another shape, or with nodata inside the study
    area, is refused (:class:`LanduseError` naming the first such cell)."""
    classes = scenario.classes
    start_year = scenario.periods[0]
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
    return maps


@dataclass
class _Inputs:
    """What every period's checks read: the scenario, its layers and the allocation table (gathered once)."""

    scenario: Scenario
    landscape: xr.Dataset
    classes: ClassScheme
    allocation: pd.DataFrame | None
    shape: tuple[int, ...]  # of the maps
    study: np.ndarray
    strips: list[slice]
    raw_cities: np.ndarray | None
    city_ids: list[int]
    n_city: int
    cell_ha: float
    names: dict[int, str]
    ends: list[int]
    masks: list[tuple[str, np.ndarray, bool, bool, str]]
    include_water: bool
    protected: np.ndarray | None
    dist_station: np.ndarray | None
    gb_soft: np.ndarray | None
    ugb_soft: np.ndarray | None


def _city_ids(raw_cities: np.ndarray | None, study: np.ndarray, strips: list[slice]) -> list[int]:
    """Ids of the cities with a cell inside the study area, in increasing order."""
    seen = np.zeros(1, dtype=np.int64)
    for sl in strips if raw_cities is not None else []:
        counts = np.bincount(_city_strip(raw_cities[sl], study[sl]).reshape(-1))
        if counts.size > seen.size:
            seen = np.pad(seen, (0, counts.size - seen.size))
        seen[:counts.size] += counts
    return [int(i) for i in np.flatnonzero(seen) if i > 0]


def _inputs(scenario: Scenario, landscape: xr.Dataset, base: np.ndarray, study: np.ndarray, strips: list[slice],
            allocation: pd.DataFrame | None) -> _Inputs:
    """Gather the layers and amounts every period's checks read (distances to stations computed once)."""
    classes = scenario.classes
    pol = scenario.config.policy
    cell_ha = cell_area_ha(landscape)
    raw_cities = np.asarray(landscape["cities"].values) if "cities" in landscape else None
    city_ids = _city_ids(raw_cities, study, strips)
    n_city = max(city_ids, default=0) + 1
    names = {c.code: c.name for c in classes}
    ends = [b for _, b in scenario.period_pairs]
    masks = _hard_masks(landscape, scenario)
    qc = pol.open_space_quota
    include_water = bool(qc.include_water) if qc is not None else False
    protected = protected_open_space(landscape, scenario)
    dist_station = None
    if pol.tod is not None and "stations" in landscape:
        dist_station = distance_to(np.asarray(landscape["stations"].values, dtype=bool),
                                   cell=cell_sizes(landscape), out=store_empty(base.shape, np.float32))
    gb_soft = np.asarray(landscape["greenbelt"].values, dtype=bool) if (
        pol.greenbelt.mode == "soft" and "greenbelt" in landscape) else None
    ugb_soft = np.asarray(landscape["growth_boundary"].values, dtype=bool) if (
        pol.growth_boundary.mode == "soft" and "growth_boundary" in landscape) else None
    return _Inputs(scenario=scenario, landscape=landscape, classes=classes, allocation=allocation,
                   shape=base.shape, study=study,
                   strips=strips, raw_cities=raw_cities, city_ids=city_ids, n_city=n_city, cell_ha=cell_ha,
                   names=names, ends=ends, masks=masks, include_water=include_water, protected=protected,
                   dist_station=dist_station, gb_soft=gb_soft, ugb_soft=ugb_soft)


@dataclass
class _Period:
    """One period of the checks, from the map of ``a`` to the map of ``b``, and its counts once tallied."""

    a: int
    b: int
    plan_periods: list[int]  # the scenario periods the map's period spans (the period itself when none)
    spans: str  # the detail's note when it spans more than one
    plan_amounts: bool  # the plan's amounts by source and band are checked (one period of a plan in whole cells)
    transfers: bool  # the export limits of policy.transfers are checked
    city_ids: list[int]
    tally: _Tally | None = None

    @property
    def k(self) -> int:
        """Scenario periods the map's period spans."""
        return len(self.plan_periods)

    def per_city(self, key: str) -> dict[str, int]:
        """``{"cluster": n, "city <id>": n, ...}`` of a per-city count."""
        return self.tally.per_city(key, self.city_ids)


def _period(inputs: _Inputs, a: int, b: int) -> _Period:
    """The period from ``a`` to ``b`` (not yet tallied)."""
    pol = inputs.scenario.config.policy
    tr = pol.transfers
    dem = inputs.scenario.config.demand
    allocation = inputs.allocation
    plan_periods = [e for e in inputs.ends if a < e <= b] or [b]  # scenario period ends in (a, b]
    k = len(plan_periods)
    spans = "" if k == 1 else (f" (map spans {k} periods {a}-{b}: checked against {k} x the per-period limit, "
                               "a necessary condition only)")
    plan_amounts = k == 1 and allocation is not None and "from_farmland_cells" in allocation
    transfers = (tr is not None and tr.max_export_share < 1 and dem.by_city and pol.coordination == "cluster"
                 and k == 1)
    return _Period(a=a, b=b, plan_periods=plan_periods, spans=spans, plan_amounts=plan_amounts,
                   transfers=transfers, city_ids=inputs.city_ids)


def _converted_somewhere(inputs: _Inputs, rasters: Any) -> np.ndarray:
    """Cells some Monte Carlo run converted to some type in the period (a raster of the run's store)."""
    out = store_zeros(inputs.shape, bool)
    for p in _period_rasters(rasters):
        for sl in inputs.strips:
            out[sl] |= p[sl] > 0  # NaN (outside) compares False, as 0 would
    return out


def _tally_period(inputs: _Inputs, period: _Period, before_all: np.ndarray, after_all: np.ndarray,
                  converted_somewhere: np.ndarray | None) -> _Tally:
    """The period's counts, strip by strip: what every check of :func:`~landuse.evaluation.checks.policy_checks`
    reads."""
    scenario, classes, landscape = inputs.scenario, inputs.classes, inputs.landscape
    pol = scenario.config.policy
    fc, qc, jh = pol.farmland_loss_cap, pol.open_space_quota, pol.jobs_housing
    include_water, city_ids = inputs.include_water, inputs.city_ids
    tally = _Tally(inputs.n_city)
    for sl in inputs.strips:
        before, after, st = before_all[sl], after_all[sl], inputs.study[sl]
        cities = _city_strip(None if inputs.raw_cities is None else inputs.raw_cities[sl], st)
        restored = classes.is_role(before, "urban") & ~classes.is_role(after, "urban")
        for name, layer, outside, _, _ in inputs.masks:
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
            prot = None if inputs.protected is None else inputs.protected[sl]
            tally.add_city("land", land, cities)
            tally.add_city("space", open_space_mask(after, classes, include_water=include_water,
                                                    protected=prot) & land, cities)
            tally.add_city("space_start", open_space_mask(before, classes, include_water=include_water,
                                                          protected=prot) & land, cities)
        new_res = ~classes.is_role(before, "residential") & classes.is_role(after, "residential") & st
        near = None if inputs.dist_station is None else inputs.dist_station[sl] <= pol.tod.radius_m
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
        if period.plan_amounts:
            tally.add("plan:farmland", new_urban & classes.is_role(before, "farmland") & st)
            tally.add("plan:open_space", new_urban & classes.is_role(before, "open_space") & st)
            if inputs.gb_soft is not None:
                tally.add("plan:soft_greenbelt", new_urban & inputs.gb_soft[sl] & st)
            if inputs.ugb_soft is not None:
                tally.add("plan:outside_soft_boundary", new_urban & ~inputs.ugb_soft[sl] & st)
            if near is not None:
                tally.add("plan:residential_outside_tod_radius", new_res & ~near & st)
        if period.transfers:
            for t in scenario.urban_types:
                tally.add_city(f"new:{t}", ~classes.is_role(before, t) & classes.is_role(after, t) & st, cities)
        if pol.city_growth_limits:
            tally.add_city("new_urban", new_urban, cities)
    return tally
