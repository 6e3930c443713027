"""End-to-end pipeline on a reduced sample: outputs, reproducibility, overwrite and interrupt safety, demos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.config import scenario_from_dict
from landuse.core.errors import OutputExistsError
from landuse.pipeline.run import run_scenario
from landuse.sample.generate import generate_sample

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_runs(reduced):
    _, configs = reduced
    return {name: run_scenario(cfg, progress=None) for name, cfg in configs.items()}


def _cluster(result):
    return result.report.data["quotas"][str(result.scenario.periods[-1])]["units"][-1]


def _urban_metrics(result):
    return result.report.data["landscape_metrics"][str(result.scenario.periods[-1])]["urban"]


def test_demo_scenarios_show_the_expected_differences(demo_runs) -> None:
    bau, compact, eco = demo_runs["bau"], demo_runs["compact"], demo_runs["ecological"]
    # less farmland lost, fewer and larger urban patches under compact than under BAU
    assert _cluster(compact)["farmland_loss_ha"] < _cluster(bau)["farmland_loss_ha"]
    assert _urban_metrics(compact)["number_of_patches"] < _urban_metrics(bau)["number_of_patches"]
    assert _urban_metrics(compact)["mean_patch_area"] > _urban_metrics(bau)["mean_patch_area"]
    # every quota met under ecological
    q = eco.report.data["quotas"][str(eco.scenario.periods[-1])]
    assert q["quota"]["share"] == 0.15 and q["quota"]["unit"] == "city"
    cities = [u for u in q["units"] if u["unit"] != "cluster"]
    assert cities and all(u["quota_met"] for u in cities)
    # every check of every period and unit, from the maps (the farmland cap per period, not summed)
    cap = [r for r in eco.report.data["checks"] if r["check"] == "farmland_loss_cap"]
    assert len(cap) == len(eco.scenario.period_pairs) and all(r["passed"] for r in cap)
    assert eco.report.data["passed"], eco.report.data["failures"]


def a_demand(a, sc) -> dict:
    """Demand per (city or None, type) of an allocation's demand rows."""
    d = a.duals[a.duals.kind == "demand"]
    return {(None if pd.isna(r.city) else int(r.city), r.type): float(r.bound) for r in d.itertuples()}


def test_demand_is_met_and_policies_hold(demo_runs) -> None:
    for name, r in demo_runs.items():
        sc = r.scenario
        landscape_lu = np.asarray(r.report.landscape["landuse"].values)
        final = np.asarray(r.landuse[sc.periods[-1]].values)
        ds = r.report.landscape
        for layer in ("red_line", "permanent_farmland"):
            changed = (landscape_lu != final) & np.asarray(ds[layer].values, dtype=bool)
            assert not changed.any(), (name, layer)
        water = sc.classes.is_role(landscape_lu, "water")
        assert (final[water] == landscape_lu[water]).all()
        # allocated cells per period equal demand, and the growth engine placed them (shortfall is reported)
        cell_ha = 0.36
        for a in r.allocations:
            for t, ha in a.targets.groupby("type")["hectares"].sum().items():
                # demand rows ask for whole cells: per type, or per city and type in city mode
                d_cells = sum(round(d / cell_ha) for (_, tt), d in a_demand(a, sc).items() if tt == t)
                assert ha == pytest.approx(d_cells * cell_ha, rel=1e-9)
                assert a.targets.loc[a.targets.type == t, "cells"].sum() == d_cells
            # the map gains exactly the planned cells of each type, less the reported shortfall
            sf = r.shortfall[r.shortfall.period == a.period]
            before = np.asarray(r.landuse[sc.periods[sc.periods.index(a.period) - 1]].values
                                 if sc.periods.index(a.period) > 1 else landscape_lu)
            after = np.asarray(r.landuse[a.period].values)
            for t in ("residential", "industrial", "commercial"):
                new = int((sc.classes.is_role(after, t) & ~sc.classes.is_role(before, t)).sum())
                planned = int(a.targets.loc[a.targets.type == t, "cells"].sum())
                assert new == planned - int(sf.loc[sf.type == t, "shortfall"].sum()), (name, a.period, t)


def test_output_folder_layout_and_manifest(demo_runs) -> None:
    r = demo_runs["compact"]
    out = r.out_dir
    years = r.scenario.periods[1:]
    for y in years:
        assert (out / f"landuse_{y}.tif").exists()
        for t in ("residential", "industrial", "commercial"):
            assert (out / f"probability_{t}_{y}.tif").exists()
    for name in ("ugb.tif", "ugb.geojson", "allocation.csv", "duals.csv", "report.json", "report.md",
                 "report.html", "manifest.json", "shortfall.csv", "probability_urban.tif"):
        assert (out / name).exists(), name
    assert list((out / "figures").glob("*.png"))
    m = json.loads((out / "manifest.json").read_text())
    assert m["scenario"] == "compact" and m["runs"] == 3
    assert m["config"]["policy"]["greenbelt"]["mode"] == "hard"
    for entry in m["inputs"].values():
        assert len(entry["sha256"]) == 64
    assert {"numpy", "numba", "pulp", "gdal"} <= set(m["versions"])
    assert {"read", "total", "write"} <= set(m["timings_s"])
    # each stage's span since the run began: in order, as long as its seconds, within the run
    spans = m["timeline_s"]
    assert set(spans) == set(m["timings_s"]) and spans["total"][0] == 0.0
    ends = [spans[k][1] for k in m["timings_s"] if k != "total"]
    assert ends == sorted(ends) and ends[-1] <= spans["total"][1]
    for k, (a, b) in spans.items():
        assert abs((b - a) - m["timings_s"][k]) <= 0.002, k
    with rasterio.open(out / f"landuse_{years[-1]}.tif") as src:
        assert src.crs.to_epsg() == 32651 and src.colormap(1)
        assert src.tags()["seed"] == str(m["seed"])
    gj = json.loads((out / "ugb.geojson").read_text())
    assert gj["type"] == "FeatureCollection" and gj["features"]
    rep = json.loads((out / "report.json").read_text())
    assert rep["extra"]["fragmentation"]


def test_same_seed_gives_byte_identical_geotiffs(reduced, demo_runs, tmp_path) -> None:
    _, configs = reduced
    again = run_scenario(configs["compact"], out=tmp_path / "again")
    first = demo_runs["compact"].out_dir
    tifs = sorted(p.name for p in first.glob("*.tif"))
    assert tifs
    for name in tifs:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    other = run_scenario(configs["compact"], out=tmp_path / "other", seed=99, write=False)
    assert not np.array_equal(other.landuse[2035].values, again.landuse[2035].values)


def test_cli_overrides_are_recorded(reduced, tmp_path) -> None:
    _, configs = reduced
    out = tmp_path / "cli"
    res = runner.invoke(app, ["run", str(configs["ecological"]), "--out", str(out), "--runs", "2", "--seed", "5",
                              "--solver", "highs", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "report:" in res.output and str(out / "report.html") in res.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["overrides"] == {"outputs.folder": str(out.resolve()), "growth.runs": 2, "growth.seed": 5,
                              "allocation.solver": "highs"}
    assert m["runs"] == 2 and m["seed"] == 5 and m["solver"] == "highs"


def test_bad_override_exits_2(reduced, tmp_path) -> None:
    _, configs = reduced
    res = runner.invoke(app, ["run", str(configs["bau"]), "--out", str(tmp_path / "x"), "--runs", "0"])
    assert res.exit_code == 2 and "--runs" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["run", str(configs["bau"]), "--out", str(tmp_path / "x"), "--solver", "gurobi"])
    assert res.exit_code == 2 and "--solver" in res.output


def test_other_scenarios_folder_needs_force(reduced, demo_runs) -> None:
    _, configs = reduced
    target = demo_runs["bau"].out_dir
    before = (target / "landuse_2035.tif").read_bytes()
    with pytest.raises(OutputExistsError, match="scenario 'bau'"):
        run_scenario(configs["compact"], out=target, write=True)
    assert (target / "landuse_2035.tif").read_bytes() == before
    res = runner.invoke(app, ["run", str(configs["compact"]), "--out", str(target), "--quiet"])
    assert res.exit_code == 2 and "--force" in res.output


def test_ctrl_c_leaves_no_half_written_file(reduced, tmp_path, monkeypatch) -> None:
    _, configs = reduced
    out = tmp_path / "interrupted"
    first = run_scenario(configs["ecological"], out=out, runs=1)
    before = {p.name: p.read_bytes() for p in out.glob("*") if p.is_file()}
    import landuse.pipeline.write as pipeline

    real = pipeline.write_geotiff
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "write_geotiff", flaky)
    res = runner.invoke(app, ["run", str(configs["ecological"]), "--out", str(out), "--runs", "1", "--seed", "3",
                              "--quiet"])
    assert res.exit_code == 130
    assert "interrupted" in res.output
    leftovers = [p.name for p in out.rglob("*") if ".part" in p.name]
    assert leftovers == []
    for name, data in before.items():
        if name.startswith(("landuse_2035", "probability_", "ugb", "report", "manifest", "allocation")):
            assert (out / name).read_bytes() == data, name
    assert first.out_dir == out


def test_sample_yaml_runs_as_it_is(tmp_path) -> None:
    generate_sample(tmp_path / "s", size=150, seed=3)
    res = runner.invoke(app, ["run", str(tmp_path / "s" / "sample.yaml"), "--runs", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s" / "outputs" / "landuse_2035.tif").exists()


def test_plain_progress_lines_when_not_a_terminal(reduced, tmp_path) -> None:
    _, configs = reduced
    res = runner.invoke(app, ["run", str(configs["compact"]), "--out", str(tmp_path / "p"), "--runs", "2"])
    assert res.exit_code == 0, res.output
    assert "period ending 2025: allocating demand to zones" in res.output
    assert "period ending 2035: growth run 2/2" in res.output


def test_committed_demo_configs_validate() -> None:
    for name in ("bau", "compact", "ecological", "sample"):
        res = runner.invoke(app, ["validate", str(ROOT / "configs" / f"{name}.yaml")])
        assert res.exit_code == 0, (name, res.output)


def test_output_folder_that_cannot_be_created_is_a_clear_error(reduced, tmp_path) -> None:
    _, configs = reduced
    (tmp_path / "a_file").write_text("not a folder")
    res = runner.invoke(app, ["run", str(configs["bau"]), "--out", str(tmp_path / "a_file" / "out"), "--quiet"])
    assert res.exit_code == 2 and "cannot create the output folder" in res.output and "--out" in res.output
    assert "Traceback" not in res.output and (tmp_path / "a_file").read_text() == "not a folder"


def test_inputs_are_never_outputs(reduced, tmp_path) -> None:
    base, configs = reduced
    d = yaml.safe_load(configs["bau"].read_text())
    d["outputs"]["folder"] = "sample"  # the folder holding the inputs
    sc = scenario_from_dict(d, base_dir=base)
    with pytest.raises(OutputExistsError):
        run_scenario(sc)


def test_compare_writes_side_by_side_table_and_figures(demo_runs, tmp_path) -> None:
    from html.parser import HTMLParser

    folders = [str(demo_runs[n].out_dir) for n in ("bau", "compact", "ecological")]
    res = runner.invoke(app, ["compare", *folders, "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert data["scenarios"] == ["bau", "compact", "ecological"]
    bau, compact = demo_runs["bau"], demo_runs["compact"]
    assert data["rows"]["farmland_lost_ha"][:2] == pytest.approx(
        [_cluster(bau)["farmland_loss_ha"], _cluster(compact)["farmland_loss_ha"]])
    assert data["rows"]["number_of_patches"][1] == _urban_metrics(compact)["number_of_patches"]
    assert data["rows"]["quota_units_met"][2] == data["rows"]["quota_units"][2] > 0
    frag = data["rows"]["fragmentation_objective"][0]
    assert isinstance(frag, float) and frag >= -1e-6  # city-by-city never beats the cluster-wide plan
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| farmland lost (ha) |" in md and "compare_maps.png" in md
    srcs = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                srcs.append(dict(attrs)["src"])

    P().feed((tmp_path / "cmp" / "compare.html").read_text())
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for png in ("compare_maps.png", "compare_bars.png"):
        assert (tmp_path / "cmp" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(app, ["compare", folders[0], str(tmp_path), "--out", str(tmp_path / "c2")])
    assert bad.exit_code == 2 and "not a landuse run folder" in bad.output


def test_city_by_city_comparison_is_skipped_for_one_city_or_when_switched_off(tmp_path, tiny_layers) -> None:
    from conftest import scenario_dict

    from landuse.pipeline.run import run_scenario

    one = {k: v for k, v in tiny_layers.items() if k != "cities"}
    for name, layers, outputs, why in (("one", one, {}, "one city only"),
                                       ("off", tiny_layers, {"coordination": False}, "switched off")):
        d = scenario_dict(layers, tmp_path, name=name, outputs={**outputs, "figures": False})
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(d, sort_keys=False))
        res = run_scenario(cfg, write=False)
        frag = res.report.data["extra"]["fragmentation"]
        assert all(why in v["skipped"] for v in frag.values()), frag
    d = scenario_dict(tiny_layers, tmp_path, name="on", outputs={"figures": False})
    (tmp_path / "on.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    frag = run_scenario(tmp_path / "on.yaml", write=False).report.data["extra"]["fragmentation"]
    assert all("differences" in v or "error" in v for v in frag.values())


def _boom(*_a, **_k):
    raise AssertionError("a stage nobody asked for was computed")


def test_outputs_maps_computes_and_writes_the_maps_only(tmp_path, tiny_layers, monkeypatch) -> None:
    from conftest import scenario_dict

    import landuse.allocation.coordination
    import landuse.evaluation.boundary
    import landuse.evaluation.expected
    import landuse.report.data
    import landuse.report.document

    d = scenario_dict(tiny_layers, tmp_path, name="less", outputs={"folder": "out_less"})
    cfg = tmp_path / "less.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    full = run_scenario(cfg, write=False)  # the reference: every output, report included
    for mod, name in ((landuse.allocation.coordination, "compare_coordination"), (landuse.evaluation.boundary, "ugb_from_config"),
                      (landuse.report.data, "build_report"), (landuse.report.document, "write_report"),
                      (landuse.evaluation.expected, "expected_map")):
        monkeypatch.setattr(mod, name, _boom)
    res = runner.invoke(app, ["run", str(cfg), "--outputs", "maps", "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out_less"
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".aux.xml")) == ["landuse_2025.tif",
                                                                                         "manifest.json"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["outputs"] == ["maps"] and m["overrides"]["outputs"] == ["maps"]
    assert "boundary" not in m["timings_s"]
    # the policy checks ran on the maps and were printed, though no report was built
    assert "checks passed" in res.output and "report:" not in res.output
    less = run_scenario(cfg, write=False, outputs="maps")
    assert less.report is None and less.ugb is None
    pd.testing.assert_frame_equal(less.checks, full.report.checks)
    assert less.passed == full.report.data["passed"]
    assert np.array_equal(less.landuse[2025].values, full.landuse[2025].values)


def test_outputs_list_and_switches_choose_the_files(tmp_path, tiny_layers) -> None:
    from conftest import scenario_dict

    d = scenario_dict(tiny_layers, tmp_path, name="some",
                      outputs={"folder": "out_some", "boundary": False, "probability": False, "figures": False})
    cfg = tmp_path / "some.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    res = run_scenario(cfg)
    names = {p.name for p in res.out_dir.iterdir() if not p.name.endswith(".aux.xml")}
    assert {"landuse_2025.tif", "expected_2025.tif", "allocation.csv", "duals.csv", "shortfall.csv",
            "report.json", "report.md", "report.html"} <= names
    assert not any(n.startswith(("ugb", "probability_")) or n == "figures" for n in names), names
    assert res.manifest["outputs"] == ["maps", "expected", "allocation", "report", "html", "coordination"]
    assert res.report.data["growth_boundary"] is None
    # html asks for the report too; allocation alone writes the tables and no report
    res = run_scenario(cfg, outputs="allocation,html", force=True)
    names = {p.name for p in res.out_dir.iterdir()}
    assert {"allocation.csv", "report.json", "report.html"} <= names and "landuse_2025.tif" not in names
    res = run_scenario(cfg, outputs=["all"], write=False)
    assert res.manifest["outputs"] == ["maps", "expected", "probability", "boundary", "allocation", "report",
                                       "figures", "html", "coordination"]


@pytest.mark.parametrize("value", ["maps,figs", "", "maps,,all,Report"])
def test_bad_outputs_value_exits_2_naming_it(tiny_config, tmp_path, value) -> None:
    res = runner.invoke(app, ["run", str(tiny_config), "--out", str(tmp_path / "x"), "--outputs", value])
    assert res.exit_code == 2 and "--outputs" in res.output and "Traceback" not in res.output, res.output
    assert "allowed: maps, expected, probability, boundary, allocation, report, figures, html, coordination, all" \
        in res.output
    assert not (tmp_path / "x").exists()


def test_a_scenario_passed_in_is_not_changed_by_the_run(tmp_path, tiny_layers) -> None:
    """run_scenario works on its own copy: overrides and a calibration never reach the caller's Scenario."""
    from conftest import scenario_dict

    sc = scenario_from_dict(scenario_dict(tiny_layers, tmp_path), base_dir=tmp_path)
    before = sc.to_dict()
    r = run_scenario(sc, runs=2, seed=99, solver="cbc", out=tmp_path / "elsewhere", write=False)
    assert r.scenario is not sc and r.scenario.config.growth.runs == 2 and r.scenario.config.growth.seed == 99
    assert sc.to_dict() == before
