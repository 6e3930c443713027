"""Benchmark: hindcast on the SLEUTH demo200 data — fitted on 1930 -> 1970, predicting 1970 -> 1990.

    python benchmarks/hindcast.py [--quick] [--seeds 0,1,2] [--quantities cluster|zone] [--budget N] [--runs R]
                                  [--amounts allocator|cluster] [--patch-weight W] [--no-refine] [--set KEY=VALUE]

Runs `landuse.calibration.hindcast.hindcast` on configs/demo200.yaml (200 x 200 cells, one urban class; rasters in
rasters/demo200, see its README) once per seed: the growth parameters and the trained suitability are fitted
on 1930 -> 1970, the 1990 amount of urban gain is given cluster-wide (default) and the model's representative
run, its expected map and the three null models (distance, logistic, random) are scored against 1990 in the
same run. Prints the table per seed, the calibrated parameters of each seed and their spread (is the search
stable? is a parameter at the edge of its range?), the mean built-gain FoM of each map over the seeds, and the
model's margin over the best null. ``--amounts``, ``--patch-weight``, ``--no-refine`` and ``--set`` (a dotted
scenario key, e.g. ``--set calibration.parameters.iterations=[2,200]``) change the scenario for a variant.
``--quick`` runs one seed with a small budget. Ends with one JSON line.
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
    ap.add_argument("--amounts", choices=("allocator", "cluster"), default=None,
                    help="calibration.amounts (default: the scenario's)")
    ap.add_argument("--patch-weight", type=float, default=None, help="calibration.patch_weight")
    ap.add_argument("--no-refine", action="store_true", help="calibration.refine: false")
    ap.add_argument("--prediction-runs", type=int, default=None,
                    help="Monte Carlo runs of the prediction (default: the calibration's runs)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a dotted scenario key and a YAML value, e.g. calibration.finalists=1")
    args = ap.parse_args()

    import yaml

    from landuse.calibration.hindcast import NULL_MODELS, hindcast
    from landuse.core.config import Scenario, load_scenario
    from landuse.io.rasters import read_landscape

    scenario = load_scenario(args.config)
    sets = list(args.set)
    if args.amounts:
        sets.append(f"calibration.amounts={args.amounts}")
    if args.patch_weight is not None:
        sets.append(f"calibration.patch_weight={args.patch_weight}")
    if args.no_refine:
        sets.append("calibration.refine=false")
    if sets:
        data = scenario.config.model_dump()
        for item in sets:
            key, _, raw = item.partition("=")
            *path, last = key.split(".")
            node = data
            for part in path:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            node[last] = yaml.safe_load(raw)
        scenario = Scenario(type(scenario.config).model_validate(data), path=scenario.path,
                            base_dir=scenario.base_dir)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    budget = args.budget or (12 if args.quick else None)
    runs = args.runs or (4 if args.quick else None)
    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.config.name}, "
          f"{args.quantities} amounts, seeds {seeds}", flush=True)
    per_seed = []
    fits = []
    t = time.perf_counter()
    for seed in seeds:
        r = hindcast(ds, scenario, t0=args.t0, t1=args.t1, quantities=args.quantities, budget=budget, runs=runs,
                     seed=seed, prediction_runs=args.prediction_runs)
        tab = r.table()
        print(f"\nseed {seed}: fitted {r.years[0]} -> {r.years[1]}, predicted {r.years[1]} -> {r.years[2]}, "
              f"amounts {r.amounts}, {r.prediction.seconds:.1f} s", flush=True)
        cols = ["map", "fom", "hits", "misses", "false_alarms", "quantity_dis", "allocation_dis", "kappa_sim",
                "lee_sallee", "fom_w4", "fom_w16"]
        print(tab[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"), flush=True)
        cal = r.prediction.calibration
        print(f"calibrated ({cal['amounts']} amounts, unreachable gain {100 * cal['unreachable']['share']:.1f} %): "
              f"{r.prediction.calibrated}; fit FoM {cal['fom_calibrated']:.4f} (default {cal['fom_default']:.4f}, "
              f"null {cal['fom_null']:.4f}); at the edge: {cal['at_edge'] or 'none'}; "
              f"suitability AUC {r.prediction.suitability.get('auc_blocked')}", flush=True)
        per_seed.append({name: s["built_gain"] | {"quantity": s["quantity_disagreement"],
                                                  "allocation": s["allocation_disagreement"]}
                         for name, s in r.scores.items()})
        fits.append({"calibrated": r.prediction.calibrated, "fit_fom": cal["fom_calibrated"],
                     "at_edge": cal["at_edge"], "patches": cal["patches"]})
    seconds = time.perf_counter() - t
    print(f"\ncalibrated parameters over {len(seeds)} seed(s) (fit FoM with fresh seeds):")
    for seed, f in zip(seeds, fits, strict=True):
        print(f"  seed {seed}: {f['calibrated']}  fit FoM {f['fit_fom']:.4f}  at the edge: {f['at_edge'] or 'none'}")
    spread = {}
    for k in fits[0]["calibrated"]:
        v = [f["calibrated"][k] for f in fits]
        spread[k] = [min(v), max(v)] if not isinstance(v[0], bool) else sorted({bool(x) for x in v})
    fit_fom = [f["fit_fom"] for f in fits]
    print(f"  range: {spread}; fit FoM {min(fit_fom):.4f} - {max(fit_fom):.4f}")
    p = fits[-1]["patches"]
    print(f"  new patches of the fit interval (seed {seeds[-1]}): observed {p['observed']}, calibrated "
          f"{p['calibrated']}, default {p['default']}")
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
           "amounts": scenario.config.calibration.amounts, "patch_weight": scenario.config.calibration.patch_weight,
           "settings": sets, "parameter_spread": spread, "fit_fom": fit_fom, "per_seed": per_seed, "fits": fits}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
