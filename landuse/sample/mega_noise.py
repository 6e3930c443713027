"""Counter-based value noise and coarse-to-fine resampling for the megaregion tiles (:mod:`landuse.sample.mega`).

A cell's noise is a hash of ``(seed, purpose, octave, lattice cell)`` (:mod:`landuse.growth.random`), so it depends
only on the cell's global position: a tile gets the same values whatever its size or the order tiles run in.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from landuse.growth.random import stream_key, uniform_numpy

_STRIDE = np.int64(1 << 24)  # lattice index = row * _STRIDE + col


def _key(seed: int, purpose: int, octave: int = 0) -> np.uint64:
    """Key of the counter-based stream of one noise ``purpose`` and ``octave``."""
    return stream_key(int(seed), 17, int(purpose), int(octave), 0)


@njit(cache=True, nogil=True)
def _lerp_lattice(lat, a, fy, b, fx, amp, out):  # pragma: no cover - compiled
    """``out += amp * bilinear(lat)``: row ``i`` between lattice rows ``a[i]``, ``a[i]+1`` at ``fy[i]``."""
    for i in range(out.shape[0]):
        ai = a[i]
        wy = fy[i]
        for j in range(out.shape[1]):
            bj = b[j]
            wx = fx[j]
            top = lat[ai, bj] + (lat[ai, bj + 1] - lat[ai, bj]) * wx
            bot = lat[ai + 1, bj] + (lat[ai + 1, bj + 1] - lat[ai + 1, bj]) * wx
            out[i, j] += amp * (top + (bot - top) * wy)


def _add_noise(out: np.ndarray, key: np.uint64, win: tuple[int, int, int, int], spacing: float, amp: float) -> None:
    """Add ``amp`` times value noise in [-1, 1] on the global cells of ``win`` to ``out``.

    The lattice (every ``spacing`` cells) holds counter-based draws keyed by the lattice
    cell, so a cell's value depends only on its global position and the key.
    """
    r0, r1, c0, c1 = win
    s = float(spacing)
    y = np.arange(r0, r1, dtype=np.float64) / s
    x = np.arange(c0, c1, dtype=np.float64) / s
    iy, ix = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - iy, x - ix
    fy = (fy * fy * (3.0 - 2.0 * fy)).astype(np.float32)
    fx = (fx * fx * (3.0 - 2.0 * fx)).astype(np.float32)
    ly = np.arange(iy[0], iy[-1] + 2, dtype=np.int64)
    lx = np.arange(ix[0], ix[-1] + 2, dtype=np.int64)
    idx = (ly[:, None] * _STRIDE + lx[None, :]).ravel()
    lat = (uniform_numpy(key, idx).reshape(ly.size, lx.size) * 2.0 - 1.0).astype(np.float32)
    _lerp_lattice(lat, (iy - iy[0]).astype(np.intp), fy, (ix - ix[0]).astype(np.intp), fx, np.float32(amp), out)


def _value_noise(key: np.uint64, win: tuple[int, int, int, int], spacing: float) -> np.ndarray:
    """Value noise in [-1, 1] on the global cells of ``win`` (see :func:`_add_noise`)."""
    out = np.zeros((win[1] - win[0], win[3] - win[2]), dtype=np.float32)
    _add_noise(out, key, win, spacing, 1.0)
    return out


def _fbm(seed: int, purpose: int, win: tuple[int, int, int, int], spacing: float, octaves: int = 3) -> np.ndarray:
    """Sum of ``octaves`` value noises, halving spacing and amplitude; within [-1, 1]."""
    out = np.zeros((win[1] - win[0], win[3] - win[2]), dtype=np.float32)
    total = sum(0.5**o for o in range(octaves))
    for o in range(octaves):
        _add_noise(out, _key(seed, purpose, o), win, max(spacing / 2**o, 1.0), 0.5**o / total)
    return out


def _lattice_blobs(
    seed: int, purpose: int, win: tuple[int, int, int, int], spacing: int, prob: float, r_lo: float, r_hi: float
) -> np.ndarray:
    """Small disks, at most one per lattice cell of ``spacing`` (jittered, present with ``prob``)."""
    r0, r1, c0, c1 = win
    rows = np.arange(r0, r1, dtype=np.int64)
    cols = np.arange(c0, c1, dtype=np.int64)
    ly, lx = rows // spacing, cols // spacing
    uy, ux = np.unique(ly), np.unique(lx)
    idx = (uy[:, None] * _STRIDE + ux[None, :]).ravel()
    draws = [uniform_numpy(_key(seed, purpose, j), idx).reshape(uy.size, ux.size) for j in range(4)]
    rad = np.minimum(r_lo + (r_hi - r_lo) * draws[3], spacing / 4.0)
    py = uy[:, None] * spacing + spacing / 4 + draws[0] * spacing / 2
    px = ux[None, :] * spacing + spacing / 4 + draws[1] * spacing / 2
    a, b = ly - uy[0], lx - ux[0]
    dy = rows[:, None] - py[a][:, b]
    dx = cols[None, :] - px[a][:, b]
    present = (draws[2] < prob)[a][:, b]
    return present & (dy * dy + dx * dx <= (rad * rad)[a][:, b])


# --------------------------------------------------------------------------- coarse fields at fine cells


def _axis(a0: int, a1: int, f: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower coarse index and weight of fine cells ``a0 .. a1 - 1`` along one axis (``f`` fine per coarse)."""
    t = np.clip((np.arange(a0, a1, dtype=np.float64) + 0.5) / f - 0.5, 0.0, m - 1.0)
    i = np.minimum(np.floor(t).astype(np.intp), m - 2)
    return i, (t - i).astype(np.float32)


def _upsample(field: np.ndarray, f: int, win: tuple[int, int, int, int]) -> np.ndarray:
    """Bilinear value of a coarse ``field`` at the fine cells of ``win``."""
    m = field.shape[0]
    iy, wy = _axis(win[0], win[1], f, m)
    ix, wx = _axis(win[2], win[3], f, m)
    a, b = field[iy], field[iy + 1]
    top = a[:, ix] + (a[:, ix + 1] - a[:, ix]) * wx[None, :]
    bot = b[:, ix] + (b[:, ix + 1] - b[:, ix]) * wx[None, :]
    return top + (bot - top) * wy[:, None]


def _sample_points(field: np.ndarray, f: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear value of a coarse ``field`` at fine ``(rows, cols)`` points."""
    m = field.shape[0]
    ty = np.clip((rows + 0.5) / f - 0.5, 0.0, m - 1.0)
    tx = np.clip((cols + 0.5) / f - 0.5, 0.0, m - 1.0)
    iy = np.minimum(np.floor(ty).astype(np.intp), m - 2)
    ix = np.minimum(np.floor(tx).astype(np.intp), m - 2)
    wy, wx = ty - iy, tx - ix
    top = field[iy, ix] * (1 - wx) + field[iy, ix + 1] * wx
    bot = field[iy + 1, ix] * (1 - wx) + field[iy + 1, ix + 1] * wx
    return top * (1 - wy) + bot * wy


def _upsample_nearest(field: np.ndarray, f: int, win: tuple[int, int, int, int]) -> np.ndarray:
    """Value of the coarse cell holding each fine cell of ``win``."""
    m = field.shape[0]
    iy = np.minimum(np.arange(win[0], win[1]) // f, m - 1)
    ix = np.minimum(np.arange(win[2], win[3]) // f, m - 1)
    return field[iy][:, ix]

