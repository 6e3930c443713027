"""One tile of the megaregion (step 2 of :mod:`landuse.sample.mega`): every layer on a window of the grid.

A tile is computed on its window grown by the plan's halo (longer than every chain of buffers and distance
transforms), from the coarse plan (:mod:`landuse.sample.mega_plan`) and counter-based value noise
(:mod:`landuse.sample.mega_noise`), then cropped; so a cell gets the same values whatever tile it falls in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from landuse.core.classes import ClassScheme
from landuse.sample.mega_noise import _fbm, _key, _lattice_blobs, _upsample, _upsample_nearest, _value_noise
from landuse.sample.mega_plan import _Plan

# noise purposes (each its own counter-based stream)
(_P_MICRO, _P_ROUGH, _P_HILL, _P_COAST, _P_LAKE, _P_WARPY, _P_WARPX, _P_URBAN, _P_WOOD, _P_GRASS, _P_WET,
 _P_IND, _P_COM, _P_SOIL, _P_VIL, _P_PATCH, _P_BARE, _P_URB2) = range(18)

_DISK2 = np.array([[0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=bool)


def _edt(mask: np.ndarray, **kw):
    """Distance (cells, float64) from every cell to the nearest True cell of ``mask`` (scipy's keywords)."""
    return ndimage.distance_transform_edt(~mask, **kw)


@dataclass(frozen=True)
class _Window:
    """A tile's window grown by the halo: ``ew = (r0, r1, c0, c1)`` in global cells."""

    plan: _Plan
    ew: tuple[int, int, int, int]
    shape: tuple[int, int]
    rows: np.ndarray  # float32 (k, 1) global row of every cell
    cols: np.ndarray  # float32 (1, k) global column

    @classmethod
    def around(cls, plan: _Plan, win: tuple[int, int, int, int]) -> _Window:
        n, h = plan.n, plan.halo
        r0, r1, c0, c1 = win
        ew = (max(r0 - h, 0), min(r1 + h, n), max(c0 - h, 0), min(c1 + h, n))
        shape = (ew[1] - ew[0], ew[3] - ew[2])
        rows = np.arange(ew[0], ew[1], dtype=np.float32)[:, None]
        cols = np.arange(ew[2], ew[3], dtype=np.float32)[None, :]
        return cls(plan, ew, shape, rows, cols)


@dataclass
class _TileLand:
    hill: np.ndarray
    sea: np.ndarray
    water: np.ndarray
    elev_i16: np.ndarray
    slope: np.ndarray
    forest: np.ndarray
    grass: np.ndarray
    bare: np.ndarray
    dw: np.ndarray  # distance (cells) to water
    wet: np.ndarray


@dataclass
class _TileCities:
    s: np.ndarray  # distance to the nearest centre relative to that city's radius
    thr: np.ndarray  # that city's 2020 threshold on the score
    rings: list[tuple[int, np.ndarray, float]]  # greenbelt cities: id, warped relative distance, threshold
    score: np.ndarray
    buildable: np.ndarray
    urban10: np.ndarray
    indf: np.ndarray  # industrial-park field
    com: np.ndarray  # commercial noise
    spacing: int  # village lattice (cells)
    lu10: np.ndarray


def _tile(plan: _Plan, win: tuple[int, int, int, int], scheme: ClassScheme) -> dict[str, np.ndarray]:
    """Every layer on the cells of ``win`` (``(r0, r1, c0, c1)``), computed on ``win`` plus the halo."""
    w = _Window.around(plan, win)
    ew, shape = w.ew, w.shape
    r0, r1, c0, c1 = win
    codes = {c.name: c.code for c in scheme}
    code = codes.__getitem__
    land = _tile_land(w)
    tc = _tile_cities(w, land, code)
    red, pf = _tile_policy(w, land, tc, code)
    urban20, lu20 = _tile_growth(w, land, tc, red, pf, code)
    cities, counties, greenbelt = _tile_territories(w, land, tc.rings, urban20)

    out = {
        "landuse_2010": tc.lu10, "landuse_2020": lu20, "cities": cities, "counties": counties,
        "elevation": land.elev_i16, "slope": land.slope, "red_line": red, "permanent_farmland": pf,
        "greenbelt": greenbelt,
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


def _tile_land(w: _Window) -> _TileLand:
    """Terrain and water (hills, sea, lakes, rivers at their carved level), slope, natural cover."""
    plan, ew, shape, cols = w.plan, w.ew, w.shape, w.cols
    f, cs, seed = plan.f, plan.cs, plan.seed
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
    return _TileLand(hill=hill, sea=sea, water=water, elev_i16=elev_i16, slope=slope, forest=forest, grass=grass,
                     bare=bare, dw=dw, wet=wet)


def _tile_cities(w: _Window, land: _TileLand, code) -> _TileCities:
    """Built-up land 2010 and land use 2010.

    Built-up land: each cell scored by its nearest city (distance relative to the radius, warped, plus noise),
    villages on a lattice, commercial centres and industrial parks.
    """
    plan, ew, shape, rows, cols = w.plan, w.ew, w.shape, w.rows, w.cols
    cs, seed = plan.cs, plan.seed
    hill, water, wet, slope = land.hill, land.water, land.wet, land.slope
    forest, grass, bare = land.forest, land.grass, land.bare
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
    indf = _upsample(plan.ind, plan.f, ew) + 0.15 * _fbm(seed, _P_IND, ew, 16.0)
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
    return _TileCities(s=s, thr=thr, rings=rings, score=score, buildable=buildable, urban10=urban10, indf=indf,
                       com=com, spacing=spacing, lu10=lu10)


def _tile_policy(w: _Window, land: _TileLand, tc: _TileCities, code) -> tuple[np.ndarray, np.ndarray]:
    """Policy masks from 2010: the red line and permanent farmland.

    The red line: water, wetlands, water buffer, lake shores, forest cores. Permanent farmland: good, flat farmland
    away from built-up land and the cities.
    """
    plan, ew, shape = w.plan, w.ew, w.shape
    f, cs, seed = plan.f, plan.cs, plan.seed
    wet, water, dw, sea, slope = land.wet, land.water, land.dw, land.sea, land.slope
    lu10, urban10, s = tc.lu10, tc.urban10, tc.s
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
    return red, pf


def _tile_growth(w: _Window, land: _TileLand, tc: _TileCities, red: np.ndarray, pf: np.ndarray,
                 code) -> tuple[np.ndarray, np.ndarray]:
    """Growth to 2020: each city's threshold rises to ``sqrt(1 + rate)``, plus leapfrog patches.

    Never on protected, water or steep cells. Returns built-up land and land use 2020.
    """
    ew, cs, seed = w.ew, w.plan.cs, w.plan.seed
    slope = land.slope
    buildable, spacing, s, score, thr, urban10 = tc.buildable, tc.spacing, tc.s, tc.score, tc.thr, tc.urban10
    lu10, indf, com = tc.lu10, tc.indf, tc.com
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
    return urban20, lu20


def _tile_territories(w: _Window, land: _TileLand, rings: list[tuple[int, np.ndarray, float]],
                      urban20: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Territories (the coarse maps sampled at warped positions) and the greenbelt rings.

    Returns city ids, county ids and the greenbelt.
    """
    plan, ew, shape, rows, cols = w.plan, w.ew, w.shape, w.rows, w.cols
    f, seed = plan.f, plan.seed
    water = land.water
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
    return cities, counties, greenbelt
