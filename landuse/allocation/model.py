"""The allocation LP of one period as a sparse matrix: :class:`AllocationModel` and :func:`build_model`.

Variables ``x[p, k]`` are hectares of a piece ``p`` (:mod:`landuse.allocation.pieces`) converted to urban type
``k``; grouping source classes that no cost or constraint tells apart is exact, so farmland and open-space
losses are accounted exactly, never by zone averages. The model is assembled once with numpy/scipy
(vectorised, about 0.1 s for 100 000 zones) from the zone table's columns: the costs (see
:func:`landuse.allocation.planner.allocate` for the objective), the named policy rows (each switchable from
``policy``; documented in ``docs/allocation.md``) and the per-piece capacity rows. It is the single source
every solver path (:mod:`landuse.allocation.solvers`) reads.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from landuse.allocation.pieces import (
    _INF,
    _TOL,
    ALL_SOURCE_ROLES,
    BAND_GREENBELT,
    BAND_NEAR,
    BAND_OUTSIDE,
    SOURCE_ROLES,
    plan_roles,
)
from landuse.core.classes import DEFAULT_URBAN_TYPES
from landuse.core.config import Scenario
from landuse.core.errors import ConfigError, InfeasibleAllocationError, LanduseError


@dataclass
class _Rows:
    """Policy rows (named) collected while building; capacity rows are appended after."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)

    def add(self, cols: np.ndarray, vals: np.ndarray | float, lo: float, hi: float, **meta: Any) -> None:
        i = len(self.lo)
        cols = np.asarray(cols, dtype=np.int64)
        self.rows.append(np.full(cols.size, i, dtype=np.int64))
        self.cols.append(cols)
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), cols.shape).copy())
        self.lo.append(lo)
        self.hi.append(hi)
        self.meta.append(meta)


@dataclass
class AllocationModel:
    """The LP of one period as a sparse matrix (the single source every solver path uses).

    ``minimise cost @ x  s.t.  row_lo <= A @ x <= row_hi,  0 <= x <= col_ub``. The first
    ``len(rows)`` rows are the named policy rows described by ``rows``; the rest are the
    per-piece capacity rows.
    """

    period: int
    coordination: str
    cost: np.ndarray
    col_ub: np.ndarray
    col_piece: np.ndarray
    col_type: np.ndarray
    piece_zone: np.ndarray  # row index into the zone table
    piece_role: np.ndarray  # index into ALL_SOURCE_ROLES
    piece_near: np.ndarray
    piece_cap: np.ndarray
    A: sparse.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    rows: pd.DataFrame
    cost_terms: dict[str, np.ndarray]
    demand: dict[tuple[int | None, str], float]
    warnings: list[str]
    cap_piece: np.ndarray  # piece of each capacity row (rows len(rows) ... n_rows - 1)
    piece_city: np.ndarray
    piece_unit: np.ndarray  # unit of each piece (a piece is one fill tranche of a unit)
    piece_band: np.ndarray  # band bits (BAND_NEAR | BAND_GREENBELT | BAND_OUTSIDE)
    n_tranches: int
    unit_zone: np.ndarray  # unit = (zone, source group, band): row index into the zone table
    unit_group: np.ndarray  # index into group_classes
    unit_band: np.ndarray
    unit_cap: np.ndarray  # developable hectares
    unit_role: np.ndarray  # index into ALL_SOURCE_ROLES
    group_classes: list[tuple[str, ...]]  # source class names of each group
    build_seconds: float = 0.0
    types: tuple[str, ...] = DEFAULT_URBAN_TYPES  # urban types: col_type indexes them
    roles: tuple[str, ...] = SOURCE_ROLES  # source roles the plan reports (plan_roles)

    @property
    def n_cols(self) -> int:
        """Number of LP columns (variables)."""
        return int(self.cost.size)

    @property
    def n_rows(self) -> int:
        """Number of LP rows: the policy rows, then the per-piece capacity rows."""
        return int(self.row_lo.size)


def _cell_area(zt: pd.DataFrame, cell_area_ha: float | None) -> float:
    if cell_area_ha is not None:
        return float(cell_area_ha)
    v = zt.attrs.get("cell_area_ha")
    if v is None:
        raise LanduseError("the zone table carries no cell area: build it with landuse.allocation.zone_table, "
                           "set zone_table.attrs['cell_area_ha'], or pass cell_area_ha=")
    return float(v)


def _source_columns(zt: pd.DataFrame, scenario: Scenario) -> list[tuple[str, str, tuple[bool, ...]]]:
    """``(class name, role, allowed-per-type)`` of each ``cap_<class>_ha`` column present."""
    conv = scenario.conversion_codes()
    out = []
    by_name = {c.name: c for c in scenario.classes}
    for col in zt.columns:
        if not (col.startswith("cap_") and col.endswith("_ha")):
            continue
        name = col[4:-3]
        if name not in by_name:
            raise LanduseError(f"zone table column {col!r}: {name!r} is not a class of the scenario's class scheme "
                               f"({', '.join(by_name)})")
        c = by_name[name]
        if c.urban or c.role not in ALL_SOURCE_ROLES:
            raise LanduseError(f"zone table column {col!r}: class {name!r} has role {c.role!r}; only "
                               f"{', '.join(ALL_SOURCE_ROLES)} classes can be sources of new urban land")
        out.append((name, c.role, tuple(c.code in conv[t] for t in scenario.urban_types)))
    if not out:
        raise LanduseError("the zone table has no cap_<class>_ha columns; build it with landuse.allocation.zone_table")
    return out


def _band_capacities(zt: pd.DataFrame, srcs: list[tuple[str, str, tuple[bool, ...]]],
                     tod: bool) -> dict[int, dict[str, np.ndarray]]:
    """Developable hectares per band and source class.

    From the ``band<m>_<class>_ha`` columns when the zone table has them (soft greenbelt or boundary), else ``cap_``
    and ``tod_``.
    """
    out: dict[int, dict[str, np.ndarray]] = {}
    for col in zt.columns:
        if col.startswith("band") and col.endswith("_ha") and "_" in col:
            head, name = col[4:-3].split("_", 1)
            if head.isdigit():
                out.setdefault(int(head), {})[name] = zt[col].to_numpy(dtype=np.float64)
    if out:
        zero = np.zeros(len(zt))
        return {m: {name: per.get(name, zero) for name, _, _ in srcs} for m, per in out.items()}
    cap = {name: zt[f"cap_{name}_ha"].to_numpy(dtype=np.float64) for name, _, _ in srcs}
    if not tod:
        return {0: cap}
    near = {name: zt[f"tod_{name}_ha"].to_numpy(dtype=np.float64) for name, _, _ in srcs}
    return {BAND_NEAR: near, 0: {name: cap[name] - near[name] for name in cap}}


def city_demand(
    zt: pd.DataFrame, scenario: Scenario, period: int
) -> tuple[dict[tuple[int, str], float], list[str]]:
    """Demand (hectares) per ``(city, type)`` for a fragmented plan.

    ``demand.by_city`` when given; otherwise the cluster demand split among the cities of
    the zone table in proportion to their existing urban area (``demand.split:
    urban_area``, falling back to land area when there is no urban land) or their land
    area (``land_area``).
    """
    dem = scenario.config.demand
    cities = sorted(int(c) for c in pd.unique(zt["city"]))
    notes: list[str] = []
    out: dict[tuple[int, str], float] = {}
    if dem.by_city:
        for c in sorted(set(cities) | {int(c) for c in dem.by_city}):
            for t in scenario.urban_types:
                out[(c, t)] = float(dem.by_city.get(c, {}).get(t, {}).get(period, 0.0))
        return out, notes
    by_city = zt.groupby("city")
    basis = "urban_ha" if dem.split == "urban_area" else "land_ha"
    if basis not in zt.columns:
        basis = "area_ha" if "area_ha" in zt.columns else "cells"
    weight = by_city[basis].sum().astype(float)
    if weight.sum() <= 0:
        fallback = "land_ha" if "land_ha" in zt.columns else "cells"
        notes.append(f"demand.split {dem.split!r}: the cities hold no {basis}; split by {fallback} instead")
        weight = by_city[fallback].sum().astype(float)
    share = weight / weight.sum()
    for t in scenario.urban_types:
        total = dem.cluster(t, period)
        for c in cities:
            out[(c, t)] = total * float(share.get(c, 0.0))
    return out, notes


def _csr_from_rows(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """``csr_matrix((vals, (rows, cols)), shape)`` without the COO round trip when ``rows`` never decreases.

    The model's entries come row by row (policy rows in order, then the capacity rows), so the CSR arrays are
    the entries as they are plus a row pointer; ``sum_duplicates`` then does what the COO constructor does
    (nothing, for canonical rows), so both give the same arrays. The matrix may share (and, to sum
    duplicates, overwrite) ``cols`` and ``vals``.
    """
    if rows.size and bool(np.any(rows[1:] < rows[:-1])):
        return sparse.csr_matrix((vals, (rows, cols)), shape=shape)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    A = sparse.csr_matrix((vals, cols, indptr), shape=shape)
    A.sum_duplicates()
    return A

@dataclass
class _Units:
    """The units of a model: a zone's developable land of one source group in one band.

    Units are the pieces before fill tranches, and the growth engine's groups
    (:func:`landuse.allocation.handoff.unit_raster`). ``groups`` maps ``(role, allowed-per-type)`` to the source
    class names of the group, in group order; the arrays hold one entry per unit.
    """

    groups: dict[tuple[str, tuple[bool, ...]], list[str]]
    zone: np.ndarray  # row index into the zone table
    group: np.ndarray  # index into groups
    band: np.ndarray
    cap: np.ndarray  # developable hectares
    role: np.ndarray  # index into ALL_SOURCE_ROLES
    allowed: np.ndarray  # (units, types) bool


def _units(zt: pd.DataFrame, srcs: list[tuple[str, str, tuple[bool, ...]]], tod: bool, nt: int) -> _Units:
    """Units ``(zone, source group, band)`` with developable land: group by group, band by band (ascending)."""
    groups: dict[tuple[str, tuple[bool, ...]], list[str]] = {}
    for name, role, allowed in srcs:
        if any(allowed):
            groups.setdefault((role, allowed), []).append(name)
    band_caps = _band_capacities(zt, srcs, tod)
    u_zone, u_group, u_band, u_cap, u_allowed, u_role = [], [], [], [], [], []
    for g, ((role, allowed), names) in enumerate(groups.items()):
        for band in sorted(band_caps):
            c = sum(band_caps[band][name] for name in names)
            idx = np.flatnonzero(c > _TOL)
            u_zone.append(idx)
            u_group.append(np.full(idx.size, g))
            u_band.append(np.full(idx.size, band))
            u_cap.append(c[idx])
            u_role.append(np.full(idx.size, ALL_SOURCE_ROLES.index(role)))
            u_allowed.append(np.tile(np.array(allowed), (idx.size, 1)))

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return _Units(groups=groups, zone=cat(u_zone, np.int64), group=cat(u_group, np.int64),
                  band=cat(u_band, np.int64), cap=cat(u_cap, np.float64), role=cat(u_role, np.int64),
                  allowed=np.concatenate(u_allowed) if u_allowed else np.zeros((0, nt), bool))


@dataclass
class _Pieces:
    """The LP's pieces, one entry per piece: each unit split into ``n_tr`` equal fill tranches."""

    unit: np.ndarray
    tranche: np.ndarray
    zone: np.ndarray
    role: np.ndarray
    band: np.ndarray
    near: np.ndarray
    cap: np.ndarray
    allowed: np.ndarray
    n_tr: int


def _pieces(u: _Units, n_tr: int) -> _Pieces:
    """Fill tranches: each unit splits into ``n_tr`` equal parts whose cost rises by ``weights.fill`` per part.

    The LP (convex, piecewise-linear in the filled share) thus spreads growth over neighbouring zones.
    """
    unit = np.repeat(np.arange(u.cap.size, dtype=np.int64), n_tr)
    tranche = np.tile(np.arange(n_tr, dtype=np.int64), u.cap.size)
    band = u.band[unit]
    return _Pieces(unit=unit, tranche=tranche, zone=u.zone[unit], role=u.role[unit], band=band,
                   near=(band & BAND_NEAR) > 0, cap=u.cap[unit] / n_tr, allowed=u.allowed[unit], n_tr=n_tr)


@dataclass
class _Columns:
    """The LP's columns, one entry per column ``(piece, type)``."""

    piece: np.ndarray
    type: np.ndarray
    zone: np.ndarray
    role: np.ndarray
    city: np.ndarray
    ub: np.ndarray


def _columns(p: _Pieces, city_z: np.ndarray) -> _Columns:
    """One column per piece and type it may take (row-major: pieces in order, types within a piece)."""
    pi, ki = np.nonzero(p.allowed)
    col_piece = pi.astype(np.int64)
    col_zone = p.zone[col_piece]
    return _Columns(piece=col_piece, type=ki.astype(np.int64), zone=col_zone, role=p.role[col_piece],
                    city=city_z[col_zone], ub=p.cap[col_piece])


def _cost_terms(zt: pd.DataFrame, scenario: Scenario, cols: _Columns, p: _Pieces) -> dict[str, np.ndarray]:
    """The objective's terms per column and hectare (see :func:`landuse.allocation.planner.allocate`)."""
    pol = scenario.config.policy
    w = scenario.config.allocation.weights
    types = scenario.urban_types
    nz, nt = len(zt), len(types)

    def km(col: str) -> np.ndarray:
        if col not in zt.columns:
            return np.zeros(nz)
        return np.nan_to_num(zt[col].to_numpy(dtype=np.float64), nan=0.0, posinf=0.0) / 1000.0

    suit = np.stack([zt[f"suit_{t}"].to_numpy(dtype=np.float64) if f"suit_{t}" in zt.columns else np.zeros(nz)
                     for t in types], axis=1).reshape(nz, nt)
    terms = {
        "sprawl": w.sprawl * km("dist_urban_m")[cols.zone],
        "centre": w.centre * km("dist_centre_m")[cols.zone],
        "farmland": w.farmland * (cols.role == ALL_SOURCE_ROLES.index("farmland")),
        "open_space": w.open_space * (cols.role == ALL_SOURCE_ROLES.index("open_space")),
        "suitability": -w.suitability * suit[cols.zone, cols.type],
        "fill": w.fill * p.tranche[cols.piece],
    }
    col_band = p.band[cols.piece]
    if pol.greenbelt.mode == "soft":
        terms["greenbelt"] = w.greenbelt * pol.greenbelt.strength * ((col_band & BAND_GREENBELT) > 0)
    if pol.growth_boundary.mode == "soft":
        terms["outside_boundary"] = (w.outside_boundary * (1.0 - pol.growth_boundary.outside_factor)
                                     * ((col_band & BAND_OUTSIDE) > 0))
    return terms


class _PolicyRows:
    """The named policy rows of one period's model (``rows``), with the demand they ask for and their warnings.

    :meth:`add_all` adds them in a fixed order: demand, export limits, farmland cap, open-space quota, TOD,
    jobs-housing, growth limits. A row's columns of one city (and type) are found by one binary search instead
    of a mask over every column.
    """

    def __init__(self, zt: pd.DataFrame, scenario: Scenario, period: int, coordination: str, cols: _Columns,
                 piece_near: np.ndarray, cities: list[int], cell_area_ha: float | None) -> None:
        self.zt, self.scenario, self.period, self.coordination = zt, scenario, period, coordination
        self.cfg = scenario.config
        self.pol = scenario.config.policy
        self.types = scenario.urban_types
        self.cols, self.piece_near, self.cities = cols, piece_near, cities
        self.rows = _Rows()
        self.warnings: list[str] = []
        self.demand: dict[tuple[int | None, str], float] = {}
        self.ca = cell_area_ha if cell_area_ha is not None else zt.attrs.get("cell_area_ha")
        nt = len(self.types)
        key = cols.city * nt + cols.type
        self.order = np.argsort(key, kind="stable")
        self.sk = key[self.order]
        self.by_city = np.argsort(cols.city, kind="stable")  # columns grouped by city, ascending within a city
        self.sorted_city = cols.city[self.by_city]

    def whole(self, d: float) -> float:
        """``d`` hectares rounded to whole cells (as they are when the cell area is unknown)."""
        return d if self.ca is None else round(d / float(self.ca)) * float(self.ca)

    def city_cols(self, c: int, k: int) -> np.ndarray:
        """Columns of city ``c`` and type index ``k``."""
        kk = c * len(self.types) + k
        return self.order[np.searchsorted(self.sk, kk, "left"):np.searchsorted(self.sk, kk, "right")]

    def in_city(self, c: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Columns of city ``c`` (where ``mask``), ascending: one search instead of a mask over every column."""
        idx = self.by_city[np.searchsorted(self.sorted_city, c, "left"):np.searchsorted(self.sorted_city, c, "right")]
        return idx if mask is None else idx[mask[idx]]

    def add_all(self, farmland_lost_so_far_ha: float) -> None:
        """Every policy row the scenario switches on, in the model's row order."""
        self.add_demand()
        self.add_farmland_cap(farmland_lost_so_far_ha)
        self.add_open_space_quota()
        self.add_tod()
        self.add_jobs_housing()
        self.add_growth_limits()

    def add_demand(self) -> None:
        """Demand per type (cluster; with export limits per city and type) or per city and type (city)."""
        R, cfg, types, period, whole = self.rows, self.cfg, self.types, self.period, self.whole
        if self.coordination == "cluster":
            for k, t in enumerate(types):
                d = cfg.demand.cluster(t, period)
                self.demand[(None, t)] = d
                R.add(np.flatnonzero(self.cols.type == k), 1.0, whole(d), whole(d), kind="demand", city=None, type=t,
                      name=f"demand[{t}]", bound=whole(d), demand_ha=d)
            tr = self.pol.transfers
            if tr is not None and tr.max_export_share < 1 and cfg.demand.by_city:
                per_city, _ = city_demand(self.zt, self.scenario, period)
                for (c, t), d in sorted(per_city.items()):
                    keep = (1.0 - tr.max_export_share) * d
                    if keep <= 0:
                        continue
                    R.add(self.city_cols(c, types.index(t)), 1.0, keep, _INF, kind="export_limit", city=c, type=t,
                          name=f"export_limit[{t},city={c}]", bound=keep, demand_ha=d, share=tr.max_export_share)
        else:
            per_city, notes = city_demand(self.zt, self.scenario, period)
            self.warnings += notes
            for (c, t), d in sorted(per_city.items()):
                self.demand[(c, t)] = d
                R.add(self.city_cols(c, types.index(t)), 1.0, whole(d), whole(d), kind="demand", city=c, type=t,
                      name=f"demand[{t},city={c}]", bound=whole(d), demand_ha=d)

    def add_farmland_cap(self, farmland_lost_so_far_ha: float) -> None:
        """The farmland-loss cap (``per: horizon`` less what earlier periods lost)."""
        fc = self.pol.farmland_loss_cap
        if fc is None:
            return
        farm = self.cols.role == ALL_SOURCE_ROLES.index("farmland")
        cap = float(fc.hectares)
        if fc.per == "horizon":
            cap -= float(farmland_lost_so_far_ha)
            if cap < 0:
                self.warnings.append(f"farmland already lost in earlier periods ({farmland_lost_so_far_ha:.1f} ha) "
                                     f"exceeds the horizon cap ({fc.hectares:g} ha)")
        self.rows.add(np.flatnonzero(farm), 1.0, -_INF, cap, kind="farmland_cap", city=None, type=None,
                      name="farmland_cap", bound=cap, cap_ha=float(fc.hectares), per=fc.per)

    def add_open_space_quota(self) -> None:
        """The open-space quota per city or for the cluster.

        Raises when a unit is already below it and ``already_below: error``.
        """
        q, zt, R = self.pol.open_space_quota, self.zt, self.rows
        if q is None:
            return
        for col in ("land_ha", "open_space_ha"):
            if col not in zt.columns:
                raise ConfigError(f"policy.open_space_quota needs the zone-table column {col!r}; "
                                  "build the table with landuse.allocation.zone_table")
        osv = self.cols.role == ALL_SOURCE_ROLES.index("open_space")
        if q.unit == "city":
            g = zt.groupby("city")[["land_ha", "open_space_ha"]].sum()
            quota_units = [(int(c), float(g.loc[c, "land_ha"]), float(g.loc[c, "open_space_ha"])) for c in g.index]
        else:
            quota_units = [(None, float(zt["land_ha"].sum()), float(zt["open_space_ha"].sum()))]
        below = []
        for unit, land_u, os_u in quota_units:
            allow = os_u - q.share * land_u
            where = "the cluster" if unit is None else f"city {unit}"
            if allow < -1e-9:
                have = 100 * os_u / max(land_u, 1e-12)
                below.append((where, have, -allow))
                self.warnings.append(f"open-space quota: {where} already holds only {have:.1f} % open space, below "
                                     f"{100 * q.share:g} %; no further open-space loss is allowed there")
                allow = 0.0
            R.add(np.flatnonzero(osv) if unit is None else self.in_city(int(unit), osv), 1.0, -_INF, max(allow, 0.0),
                  kind="open_space_quota", city=None if unit is None else int(unit), type=None,
                  name="open_space_quota[cluster]" if unit is None else f"open_space_quota[city={unit}]",
                  bound=allow, land_ha=land_u, open_space_ha=os_u, share=q.share)
        if below and q.already_below == "error":
            self._quota_already_broken(below)

    def _quota_already_broken(self, below: list[tuple[str, float, float]]) -> None:
        """Raise for the units already below the open-space quota (``already_below: error``)."""
        q = self.pol.open_space_quota
        reach = min(have for _, have, _ in below)
        share = math.floor(reach * 10) / 1000  # a share every unit meets now, rounded down to 0.1 pp
        parts = [f"{where} holds {have:.2f} % open space at the start of the period, {short:.1f} ha short of "
                 f"the {100 * q.share:g} % quota" for where, have, short in below]
        raise InfeasibleAllocationError(
            f"allocation {self.period}: no plan can meet the open-space quota (no land is turned back into open "
            f"space): {'; '.join(parts)}; lower policy.open_space_quota.share to {100 * share:.1f} % or less, "
            "or set policy.open_space_quota.already_below: no_further_loss to plan on without losing open "
            "space there (the quota check then fails for those units)",
            violations={f"open_space_quota[{w.replace('the ', '').replace(' ', '=')}]": 100 * q.share - h
                        for w, h, _ in below},
            advice={"policy.open_space_quota.share": share})

    def add_tod(self) -> None:
        """The TOD share of new residential land near stations (cluster, or each city with station land)."""
        tod, types, cols = self.pol.tod, self.types, self.cols
        if tod is None:
            return
        if "residential" not in types:
            raise ConfigError(f"policy.tod steers new residential land, but the class scheme has no residential "
                              f"type ({', '.join(types)}); remove policy.tod")
        res = cols.type == types.index("residential")
        coef = self.piece_near[cols.piece].astype(np.float64) - tod.share
        units: list[int | None] = [None] if self.coordination == "cluster" else self.cities
        col_near = self.piece_near[cols.piece]
        for unit in units:
            idx = np.flatnonzero(res) if unit is None else self.in_city(unit, res)
            if unit is not None and not col_near[idx].any():
                self.warnings.append(f"TOD: city {unit} has no developable land within {tod.radius_m:g} m of a "
                                     "station; its TOD share is not enforced")
                continue
            self.rows.add(idx, coef[idx], 0.0, _INF, kind="tod", city=unit, type="residential",
                          name="tod[cluster]" if unit is None else f"tod[city={unit}]", bound=0.0, share=tod.share,
                          radius_m=tod.radius_m)

    def add_jobs_housing(self) -> None:
        """The jobs-housing ratio of new land per city (industrial + commercial against residential)."""
        jh, types, cols = self.pol.jobs_housing, self.types, self.cols
        if jh is None:
            return
        if "residential" not in types:
            raise ConfigError(f"policy.jobs_housing needs a residential type; the class scheme has "
                              f"{', '.join(types)}; remove policy.jobs_housing")
        res = cols.type == types.index("residential")
        jobs = np.isin(cols.type, [k for k, t in enumerate(types) if t in ("industrial", "commercial")])
        coef_min = np.where(res, -jh.min, 1.0)
        coef_max = np.where(res, -jh.max, 1.0)
        counted = res | jobs
        for c in self.cities:
            idx = self.in_city(c, counted)  # another type (e.g. institutional) is neither jobs nor housing
            if jh.min > 0:
                self.rows.add(idx, coef_min[idx], 0.0, _INF, kind="jobs_housing_min", city=c, type=None,
                              name=f"jobs_housing_min[city={c}]", bound=0.0, ratio=jh.min)
            self.rows.add(idx, coef_max[idx], -_INF, 0.0, kind="jobs_housing_max", city=c, type=None,
                          name=f"jobs_housing_max[city={c}]", bound=0.0, ratio=jh.max)

    def add_growth_limits(self) -> None:
        """The growth limit of each city listed in ``policy.city_growth_limits``."""
        for c, limit in sorted(self.pol.city_growth_limits.items()):
            self.rows.add(self.in_city(int(c)), 1.0, -_INF, float(limit), kind="growth_limit", city=int(c),
                          type=None, name=f"growth_limit[city={c}]", bound=float(limit))


def _with_capacity_rows(R: _Rows, p: _Pieces, cols: _Columns
                        ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """The matrix: the policy rows ``R``, then one capacity row per piece that may take several types.

    A single-type piece is bounded by its column bound. Returns ``(A, row_lo, row_hi, capacity pieces, row meta)``.
    """
    n_pol = len(R.lo)
    n_types = p.allowed.sum(axis=1)
    multi = np.flatnonzero(n_types > 1)  # single-type pieces are bounded by the column bound
    cap_row_of_piece = np.full(p.cap.size, -1, dtype=np.int64)
    cap_row_of_piece[multi] = n_pol + np.arange(multi.size)
    cap_cols = np.flatnonzero(cap_row_of_piece[cols.piece] >= 0)
    rows = np.concatenate([*R.rows, cap_row_of_piece[cols.piece[cap_cols]]])
    col_idx = np.concatenate([*R.cols, cap_cols])
    vals = np.concatenate([*R.vals, np.ones(cap_cols.size)])
    n_rows = n_pol + multi.size
    A = _csr_from_rows(rows, col_idx, vals, (n_rows, cols.piece.size))
    row_lo = np.concatenate([np.array(R.lo, dtype=np.float64), np.full(multi.size, -_INF)])
    row_hi = np.concatenate([np.array(R.hi, dtype=np.float64), p.cap[multi]])
    meta = pd.DataFrame(R.meta) if R.meta else pd.DataFrame(columns=["kind", "city", "type", "name", "bound"])
    return A, row_lo, row_hi, multi, meta


def build_model(
    zone_table: pd.DataFrame,
    scenario: Scenario,
    period: int,
    *,
    coordination: str | None = None,
    farmland_lost_so_far_ha: float = 0.0,
    cell_area_ha: float | None = None,
) -> AllocationModel:
    """Assemble the LP of one period as a sparse matrix (vectorised; no solver involved).

    Parameters are those of :func:`~landuse.allocation.planner.allocate`. Raises :class:`ConfigError` when a policy
    needs a zone-table column that is absent (e.g. TOD without a stations layer). When
    the cell area is known (``cell_area_ha`` or the zone table's attrs), each demand row
    asks for the demand rounded to whole cells, so that the LP and its whole-cell plan
    meet the same amount.
    """
    t0 = time.perf_counter()
    zt = zone_table
    cfg = scenario.config
    pol = cfg.policy
    w = cfg.allocation.weights
    coordination = coordination or pol.coordination
    if coordination not in ("cluster", "city"):
        raise ConfigError(f"coordination must be 'cluster' or 'city', got {coordination!r}")
    ends = scenario.periods[1:]
    if period not in ends:
        raise ConfigError(f"period {period} is not a period end year of the scenario {ends}; "
                          "allocate by the year a period ends")
    city_z = zt["city"].to_numpy(dtype=np.int64)
    types = scenario.urban_types

    srcs = _source_columns(zt, scenario)
    tod = pol.tod
    has_tod_cols = all(f"tod_{name}_ha" in zt.columns for name, _, _ in srcs)
    if tod is not None and not has_tod_cols:
        raise ConfigError("policy.tod is on but the zone table has no tod_<class>_ha columns: give "
                          "layers.stations and rebuild the zone table, or remove policy.tod")
    u = _units(zt, srcs, tod is not None, len(types))
    n_tr = int(cfg.allocation.fill_tranches)
    if not (n_tr > 1 and w.fill > 0):
        n_tr = 1
    p = _pieces(u, n_tr)
    cols = _columns(p, city_z)
    terms = _cost_terms(zt, scenario, cols, p)
    cost = sum(terms.values()) if cols.piece.size else np.zeros(0)
    cost = np.asarray(cost, dtype=np.float64)

    policy = _PolicyRows(zt, scenario, period, coordination, cols, p.near,
                         sorted(int(c) for c in np.unique(city_z)), cell_area_ha)
    policy.add_all(farmland_lost_so_far_ha)
    A, row_lo, row_hi, multi, meta = _with_capacity_rows(policy.rows, p, cols)
    return AllocationModel(
        period=int(period), coordination=coordination, cost=cost, col_ub=cols.ub, col_piece=cols.piece,
        col_type=cols.type, piece_zone=p.zone, piece_role=p.role, piece_near=p.near,
        piece_cap=p.cap, A=A, row_lo=row_lo, row_hi=row_hi, rows=meta, cost_terms=terms,
        demand=policy.demand, warnings=policy.warnings, cap_piece=multi.astype(np.int64), piece_city=city_z[p.zone],
        piece_unit=p.unit, piece_band=p.band, n_tranches=n_tr, unit_zone=u.zone, unit_group=u.group,
        unit_band=u.band, unit_cap=u.cap, unit_role=u.role,
        group_classes=[tuple(names) for names in u.groups.values()], build_seconds=time.perf_counter() - t0,
        types=tuple(types), roles=plan_roles(scenario.classes),
    )


def _first_rows(A: sparse.csr_matrix, n: int) -> sparse.csr_matrix:
    """``A[:n]`` as a view of ``A``'s arrays (no copy of the policy rows, which hold most of the non-zeros)."""
    end = int(A.indptr[n])
    return sparse.csr_matrix((A.data[:end], A.indices[:end], A.indptr[:n + 1]), shape=(n, A.shape[1]), copy=False)
