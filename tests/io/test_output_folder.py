"""Output folders are replaced as a whole or not at all (landuse.io.folders): kills, a full disk, stale files, verify."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import scenario_dict, tiny_landuse, write_array
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.classes import default_scheme
from landuse.core.errors import LanduseError, OutputExistsError, OutputFolderError
from landuse.io.folders import MANIFEST, OutputFolder, verify_folder, write_bytes, write_text
from landuse.pipeline.run import run_scenario

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
DEMAND_3 = {"residential": {2025: 5.0, 2030: 3.0}, "industrial": {2025: 2.0, 2030: 1.0},
            "commercial": {2025: 1.0, 2030: 1.0}}


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    """Tiny rasters in tmp_path/in and three scenarios: 'tiny' over 2 periods, 'tiny' over 1, 'other' over 1."""
    base = tmp_path / "in"
    base.mkdir()
    lu = tiny_landuse()
    cities = np.ones(lu.shape, dtype=np.int32)
    cities[:, 4:] = 2
    layers = {"landuse": write_array(base / "landuse.tif", lu, classes=default_scheme()),
              "cities": write_array(base / "cities.tif", cities)}
    configs = {}
    for key, name, periods in (("long", "tiny", [2020, 2025, 2030]), ("short", "tiny", [2020, 2025]),
                               ("other", "other", [2020, 2025])):
        d = scenario_dict(layers, base, name=name, periods=periods,
                          demand={t: {y: v for y, v in dem.items() if y in periods} for t, dem in DEMAND_3.items()})
        d["growth"] = {"runs": 1}
        d["outputs"] = {"figures": key == "long", "html": False}
        configs[key] = base / f"{key}.yaml"
        configs[key].write_text(yaml.safe_dump(d, sort_keys=False))
    return configs


def listing(folder: Path) -> set[str]:
    """Files in ``folder``, except those of nested output folders (with a manifest of their own)."""
    nested = [d for d in folder.rglob("*") if d.is_dir() and (d / MANIFEST).exists()]
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if not p.is_dir() and not any(d in p.parents for d in nested)}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def assert_complete(folder: Path, manifest: dict | None = None) -> dict:
    """The folder verifies, holds exactly its manifest's files (and nothing beside it), and is ``manifest``'s run."""
    v = verify_folder(folder)
    assert v.ok, v.text()
    m = json.loads((folder / MANIFEST).read_text())
    assert listing(folder) == {f["path"] for f in m["files"]} | {MANIFEST}
    assert leftovers(folder) == []
    if manifest is not None:
        assert m == manifest
    return m


def test_run_manifest_lists_every_file_with_size_and_sha256(project, tmp_path) -> None:
    out = tmp_path / "out"
    res = run_scenario(project["long"], out=out, seed=3)
    m = assert_complete(out)
    assert m["command"] == "run" and m["owner"] == "tiny" and m["scenario"] == "tiny"
    paths = {f["path"] for f in m["files"]}
    assert {"landuse_2025.tif", "landuse_2030.tif", "allocation.csv", "report.json"} <= paths
    assert any(p.startswith("figures/") for p in paths)
    for f in m["files"]:
        assert (out / f["path"]).stat().st_size == f["size"] and len(f["sha256"]) == 64
    assert sorted(res.files) == sorted({out / p for p in paths} | {out / MANIFEST})
    assert res.manifest == m


def test_stale_files_of_a_longer_run_are_gone(project, tmp_path) -> None:
    out = tmp_path / "out"
    run_scenario(project["long"], out=out, seed=3)
    assert (out / "landuse_2030.tif").exists() and (out / "probability_urban.tif").exists()
    run_scenario(project["short"], out=out, seed=3)
    m = assert_complete(out)
    assert not (out / "landuse_2030.tif").exists() and not (out / "probability_residential_2030.tif").exists()
    assert not (out / "figures").exists()
    # a file of the user's in the folder: refused, since replacing the folder would delete it
    (out / "figures").mkdir()
    (out / "figures" / "mine.png").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"1 entry its manifest does not list \(figures/mine.png\)"):
        run_scenario(project["short"], out=out, seed=3)
    (out / "figures" / "mine.png").unlink()
    (out / "figures").rmdir()
    assert m["config"]["periods"] == [2020, 2025]
    # another scenario's folder: refused, then replaced whole with --force
    with pytest.raises(OutputExistsError, match="scenario 'tiny', not 'other'.*`force`"):
        run_scenario(project["other"], out=out)
    assert_complete(out, m)
    run_scenario(project["long"], out=out, seed=3)
    run_scenario(project["other"], out=out, force=True)
    m = assert_complete(out)
    assert m["scenario"] == "other" and not (out / "landuse_2030.tif").exists()


def _run_killed(config: Path, out: Path, point: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANDUSE_FAULT": point, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "landuse", "run", str(config), "--out", str(out), "--seed", "11",
                           "--force", "--quiet"], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("point", ["file:4", "staged", "swap", "swapped"])
def test_sigkill_while_writing_leaves_one_complete_run(project, tmp_path, point) -> None:
    """Killed between files, with staging complete, between the two renames, after them."""
    out = tmp_path / "out"
    earlier = run_scenario(project["short"], out=out, seed=3).manifest
    proc = _run_killed(project["short"], out, point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if point == "swap":  # killed between the two renames: the earlier folder waits beside the target
        assert not out.exists() and any(".old-" in n for n in leftovers(out))
    elif point != "swapped":  # before the swap: the earlier run untouched, a staging folder beside it
        assert listing(out) == {f["path"] for f in earlier["files"]} | {MANIFEST}
        assert any(".staging-" in n for n in leftovers(out))
    # verify recovers (restores the earlier folder, removes leftovers) and checks
    m = assert_complete(out)
    assert m["seed"] == (11 if point == "swapped" else 3)
    if point != "swapped":
        assert m == earlier
    # and a rerun succeeds, over whatever is there
    again = run_scenario(project["short"], out=out, seed=11)
    assert_complete(out, again.manifest)


def test_sigkill_mid_swap_is_recovered_by_the_next_run(project, tmp_path) -> None:
    out = tmp_path / "out"
    run_scenario(project["short"], out=out, seed=3)
    assert _run_killed(project["short"], out, "swap").returncode == -signal.SIGKILL
    assert not out.exists()
    res = run_scenario(project["short"], out=out, seed=5)
    assert_complete(out, res.manifest)


def test_full_disk_is_one_clear_line_and_exit_2(project, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    earlier = run_scenario(project["short"], out=out, seed=3).manifest
    import landuse.pipeline.write as pipeline

    real = pipeline.write_geotiff
    calls = {"n": 0}

    def full(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "write_geotiff", full)
    res = runner.invoke(app, ["run", str(project["short"]), "--out", str(out), "--seed", "11", "--quiet"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    line = res.output.strip()
    assert "no space left" in line and str(out) in line and "unchanged" in line and "--out" in line
    assert ".staging-" not in line  # names the file as the user knows it
    assert_complete(out, earlier)
    monkeypatch.undo()
    again = run_scenario(project["short"], out=out, seed=11)
    assert_complete(out, again.manifest)


def test_full_disk_while_writing_the_manifest(tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    with OutputFolder(out, command="demo", owner="a") as stage:
        write_text(stage.path / "a.txt", "first")
    earlier = json.loads((out / MANIFEST).read_text())
    real = os.fsync

    def full(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".part.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputFolderError, match=r"no space left on the device .* unchanged"):
        with OutputFolder(out, command="demo", owner="a") as stage:
            write_text(stage.path / "a.txt", "second")
            write_bytes(stage.path / "b.bin", b"\0" * 10)
    assert_complete(out, earlier)


def test_ctrl_c_keeps_the_earlier_folder_and_exits_130(project, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    earlier = run_scenario(project["short"], out=out, seed=3).manifest

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("landuse.evaluation.boundary.write_ugb", interrupt)
    res = runner.invoke(app, ["run", str(project["short"]), "--out", str(out), "--seed", "11", "--quiet"])
    assert res.exit_code == 130 and "interrupted" in res.output and "earlier outputs" in res.output
    assert_complete(out, earlier)


def test_verify_exit_codes(project, tmp_path) -> None:
    out = tmp_path / "out"
    run_scenario(project["short"], out=out, seed=3)
    res = runner.invoke(app, ["verify", str(out)])
    assert res.exit_code == 0 and "match manifest.json" in res.output

    def tampered(change) -> str:
        run_scenario(project["short"], out=out, seed=3, force=True)  # force: after the extra file
        change()
        r = runner.invoke(app, ["verify", str(out)])
        assert r.exit_code == 1, r.output
        return r.output

    tif = out / "landuse_2025.tif"

    def flip():
        data = bytearray(tif.read_bytes())
        data[-1] ^= 1
        tif.write_bytes(bytes(data))

    assert "changed: landuse_2025.tif (SHA-256" in tampered(flip)
    assert "changed: allocation.csv has" in tampered(lambda: (out / "allocation.csv").write_text("x"))
    assert "not in the manifest: extra.txt" in tampered(lambda: (out / "extra.txt").write_text("x"))
    assert "missing: duals.csv" in tampered(lambda: (out / "duals.csv").unlink())
    (out / MANIFEST).unlink()
    assert "no landuse manifest.json" in runner.invoke(app, ["verify", str(out)]).output
    res = runner.invoke(app, ["verify", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no output folder" in res.output


def test_sample_refuses_a_foreign_folder_without_force(tmp_path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "landuse_2020.tif").write_bytes(b"my own raster")
    (target / "sample.yaml").write_text("name: mine\n")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    res = runner.invoke(app, ["sample", str(target), "--size", "100"])
    assert res.exit_code == 2 and "not written by landuse" in res.output and "--force" in res.output
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before and leftovers(target) == []
    # its own folder is replaced, and a run folder nested in it is kept
    res = runner.invoke(app, ["sample", str(target), "--size", "100", "--force"])
    assert res.exit_code == 0, res.output
    assert_complete(target)
    with OutputFolder(target / "outputs", command="run", owner="sample") as stage:
        write_text(stage.path / "landuse_2025.tif", "a run's output")
    res = runner.invoke(app, ["sample", str(target), "--size", "100", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert_complete(target)
    assert_complete(target / "outputs")
    # a separate --config-dir: a sample.yaml the user wrote there is not overwritten
    cfg = tmp_path / "configs"
    cfg.mkdir()
    (cfg / "sample.yaml").write_text("name: mine\n")
    res = runner.invoke(app, ["sample", str(tmp_path / "s2"), "--size", "100", "--config-dir", str(cfg)])
    assert res.exit_code == 2 and "sample.yaml" in res.output and not (tmp_path / "s2").exists()


def test_commands_refuse_folders_they_did_not_write(project, tmp_path) -> None:
    runs = [tmp_path / "a", tmp_path / "b"]
    for r in runs:
        run_scenario(project["short"], out=r, seed=3)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("keep")
    for args in (["compare", *map(str, runs), "--out", str(foreign), "--no-figures"],
                 ["allocate", str(project["short"]), "--out", str(foreign)],
                 ["compare", *map(str, runs), "--out", str(tmp_path), "--no-figures"]):  # holds the runs
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "Traceback" not in res.output, (args, res.output)
    assert listing(foreign) == {"keep.txt"}
    res = runner.invoke(app, ["compare", *map(str, runs), "--out", str(foreign), "--no-figures", "--force"])
    assert res.exit_code == 0, res.output
    assert_complete(foreign)
    # allocate writes its own folder beside the run's outputs, never into them
    res = runner.invoke(app, ["allocate", str(project["short"])])
    assert res.exit_code == 0, res.output
    assert_complete(project["short"].parent / "outputs" / "allocation")
    # an input folder is refused even with --force
    res = runner.invoke(app, ["run", str(project["short"]), "--out", str(project["short"].parent), "--force"])
    assert res.exit_code == 2 and "input" in res.output


def test_leftovers_of_a_live_writer_are_left_alone(tmp_path) -> None:
    out = tmp_path / "out"
    with OutputFolder(out, command="demo", owner="a") as first:
        write_text(first.path / "a.txt", "first")
        with OutputFolder(out, command="demo", owner="a") as second:  # cleans dead leftovers, not the live one
            write_text(second.path / "a.txt", "second")
        assert first.path.is_dir()
    assert (out / "a.txt").read_text() == "first"
    assert_complete(out)


def test_sleuth_output_folder_is_replaced_whole(tmp_path) -> None:
    from sleuth_fixtures import tiny_project

    def sleuth(*args: str) -> tuple[int, str]:
        r = runner.invoke(app, ["sleuth", *args])
        return r.exit_code, r.output

    scen = tiny_project(tmp_path)
    out = tmp_path / "Output" / "run"  # the scenario's OUTPUT_DIR
    out.mkdir(parents=True)
    (out / "mine.txt").write_text("mine")
    code, text = sleuth(str(scen), "--mode", "predict", "--runs", "2")
    assert code == 2 and "not written by landuse" in text and listing(out) == {"mine.txt"}
    assert sleuth(str(scen), "--mode", "predict", "--runs", "2", "--force")[0] == 0
    predict = assert_complete(out)
    assert "cumulate_urban.tif" in listing(out) and "mine.txt" not in listing(out)
    # the same scenario file again, in test mode: replaced without --force, no predict file left
    assert sleuth(str(scen), "--mode", "test", "--runs", "2")[0] == 0
    m = assert_complete(out)
    assert m["command"] == "sleuth" and m["owner"] == predict["owner"] == str(scen.resolve())
    assert "cumulate_urban.tif" not in listing(out) and "control_stats.log" in listing(out)
    # the input folder is never an output folder
    code, text = sleuth(str(scen), "--out", str(tmp_path / "Input"), "--force")
    assert code == 2 and "holds the input" in text


def test_without_flock_liveness_falls_back_to_the_pid(tmp_path, monkeypatch) -> None:
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")  # as on some network file systems

    monkeypatch.setattr(fcntl, "flock", no_flock)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".out.staging-{int(done.stdout)}-0badc0de"
    live = tmp_path / f".out.staging-{os.getpid()}-0123abcd"
    dead.mkdir()
    live.mkdir()
    with OutputFolder(tmp_path / "out", command="demo", owner="a") as stage:
        write_text(stage.path / "a.txt", "x")
    assert not dead.exists() and live.exists()
    assert verify_folder(tmp_path / "out").ok


def test_library_messages_name_parameters_and_the_cli_names_flags(tmp_path) -> None:
    """The library names a parameter as `name`; the CLI prints the command's flag for it."""
    from landuse.cli.app import as_command_line, command_flags, sample
    from landuse.sample.generate import generate_sample

    with pytest.raises(LanduseError, match="`layout` must be one of") as info:
        generate_sample(tmp_path / "s", size=120, layout="ring")
    assert "--" not in str(info.value)
    flags = command_flags(sample)
    assert flags["layout"] == "--layout" and flags["config_dir"] == "--config-dir" and flags["outdir"] == "OUTDIR"
    assert as_command_line(str(info.value), flags).startswith("--layout must be one of")
    res = runner.invoke(app, ["sample", str(tmp_path / "s"), "--size", "120", "--layout", "ring"])
    assert res.exit_code == 2 and "--layout must be one of" in res.output and "`" not in res.output, res.output
