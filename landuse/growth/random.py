"""Counter-based random numbers: a cell's draw is a hash of (seed, run, step, cell index).

No generator state is walked in loop order, so a raster processed whole, in tiles, in
threads or on a Dask cluster gets the same draws. The hash is SplitMix64's finaliser
applied to a key built from the counters; quality is ample for Monte Carlo sampling
(it passes BigCrush as a counter-mode generator).

Use :func:`stream_key` once per (seed, run, period, iteration, purpose) outside the
cell loop, then :func:`uniform_kernel` per cell inside kernels.

>>> k = stream_key(1, 0, 0, 0, 0)
>>> bool(0.0 < uniform_numpy(k, np.arange(3)).min() < 1.0)
True
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, nogil=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _combine(key: np.uint64, value: np.uint64) -> np.uint64:
    return _mix(key ^ _mix(value))


@njit(cache=True, nogil=True)
def stream_key_kernel(seed: np.int64, run: np.int64, period: np.int64, iteration: np.int64, purpose: np.int64) -> np.uint64:
    """The stream key of (seed, run, period, iteration, purpose), callable from numba kernels."""
    k = _mix(np.uint64(seed))
    k = _combine(k, np.uint64(run))
    k = _combine(k, np.uint64(period))
    k = _combine(k, np.uint64(iteration))
    k = _combine(k, np.uint64(purpose))
    return k


@njit(cache=True, nogil=True, inline="always")
def _bits(key: np.uint64, index: np.int64) -> np.uint64:
    return _combine(key, np.uint64(index))


@njit(cache=True, nogil=True, inline="always")
def uniform_kernel(key: np.uint64, index: np.int64) -> float:
    """Uniform draw in the open interval (0, 1) for cell ``index`` of stream ``key``."""
    return (np.float64(_bits(key, index) >> _S11) + 0.5) * _INV53


def stream_key(seed: int, run: int, period: int, iteration: int, purpose: int = 0) -> np.uint64:
    """Key of one random stream; combine with a global cell index via ``uniform_kernel``."""
    # np.uint64, not a Python int: a plain int passed to a compiled kernel would be typed
    # int64, and int64-with-uint64 arithmetic in numba promotes to float
    return np.uint64(
        stream_key_kernel(np.int64(seed), np.int64(run), np.int64(period), np.int64(iteration), np.int64(purpose))
    )


@njit(cache=True, nogil=True)
def _uniform_array(key: np.uint64, indices: np.ndarray) -> np.ndarray:
    out = np.empty(indices.size, dtype=np.float64)
    for i in range(indices.size):
        out[i] = uniform_kernel(key, indices[i])
    return out


def uniform_numpy(key: np.uint64, indices: np.ndarray) -> np.ndarray:
    """Pure-numpy twin of ``uniform_kernel`` over an array of global cell indices (for tests)."""
    with np.errstate(over="ignore"):
        idx = np.asarray(indices, dtype=np.int64).astype(np.uint64)
        key = np.uint64(key)

        def mix(z):
            z = z + _GOLDEN
            z = (z ^ (z >> _S30)) * _M1
            z = (z ^ (z >> _S27)) * _M2
            return z ^ (z >> _S31)

        bits = mix(key ^ mix(idx))
    return ((bits >> _S11).astype(np.float64) + 0.5) * _INV53


def uniform_array(key: np.uint64, indices: np.ndarray) -> np.ndarray:
    """Compiled draws for an array of global cell indices."""
    return _uniform_array(np.uint64(key), np.ascontiguousarray(indices, dtype=np.int64))
