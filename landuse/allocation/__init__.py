"""The LP allocator: how much land of each urban type goes to each zone in each period.

Contract: demand (:mod:`~landuse.allocation.demand`, :mod:`~landuse.allocation.demand_trend`) becomes hectares
per type, city and period; :mod:`~landuse.allocation.zones` cuts the region into zones;
:mod:`~landuse.allocation.lp` builds the zone table, the linear program (policies as constraints) and
solves it (HiGHS or CBC), returning targets in whole cells per zone and type; :mod:`~landuse.allocation.shrink`
plans where a shrinking city releases land. No raster is written here except through :mod:`landuse.io`.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "allocate": "landuse.allocation.lp",
    "zone_table": "landuse.allocation.lp",
    "build_model": "landuse.allocation.lp",
    "compare_coordination": "landuse.allocation.lp",
    "write_allocation_csv": "landuse.allocation.lp",
    "zone_grid": "landuse.allocation.zones",
    "derive_demand": "landuse.allocation.demand",
    "apply_people_demand": "landuse.allocation.demand",
    "apply_trend_demand": "landuse.allocation.demand_trend",
    "plan_release": "landuse.allocation.shrink",
    "release_cells": "landuse.allocation.shrink",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
