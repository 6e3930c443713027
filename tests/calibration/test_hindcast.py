"""Hindcast: null models on hand-checked grids, scoring, leakage, the command on the sample."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from landuse.calibration.hindcast import (
    hindcast,
    hindcast_years,
    multiresolution_fom,
    null_maps,
    past_landscape,
    score_map,
)
from landuse.cli.app import app
from landuse.core.classes import default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.errors import ConfigError
from landuse.core.landscape import new_landscape
from landuse.evaluation.expected import allocate_by_rank

S = default_scheme()
R, F, W = S.code_of("residential"), S.codes_with_role("farmland")[0], S.codes_with_role("water")[0]
TYPES = S.urban_types
TRANSFORM = Affine(100.0, 0.0, 300_000.0, 0.0, -100.0, 3_500_000.0)


def _scenario(periods=(2015, 2020)):
    return scenario_from_dict({"name": "hc", "layers": {"landuse": "lu.tif"}, "periods": list(periods),
                               "demand": {"residential": {periods[1]: 1.0}}})


def _targets(amounts: dict[int, int], urban_type: str = "residential") -> pd.DataFrame:
    return pd.DataFrame({"period": 0, "zone": list(amounts), "type": urban_type, "cells": list(amounts.values())})


def _dev(mask: np.ndarray) -> np.ndarray:
    return np.stack([mask] * 3)


# ---------------------------------------------------------------------------------------------- allocate_by_rank


def test_allocate_by_rank_by_hand():
    before = np.array([[F, F, F, F],
                       [F, R, F, W],
                       [F, F, F, F]], dtype=np.uint8)
    zones = np.array([[1, 1, 2, 2],
                      [1, 1, 2, 2],
                      [0, 0, 2, 2]])
    score = np.array([[5, 4, 1, 9],
                      [3, 0, 2, 9],
                      [9, 9, 2, 0]], dtype=float)
    dev = _dev((before == F) & (zones > 0))
    out = allocate_by_rank(before, score, zones, _targets({1: 2, 2: 3}), developable=dev, type_codes=(1, 2, 3),
                           types=TYPES)
    expected = before.copy()
    expected[0, 0] = expected[0, 1] = R  # zone 1: scores 5, 4 (row 2 is zone 0; (1, 1) already urban)
    expected[0, 3] = R  # zone 2: 9 ((1, 3) is water, not developable)
    expected[1, 2] = expected[2, 2] = R  # then the tie 2 / 2, both taken
    np.testing.assert_array_equal(out, expected)
    # more demand than developable cells: all of them, nothing else
    out = allocate_by_rank(before, score, zones, _targets({1: 9}), developable=dev, type_codes=(1, 2, 3),
                           types=TYPES)
    assert (out == R).sum() == 1 + 3 and (out[2, :2] == F).all()
    # ties broken by cell index
    out = allocate_by_rank(before, np.zeros(before.shape), zones, _targets({2: 2}), developable=dev, types=TYPES,
                           type_codes=(1, 2, 3))
    assert set(zip(*np.nonzero((out == R) & (before != R)), strict=True)) == {(0, 2), (0, 3)}


# ---------------------------------------------------------------------------------------------- null models


def _road_grid():
    """20 x 20: urban block in rows 0-2 at t0; a road (on a water canal) down column 10; between t0 and t1 the
    cells either side of the road (columns 9 and 11) urbanised in rows 3-12 (20 cells)."""
    n = 20
    t0 = np.full((n, n), F, dtype=np.uint8)
    t0[:3] = R
    t0[3:, 10] = W
    t1 = t0.copy()
    t1[3:13, 9] = R
    t1[3:13, 11] = R
    roads = np.zeros((n, n), dtype=np.uint8)
    roads[:, 10] = 1
    ds = new_landscape({"landuse": t1, "landuse_2010": t0, "roads": roads}, crs="EPSG:32651", transform=TRANSFORM)
    zones = np.where(np.arange(n)[None, :] < 10, 1, 2) * np.ones((n, 1), dtype=np.int32)
    return ds, t0, t1, zones.astype(np.int32)


def test_null_models_by_hand():
    ds, _, t1, zones = _road_grid()
    sc = _scenario((2015, 2020))
    targets = _targets({1: 4, 2: 2})
    dev = _dev(t1 == F)
    maps, logistic = null_maps(ds, sc, targets, t0=2010, zones=zones, developable=dev, type_codes=(1, 2, 3), seed=0,
                               types=["residential"])
    gained = {k: set(zip(*np.nonzero((m == R) & (t1 != R)), strict=True)) for k, m in maps.items()}
    # distance: nearest to urban land at t1 (100 m), ties by cell index -> row 3 from the left in each zone
    assert gained["distance"] == {(3, 0), (3, 1), (3, 2), (3, 3), (3, 12), (3, 13)}
    # logistic: fitted on t0 -> t1, where only the cells beside the road urbanised -> the road-side cells left
    assert logistic.fits["residential"].n_converted == 20
    assert len(gained["logistic"]) == 6
    assert all(c in (9, 11) and r >= 13 for r, c in gained["logistic"])
    assert sum(c < 10 for _, c in gained["logistic"]) == 4
    # random: the same amounts per zone, only developable cells, reproducible from the seed, not the distance map
    rnd = gained["random"]
    assert len(rnd) == 6 and sum(c < 10 for _, c in rnd) == 4
    assert all(t1[r, c] == F for r, c in rnd)
    assert rnd != gained["distance"]
    again, _ = null_maps(ds, sc, targets, t0=2010, zones=zones, developable=dev, type_codes=(1, 2, 3), seed=0,
                         types=["residential"])
    np.testing.assert_array_equal(again["random"], maps["random"])
    other, _ = null_maps(ds, sc, targets, t0=2010, zones=zones, developable=dev, type_codes=(1, 2, 3), seed=1,
                         types=["residential"])
    assert not np.array_equal(other["random"], maps["random"])
    np.testing.assert_array_equal(other["distance"], maps["distance"])


def test_hindcast_amounts_follow_the_quantities_and_calibration_amounts():
    from landuse.calibration.hindcast import hindcast_amounts

    def with_amounts(a):
        return scenario_from_dict({"name": "hc", "layers": {"landuse": "lu.tif"}, "periods": [2015, 2020],
                                   "calibration": {"amounts": a}})

    assert hindcast_amounts(_scenario(), "cluster") == "allocator"  # the default: the chain of a run
    assert hindcast_amounts(with_amounts("cluster"), "cluster") == "cluster"
    # per-zone amounts in the fit but cluster totals in the prediction would be the old oracle: not done
    assert hindcast_amounts(with_amounts("observed_zone"), "cluster") == "cluster"
    assert hindcast_amounts(with_amounts("allocator"), "zone") == "observed_zone"
    with pytest.raises(ConfigError, match="quantities"):
        hindcast_amounts(_scenario(), "block")
    with pytest.raises(ConfigError, match="calibration.amounts"):
        with_amounts("zones")


# ---------------------------------------------------------------------------------------------- scoring


def test_score_map_and_windows_by_hand():
    before = np.array([[F, F, F, F], [F, F, F, F]], dtype=np.uint8)
    observed = np.array([[R, R, F, F], [F, F, F, F]], dtype=np.uint8)
    simulated = np.array([[R, F, F, F], [R, F, F, R]], dtype=np.uint8)
    valid = np.ones(before.shape, dtype=bool)
    s = score_map(before, observed, simulated, valid, _scenario(), windows=(1, 2, 4))
    b = s["built_gain"]
    assert (b["hits"], b["misses"], b["false_alarms"]) == (1, 1, 2)
    assert b["fom"] == pytest.approx(1 / 4)
    # windows: 2x2 blocks hold observed (2, 0) and simulated (2, 1) -> 2 / 3; one 4-wide block: min 2 / max 3
    assert s["fom_by_window"] == {1: pytest.approx(0.25), 2: pytest.approx(2 / 3), 4: pytest.approx(2 / 3)}
    assert s["fom_by_type"] == {"residential": pytest.approx(0.25)}
    assert s["quantity_disagreement"] == pytest.approx(1 / 8)  # 3 simulated against 2 observed urban cells
    assert s["allocation_disagreement"] == pytest.approx(2 / 8)
    assert s["lee_sallee"] == pytest.approx(1 / 4)
    assert math.isnan(multiresolution_fom(np.zeros((2, 2), bool), np.zeros((2, 2), bool), np.ones((2, 2), bool),
                                          windows=(1,))[1])


# ---------------------------------------------------------------------------------------------- on the sample


def _three_dates(reduced_base):
    """The reduced sample's 2010 and 2020 maps plus a 2015 map: 2010 with the half of the 2010 -> 2020 gains
    nearest to 2010's urban land (the sample holds two dates; a hindcast needs three)."""
    import rasterio

    from landuse.core.landscape import like
    from landuse.io.rasters import write_geotiff
    from landuse.surfaces.suitability import distance_to

    folder = reduced_base / "sample"
    with rasterio.open(folder / "landuse_2010.tif") as f:
        lu10 = f.read(1)
    with rasterio.open(folder / "landuse_2020.tif") as f:
        lu20 = f.read(1)
        transform, crs = f.transform, f.crs
    urban10 = np.isin(lu10, S.urban_codes)
    gain = np.flatnonzero((np.isin(lu20, S.urban_codes) & ~urban10).ravel())
    d = distance_to(urban10, cell=abs(transform.a)).ravel()[gain]
    keep = gain[np.lexsort((gain, d))][: gain.size // 2]
    lu15 = lu10.copy().ravel()
    lu15[keep] = lu20.ravel()[keep]
    ds = new_landscape({"landuse": lu10}, crs=str(crs), transform=transform)
    write_geotiff(like(ds, lu15.reshape(lu10.shape), "landuse"), folder / "landuse_2015.tif", classes=S)
    return folder, lu15.reshape(lu10.shape), lu20


@pytest.fixture(scope="module")
def sample3(reduced):
    base, _ = reduced
    folder, lu15, lu20 = _three_dates(base)
    d = yaml.safe_load((folder / "sample.yaml").read_text())
    d["layers"]["history"] = {2010: "landuse_2010.tif", 2015: "landuse_2015.tif"}
    d["calibration"] = {"budget": 4, "runs": 2, "seed": 3}
    d["outputs"] = {"folder": "out_hindcast"}
    path = folder / "hindcast.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path, lu15, lu20


def test_hindcast_command_on_the_sample(sample3, tmp_path):
    path, _, _ = sample3
    out = tmp_path / "hc"
    res = CliRunner().invoke(app, ["hindcast", str(path), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "fitted on 2010 -> 2015, predicted 2015 -> 2020" in res.output
    data = json.loads((out / "hindcast.json").read_text())
    assert set(data["scores"]) == {"model", "model_expected", "distance", "logistic", "random"}
    for name, s in data["scores"].items():
        b = s["built_gain"]
        # every map places exactly the observed amounts (cluster-wide), so misses = false alarms
        assert b["simulated"] == b["observed"] == sum(data["amounts"].values()), name
        assert b["misses"] == b["false_alarms"]
    # fitted and predicted through the allocator (calibration.amounts' default): the LP planned t2's totals
    cal = data["calibration"]
    assert cal["amounts"] == "allocator" and cal["plan_predict"]["cells"] == data["amounts"]
    assert cal["plan_fit"]["units"] > 0 and 0.0 <= cal["unreachable"]["share"] < 1.0
    assert set(cal["patches"]) == {"observed", "calibrated", "default"} and "at_edge" in cal
    # the nulls are no straw men: the distance rule beats random placement by far
    assert data["scores"]["distance"]["built_gain"]["fom"] > 3 * data["scores"]["random"]["built_gain"]["fom"]
    for f in ("hindcast.md", "hindcast.png", "expected_2020.tif", "simulated_2020.tif", "change_model.tif",
              "change_random.tif", "manifest.json"):
        assert (out / f).is_file(), f
    import rasterio

    with rasterio.open(out / "change_model.tif") as f:
        cm = f.read(1)
    b = data["scores"]["model"]["built_gain"]
    assert [(cm == k).sum() for k in (1, 2, 3)] == [b["hits"], b["misses"], b["false_alarms"]]


def test_hindcast_is_leakage_free(sample3):
    """Scramble t2 (same amounts per type, urban gain moved elsewhere): every prediction is unchanged."""
    from landuse.core.config import load_scenario
    from landuse.io.rasters import read_landscape

    path, lu15, lu20 = sample3
    sc = load_scenario(path)
    ds = read_landscape(sc.layer_paths(), classes=sc.classes)
    assert hindcast_years(ds, sc) == (2010, 2015, 2020)
    first = hindcast(ds, sc, budget=4, runs=2, seed=5)
    scrambled = lu20.copy()
    rng = np.random.default_rng(0)
    gained = np.flatnonzero((np.isin(lu20, S.urban_codes) & ~np.isin(lu15, S.urban_codes)).ravel())
    free = np.flatnonzero(((lu15 == F) & (lu20 == F)).ravel())
    to = rng.choice(free, gained.size, replace=False)
    flat = scrambled.ravel()
    flat[to] = flat[gained]  # the same types, elsewhere
    flat[gained] = lu15.ravel()[gained]
    ds2 = ds.copy()
    ds2["landuse"] = (("y", "x"), scrambled)
    second = hindcast(ds2, sc, budget=4, runs=2, seed=5)
    assert first.amounts == second.amounts
    assert first.prediction.calibrated == second.prediction.calibrated
    for name in first.prediction.maps:
        np.testing.assert_array_equal(first.prediction.maps[name], second.prediction.maps[name], err_msg=name)
    # ... while the scores, which do read t2, change
    assert first.scores["distance"]["built_gain"]["hits"] != second.scores["distance"]["built_gain"]["hits"]
    # the past Landscape holds no map of t1 or later except t1 itself
    past = past_landscape(ds, 2015)
    assert [v for v in past.data_vars if str(v).startswith("landuse")] == ["landuse", "landuse_2010"]
    np.testing.assert_array_equal(past["landuse"].values, lu15)


# ---------------------------------------------------------------------------------------------- expected map


def test_expected_map_takes_the_most_probable_cells():
    from types import SimpleNamespace

    before = np.array([[F, F, F, F, W]], dtype=np.uint8)
    counts = np.zeros((3, 1, 5))
    counts[0] = [[1, 3, 0, 3, 5]]  # water (5 runs) is not an allowed source: never taken
    potential = np.zeros((3, 1, 5), dtype=np.uint8)
    potential[0] = [[9, 2, 7, 1, 9]]
    allowed = np.zeros((3, 256), dtype=bool)
    allowed[:, F] = True
    params = SimpleNamespace(potential=potential, allowed=allowed, type_codes=(1, 2, 3), types=TYPES)
    from landuse.evaluation.expected import expected_map

    out = expected_map(before, counts, params, np.ones((1, 5), int), _targets({1: 3}))
    # 3 runs at cells 1 and 3 (potential 2 beats 1), then 1 run at cell 0 over 0 runs at cell 2
    np.testing.assert_array_equal(out, [[R, R, F, R, W]])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 12), cols=st.integers(1, 12), runs=st.integers(1, 4),
       hot=st.sampled_from([0.0, 0.05, 0.3, 1.0]), demand=st.integers(0, 30))
def test_expected_map_ranks_converted_cells_first_as_one_ranking_would(seed, rows, cols, runs, hot, demand):
    """The expected map ranks the cells some run converted, then the rest only in the zones left short: the same
    map as one ranking of every candidate (count * 256 + potential), with zones short of candidates."""
    from types import SimpleNamespace

    from landuse.evaluation.expected import _allocate_by_rank, expected_map

    rng = np.random.default_rng(seed)
    codes = np.array([c.code for c in S], dtype=np.uint8)
    before = rng.choice(codes, size=(rows, cols))
    counts = (rng.random((3, rows, cols)) < hot) * rng.integers(1, runs + 1, (3, rows, cols))
    potential = rng.integers(0, 256, (3, rows, cols)).astype(np.uint8)
    potential[rng.random((3, rows, cols)) < 0.2] = 0
    allowed = rng.random((3, 256)) < 0.6
    zones = rng.integers(0, 4, (rows, cols))
    zones.flat[-1] = 3  # the targets' largest zone is on the grid (a zone may have no candidate)
    targets = pd.DataFrame([(0, z, t, int(rng.integers(0, demand + 1))) for z in range(4) for t in TYPES],
                           columns=["period", "zone", "type", "cells"])
    params = SimpleNamespace(potential=potential, allowed=allowed, type_codes=tuple(S.code_of(t) for t in TYPES),
                             types=TYPES)
    got = expected_map(before, counts, params, zones, targets)
    flat = before.reshape(-1)
    one = _allocate_by_rank(before, zones, targets, type_codes=params.type_codes, types=TYPES,
                            developable_of=lambda k: allowed[k][flat] & (potential[k].reshape(-1) > 0),
                            score_at=lambda k, cand: (counts[k].reshape(-1)[cand].astype(np.int64) << 8)
                            | potential[k].reshape(-1)[cand])
    np.testing.assert_array_equal(got, one)


# ---------------------------------------------------------------------------------------------- density features


def test_density_features_by_hand():
    from landuse.calibration.suitability_model import feature_stack

    lu = np.full((5, 5), F, dtype=np.uint8)
    lu[2, 2] = R
    lu[2, 3] = R
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=TRANSFORM)
    names, feats = feature_stack(ds, _scenario(), lu, radii_m=(100.0,))
    share = feats[names.index("urban_share_100m")]
    # the disc of radius 100 m on 100 m cells: the cell and its 4 neighbours
    assert share[2, 2] == pytest.approx(2 / 5) and share[2, 1] == pytest.approx(1 / 5)
    assert share[1, 1] == pytest.approx(0.0, abs=1e-9) and share[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert "urban_share_100m" not in feature_stack(ds, _scenario(), lu, radii_m=())[0]


# ---------------------------------------------------------------------------------------------- history vs plan


def test_warns_when_a_source_that_changed_in_the_history_is_unreachable(monkeypatch):
    from landuse.calibration.hindcast import unreachable_sources

    forest = S.codes_with_role("open_space")[0]
    t0 = np.full((4, 5), forest, dtype=np.uint8)
    t0[:, 0] = F
    now = t0.copy()
    now[:2, 1:] = R  # 8 forest cells became urban
    now[0, 0] = R  # 1 farmland cell
    ds = new_landscape({"landuse": now, "landuse_2010": t0}, crs="EPSG:32651", transform=TRANSFORM)
    sc = _scenario((2020, 2030))
    plan = pd.DataFrame({"hectares": [5.0], "from_farmland_ha": [2.0], "from_open_space_ha": [0.0],
                         "from_other_ha": [3.0]})
    msgs = unreachable_sources(ds, sc, plan)
    assert len(msgs) == 1
    assert "89% of the urban gain 2010 -> 2020 came from open space (forest 89%)" in msgs[0]
    import landuse.io.rasters

    for strip in (1, 5, 7):  # the gain is counted strip by strip (landuse.core.strips.STRIP_CELLS cells a strip)
        monkeypatch.setattr(landuse.core.strips, "STRIP_CELLS", strip)
        assert unreachable_sources(ds, sc, plan) == msgs
    monkeypatch.undo()
    assert "allocation.weights.open_space" in msgs[0]
    assert unreachable_sources(ds, sc, plan.assign(from_open_space_ha=1.0)) == []
    # a conversion matrix without open space makes it unreachable whatever the plan
    closed = scenario_from_dict({"name": "hc", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
                                 "demand": {"residential": {2030: 1.0}},
                                 "growth": {"conversion": {"residential": ["farmland"]}}})
    msgs = unreachable_sources(ds, closed, plan.assign(from_open_space_ha=1.0))
    assert len(msgs) == 1 and "growth.conversion" in msgs[0]


# ---------------------------------------------------------------------------------------------- calibrate -> run


def test_run_applies_a_calibration_file_and_records_it(tiny_config, tmp_path):
    from landuse.calibration.result import apply_calibration
    from landuse.core.config import load_scenario

    cal = tmp_path / "calibrated.yaml"
    cal.write_text("# header\ngrowth:\n  neighbourhood_strength: 3.25\n  iterations: 7\n"
                   "policy:\n  greenbelt:\n    mode: soft\n    strength: 0.9\n")
    sc, record = apply_calibration(load_scenario(tiny_config), cal)
    assert sc.config.growth.neighbourhood_strength == 3.25 and sc.config.growth.iterations == 7
    assert sc.config.policy.greenbelt.strength == 0.9 and sc.config.growth.runs == 10  # the rest kept
    assert len(record["sha256"]) == 64
    bad = tmp_path / "bad.yaml"
    bad.write_text("growth:\n  iterations: 0\n")
    with pytest.raises(ConfigError, match="growth.iterations"):
        apply_calibration(load_scenario(tiny_config), bad)
    bad.write_text("layers:\n  landuse: x.tif\n")
    with pytest.raises(ConfigError, match="only growth: and policy:"):
        apply_calibration(load_scenario(tiny_config), bad)

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(tiny_config), "--out", str(out), "--runs", "2", "-q",
                                   "--calibration", str(cal)])
    assert res.exit_code in (0, 1), res.output
    assert "calibration applied" in res.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["overrides"]["calibration"]["values"]["growth"]["iterations"] == 7
    assert m["config"]["growth"]["iterations"] == 7 and m["config"]["growth"]["neighbourhood_strength"] == 3.25
    assert (out / "expected_2025.tif").is_file()
    res = CliRunner().invoke(app, ["run", str(tiny_config), "--out", str(tmp_path / "x"), "--calibration",
                                   str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "calibration file not found" in res.output


# ---------------------------------------------------------------------------------------------- non-square cells


def test_non_square_cells_keep_their_x_and_y_sizes(tmp_path):
    from conftest import write_array

    from landuse.allocation.zones import zone_grid
    from landuse.core.landscape import cell_size, cell_sizes
    from landuse.pipeline.validate import validate_scenario
    from landuse.surfaces.suitability import distance_to

    tall = Affine(100.0, 0.0, 300_000.0, 0.0, -50.0, 3_500_000.0)  # 100 m wide, 50 m high
    lu = np.full((8, 6), F, dtype=np.uint8)
    lu[0, 0] = R
    ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=tall)
    assert cell_sizes(ds) == (50.0, 100.0) and cell_size(ds) == pytest.approx(math.sqrt(5000.0))
    d = distance_to(lu == R, cell=cell_sizes(ds))
    assert (d[1, 0], d[0, 1], d[2, 2]) == (50.0, 100.0, pytest.approx(math.hypot(100.0, 200.0)))
    zg = zone_grid(ds, block_size_m=200)  # 4 rows x 2 columns per block
    assert zg.n_zones == 2 * 3 and set(zg.table.cells) == {8}
    write_array(tmp_path / "lu.tif", lu, transform=tall, classes=S)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "tall", "layers": {"landuse": "lu.tif"},
                                                     "periods": [2020, 2025], "demand": {"residential": {2025: 1.0}}}))
    text = validate_scenario(tmp_path / "s.yaml").text()
    assert "8 x 6 cells of 100 x 50 m (width x height)" in text


def test_prediction_runs_change_the_prediction_not_the_fit(sample3):
    from landuse.core.config import load_scenario
    from landuse.io.rasters import read_landscape

    path, _, _ = sample3
    sc = load_scenario(path)
    ds = read_landscape(sc.layer_paths(), classes=sc.classes)
    a = hindcast(ds, sc, budget=4, runs=2, seed=5)
    b = hindcast(ds, sc, budget=4, runs=2, seed=5, prediction_runs=5)
    assert a.prediction.calibrated == b.prediction.calibrated  # the fit is the same
    assert not np.array_equal(a.prediction.maps["model_expected"], b.prediction.maps["model_expected"])
    np.testing.assert_array_equal(a.prediction.maps["logistic"], b.prediction.maps["logistic"])
    with pytest.raises(ConfigError, match="prediction_runs"):
        hindcast(ds, sc, budget=4, runs=2, seed=5, prediction_runs=0)
