"""Bit-level building blocks of the growth kernels: uint64 bitsets and two LLVM intrinsics.

* A bitset is uint64 words, bit ``c & 63`` of word ``c >> 6`` for cell ``c``: :func:`getbit`,
  :func:`setbit`, :func:`clearbit`, and the atomic :func:`claim_bit`, :func:`atomic_setbit`,
  :func:`atomic_clearbit` for parallel loops whose cells share words.
* :func:`popcount` and the de Bruijn multiply-and-look-up (``(low * DEBRUIJN) >> DEBRUIJN_SHIFT``
  indexes ``DEBRUIJN_TABLE`` with the position of a word's lowest set bit ``low``) list the set bits
  in order (:func:`bits_to_indices`).
* :func:`prefetch` asks the CPU for a cache line ahead of a scattered gather (``PREFETCH_AHEAD``
  items ahead); it never changes a result.

Used by :mod:`landuse.growth.frontier`, :mod:`landuse.growth.kernels` and :mod:`landuse.scale.tiled_kernels`.
"""

from __future__ import annotations

import llvmlite.binding as _llvm
import numpy as np
from llvmlite import ir as _ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

ONE = np.uint64(1)
DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
DEBRUIJN_TABLE = np.array(
    [0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24,
     18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25,
     14, 19, 9, 13, 8, 7, 6],
    dtype=np.int64,
)
DEBRUIJN_SHIFT = np.uint64(58)

# LLVM's prefetch intrinsic takes an opaque pointer from LLVM 15 on
_PREFETCH_NAME = "llvm.prefetch.p0" if _llvm.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"
PREFETCH_AHEAD = 16  # candidates ahead: enough misses in flight to hide DRAM latency


# --------------------------------------------------------------------------- intrinsics


@intrinsic
def prefetch(typingctx, arr, idx):
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
def claim_bit(bits: np.ndarray, i: np.int64) -> bool:
    """Set bit ``i`` atomically; True if this call set it (it was clear). Threads may race for a bit: one wins."""
    m = ONE << np.uint64(i & 63)
    return (_atomic_or(bits, i >> 6, m) & m) == 0


@njit(cache=True, nogil=True, inline="always")
def atomic_setbit(bits: np.ndarray, i: np.int64) -> None:
    """Set bit ``i`` as one atomic operation."""
    _atomic_or(bits, i >> 6, ONE << np.uint64(i & 63))


@njit(cache=True, nogil=True, inline="always")
def atomic_clearbit(bits: np.ndarray, i: np.int64) -> None:
    """Clear bit ``i`` as one atomic operation."""
    _atomic_and(bits, i >> 6, ~(ONE << np.uint64(i & 63)))


# --------------------------------------------------------------------------- bitsets


@njit(cache=True, nogil=True, inline="always")
def getbit(bits: np.ndarray, i: np.int64) -> bool:
    """Whether bit ``i`` is set."""
    return ((bits[i >> 6] >> np.uint64(i & 63)) & ONE) != 0


@njit(cache=True, nogil=True, inline="always")
def setbit(bits: np.ndarray, i: np.int64) -> None:
    """Set bit ``i`` (not atomic)."""
    bits[i >> 6] |= ONE << np.uint64(i & 63)


@njit(cache=True, nogil=True, inline="always")
def clearbit(bits: np.ndarray, i: np.int64) -> None:
    """Clear bit ``i`` (not atomic)."""
    bits[i >> 6] &= ~(ONE << np.uint64(i & 63))


@njit(cache=True, nogil=True, inline="always")
def popcount(x: np.uint64) -> np.int64:
    """Number of set bits of the word ``x``."""
    n = 0
    while x:
        x &= x - ONE
        n += 1
    return n


@njit(cache=True, nogil=True, parallel=True)
def bits_to_indices(bits: np.ndarray, n: np.int64) -> np.ndarray:
    """Sorted indices (< ``n``) of the set bits."""
    nwords = bits.size
    nchunks = max(1, min(256, nwords // 1024))
    counts = np.zeros(nchunks + 1, dtype=np.int64)
    for ch in prange(nchunks):
        a = ch * nwords // nchunks
        b = (ch + 1) * nwords // nchunks
        s = 0
        for w in range(a, b):
            s += popcount(bits[w])
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
                low = x & (~x + ONE)
                out[pos] = base + DEBRUIJN_TABLE[np.int64((low * DEBRUIJN) >> DEBRUIJN_SHIFT)]
                pos += 1
                x ^= low
    m = out.size
    while m > 0 and out[m - 1] >= n:
        m -= 1
    return out[:m]
