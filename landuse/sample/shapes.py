"""Shapes on a square grid for the synthetic sample.

Fractal fields, distances, disks, lines, routes, trees, and random picks of cells.

Shared by the city cluster (:mod:`landuse.sample.region` and its steps) and the megaregion plan
(:mod:`landuse.sample.mega_plan`); internal to :mod:`landuse.sample`. Every random draw comes from the
``numpy.random.Generator`` passed in, in a fixed order, so the callers' outputs stay byte-identical for a seed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage

from landuse.core.errors import LanduseError

# --------------------------------------------------------------------------- fields and distances


def _fractal(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """A periodic fractal field with power spectrum ``1/f**beta``, zero mean, unit std."""
    white = rng.standard_normal((n, n))
    spec = np.fft.rfft2(white)
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = np.inf
    spec *= k ** (-beta / 2.0)
    out = np.fft.irfft2(spec, s=(n, n))
    out -= out.mean()
    sd = out.std()
    return out / sd if sd > 0 else out


def _unit(a: np.ndarray) -> np.ndarray:
    """``a`` rescaled linearly to [0, 1]."""
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / max(hi - lo, 1e-9)


def _edt(mask: np.ndarray) -> np.ndarray:
    """Distance in cells from every cell to the nearest True cell of ``mask`` (inf if none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(~mask).astype(np.float32)


def _disk(radius: float) -> np.ndarray:
    """Boolean disk of ``radius`` cells as a structuring element (odd square, centred)."""
    r = max(math.ceil(radius), 1)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= radius * radius + 1e-9


def _dilate(mask: np.ndarray, radius_cells: float) -> np.ndarray:
    """Cells within ``radius_cells`` of ``mask`` (Euclidean)."""
    if radius_cells <= 0:
        return mask.copy()
    return _edt(mask) <= radius_cells


def _stamp(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    """Boolean disk of ``radius`` cells around ``centre``."""
    m = np.zeros(shape, dtype=bool)
    r = max(math.ceil(radius), 0)
    cy, cx = int(centre[0]), int(centre[1])
    y0, y1 = max(cy - r, 0), min(cy + r + 1, shape[0])
    x0, x1 = max(cx - r, 0), min(cx + r + 1, shape[1])
    yy, xx = np.mgrid[y0:y1, x0:x1]
    m[y0:y1, x0:x1] = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius + 1e-9
    return m


def _remove_small(mask: np.ndarray, min_cells: float) -> np.ndarray:
    """``mask`` without its patches (4-connected) of fewer than ``min_cells`` cells."""
    lbl, nlab = ndimage.label(mask)
    if nlab == 0:
        return mask.copy()
    sizes = np.bincount(lbl.ravel())
    keep = sizes >= max(min_cells, 1)
    keep[0] = False
    return keep[lbl]


def _disk_mask(m: int, centre: tuple[int, int], radius: float) -> np.ndarray:
    """Boolean disk of ``radius`` cells around ``centre`` on an ``m x m`` grid."""
    yy, xx = np.ogrid[0:m, 0:m]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius * radius


# --------------------------------------------------------------------------- lines and routes


def _polyline(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """8-connected full-resolution cells along consecutive ``(row, col)`` points."""
    from skimage.draw import line

    pts = np.asarray(points, dtype=np.int64)
    if len(pts) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    rows, cols = [pts[:1, 0]], [pts[:1, 1]]
    for (r0, c0), (r1, c1) in itertools.pairwise(pts):
        rr, cc = line(int(r0), int(c0), int(r1), int(c1))
        rows.append(rr[1:])
        cols.append(cc[1:])
    out = np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1)
    out[:, 0] = np.clip(out[:, 0], 0, shape[0] - 1)
    out[:, 1] = np.clip(out[:, 1], 0, shape[1] - 1)
    keep = np.ones(len(out), dtype=bool)
    keep[1:] = np.any(out[1:] != out[:-1], axis=1)
    return out[keep]


def _smooth(points: np.ndarray, window: int) -> np.ndarray:
    """Moving average of a polyline's vertices (ends kept), rounded to cells."""
    if len(points) < 3 or window < 2:
        return np.asarray(points)
    pts = np.asarray(points, dtype=np.float64)
    out = np.stack([ndimage.uniform_filter1d(pts[:, j], size=window, mode="nearest") for j in (0, 1)], axis=1)
    out[0], out[-1] = pts[0], pts[-1]
    return np.round(out).astype(np.int64)


def _wiggle(
    path: np.ndarray, noise_y: np.ndarray, noise_x: np.ndarray, *, amp: float, step: int, pin_end: bool
) -> np.ndarray:
    """Meander a dense path: displace every ``step``-th cell by ``amp`` times smooth noise, redraw."""
    k = len(path)
    if k < 3:
        return path
    shape = noise_y.shape
    idx = np.unique(np.r_[np.arange(0, k, step), k - 1])
    pts = path[idx].astype(np.float64)
    taper = np.ones(len(idx))
    if pin_end:
        t = (k - 1 - idx) / max(k - 1, 1)
        taper = np.clip(t * 10.0, 0.0, 1.0)
    r, c = path[idx, 0], path[idx, 1]
    pts[:, 0] += amp * taper * noise_y[r, c]
    pts[:, 1] += amp * taper * noise_x[r, c]
    pts[:, 0] = np.clip(np.round(pts[:, 0]), 0, shape[0] - 1)
    pts[:, 1] = np.clip(np.round(pts[:, 1]), 0, shape[1] - 1)
    return _polyline(pts, shape)


def _mask_from_path(path: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean grid of ``shape``, True on the ``(row, col)`` cells of ``path``."""
    m = np.zeros(shape, dtype=bool)
    m[path[:, 0], path[:, 1]] = True
    return m


def _wavy_line(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, amp: float) -> np.ndarray:
    """Float points from ``a`` to ``b`` displaced sideways by a smooth random wave."""
    length = float(np.hypot(*(b - a)))
    k = max(int(length / 2), 8)
    t = np.linspace(0.0, 1.0, k)
    normal = np.array([-(b - a)[1], (b - a)[0]]) / max(length, 1e-9)
    w1, w2 = rng.uniform(1.0, 2.5), rng.uniform(2.5, 5.0)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    off = amp * np.sin(np.pi * t) * (np.sin(w1 * np.pi * t + p1) + 0.5 * np.sin(w2 * np.pi * t + p2))
    return a[None, :] + t[:, None] * (b - a)[None, :] + off[:, None] * normal[None, :]


def _to_fine(path: np.ndarray, f: int, n: int, smooth: int = 3) -> np.ndarray:
    """Coarse cells (or float coarse points) -> smoothed 8-connected full-resolution cells."""
    pts = np.clip(np.round(np.asarray(path, dtype=np.float64) * f + f // 2), 0, n - 1).astype(np.int64)
    pts = _smooth(pts, smooth) if len(pts) > 3 else pts
    return _polyline(pts, (n, n))


def _route(cost: np.ndarray, start: tuple[int, int], ends: list[tuple[int, int]]) -> list[np.ndarray]:
    """Least-cost paths (``(k, 2)`` cells, start first) on ``cost`` from ``start`` to each of ``ends``."""
    from skimage.graph import MCP_Geometric

    mcp = MCP_Geometric(cost, fully_connected=True)
    mcp.find_costs(starts=[start])
    return [np.array(mcp.traceback(e), dtype=np.int64) for e in ends]


class _Router:
    """Least-cost routing on a coarse copy of the grid, drawn back at full resolution."""

    def __init__(self, cost_full: np.ndarray, factor: int) -> None:
        self.f = factor
        self.n = cost_full.shape[0]
        nc = -(-self.n // factor)
        pad = nc * factor - self.n
        c = np.pad(cost_full, ((0, pad), (0, pad)), mode="edge")
        self.cost = c.reshape(nc, factor, nc, factor).mean(axis=(1, 3))

    def to_coarse(self, rc: tuple[int, int]) -> tuple[int, int]:
        nc = self.cost.shape[0]
        return min(int(rc[0]) // self.f, nc - 1), min(int(rc[1]) // self.f, nc - 1)

    def to_full(self, path: list[tuple[int, int]]) -> np.ndarray:
        half = self.f // 2
        pts = np.array([(r * self.f + half, c * self.f + half) for r, c in path], dtype=np.int64)
        return np.clip(pts, 0, self.n - 1)

    def routes(
        self, starts: list[tuple[int, int]], ends: list[tuple[int, int]], cost: np.ndarray | None = None
    ) -> list[list[tuple[int, int]]]:
        """Least-cost coarse paths from the nearest start to each end (start first)."""
        from skimage.graph import MCP_Geometric

        mcp = MCP_Geometric(self.cost if cost is None else cost, fully_connected=True)
        mcp.find_costs(starts=[self.to_coarse(s) for s in starts])
        return [[tuple(p) for p in mcp.traceback(self.to_coarse(e))] for e in ends]


def _spanning_tree(dist: np.ndarray) -> list[tuple[int, int]]:
    """Edges of the Euclidean minimum spanning tree (Prim) of a distance matrix."""
    k = dist.shape[0]
    inside = [0]
    edges = []
    while len(inside) < k:
        best = None
        for a in inside:
            for b in range(k):
                if b in inside:
                    continue
                if best is None or dist[a, b] < best[0]:
                    best = (dist[a, b], a, b)
        _, a, b = best
        edges.append((min(a, b), max(a, b)))
        inside.append(b)
    return edges


# --------------------------------------------------------------------------- random picks of cells


def _pick(rng: np.random.Generator, candidates: np.ndarray, weights: np.ndarray | None = None) -> int:
    """Index of one True cell of ``candidates`` (flat), drawn with optional weights."""
    idx = np.flatnonzero(candidates.ravel())
    if idx.size == 0:
        raise LanduseError("sample generation found no cell to place a feature; try another `seed` or `size`")
    if weights is None:
        return int(idx[rng.integers(idx.size)])
    w = np.asarray(weights, dtype=np.float64).ravel()[idx]
    w = np.clip(w, 0, None)
    if w.sum() <= 0:
        return int(idx[rng.integers(idx.size)])
    return int(idx[rng.choice(idx.size, p=w / w.sum())])


def _weighted_top(rng: np.random.Generator, idx: np.ndarray, weights: np.ndarray, m: int) -> np.ndarray:
    """``m`` of ``idx`` drawn without replacement with probability ~ ``weights`` (keys ``u**(1/w)``)."""
    if m <= 0 or idx.size == 0:
        return idx[:0]
    u = rng.random(idx.size)
    keys = np.log(np.maximum(u, 1e-300)) / np.maximum(weights, 1e-12)
    if m >= idx.size:
        return idx
    sel = np.argpartition(-keys, m - 1)[:m]
    return idx[np.sort(sel)]


def _lowest(values: np.ndarray, idx: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` cells of ``idx`` with the lowest ``values`` (flat)."""
    if m <= 0 or idx.size == 0:
        return idx[:0]
    if m >= idx.size:
        return idx
    v = values.ravel()[idx]
    sel = np.argpartition(v, m - 1)[:m]
    return idx[np.sort(sel)]

