"""The towns of the sample city cluster: city centres, rail and roads, territories and counties.

Steps 4-6 of :mod:`landuse.sample.region`.

Each step takes the one ``numpy.random.Generator`` of :func:`~landuse.sample.region.build_sample` and draws from it
in the order the steps are called.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from landuse.sample.region_terrain import _Cover, _Grid, _Rivers, _Terrain, _Water
from landuse.sample.shapes import (
    _edt,
    _fractal,
    _mask_from_path,
    _pick,
    _polyline,
    _Router,
    _smooth,
    _spanning_tree,
    _stamp,
)

# Relative radii (fraction of the grid edge) of the seven cities, largest first.
_RADII = (0.110, 0.068, 0.060, 0.042, 0.037, 0.033, 0.030)


@dataclass
class _Centres:
    radii: np.ndarray  # nominal radius (cells) of each city, the core first
    rc: list[tuple[int, int]]  # (row, col) of each centre
    dist: list[np.ndarray]  # distance (cells) of every cell to each centre
    sub_centres: list[tuple[int, int]]  # the core city's two sub-centres
    margin: np.ndarray  # distance (cells) to the region's edge

    @property
    def core_r(self) -> np.float64:
        return self.radii[0]


@dataclass
class _Transport:
    rail_path: np.ndarray  # (k, 2) cells of the rail line in order
    rail: np.ndarray
    stations: np.ndarray
    roads: np.ndarray
    major: np.ndarray  # intercity roads and highways
    d_roads: np.ndarray  # distance (cells) to any road
    d_major: np.ndarray
    d_transport: np.ndarray  # distance (cells) to a major road or the rail line


@dataclass(frozen=True)
class _Warp:
    """Distances in a plane warped by smooth noise."""

    yy: np.ndarray
    xx: np.ndarray
    warp_y: np.ndarray
    warp_x: np.ndarray

    def dist(self, cy: int, cx: int, amp: float) -> np.ndarray:
        """Distance (cells) to ``(cy, cx)`` in the plane warped by ``amp`` times the noise.

        The warp is zero at ``(cy, cx)``.
        """
        yy, xx, warp_y, warp_x = self.yy, self.xx, self.warp_y, self.warp_x
        return np.hypot(yy + amp * (warp_y - warp_y[cy, cx]) - cy, xx + amp * (warp_x - warp_x[cy, cx]) - cx)


@dataclass
class _Territories:
    cities: np.ndarray  # int32 city id of every cell
    counties: np.ndarray  # int32 county id of every cell (unique region-wide)
    warp: _Warp


def _centres(rng: np.random.Generator, g: _Grid, t: _Terrain, rv: _Rivers, w: _Water, cv: _Cover) -> _Centres:
    """Step 4: seven centres on the plain spaced by their sizes, and the core's two sub-centres.

    The core lies near the main river.
    """
    n, yy, xx = g.n, g.yy, g.xx
    hills, hill_index, thr = t.hills, t.hill_index, t.thr
    edge, main_mask, slope, water, wetland, d_water = rv.edge, rv.main_mask, w.slope, w.water, cv.wetland, cv.d_water
    radii = np.array(_RADII) * n * rng.uniform(0.92, 1.08, size=len(_RADII))
    plain = ~hills & (slope < 3.0) & ~water & ~wetland & (d_water > 2)
    margin = _edt(edge)
    centres_rc: list[tuple[int, int]] = []
    d_to_water_main = _edt(main_mask)
    for i, r in enumerate(radii):
        placed = False
        for spacing in (2.3, 2.0, 1.7, 1.4, 1.2, 1.0):
            zone = plain & (margin > max(1.4 * r, 0.05 * n))
            for (cy, cx), rj in zip(centres_rc, radii, strict=False):
                zone &= np.hypot(yy - cy, xx - cx) > spacing * (r + rj)
            if i == 0:
                zone &= (d_to_water_main < 0.08 * n) & (margin > 0.25 * n)
            zone &= hill_index < thr - 0.2 * (1 + i % 2)  # not right at the foot of the hills
            if zone.any():
                flat = _pick(rng, zone)
                centres_rc.append((flat // n, flat % n))
                placed = True
                break
        if not placed:
            zone = plain & (margin > 0.05 * n)
            for (cy, cx), rj in zip(centres_rc, radii, strict=False):
                zone &= np.hypot(yy - cy, xx - cx) > (r + rj)
            flat = _pick(rng, zone)
            centres_rc.append((flat // n, flat % n))
    dist = [np.hypot(yy - cy, xx - cx) for cy, cx in centres_rc]
    core_r = radii[0]
    ang = rng.uniform(0, 2 * np.pi)
    sub_centres = []
    for a in (ang, ang + rng.uniform(2.2, 4.0)):
        sy = int(np.clip(centres_rc[0][0] + 0.55 * core_r * np.sin(a), 0, n - 1))
        sx = int(np.clip(centres_rc[0][1] + 0.55 * core_r * np.cos(a), 0, n - 1))
        sub_centres.append((sy, sx))
    return _Centres(radii=radii, rc=centres_rc, dist=dist, sub_centres=sub_centres, margin=margin)


def _transport(rng: np.random.Generator, g: _Grid, t: _Terrain, rv: _Rivers, w: _Water, cv: _Cover,
               cen: _Centres) -> _Transport:
    """Step 5: the intercity rail line with its stations, then the roads; distances to them."""
    slope, water, wetland, hills = w.slope, w.water, cv.wetland, t.hills
    transport_cost = 1.0 + 4.0 * np.clip(slope, 0, 30) / 5.0 + 30.0 * water + 3.0 * wetland + 4.0 * hills
    rail_path, rail, stations = _rail(g, transport_cost, rv.factor, cen)
    roads, major = _roads(rng, g, transport_cost, rv.factor, cen, water, rail)
    d_roads = _edt(roads)
    d_major = _edt(major)
    d_rail = _edt(rail)
    d_transport = np.minimum(d_major, d_rail)
    return _Transport(rail_path=rail_path, rail=rail, stations=stations, roads=roads, major=major, d_roads=d_roads,
                      d_major=d_major, d_transport=d_transport)


def _rail(g: _Grid, transport_cost: np.ndarray, factor: int,
          cen: _Centres) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rail line along the cluster's main axis, and a station in each city it serves (three in the core).

    The line runs through the core, the medium cities and the towns near the axis, on to the region's edge
    (least-cost, avoiding slopes and water). Draws nothing. Returns the path, its mask and the stations.
    """
    n, shape = g.n, g.shape
    centres_rc, radii, dist, core_r = cen.rc, cen.radii, cen.dist, cen.core_r
    n_city = len(centres_rc)
    rail_router = _Router(transport_cost**1.5, factor)
    cy_arr = np.array([c[0] for c in centres_rc], dtype=float)
    cx_arr = np.array([c[1] for c in centres_rc], dtype=float)
    pts = np.stack([cx_arr - cx_arr.mean(), cy_arr - cy_arr.mean()], axis=1)
    _, _, vt = np.linalg.svd(pts, full_matrices=False)
    axis = vt[0]
    along = pts @ axis
    across = np.abs(pts @ np.array([-axis[1], axis[0]]))
    on_rail = [i for i in range(n_city) if i < 3 or across[i] < 0.15 * n]
    on_rail.sort(key=lambda i: along[i])
    if len(on_rail) <= 8:  # the shortest chain through the served cities (few: try every order)
        from itertools import permutations

        def chain(order: tuple[int, ...]) -> float:
            return float(sum(np.hypot(cy_arr[a] - cy_arr[b], cx_arr[a] - cx_arr[b]) for a, b in itertools.pairwise(order)))

        on_rail = list(min(permutations(on_rail), key=lambda o: (chain(o), o)))
    # extend the line to the region's edge beyond the end cities
    ends = []
    for i, prev in ((on_rail[0], on_rail[1]), (on_rail[-1], on_rail[-2])):
        ey, ex = centres_rc[i]
        dy, dx = cy_arr[i] - cy_arr[prev], cx_arr[i] - cx_arr[prev]
        norm = math.hypot(dx, dy) or 1.0
        dx, dy = dx / norm, dy / norm
        t = min(
            ((n - 1 - ex) / dx if dx > 0 else (-ex / dx if dx < 0 else np.inf)),
            ((n - 1 - ey) / dy if dy > 0 else (-ey / dy if dy < 0 else np.inf)),
        )
        ends.append((int(np.clip(ey + t * dy, 0, n - 1)), int(np.clip(ex + t * dx, 0, n - 1))))
    stops = [ends[0], *[centres_rc[i] for i in on_rail], ends[1]]
    rail_pts: list[np.ndarray] = []
    for a, b in itertools.pairwise(stops):
        seg = rail_router.routes([a], [b])[0]
        full = _smooth(rail_router.to_full(seg), 7)
        full[0], full[-1] = a, b
        rail_pts.append(full if not rail_pts else full[1:])
    rail_path = _polyline(np.concatenate(rail_pts), shape)
    rail = _mask_from_path(rail_path, shape)
    stations = np.zeros(shape, dtype=bool)
    for i in on_rail:
        d_path = dist[i][rail_path[:, 0], rail_path[:, 1]]
        j = int(np.argmin(d_path))
        if d_path[j] <= radii[i]:
            stations[tuple(rail_path[j])] = True
            if i == 0:  # the core city gets two more stations along the line
                for off in (-0.6, 0.6):
                    k = j + int(off * core_r * 1.2)
                    if 0 <= k < len(rail_path) and dist[0][tuple(rail_path[k])] <= core_r:
                        stations[tuple(rail_path[k])] = True
    return rail_path, rail, stations


def _roads(rng: np.random.Generator, g: _Grid, transport_cost: np.ndarray, factor: int, cen: _Centres,
           water: np.ndarray, rail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roads: intercity links, three highways from the core to the edge, radial streets and two ring roads.

    The intercity links: least-cost, along a spanning tree of the cities plus each town's link to its nearest
    neighbour (reusing existing roads is cheap); only the intercity roads bridge water. Returns every road and the major (intercity)
    ones.
    """
    n, shape = g.n, g.shape
    centres_rc, radii, core_r = cen.rc, cen.radii, cen.core_r
    n_city = len(centres_rc)
    cy_arr = np.array([c[0] for c in centres_rc], dtype=float)
    cx_arr = np.array([c[1] for c in centres_rc], dtype=float)
    # roads: spanning tree of the cities + nearest-neighbour links, highways to the edge
    cdist = np.hypot(cy_arr[:, None] - cy_arr[None, :], cx_arr[:, None] - cx_arr[None, :])
    links = set(_spanning_tree(cdist))
    for i in range(n_city):
        j = int(np.argsort(cdist[i])[1])
        links.add((min(i, j), max(i, j)))
    roads = np.zeros(shape, dtype=bool)
    road_router = _Router(transport_cost, factor)
    major = np.zeros(shape, dtype=bool)
    for i, j in sorted(links):
        reuse = np.where(_Router(major.astype(float), factor).cost > 0, 0.35, 1.0)
        seg = road_router.routes([centres_rc[i]], [centres_rc[j]], cost=road_router.cost * reuse)[0]
        major |= _mask_from_path(_polyline(_smooth(road_router.to_full(seg), 3), shape), shape)
    for k in range(3):  # highways from the core to the edge
        if k == 0:
            a = rng.uniform(0, 2 * np.pi)
        else:
            a = a + 2 * np.pi / 3 + rng.uniform(-0.4, 0.4)
        cy, cx = centres_rc[0]
        t = 2 * n
        ey = int(np.clip(cy + t * np.sin(a), 0, n - 1))
        ex = int(np.clip(cx + t * np.cos(a), 0, n - 1))
        reuse = np.where(_Router(major.astype(float), factor).cost > 0, 0.35, 1.0)
        seg = road_router.routes([centres_rc[0]], [(ey, ex)], cost=road_router.cost * reuse)[0]
        major |= _mask_from_path(_polyline(_smooth(road_router.to_full(seg), 3), shape), shape)
    roads |= major
    from skimage.draw import circle_perimeter

    for i, (cy, cx) in enumerate(centres_rc):  # radial streets
        n_rad = 8 if i == 0 else 6 if i < 3 else 4
        a0 = rng.uniform(0, 2 * np.pi)
        for k in range(n_rad):
            a = a0 + 2 * np.pi * k / n_rad + rng.uniform(-0.2, 0.2)
            ln = radii[i] * rng.uniform(0.9, 1.25)
            p1 = (cy + ln * np.sin(a), cx + ln * np.cos(a))
            seg = _polyline(np.array([[cy, cx], [round(p1[0]), round(p1[1])]]), shape)
            roads[seg[:, 0], seg[:, 1]] = True
    for frac in (0.45, 0.85):  # ring roads of the core
        rr, cc = circle_perimeter(centres_rc[0][0], centres_rc[0][1], round(frac * core_r), shape=shape)
        roads[rr, cc] = True
    roads &= ~(water & ~major & ~rail)  # only intercity roads bridge water
    return roads, major


def _territories(rng: np.random.Generator, g: _Grid, cen: _Centres) -> _Territories:
    """Step 6: ``cities``, a weighted Voronoi partition of a noise-warped plane, and ``counties``.

    The partition's weight is ``radius**0.6``; ``counties`` splits each territory among 1-4 seed points.
    """
    n, shape, yy, xx = g.n, g.shape, g.yy, g.xx
    centres_rc, radii = cen.rc, cen.radii
    n_city = len(centres_rc)
    warp_y = _fractal(rng, n, 4.0)
    warp_x = _fractal(rng, n, 4.0)
    warp = _Warp(yy, xx, warp_y, warp_x)
    warped_dist = warp.dist

    weights = radii**0.6
    wd = np.stack([warped_dist(cy, cx, 0.04 * n) / w for (cy, cx), w in zip(centres_rc, weights, strict=False)])
    cities = (np.argmin(wd, axis=0) + 1).astype(np.int32)
    for i, (cy, cx) in enumerate(centres_rc):  # the centre always lies in its own territory
        cities[_stamp(shape, (cy, cx), 0.3 * radii[i])] = i + 1
    counties = np.zeros(shape, dtype=np.int32)
    next_id = 1
    for i in range(n_city):
        terr = cities == i + 1
        k = 4 if i == 0 else 3 if i < 3 else 2
        seeds = [centres_rc[i]]
        for _ in range(k - 1):
            zone = terr & (np.min([np.hypot(yy - sy, xx - sx) for sy, sx in seeds], axis=0) > 1.3 * radii[i])
            if not zone.any():
                break
            flat = _pick(rng, zone)
            seeds.append((flat // n, flat % n))
        sd = np.stack([warped_dist(sy, sx, 0.04 * n) for sy, sx in seeds])
        nearest = np.argmin(sd, axis=0)
        for s in range(len(seeds)):
            cell = terr & (nearest == s)
            if cell.any():
                counties[cell] = next_id
                next_id += 1
    return _Territories(cities=cities, counties=counties, warp=warp)
