"""What the outputs say: quotas, farmland loss, sprawl metrics, policy checks, the expected map, the UGB.

Contract: functions read rasters (or arrays) and return tables and numbers; nothing here changes a map.
:mod:`~landuse.evaluation.metrics` (quotas, landscape metrics, validation statistics such as figure of merit,
Kappa, Lee–Sallee), :mod:`~landuse.evaluation.checks` (each policy re-computed from the rasters, from the cells
:mod:`~landuse.evaluation.check_counts` counts),
:mod:`~landuse.evaluation.expected` (the amounts placed on the cells the ensemble converted most often),
:mod:`~landuse.evaluation.boundary` (the growth boundary delineated from the growth probability).
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "quota_report": "landuse.evaluation.metrics",
    "QuotaReport": "landuse.evaluation.metrics",
    "landscape_metrics": "landuse.evaluation.metrics",
    "figure_of_merit": "landuse.evaluation.metrics",
    "kappa": "landuse.evaluation.metrics",
    "lee_sallee": "landuse.evaluation.metrics",
    "validation_metrics": "landuse.evaluation.metrics",
    "expansion_types": "landuse.evaluation.metrics",
    "policy_checks": "landuse.evaluation.checks",
    "failure_lines": "landuse.evaluation.checks",
    "expected_map": "landuse.evaluation.expected",
    "allocate_by_rank": "landuse.evaluation.expected",
    "delineate_ugb": "landuse.evaluation.boundary",
    "write_ugb": "landuse.evaluation.boundary",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
