"""The coarse plan of the megaregion (step 1 of :mod:`landuse.sample.mega`): everything that needs a global view.

On a coarse grid of about 300 x 300 cells (``f = n // 300`` fine cells per coarse cell), from one
``numpy.random.default_rng(seed)`` in a fixed order: terrain (a plain rising from a sea coast on the east towards
hills in the south-west), the river delta (main river, distributaries, tributaries) carved to flow downhill,
lakes, cities with rank-size areas, their territories and counties, roads, rail corridors and stations. Lines are
kept as sorted lists of full-resolution cells (:class:`_Lines`); the tiles (:mod:`landuse.sample.mega_tile`) read
them window by window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from landuse.core.errors import LanduseError
from landuse.sample.mega_noise import _sample_points
from landuse.sample.shapes import (
    _disk_mask,
    _fractal,
    _polyline,
    _route,
    _spanning_tree,
    _to_fine,
    _unit,
    _wavy_line,
)

_COARSE = 300  # target coarse grid edge
_URBAN_SHARE = 0.075  # built-up land 2010 (cities) as a share of the land
_HILL_SHARE = 0.22


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


def _halo(cs: float) -> int:
    """Halo (cells) around a tile: longer than the longest chain of buffers.

    The buffers: river width, wetland reach, distance from built-up land, permanent-farmland opening.
    """
    return math.ceil(800.0 / cs) + 8


def _city_count(n: int) -> int:
    """Number of cities of a megaregion ``n`` cells a side: 24 up to 1200, + 6 per doubling, at most 60."""
    return int(np.clip(round(24 + 6 * math.log2(max(n, 1200) / 1200)), 24, 60))


def _rank(i: int) -> str:
    """Rank of the ``i``-th largest city (0-based)."""
    return "core" if i == 0 else "large" if i < 6 else "medium" if i < 20 else "small"


@dataclass(frozen=True)
class _Coarse:
    """The coarse grid: ``m x m`` cells of ``f`` fine cells a side over a fine grid of ``n`` cells a side."""

    n: int
    f: int
    m: int
    yy: np.ndarray  # float64 row of every coarse cell centre, as a fraction of the region
    xx: np.ndarray  # float64 column, likewise

    @classmethod
    def of(cls, n: int) -> _Coarse:
        f = max(2, n // _COARSE)
        m = -(-n // f)
        yy, xx = (np.mgrid[0:m, 0:m].astype(np.float64) + 0.5) / m  # fractions of the region
        return cls(n, f, m, yy, xx)


@dataclass
class _Land:
    mouth: float  # row (fraction) of the river mouth
    coast_frac: np.ndarray  # per coarse row: column (fraction) of the coast
    coast: np.ndarray  # per coarse row: fine column of the coast
    sea: np.ndarray  # coarse bool
    hill: np.ndarray  # coarse float32 0..1
    elev: np.ndarray  # coarse float32 metres


@dataclass
class _Rivers:
    paths: list[np.ndarray]  # main river, then the distributaries, then the tributaries (full-resolution cells)
    half_m: list[float]  # half width (metres) of each
    n_distributaries: int


@dataclass
class _Lakes:
    lake: np.ndarray  # coarse float32 lake field (> 0.5 is lake)
    level: np.ndarray  # coarse float32 surface of the nearest lake
    coarse_river: np.ndarray  # coarse bool: cells a river crosses
    d_river: np.ndarray  # coarse distance to a river, as a fraction of the region


@dataclass
class _Transport:
    roads: _Lines
    rail: _Lines
    rail_paths: list[np.ndarray]
    stations: list[tuple[int, int]]


def _plan(n: int, seed: int, cs: float) -> _Plan:
    """The megaregion's coarse plan: every random choice drawn from ``default_rng(seed)``, step after step."""
    rng = np.random.default_rng(seed)
    cg = _Coarse.of(n)
    land = _plan_terrain(rng, cg)
    rv = _plan_rivers(rng, cg, land)
    river_elev, river_lines, hw_cells = _carve_rivers(cg, land.elev, rv, cs)
    lakes = _plan_lakes(rng, cg, land, rv.paths)
    placed, cities = _plan_cities(rng, cg, land, lakes)
    city_map, county_map = _plan_territories(rng, cg, placed, cities)
    tr = _plan_transport(rng, cg, land, lakes, placed, cities)
    m = cg.m
    soil = _unit(_fractal(rng, m, 3.2)).astype(np.float32)
    ind = _fractal(rng, m, 3.0).ravel()
    ind_u = np.empty(ind.size, dtype=np.float32)
    ind_u[np.argsort(ind, kind="stable")] = (np.arange(ind.size) + 0.5) / ind.size
    return _Plan(
        n=n, seed=seed, cs=cs, f=cg.f, halo=_halo(cs), elev=land.elev, hill=land.hill, lake=lakes.lake,
        lake_level=lakes.level, soil=soil, ind=ind_u.reshape(m, m), coast=land.coast, city_map=city_map,
        county_map=county_map, cities=cities, rivers=rv.paths, river_lines=river_lines, river_elev=river_elev,
        river_hw=hw_cells.astype(np.float32), roads=tr.roads, rail=tr.rail, rail_paths=tr.rail_paths,
        stations=np.array(sorted(set(tr.stations)), dtype=np.int64).reshape(-1, 2),
        centres=np.array([c.centre for c in cities], dtype=np.int64), n_distributaries=rv.n_distributaries,
        greenbelt_cities=tuple(c.id for c in cities[:3]),
    )


def _plan_terrain(rng: np.random.Generator, cg: _Coarse) -> _Land:
    """Terrain: a wavy sea coast on the east (bulging at the river mouth), hills in the south-west."""
    n, m, yy, xx = cg.n, cg.m, cg.yy, cg.xx
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
    return _Land(mouth=mouth, coast_frac=coast_frac, coast=coast, sea=sea, hill=hill, elev=elev)


def _plan_rivers(rng: np.random.Generator, cg: _Coarse, land: _Land) -> _Rivers:
    """Rivers: the main river from the hills to the delta apex, its distributaries and tributaries.

    4-6 distributaries fanning out to the coast, up to five tributaries joining the main river.
    """
    n, f, m, xx = cg.n, cg.f, cg.m, cg.xx
    elev, hill, sea, mouth, coast = land.elev, land.hill, land.sea, land.mouth, land.coast
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
    return _Rivers(paths=rivers, half_m=half_m, n_distributaries=nd)


def _carve_rivers(cg: _Coarse, elev: np.ndarray, rv: _Rivers, cs: float) -> tuple[np.ndarray, _Lines, np.ndarray]:
    """Elevation along every river never rises downstream, also where rivers share cells.

    Distributaries stay below the apex. Returns the carved elevation and the half width (cells) per river cell, and the
    cells.
    """
    n, f = cg.n, cg.f
    rivers, half_m, nd = rv.paths, rv.half_m, rv.n_distributaries
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
    return river_elev, river_lines, hw_cells


def _plan_lakes(rng: np.random.Generator, cg: _Coarse, land: _Land, rivers: list[np.ndarray]) -> _Lakes:
    """Lakes: a large one near the delta, a few small ones, each with a flat surface."""
    f, m, yy, xx = cg.f, cg.m, cg.yy, cg.xx
    sea, hill, coast_frac, elev = land.sea, land.hill, land.coast_frac, land.elev
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
    return _Lakes(lake=lake, level=level, coarse_river=coarse_river, d_river=d_river)


def _plan_cities(rng: np.random.Generator, cg: _Coarse, terrain: _Land,
                 lakes: _Lakes) -> tuple[list[tuple[int, int]], list[_CityPlan]]:
    """Cities: rank-size (Zipf) areas, placed on the plain apart from each other, the big ones near the water.

    Returns their coarse cells and plans.
    """
    n, f, m, yy, xx = cg.n, cg.f, cg.m, cg.yy, cg.xx
    sea, hill, coast_frac = terrain.sea, terrain.hill, terrain.coast_frac
    lake, coarse_river, d_river = lakes.lake, lakes.coarse_river, lakes.d_river
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
            raise LanduseError(f"the megaregion layout found no room for city {i + 1} of {k}; try another `seed`")
        w = near_water.ravel()[cand] ** (2.0 if i < 6 else 0.5)
        cy, cx = divmod(int(cand[rng.choice(cand.size, p=w / w.sum())]), m)
        placed.append((cy, cx))
        centre = (min(cy * f + f // 2, n - 1), min(cx * f + f // 2, n - 1))
        growth = 0.28 if i == 0 else float(rng.uniform(0.25, 0.45))
        cities.append(_CityPlan(i + 1, _rank(i), centre, float(radii[i]), growth))
    return placed, cities


def _plan_territories(rng: np.random.Generator, cg: _Coarse, placed: list[tuple[int, int]],
                      cities: list[_CityPlan]) -> tuple[np.ndarray, np.ndarray]:
    """Territories (a weighted Voronoi partition of a warped plane) and counties inside them, on the coarse grid.

    Returns the coarse city and county ids.
    """
    f, m, yy, xx = cg.f, cg.m, cg.yy, cg.xx
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
    return city_map, county_map


def _plan_transport(rng: np.random.Generator, cg: _Coarse, land: _Land, lakes: _Lakes,
                    placed: list[tuple[int, int]], cities: list[_CityPlan]) -> _Transport:
    """Roads, rail corridors and stations.

    Roads: the cities' spanning tree plus nearest-neighbour links, radial streets, ring roads in the five largest;
    rail corridors: the spanning tree of the largest cities.
    """
    n, f = cg.n, cg.f
    hill, sea, lake, coarse_river = land.hill, land.sea, lakes.lake, lakes.coarse_river
    k = len(cities)
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
    return _Transport(roads=roads, rail=rail, rail_paths=rail_paths, stations=stations)
