"""Policy checks from the rasters (landuse.evaluation.checks) on tiny hand-typed maps: each passes on a compliant map
and fails on a map that breaks it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from affine import Affine
from conftest import scenario_dict
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.classes import default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.landscape import new_landscape
from landuse.evaluation.checks import CHECK_COLUMNS, describe, failure_lines, ordered, policy_checks, records, summary

S = default_scheme()
R, IND, COM = S.code_of("residential"), S.code_of("industrial"), S.code_of("commercial")
F = S.codes_with_role("farmland")[0]
O = S.codes_with_role("open_space")[0]  # noqa: E741
W = S.codes_with_role("water")[0]
TRANSFORM = Affine(100.0, 0.0, 0.0, 0.0, -100.0, 600.0)  # 1 ha cells

START = np.array(
    [
        [F, F, F, F, O, O, O, O],
        [F, R, R, F, F, O, O, O],
        [F, R, R, F, F, F, O, O],
        [F, F, F, F, F, F, F, W],
        [F, F, F, F, F, F, F, W],
        [F, F, F, F, F, F, F, F],
    ],
    dtype=np.uint8,
)
CITIES = np.array([[1] * 4 + [2] * 4] * 6, dtype=np.int32)


def _mask(*cells: tuple[int, int]) -> np.ndarray:
    m = np.zeros(START.shape, dtype=bool)
    for rc in cells:
        m[rc] = True
    return m


def _landscape(**layers: np.ndarray):
    return new_landscape({"landuse": START, "cities": CITIES, **layers}, crs="EPSG:32651", transform=TRANSFORM)


def _scenario(periods=(2020, 2030), **policy):
    return scenario_from_dict({"name": "checks", "layers": {"landuse": "lu.tif"}, "periods": list(periods),
                               "policy": policy})


def _set(lu: np.ndarray, code: int, *cells: tuple[int, int]) -> np.ndarray:
    out = lu.copy()
    for rc in cells:
        out[rc] = code
    return out


def _rows(table: pd.DataFrame, check: str) -> list[dict]:
    return table[table.check == check].to_dict("records")


# --------------------------------------------------------------------------- farmland-loss cap


def _three_periods() -> dict[int, np.ndarray]:
    """Farmland lost: 2 ha in 2020-2030, 3 ha in 2030-2040, 4 ha in 2040-2050 (9 ha = 3 x 3 ha in total)."""
    m30 = _set(START, R, (3, 0), (3, 1))
    m40 = _set(m30, R, (3, 2), (3, 3), (4, 0))
    m50 = _set(m40, COM, (4, 1), (4, 2), (4, 3), (5, 0))
    return {2030: m30, 2040: m40, 2050: m50}


def test_farmland_cap_per_period_fails_the_one_period_over_even_if_the_sum_is_under() -> None:
    sc = _scenario((2020, 2030, 2040, 2050), farmland_loss_cap={"hectares": 3.0, "per": "period"})
    rows = _rows(policy_checks(sc, _landscape(), _three_periods()), "farmland_loss_cap")
    assert [(r["period"], r["achieved"], r["limit"], r["margin"], r["passed"]) for r in rows] == [
        (2030, 2.0, 3.0, 1.0, True), (2040, 3.0, 3.0, 0.0, True), (2050, 4.0, 3.0, -1.0, False)]
    assert all(r["unit"] == "cluster" and r["units"] == "ha" and math.isnan(r["planned"]) for r in rows)


def test_farmland_cap_per_horizon_is_cumulative() -> None:
    sc = _scenario((2020, 2030, 2040, 2050), farmland_loss_cap={"hectares": 8.0, "per": "horizon"})
    rows = _rows(policy_checks(sc, _landscape(), _three_periods()), "farmland_loss_cap")
    assert [(r["achieved"], r["margin"], r["passed"]) for r in rows] == [
        (2.0, 6.0, True), (5.0, 3.0, True), (9.0, -1.0, False)]
    ok = _scenario((2020, 2030, 2040, 2050), farmland_loss_cap={"hectares": 9.0, "per": "horizon"})
    assert all(r["passed"] for r in _rows(policy_checks(ok, _landscape(), _three_periods()), "farmland_loss_cap"))


def test_a_map_spanning_several_periods_is_checked_against_k_times_the_per_period_cap() -> None:
    sc = _scenario((2020, 2030, 2040, 2050), farmland_loss_cap={"hectares": 3.0, "per": "period"})
    (row,) = _rows(policy_checks(sc, _landscape(), {2050: _three_periods()[2050]}), "farmland_loss_cap")
    assert (row["limit"], row["achieved"], row["passed"]) == (9.0, 9.0, True)
    assert "spans 3 periods" in row["detail"] and "necessary condition only" in row["detail"]


def test_farmland_loss_counts_only_farmland_that_became_urban() -> None:
    sc = _scenario(farmland_loss_cap={"hectares": 0.0})
    grass = _set(START, S.code_of("residential"), (1, 5))  # open space, not farmland, became urban
    bare = _set(grass, S.codes_with_role("other")[0], (5, 5))  # farmland that became bare: not urban
    (row,) = _rows(policy_checks(sc, _landscape(), {2030: bare}), "farmland_loss_cap")
    assert row["achieved"] == 0.0 and row["passed"] is True


def test_planned_comes_from_whole_cells_when_the_table_has_them() -> None:
    sc = _scenario(farmland_loss_cap={"hectares": 3.0})
    alloc = pd.DataFrame({"period": [2030, 2030], "zone": [1, 2], "city": [1, 1], "type": ["residential"] * 2,
                          "hectares": [1.4, 1.0], "cells": [1, 1], "from_farmland_ha": [1.4, 1.0],
                          "from_open_space_ha": [0.0, 0.0], "from_other_ha": [0.0, 0.0],
                          "near_station_ha": [0.0, 0.0]})
    m30 = _three_periods()[2030]
    (row,) = _rows(policy_checks(sc, _landscape(), {2030: m30}, allocation=alloc), "farmland_loss_cap")
    assert row["planned"] == pytest.approx(2.4)
    alloc["from_farmland_cells"] = [1, 1]
    (row,) = _rows(policy_checks(sc, _landscape(), {2030: m30}, allocation=alloc), "farmland_loss_cap")
    assert row["planned"] == 2.0 and row["achieved"] == 2.0


# --------------------------------------------------------------------------- open-space quota


def test_quota_per_city_fails_a_city_just_below_and_counts_the_protected_layer() -> None:
    # city 1 has no open-space class; 5 of its 24 ha of farmland are designated protected open space
    pos = _mask((5, 0), (5, 1), (5, 2), (5, 3), (4, 0))
    ds = _landscape(protected_open_space=pos)
    after = _set(START, R, (3, 0))
    table = policy_checks(_scenario(open_space_quota={"share": 0.21, "unit": "city"}), ds, {2030: after})
    c1, c2 = _rows(table, "open_space_quota")
    assert c1["unit"] == "city 1" and c1["achieved"] == pytest.approx(100 * 5 / 24)  # 20.83 %
    assert c1["margin"] == pytest.approx(100 * 5 / 24 - 21) and c1["passed"] is False
    assert "short of the quota" in c1["detail"]
    assert c2["unit"] == "city 2" and c2["achieved"] == pytest.approx(100 * 9 / 22)  # water left out
    assert c2["passed"] is True
    ok = policy_checks(_scenario(open_space_quota={"share": 0.20, "unit": "city"}), ds, {2030: after})
    assert all(r["passed"] for r in _rows(ok, "open_space_quota"))
    # a protected cell built on no longer counts
    built = _set(after, R, (4, 0))
    (c1b, _) = _rows(policy_checks(_scenario(open_space_quota={"share": 0.16, "unit": "city"}), ds,
                                   {2030: built}), "open_space_quota")
    assert c1b["achieved"] == pytest.approx(100 * 4 / 24) and c1b["passed"] is True
    # with the layer off it is not open space
    off = policy_checks(_scenario(open_space_quota={"share": 0.20, "unit": "city"}, protected_open_space=False),
                        ds, {2030: after})
    assert _rows(off, "open_space_quota")[0]["achieved"] == 0.0


def test_quota_for_the_cluster_and_planned_share() -> None:
    sc = _scenario(open_space_quota={"share": 0.2, "unit": "cluster"})
    after = _set(START, R, (0, 4), (0, 5))  # 2 ha of open space built on: 7 of 46 ha left
    alloc = pd.DataFrame({"period": [2030], "zone": [5], "city": [2], "type": ["residential"], "hectares": [2.0],
                          "cells": [2], "from_farmland_ha": [0.0], "from_open_space_ha": [1.0],
                          "from_other_ha": [0.0], "near_station_ha": [0.0]})
    (row,) = _rows(policy_checks(sc, _landscape(), {2030: after}, allocation=alloc), "open_space_quota")
    assert row["unit"] == "cluster" and row["achieved"] == pytest.approx(100 * 7 / 46)
    assert row["planned"] == pytest.approx(100 * 8 / 46)  # the plan took 1 ha of open space, the map 2
    assert row["passed"] is False and row["margin"] == pytest.approx(100 * 7 / 46 - 20)


# --------------------------------------------------------------------------- TOD share

STATION = _mask((0, 0))  # within 150 m: (0, 0), (0, 1), (1, 0), (1, 1)


def test_tod_share_per_period_for_the_cluster() -> None:
    sc = _scenario((2020, 2030, 2040), tod={"radius_m": 150.0, "share": 0.5})
    m30 = _set(START, R, (0, 0), (0, 1), (3, 0), (3, 1))  # 2 of 4 near a station
    m40 = _set(m30, R, (1, 0), (3, 2), (3, 3), (4, 0))  # 1 of 4
    rows = _rows(policy_checks(sc, _landscape(stations=STATION), {2030: m30, 2040: m40}), "tod_share")
    assert [(r["period"], r["unit"], r["achieved"], r["margin"], r["passed"]) for r in rows] == [
        (2030, "cluster", 50.0, 0.0, True), (2040, "cluster", 25.0, -25.0, False)]


def test_tod_per_city_and_cities_without_land_near_a_station_are_not_enforced() -> None:
    sc = _scenario(tod={"radius_m": 150.0, "share": 0.5}, coordination="city")
    after = _set(START, R, (0, 0), (3, 0), (3, 1), (3, 5))  # city 1: 1 of 3 near; city 2: far from any station
    c1, c2 = _rows(policy_checks(sc, _landscape(stations=STATION), {2030: after}), "tod_share")
    assert c1["unit"] == "city 1" and c1["achieved"] == pytest.approx(100 / 3) and c1["passed"] is False
    assert c2["unit"] == "city 2" and c2["passed"] is None and "not enforced" in c2["detail"]
    none_new = _rows(policy_checks(sc, _landscape(stations=STATION), {2030: START}), "tod_share")[0]
    assert none_new["passed"] is True and math.isnan(none_new["achieved"])


# --------------------------------------------------------------------------- jobs-housing


def test_jobs_housing_both_sides_per_city() -> None:
    sc = _scenario(jobs_housing={"min": 0.2, "max": 1.0})
    ok = _set(_set(START, R, (3, 0), (3, 1), (3, 2), (3, 3)), COM, (4, 0), (4, 1))  # city 1: 2 / 4
    table = policy_checks(sc, _landscape(), {2030: ok})
    rows = {(r["check"], r["unit"]): r for r in table[table.check.str.startswith("jobs_housing")].to_dict("records")}
    assert rows[("jobs_housing_min", "city 1")]["achieved"] == 0.5
    assert rows[("jobs_housing_min", "city 1")]["margin"] == pytest.approx(0.3)
    assert rows[("jobs_housing_max", "city 1")]["margin"] == pytest.approx(0.5)
    assert all(r["passed"] for r in rows.values())  # city 2 grows nothing: holds trivially
    too_few_jobs = _set(START, R, (3, 0), (3, 1), (3, 2), (3, 3), (4, 0), (4, 1))  # 0 / 6
    too_many_jobs = _set(_set(START, R, (3, 5)), IND, (3, 4), (4, 4), (4, 5))  # city 2: 3 / 1
    t = policy_checks(sc, _landscape(), {2030: np.where(CITIES == 1, too_few_jobs, too_many_jobs)})
    bad = {(r["check"], r["unit"]) for r in t[t.passed.map(lambda v: v is False)].to_dict("records")}
    assert bad == {("jobs_housing_min", "city 1"), ("jobs_housing_max", "city 2")}
    assert t[(t.check == "jobs_housing_max") & (t.unit == "city 2")].margin.item() == pytest.approx(-2.0)


def test_jobs_without_housing_fails_the_maximum() -> None:
    sc = _scenario(jobs_housing={"min": 0.0, "max": 2.0})
    t = policy_checks(sc, _landscape(), {2030: _set(START, IND, (3, 0))})
    assert list(t.check) == ["jobs_housing_max", "jobs_housing_max"]  # no minimum row when min is 0
    assert t.passed.tolist() == [False, True] and math.isinf(t.achieved[0])


# --------------------------------------------------------------------------- hard masks


def _hard_layers() -> dict[str, np.ndarray]:
    ugb = np.ones(START.shape, dtype=bool)
    ugb[:, 6:] = False
    return {"red_line": _mask((0, 4)), "permanent_farmland": _mask((5, 0)), "protected_open_space": _mask((0, 5)),
            "greenbelt": _mask((3, 3), (4, 3)), "growth_boundary": ugb}


HARD = {"greenbelt": {"mode": "hard"}, "growth_boundary": {"mode": "hard"}}


def test_hard_masks_pass_on_a_compliant_map_and_each_fails_when_broken() -> None:
    ds = _landscape(**_hard_layers())
    sc = _scenario(**HARD)
    ok = policy_checks(sc, ds, {2030: _set(START, R, (3, 1), (4, 1))})
    assert list(ok.check) == ["red_line", "permanent_farmland", "protected_open_space", "greenbelt",
                              "growth_boundary"]
    assert ok.passed.tolist() == [True] * 5 and ok.achieved.tolist() == [0.0] * 5
    breaks = {"red_line": (0, 4), "permanent_farmland": (5, 0), "protected_open_space": (0, 5),
              "greenbelt": (3, 3), "growth_boundary": (5, 7)}
    for name, cell in breaks.items():
        t = policy_checks(sc, ds, {2030: _set(START, IND, cell)})
        row = t[t.check == name].iloc[0]
        assert row.passed is False and row.achieved == 1 and row.margin == -1, name
        assert f"row {cell[0]} col {cell[1]}" in row.detail
        assert t[t.check != name].passed.tolist() == [True] * 4, name


def test_hard_mask_with_its_policy_off_is_reported_not_enforced() -> None:
    ds = _landscape(**_hard_layers())
    t = policy_checks(_scenario(red_line=False), ds, {2030: _set(START, R, (0, 4))})
    row = t[t.check == "red_line"].iloc[0]
    assert row.passed is None and row.achieved == 1 and "not enforced" in row.detail
    assert "greenbelt" not in set(t.check)  # soft / no greenbelt is not a hard mask
    assert summary(t)["failed"] == 0 and summary(t)["not_enforced"] == 1


def test_probability_raster_non_zero_on_a_red_line_cell_fails() -> None:
    ds = _landscape(red_line=_mask((0, 4)))
    after = _set(START, R, (3, 1))
    p = np.zeros(START.shape, dtype=np.float32)
    p[3, 1] = 1.0
    good = policy_checks(_scenario(), ds, {2030: after}, probability={2030: {"residential": p}})
    assert good[good.check == "red_line_probability"].passed.tolist() == [True]
    p_bad = p.copy()
    p_bad[0, 4] = 1 / 3  # one run of three built on the red line, not the representative one
    bad = policy_checks(_scenario(), ds, {2030: after},
                        probability={2030: {"residential": p, "industrial": p_bad}})
    row = bad[bad.check == "red_line_probability"].iloc[0]
    assert row.passed is False and row.achieved == 1
    assert bad[bad.check == "red_line"].passed.tolist() == [True]  # the map alone looks fine


# --------------------------------------------------------------------------- growth limits, demand


def test_city_growth_limit_per_period() -> None:
    sc = _scenario((2020, 2030, 2040), city_growth_limits={1: 3.0})
    m30 = _set(START, R, (3, 0), (3, 1), (3, 2))
    m40 = _set(m30, COM, (4, 0), (4, 1), (4, 2), (4, 3))
    rows = _rows(policy_checks(sc, _landscape(), {2030: m30, 2040: m40}), "city_growth_limit")
    assert [(r["unit"], r["achieved"], r["margin"], r["passed"]) for r in rows] == [
        ("city 1", 3.0, 0.0, True), ("city 1", 4.0, -1.0, False)]


def test_demand_met_from_the_shortfall_table() -> None:
    sf = pd.DataFrame({"period": [2030, 2030, 2030], "zone": [1, 2, 1],
                       "type": ["residential", "residential", "industrial"], "target": [3, 2, 1],
                       "converted": [3, 1, 1], "shortfall": [0, 1, 0], "converted_min": [2, 1, 1],
                       "converted_max": [3, 1, 1]})
    t = policy_checks(_scenario(), _landscape(), {2030: START}, shortfall=sf)
    rows = {r["unit"]: r for r in _rows(t, "demand_met")}
    assert rows["industrial"]["passed"] is True and rows["industrial"]["margin"] == 0
    assert rows["residential"]["passed"] is False and rows["residential"]["margin"] == -1
    assert rows["residential"]["achieved"] == 4 and rows["residential"]["limit"] == 5


# --------------------------------------------------------------------------- table helpers


def test_failure_lines_order_and_records() -> None:
    sc = _scenario((2020, 2030, 2040, 2050), farmland_loss_cap={"hectares": 3.0}, red_line=False)
    t = policy_checks(sc, _landscape(red_line=_mask((0, 4))), _three_periods())
    assert tuple(t.columns) == CHECK_COLUMNS
    (line,) = failure_lines(t)
    assert line.startswith("FAIL: farmland_loss_cap 2050 cluster: achieved 4.0 ha vs limit 3.0 ha (margin -1.0 ha)")
    o = ordered(t)
    assert o.iloc[0].passed is False and o.iloc[-1].passed is None
    assert describe(o.iloc[-1].to_dict()).startswith("not enforced: red_line")
    recs = records(t)
    assert recs[0]["passed"] is None and recs[1]["planned"] is None  # nan -> null
    assert summary(t) == {"checks": 6, "passed": 2, "failed": 1, "not_enforced": 3}


def test_nodata_inside_the_study_area_is_an_error() -> None:
    from landuse.core.errors import LanduseError

    with pytest.raises(LanduseError, match="nodata cells inside the study area"):
        policy_checks(_scenario(), _landscape(), {2030: _set(START, S.nodata, (2, 2))})


# --------------------------------------------------------------------------- landuse run: exit codes


def _run_cli(tmp_path, layers, **overrides):
    cfg = tmp_path / f"{overrides.get('name', 'tiny')}.yaml"
    cfg.write_text(yaml.safe_dump(scenario_dict(layers, tmp_path, growth={"runs": 2}, **overrides), sort_keys=False))
    out = tmp_path / f"out_{cfg.stem}"
    res = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out), "--quiet"])
    return res, json.loads((out / "report.json").read_text())


def test_run_exits_0_when_every_check_passes(tmp_path, tiny_layers) -> None:
    res, data = _run_cli(tmp_path, tiny_layers)
    assert res.exit_code == 0, res.output
    checks = {r["check"] for r in data["checks"]}
    assert {"red_line", "red_line_probability", "permanent_farmland", "demand_met"} <= checks
    assert data["passed"] is True and data["failures"] == []
    assert f"{data['checks_summary']['passed']} checks passed" in res.output and "FAIL" not in res.output


def test_run_exits_1_and_names_the_failing_check(tmp_path, tiny_layers) -> None:
    # the start map already holds less open space than the quota: the plan cannot help, the map fails
    res, data = _run_cli(tmp_path, tiny_layers, name="tiny_fail",
                         policy={"open_space_quota": {"share": 0.9, "unit": "cluster",
                                                    "already_below": "no_further_loss"}})
    assert res.exit_code == 1, res.output
    assert "FAIL: open_space_quota 2025 cluster: achieved" in res.output and "vs limit 90.00 %" in res.output
    assert "1 FAILED" in res.output
    assert data["passed"] is False and len(data["failures"]) == 1
    (row,) = [r for r in data["checks"] if r["check"] == "open_space_quota"]
    assert row["passed"] is False and row["margin"] < 0 and row["planned"] is not None


def test_run_of_several_configs_exits_1_when_one_scenario_fails(tmp_path, tiny_layers) -> None:
    configs = []
    for name, policy in (("tiny_ok", {}), ("tiny_quota", {"open_space_quota": {"share": 0.9, "unit": "cluster",
                                                                       "already_below": "no_further_loss"}})):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(scenario_dict(tiny_layers, tmp_path, name=name, growth={"runs": 2},
                                                    policy=policy), sort_keys=False))
        configs.append(str(cfg))
    res = CliRunner().invoke(app, ["run", *configs, "--out", str(tmp_path / "batch")])
    assert res.exit_code == 1, res.output
    ok_line = next(ln for ln in res.output.splitlines() if ln.startswith("tiny_ok:"))
    bad_line = next(ln for ln in res.output.splitlines() if ln.startswith("tiny_quota:"))
    assert "checks passed;" in ok_line and "1 FAILED" in bad_line
    assert "  FAIL: open_space_quota 2025 cluster" in res.output


# --------------------------------------------------------------------------- the plan's amounts by source and band


def _plan_table(**cells: int) -> pd.DataFrame:
    row = {"period": 2030, "zone": 1, "city": 1, "type": "residential", "hectares": float(cells.get("cells", 0)),
           "cells": 0, "from_farmland_cells": 0, "from_open_space_cells": 0, "from_other_cells": 0,
           "near_station_cells": 0, "greenbelt_cells": 0, "outside_boundary_cells": 0}
    row.update(cells)
    return pd.DataFrame([row])


def test_no_map_takes_more_greenbelt_or_farmland_than_planned() -> None:
    gb = _mask((3, 0), (3, 1), (3, 2))
    ds = _landscape(greenbelt=gb)
    sc = _scenario(greenbelt={"mode": "soft", "strength": 0.5})
    plan = _plan_table(cells=2, from_farmland_cells=2, greenbelt_cells=1)
    within = _set(START, R, (3, 0), (4, 0))  # one greenbelt cell and one other, both farmland
    t = policy_checks(sc, ds, {2030: within}, start_landuse=START, allocation=plan)
    assert [r["passed"] for r in _rows(t, "plan_soft_greenbelt")] == [True]
    assert [r["passed"] for r in _rows(t, "plan_farmland")] == [True]
    over = _set(START, R, (3, 0), (3, 1))  # two greenbelt cells: one more than planned
    t = policy_checks(sc, ds, {2030: over}, start_landuse=START, allocation=plan)
    (row,) = _rows(t, "plan_soft_greenbelt")
    assert row["passed"] is False and row["achieved"] == 2.0 and row["planned"] == 1.0 and row["margin"] == -1.0
    more_farm = _set(START, R, (4, 0), (4, 1), (4, 2))
    t = policy_checks(sc, ds, {2030: more_farm}, start_landuse=START, allocation=plan)
    assert [r["passed"] for r in _rows(t, "plan_farmland")] == [False]


def test_export_limit_is_checked_on_the_map() -> None:
    sc = scenario_from_dict({"name": "checks", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
                             "demand": {"by_city": {1: {"residential": {2030: 4.0}}}},
                             "policy": {"transfers": {"max_export_share": 0.5}}})
    ds = _landscape()
    home = _set(START, R, (3, 0), (3, 1), (4, 5), (4, 6))  # 2 of 4 ha in city 1: exactly the bound
    (row,) = _rows(policy_checks(sc, ds, {2030: home}, start_landuse=START), "export_limit")
    assert row["passed"] is True and row["limit"] == 2.0 and row["achieved"] == 2.0
    away = _set(START, R, (3, 0), (4, 4), (4, 5), (4, 6))
    (row,) = _rows(policy_checks(sc, ds, {2030: away}, start_landuse=START), "export_limit")
    assert row["passed"] is False and row["margin"] == -1.0


# --------------------------------------------------------------------------- strip by strip


def _random_run(seed: int, h: int, w: int):
    """A random landscape with every policy layer, two periods of random maps, probabilities and a plan."""
    rng = np.random.default_rng(seed)
    pool = np.array([F, F, O, O, W, R, IND, COM], dtype=np.uint8)
    start = pool[rng.integers(0, pool.size, (h, w))]
    layers = {
        "landuse": start,
        "cities": rng.integers(0, 4, (h, w)).astype(np.int32),
        "red_line": rng.random((h, w)) < 0.1,
        "permanent_farmland": rng.random((h, w)) < 0.1,
        "protected_open_space": rng.random((h, w)) < 0.1,
        "greenbelt": rng.random((h, w)) < 0.1,
        "growth_boundary": rng.random((h, w)) < 0.8,
        "stations": rng.random((h, w)) < 0.02,
    }
    ds = new_landscape(layers, crs="EPSG:32651", transform=TRANSFORM)
    maps, prob, cur = {}, {}, start
    for y in (2030, 2040):
        nxt = cur.copy()
        change = rng.random((h, w)) < 0.15
        nxt[change] = np.array([R, IND, COM, F], dtype=np.uint8)[rng.integers(0, 4, int(change.sum()))]
        maps[y], cur = nxt, nxt
        prob[y] = {t: np.where(rng.random((h, w)) < 0.2, rng.random((h, w)), 0.0).astype(np.float32)
                   for t in ("residential", "industrial")}
    alloc = pd.DataFrame({"period": [2030, 2030, 2040], "zone": [1, 2, 1], "city": [1, 2, 3],
                          "type": ["residential", "industrial", "residential"], "hectares": [5.0, 3.0, 4.0],
                          "cells": [5, 3, 4], "from_farmland_cells": [2, 1, 1], "from_open_space_cells": [1, 0, 1],
                          "near_station_cells": [1, 0, 0], "near_station_ha": [1.0, 0.0, 0.0],
                          "from_farmland_ha": [2.0, 1.0, 1.0], "from_open_space_ha": [1.0, 0.0, 1.0],
                          "greenbelt_cells": [0, 1, 0], "outside_boundary_cells": [1, 0, 0]})
    return ds, maps, prob, alloc


STRIP_POLICIES = [
    {"open_space_quota": {"share": 0.15, "unit": "city"}, "farmland_loss_cap": {"hectares": 5.0, "per": "horizon"},
     "tod": {"radius_m": 300, "share": 0.3}, "jobs_housing": {"min": 0.1, "max": 2.0},
     "city_growth_limits": {1: 10.0, 3: 4.0}, "greenbelt": {"mode": "hard"}, "growth_boundary": {"mode": "hard"}},
    {"open_space_quota": {"share": 0.15, "unit": "cluster", "include_water": True},
     "farmland_loss_cap": {"hectares": 5.0}, "greenbelt": {"mode": "soft", "strength": 0.5},
     "growth_boundary": {"mode": "soft", "outside_factor": 0.3}, "tod": {"radius_m": 200, "share": 0.2},
     "protected_open_space": False},
]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(1, 23), w=st.integers(1, 17), strip=st.integers(1, 25),
       policy=st.sampled_from(range(len(STRIP_POLICIES))))
def test_checks_strip_by_strip_equal_the_whole_maps(seed, h, w, strip, policy):
    ds, maps, prob, alloc = _random_run(seed, h, w)
    sc = _scenario((2020, 2030, 2040), **STRIP_POLICIES[policy])
    whole = policy_checks(sc, ds, maps, allocation=alloc, probability=prob, strip_rows=h)
    strips = policy_checks(sc, ds, maps, allocation=alloc, probability=prob, strip_rows=strip)
    pd.testing.assert_frame_equal(strips, whole)
    assert len(whole) > 10 and {"red_line", "open_space_quota", "tod_share"} <= set(whole.check)


def test_checks_name_the_first_changed_cells_across_strips():
    ds, maps, _, _ = _random_run(3, 20, 9)
    ds["red_line"] = (("y", "x"), np.random.default_rng(4).random((20, 9)) < 0.6)
    sc = _scenario((2020, 2030, 2040))
    t = policy_checks(sc, ds, maps, strip_rows=1)
    red = t[(t.check == "red_line") & (t.period == 2030)].iloc[0]
    before = np.asarray(ds["landuse"].values)
    restored = S.is_role(before, "urban") & ~S.is_role(maps[2030], "urban")
    rr, cc = np.nonzero(np.asarray(ds["red_line"].values) & (maps[2030] != before) & ~restored)
    assert red.achieved == rr.size > 5
    assert red.detail.split(" changed class: ")[1].startswith(f"row {rr[0]} col {cc[0]} ")
    assert f"row {rr[4]} col {cc[4]} " in red.detail and f"and {rr.size - 5} more" in red.detail
