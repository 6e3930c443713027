"""Scenario reports: ``report.json``, ``report.md``, a self-contained ``report.html`` and PNG figures.

Two calls::

    report = build_report(scenario=scenario, landscape=ds, landuse_by_year={2030: lu2030, 2040: lu2040},
                          probability=prob, ugb=ugb, allocation=table)
    paths = write_report(out_dir, report)

:func:`build_report` computes everything (every policy check per period and unit from
the maps, :func:`landuse.evaluation.checks.policy_checks`; open space and farmland per year,
landscape metrics, LEI expansion types per period, growth-boundary summary, validation
against observed maps when given) into :attr:`Report.data`, a JSON-compatible dict, and keeps the arrays
the figures need. :func:`write_report` writes the files atomically. Figures are drawn
with matplotlib's object API on the Agg canvas (no pyplot, no global backend state).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import io
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.classes import ClassScheme
from landuse.core.config import Scenario
from landuse.core.errors import LanduseError
from landuse.core.landscape import cell_area_ha, cell_size, cell_sizes, crs_of, transform_of
from landuse.core.strips import row_strips
from landuse.evaluation.agreement import validation_metrics
from landuse.evaluation.boundary import ugb_summary
from landuse.evaluation.checks import failure_lines, policy_checks, records, summary
from landuse.evaluation.metrics import (
    EXPANSION_TYPES,
    QuotaReport,
    as_jsonable,
    class_areas,
    expansion_types,
    quota_report,
    urban_metrics,
)
from landuse.io.rasters import write_bytes, write_text

FIGURE_DPI = 110
_MAX_PLOT_CELLS = 1000  # rasters are strided down to at most this many cells per side for figures


@dataclass
class Report:
    """A built report: JSON-compatible ``data`` plus what the figures are drawn from.

    Attributes
    ----------
    data : dict
        Everything machine-readable (written as ``report.json``).
    classes : ClassScheme
    landscape : xarray.Dataset
    landuse_by_year : dict of int to ndarray
        Land use per year, the start year first.
    probability : dict of str to ndarray
    ugb : ndarray or None
    quotas : dict of int to QuotaReport
    type_maps : dict of str to ndarray
        LEI expansion type per new urban cell, per period label ``"<start>-<end>"``.
    allocation : pandas.DataFrame or None
    checks : pandas.DataFrame
        :func:`landuse.evaluation.checks.policy_checks` of the run, one row per check, period and unit.
    """

    data: dict[str, Any]
    classes: ClassScheme
    landscape: xr.Dataset = field(repr=False)
    landuse_by_year: dict[int, np.ndarray] = field(repr=False)
    probability: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    ugb: np.ndarray | None = field(default=None, repr=False)
    quotas: dict[int, QuotaReport] = field(default_factory=dict, repr=False)
    type_maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    allocation: pd.DataFrame | None = field(default=None, repr=False)
    checks: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        """Every enforced check of every period and unit holds (none failed)."""
        return bool(self.data["passed"])


def _arr(a: Any) -> np.ndarray:
    return np.asarray(a.values if isinstance(a, xr.DataArray) else a)


def _read_only_f32(a: Any) -> np.ndarray:
    """A read-only float32 view of ``a``: no copy of a float32 grid (one grid a key at megaregion scale)."""
    out = np.asarray(_arr(a), dtype=np.float32).view()
    out.flags.writeable = False
    return out


def build_report(
    *,
    scenario: Scenario,
    landscape: xr.Dataset,
    landuse_by_year: Mapping[int, xr.DataArray | np.ndarray],
    probability: xr.DataArray | np.ndarray | Mapping[str, xr.DataArray | np.ndarray] | None = None,
    ugb: xr.DataArray | None = None,
    allocation: pd.DataFrame | None = None,
    observed: Mapping[int, xr.DataArray | np.ndarray] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
    start_landuse: xr.DataArray | np.ndarray | None = None,
    shortfall: pd.DataFrame | None = None,
    probability_by_period: Mapping[int, Mapping[str, xr.DataArray | np.ndarray]] | None = None,
) -> Report:
    """Evaluate a scenario's outputs into a :class:`Report`.

    Parameters
    ----------
    scenario : Scenario
    landscape : xarray.Dataset
        The scenario's Landscape; its ``landuse`` is the start-year map (baseline) unless
        ``start_landuse`` is given.
    landuse_by_year : mapping of int to array
        Land use per period end year (an entry for the start year is ignored).
        Consecutive years are the periods the checks evaluate; ``passed`` is True when
        no check of any period and unit failed.
    probability : array or mapping of str to array, optional
        Growth probability (e.g. ``{"urban": p}`` or one map per type or year).
    ugb : xarray.DataArray, optional
        A delineated growth boundary (:func:`landuse.evaluation.boundary.delineate_ugb`).
    allocation : pandas.DataFrame, optional
        The allocation table (written in full to JSON, the first rows to md/html).
    observed : mapping of int to array, optional
        Observed land use for some years; validation metrics (FoM, kappa,
        disagreement, Lee-Sallee) are computed for each year also in ``landuse_by_year``.
    seed : int, optional
        Seed that produced the outputs (default ``growth.seed`` of the scenario).
    extra : mapping, optional
        Anything else to record under ``"extra"`` (must be JSON-compatible). The md/html
        report shows ``extra["binding_policies"]`` (shadow prices per period) and
        ``extra["fragmentation"]`` (coordinated vs city-by-city plans per period).
    start_landuse : array, optional
        Land use at the start year (default ``landscape.landuse``).
    shortfall : pandas.DataFrame, optional
        The growth engine's shortfall table: the ``demand_met`` checks.
    probability_by_period : mapping, optional
        Per period end year, the conversion probability of each urban type: every
        hard-mask cell must have probability 0 (every Monte Carlo run respected it).

    Returns
    -------
    Report
    """
    classes = scenario.classes
    ev = scenario.config.evaluation
    start = scenario.periods[0]
    base = _arr(landscape["landuse"] if start_landuse is None else start_landuse)
    maps: dict[int, np.ndarray] = {start: base}
    for y, a in sorted(landuse_by_year.items()):
        if int(y) == start:
            continue
        arr = _arr(a)
        if arr.shape != base.shape:
            raise LanduseError(f"land use of {y} has shape {arr.shape}, the Landscape's grid is {base.shape}")
        maps[int(y)] = arr
    years = sorted(maps)
    final = years[-1]
    cs = cell_size(landscape)
    cyx = cell_sizes(landscape)  # (height, width): non-square cells keep both in the metrics
    cell_ha = cell_area_ha(landscape)
    study = np.asarray(landscape["study_area"].values, dtype=bool)

    checks = policy_checks(scenario, landscape, {y: maps[y] for y in years if y != start}, start_landuse=base,
                           allocation=allocation, shortfall=shortfall, probability=probability_by_period)
    counts = summary(checks)
    quotas: dict[int, QuotaReport] = {y: quota_report(landscape, maps[y], scenario) for y in years}
    metrics = {
        y: urban_metrics(maps[y], classes, cell_size=cyx, connectivity=ev.connectivity, study_area=study)
        for y in years
    }
    expansion, type_maps = {}, {}
    for a, b in itertools.pairwise(years):
        exp = expansion_types(maps[a], maps[b], classes, cell_size=cyx, buffer_m=max(ev.lei_buffer_m, *cyx),
                              connectivity=ev.connectivity, study_area=study)
        expansion[f"{a}-{b}"] = exp.summary()
        type_maps[f"{a}-{b}"] = exp.type_map  # kept until the figures: in the raster store, if any
    if len(years) > 2:
        exp = expansion_types(maps[start], maps[final], classes, cell_size=cyx,
                              buffer_m=max(ev.lei_buffer_m, *cyx), connectivity=ev.connectivity, study_area=study)
        expansion[f"{start}-{final}"] = exp.summary()
        type_maps[f"{start}-{final}"] = exp.type_map

    prob: dict[str, np.ndarray] = {}
    if probability is not None:
        if isinstance(probability, Mapping):
            prob = {str(k): _read_only_f32(v) for k, v in probability.items()}
        else:
            prob = {"urban": _read_only_f32(probability)}
    prob_summary = {}
    for k, p in prob.items():  # strip by strip: the mean summed in float64, the counts exact
        total, n, high = 0.0, 0, 0
        for a, b in row_strips(*p.shape):
            inside = p[a:b][study[a:b] & np.isfinite(p[a:b])]
            total += float(inside.sum(dtype=np.float64))
            n += inside.size
            high += int(np.count_nonzero(inside >= 0.5))
        prob_summary[k] = {
            "mean": total / n if n else math.nan,
            "cells_at_least_0_5": high,
            "area_at_least_0_5_ha": float(high) * cell_ha,
        }

    validation = {}
    for y, obs in sorted((observed or {}).items()):
        if int(y) in maps and int(y) != start:
            validation[str(y)] = validation_metrics(base, _arr(obs), maps[int(y)], classes, study_area=study)

    inputs = landscape.attrs.get("inputs") or {k: str(v) for k, v in scenario.layer_paths().items()}
    t = transform_of(landscape)
    data = {
        "meta": {
            "scenario": scenario.name,
            "description": scenario.config.description,
            "config": str(scenario.path) if scenario.path else None,
            "seed": int(scenario.config.growth.seed if seed is None else seed),
            "runs": int(scenario.config.growth.runs),
            "periods": scenario.periods,
            "coordination": scenario.config.policy.coordination,
            "inputs": {str(k): str(v) for k, v in inputs.items()},
            "created": (_dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), _dt.UTC)  # reproducible
                        if os.environ.get("SOURCE_DATE_EPOCH") else _dt.datetime.now(_dt.UTC)).isoformat(timespec="seconds"),
            "landuse_version": _version(),
            "grid": {"rows": int(base.shape[0]), "cols": int(base.shape[1]), "cell_size_m": cs,
                     "crs": str(crs_of(landscape)), "origin": [float(t.c), float(t.f)]},
            "classes": classes.to_records(),
            "evaluation": scenario.config.evaluation.model_dump(mode="json"),
            "policy": scenario.config.policy.model_dump(mode="json"),
            "allocation_weights": scenario.config.allocation.weights.model_dump(mode="json"),
        },
        "years": years,
        "passed": counts["failed"] == 0,
        "failures": failure_lines(checks),
        "checks_summary": counts,
        "checks": records(checks),
        "class_areas_ha": {str(y): class_areas(maps[y], classes, cell_ha=cell_ha) for y in years},
        "quotas": {str(y): q.to_dict() for y, q in quotas.items()},
        "landscape_metrics": {str(y): m for y, m in metrics.items()},
        "expansion": expansion,
        "probability": prob_summary or None,
        "growth_boundary": ugb_summary(ugb, landscape, classes=classes) if ugb is not None else None,
        "validation": validation or None,
        "allocation": allocation.to_dict(orient="records") if allocation is not None else None,
        "extra": dict(extra) if extra else None,
    }
    return Report(
        data=as_jsonable(data),
        classes=classes,
        landscape=landscape,
        landuse_by_year=maps,
        probability=prob,
        ugb=None if ugb is None else np.asarray(_arr(ugb), dtype=bool),
        quotas=quotas,
        type_maps=type_maps,
        allocation=allocation,
        checks=checks,
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("landuse")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


# =========================================================================== figures


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


_TYPE_COLOURS = {"existing": "#bdbdbd"}


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


_CAPTIONS = {
    "landuse.png": "Land use at the start and at the final year.",
    "change.png": "New urban land by type.",
    "expansion.png": "New urban patches by expansion type (Landscape Expansion Index).",
    "probability.png": "Growth probability from the Monte Carlo runs.",
    "growth_boundary.png": "Delineated urban growth boundary over the final land use.",
    "quota.png": "Protected open space per unit against the quota.",
    "farmland_loss.png": "Farmland lost per city.",
    "shrinkage.png": "Urban (occupied), vacant and restored land per city over time.",
}


# =========================================================================== text sections


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{round(v, digits) + 0.0:,.{digits}f}"  # no "-0.0"
    return str(v)


def _pct(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.1f}%"


@dataclass
class _Section:
    """A report section: paragraphs and tables in the order added, then figures."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (headers, rows)))


def _sections(report: Report, figure_names: list[str]) -> list[_Section]:
    d = report.data
    meta = d["meta"]
    years = d["years"]
    final = str(years[-1])
    out: list[_Section] = []

    s = _Section("Scenario")
    s.para(
        f"Scenario **{meta['scenario']}** ({meta['description'] or 'no description'}); periods "
        f"{' → '.join(map(str, meta['periods']))}; coordination: {meta['coordination']}; seed {meta['seed']}, "
        f"{meta['runs']} run(s). Config: {meta['config'] or '-'}. Created {meta['created']} by landuse "
        f"{meta['landuse_version']}."
    )
    g = meta["grid"]
    s.para(f"Grid: {g['rows']} × {g['cols']} cells of {g['cell_size_m']:g} m, {g['crs']}.")
    s.table(["input layer", "file"], [[k, v] for k, v in meta["inputs"].items()])
    cs_ = d["checks_summary"]
    enforced = f"{cs_['checks'] - cs_['not_enforced']} enforced checks"
    s.para(f"**Result: all {enforced} pass.**" if d["passed"] else
           f"**Result: FAILED** — {cs_['failed']} of {enforced} fail (listed first under Policy checks).")
    out.append(s)
    trend = (d.get("extra") or {}).get("demand_trend")
    if trend:  # demand derived from a growth rate or the history layers (landuse.allocation.demand_trend)
        s = _Section("Demand")
        s.para(trend["statement"] + "".join(f" Note: {n}" for n in trend["notes"]))
        types = list(trend["cluster"])
        ends = list(next(iter(trend["cluster"].values()), {}))
        s.table(["period", *(f"{t} ha" for t in types)],
                [[y, *(_fmt(trend["cluster"][t][y]) for t in types)] for y in ends])
        out.append(s)
    out.append(_checks_section(report))
    out += _lp_sections(d.get("extra") or {}, report, figure_names)

    q = d["quotas"][final]
    s = _Section(f"Open-space quota and farmland ({final})")
    quota = q["quota"]
    s.para(
        "No open-space quota configured." if quota is None else
        f"Quota: at least {100 * quota['share']:g}% of land area as protected open space, per {quota['unit']}"
        f"{' (water counted)' if quota['include_water'] else ''}."
    )
    rows = []
    for u in q["units"]:
        status = "-" if u["quota_met"] is None else ("ok" if u["quota_met"] else "FAIL")
        rows.append([u["unit"], _fmt(u["land_area_ha"]), _fmt(u["open_space_ha"]), _pct(u["open_space_share"]),
                     _pct(u["quota_share"]), _fmt(u["margin_ha"]), status, _fmt(u["farmland_before_ha"]),
                     _fmt(u["farmland_after_ha"]), _fmt(u["farmland_loss_ha"]), _fmt(u["new_urban_ha"])])
    s.table(["unit", "land ha", "open space ha", "share", "quota", "margin ha", "status",
                      "farmland before ha", "farmland after ha", "farmland lost ha", "new urban ha"], rows)
    s.para("Farmland lost here is gross (farmland at the start that is no longer farmland), from the start year; "
           "the farmland-loss cap is checked per period under Policy checks.")
    for key, label in (("permanent_farmland", "Permanent farmland"), ("red_line", "Ecological red line")):
        p = q[key]
        if not p["present"]:
            s.para(f"{label}: no layer.")
            continue
        txt = "intact" if p["intact"] else f"{p['converted_cells']} cell(s) converted"
        s.para(f"{label}: {p['cells']:,} cells, {txt}{'' if p['enforced'] else ' (not enforced)'}.")
        if p["converted"]:
            s.table(["row", "col", "x", "y", "before", "after"],
                             [[str(c["row"]), str(c["col"]), _fmt(c["x"]), _fmt(c["y"]), c["before"], c["after"]]
                              for c in p["converted"][:20]])
    s.figures += [f for f in ("quota.png", "farmland_loss.png") if f in figure_names]
    out.append(s)

    s = _Section("Land use")
    names = [c.name for c in report.classes]
    s.table(["class", *map(str, years)],
                     [[n, *(_fmt(d["class_areas_ha"][str(y)][n]) for y in years)] for n in names])
    s.figures += [f for f in ("landuse.png", "change.png") if f in figure_names]
    out.append(s)

    s = _Section("Urban form (landscape metrics)")
    s.para(
        f"FRAGSTATS class-level metrics, {d['meta']['evaluation']['connectivity']}-connectivity; edge density "
        "excludes the landscape boundary; areas in ha, LPI and AI in %, ED in m/ha. SHAPE_AM is the "
        "area-weighted mean shape index: 1 when every patch is as compact as a raster patch of its area can "
        "be, larger as patches grow irregular."
    )
    keys = ["number_of_patches", "largest_patch_index", "mean_patch_area", "edge_density",
            "landscape_shape_index", "aggregation_index", "shape_index_am"]
    short = ["NP", "LPI %", "AREA_MN ha", "ED m/ha", "LSI", "AI %", "SHAPE_AM"]
    rows = []
    for y in years:
        for cls in d["landscape_metrics"][str(y)]:  # urban, then each urban type of the scheme
            m = d["landscape_metrics"][str(y)][cls]
            rows.append([str(y), cls, *(_fmt(m[k], 0 if k == "number_of_patches" else 2) for k in keys)])
    s.table(["year", "class", *short], rows)
    out.append(s)

    if d["expansion"]:
        s = _Section("Expansion types (Landscape Expansion Index)")
        rows = []
        for period, e in d["expansion"].items():
            rows.append([period, _fmt(e["patches"]), _fmt(e["new_urban_ha"]),
                         *(f"{_pct(e['share_area'][t])} / {_pct(e['share_count'][t])}" for t in EXPANSION_TYPES),
                         _fmt(e["area_weighted_lei"])])
        s.para("Shares by area / by count of new urban patches. Infilling LEI > 50, "
                            "edge-expansion 0 < LEI ≤ 50, outlying LEI = 0.")
        s.table(["period", "new patches", "new urban ha", "infilling", "edge-expansion", "outlying",
                          "area-weighted LEI"], rows)
        s.figures += [f for f in ("expansion.png",) if f in figure_names]
        out.append(s)

    if d["probability"] or d["growth_boundary"]:
        s = _Section("Growth probability and growth boundary")
        for k, p in (d["probability"] or {}).items():
            s.para(f"Probability ({k}): mean {_fmt(p['mean'], 3)}; "
                                f"{_fmt(p['area_at_least_0_5_ha'])} ha at 0.5 or more.")
        gb = d["growth_boundary"]
        if gb:
            par = gb["parameters"]
            s.para(
                f"Growth boundary: {_fmt(gb['area_ha'])} ha, {_pct(gb['share_of_region'])} of the region, "
                f"{gb['patches']} patch(es); holds {_pct(gb['urban_inside_share'])} of existing urban land; "
                f"{gb['red_line_cells_inside']} red-line cells inside. Parameters: threshold "
                f"{par.get('threshold', '-')}, closing {par.get('closing_radius_m', '-')} m, opening "
                f"{par.get('opening_radius_m', '-')} m, minimum area {par.get('min_area_ha', '-')} ha."
            )
        s.figures += [f for f in ("probability.png", "growth_boundary.png") if f in figure_names]
        out.append(s)

    if d["validation"]:
        s = _Section("Validation against observed land use")
        rows = []
        for y, v in d["validation"].items():
            c = v["change_components"]
            rows.append([y, _fmt(v["figure_of_merit"], 3), _fmt(v["overall_accuracy"], 3), _fmt(v["kappa"], 3),
                         _fmt(v["quantity_disagreement"], 3), _fmt(v["allocation_disagreement"], 3),
                         _fmt(v["lee_sallee"]["urban"], 3), _fmt(c["hits"]), _fmt(c["misses"]),
                         _fmt(c["wrong_hits"]), _fmt(c["false_alarms"])])
        s.table(["year", "FoM", "accuracy", "kappa", "quantity dis.", "allocation dis.",
                          "Lee-Sallee (urban)", "hits", "misses", "wrong hits", "false alarms"], rows)
        out.append(s)

    if report.allocation is not None:
        s = _Section("Allocation")
        df = report.allocation
        head = df.head(50)
        s.para(f"{len(df)} rows{' (first 50 shown; all in report.json)' if len(df) > 50 else ''}.")
        s.table([str(c) for c in head.columns],
                         [[_fmt(v.item() if isinstance(v, np.generic) else v, 2) for v in r]
                          for r in head.itertuples(index=False)])
        out.append(s)
    return out


_STATUS = {True: "ok", False: "FAIL", None: "not enforced"}


def _check_value(v: Any, units: str) -> str:
    return _fmt(None if v is None else float(v), {"cells": 0, "ratio": 3, "%": 2}.get(units, 1))


def _checks_section(report: Report) -> _Section:
    """Every check, failing rows first: per period and unit, planned vs achieved, margin."""
    d = report.data
    cs = d["checks_summary"]
    s = _Section("Policy checks")
    s.para(
        f"{cs['checks']} checks: {cs['passed']} pass, {cs['failed']} fail, {cs['not_enforced']} not enforced. "
        "Achieved is computed from the land-use maps (and from the Monte Carlo probability rasters for the "
        "rows named ..._probability), planned from the allocation; the margin is signed so that ≥ 0 passes "
        "(percentage points, pp, for shares in %). Failing rows first, marked FAIL."
    )
    rows = []
    for r in sorted(d["checks"], key=lambda r: {False: 0, True: 1, None: 2}[r["passed"]]):
        u = r["units"]
        rows.append([_STATUS[r["passed"]], r["check"], str(r["period"]),
                     r["unit"], _check_value(r["limit"], u), _check_value(r["planned"], u),
                     _check_value(r["achieved"], u), _check_value(r["margin"], u), "pp" if u == "%" else u,
                     r["detail"]])
    if rows:
        s.table(["status", "check", "period", "unit", "limit", "planned", "achieved", "margin", "units", "detail"],
                rows)
    else:
        s.para("No policy is configured that can be checked.")
    return s


def _km(m: float | None) -> float | None:
    return None if m is None else m / 1000.0


def _lp_sections(extra: Mapping[str, Any], report: Report, figure_names: list[str] = ()) -> list[_Section]:
    """Shadow prices of the binding policies and the cost of fragmentation, in planners' units."""
    out = []
    binding = extra.get("binding_policies") or {}
    rows = [(period, b) for period, items in binding.items() for b in items]
    if rows:
        w_farm = float(report.data["meta"].get("allocation_weights", {}).get("farmland") or 0.0)
        s = _Section("Shadow prices of binding policies")
        s.para(
            "What each binding policy costs, from the LP's duals: the change in the objective if the policy "
            "were tightened by one unit (column 'per'). "
            + (f"'≈ farmland ha' converts it at the objective's farmland weight ({w_farm:g} per ha): the "
               "farmland loss that would cost the plan as much." if w_farm > 0 else "")
        )
        head = ["period", "policy", "cost (objective)", "per", *(["≈ farmland ha"] if w_farm > 0 else []), "meaning"]
        s.table(head, [[str(p), b["constraint"], _fmt(b["cost"], 3), b["unit"],
                        *([_fmt(b["cost"] / w_farm if b["cost"] is not None else None, 1)] if w_farm > 0 else []),
                        b["meaning"]] for p, b in rows])
        out.append(s)
    frag = extra.get("fragmentation") or {}
    if frag:
        s = _Section("Cost of fragmentation (city-by-city vs cluster-wide plan)")
        s.para(
            "Each period planned twice by the LP: once cluster-wide, once with every city meeting its own demand "
            "inside its own border. 'Extra' is fragmented minus coordinated: hectares of farmland and open space "
            "the fragmented plan loses on top, and the km it adds to the mean distance from new urban land to "
            "existing urban land (positive: fragmentation is worse)."
        )
        rows, tot, n_dist, errors = [], {"f": 0.0, "o": 0.0, "d": 0.0, "obj": 0.0}, 0, []
        for period, v in frag.items():
            if "differences" not in v:
                errors.append(f"{period}: {v.get('error', v.get('skipped', 'not computed'))}")
                continue
            c, f, dif = v["coordinated"], v["fragmented"], v["differences"]
            rows.append([str(period), _fmt(c["farmland_lost_ha"]), _fmt(f["farmland_lost_ha"]),
                         _fmt(dif["farmland_lost_ha"]), _fmt(c["open_space_lost_ha"]), _fmt(f["open_space_lost_ha"]),
                         _fmt(dif["open_space_lost_ha"]), _fmt(_km(c["mean_distance_new_m"]), 2),
                         _fmt(_km(f["mean_distance_new_m"]), 2), _fmt(_km(dif["mean_distance_new_m"]), 2),
                         _fmt(dif["objective"], 2)])
            for key, k in (("farmland_lost_ha", "f"), ("open_space_lost_ha", "o"), ("objective", "obj")):
                tot[k] += dif[key] or 0.0
            if dif["mean_distance_new_m"] is not None:
                tot["d"] += dif["mean_distance_new_m"] / 1000.0
                n_dist += 1
        if len(rows) > 1:
            rows.append(["total", "", "", _fmt(tot["f"]), "", "", _fmt(tot["o"]), "", "",
                         _fmt(tot["d"] / n_dist if n_dist else None, 2) + " (mean)", _fmt(tot["obj"], 2)])
        if rows:
            s.table(["period", "farmland lost ha (cluster)", "farmland lost ha (city by city)", "extra farmland ha",
                     "open space lost ha (cluster)", "open space lost ha (city by city)", "extra open space ha",
                     "mean distance km (cluster)", "mean distance km (city by city)", "added km",
                     "objective difference"], rows)
        for e in errors:
            s.para(f"Not computed for {e}")
        out.append(s)
    shrink = extra.get("shrinkage") or []
    if shrink:
        s = _Section("Growth and shrinkage per city")
        notes = extra.get("demand_notes") or []
        s.para("Demand from population and jobs (demand.people): each period asks for the change of land each city "
               "needs. Growth first reoccupies the city's vacant land; a surplus is released (shrinkage.outcome: "
               "vacant land stays urban and is marked in vacancy_<year>.tif, restored land reverts to a non-urban "
               "class). Hectares at the end of each period; released and reoccupied within it."
               + ("" if not notes else " Notes: " + " ".join(notes)))
        s.table(["period", "city", "urban ha", "occupied ha", "vacant ha", "restored ha (since start)",
                 "released ha", "reoccupied ha", "release shortfall ha"],
                [[str(r["period"]), f"city {r['city']}", _fmt(r["urban_ha"]), _fmt(r["occupied_ha"]),
                  _fmt(r["vacant_ha"]), _fmt(r["restored_ha"]), _fmt(r["released_ha"]), _fmt(r["reoccupied_ha"]),
                  _fmt(r["release_shortfall_ha"])] for r in shrink])
        s.figures += [f for f in ("shrinkage.png",) if f in figure_names]
        out.append(s)
    transfers = extra.get("transfers") or []
    if transfers:
        s = _Section("Where each city's demand went (cluster-wide plan)")
        s.para(
            "With demand given per city, the cluster-wide plan may place a city's demand in another city. Each city "
            "serves its own demand first (origin = host); what it does not host is attributed to the cities that "
            "host more than their own demand, in proportion to their surplus. policy.transfers.max_export_share "
            "bounds the share a city may send elsewhere."
        )
        by = {}
        for t in transfers:
            key = (t["period"], t["type"], t["origin_city"])
            by.setdefault(key, []).append(t)
        rows = []
        for (period, typ, origin), items in sorted(by.items()):
            total = sum(i["hectares"] for i in items)
            home = sum(i["hectares"] for i in items if i["host_city"] == origin)
            away = ", ".join(f"city {i['host_city']}: {_fmt(i['hectares'])} ha" for i in items
                             if i["host_city"] != origin)
            rows.append([str(period), str(typ), f"city {origin}", _fmt(total), _fmt(home),
                         _pct(1 - home / total if total > 0 else 0.0), away or "-"])
        s.table(["period", "type", "origin", "demand ha", "hosted at home ha", "exported", "placed in"], rows)
        out.append(s)
    return out


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, figure_names: list[str], *, figure_dir: str = "figures") -> str:
    """The report as Markdown, figures referenced as ``figures/<name>.png``."""
    lines = [f"# landuse report: {report.data['meta']['scenario']}", ""]
    for s in _sections(report, figure_names):
        lines += [f"## {s.title}", ""]
        for kind, payload in s.blocks:
            if kind == "p":
                lines += [payload, ""]
                continue
            headers, rows = payload
            lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            lines.append("|" + "|".join("---" for _ in headers) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            lines.append("")
        for f in s.figures:
            lines += [f"![{_CAPTIONS.get(f, f)}]({figure_dir}/{f})", ""]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .55em}
th{background:#f3f3f3}td{text-align:right}td:first-child{text-align:left}
tr.fail td{background:#fde0dd;font-weight:600}
figure{margin:1em 0}figure img{max-width:100%;height:auto}figcaption{font-size:.85em;color:#555}
"""


def _inline_md(text: str) -> str:
    parts = _html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def render_html(report: Report, figures: Mapping[str, bytes]) -> str:
    """A self-contained HTML page: tables and every figure embedded as a base64 PNG data URI."""
    title = f"landuse report: {report.data['meta']['scenario']}"
    body = [f"<h1>{_html.escape(title)}</h1>"]
    for s in _sections(report, list(figures)):
        body.append(f"<h2>{_html.escape(s.title)}</h2>")
        for kind, payload in s.blocks:
            if kind == "p":
                body.append(f"<p>{_inline_md(payload)}</p>")
                continue
            headers, rows = payload
            body.append("<table><thead><tr>" + "".join(f"<th>{_html.escape(h)}</th>" for h in headers)
                        + "</tr></thead><tbody>")
            body += [("<tr class=\"fail\">" if r and r[0] == "FAIL" else "<tr>")
                     + "".join(f"<td>{_html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows]
            body.append("</tbody></table>")
        for f in s.figures:
            b64 = base64.b64encode(figures[f]).decode("ascii")
            cap = _html.escape(_CAPTIONS.get(f, f))
            body.append(f'<figure><img src="data:image/png;base64,{b64}" alt="{cap}" data-name="{f}">'
                        f"<figcaption>{cap}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(
    out_dir: str | os.PathLike,
    report: Report,
    *,
    figures: bool = True,
    html: bool = True,
) -> list[Path]:
    """Write ``report.json``, ``report.md``, ``report.html`` and ``figures/*.png`` into ``out_dir``.

    Every file is written atomically (temporary file, then rename). ``report.md``
    references the PNGs under ``figures/``; ``report.html`` embeds them as base64 data
    URIs, so it is self-contained. With ``figures=False`` no PNG is drawn and neither
    document shows figures; with ``html=False`` no HTML is written.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    written = [write_text(out / "report.json", json.dumps(report.data, indent=2, allow_nan=False) + "\n")]
    figs = make_figures(report) if figures else {}
    for name, png in figs.items():
        written.append(write_bytes(out / "figures" / name, png))
    written.append(write_text(out / "report.md", render_markdown(report, list(figs))))
    if html:
        written.append(write_text(out / "report.html", render_html(report, figs)))
    return written
