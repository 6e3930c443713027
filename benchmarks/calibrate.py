"""Benchmark: calibration of the sample cluster (or --config) against its history.

    python benchmarks/calibrate.py [--quick] [--budget N] [--runs R] [--modes threads,dask] [--seeds 0,1,2]
                                   [--amounts allocator|observed_zone|cluster] [--finalists F] [--no-refine]

Runs `landuse.calibration.search.calibrate` on configs/sample.yaml (1000 x 1000 cells) with the
default budget (``calibration.budget``) in each parallel mode — points one after another
on the engine's numba threads, and two at a time on a loopback Dask LocalCluster of two
single-threaded workers — checks that both give the same table, and prints the FoM
reached, the FoM of the uncalibrated default and of the null model, and the time.
With several ``--seeds`` (threads only) it calibrates once per seed and prints the chosen parameters, their
spread and the FoM of each seed: is the search stable? ``--amounts`` overrides ``calibration.amounts``;
``--finalists 1 --no-refine`` is the search without its stabilising steps (the best search point, re-run).
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
    ap.add_argument("--seeds", default=None, help="comma-separated seeds: calibrate once per seed (threads)")
    ap.add_argument("--amounts", default=None, choices=("allocator", "observed_zone", "cluster"))
    ap.add_argument("--finalists", type=int, default=None, help="calibration.finalists")
    ap.add_argument("--no-refine", action="store_true", help="calibration.refine: false")
    args = ap.parse_args()

    import numba

    from landuse.calibration.search import calibrate
    from landuse.calibration.setup import historical_setup
    from landuse.core.config import load_scenario
    from landuse.io.rasters import read_landscape

    t = time.perf_counter()
    scenario = load_scenario(args.config)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    setup = historical_setup(ds, scenario, amounts=args.amounts)
    t_setup = time.perf_counter() - t
    rows, cols = setup.before.shape
    cal = scenario.config.calibration
    budget = args.budget or (12 if args.quick else cal.budget)
    runs = args.runs or (2 if args.quick else cal.runs)
    print(f"sample {rows} x {cols} cells, {setup.before_year} -> {setup.after_year}: "
          f"{setup.observed_change_cells} observed urban gains given as {setup.amounts} amounts in "
          f"{setup.targets['zone'].nunique()} zones (unreachable observed gain: {setup.unreachable['cells']} cells, "
          f"{100 * setup.unreachable['share']:.1f} %); set-up {t_setup:.2f} s; load {os.getloadavg()[0]:.2f}; "
          f"numba threads {numba.get_num_threads()}, cpus {os.cpu_count()}", flush=True)
    # warm the compiled kernels so the first mode does not pay for compilation
    t = time.perf_counter()
    setup.evaluate({}, runs=1, seed=0)
    print(f"warm-up simulation {time.perf_counter() - t:.2f} s", flush=True)

    figures: dict[str, object] = {"bench": "calibrate", "config": args.config.name, "cells": rows * cols,
                                  "budget": budget, "runs": runs, "finalists": args.finalists or cal.finalists,
                                  "refine": cal.refine and not args.no_refine,
                                  "amounts": setup.amounts, "unreachable_share": round(setup.unreachable["share"], 4),
                                  "observed_change_cells": setup.observed_change_cells, "setup_s": round(t_setup, 3)}
    if args.seeds:
        seeds = [int(x) for x in args.seeds.split(",")]
        per = []
        for sd in seeds:
            t = time.perf_counter()
            res = calibrate(setup, budget=budget, runs=runs, seed=sd, objective=cal.objective, parallel="threads",
                            finalists=args.finalists, refine=False if args.no_refine else None)
            v = res.validation
            per.append({"seed": sd, "seconds": round(time.perf_counter() - t, 1), "best": res.best,
                        "fom_search_best": round(res.search_best_objective, 4),
                        "fom_chosen": round(res.best_objective, 4), "fom_calibrated": round(v["calibrated"]["fom"], 4),
                        "fom_default": round(v["default"]["fom"], 4), "fom_null": round(v["null"]["fom"], 4),
                        "at_edge": res.info["at_edge"]})
            print(f"seed {sd}: {per[-1]}", flush=True)
        spread = {}
        for k in per[0]["best"]:
            vals = [p["best"][k] for p in per]
            spread[k] = sorted({bool(x) for x in vals}) if isinstance(vals[0], bool) else [min(vals), max(vals)]
        foms = [p["fom_calibrated"] for p in per]
        print(f"spread over seeds {seeds}: {spread}; FoM (fresh seeds) {min(foms):.4f} - {max(foms):.4f}")
        figures.update({"seeds": seeds, "per_seed": per, "parameter_spread": spread,
                        "fom_calibrated_range": [min(foms), max(foms)]})
        print(json.dumps(figures))
        return
    tables = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        t = time.perf_counter()
        res = calibrate(setup, budget=budget, runs=runs, seed=cal.seed, objective=cal.objective, parallel=mode,
                        finalists=args.finalists, refine=False if args.no_refine else None)
        secs = time.perf_counter() - t
        tables[mode] = res.table
        v = res.validation
        print(f"[{mode}] {len(res.table)} points x {runs} runs in {secs:.1f} s "
              f"({secs / len(res.table):.2f} s per point, including the Bayesian steps and the final re-runs)")
        print(f"[{mode}] FoM: search best {res.search_best_objective:.4f}, chosen on the finalists' seeds "
              f"{res.best_objective:.4f}; fresh seeds: calibrated "
              f"{v['calibrated']['fom']:.4f} (representative run {v['calibrated_map']['fom']:.4f}), "
              f"uncalibrated default {v['default']['fom']:.4f}, null model {v['null']['fom']:.4f}", flush=True)
        print(f"[{mode}] calibrated: " + ", ".join(f"{k}={x}" for k, x in res.best.items()), flush=True)
        figures[f"{mode}_s"] = round(secs, 2)
        figures["fom_search_best"] = round(res.search_best_objective, 4)
        figures["fom_chosen"] = round(res.best_objective, 4)
        figures["at_edge"] = res.info["at_edge"]
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
