"""What a planner reads: ``report.json``, ``report.md``, ``report.html``, figures, and run comparisons.

Contract: :func:`~landuse.report.data.build_report` turns a run's results into a report and
:func:`~landuse.report.document.write_report` writes it (every figure is drawn in :mod:`~landuse.report.figures`, the
text in :mod:`~landuse.report.render`); :func:`~landuse.report.compare.compare_runs` compares finished run folders side
by side. The calibration and hindcast figures are drawn in :mod:`~landuse.report.figures` too.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "build_report": "landuse.report.data",
    "write_report": "landuse.report.document",
    "compare_runs": "landuse.report.compare",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
