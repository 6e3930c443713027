"""Scenario batches on dask.distributed (LocalCluster on loopback) give the same outputs as in-process runs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from landuse.cli import app
from landuse.distributed import check_scheduler, run_batch
from landuse.errors import LanduseError

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
