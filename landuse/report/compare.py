"""Side-by-side comparison of scenario runs (``landuse compare OUT_A OUT_B ...``).

Reads each run's ``report.json`` and ``manifest.json`` (and its final land-use GeoTIFF for
the maps) and writes ``compare.json``, ``compare.md``, a self-contained ``compare.html``
and ``compare_maps.png`` / ``compare_bars.png`` (drawn by :mod:`landuse.report.figures`), all atomically.

Rows of the table, per scenario, at the horizon (last period end):

* farmland lost and open space lost since the start year (hectares, cluster);
* open-space quota: units meeting it and the smallest margin (hectares);
* urban landscape metrics: number of patches, mean patch area, largest patch index,
  aggregation index, area-weighted mean shape index (SHAPE_AM);
* expansion types (LEI) of all new land over the horizon: shares by area;
* LP objective summed over periods, mean distance of new land to existing urban land;
* cost of fragmentation (city-by-city minus cluster-wide plan) summed over periods, where
  the run recorded it;
* growth-boundary area.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landuse.core.classes import ClassScheme, LandClass
from landuse.core.errors import LanduseError
from landuse.io.folders import OutputFolder, check_target
from landuse.io.rasters import write_bytes, write_text
from landuse.report.figures import compare_bars_png, compare_maps_png


@dataclass
class RunSummary:
    """The comparable figures of one run folder."""

    name: str
    folder: Path
    final_year: int
    figures: dict[str, float | str | None]
    classes: ClassScheme
    landuse_path: Path


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LanduseError(
            f"{path.parent} is not a landuse run folder: {path.name} is missing; pass folders written by `landuse run`"
        ) from None
    except ValueError as exc:
        raise LanduseError(f"{path} is not valid JSON ({exc}); re-run the scenario") from None


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _frag(ok: list[dict], failed: bool, key: str) -> float | str | None:
    if failed:
        return "city plans infeasible"
    return float(sum(d[key] for d in ok)) if ok else None


def summarise_run(folder: str | os.PathLike) -> RunSummary:
    """Collect the comparable figures of one ``landuse run`` output folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LanduseError(f"run folder not found: {folder.resolve()}")
    rep = _load_json(folder / "report.json")
    man = _load_json(folder / "manifest.json")
    years = [int(y) for y in rep["years"]]
    start, final = years[0], years[-1]
    q = rep["quotas"][str(final)]
    cluster = q["units"][-1]
    cities = [u for u in q["units"] if u["unit"] != "cluster"]
    with_quota = [u for u in cities if u.get("quota_met") is not None] or (
        [cluster] if cluster.get("quota_met") is not None else []
    )
    m = rep["landscape_metrics"][str(final)]["urban"]
    exp = rep.get("expansion", {}).get(f"{start}-{final}", {})
    share_area = exp.get("share_area", {}) if isinstance(exp, dict) else {}
    extra = rep.get("extra") or {}
    frag = extra.get("fragmentation") or {}
    frag_ok = [v["differences"] for v in frag.values() if isinstance(v, dict) and "differences" in v]
    frag_failed = bool(frag) and len(frag_ok) < len(frag)
    objective = extra.get("objective") or {}
    dist = extra.get("mean_distance_new_m") or {}
    ugb = rep.get("growth_boundary") or {}
    figures = {
        "farmland_lost_ha": _num(cluster.get("farmland_loss_ha")),
        "open_space_lost_ha": _num((cluster.get("open_space_before_ha") or 0) - (cluster.get("open_space_ha") or 0)),
        "new_urban_ha": _num(cluster.get("new_urban_ha")),
        "quota_units_met": float(sum(1 for u in with_quota if u.get("quota_met"))) if with_quota else None,
        "quota_units": float(len(with_quota)) if with_quota else None,
        "quota_min_margin_ha": min((u["margin_ha"] for u in with_quota if u.get("margin_ha") is not None),
                                   default=None),
        "number_of_patches": _num(m.get("number_of_patches")),
        "mean_patch_area_ha": _num(m.get("mean_patch_area")),
        "largest_patch_index": _num(m.get("largest_patch_index")),
        "aggregation_index": _num(m.get("aggregation_index")),
        "shape_index_am": _num(m.get("shape_index_am")),
        "lei_infilling_share": _num(share_area.get("infilling")),
        "lei_edge_expansion_share": _num(share_area.get("edge_expansion")),
        "lei_outlying_share": _num(share_area.get("outlying")),
        "objective": float(sum(objective.values())) if objective else None,
        "mean_distance_new_m": float(np.mean(list(dist.values()))) if dist else None,
        "fragmentation_objective": _frag(frag_ok, frag_failed, "objective"),
        "fragmentation_farmland_ha": _frag(frag_ok, frag_failed, "farmland_lost_ha"),
        "fragmentation_open_space_ha": _frag(frag_ok, frag_failed, "open_space_lost_ha"),
        "growth_boundary_ha": _num(ugb.get("area_ha")),
        "checks_passed": 1.0 if rep.get("passed") else 0.0,
    }
    classes = ClassScheme(tuple(LandClass(**c) for c in rep["meta"]["classes"]))
    return RunSummary(
        name=str(man.get("scenario", rep["meta"]["scenario"])),
        folder=folder,
        final_year=final,
        figures=figures,
        classes=classes,
        landuse_path=folder / f"landuse_{final}.tif",
    )


LABELS = {
    "farmland_lost_ha": "farmland lost (ha)",
    "open_space_lost_ha": "open space lost (ha)",
    "new_urban_ha": "new urban land (ha)",
    "quota_units_met": "units meeting the open-space quota",
    "quota_units": "units with a quota",
    "quota_min_margin_ha": "smallest quota margin (ha)",
    "number_of_patches": "urban patches",
    "mean_patch_area_ha": "mean urban patch area (ha)",
    "largest_patch_index": "largest patch index (%)",
    "aggregation_index": "aggregation index (%)",
    "shape_index_am": "shape index (SHAPE_AM)",
    "lei_infilling_share": "new land by infilling (share of area)",
    "lei_edge_expansion_share": "new land by edge expansion (share)",
    "lei_outlying_share": "new land outlying / leapfrog (share)",
    "objective": "LP objective, summed over periods",
    "mean_distance_new_m": "mean distance of new land to urban land (m)",
    "fragmentation_objective": "cost of fragmentation: objective",
    "fragmentation_farmland_ha": "cost of fragmentation: farmland (ha)",
    "fragmentation_open_space_ha": "cost of fragmentation: open space (ha)",
    "growth_boundary_ha": "delineated growth boundary (ha)",
    "checks_passed": "all checks pass (1 = yes)",
}


def format_value(v: float | str | None) -> str:
    """A table cell of a comparison: ``-`` for None, whole numbers from 100 up, else three decimals."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.3f}"


def _check_one_region(runs: list[RunSummary]) -> None:
    """Refuse runs on different grids: their figures are of different regions, side by side they mislead."""
    from landuse.core.errors import GridMismatchError
    from landuse.io.rasters import check_same_grid, read_header

    def grid(h) -> str:
        return (f"{h.height} x {h.width} cells of {h.cell_size[0]:g} m from ({h.transform.c:.10g}, {h.transform.f:.10g}), "
                f"{h.crs}")

    first = read_header(runs[0].landuse_path)
    for r in runs[1:]:
        other = read_header(r.landuse_path)
        try:
            check_same_grid(first, other, ref_name=str(runs[0].folder), name=str(r.folder))
        except GridMismatchError:
            raise LanduseError(
                f"run folders {runs[0].folder} and {r.folder} are of different regions ({grid(first)}, against "
                f"{grid(other)}); compare runs of one region"
            ) from None


def compare_runs(folders: list[str | os.PathLike], out: str | os.PathLike, *, figures: bool = True,
                 force: bool = False) -> dict[str, Any]:
    """Compare run folders side by side; write ``compare.{json,md,html}`` and PNGs into ``out``.

    ``out`` is written as a whole (:class:`landuse.io.folders.OutputFolder`): a folder that
    ``landuse compare`` did not write is replaced only with ``force``, never one of the
    compared folders. Returns the comparison as a dict
    ``{"scenarios": [...], "rows": {key: [values]}}``.
    """
    if len(folders) < 2:
        raise LanduseError("compare needs at least two run folders")
    runs = [summarise_run(f) for f in folders]
    _check_one_region(runs)
    out = Path(out)
    for f in folders:
        if out.resolve() == Path(f).resolve():
            raise LanduseError(f"`out` {out} is one of the compared run folders; choose another folder")
    compared = [Path(f) / "manifest.json" for f in folders]
    check_target(out, command="compare", owner=None, force=force, protected=compared)
    runs = [summarise_run(f) for f in folders]
    data = {
        "scenarios": [r.name for r in runs],
        "folders": [str(r.folder.resolve()) for r in runs],
        "final_year": [r.final_year for r in runs],
        "rows": {k: [r.figures.get(k) for r in runs] for k in LABELS},
    }
    header = "| | " + " | ".join(r.name for r in runs) + " |"
    sep = "|---|" + "---|" * len(runs)
    rows = [f"| {LABELS[k]} | " + " | ".join(format_value(v) for v in vals) + " |" for k, vals in data["rows"].items()]
    md = ["# Scenario comparison", "", "Figures at each run's last period; cluster totals.", "", header, sep, *rows, ""]
    pngs: dict[str, bytes] = {}
    if figures:
        pngs = {"compare_maps.png": compare_maps_png(runs), "compare_bars.png": compare_bars_png(runs, LABELS)}
        md += [f"![{name}]({name})" for name in pngs] + [""]
    with OutputFolder(out, command="compare", owner=None, force=force, protected=compared) as stage:
        _write_compare(stage.path, data, md, pngs, runs)
        written = stage.commit({"compared": data["folders"]})
    data["files"] = [str(p) for p in written]
    return data


def _write_compare(d: Path, data: dict[str, Any], md: list[str], pngs: dict[str, bytes], runs: list) -> None:
    for name, data_png in pngs.items():
        write_bytes(d / name, data_png)
    write_text(d / "compare.json", json.dumps(data, indent=2) + "\n")
    write_text(d / "compare.md", "\n".join(md))
    table = ["<table><thead><tr><th></th>" + "".join(f"<th>{html.escape(r.name)}</th>" for r in runs)
             + "</tr></thead><tbody>"]
    for k, vals in data["rows"].items():
        table.append(f"<tr><td>{html.escape(LABELS[k])}</td>"
                     + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in vals) + "</tr>")
    table.append("</tbody></table>")
    imgs = [f'<figure><img src="data:image/png;base64,{base64.b64encode(b).decode("ascii")}" alt="{n}">'
            f"<figcaption>{n}</figcaption></figure>" for n, b in pngs.items()]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Scenario comparison</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
            "img{max-width:100%}</style></head><body><h1>Scenario comparison</h1>"
            + "".join(table) + "".join(imgs) + "</body></html>\n")
    write_text(d / "compare.html", page)
