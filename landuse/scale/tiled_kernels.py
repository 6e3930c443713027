"""Numba kernels of the tiled growth path (plain numpy arrays in, plain arrays out).

Conventions are those of :mod:`landuse.growth.kernels` (flat rasters, class codes, quantised
potentials, counter-based draws of the **global** cell index, race keys ``t = -ln(u) / w``
ordered by ``(t, global index)``), and the helpers are the growth package's public kernels
(:mod:`~landuse.growth.bits`, :mod:`~landuse.growth.races`, :mod:`~landuse.growth.selection`);
the sweeps of new patches and fill use the engine's own pruned ``kernels.sweep_topk``; the
frontier steps select with key brackets as the engine's ``kernels.frontier_select`` does, split between the tiles
(:func:`_frontier_brackets`) and the driver (:func:`_select_brackets`). Nothing here reads config, xarray
or rasterio; see :mod:`landuse.scale.tiled`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from landuse.growth.bits import DEBRUIJN, DEBRUIJN_SHIFT, DEBRUIJN_TABLE, ONE, getbit, popcount, prefetch
from landuse.growth.races import APPROX_SLACK, LOG_TABLE, bracket_race, exact_race, race_weight, window_sum
from landuse.growth.random import uniform_kernel
from landuse.growth.selection import (
    kth_value,
    open_zones,
    segment_offsets,
    segment_scatter,
    take_band,
    take_sure,
)

_WORDS_AHEAD = 8  # frontier words (64 cells each) between a prefetch and its use


@njit(cache=True, nogil=True)
def _close_gaps(grp, hib, wb, gib, starts, used, nchunks):
    """Move each chunk's ``used[ch]`` records from ``starts[ch]`` to follow the chunks before it; return the count.

    In chunk order, so the records stay in ascending cell order.
    """
    m = 0
    for ch in range(nchunks):
        for j in range(starts[ch], starts[ch] + used[ch]):
            grp[m] = grp[j]
            hib[m] = hib[j]
            wb[m] = wb[j]
            gib[m] = gib[j]
            m += 1
    return m


@njit(cache=True, nogil=True)
def _keep_below(grp, hib, wb, gib, m, cut):
    """Keep, in order, the first ``m`` records whose ``hib`` is at most their group's ``cut``; return the count."""
    keep = 0
    for i in range(m):
        if hib[i] <= cut[grp[i]]:
            grp[keep] = grp[i]
            hib[keep] = hib[i]
            wb[keep] = wb[i]
            gib[keep] = gib[i]
            keep += 1
    return keep


@njit(cache=True, nogil=True, parallel=True)
def _frontier_brackets(frontier, lu, zones, pot, levels, allowed, packed, weights, strength, rows, cols, radius,
                       inertia, quota, keys, lock, row0, col0, gcols, nchunks):
    """A tile's frontier candidates that may be among their group's ``quota`` smallest keys, with key brackets.

    The candidates and keys of :func:`landuse.growth.kernels._frontier_keys` on the
    frontier's cells (set bits of ``frontier``) with zone ``zones[c] > 0`` (a tile's halo
    has zone 0) and not locked, with the draws of the global index (``(row0 + r) * gcols
    + col0 + col``). As in :func:`kernels.frontier_select`, each candidate's race is run
    on brackets ``lo <= t <= hi`` of its exact keys (a table logarithm, no libm call);
    the exact keys decide only when the winner is not settled by the brackets (then
    ``hi`` is the exact key). Brackets are at most ``width`` wide.

    Per group with more than ``quota[g]`` candidates, ``vU`` is the ``quota[g]``-th
    smallest ``hi``; every candidate among the tile's ``quota[g]`` smallest exact keys
    has ``hi <= vU + width``, so only those are returned. The union over the tiles thus
    holds every group's ``quota[g]`` smallest keys of the whole raster, and
    :func:`_select_brackets` takes them exactly, computing the exact key ``-ln(u_k) / w``
    only in the band where the brackets do not decide. ``w`` is the winner's weight,
    computed with the float operations of ``_frontier_keys``, so that key is bit-identical.

    ``nchunks`` word ranges of ``frontier`` run in parallel; the output (ascending cell
    order) does not depend on it.

    Returns
    -------
    group (int32), hi (float64), w (float64), gidx (int64), width (float)
    """
    T = pot.shape[0]
    G = quota.size
    n = rows * cols
    nwords = frontier.size
    zone_open = open_zones(quota, T, inertia.shape[0])
    inv_window = 1.0 / ((2 * radius + 1) ** 2 - 1)
    table = LOG_TABLE
    potT = pot.T  # potentials by (cell, type), as a candidate list's records
    # slots: each chunk's frontier bits
    starts = np.zeros(nchunks + 1, dtype=np.int64)
    for ch in prange(nchunks):
        cnt = 0
        for wd in range(ch * nwords // nchunks, (ch + 1) * nwords // nchunks):
            cnt += popcount(frontier[wd])
        starts[ch + 1] = cnt
    for ch in range(nchunks):
        starts[ch + 1] += starts[ch]
    grp = np.empty(starts[nchunks], dtype=np.int32)
    hib = np.empty(starts[nchunks], dtype=np.float64)
    wb = np.empty(starts[nchunks], dtype=np.float64)
    gib = np.empty(starts[nchunks], dtype=np.int64)
    used = np.zeros(nchunks, dtype=np.int64)
    wmins = np.full(nchunks, np.inf)
    for ch in prange(nchunks):
        fb = np.empty(1, dtype=np.float64)
        bv = fb.view(np.uint64)
        p = starts[ch]
        wmin = np.inf
        w1 = (ch + 1) * nwords // nchunks
        for wd in range(ch * nwords // nchunks, w1):
            # ask for the lines of a frontier word _WORDS_AHEAD on (no effect on results)
            if wd + _WORDS_AHEAD < w1 and frontier[wd + _WORDS_AHEAD] != 0:
                ca = min(np.int64(wd + _WORDS_AHEAD) * 64, n - 1)
                for rr in range(-radius, radius + 1):
                    prefetch(lu, min(max(ca + rr * cols, 0), n - 1))
                prefetch(zones, ca)
                for k in range(T):
                    prefetch(pot[k], ca)
            x = frontier[wd]
            while x:
                low = x & (~x + ONE)
                x ^= low
                c = np.int64(wd) * 64 + DEBRUIJN_TABLE[np.int64((low * DEBRUIJN) >> DEBRUIJN_SHIFT)]
                if c >= n:
                    break
                z = zones[c]
                if z <= 0 or not zone_open[z] or getbit(lock, c):
                    continue
                code = lu[c]
                qbase = z * T
                acc = window_sum(c, code, lu, packed, rows, cols, radius)
                if acc == 0:
                    continue
                r = c // cols
                g_i = (row0 + r) * gcols + col0 + (c - r * cols)
                bestk, bhi, bw, settled = bracket_race(potT, c, g_i, z, code, acc, levels, allowed, weights,
                                                       strength, inertia, quota, keys, inv_window, fb, bv, table)
                if not settled:
                    bestk, bhi = exact_race(c, g_i, z, code, acc, potT, levels, allowed, weights, strength,
                                            inertia, quota, keys, inv_window)
                    if bestk >= 0:
                        bw = race_weight(potT, c, z, bestk, acc, levels, weights, strength, inertia, inv_window)
                elif bw < wmin:
                    wmin = bw
                if bestk >= 0:
                    grp[p] = qbase + bestk
                    hib[p] = bhi
                    wb[p] = bw
                    gib[p] = g_i
                    p += 1
        used[ch] = p - starts[ch]
        wmins[ch] = wmin
    # bracket width bound, as in kernels.frontier_select
    width = (2.0 * APPROX_SLACK + 1e-10) / wmins.min() * 1.001 + 1e-6
    m = _close_gaps(grp, hib, wb, gib, starts, used, nchunks)
    grp = grp[:m]
    hib = hib[:m]
    # per group: the quota-th smallest hi bounds the tile's candidates that can be selected
    cc, offs, _ = segment_offsets(grp, quota)
    hb = np.empty(offs[G], dtype=np.float64)
    pb = np.empty(offs[G], dtype=np.int64)
    segment_scatter(grp, quota, hib, cc, hb, pb)
    cut = np.full(G, np.inf)
    todo = np.nonzero(offs[1:] - offs[:G] > quota)[0]
    for j in prange(todo.size):
        g = todo[j]
        cut[g] = kth_value(hb, offs[g], offs[g + 1], quota[g] - 1) + width
    keep = _keep_below(grp, hib, wb, gib, m, cut)
    return grp[:keep].copy(), hib[:keep].copy(), wb[:keep].copy(), gib[:keep].copy(), width


@njit(cache=True, nogil=True, parallel=True)
def _select_brackets(group, hi, w, gidx, quota, keys, width):
    """Positions of the ``quota[g]`` smallest exact keys ``(t, gidx)`` per group among bracketed candidates.

    The entries are those of :func:`_frontier_brackets` from every tile (``width``: the
    largest of their widths). Per group with more candidates than its quota, ``vU`` is
    the quota-th smallest ``hi``; the quota-th smallest exact key lies in ``[vU - width,
    vU]``, so candidates with ``hi < vU - width`` are selected, those with ``hi > vU +
    width`` are not, and those in between get their exact key ``-ln(u_k) / w`` (the draw
    of type ``k = g % T`` at ``gidx``; bit-identical to the engine's), from which the rest
    of the quota is taken in ``(t, gidx)`` order: the selection of the exact keys. Returns
    positions grouped by group.
    """
    G = quota.size
    T = keys.size
    cc, offs, outoffs = segment_offsets(group, quota)
    hb = np.empty(offs[G], dtype=np.float64)
    pb = np.empty(offs[G], dtype=np.int64)
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
        for m in range(a, b):
            if hb[m] >= sure_below and hb[m] <= sure_above:
                i = pb[m]
                ut[h] = -math.log(uniform_kernel(keys[k], gidx[i])) / w[i]
                ui[h] = gidx[i]
                up[h] = i
                h += 1
        take_band(ut, ui, up, q - (o - outoffs[g]), out, o)
    return out


@njit(cache=True, nogil=True)
def _apply_changes(lu, lock, g, code, per, period, wr0, wr1, wc0, wc1, gcols):
    """Write the conversions that fall in a tile's window into its land use and lock; their local cells.

    ``g`` (global indices), ``code`` and ``per`` (period indices) list conversions oldest
    first for each cell, so writing them in order leaves each cell's latest class. Cells
    converted in ``period`` are set in the ``lock`` bitset. The window is rows
    ``[wr0, wr1)`` and columns ``[wc0, wc1)`` of a raster ``gcols`` wide; conversions
    outside it are passed over. Returns the local flat cells written, in input order (a
    cell converted twice is listed twice; the frontier update takes each as often).
    """
    w = wc1 - wc0
    out = np.empty(g.size, dtype=np.int64)
    m = 0
    for i in range(g.size):
        r = g[i] // gcols
        c = g[i] - r * gcols
        if r >= wr0 and r < wr1 and c >= wc0 and c < wc1:
            loc = (r - wr0) * w + (c - wc0)
            lu[loc] = code[i]
            if per[i] == period:
                lock[loc >> 6] |= np.uint64(1) << np.uint64(loc & 63)
            out[m] = loc
            m += 1
    return out[:m]
