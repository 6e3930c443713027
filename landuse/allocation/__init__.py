"""The LP allocator: how much land of each urban type goes to each zone in each period.

Contract: demand (:mod:`~landuse.allocation.demand`, :mod:`~landuse.allocation.demand_trend`) becomes hectares
per type, city and period; :mod:`~landuse.allocation.zones` cuts the region into zones;
:mod:`~landuse.allocation.pieces` defines the LP's pieces cell by cell (source roles and classes, band bits) and
:mod:`~landuse.allocation.zone_stats` aggregates a Landscape into the zone table;
:mod:`~landuse.allocation.model` builds the linear program (policies as constraints) as a sparse matrix;
:mod:`~landuse.allocation.solvers` solves it whole (HiGHS or CBC), :mod:`~landuse.allocation.working_set` on a
working set priced by the duals, :mod:`~landuse.allocation.merged` on pieces merged per city and role (to settle
and explain infeasibility), and :mod:`~landuse.allocation.infeasible` explains an infeasible period;
:mod:`~landuse.allocation.cells` rounds the solution to whole cells and :mod:`~landuse.allocation.results`
assembles the plan (:class:`~landuse.allocation.results.Allocation`); :mod:`~landuse.allocation.planner` holds
:func:`allocate`, which does all of that for one period; :mod:`~landuse.allocation.coordination` measures the
cost of fragmentation; :mod:`~landuse.allocation.handoff` turns a plan into the growth engine's units and the
next period's zone table; :mod:`~landuse.allocation.tables` writes the CSV tables;
:mod:`~landuse.allocation.shrink` plans where a shrinking city releases land. No raster is written here except
through :mod:`landuse.io`.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "allocate": "landuse.allocation.planner",
    "Allocation": "landuse.allocation.results",
    "zone_table": "landuse.allocation.zone_stats",
    "cell_pieces": "landuse.allocation.pieces",
    "build_model": "landuse.allocation.model",
    "compare_coordination": "landuse.allocation.coordination",
    "unit_raster": "landuse.allocation.handoff",
    "advance_zone_table": "landuse.allocation.handoff",
    "write_allocation_csv": "landuse.allocation.tables",
    "write_duals_csv": "landuse.allocation.tables",
    "zone_grid": "landuse.allocation.zones",
    "derive_demand": "landuse.allocation.demand",
    "apply_people_demand": "landuse.allocation.demand",
    "apply_trend_demand": "landuse.allocation.demand_trend",
    "plan_release": "landuse.allocation.shrink",
    "release_cells": "landuse.allocation.shrink",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
