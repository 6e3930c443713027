"""Time `landuse run configs/compact.yaml` end to end as whole processes.

The first run pays numba's JIT compilation unless the on-disk cache is warm; the second
reuses the cache. Both are timed as separate processes (wall clock), and the stage
timings of each run are read from its manifest.json.

    python benchmarks/run_pipeline.py [--quick] [--runs 20] [--config configs/compact.yaml] [--cold]

``--cold`` clears landuse's numba cache first so the first run really compiles;
``--quick`` uses 2 Monte Carlo runs. Ends with one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clear_numba_cache() -> int:
    n = 0
    for d in (ROOT / "landuse").rglob("__pycache__"):
        for f in list(d.glob("*.nbi")) + list(d.glob("*.nbc")):
            f.unlink()
            n += 1
    return n


def run_once(config: Path, out: Path, runs: int) -> tuple[float, dict]:
    exe = shutil.which("landuse") or str(Path(sys.executable).with_name("landuse"))
    t = time.perf_counter()
    proc = subprocess.run([exe, "run", str(config), "--out", str(out), "--runs", str(runs), "--quiet", "--force"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"landuse run failed ({proc.returncode}):\n{proc.stderr}")
    manifest = json.loads((out / "manifest.json").read_text())
    return wall, manifest["timings_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(ROOT / "configs" / "compact.yaml"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cold", action="store_true", help="clear the numba cache before the first run")
    args = ap.parse_args()
    runs = 2 if args.quick else args.runs
    cleared = clear_numba_cache() if args.cold else 0
    tmp = Path(tempfile.mkdtemp(prefix="landuse_bench_"))
    print(f"config {args.config}, {runs} Monte Carlo runs, cores {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}" + (f", cleared {cleared} cache files" if args.cold else ""))
    first, t1 = run_once(Path(args.config), tmp / "first", runs)
    print(f"first run  (compiles unless cached): {first:6.1f} s wall; stages: "
          + ", ".join(f"{k} {v:.1f}" for k, v in t1.items() if not k.startswith(("suitability_", "zone_table_"))))
    second, t2 = run_once(Path(args.config), tmp / "second", runs)
    print(f"second run (numba cache warm):       {second:6.1f} s wall; stages: "
          + ", ".join(f"{k} {v:.1f}" for k, v in t2.items() if not k.startswith(("suitability_", "zone_table_"))))
    same = all((tmp / "first" / p.name).read_bytes() == p.read_bytes() for p in (tmp / "second").glob("*.tif"))
    print(f"GeoTIFFs of the two runs byte-identical: {same}")
    grow = sum(v for k, v in t2.items() if k.startswith("grow_"))
    print(json.dumps({"bench": "run_pipeline", "config": Path(args.config).name, "runs": runs,
                      "first_run_s": round(first, 2), "second_run_s": round(second, 2),
                      "second_run_growth_s": round(grow, 2), "second_run_pipeline_s": t2.get("total"),
                      "cold_cache": bool(args.cold), "byte_identical": same,
                      "load_average": round(os.getloadavg()[0], 2)}))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
