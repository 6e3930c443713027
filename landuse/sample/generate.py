"""``landuse sample``: write a synthetic study region, the cluster layout or the megaregion one, to a folder.

:func:`generate_sample` checks the folders, then builds the region in memory (:mod:`landuse.sample.region`, the
city cluster) or tile by tile (:mod:`landuse.sample.mega`, from :data:`~landuse.sample.region.MEGA_THRESHOLD`
cells a side) and writes its layers, an overview and a ready-to-run ``sample.yaml``
(:mod:`landuse.sample.scenario`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from landuse.core.errors import LanduseError, OutputExistsError, make_output_dir
from landuse.io.folders import OutputFolder, check_target
from landuse.sample.region import (
    LAYER_FILES,
    MEGA_THRESHOLD,
    SampleInfo,
    SampleRegion,
    build_sample,
)
from landuse.sample.scenario import _YAML_HEAD, _scenario_yaml


def _check_foreign_yaml(path: Path, *, force: bool) -> None:
    """Refuse to overwrite a ``sample.yaml`` that ``landuse sample`` did not write (unless ``force``)."""
    if force or not path.exists():
        return
    try:
        ours = path.read_text(encoding="utf-8").startswith(_YAML_HEAD)
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise OutputExistsError(f"{path} exists and was not written by `landuse sample`; choose another "
                                "`config_dir`, or pass `force` to overwrite it")


def _check_folders(out: Path, cfg_dir: Path, *, layout: str, force: bool) -> None:
    """Refuse folders ``landuse sample`` must not write into, and an unknown ``layout``, before anything is built."""
    if out.exists() and not out.is_dir():
        raise LanduseError(f"output folder {out} exists and is not a folder; choose another `outdir`")
    if cfg_dir.exists() and not cfg_dir.is_dir():
        raise LanduseError(f"`config_dir` {cfg_dir.resolve()} exists and is not a folder")
    if cfg_dir != out and out in cfg_dir.parents:
        raise LanduseError(f"`config_dir` {cfg_dir} is inside `outdir` {out}, which is replaced as a whole; "
                           "use `outdir` itself or a folder outside it")
    if layout not in ("auto", "cluster", "megaregion"):
        raise LanduseError(f"`layout` must be one of auto, cluster, megaregion, got {layout!r}")
    config_path = cfg_dir / "sample.yaml"
    check_target(out, command="sample", owner="sample", force=force, option="`outdir`")
    if cfg_dir != out:
        _check_foreign_yaml(config_path, force=force)


def generate_sample(
    outdir: str | os.PathLike,
    *,
    size: int = 1000,
    seed: int = 42,
    cell_size: float = 60.0,
    config_dir: str | os.PathLike | None = None,
    force: bool = False,
    layout: str = "auto",
    megaregion_from: int = MEGA_THRESHOLD,
    tile: int = 1024,
    workers: int | None = None,
) -> SampleInfo:
    """Generate the sample city cluster and write it to ``outdir``.

    Writes every layer of :data:`LAYER_FILES` as a Cloud-Optimized GeoTIFF (land use
    with its colour table and class names; masks as ``uint8`` 0/1; elevation as
    ``int16`` metres; slope as ``float32`` degrees rounded to 0.1), ``overview.png``,
    and the scenario ``sample.yaml`` in ``config_dir`` with layer paths relative to it.

    Parameters
    ----------
    outdir : path
        Folder for the rasters and the overview (created if missing).
    size : int
        Grid edge in cells.
    seed : int
        Random seed; the same seed gives byte-identical GeoTIFFs.
    cell_size : float
        Cell edge in metres.
    config_dir : path, optional
        Folder of the scenario YAML (default: ``outdir``). When it differs from
        ``outdir`` the scenario's outputs go to ``../outputs/sample`` relative to it.
    force : bool
        Replace an ``outdir`` that ``landuse sample`` did not write, and a ``sample.yaml``
        in ``config_dir`` that it did not write.
    layout : {"auto", "cluster", "megaregion"}
        ``cluster``: the seven-city cluster built in memory (:func:`build_sample`);
        ``megaregion``: dozens of cities around a river delta, built tile by tile in
        bounded memory (:mod:`landuse.sample.mega`); ``auto``: the megaregion from
        ``megaregion_from`` cells a side upward, else the cluster.
    megaregion_from : int
        Grid edge from which ``auto`` picks the megaregion (default
        :data:`MEGA_THRESHOLD`).
    tile : int
        Tile edge of the megaregion generator (results do not depend on it).
    workers : int, optional
        Processes computing megaregion tiles (default
        :func:`landuse.sample.mega.default_workers`; results do not depend on it).

    ``outdir`` is written as a whole (:class:`landuse.io.folders.OutputFolder`): staged
    beside it, with a ``manifest.json``, and swapped in; a scenario's output folder
    nested in it (``outputs/``) is kept.

    Returns
    -------
    SampleInfo
    """
    t0 = time.perf_counter()
    out = Path(outdir).resolve()
    cfg_dir = Path(config_dir).resolve() if config_dir is not None else out
    _check_folders(out, cfg_dir, layout=layout, force=force)
    if layout == "megaregion" or (layout == "auto" and size >= megaregion_from):
        from landuse.sample.mega import generate_megaregion

        return generate_megaregion(out, cfg_dir, size=size, seed=seed, cell_size=cell_size, force=force, tile=tile,
                                   workers=workers, started=t0)
    region = build_sample(size=size, seed=seed, cell_size=cell_size)  # checks the arguments before any folder is made
    if cfg_dir != out:
        make_output_dir(cfg_dir, option="`config_dir`")
    files, written = _write_cluster(region, out, cfg_dir, size=size, seed=seed, cell_size=cell_size, force=force)
    total = sum(p.stat().st_size for p in written)
    n_cells = region.shape[0] * region.shape[1]
    return SampleInfo(
        outdir=out,
        config_path=cfg_dir / "sample.yaml",
        files=files,
        size=int(size),
        seed=int(seed),
        cell_size=float(cell_size),
        cities=region.cities,
        shares_2010=region.role_shares(2010),
        shares_2020=region.role_shares(2020),
        red_line_share=float(region.arrays["red_line"].sum()) / n_cells,
        permanent_farmland_share=float(region.arrays["permanent_farmland"].sum()) / n_cells,
        greenbelt_share=float(region.arrays["greenbelt"].sum()) / n_cells,
        demand_ha=region.demand(),
        total_bytes=int(total),
        seconds=time.perf_counter() - t0,
    )


def _write_cluster(region: SampleRegion, out: Path, cfg_dir: Path, *, size: int, seed: int, cell_size: float,
                   force: bool) -> tuple[dict[str, Path], list[Path]]:
    """Write the cluster's layers, ``overview.png`` and ``sample.yaml``.

    Into ``out`` as a whole, the YAML into ``cfg_dir``. Returns the layer name -> path of every file in ``out`` and
    every file written.
    """
    from landuse.core.landscape import coords_from_transform, set_georef
    from landuse.io.rasters import write_geotiff, write_text

    config_path = cfg_dir / "sample.yaml"
    coords = coords_from_transform(region.transform, *region.shape)
    tags = {"generator": "landuse.sample", "seed": region.seed, "size": size}
    files: dict[str, Path] = {name: out / fname for name, fname in LAYER_FILES.items()}
    files["overview"] = out / "overview.png"
    yaml_text = _scenario_yaml(region, files, cfg_dir, out)
    with OutputFolder(out, command="sample", owner="sample", force=force, option="`outdir`") as stage:
        for name, fname in LAYER_FILES.items():
            arr = region.arrays[name]
            da = xr.DataArray(arr, dims=("y", "x"), coords=coords, name=name)
            da = set_georef(da, region.crs, region.transform)
            kwargs: dict = {}
            if name.startswith("landuse_"):
                kwargs["classes"] = region.classes
            elif name == "elevation":
                kwargs["nodata"] = -32768
            write_geotiff(da, stage.path / fname, tags=tags, **kwargs)
        _overview(region, stage.path / "overview.png")
        if cfg_dir == out:
            write_text(stage.path / "sample.yaml", yaml_text)
        written = stage.commit({"seed": int(seed), "size": int(size), "cell_size": float(cell_size)})
    if cfg_dir != out:
        write_text(config_path, yaml_text)
        written.append(config_path)
    return files, written


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
