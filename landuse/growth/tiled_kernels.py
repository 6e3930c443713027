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
