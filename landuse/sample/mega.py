"""Megaregion layout of the synthetic sample, built tile by tile in bounded memory.

:func:`landuse.sample.generate.generate_sample` uses this module from :data:`MEGA_THRESHOLD`
cells a side upward (or when asked for ``layout="megaregion"``). The small sample
(:func:`landuse.sample.region.build_sample`) holds a dozen float64 whole-grid arrays and sorts
whole-grid scores; this generator never holds a whole-grid array. This module drives it (plan, tiles in one
process or forked workers, region-wide tallies), assembles small regions in memory and writes large ones:

1. **Plan (coarse)** (:mod:`landuse.sample.mega_plan`). Everything that needs a global view is decided on a coarse grid
   of about 300 x 300 cells (``f = n // 300`` fine cells per coarse cell), from one
   ``numpy.random.default_rng(seed)`` in a fixed order: terrain (a plain rising gently
   from a sea coast on the east towards hills in the south-west), a river delta (a
   main river from the hills to an apex, then 4-6 distributaries fanning out to the
   coast, plus tributaries and lakes), dozens of cities with a rank-size (Zipf)
   distribution of areas, their territories and counties, the road network (the
   cities' spanning tree plus nearest-neighbour links, radial streets, ring roads) and
   the rail corridors (a spanning tree of the largest cities) with stations.
   Lines (rivers, roads, rail) are kept as sorted lists of full-resolution cells.
2. **Tiles (fine)** (:mod:`landuse.sample.mega_tile`). Each tile is computed on its window grown by a halo
   (:func:`~landuse.sample.mega_plan._halo`, longer than every chain of buffers and distance transforms), from
   the plan and from counter-based value noise: a cell's noise is a hash of
   ``(seed, purpose, octave, lattice cell)`` (:mod:`landuse.sample.mega_noise` on
   :mod:`landuse.growth.random`), so a cell
   gets the same value whatever tile it falls in. Results therefore do not depend on
   the tile size or on the order tiles are processed in; the tests check it.
3. **Writing.** Each layer is written window by window into a tiled, deflate-compressed
   GeoTIFF, then copied into a Cloud-Optimized GeoTIFF (GDAL's COG driver, overviews
   above 2048 cells) like every other raster of the project.

Peak memory is the plan (a few MB plus the line cells) and one tile's working set
(about 60 bytes per cell of a 1024 x 1024 tile with its halo), whatever the grid size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine

from landuse.core.classes import URBAN_TYPES, ClassScheme, default_scheme
from landuse.core.errors import LanduseError
from landuse.sample.mega_noise import _STRIDE
from landuse.sample.mega_plan import _Plan, _plan
from landuse.sample.mega_tile import _tile
from landuse.sample.region import (
    CRS,
    LAYER_FILES,
    MEGA_THRESHOLD,
    ORIGIN,
    SampleCity,
    SampleInfo,
    SampleRegion,
    continued_demand,
)
from landuse.sample.scenario import _scenario_text

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
        raise LanduseError(f"`size` must be at least 500 cells for the megaregion layout, got {size}")
    if size >= int(_STRIDE):
        raise LanduseError(f"`size` must be below {int(_STRIDE)} cells, got {size}")
    if not 10.0 <= cell_size <= 1000.0:
        raise LanduseError(f"`cell_size` must be within [10, 1000] metres, got {cell_size:g}")
    if seed < 0:
        raise LanduseError(f"`seed` must be a non-negative integer, got {seed}")
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
        """Share of the region's cells per role in ``year`` (2010, else 2020); ``urban`` sums the urban types."""
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
    """``overview.png``: land use 2020, city borders, rail corridors, stations and the largest cities' labels.

    Land use 2020 is read back decimated, through the COG overviews.
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
        make_output_dir(cfg_dir, option="`config_dir`")
    config_path = cfg_dir / "sample.yaml"
    files: dict[str, Path] = {name: out / fname for name, fname in LAYER_FILES.items()}
    files["overview"] = out / "overview.png"
    with OutputFolder(out, command="sample", owner="sample", force=force, option="`outdir`") as stage:
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

