"""Shrinking cities: which zones release surplus urban land, which cells, and what becomes of them.

When a city's need for land of an urban type falls over a period (a negative change of need, from
``demand.people``; see :mod:`landuse.allocation.demand`), the surplus is released in three steps:

1. **Which zones** (:func:`plan_release`): each zone's release of a hectare costs
   ``centre x exp(-d_centre / 5 km) + stations x exp(-d_station / 1 km) - open_space x s_open - farmland x s_farm``
   (``shrinkage.weights``; ``s_open`` the zone's share of open space and red line, ``s_farm`` its share of farmland
   plus the share of its urban land that was farmland in the earliest history layer): keep the
   centre and station areas, release first where restored land reconnects open space or the red line, or meets
   farmland. The release LP — per city and type, release exactly the surplus; per zone and type, at most the
   occupied land there — has only these rows, so filling zones cheapest first is its optimum, exactly, in whole cells.
2. **Which cells** (:func:`release_cells`): per zone and type, ``shrinkage.pattern`` ``contraction`` takes cells
   from the edge of the occupied urban area inwards, over five rounds that each recount every candidate's
   unoccupied neighbours (3x3), ties broken by a counter-based draw; ``perforation`` takes scattered cells by the
   draw alone. The draws are hashes of (seed, period, round, cell index), so the choice does not depend on threads or
   tiles; it is made once per period, the same for every Monte Carlo run.
3. **What becomes of them** (``shrinkage.outcome``, per city under ``shrinkage.by_city``): ``vacant`` cells keep
   their class and are marked in the vacancy raster; ``restore`` cells revert to ``restore_to`` (a class, a role's
   first class, or the most common non-urban, non-water class of the 3x3 window); ``mix`` restores
   ``restore_share`` of them (those the pattern takes first) and leaves the rest vacant. Restored open space counts
   toward the open-space quota like any open space.

A city that grows again first reoccupies its own vacant land of that type (:func:`reoccupy`, infill first: the
vacant cells with the most occupied neighbours), and only the rest is new land.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage

from landuse.core.config import Scenario
from landuse.core.errors import ConfigError
from landuse.growth.random import stream_key, uniform_array

_PURPOSE_RELEASE = 0x5A1
_PURPOSE_REOCCUPY = 0x5A2
_ROUNDS = 5


@dataclass
class Release:
    """One period's release: per (zone, type) cells planned and released, per city the outcome."""

    plan: pd.DataFrame  # period, zone, city, type, cells, cost_per_ha
    released: pd.DataFrame  # period, city, type, vacant_cells, restored_cells
    unplaced: dict[tuple[int, str], int] = field(default_factory=dict)


def _outcome(scenario: Scenario, city: int):
    cfg = scenario.config.shrinkage
    return cfg.by_city.get(int(city), cfg)


def restore_code(scenario: Scenario, rule: str) -> int | None:
    """Class code of a restore rule (None for 'neighbours'); a clear error for an unknown name."""
    if rule == "neighbours":
        return None
    classes = scenario.classes
    for c in classes:
        if c.name == rule:
            if c.urban or c.role == "water":
                raise ConfigError(f"shrinkage.restore_to: {rule!r} is {c.role} land; restore to open space, "
                                  "farmland or another non-urban class")
            return c.code
    codes = classes.codes_with_role(rule) if rule in ("open_space", "farmland", "other") else ()
    if codes:
        return int(codes[0])
    raise ConfigError(f"shrinkage.restore_to: {rule!r} is neither a class name ({', '.join(c.name for c in classes)})"
                      ", a role (open_space, farmland, other) nor 'neighbours'")


def zone_shares(ds, zones: np.ndarray, landuse: np.ndarray, scenario: Scenario, n_zones: int) -> pd.DataFrame:
    """Per zone id: the share of red-line cells, and the share of its urban cells that were farmland before.

    Before: in the earliest history layer (``landuse_<year>``); the farmland share is 0 without one.
    """
    classes = scenario.classes
    z = zones.ravel()
    cells = np.maximum(np.bincount(z, minlength=n_zones + 1), 1)
    red = (np.bincount(z, weights=np.asarray(ds["red_line"].values, bool).ravel(), minlength=n_zones + 1) / cells
           if "red_line" in ds else np.zeros(n_zones + 1))
    urban = classes.is_role(landuse, "urban").ravel()
    hist = sorted(v for v in ds.data_vars if str(v).startswith("landuse_"))
    former = np.zeros(n_zones + 1)
    if hist:
        was_farm = classes.is_role(np.asarray(ds[hist[0]].values), "farmland").ravel() & urban
        former = np.bincount(z, weights=was_farm, minlength=n_zones + 1) / np.maximum(
            np.bincount(z, weights=urban, minlength=n_zones + 1), 1)
    return pd.DataFrame({"zone": np.arange(n_zones + 1), "red_line_share": red, "former_farmland_share": former})


def release_costs(zt: pd.DataFrame, scenario: Scenario, shares: pd.DataFrame | None = None) -> np.ndarray:
    """Cost per hectare released in each zone of the zone table (see the module docstring)."""
    w = scenario.config.shrinkage.weights
    n = len(zt)
    if shares is not None:
        zt = zt.merge(shares, on="zone", how="left")

    def col(name: str, fill: float) -> np.ndarray:
        return np.nan_to_num(zt[name].to_numpy(np.float64), nan=fill) if name in zt else np.full(n, fill)

    land = np.maximum(col("land_ha", 0.0), 1e-9)
    open_share = np.clip(col("open_space_ha", 0.0) / land + col("red_line_share", 0.0), 0, 1)
    farm = sum(col(c, 0.0) for c in zt.columns if c.startswith("cap_") and c[4:-3] in
               {k.name for k in scenario.classes if k.role == "farmland"})
    farm_share = np.clip(farm / land, 0, 1) if not np.isscalar(farm) else np.zeros(n)
    farm_share = np.clip(farm_share + col("former_farmland_share", 0.0), 0, 1)
    return (w.centre * np.exp(-col("dist_centre_m", np.inf) / 5000.0)
            + w.stations * np.exp(-col("dist_station_m", np.inf) / 1000.0)
            - w.open_space * open_share - w.farmland * farm_share)


def occupied_cells(zones: np.ndarray, landuse: np.ndarray, vacant: np.ndarray, scenario: Scenario,
                   n_zones: int) -> dict[str, np.ndarray]:
    """Occupied (urban, not vacant) cells per zone id (index 0..n_zones) and urban type."""
    out = {}
    for t in scenario.urban_types:
        m = scenario.classes.is_role(landuse, t) & ~vacant & (zones > 0)
        out[t] = np.bincount(zones[m], minlength=n_zones + 1)
    return out


def plan_release(zt: pd.DataFrame, scenario: Scenario, period: int, surplus_cells: dict[tuple[int, str], int],
                 occupied: dict[str, np.ndarray],
                 shares: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[tuple[int, str], int]]:
    """Cells to release per zone and type: each city's surplus from its cheapest zones first (exact LP optimum)."""
    cost = release_costs(zt, scenario, shares)
    zone_ids = zt["zone"].to_numpy(np.int64)
    city = zt["city"].to_numpy(np.int64)
    rows, unplaced = [], {}
    for (c, t), need in sorted(surplus_cells.items()):
        if need <= 0:
            continue
        idx = np.flatnonzero(city == c)
        idx = idx[np.lexsort((zone_ids[idx], cost[idx]))]
        for i in idx:
            if need <= 0:
                break
            take = int(min(need, occupied[t][zone_ids[i]]))
            if take > 0:
                rows.append((int(period), int(zone_ids[i]), int(c), t, take, float(cost[i])))
                need -= take
        if need > 0:
            unplaced[(int(c), t)] = int(need)
    return pd.DataFrame(rows, columns=["period", "zone", "city", "type", "cells", "cost_per_ha"]), unplaced


def _window_count(mask: np.ndarray) -> np.ndarray:
    """Cells of ``mask`` in each 3x3 window, centre excluded (outside the raster counts as not in the mask)."""
    k = np.ones((3, 3), dtype=np.int32)
    k[1, 1] = 0
    return ndimage.convolve(mask.astype(np.int32), k, mode="constant", cval=0)


def _select(groups: np.ndarray, score: np.ndarray, flat: np.ndarray, quota: dict[int, int]) -> np.ndarray:
    """Per group, the ``quota`` candidates of highest score (ties: lowest cell index)."""
    order = np.lexsort((flat, -score, groups))
    g = groups[order]
    starts = np.searchsorted(g, g, "left")
    rank = np.arange(g.size) - starts
    q = np.array([quota.get(int(x), 0) for x in g], dtype=np.int64) if g.size else np.zeros(0, np.int64)
    return order[rank < q]


def release_cells(landuse: np.ndarray, vacant: np.ndarray, zones: np.ndarray, plan: pd.DataFrame,
                  scenario: Scenario, *, seed: int, period: int,
                  period_index: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Release the planned cells; return the new land use, the new vacancy mask and per city what was done."""
    classes = scenario.classes
    lu, vac = landuse.copy(), vacant.copy()
    cols = ["period", "city", "type", "vacant_cells", "restored_cells"]
    if plan.empty:
        return lu, vac, pd.DataFrame(columns=cols)
    shape = lu.shape
    cities = plan.groupby("zone")["city"].first()
    types = classes.urban_types
    nt = len(types)
    type_idx = classes.type_lut().astype(np.int64)  # every class of a type releases as that type
    plan_key = plan.zone.to_numpy(np.int64) * nt + plan.type.map(types.index).to_numpy(np.int64)
    remaining = {i: int(n) for i, n in enumerate(plan.cells)}
    ti = type_idx[lu]
    cell_key = np.where((ti >= 0) & ~vac & (zones > 0), zones.astype(np.int64) * nt + ti, -1)
    order = np.argsort(plan_key)
    pos = np.clip(np.searchsorted(plan_key[order], cell_key), 0, plan_key.size - 1)
    group_of = np.where((cell_key >= 0) & (plan_key[order][pos] == cell_key), order[pos], -1)
    taken = np.zeros(shape, dtype=bool)
    order_taken = np.zeros(shape, dtype=np.int64)  # round in which a cell was taken (restore the first ones)
    pattern = scenario.config.shrinkage.pattern
    rounds = _ROUNDS if pattern == "contraction" else 1
    urban = classes.is_role(lu, "urban")
    for r in range(rounds):
        left = {g: n for g, n in remaining.items() if n > 0}
        if not left:
            break
        quota = {g: -(-n // (rounds - r)) for g, n in left.items()}
        cand = np.flatnonzero((group_of >= 0) & ~taken)
        groups = group_of.ravel()[cand]
        u = uniform_array(stream_key(seed, 0, period_index, r, _PURPOSE_RELEASE), cand.astype(np.int64))
        if pattern == "contraction":
            occupied_now = urban & ~vac & ~taken
            score = (8 - _window_count(occupied_now).ravel()[cand]).astype(np.float64) + u
        else:
            score = u
        pick = cand[_select(groups, score, cand, quota)]
        taken.ravel()[pick] = True
        order_taken.ravel()[pick] = r
        for g, n in zip(*np.unique(group_of.ravel()[pick], return_counts=True), strict=True):
            remaining[int(g)] -= int(n)
    # outcome per city: restore the cells taken first (mix), the rest vacant
    rows = []
    idx = np.flatnonzero(taken.ravel())
    tz = zones.ravel()[idx]
    tcity = cities.reindex(tz).to_numpy()
    tcode = lu.ravel()[idx]
    restore_mask = np.zeros(idx.size, dtype=bool)
    for c in np.unique(tcity):
        oc = _outcome(scenario, int(c))
        sel = np.flatnonzero(tcity == c)
        share = {"vacant": 0.0, "restore": 1.0, "mix": oc.restore_share}[oc.outcome]
        for k_t, t in enumerate(types):
            st = sel[type_idx[tcode[sel]] == k_t]
            if st.size == 0:
                continue
            k = round(share * st.size)
            first = st[np.lexsort((idx[st], order_taken.ravel()[idx[st]]))][:k]
            restore_mask[first] = True
            rows.append((int(period), int(c), t, int(st.size - k), int(k)))
    # restored cells take their class
    for c in np.unique(tcity):
        code = restore_code(scenario, _outcome(scenario, int(c)).restore_to)
        sel = idx[restore_mask & (tcity == c)]
        if sel.size == 0:
            continue
        if code is None:
            lu.ravel()[sel] = _neighbour_class(lu, sel, scenario)
        else:
            lu.ravel()[sel] = code
    vac.ravel()[idx[~restore_mask]] = True
    out = pd.DataFrame(rows, columns=cols)
    return lu, vac, out


def _neighbour_class(lu: np.ndarray, cells: np.ndarray, scenario: Scenario) -> np.ndarray:
    """The most common non-urban, non-water class of each cell's 3x3 window (ties: lowest code).

    Else (none in the window) the first open-space class.
    """
    classes = scenario.classes
    rows, cols = lu.shape
    r, c = np.divmod(cells, cols)
    ok_codes = np.array([k.code for k in classes if not k.urban and k.role not in ("water", "infrastructure")],
                        dtype=np.int64)
    counts = np.zeros((cells.size, ok_codes.size), dtype=np.int64)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == dc == 0:
                continue
            rr, cc = r + dr, c + dc
            inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            v = np.full(cells.size, 255, dtype=np.int64)
            v[inside] = lu[rr[inside], cc[inside]]
            counts += v[:, None] == ok_codes[None, :]
    fallback = classes.codes_with_role("open_space")
    default = int(fallback[0]) if fallback else int(ok_codes[0])
    best = ok_codes[np.argmax(counts, axis=1)]
    return np.where(counts.max(axis=1) > 0, best, default).astype(np.uint8)


def reoccupy(landuse: np.ndarray, vacant: np.ndarray, cities: np.ndarray, want: dict[tuple[int, str], int],
             scenario: Scenario, *, seed: int, period_index: int) -> tuple[np.ndarray, dict[tuple[int, str], int]]:
    """Reoccupy vacant cells before new land is built: per (city, type) up to ``want`` cells, infill first.

    Returns the new vacancy mask and the cells reoccupied per (city, type).
    """
    vac = vacant.copy()
    done: dict[tuple[int, str], int] = {}
    if not vac.any() or not want:
        return vac, done
    classes = scenario.classes
    occupied = classes.is_role(landuse, "urban") & ~vac
    neigh = _window_count(occupied).ravel()
    for (c, t), n in sorted(want.items()):
        if n <= 0:
            continue
        cand = np.flatnonzero((vac & (cities == c) & classes.is_role(landuse, t)).ravel())
        if cand.size == 0:
            continue
        u = uniform_array(stream_key(seed, 0, period_index, 0, _PURPOSE_REOCCUPY), cand.astype(np.int64))
        pick = cand[np.lexsort((cand, -(neigh[cand] + u)))][:n]
        vac.ravel()[pick] = False
        done[(int(c), t)] = int(pick.size)
    return vac, done


__all__ = ["Release", "occupied_cells", "plan_release", "release_cells", "release_costs", "reoccupy", "restore_code",
           "zone_shares"]
