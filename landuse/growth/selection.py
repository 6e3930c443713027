"""Selecting each (zone, type) group's ``quota`` smallest keys, ordered by ``(key, global index)``.

* Order statistics: :func:`kth_value` returns what ``np.partition`` would, from a sampled bracket
  and a quickselect on the few values inside it.
* Per-group segments are counted and scattered in fixed chunks (:func:`segment_offsets`,
  :func:`segment_scatter`), so nothing depends on the thread count; :func:`select_smallest` selects
  in them. ``_group_thresholds`` and ``_apply_thresholds`` (threshold pairs, computable from any
  partition of the candidates) are its reference in the tests.
* Selection on key brackets: :func:`take_sure` takes the entries a bracket settles, :func:`take_band`
  orders the uncertain band by exact key.
* Bounded max-heaps per group for the sweeps (:func:`heap_layout`, :func:`heap_push`,
  :func:`heap_entries`) and :func:`open_zones`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# --------------------------------------------------------------------------- order statistics


_SAMPLE = 256  # sample size of kth_value's bracket


@njit(cache=True, nogil=True)
def _quickselect(x, n, k):
    """The ``k``-th smallest (0-based) of ``x[:n]``, reordering ``x[:n]`` in place (Hoare, median of three)."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        a = x[lo]
        b = x[mid]
        c = x[hi]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
            if a > b:
                b = a
        i = lo
        j = hi
        while i <= j:
            while x[i] < b:
                i += 1
            while x[j] > b:
                j -= 1
            if i <= j:
                v = x[i]
                x[i] = x[j]
                x[j] = v
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return x[k]
    return x[k]


@njit(cache=True, nogil=True)
def kth_value(vals, a, b, k):
    """The ``k``-th smallest (0-based) of ``vals[a:b]`` (no NaN), leaving ``vals`` unchanged.

    The value ``np.partition(vals[a:b], k)[k]`` returns, in about two branch-free passes:
    two order statistics of a sample of 256 values bracket the rank (``r +- 3`` standard
    deviations of the sample rank, plus 2), one pass counts the values below the bracket and gathers
    those inside it, and a quickselect runs on the gathered few. If the rank falls
    outside the bracket (rare) the quickselect runs on all values.
    """
    n = b - a
    if n <= 4 * _SAMPLE:
        buf = vals[a:b].copy()
        return _quickselect(buf, n, k)
    s = _SAMPLE
    samp = np.empty(s, dtype=np.float64)
    for j in range(s):
        samp[j] = vals[a + (j * n) // s]
    r = (k + 0.5) * s / n
    d = 3.0 * math.sqrt(r * (1.0 - r / s)) + 2.0
    lo_r = np.int64(math.floor(r - d))
    hi_r = np.int64(math.ceil(r + d))
    # two selections in the sample (sorting it costs more than the pass below)
    lo = -np.inf
    hi = np.inf
    if hi_r < s:
        hi = _quickselect(samp, s, hi_r)  # leaves samp[:hi_r] <= hi
    if lo_r >= 0:
        lo = _quickselect(samp, min(hi_r, s), lo_r)
    buf = np.empty(n, dtype=np.float64)
    below = 0
    inside = 0
    for m in range(a, b):
        v = vals[m]
        below += v < lo
        buf[inside] = v
        inside += (v >= lo) & (v <= hi)
    if below <= k < below + inside:
        return _quickselect(buf, inside, k - below)
    for m in range(n):
        buf[m] = vals[a + m]
    return _quickselect(buf, n, k)


# --------------------------------------------------------------------------- per-group segments and selection


@njit(cache=True, nogil=True, parallel=True)
def segment_offsets(group, quota):
    """Counts of :func:`_segments_by_group`: ``(cc, offs, outoffs)``, ``cc[ch, g]`` each chunk's start in its segment."""
    G = quota.size
    n = group.size
    nch = max(1, min(64, n // 16384))
    cc = np.zeros((nch, G), dtype=np.int64)
    for ch in prange(nch):
        for i in range(ch * n // nch, (ch + 1) * n // nch):
            g = group[i]
            if g >= 0 and quota[g] > 0:
                cc[ch, g] += 1
    offs = np.zeros(G + 1, dtype=np.int64)
    outoffs = np.zeros(G + 1, dtype=np.int64)
    for g in range(G):
        tot = 0
        for ch in range(nch):
            m = cc[ch, g]
            cc[ch, g] = offs[g] + tot  # chunk start inside the group's segment
            tot += m
        offs[g + 1] = offs[g] + tot
        outoffs[g + 1] = outoffs[g] + min(tot, max(0, quota[g]))
    return cc, offs, outoffs


@njit(cache=True, nogil=True, parallel=True)
def segment_scatter(group, quota, values, cc, vb, pb):
    """Scatter as counted by :func:`segment_offsets` into ``vb`` (values) and ``pb`` (positions); consumes ``cc``."""
    n = group.size
    nch = cc.shape[0]
    for ch in prange(nch):
        for i in range(ch * n // nch, (ch + 1) * n // nch):
            g = group[i]
            if g >= 0 and quota[g] > 0:
                p = cc[ch, g]
                vb[p] = values[i]
                pb[p] = i
                cc[ch, g] = p + 1


@njit(cache=True, nogil=True)
def _segments_by_group(group, quota, values):
    """Scatter the candidates of groups with a positive quota into one segment per group.

    Returns ``offs`` (segment bounds, ``G + 1``), ``outoffs`` (prefix sums of
    ``min(count, quota)``: where each group's selection goes in an output array), and the
    segments' values and positions. Candidates are counted and scattered in fixed chunks, so
    the segments (positions ascending within a group) do not depend on the thread count.
    """
    cc, offs, outoffs = segment_offsets(group, quota)
    total = offs[quota.size]
    vb = np.empty(total, dtype=np.float64)
    pb = np.empty(total, dtype=np.int64)
    segment_scatter(group, quota, values, cc, vb, pb)
    return offs, outoffs, vb, pb


@njit(cache=True, nogil=True, parallel=True)
def _group_thresholds(group, t, gidx, quota):
    """Per group, the key pair of its ``quota``-th smallest ``(t, gidx)``.

    A candidate is selected when ``t < thr_t`` or ``t == thr_t and gidx <= thr_i``.
    Groups with at most ``quota`` candidates get ``(inf, max)`` (take all); groups with
    quota 0 get ``(-inf, -1)`` (take none). The result depends on the multiset of
    candidates only, not on their order.
    """
    G = quota.size
    n = group.size
    thr_t = np.full(G, np.inf)
    thr_i = np.full(G, np.iinfo(np.int64).max, dtype=np.int64)
    for g in range(G):
        if quota[g] <= 0:
            thr_t[g] = -np.inf
            thr_i[g] = -1
    nchunks = max(1, min(64, n // 16384))
    cc = np.zeros((nchunks, G), dtype=np.int64)
    for ch in prange(nchunks):
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            if group[i] >= 0:
                cc[ch, group[i]] += 1
    offs = np.zeros(G + 1, dtype=np.int64)
    for g in range(G):
        tot = 0
        for ch in range(nchunks):
            tot += cc[ch, g]
        over = tot > quota[g] and quota[g] > 0
        offs[g + 1] = offs[g] + (tot if over else 0)
    if offs[G] == 0:
        return thr_t, thr_i
    # chunk start positions inside each over-subscribed group's segment
    for g in range(G):
        pos = offs[g]
        for ch in range(nchunks):
            m = cc[ch, g]
            cc[ch, g] = pos
            pos += m
    tb = np.empty(offs[G], dtype=np.float64)
    ib = np.empty(offs[G], dtype=np.int64)
    for ch in prange(nchunks):
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            g = group[i]
            if g >= 0 and offs[g + 1] > offs[g]:
                p = cc[ch, g]
                tb[p] = t[i]
                ib[p] = gidx[i]
                cc[ch, g] = p + 1
    todo = np.nonzero(offs[1:] > offs[:G])[0]
    for j in prange(todo.size):
        g = todo[j]
        seg = tb[offs[g]:offs[g + 1]]
        segi = ib[offs[g]:offs[g + 1]]
        q = quota[g]
        v = kth_value(tb, offs[g], offs[g + 1], q - 1)
        less = 0
        nties = 0
        for m in range(seg.size):
            if seg[m] < v:
                less += 1
            elif seg[m] == v:
                nties += 1
        ties = np.empty(nties, dtype=np.int64)
        p = 0
        for m in range(seg.size):
            if seg[m] == v:
                ties[p] = segi[m]
                p += 1
        ties.sort()
        thr_t[g] = v
        thr_i[g] = ties[q - less - 1]
    return thr_t, thr_i


@njit(cache=True, nogil=True, parallel=True)
def _apply_thresholds(group, t, gidx, thr_t, thr_i):
    """Boolean selection of candidates under their group's threshold pair."""
    n = group.size
    sel = np.zeros(n, dtype=np.bool_)
    for i in prange(n):
        g = group[i]
        if g >= 0:
            tt = thr_t[g]
            sel[i] = t[i] < tt or (t[i] == tt and gidx[i] <= thr_i[g])
    return sel


@njit(cache=True, nogil=True, parallel=True)
def select_smallest(group, t, gidx, quota):
    """Positions of each group's ``quota`` smallest ``(t, gidx)`` (all of a group with fewer candidates).

    The whole-raster path in one go: candidates are counted and scattered per group
    (fixed chunks, so the segments do not depend on the thread count), then each group
    finds its threshold pair as :func:`_group_thresholds` does and keeps the positions
    under it, in parallel over groups. Selects exactly what :func:`_group_thresholds`
    followed by :func:`_apply_thresholds` selects (those two are its reference in the
    tests). Returns positions grouped by group (within a group, ascending or in key order).
    """
    G = quota.size
    offs, outoffs, tb, pb = _segments_by_group(group, quota, t)
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
        if b - a <= 32:  # small segment: sort it in place by (t, gidx), no allocation
            for m in range(a + 1, b):
                tv = tb[m]
                pv = pb[m]
                gv = gidx[pv]
                h = m - 1
                while h >= a and (tb[h] > tv or (tb[h] == tv and gidx[pb[h]] > gv)):
                    tb[h + 1] = tb[h]
                    pb[h + 1] = pb[h]
                    h -= 1
                tb[h + 1] = tv
                pb[h + 1] = pv
            for m in range(a, a + q):
                out[o] = pb[m]
                o += 1
            continue
        v = kth_value(tb, a, b, q - 1)
        less = 0
        nties = 0
        for m in range(a, b):
            if tb[m] < v:
                less += 1
            elif tb[m] == v:
                nties += 1
        ties = np.empty(nties, dtype=np.int64)
        p = 0
        for m in range(a, b):
            if tb[m] == v:
                ties[p] = gidx[pb[m]]
                p += 1
        ties.sort()
        ti = ties[q - less - 1]
        for m in range(a, b):
            if tb[m] < v or (tb[m] == v and gidx[pb[m]] <= ti):
                out[o] = pb[m]
                o += 1
    return out


# --------------------------------------------------------------------------- bracketed selection


@njit(cache=True, nogil=True)
def take_sure(hb, pb, a, b, q, width, out, o):
    """The sure part of a bracketed selection of ``q`` among more.

    ``hb[a:b]`` are upper bounds ``hi`` of keys, each at most ``width`` above its key, ``pb[a:b]`` what to write for
    each.

    ``vU`` is the ``q``-th smallest ``hi``: the ``q``-th smallest key lies in ``[vU - width, vU]``, so entries
    with ``hi < vU - width`` are selected (written to ``out`` from ``o``) and those with ``hi > vU + width``
    are not. Returns ``(o, lo, hi, nunc)``: the next position in ``out``, and the band ``lo <= hi_i <= hi`` of
    the ``nunc`` entries whose exact keys decide (:func:`take_band`).
    """
    vu = kth_value(hb, a, b, q - 1)
    lo = vu - width
    hi = vu + width
    nunc = 0
    for m in range(a, b):
        if hb[m] < lo:
            out[o] = pb[m]
            o += 1
        elif hb[m] <= hi:
            nunc += 1
    return o, lo, hi, nunc


@njit(cache=True, nogil=True)
def take_band(ut, ui, up, need, out, o):
    """Write to ``out[o:o + need]`` the ``up`` of the ``need`` smallest ``(ut, ui)`` (exact key, global index).

    The uncertain band of a bracketed selection: argsorts for a wide band, an insertion
    sort for the usual few. ``ut``, ``ui`` and ``up`` may be reordered.
    """
    nunc = ut.size
    if nunc > 64:
        order = np.argsort(ui)  # by index, then stably by key
        order = order[np.argsort(ut[order], kind="mergesort")]
        up = up[order]
    else:
        for h in range(1, nunc):
            tv = ut[h]
            iv = ui[h]
            pv = up[h]
            e = h - 1
            while e >= 0 and (ut[e] > tv or (ut[e] == tv and ui[e] > iv)):
                ut[e + 1] = ut[e]
                ui[e + 1] = ui[e]
                up[e + 1] = up[e]
                e -= 1
            ut[e + 1] = tv
            ui[e + 1] = iv
            up[e + 1] = pv
    for h in range(need):
        out[o + h] = up[h]


# --------------------------------------------------------------------------- bounded heaps (sweeps)


@njit(cache=True, nogil=True, inline="always")
def _heap_worse(ta, ia, tb, ib) -> bool:
    """Whether (ta, ia) is a worse (larger) key than (tb, ib)."""
    return ta > tb or (ta == tb and ia > ib)


@njit(cache=True, nogil=True)
def heap_push(ht, hi, start, size, cap, tv, iv) -> np.int64:
    """Keep the ``cap`` smallest keys in the max-heap ``ht/hi[start:start+cap]``; return new size."""
    if size < cap:
        j = size
        ht[start + j] = tv
        hi[start + j] = iv
        while j > 0:
            p = (j - 1) // 2
            if _heap_worse(ht[start + j], hi[start + j], ht[start + p], hi[start + p]):
                ht[start + j], ht[start + p] = ht[start + p], ht[start + j]
                hi[start + j], hi[start + p] = hi[start + p], hi[start + j]
                j = p
            else:
                break
        return size + 1
    if not _heap_worse(ht[start], hi[start], tv, iv):
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
        if b < cap and _heap_worse(ht[start + b], hi[start + b], ht[start + a], hi[start + a]):
            m = b
        if _heap_worse(ht[start + m], hi[start + m], ht[start + j], hi[start + j]):
            ht[start + j], ht[start + m] = ht[start + m], ht[start + j]
            hi[start + j], hi[start + m] = hi[start + m], hi[start + j]
            j = m
        else:
            break
    return size


@njit(cache=True, nogil=True)
def heap_layout(quota, T, nzones):
    """Per-group heap offsets (``quota[g]`` slots each) and the zones with some quota left."""
    G = quota.size
    offs = np.zeros(G + 1, dtype=np.int64)
    for g in range(G):
        offs[g + 1] = offs[g] + max(0, quota[g])
    return offs, open_zones(quota, T, nzones)


@njit(cache=True, nogil=True, inline="always")
def open_zones(quota, T, nzones):
    """Per zone, whether some type has quota left in it (``quota[z * T + k] > 0``)."""
    zone_open = np.zeros(nzones, dtype=np.bool_)
    for g in range(quota.size):
        if quota[g] > 0:
            zone_open[g // T] = True
    return zone_open


@njit(cache=True, nogil=True)
def heap_entries(ht, hi, hs, offs):
    """The chunks' heap entries, chunk after chunk, group after group: ``(group, t, gidx)``."""
    nchunks, G = hs.shape
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
