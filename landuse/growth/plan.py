"""The growth plan: what the in-memory engine, the tiled path and the Dask ensemble share.

A simulation is planned once (:func:`build_plan`: static arrays, periods, the target array),
its Monte Carlo runs are grown period by period on the same schedule (:func:`period_schedule`:
new patches, edge iterations with adaptive inertia, catch-up and fill, with the stream keys of
:func:`stream_keys`), each run leaves a :class:`RunLog` of its conversions, and the logs of all
runs are finished into a :class:`~landuse.growth.GrowthResult` (:func:`finish_ensemble`: ensemble
counts, the representative run, its maps and the shortfall table).

:func:`landuse.growth.simulate` runs every run here in memory (:func:`run_ensemble`);
:mod:`landuse.scale.distributed` runs blocks of runs on Dask workers with the same functions;
:mod:`landuse.scale.tiled` runs the schedule with steps computed tile by tile and builds counts
and tables with :func:`add_counts`, :func:`count_dtype` and :func:`shortfall_table`. All of them
check their inputs with :func:`check_inputs`, :func:`zone_raster` and :func:`target_array`, so
every path gives the same result for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.errors import GridMismatchError
from landuse.core.landscape import georef_of, set_georef
from landuse.growth.kernels import accumulate_counts, score_log
from landuse.growth.params import GrowthParams, GrowthResult, require
from landuse.growth.random import stream_key
from landuse.growth.state import RunState, StaticArrays, frontier_step, initial_state, sweep_step

__all__ = [
    "GrowthPlan",
    "RunLog",
    "add_counts",
    "build_plan",
    "check_inputs",
    "count_dtype",
    "finish_ensemble",
    "period_schedule",
    "period_years",
    "run_ensemble",
    "shortfall_table",
    "stream_keys",
    "target_array",
    "zone_cell_counts",
    "zone_raster",
]

_PURPOSE_SPONTANEOUS = 8
_PURPOSE_FILL = 16


# --------------------------------------------------------------------------- inputs


def check_inputs(landscape: xr.Dataset, params: GrowthParams, runs: int, seed: int) -> tuple[int, int, np.ndarray]:
    """Validate the inputs every growth path shares.

    Parameters
    ----------
    landscape : xarray.Dataset
        The Landscape; its ``landuse`` is the start map.
    params : GrowthParams
        Must have been built for the landscape's grid.
    runs : int
        Monte Carlo runs, at least 1.
    seed : int
        Within ``[0, 2**63 - 1]``.

    Returns
    -------
    runs, seed : int
    lu0 : ndarray
        The start land use (the landscape's own array, not a copy).

    Raises
    ------
    GrowthInputError
        ``params`` is not a :class:`GrowthParams`, or ``runs`` or ``seed`` is out of range.
    GridMismatchError
        ``params`` was built for another grid.
    """
    require(isinstance(params, GrowthParams), "params must be a GrowthParams (GrowthParams.from_scenario)")
    require(int(runs) >= 1, f"runs must be at least 1, got {runs}")
    require(0 <= int(seed) < 2**63, f"seed must be within [0, 2**63 - 1], got {seed}")
    lu0 = np.asarray(landscape["landuse"].values)
    if lu0.shape != params.shape:
        raise GridMismatchError(
            f"growth params were built for a {params.shape} grid but the landscape's land use is {lu0.shape}; "
            "rebuild them with GrowthParams.from_scenario(scenario, landscape)"
        )
    return int(runs), int(seed), lu0


def zone_raster(landscape: xr.Dataset) -> np.ndarray:
    """The zone id of every cell (int32; 0 outside the study area and outside every zone).

    Parameters
    ----------
    landscape : xarray.Dataset
        Its ``study_area`` and, when present, its ``zones`` (integer ids); without ``zones``
        every study-area cell is zone 1.

    Returns
    -------
    ndarray of int32, shape (rows, cols)
        ``landscape["zones"]`` itself (no copy) when it is int32 and already 0 outside the study area.

    Raises
    ------
    GrowthInputError
        ``zones`` is not integer, or holds negative ids.
    """
    inside = np.asarray(landscape["study_area"].values, dtype=bool)
    if "zones" not in landscape:
        return inside.astype(np.int32)
    z = np.asarray(landscape["zones"].values)
    require(z.dtype.kind in "iu", f"landscape['zones'] must hold integer zone ids, got {z.dtype}")
    z = z.astype(np.int32, copy=False)
    require(int(z.min(initial=0)) >= 0, "landscape['zones'] holds negative ids; 0 marks cells outside every zone")
    return np.where(inside, z, 0).astype(np.int32, copy=False) if bool((z[~inside] != 0).any()) else z


def zone_cell_counts(zones: np.ndarray, Z: int) -> np.ndarray:
    """Cells of each zone id ``0..Z`` (int64, ``Z + 1`` entries) of a flat zone raster.

    Counted in chunks of 2**20 cells (``np.bincount`` casts to int64: 8 MB per chunk, not 8 bytes per cell).
    """
    zone_cells = np.zeros(Z + 1, dtype=np.int64)
    step = 1 << 20
    for a in range(0, zones.size, step):
        zone_cells += np.bincount(zones[a:a + step], minlength=Z + 1)
    return zone_cells


def period_years(targets: pd.DataFrame, params: GrowthParams) -> list[int]:
    """The end years a simulation grows: those of the targets and ``params.periods``, sorted.

    Raises
    ------
    GrowthInputError
        Neither gives a year.
    """
    years = sorted({int(y) for y in targets["period"]} | set(params.periods or ())) if "period" in targets else []
    require(bool(years), "targets: no period given (and params.periods is empty)")
    return years


def target_array(targets: pd.DataFrame, years: list[int], Z: int, types: tuple[str, ...],
                 zone_cells: np.ndarray) -> np.ndarray:
    """The targets table as an array of cells to gain.

    Parameters
    ----------
    targets : pandas.DataFrame
        Columns ``period`` (end year), ``zone``, ``type`` (urban type name), ``cells``; one row per
        (period, zone, type).
    years : list of int
        The periods' end years (:func:`period_years`).
    Z : int
        Largest zone id.
    types : tuple of str
        Urban type names, in type-index order.
    zone_cells : ndarray of int64
        Cells of each zone id (:func:`zone_cell_counts`): a target's zone must have some.

    Returns
    -------
    ndarray of int64, shape (len(years), Z + 1, len(types))

    Raises
    ------
    GrowthInputError
        A missing column, an unknown type, a zone absent from the zone raster, cells that are not
        non-negative whole numbers, or a duplicate (period, zone, type).
    """
    need = ["period", "zone", "type", "cells"]
    missing = [c for c in need if c not in targets.columns]
    require(not missing, f"targets: missing column(s) {missing}; the table needs columns {need}")
    T = len(types)
    out = np.zeros((len(years), Z + 1, T), dtype=np.int64)
    if targets.empty:
        return out
    bad_types = sorted(set(targets["type"].astype(str)) - set(types))
    require(not bad_types, f"targets: unknown urban type(s) {bad_types}; use {list(types)}")
    cells = pd.to_numeric(targets["cells"], errors="coerce")
    require(bool(cells.notna().all()) and bool((cells >= 0).all()) and bool((cells == np.floor(cells)).all()),
            "targets: column 'cells' must hold non-negative whole numbers of cells")
    zone = targets["zone"].to_numpy()
    require(bool(np.all(zone == np.floor(zone))), "targets: column 'zone' must hold integer zone ids")
    zone = zone.astype(np.int64)
    bad_z = sorted({int(z) for z in zone if z < 1 or z > Z or zone_cells[z] == 0})
    require(not bad_z, f"targets: zone id(s) {bad_z[:10]} do not occur in the zone raster (ids 1..{Z}); "
                       "build targets from the same zone grid as landscape['zones']")
    ymap = {y: i for i, y in enumerate(years)}
    kmap = {t: i for i, t in enumerate(types)}
    per = targets["period"].astype(int).map(ymap).to_numpy()
    ks = targets["type"].astype(str).map(kmap).to_numpy()
    dup = pd.DataFrame({"p": per, "z": zone, "k": ks}).duplicated()
    require(not dup.any(), f"targets: {int(dup.sum())} duplicate (period, zone, type) row(s); give one row each")
    out[per, zone, ks] = cells.to_numpy().astype(np.int64)
    return out


# --------------------------------------------------------------------------- the plan


@dataclass
class GrowthPlan:
    """What every run of a simulation shares.

    Attributes
    ----------
    st : StaticArrays
        Run-independent arrays (flat zones, potentials, look-up tables).
    years : list of int
        End year of each period grown.
    tgt : ndarray of int64, shape (P, Z + 1, T)
        Cells to gain per period, zone and type.
    """

    st: StaticArrays
    years: list[int]
    tgt: np.ndarray  # (P, Z + 1, T)

    @property
    def P(self) -> int:
        """Number of periods."""
        return len(self.years)


def build_plan(zones: np.ndarray, targets: pd.DataFrame, params: GrowthParams) -> GrowthPlan:
    """Plan a simulation: static arrays, periods and the target array, with the targets validated.

    Parameters
    ----------
    zones : ndarray (rows, cols)
        Zone raster (:func:`zone_raster`).
    targets : pandas.DataFrame
        As for :func:`landuse.growth.simulate`.
    params : GrowthParams

    Returns
    -------
    GrowthPlan

    Raises
    ------
    GrowthInputError
        No period, or an invalid targets table (:func:`target_array`).
    """
    st = StaticArrays.build(params, zones)
    zone_cells = zone_cell_counts(st.zones, st.Z)
    years = period_years(targets, params)
    return GrowthPlan(st=st, years=years, tgt=target_array(targets, years, st.Z, params.types, zone_cells))


@dataclass
class RunLog:
    """One run's conversions, in the order they happened.

    Attributes
    ----------
    run : int
        Global run index.
    cells : ndarray of int32 or int64
        Flat index of each converted cell (int64 from 2**31 cells on).
    types : ndarray of int8
        Urban type index it took.
    periods : ndarray of int16
        Period index of the conversion.
    conv : ndarray of int64, shape (P, G)
        Converted cells per period and (zone, type) group ``zone * T + type``.
    """

    run: int
    cells: np.ndarray
    types: np.ndarray
    periods: np.ndarray
    conv: np.ndarray  # (P, G) int64


# --------------------------------------------------------------------------- one period of one run


def stream_keys(seed: int, run: int, period: int, iteration: int, purpose: int, T: int) -> np.ndarray:
    """Random stream keys of one step, one per urban type: ``stream_key(seed, run, period, iteration, purpose + k)``.

    Returns
    -------
    ndarray of uint64, shape (T,)
    """
    return np.array([stream_key(seed, run, period, iteration, purpose + k) for k in range(T)], dtype=np.uint64)


# A step selects and converts cells for the quotas; returns converted per group, the
# converted cells (global flat indices) and their type indices.
_Step = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def period_schedule(target: np.ndarray, params: GrowthParams, *, Z: int, seed: int, run: int, period: int,
                    frontier_step: _Step, sweep_step: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]],
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The phases of one period of one run (new patches, edge iterations, catch-up, fill), whatever runs the steps.

    The in-memory engine and the tiled path (:mod:`landuse.scale.tiled`) share this schedule, so
    quotas, inertia and stream keys are the same.

    Parameters
    ----------
    target : ndarray of int64, shape (G,)
        Cells to gain per (zone, type) group ``zone * T + type``.
    params : GrowthParams
        Its ``spontaneous_share``, ``iterations``, ``adaptive_inertia`` and ``period_offset``.
    Z : int
        Largest zone id.
    seed, run : int
        Seed and global run index of the draws.
    period : int
        The period's index in this call; its draws use the index in the scenario
        (``period + params.period_offset``).
    frontier_step : callable
        ``frontier_step(quota, inertia, keys)``: select and convert among the frontier cells.
    sweep_step : callable
        ``sweep_step(quota, inertia, keys, exclude_frontier)``: select and convert among all
        eligible cells (new patches with ``exclude_frontier``, else fill).

    Returns
    -------
    converted : ndarray of int64, shape (G,)
        Cells converted per group.
    cells : ndarray
        The log: converted cells (global flat indices), in order.
    types : ndarray of int8
        Their type indices.
    """
    T = len(params.type_codes)
    period = period + int(params.period_offset)
    remaining = target.astype(np.int64).copy()
    inertia = np.ones((Z + 1, T), dtype=np.float64)
    cells: list[np.ndarray] = []
    types: list[np.ndarray] = []

    def book(conv: np.ndarray, c: np.ndarray, k: np.ndarray) -> int:
        nonlocal remaining
        remaining -= conv
        cells.append(c)
        types.append(k)
        return int(conv.sum())

    spont = np.floor(target * params.spontaneous_share + 0.5).astype(np.int64)
    if spont.any():
        book(*sweep_step(spont, inertia, stream_keys(seed, run, period, 0, _PURPOSE_SPONTANEOUS, T), True))
    n_it = params.iterations
    for it in range(2 * n_it):
        if not remaining.any():
            break
        left = max(1, n_it - it)
        quota = -(-remaining // left)
        conv, c, k = frontier_step(quota, inertia.reshape(-1, T), stream_keys(seed, run, period, it, 0, T))
        done = book(conv, c, k)
        if params.adaptive_inertia:
            behind = (quota > 0) & (conv < quota)
            if behind.any():
                flat = inertia.reshape(-1)
                flat[behind] = np.minimum(flat[behind] * quota[behind] / np.maximum(conv[behind], 1), 1e3)
        if it >= n_it and done == 0:
            break
    if remaining.any():
        # fill from every eligible cell: one race among the types, then type by type, so a
        # cell that lost a race is still offered to a type that falls short
        book(*sweep_step(remaining, inertia, stream_keys(seed, run, period, 0, _PURPOSE_FILL, T), False))
        for k in range(T):
            rk = remaining.reshape(-1, T)[:, k]
            if rk.any():
                only = np.zeros_like(remaining).reshape(-1, T)
                only[:, k] = rk
                book(*sweep_step(only.reshape(-1), inertia,
                                 stream_keys(seed, run, period, 1 + k, _PURPOSE_FILL, T), False))
    log_c = np.concatenate(cells) if cells else np.empty(0, np.int64)
    log_k = np.concatenate(types) if types else np.empty(0, np.int8)
    return target - remaining, log_c, log_k


def _grow_period(st: StaticArrays, state: RunState, target: np.ndarray, params: GrowthParams, *, seed: int, run: int,
                 period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grow one period of one run in memory; returns converted per group and the log (cells, types)."""
    out = period_schedule(
        target, params, Z=st.Z, seed=seed, run=run, period=period,
        frontier_step=lambda quota, inertia, keys: frontier_step(st, state, quota, inertia, keys),
        sweep_step=lambda quota, inertia, keys, exclude: sweep_step(st, state, quota, inertia, keys,
                                                                    exclude_frontier=exclude),
    )
    # a new period: cells converted in this one may change again (if the matrix allows)
    state.lock[:] = 0
    return out


# --------------------------------------------------------------------------- runs


def _cell_dtype(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


def run_ensemble(plan: GrowthPlan, lu0: np.ndarray, params: GrowthParams, *, seed: int, run_ids: list[int],
                 progress: Callable[[dict[str, Any]], None] | None = None, runs: int | None = None) -> list[RunLog]:
    """Grow the runs ``run_ids`` in memory, every period of the plan; one log per run.

    A run's draws depend on its global index only, so any block of runs, here or on a
    Dask worker, gives the logs the whole ensemble would.

    Parameters
    ----------
    plan : GrowthPlan
    lu0 : ndarray of uint8, shape (rows, cols)
        Start land use (not modified).
    params : GrowthParams
    seed : int
    run_ids : list of int
        Global run indices to grow, in this order.
    progress : callable, optional
        Called after each run and period, as by :func:`landuse.growth.simulate`.
    runs : int, optional
        The ensemble's size, reported to ``progress``.

    Returns
    -------
    list of RunLog
        In the order of ``run_ids``.
    """
    st, tgt = plan.st, plan.tgt
    cell_dtype = _cell_dtype(st.rows * st.cols)
    # the template: no copy of the start map (each run copies the landscape's own) and no scratch buffers
    base = initial_state(st, lu0, template=True)
    out = []
    for r in run_ids:
        state = base.copy(lu0)
        run_c, run_k, run_p, convs = [], [], [], []
        for p, year in enumerate(plan.years):
            conv, c, k = _grow_period(st, state, tgt[p].reshape(-1), params, seed=seed, run=r, period=p)
            run_c.append(c.astype(cell_dtype))
            run_k.append(k)
            run_p.append(np.full(c.size, p, dtype=np.int16))
            convs.append(conv)
            if progress is not None:
                progress({"run": r, "runs": runs, "period": year, "period_index": p, "periods": plan.P,
                          "converted": int(conv.sum()), "shortfall": int(tgt[p].sum() - conv.sum())})
        out.append(RunLog(run=r, cells=np.concatenate(run_c), types=np.concatenate(run_k),
                          periods=np.concatenate(run_p), conv=np.array(convs, dtype=np.int64).reshape(plan.P, -1)))
        del state
    return out


# --------------------------------------------------------------------------- finish


def count_dtype(runs: int) -> type:
    """The smallest unsigned integer type that holds a count of ``runs``: uint8, uint16 or uint32."""
    return np.uint8 if runs <= 255 else np.uint16 if runs <= 65535 else np.uint32


def add_counts(counts: np.ndarray, cells: np.ndarray, types: np.ndarray, periods: np.ndarray,
               seen: np.ndarray) -> None:
    """Add one run's conversions to the ensemble counts, in place.

    Per period, each cell's latest conversion up to that period counts once.

    Parameters
    ----------
    counts : ndarray, shape (P, T, n)
        Ensemble counts (:func:`count_dtype`).
    cells, types, periods : ndarray
        The run's conversions: flat cells of ``counts``, type and period indices, in order.
    seen : ndarray of uint64
        Scratch bitset of ``n`` bits, all zero on entry and on exit.
    """
    for p in range(counts.shape[0]):
        m = periods <= p
        accumulate_counts(counts[p], cells[m], types[m], seen)


def _run_score(counts: np.ndarray, log: RunLog) -> float:
    """Sum of the ensemble counts over a run's conversions (an integer held exactly in a float64)."""
    return score_log(counts, log.cells, log.types, log.periods)


def shortfall_table(years: list[int], tgt: np.ndarray, params: GrowthParams, rep_conv: np.ndarray,
                    conv_min: np.ndarray, conv_max: np.ndarray) -> pd.DataFrame:
    """The shortfall table of :class:`~landuse.growth.GrowthResult`: one row per non-zero target.

    Parameters
    ----------
    years : list of int
    tgt : ndarray, shape (P, Z + 1, T)
        Targets (:func:`target_array`).
    params : GrowthParams
    rep_conv, conv_min, conv_max : ndarray, shape (P, G)
        Converted cells per period and group: of the representative run, least and most over all runs.

    Returns
    -------
    pandas.DataFrame
        Columns ``period, zone, type, target, converted, shortfall, converted_min, converted_max``.
    """
    T = len(params.type_codes)
    rows = []
    for p, year in enumerate(years):
        zz, kk = np.nonzero(tgt[p])
        for z, k in zip(zz.tolist(), kk.tolist(), strict=True):
            g = z * T + k
            rows.append((year, z, params.types[k], int(tgt[p, z, k]), int(rep_conv[p, g]),
                         int(tgt[p, z, k] - rep_conv[p, g]), int(conv_min[p, g]), int(conv_max[p, g])))
    return pd.DataFrame(rows, columns=["period", "zone", "type", "target", "converted", "shortfall",
                                       "converted_min", "converted_max"])


def finish_ensemble(landscape: xr.Dataset, lu0: np.ndarray, plan: GrowthPlan, params: GrowthParams,
                    logs: list[RunLog], *, runs: int, seed: int) -> GrowthResult:
    """Turn the logs of every run into the result: counts, representative run, its maps, shortfall.

    The representative run is the one whose conversions have the highest mean ensemble
    probability (ties: the lowest run number); its maps are replayed from ``lu0``.

    Parameters
    ----------
    landscape : xarray.Dataset
        Coordinates, georeference and ``landuse`` nodata of the outputs.
    lu0 : ndarray of uint8, shape (rows, cols)
        Start land use.
    plan : GrowthPlan
    params : GrowthParams
    logs : list of RunLog
        Every run's log, in run order.
    runs, seed : int

    Returns
    -------
    GrowthResult
    """
    st, years = plan.st, plan.years
    P, T = plan.P, st.T
    n = st.rows * st.cols
    counts = np.zeros((P, T, n), dtype=count_dtype(runs))
    seen = np.zeros((n + 63) // 64, dtype=np.uint64)
    for lg in logs:
        add_counts(counts, lg.cells, lg.types, lg.periods, seen)
    conv_all = np.stack([lg.conv for lg in logs])
    conv_min, conv_max = conv_all.min(axis=0), conv_all.max(axis=0)
    scores = np.array([_run_score(counts, lg) / (runs * max(1, lg.cells.size)) for lg in logs])
    best = int(np.argmax(scores))
    rep = logs[best]
    log_c, log_k, log_p = rep.cells, rep.types, rep.periods
    del logs

    lu = np.ascontiguousarray(lu0, dtype=np.uint8).reshape(-1).copy()  # replayed with the representative log
    georef = georef_of(landscape)
    nodata = int(landscape["landuse"].attrs.get("nodata", 255))
    maps: dict[int, xr.DataArray] = {}
    rep_conv = np.zeros((P, st.n_groups), dtype=np.int64)
    zflat = st.zones
    for p, year in enumerate(years):
        m = log_p == p
        cp, kp = log_c[m].astype(np.int64), log_k[m].astype(np.int64)
        lu[cp] = st.type_codes[kp]
        np.add.at(rep_conv[p], zflat[cp].astype(np.int64) * T + kp, 1)
        last = p == P - 1  # the last map takes the replay buffer itself
        da = xr.DataArray(lu.reshape(st.rows, st.cols) if last else lu.reshape(st.rows, st.cols).copy(), dims=("y", "x"),
                          coords={"y": landscape.y, "x": landscape.x}, name=f"landuse_{year}",
                          attrs={"nodata": nodata, "run": best, "seed": seed})
        maps[year] = set_georef(da, None, coord=georef)

    shortfall = shortfall_table(years, plan.tgt, params, rep_conv, conv_min, conv_max)
    counts_da = xr.DataArray(
        counts.reshape(P, T, st.rows, st.cols), dims=("period", "type", "y", "x"),
        coords={"period": years, "type": list(params.types), "y": landscape.y, "x": landscape.x},
        name="conversion_counts", attrs={"runs": runs, "seed": seed},
    )
    return GrowthResult(landuse=maps, counts=counts_da, runs=runs, seed=seed, shortfall=shortfall,
                        representative_run=best, run_scores=scores)
