"""Benchmark: `landuse sleuth` against the SLEUTH 3.0beta_p01 C program on the demo200 data.

Workloads (as in the data README): test mode 100 runs for each of the three reference
coefficient sets, predict 100 runs (2/5/20/51/5), and calibration over the 243-set grid
(each coefficient 0->1, 50, 100) with 2 runs. Every figure is a whole process (start-up
included) measured with numba's cache warm (one untimed warm-up run first).

With ``--sleuth-binary PATH`` the C program runs side by side on the same scenarios (in a
temporary SLEUTH folder layout); otherwise the ratios use the C timings recorded in the
data README. ``--quick`` runs 10 Monte Carlo runs and the 32-set grid (0/100) with 1 run,
comparing with the recorded timings scaled by the amount of work.

Usage: python benchmarks/sleuth.py [--quick] [--sleuth-binary PATH] [--data DIR] [--repeat N]
Prints figures as it goes and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sleuth_demo200"
RECORDED_C = {
    "test_5_5_10_95_5": 22.0,
    "test_2_5_20_51_5": 23.1,
    "test_50_50_50_50_50": 38.1,
    "predict_2_5_20_51_5": 6.3,
    "calibrate_243x2": 71.4,
}


def _set(text: str, key: str, value: str) -> str:
    pat = re.compile(rf"^{re.escape(key)}=.*$", re.M)
    if pat.search(text):
        return pat.sub(f"{key}={value}", text)
    return text + f"\n{key}={value}\n"


def _scenarios(data: Path, quick: bool) -> dict[str, tuple[str, str, int]]:
    """name -> (scenario text, mode, work units relative to the full workload)."""
    out = {}
    runs = 10 if quick else 100
    for name in ("test_5_5_10_95_5", "test_2_5_20_51_5", "test_50_50_50_50_50"):
        text = (data / "reference" / name / "scenario").read_text(encoding="latin-1")
        out[name] = (_set(text, "MONTE_CARLO_ITERATIONS", str(runs)), "test", runs / 100)
    text = (data / "reference" / "predict_2_5_20_51_5" / "scenario").read_text(encoding="latin-1")
    out["predict_2_5_20_51_5"] = (_set(text, "MONTE_CARLO_ITERATIONS", str(runs)), "predict", runs / 100)
    text = (data / "scenarios" / "scenario.demo200_calibrate").read_text(encoding="latin-1")
    text = re.sub(r"^LANDUSE_DATA=.*$", "", text, flags=re.M)  # urban growth only
    step = "100" if quick else "50"
    for c in ("DIFFUSION", "BREED", "SPREAD", "SLOPE", "ROAD"):
        text = _set(text, f"CALIBRATION_{c}_START", "0")
        text = _set(text, f"CALIBRATION_{c}_STEP", step)
        text = _set(text, f"CALIBRATION_{c}_STOP", "100")
    n_mc = 1 if quick else 2
    text = _set(text, "MONTE_CARLO_ITERATIONS", str(n_mc))
    sets = 32 if quick else 243
    out["calibrate_243x2"] = (text, "calibrate", sets * n_mc / (243 * 2))
    return out


def _layout(tmp: Path, data: Path, name: str, text: str) -> Path:
    """A SLEUTH folder layout: Scenarios/<name>, Input/demo200 -> data/input, Output/<name>/."""
    (tmp / "Scenarios").mkdir(parents=True, exist_ok=True)
    (tmp / "Input").mkdir(exist_ok=True)
    link = tmp / "Input" / "demo200"
    if not link.exists():
        link.symlink_to(data / "input")
    out = tmp / "Output" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    text = _set(text, "INPUT_DIR", "../Input/demo200/")
    text = _set(text, "OUTPUT_DIR", f"../Output/{name}/")
    text = _set(text, "ECHO(YES/NO)", "no")
    path = tmp / "Scenarios" / f"scenario.{name}"
    path.write_text(text, encoding="latin-1")
    return path


def _time(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sleuth-binary", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=1, help="timed repetitions per workload (best is kept)")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"demo data not found at {args.data}; pass --data")
    figures: dict[str, object] = {"bench": "sleuth", "quick": args.quick, "cpus": os.cpu_count()}
    ours_cmd = [sys.executable, "-m", "landuse.cli", "sleuth"]
    with tempfile.TemporaryDirectory(prefix="sleuth_bench_") as tmpdir:
        tmp = Path(tmpdir)
        scen = _scenarios(args.data, args.quick)
        # warm numba's cache (untimed)
        wt = scen["test_2_5_20_51_5"][0]
        warm = _layout(tmp, args.data, "warm", _set(wt, "MONTE_CARLO_ITERATIONS", "2"))
        _time([*ours_cmd, str(warm), "--mode", "test"], tmp / "Scenarios")
        _time([*ours_cmd, str(warm), "--mode", "predict", "--runs", "2"], tmp / "Scenarios")
        worst = float("inf")
        for name, (text, mode, work) in scen.items():
            path = _layout(tmp, args.data, name, text)
            ours = min(_time([*ours_cmd, str(path), "--mode", mode], tmp / "Scenarios") for _ in range(args.repeat))
            if args.sleuth_binary:
                cbin = str(args.sleuth_binary.resolve())
                c_time = min(_time([cbin, mode, path.name], tmp / "Scenarios") for _ in range(args.repeat))
                source = "measured"
            else:
                c_time = RECORDED_C[name] * work
                source = "recorded" if work == 1 else "recorded x work"
            ratio = c_time / ours
            worst = min(worst, ratio)
            print(f"{name:24s} {mode:9s} landuse {ours:7.2f} s   C {c_time:7.2f} s ({source})   speed-up {ratio:6.1f}x",
                  flush=True)  # fmt: skip
            figures[f"{name}_landuse_s"] = round(ours, 3)
            figures[f"{name}_c_s"] = round(c_time, 3)
            figures[f"{name}_speedup"] = round(ratio, 2)
        figures["c_source"] = "measured" if args.sleuth_binary else "recorded"
        figures["min_speedup"] = round(worst, 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
