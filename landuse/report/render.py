"""The report as text: its sections (paragraphs, tables, figure references), rendered as Markdown and HTML.

:func:`render_markdown` gives ``report.md`` (figures referenced under ``figures/``), :func:`render_html` a
self-contained ``report.html`` (figures embedded as base64 PNG data URIs); both walk the same sections, built
from a :class:`~landuse.report.data.Report`'s data, one function per section.
"""

from __future__ import annotations

import base64
import html as _html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from landuse.evaluation.metrics import EXPANSION_TYPES
from landuse.report.data import Report
from landuse.report.figures import CAPTIONS


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
    """The report's sections in reading order (a section without data is left out)."""
    d = report.data
    extra = d.get("extra") or {}
    out = [_scenario_section(d)]
    out += _demand_sections(extra)
    out.append(_checks_section(report))
    out += _lp_sections(extra, report, figure_names)
    out.append(_quota_section(d, figure_names))
    out.append(_landuse_section(report, figure_names))
    out.append(_metrics_section(d))
    out += _expansion_sections(d, figure_names)
    out += _probability_sections(d, figure_names)
    out += _validation_sections(d)
    out += _allocation_sections(report)
    return out


def _scenario_section(d: Mapping[str, Any]) -> _Section:
    """The scenario, its grid and inputs, and the overall result."""
    meta = d["meta"]
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
    return s


def _demand_sections(extra: Mapping[str, Any]) -> list[_Section]:
    """Demand derived from a growth rate or the history layers (landuse.allocation.demand_trend), if it was."""
    trend = extra.get("demand_trend")
    if not trend:
        return []
    s = _Section("Demand")
    s.para(trend["statement"] + "".join(f" Note: {n}" for n in trend["notes"]))
    types = list(trend["cluster"])
    ends = list(next(iter(trend["cluster"].values()), {}))
    s.table(["period", *(f"{t} ha" for t in types)],
            [[y, *(_fmt(trend["cluster"][t][y]) for t in types)] for y in ends])
    return [s]


def _quota_section(d: Mapping[str, Any], figure_names: list[str]) -> _Section:
    """Open space against the quota, farmland lost, permanent farmland and red line, at the final year."""
    final = str(d["years"][-1])
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
    return s


def _landuse_section(report: Report, figure_names: list[str]) -> _Section:
    """Area of each class per year."""
    d = report.data
    years = d["years"]
    s = _Section("Land use")
    names = [c.name for c in report.classes]
    s.table(["class", *map(str, years)],
                     [[n, *(_fmt(d["class_areas_ha"][str(y)][n]) for y in years)] for n in names])
    s.figures += [f for f in ("landuse.png", "change.png") if f in figure_names]
    return s


def _metrics_section(d: Mapping[str, Any]) -> _Section:
    """FRAGSTATS class-level metrics of urban land and of each urban type, per year."""
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
    for y in d["years"]:
        for cls in d["landscape_metrics"][str(y)]:  # urban, then each urban type of the scheme
            m = d["landscape_metrics"][str(y)][cls]
            rows.append([str(y), cls, *(_fmt(m[k], 0 if k == "number_of_patches" else 2) for k in keys)])
    s.table(["year", "class", *short], rows)
    return s


def _expansion_sections(d: Mapping[str, Any], figure_names: list[str]) -> list[_Section]:
    """LEI expansion types per period, if any."""
    if not d["expansion"]:
        return []
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
    return [s]


def _probability_sections(d: Mapping[str, Any], figure_names: list[str]) -> list[_Section]:
    """The growth probability summary and the growth boundary, if either was computed."""
    if not (d["probability"] or d["growth_boundary"]):
        return []
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
    return [s]


def _validation_sections(d: Mapping[str, Any]) -> list[_Section]:
    """Agreement with observed land use, per year it was given for."""
    if not d["validation"]:
        return []
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
    return [s]


def _allocation_sections(report: Report) -> list[_Section]:
    """The first 50 rows of the allocation table, if one was given."""
    if report.allocation is None:
        return []
    s = _Section("Allocation")
    df = report.allocation
    head = df.head(50)
    s.para(f"{len(df)} rows{' (first 50 shown; all in report.json)' if len(df) > 50 else ''}.")
    s.table([str(c) for c in head.columns],
                     [[_fmt(v.item() if isinstance(v, np.generic) else v, 2) for v in r]
                      for r in head.itertuples(index=False)])
    return [s]


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
    """Shadow prices of the binding policies and the cost of fragmentation, in planners' units.

    Then growth and shrinkage per city and where each city's demand went, when the run recorded them.
    """
    return (_shadow_price_sections(extra, report) + _fragmentation_sections(extra)
            + _shrinkage_sections(extra, figure_names) + _transfers_sections(extra))


def _shadow_price_sections(extra: Mapping[str, Any], report: Report) -> list[_Section]:
    """What each binding policy costs, from the LP's duals (``extra["binding_policies"]``)."""
    binding = extra.get("binding_policies") or {}
    rows = [(period, b) for period, items in binding.items() for b in items]
    if not rows:
        return []
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
    return [s]


def _fragmentation_sections(extra: Mapping[str, Any]) -> list[_Section]:
    """City-by-city against cluster-wide plans per period (``extra["fragmentation"]``)."""
    frag = extra.get("fragmentation") or {}
    if not frag:
        return []
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
    return [s]


def _shrinkage_sections(extra: Mapping[str, Any], figure_names: list[str]) -> list[_Section]:
    """Urban, occupied, vacant and restored land per city and period (``extra["shrinkage"]``)."""
    shrink = extra.get("shrinkage") or []
    if not shrink:
        return []
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
    return [s]


def _transfers_sections(extra: Mapping[str, Any]) -> list[_Section]:
    """Where each city's demand was placed by a cluster-wide plan (``extra["transfers"]``)."""
    transfers = extra.get("transfers") or []
    if not transfers:
        return []
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
    return [s]


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
            lines += [f"![{CAPTIONS.get(f, f)}]({figure_dir}/{f})", ""]
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
            cap = _html.escape(CAPTIONS.get(f, f))
            body.append(f'<figure><img src="data:image/png;base64,{b64}" alt="{cap}" data-name="{f}">'
                        f"<figcaption>{cap}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
