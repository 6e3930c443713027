"""Scenario batches on dask.distributed (LocalCluster on loopback) give the same outputs as in-process runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from assertions import same_outputs_end_to_end
from growth_fixtures import assert_same, random_landscape, scenario, targets
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.errors import LanduseError
from landuse.growth import GrowthParams, simulate
from landuse.pipeline.batch import run_batch
from landuse.pipeline.run import run_scenario
from landuse.scale.distributed import check_scheduler, dask_client, simulate_ensemble

runner = CliRunner()


def test_batch_on_local_cluster_matches_in_process(reduced, tmp_path) -> None:
    _, configs = reduced
    cfgs = [configs["bau"], configs["ecological"]]
    here = run_batch(cfgs, out=tmp_path / "here", runs=1)
    there = run_batch(cfgs, scheduler="local", out=tmp_path / "dask", runs=1)
    assert [r["scenario"] for r in there] == ["bau", "ecological"]
    assert {r["worker_pid"] for r in there}.isdisjoint({r["worker_pid"] for r in here})  # ran in worker processes
    for a, b in zip(here, there, strict=True):
        tifs = sorted((tmp_path / "here" / a["scenario"]).glob("*.tif"))
        assert tifs
        for t in tifs:
            assert t.read_bytes() == (tmp_path / "dask" / b["scenario"] / t.name).read_bytes(), t.name


def test_cli_runs_several_configs(reduced, tmp_path) -> None:
    _, configs = reduced
    res = runner.invoke(app, ["run", str(configs["compact"]), str(configs["ecological"]), "--out", str(tmp_path),
                              "--runs", "1"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "compact" / "landuse_2035.tif").exists()
    assert (tmp_path / "ecological" / "report.html").exists()


def test_bad_scheduler_is_a_clear_error(reduced, tmp_path) -> None:
    _, configs = reduced
    with pytest.raises(LanduseError, match="neither 'local' nor"):
        check_scheduler("localhost:8786")
    res = runner.invoke(app, ["run", str(configs["bau"]), "--scheduler", "nowhere", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "neither 'local' nor" in res.output
    res = runner.invoke(app, ["run", str(configs["bau"]), "--scheduler", "tcp://127.0.0.1:1", "--out",
                              str(tmp_path)])
    assert res.exit_code == 2 and "cannot reach the Dask scheduler" in res.output


# --------------------------------------------------------------------------- growth on Dask


@pytest.fixture(scope="module")
def cluster():
    with dask_client("local", workers=2) as client:
        yield client


def test_distributed_ensemble_equals_in_process(cluster) -> None:
    ds = random_landscape(3, 40, 50, zone_block=11)
    sc = scenario(periods=(2020, 2030, 2040), spontaneous_share=0.1, iterations=5)
    p = GrowthParams.from_scenario(sc, ds)
    t = targets([2030, 2040], ds["zones"].values, {"residential": 10, "industrial": 4, "commercial": 2})
    a = simulate(ds, t, params=p, runs=5, seed=3)
    events = []
    b = simulate_ensemble(ds, t, params=p, runs=5, seed=3, client=cluster, parts=3, progress=events.append)
    assert len(set(a.run_scores.tolist())) > 1
    assert_same(a, b)
    assert sorted((e["run"], e["period"]) for e in events) == [(r, y) for r in range(5) for y in (2030, 2040)]


def _tif_values(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for f in sorted(folder.glob("*.tif")):
        with rasterio.open(f) as src:
            out[f.name] = src.read()
    return out


def test_run_with_chunks_and_scheduler_gives_the_same_geotiffs(reduced, tmp_path, monkeypatch) -> None:
    _, configs = reduced
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # the reports' creation time, else the only difference
    base = ["run", str(configs["bau"]), "--runs", "2", "-q"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "mem")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "tiled"), "--chunks", "64"])
    assert res.exit_code == 0, res.output
    mem, tiled = _tif_values(tmp_path / "mem"), _tif_values(tmp_path / "tiled")
    assert any(k.startswith("landuse_") for k in mem) and mem.keys() == tiled.keys()
    for k in mem:
        np.testing.assert_array_equal(mem[k], tiled[k], err_msg=k)
    same_outputs_end_to_end(tmp_path / "mem", tmp_path / "tiled")
    manifest = json.loads((tmp_path / "tiled" / "manifest.json").read_text())
    assert manifest["overrides"]["compute.chunks"] == 64
    # one config with a scheduler: each period's ensemble runs on the cluster, same maps
    r = run_scenario(configs["bau"], out=tmp_path / "dask", runs=2, scheduler="local")
    assert r.manifest["overrides"]["compute.scheduler"] == "local"
    there = _tif_values(tmp_path / "dask")
    for k in mem:
        np.testing.assert_array_equal(mem[k], there[k], err_msg=k)
    same_outputs_end_to_end(tmp_path / "mem", tmp_path / "dask")


def test_bad_chunks_is_a_clear_error(reduced, tmp_path) -> None:
    _, configs = reduced
    for bad in ("3", "0", "-5"):
        res = runner.invoke(app, ["run", str(configs["bau"]), "--chunks", bad, "--out", str(tmp_path)])
        assert res.exit_code == 2 and "--chunks" in res.output and "64" in res.output, res.output
