"""Tiled growth: the engine's periods on square tiles with a halo, on Dask or in this process.

The raster is cut into ``chunks x chunks`` tiles. Every step of a period (new patches, each
edge iteration, catch-up, fill) is one round of blockwise tasks with explicit overlap (one
task per worker thread, carrying that thread's tiles). A tile's state (its tile plus a halo
of the neighbourhood radius, with the run's conversions applied, and its eligibility and
frontier bitsets) is built on its worker at the run's first step and kept there: later
steps send it only the new conversions in its window, and the frontier is updated at the
converted cells, as in the in-memory engine (within a per-worker budget, ``cache_mb``;
tiles beyond it, or whose state was lost, are rebuilt from the store and the run's
history). The task computes the candidates' keys with the same kernels and the same
counter-based draws (global cell index) as the in-memory engine. It returns, per (zone, type) group, its own
``quota`` smallest ``(key, global index)`` pairs; the driver merges these per-tile
k-smallest lists into the global selection (the union of per-tile k-smallest lists holds
the global k smallest), converts, and the next round sees the conversions. Quotas,
inertia and stream keys come from the engine's own schedule
(:func:`landuse.growth.plan.period_schedule`), so the maps, counts, representative run
and shortfall are identical to :func:`landuse.growth.simulate` whatever the chunk size and
the number of workers.

Inputs are staged once into a tile store (one ``.npy`` file per tile and layer, read with
memory maps window by window) from in-memory arrays or from GeoTIFFs read window by
window (:mod:`landuse.io.windows`); outputs are written window by window (GeoTIFFs, atomically). A tile
state is about ``(chunk + 2r)^2 x (5 + T)`` bytes, and a worker keeps states up to its
budget only, so memory per worker follows its limit and the chunk size, not the raster
size. The driver holds the conversion logs (proportional to converted cells x runs,
as the in-memory engine) and the per-step candidate lists (at most the sum of the quotas
per tile). See ``docs/scaling.md``.
"""


from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.errors import GridMismatchError, GrowthInputError, make_output_dir
from landuse.core.landscape import georef_of, set_georef
from landuse.growth.params import GrowthParams, GrowthResult
from landuse.growth.plan import (
    check_inputs,
    count_dtype,
    period_schedule,
    period_years,
    shortfall_table,
    target_array,
    zone_cell_counts,
    zone_raster,
)
from landuse.growth.selection import select_smallest
from landuse.io.windows import WindowedGeoTIFF, gdal_block_cache, raster_profile
from landuse.scale import tiled_kernels as TK
from landuse.scale.protocol import (
    _Runner,
)
from landuse.scale.tile_tasks import (
    _counts_and_scores,
    _Ctx,
    _in_window,
    _pack_groups,
    _replay_maps,
    _tile_finish,
    _tile_step,
)
from landuse.scale.tiles import (
    _GDAL_CACHE_MB,
    TileGrid,
    _stage_arrays,
    _stage_geotiffs,
    _Store,
    _zone_dtype,
    check_chunks,
)

__all__ = ["TileGrid", "TiledGrowthResult", "check_chunks", "grow_tiled", "simulate_tiled"]


class _TiledRun:
    """Drives the steps of one run over the tiles.

    ``hist[n]``: the run's conversions in tile ``n`` as ``(round, cells, codes, periods)``,
    oldest first. Rounds are numbered from 1; ``since[n]``: tile ``n``'s state on its
    worker holds the rounds ``< since[n]`` (0: no state, the next task rebuilds it).
    """

    def __init__(self, ctx: _Ctx, runner: _Runner, T: int, G: int, *, run: int, cache_mb: float | None) -> None:
        self.ctx, self.runner, self.T, self.G = ctx, runner, T, G
        self.run, self.cache_mb = run, cache_mb
        self.grid = ctx.store.grid
        self.tiles = self.grid.tiles()
        self.nb = [self.grid.neighbours(i, j) for i, j in self.tiles]
        self.hist: list[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in self.tiles]
        self.since = [0] * len(self.tiles)
        self.owners = [runner.owner(n) for n in range(len(self.tiles))]
        self.round = 1
        self.period_index = 0
        self.steps = 0

    def _changes(self, n: int, since: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Conversions of the rounds ``>= since`` in tile ``n``'s window (oldest first per cell)."""
        parts = [e for b in self.nb[n] for e in self.hist[b] if e[0] >= since]
        if not parts:
            return np.empty(0, np.int64), np.empty(0, np.uint8), np.empty(0, np.int16)
        g = np.concatenate([e[1] for e in parts])
        m = _in_window(g, self.grid.cols, *self.grid.window(*self.tiles[n]))  # neighbours' halo cells only
        return g[m], np.concatenate([e[2] for e in parts])[m], np.concatenate([e[3] for e in parts])[m]

    def step(self, mode: int, quota: np.ndarray, inertia: np.ndarray,
             keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        conv = np.zeros(self.G, dtype=np.int64)
        if not quota.any():
            return conv, np.empty(0, np.int64), np.empty(0, np.int8)
        self.steps += 1
        rnd = self.round
        groups = _pack_groups(quota, inertia, self.T)
        res: list[Any] = [None] * len(self.tiles)
        todo = list(range(len(self.tiles)))
        while todo:  # a second pass only for tiles whose state was lost (it is rebuilt)
            args = [(self.ctx, n, *self.tiles[n], self.run, self.period_index, self.since[n], rnd, mode, groups,
                     keys, *self._changes(n, self.since[n]), self.cache_mb) for n in todo]
            out = self.runner.map_batched(_tile_step, args, [self.owners[n] for n in todo])
            again = []
            for n, r in zip(todo, out, strict=True):
                if r is None:
                    self.since[n] = 0
                    again.append(n)
                else:
                    res[n] = r
                    self.since[n] = rnd if r[1] else 0
            todo = again
        group = np.concatenate([r[0][0] for r in res])
        gidx = np.concatenate([r[0][3 if mode == 0 else 2] for r in res])
        if mode == 0:  # key brackets: the exact keys only where they do not decide
            width = max(r[0][4] for r in res)
            pos = TK._select_brackets(group, np.concatenate([r[0][1] for r in res]),
                                      np.concatenate([r[0][2] for r in res]), gidx, quota, keys, width)
        else:
            pos = select_smallest(group, np.concatenate([r[0][1] for r in res]), gidx, quota)
        sel_g, sel_c = gidx[pos], group[pos].astype(np.int64)
        k = (sel_c % self.T).astype(np.int8)
        np.add.at(conv, sel_c, 1)
        codes = self.ctx.type_codes[k.astype(np.int64)].astype(np.uint8)
        tile = self.grid.tile_of(sel_g)
        order = np.argsort(tile, kind="stable")
        bounds = np.searchsorted(tile[order], np.arange(len(self.tiles) + 1))
        for n in np.unique(tile).tolist():
            sl = order[bounds[n]:bounds[n + 1]]
            self.hist[n].append((rnd, sel_g[sl], codes[sl], np.full(sl.size, self.period_index, dtype=np.int16)))
        self.round += 1
        return conv, sel_g, k

    def period(self, target: np.ndarray, params: GrowthParams, *, Z: int, seed: int, run: int,
               period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.period_index = period  # the tasks lock this period's conversions, not the earlier ones
        return period_schedule(
            target, params, Z=Z, seed=seed, run=run, period=period,
            frontier_step=lambda q, inertia, keys: self.step(0, q, inertia, keys),
            sweep_step=lambda q, inertia, keys, exclude: self.step(1 if exclude else 2, q, inertia, keys),
        )


# --------------------------------------------------------------------------- results


@dataclass(eq=False)
class TiledGrowthResult:
    """Outcome of :func:`grow_tiled` (maps and counts are on disk, written window by window).

    Attributes
    ----------
    landuse : dict of int to Path
        ``landuse_<year>.tif`` of the representative run.
    counts : dict of (int, str) to Path
        ``counts_<type>_<year>.tif``: in how many runs the cell held that type by the year.
    shortfall, representative_run, run_scores, runs, seed
        As in :class:`~landuse.growth.GrowthResult`.
    steps : int
        Rounds of tile tasks run (per step, every tile once).
    tiles : int
    seconds : dict of str to float
        Wall time of staging, growth and finishing.
    """

    landuse: dict[int, Path]
    counts: dict[tuple[int, str], Path]
    shortfall: pd.DataFrame
    representative_run: int
    run_scores: np.ndarray
    runs: int
    seed: int
    steps: int
    tiles: int
    seconds: dict[str, float]


@dataclass
class _Outcome:
    years: list[int]
    shortfall: pd.DataFrame
    best: int
    scores: np.ndarray
    steps: int


_Logs = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per run: cells (global), type indices, period indices


def _grow(ctx: _Ctx, runner: _Runner, params: GrowthParams, tgt: np.ndarray, years: list[int], *, Z: int,
          runs: int, seed: int, progress: Callable[[dict[str, Any]], None] | None,
          finish: Callable[[_Logs], tuple[int, np.ndarray]], cache_mb: float | None) -> _Outcome:
    """All runs and periods over the tiles, then ``finish(logs)``: counts, outputs, ``(representative run, scores)``."""
    grid = ctx.store.grid
    T = len(params.type_codes)
    G = (Z + 1) * T
    P = len(years)
    logs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    convs = []
    steps = 0
    cell_dtype = np.int32 if grid.rows * grid.cols < 2**31 else np.int64
    try:
        for r in range(runs):
            tr = _TiledRun(ctx, runner, T, G, run=r, cache_mb=cache_mb)
            cs, ks, ps, cv = [], [], [], []
            for p, year in enumerate(years):
                conv, c, k = tr.period(tgt[p].reshape(-1), params, Z=Z, seed=seed, run=r, period=p)
                cs.append(c.astype(cell_dtype))
                ks.append(k)
                ps.append(np.full(c.size, p, dtype=np.int16))
                cv.append(conv)
                if progress is not None:
                    progress({"run": r, "runs": runs, "period": year, "period_index": p, "periods": P,
                              "converted": int(conv.sum()), "shortfall": int(tgt[p].sum() - conv.sum())})
            steps += tr.steps
            logs.append((np.concatenate(cs), np.concatenate(ks), np.concatenate(ps)))
            convs.append(np.array(cv, dtype=np.int64).reshape(P, G))
    finally:
        runner.drop_states(ctx.store.root)

    best, scores = finish(logs)

    conv_all = np.stack(convs)
    # every conversion is counted in its (zone, type) group, so the representative run's
    # converted cells per group are its conv
    shortfall = shortfall_table(years, tgt, params, convs[best], conv_all.min(axis=0), conv_all.max(axis=0))
    return _Outcome(years=years, shortfall=shortfall, best=best, scores=scores, steps=steps)


def _run_scores(partial: np.ndarray, logs: _Logs, runs: int) -> np.ndarray:
    """Run scores from the summed partial scores, as the in-memory engine computes them."""
    return np.array([float(partial[r]) / (runs * max(1, logs[r][0].size)) for r in range(runs)])


def _finish_tiles(ctx: _Ctx, runner: _Runner, logs: _Logs, *, runs: int, P: int, T: int,
                  sink: Callable[[int, tuple[int, int], np.ndarray, np.ndarray], None]) -> tuple[int, np.ndarray]:
    """Counts, representative run and outputs tile by tile (``sink`` receives each tile's maps and counts)."""
    grid = ctx.store.grid
    tiles = grid.tiles()
    per_tile: list[_Logs] = [[] for _ in tiles]  # logs bucketed by tile (cells of one tile only)
    for c, k, p in logs:
        tile = grid.tile_of(c)
        order = np.argsort(tile, kind="stable")  # stable: a cell's conversions stay oldest first
        bounds = np.searchsorted(tile[order], np.arange(len(tiles) + 1))
        for n in range(len(tiles)):
            sl = order[bounds[n]:bounds[n + 1]]
            per_tile[n].append((c[sl].astype(np.int64), k[sl], p[sl]))
    # one run: it is the representative run, so the scores come with the outputs (one pass)
    scores = None if runs == 1 else _run_scores(np.sum(np.stack(
        runner.map(_tile_finish, [(ctx, i, j, runs, P, T, per_tile[n], None) for n, (i, j) in enumerate(tiles)])),
        axis=0), logs, runs)
    best = 0 if scores is None else int(np.argmax(scores))
    args = [(ctx, i, j, runs, P, T, per_tile[n], best) for n, (i, j) in enumerate(tiles)]
    partial = []
    for n, (maps, counts, part) in runner.map_unordered(_tile_finish, args):
        sink(n, tiles[n], maps, counts)
        partial.append(part)
    if scores is None:
        scores = _run_scores(np.sum(np.stack(partial), axis=0), logs, runs)
    return best, scores


def _years_targets(targets: pd.DataFrame, params: GrowthParams, Z: int,
                   zone_cells: np.ndarray) -> tuple[list[int], np.ndarray]:
    years = period_years(targets, params)
    return years, target_array(targets, years, Z, params.types, zone_cells)


def _workdir(workdir: str | os.PathLike | None) -> Path:
    """A new tile store folder (removed by the caller) in ``workdir``, by default the system's temporary folder."""
    if workdir is not None:
        make_output_dir(workdir, option="workdir")
    return Path(tempfile.mkdtemp(prefix="landuse-tiles-", dir=workdir))


# --------------------------------------------------------------------------- public API


def simulate_tiled(
    landscape: xr.Dataset,
    targets: pd.DataFrame,
    *,
    params: GrowthParams,
    chunks: int,
    runs: int = 10,
    seed: int = 0,
    client: Any | None = None,
    workdir: str | os.PathLike | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    cache_mb: float | None = None,
) -> GrowthResult:
    """:func:`landuse.growth.simulate` computed tile by tile (same result, bit for bit).

    The landscape is staged into a tile store, every step runs as blockwise tasks with a
    halo of the neighbourhood radius, and the maps and counts are assembled from the
    tiles' outputs. For rasters larger than memory use :func:`grow_tiled` (GeoTIFFs in
    and out); this function returns the in-memory :class:`~landuse.growth.GrowthResult`.

    Parameters
    ----------
    landscape, targets, params, runs, seed, progress
        As for :func:`landuse.growth.simulate`.
    chunks : int
        Tile edge in cells (at least the neighbourhood window edge).
    client : dask.distributed.Client, optional
        Run the tile tasks on this client's workers; by default here, tile after tile.
    workdir : path, optional
        Parent folder of the temporary tile store (must be visible to every worker);
        default: the system's temporary folder. Removed at the end.
    cache_mb : float, optional
        Memory per process (each worker, or this one without ``client``) for tile states
        kept between steps, in MiB: a tile whose state fits is stepped incrementally (its
        window stays in memory with its frontier updated at the converted cells); the
        others re-read their window every step. Default: half the worker's memory limit
        (a quarter of the machine's memory here); 0 keeps no state. The result does not
        depend on it.

    Returns
    -------
    GrowthResult
    """
    runs, seed, lu0 = check_inputs(landscape, params, runs, seed)
    chunks = check_chunks(chunks, neighbourhood=params.neighbourhood)
    zones = zone_raster(landscape)
    Z = int(zones.max(initial=0))
    zone_cells = zone_cell_counts(zones.reshape(-1), Z)
    years, tgt = _years_targets(targets, params, Z, zone_cells)
    rows, cols = lu0.shape
    grid = TileGrid(rows, cols, chunks, params.neighbourhood // 2)
    root = _workdir(workdir)
    try:
        store = _Store(str(root), grid)
        runner = _Runner(client)  # starts the step actors while this process stages the tiles
        zdt = _zone_dtype(Z)
        # numpy's copies and the file writes release the GIL: threads stage tiles side by side
        # (8192^2 in 2048^2 tiles, 2 cores: 0.13-0.14 s in one thread, 0.07-0.08 s in two)
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda ij: _stage_arrays(store, lu0, zones, params.potential, *ij, zone_dtype=zdt),
                          grid.tiles()))
        ctx = _Ctx.build(store, params)
        P, T = len(years), len(params.type_codes)
        done: dict[str, np.ndarray] = {}

        def finish(logs: _Logs) -> tuple[int, np.ndarray]:
            # the landscape is in memory here: counts and maps of the whole raster in this
            # process (the per-tile finishing of grow_tiled gives the same, with transfers).
            # The store is not read again: removed first, its memory (the page cache of every
            # layer) is free before the counts and maps are allocated (a lower peak, and
            # recently used pages: on the 8192^2 benchmark's VM, freshly faulted memory cost
            # up to 0.4 s more for the counts)
            shutil.rmtree(root, ignore_errors=True)
            local = [c.astype(np.int64) for c, _, _ in logs]
            done["counts"], partial = _counts_and_scores(rows * cols, P, T, runs, local, logs)
            scores = _run_scores(partial, logs, runs)
            best = int(np.argmax(scores))
            lu = np.ascontiguousarray(lu0, dtype=np.uint8).reshape(-1).copy()
            done["maps"] = _replay_maps(lu, local[best], logs[best][1], logs[best][2], P, ctx.type_codes)
            return best, scores

        out = _grow(ctx, runner, params, tgt, years, Z=Z, runs=runs, seed=seed, progress=progress,
                    finish=finish, cache_mb=cache_mb)
        maps = [m.reshape(rows, cols) for m in done["maps"]]
        counts = done["counts"].reshape(P, T, rows, cols)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    georef = georef_of(landscape)
    nodata = int(landscape["landuse"].attrs.get("nodata", 255))
    landuse = {}
    for p, year in enumerate(years):
        da = xr.DataArray(maps[p], dims=("y", "x"), coords={"y": landscape.y, "x": landscape.x},
                          name=f"landuse_{year}", attrs={"nodata": nodata, "run": out.best, "seed": seed})
        landuse[year] = set_georef(da, None, coord=georef)
    counts_da = xr.DataArray(counts, dims=("period", "type", "y", "x"),
                             coords={"period": years, "type": list(params.types), "y": landscape.y, "x": landscape.x},
                             name="conversion_counts", attrs={"runs": runs, "seed": seed})
    return GrowthResult(landuse=landuse, counts=counts_da, runs=runs, seed=seed, shortfall=out.shortfall,
                        representative_run=out.best, run_scores=out.scores)


def grow_tiled(
    landuse: str | os.PathLike,
    zones: str | os.PathLike,
    potential: str | os.PathLike,
    targets: pd.DataFrame,
    *,
    params: GrowthParams,
    chunks: int,
    out_dir: str | os.PathLike,
    runs: int = 10,
    seed: int = 0,
    client: Any | None = None,
    workdir: str | os.PathLike | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    cache_mb: float | None = None,
) -> TiledGrowthResult:
    """Grow from GeoTIFFs to GeoTIFFs, window by window (rasters larger than memory).

    Parameters
    ----------
    landuse : path
        Start land use (uint8 class codes).
    zones : path
        Zone ids (integers, 0 or nodata = outside every zone; mask the study area here).
    potential : path
        Static potential per urban type, one uint8 band per type, quantised with
        :func:`landuse.growth.quantise_potential` (band ``k`` = ``params.types[k]``).
    targets : DataFrame
        As for :func:`landuse.growth.simulate`.
    params : GrowthParams
        Conversion matrix, type codes and growth options; its ``potential`` array is not
        used (the ``potential`` file is), so a ``(T, 1, 1)`` placeholder will do.
    chunks : int
        Tile edge in cells.
    out_dir : path
        Receives ``landuse_<year>.tif`` and ``counts_<type>_<year>.tif`` (tiled GeoTIFFs,
        written window by window to a temporary file, then renamed).
    runs, seed, progress
        As for :func:`landuse.growth.simulate`.
    client : dask.distributed.Client, optional
        Run the tile tasks (staging, steps, finishing) on its workers.
    workdir : path, optional
        Parent folder of the tile store (visible to every worker); removed at the end.
    cache_mb : float, optional
        As for :func:`simulate_tiled`.

    Returns
    -------
    TiledGrowthResult
    """
    chunks = check_chunks(chunks, neighbourhood=params.neighbourhood)
    paths = (str(landuse), str(zones), str(potential))
    rows, cols, profile, cmap = _input_grid(paths, params)
    grid = TileGrid(rows, cols, chunks, params.neighbourhood // 2)
    runner = _Runner(client)
    root = _workdir(workdir)
    out_dir = Path(out_dir)
    make_output_dir(out_dir)
    secs: dict[str, float] = {}
    opened: list[WindowedGeoTIFF] = []
    # the windows are written once and never read back: GDAL's block cache need not grow
    with gdal_block_cache(_GDAL_CACHE_MB):
        try:
            t0 = time.perf_counter()
            store = _Store(str(root), grid)
            zc = runner.map(_stage_geotiffs, [(store, paths, i, j, 0) for i, j in grid.tiles()])
            Z = max(len(b) for b in zc) - 1
            zone_cells = np.zeros(Z + 1, dtype=np.int64)
            for b in zc:
                zone_cells[:len(b)] += b
            years, tgt = _years_targets(targets, params, Z, zone_cells)
            secs["stage"] = time.perf_counter() - t0
            ctx = _Ctx.build(store, params)
            grid_kw = dict(height=rows, width=cols, crs=profile["crs"], transform=profile["transform"])
            lu_paths = {y: out_dir / f"landuse_{y}.tif" for y in years}
            cnt_paths = {(y, t): out_dir / f"counts_{t}_{y}.tif" for y in years for t in params.types}
            ds_lu, ds_cnt = _open_outputs(opened, grid_kw, lu_paths, cnt_paths, params, nodata=profile["nodata"],
                                          cmap=cmap, count_dtype=count_dtype(runs), seed=seed, runs=runs)

            def sink(n: int, ij: tuple[int, int], m: np.ndarray, c: np.ndarray) -> None:
                win = grid.interior(*ij)
                for p, y in enumerate(years):
                    ds_lu[p].write(m[p], win)
                    for k, t in enumerate(params.types):
                        ds_cnt[y, t].write(c[p, k], win)

            t0 = time.perf_counter()
            out = _grow(ctx, runner, params, tgt, years, Z=Z, runs=runs, seed=seed, progress=progress,
                        finish=lambda logs: _finish_tiles(ctx, runner, logs, runs=runs, P=len(years),
                                                          T=len(params.type_codes), sink=sink), cache_mb=cache_mb)
            secs["grow_and_write"] = time.perf_counter() - t0
            for d in opened:
                d.commit(run=out.best)
            opened = []
        finally:
            for d in opened:
                d.discard()
            shutil.rmtree(root, ignore_errors=True)
    return TiledGrowthResult(landuse=lu_paths, counts=cnt_paths, shortfall=out.shortfall, representative_run=out.best,
                             run_scores=out.scores, runs=runs, seed=seed, steps=out.steps, tiles=len(grid.tiles()),
                             seconds=secs)


def _input_grid(paths: tuple[str, str, str], params: GrowthParams) -> tuple[int, int, dict[str, Any], Any]:
    """Rows, columns, georeferencing and colour map of the land use; the zones and potential on its grid."""
    profile = raster_profile(paths[0])
    rows, cols = profile["height"], profile["width"]
    for pth in paths[1:]:
        other = raster_profile(pth)
        if (other["height"], other["width"]) != (rows, cols) or other["transform"] != profile["transform"]:
            raise GridMismatchError(f"{pth} ({other['height']} x {other['width']}, {other['transform']}) is not on the "
                                    f"grid of {paths[0]} ({rows} x {cols}, {profile['transform']}); align it first")
        if pth == paths[2] and other["count"] != len(params.type_codes):
            raise GrowthInputError(f"{pth} has {other['count']} band(s) but there are {len(params.type_codes)} "
                                   "urban types; write one quantised potential band per type")
    return rows, cols, profile, profile["colormap"]


def _open_outputs(opened: list[WindowedGeoTIFF], grid_kw: dict[str, Any], lu_paths: dict[int, Path],
                  cnt_paths: dict[tuple[int, str], Path], params: GrowthParams, *, nodata: Any, cmap: Any,
                  count_dtype: Any, seed: int, runs: int) -> tuple[list[WindowedGeoTIFF], dict[tuple[int, str], Any]]:
    """Open every output GeoTIFF, written window by window (each also listed in ``opened``)."""
    ds_lu, ds_cnt = [], {}
    for y in lu_paths:
        d = WindowedGeoTIFF(lu_paths[y], dtype="uint8", nodata=nodata, tags=dict(seed=seed, runs=runs), colormap=cmap,
                            **grid_kw)
        opened.append(d)
        ds_lu.append(d)
        for t in params.types:
            dc = WindowedGeoTIFF(cnt_paths[y, t], dtype=count_dtype, nodata=None,
                                 tags=dict(seed=seed, runs=runs, type=t, period=y), **grid_kw)
            opened.append(dc)
            ds_cnt[y, t] = dc
    return ds_lu, ds_cnt
