"""Megaregion layout of the synthetic sample, built tile by tile in bounded memory.

:func:`landuse.sample.generate.generate_sample` uses this module from :data:`MEGA_THRESHOLD`
cells a side upward (or when asked for ``layout="megaregion"``). The small sample
(:func:`landuse.sample.region.build_sample`) holds a dozen float64 whole-grid arrays and sorts
whole-grid scores; this generator never holds a whole-grid array:

1. **Plan (coarse).** Everything that needs a global view is decided on a coarse grid
   of about 300 x 300 cells (``f = n // 300`` fine cells per coarse cell), from one
   ``numpy.random.default_rng(seed)`` in a fixed order: terrain (a plain rising gently
   from a sea coast on the east towards hills in the south-west), a river delta (a
   main river from the hills to an apex, then 4-6 distributaries fanning out to the
   coast, plus tributaries and lakes), dozens of cities with a rank-size (Zipf)
   distribution of areas, their territories and counties, the road network (the
   cities' spanning tree plus nearest-neighbour links, radial streets, ring roads) and
   the rail corridors (a spanning tree of the largest cities) with stations.
   Lines (rivers, roads, rail) are kept as sorted lists of full-resolution cells.
2. **Tiles (fine).** Each tile is computed on its window grown by a halo
   (:func:`_halo`, longer than every chain of buffers and distance transforms), from
   the plan and from counter-based value noise: a cell's noise is a hash of
   ``(seed, purpose, octave, lattice cell)`` (:mod:`landuse.growth.random`), so a cell
   gets the same value whatever tile it falls in. Results therefore do not depend on
   the tile size or on the order tiles are processed in; the tests check it.
3. **Writing.** Each layer is written window by window into a tiled, deflate-compressed
   GeoTIFF, then copied into a Cloud-Optimized GeoTIFF (GDAL's COG driver, overviews
   above 2048 cells) like every other raster of the project.

Peak memory is the plan (a few MB plus the line cells) and one tile's working set
(about 60 bytes per cell of a 1024 x 1024 tile with its halo), whatever the grid size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from numba import njit
from scipy import ndimage

from landuse.core.classes import URBAN_TYPES, ClassScheme, default_scheme
from landuse.core.errors import LanduseError
from landuse.growth.random import stream_key, uniform_numpy
from landuse.sample.region import (
    CRS,
    LAYER_FILES,
    MEGA_THRESHOLD,
    ORIGIN,
    SampleCity,
    SampleInfo,
    SampleRegion,
    _fractal,
    _polyline,
    _scenario_text,
    _smooth,
    _spanning_tree,
    continued_demand,
)

__all__ = [
    "DEFAULT_TILE",
    "MEGA_THRESHOLD",
    "MegaResult",
    "build_megaregion",
    "default_workers",
    "generate_megaregion",
    "run_tiles",
    "write_megaregion",
]

DEFAULT_TILE = 1024
"""Tile edge (cells) of the megaregion generator."""

_STRIDE = np.int64(1 << 24)  # lattice index = row * _STRIDE + col
_COARSE = 300  # target coarse grid edge
_URBAN_SHARE = 0.075  # built-up land 2010 (cities) as a share of the land
_HILL_SHARE = 0.22

# noise purposes (each its own counter-based stream)
(_P_MICRO, _P_ROUGH, _P_HILL, _P_COAST, _P_LAKE, _P_WARPY, _P_WARPX, _P_URBAN, _P_WOOD, _P_GRASS, _P_WET,
 _P_IND, _P_COM, _P_SOIL, _P_VIL, _P_PATCH, _P_BARE, _P_URB2) = range(18)


@dataclass(frozen=True)
class _CityPlan:
    id: int
    rank: str
    centre: tuple[int, int]
    radius: float  # cells
    growth: float  # 2010-2020 growth of built-up land (share)


@dataclass
class _Lines:
    """Full-resolution cells of a set of lines, sorted by flat index (row-major)."""

    flat: np.ndarray  # int64, sorted, unique
    n: int

    @classmethod
    def build(cls, paths: list[np.ndarray], n: int) -> _Lines:
        if not paths:
            return cls(np.zeros(0, dtype=np.int64), n)
        cells = np.vstack(paths).astype(np.int64)
        return cls(np.unique(cells[:, 0] * n + cells[:, 1]), n)

    def window(self, win: tuple[int, int, int, int]) -> np.ndarray:
        """Positions (into ``flat``) of the cells inside ``win = (r0, r1, c0, c1)``."""
        r0, r1, c0, c1 = win
        lo, hi = np.searchsorted(self.flat, [r0 * self.n, r1 * self.n])
        cols = self.flat[lo:hi] % self.n
        return lo + np.flatnonzero((cols >= c0) & (cols < c1))

    def rows_cols(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = self.flat[pos]
        return f // self.n, f % self.n


@dataclass
class _Plan:
    n: int
    seed: int
    cs: float
    f: int
    halo: int
    elev: np.ndarray  # coarse float32 metres (no fine detail, no carving)
    hill: np.ndarray  # coarse float32 0..1
    lake: np.ndarray  # coarse float32 lake field (> 0.5 is lake)
    lake_level: np.ndarray  # coarse float32 surface of the nearest lake
    soil: np.ndarray  # coarse float32 0..1
    ind: np.ndarray  # coarse float32 0..1 (industrial-park field)
    coast: np.ndarray  # float64 per coarse row: fine column of the coast
    city_map: np.ndarray  # coarse int32 territory ids
    county_map: np.ndarray  # coarse int32 county ids
    cities: list[_CityPlan]
    rivers: list[np.ndarray]
    river_lines: _Lines
    river_elev: np.ndarray  # float32 per river cell (carved, never rising downstream)
    river_hw: np.ndarray  # float32 half width in cells per river cell
    roads: _Lines
    rail: _Lines
    rail_paths: list[np.ndarray]
    stations: np.ndarray  # (k, 2)
    centres: np.ndarray  # (k, 2)
    n_distributaries: int
    greenbelt_cities: tuple[int, ...]


# --------------------------------------------------------------------------- noise and resampling


def _key(seed: int, purpose: int, octave: int = 0) -> np.uint64:
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


def _axis(a0: int, a1: int, f: int, m: int) -> tuple[np.ndarray, np.ndarray]:
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


def _halo(cs: float) -> int:
    """Halo (cells) around a tile: longer than the longest chain of buffers (river width,
    wetland reach, distance from built-up land, permanent-farmland opening).
    """
    return math.ceil(800.0 / cs) + 8


# --------------------------------------------------------------------------- the coarse plan


def _unit(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / max(hi - lo, 1e-9)


def _route(cost: np.ndarray, start: tuple[int, int], ends: list[tuple[int, int]]) -> list[np.ndarray]:
    from skimage.graph import MCP_Geometric

    mcp = MCP_Geometric(cost, fully_connected=True)
    mcp.find_costs(starts=[start])
    return [np.array(mcp.traceback(e), dtype=np.int64) for e in ends]


def _to_fine(path: np.ndarray, f: int, n: int, smooth: int = 3) -> np.ndarray:
    """Coarse cells (or float coarse points) -> smoothed 8-connected full-resolution cells."""
    pts = np.clip(np.round(np.asarray(path, dtype=np.float64) * f + f // 2), 0, n - 1).astype(np.int64)
    pts = _smooth(pts, smooth) if len(pts) > 3 else pts
    return _polyline(pts, (n, n))


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


def _city_count(n: int) -> int:
    return int(np.clip(round(24 + 6 * math.log2(max(n, 1200) / 1200)), 24, 60))


def _rank(i: int) -> str:
    return "core" if i == 0 else "large" if i < 6 else "medium" if i < 20 else "small"


def _plan(n: int, seed: int, cs: float) -> _Plan:
    rng = np.random.default_rng(seed)
    f = max(2, n // _COARSE)
    m = -(-n // f)
    yy, xx = (np.mgrid[0:m, 0:m].astype(np.float64) + 0.5) / m  # fractions of the region

    # ---- terrain: sea coast on the east, hills in the south-west --------------------------
    wave = ndimage.gaussian_filter1d(rng.standard_normal(m), sigma=m / 14, mode="wrap")
    wave /= max(float(np.abs(wave).max()), 1e-9)
    mouth = float(rng.uniform(0.42, 0.58))
    ys = (np.arange(m) + 0.5) / m
    coast_frac = 0.84 + 0.03 * wave + 0.05 * np.exp(-(((ys - mouth) / 0.10) ** 2))
    coast = coast_frac * n  # fine column of the coast per coarse row
    sea = (xx * n) > coast[:, None]
    low = _fractal(rng, m, 4.0)
    rough = _unit(_fractal(rng, m, 3.0))
    hill_index = 0.9 * (0.7 * yy + 0.9 * (1 - xx)) + 0.35 * low - 2.0 * sea
    thr = float(np.quantile(hill_index, 1 - _HILL_SHARE))
    hill = (np.clip((hill_index - thr) / 0.25, 0.0, 1.0) ** 0.8).astype(np.float32)
    inland = np.clip(coast_frac[:, None] - xx, 0.0, 1.0)
    elev = 2.0 + 45.0 * inland**1.3 + 2.0 * low + hill * (60.0 + 700.0 * rough**1.3)
    elev = np.where(sea, 0.0, np.maximum(elev, 1.5)).astype(np.float32)

    # ---- rivers: main river to the apex, distributaries to the coast, tributaries ------------
    rnoise = _unit(_fractal(rng, m, 3.0))
    cost = 1.0 + elev / 6.0 + 30.0 * hill + 3.0 * rnoise + 500.0 * sea
    src_zone = (hill > 0.5) & (xx < 0.45)
    if not src_zone.any():
        src_zone = (xx < 0.1) & ~sea
    cand = np.flatnonzero(src_zone)
    src = divmod(int(cand[rng.integers(cand.size)]), m)
    mouth_row = min(int(mouth * m), m - 1)
    apex = (mouth_row, int(coast[mouth_row] / f * 0.72))
    main_c = _route(cost, apex, [src])[0][::-1]  # source -> apex
    main = _to_fine(main_c, f, n, smooth=5)
    rivers: list[np.ndarray] = [main]
    half_m = [150.0]
    nd = int(rng.integers(4, 7))
    targets = mouth_row + np.linspace(-0.17, 0.17, nd) * m + rng.uniform(-0.02, 0.02, nd) * m
    for tr in np.clip(targets, 0.04 * m, 0.96 * m):
        row = int(tr)
        end = np.array([tr, min(coast[row] / f + 3.0, m - 0.5)])
        pts = _wavy_line(rng, np.array(apex, dtype=np.float64), end, amp=0.025 * m)
        d = _to_fine(pts, f, n, smooth=5)
        rivers.append(_polyline(np.vstack([main[-1:], d]), (n, n)))
        half_m.append(90.0)
    coarse_main = np.zeros((m, m), dtype=bool)
    coarse_main[main_c[:, 0], main_c[:, 1]] = True
    far_main = ndimage.distance_transform_edt(~coarse_main) > 0.18 * m
    from skimage.graph import MCP_Geometric

    mcp = MCP_Geometric(cost, fully_connected=True)
    mcp.find_costs(starts=[tuple(p) for p in main_c])
    for k in range(5):
        zone = far_main & ~sea & ((hill > 0.4) if k < 3 else (hill < 0.05)) & (xx < 0.75)
        cand = np.flatnonzero(zone)
        if cand.size == 0:
            continue
        s = divmod(int(cand[rng.integers(cand.size)]), m)
        path = np.array(mcp.traceback(s), dtype=np.int64)[::-1]  # source -> junction
        if len(path) >= 4:
            rivers.append(_to_fine(path, f, n, smooth=3))
            half_m.append(45.0)
        far_main &= ~_disk_mask(m, s, 0.15 * m)

    # carve: elevation along every river never rises downstream, also where rivers share cells
    flats = [p[:, 0] * n + p[:, 1] for p in rivers]
    vals = [np.minimum.accumulate(_sample_points(elev, f, p[:, 0], p[:, 1])).astype(np.float64) for p in rivers]
    apex_val = vals[0][-1]
    for i in range(1, 1 + nd):
        vals[i] = np.minimum(vals[i], apex_val)
    allflat = np.unique(np.concatenate(flats))
    hw_cells = np.zeros(allflat.size)
    for p_flat, h in zip(flats, half_m, strict=True):
        pos = np.searchsorted(allflat, p_flat)
        hw_cells[pos] = np.maximum(hw_cells[pos], max(h / cs, 0.5))
    for _ in range(20):
        store = np.full(allflat.size, np.inf)
        for p_flat, v in zip(flats, vals, strict=True):
            np.minimum.at(store, np.searchsorted(allflat, p_flat), v)
        changed = False
        for i, p_flat in enumerate(flats):
            nv = np.minimum.accumulate(store[np.searchsorted(allflat, p_flat)])
            if not np.array_equal(nv, vals[i]):
                vals[i], changed = nv, True
        if not changed:
            break
    river_elev = np.round(np.maximum(store, 0.0)).astype(np.float32)
    river_lines = _Lines(allflat, n)

    # ---- lakes: a large one near the delta, a few small ones --------------------------------
    coarse_river = np.zeros((m, m), dtype=bool)
    for p in rivers:
        coarse_river[np.minimum(p[:, 0] // f, m - 1), np.minimum(p[:, 1] // f, m - 1)] = True
    d_river = ndimage.distance_transform_edt(~coarse_river) / m
    lake = np.zeros((m, m))
    level = np.zeros((m, m), dtype=np.float32)
    lnoise = _fractal(rng, m, 3.0)
    best = np.full((m, m), -np.inf)
    for rad in (0.05, 0.018, 0.015, 0.012):
        zone = ~sea & (hill < 0.1) & (d_river > rad + 0.02) & (xx < coast_frac[:, None] - rad - 0.05)
        cand = np.flatnonzero(zone)
        if cand.size == 0:
            continue
        cy, cx = divmod(int(cand[rng.integers(cand.size)]), m)
        bump = 1.0 - np.hypot(yy - yy[cy, cx], xx - xx[cy, cx]) / (2 * rad) + 0.06 * lnoise
        inside = bump > 0.5
        lev = float(elev[inside].min()) if inside.any() else float(elev[cy, cx])
        level = np.where(bump > best, np.float32(lev), level)
        best = np.maximum(best, bump)
        lake = np.maximum(lake, bump)
    lake = lake.astype(np.float32)

    # ---- cities: rank-size areas, placed on the plain, big ones near the water --------------
    k = _city_count(n)
    land = float((~sea).mean()) * n * n
    zipf = 1.0 / np.arange(1, k + 1) ** 1.05
    areas = _URBAN_SHARE * land * zipf / zipf.sum()
    radii = np.sqrt(areas / np.pi) * rng.uniform(0.92, 1.08, k)
    ok = (~sea) & (hill < 0.12) & (lake < 0.35) & ~coarse_river
    near_water = np.exp(-d_river / 0.08) + 0.25
    placed: list[tuple[int, int]] = []
    cities: list[_CityPlan] = []
    for i in range(k):
        rc = radii[i] / f
        edge_ok = (np.minimum(np.minimum(yy, 1 - yy), np.minimum(xx, coast_frac[:, None] - xx)) * m) > 0.6 * rc
        sep = 1.6
        while True:
            zone = ok & edge_ok
            for (py, px), c in zip(placed, cities, strict=True):
                zone &= np.hypot(yy * m - py, xx * m - px) > sep * (rc + c.radius / f)
            if zone.any() or sep < 0.4:
                break
            sep *= 0.85
        cand = np.flatnonzero(zone)
        if cand.size == 0:
            raise LanduseError(f"the megaregion layout found no room for city {i + 1} of {k}; try another --seed")
        w = near_water.ravel()[cand] ** (2.0 if i < 6 else 0.5)
        cy, cx = divmod(int(cand[rng.choice(cand.size, p=w / w.sum())]), m)
        placed.append((cy, cx))
        centre = (min(cy * f + f // 2, n - 1), min(cx * f + f // 2, n - 1))
        growth = 0.28 if i == 0 else float(rng.uniform(0.25, 0.45))
        cities.append(_CityPlan(i + 1, _rank(i), centre, float(radii[i]), growth))

    # ---- territories and counties (coarse, weighted Voronoi of a warped plane) -----------------
    wy, wx = _fractal(rng, m, 3.5) * 0.03 * m, _fractal(rng, m, 3.5) * 0.03 * m
    py_, px_ = yy * m + wy, xx * m + wx
    best = np.full((m, m), np.inf)
    city_map = np.zeros((m, m), dtype=np.int32)
    for (cy, cx), c in zip(placed, cities, strict=True):
        d = np.hypot(py_ - cy, px_ - cx) / (c.radius / f) ** 0.6
        closer = d < best
        best = np.where(closer, d, best)
        city_map[closer] = c.id
    for (cy, cx), c in zip(placed, cities, strict=True):
        city_map[cy, cx] = c.id
    county_map = np.zeros((m, m), dtype=np.int32)
    next_id = 1
    for (cy, cx), c in zip(placed, cities, strict=True):
        cells = np.flatnonzero(city_map == c.id)
        want = {"core": 6, "large": 4, "medium": 2}.get(c.rank, 1)
        seeds = [(cy, cx)]
        for _ in range(want - 1):
            if cells.size <= len(seeds) * 8:
                break
            s = divmod(int(cells[rng.integers(cells.size)]), m)
            if min(math.hypot(s[0] - a, s[1] - b) for a, b in seeds) > 0.25 * math.sqrt(cells.size):
                seeds.append(s)
        ry, rx = np.divmod(cells, m)
        dist = np.stack([np.hypot(ry - a, rx - b) for a, b in seeds])
        county_map.ravel()[cells] = next_id + np.argmin(dist, axis=0).astype(np.int32)
        next_id += len(seeds)

    # ---- transport: roads (spanning tree + nearest neighbours), rail corridors, stations ---------
    cen = np.array(placed, dtype=np.float64)
    dist = np.hypot(cen[:, None, 0] - cen[None, :, 0], cen[:, None, 1] - cen[None, :, 1])
    links = set(_spanning_tree(dist))
    for i in range(k):
        d = dist[i].copy()
        d[i] = np.inf
        j = int(np.argmin(d))
        links.add((min(i, j), max(i, j)))
    road_cost = 1.0 + 25.0 * hill + 8.0 * coarse_river + 6.0 * (lake > 0.5) + 500.0 * sea
    road_paths: list[np.ndarray] = []
    for a in range(k):
        ends = sorted(b for (x, b) in links if x == a)
        if ends:
            for p in _route(road_cost, placed[a], [placed[b] for b in ends]):
                road_paths.append(_to_fine(p, f, n))
    for i, c in enumerate(cities):
        spokes = 4 if c.rank == "small" else 6 if c.rank == "medium" else 8
        start = rng.uniform(0, 2 * np.pi)
        for a in start + np.arange(spokes) * 2 * np.pi / spokes + rng.uniform(-0.2, 0.2, spokes):
            tip = np.array(c.centre) + 1.15 * c.radius * np.array([np.sin(a), np.cos(a)])
            pts = _wavy_line(rng, np.array(c.centre, dtype=np.float64), tip, amp=0.05 * c.radius)
            road_paths.append(_polyline(np.clip(np.round(pts), 0, n - 1).astype(np.int64), (n, n)))
        if i < 5:
            t = np.linspace(0, 2 * np.pi, 49)
            rr = 0.62 * c.radius * (1 + 0.05 * np.sin(3 * t + rng.uniform(0, 6)))
            ring = np.array(c.centre)[None, :] + rr[:, None] * np.stack([np.sin(t), np.cos(t)], axis=1)
            road_paths.append(_polyline(np.clip(np.round(ring), 0, n - 1).astype(np.int64), (n, n)))
    roads = _Lines.build(road_paths, n)
    top = min(k, max(8, k // 3))
    rail_cost = 1.0 + 80.0 * hill + 5.0 * coarse_river + 6.0 * (lake > 0.5) + 500.0 * sea
    rail_paths: list[np.ndarray] = []
    for a, b in _spanning_tree(dist[:top, :top]):
        p = _route(rail_cost, placed[a], [placed[b]])[0]
        rail_paths.append(_to_fine(p, f, n, smooth=5))
    rail = _Lines.build(rail_paths, n)
    rr, rcol = rail.rows_cols(np.arange(rail.flat.size))
    stations = []
    for c in cities:
        d = np.hypot(rr - c.centre[0], rcol - c.centre[1])
        j = int(np.argmin(d))
        if d[j] <= 0.8 * c.radius:
            stations.append((int(rr[j]), int(rcol[j])))
    soil = _unit(_fractal(rng, m, 3.2)).astype(np.float32)
    ind = _fractal(rng, m, 3.0).ravel()
    ind_u = np.empty(ind.size, dtype=np.float32)
    ind_u[np.argsort(ind, kind="stable")] = (np.arange(ind.size) + 0.5) / ind.size
    return _Plan(
        n=n, seed=seed, cs=cs, f=f, halo=_halo(cs), elev=elev, hill=hill, lake=lake, lake_level=level,
        soil=soil, ind=ind_u.reshape(m, m), coast=coast, city_map=city_map, county_map=county_map,
        cities=cities, rivers=rivers, river_lines=river_lines, river_elev=river_elev,
        river_hw=hw_cells.astype(np.float32), roads=roads, rail=rail, rail_paths=rail_paths,
        stations=np.array(sorted(set(stations)), dtype=np.int64).reshape(-1, 2),
        centres=np.array([c.centre for c in cities], dtype=np.int64), n_distributaries=nd,
        greenbelt_cities=tuple(c.id for c in cities[:3]),
    )


def _disk_mask(m: int, centre: tuple[int, int], radius: float) -> np.ndarray:
    yy, xx = np.ogrid[0:m, 0:m]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius * radius


# --------------------------------------------------------------------------- one tile


def _edt(mask: np.ndarray, **kw):
    return ndimage.distance_transform_edt(~mask, **kw)


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


def _tile(plan: _Plan, win: tuple[int, int, int, int], scheme: ClassScheme) -> dict[str, np.ndarray]:
    """Every layer on the cells of ``win`` (``(r0, r1, c0, c1)``), computed on ``win`` plus the halo."""
    n, f, cs, seed, h = plan.n, plan.f, plan.cs, plan.seed, plan.halo
    r0, r1, c0, c1 = win
    ew = (max(r0 - h, 0), min(r1 + h, n), max(c0 - h, 0), min(c1 + h, n))
    shape = (ew[1] - ew[0], ew[3] - ew[2])
    rows = np.arange(ew[0], ew[1], dtype=np.float32)[:, None]
    cols = np.arange(ew[2], ew[3], dtype=np.float32)[None, :]
    codes = {c.name: c.code for c in scheme}
    code = codes.__getitem__

    # terrain and water
    hill = _upsample(plan.hill, f, ew) + 0.12 * _fbm(seed, _P_HILL, ew, 12.0 * 30.0 / cs)
    elev = _upsample(plan.elev, f, ew) + 0.8 * _fbm(seed, _P_MICRO, ew, 40.0) + np.clip(
        hill, 0, 1) * 60.0 * _fbm(seed, _P_ROUGH, ew, 16.0)
    coast = np.interp((np.arange(ew[0], ew[1]) + 0.5) / f - 0.5, np.arange(plan.coast.size), plan.coast)
    sea = cols > (coast.astype(np.float32)[:, None] + 0.6 * f * _fbm(seed, _P_COAST, ew, 2.0 * f))
    lake = ((_upsample(plan.lake, f, ew) + 0.12 * _fbm(seed, _P_LAKE, ew, 24.0)) > 0.5) & ~sea
    pos = plan.river_lines.window(ew)
    river = np.zeros(shape, dtype=bool)
    if pos.size:
        rr, rc = plan.river_lines.rows_cols(pos)
        centre = np.zeros(shape, dtype=bool)
        centre[rr - ew[0], rc - ew[2]] = True
        cl_elev = np.zeros(shape, dtype=np.float32)
        cl_elev[rr - ew[0], rc - ew[2]] = plan.river_elev[pos]
        cl_hw = np.zeros(shape, dtype=np.float32)
        cl_hw[rr - ew[0], rc - ew[2]] = plan.river_hw[pos]
        d, (iy, ix) = _edt(centre, return_indices=True)
        river = d <= cl_hw[iy, ix]
        elev = np.where(river, cl_elev[iy, ix], elev)
    elev = np.where(lake & ~river, _upsample_nearest(plan.lake_level, f, ew), elev)
    elev = np.where(sea & ~river, 0.0, np.where(river | lake, elev, np.maximum(elev, 1.0)))
    elev_i16 = np.round(elev).astype(np.int16)
    water = river | lake | sea
    gy, gx = np.gradient(elev_i16.astype(np.float32), np.float32(cs))
    slope = np.round(np.degrees(np.arctan(np.hypot(gx, gy))), 1).astype(np.float32)

    # natural cover
    forest = (hill > 0.45) | ((_fbm(seed, _P_WOOD, ew, 20.0) > 0.42) & (hill < 0.45))
    grass = ((hill > 0.28) & (hill <= 0.45)) | ((_fbm(seed, _P_GRASS, ew, 24.0) > 0.45) & ~forest)
    bare = (slope >= 35.0) | ((hill > 0.6) & (_fbm(seed, _P_BARE, ew, 8.0) > 0.55))
    if water.any():
        dw, (wy, wx) = _edt(water, return_indices=True)
        wet = (~water & (dw * cs <= 200.0) & (elev_i16 <= elev_i16[wy, wx] + 1) & (hill < 0.2)
               & (_fbm(seed, _P_WET, ew, 16.0) > 0.05))
    else:
        dw, wet = np.full(shape, np.inf), np.zeros(shape, dtype=bool)

    # cities: the nearest (relative to its radius) city's score
    s = np.full(shape, np.inf, dtype=np.float32)
    thr = np.ones(shape, dtype=np.float32)
    reach = 2.8
    warp = 1.0 + 0.9 * _fbm(seed, _P_URBAN, ew, 80.0 * 30.0 / cs)
    np.clip(warp, 0.6, 1.6, out=warp)
    rings: list[tuple[int, np.ndarray, float]] = []
    for c in plan.cities:
        cy, cx = c.centre
        if cy + reach * c.radius < ew[0] or cy - reach * c.radius >= ew[1]:
            continue
        if cx + reach * c.radius < ew[2] or cx - reach * c.radius >= ew[3]:
            continue
        d = np.sqrt((rows - np.float32(cy)) ** 2 + (cols - np.float32(cx)) ** 2) / np.float32(c.radius)
        closer = d < s
        s = np.where(closer, d, s)
        thr = np.where(closer, np.float32(math.sqrt(1.0 + c.growth)), thr)
        if c.id in plan.greenbelt_cities:
            rings.append((c.id, d * warp, math.sqrt(1.0 + c.growth)))
    score = s * warp + 0.35 * _fbm(seed, _P_URB2, ew, 12.0 * 30.0 / cs)
    buildable = ~water & ~wet & (slope < 8.0) & (hill < 0.45)
    city10 = (score < 1.0) & buildable
    spacing = max(round(3000.0 / cs), 8)
    village = _lattice_blobs(seed, _P_VIL, ew, spacing, 0.55, 60.0 / cs, 150.0 / cs) & buildable & (score > 1.6)
    village &= hill < 0.25
    urban10 = city10 | village
    indf = _upsample(plan.ind, f, ew) + 0.15 * _fbm(seed, _P_IND, ew, 16.0)
    com = _fbm(seed, _P_COM, ew, 12.0)
    commercial10 = city10 & (s + 0.1 * com < 0.3)
    industrial10 = city10 & ~commercial10 & (s > 0.5) & (indf > 0.7)

    lu10 = np.full(shape, code("farmland"), dtype=np.uint8)
    lu10[grass] = code("grassland")
    lu10[forest] = code("forest")
    lu10[bare] = code("bare")
    lu10[wet] = code("wetland")
    lu10[water] = code("water")
    lu10[urban10] = code("residential")
    lu10[industrial10] = code("industrial")
    lu10[commercial10] = code("commercial")

    # policy masks from 2010
    red = wet | water | (dw * cs <= 120.0) | ((_upsample(plan.lake, f, ew) > 0.38) & ~sea)
    forest10 = lu10 == code("forest")
    if forest10.any():
        core = forest10 & (_edt(~forest10) * cs > 150.0)
        if core.any():
            red |= forest10 & (_edt(core) * cs <= 120.0)
    red &= ~urban10
    d_urb = _edt(urban10) * cs if urban10.any() else np.full(shape, np.inf)
    soil = _upsample(plan.soil, f, ew) + 0.1 * _fbm(seed, _P_SOIL, ew, 24.0)
    pf = (lu10 == code("farmland")) & (soil > 0.4) & (slope < 2.0) & (d_urb >= 300.0) & (s >= 1.4) & ~red
    pf = ndimage.binary_opening(pf, structure=_DISK2)

    # growth to 2020
    ok = buildable & ~red & ~pf & (slope < 12.0)
    patches = (_lattice_blobs(seed, _P_PATCH, ew, int(spacing * 1.7), 0.3, 120.0 / cs, 220.0 / cs)
               & (s > 1.05) & (s < 2.2))
    urban20 = urban10 | (((score < thr) | patches) & ok)
    new = urban20 & ~urban10
    lu20 = lu10.copy()
    lu20[new] = code("residential")
    lu20[new & (indf > 0.74)] = code("industrial")
    lu20[new & (com > 0.2) & (indf <= 0.74)] = code("commercial")

    # territories (coarse maps sampled at warped positions) and the greenbelt
    wyf = 0.7 * f * _value_noise(_key(seed, _P_WARPY), ew, 3.0 * f)
    wxf = 0.7 * f * _value_noise(_key(seed, _P_WARPX), ew, 3.0 * f)
    m = plan.city_map.shape[0]
    ci = np.clip(np.rint((rows + np.float32(0.5) + wyf) / np.float32(f) - np.float32(0.5)), 0, m - 1).astype(np.intp)
    cj = np.clip(np.rint((cols + np.float32(0.5) + wxf) / np.float32(f) - np.float32(0.5)), 0, m - 1).astype(np.intp)
    cities = plan.city_map[ci, cj]
    counties = plan.county_map[ci, cj]
    greenbelt = np.zeros(shape, dtype=bool)
    for cid, d, t in rings:
        greenbelt |= (d >= t + 0.12) & (d <= t + 0.45) & (cities == cid)
    greenbelt &= ~urban20 & ~water

    out = {
        "landuse_2010": lu10, "landuse_2020": lu20, "cities": cities, "counties": counties,
        "elevation": elev_i16, "slope": slope, "red_line": red, "permanent_farmland": pf, "greenbelt": greenbelt,
    }
    for name, lines in (("roads", plan.roads), ("rail", plan.rail)):
        arr = np.zeros(shape, dtype=bool)
        lr, lc = lines.rows_cols(lines.window(ew))
        arr[lr - ew[0], lc - ew[2]] = True
        out[name] = arr
    for name, pts in (("stations", plan.stations), ("centres", plan.centres)):
        arr = np.zeros(shape, dtype=bool)
        inside = (pts[:, 0] >= ew[0]) & (pts[:, 0] < ew[1]) & (pts[:, 1] >= ew[2]) & (pts[:, 1] < ew[3])
        arr[pts[inside, 0] - ew[0], pts[inside, 1] - ew[2]] = True
        out[name] = arr
    crop = (slice(r0 - ew[0], r1 - ew[0]), slice(c0 - ew[2], c1 - ew[2]))
    return {k: np.ascontiguousarray(v[crop]) for k, v in out.items()}


_DISK2 = np.array([[0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=bool)


def _upsample_nearest(field: np.ndarray, f: int, win: tuple[int, int, int, int]) -> np.ndarray:
    m = field.shape[0]
    iy = np.minimum(np.arange(win[0], win[1]) // f, m - 1)
    ix = np.minimum(np.arange(win[2], win[3]) // f, m - 1)
    return field[iy][:, ix]


# --------------------------------------------------------------------------- driving the tiles


@dataclass
class _Tally:
    """Region-wide figures accumulated tile by tile (exact integer counts)."""

    n_ids: int
    lu10: np.ndarray = field(init=False)
    lu20: np.ndarray = field(init=False)
    new_by_code: np.ndarray = field(init=False)
    urban10: np.ndarray = field(init=False)
    urban20: np.ndarray = field(init=False)
    territory: np.ndarray = field(init=False)
    masks: dict[str, int] = field(init=False)
    elev_range: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.lu10 = np.zeros(256, dtype=np.int64)
        self.lu20 = np.zeros(256, dtype=np.int64)
        self.new_by_code = np.zeros(256, dtype=np.int64)
        self.urban10 = np.zeros(self.n_ids + 1, dtype=np.int64)
        self.urban20 = np.zeros(self.n_ids + 1, dtype=np.int64)
        self.territory = np.zeros(self.n_ids + 1, dtype=np.int64)
        self.masks = {"red_line": 0, "permanent_farmland": 0, "greenbelt": 0}
        self.elev_range = [32767, -32768]

    def add(self, t: dict[str, np.ndarray], scheme: ClassScheme) -> None:
        lu10, lu20, cities = t["landuse_2010"], t["landuse_2020"], t["cities"].ravel()
        u10 = scheme.is_role(lu10, *URBAN_TYPES)
        u20 = scheme.is_role(lu20, *URBAN_TYPES)
        self.lu10 += np.bincount(lu10.ravel(), minlength=256)
        self.lu20 += np.bincount(lu20.ravel(), minlength=256)
        self.new_by_code += np.bincount(lu20[~u10], minlength=256)
        k = self.n_ids + 1
        self.urban10 += np.bincount(cities, weights=u10.ravel(), minlength=k).astype(np.int64)
        self.urban20 += np.bincount(cities, weights=u20.ravel(), minlength=k).astype(np.int64)
        self.territory += np.bincount(cities, minlength=k)
        for name in self.masks:
            self.masks[name] += int(t[name].sum())
        e = t["elevation"]
        self.elev_range = [min(self.elev_range[0], int(e.min())), max(self.elev_range[1], int(e.max()))]


def _windows(n: int, tile: int) -> list[tuple[int, int, int, int]]:
    return [(r, min(r + tile, n), c, min(c + tile, n)) for r in range(0, n, tile) for c in range(0, n, tile)]


def _check(size: int, seed: int, cell_size: float, tile: int) -> None:
    if size < 500:
        raise LanduseError(f"--size must be at least 500 cells for the megaregion layout, got {size}")
    if size >= int(_STRIDE):
        raise LanduseError(f"--size must be below {int(_STRIDE)} cells, got {size}")
    if not 10.0 <= cell_size <= 1000.0:
        raise LanduseError(f"--cell-size must be within [10, 1000] metres, got {cell_size:g}")
    if seed < 0:
        raise LanduseError(f"--seed must be a non-negative integer, got {seed}")
    if tile < 64:
        raise LanduseError(f"the megaregion tile must be at least 64 cells, got {tile}")


_WORKER_PLAN: _Plan | None = None  # the plan a forked tile worker inherits


def _tile_in_worker(win: tuple[int, int, int, int]) -> dict[str, np.ndarray]:
    assert _WORKER_PLAN is not None
    return _tile(_WORKER_PLAN, win, default_scheme())


def default_workers(size: int, tile: int = DEFAULT_TILE) -> int:
    """Processes :func:`run_tiles` uses by default: 1 below 16 tiles, else up to 2 (never above the CPUs)."""
    tiles = (-(-int(size) // int(tile))) ** 2
    return 1 if tiles < 16 else max(1, min(2, os.cpu_count() or 1))


def run_tiles(
    *,
    size: int,
    seed: int,
    cell_size: float,
    tile: int = DEFAULT_TILE,
    sink: Callable[[tuple[int, int, int, int], dict[str, np.ndarray]], None],
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[_Plan, _Tally]:
    """Plan the megaregion and compute it tile by tile, handing each tile's layers to ``sink``.

    ``sink(window, layers)`` gets ``window = (r0, r1, c0, c1)`` and the layer name ->
    array of that window (land use ``uint8``, zones ``int32``, elevation ``int16``, slope
    ``float32``, masks ``bool``), always in row-major tile order. With ``workers > 1``
    tiles are computed in forked processes (at most ``2 * workers`` tiles in flight);
    the result is the same. Returns the plan and the region-wide tally.
    """
    global _WORKER_PLAN
    _check(size, seed, cell_size, tile)
    scheme = default_scheme()
    plan = _plan(int(size), int(seed), float(cell_size))
    tally = _Tally(len(plan.cities))
    wins = _windows(plan.n, int(tile))
    nw = default_workers(size, tile) if workers is None else int(workers)
    if nw < 1:
        raise LanduseError(f"workers must be at least 1, got {workers}")

    def deliver(i: int, layers: dict[str, np.ndarray]) -> None:
        tally.add(layers, scheme)
        sink(wins[i], layers)
        if progress is not None:
            progress(i + 1, len(wins))

    if nw == 1 or len(wins) == 1:
        for i, win in enumerate(wins):
            deliver(i, _tile(plan, win, scheme))
        return plan, tally
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    _WORKER_PLAN = plan
    try:
        with ProcessPoolExecutor(max_workers=nw, mp_context=multiprocessing.get_context("fork")) as pool:
            pending: deque = deque()
            for i, win in enumerate(wins):
                pending.append(pool.submit(_tile_in_worker, win))
                if len(pending) >= 2 * nw:
                    deliver(i - len(pending) + 1, pending.popleft().result())
            first = len(wins) - len(pending)
            for j, fut in enumerate(pending):
                deliver(first + j, fut.result())
    finally:
        _WORKER_PLAN = None
    return plan, tally


def _transform(cs: float) -> Affine:
    return Affine(cs, 0.0, ORIGIN[0], 0.0, -cs, ORIGIN[1])


def _cities(plan: _Plan, tally: _Tally) -> list[SampleCity]:
    ha = plan.cs * plan.cs / 10_000.0
    return [
        SampleCity(
            id=c.id, name=f"city {c.id}", rank=c.rank, centre=c.centre, radius_cells=c.radius,
            urban_2010_ha=float(tally.urban10[c.id]) * ha, urban_2020_ha=float(tally.urban20[c.id]) * ha,
            territory_ha=float(tally.territory[c.id]) * ha,
        )
        for c in plan.cities
    ]


def build_megaregion(
    *, size: int = 1200, seed: int = 42, cell_size: float = 30.0, tile: int = DEFAULT_TILE, workers: int = 1
) -> SampleRegion:
    """Build the megaregion layout in memory (for small grids: tests, notebooks).

    The same tiles as the writer, assembled into whole arrays. ``rail_path`` holds the
    rail corridors one after another.

    Examples
    --------
    >>> r = build_megaregion(size=600, seed=3, tile=256)
    >>> r.shape, len(r.cities) >= 24
    ((600, 600), True)
    """
    n = int(size)
    dtypes = {"landuse_2010": np.uint8, "landuse_2020": np.uint8, "cities": np.int32, "counties": np.int32,
              "elevation": np.int16, "slope": np.float32}
    arrays = {k: np.zeros((n, n), dtype=dtypes.get(k, bool)) for k in LAYER_FILES}

    def sink(win: tuple[int, int, int, int], layers: dict[str, np.ndarray]) -> None:
        for k, v in layers.items():
            arrays[k][win[0]:win[1], win[2]:win[3]] = v

    plan, tally = run_tiles(size=n, seed=seed, cell_size=cell_size, tile=tile, sink=sink, workers=workers)
    rail = np.vstack(plan.rail_paths) if plan.rail_paths else np.zeros((0, 2), dtype=np.int64)
    return SampleRegion(arrays=arrays, transform=_transform(float(cell_size)), crs=CRS, cell_size=float(cell_size),
                        seed=int(seed), cities=_cities(plan, tally), rivers=plan.rivers, rail_path=rail)


# --------------------------------------------------------------------------- writing


class _Writer:
    """Tiled GeoTIFFs written window by window, then copied into COGs."""

    def __init__(self, folder: Path, n: int, cs: float, tags: dict[str, object], scheme: ClassScheme) -> None:
        import rasterio

        self.folder, self.n, self.scheme, self.tags = folder, n, scheme, tags
        self.dst: dict[str, object] = {}
        env = rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_CACHEMAX=256)  # MB: the block cache stays small
        env.__enter__()
        self.env = env
        for name, fname in LAYER_FILES.items():
            dtype, nodata, predictor = "uint8", None, 1
            if name.startswith("landuse_"):
                nodata = scheme.nodata
            elif name in ("cities", "counties"):
                dtype, nodata, predictor = "int32", 0, 2
            elif name == "elevation":
                dtype, nodata, predictor = "int16", -32768, 2
            elif name == "slope":
                dtype, nodata, predictor = "float32", float("nan"), 3
            profile = {"driver": "GTiff", "height": n, "width": n, "count": 1, "dtype": dtype, "crs": CRS,
                       "transform": _transform(cs), "tiled": True, "blockxsize": 256, "blockysize": 256,
                       "compress": "deflate", "zlevel": 1, "predictor": predictor, "BIGTIFF": "IF_SAFER"}
            if nodata is not None:
                profile["nodata"] = nodata
            self.dst[name] = rasterio.open(self._tmp(fname), "w", **profile)

    def _tmp(self, fname: str) -> Path:
        return self.folder / f".{fname}.tiles.tif"

    def write(self, win: tuple[int, int, int, int], layers: dict[str, np.ndarray]) -> None:
        from rasterio.windows import Window

        w = Window(win[2], win[0], win[3] - win[2], win[1] - win[0])
        for name, arr in layers.items():
            self.dst[name].write(arr.astype(np.uint8) if arr.dtype == np.bool_ else arr, 1, window=w)

    def close(self, *, finish: bool = True) -> None:
        import rasterio
        from rasterio.shutil import copy as rio_copy

        from landuse.io.rasters import OVERVIEWS_ABOVE_SIDE, category_aux_xml, overview_resampling, write_text

        try:
            for name in LAYER_FILES:
                ds = self.dst[name]
                ds.set_band_description(1, name)
                ds.update_tags(**{str(k): str(v) for k, v in self.tags.items()})
                if name.startswith("landuse_"):
                    ds.write_colormap(1, self.scheme.colormap())
                    ds.update_tags(1, **{f"CLASS_{c.code}": f"{c.name}|{c.role}|{c.colour}" for c in self.scheme})
                ds.close()
            if not finish:
                return
            for name, fname in LAYER_FILES.items():
                tmp = self._tmp(fname)
                with rasterio.open(tmp) as src:
                    dtype = src.dtypes[0]
                opts = {"compress": "deflate", "blocksize": 256, "BIGTIFF": "IF_SAFER", "NUM_THREADS": "ALL_CPUS",
                        "overviews": "auto" if self.n > OVERVIEWS_ABOVE_SIDE else "none",
                        "resampling": overview_resampling(dtype, categorical=name.startswith("landuse_"))}
                if dtype == "float32":
                    opts["predictor"] = 3
                elif dtype in ("int16", "int32"):
                    opts["predictor"] = 2
                rio_copy(str(tmp), str(self.folder / fname), driver="COG", **opts)
                tmp.unlink()
                if name.startswith("landuse_"):
                    write_text(self.folder / f"{fname}.aux.xml", category_aux_xml(self.scheme, name))
        finally:
            for ds in self.dst.values():
                if not ds.closed:
                    ds.close()
            for fname in LAYER_FILES.values():
                self._tmp(fname).unlink(missing_ok=True)
            self.env.__exit__(None, None, None)


@dataclass
class MegaResult:
    """What :func:`write_megaregion` wrote and counted (exact region-wide figures)."""

    cities: list[SampleCity]
    role_counts_2010: dict[str, int]
    role_counts_2020: dict[str, int]
    new_urban_cells: dict[str, int]
    mask_cells: dict[str, int]
    elevation_range: tuple[int, int]
    n_distributaries: int
    n_stations: int
    n_counties: int
    cells: int
    cell_area_ha: float

    def shares(self, year: int) -> dict[str, float]:
        counts = self.role_counts_2010 if year == 2010 else self.role_counts_2020
        return {k: v / self.cells for k, v in counts.items()}


def _role_counts(counts: np.ndarray, scheme: ClassScheme) -> dict[str, int]:
    out = {"urban": int(sum(counts[scheme.code_of(t)] for t in URBAN_TYPES))}
    for role in (*URBAN_TYPES, "farmland", "open_space", "water", "other"):
        out[role] = int(sum(counts[c.code] for c in scheme if c.role == role))
    return out


def write_megaregion(
    folder: str | os.PathLike,
    *,
    size: int,
    seed: int,
    cell_size: float,
    tile: int = DEFAULT_TILE,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[MegaResult, _Plan]:
    """Compute the megaregion tile by tile and write every layer of :data:`LAYER_FILES` into ``folder``."""
    _check(size, seed, cell_size, tile)
    scheme = default_scheme()
    writer = _Writer(Path(folder), int(size), float(cell_size),
                     {"generator": "landuse.sample", "layout": "megaregion", "seed": int(seed), "size": int(size)},
                     scheme)
    ok = False
    try:
        plan, tally = run_tiles(size=size, seed=seed, cell_size=cell_size, tile=tile, sink=writer.write,
                                workers=workers, progress=progress)
        ok = True
    finally:
        writer.close(finish=ok)
    ha = float(cell_size) ** 2 / 10_000.0
    result = MegaResult(
        cities=_cities(plan, tally),
        role_counts_2010=_role_counts(tally.lu10, scheme),
        role_counts_2020=_role_counts(tally.lu20, scheme),
        new_urban_cells={t: int(tally.new_by_code[scheme.code_of(t)]) for t in URBAN_TYPES},
        mask_cells=dict(tally.masks),
        elevation_range=(tally.elev_range[0], tally.elev_range[1]),
        n_distributaries=plan.n_distributaries,
        n_stations=len(plan.stations),
        n_counties=int(plan.county_map.max()),
        cells=int(size) * int(size),
        cell_area_ha=ha,
    )
    return result, plan


def _overview(folder: Path, plan: _Plan, result: MegaResult, seed: int) -> None:
    """``overview.png``: land use 2020 (read back decimated, through the COG overviews), city
    borders, rail corridors, stations and the largest cities' labels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from rasterio.enums import Resampling

    from landuse.io.folders import figure_png
    from landuse.io.rasters import write_bytes

    scheme = default_scheme()
    n = plan.n
    k = min(n, 1000)
    with rasterio.open(folder / LAYER_FILES["landuse_2020"]) as src:
        lu = src.read(1, out_shape=(k, k), resampling=Resampling.nearest)
    with rasterio.open(folder / LAYER_FILES["cities"]) as src:
        cities = src.read(1, out_shape=(k, k), resampling=Resampling.nearest)
    lut = np.zeros((256, 3), dtype=np.float32)
    for c in scheme:
        lut[c.code] = np.array(c.rgb) / 255.0
    rgb = lut[lu]
    border = np.zeros((k, k), dtype=bool)
    border[:, 1:] |= cities[:, 1:] != cities[:, :-1]
    border[1:, :] |= cities[1:, :] != cities[:-1, :]
    rgb[border] = 0.1
    km = plan.cs / 1000.0
    extent = (0, n * km, n * km, 0)
    fig, ax = plt.subplots(figsize=(10.5, 8.4), dpi=100)
    ax.imshow(rgb, extent=extent, interpolation="nearest")
    for p in plan.rail_paths:
        rp = (p[:: max(1, len(p) // 400)] + 0.5) * km
        ax.plot(rp[:, 1], rp[:, 0], color="black", linewidth=2.0, solid_capstyle="butt")
        ax.plot(rp[:, 1], rp[:, 0], color="white", linewidth=0.8, dashes=(3, 3))
    if len(plan.stations):
        st = (plan.stations + 0.5) * km
        ax.scatter(st[:, 1], st[:, 0], s=24, marker="s", facecolor="white", edgecolor="black", zorder=5)
    for c in result.cities[:12]:
        cy, cx = c.centre
        ax.annotate(f"{c.id}", ((cx + 0.5) * km, (cy + 0.5) * km), xytext=(5, 5), textcoords="offset points",
                    fontsize=9, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    handles = [Patch(facecolor=np.array(c.rgb) / 255.0, edgecolor="0.4", label=c.name) for c in scheme]
    handles += [
        Line2D([], [], color="black", linewidth=2.0, label="rail"),
        Line2D([], [], marker="s", linestyle="none", markerfacecolor="white", markeredgecolor="black",
               label="station"),
        Line2D([], [], color="0.1", linewidth=1.0, label="city border"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    sizes = "\n".join(f"{c.id}: {c.urban_2020_ha:,.0f} ha" for c in result.cities[:12])
    ax.text(1.02, 0.02, f"built-up 2020\n{sizes}\n({len(result.cities)} cities)", transform=ax.transAxes,
            fontsize=8, va="bottom")
    ax.set_xlabel(f"km east of x = {ORIGIN[0]:,.0f} m (EPSG:32651)")
    ax.set_ylabel(f"km south of y = {ORIGIN[1]:,.0f} m")
    ax.set_title(f"Synthetic megaregion, land use 2020 (seed {seed})")
    fig.tight_layout()
    write_bytes(folder / "overview.png", figure_png(fig))


def generate_megaregion(
    out: Path,
    cfg_dir: Path,
    *,
    size: int,
    seed: int,
    cell_size: float,
    force: bool,
    tile: int = DEFAULT_TILE,
    workers: int | None = None,
    started: float | None = None,
) -> SampleInfo:
    """Write the megaregion into ``out`` (as a whole, with a manifest) and its YAML into ``cfg_dir``.

    Called by :func:`landuse.sample.generate.generate_sample` once it has checked the folders.
    """
    import time

    from landuse.core.errors import make_output_dir
    from landuse.io.folders import OutputFolder
    from landuse.io.rasters import write_text

    t0 = time.perf_counter() if started is None else started
    _check(size, seed, cell_size, tile)
    if cfg_dir != out:
        make_output_dir(cfg_dir, option="--config-dir")
    config_path = cfg_dir / "sample.yaml"
    files: dict[str, Path] = {name: out / fname for name, fname in LAYER_FILES.items()}
    files["overview"] = out / "overview.png"
    with OutputFolder(out, command="sample", owner="sample", force=force, option="OUTDIR") as stage:
        result, plan = write_megaregion(stage.path, size=size, seed=seed, cell_size=cell_size, tile=tile,
                                        workers=workers)
        _overview(stage.path, plan, result, seed)
        ha = result.cell_area_ha
        demand = continued_demand(result.role_counts_2010["urban"] * ha, result.role_counts_2020["urban"] * ha,
                                  {t: v * ha for t, v in result.new_urban_cells.items()})
        description = (
            f"Synthetic megaregion generated by `landuse sample` (seed {seed}, {size} x {size} cells of "
            f"{float(cell_size):g} m, {len(result.cities)} cities around a river delta); demand continues the "
            "2010-2020 growth rate"
        )
        yaml_text = _scenario_text(int(seed), demand, description, files, cfg_dir, out)
        if cfg_dir == out:
            write_text(stage.path / "sample.yaml", yaml_text)
        written = stage.commit({"seed": int(seed), "size": int(size), "cell_size": float(cell_size),
                                "layout": "megaregion"})
    if cfg_dir != out:
        write_text(config_path, yaml_text)
        written.append(config_path)
    return SampleInfo(
        outdir=out, config_path=config_path, files=files, size=int(size), seed=int(seed),
        cell_size=float(cell_size), cities=result.cities, shares_2010=result.shares(2010),
        shares_2020=result.shares(2020),
        red_line_share=result.mask_cells["red_line"] / result.cells,
        permanent_farmland_share=result.mask_cells["permanent_farmland"] / result.cells,
        greenbelt_share=result.mask_cells["greenbelt"] / result.cells,
        demand_ha=demand, total_bytes=int(sum(p.stat().st_size for p in written)),
        seconds=time.perf_counter() - t0, layout="megaregion",
    )
