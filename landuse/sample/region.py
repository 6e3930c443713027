"""The synthetic sample city cluster used by the demo, the notebooks and the tests.

:func:`landuse.sample.generate.generate_sample` writes a complete, runnable study region: land use of two
epochs (2010 and 2020), administrative zones, terrain, transport, policy masks, a PNG
overview and a scenario YAML. :func:`build_sample` builds the same region in memory.
Everything is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order, so
the same seed gives byte-identical GeoTIFFs.

Generation, step by step (lengths are fractions of the grid edge ``n`` so that a small
test grid is a shrunken copy of the default one; buffers are in metres):

1. **Terrain.** Spectral synthesis: white noise filtered to a ``1/f**beta`` power
   spectrum gives fractal fields. A smooth regional trend plus a low-frequency field
   decides where the hills are (about 30 % of the region, on one side); a rough fractal
   field gives them relief up to several hundred metres. The plain rises gently towards
   the hills and carries a metre of micro-relief.
2. **Water.** Rivers are least-cost paths (through low ground) on a coarse copy of the
   terrain: a main river from a hill source to the lowest stretch of the region's edge,
   tributaries from further sources to the main river. The elevation is then carved
   along every river so it never rises downstream (rivers flow downhill); the paths
   meander by a smooth noise displacement, and the main river is about 300 m wide.
   Lakes are noisy blobs with a flat surface: a large one on the main river, one on a
   tributary, two in the plain and a reservoir in the hills.
3. **Natural cover.** Forest on the hills (ragged edges, woodlots in the plain),
   grassland on hill fringes and the highest tops, bare quarries, wetlands on low, flat
   ground near rivers and lakes.
4. **Cities.** Seven centres on the plain, spaced by their sizes: one core city, two
   medium cities, four small towns (nominal radii 11 %, 6.8 %, 6 %, 4.2 %, 3.7 %, 3.3 %
   and 3 % of the edge, each jittered by up to 8 %). The core city lies near the main
   river and gets two sub-centres.
5. **Transport.** An intercity rail line (least-cost path avoiding slopes and water)
   runs along the cluster's main axis through the core, the medium cities and the towns
   near the axis, and on to the region's edge; a station lies on the line in each city
   it serves (three in the core). Roads: least-cost links along a spanning tree of the
   cities plus each town's link to its nearest neighbour (reusing existing roads is
   cheap), highways from the core to the edge, radial streets and a ring road.
6. **Territories.** ``cities``: a multiplicatively weighted Voronoi partition of the
   (noise-warped) plane, weight ``radius**0.6``, one id per city, covering the region.
   ``counties``: each territory split among 1-4 seed points (ids unique region-wide).
7. **Land use 2010.** Each city's built-up land is the ``0.85 * pi * r**2`` cells of its
   territory with the lowest score ``warped distance / r - road corridor bonus + noise``
   (no water, wetland, steep or hill land). Inside it: commercial land is the most
   central 10 % (centres and sub-centres), industrial the 22 % scoring highest on
   ``distance from centre + transport proximity + a smooth industrial-park field``
   (edges, rail and major roads), residential the rest. Villages (small residential
   blobs, about one per 12 km2) dot the plain. The rest of the plain is farmland.
   Where a territory's open space (forest, grassland, wetland) falls short of 22 % of
   its land, the farmland nearest to water becomes grassland (riverside green corridors),
   so a 15 % open-space quota per city can be met by a plan.
8. **Policy masks from 2010.** Ecological red line: forest cores (forest at least
   150 m from its edge, then grown back 120 m within the forest, patches of at least
   about 20 ha), every wetland, water plus a 120 m buffer along rivers and a 300 m
   buffer around lakes; existing built-up land is left out. Permanent farmland: large
   contiguous patches (opened, at least about 70 ha) of 2010 farmland with good soil (a
   smooth soil-quality field), slope under 2 degrees, at least 300 m from built-up land
   and outside 1.4 city radii.
9. **Growth to 2020.** Each city grows by a drawn rate (core 28 %, others 25-45 % of
   its 2010 built-up land). About 10 % comes as new patches near roads a few hundred
   metres from built-up land; the rest grows at the edges in eight rounds: each round
   the cells bordering built-up land are drawn without replacement with weights
   ``(0.2 + road proximity + centre proximity) * exp(smooth noise)`` (keys
   ``u**(1/w)``). Growth never takes red-line, permanent-farmland or water cells, nor
   slopes of 12 degrees or more, so 2010 built-up land is a subset of 2020's. New land
   is typed per city: the 15 % most central (near existing commercial land) commercial,
   the 25 % nearest rail and major roads (near existing industry) industrial, the rest
   residential.
10. **Greenbelt.** A ring 0.12-0.45 core radii outside the core city's 2020 built-up
    footprint, inside its territory, without built-up land or water.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from scipy import ndimage

from landuse.core.classes import URBAN_TYPES, ClassScheme, default_scheme
from landuse.core.errors import LanduseError

CRS = "EPSG:32651"
"""Coordinate reference system of the sample (WGS 84 / UTM zone 51N, metres)."""
ORIGIN = (300_000.0, 3_500_000.0)
"""Upper-left corner (x, y) of the sample grid in CRS metres."""
EPOCHS = (2010, 2020)
PERIODS = (2020, 2025, 2030, 2035)
MEGA_THRESHOLD = 2000
"""Grid edge (cells) from which ``landuse sample`` builds the megaregion layout (:mod:`landuse.sample.mega`)."""

# Relative radii (fraction of the grid edge) of the seven cities, largest first.
_RADII = (0.110, 0.068, 0.060, 0.042, 0.037, 0.033, 0.030)
_RANKS = ("core", "medium", "medium", "small", "small", "small", "small")
_URBAN_FILL = 0.85
_COMMERCIAL_SHARE_2010 = 0.10
_INDUSTRIAL_SHARE_2010 = 0.22
_NEW_SHARES = {"commercial": 0.15, "industrial": 0.25}  # residential takes the rest
_MAX_GROWTH_SLOPE = 12.0
_MIN_OPEN_SHARE = 0.22  # open space kept in every territory in 2010 (riparian corridors where short)

LAYER_FILES: dict[str, str] = {
    "landuse_2010": "landuse_2010.tif",
    "landuse_2020": "landuse_2020.tif",
    "cities": "cities.tif",
    "counties": "counties.tif",
    "elevation": "elevation.tif",
    "slope": "slope.tif",
    "roads": "roads.tif",
    "rail": "rail.tif",
    "stations": "stations.tif",
    "centres": "centres.tif",
    "red_line": "red_line.tif",
    "permanent_farmland": "permanent_farmland.tif",
    "greenbelt": "greenbelt.tif",
}
"""Layer name -> file name of every GeoTIFF the sample writes."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SampleCity:
    """One city of the sample cluster.

    Attributes
    ----------
    id : int
        Its id in the ``cities`` layer (1 = the core city).
    name : str
    rank : str
        ``core``, ``medium`` or ``small``.
    centre : tuple of int
        ``(row, col)`` of its centre cell.
    radius_cells : float
        Nominal radius of its 2010 built-up area, in cells.
    urban_2010_ha, urban_2020_ha : float
        Built-up land (residential + industrial + commercial) inside its territory.
    territory_ha : float
        Area of its territory.
    """

    id: int
    name: str
    rank: str
    centre: tuple[int, int]
    radius_cells: float
    urban_2010_ha: float
    urban_2020_ha: float
    territory_ha: float


@dataclass
class SampleRegion:
    """The sample region in memory (what :func:`build_sample` returns).

    Attributes
    ----------
    arrays : dict of str to ndarray
        Layer name (keys of :data:`LAYER_FILES`) -> array in its storage dtype
        (land use ``uint8``, zones ``int32``, elevation ``int16`` metres, slope
        ``float32`` degrees rounded to 0.1, masks ``bool``).
    transform : Affine
    crs : str
    cell_size : float
    seed : int
    cities : list of SampleCity
    rivers : list of ndarray
        Each river as an ``(k, 2)`` array of ``(row, col)`` cells from source to mouth
        (or to the river it joins); elevation never rises along it.
    rail_path : ndarray
        ``(k, 2)`` cells of the rail line in order.
    classes : ClassScheme
    """

    arrays: dict[str, np.ndarray]
    transform: Affine
    crs: str
    cell_size: float
    seed: int
    cities: list[SampleCity]
    rivers: list[np.ndarray]
    rail_path: np.ndarray
    classes: ClassScheme = field(default_factory=default_scheme)

    @property
    def shape(self) -> tuple[int, int]:
        return self.arrays["landuse_2020"].shape

    @property
    def cell_area_ha(self) -> float:
        return self.cell_size * self.cell_size / 10_000.0

    def landscape(self) -> xr.Dataset:
        """The region as a Landscape (``landuse`` = 2020, ``landuse_2010``, every other layer)."""
        from landuse.core.landscape import new_landscape

        layers = {("landuse" if k == "landuse_2020" else k): v for k, v in self.arrays.items()}
        return new_landscape(layers, crs=self.crs, transform=self.transform, nodata=self.classes.nodata)

    def role_shares(self, year: int = 2020) -> dict[str, float]:
        """Share of the region's cells per role (``urban`` sums the three urban types)."""
        lu = self.arrays[f"landuse_{year}"]
        total = lu.size
        out = {"urban": float(self.classes.is_role(lu, *URBAN_TYPES).sum()) / total}
        for role in (*URBAN_TYPES, "farmland", "open_space", "water", "other"):
            out[role] = float(self.classes.is_role(lu, role).sum()) / total
        return out

    def class_shares(self, year: int = 2020) -> dict[str, float]:
        """Share of the region's cells per class name."""
        lu = self.arrays[f"landuse_{year}"]
        counts = np.bincount(lu.ravel(), minlength=256)
        return {c.name: float(counts[c.code]) / lu.size for c in self.classes}

    def new_urban_ha(self) -> dict[str, float]:
        """Hectares of each urban type added between 2010 and 2020 (on cells not urban in 2010)."""
        lu10, lu20 = self.arrays["landuse_2010"], self.arrays["landuse_2020"]
        was_urban = self.classes.is_role(lu10, *URBAN_TYPES)
        return {
            t: float(((lu20 == self.classes.code_of(t)) & ~was_urban).sum()) * self.cell_area_ha
            for t in URBAN_TYPES
        }

    def demand(self, periods: tuple[int, ...] = PERIODS) -> dict[str, dict[int, float]]:
        """Demand (hectares) per urban type per period continuing the 2010-2020 growth.

        The decade's growth rate ``g`` of built-up land becomes the yearly compound rate
        ``(1 + g) ** 0.1 - 1``; each period's new land is split among the types in the
        proportions of the land added from 2010 to 2020.
        """
        area = self.cell_area_ha
        u10 = float(self.classes.is_role(self.arrays["landuse_2010"], *URBAN_TYPES).sum()) * area
        u20 = float(self.classes.is_role(self.arrays["landuse_2020"], *URBAN_TYPES).sum()) * area
        return continued_demand(u10, u20, self.new_urban_ha(), periods)


def continued_demand(
    u10: float, u20: float, added: dict[str, float], periods: tuple[int, ...] = PERIODS
) -> dict[str, dict[int, float]]:
    """Demand (ha) per urban type per period continuing a 2010-2020 growth of built-up land.

    ``u10``, ``u20``: built-up hectares in 2010 and 2020; ``added``: hectares of each
    urban type added between them (see :meth:`SampleRegion.demand`).
    """
    total_added = sum(added.values()) or 1.0
    yearly = (u20 / u10) ** (1 / (EPOCHS[1] - EPOCHS[0])) - 1 if u10 > 0 else 0.0
    out: dict[str, dict[int, float]] = {t: {} for t in URBAN_TYPES}
    for a, b in itertools.pairwise(periods):
        new = u20 * ((1 + yearly) ** (b - periods[0]) - (1 + yearly) ** (a - periods[0]))
        for t in URBAN_TYPES:
            out[t][b] = float(round(new * added[t] / total_added))
    return out


@dataclass(frozen=True)
class SampleInfo:
    """What :func:`~landuse.sample.generate.generate_sample` wrote.

    Attributes
    ----------
    outdir : Path
        Folder of the rasters and the overview.
    config_path : Path
        The scenario YAML.
    files : dict of str to Path
        Layer name -> GeoTIFF, plus ``overview`` -> PNG.
    size, seed : int
    cell_size : float
    cities : list of SampleCity
    shares_2010, shares_2020 : dict of str to float
        Role shares of the region (see :meth:`SampleRegion.role_shares`).
    red_line_share, permanent_farmland_share, greenbelt_share : float
        Shares of the region covered by each mask.
    demand_ha : dict
        Urban type -> period end year -> hectares, as written into the YAML.
    total_bytes : int
        Bytes of every file written (rasters, side-cars, PNG, YAML).
    seconds : float
        Wall-clock time of the generation.
    layout : str
        ``cluster`` or ``megaregion``.
    """

    outdir: Path
    config_path: Path
    files: dict[str, Path]
    size: int
    seed: int
    cell_size: float
    cities: list[SampleCity]
    shares_2010: dict[str, float]
    shares_2020: dict[str, float]
    red_line_share: float
    permanent_farmland_share: float
    greenbelt_share: float
    demand_ha: dict[str, dict[int, float]]
    total_bytes: int
    seconds: float
    layout: str = "cluster"

    def text(self) -> str:
        """A short human summary saying what was written and where the scenario YAML is."""
        sizes = ", ".join(f"{c.urban_2020_ha:,.0f}" for c in self.cities)
        what = "sample megaregion" if self.layout == "megaregion" else "sample city cluster"
        return (
            f"{what} ({self.size} x {self.size} cells of {self.cell_size:g} m, seed {self.seed}) "
            f"written to {self.outdir} ({len(self.files)} files, {self.total_bytes / 1e6:.1f} MB, "
            f"{self.seconds:.1f} s)\n"
            f"  {len(self.cities)} cities, built-up land 2020 (ha): {sizes}\n"
            f"  urban {100 * self.shares_2010['urban']:.1f} % (2010) -> {100 * self.shares_2020['urban']:.1f} % "
            f"(2020); farmland {100 * self.shares_2020['farmland']:.1f} %, open space "
            f"{100 * self.shares_2020['open_space']:.1f} %, water {100 * self.shares_2020['water']:.1f} %\n"
            f"  red line {100 * self.red_line_share:.1f} %, permanent farmland "
            f"{100 * self.permanent_farmland_share:.1f} %, greenbelt {100 * self.greenbelt_share:.1f} %\n"
            f"  scenario: {self.config_path}  (check it with `landuse validate {self.config_path}`)"
        )


# --------------------------------------------------------------------------- helpers


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


def _edt(mask: np.ndarray) -> np.ndarray:
    """Distance in cells from every cell to the nearest True cell of ``mask`` (inf if none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(~mask).astype(np.float32)


def _disk(radius: float) -> np.ndarray:
    r = max(math.ceil(radius), 1)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= radius * radius + 1e-9


def _dilate(mask: np.ndarray, radius_cells: float) -> np.ndarray:
    if radius_cells <= 0:
        return mask.copy()
    return _edt(mask) <= radius_cells


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


def _pick(rng: np.random.Generator, candidates: np.ndarray, weights: np.ndarray | None = None) -> int:
    """Index of one True cell of ``candidates`` (flat), drawn with optional weights."""
    idx = np.flatnonzero(candidates.ravel())
    if idx.size == 0:
        raise LanduseError("sample generation found no cell to place a feature; try another --seed or --size")
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


# --------------------------------------------------------------------------- generation


def build_sample(*, size: int = 1000, seed: int = 42, cell_size: float = 60.0) -> SampleRegion:
    """Build the synthetic sample city cluster in memory.

    Parameters
    ----------
    size : int
        Grid edge in cells (the region is ``size x size``); at least 100.
    seed : int
        Seed of the one ``numpy.random.default_rng`` every random choice is drawn from.
    cell_size : float
        Cell edge in metres (30-100 m is the intended range).

    Returns
    -------
    SampleRegion

    Examples
    --------
    >>> region = build_sample(size=120, seed=1)
    >>> region.shape, len(region.cities) >= 5
    ((120, 120), True)
    """
    if size < 100:
        raise LanduseError(f"--size must be at least 100 cells to fit a city cluster, got {size}")
    if not 10.0 <= cell_size <= 1000.0:
        raise LanduseError(f"--cell-size must be within [10, 1000] metres, got {cell_size:g}")
    if seed < 0:
        raise LanduseError(f"--seed must be a non-negative integer, got {seed}")
    scheme = default_scheme()
    rng = np.random.default_rng(seed)
    n = int(size)
    cs = float(cell_size)
    shape = (n, n)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)

    def metres(m: float) -> float:
        return m / cs

    # ---- 1. terrain ---------------------------------------------------------------------
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

    # ---- 2. water: rivers, lakes ------------------------------------------------------------
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

    # lakes: a large one on the main river, one on a tributary, two in the plain, a reservoir
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

    # ---- 3. natural cover ------------------------------------------------------------------
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

    # ---- 4. city centres ---------------------------------------------------------------------
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
    n_city = len(centres_rc)
    dist = [np.hypot(yy - cy, xx - cx) for cy, cx in centres_rc]
    core_r = radii[0]
    ang = rng.uniform(0, 2 * np.pi)
    sub_centres = []
    for a in (ang, ang + rng.uniform(2.2, 4.0)):
        sy = int(np.clip(centres_rc[0][0] + 0.55 * core_r * np.sin(a), 0, n - 1))
        sx = int(np.clip(centres_rc[0][1] + 0.55 * core_r * np.cos(a), 0, n - 1))
        sub_centres.append((sy, sx))

    # ---- 5. transport -----------------------------------------------------------------------
    transport_cost = 1.0 + 4.0 * np.clip(slope, 0, 30) / 5.0 + 30.0 * water + 3.0 * wetland + 4.0 * hills
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
    station_cities = []
    for i in on_rail:
        d_path = dist[i][rail_path[:, 0], rail_path[:, 1]]
        j = int(np.argmin(d_path))
        if d_path[j] <= radii[i]:
            stations[tuple(rail_path[j])] = True
            station_cities.append(i)
            if i == 0:  # the core city gets two more stations along the line
                for off in (-0.6, 0.6):
                    k = j + int(off * core_r * 1.2)
                    if 0 <= k < len(rail_path) and dist[0][tuple(rail_path[k])] <= core_r:
                        stations[tuple(rail_path[k])] = True

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
        a = rng.uniform(0, 2 * np.pi) if k == 0 else a + 2 * np.pi / 3 + rng.uniform(-0.4, 0.4)
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
    d_roads = _edt(roads)
    d_major = _edt(major)
    d_rail = _edt(rail)
    d_transport = np.minimum(d_major, d_rail)

    # ---- 6. territories ----------------------------------------------------------------------
    warp_y = _fractal(rng, n, 4.0)
    warp_x = _fractal(rng, n, 4.0)
    def warped_dist(cy: int, cx: int, amp: float) -> np.ndarray:
        # distance in a plane warped by smooth noise; the warp is zero at (cy, cx)
        return np.hypot(yy + amp * (warp_y - warp_y[cy, cx]) - cy, xx + amp * (warp_x - warp_x[cy, cx]) - cx)

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

    # ---- 7. land use 2010 ----------------------------------------------------------------------
    code = {role: scheme.codes_with_role(role) for role in ("farmland", "water", "other")}
    res_c, ind_c, com_c = (scheme.code_of(t) for t in URBAN_TYPES)
    open_codes = {c.name: c.code for c in scheme if c.role == "open_space"}
    forest_c = open_codes.get("forest", scheme.codes_with_role("open_space")[0])
    grass_c = open_codes.get("grassland", forest_c)
    wet_c = open_codes.get("wetland", forest_c)
    farm_c, water_c, bare_c = code["farmland"][0], code["water"][0], code["other"][0]

    shape_noise = _fractal(rng, n, 2.8)
    com_noise = _fractal(rng, n, 3.0)
    park_noise = _fractal(rng, n, 3.6)
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
    # villages
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
    natural = ~urban10
    lu[natural & forest] = forest_c
    lu[natural & grass] = grass_c
    lu[natural & bare] = bare_c
    lu[natural & wetland] = wet_c
    lu[water] = water_c
    # riparian green corridors: every territory keeps at least _MIN_OPEN_SHARE of its land as
    # open space, taking the farmland nearest to water first (river and lake-side parks)
    d_water = _edt(water)
    open_vals = np.array(sorted(open_codes.values()), dtype=np.uint8)
    for i in range(n_city):
        terr = cities == i + 1
        land = int((terr & (lu != water_c)).sum())
        need = math.ceil(_MIN_OPEN_SHARE * land) - int((terr & np.isin(lu, open_vals)).sum())
        if need > 0:
            cand = np.flatnonzero((terr & (lu == farm_c) & ~urban10).ravel())
            order = np.argsort(d_water.ravel()[cand], kind="stable")
            lu.ravel()[cand[order[:need]]] = grass_c
    lu2010 = lu.copy()

    # ---- 8. red line, permanent farmland --------------------------------------------------------
    is_forest = lu2010 == forest_c
    core = _edt(~is_forest) >= metres(150.0)
    forest_core = _dilate(core, metres(120.0)) & is_forest
    forest_core = _remove_small(forest_core, 20.0 / (cs * cs / 1e4))
    lake_buffer = _dilate(lake, metres(300.0))
    river_buffer = _dilate(water & ~lake, metres(120.0))
    red_line = (forest_core | (lu2010 == wet_c) | water | lake_buffer | river_buffer) & ~urban10

    soil = _fractal(rng, n, 3.8)
    d_urban10 = _edt(urban10)
    farm10 = lu2010 == farm_c
    good = farm10 & (soil > -0.2) & (slope < 2.0) & (d_urban10 >= metres(300.0)) & (city_reach > 1.4)
    good &= ~red_line
    good = ndimage.binary_opening(good, structure=_disk(2))
    permanent = _remove_small(good, 70.0 / (cs * cs / 1e4)) & farm10

    # ---- 9. growth 2010 -> 2020 -----------------------------------------------------------------
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
    urban20 = urban10 | new

    # ---- 10. greenbelt ----------------------------------------------------------------------------
    core_urban = urban20 & terr_of[0]
    closed = ndimage.binary_closing(core_urban, structure=_disk(3))
    lbl, nlab = ndimage.label(closed)
    if nlab:
        sizes = np.bincount(lbl.ravel())
        sizes[0] = 0
        footprint = ndimage.binary_fill_holes(lbl == int(np.argmax(sizes)))
    else:
        footprint = core_urban
    d_fp = _edt(footprint)
    greenbelt = (d_fp > 0.12 * core_r) & (d_fp <= 0.45 * core_r) & terr_of[0] & ~urban20 & ~water

    centres = np.zeros(shape, dtype=bool)
    for cy, cx in [*centres_rc, *sub_centres]:
        centres[cy, cx] = True

    area_ha = cs * cs / 1e4
    city_list = []
    for i in range(n_city):
        city_list.append(
            SampleCity(
                id=i + 1,
                name=f"City {i + 1}" + (" (core)" if i == 0 else ""),
                rank=_RANKS[i],
                centre=(int(centres_rc[i][0]), int(centres_rc[i][1])),
                radius_cells=float(radii[i]),
                urban_2010_ha=float((urban10 & terr_of[i]).sum()) * area_ha,
                urban_2020_ha=float((urban20 & terr_of[i]).sum()) * area_ha,
                territory_ha=float(terr_of[i].sum()) * area_ha,
            )
        )
    arrays = {
        "landuse_2010": lu2010,
        "landuse_2020": lu2020,
        "cities": cities,
        "counties": counties,
        "elevation": elevation,
        "slope": slope,
        "roads": roads,
        "rail": rail,
        "stations": stations,
        "centres": centres,
        "red_line": red_line,
        "permanent_farmland": permanent,
        "greenbelt": greenbelt,
    }
    transform = Affine(cs, 0.0, ORIGIN[0], 0.0, -cs, ORIGIN[1])
    return SampleRegion(
        arrays=arrays,
        transform=transform,
        crs=CRS,
        cell_size=cs,
        seed=int(seed),
        cities=city_list,
        rivers=rivers_paths,
        rail_path=rail_path,
        classes=scheme,
    )


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


def _smooth(points: np.ndarray, window: int) -> np.ndarray:
    """Moving average of a polyline's vertices (ends kept), rounded to cells."""
    if len(points) < 3 or window < 2:
        return np.asarray(points)
    pts = np.asarray(points, dtype=np.float64)
    out = np.stack([ndimage.uniform_filter1d(pts[:, j], size=window, mode="nearest") for j in (0, 1)], axis=1)
    out[0], out[-1] = pts[0], pts[-1]
    return np.round(out).astype(np.int64)


def _mask_from_path(path: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[path[:, 0], path[:, 1]] = True
    return m


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
    lbl, nlab = ndimage.label(mask)
    if nlab == 0:
        return mask.copy()
    sizes = np.bincount(lbl.ravel())
    keep = sizes >= max(min_cells, 1)
    keep[0] = False
    return keep[lbl]


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


# --------------------------------------------------------------------------- writing


def _overview(region: SampleRegion, path: Path) -> None:
    """PNG map of land use 2020 with a legend, city borders, rail line and stations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from landuse.io.folders import figure_png
    from landuse.io.rasters import write_bytes

    scheme = region.classes
    lu = region.arrays["landuse_2020"]
    lut = np.zeros((256, 3), dtype=np.float32)
    for c in scheme:
        lut[c.code] = np.array(c.rgb) / 255.0
    rgb = lut[lu]
    roads = region.arrays["roads"] & ~scheme.is_role(lu, "water")
    rgb[roads] = np.array([0.38, 0.38, 0.38])
    cities = region.arrays["cities"]
    n = lu.shape[0]
    km = region.cell_size / 1000.0
    extent = (0, n * km, n * km, 0)
    fig, ax = plt.subplots(figsize=(10.5, 8.4), dpi=100)
    ax.imshow(rgb, extent=extent, interpolation="nearest")
    centres_km = (np.arange(n) + 0.5) * km
    gb = region.arrays["greenbelt"].astype(np.float32)
    ax.contourf(centres_km, centres_km, gb, levels=[0.5, 1.5], colors="none", hatches=["////"])
    ax.contour(centres_km, centres_km, gb, levels=[0.5], colors=["#00441b"], linewidths=0.7)
    for c in region.cities:
        ax.contour(
            centres_km, centres_km, (cities == c.id).astype(np.float32), levels=[0.5],
            colors=["#111111"], linewidths=1.2, linestyles=[(0, (6, 3))],
        )
    rp = (region.rail_path + 0.5) * km
    ax.plot(rp[:, 1], rp[:, 0], color="black", linewidth=2.6, solid_capstyle="butt")
    ax.plot(rp[:, 1], rp[:, 0], color="white", linewidth=1.2, dashes=(4, 4))
    sr, sc = np.nonzero(region.arrays["stations"])
    ax.scatter((sc + 0.5) * km, (sr + 0.5) * km, s=42, marker="s", facecolor="white", edgecolor="black", zorder=5)
    for c in region.cities:
        cy, cx = c.centre
        ax.annotate(
            f"{c.id}",
            ((cx + 0.5) * km, (cy + 0.5) * km),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=11 if c.rank == "core" else 9,
            fontweight="bold",
            color="black",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    handles = [Patch(facecolor=np.array(c.rgb) / 255.0, edgecolor="0.4", label=c.name) for c in scheme]
    handles += [
        Line2D([], [], color="0.38", linewidth=1.2, label="road"),
        Line2D([], [], color="black", linewidth=2.6, label="rail"),
        Line2D([], [], marker="s", linestyle="none", markerfacecolor="white", markeredgecolor="black", label="station"),
        Line2D([], [], color="#111111", linewidth=1.2, linestyle=(0, (6, 3)), label="city border"),
        Patch(facecolor="none", edgecolor="#00441b", hatch="////", label="greenbelt"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    size_lines = "\n".join(f"{c.id}: {c.urban_2020_ha:,.0f} ha" for c in region.cities)
    ax.text(1.02, 0.02, "built-up 2020\n" + size_lines, transform=ax.transAxes, fontsize=8, va="bottom")
    ax.set_xlabel(f"km east of x = {region.transform.c:,.0f} m (EPSG:32651)")
    ax.set_ylabel(f"km south of y = {region.transform.f:,.0f} m")
    ax.set_title(f"Synthetic city cluster, land use 2020 (seed {region.seed})")
    fig.tight_layout()
    write_bytes(path, figure_png(fig))


def _relative(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()


def _scenario_yaml(region: SampleRegion, files: dict[str, Path], config_dir: Path, outdir: Path) -> str:
    n = region.shape[0]
    description = (
        f"Synthetic city cluster generated by `landuse sample` (seed {region.seed}, {n} x {n} cells of "
        f"{region.cell_size:g} m); demand continues the 2010-2020 growth rate"
    )
    return _scenario_text(region.seed, region.demand(), description, files, config_dir, outdir)


_YAML_HEAD = "# Scenario of the synthetic sample city cluster, written by `landuse sample`."


def _scenario_text(
    seed: int, demand: dict[str, dict[int, float]], description: str, files: dict[str, Path], config_dir: Path,
    outdir: Path,
) -> str:
    import yaml

    rel = {k: _relative(p, config_dir) for k, p in files.items()}
    layers: dict[str, object] = {"landuse": rel["landuse_2020"], "history": {EPOCHS[0]: rel["landuse_2010"]}}
    for name in LAYER_FILES:
        if not name.startswith("landuse_"):
            layers[name] = rel[name]
    same = config_dir.resolve() == outdir.resolve()
    data = {
        "name": "sample",
        "description": description,
        "layers": layers,
        "classes": "default",
        "periods": list(PERIODS),
        "demand": {t: {y: float(v) for y, v in demand[t].items()} for t in URBAN_TYPES},
        "policy": {
            "coordination": "cluster",
            "red_line": True,
            "permanent_farmland": True,
            "greenbelt": {"mode": "soft", "strength": 0.6},
        },
        "growth": {"seed": int(seed)},
        "outputs": {"folder": "outputs" if same else "../outputs/sample"},
    }
    head = (
        _YAML_HEAD + "\n"
        "# Layer paths are relative to this file. Demand is in hectares of new land per period,\n"
        "# keyed by the year each period ends. See docs/sample.md and docs/config.md.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
