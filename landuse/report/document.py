"""Scenario reports written out: ``report.json``, ``report.md``, a self-contained ``report.html`` and PNG figures.

Two calls::

    report = build_report(scenario=scenario, landscape=ds, landuse_by_year={2030: lu2030, 2040: lu2040},
                          probability=prob, ugb=ugb, allocation=table)
    paths = write_report(out_dir, report)

:func:`landuse.report.data.build_report` computes everything (every policy check per period and unit from
the maps, :func:`landuse.evaluation.checks.policy_checks`; open space and farmland per year,
landscape metrics, LEI expansion types per period, growth-boundary summary, validation
against observed maps when given) into :attr:`~landuse.report.data.Report.data`, a JSON-compatible dict, and keeps
the arrays the figures need. :func:`write_report` writes the files atomically: the figures drawn by
:mod:`landuse.report.figures` (matplotlib's object API on the Agg canvas: no pyplot, no global backend state), the
Markdown and HTML rendered by :mod:`landuse.report.render`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from landuse.io.rasters import write_bytes, write_text
from landuse.report.data import Report
from landuse.report.figures import make_figures
from landuse.report.render import render_html, render_markdown


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
