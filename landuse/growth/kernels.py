"""Numba kernels of the growth engine (plain numpy arrays in, plain arrays out).

Conventions shared by every kernel:

* Rasters are passed **flat** (C order) with their ``rows`` and ``cols``; a cell is its
  flat index ``c``. Per-type rasters are ``(T, rows * cols)``.
* ``lu`` holds class codes (uint8). ``code_type[code]`` is the urban type index of a
  class code (-1 for non-urban codes); ``allowed[k, code]`` says whether a cell of class
  ``code`` may become urban type ``k`` (the conversion matrix).
* ``pot[k, c]`` is the static potential base ``S x C`` of type ``k``, log-quantised to
  uint8 (0 = never); ``levels[code]`` decodes it to a float64 weight.
* A cell's random draw for type ``k`` is ``_uniform(keys[k], g)`` where ``g`` is the
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
import os

# Numba's OpenMP threading layer reads OMP_WAIT_POLICY when it is first loaded (at the
# first parallel launch in the process). Threads that busy-wait collapse when the cores
# are shared with other work (a 1000 x 1000 simulation went from 0.2 s to 10 s); passive
# waiting costs little here. A value chosen by the caller wins. See docs/growth.md.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import llvmlite.binding as _llvm
import numpy as np
from llvmlite import ir as _ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from landuse.growth.random import _uniform

_ONE = np.uint64(1)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_TABLE = np.array(
    [0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24,
     18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25,
     14, 19, 9, 13, 8, 7, 6],
    dtype=np.int64,
)
_S58 = np.uint64(58)
_LOG2_STEPS = 16.0  # quantisation: 16 codes per halving of the potential


# LLVM's prefetch intrinsic takes an opaque pointer from LLVM 15 on
_PREFETCH_NAME = "llvm.prefetch.p0" if _llvm.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"
_PREFETCH_AHEAD = 16  # candidates ahead: enough misses in flight to hide DRAM latency


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to load ``arr[idx]`` into cache (no effect on results; never faults).

    Gathers at sorted but scattered cells of large rasters (zones, potentials, bitsets,
    the land use around candidates) wait on memory, not on arithmetic; asking for the
    line a few cells ahead keeps several misses in flight (3x faster gathers measured).
    """
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), _ir.IntType(8).as_pointer())
        i32 = _ir.IntType(32)
        fnty = _ir.FunctionType(_ir.VoidType(), [_ir.IntType(8).as_pointer(), i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH_NAME)
        builder.call(fn, [ptr, _ir.Constant(i32, 0), _ir.Constant(i32, 3), _ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


def _atomic_rmw(op: str, doc: str):
    @intrinsic
    def rmw(typingctx, arr, idx, val):
        sig = arr.dtype(arr, idx, val)

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = builder.gep(ary.data, [args[1]])
            return builder.atomic_rmw(op, ptr, args[2], "monotonic")

        return sig, codegen

    rmw.__doc__ = doc
    return rmw


_atomic_or = _atomic_rmw("or", "``arr[idx] |= val`` as one atomic operation; returns the old value.")
_atomic_and = _atomic_rmw("and", "``arr[idx] &= val`` as one atomic operation; returns the old value.")


@njit(cache=True, nogil=True, inline="always")
def _claim_bit(bits: np.ndarray, i: np.int64) -> bool:
    """Set bit ``i`` atomically; True if this call set it (it was clear). Threads may race for a bit: one wins."""
    m = _ONE << np.uint64(i & 63)
    return (_atomic_or(bits, i >> 6, m) & m) == 0


@njit(cache=True, nogil=True, inline="always")
def _atomic_setbit(bits: np.ndarray, i: np.int64) -> None:
    _atomic_or(bits, i >> 6, _ONE << np.uint64(i & 63))


@njit(cache=True, nogil=True, inline="always")
def _atomic_clearbit(bits: np.ndarray, i: np.int64) -> None:
    _atomic_and(bits, i >> 6, ~(_ONE << np.uint64(i & 63)))


# --------------------------------------------------------------------------- quantisation


@njit(cache=True, nogil=True, parallel=True)
def _quantise_potential(w: np.ndarray, out: np.ndarray) -> None:
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


# --------------------------------------------------------------------------- bitsets


@njit(cache=True, nogil=True, inline="always")
def _getbit(bits: np.ndarray, i: np.int64) -> bool:
    return ((bits[i >> 6] >> np.uint64(i & 63)) & _ONE) != 0


@njit(cache=True, nogil=True, inline="always")
def _setbit(bits: np.ndarray, i: np.int64) -> None:
    bits[i >> 6] |= _ONE << np.uint64(i & 63)


@njit(cache=True, nogil=True, inline="always")
def _clearbit(bits: np.ndarray, i: np.int64) -> None:
    bits[i >> 6] &= ~(_ONE << np.uint64(i & 63))


@njit(cache=True, nogil=True, inline="always")
def _popcount(x: np.uint64) -> np.int64:
    n = 0
    while x:
        x &= x - _ONE
        n += 1
    return n


@njit(cache=True, nogil=True, parallel=True)
def _bits_to_indices(bits: np.ndarray, n: np.int64) -> np.ndarray:
    """Sorted indices (< ``n``) of the set bits."""
    nwords = bits.size
    nchunks = max(1, min(256, nwords // 1024))
    counts = np.zeros(nchunks + 1, dtype=np.int64)
    for ch in prange(nchunks):
        a = ch * nwords // nchunks
        b = (ch + 1) * nwords // nchunks
        s = 0
        for w in range(a, b):
            s += _popcount(bits[w])
        counts[ch + 1] = s
    for ch in range(nchunks):
        counts[ch + 1] += counts[ch]
    out = np.empty(counts[nchunks], dtype=np.int64)
    for ch in prange(nchunks):
        a = ch * nwords // nchunks
        b = (ch + 1) * nwords // nchunks
        pos = counts[ch]
        for w in range(a, b):
            x = bits[w]
            base = np.int64(w) << 6
            while x:
                low = x & (~x + _ONE)
                out[pos] = base + _DEBRUIJN_TABLE[np.int64((low * _DEBRUIJN) >> _S58)]
                pos += 1
                x ^= low
    m = out.size
    while m > 0 and out[m - 1] >= n:
        m -= 1
    return out[:m]


# --------------------------------------------------------------------------- cell predicates


@njit(cache=True, nogil=True, inline="always")
def _static_eligible(c, lu, zones, pot, allowed) -> bool:
    """May cell ``c`` become some urban type, given its current class (ignoring neighbours)?"""
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
def _eligible_bits(lu, zones, pot, allowed) -> np.ndarray:
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
                x |= _ONE << np.uint64(c - a)
        bits[w] = x
    return bits


@njit(cache=True, nogil=True, parallel=True)
def _build_frontier(elig, lu, code_type, rows, cols, radius) -> np.ndarray:
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
            if ((e >> np.uint64(c - a)) & _ONE) != 0 and _has_urban_neighbour(c, lu, code_type, rows, cols, radius):
                x |= _ONE << np.uint64(c - a)
        bits[w] = x
    return bits


# --------------------------------------------------------------------------- candidate keys


@njit(cache=True, nogil=True, inline="always")
def _global_index(c, cols, row0, col0, gcols):
    r = c // cols
    return (row0 + r) * gcols + col0 + (c - r * cols)


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
            if z <= 0 or _getbit(lock, c):
                continue
            code = lu[c]
            acc = _window_sum(c, code, lu, packed, rows, cols, radius)
            if acc == 0:
                continue
            g_i = c if whole else _global_index(c, cols, row0, col0, gcols)
            bestk, best = _exact_race(i, g_i, z, code, acc, cpot, levels, allowed, weights, strength, inertia,
                                      quota, keys, inv_window)
            if bestk >= 0:
                group[i] = z * cpot.shape[1] + bestk
                t[i] = best


# Brackets of the race keys. -ln(u) is approximated from the bits of u (exponent times ln 2
# plus a chord of ln over 1024 mantissa intervals: error below 1.2e-7, no libm call); with
# the slack below, ``lo <= -math.log(u) / w <= hi`` holds for the float key itself, so the
# exact logarithm is needed only where a bracket could change the outcome.
_LN2 = math.log(2.0)
_LOG_TABLE = np.log1p(np.arange(1025, dtype=np.float64) / 1024.0)  # 8 kB: stays in L1
_APPROX_SLACK = 6e-7  # bound on |approximation - (-ln u)|, five times the error of the chord (h^2 / 8)
_REL_LO = 1.0 - 1e-12  # covers the rounding of the exact key and of the bracket
_REL_HI = 1.0 + 1e-12
_W_MIN = 1e-6  # weights outside [_W_MIN, _W_MAX] take the exact path (brackets would be wide)
_W_MAX = 1e6
_MANT_SCALE = 1.0 / 4398046511104.0  # 2 ** -42


@njit(cache=True, nogil=True, inline="always")
def _neglog_approx(u, fb, bv, table):
    """-ln(u) for ``u`` in (0, 1) within 1.2e-7; ``bv`` is a uint64 view of the one-element float64 scratch ``fb``."""
    fb[0] = u
    b = bv[0]
    e = np.int64((b >> np.uint64(52)) & np.uint64(0x7FF)) - 1023
    j = np.int64((b >> np.uint64(42)) & np.uint64(1023))
    f = np.float64(b & np.uint64(0x3FFFFFFFFFF)) * _MANT_SCALE
    return -(e * _LN2 + table[j] + f * (table[j + 1] - table[j]))


@njit(cache=True, nogil=True, inline="always")
def _window_sum(c, code, lu, packed, rows, cols, radius):
    """Packed per-type counts of the urban cells of ``c``'s window, centre excluded (clipped at the edges)."""
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
def _type_weight(acc, k, T, weights, inv_window, unit, square, strength):
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


@njit(cache=True, nogil=True)
def _exact_race(i, g, z, code, acc, cpot, levels, allowed, weights, strength, inertia, quota, keys, inv_window):
    """Winning type and exact key of candidate ``i`` (draws of global index ``g``, window counts ``acc``); ``(-1, inf)``
    if no open type may take it. The definition of a candidate's key (:func:`_frontier_keys`)."""
    T = cpot.shape[1]
    qbase = z * T
    unit = strength == 1.0
    square = strength == 2.0
    best = np.inf
    bestk = -1
    for k in range(T):
        if quota[qbase + k] > 0 and allowed[k, code] and cpot[i, k] > 0:
            nk = _type_weight(acc, k, T, weights, inv_window, unit, square, strength)
            if nk > 0.0:
                w = levels[cpot[i, k]] * nk * inertia[z, k]
                tk = -math.log(_uniform(keys[k], g)) / w
                if tk < best:
                    best = tk
                    bestk = k
    return bestk, best


@njit(cache=True, nogil=True, inline="always")
def _race_weight(P, idx, z, k, acc, levels, weights, strength, inertia, inv_window):
    """Weight ``w`` of type ``k`` in a candidate's race (potentials ``P[idx, :]``, window counts ``acc``), with the
    float operations of :func:`_exact_race`."""
    nk = _type_weight(acc, k, P.shape[1], weights, inv_window, strength == 1.0, strength == 2.0, strength)
    return levels[P[idx, k]] * nk * inertia[z, k]


@njit(cache=True, nogil=True, inline="always")
def _bracket_race(P, idx, g, z, code, acc, levels, allowed, weights, strength, inertia, quota, keys, inv_window,
                  fb, bv, table):
    """A candidate's race on brackets ``lo <= t <= hi`` of its keys (table logarithm, no libm call).

    Potentials ``P[idx, :]`` (a candidate list's records, or a tile's planes transposed),
    draws of global index ``g``, window counts ``acc``. Returns ``(k, hi, w, settled)``:
    the type whose bracket starts lowest, the top of its bracket and its weight; settled
    when that bracket lies below every other open type's (then ``k`` wins the exact race,
    ``-1`` if no type is open), else the exact keys must decide (:func:`_exact_race`).
    """
    T = P.shape[1]
    qbase = z * T
    unit = strength == 1.0
    square = strength == 2.0
    blo = np.inf
    bhi = np.inf
    bw = np.inf
    lo2 = np.inf
    bestk = -1
    for k in range(T):
        if quota[qbase + k] > 0 and allowed[k, code] and P[idx, k] > 0:
            nk = _type_weight(acc, k, T, weights, inv_window, unit, square, strength)
            if nk > 0.0:
                w = levels[P[idx, k]] * nk * inertia[z, k]
                if not (w >= _W_MIN and w <= _W_MAX):
                    return -1, np.inf, np.inf, False
                a = _neglog_approx(_uniform(keys[k], g), fb, bv, table)
                iw = 1.0 / w  # one division; its rounding is inside _REL_LO / _REL_HI
                klo = (a - _APPROX_SLACK) * iw * _REL_LO
                khi = (a + _APPROX_SLACK) * iw * _REL_HI
                if klo < blo:
                    lo2 = blo
                    blo = klo
                    bhi = khi
                    bw = w
                    bestk = k
                elif klo < lo2:
                    lo2 = klo
    return bestk, bhi, bw, not (bestk >= 0 and lo2 <= bhi)


@njit(cache=True, nogil=True, parallel=True)
def _segment_offsets(group, quota):
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
def _segment_scatter(group, quota, values, cc, vb, pb):
    """Scatter as counted by :func:`_segment_offsets` into ``vb`` (values) and ``pb`` (positions); consumes ``cc``."""
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
    cc, offs, outoffs = _segment_offsets(group, quota)
    total = offs[quota.size]
    vb = np.empty(total, dtype=np.float64)
    pb = np.empty(total, dtype=np.int64)
    _segment_scatter(group, quota, values, cc, vb, pb)
    return offs, outoffs, vb, pb


@njit(cache=True, nogil=True, parallel=True)
def _frontier_select(cand, cz, cpot, lu, levels, allowed, packed, weights, strength, rows, cols, radius,
                     inertia, quota, keys, lock, group, hi, seg_v, seg_p):
    """Positions in ``cand`` that :func:`_frontier_keys` then :func:`_select_smallest` select, with few logarithms.

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
    table = _LOG_TABLE
    zopen = _open_zones(quota, T, G // T)
    nchunks = max(1, min(256, n // 4096))
    wmins = np.full(nchunks, np.inf)
    for ch in prange(nchunks):
        fb = np.empty(1, dtype=np.float64)
        bv = fb.view(np.uint64)
        wmin = np.inf
        i1 = (ch + 1) * n // nchunks
        for i in range(ch * n // nchunks, i1):
            if i + _PREFETCH_AHEAD < i1:
                cn = cand[i + _PREFETCH_AHEAD]
                for rr in range(-radius, radius + 1):
                    _prefetch(lu, cn + rr * cols)
                _prefetch(lock, cn >> 6)
            c = cand[i]
            group[i] = -1
            z = cz[i]
            # the race below finds no type where none is open: only skip the window early
            if z <= 0 or not zopen[z] or _getbit(lock, c):
                continue
            qbase = z * T
            code = lu[c]
            acc = _window_sum(c, code, lu, packed, rows, cols, radius)
            if acc == 0:
                continue
            bestk, bhi, bw, settled = _bracket_race(cpot, i, c, z, code, acc, levels, allowed, weights, strength,
                                                   inertia, quota, keys, inv_window, fb, bv, table)
            if not settled:
                bestk, bhi = _exact_race(i, c, z, code, acc, cpot, levels, allowed, weights, strength, inertia,
                                         quota, keys, inv_window)
            elif bw < wmin:
                wmin = bw
            if bestk >= 0:
                group[i] = qbase + bestk
                hi[i] = bhi
        wmins[ch] = wmin
    # bracket width bound: 2 slack / w, the relative terms (a <= 38) and the rounding of hi
    width = (2.0 * _APPROX_SLACK + 1e-10) / wmins.min() * 1.001 + 1e-6
    # per-group segments of (hi, position), fixed chunks: independent of the thread count
    cc, offs, outoffs = _segment_offsets(group, quota)
    hb = seg_v[:offs[G]]
    pb = seg_p[:offs[G]]
    _segment_scatter(group, quota, hi, cc, hb, pb)
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
        o, sure_below, sure_above, nunc = _take_sure(hb, pb, a, b, q, width, out, o)
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
                ut[h] = -math.log(_uniform(keys[k], c)) / _race_weight(
                    cpot, i, z, k, _window_sum(c, lu[c], lu, packed, rows, cols, radius), levels, weights, strength,
                    inertia, inv_window)
                ui[h] = c
                up[h] = i
                h += 1
        _take_band(ut, ui, up, q - (o - outoffs[g]), out, o)
    return out


@njit(cache=True, nogil=True)
def _take_sure(hb, pb, a, b, q, width, out, o):
    """The sure part of a bracketed selection of ``q`` among more: ``hb[a:b]`` are upper bounds ``hi`` of keys, each
    at most ``width`` above its key, ``pb[a:b]`` what to write for each.

    ``vU`` is the ``q``-th smallest ``hi``: the ``q``-th smallest key lies in ``[vU - width, vU]``, so entries
    with ``hi < vU - width`` are selected (written to ``out`` from ``o``) and those with ``hi > vU + width``
    are not. Returns ``(o, lo, hi, nunc)``: the next position in ``out``, and the band ``lo <= hi_i <= hi`` of
    the ``nunc`` entries whose exact keys decide (:func:`_take_band`).
    """
    vu = _kth_value(hb, a, b, q - 1)
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
def _take_band(ut, ui, up, need, out, o):
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


@njit(cache=True, nogil=True, parallel=True)
def _global_indices(cells, cols, row0, col0, gcols):
    """Global indices of local flat cells (identity for a whole raster)."""
    out = np.empty(cells.size, dtype=np.int64)
    for i in prange(cells.size):
        out[i] = _global_index(cells[i], cols, row0, col0, gcols)
    return out


# --------------------------------------------------------------------------- selection


_SAMPLE = 256  # sample size of _kth_value's bracket


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
def _kth_value(vals, a, b, k):
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
        v = _kth_value(tb, offs[g], offs[g + 1], q - 1)
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


# --------------------------------------------------------------------------- conversion and frontier


@njit(cache=True, nogil=True, parallel=True)
def _select_smallest(group, t, gidx, quota):
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
        v = _kth_value(tb, a, b, q - 1)
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


@njit(cache=True, nogil=True, inline="always")
def _prefetch_window_bits(cn, elig, bits, cols, radius):
    for rr in range(-radius, radius + 1):
        wd = (cn + rr * cols) >> 6
        _prefetch(elig, wd)
        _prefetch(bits, wd)


@njit(cache=True, nogil=True, inline="always")
def _own_bits(c, lu, zones, pot, allowed, code_type, rows, cols, radius, elig, bits) -> bool:
    """Eligibility and frontier bits of converted cell ``c`` (its new class); True if it joined the frontier."""
    if _static_eligible(c, lu, zones, pot, allowed):
        _setbit(elig, c)
        if not _getbit(bits, c) and _has_urban_neighbour(c, lu, code_type, rows, cols, radius):
            _setbit(bits, c)
            return True
        return False
    _clearbit(elig, c)
    _clearbit(bits, c)
    return False


@njit(cache=True, nogil=True)
def _update_frontier(bits, elig, converted, lu, zones, pot, allowed, code_type, rows, cols, radius):
    """Update the eligibility and frontier bitsets after ``converted`` cells changed class (already in ``lu``).

    A converted cell stays eligible (and in the frontier) only if the matrix lets its new
    class change again; the eligible cells in its window that were not in the frontier
    join it. Only converted cells change eligibility, so neighbours are tested with one
    bit each (no potential or zone lookups). Returns the cells that joined, each once, in
    no particular order (the caller sorts them). The in-memory engine clears the bits of
    the cells no type may take while converting (:func:`_convert_clear`); this does it
    here, then runs the same :func:`_join_scan`.
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
            _clearbit(elig, c)
            _clearbit(bits, c)
    span = (2 * radius + 1) ** 2 - 1
    return _join_scan(bits, elig, converted, src[:ns], lu, zones, pot, allowed, code_type, rows, cols, radius,
                      np.empty(m * span, dtype=np.int64))


@njit(cache=True, nogil=True, parallel=True)
def _convert_clear(lu, cells, cz, group, pos, type_codes, lock, conv_counts, elig, bits, source, in_list):
    """Convert ``cells[pos]`` to their group's type, lock them, count them per group, and update their own bits.

    A cell whose new class no type may take (``source[code]`` false) leaves the eligible
    set and the frontier here and, when ``in_list`` (``cells`` is the candidate list),
    its list entry is retired (``cz = 0``). Fixed chunks of ``pos`` run in parallel; the
    cells are distinct, bits are set and cleared atomically (neighbouring cells share
    words), and counts are summed in chunk order, so nothing depends on the threads.
    Returns the converted cells, their type indices (in the order of ``pos``), the
    indices (into those) of the cells whose new class some type may take, which
    :func:`_join_scan` decides, and the number of list entries retired.
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
            if p + _PREFETCH_AHEAD < p1:
                cn = cells[pos[p + _PREFETCH_AHEAD]]
                wd = cn >> 6
                _prefetch(lu, cn)
                _prefetch(lock, wd)
                _prefetch(elig, wd)
                _prefetch(bits, wd)
            i = pos[p]
            c = cells[i]
            g = group[i]
            k = g % T
            code = type_codes[k]
            lu[c] = code
            _atomic_setbit(lock, c)
            counts[ch, g] += 1
            out_c[p] = c
            out_k[p] = k
            if source[code]:
                is_src[p] = True
            else:
                _atomic_clearbit(elig, c)
                _atomic_clearbit(bits, c)
                if in_list and cz[i] > 0:
                    cz[i] = 0
                    dead += 1
        deads[ch] = dead
    for ch in range(nch):
        for g in range(G):
            conv_counts[g] += counts[ch, g]
    return out_c, out_k, np.nonzero(is_src)[0], deads.sum()


@njit(cache=True, nogil=True, parallel=True)
def _join_scan(bits, elig, converted, src_cells, lu, zones, pot, allowed, code_type, rows, cols, radius, raw):
    """Set the frontier bits of the cells that join after :func:`_convert_clear`; return them, each once, unsorted.

    ``src_cells`` are the converted cells whose new class some type may take: each is
    made eligible or not (as :func:`_update_frontier` does) and joins if eligible,
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
            if i + _PREFETCH_AHEAD < i1:
                _prefetch_window_bits(converted[i + _PREFETCH_AHEAD], elig, bits, cols, radius)
            c = converted[i]
            r = c // cols
            col = c - r * cols
            for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
                row = rr * cols
                for cc in range(max(0, col - radius), min(cols, col + radius + 1)):
                    j = row + cc
                    if j != c and _getbit(elig, j) and not _getbit(bits, j) and _claim_bit(bits, j):
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
def _append_records(cand, cz, cpot, m, added, zones, pot):
    """Write ``added`` cells with their zone and potentials at positions ``m, m + 1, ...`` of the list."""
    T = pot.shape[0]
    n = added.size
    nchunks = max(1, min(64, n // 4096))
    for ch in prange(nchunks):
        e = (ch + 1) * n // nchunks
        for i in range(ch * n // nchunks, e):
            if i + _PREFETCH_AHEAD < e:
                cn = added[i + _PREFETCH_AHEAD]
                _prefetch(zones, cn)
                for k in range(T):
                    _prefetch(pot[k], cn)
            c = added[i]
            cand[m + i] = c
            cz[m + i] = zones[c]
            for k in range(T):
                cpot[m + i, k] = pot[k, c]


@njit(cache=True, nogil=True)
def _retire(cand, cz, pos, bits):
    """Retire (zone 0) the list entries at ``pos`` whose frontier bit is clear; return how many."""
    n = 0
    for j in range(pos.size):
        i = pos[j]
        if cz[i] > 0 and not _getbit(bits, cand[i]):
            cz[i] = 0
            n += 1
    return n


@njit(cache=True, nogil=True, parallel=True)
def _retire_all(cand, cz, bits):
    """Retire every live list entry whose frontier bit is clear; return how many."""
    n = cand.size
    nchunks = max(1, min(256, n // 4096))
    counts = np.zeros(nchunks, dtype=np.int64)
    for ch in prange(nchunks):
        s = 0
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            if cz[i] > 0 and not _getbit(bits, cand[i]):
                cz[i] = 0
                s += 1
        counts[ch] = s
    return counts.sum()


@njit(cache=True, nogil=True)
def _merge_runs(cand, cz, cpot, starts, cap):
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


# --------------------------------------------------------------------------- sweeps (new patches, fill)


@njit(cache=True, nogil=True, inline="always")
def _heap_worse(ta, ia, tb, ib) -> bool:
    """Is (ta, ia) a worse (larger) key than (tb, ib)?"""
    return ta > tb or (ta == tb and ia > ib)


@njit(cache=True, nogil=True)
def _heap_push(ht, hi, start, size, cap, tv, iv) -> np.int64:
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
def _heap_layout(quota, T, nzones):
    """Per-group heap offsets (``quota[g]`` slots each) and the zones with some quota left."""
    G = quota.size
    offs = np.zeros(G + 1, dtype=np.int64)
    for g in range(G):
        offs[g + 1] = offs[g] + max(0, quota[g])
    return offs, _open_zones(quota, T, nzones)


@njit(cache=True, nogil=True, inline="always")
def _open_zones(quota, T, nzones):
    """Per zone, whether some type has quota left in it (``quota[z * T + k] > 0``)."""
    zone_open = np.zeros(nzones, dtype=np.bool_)
    for g in range(quota.size):
        if quota[g] > 0:
            zone_open[g // T] = True
    return zone_open


@njit(cache=True, nogil=True, parallel=True)
def _sweep_topk(lu, zones, pot, levels, allowed, frontier, lock, exclude_frontier, quota, inertia, keys,
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
    offs, zone_open = _heap_layout(quota, T, inertia.shape[0])
    cap_total = offs[G]
    table = _LOG_TABLE
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
                        lo = (_neglog_approx(_uniform(keys[k], g_i), fb, bv, table) - _APPROX_SLACK) * (1.0 / w)
                        if not lo * _REL_LO > hth[offs[g]]:
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
            hs[ch, g] = _heap_push(hth, hih, offs[g], hs[ch, g], quota[g], best, g_i)
    return _heap_entries(ht, hi, hs, offs)


@njit(cache=True, nogil=True)
def _heap_entries(ht, hi, hs, offs):
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


@njit(cache=True, nogil=True)
def _local_index(gidx, cols, row0, col0, gcols):
    """Flat local indices of global indices (inverse of ``_global_index``)."""
    out = np.empty(gidx.size, dtype=np.int64)
    for i in range(gidx.size):
        r = gidx[i] // gcols
        out[i] = (r - row0) * cols + (gidx[i] - r * gcols - col0)
    return out


# --------------------------------------------------------------------------- Monte Carlo bookkeeping


@njit(cache=True, nogil=True)
def _accumulate_counts(counts, log_cells, log_types, seen):
    """Add one run to ``counts[k, c]``: each cell's latest conversion in the log counts once.

    ``seen`` is an all-zero bitset on entry and on exit.
    """
    for i in range(log_cells.size - 1, -1, -1):
        c = log_cells[i]
        if not _getbit(seen, c):
            _setbit(seen, c)
            counts[log_types[i], c] += 1
    for i in range(log_cells.size):
        _clearbit(seen, log_cells[i])


@njit(cache=True, nogil=True)
def _score_log(counts, log_cells, log_types, log_periods):
    """Sum of ``counts[period, type, cell]`` over a run's conversion log."""
    s = 0.0
    for i in range(log_cells.size):
        s += counts[log_periods[i], log_types[i], log_cells[i]]
    return s
