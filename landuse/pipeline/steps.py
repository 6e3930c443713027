"""The steps of ``landuse run``: prepare, one step per period, finish.

:func:`prepare` reads the layers, derives demand, checks the inputs together and builds the zones; it returns the
:class:`RunState` every later step reads and fills. :func:`run_period` runs one period ``(start, end)``:
suitability of the land use at ``start`` (and, when demand falls, the release of surplus land), the zone table and
the LP allocation (with the city-by-city plan for comparison), then the growth engine over the Monte Carlo runs;
the representative run's map is the land use at ``end``. :func:`finish` turns the periods into the urban
probability, the growth boundary, the tables, the policy checks and the report. Writing is
:mod:`landuse.pipeline.write`; :func:`landuse.pipeline.run.run_scenario` strings them together.

Memory: the large rasters a step keeps live in the run's raster store (:mod:`landuse.core.store`); a period's
suitability, zone table and pieces are locals of :func:`_plan_period` and are freed before the growth, the
period's peak.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario
from landuse.core.errors import LanduseError, OutputExistsError
from landuse.core.landscape import cell_area_ha, like
from landuse.core.store import store_by_strips, store_copy, store_empty, store_full, store_zeros
from landuse.core.strips import row_strips
from landuse.io.folders import check_target, recover

ProgressFn = Callable[[dict[str, Any]], None]

_PURPOSE_PERIOD_SEED = 0x5EED


def period_seed(seed: int, period_index: int) -> int:
    """Seed of one period's growth: a counter-based hash of (seed, period index), 63 bits."""
    from landuse.growth.random import stream_key

    return int(stream_key(seed, 0, period_index, 0, _PURPOSE_PERIOD_SEED)) >> 1


def prepare_output_dir(out_dir: Path, scenario_name: str, *, force: bool = False,
                       protected: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse an output folder the run may not replace (see :func:`landuse.io.folders.check_target`).

    A folder of the same scenario is replaced; another scenario's outputs or other files
    need ``force``; a folder holding an input (``protected``) is always refused. Leftovers
    of stopped runs beside the folder are cleaned up (:func:`landuse.io.folders.recover`).
    """
    check_target(out_dir, command="run", owner=scenario_name, force=force, protected=protected)
    recover(out_dir)


def _inputs_of(scenario: Scenario, layer_paths: dict[str, Any]) -> list[str]:
    return [str(p) for p in layer_paths.values()] + ([str(scenario.path)] if scenario.path else [])


def _log(progress: ProgressFn | None, **event: Any) -> None:
    if progress is not None:
        progress(event)


def _suitability_provider(ds: xr.Dataset, scenario: Scenario, timings: dict[str, float], *,
                          static: dict | None = None):
    """A function land use -> suitability DataArray, per the scenario's suitability method.

    ``static`` receives the land-use-independent driver scores, computed on the first call and reused (one float32
    raster per driver); the caller may clear it once no further call comes.
    """
    from landuse.surfaces.suitability import compute_suitability

    cfg = scenario.config.growth.suitability
    if cfg.method != "trained":
        static = {} if static is None else static
        return lambda lu: compute_suitability(ds, scenario, landuse=lu, static=static)
    from landuse.calibration.suitability_model import train_suitability

    t = time.perf_counter()
    trained = train_suitability(ds, scenario, method=cfg.model, seed=scenario.config.growth.seed, skip_scarce=True)
    timings["train_suitability"] = time.perf_counter() - t
    return lambda lu: trained.predict(ds, scenario, lu)


def unit_shortfall(shortfall: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """The growth engine's shortfall per unit, with each unit's zone, city, source role and band.

    The engine's ``zone`` column holds unit ids. Columns: ``period, zone, city, unit, role, near_station,
    greenbelt, outside_boundary, type, target, converted, shortfall, converted_min,
    converted_max`` (the last two over all Monte Carlo runs).
    """
    sf = shortfall.rename(columns={"zone": "unit"})
    info = units[["unit", "zone", "city", "role", "near_station", "greenbelt", "outside_boundary"]]
    out = sf.merge(info, on="unit", how="left")
    first = ["period", "zone", "city", "unit", "role", "near_station", "greenbelt", "outside_boundary", "type"]
    return out[first + [c for c in out.columns if c not in first]]


class PeriodProbability(Mapping[str, xr.DataArray]):
    """One period's conversion probability per urban type, kept as the ensemble's run counts.

    A mapping ``type -> float32 DataArray`` (``counts / runs``, the share of Monte Carlo runs that
    converted the cell to the type in the period) whose rasters are built when read: the run
    keeps 1 byte per cell and type (2 beyond 255 runs) instead of 4 for every period until the
    outputs are written. :attr:`counts` is the ``(type, y, x)`` count array.
    """

    def __init__(self, ds: xr.Dataset, counts: xr.DataArray, runs: int, year: int) -> None:
        self._ds = ds
        self.types = tuple(str(t) for t in counts.coords["type"].values.tolist())
        # a copy (in the run's raster store, if any): not a view keeping every period of the ensemble's counts
        self.counts = store_copy(counts.values)
        self.runs = int(runs)
        self.year = int(year)

    def __getitem__(self, typ: str) -> xr.DataArray:
        try:
            k = self.types.index(typ)
        except ValueError:
            raise KeyError(typ) from None
        p = store_empty(self.counts[k].shape, np.float32)  # in the run's raster store, if any
        p[...] = self.counts[k]
        p /= np.float32(self.runs)  # float32 division, as counts.astype(float32) / float32(runs)
        return like(self._ds, p, f"probability_{typ}_{self.year}", copy=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self.types)

    def __len__(self) -> int:
        return len(self.types)


def _not_converted(not_urban: np.ndarray, prob: PeriodProbability, types: Sequence[str]) -> None:
    """``not_urban *= clip(1 - sum of the period's probabilities of the types, 0, 1)``, strip by strip.

    The probabilities are ``counts / runs`` in float32 (:meth:`PeriodProbability.__getitem__`), added in the types'
    order: the same operations per cell as on whole rasters, in the memory of one strip.
    """
    runs = np.float32(prob.runs)
    index = [prob.types.index(t) for t in types]
    for a, b in row_strips(*not_urban.shape):
        p_any = np.zeros(not_urban[a:b].shape, dtype=np.float32)
        for k in index:
            p = prob.counts[k, a:b].astype(np.float32)
            p /= runs
            p_any += p
        not_urban[a:b] *= np.clip(1.0 - p_any, 0.0, 1.0)


class Timings(dict):
    """Seconds per stage (``timings[stage] = perf_counter() - start``), and each stage's span since the run began.

    Setting a stage's seconds right when it ends records its span: ``spans[stage] = (start, end)`` in seconds from
    ``t0``, the run's start. ``manifest.json`` keeps both (``timings_s``, ``timeline_s``), so a profile of the
    process (e.g. its memory over time) can be cut at the stages' true edges, gaps between stages included.
    """

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.spans: dict[str, tuple[float, float]] = {}

    def __setitem__(self, key: str, seconds: float) -> None:
        end = time.perf_counter() - self.t0
        self.spans[key] = (end - seconds, end)
        super().__setitem__(key, seconds)

    def record(self, manifest: dict[str, Any]) -> None:
        """Put ``timings_s`` and ``timeline_s`` into ``manifest``, rounded to milliseconds.

        ``timings_s``: seconds per stage; ``timeline_s``: ``stage -> [start, end]`` in seconds since the run began,
        in stage order.
        """
        manifest["timings_s"] = {k: round(v, 3) for k, v in self.items()}
        manifest["timeline_s"] = {k: [round(a, 3), round(b, 3)] for k, (a, b) in self.spans.items()}


class _NoComparison(Exception):
    """The city-by-city comparison is not solved for this run (switched off, or a single city)."""


def _shrink_period(ds: xr.Dataset, scenario: Scenario, people: Any, lu: np.ndarray, vacant: np.ndarray, zg: Any,
                   suit: Any, year: int, p_idx: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, bool]:
    """Before a period's growth: reoccupy vacant land, then release each shrinking city's surplus.

    Sets the period's growth demand (``demand.by_city``) to the derived growth less the vacant land reoccupied;
    returns the new land use and vacancy, one row per city and type (``landuse.allocation.shrink``), and whether any cell was
    restored to a non-urban class.
    """
    from landuse.allocation.shrink import occupied_cells, plan_release, release_cells, reoccupy, zone_shares
    from landuse.allocation.zone_stats import zone_table

    cell_ha = cell_area_ha(ds)
    seed = period_seed(scenario.config.growth.seed, p_idx)
    cities = np.asarray(ds["cities"].values, dtype=np.int64)
    ch = people.change[people.change.period == year]
    grow = {(int(r.city), r.type): round(r.hectares / cell_ha) for r in ch.itertuples() if r.hectares > 0}
    shrink = {(int(r.city), r.type): round(-r.hectares / cell_ha) for r in ch.itertuples() if r.hectares < 0}
    vacant, reused = reoccupy(lu, vacant, cities, grow, scenario, seed=seed, period_index=p_idx)
    by_city = {c: {t: dict(v) for t, v in per.items()} for c, per in scenario.config.demand.by_city.items()}
    for (c, t), n in reused.items():
        by_city[c][t][year] = max(0.0, (grow[(c, t)] - n) * cell_ha)
    scenario.config.demand.by_city = by_city
    plan = pd.DataFrame(columns=["period", "zone", "city", "type", "cells", "cost_per_ha"])
    unplaced: dict[tuple[int, str], int] = {}
    done = pd.DataFrame(columns=["period", "city", "type", "vacant_cells", "restored_cells"])
    if shrink:
        zt = zone_table(ds, scenario, landuse=lu, zones=zg, suitability=suit)
        occ = occupied_cells(zg.zones, lu, vacant, scenario, len(zt))
        plan, unplaced = plan_release(zt, scenario, year, shrink, occ,
                                      zone_shares(ds, zg.zones, lu, scenario, len(zt)))
        lu, vacant, done = release_cells(lu, vacant, zg.zones, plan, scenario, seed=seed, period=year,
                                         period_index=p_idx)
    keys = sorted(set(grow) | set(shrink) | set(reused))
    rec = pd.DataFrame([{"period": year, "city": c, "type": t,
                         "change_cells": grow.get((c, t), 0) - shrink.get((c, t), 0),
                         "reoccupied_cells": reused.get((c, t), 0),
                         "released_cells": int(plan.loc[(plan.city == c) & (plan.type == t), "cells"].sum()),
                         "release_shortfall_cells": unplaced.get((c, t), 0)} for c, t in keys])
    if len(rec) and len(done):
        rec = rec.merge(done.astype({"city": int}), on=["period", "city", "type"], how="left").fillna(0)
    else:
        rec["vacant_cells"] = 0
        rec["restored_cells"] = 0
    restored = bool(len(done)) and int(done["restored_cells"].sum()) > 0
    return lu, vacant, rec, restored


def _shrinkage_table(ds: xr.Dataset, scenario: Scenario, maps: dict[int, xr.DataArray],
                     vacancy: dict[int, xr.DataArray], records: list[pd.DataFrame]) -> pd.DataFrame:
    """Per period and city: urban, vacant, restored, released and reoccupied hectares.

    Urban, vacant and restored are cumulative, released and reoccupied the period's; empty when the scenario has
    no demand from people.
    """
    if not records:
        return pd.DataFrame()
    classes = scenario.classes
    ca = cell_area_ha(ds)
    cities = np.asarray(ds["cities"].values, dtype=np.int64)
    lu0 = np.asarray(ds["landuse"].values)
    n = int(cities.max(initial=0)) + 1
    urban0 = classes.is_role(lu0, "urban")
    per = pd.concat(records, ignore_index=True)
    rows = []
    for y, da in maps.items():
        lu = np.asarray(da.values)
        urban = classes.is_role(lu, "urban")
        vac = np.asarray(vacancy[y].values, dtype=bool) if y in vacancy else np.zeros(lu.shape, bool)
        restored = urban0 & ~urban
        cnt = {k: np.bincount(cities[m], minlength=n) for k, m in
               (("urban", urban), ("vacant", vac & urban), ("restored", restored))}
        p = per[per.period == y].groupby("city")[["released_cells", "reoccupied_cells", "vacant_cells",
                                                    "restored_cells", "release_shortfall_cells"]].sum()
        for c in range(1, n):
            if not (cities == c).any():
                continue
            r = p.loc[c] if c in p.index else None
            rows.append({"period": y, "city": c, "urban_ha": cnt["urban"][c] * ca,
                         "occupied_ha": (cnt["urban"][c] - cnt["vacant"][c]) * ca, "vacant_ha": cnt["vacant"][c] * ca,
                         "restored_ha": cnt["restored"][c] * ca,
                         "released_ha": 0.0 if r is None else float(r.released_cells) * ca,
                         "newly_vacant_ha": 0.0 if r is None else float(r.vacant_cells) * ca,
                         "newly_restored_ha": 0.0 if r is None else float(r.restored_cells) * ca,
                         "reoccupied_ha": 0.0 if r is None else float(r.reoccupied_cells) * ca,
                         "release_shortfall_ha": 0.0 if r is None else float(r.release_shortfall_cells) * ca})
    return pd.DataFrame(rows)


@dataclass
class RunState:
    """What the steps of a run share: the inputs, the rasters kept from period to period, and each period's results."""

    scenario: Scenario
    ds: xr.Dataset  # the Landscape
    ds_z: xr.Dataset  # the Landscape with the zone raster
    zg: Any  # the zone grid
    layer_paths: dict[str, Any]
    out_dir: Path
    people: Any  # demand from people (None without demand.people)
    trend: Any  # demand from a trend (None without demand.share / extrapolate)
    suitability_of: Callable[[np.ndarray], Any]
    static_scores: dict  # land-use-independent driver scores, kept from the first period to the last
    grow: Callable[..., Any]  # the growth path: in memory, tiled or on Dask
    grow_kw: dict[str, Any]
    timings: Timings
    progress: ProgressFn | None
    lu: np.ndarray  # the land use at the start of the next period (in the store)
    study_mask: np.ndarray
    start_urban: np.ndarray
    not_urban_prob: np.ndarray  # probability of staying non-urban through the periods so far
    vacant: np.ndarray
    allocations: list[Any] = field(default_factory=list)
    fragmentation: dict[str, Any] = field(default_factory=dict)
    landuse_by_year: dict[int, xr.DataArray] = field(default_factory=dict)
    probability: dict[int, Mapping[str, xr.DataArray]] = field(default_factory=dict)
    shortfalls: list[pd.DataFrame] = field(default_factory=list)
    farmland_lost: float = 0.0
    shrink_records: list[pd.DataFrame] = field(default_factory=list)
    vacancy_by_year: dict[int, xr.DataArray] = field(default_factory=dict)
    expected: dict[int, xr.DataArray] = field(default_factory=dict)  # expected_<year>.tif
    run_landuse: dict[int, list[np.ndarray]] | None = None


def _growth_path(scenario: Scenario, keep_runs: bool) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The growth function of the run's periods (in memory, tiled or on Dask) and its keyword arguments."""
    from landuse.growth import simulate

    compute = scenario.config.compute
    in_memory = compute.chunks is None and compute.scheduler is None
    if keep_runs and not in_memory:
        raise LanduseError("keep_runs needs the in-memory growth path (no compute.chunks, no compute.scheduler)")
    if in_memory:
        return simulate, ({"keep_runs": True} if keep_runs else {})
    from landuse.scale.distributed import pipeline_growth

    return pipeline_growth(compute), {}


def prepare(scenario: Scenario, timings: Timings, *, t_read: float, force: bool, progress: ProgressFn | None,
            write: bool, keep_runs: bool) -> RunState:
    """Read the layers, derive demand, check the inputs together, refuse a bad output folder, build the zones.

    ``t_read`` is when reading began (the scenario's loading counts as reading).
    """
    from landuse.allocation.demand import apply_people_demand
    from landuse.allocation.demand_trend import apply_trend_demand
    from landuse.allocation.zones import zone_grid
    from landuse.io.rasters import read_landscape
    from landuse.pipeline.validate import check_inputs

    cfg = scenario.config
    grow, grow_kw = _growth_path(scenario, keep_runs)
    out_dir = scenario.output_dir()
    layer_paths = scenario.layer_paths()
    ds = read_landscape(layer_paths, classes=scenario.classes)
    people = apply_people_demand(scenario, ds)  # demand.people -> demand.by_city (hectares per city and period)
    trend = apply_trend_demand(scenario, ds)  # demand.share / demand.extrapolate -> hectares per type and period
    check_inputs(ds, scenario)  # what `landuse validate` checks of the layers together, before any solving
    timings["read"] = time.perf_counter() - t_read
    if write:
        # outputs never share a folder with the layers (whatever --force says): a run writes
        # landuse_<year>.tif, and the inputs are often named the same way
        for p in layer_paths.values():
            if Path(p).resolve().parent == out_dir.resolve():
                raise OutputExistsError(
                    f"output folder {out_dir} holds the input layer {p}; choose another folder with `out`"
                )
        prepare_output_dir(out_dir, scenario.name, force=force, protected=_inputs_of(scenario, layer_paths))

    zg = zone_grid(ds, block_size_m=cfg.allocation.block_size_m)
    ds_z = ds.assign(zones=(("y", "x"), zg.zones))
    ds_z["landuse"].attrs.update(ds["landuse"].attrs)
    static_scores: dict = {}
    suitability_of = _suitability_provider(ds, scenario, timings, static=static_scores)
    classes = scenario.classes
    lu = store_copy(ds["landuse"].values)  # the rasters kept from period to period: in the store, if any
    return RunState(
        scenario=scenario, ds=ds, ds_z=ds_z, zg=zg, layer_paths=layer_paths, out_dir=out_dir, people=people,
        trend=trend, suitability_of=suitability_of, static_scores=static_scores, grow=grow, grow_kw=grow_kw,
        timings=timings, progress=progress, lu=lu, study_mask=np.asarray(ds["study_area"].values, dtype=bool),
        start_urban=store_by_strips(lu.shape, bool, lambda a, b: classes.is_role(lu[a:b], "urban")),
        not_urban_prob=store_full(lu.shape, 1.0, np.float32), vacant=store_zeros(lu.shape, bool),
        run_landuse={} if keep_runs else None,
    )  # fmt: skip


def run_period(state: RunState, p_idx: int, y1: int) -> None:
    """Run period ``p_idx`` (ending in ``y1``): plan it, grow it, record its maps and tables in ``state``."""
    _log(state.progress, stage="period", period=y1, period_index=p_idx, periods=len(state.scenario.period_pairs))
    alloc, ds_p, params, t_grow = _plan_period(state, p_idx, y1)
    _grow_period(state, p_idx, y1, alloc, ds_p, params, t_grow)


def _plan_period(state: RunState, p_idx: int, y1: int) -> tuple[Any, xr.Dataset, Any, float]:
    """Suitability (and land released by shrinking cities), the zone table, the LP plan and the city-by-city plan.

    Returns the plan, the Landscape the growth reads (land use at the period's start, unit raster as its zones), the
    growth parameters and when the growth stage began (the unit raster and the parameters count as the growth's);
    the suitability, zone table and pieces are freed when this returns.
    """
    from landuse.allocation.handoff import unit_raster
    from landuse.allocation.pieces import cell_pieces
    from landuse.allocation.planner import allocate
    from landuse.allocation.zone_stats import zone_table
    from landuse.growth import GrowthParams

    scenario, timings, ds = state.scenario, state.timings, state.ds
    t = time.perf_counter()
    suit = state.suitability_of(state.lu)
    if state.people is not None:
        state.lu, state.vacant, rec, restored = _shrink_period(ds, scenario, state.people, state.lu, state.vacant,
                                                               state.zg, suit, y1, p_idx)
        state.shrink_records.append(rec)
        if restored:
            suit = state.suitability_of(state.lu)  # restored cells are no longer urban land for the drivers
    if p_idx == len(scenario.period_pairs) - 1:
        state.static_scores.clear()  # no later suitability: free them before the last growth, evaluation and writing
    timings[f"suitability_{y1}"] = time.perf_counter() - t

    t = time.perf_counter()
    lu = state.lu
    suit_arr = np.asarray(getattr(suit, "values", suit), dtype=np.float32)
    pieces = cell_pieces(ds, scenario, lu, state.zg.zones, suit_arr)
    zt = zone_table(ds, scenario, landuse=lu, zones=state.zg, suitability=suit_arr, pieces=pieces)
    timings[f"zone_table_{y1}"] = time.perf_counter() - t
    t = time.perf_counter()
    _log(state.progress, stage="allocate", period=y1)
    lost_before = state.farmland_lost
    alloc = allocate(zt, scenario, y1, farmland_lost_so_far_ha=lost_before)
    state.allocations.append(alloc)
    timings[f"allocate_{y1}"] = time.perf_counter() - t
    t = time.perf_counter()
    state.fragmentation[str(y1)] = _coordination(zt, scenario, y1, lost_before, alloc)
    timings[f"compare_coordination_{y1}"] = time.perf_counter() - t

    t = time.perf_counter()
    # the engine grows per unit (zone x source group x band) to the plan's whole cells, so every
    # amount the plan sets -- per source role, station band, greenbelt and boundary band -- holds
    ds_p = state.ds_z.copy()
    ds_p["landuse"] = (("y", "x"), lu)
    ds_p["landuse"].attrs.update(ds["landuse"].attrs)
    ds_p["zones"] = (("y", "x"), unit_raster(ds, scenario, alloc, landuse=lu, zones=state.zg, suitability=suit,
                                                      pieces=pieces))
    # this period alone, drawn as its index in the scenario: no maps and counts of the other periods
    params = GrowthParams.from_scenario(scenario, ds_p, suitability=suit).replace(periods=(y1,),
                                                                                  period_offset=p_idx)
    return alloc, ds_p, params, t


def _coordination(zt: pd.DataFrame, scenario: Scenario, y1: int, lost_before: float, alloc: Any) -> dict[str, Any]:
    """The city-by-city plan's cost against the cluster plan, or why it was not solved."""
    from landuse.allocation.coordination import compare_coordination

    n_cities = int(zt["city"].nunique())
    try:
        if not scenario.config.outputs.coordination or n_cities < 2:
            raise _NoComparison("switched off (outputs.coordination: false)" if n_cities >= 2 else
                                "one city only: a city-by-city plan is the cluster-wide plan")
        cmp = compare_coordination(zt, scenario, y1, farmland_lost_so_far_ha=lost_before, solved=alloc)
        return {
            "differences": cmp.differences,
            **{
                name: {"objective": a.objective, "farmland_lost_ha": a.farmland_lost_ha,
                       "open_space_lost_ha": a.open_space_lost_ha, "mean_distance_new_m": a.mean_distance_new_m}
                for name, a in (("coordinated", cmp.coordinated), ("fragmented", cmp.fragmented))
            },
        }
    except _NoComparison as exc:
        return {"skipped": str(exc)}
    except LanduseError as exc:
        return {"error": str(exc)}


def _grow_period(state: RunState, p_idx: int, y1: int, alloc: Any, ds_p: xr.Dataset, params: Any,
                 t: float) -> None:
    """Grow the period's plan over the Monte Carlo runs; record its map, probabilities, shortfall, expected map."""
    scenario, ds, timings = state.scenario, state.ds, state.timings
    cfg = scenario.config
    classes = scenario.classes
    targets = alloc.unit_targets.rename(columns={"unit": "zone"})

    def growth_progress(ev: dict[str, Any], _y1: int = y1) -> None:
        _log(state.progress, stage="grow", period=_y1, run=ev["run"], runs=ev["runs"])

    res = state.grow(ds_p, targets, params=params, runs=cfg.growth.runs, seed=period_seed(cfg.growth.seed, p_idx),
                     progress=growth_progress, **state.grow_kw)
    if state.run_landuse is not None:
        state.run_landuse[y1] = [maps[y1] for maps in res.run_landuse]
    timings[f"grow_{y1}"] = time.perf_counter() - t
    lu_start = state.lu
    lu = state.lu = store_copy(res.landuse[y1].values)
    lost = sum(int(np.count_nonzero(classes.is_role(lu_start[a:b], "farmland") & classes.is_role(lu[a:b], "urban")))
               for a, b in row_strips(*lu.shape))  # counted strip by strip
    state.farmland_lost += float(lost * cell_area_ha(ds))
    state.landuse_by_year[y1] = like(ds, lu, f"landuse_{y1}", nodata=classes.nodata)  # a copy: lu changes next
    if state.people is not None:  # demand from people may release land: one vacancy map per period
        state.vacancy_by_year[y1] = like(ds, np.where(state.study_mask, state.vacant, 0).astype(np.uint8),
                                         f"vacancy_{y1}", nodata=255)
    state.probability[y1] = PeriodProbability(ds, res.counts.sel(period=y1), res.runs, y1)
    _not_converted(state.not_urban_prob, state.probability[y1], scenario.urban_types)
    state.shortfalls.append(unit_shortfall(res.shortfall, alloc.units))
    if cfg.outputs.expected:
        from landuse.evaluation.expected import expected_map

        state.expected[y1] = like(ds, expected_map(lu_start, np.asarray(res.counts.sel(period=y1).values), params,
                                                   np.asarray(ds_p["zones"].values), targets),
                                  f"expected_{y1}", nodata=classes.nodata)


@dataclass
class Finished:
    """What :func:`finish` derives from the periods: the horizon's probability and boundary, tables, checks, report."""

    urban_probability: xr.DataArray
    ugb: xr.DataArray | None
    allocation: pd.DataFrame
    shortfall: pd.DataFrame
    transfers: pd.DataFrame
    shrinkage: pd.DataFrame
    source_warnings: list[str]
    report: Any
    checks: pd.DataFrame


def _urban_probability(state: RunState) -> xr.DataArray:
    """Probability of being urban at the horizon: ``1 - prod_t (1 - p_t)``, existing urban land 1, nan outside."""
    ds, lu = state.ds, state.lu
    p_urban = store_empty(lu.shape, np.float32)
    np.subtract(np.float32(1.0), state.not_urban_prob, out=p_urban)
    p_urban[state.start_urban] = 1.0
    p_urban[~state.study_mask] = np.nan
    return like(ds, p_urban, "probability_urban", copy=False)


def finish(state: RunState, overrides: dict[str, Any]) -> Finished:
    """The growth boundary, the run's tables, the policy checks and (when asked) the report."""
    scenario, ds, timings = state.scenario, state.ds, state.timings
    asked = scenario.config.outputs
    t = time.perf_counter()
    urban_probability = _urban_probability(state)
    ugb = None
    if asked.boundary:  # the boundary's modules are imported only when it is asked for
        from landuse.evaluation.boundary import ugb_from_config

        ugb = ugb_from_config(urban_probability, ds, scenario, landuse=ds["landuse"].values)
        ugb.name = "ugb"
        timings["boundary"] = time.perf_counter() - t

    t = time.perf_counter()
    from landuse.calibration.hindcast import unreachable_sources

    allocation_df = pd.concat([a.targets for a in state.allocations], ignore_index=True)
    source_warnings = unreachable_sources(ds, scenario, allocation_df)
    shortfall_df = pd.concat(state.shortfalls, ignore_index=True) if state.shortfalls else pd.DataFrame()
    transfers_df = pd.concat([a.transfers for a in state.allocations], ignore_index=True)
    shrink_df = _shrinkage_table(ds, scenario, state.landuse_by_year, state.vacancy_by_year, state.shrink_records)
    fin = Finished(urban_probability=urban_probability, ugb=ugb, allocation=allocation_df, shortfall=shortfall_df,
                   transfers=transfers_df, shrinkage=shrink_df, source_warnings=source_warnings, report=None,
                   checks=None)  # fmt: skip
    if asked.report:
        fin.report = _report(state, fin, overrides)
        fin.checks = fin.report.checks
    else:  # no report: the policy checks still run, on the maps
        from landuse.evaluation.checks import policy_checks

        fin.checks = policy_checks(scenario, ds, state.landuse_by_year, start_landuse=ds["landuse"].values,
                                   allocation=allocation_df, shortfall=shortfall_df, probability=state.probability)
    timings["evaluate"] = time.perf_counter() - t
    return fin


def _report(state: RunState, fin: Finished, overrides: dict[str, Any]) -> Any:
    """The run's report (:func:`landuse.report.data.build_report`)."""
    from landuse.report.data import build_report

    scenario, people, trend, allocations = state.scenario, state.people, state.trend, state.allocations
    extra = {
        "objective": {str(a.period): a.objective for a in allocations},
        "objective_terms": {str(a.period): a.objective_terms for a in allocations},
        "binding_policies": {
            str(a.period): a.duals[a.duals.binding & (a.duals.kind != "demand")][
                ["constraint", "cost", "unit", "meaning"]].to_dict(orient="records")
            for a in allocations
        },
        "fragmentation": state.fragmentation,
        "mean_distance_new_m": {str(a.period): a.mean_distance_new_m for a in allocations},
        "shortfall_cells": int(fin.shortfall["shortfall"].sum()) if len(fin.shortfall) else 0,
        "transfers": fin.transfers.to_dict(orient="records"),
        "demand_from_people": (people.change.to_dict(orient="records") if people is not None else []),
        "demand_notes": (people.notes if people is not None else []),
        "demand_trend": trend.to_json() if trend is not None else None,
        "shrinkage": fin.shrinkage.to_dict(orient="records"),
        # how the run was computed (tiles, scheduler) changes no result: the manifest records it, not the report
        "overrides": {k: v for k, v in overrides.items() if not k.startswith("compute.")},
        "source_warnings": fin.source_warnings,
    }
    last = state.probability[scenario.periods[-1]]
    return build_report(
        scenario=scenario,
        landscape=state.ds,
        landuse_by_year=state.landuse_by_year,
        probability={"urban": fin.urban_probability, **{t_: last[t_] for t_ in scenario.urban_types}},
        ugb=fin.ugb,
        allocation=fin.allocation,
        seed=scenario.config.growth.seed,
        extra=extra,
        start_landuse=state.ds["landuse"],
        shortfall=fin.shortfall,
        probability_by_period=state.probability,
    )
