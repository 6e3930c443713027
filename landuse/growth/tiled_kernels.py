"""Numba kernels of the tiled growth path (plain numpy arrays in, plain arrays out).

Conventions are those of :mod:`landuse.growth.kernels` (flat rasters, class codes,
quantised potentials, counter-based draws of the **global** cell index, race keys
``t = -ln(u) / w`` ordered by ``(t, global index)``). Nothing here reads config,
xarray or rasterio; see :mod:`landuse.growth.tiled`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from landuse.growth.random import _uniform

_ONE = np.uint64(1)
# the position of a word's lowest set bit: (low * _DEBRUIJN) >> 58 indexes _DEBRUIJN_TABLE
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_TABLE = np.array(
    [0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24,
     18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25,
     14, 19, 9, 13, 8, 7, 6],
    dtype=np.int64,
)
_S58 = np.uint64(58)
_LN2 = math.log(2.0)
# _LOG1P[j] = ln(1 + j / 256): ln of a mantissa in [1 + j/256, 1 + (j+1)/256) is below _LOG1P[j + 1]
_LOG1P = np.log1p(np.arange(257, dtype=np.float64) / 256.0)
_BOUND_ABS = 1e-9  # absolute margin of the lower bound of -ln(u) (its float error is below 1e-13)
_BOUND_REL = 1.0 - 1e-12  # relative margin for the division by the weight and its rounding


@njit(cache=True, nogil=True, inline="always")
def _getbit(bits: np.ndarray, i: np.int64) -> bool:
    return ((bits[i >> 6] >> np.uint64(i & 63)) & _ONE) != 0


@njit(cache=True, nogil=True, inline="always")
def _neglog_lower(u, fb, bv, table):
    """A lower bound of ``-ln(u)`` for ``u`` in (0, 1), from the bits of ``u`` (no libm call).

    ``u = 2**e * m`` with ``m`` in ``[1 + j/256, 1 + (j+1)/256)``, so ``-ln(u) > -e ln 2 -
    ln(1 + (j+1)/256)``; the margin ``_BOUND_ABS`` covers the rounding of this sum. ``bv``
    is a uint64 view of the one-element float64 scratch ``fb``.
    """
    fb[0] = u
    b = bv[0]
    e = np.int64((b >> np.uint64(52)) & np.uint64(0x7FF)) - 1023
    j = np.int64((b >> np.uint64(44)) & np.uint64(255))
    return -(e * _LN2 + table[j + 1]) - _BOUND_ABS


@njit(cache=True, nogil=True, inline="always")
def _worse(ta, ia, tb, ib) -> bool:
    """Is the key ``(ta, ia)`` larger than ``(tb, ib)``?"""
    return ta > tb or (ta == tb and ia > ib)


@njit(cache=True, nogil=True)
def _push(ht, hi, start, size, cap, tv, iv) -> np.int64:
    """Keep the ``cap`` smallest keys in the max-heap ``ht/hi[start:start+cap]``; return the new size."""
    if size < cap:
        j = size
        ht[start + j] = tv
        hi[start + j] = iv
        while j > 0:
            p = (j - 1) // 2
            if _worse(ht[start + j], hi[start + j], ht[start + p], hi[start + p]):
                ht[start + j], ht[start + p] = ht[start + p], ht[start + j]
                hi[start + j], hi[start + p] = hi[start + p], hi[start + j]
                j = p
            else:
                break
        return size + 1
    if not _worse(ht[start], hi[start], tv, iv):
        return size
    ht[start] = tv
    hi[start] = iv
    j = 0
    while True:
        a = 2 * j + 1
        if a >= cap:
            break
        b = a + 1
        m = a
        if b < cap and _worse(ht[start + b], hi[start + b], ht[start + a], hi[start + a]):
            m = b
        if _worse(ht[start + m], hi[start + m], ht[start + j], hi[start + j]):
            ht[start + j], ht[start + m] = ht[start + m], ht[start + j]
            hi[start + j], hi[start + m] = hi[start + m], hi[start + j]
            j = m
        else:
            break
    return size


@njit(cache=True, nogil=True, parallel=True)
def _sweep_topk_pruned(lu, zones, pot, levels, allowed, frontier, lock, exclude_frontier, quota, inertia, keys,
                       rows, cols, row0, col0, gcols, nchunks):
    """Per group, the ``quota`` smallest race keys among the eligible cells of a tile, with few logarithms.

    The same candidates and keys as :func:`landuse.growth.kernels._sweep_topk` (new
    patches with ``exclude_frontier``: frontier cells are skipped; fill otherwise): type
    ``k`` of cell ``c`` in zone ``z`` is open when ``quota[z * T + k] > 0``,
    ``allowed[k, lu[c]]`` and ``pot[k, c] > 0``, with weight ``w = levels[pot[k, c]] *
    inertia[z, k]``; the cell's key is the smallest ``-ln(u_k) / w`` over its open types
    and its group that type's. Locked cells and cells outside every zone (zone 0, e.g. a
    tile's halo) are never candidates.

    Each of ``nchunks`` row chunks keeps a bounded max-heap of ``quota[g]`` entries per
    group. Once the heaps of all of a cell's open types are full, a lower bound of each
    type's key (from the bits of ``u``, no logarithm) is compared with that heap's largest
    key: when every bound lies above, the cell cannot enter any heap whichever type wins,
    and its exact keys are never computed. Other cells run the exact race. The heaps thus
    end as the exact kernel's would: per chunk and group the ``quota[g]`` smallest
    ``(t, global index)``; their union holds every group's ``quota[g]`` smallest.

    Returns
    -------
    group : int32 array
    t : float64 array
        The exact keys.
    gidx : int64 array
        Global indices; the heaps' entries, chunk after chunk, group after group.
    """
    T = pot.shape[0]
    G = quota.size
    offs = np.zeros(G + 1, dtype=np.int64)
    for g in range(G):
        offs[g + 1] = offs[g] + max(0, quota[g])
    cap_total = offs[G]
    zone_open = np.zeros(inertia.shape[0], dtype=np.bool_)
    for g in range(G):
        if quota[g] > 0:
            zone_open[g // T] = True
    table = _LOG1P
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
            if _getbit(lock, c):
                continue
            if exclude_frontier and _getbit(frontier, c):
                continue
            code = lu[c]
            qbase = z * T
            r = c // cols
            g_i = (row0 + r) * gcols + col0 + (c - r * cols)
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
                        lo = _neglog_lower(_uniform(keys[k], g_i), fb, bv, table) * (1.0 / w) * _BOUND_REL
                        if not lo > hth[offs[g]]:
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
                        tk = -math.log(_uniform(keys[k], g_i)) / w
                        if tk < best:
                            best = tk
                            bestk = k
            if bestk < 0:
                continue
            g = qbase + bestk
            hs[ch, g] = _push(hth, hih, offs[g], hs[ch, g], quota[g], best, g_i)
    total = 0
    for ch in range(nchunks):
        for g in range(G):
            total += hs[ch, g]
    group = np.empty(total, dtype=np.int32)
    t = np.empty(total, dtype=np.float64)
    gidx = np.empty(total, dtype=np.int64)
    p = 0
    for ch in range(nchunks):
        for g in range(G):
            for m in range(hs[ch, g]):
                group[p] = g
                t[p] = ht[ch, offs[g] + m]
                gidx[p] = hi[ch, offs[g] + m]
                p += 1
    return group, t, gidx


@njit(cache=True, nogil=True, inline="always")
def _window_counts(c, code, lu, packed, rows, cols, radius):
    """Packed per-type counts of the urban cells in ``c``'s window, centre excluded (clipped at the edges)."""
    r = c // cols
    col = c - r * cols
    acc = np.uint64(0)
    if r >= radius and r < rows - radius and col >= radius and col < cols - radius:
        for rr in range(-radius, radius + 1):
            row = c + rr * cols
            for cc in range(-radius, radius + 1):
                acc += packed[lu[row + cc]]
        acc -= packed[code]
    else:
        for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
            row = rr * cols
            for cc in range(max(0, col - radius), min(cols, col + radius + 1)):
                j = row + cc
                if j != c:
                    acc += packed[lu[j]]
    return acc


@njit(cache=True, nogil=True, inline="always")
def _neighbourhood(acc, k, T, weights, inv_window, unit, square, strength):
    """``N_k ** strength`` from packed window counts (0 when no weighted urban neighbour)."""
    nk = 0.0
    for j in range(T):
        nk += weights[k, j] * np.float64((acc >> np.uint64(8 * j)) & np.uint64(255))
    if nk > 0.0:
        nk *= inv_window
        if square:
            nk = nk * nk
        elif not unit:
            nk = nk ** strength
    return nk


@njit(cache=True, nogil=True, parallel=True)
def _frontier_topk(frontier, lu, zones, pot, levels, allowed, packed, weights, strength, rows, cols, radius,
                   inertia, quota, keys, lock, row0, col0, gcols, nchunks):
    """Per group, the ``quota`` smallest race keys among a tile's frontier cells, in one pass with few logarithms.

    The candidates and keys of :func:`landuse.growth.kernels._frontier_keys` on the
    frontier's cells (set bits of ``frontier``) with zone ``zones[c] > 0`` (a tile's halo
    has zone 0) and not locked: for each type ``k`` with ``quota[z * T + k] > 0``,
    ``allowed[k, lu[c]]`` and ``pot[k, c] > 0``, ``w = levels[pot[k, c]] * N_k ** strength
    * inertia[z, k]`` with ``N_k = sum_j weights[k, type(j)] / (n*n - 1)`` over the urban
    cells of the window (centre excluded), and the key ``-ln(u_k) / w`` with the draw of
    the global index (``(row0 + r) * gcols + col0 + col``); the smallest key over the
    types with ``N_k > 0`` wins. The float operations are those of ``_frontier_keys``, so
    the keys are bit-identical.

    Instead of every key, each of ``nchunks`` chunks of the bitset keeps a bounded
    max-heap of ``quota[g]`` entries per group; once a cell's open types all have full
    heaps, a lower bound of each key (no logarithm) is compared with the heap's largest
    key, and a cell that cannot enter any of them is passed over. The heaps end holding,
    per chunk and group, the ``quota[g]`` smallest ``(t, global index)``.

    Returns
    -------
    group, t, gidx : the heaps' entries (int32, float64 exact keys, int64 global indices).
    """
    T = pot.shape[0]
    G = quota.size
    n = rows * cols
    nwords = frontier.size
    offs = np.zeros(G + 1, dtype=np.int64)
    for g in range(G):
        offs[g + 1] = offs[g] + max(0, quota[g])
    cap_total = offs[G]
    zone_open = np.zeros(inertia.shape[0], dtype=np.bool_)
    for g in range(G):
        if quota[g] > 0:
            zone_open[g // T] = True
    inv_window = 1.0 / ((2 * radius + 1) ** 2 - 1)
    unit = strength == 1.0
    square = strength == 2.0
    table = _LOG1P
    ht = np.empty((nchunks, cap_total), dtype=np.float64)
    hi = np.empty((nchunks, cap_total), dtype=np.int64)
    hs = np.zeros((nchunks, G), dtype=np.int64)
    for ch in prange(nchunks):
        fb = np.empty(1, dtype=np.float64)
        bv = fb.view(np.uint64)
        hth = ht[ch]
        hih = hi[ch]
        wts = np.empty(T, dtype=np.float64)
        for wd in range(ch * nwords // nchunks, (ch + 1) * nwords // nchunks):
            x = frontier[wd]
            while x:
                low = x & (~x + _ONE)
                x ^= low
                c = np.int64(wd) * 64 + _DEBRUIJN_TABLE[np.int64((low * _DEBRUIJN) >> _S58)]
                if c >= n:
                    break
                z = zones[c]
                if z <= 0 or not zone_open[z] or _getbit(lock, c):
                    continue
                code = lu[c]
                qbase = z * T
                acc = _window_counts(c, code, lu, packed, rows, cols, radius)
                if acc == 0:
                    continue
                r = c // cols
                g_i = (row0 + r) * gcols + col0 + (c - r * cols)
                skip = True
                for k in range(T):
                    wts[k] = 0.0
                    if quota[qbase + k] > 0 and allowed[k, code] and pot[k, c] > 0:
                        nk = _neighbourhood(acc, k, T, weights, inv_window, unit, square, strength)
                        if nk > 0.0:
                            w = levels[pot[k, c]] * nk * inertia[z, k]
                            wts[k] = w
                            g = qbase + k
                            if skip:
                                if hs[ch, g] < quota[g]:
                                    skip = False
                                elif not (_neglog_lower(_uniform(keys[k], g_i), fb, bv, table) * (1.0 / w)
                                          * _BOUND_REL > hth[offs[g]]):
                                    skip = False
                if skip:
                    continue
                best = np.inf
                bestk = -1
                for k in range(T):
                    if wts[k] != 0.0:
                        tk = -math.log(_uniform(keys[k], g_i)) / wts[k]
                        if tk < best:
                            best = tk
                            bestk = k
                if bestk < 0:
                    continue
                g = qbase + bestk
                hs[ch, g] = _push(hth, hih, offs[g], hs[ch, g], quota[g], best, g_i)
    total = 0
    for ch in range(nchunks):
        for g in range(G):
            total += hs[ch, g]
    group = np.empty(total, dtype=np.int32)
    t = np.empty(total, dtype=np.float64)
    gidx = np.empty(total, dtype=np.int64)
    p = 0
    for ch in range(nchunks):
        for g in range(G):
            for m in range(hs[ch, g]):
                group[p] = g
                t[p] = ht[ch, offs[g] + m]
                gidx[p] = hi[ch, offs[g] + m]
                p += 1
    return group, t, gidx
