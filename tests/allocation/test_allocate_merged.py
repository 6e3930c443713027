"""The merged allocation model (landuse.allocation.merged._aggregate): pieces that agree on city, source role,
station band and allowed types merged into one. It must have the whole model's feasibility and least
elastic violation, explain an infeasible plan as the whole model does, and find the same least
jobs-housing maximum; it is how an infeasible city-by-city plan is settled and explained at scale."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landuse.allocation.infeasible import _elastic, _explain, _least_feasible_jobs_housing_max
from landuse.allocation.merged import _aggregate
from landuse.allocation.model import build_model
from landuse.allocation.planner import allocate
from landuse.allocation.solvers import _solve_highs_direct
from landuse.core.config import scenario_from_dict
from landuse.core.errors import InfeasibleAllocationError

TYPES = ("residential", "industrial", "commercial")
SOURCES = ("farmland", "forest", "grassland", "bare")


def random_table(seed: int, n_zones: int, n_city: int) -> pd.DataFrame:
    """Zones of 1-ha cells in ``n_city`` cities; some classes absent, part of the land near a station."""
    rng = np.random.default_rng(seed)
    city = np.sort(rng.integers(1, n_city + 1, n_zones))
    city[:n_city] = np.arange(1, n_city + 1)  # every city has a zone
    cells = np.where(rng.random((n_zones, 6)) < 0.3, 0.0, np.round(rng.dirichlet(np.ones(6), n_zones) * 100))
    cap = np.floor(cells[:, :4] * (1 - 0.5 * rng.random((n_zones, 4))))
    near = np.floor(cap * np.where(rng.random(n_zones) < 0.3, rng.random(n_zones), 0.0)[:, None])
    zt = pd.DataFrame({"zone": np.arange(1, n_zones + 1), "city": city, "cells": 100, "area_ha": 100.0})
    zt["land_ha"] = 100.0 - cells[:, 5]
    zt["open_space_ha"] = cells[:, 1:3].sum(axis=1)
    zt["urban_ha"] = cells[:, 4] * rng.uniform(0.2, 5.0, n_city)[city - 1]
    for i, n in enumerate(SOURCES):
        zt[f"cap_{n}_ha"] = cap[:, i]
        zt[f"tod_{n}_ha"] = near[:, i]
    for t in TYPES:
        zt[f"suit_{t}"] = rng.random(n_zones)
    zt["dist_urban_m"] = rng.gamma(2.0, 600.0, n_zones)
    zt.attrs["cell_area_ha"] = 1.0
    return zt


def scenario(zt: pd.DataFrame, demand_share: float, *, tod: float | None, jh: tuple[float, float] | None,
             quota: float | None, cap_share: float | None, limits: bool, conversion: bool):
    d = demand_share * float(zt.filter(like="cap_").to_numpy().sum())
    policy: dict = {}
    if tod is not None:
        policy["tod"] = {"radius_m": 800, "share": tod}
    if jh is not None:
        policy["jobs_housing"] = {"min": jh[0], "max": jh[1]}
    if quota is not None:
        policy["open_space_quota"] = {"share": quota, "unit": "city", "already_below": "no_further_loss"}
    if cap_share is not None:
        policy["farmland_loss_cap"] = {"hectares": cap_share * d}
    if limits:
        n_city = int(zt.city.max())
        policy["city_growth_limits"] = {c: 0.8 * d / n_city for c in range(1, n_city + 1, 2)}
    cfg = {"name": "m", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
           "demand": {"residential": {2030: 0.6 * d}, "industrial": {2030: 0.25 * d},
                      "commercial": {2030: 0.15 * d}},
           "policy": policy, "allocation": {"solver": "highs", "fill_tranches": 3}}
    if conversion:  # industry may not take forest: pieces of one zone allow different types
        cfg["growth"] = {"conversion": {"industrial": ["farmland", "grassland", "bare"]}}
    return scenario_from_dict(cfg)


def least_violation(m) -> tuple[float, object]:
    em = _elastic(m)
    sol = _solve_highs_direct(em, method="simplex", time_limit=60)
    assert sol.status == "optimal"
    return float(em.cost @ sol.x), (em, sol)


policies = st.fixed_dictionaries({
    "demand_share": st.sampled_from([0.02, 0.1, 0.3, 0.6]),
    "tod": st.sampled_from([None, 0.2, 0.6]),
    "jh": st.sampled_from([None, (0.0, 0.5), (0.2, 2.0), (0.5, 0.6)]),
    "quota": st.sampled_from([None, 0.1, 0.3]),
    "cap_share": st.sampled_from([None, 0.1, 0.6]),
    "limits": st.booleans(),
    "conversion": st.booleans(),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_zones=st.integers(6, 60), n_city=st.integers(1, 5),
       mode=st.sampled_from(["city", "cluster"]), pol=policies)
def test_merged_model_has_the_whole_models_feasibility_and_least_violation(seed, n_zones, n_city, mode, pol):
    zt = random_table(seed, n_zones, n_city)
    sc = scenario(zt, **pol)
    m = build_model(zt, sc, 2030, coordination=mode)
    a = _aggregate(m)
    assert a is not None and a.n_cols <= m.n_cols
    # merged per (city, role, band, allowed types): fewer pieces whenever a zone repeats a key
    assert a.piece_cap.sum() == pytest.approx(m.piece_cap.sum())
    whole = _solve_highs_direct(m, method="simplex", time_limit=60)
    merged = _solve_highs_direct(a, method="simplex", time_limit=60)
    assert whole.status == merged.status
    v_whole, _ = least_violation(m)
    v_merged, (_, esol) = least_violation(a)
    assert v_merged == pytest.approx(v_whole, rel=1e-7, abs=1e-6)
    # the merged elastic solution's policy-row activities are reachable by the whole model: spread each
    # merged column over its pieces by capacity and check every whole-model row and bound
    x = esol.x[: a.n_cols]
    share = m.piece_cap / a.piece_cap[_group_of_piece(m, a)]
    xf = np.zeros(m.n_cols)
    col_of = {(int(p), int(k)): j for j, (p, k) in enumerate(zip(a.col_piece, a.col_type, strict=True))}
    g = _group_of_piece(m, a)
    for j in range(m.n_cols):
        p = int(m.col_piece[j])
        xf[j] = x[col_of[(int(g[p]), int(m.col_type[j]))]] * share[p]
    assert np.all(xf <= m.col_ub + 1e-6)
    act_whole, act_merged = m.A @ xf, a.A @ x
    n_pol = len(m.rows)
    assert act_whole[:n_pol] == pytest.approx(act_merged[:n_pol], rel=1e-9, abs=1e-6)
    assert np.all(act_whole[n_pol:] <= m.row_hi[n_pol:] + 1e-6)


def _group_of_piece(m, a) -> np.ndarray:
    """The merged piece of every whole-model piece (matched on the merge key)."""
    pattern = np.zeros(m.piece_cap.size, dtype=np.int64)
    np.bitwise_or.at(pattern, m.col_piece, 1 << m.col_type)
    apat = np.zeros(a.piece_cap.size, dtype=np.int64)
    np.bitwise_or.at(apat, a.col_piece, 1 << a.col_type)
    index = {(int(c), int(r), bool(n), int(t)): g for g, (c, r, n, t) in
             enumerate(zip(a.piece_city, a.piece_role, a.piece_near, apat, strict=True))}
    assert len(index) == a.piece_cap.size  # one merged piece per key
    return np.array([index[(int(c), int(r), bool(n), int(t))] for c, r, n, t in
                     zip(m.piece_city, m.piece_role, m.piece_near, pattern, strict=True)])


@pytest.mark.parametrize("case", [
    dict(demand_share=0.6, tod=0.6, jh=None, quota=0.3, cap_share=None, limits=False, conversion=False),
    dict(demand_share=0.3, tod=None, jh=(0.5, 0.6), quota=None, cap_share=0.1, limits=True, conversion=True),
    dict(demand_share=0.1, tod=0.6, jh=(0.2, 2.0), quota=0.1, cap_share=None, limits=True, conversion=False),
])
@pytest.mark.parametrize("mode", ["city", "cluster"])
def test_infeasible_plan_is_explained_as_by_the_whole_model(case, mode):
    zt = random_table(7, 80, 4)
    sc = scenario(zt, **case)
    m = build_model(zt, sc, 2030, coordination=mode)
    _, (em_w, sol_w) = least_violation(m)
    _, (em_m, sol_m) = least_violation(_aggregate(m))
    whole, merged = _explain(em_w, sol_w, zt, sc), _explain(em_m, sol_m, zt, sc)
    if mode == "cluster" and case["quota"] == 0.3:
        # degenerate: the cluster's demand may take the open space of any city, so any split of the quota
        # shortfall among the cities is a least violation (the whole model's own pick depends on pivoting);
        # the same rows are broken and every other amount is the same
        assert merged.violations.keys() == whole.violations.keys()
        other = [k for k in whole.violations if not k.startswith("open_space_quota")]
        assert other and {k: merged.violations[k] for k in other} == pytest.approx({k: whole.violations[k] for k in other})
        return
    assert str(merged) == str(whole)
    assert merged.violations == pytest.approx(whole.violations)
    assert merged.advice == pytest.approx(whole.advice)
    if "no relaxation" not in str(whole):  # an infeasible case: allocate raises what the whole model says
        with pytest.raises(InfeasibleAllocationError) as ei:
            allocate(zt, sc, 2030, coordination=mode)
        assert str(ei.value).startswith(str(whole))


def test_least_jobs_housing_maximum_is_the_whole_models_threshold():
    # every city's demand mix has 0.667 ha of jobs per ha of housing, over a maximum of 0.3: the least workable
    # maximum is found on the merged model; the whole model must be feasible at it and infeasible 0.001 below
    zt = random_table(3, 60, 3)
    sc = scenario(zt, 0.05, tod=None, jh=(0.0, 0.3), quota=None, cap_share=None, limits=False, conversion=False)
    m = build_model(zt, sc, 2030, coordination="city")
    need = _least_feasible_jobs_housing_max(m, 60)
    assert need is not None and need > 0.3

    def whole_feasible(v: float) -> bool:
        s2 = scenario(zt, 0.05, tod=None, jh=(0.0, v), quota=None, cap_share=None, limits=False, conversion=False)
        return _solve_highs_direct(build_model(zt, s2, 2030, coordination="city"), method="simplex",
                                   time_limit=60).status == "optimal"

    assert whole_feasible(need)
    assert not whole_feasible(need - 0.001)


def test_a_row_that_tells_zones_apart_is_not_merged():
    zt = random_table(5, 30, 2)
    sc = scenario(zt, 0.1, tod=None, jh=None, quota=None, cap_share=None, limits=True, conversion=False)
    m = build_model(zt, sc, 2030, coordination="cluster")
    assert _aggregate(m) is not None
    A = m.A.tocsr(copy=True)
    r = int(np.flatnonzero(m.rows["kind"].to_numpy() == "growth_limit")[0])
    A.data[A.indptr[r]] = 2.0  # one column of the row counts double: its piece is no longer like the others
    assert _aggregate(dataclasses.replace(m, A=A)) is None


@pytest.mark.parametrize("mode", ["city", "cluster"])
def test_a_shortfall_of_several_types_is_put_on_the_first_type(mode):
    # 10 ha of land, 8 ha residential + 8 ha industrial demanded: any split of the 6 ha shortfall is as small; the
    # elastic LP puts it on the first type of the scheme (residential), in the whole and in the merged model
    zt = pd.DataFrame({"zone": [1, 2], "city": [1, 1], "cap_bare_ha": [4.0, 6.0], "land_ha": [100.0, 100.0],
                       "open_space_ha": [0.0, 0.0], "urban_ha": [1.0, 1.0]})
    for t in TYPES:
        zt[f"suit_{t}"] = [0.2, 0.9]
    zt.attrs["cell_area_ha"] = 1.0
    sc = scenario_from_dict({"name": "m", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
                             "demand": {"residential": {2030: 8.0}, "industrial": {2030: 8.0}},
                             "allocation": {"solver": "highs"}})
    m = build_model(zt, sc, 2030, coordination=mode)
    name = "demand[residential,city=1]" if mode == "city" else "demand[residential]"
    for model in (m, _aggregate(m)):
        _, (em, sol) = least_violation(model)
        err = _explain(em, sol, zt, sc)
        assert err.violations == pytest.approx({name: 6.0})
    with pytest.raises(InfeasibleAllocationError, match=r"residential demand of .* exceeds its developable land by 6\.0"):
        allocate(zt, sc, 2030, coordination=mode)
