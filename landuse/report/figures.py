"""Every matplotlib figure of the reports: the run report's PNGs and the comparison's.

The report's figures (:func:`make_figures`: land use, change by urban type, LEI expansion types, growth probability,
growth boundary, open-space quota, farmland loss, shrinkage) are drawn with matplotlib's object API on the Agg
canvas (no pyplot, no global backend state) from a :class:`~landuse.report.data.Report`. The comparison's
(:func:`compare_maps_png`, :func:`compare_bars_png`, for :func:`landuse.report.compare.compare_runs`) are pyplot
figures saved without the software tag. Each function returns PNG bytes; writing them is the caller's.

The other figures landuse draws stay with the data they show: the sample region's ``overview.png``
(:mod:`landuse.sample.region`, :mod:`landuse.sample.mega`) and the calibration and hindcast figures
(:mod:`landuse.calibration.calibrate`, :mod:`landuse.calibration.hindcast`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from landuse.core.classes import ClassScheme
from landuse.core.landscape import transform_of
from landuse.evaluation.metrics import EXPANSION_TYPES
from landuse.io.folders import figure_png
from landuse.report.data import Report

FIGURE_DPI = 110
_MAX_PLOT_CELLS = 1000  # rasters are strided down to at most this many cells per side for figures

# =========================================================================== the run report's figures


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=FIGURE_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    return buf.getvalue()


def _stride(shape: tuple[int, int]) -> int:
    return max(1, math.ceil(max(shape) / _MAX_PLOT_CELLS))


def _extent(report: Report) -> list[float]:
    t = transform_of(report.landscape)
    rows, cols = report.landuse_by_year[report.data["years"][0]].shape
    x0, y0 = t.c, t.f
    x1, y1 = x0 + t.a * cols, y0 + t.e * rows
    return [x0 / 1000, x1 / 1000, y1 / 1000, y0 / 1000]


def _rgba_landuse(lu: np.ndarray, classes: ClassScheme, *, alpha: float = 1.0) -> np.ndarray:
    lut = np.zeros((256, 4), dtype=np.float32)
    for c in classes:
        lut[c.code, :3] = np.asarray(c.rgb, dtype=np.float32) / 255.0
        lut[c.code, 3] = alpha
    return lut[lu]


def _landuse_legend(ax, classes: ClassScheme, present: set[int]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c.colour, edgecolor="0.3", label=c.name) for c in classes if c.code in present]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              title="land use", title_fontsize=9)


def _map_axes(ax, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x (km)", fontsize=8)
    ax.set_ylabel("y (km)", fontsize=8)
    ax.tick_params(labelsize=7)


def fig_landuse(report: Report) -> bytes:
    """Land use at the start and at the final year, with the class legend."""
    years = report.data["years"]
    first, last = years[0], years[-1]
    s = _stride(report.landuse_by_year[first].shape)
    fig = _new_figure(11, 5)
    axes = fig.subplots(1, 2)
    present: set[int] = set()
    for ax, y in zip(axes, (first, last), strict=True):
        lu = report.landuse_by_year[y][::s, ::s]
        present |= {int(v) for v in np.unique(lu)}
        ax.imshow(_rgba_landuse(lu, report.classes), extent=_extent(report), interpolation="nearest")
        _map_axes(ax, f"land use {y}")
    _landuse_legend(axes[1], report.classes, present)
    return _png(fig)


def fig_change(report: Report) -> bytes:
    """New urban land by urban type between the start and the final year (existing urban in grey)."""
    years = report.data["years"]
    a, b = report.landuse_by_year[years[0]], report.landuse_by_year[years[-1]]
    s = _stride(a.shape)
    a, b = a[::s, ::s], b[::s, ::s]
    cl = report.classes
    rgba = np.ones((*a.shape, 4), dtype=np.float32)
    rgba[a == cl.nodata, 3] = 0.0
    old = cl.is_role(a, "urban")
    rgba[old, :3] = 0.74
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#bdbdbd", label=f"urban in {years[0]}")]
    for t in cl.urban_types:
        c = cl.by_code(cl.code_of(t))
        new = cl.is_role(b, t) & ~old
        rgba[new, :3] = np.asarray(c.rgb, dtype=np.float32) / 255.0
        handles.append(Patch(facecolor=c.colour, label=f"new {c.name}"))
    lost_farm = cl.is_role(a, "farmland") & ~cl.is_role(b, "farmland") & ~cl.is_role(b, "urban")
    rgba[lost_farm, :3] = (0.55, 0.35, 0.17)
    if lost_farm.any():
        handles.append(Patch(facecolor="#8c592b", label="farmland lost (not to urban)"))
    fig = _new_figure(7.5, 6)
    ax = fig.subplots()
    ax.imshow(rgba, extent=_extent(report), interpolation="nearest")
    _map_axes(ax, f"change {years[0]}-{years[-1]} by urban type")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _png(fig)


def fig_expansion(report: Report) -> bytes:
    """New urban patches coloured by LEI expansion type (start to final year)."""
    key = list(report.type_maps)[-1]
    tm = report.type_maps[key]
    s = _stride(tm.shape)
    tm = tm[::s, ::s]
    first = report.landuse_by_year[report.data["years"][0]][::s, ::s]
    colours = {1: (0.17, 0.51, 0.73), 2: (0.99, 0.68, 0.38), 3: (0.84, 0.1, 0.11)}
    rgba = np.ones((*tm.shape, 4), dtype=np.float32)
    rgba[first == report.classes.nodata, 3] = 0.0
    rgba[report.classes.is_role(first, "urban"), :3] = 0.74
    for code, col in colours.items():
        rgba[tm == code, :3] = col
    from matplotlib.patches import Patch

    summ = report.data["expansion"][key]
    handles = [Patch(facecolor="#bdbdbd", label="existing urban")]
    for code, t in enumerate(EXPANSION_TYPES, start=1):
        share = summ["share_area"][t]
        txt = "-" if share is None else f"{100 * share:.0f}% of area"
        handles.append(Patch(facecolor=colours[code], label=f"{t.replace('_', '-')} ({txt})"))
    fig = _new_figure(7.5, 6)
    ax = fig.subplots()
    ax.imshow(rgba, extent=_extent(report), interpolation="nearest")
    _map_axes(ax, f"expansion types {key} (LEI, buffer {summ['buffer_m']:g} m)")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _png(fig)


def fig_probability(report: Report) -> bytes:
    """Growth probability map(s), one panel per key (at most four)."""
    keys = list(report.probability)[:4]
    fig = _new_figure(5.5 * len(keys), 5)
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    study = np.asarray(report.landscape["study_area"].values, dtype=bool)
    for ax, k in zip(axes, keys, strict=True):
        s = _stride(report.probability[k].shape)
        p = report.probability[k][::s, ::s].astype(np.float32, copy=True)  # the plotted cells only
        p[~study[::s, ::s]] = np.nan
        im = ax.imshow(p, extent=_extent(report), vmin=0.0, vmax=1.0, cmap="viridis",
                       interpolation="nearest")
        _map_axes(ax, f"growth probability ({k})")
        fig.colorbar(im, ax=ax, shrink=0.8, label="probability")
    return _png(fig)


def fig_ugb(report: Report) -> bytes:
    """The growth boundary outlined over the final land use."""
    years = report.data["years"]
    lu = report.landuse_by_year[years[-1]]
    s = _stride(lu.shape)
    lu = lu[::s, ::s]
    ugb = report.ugb[::s, ::s]
    fig = _new_figure(8, 6)
    ax = fig.subplots()
    ext = _extent(report)
    ax.imshow(_rgba_landuse(lu, report.classes, alpha=0.85), extent=ext, interpolation="nearest")
    rows, cols = ugb.shape
    xs = np.linspace(ext[0], ext[1], cols + 1)
    ys = np.linspace(ext[3], ext[2], rows + 1)
    xc, yc = 0.5 * (xs[:-1] + xs[1:]), 0.5 * (ys[:-1] + ys[1:])
    if ugb.any() and not ugb.all():
        ax.contour(xc, yc, ugb.astype(np.float32), levels=[0.5], colors="black", linewidths=1.2)
    hatch = np.zeros((rows, cols, 4), dtype=np.float32)
    hatch[ugb] = (0.0, 0.0, 0.0, 0.18)
    ax.imshow(hatch, extent=ext, interpolation="nearest")
    summ = report.data["growth_boundary"]
    share = summ.get("share_of_region")
    _map_axes(ax, f"growth boundary over land use {years[-1]} "
                  f"({summ['area_ha']:,.0f} ha{'' if share is None else f', {100 * share:.1f}% of region'})")
    _landuse_legend(ax, report.classes, {int(v) for v in np.unique(lu)})
    return _png(fig)


def fig_quota(report: Report) -> bytes:
    """Open-space share per city and for the cluster, with the quota line (final year)."""
    q = report.quotas[report.data["years"][-1]]
    units = q.units
    names = [u["unit"] for u in units]
    shares = [100 * u["open_space_share"] if not math.isnan(u["open_space_share"]) else 0.0 for u in units]
    colours = ["#4daf4a" if u["quota_met"] is not False else "#e41a1c" for u in units]
    colours = [c if u["quota_met"] is not None else "#9ecae1" for c, u in zip(colours, units, strict=True)]
    fig = _new_figure(max(5.0, 0.7 * len(units) + 2), 4)
    ax = fig.subplots()
    ax.bar(names, shares, color=colours, edgecolor="0.3")
    if q.quota is not None:
        ax.axhline(100 * q.quota["share"], color="black", linestyle="--", linewidth=1.2,
                   label=f"quota {100 * q.quota['share']:g}% ({q.quota['unit']})")
        ax.legend(fontsize=8)
    ax.set_ylabel("protected open space (% of land area)", fontsize=8)
    ax.set_title(f"open-space quota, {report.data['years'][-1]}", fontsize=10)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    return _png(fig)


def fig_farmland(report: Report) -> bytes:
    """Farmland loss per city (and cluster) between the start and the final year."""
    q = report.quotas[report.data["years"][-1]]
    units = [u for u in q.units if u["city"] is not None] or q.units
    fig = _new_figure(max(5.0, 0.7 * len(units) + 2), 4)
    ax = fig.subplots()
    ax.bar([u["unit"] for u in units], [u["farmland_loss_ha"] for u in units], color="#a6761d", edgecolor="0.3")
    ax.set_ylabel("farmland lost (ha)", fontsize=8)
    years = report.data["years"]
    total = q.units[-1]["farmland_loss_ha"]
    ax.set_title(f"farmland loss {years[0]}-{years[-1]} (cluster {total:,.0f} ha)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    return _png(fig)


def fig_shrinkage(report: Report) -> bytes:
    """Urban (occupied), vacant and restored hectares per city over time (shrinking cities)."""
    df = pd.DataFrame((report.data.get("extra") or {}).get("shrinkage") or [])
    cities = sorted(df["city"].unique())
    ncol = min(4, len(cities))
    nrow = -(-len(cities) // ncol)
    fig = _new_figure(3.0 * ncol, 2.4 * nrow + 0.6)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax, c in zip(axes, cities, strict=False):
        g = df[df.city == c].sort_values("period")
        ax.plot(g.period, g.occupied_ha, color="#e41a1c", label="urban, occupied")
        ax.plot(g.period, g.vacant_ha, color="#984ea3", linestyle="--", label="vacant")
        ax.plot(g.period, g.restored_ha, color="#4daf4a", linestyle=":", label="restored")
        ax.set_title(f"city {c}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(cities):]:
        ax.axis("off")
    axes[0].set_ylabel("hectares", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle("urban, vacant and restored land per city", fontsize=10)
    return _png(fig)


def make_figures(report: Report) -> dict[str, bytes]:
    """Every figure the report has data for, as PNG bytes keyed by file name."""
    figs = {"landuse.png": fig_landuse(report), "change.png": fig_change(report)}
    if (report.data.get("extra") or {}).get("shrinkage"):
        figs["shrinkage.png"] = fig_shrinkage(report)
    if report.type_maps:
        figs["expansion.png"] = fig_expansion(report)
    if report.probability:
        figs["probability.png"] = fig_probability(report)
    if report.ugb is not None:
        figs["growth_boundary.png"] = fig_ugb(report)
    figs["quota.png"] = fig_quota(report)
    figs["farmland_loss.png"] = fig_farmland(report)
    return figs


CAPTIONS = {
    "landuse.png": "Land use at the start and at the final year.",
    "change.png": "New urban land by type.",
    "expansion.png": "New urban patches by expansion type (Landscape Expansion Index).",
    "probability.png": "Growth probability from the Monte Carlo runs.",
    "growth_boundary.png": "Delineated urban growth boundary over the final land use.",
    "quota.png": "Protected open space per unit against the quota.",
    "farmland_loss.png": "Farmland lost per city.",
    "shrinkage.png": "Urban (occupied), vacant and restored land per city over time.",
}
"""The caption of each report figure, by file name (Markdown alt text, HTML figcaption)."""


# =========================================================================== the comparison's figures


def compare_maps_png(runs: Sequence[Any]) -> bytes:
    """The final land use of each compared run side by side, with the legend of the classes present.

    Parameters
    ----------
    runs : sequence of landuse.report.compare.RunSummary
        The compared runs (``name``, ``final_year``, ``classes``, ``landuse_path`` are read).

    Returns
    -------
    bytes
        The PNG (pyplot figure, 110 dpi, no software tag: :func:`landuse.io.folders.figure_png`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs) + 1.6, 4.6), squeeze=False)
    present: set[int] = set()
    for ax, r in zip(axes[0], runs, strict=True):
        with rasterio.open(r.landuse_path) as src:
            step = max(1, max(src.height, src.width) // 800)
            lu = src.read(1)[::step, ::step]
        lut = np.ones((256, 3), dtype=np.float32)
        for c in r.classes:
            lut[c.code] = np.asarray(c.rgb) / 255.0
        present |= set(np.unique(lu).tolist())
        ax.imshow(lut[lu], interpolation="nearest")
        ax.set_title(f"{r.name} ({r.final_year})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(facecolor=c.colour, edgecolor="0.3", label=c.name) for c in runs[0].classes if c.code in present]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.subplots_adjust(right=0.86, wspace=0.05)
    return figure_png(fig, dpi=110)


def compare_bars_png(runs: Sequence[Any], labels: Mapping[str, str]) -> bytes:
    """Bars of farmland lost, open space lost, urban patches and mean patch area per compared run.

    Parameters
    ----------
    runs : sequence of landuse.report.compare.RunSummary
        The compared runs (``name`` and ``figures`` are read).
    labels : mapping of str to str
        The title of each figure key (:data:`landuse.report.compare.LABELS`).

    Returns
    -------
    bytes
        The PNG (pyplot figure, 110 dpi, no software tag: :func:`landuse.io.folders.figure_png`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["farmland_lost_ha", "open_space_lost_ha", "number_of_patches", "mean_patch_area_ha"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.4))
    names = [r.name for r in runs]
    for ax, k in zip(axes, keys, strict=True):
        vals = [v if isinstance(v := r.figures.get(k), float | int) else 0.0 for r in runs]
        ax.bar(names, vals, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"][: len(runs)] * 4)
        ax.set_title(labels[k], fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    return figure_png(fig, dpi=110)


# =========================================================================== calibration and hindcast


def calibration_figure(result: Any, kinds: Mapping[str, str], path: Path) -> None:
    """``calibration.png``: the objective against each parameter, per search stage.

    ``result`` is a :class:`~landuse.calibration.result.CalibrationResult`; ``kinds`` each parameter's kind
    (``log``, ``bool``, ...).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landuse.io.rasters import atomic_path

    names = list(result.ranges)
    n = len(names)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    t = result.table
    colours = {"default": "#d62728", "sobol": "#7f7f7f", "gp": "#1f77b4", "final": "#ff7f0e", "refine": "#9467bd"}
    chosen = t[t["stage"].isin(["final", "refine"])]
    best = (chosen if len(chosen) else t).loc[lambda f: f["objective"].idxmax()]
    for ax, name in zip(axes.ravel(), names, strict=False):
        for stage, c in colours.items():
            s = t[t["stage"] == stage]
            x = s[name].astype(float)
            ax.scatter(x, s["objective"], s=14 if stage != "default" else 40, c=c, label=stage,
                       marker="o" if stage != "default" else "D", alpha=0.8)
        ax.scatter([float(best[name])], [best["objective"]], s=120, facecolors="none", edgecolors="k", label="best")
        ax.axhline(result.validation["null"][result.objective], color="#2ca02c", ls="--", lw=1, label="null model")
        kind = kinds[name]
        if kind == "log":
            ax.set_xscale("log")
        elif kind == "bool":
            ax.set_xticks([0, 1], ["false", "true"])
            ax.set_xlim(-0.5, 1.5)
        ax.set_xlabel(name)
        ax.set_ylabel(result.objective)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Calibration {result.info['before_year']} -> {result.info['after_year']}: {result.objective} "
                 f"of {len(t)} points ({result.info['runs']} runs each)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def hindcast_figure(result: Any, changes: Mapping[str, np.ndarray], path: Path) -> None:
    """``hindcast.png``: each scored map's hits, misses and false alarms of urban gain.

    ``result`` is a :class:`~landuse.calibration.hindcast.HindcastResult`; ``changes`` maps each scored map's name
    to its change map (:func:`landuse.calibration.hindcast.change_map`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    names = list(result.prediction.maps)
    cmap = ListedColormap(["#f7f7f7", "#1a9641", "#d7191c", "#2b83ba", "#969696"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), constrained_layout=True)
    uc = result.urban_codes
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        cm = changes[name]
        cm = np.where((cm == 0) & np.isin(result.before, uc), 4, cm)  # urban already at t1: grey
        ax.imshow(np.ma.masked_equal(cm, 255), cmap=cmap, vmin=0, vmax=4, interpolation="nearest")
        ax.set_title(f"{name}\nFoM {result.scores[name]['built_gain']['fom']:.3f}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("urban gain: hits (green), misses (red), false alarms (blue); urban at the start (grey)",
                 fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
