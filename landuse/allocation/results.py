"""The solved plan of one period (:class:`Allocation`) and the tables it is assembled from.

:func:`_results` turns an optimal LP solution into the plan: targets per zone and type in hectares and whole
cells (:func:`landuse.allocation.cells._whole_cells`), the units the growth engine fills, losses per city,
transfers between cities and the shadow prices of the policies (:func:`_duals`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from landuse.allocation.cells import _whole_cells
from landuse.allocation.model import AllocationModel, _first_rows, city_demand
from landuse.allocation.pieces import ALL_SOURCE_ROLES, BAND_GREENBELT, BAND_NEAR, BAND_OUTSIDE, N_BANDS
from landuse.allocation.solvers import _Solution
from landuse.core.classes import DEFAULT_URBAN_TYPES
from landuse.core.config import Scenario


@dataclass
class Allocation:
    """The solved allocation of one period.

    Attributes
    ----------
    period : int
        End year of the period.
    coordination : str
        ``cluster`` or ``city``.
    status : str
        ``optimal``.
    objective : float
        Value of the objective (see :func:`~landuse.allocation.planner.allocate`).
    objective_terms : dict
        The objective split into its terms (sprawl, centre, farmland, open_space, suitability).
    targets : pandas.DataFrame
        One row per zone and urban type with new land: ``period, zone, city, type,
        hectares, cells, from_farmland_ha, from_open_space_ha, from_other_ha,
        near_station_ha`` (the last: hectares within the TOD radius, 0 without TOD).
    losses : pandas.DataFrame
        Per city: ``farmland_lost_ha, open_space_lost_ha, other_lost_ha``, new hectares
        per type, ``new_urban_ha`` and the open-space share before and after.
    duals : pandas.DataFrame
        One row per policy constraint: ``constraint, kind, city, type, activity, bound,
        binding, dual, cost, unit, meaning`` (see :func:`~landuse.allocation.planner.allocate`).
    mean_distance_new_m : float
        Hectare-weighted mean distance of the new land to existing urban land.
    warnings : list of str
    solver, build_seconds, solve_seconds
    taken : ndarray (zone row, role, band)
        Hectares taken per zone-table row, source role (:data:`ALL_SOURCE_ROLES`) and band
        (bits :data:`BAND_NEAR`, :data:`BAND_GREENBELT`, :data:`BAND_OUTSIDE`); used by
        :func:`~landuse.allocation.handoff.advance_zone_table`.
    units : pandas.DataFrame
        One row per unit — a zone's developable land of one source group in one band
        (near a station, soft greenbelt, outside a soft boundary): ``unit`` (1..U), ``zone,
        city, group, role, near_station, greenbelt, outside_boundary, cap_cells``.
        :func:`~landuse.allocation.handoff.unit_raster` maps every cell to its unit.
    unit_targets : pandas.DataFrame
        The plan in whole cells: ``period, unit, type, cells`` — what the growth engine
        converts, exactly (or falls short of), per unit and type.
    group_classes : list of tuple of str
        Source class names of each group.
    transfers : pandas.DataFrame
        Cluster-wide plans with ``demand.by_city``: ``period, type, origin_city, host_city,
        hectares`` — where each city's demand is placed (origin == host: at home).
    plan_broken, plan_unplaced : dict
        Policy rows the whole-cell plan could not meet (hectares off) and demand cells it
        could not place (see :func:`~landuse.allocation.cells._whole_cells`); empty when the plan is exact.
    """

    period: int
    coordination: str
    status: str
    objective: float
    objective_terms: dict[str, float]
    targets: pd.DataFrame
    losses: pd.DataFrame
    duals: pd.DataFrame
    mean_distance_new_m: float
    warnings: list[str]
    solver: str
    build_seconds: float
    solve_seconds: float
    taken: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, len(ALL_SOURCE_ROLES), N_BANDS)))
    units: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    unit_targets: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    group_classes: list[tuple[str, ...]] = field(repr=False, default_factory=list)
    transfers: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    plan_broken: dict[str, float] = field(default_factory=dict)
    plan_unplaced: dict[str, int] = field(default_factory=dict)

    @property
    def farmland_lost_ha(self) -> float:
        """Farmland lost, in hectares, summed over the cities of ``losses``."""
        return float(self.losses["farmland_lost_ha"].sum())

    @property
    def open_space_lost_ha(self) -> float:
        """Open space lost, in hectares, summed over the cities of ``losses``."""
        return float(self.losses["open_space_lost_ha"].sum())

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"allocation {self.period} ({self.coordination}, {self.solver}): {self.status}, "
                 f"objective {self.objective:.4f}; build {self.build_seconds:.2f} s, solve {self.solve_seconds:.2f} s"]
        by_type = self.targets.groupby("type")[["hectares", "cells"]].sum()
        seen = list(dict.fromkeys(self.targets["type"]))  # the scheme's order: default types first
        for t in sorted(seen, key=lambda t: (DEFAULT_URBAN_TYPES + tuple(seen)).index(t)):
            if t in by_type.index:
                lines.append(f"  {t:<12} {by_type.loc[t, 'hectares']:12.1f} ha  {int(by_type.loc[t, 'cells']):9d} cells "
                             f"in {int((self.targets.type == t).sum())} zones")
        lines.append(f"  farmland lost {self.farmland_lost_ha:.1f} ha, open space lost {self.open_space_lost_ha:.1f} ha, "
                     f"mean distance of new land to urban land {self.mean_distance_new_m:.0f} m")
        binding = self.duals[self.duals.binding & (self.duals.kind != "demand")]
        for r in binding.itertuples():
            lines.append(f"  binding {r.constraint}: {r.cost:.4g} {r.unit}")
        lines += [f"  note: {w}" for w in self.warnings]
        return "\n".join(lines)

def _unit_table(m: AllocationModel, zt: pd.DataFrame, cell_ha: float) -> pd.DataFrame:
    """One row per unit (zone, source group, band): ids 1..U, as the growth engine's groups."""
    band = m.unit_band
    return pd.DataFrame({
        "unit": np.arange(1, m.unit_cap.size + 1, dtype=np.int64),
        "zone": zt["zone"].to_numpy()[m.unit_zone].astype(np.int64),
        "city": zt["city"].to_numpy()[m.unit_zone].astype(np.int64),
        "group": m.unit_group,
        "role": np.asarray(ALL_SOURCE_ROLES, dtype=object)[m.unit_role],
        "near_station": (band & BAND_NEAR) > 0,
        "greenbelt": (band & BAND_GREENBELT) > 0,
        "outside_boundary": (band & BAND_OUTSIDE) > 0,
        "cap_cells": np.rint(m.unit_cap / cell_ha).astype(np.int64),
    })


def _transfers(m: AllocationModel, zt: pd.DataFrame, scenario: Scenario, hosted: pd.DataFrame) -> pd.DataFrame:
    """Where each city's own demand went in a cluster-wide plan (``demand.by_city`` given).

    ``hosted`` holds the planned hectares per ``city, type``. A city serves its own demand
    first (``origin == host``); its unserved demand is shared among the cities hosting more
    than their own demand, in proportion to their surplus.
    """
    cols = ["period", "type", "origin_city", "host_city", "hectares"]
    if m.coordination != "cluster" or not scenario.config.demand.by_city:
        return pd.DataFrame(columns=cols)
    per_city, _ = city_demand(zt, scenario, m.period)
    rows = []
    for t in m.types:
        h = hosted[hosted["type"] == t].set_index("city")["hectares"]
        cities = sorted({c for c, tt in per_city if tt == t} | {int(c) for c in h.index})
        d = np.array([per_city.get((c, t), 0.0) for c in cities])
        got = np.array([float(h.get(c, 0.0)) for c in cities])
        own = np.minimum(d, got)
        export = d - own
        surplus = got - own
        total = surplus.sum()
        for i, c in enumerate(cities):
            if own[i] > 1e-9:
                rows.append((m.period, t, c, c, float(own[i])))
            if export[i] > 1e-9 and total > 1e-9:
                for j, c2 in enumerate(cities):
                    if surplus[j] > 1e-9:
                        rows.append((m.period, t, c, c2, float(export[i] * surplus[j] / total)))
    return pd.DataFrame(rows, columns=cols)


def _results(m: AllocationModel, zt: pd.DataFrame, sol: _Solution, cell_ha: float, solver: str,
             scenario: Scenario) -> Allocation:
    x = np.clip(np.asarray(sol.x, dtype=np.float64), 0.0, None)
    x = np.minimum(x, m.col_ub)
    x[x < 1e-9] = 0.0
    nz = len(zt)
    col_zone = m.piece_zone[m.col_piece]
    col_role = m.piece_role[m.col_piece]
    nt = len(m.types)
    roles = {r: ALL_SOURCE_ROLES.index(r) for r in m.roles}
    key = col_zone * nt + m.col_type
    ha = np.bincount(key, weights=x, minlength=nz * nt)
    by_role = {r: np.bincount(key, weights=np.where(col_role == i, x, 0.0), minlength=nz * nt)
               for r, i in roles.items()}
    near_ha = np.bincount(key, weights=np.where(m.piece_near[m.col_piece], x, 0.0), minlength=nz * nt)
    nr = len(ALL_SOURCE_ROLES)
    key2 = (col_zone * nr + col_role) * N_BANDS + m.piece_band[m.col_piece]
    taken = np.bincount(key2, weights=x, minlength=nz * nr * N_BANDS).reshape(nz, nr, N_BANDS)
    # the plan in whole cells per unit and type; every policy row holds on it (or is reported)
    whole = _whole_cells(m, x, cell_ha)
    for name, v in whole.broken.items():
        m.warnings.append(f"whole-cell plan: {name} cannot be met in whole cells (off by {v:.2f} ha)")
    for name, n_cells in whole.unplaced.items():
        m.warnings.append(f"whole-cell plan: {n_cells} cell(s) of {name} fit nowhere without breaking a policy")
    ucells = whole.cells
    ukey = m.unit_zone[:, None] * nt + np.arange(nt)[None, :]
    band = m.unit_band[:, None]

    def per_zone_type(weights: np.ndarray) -> np.ndarray:
        return np.bincount(ukey.ravel(), weights=weights.ravel(), minlength=nz * nt).astype(np.int64)

    cells_zt = per_zone_type(ucells)
    role_cells = {r: per_zone_type(np.where(m.unit_role[:, None] == i, ucells, 0)) for r, i in roles.items()}
    band_cells = {name: per_zone_type(np.where((band & bit) > 0, ucells, 0))
                  for name, bit in (("near_station", BAND_NEAR), ("greenbelt", BAND_GREENBELT),
                                    ("outside_boundary", BAND_OUTSIDE))}
    ent = np.flatnonzero((ha > 1e-9) | (cells_zt > 0))
    zi, ki = ent // nt, ent % nt
    city = zt["city"].to_numpy(dtype=np.int64)
    targets = pd.DataFrame({
        "period": np.full(ent.size, m.period, dtype=np.int64),
        "zone": zt["zone"].to_numpy()[zi].astype(np.int64),
        "city": city[zi],
        "type": np.asarray(m.types, dtype=object)[ki],
        "hectares": ha[ent],
        "cells": cells_zt[ent],
        **{f"from_{r}_ha": by_role[r][ent] for r in m.roles},
        "near_station_ha": near_ha[ent],
        **{f"from_{r}_cells": role_cells[r][ent] for r in m.roles},
        **{f"{b}_cells": band_cells[b][ent] for b in band_cells},
    })
    units = _unit_table(m, zt, cell_ha)
    uu, kk = np.nonzero(ucells)
    unit_targets = pd.DataFrame({
        "period": np.full(uu.size, m.period, dtype=np.int64),
        "unit": uu.astype(np.int64) + 1,
        "type": np.asarray(m.types, dtype=object)[kk],
        "cells": ucells[uu, kk],
    })
    hosted = targets.groupby(["city", "type"], as_index=False)["cells"].sum()
    hosted["hectares"] = hosted["cells"] * cell_ha
    transfers = _transfers(m, zt, scenario, hosted)

    # losses by city
    cities_arr = np.unique(city)
    ci = np.searchsorted(cities_arr, city[col_zone])
    cities = [int(c) for c in cities_arr]
    nc = len(cities)
    losses = pd.DataFrame({"city": cities})
    for r, i in roles.items():
        losses[f"{r}_lost_ha"] = np.bincount(ci, weights=np.where(col_role == i, x, 0.0), minlength=nc)
    for k, t in enumerate(m.types):
        losses[f"new_{t}_ha"] = np.bincount(ci, weights=np.where(m.col_type == k, x, 0.0), minlength=nc)
    losses["new_urban_ha"] = np.bincount(ci, weights=x, minlength=nc)
    if "land_ha" in zt.columns and "open_space_ha" in zt.columns:
        g = zt.groupby("city")[["land_ha", "open_space_ha"]].sum().reindex(cities).fillna(0.0)
        land = g["land_ha"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            losses["open_space_share_before"] = g["open_space_ha"].to_numpy() / land
            losses["open_space_share_after"] = (g["open_space_ha"].to_numpy() - losses["open_space_lost_ha"]) / land

    total = float(x.sum())
    dist = zt["dist_urban_m"].to_numpy(dtype=np.float64) if "dist_urban_m" in zt.columns else np.zeros(nz)
    dist = np.nan_to_num(dist, nan=0.0, posinf=0.0)
    mean_dist = float((x * dist[col_zone]).sum() / total) if total > 0 else 0.0
    terms = {k: float(v @ x) for k, v in m.cost_terms.items()}
    duals = _duals(m, x, sol.row_dual, cell_ha)
    return Allocation(
        period=m.period, coordination=m.coordination, status="optimal", objective=float(m.cost @ x),
        objective_terms=terms, targets=targets, losses=losses, duals=duals, mean_distance_new_m=mean_dist,
        warnings=list(m.warnings), solver=solver, build_seconds=m.build_seconds, solve_seconds=sol.seconds,
        taken=taken, units=units, unit_targets=unit_targets, group_classes=list(m.group_classes),
        transfers=transfers, plan_broken=dict(whole.broken), plan_unplaced=dict(whole.unplaced),
    )

def _duals(m: AllocationModel, x: np.ndarray, y: np.ndarray | None, cell_ha: float) -> pd.DataFrame:
    n = len(m.rows)
    cols = ["constraint", "kind", "city", "type", "activity", "bound", "binding", "dual", "cost", "unit", "meaning"]
    if n == 0:
        return pd.DataFrame(columns=cols)
    act = _first_rows(m.A, n) @ x
    y = np.zeros(n) if y is None else np.asarray(y[:n], dtype=np.float64)
    res_k = m.types.index("residential") if "residential" in m.types else -1
    col_city = None
    recs = []
    for i, r in enumerate(m.rows.to_dict("records")):
        kind = r["kind"]
        lo, hi = m.row_lo[i], m.row_hi[i]
        bound = hi if np.isfinite(hi) else lo
        binding = bool(abs(act[i] - bound) <= 1e-6 * max(1.0, abs(bound)))
        dual = float(y[i])  # d objective / d bound
        where = "the cluster" if r.get("city") is None or pd.isna(r.get("city")) else f"city {int(r['city'])}"
        if kind == "demand":
            cost, unit = dual, "per ha of demand"
            meaning = f"change in the objective if {r['type']} demand of {where} grew by 1 ha"
        elif kind == "export_limit":
            cost, unit = dual, "per ha more kept at home"
            meaning = (f"increase in the objective if {where} had to host 1 ha more of its own {r['type']} demand")
        elif kind in ("farmland_cap", "growth_limit"):
            cost, unit = -dual, "per ha the limit is lowered"
            what = "the farmland-loss cap" if kind == "farmland_cap" else f"the growth limit of {where}"
            meaning = f"increase in the objective if {what} were 1 ha lower"
        elif kind == "open_space_quota":
            cost, unit = -dual * r["land_ha"] / 100.0, "per percentage point of quota"
            meaning = f"increase in the objective if the open-space quota of {where} rose by 1 percentage point"
        else:
            if col_city is None:
                col_city = m.piece_zone[m.col_piece]
            cols_i = m.A.indices[m.A.indptr[i]:m.A.indptr[i + 1]]
            res_ha = float(x[cols_i][m.col_type[cols_i] == res_k].sum())
            if kind == "tod":
                cost, unit = dual * res_ha / 100.0, "per percentage point of TOD share"
                meaning = (f"increase in the objective if the share of new residential land of {where} within "
                           f"{r['radius_m']:g} m of a station had to rise by 1 percentage point")
            elif kind == "jobs_housing_min":
                cost, unit = dual * res_ha * 0.1, "per 0.1 of the jobs-housing ratio"
                meaning = f"increase in the objective if the minimum jobs-housing ratio of {where} rose by 0.1"
            else:
                cost, unit = -dual * res_ha * 0.1, "per 0.1 of the jobs-housing ratio"
                meaning = f"increase in the objective if the maximum jobs-housing ratio of {where} fell by 0.1"
        recs.append({"constraint": r["name"], "kind": kind, "city": r.get("city"), "type": r.get("type"),
                     "activity": float(act[i]), "bound": float(bound), "binding": binding, "dual": dual,
                     "cost": float(cost) + 0.0, "unit": unit, "meaning": meaning})
    out = pd.DataFrame(recs, columns=cols)
    out["city"] = out["city"].astype("Int64")
    return out
