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
window with rasterio; outputs are written window by window (GeoTIFFs, atomically). A tile
state is about ``(chunk + 2r)^2 x (5 + T)`` bytes, and a worker keeps states up to its
budget only, so memory per worker follows its limit and the chunk size, not the raster
size. The driver holds the conversion logs (proportional to converted cells x runs,
as the in-memory engine) and the per-step candidate lists (at most the sum of the quotas
per tile). See ``docs/scaling.md``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numba import get_num_threads

from landuse.core.errors import GridMismatchError, make_output_dir
from landuse.core.landscape import georef_of, set_georef
from landuse.growth.frontier import build_frontier, eligible_bits, update_frontier
from landuse.growth.kernels import score_log, sweep_topk
from landuse.growth.params import GrowthInputError, GrowthParams, GrowthResult, potential_levels
from landuse.growth.plan import (
    add_counts,
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
from landuse.scale import tiled_kernels as TK

_GDAL_CACHE_MB = 64  # GDAL block cache of the output writer (MB)

__all__ = ["TileGrid", "TiledGrowthResult", "check_chunks", "grow_tiled", "simulate_tiled"]


def check_chunks(chunks: Any, *, neighbourhood: int = 7) -> int:
    """Validate a tile edge in cells: a whole number of at least ``neighbourhood`` cells.

    >>> check_chunks(16, neighbourhood=3)
    16
    """
    ok = isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool)
    if not ok or int(chunks) < neighbourhood:
        raise GrowthInputError(
            f"chunks must be a whole number of cells >= {neighbourhood} (the neighbourhood window edge), got "
            f"{chunks!r}; use e.g. --chunks 2048 (tile edge in cells) or compute.chunks: 2048"
        )
    return int(chunks)


@dataclass(frozen=True)
class TileGrid:
    """Square tiles of edge ``chunk`` over a ``rows x cols`` raster, with a halo of ``radius`` cells."""

    rows: int
    cols: int
    chunk: int
    radius: int

    @property
    def ny(self) -> int:
        return -(-self.rows // self.chunk)

    @property
    def nx(self) -> int:
        return -(-self.cols // self.chunk)

    def tiles(self) -> list[tuple[int, int]]:
        """Tile indices ``(i, j)`` in row-major order."""
        return [(i, j) for i in range(self.ny) for j in range(self.nx)]

    def interior(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(r0, r1, c0, c1)`` of tile ``(i, j)``."""
        r0, c0 = i * self.chunk, j * self.chunk
        return r0, min(self.rows, r0 + self.chunk), c0, min(self.cols, c0 + self.chunk)

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """The tile with its halo, clipped at the raster's edges."""
        r0, r1, c0, c1 = self.interior(i, j)
        rd = self.radius
        return max(0, r0 - rd), min(self.rows, r1 + rd), max(0, c0 - rd), min(self.cols, c1 + rd)

    def tile_of(self, g: np.ndarray) -> np.ndarray:
        """Flat tile number (``i * nx + j``) of global flat cell indices."""
        g = np.asarray(g, dtype=np.int64)
        return (g // self.cols // self.chunk) * self.nx + (g % self.cols) // self.chunk

    def neighbours(self, i: int, j: int) -> list[int]:
        """Flat numbers of the tiles that a halo window of tile ``(i, j)`` may touch (itself included)."""
        return [a * self.nx + b for a in range(max(0, i - 1), min(self.ny, i + 2))
                for b in range(max(0, j - 1), min(self.nx, j + 2))]


# --------------------------------------------------------------------------- tile store


@dataclass(frozen=True)
class _Store:
    """A folder of per-tile ``.npy`` files, each holding its tile's window (the tile with its halo).

    A tile state maps its window (copy-on-write); the finishing pass reads the interior
    through a memory map.
    """

    root: str
    grid: TileGrid

    def path(self, name: str, i: int, j: int) -> str:
        return os.path.join(self.root, f"{name}_{i}_{j}.npy")

    def write(self, name: str, i: int, j: int, arr: np.ndarray) -> None:
        final = self.path(name, i, j)
        tmp = f"{final}.{os.getpid()}.part"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr))
        os.replace(tmp, final)

    def window(self, name: str, i: int, j: int) -> np.ndarray:
        """Layer ``name`` on tile ``(i, j)``'s window (:meth:`TileGrid.window`; leading axes kept).

        A private copy-on-write map of the file: its pages come from the page cache as they
        are read (a few faults per 64 KiB, no copy), and only the pages written to are copied
        (the land use at converted cells); the file itself never changes. Reading the window
        into new memory instead cost 50 ms per 2048^2 window in a Dask worker (a page fault
        per 4 KiB of fresh memory), more than building its frontier. Where the file system
        cannot map files, the window is read into memory instead (same values).
        """
        return self._load(name, i, j, "c")

    def _load(self, name: str, i: int, j: int, mode: str) -> np.ndarray:
        path = self.path(name, i, j)
        try:
            return np.load(path, mmap_mode=mode)
        except OSError:  # e.g. a file system without mmap support
            return np.load(path)

    def interior(self, name: str, i: int, j: int) -> np.ndarray:
        """Layer ``name`` on tile ``(i, j)`` without its halo, a new array."""
        a = self._load(name, i, j, "r")
        wr0, _, wc0, _ = self.grid.window(i, j)
        r0, r1, c0, c1 = self.grid.interior(i, j)
        return np.array(a[..., r0 - wr0:r1 - wr0, c0 - wc0:c1 - wc0])


def _zero_halo(grid: TileGrid, i: int, j: int, z: np.ndarray) -> np.ndarray:
    """``z`` (tile ``(i, j)``'s window) with its halo set to zone 0: context for neighbour counts, never candidates."""
    wr0, _, wc0, _ = grid.window(i, j)
    r0, r1, c0, c1 = grid.interior(i, j)
    z[:r0 - wr0, :] = 0
    z[r1 - wr0:, :] = 0
    z[:, :c0 - wc0] = 0
    z[:, c1 - wc0:] = 0
    return z


def _zone_dtype(Z: int) -> type:
    """The smallest dtype of the staged zone ids (fewer bytes to write, read and keep in tile states)."""
    return np.uint8 if Z < 2**8 else np.uint16 if Z < 2**16 else np.int32


def _stage_arrays(store: _Store, lu: np.ndarray, zones: np.ndarray, pot: np.ndarray, i: int, j: int, *,
                  zone_dtype: type = np.int32) -> None:
    wr0, wr1, wc0, wc1 = store.grid.window(i, j)
    store.write("lu0", i, j, lu[wr0:wr1, wc0:wc1])
    store.write("zones", i, j, _zero_halo(store.grid, i, j, zones[wr0:wr1, wc0:wc1].astype(zone_dtype)))
    store.write("pot", i, j, pot[:, wr0:wr1, wc0:wc1])


def _stage_geotiffs(store: _Store, paths: tuple[str, str, str], i: int, j: int, zmax_hint: int) -> np.ndarray:
    """Read tile ``(i, j)``'s window of each GeoTIFF (a rasterio window) into the store; return the
    bincount of the tile's zones (its interior only)."""
    import rasterio
    from rasterio.windows import Window

    grid = store.grid
    wr0, wr1, wc0, wc1 = grid.window(i, j)
    r0, r1, c0, c1 = grid.interior(i, j)
    win = Window(wc0, wr0, wc1 - wc0, wr1 - wr0)
    with rasterio.open(paths[0]) as src:
        store.write("lu0", i, j, src.read(1, window=win).astype(np.uint8, copy=False))
    with rasterio.open(paths[1]) as src:
        z = src.read(1, window=win)
        nd = src.nodata
    if z.dtype.kind not in "iu":
        raise GrowthInputError(f"{paths[1]}: zone raster must hold integer zone ids, got {z.dtype}")
    z = z.astype(np.int64)
    if nd is not None:
        z[z == int(nd)] = 0
    if z.size and int(z.min()) < 0:
        raise GrowthInputError(f"{paths[1]}: negative zone ids in rows {wr0}..{wr1}, cols {wc0}..{wc1}; 0 marks "
                               "cells outside every zone")
    counts = np.bincount(z[r0 - wr0:r1 - wr0, c0 - wc0:c1 - wc0].reshape(-1), minlength=zmax_hint + 1)
    # each tile's zone ids in the smallest dtype that holds them (its state keeps that dtype)
    store.write("zones", i, j, _zero_halo(grid, i, j, z.astype(_zone_dtype(int(z.max(initial=0))))))
    with rasterio.open(paths[2]) as src:
        store.write("pot", i, j, src.read(window=win).astype(np.uint8, copy=False))
    return counts


# --------------------------------------------------------------------------- tile tasks


@dataclass(frozen=True)
class _Ctx:
    """Everything a tile task needs besides the per-step arrays (small; shipped with each task)."""

    store: _Store
    allowed: np.ndarray
    code_type: np.ndarray
    packed: np.ndarray
    type_codes: np.ndarray
    weights: np.ndarray
    strength: float
    levels: np.ndarray = field(default_factory=potential_levels)

    @classmethod
    def build(cls, store: _Store, params: GrowthParams) -> _Ctx:
        code_type, packed = params.type_tables()
        return cls(store=store, allowed=params.allowed, code_type=code_type, packed=packed,
                   type_codes=np.asarray(params.type_codes, dtype=np.int64), weights=params.neighbourhood_weights,
                   strength=float(params.neighbourhood_strength))


def _to_local(g: np.ndarray, gcols: int, r0: int, c0: int, cols: int) -> np.ndarray:
    r = g // gcols
    return (r - r0) * cols + (g - r * gcols - c0)


def _in_window(g: np.ndarray, gcols: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    r = g // gcols
    c = g - r * gcols
    return (r >= r0) & (r < r1) & (c >= c0) & (c < c1)


@dataclass
class _TileState:
    """A tile's window kept on its worker between steps (the tiled twin of the engine's run state).

    ``version``: the driver's step rounds ``< version`` are applied; ``period``: the period
    whose conversions are locked in ``lock``.
    """

    run: int
    period: int
    version: int
    lu: np.ndarray
    zones: np.ndarray
    pot: np.ndarray
    elig: np.ndarray
    frontier: np.ndarray
    lock: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.lu, self.zones, self.pot, self.elig, self.frontier, self.lock))


# tile states of this process (a Dask worker or the driver), keyed by (tile store, tile number)
_STATES: dict[tuple[str, int], _TileState] = {}
_STATE_BYTES: dict[str, int] = {}
_STATE_LOCK = threading.Lock()


def _state_budget(cache_mb: float | None) -> int:
    """Bytes of tile state this process may keep: ``cache_mb``, else half the worker's memory limit
    (a quarter of the machine's memory outside a worker)."""
    if cache_mb is not None:
        return int(cache_mb * 2**20)
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
        if limit:
            return int(limit) // 2
    except (ImportError, ValueError, AttributeError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 1 << 30


def _drop_states(root: str) -> int:
    """Forget every tile state of the store ``root`` in this process; returns the bytes freed."""
    with _STATE_LOCK:
        for key in [k for k in _STATES if k[0] == root]:
            del _STATES[key]
        return _STATE_BYTES.pop(root, 0)


def _new_state(ctx: _Ctx, i: int, j: int, run: int, period: int, version: int, g: np.ndarray, code: np.ndarray,
               per: np.ndarray) -> _TileState:
    """The tile's window from the store with the run's conversions ``g``/``code``/``per`` applied."""
    grid = ctx.store.grid
    win = grid.window(i, j)
    wr0, wr1, wc0, wc1 = win
    h, w = wr1 - wr0, wc1 - wc0
    lu = ctx.store.window("lu0", i, j).reshape(-1)
    # zone ids as staged (the smallest dtype that holds them; halo cells are zone 0)
    zones = ctx.store.window("zones", i, j).reshape(-1)
    pot = ctx.store.window("pot", i, j).reshape(-1, h * w)
    lock = np.zeros((h * w + 63) // 64, dtype=np.uint64)
    if g.size:  # the latest conversion of a cell wins (a cell may convert again in a later period)
        TK._apply_changes(lu, lock, g, code, per, period, wr0, wr1, wc0, wc1, grid.cols)
    elig = eligible_bits(lu, zones, pot, ctx.allowed)
    frontier = build_frontier(elig, lu, ctx.code_type, h, w, grid.radius)
    return _TileState(run=run, period=period, version=version, lu=lu, zones=zones, pot=pot, elig=elig,
                      frontier=frontier, lock=lock)


def _advance(ctx: _Ctx, st: _TileState, i: int, j: int, period: int, version: int, g: np.ndarray, code: np.ndarray,
             per: np.ndarray) -> None:
    """Apply the conversions of the rounds ``[st.version, version)`` and update the bitsets in place.

    Conversions only turn cells into urban types, so the frontier changes only at the
    converted cells and in their windows: the engine's own incremental update
    (:func:`landuse.growth.frontier.update_frontier`) gives the bitsets a rebuild would give.
    """
    grid = ctx.store.grid
    win = grid.window(i, j)
    if period != st.period:  # a new period: the cells converted in the last one may change again
        st.lock[:] = 0
        st.period = period
    if g.size:
        loc = TK._apply_changes(st.lu, st.lock, g, code, per, period, *win, grid.cols)
        if loc.size:
            update_frontier(st.frontier, st.elig, loc, st.lu, st.zones, st.pot, ctx.allowed,
                            ctx.code_type, win[1] - win[0], win[3] - win[2], grid.radius)
    st.version = version


def _pack_groups(quota: np.ndarray, inertia: np.ndarray, T: int) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """The open groups' quotas and inertia, as sent to the tiles (``G`` entries each in full).

    Zone ids are often sparse (a zone raster's ids run to thousands), and only the groups
    with a quota left are ever read, so a step's message carries those alone.
    """
    idx = np.flatnonzero(quota > 0)
    return quota.size, T, idx.astype(np.int32), quota[idx], np.ascontiguousarray(inertia).reshape(-1)[idx]


def _unpack_groups(packed: tuple[int, int, np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(quota, inertia)`` back from :func:`_pack_groups`: zero for the closed groups (never read)."""
    G, T, idx, q, w = packed
    quota = np.zeros(G, dtype=np.int64)
    quota[idx] = q
    inertia = np.zeros(G, dtype=np.float64)
    inertia[idx] = w
    return quota, inertia.reshape(-1, T)


def _tile_step(ctx: _Ctx, n: int, i: int, j: int, run: int, period: int, since: int, version: int,
               mode: int, groups: tuple[int, int, np.ndarray, np.ndarray, np.ndarray], keys: np.ndarray,
               g: np.ndarray, code: np.ndarray, per: np.ndarray, cache_mb: float | None,
               ) -> tuple[tuple[Any, ...], bool] | None:
    """One step on one tile with its state kept in this process between steps.

    ``since`` 0: build the state from the store and ``g``/``code``/``per``, the run's
    conversions so far around the tile (oldest first). Otherwise the state of rounds
    ``< since`` must be here: ``g``/``code``/``per`` hold the conversions of the rounds
    ``[since, version)`` only; returns None when the state is missing (worker restarted,
    task moved), and the driver sends the whole history instead. Returns the tile's
    candidates (:func:`_tile_keys`) and whether the state was kept (within the process's
    budget, ``cache_mb``). ``groups``: the quotas and inertia
    as :func:`_pack_groups` sends them.
    """
    quota, inertia = _unpack_groups(groups)
    key = (ctx.store.root, n)
    with _STATE_LOCK:
        st = _STATES.get(key)
    if since:
        if st is None or st.run != run or st.version != since:
            return None
        _advance(ctx, st, i, j, period, version, g, code, per)
        kept = True
    else:
        st = _new_state(ctx, i, j, run, period, version, g, code, per)
        kept = _keep(ctx.store.root, n, st, cache_mb)
    return _tile_keys(ctx, st, i, j, mode, quota, inertia, keys), kept


def _keep(root: str, n: int, st: _TileState, cache_mb: float | None) -> bool:
    """Register tile ``n``'s state in this process if it fits the budget (replacing an older one)."""
    key = (root, n)
    with _STATE_LOCK:
        old = _STATES.pop(key, None)
        used = _STATE_BYTES.get(root, 0) - (old.nbytes if old is not None else 0)
        kept = used + st.nbytes <= _state_budget(cache_mb)
        if kept:
            _STATES[key] = st
            used += st.nbytes
        _STATE_BYTES[root] = used
    return kept


def _tile_keys(ctx: _Ctx, st: _TileState, i: int, j: int, mode: int, quota: np.ndarray, inertia: np.ndarray,
               keys: np.ndarray) -> tuple[Any, ...]:
    """The tile's candidates that may be selected (``mode`` 0: frontier step, 1: new patches, 2: fill).

    Mode 0: ``(group, hi, w, gidx, width)`` of :func:`tiled_kernels._frontier_brackets`
    (key brackets; the driver selects with :func:`tiled_kernels._select_brackets`).
    Otherwise ``(group, t, gidx)``: the ``quota`` smallest exact keys per group.
    """
    grid = ctx.store.grid
    wr0, wr1, wc0, wc1 = grid.window(i, j)
    h, w = wr1 - wr0, wc1 - wc0
    nchunks = max(1, min(get_num_threads(), h))
    if mode == 0:  # one pass over the frontier bits, brackets of the keys of _frontier_keys
        return TK._frontier_brackets(st.frontier, st.lu, st.zones, st.pot, ctx.levels, ctx.allowed, ctx.packed,
                                     ctx.weights, ctx.strength, h, w, grid.radius, inertia, quota, keys, st.lock,
                                     wr0, wc0, grid.cols, nchunks)
    # new patches or fill: the engine's sweep kernel
    group, t, gidx = sweep_topk(st.lu, st.zones, st.pot, ctx.levels, ctx.allowed, st.frontier, st.lock,
                                mode == 1, quota, inertia, keys, h, w, wr0, wc0, grid.cols, nchunks)
    if nchunks == 1:  # one heap per group: already the quota smallest
        return group, t, gidx
    pos = select_smallest(group, t, gidx, quota)
    return group[pos], t[pos], gidx[pos]


def _counts_and_scores(n: int, P: int, T: int, runs: int, local: list[np.ndarray],
                       logs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble counts ``(P, T, n)`` of ``n`` cells from every run's conversions there (local cells
    ``local[r]``, types and periods in ``logs[r]``), and each run's partial score: the sum of the
    counts over its conversions (int64, so partial sums over tiles add up exactly)."""
    counts = np.zeros((P, T, n), dtype=count_dtype(runs))
    seen = np.zeros((n + 63) // 64, dtype=np.uint64)
    for loc, (_, k, per) in zip(local, logs, strict=True):
        add_counts(counts, loc, k, per, seen)
    partial = np.array([int(score_log(counts, loc, k, per)) for loc, (_, k, per) in zip(local, logs, strict=True)],
                       dtype=np.int64)
    return counts, partial


def _replay_maps(lu: np.ndarray, loc: np.ndarray, k: np.ndarray, per: np.ndarray, P: int,
                 type_codes: np.ndarray) -> list[np.ndarray]:
    """Maps of one run, period by period: the start map ``lu`` (flat) with the run's conversions.

    ``lu`` is modified and becomes the last period's map (no copy of the largest array);
    the earlier periods' maps are copies.
    """
    maps = []
    for p in range(P):
        m = per == p
        lu[loc[m]] = type_codes[k[m].astype(np.int64)]
        maps.append(lu if p == P - 1 else lu.copy())
    return maps


def _replay(lu: np.ndarray, loc: np.ndarray, k: np.ndarray, per: np.ndarray, P: int,
            type_codes: np.ndarray) -> np.ndarray:
    """Maps ``(P, n)`` of one run as one array (:func:`_replay_maps`, stacked)."""
    if P == 0:
        return np.empty((0, lu.size), dtype=np.uint8)
    return np.stack(_replay_maps(lu, loc, k, per, P, type_codes))


def _tile_finish(ctx: _Ctx, i: int, j: int, runs: int, P: int, T: int,
                 logs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], best: int | None) -> Any:
    """Counts of the tile from every run's log; then either each run's partial score or the outputs.

    With ``best`` None: int64 per run, the sum of the tile's ensemble counts over the run's
    conversions in the tile (integers, so partial sums add up exactly). Else: the
    representative run's maps ``(P, h, w)``, the counts ``(P, T, h, w)`` and the partial scores.
    """
    grid = ctx.store.grid
    r0, r1, c0, c1 = grid.interior(i, j)
    h, w = r1 - r0, c1 - c0
    local = [_to_local(g, grid.cols, r0, c0, w) for g, _, _ in logs]
    counts, partial = _counts_and_scores(h * w, P, T, runs, local, logs)
    if best is None:
        return partial
    lu = ctx.store.interior("lu0", i, j).reshape(-1)
    _, k, per = logs[best]
    maps = _replay(lu, local[best], k, per, P, ctx.type_codes)
    return maps.reshape(P, h, w), counts.reshape(P, T, h, w), partial


# --------------------------------------------------------------------------- execution


def _batch(fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
    return [fn(*a) for a in calls]


# step actors per client, kept between runs: (workers, actor futures, actors once gathered)
_ACTOR_CACHE: weakref.WeakKeyDictionary[Any, tuple[list[str], list[Any], dict[str, Any] | None]] = (
    weakref.WeakKeyDictionary())


class _StepActor:
    """A Dask actor on one worker that runs the driver's batches of tile tasks in the worker's threads.

    The driver calls it directly (no scheduler in between): a step's round trip is one
    message each way instead of a task's passage through the scheduler (about 1 ms instead
    of 10-20 ms on the 2-core test machine). Each batch runs in a thread of the worker's
    own executor, with the worker in context (``get_worker`` works, e.g. for the state
    budget), so a worker of ``n`` threads steps ``n`` batches at once.
    """

    def __init__(self) -> None:
        from distributed import get_worker

        self.worker = get_worker()

    async def run(self, payload: bytes) -> bytes:
        """Run each batch of ``payload`` (pickled ``(fn, batches)``) in a thread of the worker; their
        results, pickled.

        One pickled message each way: Dask sends every array of the arguments as a frame of
        its own, which cost about 1 ms more per step round on the 2-core test machine.
        """
        import asyncio
        import contextvars

        fn, batches = pickle.loads(payload)
        loop = asyncio.get_running_loop()
        pool = self.worker.executors["default"]
        futs = [loop.run_in_executor(pool, contextvars.copy_context().run, _batch, fn, b) for b in batches]
        return pickle.dumps(list(await asyncio.gather(*futs)), protocol=5)


def _send(actor: Any, fn: Callable[..., Any], batches: list[list[tuple[Any, ...]]]) -> Any:
    """Call ``actor.run`` with ``fn`` and its batches as one pickled message; the call's future."""
    return actor.run(pickle.dumps((fn, batches), protocol=5))


def _receive(call: Any) -> list[list[Any]]:
    """The batches' results of a :func:`_send` call (waits for it)."""
    return pickle.loads(call.result())


class _Runner:
    """Runs a list of tile tasks on a Dask client or here, one after another.

    On a client, tile ``n``'s step tasks go to one worker (``owner(n)``), where its state
    stays between steps: through an actor per worker (:class:`_StepActor`, a direct call
    per worker and step), or, if an actor fails (its worker is gone), as ordinary tasks
    that may run elsewhere (the state is then rebuilt).
    """

    def __init__(self, client: Any | None) -> None:
        self.client = client
        self.slots: list[tuple[str, int]] = []  # (worker, thread) pairs
        self._actors: dict[str, Any] | None = None  # worker -> actor; {} once an actor failed
        self._actor_futs: list[Any] = []
        if client is not None:
            info = client.scheduler_info().get("workers", {})
            self.slots = [(w, k) for w in sorted(info) for k in range(max(1, int(info[w].get("nthreads", 1))))]
            self._actor_workers = sorted(info)
            cached = _ACTOR_CACHE.get(client)
            if cached is not None and cached[0] == self._actor_workers:
                # the actors of an earlier run on this client (same workers): no start-up, and
                # their connections are open
                self._actor_futs, self._actors = cached[1], cached[2]
            else:
                # started now, while the driver stages the inputs; they live as long as their futures
                self._actor_futs = [client.submit(_StepActor, actor=True, pure=False, workers=[w])
                                    for w in self._actor_workers]
                _ACTOR_CACHE[client] = (self._actor_workers, self._actor_futs, None)

    def owner(self, n: int) -> tuple[str, int] | None:
        """The worker thread that steps tile ``n`` (None: this process)."""
        return self.slots[n % len(self.slots)] if self.slots else None

    def _step_actors(self) -> dict[str, Any]:
        if self._actors is None:
            try:
                self._actors = dict(zip(self._actor_workers, self.client.gather(self._actor_futs), strict=True))
                _ACTOR_CACHE[self.client] = (self._actor_workers, self._actor_futs, self._actors)
            except Exception:  # no actors (a worker left): ordinary tasks instead
                self._forget_actors()
        return self._actors

    def _map_actors(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]],
                    batches: dict[tuple[str, int] | None, list[int]]) -> list[Any] | None:
        actors = self._step_actors()
        per_worker: dict[str, list[list[int]]] = {}
        for o, ns in batches.items():
            if o is None or o[0] not in actors:
                return None
            per_worker.setdefault(o[0], []).append(ns)
        try:
            calls = {w: _send(actors[w], fn, [[args[n] for n in ns] for ns in lists]) for w, lists in per_worker.items()}
            done = {w: _receive(c) for w, c in calls.items()}
        except Exception:  # an actor's worker is gone: ordinary tasks from now on
            self._forget_actors()
            return None
        out: list[Any] = [None] * len(args)
        for w, lists in per_worker.items():
            for ns, res in zip(lists, done[w], strict=True):
                for n, r in zip(ns, res, strict=True):
                    out[n] = r
        return out

    def _forget_actors(self) -> None:
        """Stop using the step actors (one failed): release them, here and in the client's cache."""
        if self.client is not None and _ACTOR_CACHE.get(self.client, (None, None))[1] is self._actor_futs:
            del _ACTOR_CACHE[self.client]
        for f in self._actor_futs:
            f.release()
        self._actor_futs = []
        self._actors = {}

    def map_batched(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]],
                    owners: Sequence[tuple[str, int] | None]) -> list[Any]:
        """``[fn(*a) for a in args]``, one batch per worker thread holding all its calls (fewer round trips)."""
        if self.client is None:
            return [fn(*a) for a in args]
        batches: dict[tuple[str, int] | None, list[int]] = {}
        for n, o in enumerate(owners):
            batches.setdefault(o, []).append(n)
        out = self._map_actors(fn, args, batches)
        if out is not None:
            return out
        futs = [self.client.submit(_batch, fn, [args[n] for n in ns], pure=False,
                                   workers=None if o is None else [o[0]], allow_other_workers=True)
                for o, ns in batches.items()]
        out = [None] * len(args)
        for ns, res in zip(batches.values(), self.client.gather(futs), strict=True):
            for n, r in zip(ns, res, strict=True):
                out[n] = r
        return out

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        if self.client is None:
            return [fn(*a) for a in args]
        futs = [self.client.submit(fn, *a, pure=False) for a in args]
        return self.client.gather(futs)

    def drop_states(self, root: str) -> None:
        """Free the tile states of the store ``root`` here and on every worker.

        Through the step actors when they work (a direct call each), else with
        ``client.run`` (through the scheduler, a few ms more).
        """
        _drop_states(root)
        if self.client is None:
            return
        actors = self._actors or {}
        if actors and set(actors) == set(self._actor_workers):
            try:
                for c in [_send(a, _drop_states, [[(root,)]]) for a in actors.values()]:
                    _receive(c)
                return
            except Exception:  # a worker is gone: the scheduler reaches the others
                self._forget_actors()
        self.client.run(_drop_states, root)

    def map_unordered(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> Iterable[tuple[int, Any]]:
        """``(index, result)`` as tasks finish (in order when run here); results are not kept."""
        if self.client is None:
            for n, a in enumerate(args):
                yield n, fn(*a)
            return
        from dask.distributed import as_completed

        # a sliding window of tasks: results (whole tiles) never pile up here faster than
        # the caller writes them
        limit = 2 * max(1, len(self.client.scheduler_info().get("workers", {})))
        index = {}
        todo = iter(enumerate(args))
        ac = as_completed(with_results=True)
        for n, a in todo:
            fut = self.client.submit(fn, *a, pure=False)
            index[fut.key] = n
            ac.add(fut)
            if len(index) >= limit:
                break
        for fut, res in ac:
            nxt = next(todo, None)
            if nxt is not None:
                f2 = self.client.submit(fn, *nxt[1], pure=False)
                index[f2.key] = nxt[0]
                ac.add(f2)
            yield index.pop(fut.key), res
            fut.release()
            del res


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
    import rasterio

    chunks = check_chunks(chunks, neighbourhood=params.neighbourhood)
    paths = (str(landuse), str(zones), str(potential))
    with rasterio.open(paths[0]) as src:
        rows, cols = src.height, src.width
        profile = dict(crs=src.crs, transform=src.transform, nodata=src.nodata)
        try:
            cmap = src.colormap(1)
        except ValueError:
            cmap = None
    for pth in paths[1:]:
        with rasterio.open(pth) as src:
            if (src.height, src.width) != (rows, cols) or src.transform != profile["transform"]:
                raise GridMismatchError(f"{pth} ({src.height} x {src.width}, {src.transform}) is not on the grid of "
                                        f"{paths[0]} ({rows} x {cols}, {profile['transform']}); align it first")
            if pth == paths[2] and src.count != len(params.type_codes):
                raise GrowthInputError(f"{pth} has {src.count} band(s) but there are {len(params.type_codes)} "
                                       "urban types; write one quantised potential band per type")
    grid = TileGrid(rows, cols, chunks, params.neighbourhood // 2)
    runner = _Runner(client)
    root = _workdir(workdir)
    out_dir = Path(out_dir)
    make_output_dir(out_dir)
    secs: dict[str, float] = {}
    opened: list[tuple[Any, Path, Path]] = []
    # GDAL keeps written blocks in its cache until the cache is full (default 5 % of the
    # machine's memory): bound it, the windows are written once and never read back
    gdal_env = rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB)
    gdal_env.__enter__()
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
        cdt = count_dtype(runs)
        base = dict(driver="GTiff", width=cols, height=rows, count=1, crs=profile["crs"],
                    transform=profile["transform"], tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                    BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")  # blocks compressed in GDAL's threads
        lu_paths = {y: out_dir / f"landuse_{y}.tif" for y in years}
        cnt_paths = {(y, t): out_dir / f"counts_{t}_{y}.tif" for y in years for t in params.types}
        ds_lu, ds_cnt = [], {}
        for y in years:
            tmp = lu_paths[y].with_name(f".{lu_paths[y].name}.part")
            d = rasterio.open(tmp, "w", dtype="uint8", nodata=profile["nodata"], **base)
            if cmap:
                d.write_colormap(1, cmap)
            d.update_tags(seed=seed, runs=runs)
            opened.append((d, tmp, lu_paths[y]))
            ds_lu.append(d)
            for t in params.types:
                tmpc = cnt_paths[y, t].with_name(f".{cnt_paths[y, t].name}.part")
                dc = rasterio.open(tmpc, "w", dtype=np.dtype(cdt).name, nodata=None, **base)
                dc.update_tags(seed=seed, runs=runs, type=t, period=y)
                opened.append((dc, tmpc, cnt_paths[y, t]))
                ds_cnt[y, t] = dc

        def sink(n: int, ij: tuple[int, int], m: np.ndarray, c: np.ndarray) -> None:
            from rasterio.windows import Window

            r0, r1, c0, c1 = grid.interior(*ij)
            win = Window(c0, r0, c1 - c0, r1 - r0)
            for p, y in enumerate(years):
                ds_lu[p].write(m[p], 1, window=win)
                for k, t in enumerate(params.types):
                    ds_cnt[y, t].write(c[p, k], 1, window=win)

        t0 = time.perf_counter()
        out = _grow(ctx, runner, params, tgt, years, Z=Z, runs=runs, seed=seed, progress=progress,
                    finish=lambda logs: _finish_tiles(ctx, runner, logs, runs=runs, P=len(years),
                                                      T=len(params.type_codes), sink=sink), cache_mb=cache_mb)
        secs["grow_and_write"] = time.perf_counter() - t0
        for d, tmp, final in opened:
            d.update_tags(run=out.best)
            d.close()
            os.replace(tmp, final)
        opened = []
    finally:
        for d, tmp, _ in opened:
            d.close()
            tmp.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        gdal_env.__exit__(None, None, None)
    return TiledGrowthResult(landuse=lu_paths, counts=cnt_paths, shortfall=out.shortfall, representative_run=out.best,
                             run_scores=out.scores, runs=runs, seed=seed, steps=out.steps, tiles=len(grid.tiles()),
                             seconds=secs)
