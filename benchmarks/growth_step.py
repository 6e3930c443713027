"""Benchmark of the growth engine: one edge-growth iteration and a whole simulation's memory.

Usage: ``python benchmarks/growth_step.py [--quick] [--size N] [--no-memory]``

* One iteration on an N x N landscape (default 10 000; ``--quick`` 2 000), one urban
  type, 3 x 3 neighbourhood, about 1 % of cells frontier candidates, about 10 % of the
  candidates converting; median of 7 iterations, each from the same start state (the
  copy is not timed). The same iterations one after another on one state are printed
  too: there the frontier grows with every iteration. Compared in the same process
  with a straightforward numpy implementation of the same iteration (full-raster
  neighbourhood counts, candidate keys, per-zone selection by lexsort).
* The same with three urban types competing.
* Memory-copy bandwidth (``np.copyto`` of an N*N uint8 array and of a 400 MB float64
  array) for scale.
* Peak resident memory of a full ``simulate`` (three types, two periods, two runs) in a
  fresh subprocess, as bytes per cell above the memory held before the call (the
  landscape, the params and the compiled kernels, loaded by a tiny warm-up simulation),
  and including the params.
* Time per Monte Carlo run and period of ``simulate`` on the 1000 x 1000 sample region
  (``configs/compact.yaml``: 3 types, 5 x 5 window, 10 iterations; about 13 000 cells to
  place per period spread over the allocation zones), 20 runs.

Wall-clock figures depend on what else runs on the machine: the script also prints the
CPU time of the iterations (all threads) and the load average.

Figures are printed as they are measured; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# Busy-waiting OpenMP threads collapse when the cores are shared with other work; wait
# passively unless the caller chose otherwise (set before numba loads libgomp).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from landuse.growth import engine as E  # noqa: E402
from landuse.growth.plan import stream_keys  # noqa: E402
from landuse.growth.random import stream_key, uniform_numpy  # noqa: E402
from landuse.growth.state import RunState, StaticArrays, frontier_step, initial_state  # noqa: E402

FARM, RES, IND, COM = 4, 1, 2, 3
BLOCK = 64  # one urban disc per BLOCK x BLOCK block
ZONE = 500  # zone edge in cells


def synthetic(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Land use (farmland with jittered urban discs of the three types), zones, potentials (3, n, n)."""
    rng = np.random.default_rng(seed)
    tiles = np.full((48, BLOCK, BLOCK), FARM, dtype=np.uint8)
    yy, xx = np.mgrid[0:BLOCK, 0:BLOCK]
    for i in range(48):
        cy, cx = rng.uniform(16, BLOCK - 16, size=2)
        r = rng.uniform(4.0, 8.0)
        tiles[i][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (RES, IND, COM)[i % 3]
    nb = -(-n // BLOCK)
    pick = rng.integers(0, 48, size=(nb, nb))
    lu = tiles[pick].transpose(0, 2, 1, 3).reshape(nb * BLOCK, nb * BLOCK)[:n, :n].copy()
    zr = (np.arange(n, dtype=np.int32) // ZONE)
    nzc = -(-n // ZONE)
    zones = (zr[:, None] * nzc + zr[None, :] + 1).astype(np.int32)
    pot = rng.integers(180, 256, size=(3, n, n), dtype=np.uint8)
    return lu, zones, pot


def params_for(pot: np.ndarray, **kw) -> E.GrowthParams:
    allowed = np.zeros((3, 256), dtype=bool)
    allowed[:, FARM] = True
    w = np.array([[1.0, 0.1, 0.5], [0.1, 1.0, 0.1], [0.6, 0.1, 1.0]])
    return E.GrowthParams(potential=pot, allowed=allowed, type_codes=(RES, IND, COM), neighbourhood_weights=w, **kw)


def iteration_quota(st: StaticArrays, state: RunState, types: list[int], share: float) -> np.ndarray:
    """Quota per group: ``share`` of the zone's frontier cells, split among ``types``."""
    zc = np.bincount(st.zones[state.live], minlength=st.Z + 1)
    q = np.zeros((st.Z + 1, st.T), dtype=np.int64)
    for k in types:
        q[:, k] = (zc * share / len(types)).astype(np.int64)
    q[0] = 0
    return q.reshape(-1)


def time_iterations(st, start, types, reps, *, seed=1, fresh=True):
    """Wall and CPU time of ``reps`` edge iterations.

    ``fresh``: every repetition starts from a copy of ``start`` (the stated candidate
    share; the copy is not timed). Otherwise the iterations follow one another on one
    state, whose frontier grows as cells convert.
    """
    inertia = np.ones((st.Z + 1, st.T))
    times, cpu, conv_total, cands = [], [], 0, []

    def copy():
        # a run reuses these buffers over its iterations; fault the copy's pages in untimed,
        # as they are for every iteration of a run after its first
        state = start.copy()
        for buf in (state.group, state.t, state.seg_v, state.seg_p):
            buf.fill(0)
        state.scan = np.zeros(state.cand.size * ((2 * st.radius + 1) ** 2 - 1) // 8, dtype=np.int64)
        return state

    state = copy()
    for it in range(reps):
        if fresh and it:
            state = copy()
        cands.append(state.m - state.dead)
        quota = iteration_quota(st, state, types, 0.10)
        keys = stream_keys(seed, 0, 0, it, 0, st.T)
        t0, c0 = time.perf_counter(), time.process_time()
        conv, _, _ = frontier_step(st, state, quota, inertia, keys)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        conv_total += int(conv.sum())
    time_iterations.cpu = cpu
    time_iterations.candidates = cands
    return times, conv_total


def numpy_iteration(lu2, zones, pot, levels, weights, k, code, key, quota, Z):
    """Straightforward numpy version of one single-type edge-growth iteration."""
    rows, cols = lu2.shape
    wlut = np.zeros(256)
    wlut[[RES, IND, COM]] = weights[k]
    pad = np.zeros((rows + 2, cols + 2))
    pad[1:-1, 1:-1] = wlut[lu2]
    acc = np.zeros((rows, cols))
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            acc += pad[dy:dy + rows, dx:dx + cols]
    cand = (lu2 == FARM) & (pot[k] > 0) & (zones > 0) & (acc > 0)
    idx = np.flatnonzero(cand)
    w = levels[pot[k].ravel()[idx]] * (acc.ravel()[idx] / 8.0)
    t = -np.log(uniform_numpy(key, idx)) / w
    z = zones.ravel()[idx]
    order = np.lexsort((idx, t, z))
    zs = z[order]
    first = np.searchsorted(zs, np.arange(Z + 1))
    rank = np.arange(zs.size) - first[zs]
    sel = order[rank < quota[zs * 3 + k]]
    lu2.ravel()[idx[sel]] = code
    return sel.size


def copy_bandwidth(n_bytes: int, dtype) -> float:
    src = np.ones(n_bytes // np.dtype(dtype).itemsize, dtype=dtype)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return n_bytes / best


MEMORY_CHILD = r"""
import json, sys, time
import numpy as np, pandas as pd
from affine import Affine
sys.path.insert(0, {root!r})
sys.path.insert(0, {here!r})
import growth_step as B
from landuse.core.landscape import new_landscape
from landuse.growth import simulate
def rss():
    d = {{}}
    for line in open("/proc/self/status"):
        k, v = line.split(":", 1)
        d[k] = int(v.split()[0]) * 1024 if v.strip().endswith("kB") else v
    return d
n = {n}
lu, zones, pot = B.synthetic(n)
ds = new_landscape({{"landuse": lu, "zones": zones}}, crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 30 * n))
del lu, zones
params = B.params_for(pot, iterations=5, spontaneous_share=0.05)
del pot
nz = int(ds["zones"].values.max())
rows = [(y, z, t, c) for y in (2030, 2040) for z in range(1, nz + 1)
        for t, c in (("residential", 1500), ("industrial", 500), ("commercial", 400))]
targets = pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])
# warm-up: load the compiled kernels (and numba's machinery) before measuring
wl, wz, wp = B.synthetic(64)
wds = new_landscape({{"landuse": wl, "zones": wz}}, crs="EPSG:32651", transform=Affine(30, 0, 0, 0, -30, 30 * 64))
wt = pd.DataFrame([(2030, 1, "residential", 50), (2030, 1, "industrial", 20)], columns=["period", "zone", "type", "cells"])
simulate(wds, wt, params=B.params_for(wp, iterations=2, spontaneous_share=0.1), runs=2, seed=1)
del wl, wz, wp, wds
before = rss()["VmRSS"]
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
t0 = time.perf_counter()
res = simulate(ds, targets, params=params, runs=2, seed=3)
el = time.perf_counter() - t0
peak = rss()["VmHWM"]
print(json.dumps({{"before": before, "peak": peak, "params_bytes": int(params.potential.nbytes), "seconds": el,
                  "shortfall": int(res.shortfall.shortfall.sum()), "converted": int(res.shortfall.converted.sum())}}))
"""


def memory_run(n: int) -> dict:
    code = MEMORY_CHILD.format(root=ROOT, here=os.path.dirname(os.path.abspath(__file__)), n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sample_runs(runs: int = 20) -> dict:
    """Seconds per run and period of ``simulate`` on the 1000 x 1000 sample region (compact scenario)."""
    import pandas as pd

    from landuse.allocation.zones import zone_grid
    from landuse.core.config import load_scenario
    from landuse.io.rasters import read_landscape

    scn = load_scenario(os.path.join(ROOT, "configs", "compact.yaml"))
    ds = read_landscape(scn.layer_paths(), classes=scn.classes)
    zg = zone_grid(ds, block_size_m=scn.config.allocation.block_size_m)
    ds = ds.assign(zones=(("y", "x"), zg.zones))
    params = E.GrowthParams.from_scenario(scn, ds)
    lu = ds["landuse"].values
    urban = np.isin(lu, scn.classes.urban_codes)
    zones = zg.zones
    nz = int(zones.max())
    # ~13 000 cells per period, spread over the zones in proportion to their urban land
    weight = np.bincount(zones[urban], minlength=nz + 1).astype(float)
    weight[0] = 0.0
    eligible = np.any(params.allowed[:, lu] & (params.potential > 0), axis=0)
    room = np.bincount(zones[eligible], minlength=nz + 1)
    weight = np.minimum(weight, room / 4)  # zones without room for growth get none
    cells = np.floor(13_000 * weight / weight.sum() + 0.5).astype(int)
    rows = [(y, z, t, int(cells[z] * share + 0.5)) for y in scn.periods[1:3] for z in range(1, nz + 1) if cells[z]
            for t, share in (("residential", 0.6), ("industrial", 0.25), ("commercial", 0.15))]
    tg = pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])
    tg = tg[tg.cells > 0]
    E.simulate(ds, tg, params=params, runs=1, seed=0)  # warm-up
    times = []
    for rep in range(3):
        t0 = time.perf_counter()
        res = E.simulate(ds, tg, params=params, runs=runs, seed=rep)
        times.append(time.perf_counter() - t0)
    periods = 2
    return {"sample_cells": int(lu.size), "sample_runs": runs, "sample_periods": periods,
            "sample_cells_per_period": int(tg.cells.sum()) // periods,
            "sample_simulate_s": float(np.median(times)),
            "sample_ms_per_run_period": 1e3 * float(np.median(times)) / (runs * periods),
            "sample_shortfall": int(res.shortfall.shortfall.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small grid, seconds")
    ap.add_argument("--size", type=int, default=None, help="grid edge in cells")
    ap.add_argument("--no-memory", action="store_true", help="skip the whole-simulation memory run")
    ap.add_argument("--no-sample", action="store_true", help="skip the 1000 x 1000 sample-region runs")
    args = ap.parse_args()
    n = args.size or (2000 if args.quick else 10_000)
    reps = 7
    from numba import get_num_threads, threading_layer

    fig: dict = {"bench": "growth_step", "size": n, "cells": n * n, "threads": get_num_threads(),
                 "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average_1min": os.getloadavg()[0]}
    print(f"growth_step: {n} x {n} = {n * n:.3g} cells, {get_num_threads()} numba threads, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)

    lu, zones, pot = synthetic(n)
    params1 = params_for(pot)
    st = StaticArrays.build(params1, zones)
    t0 = time.perf_counter()
    base = initial_state(st, lu)
    fig["frontier_build_ms"] = 1e3 * (time.perf_counter() - t0)
    fig["candidates"] = int(base.m - base.dead)
    fig["candidate_share"] = fig["candidates"] / (n * n)
    print(f"initial frontier: {fig['candidates']} cells ({100 * fig['candidate_share']:.2f} %), "
          f"built in {fig['frontier_build_ms']:.0f} ms (first call includes JIT load)", flush=True)

    # warm-up on a small copy so compile/cache load is not timed
    small = StaticArrays.build(params_for(pot[:, :200, :200].copy()), zones[:200, :200].copy())
    sstate = initial_state(small, lu[:200, :200])
    time_iterations(small, sstate, [0], 2)
    time_iterations(small, sstate, [0, 1, 2], 2)

    def fresh(base=base):
        return base.copy()  # base keeps its start map here

    # every repetition from the start state: the stated candidate share
    times, conv = time_iterations(st, base, [0], reps)
    fig["threading_layer"] = threading_layer()
    ms1 = 1e3 * float(np.median(times))
    fig["ms_per_iteration"] = ms1
    fig["cpu_ms_per_iteration"] = 1e3 * float(np.median(time_iterations.cpu))
    fig["converted_per_iteration"] = conv // reps
    fig["cells_per_s"] = n * n / (ms1 / 1e3)
    fig["candidates_per_s"] = fig["candidates"] / (ms1 / 1e3)
    print(f"one type:    {ms1:.1f} ms/iteration from the start state (median of {reps}: "
          f"{', '.join(f'{1e3 * x:.1f}' for x in times)}), {conv // reps} converted/iteration, "
          f"{fig['cells_per_s']:.3g} cells/s, {fig['candidates_per_s']:.3g} candidates/s; CPU time "
          f"{fig['cpu_ms_per_iteration']:.1f} ms/iteration (all threads)", flush=True)
    # the same iterations one after another: the frontier grows as cells convert
    times_c, _ = time_iterations(st, base, [0], reps, fresh=False)
    fig["ms_per_iteration_consecutive"] = 1e3 * float(np.median(times_c))
    fig["candidate_share_last_consecutive"] = time_iterations.candidates[-1] / (n * n)
    print(f"one type, {reps} consecutive iterations: {', '.join(f'{1e3 * x:.1f}' for x in times_c)} ms "
          f"(median {fig['ms_per_iteration_consecutive']:.1f}; candidates "
          f"{100 * time_iterations.candidates[0] / (n * n):.2f} % -> "
          f"{100 * fig['candidate_share_last_consecutive']:.2f} %)", flush=True)

    times3, conv3 = time_iterations(st, base, [0, 1, 2], reps)
    ms3 = 1e3 * float(np.median(times3))
    fig["ms_per_iteration_3types"] = ms3
    fig["cpu_ms_per_iteration_3types"] = 1e3 * float(np.median(time_iterations.cpu))
    print(f"three types: {ms3:.1f} ms/iteration from the start state (median of {reps}: "
          f"{', '.join(f'{1e3 * x:.1f}' for x in times3)}), {conv3 // reps} converted/iteration; CPU time "
          f"{fig['cpu_ms_per_iteration_3types']:.1f} ms/iteration", flush=True)

    # numpy baseline of the same single-type iteration, same quota
    state = fresh()
    quota = iteration_quota(st, state, [0], 0.10)
    key = stream_key(1, 0, 0, 0, 0)
    lu2 = lu.copy()
    t0 = time.perf_counter()
    nconv = numpy_iteration(lu2, zones, pot, st.levels, st.weights, 0, RES, key, quota, st.Z)
    ms_np = 1e3 * (time.perf_counter() - t0)
    fig["numpy_ms_per_iteration"] = ms_np
    fig["numpy_ratio"] = ms_np / ms1
    print(f"numpy:       {ms_np:.0f} ms/iteration ({nconv} converted) -> numba is {fig['numpy_ratio']:.1f}x faster",
          flush=True)
    # same iteration through the engine, to show both pick the same cells
    frontier_step(st, state, quota, np.ones((st.Z + 1, st.T)), stream_keys(1, 0, 0, 0, 0, st.T))
    fig["numpy_matches_engine"] = bool(np.array_equal(state.lu.reshape(n, n), lu2))
    print(f"numpy and engine select the same cells: {fig['numpy_matches_engine']}", flush=True)
    del lu2, state

    bw = copy_bandwidth(n * n, np.uint8)
    bw_big = copy_bandwidth(400_000_000, np.float64)
    fig["copy_gbps"] = bw_big / 1e9
    fig["copy_raster_uint8_gbps"] = bw / 1e9
    fig["copy_raster_uint8_ms"] = 1e3 * n * n / bw
    fig["cells_per_s_over_copy_bytes_per_s"] = fig["cells_per_s"] / bw
    print(f"np.copyto: {bw_big / 1e9:.2f} GB/s (400 MB float64), {bw / 1e9:.2f} GB/s ({n * n / 1e6:.0f} MB uint8 "
          f"raster, {fig['copy_raster_uint8_ms']:.1f} ms); iteration throughput / copy throughput = "
          f"{fig['cells_per_s_over_copy_bytes_per_s']:.2f} cells per copied byte", flush=True)
    del base, st, lu, zones, pot, params1

    if not args.no_memory:
        m = memory_run(n)
        cells = n * n
        fig["sim_seconds"] = m["seconds"]
        fig["sim_peak_bytes_per_cell"] = (m["peak"] - m["before"]) / cells
        fig["sim_peak_bytes_per_cell_with_params"] = (m["peak"] - m["before"] + m["params_bytes"]) / cells
        fig["sim_shortfall_cells"] = m["shortfall"]
        print(f"simulate (3 types, 2 periods, 2 runs, 5 iterations): {m['seconds']:.1f} s, peak memory "
              f"{fig['sim_peak_bytes_per_cell']:.2f} bytes/cell above landscape+params, "
              f"{fig['sim_peak_bytes_per_cell_with_params']:.2f} bytes/cell with the params "
              f"(converted {m['converted']}, shortfall {m['shortfall']})", flush=True)
    if not args.no_sample:
        fig.update(sample_runs())
        print(f"sample region (1000 x 1000, compact): simulate with {fig['sample_runs']} runs x "
              f"{fig['sample_periods']} periods ({fig['sample_cells_per_period']} cells/period): "
              f"{fig['sample_simulate_s']:.2f} s (median of 3), {fig['sample_ms_per_run_period']:.1f} ms per run and "
              f"period, shortfall {fig['sample_shortfall']}", flush=True)
    fig["load_average_1min_end"] = os.getloadavg()[0]
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in fig.items()}))


if __name__ == "__main__":
    main()
