"""Calibration of the growth parameters against a historical pair of maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from affine import Affine
from typer.testing import CliRunner

from landuse.calibration.objective import new_patch_stats, patch_error
from landuse.calibration.result import write_calibration
from landuse.calibration.search import calibrate
from landuse.calibration.setup import historical_setup, null_model
from landuse.cli.app import app
from landuse.core.classes import default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.errors import ConfigError
from landuse.core.landscape import new_landscape
from landuse.evaluation.agreement import change_components, figure_of_merit, kappa, kappa_simulation, lee_sallee
from landuse.sample.generate import generate_sample
from landuse.sample.region import build_sample
from landuse.surfaces.suitability import compute_suitability

S = default_scheme()
URBAN_TYPES = S.urban_types
RES, IND, COM = (S.code_of(t) for t in URBAN_TYPES)
FARM = S.codes_with_role("farmland")[0]
OPEN = S.codes_with_role("open_space")[0]
WATER = S.codes_with_role("water")[0]

TRUE = {"neighbourhood_strength": 5.0, "spontaneous_share": 0.3, "cross_weight": 0.2, "greenbelt_leakage": 0.9,
        "iterations": 4, "adaptive_inertia": False, "distance_scale_m": 700.0}


def _scenario_data(**extra) -> dict:
    data = {"name": "t", "layers": {"landuse": "landuse.tif"}, "periods": [2020, 2030],
            "policy": {"greenbelt": {"mode": "soft", "strength": 0.6}}, "allocation": {"block_size_m": 1500}}
    data.update(extra)
    return data


def _scenario(**extra):
    return scenario_from_dict(_scenario_data(**extra))


@pytest.fixture(scope="module")
def region_ds():
    return build_sample(size=150, seed=7).landscape()


@pytest.fixture(scope="module")
def setup(region_ds):
    return historical_setup(region_ds, _scenario(), amounts="observed_zone")


@pytest.fixture(scope="module")
def synthetic(region_ds, setup):
    """A history simulated with known parameters: the 2020 map replaced by a run with TRUE."""
    res = setup.simulate(TRUE, runs=1, seed=11)
    ds = region_ds.copy()
    ds["landuse"] = (("y", "x"), np.asarray(res.landuse[2020].values))
    ds["landuse"].attrs.update(region_ds["landuse"].attrs)
    return historical_setup(ds, _scenario(), amounts="observed_zone")


# --------------------------------------------------------------------------- scores


def _slow_kappa_simulation(before, observed, simulated):
    """Kappa-simulation straight from the definition, cell class by cell class."""
    b, o, s = (np.asarray(a).ravel() for a in (before, observed, simulated))
    n = b.size
    po = np.mean(o == s)
    pe = 0.0
    for j in np.unique(b):
        m = b == j
        for i in np.unique(np.concatenate([o, s])):
            pe += m.mean() * np.mean(o[m] == i) * np.mean(s[m] == i)
    assert n
    return (po - pe) / (1 - pe)


def test_kappa_simulation_hand_values_and_reference() -> None:
    b = np.array([[4, 4, 4, 4]])
    assert kappa_simulation(b, np.array([[1, 1, 4, 4]]), np.array([[1, 4, 1, 4]])) == 0.0
    assert kappa_simulation(b, np.array([[1, 1, 4, 4]]), np.array([[1, 1, 4, 4]])) == 1.0
    rng = np.random.default_rng(3)
    for _ in range(20):
        before = rng.choice([1, 4, 5], size=(9, 11))
        observed = np.where(rng.random(before.shape) < 0.3, rng.choice([1, 2, 3], size=before.shape), before)
        simulated = np.where(rng.random(before.shape) < 0.3, rng.choice([1, 2, 3], size=before.shape), before)
        assert kappa_simulation(before, observed, simulated) == pytest.approx(
            _slow_kappa_simulation(before, observed, simulated), abs=1e-12)
    # with no change at all in `before` classes but one, KSim differs from Cohen's kappa
    assert kappa_simulation(before, observed, simulated) != pytest.approx(kappa(observed, simulated))


def test_map_scores_match_metrics_module(setup) -> None:
    rng = np.random.default_rng(0)
    sim = setup.observed.copy()
    flip = setup.valid & (rng.random(sim.shape) < 0.05) & (sim == FARM)
    sim[flip] = RES
    sc = setup.score_map(sim)
    assert sc["fom"] == pytest.approx(figure_of_merit(setup.before, setup.observed, sim, study_area=setup.valid))
    comp = change_components(setup.before, setup.observed, sim, study_area=setup.valid)
    assert {k: sc[k] for k in ("hits", "misses", "wrong_hits", "false_alarms")} == {
        k: comp[k] for k in ("hits", "misses", "wrong_hits", "false_alarms")}
    urban = np.isin(setup.observed, S.urban_codes), np.isin(sim, S.urban_codes)
    assert sc["lee_sallee"] == pytest.approx(lee_sallee(*urban, study_area=setup.valid))
    assert sc["kappa_simulation"] == pytest.approx(kappa_simulation(setup.before, setup.observed, sim,
                                                                      study_area=setup.valid))


def test_ensemble_scores_of_one_run_are_those_of_its_map(setup) -> None:
    res = setup.simulate({}, runs=1, seed=5)
    one = setup.score_result(res)
    ref = setup.score_map(np.asarray(res.landuse[2020].values))
    for k in ("fom", "kappa_simulation", "lee_sallee", "hits", "misses", "false_alarms"):
        assert one[k] == pytest.approx(ref[k]), k
    # several runs: the mean of hits over runs lies between the runs' extremes
    many = setup.score_result(setup.simulate({}, runs=3, seed=5))
    assert 0 < many["hits"] and many["hits"] + many["wrong_hits"] + many["false_alarms"] == pytest.approx(
        setup.observed_change_cells - many["shortfall"])


# --------------------------------------------------------------------------- set-up


def test_historical_setup_uses_observed_per_zone_demand(region_ds, setup) -> None:
    from landuse.allocation.zones import zone_grid

    zg = zone_grid(region_ds, block_size_m=1500)
    before, after = region_ds["landuse_2010"].values, region_ds["landuse"].values
    for t in URBAN_TYPES:
        code = S.code_of(t)
        gain = (after == code) & (before != code)
        want = np.bincount(zg.zones[gain], minlength=zg.n_zones + 1)
        got = np.zeros_like(want)
        sub = setup.targets[setup.targets["type"] == t]
        got[sub["zone"].to_numpy()] = sub["cells"].to_numpy()
        assert np.array_equal(got[1:], want[1:]), t
    assert set(setup.targets["period"]) == {2020} and setup.before_year == 2010
    assert np.array_equal(setup.landscape["landuse"].values, before)
    # the engine meets the observed demand exactly: the simulated change has the observed size
    res = setup.simulate({}, runs=1, seed=1)
    assert int(res.shortfall["shortfall"].sum()) == 0
    assert int(res.shortfall["converted"].sum()) == setup.observed_change_cells


def test_fast_suitability_equals_compute_suitability_at_any_scale(setup) -> None:
    sc = setup.scenario
    ref = compute_suitability(setup.landscape, sc).values
    assert np.array_equal(setup._suit_linear.at(3000.0), ref)
    other = _scenario(growth={"suitability": {"distance_scale_m": 850.0}})
    ref2 = compute_suitability(setup.landscape, other).values
    assert np.array_equal(setup._suit_linear.at(850.0), ref2)
    assert not np.array_equal(ref, ref2)


def test_greenbelt_leakage_reproduces_constraint_factor(setup) -> None:
    from landuse.growth import GrowthParams
    from landuse.surfaces.constraints import constraint_factor

    for strength in (0.6, 0.25):
        sc = _scenario(policy={"greenbelt": {"mode": "soft", "strength": strength}})
        want = GrowthParams.from_scenario(sc, setup.landscape).potential
        got = setup.params_at({"greenbelt_leakage": 1.0 - strength}).potential
        assert np.array_equal(got, want), strength
    c = constraint_factor(setup.landscape, setup.scenario)
    assert (c[setup._greenbelt] > 0).all() and setup._greenbelt.sum() > 0


def test_setup_errors_and_skipped_parameters(region_ds) -> None:
    ds = region_ds.drop_vars("landuse_2010")
    with pytest.raises(ConfigError, match="layers.history"):
        historical_setup(ds, _scenario())
    with pytest.raises(ConfigError, match="history_year"):
        historical_setup(region_ds, _scenario(), history_year=2015)
    same = region_ds.copy()
    same["landuse_2010"] = same["landuse"]
    with pytest.raises(ConfigError, match="no urban land was gained"):
        historical_setup(same, _scenario())
    eye = {t: {u: float(t == u) for u in URBAN_TYPES} for t in URBAN_TYPES}
    s = historical_setup(region_ds, _scenario(growth={"neighbourhood_weights": eye}))
    assert "cross_weight" in s.skipped and "cross_weight" not in s.applicable
    nogb = historical_setup(region_ds, _scenario(policy={"greenbelt": {"mode": "hard"}}))
    assert "greenbelt_leakage" in nogb.skipped and "greenbelt_leakage" not in nogb.applicable
    with pytest.raises(ConfigError, match="greenbelt_leakage"):
        calibrate(nogb, budget=4, runs=1, parameters={"greenbelt_leakage": [0, 1]})


def test_null_model_takes_nearest_developable_cells_per_zone() -> None:
    lu0 = np.full((5, 8), FARM, np.uint8)
    lu0[2, 0] = RES
    lu0[2, 1] = WATER  # never developable
    lu1 = lu0.copy()
    lu1[0, 6] = RES
    lu1[1, 7] = RES
    lu1[4, 7] = RES
    ds = new_landscape({"landuse": lu1, "landuse_2010": lu0, "cities": np.ones((5, 8), np.int32)},
                       crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 500))
    s = historical_setup(ds, _scenario(allocation={"block_size_m": 400},
                                         policy={"greenbelt": {"mode": "none"}}), amounts="observed_zone")
    null = null_model(s)
    new = np.argwhere(null != lu0)
    # zones are 4x4 blocks. Rows 0-3, cols 4-7 gained 2 cells: the nearest farmland to the urban cell (2, 0) is
    # (2, 4), then (1, 4) and (3, 4) tie (ties go to the lower cell index). Row 4, cols 4-7 gained 1: (4, 4).
    assert sorted(map(tuple, new.tolist())) == [(1, 4), (2, 4), (4, 4)]
    assert (null[new[:, 0], new[:, 1]] == RES).all()


def test_allocator_amounts_grow_the_lp_plan_of_the_observed_totals(region_ds) -> None:
    from landuse.allocation.handoff import unit_raster
    from landuse.allocation.planner import allocate
    from landuse.allocation.zone_stats import zone_table
    from landuse.allocation.zones import zone_grid

    sc = _scenario()
    zoned = historical_setup(region_ds, sc, amounts="observed_zone")
    s = historical_setup(region_ds, sc)  # calibration.amounts defaults to the allocator
    assert s.amounts == "allocator" and s.plan["units"] == s.targets["zone"].nunique() > 0
    # the same totals per type as observed (what the model can make), given to the LP, not the observed zones
    assert s.targets.groupby("type")["cells"].sum().to_dict() == zoned.targets.groupby("type")["cells"].sum().to_dict()
    assert not s.targets[["zone", "cells"]].equals(zoned.targets[["zone", "cells"]])
    # the units and amounts are the scenario's own plan of that demand on the earlier map
    suit = compute_suitability(s.landscape, sc).values
    zg = zone_grid(s.landscape, block_size_m=1500)
    zt = zone_table(s.landscape, s.plan_scenario, landuse=s.before, zones=zg, suitability=suit)
    plan = allocate(zt, s.plan_scenario, 2020)
    want = plan.unit_targets.rename(columns={"unit": "zone"})
    want = want[want["cells"] > 0].reset_index(drop=True)
    assert want[["zone", "type", "cells"]].equals(s.targets[["zone", "type", "cells"]])
    units = unit_raster(s.landscape, s.plan_scenario, plan, landuse=s.before, zones=zg, suitability=suit)
    assert np.array_equal(units, s.landscape["zones"].values)
    # the engine grows the plan exactly, unit by unit
    res = s.simulate({}, runs=1, seed=3)
    assert int(res.shortfall["shortfall"].sum()) == 0
    assert int(res.shortfall["converted"].sum()) == zoned.observed_change_cells


def test_unreachable_gain_is_left_out_of_amounts_and_scores() -> None:
    lu0 = np.full((4, 6), FARM, np.uint8)
    lu0[1, 0] = RES
    lu0[3, 5] = WATER  # water may not become urban: its gain is a transition the model cannot make
    lu1 = lu0.copy()
    lu1[1, 1] = RES
    lu1[2, 1] = RES
    lu1[3, 5] = RES
    ds = new_landscape({"landuse": lu1, "landuse_2010": lu0}, crs="EPSG:32651",
                       transform=Affine(100, 0, 0, 0, -100, 400))
    s = historical_setup(ds, _scenario(policy={"greenbelt": {"mode": "none"}}), amounts="cluster")
    assert s.unreachable["cells"] == 1 and s.unreachable["share"] == pytest.approx(1 / 3)
    assert s.unreachable["by_type"]["residential"] == 1
    assert s.observed_change_cells == 2 and not s.valid[3, 5]
    # the model placing the two reachable cells right scores a perfect FoM: the water cell counts against nothing
    perfect = lu1.copy()
    perfect[3, 5] = WATER
    assert s.score_map(perfect)["fom"] == 1.0
    only_water = ds.copy()
    lu2 = lu0.copy()
    lu2[3, 5] = RES
    only_water["landuse"] = (("y", "x"), lu2)
    with pytest.raises(ConfigError, match="none of the urban gain"):
        historical_setup(only_water, _scenario(), amounts="cluster")
    with pytest.raises(ConfigError, match="calibration.amounts"):
        historical_setup(ds, _scenario(), amounts="per_zone")


def test_allocator_that_cannot_plan_the_history_says_what_to_do() -> None:
    from landuse.core.errors import InfeasibleAllocationError

    lu0 = np.full((4, 6), FARM, np.uint8)
    lu0[1, 0] = RES
    lu1 = lu0.copy()
    lu1[1, 1] = RES
    lu1[2, 1] = RES
    ds = new_landscape({"landuse": lu1, "landuse_2010": lu0}, crs="EPSG:32651",
                       transform=Affine(100, 0, 0, 0, -100, 400))
    sc = _scenario(policy={"greenbelt": {"mode": "none"}, "farmland_loss_cap": {"hectares": 0}})
    with pytest.raises(InfeasibleAllocationError, match="calibration.amounts is 'allocator'.*'cluster'"):
        historical_setup(ds, sc)
    assert historical_setup(ds, sc, amounts="cluster").observed_change_cells == 2


def test_new_patch_stats_by_hand() -> None:
    before = np.full((6, 8), FARM, np.uint8)
    before[0:2, 0:2] = RES
    after = before.copy()
    after[2, 2] = RES  # touches the old block diagonally: edge expansion
    after[4, 5:7] = RES  # no urban neighbour: an outlying patch of 2 cells
    ds = new_landscape({"landuse": after}, crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 600))
    st = new_patch_stats(before, after, ds, _scenario(), valid=np.ones(before.shape, bool))
    assert st == {"new_patches": 2.0, "mean_patch_cells": 1.5, "outlying_patches": 1.0,
                  "outlying_share": pytest.approx(2 / 3)}
    assert patch_error(st, st) == 0.0
    assert patch_error({"new_patches": 3.0, "outlying_share": 0.5}, st) == pytest.approx(
        np.log(4 / 3) + abs(0.5 - 2 / 3))


# --------------------------------------------------------------------------- search


def test_calibration_recovers_the_fom_of_the_true_parameters(synthetic) -> None:
    """Calibrating from scratch reaches >= 90 % of the FoM that the generating parameters reach."""
    true_fom = synthetic.evaluate(TRUE, runs=8, seed=99)["fom"]
    default_fom = synthetic.evaluate({}, runs=8, seed=99)["fom"]
    assert default_fom < 0.9 * true_fom  # the default alone would fail the test
    res = calibrate(synthetic, budget=32, runs=4, seed=0)
    got = synthetic.evaluate(res.best, runs=8, seed=99)["fom"]
    assert got >= 0.9 * true_fom, (got, true_fom, res.best)
    assert res.validation["calibrated"]["fom"] >= 0.9 * true_fom
    t = res.table
    search = t[t["stage"].isin(["default", "sobol", "gp"])]
    assert len(search) == 32 and list(t["stage"].unique()) == ["default", "sobol", "gp", "final", "refine"]
    assert (search["runs"] == 4).all() and (t.loc[~t.index.isin(search.index), "runs"] == 12).all()
    # the chosen point is the best of the finalists and refinement points, all on the same (fresh) seeds
    chosen = t[t["stage"].isin(["final", "refine"])]
    assert chosen["objective"].max() == res.best_objective
    assert res.search_best_objective == search["objective"].max() and res.best_objective > res.default_objective
    for name, (lo, hi) in res.ranges.items():
        assert t[name].astype(float).between(lo, hi).all() or name == "adaptive_inertia"


def test_search_reports_edges_and_patches_and_can_fit_patches(synthetic) -> None:
    # the generating strength is 5: confined to [0, 1] the best value lies at the top of the range
    res = calibrate(synthetic, budget=8, runs=2, seed=1, finalists=2,
                      parameters={"neighbourhood_strength": [0.0, 1.0], "spontaneous_share": [0.0, 0.5]})
    assert res.info["at_edge"].get("neighbourhood_strength") == "high"
    assert "At the edge of its range: `neighbourhood_strength` (high)" in res.markdown(synthetic.scenario)
    t = res.table
    final = t[t["stage"] == "final"]
    assert len(final) >= 2 and t["patch_error"].isna().all()  # not fitted: patches only in the report
    assert res.validation["calibrated"]["new_patches"] > 0 and res.info["observed_patches"]["new_patches"] > 0
    assert res.validation["default"]["patch_error"] >= 0
    # with a patch weight the objective is the FoM minus the weighted patch error, at every point
    w = calibrate(synthetic, budget=6, runs=2, seed=1, finalists=1, refine=False, patch_weight=0.5,
                    parameters={"spontaneous_share": [0.0, 0.5]})
    assert w.table["patch_error"].notna().all()
    assert np.allclose(w.table["objective"], w.table["fom"] - 0.5 * w.table["patch_error"])
    assert (w.table["stage"] != "refine").all() and (w.table["stage"] == "final").sum() == 1


def test_same_seed_same_calibration_and_csv(setup, tmp_path) -> None:
    a = calibrate(setup, budget=10, runs=2, seed=4, objective="kappa_simulation")
    b = calibrate(setup, budget=10, runs=2, seed=4, objective="kappa_simulation")
    fa = write_calibration(a, tmp_path / "a", scenario=setup.scenario)
    fb = write_calibration(b, tmp_path / "b", scenario=setup.scenario)
    assert fa["csv"].read_bytes() == fb["csv"].read_bytes()
    assert fa["yaml"].read_text() == fb["yaml"].read_text()
    assert (a.table["objective"] == a.table["kappa_simulation"]).all()
    c = calibrate(setup, budget=10, runs=2, seed=5, objective="kappa_simulation")
    assert not c.table.equals(a.table)


def test_yaml_block_reproduces_the_calibrated_parameters(region_ds, setup) -> None:
    res = calibrate(setup, budget=8, runs=1, seed=2)
    block = yaml.safe_load(res.yaml_block(setup.scenario))
    data = _scenario_data()  # the YAML the setup's scenario came from
    for section, keys in block.items():
        data.setdefault(section, {}).update(keys)
    merged = scenario_from_dict(data)
    again = historical_setup(region_ds, merged, amounts="observed_zone")
    p_best, p_merged = setup.params_at(res.best), again.base_params
    assert np.array_equal(p_best.potential, p_merged.potential)
    assert np.array_equal(p_best.neighbourhood_weights, p_merged.neighbourhood_weights)
    for f in ("neighbourhood_strength", "spontaneous_share", "iterations", "adaptive_inertia"):
        assert getattr(p_best, f) == getattr(p_merged, f), f


def test_bad_options_are_config_errors(setup) -> None:
    with pytest.raises(ConfigError, match="objective"):
        calibrate(setup, budget=4, objective="accuracy")
    with pytest.raises(ConfigError, match="budget"):
        calibrate(setup, budget=2)
    with pytest.raises(ConfigError, match="calibration.parameters.neighbourhood_strength"):
        calibrate(setup, budget=4, parameters={"neighbourhood_strength": [3, 1]})
    with pytest.raises(ConfigError, match="unknown parameter"):
        calibrate(setup, budget=4, parameters={"seed": [0, 1]})


def test_fixed_subset_of_parameters(setup) -> None:
    res = calibrate(setup, budget=6, runs=1, seed=1, parameters={"neighbourhood_strength": [0.5, 2.0]})
    assert list(res.ranges) == ["neighbourhood_strength"] and list(res.best) == ["neighbourhood_strength"]
    assert res.table["neighbourhood_strength"].iloc[1:].between(0.5, 2.0).all()
    assert "spontaneous_share" not in res.table
    assert set(yaml.safe_load(res.yaml_block(setup.scenario))["growth"]) == {"neighbourhood_strength"}


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def sample_config(tmp_path_factory) -> Path:
    return generate_sample(tmp_path_factory.mktemp("sample"), size=100, seed=5).config_path


def test_cli_writes_outputs(sample_config, tmp_path) -> None:
    out = tmp_path / "cal"
    r = CliRunner().invoke(app, ["calibrate", str(sample_config), "--budget", "6", "--runs", "2", "--seed", "3",
                                 "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    for name in ("calibrated.yaml", "calibration.csv", "calibration.png", "calibration.md"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "calibration.csv")
    assert (table["stage"].isin(["default", "sobol", "gp"])).sum() == 6 and table["stage"].iloc[0] == "default"
    assert "final" in set(table["stage"]) and "Amounts: **allocator**" in (out / "calibration.md").read_text()
    assert "growth" in yaml.safe_load((out / "calibrated.yaml").read_text())
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "null model" in (out / "calibration.md").read_text()
    assert not list(out.glob("*.part*"))


def test_cli_bad_input_exits_2(sample_config, tmp_path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["calibrate", str(sample_config), "--objective", "accuracy", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "objective" in r.output
    r = runner.invoke(app, ["calibrate", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "not found" in r.output
    text = sample_config.read_text().replace("  history:\n    2010: landuse_2010.tif\n", "")
    assert text != sample_config.read_text()
    nohist = sample_config.parent / "nohist.yaml"
    nohist.write_text(text)
    r = runner.invoke(app, ["calibrate", str(nohist), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "layers.history" in r.output
    assert "Traceback" not in r.output


def test_one_urban_type_of_any_name_through_the_allocator() -> None:
    """A scheme with one urban type, 'built': amounts, plan, engine, scores and YAML all use it."""
    classes = [{"code": 1, "name": "built", "colour": "#e31a1c", "role": "urban", "type": "built"},
               {"code": 4, "name": "fields", "colour": "#f6e8a6", "role": "farmland"},
               {"code": 5, "name": "woods", "colour": "#1b7837", "role": "open_space"}]
    lu0 = np.full((12, 12), 4, np.uint8)
    lu0[:, 8:] = 5
    lu0[5:7, 5:7] = 1
    lu1 = lu0.copy()
    lu1[4, 5:8] = 1
    lu1[7, 4:7] = 1
    lu1[0, 0] = 1
    ds = new_landscape({"landuse": lu1, "landuse_2010": lu0}, crs="EPSG:32651",
                       transform=Affine(100, 0, 0, 0, -100, 1200))
    sc = scenario_from_dict({"name": "one", "layers": {"landuse": "landuse.tif"}, "classes": classes,
                             "periods": [2020, 2030], "allocation": {"block_size_m": 400}})
    assert sc.classes.urban_types == ("built",)
    s = historical_setup(ds, sc)
    assert s.amounts == "allocator" and set(s.targets["type"]) == {"built"} and s.observed_change_cells == 7
    assert "cross_weight" in s.skipped
    res = calibrate(s, budget=4, runs=2, seed=0, finalists=1, refine=False)
    assert int(np.isin(res.calibrated_map, [1]).sum()) == int((lu1 == 1).sum())
    block = yaml.safe_load(res.yaml_block(sc))
    assert set(block["growth"]) <= {"neighbourhood_strength", "spontaneous_share", "iterations", "adaptive_inertia",
                                    "suitability"} and "neighbourhood_weights" not in block["growth"]
    assert res.info["unreachable"]["by_type"] == {"built": 0}


def test_cli_progress_counts_search_points_against_the_budget_only():
    from landuse.cli.app import _calibration_progress

    search = _calibration_progress({"stage": "gp", "point": 80, "budget": 80, "objective": 0.25, "best": 0.3})
    assert search == "point 80/80 (gp): 0.2500, best 0.3000"
    after = _calibration_progress({"stage": "final", "point": 85, "budget": 80, "objective": 0.2, "best": 0.3})
    assert "/80" not in after and "final" in after and "fresh seeds" in after
