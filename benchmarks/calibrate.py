"""Benchmark: calibration of the sample cluster against its 2010 -> 2020 change.

    python benchmarks/calibrate.py [--quick] [--budget N] [--runs R] [--modes threads,dask]

Runs `landuse.calibrate.calibrate` on configs/sample.yaml (1000 x 1000 cells) with the
default budget (``calibration.budget``) in each parallel mode — points one after another
on the engine's numba threads, and two at a time on a loopback Dask LocalCluster of two
single-threaded workers — checks that both give the same table, and prints the FoM
reached, the FoM of the uncalibrated default and of the null model, and the time.
``--quick`` uses a small budget and two runs per point. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small budget, two runs per point")
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--modes", default="threads,dask", help="comma-separated: threads, dask")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "sample.yaml")
    args = ap.parse_args()

    import numba

    from landuse.calibrate import calibrate, historical_setup
    from landuse.config import load_scenario
    from landuse.io import read_landscape

    t = time.perf_counter()
    scenario = load_scenario(args.config)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    setup = historical_setup(ds, scenario)
    t_setup = time.perf_counter() - t
    rows, cols = setup.before.shape
    cal = scenario.config.calibration
    budget = args.budget or (12 if args.quick else cal.budget)
    runs = args.runs or (2 if args.quick else cal.runs)
    print(f"sample {rows} x {cols} cells, {setup.before_year} -> {setup.after_year}: "
          f"{setup.observed_change_cells} observed urban gains in {setup.targets['zone'].nunique()} zones; "
          f"set-up {t_setup:.2f} s; numba threads {numba.get_num_threads()}, cpus {os.cpu_count()}", flush=True)
    # warm the compiled kernels so the first mode does not pay for compilation
    t = time.perf_counter()
    setup.evaluate({}, runs=1, seed=0)
    print(f"warm-up simulation {time.perf_counter() - t:.2f} s", flush=True)

    figures: dict[str, object] = {"bench": "calibrate", "cells": rows * cols, "budget": budget, "runs": runs,
                                  "observed_change_cells": setup.observed_change_cells, "setup_s": round(t_setup, 3)}
    tables = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        t = time.perf_counter()
        res = calibrate(setup, budget=budget, runs=runs, seed=cal.seed, objective=cal.objective, parallel=mode)
        secs = time.perf_counter() - t
        tables[mode] = res.table
        v = res.validation
        print(f"[{mode}] {len(res.table)} points x {runs} runs in {secs:.1f} s "
              f"({secs / len(res.table):.2f} s per point, including the Bayesian steps and the final re-runs)")
        print(f"[{mode}] FoM: search best {res.best_objective:.4f}; fresh seeds: calibrated "
              f"{v['calibrated']['fom']:.4f} (representative run {v['calibrated_map']['fom']:.4f}), "
              f"uncalibrated default {v['default']['fom']:.4f}, null model {v['null']['fom']:.4f}", flush=True)
        print(f"[{mode}] calibrated: " + ", ".join(f"{k}={x}" for k, x in res.best.items()), flush=True)
        figures[f"{mode}_s"] = round(secs, 2)
        figures["fom_search_best"] = round(res.best_objective, 4)
        figures["fom_calibrated"] = round(v["calibrated"]["fom"], 4)
        figures["fom_calibrated_map"] = round(v["calibrated_map"]["fom"], 4)
        figures["fom_default"] = round(v["default"]["fom"], 4)
        figures["fom_null"] = round(v["null"]["fom"], 4)
        figures["ksim_calibrated"] = round(v["calibrated"]["kappa_simulation"], 4)
        figures["ksim_default"] = round(v["default"]["kappa_simulation"], 4)
        figures["ksim_null"] = round(v["null"]["kappa_simulation"], 4)
    if len(tables) == 2:
        a, b = tables.values()
        same = a.equals(b)
        figures["modes_identical"] = bool(same)
        fast = min((k for k in figures if k.endswith("_s") and k != "setup_s"), key=lambda k: figures[k])
        figures["faster"] = fast[:-2]
        print(f"tables identical across modes: {same}; faster: {fast[:-2]} "
              f"(threads {figures['threads_s']} s, dask {figures['dask_s']} s)")
    figures["within_5_min"] = bool(all(figures[k] <= 300 for k in ("threads_s", "dask_s") if k in figures))
    print(json.dumps(figures))


if __name__ == "__main__":  # the Dask workers start by spawning; keep module import side-effect free
    sys.exit(main())
