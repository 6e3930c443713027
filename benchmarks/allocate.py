"""Benchmark the allocation LP: build and solve times for 1 000, 10 000 and 100 000 zones x 3 types.

All constraints are on: cluster demand per type, capacity per zone and source, a
farmland-loss cap, a per-city open-space quota, TOD, jobs-housing balance per city and
per-city growth limits. The zone table is synthetic (seeded): five source classes
(farmland, three open-space classes, bare), 15 % of zones near a station, one city per
1 000 zones, demand 4 % of the developable land.

Paths measured (same matrix, same objective):

* ``allocate(solver="highs")`` end to end (matrix build, working set priced with the
  duals, HiGHS dual simplex straight from the sparse matrix, results and cell rounding);
* ``allocate(solver="cbc")`` end to end (the same, each working-set round handed to CBC
  as a PuLP model);
* the whole model without the working set: HiGHS dual simplex and interior point
  (+ crossover) from the matrix; PuLP model building; PuLP + CBC (10 000 zones at most);
* a fragmented (city-by-city) allocation and the zone table of a raster.

Usage: ``python benchmarks/allocate.py [--quick] [--zones N ...] [--compare | --infeasible [--baseline]]``.
``--infeasible`` measures a city-by-city plan that cannot be met (found and explained on the merged model),
``--baseline`` adds the whole-model solves that explained it before, in the same process. ``--zones``
measures only those table sizes; ``--compare`` measures only what a run pays per period
for the LPs: the cluster plan (``allocate``, build + solve) and the city-by-city plan
(``compare_coordination`` given the cluster plan, as the pipeline calls it), with their
build and solve seconds. Prints figures as it goes and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from landuse.allocation.coordination import compare_coordination
from landuse.allocation.model import build_model
from landuse.allocation.planner import allocate
from landuse.allocation.solvers import _solve_highs_direct, _solve_pulp, build_pulp_problem
from landuse.core.config import scenario_from_dict


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
            "city_growth_limits": {c: 1.5 * d / n_city for c in range(1, n_city + 1, 3)},
        },
        "allocation": {"solver": "highs"},
    })


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def bench_zone_table(size: int, block: int) -> tuple[int, float]:
    """Zone table of a synthetic size x size landscape of 30 m cells (suitability included)."""
    from affine import Affine

    from landuse.allocation.zone_stats import zone_table
    from landuse.core.classes import default_scheme
    from landuse.core.landscape import new_landscape

    rng = np.random.default_rng(3)
    code = {c.name: c.code for c in default_scheme()}
    pool = np.array([code[n] for n in ("residential", "industrial", "commercial", "farmland", "farmland", "forest",
                                       "grassland", "wetland", "water", "bare")], dtype=np.uint8)
    lu = pool[rng.integers(0, pool.size, (size, size))]
    cities = (np.arange(size)[None, :] * 4 // size + 1).repeat(size, axis=0).astype(np.int32)
    st = np.zeros((size, size), bool)
    st[rng.integers(0, size, 40), rng.integers(0, size, 40)] = True
    ds = new_landscape({"landuse": lu, "cities": cities, "stations": st, "centres": st,
                        "red_line": rng.random((size, size)) < 0.05},
                       crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 30 * size))
    sc = scenario_from_dict({"name": "b", "layers": {"landuse": "l.tif"}, "periods": [2020, 2030],
                             "allocation": {"block_size_m": 30 * block}, "policy": {"tod": {"radius_m": 800}}})
    zt, secs = _timed(zone_table, ds, sc)
    return len(zt), secs


def bench_compare(n: int) -> dict[str, float]:
    """Cluster plan, then the city-by-city plan through compare_coordination (the pipeline's two LPs)."""
    zt = synthetic_zone_table(n, seed=1)
    sc = scenario_for(zt)
    a, t_a = _timed(allocate, zt, sc, 2030, solver="highs")
    print(f"{n:>7} zones: cluster plan {t_a:.2f} s (build {a.build_seconds:.2f} s, solve {a.solve_seconds:.2f} s), "
          f"objective {a.objective:.6f}", flush=True)
    c, t_c = _timed(compare_coordination, zt, sc, 2030, solver="highs", solved=a)
    f = c.fragmented
    print(f"{n:>7} zones: city-by-city via compare_coordination {t_c:.2f} s (build {f.build_seconds:.2f} s, "
          f"solve {f.solve_seconds:.2f} s), objective {f.objective:.6f}, cost of fragmentation "
          f"{c.differences['objective']:.6f}", flush=True)
    return {f"z{n}_cluster_s": round(t_a, 3), f"z{n}_cluster_build_s": round(a.build_seconds, 3),
            f"z{n}_cluster_solve_s": round(a.solve_seconds, 3), f"z{n}_city_s": round(t_c, 3),
            f"z{n}_city_build_s": round(f.build_seconds, 3), f"z{n}_city_solve_s": round(f.solve_seconds, 3),
            f"z{n}_cluster_objective": a.objective, f"z{n}_city_objective": f.objective}


def bench_infeasible(n: int, baseline: bool) -> dict[str, float]:
    """A city-by-city plan that cannot be met (city 2 holds 40 x its urban land, so the split of demand by urban
    area asks it for more than its developable land): ``allocate`` end to end, which finds and explains the
    infeasibility on the merged model, against (``baseline``) the whole model's infeasibility solve and elastic
    re-solve, the path before the merged model, in the same process."""
    from landuse.allocation.infeasible import _elastic, _explain
    from landuse.core.errors import InfeasibleAllocationError

    zt = synthetic_zone_table(n, seed=1)
    sc = scenario_for(zt)
    zt.loc[zt.city == 2, "urban_ha"] *= 40
    t0 = time.perf_counter()
    try:
        allocate(zt, sc, 2030, solver="highs", coordination="city")
        raise SystemExit("the city-by-city plan was expected to be infeasible")
    except InfeasibleAllocationError as e:
        t_new = time.perf_counter() - t0
        msg = str(e)
    print(f"{n:>7} zones: infeasible city-by-city plan found and explained in {t_new:.2f} s end to end: "
          f"{msg[:160]}...", flush=True)
    fig = {f"z{n}_infeasible_city_s": round(t_new, 3)}
    if baseline:
        m, t_b = _timed(build_model, zt, sc, 2030, coordination="city")
        probe = _solve_highs_direct(m, method="simplex", time_limit=3600)
        em = _elastic(m)
        esol = _solve_highs_direct(em, method="simplex", time_limit=3600)
        same = str(_explain(em, esol, zt, sc)) == msg
        print(f"{n:>7} zones: whole model (baseline): build {t_b:.2f} s, infeasibility {probe.seconds:.2f} s, "
              f"elastic re-solve {esol.seconds:.2f} s; same explanation: {same}", flush=True)
        fig.update({f"z{n}_whole_build_s": round(t_b, 3), f"z{n}_whole_infeasible_s": round(probe.seconds, 3),
                    f"z{n}_whole_elastic_s": round(esol.seconds, 3), f"z{n}_same_explanation": same})
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    ap.add_argument("--zones", type=int, nargs="+", help="zone-table sizes to measure (default 1 000, 10 000, 100 000)")
    ap.add_argument("--compare", action="store_true",
                    help="only the cluster plan and the city-by-city comparison (compare_coordination)")
    ap.add_argument("--infeasible", action="store_true",
                    help="only an infeasible city-by-city plan: allocate end to end (merged model)")
    ap.add_argument("--baseline", action="store_true",
                    help="with --infeasible: also the whole model's infeasibility and elastic solves")
    args = ap.parse_args()
    sizes = args.zones or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    fig: dict[str, object] = {"bench": "allocate", "quick": args.quick}
    if args.infeasible:  # 100 000 zones at least: a city of a smaller table cannot be asked for more than it has
        for n in args.zones or [100_000, 400_000]:
            fig.update(bench_infeasible(n, args.baseline))
        print(json.dumps(fig))
        return
    if args.compare:
        for n in sizes:
            fig.update(bench_compare(n))
        print(json.dumps(fig))
        return
    for n in sizes:
        zt = synthetic_zone_table(n, seed=1)
        sc = scenario_for(zt)
        build_model(zt, sc, 2030)  # warm-up
        m, build = _timed(build_model, zt, sc, 2030)
        print(f"{n:>7} zones x 3 types: {m.n_cols} variables, {m.n_rows} rows ({len(m.rows)} policy rows); "
              f"matrix build {build:.3f} s", flush=True)
        fig.update({f"z{n}_variables": m.n_cols, f"z{n}_rows": m.n_rows, f"z{n}_matrix_build_s": round(build, 4)})
        a, t_h = _timed(allocate, zt, sc, 2030, solver="highs")
        print(f"    allocate(solver='highs'), working set + dual simplex: {t_h:.2f} s end to end "
              f"(build {a.build_seconds:.2f} s, solve {a.solve_seconds:.2f} s), objective {a.objective:.6f}", flush=True)
        fig[f"z{n}_allocate_highs_s"] = round(t_h, 3)
        c, t_c = _timed(allocate, zt, sc, 2030, solver="cbc")
        print(f"    allocate(solver='cbc'), working set + PuLP/CBC:     {t_c:.2f} s end to end, "
              f"objective {c.objective:.6f} (rel. diff {abs(c.objective - a.objective) / abs(a.objective):.1e})",
              flush=True)
        fig[f"z{n}_allocate_cbc_s"] = round(t_c, 3)
        f, t_f = _timed(allocate, zt, sc, 2030, solver="highs", coordination="city")
        print(f"    fragmented (city by city) with highs:              {t_f:.2f} s; cost of fragmentation "
              f"{f.objective - a.objective:.3f}", flush=True)
        fig[f"z{n}_allocate_city_highs_s"] = round(t_f, 3)
        s1 = _solve_highs_direct(m, method="simplex", time_limit=600)
        print(f"    whole model, HiGHS dual simplex from the matrix:  solve {s1.seconds:.2f} s", flush=True)
        fig[f"z{n}_whole_highs_simplex_s"] = round(s1.seconds, 3)
        s2 = _solve_highs_direct(m, method="ipm", time_limit=600)
        print(f"    whole model, HiGHS interior point + crossover:    solve {s2.seconds:.2f} s", flush=True)
        fig[f"z{n}_whole_highs_ipm_s"] = round(s2.seconds, 3)
        for s_ in (s1, s2):
            assert abs(float(m.cost @ s_.x) - a.objective) <= 1e-6 * abs(a.objective)
        _, tp = _timed(build_pulp_problem, m)
        print(f"    whole model as a PuLP problem (lists, no lpSum):  build {tp:.2f} s", flush=True)
        fig[f"z{n}_whole_pulp_build_s"] = round(tp, 3)
        if n <= 10_000:
            s3 = _solve_pulp(m, solver="cbc", time_limit=600, method="simplex")
            print(f"    whole model, PuLP + CBC: build+write+solve {s3.seconds:.2f} s", flush=True)
            fig[f"z{n}_whole_pulp_cbc_s"] = round(s3.seconds, 3)
    size, block = (600, 10) if args.quick else (3000, 10)
    nzt, tz = bench_zone_table(size, block)
    print(f"zone table of a {size} x {size} raster, {block} x {block}-cell blocks: {nzt} zones in {tz:.2f} s "
          "(suitability and distance transforms included)", flush=True)
    fig.update({"zone_table_cells": size * size, "zone_table_zones": nzt, "zone_table_s": round(tz, 3)})
    fig["chosen"] = ("sparse matrix built with numpy/scipy; working set priced with duals; "
                     "HiGHS dual simplex straight from the matrix (allocation.solver: highs), CBC via PuLP as default")
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
