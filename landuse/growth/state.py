"""The in-memory run: its static arrays, its working state and the two steps that select and convert.

:class:`StaticArrays` holds what every run shares (flat zones and potentials, the look-up tables
of :class:`~landuse.growth.GrowthParams`); :class:`RunState` is one run's land use, bitsets and
candidate list (:func:`initial_state` builds the state every run starts from). A step selects
cells for the quotas and converts them: :func:`frontier_step` among the frontier cells (edge
growth), :func:`sweep_step` among all eligible cells (new patches, fill). The period's schedule
that calls them is :func:`landuse.growth.plan.period_schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landuse.growth.bits import bits_to_indices
from landuse.growth.frontier import (
    append_records,
    build_frontier,
    convert_clear,
    eligible_bits,
    join_scan,
    merge_runs,
    retire,
    retire_all,
)
from landuse.growth.kernels import frontier_select, sweep_topk
from landuse.growth.params import GrowthParams, potential_levels
from landuse.growth.selection import select_smallest

__all__ = ["RunState", "StaticArrays", "frontier_step", "initial_state", "sweep_step"]

_SWEEP_CHUNKS = 8


@dataclass
class StaticArrays:
    """Run-independent arrays, flat views (no copies of the landscape)."""

    rows: int
    cols: int
    T: int
    Z: int
    zones: np.ndarray
    pot: np.ndarray
    levels: np.ndarray
    allowed: np.ndarray
    code_type: np.ndarray
    source: np.ndarray  # [code]: some type may take class ``code``
    packed: np.ndarray
    type_codes: np.ndarray
    weights: np.ndarray
    strength: float
    radius: int

    @classmethod
    def build(cls, params: GrowthParams, zones: np.ndarray) -> StaticArrays:
        """The arrays of ``params`` and the zone raster ``zones`` (rows, cols), flat."""
        rows, cols = params.shape
        T = params.potential.shape[0]
        code_type, packed = params.type_tables()
        return cls(
            rows=rows, cols=cols, T=T, Z=int(zones.max(initial=0)),
            zones=np.ascontiguousarray(zones, dtype=np.int32).reshape(-1),
            pot=params.potential.reshape(T, -1), levels=potential_levels(), allowed=params.allowed,
            code_type=code_type, source=np.ascontiguousarray(params.allowed.any(axis=0)), packed=packed,
            type_codes=np.asarray(params.type_codes, dtype=np.int64),
            weights=params.neighbourhood_weights, strength=float(params.neighbourhood_strength),
            radius=params.neighbourhood // 2,
        )

    @property
    def n_groups(self) -> int:
        """Number of (zone, type) groups, ``(Z + 1) * T``."""
        return (self.Z + 1) * self.T


@dataclass
class RunState:
    """Working state of one run.

    The candidate list (``cand`` with each cell's zone ``cz`` and potentials ``cpot``)
    holds every frontier cell once in its first ``m`` slots, as a few sorted runs
    starting at ``starts``: an iteration retires converted cells in place (zone set to
    0) and appends the cells that joined as a new sorted run, so its cost follows the
    converted cells, not the frontier. When retired slots or runs pile up the runs are
    merged back into one (:func:`_compact`). Selection never depends on the order.
    """

    lu: np.ndarray  # flat uint8
    elig: np.ndarray  # bitset: statically eligible cells
    frontier: np.ndarray  # bitset
    lock: np.ndarray  # bitset
    cand: np.ndarray  # frontier cells (capacity >= m)
    cz: np.ndarray  # their zones (0 = retired slot)
    cpot: np.ndarray  # their quantised potentials (capacity, T)
    m: int  # used slots
    starts: list[int]  # start of each sorted run in [0, m)
    dead: int  # retired slots among the first m
    group: np.ndarray  # per-iteration buffers (capacity), reused: no page faults per iteration
    t: np.ndarray
    seg_v: np.ndarray
    seg_p: np.ndarray
    scan: np.ndarray  # joining-cell scan buffer (grown as needed)

    @property
    def live(self) -> np.ndarray:
        """The frontier cells (a copy, without retired slots)."""
        return self.cand[:self.m][self.cz[:self.m] > 0]

    def copy(self, lu: np.ndarray | None = None) -> RunState:
        """A fresh run state; ``lu`` (the start map) is copied instead of ``self.lu`` when given.

        Only the used slots of the list are copied (the spare capacity stays untouched,
        so costs no resident memory; ``cz`` is 0 there, as in the original), and the
        scratch buffers are new (at least the list's capacity, so ``self`` may have
        dropped its own: see :func:`landuse.growth.plan.run_ensemble`).
        """
        start = self.lu if lu is None else lu
        m, cap = self.m, self.cand.size
        cand = np.empty_like(self.cand)
        cand[:m] = self.cand[:m]
        cz = np.zeros_like(self.cz)
        cz[:m] = self.cz[:m]
        cpot = np.empty_like(self.cpot)
        cpot[:m] = self.cpot[:m]
        wcap = max(cap, self.group.size)
        return RunState(lu=np.ascontiguousarray(start, dtype=np.uint8).reshape(-1).copy(), elig=self.elig.copy(),
                        frontier=self.frontier.copy(), lock=np.zeros_like(self.lock), cand=cand, cz=cz, cpot=cpot,
                        m=m, starts=list(self.starts), dead=self.dead, group=np.empty(wcap, dtype=np.int32),
                        t=np.empty(wcap, dtype=np.float64), seg_v=np.empty(wcap, dtype=np.float64),
                        seg_p=np.empty(wcap, dtype=np.int64), scan=np.empty(0, np.int64))


def _capacity(m: int) -> int:
    return m + m // 4 + 1024


def initial_state(st: StaticArrays, lu0: np.ndarray, *, template: bool = False) -> RunState:
    """The state every run starts from.

    ``template``: a state only to :meth:`RunState.copy` from, which shares ``lu0`` (read only here) instead of copying
    it and has no scratch buffers.
    """
    lu = np.ascontiguousarray(lu0, dtype=np.uint8).reshape(-1)
    if not template or not lu.flags.writeable:  # (a read-only array would be another numba specialisation)
        lu = lu.copy()
    elig = eligible_bits(lu, st.zones, st.pot, st.allowed)
    frontier = build_frontier(elig, lu, st.code_type, st.rows, st.cols, st.radius)
    cells = bits_to_indices(frontier, st.rows * st.cols)
    m = cells.size
    cap = _capacity(m)
    cand = np.empty(cap, dtype=np.int64)
    cz = np.zeros(cap, dtype=np.int32)
    cpot = np.empty((cap, st.T), dtype=np.uint8)
    append_records(cand, cz, cpot, 0, cells, st.zones, st.pot)
    del cells
    wcap = 0 if template else cap
    return RunState(lu=lu, elig=elig, frontier=frontier, lock=np.zeros_like(frontier), cand=cand, cz=cz, cpot=cpot,
                    m=m, starts=[0], dead=0, group=np.empty(wcap, dtype=np.int32), t=np.empty(wcap, dtype=np.float64),
                    seg_v=np.empty(wcap, dtype=np.float64), seg_p=np.empty(wcap, dtype=np.int64),
                    scan=np.empty(0, np.int64))


def _compact(state: RunState, extra: int = 0) -> None:
    """Merge the list's sorted runs into one without retired slots, with room for ``extra`` more."""
    starts = np.array([*state.starts, state.m], dtype=np.int64)
    live = state.m - state.dead
    cap = _capacity(live + extra)
    state.cand, state.cz, state.cpot, m = merge_runs(state.cand, state.cz, state.cpot, starts, cap)
    state.cz[m:] = 0
    state.m, state.starts, state.dead = int(m), [0], 0
    if state.group.size < cap:
        state.group = np.empty(cap, dtype=np.int32)
        state.t = np.empty(cap, dtype=np.float64)
        state.seg_v = np.empty(cap, dtype=np.float64)
        state.seg_p = np.empty(cap, dtype=np.int64)


def _append(st: StaticArrays, state: RunState, added: np.ndarray) -> None:
    """Append the cells that joined the frontier as a new sorted run (merging runs when due)."""
    if added.size == 0:
        return
    if (state.m + added.size > state.cand.size or len(state.starts) >= 8
            or 4 * state.dead > state.m - state.dead):
        _compact(state, added.size)
    state.starts.append(state.m)
    append_records(state.cand, state.cz, state.cpot, state.m, added, st.zones, st.pot)
    state.m += int(added.size)


def _convert(st: StaticArrays, state: RunState, cells: np.ndarray, group: np.ndarray, t: np.ndarray | None,
             quota: np.ndarray, conv: np.ndarray, *, from_frontier: bool,
             pos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Select per group under the quota (whole raster: global index == flat index) and convert.

    ``pos``, when given, is the selection already made (positions in ``cells``).
    """
    if pos is None:
        pos = select_smallest(group, t, cells, quota)
    pos.sort()  # list order: sequential memory access when converting and updating
    # convert; cells no type may take any more leave the frontier (and the list) at once
    c, k, src, dead = convert_clear(state.lu, cells, state.cz, group, pos, st.type_codes, state.lock, conv,
                                    state.elig, state.frontier, st.source, from_frontier)
    state.dead += int(dead)
    if c.size:
        need = c.size * ((2 * st.radius + 1) ** 2 - 1)
        if state.scan.size < need:  # an upper bound, touched only where joining cells are written
            state.scan = np.empty(need + need // 4, dtype=np.int64)
        raw = join_scan(state.frontier, state.elig, c, c[src], state.lu, st.zones, st.pot, st.allowed,
                        st.code_type, st.rows, st.cols, st.radius, state.scan)
        added = np.sort(raw)  # numpy's sort: much faster than a compiled one
        if from_frontier:  # only converted list entries can have left the frontier
            if src.size:
                state.dead += int(retire(cells, state.cz, pos[src], state.frontier))
        else:
            state.dead += int(retire_all(state.cand[:state.m], state.cz[:state.m], state.frontier))
        _append(st, state, added)
    return c, k


def frontier_step(st: StaticArrays, state: RunState, quota: np.ndarray, inertia: np.ndarray,
                  keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One edge-growth iteration; returns converted count per group, converted cells, their types."""
    conv = np.zeros(st.n_groups, dtype=np.int64)
    m = state.m
    if m == state.dead or not quota.any():
        return conv, np.empty(0, np.int64), np.empty(0, np.int8)
    cand, group = state.cand[:m], state.group[:m]
    # keys bracketed without a logarithm, exact keys only where a bracket could change the
    # selection: the same cells as kernels._frontier_keys followed by select_smallest
    pos = frontier_select(cand, state.cz[:m], state.cpot[:m], state.lu, st.levels, st.allowed, st.packed,
                          st.weights, st.strength, st.rows, st.cols, st.radius, inertia, quota, keys, state.lock,
                          group, state.t[:m], state.seg_v, state.seg_p)
    c, k = _convert(st, state, cand, group, None, quota, conv, from_frontier=True, pos=pos)
    return conv, c, k


def sweep_step(st: StaticArrays, state: RunState, quota: np.ndarray, inertia: np.ndarray, keys: np.ndarray, *,
               exclude_frontier: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Select among all eligible cells (new patches or fill); same returns as :func:`frontier_step`."""
    conv = np.zeros(st.n_groups, dtype=np.int64)
    if not quota.any():
        return conv, np.empty(0, np.int64), np.empty(0, np.int8)
    group, t, gidx = sweep_topk(state.lu, st.zones, st.pot, st.levels, st.allowed, state.frontier, state.lock,
                                exclude_frontier, quota, inertia, keys, st.rows, st.cols, 0, 0, st.cols,
                                min(_SWEEP_CHUNKS, st.rows))
    c, k = _convert(st, state, gidx, group, t, quota, conv, from_frontier=False)  # whole raster: global index == flat index
    return conv, c, k
