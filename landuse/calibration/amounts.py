"""The observed change as amounts a historical simulation grows.

``calibration.amounts`` (:data:`AMOUNTS`) says how: ``allocator`` (default) — the cluster total per urban type
planned by the scenario's LP allocator, the engine growing the plan's units as in a run
(:func:`allocator_targets`); ``observed_zone`` — the observed gain of each allocation zone; ``cluster`` — one total
per type placed by the engine alone (the zones of :func:`quantity_zones`, the gains of :func:`observed_targets`).
Observed gain the model cannot make (:func:`reachable_cells`, :func:`unreachable_gain`) is left out of the amounts
and the scores, and reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario
from landuse.core.errors import ConfigError, InfeasibleAllocationError, SolverError

__all__ = [
    "AMOUNTS",
    "QUANTITIES",
    "allocator_targets",
    "observed_targets",
    "quantity_zones",
    "reachable_cells",
    "resolve_amounts",
    "unreachable_gain",
]

QUANTITIES: tuple[str, ...] = ("zone", "cluster")
"""How observed amounts are given to a historical simulation: per allocation zone, or one cluster-wide total."""

AMOUNTS: tuple[str, ...] = ("allocator", "observed_zone", "cluster")
"""``calibration.amounts``: the cluster totals through the scenario's LP allocator (as in a run), the
observed gain of each allocation zone, or one cluster-wide total per type grown directly by the engine."""


def resolve_amounts(amounts: str | None, quantities: str | None, scenario: Scenario) -> str:
    """``calibration.amounts`` as given (checked), from the older ``quantities`` name, or the scenario's."""
    if amounts is None:
        if quantities is not None:
            if quantities not in QUANTITIES:
                raise ConfigError(f"quantities must be one of {', '.join(QUANTITIES)}, got {quantities!r}")
            return "observed_zone" if quantities == "zone" else "cluster"
        return scenario.config.calibration.amounts
    if amounts not in AMOUNTS:
        raise ConfigError(f"calibration.amounts must be one of {', '.join(AMOUNTS)}, got {amounts!r}")
    return amounts


def quantity_zones(landscape: xr.Dataset, scenario: Scenario, *, quantities: str = "zone") -> np.ndarray:
    """Zone ids (int32, 0 outside) of a historical simulation's amounts.

    ``zone``: the allocation zones (:func:`landuse.allocation.zones.zone_grid`, cities crossed with
    ``allocation.block_size_m`` blocks); ``cluster``: one zone, the whole study area.
    """
    from landuse.allocation.zones import zone_grid

    if quantities not in QUANTITIES:
        raise ConfigError(f"quantities must be one of {', '.join(QUANTITIES)}, got {quantities!r}")
    if quantities == "cluster":
        return np.asarray(landscape["study_area"].values, dtype=bool).astype(np.int32)
    return np.asarray(zone_grid(landscape, block_size_m=scenario.config.allocation.block_size_m).zones, dtype=np.int32)


def observed_targets(before: np.ndarray, after: np.ndarray, zones: np.ndarray, valid: np.ndarray, scenario: Scenario,
                     *, period: int) -> pd.DataFrame:
    """Per zone and urban type, the cells that became that type between ``before`` and ``after``.

    Returns a frame ``period, zone, type, cells`` (zones with no gain left out): the
    demand of a historical simulation. It is the only thing of the later map a
    hindcast's prediction sees.
    """
    classes = scenario.classes
    n_zones = int(zones.max(initial=0))
    rows = []
    for t in classes.urban_types:
        codes = np.asarray(classes.codes_of_type(t), dtype=np.uint8)
        gain = valid & np.isin(after, codes) & ~np.isin(before, codes)
        cnt = np.bincount(zones[gain], minlength=n_zones + 1)
        rows += [(int(period), int(z), t, int(cnt[z])) for z in np.flatnonzero(cnt) if z > 0]
    return pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])


def reachable_cells(landscape: xr.Dataset, scenario: Scenario, before: np.ndarray, *,
                    soft_greenbelt: bool = True) -> np.ndarray:
    """``(types, rows, cols)`` bool: whether the model may turn the cell into that urban type at all.

    True where ``growth.conversion`` lets the cell's class (in ``before``) become the type
    and the constraint factor (:func:`landuse.surfaces.constraints.constraint_factor`: red line,
    permanent farmland, water, hard greenbelt or boundary) is positive. Observed change
    elsewhere is a transition no parameter can produce. ``soft_greenbelt=False``: a soft
    greenbelt rules out no cell, whatever its strength (a calibration varies its leakage).
    """
    from landuse.surfaces.constraints import constraint_factor, source_allowed_lut

    lut = source_allowed_lut(scenario)
    c = constraint_factor(landscape, scenario, landuse=before, soft_greenbelt=soft_greenbelt) > 0
    return np.stack([lut[k][before] & c for k in range(lut.shape[0])])


def unreachable_gain(before: np.ndarray, after: np.ndarray, valid: np.ndarray, reach: np.ndarray,
                      scenario: Scenario) -> tuple[np.ndarray, dict[str, Any]]:
    """Observed gain cells no parameter can produce, and a summary (cells, share, by type)."""
    classes = scenario.classes
    out = np.zeros(before.shape, dtype=bool)
    total = 0
    by_type: dict[str, int] = {}
    for k, t in enumerate(classes.urban_types):
        codes = np.asarray(classes.codes_of_type(t), dtype=np.uint8)
        gain = valid & np.isin(after, codes) & ~np.isin(before, codes)
        bad = gain & ~reach[k]
        total += int(gain.sum())
        by_type[t] = int(bad.sum())
        out |= bad
    n = int(out.sum())
    return out, {"cells": n, "share": n / total if total else 0.0, "by_type": by_type, "observed_gain": total}


def allocator_targets(landscape: xr.Dataset, scenario: Scenario, before: np.ndarray, suitability: np.ndarray,
                      totals: pd.DataFrame, *, start: int,
                      period: int) -> tuple[np.ndarray, pd.DataFrame, dict, Scenario]:
    """The cluster totals of ``totals`` planned by the scenario's LP allocator, as a run plans a period.

    ``totals`` (``type, cells``, any zones: summed per type) becomes the cluster-wide demand
    of one period ``start -> period`` (hectares = cells x cell area; ``demand.by_city``,
    ``people``, ``share`` and ``extrapolate`` dropped); the zone table of ``before`` (with ``suitability``) is
    solved by :func:`landuse.allocation.planner.allocate` with the scenario's weights and policies,
    and the plan is turned into growth units (:func:`landuse.allocation.handoff.unit_raster`) exactly
    as ``landuse run`` does. Returns the unit raster (int32), the unit targets
    (``period, zone, type, cells``), a summary of the plan and the scenario of the period
    the allocator solved.
    """
    from landuse.allocation.handoff import unit_raster
    from landuse.allocation.pieces import cell_pieces
    from landuse.allocation.planner import allocate
    from landuse.allocation.zone_stats import zone_table
    from landuse.allocation.zones import zone_grid
    from landuse.core.landscape import cell_area_ha

    types = tuple(scenario.classes.urban_types)
    cells = totals.groupby("type")["cells"].sum()
    ha = cell_area_ha(landscape)
    data = scenario.config.model_dump()
    data["periods"] = [int(start), int(period)]
    data["demand"] = {**data["demand"], "by_city": {}, "people": None, "share": None, "extrapolate": None,
                      **{t: ({int(period): float(cells.get(t, 0)) * ha} if int(cells.get(t, 0)) > 0 else {})
                         for t in types}}
    data["layers"]["history"] = {y: q for y, q in data["layers"].get("history", {}).items() if int(y) < int(start)}
    sc = Scenario(type(scenario.config).model_validate(data), path=scenario.path, base_dir=scenario.base_dir)
    cfg = sc.config
    zg = zone_grid(landscape, block_size_m=cfg.allocation.block_size_m)
    suit = np.asarray(suitability, dtype=np.float32)
    pieces = cell_pieces(landscape, sc, before, zg.zones, suit)
    zt = zone_table(landscape, sc, landuse=before, zones=zg, suitability=suit, pieces=pieces)
    try:
        alloc = allocate(zt, sc, int(period))
    except (InfeasibleAllocationError, SolverError) as exc:
        raise type(exc)(f"calibration.amounts is 'allocator', but the scenario's LP allocator could not plan the "
                        f"observed change {start} -> {period} ({exc}); loosen the policies named, or set "
                        "calibration.amounts to 'cluster' or 'observed_zone'") from None
    units = unit_raster(landscape, sc, alloc, landuse=before, zones=zg, suitability=suit, pieces=pieces)
    targets = alloc.unit_targets.rename(columns={"unit": "zone"})[["period", "zone", "type", "cells"]].copy()
    targets["period"] = int(period)
    targets = targets[targets["cells"] > 0].reset_index(drop=True)
    plan = {"units": int(targets["zone"].nunique()), "zones": int(zt.shape[0]),
            "cells": {t: int(n) for t, n in targets.groupby("type")["cells"].sum().items()},
            "objective": float(alloc.objective), "warnings": list(getattr(alloc, "warnings", []) or [])}
    return np.asarray(units, dtype=np.int32), targets, plan, sc
