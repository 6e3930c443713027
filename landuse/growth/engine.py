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

This module is the driver, :func:`simulate`. Its parts: :mod:`~landuse.growth.params` (what the
engine takes and gives; :class:`GrowthParams`, :class:`GrowthResult`, :class:`GrowthInputError`,
:func:`potential_levels` and :func:`quantise_potential` are re-exported here),
:mod:`~landuse.growth.plan` (the plan, the period schedule, the runs and their finish, shared with
:mod:`landuse.scale`), :mod:`~landuse.growth.state` (one run's state and steps in memory) and
:mod:`~landuse.growth.kernels` (the numba kernels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.growth.params import (
    GrowthInputError,
    GrowthParams,
    GrowthResult,
    potential_levels,
    quantise_potential,
)
from landuse.growth.plan import GrowthPlan, RunLog, build_plan, check_inputs, finish_ensemble, run_ensemble, zone_raster

__all__ = [
    "GrowthInputError",
    "GrowthParams",
    "GrowthResult",
    "potential_levels",
    "quantise_potential",
    "simulate",
    "targets_frame",
]

# Below this many cells a simulation runs its kernels on one thread: an iteration is then
# tens of microseconds of work, less than waking a second thread costs (and, on cores
# shared with other jobs, much less than waiting for it). Results do not depend on it.
_SERIAL_BELOW_CELLS = 4_000_000


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
    runs, seed, lu0 = check_inputs(landscape, params, runs, seed)
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


def _simulate(landscape: xr.Dataset, lu0: np.ndarray, targets: pd.DataFrame, *, params: GrowthParams, runs: int,
              seed: int, progress: Callable[[dict[str, Any]], None] | None, keep_runs: bool = False) -> GrowthResult:
    plan = build_plan(zone_raster(landscape), targets, params)
    logs = run_ensemble(plan, lu0, params, seed=seed, run_ids=list(range(runs)), progress=progress, runs=runs)
    _release_free_heap()
    run_maps = [_replay(lu0, plan, lg) for lg in logs] if keep_runs else None
    result = finish_ensemble(landscape, lu0, plan, params, logs, runs=runs, seed=seed)
    result.run_landuse = run_maps
    return result


def _replay(lu0: np.ndarray, plan: GrowthPlan, log: RunLog) -> dict[int, np.ndarray]:
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
    counts and maps of :func:`finish_ensemble` (the peak of ``simulate``). ``malloc_trim`` returns
    them. A no-op where the C library has no ``malloc_trim``.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(ctypes.c_size_t(0))
    except (OSError, AttributeError):
        pass


def targets_frame(records: Mapping[tuple[int, int, str], int]) -> pd.DataFrame:
    """Build a targets table from ``{(period, zone, type): cells}``.

    >>> targets_frame({(2030, 1, "residential"): 10}).to_dict("records")
    [{'period': 2030, 'zone': 1, 'type': 'residential', 'cells': 10}]
    """
    rows = [(int(p), int(z), str(t), int(c)) for (p, z, t), c in records.items()]
    return pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])
