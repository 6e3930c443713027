"""The cost of fragmentation: one period planned cluster-wide against city by city.

:func:`compare_coordination` solves the period both ways (reusing a plan already at hand) and returns a
:class:`CoordinationComparison`: both allocations and the differences, fragmented minus coordinated, in objective,
farmland and open space lost and mean distance of the new land to urban land.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from landuse.allocation.model import city_demand
from landuse.allocation.planner import allocate
from landuse.allocation.results import Allocation
from landuse.core.config import Scenario


@dataclass
class CoordinationComparison:
    """A cluster-wide plan against city-by-city plans for the same period.

    ``differences`` holds fragmented minus coordinated: ``objective``,
    ``farmland_lost_ha``, ``open_space_lost_ha``, ``mean_distance_new_m`` — the cost of
    fragmentation (positive = fragmentation is worse).
    """

    coordinated: Allocation
    fragmented: Allocation
    differences: dict[str, float]

    def summary(self) -> str:
        """A few lines for the terminal: each measure coordinated and fragmented, and their difference."""
        c, f = self.coordinated, self.fragmented
        lines = [f"cost of fragmentation, {c.period} (fragmented - coordinated):"]
        for key, a, b, unit in (
            ("objective", c.objective, f.objective, ""),
            ("farmland_lost_ha", c.farmland_lost_ha, f.farmland_lost_ha, " ha"),
            ("open_space_lost_ha", c.open_space_lost_ha, f.open_space_lost_ha, " ha"),
            ("mean_distance_new_m", c.mean_distance_new_m, f.mean_distance_new_m, " m"),
        ):
            lines.append(f"  {key:<22} coordinated {a:12.3f}{unit}  fragmented {b:12.3f}{unit}  "
                         f"difference {self.differences[key]:+.3f}{unit}")
        return "\n".join(lines)


def compare_coordination(
    zone_table: pd.DataFrame,
    scenario: Scenario,
    period: int,
    *,
    solver: str | None = None,
    farmland_lost_so_far_ha: float = 0.0,
    cell_area_ha: float | None = None,
    solved: Allocation | None = None,
) -> CoordinationComparison:
    """Solve the period cluster-wide and city by city; return both and the differences.

    The fragmented plan uses ``demand.by_city`` or the split of :func:`city_demand`; the
    coordinated plan meets the same total per type, so it is never worse in objective.
    ``solved``, an allocation of this zone table and period already at hand (e.g. the
    scenario's own plan, solved with the same options), is reused for its coordination
    instead of being solved again.
    """
    kw = dict(solver=solver, farmland_lost_so_far_ha=farmland_lost_so_far_ha, cell_area_ha=cell_area_ha)
    plans = {}
    if solved is not None and solved.period == period:
        plans[solved.coordination] = dataclasses.replace(solved, warnings=list(solved.warnings))
    for mode in ("city", "cluster"):
        if mode not in plans:
            plans[mode] = allocate(zone_table, scenario, period, coordination=mode, **kw)
    frag, coord = plans["city"], plans["cluster"]
    per_city, _ = city_demand(zone_table, scenario, period)
    for t in scenario.urban_types:
        tot = sum(v for (_, tt), v in per_city.items() if tt == t)
        cl = scenario.config.demand.cluster(t, period)
        if abs(tot - cl) > 1e-6 * max(1.0, cl):
            coord.warnings.append(f"{t}: cluster demand {cl:.1f} ha differs from the sum of city demands "
                                  f"{tot:.1f} ha; the comparison is not like for like")
    diff = {
        "objective": frag.objective - coord.objective,
        "farmland_lost_ha": frag.farmland_lost_ha - coord.farmland_lost_ha,
        "open_space_lost_ha": frag.open_space_lost_ha - coord.open_space_lost_ha,
        "mean_distance_new_m": frag.mean_distance_new_m - coord.mean_distance_new_m,
    }
    return CoordinationComparison(coordinated=coord, fragmented=frag, differences=diff)
