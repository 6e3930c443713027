"""Tests of the allocation LP (landuse.allocation.planner.allocate and the modules it uses): hand-solvable instances, an independent
formulation solved by scipy's linprog, invariants recomputed from the targets, coordination,
infeasibility diagnosis, zone table from a Landscape, writers and the CLI command."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest
import yaml
from affine import Affine
from scipy.optimize import linprog

from landuse.allocation.coordination import compare_coordination
from landuse.allocation.handoff import advance_zone_table
from landuse.allocation.model import build_model, city_demand
from landuse.allocation.pieces import SOURCE_ROLES
from landuse.allocation.planner import allocate
from landuse.allocation.tables import write_allocation_csv, write_duals_csv
from landuse.allocation.zone_stats import zone_table
from landuse.allocation.zones import zone_grid
from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.errors import ConfigError, InfeasibleAllocationError
from landuse.core.landscape import new_landscape

TYPES = URBAN_TYPES
ZERO_W = {"sprawl": 0.0, "centre": 0.0, "farmland": 0.0, "open_space": 0.0, "suitability": 0.0, "fill": 0.0}


def scen(demand: dict[str, float] | None = None, *, policy: dict | None = None, weights: dict | None = None,
         allocation: dict | None = None, by_city: dict | None = None, split: str | None = None,
         periods: tuple[int, ...] = (2020, 2030)):
    end = periods[1]
    dem: dict = {t: {end: float(v)} for t, v in (demand or {}).items()}
    if by_city is not None:
        dem["by_city"] = {c: {t: {end: float(v)} for t, v in d.items()} for c, d in by_city.items()}
    if split is not None:
        dem["split"] = split
    alloc = {"weights": {**ZERO_W, **(weights or {})}, **(allocation or {})}
    return scenario_from_dict({"name": "t", "layers": {"landuse": "lu.tif"}, "periods": list(periods),
                               "demand": dem, "policy": policy or {}, "allocation": alloc})


def table(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"zone": np.arange(1, n + 1), "city": np.ones(n, dtype=int)}
    base.update({k: np.asarray(v, dtype=float) if k != "city" else np.asarray(v, dtype=int)
                 for k, v in cols.items()})
    df = pd.DataFrame(base)
    for t in TYPES:
        if f"suit_{t}" not in df:
            df[f"suit_{t}"] = 0.0
    df.attrs["cell_area_ha"] = 1.0
    return df


def dual(a, name: str) -> pd.Series:
    return a.duals.set_index("constraint").loc[name]


# --------------------------------------------------------------------------- hand-solvable instances


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_demand_and_capacity_fill_cheapest_zones(solver):
    zt = table(cap_farmland_ha=[10, 10, 10], dist_urban_m=[1000, 2000, 3000])
    a = allocate(zt, scen({"residential": 15}, weights={"sprawl": 1.0}), 2030, solver=solver)
    got = a.targets.set_index("zone")["hectares"]
    assert got.to_dict() == pytest.approx({1: 10.0, 2: 5.0})
    assert a.objective == pytest.approx(10 * 1 + 5 * 2)
    # one more hectare of demand would go to zone 2 at 2 per ha
    assert dual(a, "demand[residential]")["cost"] == pytest.approx(2.0)
    assert a.status == "optimal"


def test_source_classes_costed_exactly_and_capacity_per_class():
    # zone 1 holds farmland (cost 1/ha) and forest (cost 3/ha), zone 2 bare land (cost 0) far away
    zt = table(cap_farmland_ha=[4, 0], cap_forest_ha=[6, 0], cap_bare_ha=[0, 2], dist_urban_m=[0, 2500])
    a = allocate(zt, scen({"industrial": 8}, weights={"farmland": 1.0, "open_space": 3.0, "sprawl": 1.0}), 2030)
    t = a.targets.set_index("zone")
    # bare in zone 2 costs 2.5; farmland 1 < bare 2.5 < forest 3 -> 4 farmland, 2 bare, 2 forest
    assert t.loc[1, "from_farmland_ha"] == pytest.approx(4.0)
    assert t.loc[1, "from_open_space_ha"] == pytest.approx(2.0)
    assert t.loc[2, "from_other_ha"] == pytest.approx(2.0)
    assert a.objective == pytest.approx(4 * 1 + 2 * 3 + 2 * 2.5)
    assert a.losses.set_index("city").loc[1, "open_space_lost_ha"] == pytest.approx(2.0)


def test_farmland_cap_forces_costlier_land_and_prices_it():
    zt = table(cap_farmland_ha=[10, 0], cap_bare_ha=[0, 10], dist_urban_m=[0, 4000])
    s = scen({"residential": 8}, weights={"sprawl": 1.0}, policy={"farmland_loss_cap": {"hectares": 5}})
    a = allocate(zt, s, 2030)
    assert a.farmland_lost_ha == pytest.approx(5.0)
    assert a.objective == pytest.approx(3 * 4.0)
    d = dual(a, "farmland_cap")
    assert d["binding"]
    assert d["cost"] == pytest.approx(4.0)  # each ha less of farmland sends 1 ha 4 km out


def test_horizon_farmland_cap_counts_earlier_losses():
    zt = table(cap_farmland_ha=[10, 0], cap_bare_ha=[0, 10], dist_urban_m=[0, 4000])
    s = scen({"residential": 8}, weights={"sprawl": 1.0},
             policy={"farmland_loss_cap": {"hectares": 9, "per": "horizon"}})
    assert allocate(zt, s, 2030).farmland_lost_ha == pytest.approx(8.0)
    assert allocate(zt, s, 2030, farmland_lost_so_far_ha=6.0).farmland_lost_ha == pytest.approx(3.0)


@pytest.mark.parametrize("unit", ["city", "cluster"])
def test_open_space_quota(unit):
    # city 1: land 100, open space 30; a 25 % quota lets it lose 5 ha of forest
    zt = table(city=[1, 2], cap_forest_ha=[20, 0], cap_bare_ha=[0, 20], dist_urban_m=[0, 1000],
               land_ha=[100, 100], open_space_ha=[30, 0 if unit == "city" else 20])
    s = scen({"residential": 12}, weights={"sprawl": 1.0}, policy={"open_space_quota": {"share": 0.25, "unit": unit,
                                                                                 "already_below": "no_further_loss"}})
    a = allocate(zt, s, 2030)
    lost = a.open_space_lost_ha
    if unit == "city":
        assert lost == pytest.approx(5.0)  # 30 - 0.25*100
        d = dual(a, "open_space_quota[city=1]")
        # one more percentage point of quota = 1 ha less forest = 1 ha moved 1 km further
        assert d["cost"] == pytest.approx(1.0)
        assert a.losses.set_index("city").loc[1, "open_space_share_after"] == pytest.approx(0.25)
    else:
        assert lost == pytest.approx(0.0)  # 50 - 0.25*200 = 0
        assert any("no further" in w for w in a.warnings) is False
        assert dual(a, "open_space_quota[cluster]")["binding"]
    assert a.objective == pytest.approx((12 - lost) * 1.0)


def test_open_space_quota_already_unmet_means_no_further_loss():
    zt = table(cap_forest_ha=[20, 0], cap_bare_ha=[0, 20], dist_urban_m=[0, 1000], land_ha=[100, 100],
               open_space_ha=[10, 0])
    a = allocate(zt, scen({"residential": 5}, weights={"sprawl": 1.0},
                          policy={"open_space_quota": {"share": 0.15, "already_below": "no_further_loss"}}), 2030)
    assert a.open_space_lost_ha == pytest.approx(0.0)
    assert any("already holds only 5.0 %" in w for w in a.warnings)


def test_tod_share():
    # near-station land lies far from urban land; 40 % of residential must be near
    zt = table(cap_bare_ha=[20, 20], tod_bare_ha=[0, 20], dist_urban_m=[0, 3000])
    s = scen({"residential": 10, "industrial": 5}, weights={"sprawl": 1.0},
             policy={"tod": {"share": 0.4, "radius_m": 800}})
    a = allocate(zt, s, 2030)
    res = a.targets[a.targets.type == "residential"].set_index("zone")
    assert res.loc[2, "hectares"] == pytest.approx(4.0)
    assert res["near_station_ha"].sum() == pytest.approx(4.0)
    ind = a.targets[a.targets.type == "industrial"]
    assert ind["hectares"].sum() == pytest.approx(5.0) and (ind.zone == 1).all()
    assert a.objective == pytest.approx(4 * 3.0)
    d = dual(a, "tod[cluster]")
    assert d["binding"]
    assert d["cost"] == pytest.approx(0.1 * 3.0)  # 1 pp of 10 ha = 0.1 ha moved 3 km


def test_jobs_housing_maximum_infeasible_is_explained():
    # I <= 0.5 R in every city, R = 10 in total -> at most 5 ha of industry, 20 demanded
    zt = table(city=[1, 2], cap_bare_ha=[100, 100], dist_urban_m=[0, 1000])
    s = scen({"residential": 10, "industrial": 20}, weights={"sprawl": 1.0},
             policy={"jobs_housing": {"min": 0.0, "max": 0.5}})
    with pytest.raises(InfeasibleAllocationError) as ei:
        allocate(zt, s, 2030)
    assert ei.value.violations
    assert all(k.startswith("jobs_housing_max[city=") for k in ei.value.violations)
    assert "raise policy.jobs_housing.max" in str(ei.value)


def test_jobs_housing_min_and_max():
    # city 1 suits housing, city 2 suits industry (suitability reward 1 per ha)
    zt = table(city=[1, 2], cap_bare_ha=[100, 100], suit_residential=[1, 0], suit_industrial=[0, 1])
    dem = {"residential": 20, "industrial": 10}
    free = allocate(zt, scen(dem, weights={"suitability": 1.0}), 2030)
    assert free.objective == pytest.approx(-30.0)
    # min 0.2, max 10: city 1 needs I1 >= 0.2 R1, and city 2 may hold industry only with housing,
    # I2 <= 10 R2 -> the optimum has both binding: 10 - 0.2 R1 = 10 (20 - R1), R1 = 190 / 9.8
    a = allocate(zt, scen(dem, weights={"suitability": 1.0}, policy={"jobs_housing": {"min": 0.2, "max": 10}}), 2030)
    by = a.losses.set_index("city")
    r1 = 190 / 9.8
    assert by.loc[1, "new_residential_ha"] == pytest.approx(r1)
    assert by.loc[1, "new_industrial_ha"] == pytest.approx(0.2 * r1)
    assert a.objective == pytest.approx(-(10 + 0.8 * r1))
    assert dual(a, "jobs_housing_min[city=1]")["binding"] and dual(a, "jobs_housing_max[city=2]")["binding"]
    assert dual(a, "jobs_housing_min[city=1]")["cost"] > 0 and dual(a, "jobs_housing_max[city=2]")["cost"] > 0
    # maximum 1.0 in city 2 (which builds no housing): 10 ha of moves either way
    b = allocate(zt, scen(dem, weights={"suitability": 1.0}, policy={"jobs_housing": {"min": 0.0, "max": 1.0}}), 2030)
    assert b.objective == pytest.approx(-20.0)
    check_invariants(b, zt, scen(dem, policy={"jobs_housing": {"min": 0.0, "max": 1.0}}))


def test_growth_limit():
    zt = table(city=[1, 2, 2], cap_bare_ha=[50, 50, 50], dist_urban_m=[0, 2000, 3000])
    s = scen({"commercial": 30}, weights={"sprawl": 1.0}, policy={"city_growth_limits": {1: 12}})
    a = allocate(zt, s, 2030)
    assert a.losses.set_index("city").loc[1, "new_urban_ha"] == pytest.approx(12.0)
    assert a.objective == pytest.approx(18 * 2.0)
    assert dual(a, "growth_limit[city=1]")["cost"] == pytest.approx(2.0)


def test_city_mode_splits_demand_by_urban_area():
    zt = table(city=[1, 2], cap_bare_ha=[100, 100], urban_ha=[30, 10], land_ha=[100, 300], dist_urban_m=[0, 1000])
    a = allocate(zt, scen({"residential": 20}, weights={"sprawl": 1.0}, policy={"coordination": "city"}), 2030)
    by = a.losses.set_index("city")["new_residential_ha"]
    assert by.to_dict() == pytest.approx({1: 15.0, 2: 5.0})
    b = allocate(zt, scen({"residential": 20}, split="land_area", policy={"coordination": "city"}), 2030)
    assert b.losses.set_index("city")["new_residential_ha"].to_dict() == pytest.approx({1: 5.0, 2: 15.0})
    per_city, _ = city_demand(zt, scen({"residential": 20}, by_city={1: {"residential": 2}}), 2030)
    assert per_city[(1, "residential")] == 2.0 and per_city[(2, "residential")] == 0.0


def test_conversion_matrix_limits_sources():
    s = scen({"industrial": 5}, weights={"sprawl": 1.0})
    s.config.growth.conversion = {"residential": ["farmland"], "industrial": ["other"], "commercial": ["farmland"]}
    zt = table(cap_farmland_ha=[10, 0], cap_bare_ha=[0, 10], dist_urban_m=[0, 1000])
    a = allocate(zt, s, 2030)
    assert (a.targets.zone == 2).all()
    assert a.targets.from_farmland_ha.sum() == 0.0


# --------------------------------------------------------------------------- independent formulation


def random_instance(seed: int, n_zones: int = 8, n_city: int = 3):
    rng = np.random.default_rng(seed)
    names = ["farmland", "forest", "grassland", "bare"]
    cap = rng.integers(0, 8, (n_zones, len(names))).astype(float) * (rng.random((n_zones, len(names))) < 0.8)
    near = np.floor(cap * rng.random((n_zones, len(names))) * (rng.random(n_zones) < 0.5)[:, None])
    cols = {"city": rng.integers(1, n_city + 1, n_zones), "land_ha": np.full(n_zones, 60.0),
            "open_space_ha": cap[:, 1:3].sum(axis=1) + rng.integers(0, 10, n_zones),
            "urban_ha": rng.integers(1, 20, n_zones).astype(float),
            "dist_urban_m": rng.gamma(2, 800, n_zones), "dist_centre_m": rng.gamma(2, 3000, n_zones)}
    for i, n in enumerate(names):
        cols[f"cap_{n}_ha"] = cap[:, i]
        cols[f"tod_{n}_ha"] = near[:, i]
    for t in TYPES:
        cols[f"suit_{t}"] = rng.random(n_zones)
    zt = table(**cols)
    total = cap.sum()
    dem = {"residential": round(0.25 * total, 1), "industrial": round(0.1 * total, 1),
           "commercial": round(0.05 * total, 1)}
    policy = {
        "open_space_quota": {"share": 0.1, "unit": "city", "already_below": "no_further_loss"},
        "farmland_loss_cap": {"hectares": round(0.3 * total, 1)},
        "tod": {"share": 0.2},
        "jobs_housing": {"min": 0.1, "max": 3.0},
        "city_growth_limits": {1: round(0.35 * total, 1)},
    }
    weights = {"sprawl": 1.0, "centre": 0.2, "farmland": 1.0, "open_space": 2.0, "suitability": 1.0}
    return zt, dem, policy, weights


def linprog_reference(zt: pd.DataFrame, scenario, period: int, coordination: str) -> float | None:
    """The LP written again from the formula, one variable per zone, class, station band and type."""
    cfg = scenario.config
    w, pol = cfg.allocation.weights, cfg.policy
    scheme = default_scheme()
    names = [c[4:-3] for c in zt.columns if c.startswith("cap_")]
    role = {c.name: c.role for c in scheme}
    var, cost = [], []
    for z, r in enumerate(zt.itertuples(index=False)):
        row = r._asdict()
        for n in names:
            near = row[f"tod_{n}_ha"] if pol.tod else 0.0
            for band, c in ((1, near), (0, row[f"cap_{n}_ha"] - near)):
                for k, t in enumerate(TYPES):
                    var.append((z, n, band, k, c))
                    cost.append(w.sprawl * row["dist_urban_m"] / 1000 + w.centre * row["dist_centre_m"] / 1000
                                + w.farmland * (role[n] == "farmland") + w.open_space * (role[n] == "open_space")
                                - w.suitability * row[f"suit_{t}"])
    nv = len(var)
    city = zt.city.to_numpy()
    A_ub, b_ub, A_eq, b_eq = [], [], [], []

    def vec(pred):
        return np.array([1.0 if pred(*v[:4]) else 0.0 for v in var])

    for z, n, band in itertools.product(range(len(zt)), names, (0, 1)):
        A_ub.append(vec(lambda zz, nn, bb, kk, z=z, n=n, band=band: (zz, nn, bb) == (z, n, band)))
        b_ub.append(next(v[4] for v in var if v[:3] == (z, n, band)))
    ca = zt.attrs.get("cell_area_ha")

    def whole(d: float) -> float:  # demand rows ask for whole cells when the cell area is known
        return d if ca is None else round(d / ca) * ca

    if coordination == "cluster":
        for k, t in enumerate(TYPES):
            A_eq.append(vec(lambda zz, nn, bb, kk, k=k: kk == k))
            b_eq.append(whole(cfg.demand.cluster(t, period)))
    else:
        per_city, _ = city_demand(zt, scenario, period)
        for (c, t), d in per_city.items():
            A_eq.append(vec(lambda zz, nn, bb, kk, c=c, k=TYPES.index(t): kk == k and city[zz] == c))
            b_eq.append(whole(d))
    if pol.farmland_loss_cap:
        A_ub.append(vec(lambda zz, nn, bb, kk: role[nn] == "farmland"))
        b_ub.append(pol.farmland_loss_cap.hectares)
    if pol.open_space_quota:
        for c in np.unique(city):
            m = city == c
            A_ub.append(vec(lambda zz, nn, bb, kk, c=c: role[nn] == "open_space" and city[zz] == c))
            b_ub.append(max(zt.open_space_ha[m].sum() - pol.open_space_quota.share * zt.land_ha[m].sum(), 0.0))
    if pol.tod:
        units = [None] if coordination == "cluster" else list(np.unique(city))
        for u in units:
            in_u = np.array([(u is None or city[v[0]] == u) for v in var])
            if u is not None and not any(in_u[i] and var[i][2] == 1 and var[i][4] > 0 for i in range(nv)):
                continue
            a = np.array([(v[2] - pol.tod.share) if (v[3] == 0 and in_u[i]) else 0.0 for i, v in enumerate(var)])
            A_ub.append(-a)
            b_ub.append(0.0)
    if pol.jobs_housing:
        jh = pol.jobs_housing
        for c in np.unique(city):
            inc = np.array([city[v[0]] == c for v in var])
            res = np.array([v[3] == 0 for v in var])
            A_ub.append(-np.where(inc, np.where(res, -jh.min, 1.0), 0.0))
            b_ub.append(0.0)
            A_ub.append(np.where(inc, np.where(res, -jh.max, 1.0), 0.0))
            b_ub.append(0.0)
    for c, lim in pol.city_growth_limits.items():
        A_ub.append(vec(lambda zz, nn, bb, kk, c=c: city[zz] == c))
        b_ub.append(lim)
    res = linprog(cost, A_ub=np.array(A_ub), b_ub=np.array(b_ub), A_eq=np.array(A_eq), b_eq=np.array(b_eq),
                  bounds=(0, None), method="highs")
    return float(res.fun) if res.status == 0 else None


def test_fill_tranches_spread_growth_over_zones() -> None:
    # three equally cheap zones of 9 ha: without a fill cost any split is optimal; with it, each
    # zone's first tranche (3 ha) is taken before any second tranche
    zt = table(cap_farmland_ha=[9.0, 9.0, 9.0], dist_urban_m=[0.0, 100.0, 200.0])
    flat = allocate(zt, scen({"residential": 9}, weights={"sprawl": 1.0}), 2030)
    assert flat.targets.set_index("zone").hectares.to_dict() == pytest.approx({1: 9.0})
    s = scen({"residential": 9}, weights={"sprawl": 1.0, "fill": 1.0}, allocation={"fill_tranches": 3})
    spread = allocate(zt, s, 2030)
    assert spread.targets.set_index("zone").hectares.to_dict() == pytest.approx({1: 3.0, 2: 3.0, 3: 3.0})
    # the fill term is reported and the objective is its formula: 3 ha x (0 + 0.1 + 0.2 km) + 0 fill
    assert spread.objective_terms["fill"] == pytest.approx(0.0)
    assert spread.objective == pytest.approx(3 * 0.1 + 3 * 0.2)
    s2 = scen({"residential": 12}, weights={"sprawl": 1.0, "fill": 1.0}, allocation={"fill_tranches": 3})
    more = allocate(zt, s2, 2030)
    assert more.objective_terms["fill"] == pytest.approx(3.0)  # one second tranche of zone 1: 3 ha x 1


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("coordination", ["cluster", "city"])
def test_matches_independent_linprog(seed, coordination):
    zt, dem, policy, weights = random_instance(seed)
    s = scen(dem, policy={**policy, "coordination": coordination}, weights=weights, allocation={"solver": "highs"})
    ref = linprog_reference(zt, s, 2030, coordination)
    if ref is None:
        with pytest.raises(InfeasibleAllocationError):
            allocate(zt, s, 2030)
        return
    a = allocate(zt, s, 2030)
    assert a.objective == pytest.approx(ref, rel=1e-6, abs=1e-6)
    check_invariants(a, zt, s)


def check_invariants(a, zt: pd.DataFrame, s) -> None:
    """Demand, capacities, quota and caps recomputed from the targets."""
    pol = s.config.policy
    t = a.targets
    # demand met exactly (rounded to whole cells), in hectares and in whole cells
    ca = zt.attrs["cell_area_ha"]
    for ty in TYPES:
        d = s.config.demand.cluster(ty, a.period)
        if a.coordination == "cluster":
            assert t.loc[t.type == ty, "hectares"].sum() == pytest.approx(round(d / ca) * ca, abs=1e-6)
            assert t.loc[t.type == ty, "cells"].sum() == round(d / zt.attrs["cell_area_ha"])
    if a.coordination == "city":
        per_city, _ = city_demand(zt, s, a.period)
        got = t.groupby(["city", "type"]).cells.sum()
        for (c, ty), d in per_city.items():
            assert got.get((c, ty), 0) == round(d / zt.attrs["cell_area_ha"])
    assert (t.cells >= 0).all()
    # no zone exceeds capacity in any source role, nor in cells
    z = zt.set_index("zone")
    scheme = default_scheme()
    by_zone = t.groupby("zone")[[f"from_{r}_ha" for r in SOURCE_ROLES] + ["cells", "near_station_ha"]].sum()
    for r in SOURCE_ROLES:
        cap = sum((z[f"cap_{c.name}_ha"] for c in scheme if c.role == r and f"cap_{c.name}_ha" in z),
                  start=pd.Series(0.0, index=z.index))
        assert (by_zone[f"from_{r}_ha"] <= cap.reindex(by_zone.index) + 1e-6).all()
    # capacity in whole cells (zone tables from rasters hold whole cells; advance_zone_table may leave
    # fractions, which count as the nearest whole number of cells)
    cap_all = np.round(z.filter(regex=r"^cap_").sum(axis=1) / zt.attrs["cell_area_ha"])
    assert (by_zone["cells"] <= cap_all.reindex(by_zone.index) + 1e-9).all()
    if pol.tod:
        near = z.filter(regex=r"^tod_").sum(axis=1)
        assert (by_zone["near_station_ha"] <= near.reindex(by_zone.index) + 1e-6).all()
    t2 = t.assign(city=z.loc[t.zone, "city"].to_numpy())
    if pol.farmland_loss_cap:
        assert t2.from_farmland_ha.sum() <= pol.farmland_loss_cap.hectares + 1e-6
    if pol.open_space_quota:
        q = pol.open_space_quota.share
        for c, g in zt.groupby("city"):
            lost = t2.loc[t2.city == c, "from_open_space_ha"].sum()
            if g.open_space_ha.sum() >= q * g.land_ha.sum():
                assert g.open_space_ha.sum() - lost >= q * g.land_ha.sum() - 1e-6
            else:
                assert lost <= 1e-6
    if pol.tod and a.coordination == "cluster":
        res = t2[t2.type == "residential"]
        assert res.near_station_ha.sum() >= pol.tod.share * res.hectares.sum() - 1e-6
    if pol.jobs_housing:
        for _, g in t2.groupby("city"):
            r = g.loc[g.type == "residential", "hectares"].sum()
            j = g.loc[g.type != "residential", "hectares"].sum()
            assert pol.jobs_housing.min * r - 1e-6 <= j <= pol.jobs_housing.max * r + 1e-6
    for c, lim in pol.city_growth_limits.items():
        assert t2.loc[t2.city == c, "hectares"].sum() <= lim + 1e-6
    check_whole_cell_plan(a, zt, s)


def check_whole_cell_plan(a, zt: pd.DataFrame, s) -> None:
    """Every policy holds on the plan in whole cells too (what the growth engine converts)."""
    pol = s.config.policy
    ca = zt.attrs["cell_area_ha"]
    assert not a.plan_broken and not a.plan_unplaced, (a.plan_broken, a.plan_unplaced)
    t = a.targets.assign(city=zt.set_index("zone").loc[a.targets.zone, "city"].to_numpy())
    assert (t[[f"from_{r}_cells" for r in SOURCE_ROLES]].sum(axis=1) == t.cells).all()
    u = a.units.set_index("unit")
    per_unit = a.unit_targets.groupby("unit").cells.sum()
    assert (per_unit <= u.loc[per_unit.index, "cap_cells"]).all()
    if pol.farmland_loss_cap:
        assert t.from_farmland_cells.sum() * ca <= pol.farmland_loss_cap.hectares + 1e-6
    if pol.open_space_quota:
        q = pol.open_space_quota.share
        for c, g in zt.groupby("city"):
            lost = t.loc[t.city == c, "from_open_space_cells"].sum() * ca
            allow = max(g.open_space_ha.sum() - q * g.land_ha.sum(), 0.0)
            assert lost <= allow + 1e-6
    if pol.tod and a.coordination == "cluster":
        res = t[t.type == "residential"]
        assert res.near_station_cells.sum() >= pol.tod.share * res.cells.sum() - 1e-9
    if pol.jobs_housing:
        for _, g in t.groupby("city"):
            r = g.loc[g.type == "residential", "cells"].sum()
            j = g.loc[g.type != "residential", "cells"].sum()
            assert pol.jobs_housing.min * r - 1e-9 <= j <= pol.jobs_housing.max * r + 1e-9
    for c, lim in pol.city_growth_limits.items():
        assert t.loc[t.city == c, "cells"].sum() * ca <= lim + 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_cbc_and_highs_agree(seed):
    zt, dem, policy, weights = random_instance(100 + seed, n_zones=12)
    objs = {}
    for solver, iface in (("cbc", "direct"), ("highs", "direct"), ("highs", "pulp")):
        s = scen(dem, policy=policy, weights=weights, allocation={"solver": solver, "highs_interface": iface})
        try:
            objs[(solver, iface)] = allocate(zt, s, 2030).objective
        except InfeasibleAllocationError:
            objs[(solver, iface)] = None
    vals = list(objs.values())
    if vals[0] is None:
        assert all(v is None for v in vals)
    else:
        for v in vals[1:]:
            assert v == pytest.approx(vals[0], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("solver", ["highs", "cbc", "highs-ipm"])
def test_working_set_gives_the_whole_model_optimum(solver, monkeypatch):
    if solver == "highs-ipm":  # allocation.highs_method auto: interior point from IPM_MIN_VARIABLES on
        import landuse.allocation.solvers as solvers

        monkeypatch.setattr(solvers, "IPM_MIN_VARIABLES", 1)
        solver = "highs"
    rng = np.random.default_rng(7)
    n = 1500
    cap = rng.integers(0, 30, (n, 3)).astype(float)
    near = np.floor(cap * (rng.random(n) < 0.2)[:, None] * 0.5)
    zt = table(city=np.sort(rng.integers(1, 6, n)), cap_farmland_ha=cap[:, 0], cap_forest_ha=cap[:, 1],
               cap_bare_ha=cap[:, 2], tod_farmland_ha=near[:, 0], tod_forest_ha=near[:, 1], tod_bare_ha=near[:, 2],
               land_ha=np.full(n, 100.0), open_space_ha=cap[:, 1] + 5, urban_ha=rng.integers(0, 30, n),
               dist_urban_m=rng.gamma(2, 700, n), suit_residential=rng.random(n), suit_industrial=rng.random(n))
    total = cap.sum()
    dem = {"residential": 0.03 * total, "industrial": 0.015 * total, "commercial": 0.005 * total}
    policy = {"open_space_quota": {"share": 0.12, "already_below": "no_further_loss"}, "farmland_loss_cap": {"hectares": 0.02 * total},
              "tod": {"share": 0.3}, "jobs_housing": {"min": 0.2, "max": 2.0},
              "city_growth_limits": {2: 0.03 * total}}
    w = {"sprawl": 1.0, "farmland": 1.0, "open_space": 2.0, "suitability": 1.0}
    for coordination in ("cluster", "city"):
        pol = {**policy, "coordination": coordination}
        full = allocate(zt, scen(dem, policy=pol, weights=w, allocation={"solver": solver, "working_set": "never"}),
                        2030)
        s_ws = scen(dem, policy=pol, weights=w, allocation={"solver": solver, "working_set": "always"})
        ws = allocate(zt, s_ws, 2030)
        assert ws.objective == pytest.approx(full.objective, rel=1e-7)
        # the duals of the policies agree where the optimum is unique in the duals' sense
        assert ws.duals.binding.sum() >= 1
        check_invariants(ws, zt, s_ws)


# --------------------------------------------------------------------------- coordination


@pytest.mark.parametrize("seed", range(4))
def test_coordinated_never_worse_than_fragmented(seed):
    zt, dem, policy, weights = random_instance(200 + seed)
    s = scen(dem, policy={"open_space_quota": policy["open_space_quota"]}, weights=weights)
    try:
        cmp = compare_coordination(zt, s, 2030)
    except InfeasibleAllocationError:
        pytest.skip("fragmented plan infeasible on this instance")
    assert cmp.coordinated.objective <= cmp.fragmented.objective + 1e-7
    assert cmp.differences["objective"] == pytest.approx(cmp.fragmented.objective - cmp.coordinated.objective)


def test_fragmentation_costs_when_cheap_land_lies_in_a_neighbour():
    # city 1 has only remote farmland; city 2 has bare land next to the urban edge
    zt = table(city=[1, 1, 2, 2], cap_farmland_ha=[20, 20, 0, 0], cap_bare_ha=[0, 0, 40, 40],
               dist_urban_m=[3000, 4000, 0, 500], urban_ha=[10, 10, 10, 10], land_ha=[100] * 4,
               open_space_ha=[0] * 4)
    s = scen({"residential": 30}, weights={"sprawl": 1.0, "farmland": 1.0},
             by_city={1: {"residential": 15}, 2: {"residential": 15}})
    cmp = compare_coordination(zt, s, 2030)
    assert cmp.coordinated.objective == pytest.approx(0.0)  # all 30 ha at distance 0 in city 2
    assert cmp.fragmented.objective == pytest.approx(15 * (3 + 1) + 0)
    assert cmp.differences["objective"] == pytest.approx(60.0)
    assert cmp.differences["farmland_lost_ha"] == pytest.approx(15.0)
    assert cmp.differences["mean_distance_new_m"] == pytest.approx(1500.0)
    assert "fragmented - coordinated" in cmp.summary()
    # an allocation already at hand is reused (not solved again) and left unchanged
    own = allocate(zt, s, 2030)
    own.objective = -1.0  # marks the object: a re-solve would report 0.0
    warnings = list(own.warnings)
    again = compare_coordination(zt, s, 2030, solved=own)
    assert again.coordinated.objective == -1.0
    assert again.fragmented.objective == pytest.approx(60.0)
    assert own.warnings == warnings


# --------------------------------------------------------------------------- infeasibility


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_infeasible_quota_is_explained_with_amount_and_fix(solver):
    # land 40, open space 25, quota 50 % -> 5 ha of forest may go; demand 20 needs 10 ha of forest
    zt = table(cap_farmland_ha=[10, 0], cap_forest_ha=[0, 25], land_ha=[20, 20], open_space_ha=[0, 25])
    s = scen({"residential": 20}, policy={"open_space_quota": {"share": 0.5}})
    with pytest.raises(InfeasibleAllocationError) as ei:
        allocate(zt, s, 2030, solver=solver)
    msg = str(ei.value)
    assert "open_space_quota[city=1]" in msg
    assert "5.0 ha more open space" in msg and "relax the quota to 37.5 %" in msg
    assert ei.value.violations == {"open_space_quota[city=1]": pytest.approx(12.5)}


def test_infeasible_demand_and_cap_are_explained():
    zt = table(cap_farmland_ha=[10, 0], cap_bare_ha=[0, 10])
    s = scen({"residential": 18}, policy={"farmland_loss_cap": {"hectares": 5}})
    with pytest.raises(InfeasibleAllocationError) as ei:
        allocate(zt, s, 2030)
    assert ei.value.violations == {"farmland_cap": pytest.approx(3.0)}
    assert "at least 8.0" in str(ei.value)
    s2 = scen({"residential": 25})
    with pytest.raises(InfeasibleAllocationError) as ei2:
        allocate(zt, s2, 2030)
    assert ei2.value.violations == {"demand[residential]": pytest.approx(5.0)}
    assert "exceeds its developable land by 5.0 ha" in str(ei2.value)


def test_fragmented_infeasibility_names_city_and_suggests_coordination():
    zt = table(city=[1, 2], cap_bare_ha=[5, 50])
    s = scen({"residential": 20}, by_city={1: {"residential": 10}, 2: {"residential": 10}},
             policy={"coordination": "city"})
    with pytest.raises(InfeasibleAllocationError) as ei:
        allocate(zt, s, 2030)
    assert ei.value.violations == {"demand[residential,city=1]": pytest.approx(5.0)}
    assert "policy.coordination: cluster" in str(ei.value)
    assert allocate(zt, s, 2030, coordination="cluster").objective == pytest.approx(0.0)


def test_tod_without_station_columns_is_a_config_error():
    zt = table(cap_bare_ha=[5, 5])
    with pytest.raises(ConfigError, match="layers.stations"):
        allocate(zt, scen({"residential": 2}, policy={"tod": {"share": 0.3}}), 2030)
    with pytest.raises(ConfigError, match="not a period end year"):
        allocate(zt, scen({"residential": 2}), 2025)


# --------------------------------------------------------------------------- zone table from a Landscape


@pytest.fixture
def landscape_and_scenario():
    code = {c.name: c.code for c in default_scheme()}
    R, IN = code["residential"], code["industrial"]
    F, FO, GR, W, B = code["farmland"], code["forest"], code["grassland"], code["water"], code["bare"]
    lu = np.array([
        [F, F, F, F, FO, FO, FO, FO],
        [F, R, R, F, F, FO, GR, GR],
        [F, R, R, F, F, B, GR, W],
        [F, IN, F, F, F, B, W, W],
    ], dtype=np.uint8)
    cities = np.ones(lu.shape, dtype=np.int32)
    cities[:, 4:] = 2
    red = np.zeros(lu.shape, bool)
    red[0, 6:] = True
    pf = np.zeros(lu.shape, bool)
    pf[3, 2:4] = True
    gb = np.zeros(lu.shape, bool)
    gb[:, 4] = True
    st = np.zeros(lu.shape, bool)
    st[1, 5] = True
    ce = np.zeros(lu.shape, bool)
    ce[1, 1] = True
    ds = new_landscape({"landuse": lu, "cities": cities, "red_line": red, "permanent_farmland": pf,
                        "greenbelt": gb, "stations": st, "centres": ce},
                       crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 400))
    sc = scenario_from_dict({
        "name": "z", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030, 2040],
        "demand": {"residential": {2030: 4.0, 2040: 3.0}, "industrial": {2030: 2.0, 2040: 1.0},
                   "commercial": {2030: 1.0, 2040: 1.0}},
        "policy": {"greenbelt": {"mode": "hard"}, "open_space_quota": {"share": 0.2, "already_below": "no_further_loss"},
                   "tod": {"radius_m": 150, "share": 0.25}},
    })
    return ds, sc


def test_zone_table_from_landscape(landscape_and_scenario):
    ds, sc = landscape_and_scenario
    zg = zone_grid(ds, block_size_m=400)  # one block of 4x4 cells per city half
    zt = zone_table(ds, sc, zones=zg)
    assert list(zt.zone) == [1, 2] and list(zt.city) == [1, 2]
    assert zt.attrs["cell_area_ha"] == 1.0
    z1, z2 = zt.iloc[0], zt.iloc[1]
    # city 1 (cols 0-3): 11 farmland cells, 2 of them permanent -> 9 developable
    assert z1.cap_farmland_ha == 9.0 and z1.cap_forest_ha == 0.0 and z1.urban_ha == 5.0
    assert z1.residential_ha == 4.0 and z1.industrial_ha == 1.0
    # city 2 (cols 4-7): column 4 is hard greenbelt; red line removes 2 forest cells
    # city 2 (cols 4-7): its farmland lies in the hard greenbelt (col 4), the red line takes 2 forest cells
    assert z2.cap_farmland_ha == 0.0
    assert z2.cap_forest_ha == 2.0 and z2.cap_grassland_ha == 3.0 and z2.cap_bare_ha == 2.0
    assert z2.land_ha == 13.0 and z2.open_space_ha == 8.0  # 3 water cells are not land
    # TOD: developable cells within 150 m of the station at (1, 5) (its 3x3 neighbourhood)
    assert z2.tod_forest_ha == 2.0 and z2.tod_bare_ha == 1.0 and z2.tod_grassland_ha == 2.0
    assert z1.dist_urban_m > 0 and np.isfinite(z2.dist_station_m) and np.isfinite(z1.dist_centre_m)
    for t in TYPES:
        assert 0.0 <= z1[f"suit_{t}"] <= 1.0


def test_zone_table_drives_a_multi_period_allocation(landscape_and_scenario, tmp_path):
    ds, sc = landscape_and_scenario
    zg = zone_grid(ds, block_size_m=200)
    zt = zone_table(ds, sc, zones=zg)
    a = allocate(zt, sc, 2030)
    check_invariants(a, zt, sc)
    assert set(a.targets.columns) >= {"period", "zone", "city", "type", "hectares", "cells"}
    assert a.targets.period.unique().tolist() == [2030]
    zt2 = advance_zone_table(zt, a, sc)
    cap = zt.filter(regex="^cap_").sum().sum()
    cap2 = zt2.filter(regex="^cap_").sum().sum()
    assert cap - cap2 == pytest.approx(7.0)
    assert zt2.urban_ha.sum() - zt.urban_ha.sum() == pytest.approx(7.0)
    b = allocate(zt2, sc, 2040)
    check_invariants(b, zt2, sc)
    # writers: atomic CSVs that read back
    p1 = write_allocation_csv([a, b], tmp_path / "allocation.csv")
    p2 = write_duals_csv([a, b], tmp_path / "duals.csv")
    got = pd.read_csv(p1)
    assert got.groupby("period").cells.sum().to_dict() == {2030: 7, 2040: 5}
    d = pd.read_csv(p2)
    assert {"period", "constraint", "dual", "cost", "unit", "meaning"} <= set(d.columns)
    assert "open_space_quota[city=1]" in set(d.constraint)
    assert not list(tmp_path.glob(".*part*"))


def test_build_model_is_vectorised_and_counts():
    zt, dem, policy, weights = random_instance(3, n_zones=10)
    s = scen(dem, policy=policy, weights=weights)
    m = build_model(zt, s, 2030)
    assert m.n_cols == m.A.shape[1] and m.n_rows == m.A.shape[0]
    # demand rows: every column in exactly one
    demand_rows = np.flatnonzero(m.rows.kind == "demand")
    assert np.array_equal(np.asarray(m.A[demand_rows].sum(axis=0)).ravel(), np.ones(m.n_cols))


# --------------------------------------------------------------------------- CLI


def test_cli_allocate(tmp_path):
    from typer.testing import CliRunner

    from landuse.cli.app import app
    from landuse.core.landscape import like
    from landuse.io.rasters import write_geotiff

    scheme = default_scheme()
    rng = np.random.default_rng(0)
    code = {c.name: c.code for c in scheme}
    pool = [code[n] for n in ("residential", "farmland", "farmland", "farmland", "forest", "grassland", "bare")]
    lu = rng.choice(np.array(pool, dtype=np.uint8), size=(20, 20))
    cities = np.ones(lu.shape, np.int32)
    cities[:, 10:] = 2
    ds = new_landscape({"landuse": lu, "cities": cities}, crs="EPSG:32651",
                       transform=Affine(100, 0, 0, 0, -100, 2000))
    write_geotiff(ds["landuse"], tmp_path / "landuse.tif", classes=scheme)
    write_geotiff(like(ds, cities, "cities"), tmp_path / "cities.tif")
    cfg = {"name": "cli", "layers": {"landuse": "landuse.tif", "cities": "cities.tif"}, "periods": [2020, 2030],
           "demand": {"residential": {2030: 10}, "industrial": {2030: 4}, "commercial": {2030: 2}},
           "allocation": {"block_size_m": 500}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["allocate", str(tmp_path / "s.yaml"), "--compare", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "cost of fragmentation" in r.output and "residential" in r.output
    got = pd.read_csv(tmp_path / "o" / "allocation.csv")
    assert got.groupby("type").cells.sum().to_dict() == {"commercial": 2, "industrial": 4, "residential": 10}
    assert (tmp_path / "o" / "duals.csv").exists()
    cfg["demand"]["residential"] = {2030: 10_000}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["allocate", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "demand[residential]" in r.output


# --------------------------------------------------------------------------- advice that works


def _with_advice(policy: dict, demand: dict, advice: dict) -> tuple[dict, dict]:
    """Apply ``InfeasibleAllocationError.advice`` (config key paths -> values) to policy and demand dicts."""
    cfg = {"policy": copy.deepcopy(policy), "demand": {t: {2030: float(v)} for t, v in demand.items()}}
    for key, value in advice.items():
        parts = key.split(".")
        node = cfg
        for p in parts[:-1]:
            node = node.setdefault(int(p) if p.isdigit() else p, {})
        node[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return cfg["policy"], {t: v[2030] for t, v in cfg["demand"].items()}


@pytest.mark.parametrize("case", ["quota", "cap", "tod", "jobs_min", "jobs_max", "growth_limit", "export"])
@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_infeasibility_advice_makes_the_period_feasible(case, solver):
    zt = table(city=[1, 1, 2], cap_farmland_ha=[10, 0, 10], cap_forest_ha=[0, 25, 5], cap_bare_ha=[4, 0, 3],
               tod_bare_ha=[1, 0, 0], tod_forest_ha=[0, 2, 0], tod_farmland_ha=[0, 0, 0],
               land_ha=[40, 40, 40], open_space_ha=[0, 25, 5], dist_urban_m=[0, 500, 900])
    policy, demand, by_city = {}, {"residential": 20, "industrial": 4}, None
    if case == "quota":
        policy = {"open_space_quota": {"share": 0.38, "unit": "city"}}
    elif case == "cap":
        policy, demand = {"farmland_loss_cap": {"hectares": 1}}, {"residential": 40}
    elif case == "tod":
        policy = {"tod": {"share": 0.6, "radius_m": 800}}
    elif case == "jobs_min":
        policy = {"jobs_housing": {"min": 2.0, "max": 5.0}}
    elif case == "jobs_max":
        policy = {"jobs_housing": {"min": 0.0, "max": 0.01}}
    elif case == "growth_limit":
        policy = {"city_growth_limits": {1: 6.0, 2: 5.0}}
    else:
        policy = {"transfers": {"max_export_share": 0.1}}
        demand, by_city = {}, {1: {"residential": 2}, 2: {"residential": 24}}
    s = scen(demand, policy=policy, allocation={"solver": solver}, by_city=by_city)
    with pytest.raises(InfeasibleAllocationError) as ei:
        allocate(zt, s, 2030)
    advice = ei.value.advice
    assert advice, str(ei.value)
    for key, value in advice.items():  # the message names the same values
        assert (f"{100 * value:.1f} %" if key.endswith("share") and "transfers" not in key else
                f"{value:.4f}" if "transfers" in key else f"{value:.1f}" if "hectares" in key or "limits" in key
                else f"{value:.3f}") in str(ei.value), (key, value, str(ei.value))
    pol2, dem2 = _with_advice(policy, demand, advice)
    a = allocate(zt, scen(dem2, policy=pol2, allocation={"solver": solver}, by_city=by_city), 2030)
    assert a.status == "optimal"
    check_whole_cell_plan(a, zt, scen(dem2, policy=pol2, by_city=by_city))


def test_quota_already_unmet_at_the_start_says_no_plan_can_meet_it():
    zt = table(cap_forest_ha=[20, 0], cap_bare_ha=[0, 20], land_ha=[100, 100], open_space_ha=[10, 0])
    policy = {"open_space_quota": {"share": 0.15}}
    with pytest.raises(InfeasibleAllocationError) as ei:
        allocate(zt, scen({"residential": 5}, policy=policy), 2030)
    msg = str(ei.value)
    assert "no plan can meet" in msg and "city 1 holds 5.00 %" in msg and "20.0 ha short" in msg
    assert ei.value.advice == {"policy.open_space_quota.share": pytest.approx(0.05)}
    pol2, dem2 = _with_advice(policy, {"residential": 5}, ei.value.advice)
    assert allocate(zt, scen(dem2, policy=pol2), 2030).open_space_lost_ha == pytest.approx(0.0)


def test_cluster_plan_with_city_demand_records_and_bounds_transfers():
    # city 1's land is far from urban land, city 2's is cheap: the cluster plan moves city 1's housing to city 2
    zt = table(city=[1, 2, 3], cap_bare_ha=[20, 40, 10], dist_urban_m=[5000, 0, 3000])
    by_city = {1: {"residential": 10}, 2: {"residential": 5}, 3: {"residential": 0}}
    a = allocate(zt, scen({}, weights={"sprawl": 1.0}, by_city=by_city), 2030)
    tr = a.transfers.set_index(["origin_city", "host_city"])["hectares"]
    assert tr.loc[(2, 2)] == pytest.approx(5.0) and tr.loc[(1, 2)] == pytest.approx(10.0)
    assert (1, 1) not in tr.index and 3 not in a.transfers.origin_city.tolist()
    # every origin's demand is accounted for, and every host receives what the plan gives it
    assert a.transfers.groupby("origin_city").hectares.sum().to_dict() == pytest.approx({1: 10.0, 2: 5.0})
    hosted = a.targets.groupby("city").hectares.sum()
    assert a.transfers.groupby("host_city").hectares.sum().to_dict() == pytest.approx(hosted.to_dict())
    # at most 30 % of a city's demand may go elsewhere: city 1 keeps at least 7 ha
    b = allocate(zt, scen({}, weights={"sprawl": 1.0}, by_city=by_city,
                          policy={"transfers": {"max_export_share": 0.3}}), 2030)
    assert b.targets.groupby("city").hectares.sum()[1] == pytest.approx(7.0)
    tb = b.transfers.set_index(["origin_city", "host_city"])["hectares"]
    assert tb.loc[(1, 1)] == pytest.approx(7.0) and tb.loc[(1, 2)] == pytest.approx(3.0)
    assert dual(b, "export_limit[residential,city=1]")["binding"]


def test_soft_growth_boundary_is_priced():
    # zone 1 lies inside the boundary but farther from urban land; zone 2 outside and closer
    zt = table(cap_bare_ha=[20, 20], dist_urban_m=[1500, 0])
    zt["band0_bare_ha"] = [20.0, 0.0]
    zt["band4_bare_ha"] = [0.0, 20.0]  # outside the soft boundary
    outside = {}
    for factor in (0.95, 0.5, 0.0):
        s = scen({"residential": 10}, weights={"sprawl": 1.0, "outside_boundary": 5.0},
                 policy={"growth_boundary": {"mode": "soft", "outside_factor": factor}})
        a = allocate(zt, s, 2030)
        outside[factor] = float(a.targets.outside_boundary_cells.sum())
    # cost outside: 5 x (1 - factor) per ha against 1.5 per ha for going 1.5 km farther inside
    assert outside == {0.95: 10.0, 0.5: 0.0, 0.0: 0.0}


def _alike_types_instance(n: int = 2000):
    """Zones whose types cost the same (no suitability): farmland cheap, open space dear (weight 2)."""
    rng = np.random.default_rng(11)
    cap = rng.integers(0, 20, (n, 2)).astype(float)
    zt = table(cap_farmland_ha=cap[:, 0], cap_forest_ha=cap[:, 1], land_ha=np.full(n, 100.0),
               open_space_ha=cap[:, 1] + 5, urban_ha=rng.integers(0, 30, n), dist_urban_m=rng.gamma(2, 700, n))
    total = cap[:, 0].sum()
    dem = {"residential": 0.08 * total, "industrial": 0.06 * total, "commercial": 0.03 * total}
    return zt, dem, {"sprawl": 1.0, "farmland": 1.0, "open_space": 2.0, "fill": 0.5}


def test_initial_working_set_holds_every_types_demand_when_types_cost_alike():
    # the per-type picks are the same pieces for every type; the set must still hold all types' demand of the
    # cheap role, else the restricted duals price in most of the model
    from landuse.allocation.pieces import ALL_SOURCE_ROLES
    from landuse.allocation.working_set import _initial_working_set

    zt, dem, w = _alike_types_instance()
    s = scen(dem, weights=w, allocation={"working_set": "always"})
    m = build_model(zt, s, 2030, cell_area_ha=1.0)
    ws = _initial_working_set(m, 1.0)
    farm = ws & (m.piece_role == ALL_SOURCE_ROLES.index("farmland"))
    assert m.piece_cap[farm].sum() >= sum(dem.values())
    a = allocate(zt, s, 2030)
    full = allocate(zt, scen(dem, weights=w, allocation={"working_set": "never"}), 2030)
    assert a.objective == pytest.approx(full.objective, rel=1e-7)


def test_working_set_restarts_cold_when_most_of_the_model_prices_in(monkeypatch):
    import landuse.allocation.working_set as working_set
    from landuse.allocation.pieces import ALL_SOURCE_ROLES

    zt, dem, w = _alike_types_instance()
    full = allocate(zt, scen(dem, weights=w, allocation={"working_set": "never"}), 2030)
    real = working_set._initial_working_set

    def dear(m, alpha):  # a feasible first set of dear land only: most pieces price in after the first solve
        if alpha != 1.0:
            return real(m, alpha)
        ws = np.zeros(m.piece_cap.size, dtype=bool)
        pick = np.flatnonzero(m.piece_role == ALL_SOURCE_ROLES.index("open_space"))
        pick = pick[np.argsort(-m.piece_cap[pick], kind="stable")]
        ws[pick[: np.searchsorted(np.cumsum(m.piece_cap[pick]), 1.2 * sum(dem.values())) + 1]] = True
        return ws

    built = []
    init = working_set._HighsIncremental.__init__

    def spy(self, m, pieces, **kw):
        built.append(int(pieces.sum()))
        init(self, m, pieces, **kw)

    monkeypatch.setattr(working_set, "_initial_working_set", dear)
    monkeypatch.setattr(working_set._HighsIncremental, "__init__", spy)
    a = allocate(zt, scen(dem, weights=w, allocation={"working_set": "always"}), 2030)
    assert a.objective == pytest.approx(full.objective, rel=1e-7)
    assert len(built) >= 2 and built[1] > 2 * built[0]  # a fresh instance over the enlarged set


def test_working_set_is_exact_when_a_role_cap_forces_the_other_roles():
    # no farmland may be lost: every type's demand must come from the dearer open-space role, of which the
    # first set holds only part per role; the result must still be the whole model's optimum
    zt, dem, w = _alike_types_instance()
    dem = {t: 0.5 * v for t, v in dem.items()}
    pol = {"farmland_loss_cap": {"hectares": 0.0}}
    ws = allocate(zt, scen(dem, weights=w, policy=pol, allocation={"working_set": "always"}), 2030)
    full = allocate(zt, scen(dem, weights=w, policy=pol, allocation={"working_set": "never"}), 2030)
    assert ws.objective == pytest.approx(full.objective, rel=1e-7)
    assert ws.farmland_lost_ha == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("rows_ok", [True, False])
def test_highs_model_without_columns(rows_ok):
    """A period where no zone can gain land has an LP without columns: HiGHS (1.16) answers "Empty" without
    solving; the empty plan is optimal when every row admits 0, else the period is infeasible."""
    from types import SimpleNamespace

    from scipy import sparse

    from landuse.allocation.solvers import _solve_highs_direct

    lo = np.array([-np.inf, 0.0, -5.0]) if rows_ok else np.array([-np.inf, 2.0, -5.0])
    m = SimpleNamespace(n_cols=0, n_rows=3, cost=np.zeros(0), col_ub=np.zeros(0), row_lo=lo,
                        row_hi=np.array([4.0, 0.0, np.inf]), A=sparse.csr_matrix((3, 0)))
    sol = _solve_highs_direct(m, method="simplex", time_limit=10)
    if rows_ok:
        assert sol.status == "optimal" and sol.x.shape == (0,) and sol.row_dual.tolist() == [0.0, 0.0, 0.0]
    else:
        assert sol.status == "infeasible" and sol.x is None
