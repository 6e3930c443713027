"""Benchmark: `landuse sleuth` against the SLEUTH 3.0beta_p01 C program on the demo200 data.

Workloads (as in the data README): test mode 100 runs for each of the three reference
coefficient sets, predict 100 runs (2/5/20/51/5), and calibration over the 243-set grid
(each coefficient 0->1, 50, 100) with 2 runs. Every figure is a whole process (start-up
included) measured with numba's cache warm (one untimed warm-up run first).

With ``--sleuth-binary PATH`` the C program runs side by side on the same scenarios (in a
temporary SLEUTH folder layout, each repetition right after ours); otherwise the ratios
use the C timings recorded in the data README. ``--quick`` runs 10 Monte Carlo runs and the
32-set grid (0/100) with 1 run, comparing with the recorded timings scaled by the amount
of work.

Start-up floor: the script also times processes that do no SLEUTH work (``python -c
pass``, ``import numba``, ``landuse sleuth --help``, importing the SLEUTH module plus
importing the CLI and the SLEUTH module plus loading one cached kernel (``first_kernel``,
what a run pays before its first simulated year)) and reports each
workload's speed-up with that floor taken off too, labelled
``*_speedup_excl_startup``. The load average is printed, since other work on the machine
slows every figure.

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
DEFAULT_DATA = ROOT / "tests" / "data" / "sleuth_demo200"  # a copy of the shared demo200 data set
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
    env = env if env is not None else _ENV
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return dt


_ENV: dict | None = None  # environment of landuse processes (None: inherited)
_FIRST_KERNEL = (
    "import landuse.cli.app; from landuse.sleuth import model as S; "
    "S.slope_weights(slope_resistance=50.0, critical_slope=21.0)"
)


def _floors(repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` times of processes that do no SLEUTH work."""
    py = sys.executable
    cmds = {
        "python": [py, "-c", "pass"],
        "import_numba": [py, "-c", "import numba"],
        "cli_help": [py, "-m", "landuse", "sleuth", "--help"],
        "first_kernel": [py, "-c", _FIRST_KERNEL],
    }
    return {k: min(_time(c, ROOT) for _ in range(max(repeat, 3))) for k, c in cmds.items()}


def _stats(values: list[float]) -> tuple[float, float]:
    v = sorted(values)
    return v[0], v[len(v) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sleuth-binary", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions per workload (best and median kept)")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"demo data not found at {args.data}; pass --data")
    figures: dict[str, object] = {"bench": "sleuth", "quick": args.quick, "cpus": os.cpu_count(),
                                  "repeat": args.repeat, "loadavg_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    ours_cmd = [sys.executable, "-m", "landuse", "sleuth"]  # what the `landuse` command runs
    with tempfile.TemporaryDirectory(prefix="sleuth_bench_") as tmpdir:
        tmp = Path(tmpdir)
        scen = _scenarios(args.data, args.quick)
        # warm numba's cache (untimed)
        wt = scen["test_2_5_20_51_5"][0]
        warm = _layout(tmp, args.data, "warm", _set(wt, "MONTE_CARLO_ITERATIONS", "2"))
        _time([*ours_cmd, str(warm), "--mode", "test"], tmp / "Scenarios")
        _time([*ours_cmd, str(warm), "--mode", "predict", "--runs", "2"], tmp / "Scenarios")
        floors = _floors(args.repeat)
        floor = floors["first_kernel"]
        print("start-up floor (best of runs): " + ", ".join(f"{k} {v:.3f} s" for k, v in floors.items()), flush=True)
        for k, v in floors.items():
            figures[f"floor_{k}_s"] = round(v, 3)
        worst = worst_excl = float("inf")
        for name, (text, mode, work) in scen.items():
            path = _layout(tmp, args.data, name, text)
            ours_all: list[float] = []
            c_all: list[float] = []
            for _ in range(args.repeat):
                ours_all.append(_time([*ours_cmd, str(path), "--mode", mode], tmp / "Scenarios"))
                if args.sleuth_binary:
                    c_all.append(_time([str(args.sleuth_binary.resolve()), mode, path.name], tmp / "Scenarios"))
            ours, ours_med = _stats(ours_all)
            if args.sleuth_binary:
                c_time, c_med = _stats(c_all)
                source = "measured"
            else:
                c_time = c_med = RECORDED_C[name] * work
                source = "recorded" if work == 1 else "recorded x work"
            ratio = c_time / ours
            ratio_excl = c_time / max(ours - floor, 1e-3)
            worst = min(worst, ratio)
            worst_excl = min(worst_excl, ratio_excl)
            print(f"{name:24s} {mode:9s} landuse {ours:6.2f} s (median {ours_med:6.2f})   C {c_time:6.2f} s "
                  f"(median {c_med:6.2f}, {source})   speed-up {ratio:5.1f}x   excluding start-up "
                  f"({ours - floor:5.2f} s) {ratio_excl:5.1f}x", flush=True)  # fmt: skip
            figures[f"{name}_landuse_s"] = round(ours, 3)
            figures[f"{name}_landuse_median_s"] = round(ours_med, 3)
            figures[f"{name}_c_s"] = round(c_time, 3)
            figures[f"{name}_c_median_s"] = round(c_med, 3)
            figures[f"{name}_speedup"] = round(ratio, 2)
            figures[f"{name}_speedup_excl_startup"] = round(ratio_excl, 2)
        figures["c_source"] = "measured" if args.sleuth_binary else "recorded"
        figures["min_speedup"] = round(worst, 2)
        figures["min_speedup_excl_startup"] = round(worst_excl, 2)
        figures["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
