"""The land of the sample city cluster: terrain, rivers, lakes, carving and natural cover.

Steps 1-3 of :mod:`landuse.sample.region`.

Each step takes the one ``numpy.random.Generator`` of :func:`~landuse.sample.region.build_sample` and draws from it
in the order the steps are called; the arrays it returns feed the later steps (cities, transport, land use).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from landuse.sample.shapes import (
    _dilate,
    _edt,
    _fractal,
    _mask_from_path,
    _pick,
    _polyline,
    _Router,
    _stamp,
    _wiggle,
)


@dataclass(frozen=True)
class _Grid:
    """The cluster's grid: ``n x n`` cells of ``cs`` metres, with the row and column of every cell."""

    n: int
    cs: float
    yy: np.ndarray  # float32 row of every cell
    xx: np.ndarray  # float32 column of every cell

    @classmethod
    def of(cls, n: int, cs: float) -> _Grid:
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
        return cls(n, cs, yy, xx)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def metres(self, m: float) -> float:
        """``m`` metres in cells."""
        return m / self.cs


@dataclass
class _Terrain:
    u: np.ndarray  # position along the regional trend, about -1 (plain) .. 1 (hills)
    hill_index: np.ndarray
    thr: float  # hill_index above which the hills start
    hill: np.ndarray  # 0..1
    hills: np.ndarray  # bool: hill > 0.25
    elev: np.ndarray  # float64 metres; lakes and rivers carve it later


@dataclass
class _Rivers:
    factor: int  # fine cells per cell of the coarse routing grid
    edge: np.ndarray  # bool: the region's border cells
    paths: list[np.ndarray]  # main river first, then tributaries, each (k, 2) from source to mouth / junction
    main_mask: np.ndarray  # bool: the main river's cells


@dataclass
class _Water:
    lake: np.ndarray
    water: np.ndarray
    elevation: np.ndarray  # int16 metres, never rising downstream along a river
    slope: np.ndarray  # float32 degrees rounded to 0.1


@dataclass
class _Cover:
    forest: np.ndarray
    grass: np.ndarray
    wetland: np.ndarray
    bare: np.ndarray
    d_water: np.ndarray  # distance (cells) to water


def _terrain(rng: np.random.Generator, g: _Grid) -> _Terrain:
    """Step 1: a smooth regional trend plus fractal fields: hills on one side, a gently rising plain."""
    n, yy, xx = g.n, g.yy, g.xx
    theta = rng.uniform(0, 2 * np.pi)
    u = (((xx - n / 2) * np.cos(theta) + (yy - n / 2) * np.sin(theta)) / (n / 2)).astype(np.float32)
    low = _fractal(rng, n, 4.0)
    rough = _fractal(rng, n, 3.2)
    micro = _fractal(rng, n, 3.0)
    hill_index = 0.9 * u + 0.8 * low
    thr = float(np.quantile(hill_index, 0.75))
    hill = np.clip((hill_index - thr) / 0.6, 0.0, 1.0) ** 0.8
    rough01 = (rough - rough.min()) / max(float(np.ptp(rough)), 1e-9)
    elev = 4.0 + 12.0 * (u + 1.5) + 1.2 * micro + hill * (40.0 + 750.0 * rough01**1.4)
    elev = elev.astype(np.float64)
    hills = hill > 0.25
    return _Terrain(u=u, hill_index=hill_index, thr=thr, hill=hill, hills=hills, elev=elev)


def _rivers(rng: np.random.Generator, g: _Grid, t: _Terrain) -> _Rivers:
    """Step 2a: the main river (a hill source to the lowest stretch of the edge) and tributaries joining it.

    Least-cost paths on a coarse grid, meandered by smooth noise.
    """
    n, shape, u, elev, hills = g.n, g.shape, t.u, t.elev, t.hills
    factor = max(1, n // 250)
    river_noise = _fractal(rng, n, 3.5)
    river_cost = 1.0 + (elev - elev.min()) / 8.0 + 2.0 * np.clip(river_noise + 1.0, 0, None)
    router = _Router(river_cost, factor)
    coarse_elev = _Router(elev, factor).cost
    high = (coarse_elev >= np.quantile(coarse_elev, 0.9)).ravel()
    nc = coarse_elev.shape[0]
    src_flat = _pick(rng, high.reshape(nc, nc))
    source = (src_flat // nc * factor + factor // 2, src_flat % nc * factor + factor // 2)
    edge = np.zeros(shape, dtype=bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    edge_u = np.where(edge, u, np.inf)
    lowest_edge = edge & (edge_u <= np.quantile(u[edge], 0.03))
    mouth_flat = _pick(rng, lowest_edge)
    mouth = (mouth_flat // n, mouth_flat % n)
    meander_y = _fractal(rng, n, 3.6)
    meander_x = _fractal(rng, n, 3.6)
    amp = 0.012 * n
    step = max(3, n // 160)
    main_coarse = router.routes([mouth], [source])[0][::-1]  # source -> mouth
    main = _polyline(router.to_full(main_coarse), shape)
    main = _wiggle(main, meander_y, meander_x, amp=amp, step=step, pin_end=True)
    main = _polyline(np.vstack([main, [mouth]]), shape)
    rivers_paths: list[np.ndarray] = [main]
    main_mask = _mask_from_path(main, shape)

    # tributaries: sources in the hills and on the far plain, spaced apart
    n_trib = 5
    trib_sources: list[tuple[int, int]] = []
    taken = np.zeros(shape, dtype=bool)
    taken[source] = True
    away_from_main = _edt(main_mask) > 0.12 * n
    for k in range(n_trib):
        far = _edt(taken) > 0.22 * n
        zone = (hills if k < 3 else ~hills) & far & away_from_main & ~edge
        if not zone.any():
            zone = far & ~edge
        if not zone.any():
            continue
        flat = _pick(rng, zone)
        trib_sources.append((flat // n, flat % n))
        taken[flat // n, flat % n] = True
    main_cells = sorted({router.to_coarse(tuple(p)) for p in main})
    mcp_starts = [(r * factor + factor // 2, c * factor + factor // 2) for r, c in main_cells]
    _, (mr, mc) = ndimage.distance_transform_edt(~main_mask, return_indices=True)
    for path in router.routes(mcp_starts, trib_sources):
        path = path[::-1]  # source -> junction
        if len(path) < 3:
            continue
        trib = _wiggle(_polyline(router.to_full(path), shape), meander_y, meander_x, amp=amp, step=step, pin_end=False)
        end = trib[-1]
        join = (int(mr[end[0], end[1]]), int(mc[end[0], end[1]]))
        trib = _polyline(np.vstack([trib, [join]]), shape)
        hit = np.flatnonzero(main_mask[trib[:, 0], trib[:, 1]])
        rivers_paths.append(trib[: hit[0] + 1])  # stop where it first meets the main river
    return _Rivers(factor=factor, edge=edge, paths=rivers_paths, main_mask=main_mask)


def _lakes(rng: np.random.Generator, g: _Grid, t: _Terrain, rv: _Rivers) -> np.ndarray:
    """Step 2b: lakes with a flat surface (written into ``t.elev``).

    A large one on the main river, one on a tributary, two in the plain, a reservoir in the hills. Returns the lake
    mask.
    """
    n, shape, yy, xx = g.n, g.shape, g.yy, g.xx
    hills, hill, u, elev = t.hills, t.hill, t.u, t.elev
    rivers_paths, edge, main_mask = rv.paths, rv.edge, rv.main_mask
    lake = np.zeros(shape, dtype=bool)
    lake_noise = _fractal(rng, n, 3.0)
    specs = [("main", 0.040, 0.055), ("trib", 0.015, 0.025), ("plain", 0.018, 0.030), ("plain", 0.015, 0.025)]
    specs.append(("hills", 0.012, 0.020))
    for kind, rlo, rhi in specs:
        rad = n * rng.uniform(rlo, rhi)
        if kind in ("main", "trib") and (kind == "main" or len(rivers_paths) > 1):
            path = rivers_paths[0] if kind == "main" else rivers_paths[1 + int(rng.integers(len(rivers_paths) - 1))]
            lo, hi = (0.55, 0.85) if kind == "main" else (0.3, 0.7)
            at = path[int(rng.uniform(lo, hi) * (len(path) - 1))]
            cy, cx = int(at[0]), int(at[1])
        else:
            zone = (hills & (hill < 0.7)) if kind == "hills" else (~hills & (np.abs(u) < 0.9))
            zone &= (_edt(lake) > rad + 0.06 * n) & (_edt(edge) > rad + 0.03 * n) & ~main_mask
            if not zone.any():
                continue
            flat = _pick(rng, zone)
            cy, cx = flat // n, flat % n
        d = np.hypot(yy - cy, xx - cx) / rad
        blob = (d + 0.3 * lake_noise) < 1.0
        lbl, _ = ndimage.label(blob)
        keep = lbl[cy, cx]
        blob = lbl == keep if keep else (d < 0.6)
        elev[blob] = float(elev[blob].min())
        lake |= blob
    return lake


def _carve(g: _Grid, t: _Terrain, rv: _Rivers, lake: np.ndarray) -> _Water:
    """Step 2c: carve the elevation so it never rises downstream along a river, and widen the main river.

    Then store elevation (int16) and slope.
    """
    shape, cs, metres = g.shape, g.cs, g.metres
    elev, rivers_paths, main_mask = t.elev, rv.paths, rv.main_mask
    # carve: elevation never rises downstream along any river (iterate: paths share cells)
    for _ in range(50):
        changed = False
        for path in rivers_paths:
            r, c = path[:, 0], path[:, 1]
            vals = elev[r, c]
            carved = np.minimum.accumulate(vals)
            if np.any(carved < vals):
                elev[r, c] = carved
                changed = True
        if not changed:
            break
    river_line = np.zeros(shape, dtype=bool)
    for path in rivers_paths:
        river_line[path[:, 0], path[:, 1]] = True
    wide = _dilate(main_mask, max(metres(150.0), 0.75)) & ~river_line
    if wide.any():
        _, (ir, ic) = ndimage.distance_transform_edt(~river_line, return_indices=True)
        elev[wide] = np.minimum(elev[wide], elev[ir[wide], ic[wide]])
    water = river_line | wide | lake
    elevation = np.round(elev).astype(np.int16)
    for path in rivers_paths:  # rounding is monotone, but re-check the stored values
        r, c = path[:, 0], path[:, 1]
        elevation[r, c] = np.minimum.accumulate(elevation[r, c])
    gy, gx = np.gradient(elevation.astype(np.float64), cs)
    slope = np.round(np.degrees(np.arctan(np.hypot(gx, gy))), 1).astype(np.float32)
    return _Water(lake=lake, water=water, elevation=elevation, slope=slope)


def _cover(rng: np.random.Generator, g: _Grid, t: _Terrain, w: _Water) -> _Cover:
    """Step 3: natural cover.

    Forest on the hills (woodlots in the plain), grassland on hill fringes and tops, wetlands on low flat ground near
    water, quarries and bare tops.
    """
    n, shape, cs, metres = g.n, g.shape, g.cs, g.metres
    hill, hills = t.hill, t.hills
    lake, water, elevation, slope = w.lake, w.water, w.elevation, w.slope
    cover_noise = _fractal(rng, n, 2.6)
    grass_noise = _fractal(rng, n, 3.0)
    wet_noise = _fractal(rng, n, 2.8)
    forest = ((hill + 0.18 * cover_noise) > 0.32) | ((cover_noise > 2.1) & ~hills)
    tops = elevation >= np.quantile(elevation[hills], 0.97) if hills.any() else np.zeros(shape, bool)
    grass = (((hill + 0.18 * cover_noise) > 0.18) & ~forest) | (tops & (grass_noise > 0.3))
    grass |= (grass_noise > 2.3) & ~hills
    forest &= ~grass
    d_water = _edt(water)
    _, (wr, wc) = ndimage.distance_transform_edt(~water, return_indices=True)
    above_water = elevation.astype(np.float32) - elevation[wr, wc].astype(np.float32)
    wetland = (
        (d_water <= metres(300.0)) & (above_water <= 3.0) & (slope < 2.0) & (wet_noise > 0.7) & ~water
    )
    wetland |= _dilate(lake, metres(240.0)) & ~water & (slope < 3.0) & (wet_noise > -0.3)
    forest &= ~wetland
    grass &= ~wetland
    bare = np.zeros(shape, dtype=bool)
    quarry_zone = hills & (hill < 0.6) & ~water
    for _ in range(max(2, round(n * n * cs * cs / 1e6 / 600))):  # one quarry per ~600 km2
        if not quarry_zone.any():
            break
        flat = _pick(rng, quarry_zone)
        r = metres(rng.uniform(150, 350))
        bare |= _stamp(shape, (flat // n, flat % n), r) & ~water
    bare |= tops & (grass_noise > 1.2) & ~water
    return _Cover(forest=forest, grass=grass, wetland=wetland, bare=bare, d_water=d_water)
