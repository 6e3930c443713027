"""Constrained multi-type cellular-automata growth with exact zone targets.

The model, per Monte Carlo run and period (see ``docs/growth.md`` for the full account):

1. **New patches.** ``round(spontaneous_share * target)`` cells of each (zone, type) are
   drawn among eligible cells with no urban cell in their Moore window, weighted by the
   static potential ``S x C``.
2. **Edge growth** over ``iterations`` iterations. The frontier (eligible cells with an
   urban cell in the window, kept incrementally as a bitset) gets transition potential
   ``P[i, k] = S[i, k] x N[i, k] ** strength x C[i] x I[zone, k]``; each cell's types race
   (type ``k`` wins with probability ``P_k / sum P``) and, per (zone, type), the
   ``ceil(remaining / iterations left)`` smallest keys ``-ln(u) / P`` convert
   (Efraimidis–Spirakis sampling without replacement). Later iterations see the cells
   converted earlier. Adaptive inertia ``I`` raises a (zone, type) that falls behind
   its schedule.
3. **Catch-up and fill.** Up to ``iterations`` extra edge rounds take what is left; any
   remainder is drawn from every eligible cell of the zone (a race among the types,
   then type by type). What still cannot be placed is the shortfall: the zone has no
   cell left that may become that type.

Random draws are counter-based hashes of (seed, run, period, iteration, purpose, cell),
so the maps do not depend on thread count or loop order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.classes import DEFAULT_URBAN_TYPES
from landuse.core.errors import GridMismatchError, LanduseError
from landuse.core.landscape import georef_of, set_georef
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
from landuse.growth.kernels import accumulate_counts, frontier_select, quantise_into, score_log, sweep_topk
from landuse.growth.random import stream_key
from landuse.growth.selection import select_smallest

__all__ = ["GrowthInputError", "GrowthParams", "GrowthResult", "potential_levels", "quantise_potential", "simulate"]

_PURPOSE_SPONTANEOUS = 8
_PURPOSE_FILL = 16
_SWEEP_CHUNKS = 8
# Below this many cells a simulation runs its kernels on one thread: an iteration is then
# tens of microseconds of work, less than waking a second thread costs (and, on cores
# shared with other jobs, much less than waiting for it). Results do not depend on it.
_SERIAL_BELOW_CELLS = 4_000_000


class GrowthInputError(LanduseError):
    """Inputs of the growth engine are inconsistent (targets table, arrays, options)."""


def potential_levels() -> np.ndarray:
    """Decoding table of quantised potentials: code 0 -> 0, code ``q`` -> ``2 ** ((q - 255) / 16)``.

    >>> lv = potential_levels()
    >>> float(lv[0]), float(lv[255]), round(float(lv[239]), 3)
    (0.0, 1.0, 0.5)
    """
    lv = 2.0 ** ((np.arange(256, dtype=np.float64) - 255.0) / 16.0)
    lv[0] = 0.0
    return lv


def quantise_potential(w: np.ndarray) -> np.ndarray:
    """Log-quantise potentials in [0, 1] to uint8 codes (relative error at most 2.2 %).

    0 maps to code 0 (never converts); positive values to codes 1..255 with 16 codes per
    halving, so potentials down to about 1.7e-5 keep their order of magnitude.

    >>> quantise_potential(np.array([0.0, 1.0, 0.5], dtype=np.float32)).tolist()
    [0, 255, 239]
    """
    a = np.ascontiguousarray(w, dtype=np.float32)
    out = np.empty(a.shape, dtype=np.uint8)
    quantise_into(a.reshape(-1), out.reshape(-1))
    return out


# --------------------------------------------------------------------------- parameters


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise GrowthInputError(message)


@dataclass(frozen=True, eq=False)
class GrowthParams:
    """Validated, precomputed inputs of :func:`simulate` (no config parsing at run time).

    Build with :meth:`from_scenario` (the pipeline) or :meth:`from_arrays` (tests, other
    suitability models); derive variants with :meth:`replace`.

    Attributes
    ----------
    potential : ndarray of uint8, shape (T, rows, cols)
        Static potential base ``S x C`` per urban type, log-quantised
        (:func:`quantise_potential`); 0 where the type may never go.
    allowed : ndarray of bool, shape (T, 256)
        Conversion matrix: may a cell of class code ``c`` become type ``k``.
    type_codes : tuple of int
        Class code new land of each urban type takes (its primary class).
    types : tuple of str
        Urban type names (the scheme's ``urban_types``; default the three default types).
    type_lut : ndarray of int8, shape (256,), optional
        Urban type index of every class code (-1: not urban). Several codes may share a type (they count as
        neighbours of that type); default: ``type_codes[k]`` -> ``k``. Must map ``type_codes[k]`` to ``k``.
    neighbourhood : int
        Moore window edge, 3, 5 or 7.
    neighbourhood_weights : ndarray (T, T)
        ``[k, j]``: weight of a type-``j`` neighbour for growth of type ``k``.
    neighbourhood_strength : float
        Exponent on the neighbourhood share (0 = neighbours do not matter beyond
        making a cell a frontier cell).
    iterations : int
        Edge-growth iterations per period.
    spontaneous_share : float
        Share of each (zone, type) target placed as new patches.
    adaptive_inertia : bool
        Raise the competitiveness of (zone, type) groups that fall behind schedule.
    periods : tuple of int or None
        Period end years of the scenario (periods without targets still get a map).
    period_offset : int
        Index among the scenario's periods of the first period this call grows. A period's random draws depend
        on its index, so a call that grows a later period alone (``periods=(year,)``, ``period_offset`` = its
        index) draws exactly as a call given every period would, without maps and counts of the other periods.
    """

    potential: np.ndarray
    allowed: np.ndarray
    type_codes: tuple[int, ...]
    types: tuple[str, ...] = DEFAULT_URBAN_TYPES
    neighbourhood: int = 3
    neighbourhood_weights: np.ndarray = field(default_factory=lambda: np.eye(len(DEFAULT_URBAN_TYPES)))
    neighbourhood_strength: float = 1.0
    iterations: int = 10
    spontaneous_share: float = 0.05
    adaptive_inertia: bool = True
    periods: tuple[int, ...] | None = None
    type_lut: np.ndarray | None = None
    period_offset: int = 0

    def __post_init__(self) -> None:
        pot = self.potential
        _check(isinstance(pot, np.ndarray) and pot.dtype == np.uint8 and pot.ndim == 3,
               "GrowthParams.potential must be a uint8 array (type, rows, cols); quantise with quantise_potential")
        T = pot.shape[0]
        _check(T == len(self.types) == len(self.type_codes),
               f"GrowthParams: {T} potential layers but {len(self.types)} types and {len(self.type_codes)} codes")
        _check(1 <= T <= 8, f"GrowthParams: between 1 and 8 urban types are supported, got {T}")
        _check(self.allowed.shape == (T, 256) and self.allowed.dtype == np.bool_,
               f"GrowthParams.allowed must be bool ({T}, 256), got {self.allowed.dtype} {self.allowed.shape}")
        w = np.asarray(self.neighbourhood_weights, dtype=np.float64)
        _check(w.shape == (T, T) and bool(np.all(w >= 0)) and bool(np.all(np.isfinite(w))),
               f"GrowthParams.neighbourhood_weights must be a non-negative ({T}, {T}) matrix")
        _check(self.neighbourhood in (3, 5, 7), f"neighbourhood must be 3, 5 or 7, got {self.neighbourhood}")
        _check(self.neighbourhood_strength >= 0 and math.isfinite(self.neighbourhood_strength),
               f"neighbourhood_strength must be >= 0, got {self.neighbourhood_strength}")
        _check(1 <= self.iterations <= 1000, f"iterations must be within [1, 1000], got {self.iterations}")
        _check(0.0 <= self.spontaneous_share <= 1.0,
               f"spontaneous_share must be within [0, 1], got {self.spontaneous_share}")
        _check(isinstance(self.period_offset, int | np.integer) and 0 <= self.period_offset < 2**15,
               f"period_offset must be a whole number within [0, 32767], got {self.period_offset!r}")
        object.__setattr__(self, "neighbourhood_weights", w)
        if self.type_lut is None:
            lut = np.full(256, -1, dtype=np.int8)
            for k, c in enumerate(self.type_codes):
                lut[c] = k
        else:
            lut = np.asarray(self.type_lut, dtype=np.int8)
            _check(lut.shape == (256,) and bool(np.all((lut >= -1) & (lut < T))),
                   f"GrowthParams.type_lut must be 256 type indices in [-1, {T - 1}]")
            bad = [c for k, c in enumerate(self.type_codes) if lut[c] != k]
            _check(not bad, f"GrowthParams.type_lut must map each type's code to its type; codes {bad} do not")
        object.__setattr__(self, "type_lut", lut)
        if not pot.flags.c_contiguous:
            object.__setattr__(self, "potential", np.ascontiguousarray(pot))

    def type_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The kernels' look-ups by class code: type index (int8, -1 not urban) and packed neighbour count
        increment (uint64, ``1 << (8 * k)`` for a class of type ``k``)."""
        code_type = np.asarray(self.type_lut, dtype=np.int8).copy()
        packed = np.zeros(256, dtype=np.uint64)
        urban = code_type >= 0
        packed[urban] = np.uint64(1) << (np.uint64(8) * code_type[urban].astype(np.uint64))
        return code_type, packed

    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(rows, cols)``."""
        return int(self.potential.shape[1]), int(self.potential.shape[2])

    def replace(self, **changes: Any) -> GrowthParams:
        """A copy with some fields changed (validated again)."""
        import dataclasses

        return dataclasses.replace(self, **changes)

    @classmethod
    def from_arrays(
        cls,
        suitability: np.ndarray,
        *,
        allowed: np.ndarray,
        type_codes: tuple[int, ...] | list[int],
        constraint: np.ndarray | None = None,
        **options: Any,
    ) -> GrowthParams:
        """Parameters from float arrays.

        Parameters
        ----------
        suitability : ndarray (T, rows, cols)
            Suitability per urban type in [0, 1].
        allowed : ndarray of bool (T, 256)
            Conversion matrix by class code.
        type_codes : sequence of int
            Class code of each type.
        constraint : ndarray (rows, cols), optional
            Constraint factor in [0, 1] (default 1 everywhere).
        **options
            Any other :class:`GrowthParams` field.
        """
        s = np.asarray(suitability, dtype=np.float32)
        _check(s.ndim == 3, f"suitability must be (type, rows, cols), got shape {s.shape}")
        pot = np.empty(s.shape, dtype=np.uint8)
        for k in range(s.shape[0]):
            w = s[k] if constraint is None else s[k] * np.asarray(constraint, dtype=np.float32)
            _check(bool(np.all(np.nan_to_num(w, nan=0.0) <= 1.0 + 1e-6)),
                   f"suitability x constraint of type {k} exceeds 1; scale it into [0, 1]")
            pot[k] = quantise_potential(w)
        return cls(potential=pot, allowed=np.asarray(allowed, dtype=bool), type_codes=tuple(int(c) for c in type_codes),
                   **options)

    @classmethod
    def from_scenario(
        cls, scenario: Any, landscape: xr.Dataset, *, suitability: xr.DataArray | np.ndarray | None = None
    ) -> GrowthParams:
        """Precompute everything static from a :class:`~landuse.core.config.Scenario` and a Landscape.

        Suitability (``suitability`` (type, y, x) in [0, 1] when given, else
        :func:`landuse.surfaces.suitability.compute_suitability` from the Landscape's land use), the constraint factor (:func:`landuse.surfaces.constraints.constraint_factor`)
        and the conversion matrix (:func:`landuse.surfaces.constraints.source_allowed_lut`) are
        combined and quantised; ``growth`` options come from ``scenario.config.growth``.
        """
        from landuse.io.rasters import _row_strips
        from landuse.io.store import store_empty
        from landuse.surfaces.constraints import constraint_factor, source_allowed_lut
        from landuse.surfaces.suitability import compute_suitability

        cfg = scenario.config.growth
        if suitability is None:
            suitability = compute_suitability(landscape, scenario)
        suit = np.asarray(getattr(suitability, "values", suitability), dtype=np.float32)
        c = constraint_factor(landscape, scenario)
        types = scenario.classes.urban_types
        _check(suit.shape == (len(types), *c.shape),
               f"suitability must be (type, rows, cols) = {(len(types), *c.shape)}, got {suit.shape}")
        pot = store_empty((len(types), *c.shape), np.uint8)  # kept for the run: in the raster store, if any
        for k in range(len(types)):
            for a, b in _row_strips(c.shape[0], c.shape[1]):  # one strip's product at a time (the same codes)
                pot[k, a:b] = quantise_potential(suit[k, a:b] * c[a:b])
        del suit
        w = np.array(scenario.neighbourhood_matrix(), dtype=np.float64).reshape(len(types), len(types))
        return cls(
            potential=pot,
            allowed=source_allowed_lut(scenario),
            type_codes=tuple(scenario.classes.urban_codes),
            types=types,
            type_lut=scenario.classes.type_lut(),
            neighbourhood=cfg.neighbourhood,
            neighbourhood_weights=w,
            neighbourhood_strength=cfg.neighbourhood_strength,
            iterations=cfg.iterations,
            spontaneous_share=cfg.spontaneous_share,
            adaptive_inertia=cfg.adaptive_inertia,
            periods=tuple(scenario.periods[1:]),
        )


# --------------------------------------------------------------------------- result


@dataclass(eq=False)
class GrowthResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    landuse : dict of int to DataArray
        Land use (uint8) at the end of each period (key: end year) of the representative
        run: the run whose conversions have the highest mean ensemble probability
        (ties: the lowest run number), i.e. the most typical run.
    counts : DataArray
        ``(period, type, y, x)`` uint8 (uint16 beyond 255 runs): in how many runs the cell
        had converted to that type by the end of the period (and still held it).
    runs : int
    seed : int
    shortfall : DataFrame
        One row per target: ``period, zone, type, target, converted, shortfall`` (the
        representative run) and ``converted_min, converted_max`` over all runs.
    representative_run : int
    run_scores : ndarray
        Mean ensemble probability of each run's conversions.
    run_landuse : list of dict of int to ndarray, optional
        With ``simulate(..., keep_runs=True)``: every run's land use (uint8, rows x cols)
        at the end of each period, replayed from its conversions (for checks on every
        Monte Carlo run; one map per run and period, so only for small grids).
    """

    landuse: dict[int, xr.DataArray]
    counts: xr.DataArray
    runs: int
    seed: int
    shortfall: pd.DataFrame
    representative_run: int
    run_scores: np.ndarray
    run_landuse: list[dict[int, np.ndarray]] | None = None

    @cached_property
    def probability(self) -> dict[str, xr.DataArray]:
        """Per type, float32 ``(period, y, x)`` share of runs in [0, 1] (``counts / runs``).

        Built on first access (4 bytes per cell, type and period); use :attr:`counts` on
        very large grids.
        """
        out = {}
        runs = np.float32(self.runs)
        for k, t in enumerate(self.counts.coords["type"].values.tolist()):
            c = self.counts.isel(type=k)  # a view, with the scalar ``type`` coordinate
            # one float32 array per type, divided in place: float32(count) / float32(runs), as
            # ``c.astype(float32) / float32(runs)`` but without its two temporaries and xarray's copies
            p = np.empty(c.shape, dtype=np.float32)
            np.divide(np.asarray(c.values), runs, out=p, dtype=np.float32, casting="unsafe")
            da = c.copy(deep=False, data=p)  # coords and attrs kept, encoding dropped: as xarray's arithmetic
            da.encoding = {}
            da.name = f"probability_{t}"
            out[t] = da
        return out


# --------------------------------------------------------------------------- engine state


@dataclass
class _Static:
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
    def build(cls, params: GrowthParams, zones: np.ndarray) -> _Static:
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
        return (self.Z + 1) * self.T


@dataclass
class _RunState:
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

    def copy(self, lu: np.ndarray | None = None) -> _RunState:
        """A fresh run state; ``lu`` (the start map) is copied instead of ``self.lu`` when given.

        Only the used slots of the list are copied (the spare capacity stays untouched,
        so costs no resident memory; ``cz`` is 0 there, as in the original), and the
        scratch buffers are new (at least the list's capacity, so ``self`` may have
        dropped its own: see :func:`_run_ensemble`).
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
        return _RunState(lu=np.ascontiguousarray(start, dtype=np.uint8).reshape(-1).copy(), elig=self.elig.copy(),
                         frontier=self.frontier.copy(), lock=np.zeros_like(self.lock), cand=cand, cz=cz, cpot=cpot,
                         m=m, starts=list(self.starts), dead=self.dead, group=np.empty(wcap, dtype=np.int32),
                         t=np.empty(wcap, dtype=np.float64), seg_v=np.empty(wcap, dtype=np.float64),
                         seg_p=np.empty(wcap, dtype=np.int64), scan=np.empty(0, np.int64))


def _capacity(m: int) -> int:
    return m + m // 4 + 1024


def _initial_state(st: _Static, lu0: np.ndarray, *, template: bool = False) -> _RunState:
    """The state every run starts from. ``template``: a state only to :meth:`_RunState.copy` from, which
    shares ``lu0`` (read only here) instead of copying it and has no scratch buffers."""
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
    return _RunState(lu=lu, elig=elig, frontier=frontier, lock=np.zeros_like(frontier), cand=cand, cz=cz, cpot=cpot,
                     m=m, starts=[0], dead=0, group=np.empty(wcap, dtype=np.int32), t=np.empty(wcap, dtype=np.float64),
                     seg_v=np.empty(wcap, dtype=np.float64), seg_p=np.empty(wcap, dtype=np.int64),
                     scan=np.empty(0, np.int64))


def _compact(state: _RunState, extra: int = 0) -> None:
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


def _append(st: _Static, state: _RunState, added: np.ndarray) -> None:
    """Append the cells that joined the frontier as a new sorted run (merging runs when due)."""
    if added.size == 0:
        return
    if (state.m + added.size > state.cand.size or len(state.starts) >= 8
            or 4 * state.dead > state.m - state.dead):
        _compact(state, added.size)
    state.starts.append(state.m)
    append_records(state.cand, state.cz, state.cpot, state.m, added, st.zones, st.pot)
    state.m += int(added.size)


def _keys(seed: int, run: int, period: int, iteration: int, purpose: int, T: int) -> np.ndarray:
    return np.array([stream_key(seed, run, period, iteration, purpose + k) for k in range(T)], dtype=np.uint64)


def _convert(st: _Static, state: _RunState, cells: np.ndarray, group: np.ndarray, t: np.ndarray | None,
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


def _frontier_step(st: _Static, state: _RunState, quota: np.ndarray, inertia: np.ndarray,
                   keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One edge-growth iteration; returns converted count per group, converted cells, their types."""
    conv = np.zeros(st.n_groups, dtype=np.int64)
    m = state.m
    if m == state.dead or not quota.any():
        return conv, np.empty(0, np.int64), np.empty(0, np.int8)
    cand, group = state.cand[:m], state.group[:m]
    # keys bracketed without a logarithm, exact keys only where a bracket could change the
    # selection: the same cells as _frontier_keys followed by _select_smallest
    pos = frontier_select(cand, state.cz[:m], state.cpot[:m], state.lu, st.levels, st.allowed, st.packed,
                          st.weights, st.strength, st.rows, st.cols, st.radius, inertia, quota, keys, state.lock,
                          group, state.t[:m], state.seg_v, state.seg_p)
    c, k = _convert(st, state, cand, group, None, quota, conv, from_frontier=True, pos=pos)
    return conv, c, k


def _sweep_step(st: _Static, state: _RunState, quota: np.ndarray, inertia: np.ndarray, keys: np.ndarray, *,
                exclude_frontier: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Select among all eligible cells (new patches or fill); same returns as :func:`_frontier_step`."""
    conv = np.zeros(st.n_groups, dtype=np.int64)
    if not quota.any():
        return conv, np.empty(0, np.int64), np.empty(0, np.int8)
    group, t, gidx = sweep_topk(state.lu, st.zones, st.pot, st.levels, st.allowed, state.frontier, state.lock,
                                exclude_frontier, quota, inertia, keys, st.rows, st.cols, 0, 0, st.cols,
                                min(_SWEEP_CHUNKS, st.rows))
    c, k = _convert(st, state, gidx, group, t, quota, conv, from_frontier=False)  # whole raster: global index == flat index
    return conv, c, k


# A step selects and converts cells for the quotas; returns converted per group, the
# converted cells (global flat indices) and their type indices.
_Step = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _grow_period(st: _Static, state: _RunState, target: np.ndarray, params: GrowthParams, *, seed: int, run: int,
                 period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grow one period of one run in memory; returns converted per group and the log (cells, types)."""
    out = _period_schedule(
        target, params, Z=st.Z, seed=seed, run=run, period=period,
        frontier_step=lambda quota, inertia, keys: _frontier_step(st, state, quota, inertia, keys),
        sweep_step=lambda quota, inertia, keys, exclude: _sweep_step(st, state, quota, inertia, keys,
                                                                     exclude_frontier=exclude),
    )
    # a new period: cells converted in this one may change again (if the matrix allows)
    state.lock[:] = 0
    return out


def _period_schedule(target: np.ndarray, params: GrowthParams, *, Z: int, seed: int, run: int, period: int,
                     frontier_step: _Step, sweep_step: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]],
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The phases of one period (new patches, edge iterations, catch-up, fill), whatever runs the steps.

    ``frontier_step(quota, inertia, keys)`` and ``sweep_step(quota, inertia, keys,
    exclude_frontier)`` select and convert; the in-memory engine and the tiled path
    (:mod:`landuse.scale.tiled`) share this schedule, so quotas, inertia and stream keys
    are the same. Returns converted per group and the log (cells, types). ``period`` is the period's index
    in this call; its draws use the index in the scenario (``period + params.period_offset``).
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
        book(*sweep_step(spont, inertia, _keys(seed, run, period, 0, _PURPOSE_SPONTANEOUS, T), True))
    n_it = params.iterations
    for it in range(2 * n_it):
        if not remaining.any():
            break
        left = max(1, n_it - it)
        quota = -(-remaining // left)
        conv, c, k = frontier_step(quota, inertia.reshape(-1, T), _keys(seed, run, period, it, 0, T))
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
        book(*sweep_step(remaining, inertia, _keys(seed, run, period, 0, _PURPOSE_FILL, T), False))
        for k in range(T):
            rk = remaining.reshape(-1, T)[:, k]
            if rk.any():
                only = np.zeros_like(remaining).reshape(-1, T)
                only[:, k] = rk
                book(*sweep_step(only.reshape(-1), inertia, _keys(seed, run, period, 1 + k, _PURPOSE_FILL, T), False))
    log_c = np.concatenate(cells) if cells else np.empty(0, np.int64)
    log_k = np.concatenate(types) if types else np.empty(0, np.int8)
    return target - remaining, log_c, log_k


# --------------------------------------------------------------------------- targets


def _target_array(targets: pd.DataFrame, years: list[int], Z: int, types: tuple[str, ...],
                  zone_cells: np.ndarray) -> np.ndarray:
    need = ["period", "zone", "type", "cells"]
    missing = [c for c in need if c not in targets.columns]
    _check(not missing, f"targets: missing column(s) {missing}; the table needs columns {need}")
    T = len(types)
    out = np.zeros((len(years), Z + 1, T), dtype=np.int64)
    if targets.empty:
        return out
    bad_types = sorted(set(targets["type"].astype(str)) - set(types))
    _check(not bad_types, f"targets: unknown urban type(s) {bad_types}; use {list(types)}")
    cells = pd.to_numeric(targets["cells"], errors="coerce")
    _check(bool(cells.notna().all()) and bool((cells >= 0).all()) and bool((cells == np.floor(cells)).all()),
           "targets: column 'cells' must hold non-negative whole numbers of cells")
    zone = targets["zone"].to_numpy()
    _check(bool(np.all(zone == np.floor(zone))), "targets: column 'zone' must hold integer zone ids")
    zone = zone.astype(np.int64)
    bad_z = sorted({int(z) for z in zone if z < 1 or z > Z or zone_cells[z] == 0})
    _check(not bad_z, f"targets: zone id(s) {bad_z[:10]} do not occur in the zone raster (ids 1..{Z}); "
                      "build targets from the same zone grid as landscape['zones']")
    ymap = {y: i for i, y in enumerate(years)}
    kmap = {t: i for i, t in enumerate(types)}
    per = targets["period"].astype(int).map(ymap).to_numpy()
    ks = targets["type"].astype(str).map(kmap).to_numpy()
    dup = pd.DataFrame({"p": per, "z": zone, "k": ks}).duplicated()
    _check(not dup.any(), f"targets: {int(dup.sum())} duplicate (period, zone, type) row(s); give one row each")
    out[per, zone, ks] = cells.to_numpy().astype(np.int64)
    return out


def _zone_raster(landscape: xr.Dataset) -> np.ndarray:
    inside = np.asarray(landscape["study_area"].values, dtype=bool)
    if "zones" not in landscape:
        return inside.astype(np.int32)
    z = np.asarray(landscape["zones"].values)
    _check(z.dtype.kind in "iu", f"landscape['zones'] must hold integer zone ids, got {z.dtype}")
    z = z.astype(np.int32, copy=False)
    _check(int(z.min(initial=0)) >= 0, "landscape['zones'] holds negative ids; 0 marks cells outside every zone")
    return np.where(inside, z, 0).astype(np.int32, copy=False) if bool((z[~inside] != 0).any()) else z


# --------------------------------------------------------------------------- simulate


def _check_inputs(landscape: xr.Dataset, params: GrowthParams, runs: int, seed: int) -> tuple[int, int, np.ndarray]:
    """Validate the common inputs of every growth path; return ``(runs, seed, start land use)``."""
    _check(isinstance(params, GrowthParams), "params must be a GrowthParams (GrowthParams.from_scenario)")
    _check(int(runs) >= 1, f"runs must be at least 1, got {runs}")
    _check(0 <= int(seed) < 2**63, f"seed must be within [0, 2**63 - 1], got {seed}")
    lu0 = np.asarray(landscape["landuse"].values)
    if lu0.shape != params.shape:
        raise GridMismatchError(
            f"growth params were built for a {params.shape} grid but the landscape's land use is {lu0.shape}; "
            "rebuild them with GrowthParams.from_scenario(scenario, landscape)"
        )
    return int(runs), int(seed), lu0


def simulate(
    landscape: xr.Dataset,
    targets: pd.DataFrame,
    *,
    params: GrowthParams,
    runs: int = 10,
    seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
    keep_runs: bool = False,
) -> GrowthResult:
    """Grow urban land cell by cell to meet per-zone targets, over Monte Carlo runs.

    Parameters
    ----------
    landscape : xarray.Dataset
        The Landscape; ``landuse`` is the start-year land use and ``zones`` (int32,
        optional) the zone raster; without it every study-area cell is zone 1.
    targets : pandas.DataFrame
        Columns ``period`` (end year), ``zone``, ``type`` (urban type name), ``cells``
        (cells to gain in that period).
    params : GrowthParams
        From :meth:`GrowthParams.from_scenario` or :meth:`GrowthParams.from_arrays`.
    runs : int
        Independent Monte Carlo runs.
    seed : int
        Seed of the counter-based random draws (0 .. 2**63 - 1).
    progress : callable, optional
        Called with a dict after each run and period: ``run``, ``runs``, ``period``
        (end year), ``period_index``, ``periods``, ``converted``, ``shortfall``.
    keep_runs : bool
        Also return every run's maps (:attr:`GrowthResult.run_landuse`).

    Returns
    -------
    GrowthResult

    Raises
    ------
    GrowthInputError
        Inconsistent targets or options.
    GridMismatchError
        ``params`` was built for another grid.

    Examples
    --------
    >>> from affine import Affine
    >>> from landuse.core.landscape import new_landscape
    >>> lu = np.full((20, 20), 4, np.uint8); lu[8:12, 8:12] = 1
    >>> ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 600))
    >>> allowed = np.zeros((3, 256), bool); allowed[:, 4] = True
    >>> p = GrowthParams.from_arrays(np.full((3, 20, 20), 0.5), allowed=allowed, type_codes=(1, 2, 3))
    >>> t = pd.DataFrame({"period": [2030], "zone": [1], "type": ["residential"], "cells": [25]})
    >>> r = simulate(ds, t, params=p, runs=3, seed=1)
    >>> int((r.landuse[2030] == 1).sum()), r.shortfall.shortfall.tolist()
    (41, [0])
    """
    runs, seed, lu0 = _check_inputs(landscape, params, runs, seed)
    with _thread_limit(1 if lu0.size < _SERIAL_BELOW_CELLS else None):
        return _simulate(landscape, lu0, targets, params=params, runs=runs, seed=seed, progress=progress,
                         keep_runs=keep_runs)


@contextmanager
def _thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` numba threads (``None``: unchanged)."""
    from numba import get_num_threads, set_num_threads

    before = get_num_threads()
    if threads is not None and threads < before:
        set_num_threads(threads)
    try:
        yield
    finally:
        set_num_threads(before)


@dataclass
class _Plan:
    """What every run of a simulation shares: static arrays, periods and the target array."""

    st: _Static
    years: list[int]
    tgt: np.ndarray  # (P, Z + 1, T)

    @property
    def P(self) -> int:
        return len(self.years)


def _plan(zones: np.ndarray, targets: pd.DataFrame, params: GrowthParams) -> _Plan:
    st = _Static.build(params, zones)
    zone_cells = np.zeros(st.Z + 1, dtype=np.int64)
    step = 1 << 20  # chunked: bincount casts to int64 (8 MB per chunk, not 8 bytes per cell)
    for a in range(0, st.zones.size, step):
        zone_cells += np.bincount(st.zones[a:a + step], minlength=st.Z + 1)
    years = sorted({int(y) for y in targets["period"]} | set(params.periods or ())) if "period" in targets else []
    _check(bool(years), "targets: no period given (and params.periods is empty)")
    return _Plan(st=st, years=years, tgt=_target_array(targets, years, st.Z, params.types, zone_cells))


@dataclass
class _RunLog:
    """One run's conversions (cell, type index, period index) and converted cells per (period, group)."""

    run: int
    cells: np.ndarray
    types: np.ndarray
    periods: np.ndarray
    conv: np.ndarray  # (P, G) int64


def _cell_dtype(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


def _run_ensemble(plan: _Plan, lu0: np.ndarray, params: GrowthParams, *, seed: int, run_ids: list[int],
                  progress: Callable[[dict[str, Any]], None] | None = None, runs: int | None = None) -> list[_RunLog]:
    """Run the given global run indices (draws depend on the run index only); one log per run."""
    st, tgt = plan.st, plan.tgt
    cell_dtype = _cell_dtype(st.rows * st.cols)
    # the template: no copy of the start map (each run copies the landscape's own) and no scratch buffers
    base = _initial_state(st, lu0, template=True)
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
        out.append(_RunLog(run=r, cells=np.concatenate(run_c), types=np.concatenate(run_k),
                           periods=np.concatenate(run_p), conv=np.array(convs, dtype=np.int64).reshape(plan.P, -1)))
        del state
    return out


def _count_dtype(runs: int) -> type:
    return np.uint8 if runs <= 255 else np.uint16 if runs <= 65535 else np.uint32


def _add_counts(counts: np.ndarray, cells: np.ndarray, types: np.ndarray, periods: np.ndarray,
                seen: np.ndarray) -> None:
    """Add one run's conversions (flat cells of ``counts``, type and period indices) to ``counts`` (P, T, n): per
    period, each cell's latest conversion up to it counts once."""
    for p in range(counts.shape[0]):
        m = periods <= p
        accumulate_counts(counts[p], cells[m], types[m], seen)


def _run_score(counts: np.ndarray, log: _RunLog) -> float:
    """Sum of the ensemble counts over a run's conversions (an integer held exactly in a float64)."""
    return score_log(counts, log.cells, log.types, log.periods)


def _shortfall_table(years: list[int], tgt: np.ndarray, params: GrowthParams, rep_conv: np.ndarray,
                     conv_min: np.ndarray, conv_max: np.ndarray) -> pd.DataFrame:
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


def _simulate(landscape: xr.Dataset, lu0: np.ndarray, targets: pd.DataFrame, *, params: GrowthParams, runs: int,
              seed: int, progress: Callable[[dict[str, Any]], None] | None, keep_runs: bool = False) -> GrowthResult:
    plan = _plan(_zone_raster(landscape), targets, params)
    logs = _run_ensemble(plan, lu0, params, seed=seed, run_ids=list(range(runs)), progress=progress, runs=runs)
    _release_free_heap()
    run_maps = [_replay(lu0, plan, lg) for lg in logs] if keep_runs else None
    result = _finish(landscape, lu0, plan, params, logs, runs=runs, seed=seed)
    result.run_landuse = run_maps
    return result


def _replay(lu0: np.ndarray, plan: _Plan, log: _RunLog) -> dict[int, np.ndarray]:
    """One run's land use at the end of each period, from its conversion log."""
    lu = np.ascontiguousarray(lu0, dtype=np.uint8).reshape(-1).copy()
    out = {}
    for p, year in enumerate(plan.years):
        m = log.periods == p
        lu[log.cells[m].astype(np.int64)] = plan.st.type_codes[log.types[m].astype(np.int64)]
        out[year] = lu.reshape(plan.st.rows, plan.st.cols).copy()
    return out


def _release_free_heap() -> None:
    """Give the memory freed by the runs back to the OS before the counts are allocated (glibc only).

    The run states are freed in the middle of the heap, under the run logs, so glibc keeps
    those pages; on a 10 000 x 10 000 grid that was 1 byte per cell resident on top of the
    counts and maps of :func:`_finish` (the peak of ``simulate``). ``malloc_trim`` returns
    them. A no-op where the C library has no ``malloc_trim``.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(ctypes.c_size_t(0))
    except (OSError, AttributeError):
        pass


def _finish(landscape: xr.Dataset, lu0: np.ndarray, plan: _Plan, params: GrowthParams, logs: list[_RunLog], *,
            runs: int, seed: int) -> GrowthResult:
    """Counts, representative run, maps and shortfall from the logs of every run (in run order)."""
    st, years = plan.st, plan.years
    P, T = plan.P, st.T
    n = st.rows * st.cols
    counts = np.zeros((P, T, n), dtype=_count_dtype(runs))
    seen = np.zeros((n + 63) // 64, dtype=np.uint64)
    for lg in logs:
        _add_counts(counts, lg.cells, lg.types, lg.periods, seen)
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

    shortfall = _shortfall_table(years, plan.tgt, params, rep_conv, conv_min, conv_max)
    counts_da = xr.DataArray(
        counts.reshape(P, T, st.rows, st.cols), dims=("period", "type", "y", "x"),
        coords={"period": years, "type": list(params.types), "y": landscape.y, "x": landscape.x},
        name="conversion_counts", attrs={"runs": runs, "seed": seed},
    )
    return GrowthResult(landuse=maps, counts=counts_da, runs=runs, seed=seed, shortfall=shortfall,
                        representative_run=best, run_scores=scores)


def targets_frame(records: Mapping[tuple[int, int, str], int]) -> pd.DataFrame:
    """Build a targets table from ``{(period, zone, type): cells}``.

    >>> targets_frame({(2030, 1, "residential"): 10}).to_dict("records")
    [{'period': 2030, 'zone': 1, 'type': 'residential', 'cells': 10}]
    """
    rows = [(int(p), int(z), str(t), int(c)) for (p, z, t), c in records.items()]
    return pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])
