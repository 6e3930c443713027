"""Land use of the sample city cluster: 2010, the policy masks drawn from it, growth to 2020 and the greenbelt.

Steps 7-10 of :mod:`landuse.sample.region`.

Each step takes the one ``numpy.random.Generator`` of :func:`~landuse.sample.region.build_sample` and draws from it
in the order the steps are called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from landuse.core.classes import URBAN_TYPES, ClassScheme
from landuse.sample.region_terrain import _Cover, _Grid, _Terrain, _Water
from landuse.sample.region_towns import _Centres, _Territories, _Transport
from landuse.sample.shapes import (
    _dilate,
    _disk,
    _edt,
    _fractal,
    _lowest,
    _pick,
    _remove_small,
    _stamp,
    _weighted_top,
)

_URBAN_FILL = 0.85
_COMMERCIAL_SHARE_2010 = 0.10
_INDUSTRIAL_SHARE_2010 = 0.22
_NEW_SHARES = {"commercial": 0.15, "industrial": 0.25}  # residential takes the rest
_MAX_GROWTH_SLOPE = 12.0
_MIN_OPEN_SHARE = 0.22  # open space kept in every territory in 2010 (riparian corridors where short)


@dataclass(frozen=True)
class _Codes:
    """Class codes of the scheme the cluster is drawn in."""

    res: int
    ind: int
    com: int
    forest: int
    grass: int
    wet: int
    farm: int
    water: int
    bare: int
    open_vals: np.ndarray  # uint8 codes of every open-space class, sorted

    @classmethod
    def of(cls, scheme: ClassScheme) -> _Codes:
        code = {role: scheme.codes_with_role(role) for role in ("farmland", "water", "other")}
        res_c, ind_c, com_c = (scheme.code_of(t) for t in URBAN_TYPES)
        open_codes = {c.name: c.code for c in scheme if c.role == "open_space"}
        forest_c = open_codes.get("forest", scheme.codes_with_role("open_space")[0])
        grass_c = open_codes.get("grassland", forest_c)
        wet_c = open_codes.get("wetland", forest_c)
        farm_c, water_c, bare_c = code["farmland"][0], code["water"][0], code["other"][0]
        open_vals = np.array(sorted(open_codes.values()), dtype=np.uint8)
        return cls(res=res_c, ind=ind_c, com=com_c, forest=forest_c, grass=grass_c, wet=wet_c, farm=farm_c,
                   water=water_c, bare=bare_c, open_vals=open_vals)


@dataclass
class _Landuse2010:
    lu: np.ndarray  # uint8 land use 2010
    urban10: np.ndarray  # built-up land 2010 (cities and villages)
    city_reach: np.ndarray  # distance to the nearest centre in radii of that city
    com_noise: np.ndarray  # the fields that type the built-up land, again in 2020
    park_noise: np.ndarray


def _landuse_2010(rng: np.random.Generator, g: _Grid, t: _Terrain, w: _Water, cv: _Cover, cen: _Centres,
                  tr: _Transport, ter: _Territories, k: _Codes) -> _Landuse2010:
    """Step 7: each city's built-up land and its types, villages, natural cover, riparian open space."""
    n = g.n
    shape_noise = _fractal(rng, n, 2.8)
    com_noise = _fractal(rng, n, 3.0)
    park_noise = _fractal(rng, n, 3.6)
    lu, urban10 = _built_up_2010(g, t, w, cv, cen, tr, ter, k, shape_noise, com_noise, park_noise)
    city_reach = _villages(rng, g, t, w, cv, cen, tr, k, lu, urban10)
    _natural_2010(w, cv, ter, k, lu, urban10, len(cen.rc))
    return _Landuse2010(lu=lu, urban10=urban10, city_reach=city_reach, com_noise=com_noise, park_noise=park_noise)


def _built_up_2010(g: _Grid, t: _Terrain, w: _Water, cv: _Cover, cen: _Centres, tr: _Transport, ter: _Territories,
                   k: _Codes, shape_noise: np.ndarray, com_noise: np.ndarray,
                   park_noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each city's built-up land: the lowest-scoring buildable cells of its territory.

    Commercial the most central, industrial towards the edges and transport, residential the rest. Returns land use
    and the built-up mask.
    """
    shape, yy, xx, metres = g.shape, g.yy, g.xx, g.metres
    water, wetland, slope, hill = w.water, cv.wetland, w.slope, t.hill
    centres_rc, radii, dist, sub_centres = cen.rc, cen.radii, cen.dist, cen.sub_centres
    d_major, d_transport, cities, warped_dist = tr.d_major, tr.d_transport, ter.cities, ter.warp.dist
    res_c, ind_c, com_c, farm_c = k.res, k.ind, k.com, k.farm
    buildable = ~water & ~wetland & (slope < 8.0) & (hill < 0.5)
    urban10 = np.zeros(shape, dtype=bool)
    lu = np.full(shape, farm_c, dtype=np.uint8)
    for i, (cy, cx) in enumerate(centres_rc):
        r = radii[i]
        terr = cities == i + 1
        rel_w = warped_dist(cy, cx, 0.35 * r) / r
        score = rel_w - 0.35 * np.exp(-d_major / (0.12 * r)) + 0.22 * shape_noise
        idx = np.flatnonzero((terr & buildable).ravel())
        chosen = _lowest(score, idx, round(_URBAN_FILL * np.pi * r * r))
        urban10.ravel()[chosen] = True
        rel = dist[i].ravel()[chosen] / r
        centre_d = rel
        if i == 0:
            for sy, sx in sub_centres:
                centre_d = np.minimum(centre_d, 1.6 * np.hypot(yy - sy, xx - sx).ravel()[chosen] / r)
        com_score = centre_d + 0.12 * com_noise.ravel()[chosen]
        k_com = round(_COMMERCIAL_SHARE_2010 * chosen.size)
        order = np.argsort(com_score, kind="stable")
        com_idx = chosen[order[:k_com]]
        rest = chosen[order[k_com:]]
        tp = np.exp(-d_transport.ravel()[rest] / metres(400.0))
        ind_score = 0.9 * dist[i].ravel()[rest] / r + 0.9 * tp + 0.5 * park_noise.ravel()[rest]
        k_ind = round(_INDUSTRIAL_SHARE_2010 * chosen.size)
        order = np.argsort(-ind_score, kind="stable")
        lu.ravel()[chosen] = res_c
        lu.ravel()[com_idx] = com_c
        lu.ravel()[rest[order[:k_ind]]] = ind_c
    return lu, urban10


def _villages(rng: np.random.Generator, g: _Grid, t: _Terrain, w: _Water, cv: _Cover, cen: _Centres,
              tr: _Transport, k: _Codes, lu: np.ndarray, urban10: np.ndarray) -> np.ndarray:
    """Villages (small residential blobs, about one per 12 km2, near roads) on the plain away from the cities.

    Written into ``lu`` and ``urban10``. Returns the distance to the nearest centre in radii of that city.
    """
    n, shape, cs, metres = g.n, g.shape, g.cs, g.metres
    hills, water, wetland, forest, slope = t.hills, w.water, cv.wetland, cv.forest, w.slope
    dist, radii, margin, d_roads = cen.dist, cen.radii, cen.margin, tr.d_roads
    res_c = k.res
    city_reach = np.min([d / r for d, r in zip(dist, radii, strict=False)], axis=0)
    village_zone = ~hills & ~water & ~wetland & ~forest & (slope < 4) & (city_reach > 1.3) & (margin > 2)
    n_villages = max(3, round(n * n * cs * cs / 1e6 / 12.0))
    villages = np.zeros(shape, dtype=bool)
    for _ in range(n_villages):
        if not village_zone.any():
            break
        flat = _pick(rng, village_zone, np.exp(-d_roads / metres(1500.0)))
        r = max(metres(rng.uniform(70, 190)), 0.8)
        v = _stamp(shape, (flat // n, flat % n), r) & village_zone
        villages |= v
        village_zone &= ~_stamp(shape, (flat // n, flat % n), r + metres(600))
    lu[villages & ~urban10] = res_c
    urban10 |= villages
    return city_reach


def _natural_2010(w: _Water, cv: _Cover, ter: _Territories, k: _Codes, lu: np.ndarray, urban10: np.ndarray,
                  n_city: int) -> None:
    """Natural cover and water outside built-up land, then riparian open space, written into ``lu``."""
    forest, grass, bare, wetland, water, cities = cv.forest, cv.grass, cv.bare, cv.wetland, w.water, ter.cities
    forest_c, grass_c, bare_c, wet_c, water_c, farm_c = k.forest, k.grass, k.bare, k.wet, k.water, k.farm
    natural = ~urban10
    lu[natural & forest] = forest_c
    lu[natural & grass] = grass_c
    lu[natural & bare] = bare_c
    lu[natural & wetland] = wet_c
    lu[water] = water_c
    # riparian green corridors: every territory keeps at least _MIN_OPEN_SHARE of its land as
    # open space, taking the farmland nearest to water first (river and lake-side parks)
    d_water = _edt(water)
    open_vals = k.open_vals
    for i in range(n_city):
        terr = cities == i + 1
        land = int((terr & (lu != water_c)).sum())
        need = math.ceil(_MIN_OPEN_SHARE * land) - int((terr & np.isin(lu, open_vals)).sum())
        if need > 0:
            cand = np.flatnonzero((terr & (lu == farm_c) & ~urban10).ravel())
            order = np.argsort(d_water.ravel()[cand], kind="stable")
            lu.ravel()[cand[order[:need]]] = grass_c


def _red_line(g: _Grid, w: _Water, lu2010: np.ndarray, urban10: np.ndarray, k: _Codes) -> np.ndarray:
    """Step 8a: the ecological red line, without built-up land.

    Forest cores, wetlands, water with river and lake buffers.
    """
    cs, metres = g.cs, g.metres
    lake, water = w.lake, w.water
    is_forest = lu2010 == k.forest
    core = _edt(~is_forest) >= metres(150.0)
    forest_core = _dilate(core, metres(120.0)) & is_forest
    forest_core = _remove_small(forest_core, 20.0 / (cs * cs / 1e4))
    lake_buffer = _dilate(lake, metres(300.0))
    river_buffer = _dilate(water & ~lake, metres(120.0))
    return (forest_core | (lu2010 == k.wet) | water | lake_buffer | river_buffer) & ~urban10


def _permanent_farmland(rng: np.random.Generator, g: _Grid, w: _Water, lu2010: np.ndarray, urban10: np.ndarray,
                        city_reach: np.ndarray, red_line: np.ndarray, k: _Codes) -> tuple[np.ndarray, np.ndarray]:
    """Step 8b: large contiguous patches of good, flat 2010 farmland away from built-up land and the cities.

    Returns the mask and the distance (cells) to 2010 built-up land.
    """
    n, cs, metres, slope = g.n, g.cs, g.metres, w.slope
    soil = _fractal(rng, n, 3.8)
    d_urban10 = _edt(urban10)
    farm10 = lu2010 == k.farm
    good = farm10 & (soil > -0.2) & (slope < 2.0) & (d_urban10 >= metres(300.0)) & (city_reach > 1.4)
    good &= ~red_line
    good = ndimage.binary_opening(good, structure=_disk(2))
    permanent = _remove_small(good, 70.0 / (cs * cs / 1e4)) & farm10
    return permanent, d_urban10


def _growth(rng: np.random.Generator, g: _Grid, w: _Water, cen: _Centres, tr: _Transport, ter: _Territories,
            urban10: np.ndarray, d_urban10: np.ndarray, red_line: np.ndarray,
            permanent: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Step 9a: each city grows by a drawn rate, about 10 % as leapfrog patches near roads, the rest at the edges.

    The edges grow in eight rounds of weighted draws; never on protected, water or steep cells. Returns the new
    built-up land and each city's territory.
    """
    n, shape, metres = g.n, g.shape, g.metres
    water, slope, dist, radii, d_roads, cities = w.water, w.slope, cen.dist, cen.radii, tr.d_roads, ter.cities
    n_city = len(cen.rc)
    allowed = ~urban10 & ~water & ~red_line & ~permanent & (slope < _MAX_GROWTH_SLOPE)
    growth_noise = _fractal(rng, n, 3.0)
    rates = np.concatenate([[0.28], rng.uniform(0.25, 0.45, size=n_city - 1)])
    new = np.zeros(shape, dtype=bool)
    remaining = np.zeros(n_city, dtype=np.int64)
    terr_of = [cities == i + 1 for i in range(n_city)]
    centre_prox = np.zeros(shape, dtype=np.float32)
    for i in range(n_city):
        centre_prox = np.where(terr_of[i], np.exp(-dist[i] / radii[i]), centre_prox)
    weight = (0.2 + np.exp(-d_roads / metres(400.0)) + centre_prox) * np.exp(1.2 * growth_noise)
    d_urban = d_urban10
    for i in range(n_city):
        u10 = int((urban10 & terr_of[i]).sum())
        target = round(rates[i] * u10)
        # leapfrog patches: about 10 % of the target
        zone = allowed & terr_of[i] & (d_urban >= metres(250.0)) & (d_urban <= metres(1200.0))
        zone &= d_roads <= metres(180.0)
        patch_goal = int(0.1 * target)
        got = 0
        tries = 0
        while got < patch_goal and zone.any() and tries < 50:
            tries += 1
            flat = _pick(rng, zone)
            blob = _stamp(shape, (flat // n, flat % n), max(metres(rng.uniform(120, 220)), 1.0)) & allowed & ~new
            new |= blob
            got += int(blob.sum())
            zone &= ~_stamp(shape, (flat // n, flat % n), metres(600.0))
        remaining[i] = max(target - got, 0)
    rounds = 8
    ring_struct = np.ones((3, 3), dtype=bool)
    for rnd in range(rounds):
        ring = ndimage.binary_dilation(urban10 | new, structure=ring_struct) & allowed & ~new
        for i in range(n_city):
            if remaining[i] <= 0:
                continue
            quota = math.ceil(remaining[i] / (rounds - rnd))
            idx = np.flatnonzero((ring & terr_of[i]).ravel())
            chosen = _weighted_top(rng, idx, weight.ravel()[idx], quota)
            new.ravel()[chosen] = True
            remaining[i] -= chosen.size
    return new, terr_of


def _landuse_2020(g: _Grid, cen: _Centres, tr: _Transport, l10: _Landuse2010, lu2010: np.ndarray, new: np.ndarray,
                  terr_of: list[np.ndarray], k: _Codes) -> np.ndarray:
    """Step 9b: new land typed per city.

    The most central (near existing commercial land) commercial, the nearest to rail and major roads (near existing
    industry) industrial, the rest residential. Returns land use 2020.
    """
    metres, dist, radii, d_transport = g.metres, cen.dist, cen.radii, tr.d_transport
    com_noise, park_noise = l10.com_noise, l10.park_noise
    res_c, ind_c, com_c = k.res, k.ind, k.com
    n_city = len(cen.rc)
    lu2020 = lu2010.copy()
    near_com = ndimage.uniform_filter((lu2010 == com_c).astype(np.float32), size=5)
    near_ind = ndimage.uniform_filter((lu2010 == ind_c).astype(np.float32), size=7)
    lu2020[new] = res_c
    for i in range(n_city):
        idx = np.flatnonzero((new & terr_of[i]).ravel())
        if idx.size == 0:
            continue
        rel = dist[i].ravel()[idx] / radii[i]
        com_score = -rel + 2.0 * near_com.ravel()[idx] + 0.3 * com_noise.ravel()[idx]
        k_com = round(_NEW_SHARES["commercial"] * idx.size)
        order = np.argsort(-com_score, kind="stable")
        com_idx, rest = idx[order[:k_com]], idx[order[k_com:]]
        tp = np.exp(-d_transport.ravel()[rest] / metres(500.0))
        ind_score = tp + 1.5 * near_ind.ravel()[rest] + 0.5 * park_noise.ravel()[rest] + 0.3 * dist[i].ravel()[
            rest
        ] / radii[i]
        k_ind = round(_NEW_SHARES["industrial"] * idx.size)
        order = np.argsort(-ind_score, kind="stable")
        lu2020.ravel()[com_idx] = com_c
        lu2020.ravel()[rest[order[:k_ind]]] = ind_c
    return lu2020


def _greenbelt(urban20: np.ndarray, core_terr: np.ndarray, core_r: float, water: np.ndarray) -> np.ndarray:
    """Step 10: a ring 0.12-0.45 core radii outside the core city's 2020 footprint.

    Inside its territory, without built-up land or water.
    """
    core_urban = urban20 & core_terr
    closed = ndimage.binary_closing(core_urban, structure=_disk(3))
    lbl, nlab = ndimage.label(closed)
    if nlab:
        sizes = np.bincount(lbl.ravel())
        sizes[0] = 0
        footprint = ndimage.binary_fill_holes(lbl == int(np.argmax(sizes)))
    else:
        footprint = core_urban
    d_fp = _edt(footprint)
    return (d_fp > 0.12 * core_r) & (d_fp <= 0.45 * core_r) & core_terr & ~urban20 & ~water
