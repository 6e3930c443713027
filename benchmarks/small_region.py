"""The whole ``landuse run`` process on a small region: wall time and peak memory, all outputs against maps only.

Builds (once) a 2 000 x 2 000 region of 30 m cells with ``landuse sample --size 2000 --cell-size 30`` and writes
``small.yaml`` beside it: the sample's layers without cities and counties, one period (2020 -> 2025), a small
demand, one Monte Carlo run. Then runs ``landuse run small.yaml`` as a separate process, once to warm the numba
cache, and ``--repeat`` times each with every output (``--outputs all``) and with the maps only
(``--outputs maps``). Wall time is the whole process (interpreter start, imports, run, exit); peak memory is the
process's maximum resident set (``wait4``); the stage times are those the run records in ``manifest.json``, and
``startup`` is the wall time the run does not record (interpreter, imports, exit), ``other`` the run's time outside
the named stages (zone grid, manifest, ...).

    python benchmarks/small_region.py [--region DIR] [--size N] [--repeat R] [--outputs all maps ...]

Prints a table (median of the repeats per stage) and one JSON line. Figures depend on the machine and its load;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

STAGES = ("read", "suitability", "zone_table", "allocate", "compare_coordination", "grow", "boundary", "evaluate",
          "write")


def make_region(region: Path, size: int) -> Path:
    """The sample region in ``region`` (generated when missing) and its one-period scenario ``small.yaml``."""
    if not (region / "sample.yaml").exists():
        subprocess.run([sys.executable, "-m", "landuse", "sample", str(region), "--size", str(size),
                        "--cell-size", "30"], check=True, stdout=subprocess.DEVNULL)
    d = yaml.safe_load((region / "sample.yaml").read_text())
    layers = {k: v for k, v in d["layers"].items() if k not in ("cities", "counties")}
    small = {
        "name": "small",
        "description": f"{size} x {size} sample region (30 m), one period, one run (benchmarks/small_region.py)",
        "layers": layers,
        "classes": d.get("classes", "default"),
        "periods": [2020, 2025],
        "demand": {"residential": {2025: 200.0}, "industrial": {2025: 100.0}, "commercial": {2025: 50.0}},
        "policy": d.get("policy", {}),
        "growth": {"seed": 42, "runs": 1},
        "outputs": {"folder": "outputs_small"},
    }
    path = region / "small.yaml"
    path.write_text(yaml.safe_dump(small, sort_keys=False))
    return path


def run_once(config: Path, out: Path, outputs: str) -> dict:
    """One ``landuse run`` process: wall seconds, peak RSS (MB), stage times from its manifest."""
    cmd = [sys.executable, "-m", "landuse", "run", str(config), "--quiet", "--force", "--out", str(out),
           "--outputs", outputs]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: a policy check failed, the run is complete
        raise SystemExit(f"landuse run failed ({code}): {err[-2000:]}")
    timings = json.loads((out / "manifest.json").read_text())["timings_s"]
    stages = {s: sum(v for k, v in timings.items() if k == s or k.startswith(f"{s}_")) for s in STAGES}
    stages["other"] = timings["total"] - sum(stages.values())  # zones, manifest, ... (inside the run, no stage)
    stages["startup"] = wall - timings["total"]
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "stages": stages,
            "files": len(json.loads((out / "manifest.json").read_text())["files"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--region", type=Path, default=Path("/tmp/landuse_small_region"),
                    help="folder of the region (generated when it has no sample.yaml)")
    ap.add_argument("--size", type=int, default=2000, help="grid edge in cells when generating")
    ap.add_argument("--repeat", type=int, default=3, help="runs per output set (median reported)")
    ap.add_argument("--outputs", nargs="+", default=["all", "maps"], help="output sets to compare")
    args = ap.parse_args()
    config = make_region(args.region, args.size)
    out = args.region / "outputs_small"
    run_once(config, out, "maps")  # warm the numba cache and the file cache
    results = {}
    for outputs in args.outputs:
        reps = [run_once(config, out, outputs) for _ in range(args.repeat)]
        med = {k: statistics.median(r["stages"][k] for r in reps) for k in (*STAGES, "other", "startup")}
        results[outputs] = {"wall_s": statistics.median(r["wall_s"] for r in reps),
                            "peak_rss_mb": max(r["peak_rss_mb"] for r in reps), "files": reps[0]["files"],
                            "stages_s": med, "walls_s": [round(r["wall_s"], 2) for r in reps]}
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()
    print(f"landuse run {config} ({args.size} x {args.size}), median of {args.repeat}; "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cpus")
    names = list(results)
    print(f"{'stage':<22}" + "".join(f"{'--outputs ' + n:>18}" for n in names))
    for s in ("startup", *STAGES, "other"):
        print(f"{s:<22}" + "".join(f"{results[n]['stages_s'][s]:>17.2f}s" for n in names))
    print(f"{'whole process':<22}" + "".join(f"{results[n]['wall_s']:>17.2f}s" for n in names))
    print(f"{'peak RSS':<22}" + "".join(f"{results[n]['peak_rss_mb']:>15.0f} MB" for n in names))
    print(f"{'files written':<22}" + "".join(f"{results[n]['files']:>18d}" for n in names))
    print(json.dumps({"benchmark": "small_region", "size": args.size, "repeat": args.repeat,
                      "load": [round(x, 2) for x in load],
                      "results": {n: {**r, "wall_s": round(r["wall_s"], 3), "peak_rss_mb": round(r["peak_rss_mb"]),
                                      "stages_s": {k: round(v, 3) for k, v in r["stages_s"].items()}}
                                  for n, r in results.items()}}))


if __name__ == "__main__":
    main()
