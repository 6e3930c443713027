"""`landuse sample` at growing sizes: wall time, peak memory of the whole process tree, bytes per cell.

Usage: ``python benchmarks/sample.py [--quick] [--sizes N,N,...] [--cell-size M] [--seed S]
[--workers W] [--tile T] [--keep] [--workdir DIR]``

Each size runs ``python -m landuse.cli.app sample OUT --size N --cell-size M --seed S`` as a
child process (so the figures are those of the command a user runs: start-up, plan, tiles,
writing, COG copies, overview PNG and YAML). Sizes from 2000 (landuse.sample.region.MEGA_THRESHOLD) up use the megaregion layout;
below, the in-memory cluster. Default sizes 2000, 5000 and 20000 (``--quick``: 2000 and
5000), 30 m cells (the resolution of the land-cover products of a megaregion).

Memory: the resident set of the child and of every process it forks (tile workers) is
summed and sampled every 0.2 s with psutil; the peak of that sum is reported as
``peak_rss_mb`` and divided by the cell count as ``bytes_per_cell`` (an upper bound: forked
workers share the parent's pages, which each one's RSS counts again). The peak of the summed
proportional set sizes (PSS, shared pages split among the processes sharing them) is
``peak_pss_mb`` / ``pss_bytes_per_cell``.
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the largest single descendant, as
``/usr/bin/time -v`` reports it) is given beside it as ``max_single_rss_mb``. The 1-minute
load average before and after each size is printed, since the machine may be shared.

Prints one line per size and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from landuse.sample.region import MEGA_THRESHOLD


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) of ``proc`` and its descendants, in bytes."""
    rss = pss = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def run_one(size: int, a: argparse.Namespace, workdir: Path) -> dict[str, object]:
    out = workdir / f"sample_{size}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-c",
           "import sys; from landuse.sample.generate import generate_sample; "
           "info = generate_sample(sys.argv[1], size=int(sys.argv[2]), seed=int(sys.argv[3]), "
           "cell_size=float(sys.argv[4]), tile=int(sys.argv[5]), "
           "workers=None if sys.argv[6] == 'auto' else int(sys.argv[6])); print(info.text())",
           str(out), str(size), str(a.seed), str(a.cell_size), str(a.tile), str(a.workers)]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = psutil.Process(child.pid)
    peak = peak_pss = 0
    while child.poll() is None:
        rss, pss = _tree_memory(proc)
        peak, peak_pss = max(peak, rss), max(peak_pss, pss)
        time.sleep(0.2)
    seconds = time.perf_counter() - t0
    text = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"landuse sample --size {size} failed:\n{text}")
    single = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    folder_mb = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    cells = size * size
    fig = {
        "size": size, "cells": cells, "seconds": round(seconds, 1), "peak_rss_mb": round(peak / 2**20, 1),
        "bytes_per_cell": round(peak / cells, 2), "peak_pss_mb": round(peak_pss / 2**20, 1),
        "pss_bytes_per_cell": round(peak_pss / cells, 2), "max_single_rss_mb": round(single / 2**20, 1),
        "folder_mb": round(folder_mb, 1), "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
        "layout": "megaregion" if size >= MEGA_THRESHOLD else "cluster",
    }
    print(f"{size:>6}^2 ({fig['layout']}): {fig['seconds']:8.1f} s, peak RSS {fig['peak_rss_mb']:8.1f} MB "
          f"(all processes), {fig['bytes_per_cell']:7.2f} B/cell (PSS {fig['peak_pss_mb']:.0f} MB, "
          f"{fig['pss_bytes_per_cell']:.2f} B/cell), largest process {fig['max_single_rss_mb']:.0f} MB, "
          f"folder {fig['folder_mb']:.1f} MB, load {fig['load_before']} -> {fig['load_after']}", flush=True)
    print("   " + text.strip().splitlines()[0], flush=True)
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)
    return fig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2000 and 5000 only")
    ap.add_argument("--sizes", default=None, help="comma-separated grid edges (overrides --quick)")
    ap.add_argument("--cell-size", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--workers", default="auto", help="tile processes (default: landuse's choice)")
    ap.add_argument("--keep", action="store_true", help="keep the generated folders")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else ([2000, 5000] if a.quick else [2000, 5000, 20000])
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="landuse_sample_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    figs = [run_one(n, a, workdir) for n in sizes]
    if not a.workdir and not a.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"benchmark": "sample", "cell_size": a.cell_size, "seed": a.seed, "tile": a.tile,
                      "workers": a.workers, "cpus": os.cpu_count(), "runs": figs}))


if __name__ == "__main__":
    main()
