"""Benchmark: hindcast on the SLEUTH demo200 data — fitted on 1930 -> 1970, predicting 1970 -> 1990.

    python benchmarks/hindcast.py [--quick] [--seeds 0,1,2] [--quantities cluster|zone] [--budget N] [--runs R]

Runs `landuse.hindcast.hindcast` on configs/demo200.yaml (200 x 200 cells, one urban class; rasters in
rasters/demo200, see its README) once per seed: the growth parameters and the trained suitability are fitted
on 1930 -> 1970, the 1990 amount of urban gain is given cluster-wide (default) and the model's representative
run, its expected map and the three null models (distance, logistic, random) are scored against 1990 in the
same run. Prints the table per seed, the mean built-gain FoM of each map over the seeds, and the model's
margin over the best null. ``--quick`` runs one seed with a small budget. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, small budget")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--quantities", default="cluster", choices=("cluster", "zone"))
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--t0", type=int, default=1930)
    ap.add_argument("--t1", type=int, default=1970)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "demo200.yaml")
    args = ap.parse_args()

    from landuse.config import load_scenario
    from landuse.hindcast import NULL_MODELS, hindcast
    from landuse.io import read_landscape

    scenario = load_scenario(args.config)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    budget = args.budget or (12 if args.quick else None)
    runs = args.runs or (4 if args.quick else None)
    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.config.name}, "
          f"{args.quantities} amounts, seeds {seeds}", flush=True)
    per_seed = []
    t = time.perf_counter()
    for seed in seeds:
        r = hindcast(ds, scenario, t0=args.t0, t1=args.t1, quantities=args.quantities, budget=budget, runs=runs,
                     seed=seed)
        tab = r.table()
        print(f"\nseed {seed}: fitted {r.years[0]} -> {r.years[1]}, predicted {r.years[1]} -> {r.years[2]}, "
              f"amounts {r.amounts}, {r.prediction.seconds:.1f} s", flush=True)
        cols = ["map", "fom", "hits", "misses", "false_alarms", "quantity_dis", "allocation_dis", "kappa_sim",
                "lee_sallee", "fom_w4", "fom_w16"]
        print(tab[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"), flush=True)
        print(f"calibrated: {r.prediction.calibrated}; suitability: {r.prediction.suitability}", flush=True)
        per_seed.append({name: s["built_gain"] | {"quantity": s["quantity_disagreement"],
                                                  "allocation": s["allocation_disagreement"]}
                         for name, s in r.scores.items()})
    seconds = time.perf_counter() - t
    names = list(per_seed[0])
    mean = {n: sum(p[n]["fom"] for p in per_seed) / len(per_seed) for n in names}
    best_null = max(NULL_MODELS, key=lambda n: mean[n])
    print(f"\nmean built-gain FoM over {len(seeds)} seed(s):")
    for n in names:
        lo, hi = min(p[n]["fom"] for p in per_seed), max(p[n]["fom"] for p in per_seed)
        print(f"  {n:<16}{mean[n]:.4f}  (range {lo:.4f} - {hi:.4f})")
    margin = {m: mean[m] / mean[best_null] - 1.0 for m in ("model", "model_expected")}
    beats_each = {m: all(p[m]["fom"] > p[n]["fom"] for p in per_seed for n in NULL_MODELS)
                  for m in ("model", "model_expected")}
    print(f"best null: {best_null}; over it: model {100 * margin['model']:+.1f} %, "
          f"expected map {100 * margin['model_expected']:+.1f} %; beats every null on every seed: {beats_each}")
    out = {"bench": "hindcast", "data": "sleuth_demo200", "fit": f"{args.t0}->{args.t1}", "predict": f"{args.t1}->1990",
           "quantities": args.quantities, "seeds": seeds, "seconds": round(seconds, 1),
           **{f"fom_{n}": round(mean[n], 4) for n in names}, "best_null": best_null,
           "margin_model": round(margin["model"], 4), "margin_expected": round(margin["model_expected"], 4),
           "beats_each_null_model": beats_each["model"], "beats_each_null_expected": beats_each["model_expected"],
           "per_seed": per_seed}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
