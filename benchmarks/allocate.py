"""Benchmark the allocation LP: build and solve times for 1 000, 10 000 and 100 000 zones x 3 types.

All constraints are on: cluster demand per type, capacity per zone and source, a
farmland-loss cap, a per-city open-space quota, TOD, jobs-housing balance per city and
per-city growth limits. The zone table is synthetic (seeded): five source classes
(farmland, three open-space classes, bare), 15 % of zones near a station, one city per
1 000 zones.

Paths measured
--------------
* ``highs-direct-ipm``: sparse matrix (numpy/scipy) handed to highspy, interior point
  + crossover (what ``allocation.solver: highs`` does by default);
* ``highs-direct-simplex``: the same with dual simplex (small sizes only);
* ``pulp-cbc``: the same matrix turned into a PuLP model and solved by CBC (the
  default ``allocation.solver: cbc``); PuLP model building is timed separately;
* ``pulp-highs-ipm``: PuLP model solved by HiGHS through PuLP (small sizes only).

Usage: ``python benchmarks/allocate.py [--quick]``. Prints figures as it goes and ends
with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from landuse.allocate import _solve_highs_direct, _solve_pulp, allocate, build_model, build_pulp_problem
from landuse.config import scenario_from_dict


def synthetic_zone_table(n_zones: int, *, seed: int = 0) -> pd.DataFrame:
    """A seeded zone table with ``n_zones`` 1-km zones of 1-ha cells."""
    rng = np.random.default_rng(seed)
    n_city = max(2, n_zones // 1000)
    city = np.sort(rng.integers(1, n_city + 1, n_zones))
    area = np.full(n_zones, 100.0)
    frac = rng.dirichlet([3.0, 1.0, 0.7, 0.3, 0.5, 1.5, 0.6], n_zones)  # farm, forest, grass, wet, bare, urban, water
    cells = np.round(frac * 100.0)
    zero = rng.random((n_zones, 7)) < 0.35  # many zones lack some classes
    cells = np.where(zero, 0.0, cells)
    blocked = rng.random((n_zones, 5)) * 0.5  # red line, permanent farmland ... remove part of each source
    cap = np.floor(cells[:, :5] * (1.0 - blocked))
    near_zone = rng.random(n_zones) < 0.15
    near = np.floor(cap * np.where(near_zone, rng.random(n_zones), 0.0)[:, None])
    names = ["farmland", "forest", "grassland", "wetland", "bare"]
    zt = pd.DataFrame({"zone": np.arange(1, n_zones + 1), "city": city, "cells": 100, "area_ha": area})
    zt["land_ha"] = area - cells[:, 6]
    zt["open_space_ha"] = cells[:, 1:4].sum(axis=1)
    zt["urban_ha"] = cells[:, 5]
    for i, n in enumerate(names):
        zt[f"cap_{n}_ha"] = cap[:, i]
        zt[f"tod_{n}_ha"] = near[:, i]
    for t in ("residential", "industrial", "commercial"):
        zt[f"suit_{t}"] = rng.random(n_zones).astype(np.float32)
    zt["dist_urban_m"] = rng.gamma(2.0, 600.0, n_zones)
    zt["dist_station_m"] = rng.gamma(2.0, 3000.0, n_zones)
    zt["dist_centre_m"] = rng.gamma(2.0, 5000.0, n_zones)
    zt.attrs["cell_area_ha"] = 1.0
    return zt


def scenario_for(zt: pd.DataFrame):
    total_cap = float(zt.filter(like="cap_").to_numpy().sum())
    d = 0.04 * total_cap  # demand: 4 % of developable land
    n_city = int(zt.city.max())
    return scenario_from_dict({
        "name": "bench", "layers": {"landuse": "landuse.tif"}, "periods": [2020, 2030],
        "demand": {"residential": {2030: 0.6 * d}, "industrial": {2030: 0.25 * d}, "commercial": {2030: 0.15 * d}},
        "policy": {
            "open_space_quota": {"share": 0.10, "unit": "city"},
            "farmland_loss_cap": {"hectares": 0.7 * d},
            "tod": {"radius_m": 800, "share": 0.3},
            "jobs_housing": {"min": 0.2, "max": 2.0},
            "city_growth_limits": {c: 0.1 * d for c in range(1, n_city + 1, 3)},
        },
        "allocation": {"solver": "highs"},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    args = ap.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    fig: dict[str, object] = {"bench": "allocate", "quick": args.quick}
    for n in sizes:
        zt = synthetic_zone_table(n, seed=1)
        sc = scenario_for(zt)
        m = build_model(zt, sc, 2030)
        t0 = time.perf_counter()
        m = build_model(zt, sc, 2030)
        build = time.perf_counter() - t0
        print(f"{n:>7} zones: {m.n_cols} variables, {m.n_rows} rows ({len(m.rows)} policy rows); "
              f"matrix build {build:.3f} s", flush=True)
        fig[f"z{n}_variables"] = m.n_cols
        fig[f"z{n}_rows"] = m.n_rows
        fig[f"z{n}_build_s"] = round(build, 4)
        s = _solve_highs_direct(m, method="ipm", time_limit=300)
        obj = float(m.cost @ s.x)
        print(f"    highs direct ipm+crossover: solve {s.seconds:.2f} s, build+solve {build + s.seconds:.2f} s, "
              f"objective {obj:.6f}", flush=True)
        fig[f"z{n}_highs_ipm_solve_s"] = round(s.seconds, 3)
        fig[f"z{n}_highs_ipm_total_s"] = round(build + s.seconds, 3)
        t0 = time.perf_counter()
        a = allocate(zt, sc, 2030, solver="highs")
        t_api = time.perf_counter() - t0
        print(f"    allocate(solver='highs') end to end incl. results and rounding: {t_api:.2f} s", flush=True)
        fig[f"z{n}_allocate_highs_s"] = round(t_api, 3)
        assert abs(a.objective - obj) <= 1e-6 * max(1.0, abs(obj))
        if n <= 10_000:
            s2 = _solve_highs_direct(m, method="simplex", time_limit=300)
            print(f"    highs direct dual simplex: solve {s2.seconds:.2f} s", flush=True)
            fig[f"z{n}_highs_simplex_solve_s"] = round(s2.seconds, 3)
        if n <= 10_000 or not args.quick:
            t0 = time.perf_counter()
            build_pulp_problem(m)
            tp = time.perf_counter() - t0
            print(f"    PuLP model from the matrix: {tp:.2f} s", flush=True)
            fig[f"z{n}_pulp_build_s"] = round(tp, 3)
            s3 = _solve_pulp(m, solver="cbc", time_limit=600, method="ipm")
            print(f"    PuLP + CBC: build+write+solve {s3.seconds:.2f} s (status {s3.status}, "
                  f"objective {float(m.cost @ s3.x):.6f})", flush=True)
            fig[f"z{n}_pulp_cbc_total_s"] = round(s3.seconds + build, 3)
        if n <= 10_000:
            s4 = _solve_pulp(m, solver="highs", time_limit=600, method="ipm")
            print(f"    PuLP + HiGHS ipm: build+solve {s4.seconds:.2f} s", flush=True)
            fig[f"z{n}_pulp_highs_ipm_total_s"] = round(s4.seconds + build, 3)
    fig["chosen"] = "highs-direct-ipm for large instances (allocation.solver: highs); cbc via PuLP default"
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
