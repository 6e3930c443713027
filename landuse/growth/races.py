"""A candidate's race among the urban types, and brackets of its keys that need no logarithm.

Each urban type ``k`` open to a frontier cell draws ``u_k`` (:mod:`landuse.growth.random`, by the
cell's global index) and gets the key ``t_k = -ln(u_k) / w_k``, with ``w_k = levels[pot_k] x
N_k ** strength x inertia[zone, k]`` and ``N_k`` the weighted share of urban cells of its Moore
window, from the packed per-type counts of :func:`window_sum`; the smallest key wins.

* :func:`exact_race` is the definition (one logarithm per open type); :func:`race_weight` gives a
  type's ``w`` with the same float operations.
* :func:`bracket_race` runs the same race on brackets ``lo <= t <= hi`` from a table logarithm
  (:func:`neglog_approx`: ``LOG_TABLE``, within ``APPROX_SLACK``; ``REL_LO`` and ``REL_HI`` cover
  the rounding) and says whether the brackets settle the winner.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from landuse.growth.random import uniform_kernel

# Brackets of the race keys. -ln(u) is approximated from the bits of u (exponent times ln 2
# plus a chord of ln over 1024 mantissa intervals: error below 1.2e-7, no libm call); with
# the slack below, ``lo <= -math.log(u) / w <= hi`` holds for the float key itself, so the
# exact logarithm is needed only where a bracket could change the outcome.
_LN2 = math.log(2.0)
LOG_TABLE = np.log1p(np.arange(1025, dtype=np.float64) / 1024.0)  # 8 kB: stays in L1
APPROX_SLACK = 6e-7  # bound on |approximation - (-ln u)|, five times the error of the chord (h^2 / 8)
REL_LO = 1.0 - 1e-12  # covers the rounding of the exact key and of the bracket
REL_HI = 1.0 + 1e-12
_W_MIN = 1e-6  # weights outside [_W_MIN, _W_MAX] take the exact path (brackets would be wide)
_W_MAX = 1e6
_MANT_SCALE = 1.0 / 4398046511104.0  # 2 ** -42


# --------------------------------------------------------------------------- window counts and races


@njit(cache=True, nogil=True, inline="always")
def neglog_approx(u, fb, bv, table):
    """-ln(u) for ``u`` in (0, 1) within 1.2e-7; ``bv`` is a uint64 view of the one-element float64 scratch ``fb``."""
    fb[0] = u
    b = bv[0]
    e = np.int64((b >> np.uint64(52)) & np.uint64(0x7FF)) - 1023
    j = np.int64((b >> np.uint64(42)) & np.uint64(1023))
    f = np.float64(b & np.uint64(0x3FFFFFFFFFF)) * _MANT_SCALE
    return -(e * _LN2 + table[j] + f * (table[j + 1] - table[j]))


@njit(cache=True, nogil=True, inline="always")
def window_sum(c, code, lu, packed, rows, cols, radius):
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
def exact_race(i, g, z, code, acc, cpot, levels, allowed, weights, strength, inertia, quota, keys, inv_window):
    """Winning type and exact key of candidate ``i``; ``(-1, inf)`` if no open type may take it.

    Draws of global index ``g``, window counts ``acc``. The definition of a candidate's key
    (:func:`landuse.growth.kernels._frontier_keys`).
    """
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
                tk = -math.log(uniform_kernel(keys[k], g)) / w
                if tk < best:
                    best = tk
                    bestk = k
    return bestk, best


@njit(cache=True, nogil=True, inline="always")
def race_weight(P, idx, z, k, acc, levels, weights, strength, inertia, inv_window):
    """Weight ``w`` of type ``k`` in a candidate's race, with the float operations of :func:`exact_race`.

    Potentials ``P[idx, :]``, window counts ``acc``.
    """
    nk = _type_weight(acc, k, P.shape[1], weights, inv_window, strength == 1.0, strength == 2.0, strength)
    return levels[P[idx, k]] * nk * inertia[z, k]


@njit(cache=True, nogil=True, inline="always")
def bracket_race(P, idx, g, z, code, acc, levels, allowed, weights, strength, inertia, quota, keys, inv_window,
                 fb, bv, table):
    """A candidate's race on brackets ``lo <= t <= hi`` of its keys (table logarithm, no libm call).

    Potentials ``P[idx, :]`` (a candidate list's records, or a tile's planes transposed),
    draws of global index ``g``, window counts ``acc``. Returns ``(k, hi, w, settled)``:
    the type whose bracket starts lowest, the top of its bracket and its weight; settled
    when that bracket lies below every other open type's (then ``k`` wins the exact race,
    ``-1`` if no type is open), else the exact keys must decide (:func:`exact_race`).
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
                a = neglog_approx(uniform_kernel(keys[k], g), fb, bv, table)
                iw = 1.0 / w  # one division; its rounding is inside REL_LO / REL_HI
                klo = (a - APPROX_SLACK) * iw * REL_LO
                khi = (a + APPROX_SLACK) * iw * REL_HI
                if klo < blo:
                    lo2 = blo
                    blo = klo
                    bhi = khi
                    bw = w
                    bestk = k
                elif klo < lo2:
                    lo2 = klo
    return bestk, bhi, bw, not (bestk >= 0 and lo2 <= bhi)
