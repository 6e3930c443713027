"""Numba kernels of the tiled growth path (plain numpy arrays in, plain arrays out).

Conventions and helpers are those of :mod:`landuse.growth.kernels` (flat rasters, class
codes, quantised potentials, counter-based draws of the **global** cell index, race keys
``t = -ln(u) / w`` ordered by ``(t, global index)``); the sweeps of new patches and fill
use the engine's own pruned ``kernels._sweep_topk``. Nothing here reads config, xarray
or rasterio; see :mod:`landuse.growth.tiled`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from landuse.growth.kernels import (
    _APPROX_SLACK,
    _DEBRUIJN,
    _DEBRUIJN_TABLE,
    _LOG_TABLE,
    _ONE,
    _REL_LO,
    _S58,
    _getbit,
    _heap_entries,
    _heap_layout,
    _heap_push,
    _neglog_approx,
    _prefetch,
    _type_weight,
    _window_sum,
)
from landuse.growth.random import _uniform

_WORDS_AHEAD = 8  # frontier words (64 cells each) between a prefetch and its use


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
    offs, zone_open = _heap_layout(quota, T, inertia.shape[0])
    cap_total = offs[G]
    inv_window = 1.0 / ((2 * radius + 1) ** 2 - 1)
    unit = strength == 1.0
    square = strength == 2.0
    table = _LOG_TABLE
    ht = np.empty((nchunks, cap_total), dtype=np.float64)
    hi = np.empty((nchunks, cap_total), dtype=np.int64)
    hs = np.zeros((nchunks, G), dtype=np.int64)
    for ch in prange(nchunks):
        fb = np.empty(1, dtype=np.float64)
        bv = fb.view(np.uint64)
        hth = ht[ch]
        hih = hi[ch]
        wts = np.empty(T, dtype=np.float64)
        w1 = (ch + 1) * nwords // nchunks
        for wd in range(ch * nwords // nchunks, w1):
            # ask for the lines of a frontier word _WORDS_AHEAD on (no effect on results)
            if wd + _WORDS_AHEAD < w1 and frontier[wd + _WORDS_AHEAD] != 0:
                ca = min(np.int64(wd + _WORDS_AHEAD) * 64, n - 1)
                for rr in range(-radius, radius + 1):
                    _prefetch(lu, min(max(ca + rr * cols, 0), n - 1))
                _prefetch(zones, ca)
                for k in range(T):
                    _prefetch(pot[k], ca)
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
                acc = _window_sum(c, code, lu, packed, rows, cols, radius)
                if acc == 0:
                    continue
                r = c // cols
                g_i = (row0 + r) * gcols + col0 + (c - r * cols)
                skip = True
                for k in range(T):
                    wts[k] = 0.0
                    if quota[qbase + k] > 0 and allowed[k, code] and pot[k, c] > 0:
                        nk = _type_weight(acc, k, T, weights, inv_window, unit, square, strength)
                        if nk > 0.0:
                            w = levels[pot[k, c]] * nk * inertia[z, k]
                            wts[k] = w
                            g = qbase + k
                            if skip:
                                if hs[ch, g] < quota[g]:
                                    skip = False
                                elif not ((_neglog_approx(_uniform(keys[k], g_i), fb, bv, table) - _APPROX_SLACK)
                                          * (1.0 / w) * _REL_LO > hth[offs[g]]):
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
                hs[ch, g] = _heap_push(hth, hih, offs[g], hs[ch, g], quota[g], best, g_i)
    return _heap_entries(ht, hi, hs, offs)
