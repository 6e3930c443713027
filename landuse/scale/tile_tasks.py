"""The work of one tile in one step of tiled growth, as it runs on a worker.

A tile's state (its window with the run's conversions applied, eligibility and frontier bitsets) is built at the
run's first step and kept in the worker's memory within a budget (``cache_mb``); a step computes the candidates'
keys with the engine's kernels and returns each (zone, type) group's ``quota`` smallest ``(key, global index)``
pairs; the finish replays the conversion logs into the tile's counts and maps.
"""


from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import get_num_threads

from landuse.growth.frontier import build_frontier, eligible_bits, update_frontier
from landuse.growth.kernels import score_log, sweep_topk
from landuse.growth.params import GrowthParams, potential_levels
from landuse.growth.plan import (
    add_counts,
    count_dtype,
)
from landuse.growth.selection import select_smallest
from landuse.scale import tiled_kernels as TK
from landuse.scale.tiles import (
    _Store,
)

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
    """Bytes of tile state this process may keep.

    ``cache_mb``, else half the worker's memory limit (a quarter of the machine's memory outside a worker).
    """
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
    """Ensemble counts ``(P, T, n)`` of ``n`` cells from every run's conversions there, and each run's partial score.

    Local cells ``local[r]``, types and periods in ``logs[r]``. The partial score: the sum of the counts over its
    conversions (int64, so partial sums over tiles add up exactly).
    """
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


