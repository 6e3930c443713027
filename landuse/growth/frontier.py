"""Eligibility and frontier bitsets, their update at converted cells, and the engine's candidate list.

* A cell is *eligible* when it lies in a zone and some urban type may take its class with
  potential > 0 (:func:`eligible_bits`); the *frontier* is the eligible cells with an urban cell in
  their Moore window (:func:`build_frontier`).
* A conversion changes eligibility only at the converted cell and the frontier only in its window:
  :func:`convert_clear` converts and locks the selected cells and updates their own bits,
  :func:`join_scan` sets and lists the cells that join the frontier; :func:`update_frontier` does
  both for cells converted elsewhere (a tile's halo).
* The in-memory engine's candidate list (cell, zone, quantised potentials) as a few sorted runs:
  :func:`append_records`, :func:`retire`, :func:`retire_all`, :func:`merge_runs`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from landuse.growth.bits import (
    ONE,
    PREFETCH_AHEAD,
    atomic_clearbit,
    atomic_setbit,
    claim_bit,
    clearbit,
    getbit,
    prefetch,
    setbit,
)

# --------------------------------------------------------------------------- cell predicates and bitsets


@njit(cache=True, nogil=True, inline="always")
def _static_eligible(c, lu, zones, pot, allowed) -> bool:
    """Whether cell ``c`` may become some urban type, given its current class (ignoring neighbours)."""
    if zones[c] <= 0:
        return False
    code = lu[c]
    for k in range(pot.shape[0]):
        if allowed[k, code] and pot[k, c] > 0:
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _has_urban_neighbour(c, lu, code_type, rows, cols, radius) -> bool:
    r = c // cols
    col = c - r * cols
    if r >= radius and r < rows - radius and col >= radius and col < cols - radius:
        for rr in range(-radius, radius + 1):
            row = c + rr * cols
            for cc in range(-radius, radius + 1):
                if code_type[lu[row + cc]] >= 0 and (rr != 0 or cc != 0):
                    return True
        return False
    for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
        row = rr * cols
        for cc in range(max(0, col - radius), min(cols, col + radius + 1)):
            j = row + cc
            if j != c and code_type[lu[j]] >= 0:
                return True
    return False


@njit(cache=True, nogil=True, parallel=True)
def eligible_bits(lu, zones, pot, allowed) -> np.ndarray:
    """Bitset of statically eligible cells: in a zone, and some type may take the cell's class with potential > 0.

    Only a conversion changes a cell's eligibility (its own class changes), so the
    engine builds this once per simulation and updates it at converted cells.
    """
    n = lu.size
    nwords = (n + 63) // 64
    bits = np.zeros(nwords, dtype=np.uint64)
    for w in prange(nwords):
        x = np.uint64(0)
        a = np.int64(w) * 64
        for c in range(a, min(n, a + 64)):
            if _static_eligible(c, lu, zones, pot, allowed):
                x |= ONE << np.uint64(c - a)
        bits[w] = x
    return bits


@njit(cache=True, nogil=True, parallel=True)
def build_frontier(elig, lu, code_type, rows, cols, radius) -> np.ndarray:
    """Bitset of frontier cells: eligible (bit set in ``elig``) with an urban cell in the window."""
    n = rows * cols
    nwords = elig.size
    bits = np.zeros(nwords, dtype=np.uint64)
    for w in prange(nwords):
        e = elig[w]
        if e == 0:
            continue
        x = np.uint64(0)
        a = np.int64(w) * 64
        for c in range(a, min(n, a + 64)):
            if ((e >> np.uint64(c - a)) & ONE) != 0 and _has_urban_neighbour(c, lu, code_type, rows, cols, radius):
                x |= ONE << np.uint64(c - a)
        bits[w] = x
    return bits


# --------------------------------------------------------------------------- conversion and frontier update


@njit(cache=True, nogil=True, inline="always")
def _prefetch_window_bits(cn, elig, bits, cols, radius):
    for rr in range(-radius, radius + 1):
        wd = (cn + rr * cols) >> 6
        prefetch(elig, wd)
        prefetch(bits, wd)


@njit(cache=True, nogil=True, inline="always")
def _own_bits(c, lu, zones, pot, allowed, code_type, rows, cols, radius, elig, bits) -> bool:
    """Eligibility and frontier bits of converted cell ``c`` (its new class); True if it joined the frontier."""
    if _static_eligible(c, lu, zones, pot, allowed):
        setbit(elig, c)
        if not getbit(bits, c) and _has_urban_neighbour(c, lu, code_type, rows, cols, radius):
            setbit(bits, c)
            return True
        return False
    clearbit(elig, c)
    clearbit(bits, c)
    return False


@njit(cache=True, nogil=True)
def update_frontier(bits, elig, converted, lu, zones, pot, allowed, code_type, rows, cols, radius):
    """Update the eligibility and frontier bitsets after ``converted`` cells changed class (already in ``lu``).

    A converted cell stays eligible (and in the frontier) only if the matrix lets its new
    class change again; the eligible cells in its window that were not in the frontier
    join it. Only converted cells change eligibility, so neighbours are tested with one
    bit each (no potential or zone lookups). Returns the cells that joined, each once, in
    no particular order (the caller sorts them). The in-memory engine clears the bits of
    the cells no type may take while converting (:func:`convert_clear`); this does it
    here, then runs the same :func:`join_scan`.
    """
    m = converted.size
    source = np.zeros(256, dtype=np.bool_)  # classes some type may take
    for k in range(pot.shape[0]):
        for code in range(256):
            source[code] |= allowed[k, code]
    src = np.empty(m, dtype=np.int64)
    ns = 0
    for i in range(m):
        c = converted[i]
        if source[lu[c]]:
            src[ns] = c
            ns += 1
        else:
            clearbit(elig, c)
            clearbit(bits, c)
    span = (2 * radius + 1) ** 2 - 1
    return join_scan(bits, elig, converted, src[:ns], lu, zones, pot, allowed, code_type, rows, cols, radius,
                     np.empty(m * span, dtype=np.int64))


@njit(cache=True, nogil=True, parallel=True)
def convert_clear(lu, cells, cz, group, pos, type_codes, lock, conv_counts, elig, bits, source, in_list):
    """Convert ``cells[pos]`` to their group's type, lock them, count them per group, and update their own bits.

    A cell whose new class no type may take (``source[code]`` false) leaves the eligible
    set and the frontier here and, when ``in_list`` (``cells`` is the candidate list),
    its list entry is retired (``cz = 0``). Fixed chunks of ``pos`` run in parallel; the
    cells are distinct, bits are set and cleared atomically (neighbouring cells share
    words), and counts are summed in chunk order, so nothing depends on the threads.
    Returns the converted cells, their type indices (in the order of ``pos``), the
    indices (into those) of the cells whose new class some type may take, which
    :func:`join_scan` decides, and the number of list entries retired.
    """
    T = type_codes.size
    m = pos.size
    G = conv_counts.size
    out_c = np.empty(m, dtype=np.int64)
    out_k = np.empty(m, dtype=np.int8)
    is_src = np.zeros(m, dtype=np.bool_)
    nch = max(1, min(64, m // 2048))
    counts = np.zeros((nch, G), dtype=np.int64)
    deads = np.zeros(nch, dtype=np.int64)
    for ch in prange(nch):
        p1 = (ch + 1) * m // nch
        dead = 0
        for p in range(ch * m // nch, p1):
            if p + PREFETCH_AHEAD < p1:
                cn = cells[pos[p + PREFETCH_AHEAD]]
                wd = cn >> 6
                prefetch(lu, cn)
                prefetch(lock, wd)
                prefetch(elig, wd)
                prefetch(bits, wd)
            i = pos[p]
            c = cells[i]
            g = group[i]
            k = g % T
            code = type_codes[k]
            lu[c] = code
            atomic_setbit(lock, c)
            counts[ch, g] += 1
            out_c[p] = c
            out_k[p] = k
            if source[code]:
                is_src[p] = True
            else:
                atomic_clearbit(elig, c)
                atomic_clearbit(bits, c)
                if in_list and cz[i] > 0:
                    cz[i] = 0
                    dead += 1
        deads[ch] = dead
    for ch in range(nch):
        for g in range(G):
            conv_counts[g] += counts[ch, g]
    return out_c, out_k, np.nonzero(is_src)[0], deads.sum()


@njit(cache=True, nogil=True, parallel=True)
def join_scan(bits, elig, converted, src_cells, lu, zones, pot, allowed, code_type, rows, cols, radius, raw):
    """Set the frontier bits of the cells that join after :func:`convert_clear`; return them, each once, unsorted.

    ``src_cells`` are the converted cells whose new class some type may take: each is
    made eligible or not (as :func:`update_frontier` does) and joins if eligible,
    outside the frontier and next to urban land. Then the windows of every converted
    cell are scanned in parallel over fixed chunks: an eligible cell outside the
    frontier is claimed by setting its frontier bit atomically, so exactly one chunk
    lists it. Each chunk lists into its own slice of the caller's scratch ``raw`` (at
    least ``converted.size * (window - 1)`` entries). Which chunk lists a cell may
    depend on the threads; the set does not (the caller sorts it).
    """
    m = converted.size
    ns = src_cells.size
    own = np.empty(ns, dtype=np.int64)
    nown = 0
    for i in range(ns):
        c = src_cells[i]
        if _own_bits(c, lu, zones, pot, allowed, code_type, rows, cols, radius, elig, bits):
            own[nown] = c
            nown += 1
    nchunks = max(1, min(64, m // 1024))
    span = (2 * radius + 1) ** 2 - 1
    counts = np.zeros(nchunks + 1, dtype=np.int64)
    for ch in prange(nchunks):
        i0 = ch * m // nchunks
        i1 = (ch + 1) * m // nchunks
        p = i0 * span
        for i in range(i0, i1):
            if i + PREFETCH_AHEAD < i1:
                _prefetch_window_bits(converted[i + PREFETCH_AHEAD], elig, bits, cols, radius)
            c = converted[i]
            r = c // cols
            col = c - r * cols
            for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
                row = rr * cols
                for cc in range(max(0, col - radius), min(cols, col + radius + 1)):
                    j = row + cc
                    if j != c and getbit(elig, j) and not getbit(bits, j) and claim_bit(bits, j):
                        raw[p] = j
                        p += 1
        counts[ch + 1] = p - i0 * span
    counts[0] = nown
    for ch in range(nchunks):
        counts[ch + 1] += counts[ch]
    out = np.empty(counts[nchunks], dtype=np.int64)
    out[:nown] = own[:nown]
    for ch in prange(nchunks):
        p0 = (ch * m // nchunks) * span
        o = counts[ch]
        for q in range(counts[ch + 1] - o):
            out[o + q] = raw[p0 + q]
    return out


# --------------------------------------------------------------------------- candidate list


@njit(cache=True, nogil=True)
def _gather_records(cells, zones, pot):
    """Zone and quantised potentials ``(n, T)`` of candidate cells."""
    T = pot.shape[0]
    cz = np.empty(cells.size, dtype=np.int32)
    cpot = np.empty((cells.size, T), dtype=np.uint8)
    for i in range(cells.size):
        c = cells[i]
        cz[i] = zones[c]
        for k in range(T):
            cpot[i, k] = pot[k, c]
    return cz, cpot


@njit(cache=True, nogil=True, parallel=True)
def append_records(cand, cz, cpot, m, added, zones, pot):
    """Write ``added`` cells with their zone and potentials at positions ``m, m + 1, ...`` of the list."""
    T = pot.shape[0]
    n = added.size
    nchunks = max(1, min(64, n // 4096))
    for ch in prange(nchunks):
        e = (ch + 1) * n // nchunks
        for i in range(ch * n // nchunks, e):
            if i + PREFETCH_AHEAD < e:
                cn = added[i + PREFETCH_AHEAD]
                prefetch(zones, cn)
                for k in range(T):
                    prefetch(pot[k], cn)
            c = added[i]
            cand[m + i] = c
            cz[m + i] = zones[c]
            for k in range(T):
                cpot[m + i, k] = pot[k, c]


@njit(cache=True, nogil=True)
def retire(cand, cz, pos, bits):
    """Retire (zone 0) the list entries at ``pos`` whose frontier bit is clear; return how many."""
    n = 0
    for j in range(pos.size):
        i = pos[j]
        if cz[i] > 0 and not getbit(bits, cand[i]):
            cz[i] = 0
            n += 1
    return n


@njit(cache=True, nogil=True, parallel=True)
def retire_all(cand, cz, bits):
    """Retire every live list entry whose frontier bit is clear; return how many."""
    n = cand.size
    nchunks = max(1, min(256, n // 4096))
    counts = np.zeros(nchunks, dtype=np.int64)
    for ch in prange(nchunks):
        s = 0
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            if cz[i] > 0 and not getbit(bits, cand[i]):
                cz[i] = 0
                s += 1
        counts[ch] = s
    return counts.sum()


@njit(cache=True, nogil=True)
def merge_runs(cand, cz, cpot, starts, cap):
    """Merge the sorted runs ``[starts[r], starts[r + 1])`` of the list, dropping retired entries.

    The list grows by appending each iteration's joining cells as one sorted run, so it
    is a few sorted runs; merging restores one sorted run (memory-friendly order for the
    keys) in one pass. Returns new arrays of capacity ``cap`` and the live length.
    """
    T = cpot.shape[1]
    R = starts.size - 1
    heads = starts[:R].copy()
    nc = np.empty(cap, dtype=np.int64)
    nz = np.empty(cap, dtype=np.int32)
    npot = np.empty((cap, T), dtype=np.uint8)
    p = 0
    big = np.iinfo(np.int64).max
    while True:
        best = -1
        bc = big
        for r in range(R):
            h = heads[r]
            e = starts[r + 1]
            while h < e and cz[h] <= 0:
                h += 1
            heads[r] = h
            if h < e and cand[h] < bc:
                bc = cand[h]
                best = r
        if best < 0:
            break
        h = heads[best]
        nc[p] = bc
        nz[p] = cz[h]
        for k in range(T):
            npot[p, k] = cpot[h, k]
        heads[best] = h + 1
        p += 1
    return nc, nz, npot, p
