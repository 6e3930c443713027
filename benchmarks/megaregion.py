"""The whole pipeline on a generated megaregion: a stage table per period, peak memory, one JSON line.

Generates a region with ``landuse sample --size N`` (30 m cells; the megaregion layout from 2 000 cells a side),
then runs its scenario YAML (``sample.yaml``, demand from the region's own 2010 -> 2020 growth) with
``landuse run`` as a separate process, and reads the stage timings the run records in ``manifest.json``
(suitability, zone table, allocate, city-by-city comparison and growth per period; boundary, evaluation, writing
once). Peak memory is the maximum resident set of the run's process tree, sampled every 0.2 s.

    python benchmarks/megaregion.py [--quick] [--size N] [--runs R] [--chunks C] [--scheduler local] [--keep DIR]
                                    [--region DIR] [--max-rss-gib G]

``--region`` runs on an existing ``landuse sample`` folder; ``--max-rss-gib`` stops the run when its process tree
passes that resident memory and prints how far it got (for sizes that do not fit). ``--cgroup-gib G`` runs it in a
memory cgroup limited to G GiB (root, cgroup v1 or v2): the kernel enforces the limit on everything the run charges,
page cache of its files included (reclaimed when the limit is reached; a run whose anonymous memory passes it is
killed), and the figures are the cgroup's peak (``memory.max_usage_in_bytes``, v1) and the peak of its anonymous
memory (``rss`` of ``memory.stat``, sampled). ``--rasters`` passes ``landuse run --rasters``.

``--quick`` is 2 000 cells a side and 2 runs. The issue's targets (20 000 x 20 000 in <= 30 minutes and <= 16 GB,
4 000 x 4 000 in <= 60 s) are printed beside the figures; a target is never asserted here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class MemoryCgroup:
    """A memory cgroup limited to ``limit`` bytes (v1 under /sys/fs/cgroup/memory, else v2), removed on close."""

    def __init__(self, limit: int) -> None:
        name = f"landuse-bench-{os.getpid()}"
        v1 = Path("/sys/fs/cgroup/memory")
        if (v1 / "memory.limit_in_bytes").exists():
            self.v1, self.path = True, v1 / name
            self.path.mkdir()
            (self.path / "memory.limit_in_bytes").write_text(str(limit))
        else:
            self.v1, self.path = False, Path("/sys/fs/cgroup") / name
            self.path.mkdir()
            (self.path / "memory.max").write_text(str(limit))
            (self.path / "memory.swap.max").write_text("0")
        self.anon_peak = 0
        self.timeline: list[tuple[float, int]] = []  # (seconds since start, anonymous bytes)
        self.t0 = time.perf_counter()

    def enter(self) -> None:
        """Move the calling process (a child, before exec) into the cgroup."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def sample(self) -> None:
        stat = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines())
        anon = int(stat.get("total_rss" if self.v1 else "anon", 0))
        self.anon_peak = max(self.anon_peak, anon)
        self.timeline.append((time.perf_counter() - self.t0, anon))

    def stage_peaks(self, manifest: dict, run_s: float) -> dict[str, float]:
        """Peak anonymous GiB per stage, and ``between`` for the time outside every stage (start-up, the zone grid,
        each period's bookkeeping after its growth).

        The stages' spans since the run began are the manifest's ``timeline_s``; the run's end is put at the
        process's end (off by the process's exit, a fraction of a second). Manifests without spans (earlier
        versions): edges accumulated backwards from the durations, which puts the gaps between stages into the
        stages before them.
        """
        timeline = manifest.get("timeline_s")
        stages = [(k, v) for k, v in manifest.get("timings_s", {}).items() if k != "total"]
        if timeline and "total" in timeline:
            shift = run_s - timeline["total"][1]
            edges = [(k, shift + a, shift + b) for k, (a, b) in timeline.items() if k != "total"]
        else:
            end = run_s
            edges = []
            for k, v in reversed(stages):
                edges.append((k, end - v, end))
                end -= v
            edges.reverse()
        out = {}
        for k, a, b in edges:
            vals = [x for t, x in self.timeline if a <= t <= b]
            if vals:
                out[k] = round(max(vals) / 2**30, 2)
        outside = [x for t, x in self.timeline if not any(a <= t <= b for _, a, b in edges)]
        if outside:
            out["between"] = round(max(outside) / 2**30, 2)
        return out

    def peak(self) -> int:
        f = "memory.max_usage_in_bytes" if self.v1 else "memory.peak"
        return int((self.path / f).read_text()) if (self.path / f).exists() else 0

    def oom_kills(self) -> int:
        if self.v1:
            return int(dict(line.split() for line in (self.path / "memory.oom_control").read_text().splitlines())
                       .get("oom_kill", 0))
        ev = dict(line.split() for line in (self.path / "memory.events").read_text().splitlines())
        return int(ev.get("oom_kill", 0))

    def close(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


def run_measured(cmd: list[str], *, max_rss: int | None = None,
                 cgroup: MemoryCgroup | None = None) -> tuple[int, float, int, str]:
    """Run ``cmd``; (exit code, seconds, peak RSS of its process tree in bytes, stderr).

    With ``max_rss`` (bytes) the process tree is killed as soon as its resident memory exceeds it; the exit code is
    then -9 and stderr ends with a line saying so. Each stderr line is prefixed with the seconds since the start.
    """
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=cgroup.enter if cgroup is not None else None)
    ps = psutil.Process(proc.pid)
    peak = [0]
    lines: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                if cgroup is not None:
                    cgroup.sample()
                rss = _tree_rss(ps)
                peak[0] = max(peak[0], rss)
                if max_rss is not None and rss > max_rss:
                    lines.append(f"[{time.perf_counter() - t:7.1f} s] killed: resident memory {rss / 2**30:.2f} GiB "
                                 f"passed the limit of {max_rss / 2**30:.2f} GiB")
                    for child in [*ps.children(recursive=True), ps]:
                        child.kill()
                    return
            except psutil.Error:
                pass
            done.wait(0.2)

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(f"[{time.perf_counter() - t:7.1f} s] {line.rstrip()}")

    th, rd = threading.Thread(target=sample, daemon=True), threading.Thread(target=read, daemon=True)
    th.start()
    rd.start()
    proc.wait()
    done.set()
    th.join()
    rd.join()
    return proc.returncode, time.perf_counter() - t, peak[0], "\n".join(lines)


def stage_table(timings: dict[str, float]) -> dict[str, dict[str, float]]:
    """Manifest timings ``stage_<year>`` -> {stage: {year: seconds}}; once-only stages under year 'all'."""
    table: dict[str, dict[str, float]] = {}
    for key, secs in timings.items():
        stage, _, year = key.rpartition("_")
        if stage and year.isdigit():
            table.setdefault(stage, {})[year] = secs
        else:
            table.setdefault(key, {})["all"] = secs
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 000 cells a side, 2 runs")
    ap.add_argument("--size", type=int, default=None, help="cells a side (default 4 000; --quick 2 000)")
    ap.add_argument("--runs", type=int, default=None, help="Monte Carlo runs (default 10; --quick 2)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--chunks", type=int, default=None, help="tile the growth (landuse run --chunks)")
    ap.add_argument("--scheduler", default=None, help="landuse run --scheduler (e.g. local)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the region and outputs in this folder")
    ap.add_argument("--region", type=Path, default=None,
                    help="run on this region (a `landuse sample` folder) instead of generating one")
    ap.add_argument("--max-rss-gib", type=float, default=None,
                    help="kill the run when its process tree passes this resident memory; prints the progress reached")
    ap.add_argument("--cgroup-gib", type=float, default=None,
                    help="run in a memory cgroup of this limit (page cache included; needs root)")
    ap.add_argument("--rasters", default=None, help="landuse run --rasters (memory, disk, auto)")
    ap.add_argument("--worker-memory", default=None,
                    help="compute.memory_limit of a local cluster's workers, e.g. 4GB (written into a copy of the "
                    "region's sample.yaml beside it, sample.bench.yaml)")
    args = ap.parse_args()
    size = args.size or (2000 if args.quick else 4000)
    runs = args.runs or (2 if args.quick else 10)
    exe = shutil.which("landuse") or str(Path(sys.executable).with_name("landuse"))
    work = args.keep or Path(tempfile.mkdtemp(prefix="landuse-mega-"))
    work.mkdir(parents=True, exist_ok=True)
    region = args.region or work / "region"
    fig: dict[str, object] = {"bench": "megaregion", "size": size, "runs": runs, "cell_m": 30,
                              "chunks": args.chunks, "scheduler": args.scheduler}
    load0 = os.getloadavg()[0]
    if args.region is None:
        rc, secs, peak, err = run_measured([exe, "sample", str(region), "--size", str(size), "--seed",
                                            str(args.seed), "--cell-size", "30", "--force"])
        if rc != 0:
            sys.exit(f"landuse sample failed ({rc}): {err.strip()[-2000:]}")
        print(f"sample {size} x {size}: {secs:.1f} s, peak {peak / 2**30:.2f} GiB", flush=True)
        fig.update({"sample_s": round(secs, 2), "sample_peak_gib": round(peak / 2**30, 3)})
    else:
        import rasterio

        with rasterio.open(region / "landuse_2020.tif") as src:
            size = fig["size"] = src.width  # the given region's size
    config = region / "sample.yaml"
    if args.worker_memory:
        import yaml

        doc = yaml.safe_load(config.read_text())
        doc.setdefault("compute", {})["memory_limit"] = args.worker_memory
        config = region / "sample.bench.yaml"
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        fig["worker_memory"] = args.worker_memory
    cmd = [exe, "run", str(config), "--out", str(work / "out"), "--runs", str(runs), "--force"]
    if args.max_rss_gib is None:
        cmd.append("--quiet")  # with a limit, the progress lines say how far the run got
    if args.chunks:
        cmd += ["--chunks", str(args.chunks)]
    if args.scheduler:
        cmd += ["--scheduler", args.scheduler]
    if args.rasters:
        cmd += ["--rasters", args.rasters]
        fig["rasters"] = args.rasters
    limit = None if args.max_rss_gib is None else int(args.max_rss_gib * 2**30)
    cg = None if args.cgroup_gib is None else MemoryCgroup(int(args.cgroup_gib * 2**30))
    try:
        if cg is not None:
            cg.t0 = time.perf_counter()
        rc, secs, peak, err = run_measured(cmd, max_rss=limit, cgroup=cg)
    finally:
        if cg is not None:
            fig.update({"cgroup_limit_gib": args.cgroup_gib, "cgroup_peak_gib": round(cg.peak() / 2**30, 3),
                        "cgroup_anon_peak_gib": round(cg.anon_peak / 2**30, 3), "cgroup_oom_kills": cg.oom_kills()})
            print(f"cgroup limit {args.cgroup_gib:g} GiB: peak charged {cg.peak() / 2**30:.2f} GiB (page cache "
                  f"included), peak anonymous {cg.anon_peak / 2**30:.2f} GiB, OOM kills {cg.oom_kills()}", flush=True)
            cg.close()
    load1 = os.getloadavg()[0]
    if limit is not None and "killed: resident memory" in err:
        print("\n".join(err.splitlines()[-12:]))
        print(f"landuse run, {size} x {size} cells: stopped after {secs:.1f} s at {peak / 2**30:.2f} GiB "
              f"(limit {args.max_rss_gib:g} GiB); load {load0:.1f} -> {load1:.1f}")
        fig.update({"run_s": round(secs, 2), "run_peak_gib": round(peak / 2**30, 3), "killed_at_gib": args.max_rss_gib,
                    "progress": err.splitlines()[-12:], "load_before": round(load0, 2), "load_after": round(load1, 2)})
        print(json.dumps(fig))
        return
    if rc not in (0, 1):  # 1: the run finished and some policy check failed
        print(json.dumps({**fig, "exit": rc, "run_s": round(secs, 2)}))
        sys.exit(f"landuse run failed ({rc}): {err.strip()[-2000:]}")
    if not (work / "out" / "manifest.json").exists():  # exit 0 or 1 writes the folder: say what the run printed
        print(json.dumps({**fig, "exit": rc, "run_s": round(secs, 2)}))
        sys.exit(f"landuse run exited {rc} without an output folder: {err.strip()[-2000:]}")
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    table = stage_table(manifest.get("timings_s", {}))
    years = sorted({y for per in table.values() for y in per if y != "all"})
    print(f"landuse run, {size} x {size} cells ({size * size / 1e6:.1f} M), {runs} runs: {secs:.1f} s as a process, "
          f"peak {peak / 2**30:.2f} GiB ({peak / (size * size):.0f} B/cell), exit {rc}; load {load0:.1f} -> {load1:.1f}")
    print(f"{'stage':<24}" + "".join(f"{y:>10}" for y in years) + f"{'once':>10}")
    for stage, per in table.items():
        print(f"{stage:<24}" + "".join(f"{per.get(y, float('nan')):>10.2f}" for y in years)
              + f"{per.get('all', float('nan')):>10.2f}")
    if cg is not None:
        per_stage = cg.stage_peaks(manifest, secs)
        print("peak anonymous GiB per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in per_stage.items()))
        fig["cgroup_anon_peak_per_stage_gib"] = per_stage
    fig.update({"run_s": round(secs, 2), "run_peak_gib": round(peak / 2**30, 3),
                "bytes_per_cell": round(peak / (size * size), 1), "exit": rc, "stages_s": table,
                "load_before": round(load0, 2), "load_after": round(load1, 2)})
    if size >= 20000:
        fig["target_20000"] = "<= 1800 s and <= 16 GiB"
    elif size == 4000:
        fig["target_4000"] = "<= 60 s"
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
