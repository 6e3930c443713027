"""The synthetic sample city cluster used by the demo, the notebooks and the tests.

:func:`landuse.sample.generate.generate_sample` writes a complete, runnable study region: land use of two
epochs (2010 and 2020), administrative zones, terrain, transport, policy masks, a PNG
overview and a scenario YAML. :func:`build_sample` builds the same region in memory.
Everything is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order, so
the same seed gives byte-identical GeoTIFFs.

This module holds the region's types and constants and :func:`build_sample`, which runs the steps below in
order: :mod:`~landuse.sample.region_terrain` (1-3), :mod:`~landuse.sample.region_towns` (4-6) and
:mod:`~landuse.sample.region_landuse` (7-10), on the shapes of :mod:`~landuse.sample.shapes`.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine

from landuse.core.classes import URBAN_TYPES, ClassScheme, default_scheme
from landuse.core.errors import LanduseError
from landuse.sample.region_landuse import (
    _Codes,
    _greenbelt,
    _growth,
    _landuse_2010,
    _landuse_2020,
    _permanent_farmland,
    _red_line,
)
from landuse.sample.region_terrain import _carve, _cover, _Grid, _lakes, _rivers, _terrain
from landuse.sample.region_towns import _centres, _territories, _transport

CRS = "EPSG:32651"
"""Coordinate reference system of the sample (WGS 84 / UTM zone 51N, metres)."""
ORIGIN = (300_000.0, 3_500_000.0)
"""Upper-left corner (x, y) of the sample grid in CRS metres."""
EPOCHS = (2010, 2020)
PERIODS = (2020, 2025, 2030, 2035)
MEGA_THRESHOLD = 2000
"""Grid edge (cells) from which ``landuse sample`` builds the megaregion layout (:mod:`landuse.sample.mega`)."""

# Ranks of the seven cities, largest first (their radii: landuse.sample.region_towns._RADII).
_RANKS = ("core", "medium", "medium", "small", "small", "small", "small")

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
        """``(rows, cols)`` of the region's rasters."""
        return self.arrays["landuse_2020"].shape

    @property
    def cell_area_ha(self) -> float:
        """Area of one cell in hectares."""
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
        raise LanduseError(f"`size` must be at least 100 cells to fit a city cluster, got {size}")
    if not 10.0 <= cell_size <= 1000.0:
        raise LanduseError(f"`cell_size` must be within [10, 1000] metres, got {cell_size:g}")
    if seed < 0:
        raise LanduseError(f"`seed` must be a non-negative integer, got {seed}")
    scheme = default_scheme()
    rng = np.random.default_rng(seed)
    g = _Grid.of(int(size), float(cell_size))
    cs, shape = g.cs, g.shape
    terrain = _terrain(rng, g)  # 1. terrain
    rivers = _rivers(rng, g, terrain)  # 2. water: rivers, lakes, carving
    lake = _lakes(rng, g, terrain, rivers)
    water = _carve(g, terrain, rivers, lake)
    cover = _cover(rng, g, terrain, water)  # 3. natural cover
    cen = _centres(rng, g, terrain, rivers, water, cover)  # 4. city centres
    transport = _transport(rng, g, terrain, rivers, water, cover, cen)  # 5. rail and roads
    territories = _territories(rng, g, cen)  # 6. territories and counties
    codes = _Codes.of(scheme)
    l10 = _landuse_2010(rng, g, terrain, water, cover, cen, transport, territories, codes)  # 7. land use 2010
    lu2010, urban10 = l10.lu.copy(), l10.urban10
    red_line = _red_line(g, water, lu2010, urban10, codes)  # 8. red line, permanent farmland
    permanent, d_urban10 = _permanent_farmland(rng, g, water, lu2010, urban10, l10.city_reach, red_line, codes)
    new, terr_of = _growth(rng, g, water, cen, transport, territories, urban10, d_urban10, red_line,
                           permanent)  # 9. growth 2010 -> 2020
    lu2020 = _landuse_2020(g, cen, transport, l10, lu2010, new, terr_of, codes)
    urban20 = urban10 | new
    greenbelt = _greenbelt(urban20, terr_of[0], cen.core_r, water.water)  # 10. greenbelt

    centres = np.zeros(shape, dtype=bool)
    for cy, cx in [*cen.rc, *cen.sub_centres]:
        centres[cy, cx] = True

    area_ha = cs * cs / 1e4
    city_list = []
    for i in range(len(cen.rc)):
        city_list.append(
            SampleCity(
                id=i + 1,
                name=f"City {i + 1}" + (" (core)" if i == 0 else ""),
                rank=_RANKS[i],
                centre=(int(cen.rc[i][0]), int(cen.rc[i][1])),
                radius_cells=float(cen.radii[i]),
                urban_2010_ha=float((urban10 & terr_of[i]).sum()) * area_ha,
                urban_2020_ha=float((urban20 & terr_of[i]).sum()) * area_ha,
                territory_ha=float(terr_of[i].sum()) * area_ha,
            )
        )
    arrays = {
        "landuse_2010": lu2010,
        "landuse_2020": lu2020,
        "cities": territories.cities,
        "counties": territories.counties,
        "elevation": water.elevation,
        "slope": water.slope,
        "roads": transport.roads,
        "rail": transport.rail,
        "stations": transport.stations,
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
        rivers=rivers.paths,
        rail_path=transport.rail_path,
        classes=scheme,
    )
