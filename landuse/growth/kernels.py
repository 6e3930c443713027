"""Entry kernels of the growth engine: candidate keys and selection, sweeps, quantisation, run bookkeeping.

The in-memory engine and the tiled path (:mod:`landuse.scale.tiled`) call these per step; they
are built from the modules of one concern each: :mod:`~landuse.growth.bits` (bitsets, intrinsics), :mod:`~landuse.growth.races` (a candidate's
race and its key brackets), :mod:`~landuse.growth.selection` (the smallest keys per group, heaps)
and :mod:`~landuse.growth.frontier` (eligibility and frontier bitsets, the candidate list). All
take plain numpy arrays and return plain arrays.

Conventions shared by every kernel:

* Rasters are passed **flat** (C order) with their ``rows`` and ``cols``; a cell is its
  flat index ``c``. Per-type rasters are ``(T, rows * cols)``.
* ``lu`` holds class codes (uint8). ``code_type[code]`` is the urban type index of a
  class code (-1 for non-urban codes); ``allowed[k, code]`` says whether a cell of class
  ``code`` may become urban type ``k`` (the conversion matrix).
* ``pot[k, c]`` is the static potential base ``S x C`` of type ``k``, log-quantised to
  uint8 (0 = never); ``levels[code]`` decodes it to a float64 weight.
* A cell's random draw for type ``k`` is ``uniform_kernel(keys[k], g)`` where ``g`` is the
  **global** cell index ``(row0 + r) * gcols + col0 + col``. A tile of a larger raster
  (with a halo of ``radius`` cells) passes its offsets and gets the same draws as the
  whole raster, so candidate keys do not depend on tiling, threads or loop order.
* Selection is by exponential-race keys ``t = -ln(u) / w`` (smallest first), the
  logarithm of the Efraimidis–Spirakis key ``u ** (1 / w)``; ties are broken by the
  global index. Per (zone, type) group ``g = zone * T + k``, a threshold pair
  ``(thr_t[g], thr_i[g])`` selects the ``quota[g]`` smallest keys; thresholds can be
  computed from any partition of the candidates and applied afterwards.
* Bitsets are uint64 words, bit ``c & 63`` of word ``c >> 6``.

Nothing here reads config, xarray or rasterio; see :mod:`landuse.growth.engine`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from landuse.growth.bits import PREFETCH_AHEAD, clearbit, getbit, prefetch, setbit
from landuse.growth.races import (
    APPROX_SLACK,
    LOG_TABLE,
    REL_LO,
    bracket_race,
    exact_race,
    neglog_approx,
    race_weight,
    window_sum,
)
from landuse.growth.random import uniform_kernel
from landuse.growth.selection import (
    heap_entries,
    heap_layout,
    heap_push,
    open_zones,
    segment_offsets,
    segment_scatter,
    take_band,
    take_sure,
)

# --------------------------------------------------------------------------- quantisation


_LOG2_STEPS = 16.0  # quantisation: 16 codes per halving of the potential


@njit(cache=True, nogil=True, parallel=True)
def quantise_into(w: np.ndarray, out: np.ndarray) -> None:
    """Log-quantise weights in [0, 1] to uint8: 0 for ``w <= 0``, else ``clip(round(255 + 16 log2 w), 1, 255)``."""
    for i in prange(w.size):
        v = w[i]
        if not (v > 0.0):
            out[i] = 0
        elif v >= 1.0:
            out[i] = 255
        else:
            q = math.floor(255.0 + _LOG2_STEPS * math.log2(v) + 0.5)
            out[i] = np.uint8(min(255.0, max(1.0, q)))


# --------------------------------------------------------------------------- cell indices


@njit(cache=True, nogil=True, inline="always")
def _global_index(c, cols, row0, col0, gcols):
    r = c // cols
    return (row0 + r) * gcols + col0 + (c - r * cols)


@njit(cache=True, nogil=True, parallel=True)
def _global_indices(cells, cols, row0, col0, gcols):
    """Global indices of local flat cells (identity for a whole raster)."""
    out = np.empty(cells.size, dtype=np.int64)
    for i in prange(cells.size):
        out[i] = _global_index(cells[i], cols, row0, col0, gcols)
    return out


@njit(cache=True, nogil=True)
def _local_index(gidx, cols, row0, col0, gcols):
    """Flat local indices of global indices (inverse of ``_global_index``)."""
    out = np.empty(gidx.size, dtype=np.int64)
    for i in range(gidx.size):
        r = gidx[i] // gcols
        out[i] = (r - row0) * cols + (gidx[i] - r * gcols - col0)
    return out


# --------------------------------------------------------------------------- candidate keys


@njit(cache=True, nogil=True, parallel=True)
def _frontier_keys(cand, cz, cpot, lu, levels, allowed, packed, weights, strength, rows, cols, radius,
                   inertia, quota, keys, lock, row0, col0, gcols, group, t):
    """Race key of each frontier candidate among the urban types with open quota in its zone.

    ``cz[i]`` and ``cpot[i, k]`` are the zone and quantised potentials of ``cand[i]``
    (records kept with the candidate list, see :func:`_gather_records`), so only the
    land-use window is read from the raster.

    For type ``k``: ``w = levels[cpot[i, k]] * N_k ** strength * inertia[zone, k]`` with
    ``N_k = sum_j weights[k, type(j)] / (n*n - 1)`` over the urban cells ``j`` of the
    Moore window (centre excluded). Types need ``allowed[k, lu[c]]``, ``pot > 0``,
    ``N_k > 0`` and ``quota[zone * T + k] > 0``. The cell's key is the smallest
    ``-ln(u_k) / w_k`` (an exponential race: type ``k`` wins with probability
    ``w_k / sum w``). Locked cells and cells with no open type get group -1.

    ``packed[code]`` is ``1 << (8 * k)`` for the class code of urban type ``k`` and 0
    otherwise, so one sum over the window counts every type at once (T <= 8). Entries
    with zone ``cz[i] <= 0`` are retired list slots and get group -1.

    Writes ``group[i]`` (int32, ``zone * T + k`` of the winning type or -1) and ``t[i]``
    (float64, the winning key; inf when group is -1) for ``i < cand.size``; the caller
    owns the buffers so an iteration allocates nothing in proportion to the frontier.
    """
    n = cand.size
    inv_window = 1.0 / ((2 * radius + 1) ** 2 - 1)
    whole = gcols == cols and row0 == 0 and col0 == 0
    nchunks = max(1, min(256, n // 4096))
    for ch in prange(nchunks):
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            c = cand[i]
            group[i] = -1
            t[i] = np.inf
            z = cz[i]
            if z <= 0 or getbit(lock, c):
                continue
            code = lu[c]
            acc = window_sum(c, code, lu, packed, rows, cols, radius)
            if acc == 0:
                continue
            g_i = c if whole else _global_index(c, cols, row0, col0, gcols)
            bestk, best = exact_race(i, g_i, z, code, acc, cpot, levels, allowed, weights, strength, inertia,
                                     quota, keys, inv_window)
            if bestk >= 0:
                group[i] = z * cpot.shape[1] + bestk
                t[i] = best


@njit(cache=True, nogil=True, parallel=True)
def frontier_select(cand, cz, cpot, lu, levels, allowed, packed, weights, strength, rows, cols, radius,
                    inertia, quota, keys, lock, group, hi, seg_v, seg_p):
    """Positions in ``cand`` that :func:`_frontier_keys` then :func:`select_smallest` select, with few logarithms.

    Whole-raster path (a candidate's global index is its flat index). Each candidate's
    race is run on brackets ``lo <= t <= hi`` of its exact keys ``t = -ln(u) / w``, from
    a table approximation of the logarithm: the winner is settled when its bracket lies
    below every other open type's, else the exact keys decide (as in
    :func:`_frontier_keys`). Brackets are at most ``W`` wide (from the smallest weight).
    Per group with more candidates than its quota, ``vU`` is the quota-th smallest
    ``hi``; the quota-th smallest exact key lies in ``[vU - W, vU]``, so candidates with
    ``hi < vU - W`` are selected, those with ``hi > vU + W`` are not, and only those in
    between get their exact key, from which the rest of the quota is taken in
    ``(t, index)`` order. The selected set is exactly that of the exact keys.

    ``group`` (int32), ``hi`` and ``seg_v`` (float64) and ``seg_p`` (int64) are
    caller-owned scratch buffers of at least ``cand.size`` entries (reused over a run's
    iterations: no page faults per iteration). Returns positions grouped by group (any
    order within a group).
    """
    n = cand.size
    T = cpot.shape[1]
    G = quota.size
    inv_window = 1.0 / ((2 * radius + 1) ** 2 - 1)
    table = LOG_TABLE
    zopen = open_zones(quota, T, G // T)
    nchunks = max(1, min(256, n // 4096))
    wmins = np.full(nchunks, np.inf)
    for ch in prange(nchunks):
        fb = np.empty(1, dtype=np.float64)
        bv = fb.view(np.uint64)
        wmin = np.inf
        i1 = (ch + 1) * n // nchunks
        for i in range(ch * n // nchunks, i1):
            if i + PREFETCH_AHEAD < i1:
                cn = cand[i + PREFETCH_AHEAD]
                for rr in range(-radius, radius + 1):
                    prefetch(lu, cn + rr * cols)
                prefetch(lock, cn >> 6)
            c = cand[i]
            group[i] = -1
            z = cz[i]
            # the race below finds no type where none is open: only skip the window early
            if z <= 0 or not zopen[z] or getbit(lock, c):
                continue
            qbase = z * T
            code = lu[c]
            acc = window_sum(c, code, lu, packed, rows, cols, radius)
            if acc == 0:
                continue
            bestk, bhi, bw, settled = bracket_race(cpot, i, c, z, code, acc, levels, allowed, weights, strength,
                                                   inertia, quota, keys, inv_window, fb, bv, table)
            if not settled:
                bestk, bhi = exact_race(i, c, z, code, acc, cpot, levels, allowed, weights, strength, inertia,
                                        quota, keys, inv_window)
            elif bw < wmin:
                wmin = bw
            if bestk >= 0:
                group[i] = qbase + bestk
                hi[i] = bhi
        wmins[ch] = wmin
    # bracket width bound: 2 slack / w, the relative terms (a <= 38) and the rounding of hi
    width = (2.0 * APPROX_SLACK + 1e-10) / wmins.min() * 1.001 + 1e-6
    # per-group segments of (hi, position), fixed chunks: independent of the thread count
    cc, offs, outoffs = segment_offsets(group, quota)
    hb = seg_v[:offs[G]]
    pb = seg_p[:offs[G]]
    segment_scatter(group, quota, hi, cc, hb, pb)
    out = np.empty(outoffs[G], dtype=np.int64)
    todo = np.nonzero(offs[1:] > offs[:G])[0]
    for j in prange(todo.size):
        g = todo[j]
        a = offs[g]
        b = offs[g + 1]
        q = quota[g]
        o = outoffs[g]
        if b - a <= q:
            for m in range(a, b):
                out[o] = pb[m]
                o += 1
            continue
        o, sure_below, sure_above, nunc = take_sure(hb, pb, a, b, q, width, out, o)
        ut = np.empty(nunc, dtype=np.float64)
        ui = np.empty(nunc, dtype=np.int64)
        up = np.empty(nunc, dtype=np.int64)
        h = 0
        k = g % T
        z = g // T
        for m in range(a, b):
            if hb[m] >= sure_below and hb[m] <= sure_above:
                i = pb[m]
                c = cand[i]
                ut[h] = -math.log(uniform_kernel(keys[k], c)) / race_weight(
                    cpot, i, z, k, window_sum(c, lu[c], lu, packed, rows, cols, radius), levels, weights, strength,
                    inertia, inv_window)
                ui[h] = c
                up[h] = i
                h += 1
        take_band(ut, ui, up, q - (o - outoffs[g]), out, o)
    return out


# --------------------------------------------------------------------------- sweeps (new patches, fill)


@njit(cache=True, nogil=True, parallel=True)
def sweep_topk(lu, zones, pot, levels, allowed, frontier, lock, exclude_frontier, quota, inertia, keys,
               rows, cols, row0, col0, gcols, nchunks):
    """Smallest race keys per group among all eligible cells (not only the frontier), with few logarithms.

    Used for new patches (``exclude_frontier``: cells with no urban cell in the window)
    and for the end-of-period fill. Type ``k`` of cell ``c`` in zone ``z`` is open when
    ``quota[z * T + k] > 0``, ``allowed[k, lu[c]]`` and ``pot[k, c] > 0``, with weight
    ``w = levels[pot[k, c]] * inertia[z, k]`` (no neighbourhood term); the cell's key is
    the smallest ``-ln(u_k) / w`` over its open types and its group that type's. Locked
    cells and cells outside every zone (zone 0, e.g. a tile's halo) are never candidates.

    Each of ``nchunks`` row chunks keeps its own bounded max-heap of ``quota[g]`` entries
    per group; the union of the chunks' heaps holds every group's ``quota[g]`` smallest
    keys whatever the chunking. Once the heaps of all of a cell's open types are full, a
    lower bound of each type's key (the table logarithm less its error bound, no libm
    call) is compared with that heap's largest key: when every bound lies above, the cell
    could not enter any heap whichever type won, and its exact keys are never computed
    (the heaps end exactly as they would with every key computed).

    Returns
    -------
    group, t, gidx : the heaps' entries (flat; exact keys), ready for :func:`_group_thresholds`.
    """
    T = pot.shape[0]
    G = quota.size
    offs, zone_open = heap_layout(quota, T, inertia.shape[0])
    cap_total = offs[G]
    table = LOG_TABLE
    ht = np.empty((nchunks, cap_total), dtype=np.float64)
    hi = np.empty((nchunks, cap_total), dtype=np.int64)
    hs = np.zeros((nchunks, G), dtype=np.int64)
    for ch in prange(nchunks):
        fb = np.empty(1, dtype=np.float64)
        bv = fb.view(np.uint64)
        hth = ht[ch]
        hih = hi[ch]
        r0 = ch * rows // nchunks
        r1 = (ch + 1) * rows // nchunks
        for c in range(r0 * cols, r1 * cols):
            z = zones[c]
            if z <= 0 or not zone_open[z]:
                continue
            if getbit(lock, c):
                continue
            if exclude_frontier and getbit(frontier, c):
                continue
            code = lu[c]
            qbase = z * T
            g_i = _global_index(c, cols, row0, col0, gcols)
            # bounds first: skip the cell when no open type's key can enter its group's heap
            skip = True
            anyk = False
            for k in range(T):
                g = qbase + k
                if quota[g] > 0 and allowed[k, code] and pot[k, c] > 0:
                    w = levels[pot[k, c]] * inertia[z, k]
                    if w > 0.0:
                        anyk = True
                        if hs[ch, g] < quota[g]:
                            skip = False
                            break
                        lo = (neglog_approx(uniform_kernel(keys[k], g_i), fb, bv, table) - APPROX_SLACK) * (1.0 / w)
                        if not lo * REL_LO > hth[offs[g]]:
                            skip = False
                            break
            if skip or not anyk:
                continue
            best = np.inf
            bestk = -1
            for k in range(T):
                if quota[qbase + k] > 0 and allowed[k, code] and pot[k, c] > 0:
                    w = levels[pot[k, c]] * inertia[z, k]
                    if w > 0.0:
                        tk = -math.log(uniform_kernel(keys[k], g_i)) / w
                        if tk < best:
                            best = tk
                            bestk = k
            if bestk < 0:
                continue
            g = qbase + bestk
            hs[ch, g] = heap_push(hth, hih, offs[g], hs[ch, g], quota[g], best, g_i)
    return heap_entries(ht, hi, hs, offs)


# --------------------------------------------------------------------------- Monte Carlo bookkeeping


@njit(cache=True, nogil=True)
def accumulate_counts(counts, log_cells, log_types, seen):
    """Add one run to ``counts[k, c]``: each cell's latest conversion in the log counts once.

    ``seen`` is an all-zero bitset on entry and on exit.
    """
    for i in range(log_cells.size - 1, -1, -1):
        c = log_cells[i]
        if not getbit(seen, c):
            setbit(seen, c)
            counts[log_types[i], c] += 1
    for i in range(log_cells.size):
        clearbit(seen, log_cells[i])


@njit(cache=True, nogil=True)
def score_log(counts, log_cells, log_types, log_periods):
    """Sum of ``counts[period, type, cell]`` over a run's conversion log."""
    s = 0.0
    for i in range(log_cells.size):
        s += counts[log_periods[i], log_types[i], log_cells[i]]
    return s
