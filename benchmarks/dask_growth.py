"""Tiled growth on Dask: overhead against the in-memory engine, and a large raster under a memory limit.

Usage: ``python benchmarks/dask_growth.py [--quick] [--sizes SIZE:TILE,...] [--size N] [--chunks C]
[--repeats R] [--stateless] [--skip-small] [--skip-large] [--workdir DIR]``

1. **Overhead** on rasters that fit both paths (2048^2 with 1024^2 tiles, 4096^2 and 8192^2
   with 2048^2 tiles by default; 1024^2 with ``--quick``): one growth period (1 run) in
   memory (numba on 2 threads) against the tiled path (``simulate_tiled``: staging, steps,
   finishing, all included) on a LocalCluster of 2 single-threaded workers (equal cores),
   after a warm-up of both, ``--repeats`` times (medians and the 1-minute load average of
   each repeat reported). Both paths use the same kernels (the engine's pruned sweep
   included), so the ratio is the tiled path's overhead. ``--stateless`` also times the tiled path without tile states
   (``cache_mb=0``: every step re-reads its window and rebuilds the frontier). The maps and
   counts are checked to be identical. ``--skip-large`` stops here.
2. **Large raster** (20 000^2; 3 000^2 with ``--quick``): a synthetic landscape written tile
   by tile as GeoTIFFs in a scratch folder (removed at the end), then one full growth
   period (new patches, edge iterations, catch-up, fill, counts, outputs written window by
   window) with :func:`landuse.scale.tiled.grow_tiled` on 2 workers with a memory limit.
   Peak RSS per worker is sampled every 0.25 s with psutil (``client.run``), and so is this
   process's RSS (its value before the run is reported too). ``--skip-small`` runs only
   this part, so that this process's peak is not inflated by part 1.

Prints figures as it goes and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if __name__ == "__mp_main__":
    # a Dask worker process re-imports this script (spawn) before its environment
    # (NUMBA_NUM_THREADS=1, see landuse.scale.distributed.dask_client) is applied: numba must
    # see the same value at import, or compiling a kernel in the worker fails
    os.environ["NUMBA_NUM_THREADS"] = "1"

import numpy as np
import pandas as pd
import psutil
import rasterio
from affine import Affine
from rasterio.windows import Window

from landuse.core.classes import default_scheme
from landuse.core.landscape import new_landscape
from landuse.growth import GrowthParams, quantise_potential, simulate
from landuse.scale.distributed import dask_client
from landuse.scale.tiled import grow_tiled, simulate_tiled

SCHEME = default_scheme()
RES, IND, COM = SCHEME.urban_codes
FARM = SCHEME.codes_with_role("farmland")[0]
FOREST = SCHEME.codes_with_role("open_space")[0]
ZONE = 1000  # zone blocks of 1000 x 1000 cells
CRS = "EPSG:32651"


def block(seed: int, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Land use, zones and potentials of a window; depends on the window's global position only."""
    rng = np.random.default_rng([seed, r0, c0])
    h, w = r1 - r0, c1 - c0
    lu = np.where(rng.random((h, w)) < 0.8, FARM, FOREST).astype(np.uint8)
    rr = np.arange(r0, r1)[:, None]
    cc = np.arange(c0, c1)[None, :]
    town = ((rr % 250) < 12) & ((cc % 250) < 12)  # a 12 x 12 town every 250 cells
    lu[town] = np.where(rng.random(int(town.sum())) < 0.7, RES, np.where(rng.random(int(town.sum())) < 0.5, IND,
                                                                              COM)).astype(np.uint8)
    zones = ((rr // ZONE) * 1000 + cc // ZONE + 1).astype(np.int32)
    base = 0.3 + 0.7 * rng.random((h, w), dtype=np.float32)
    pot = np.stack([quantise_potential(base * f) for f in (1.0, 0.6, 0.4)])
    return lu, zones, pot


def landscape(size: int, seed: int = 1):
    lu, zones, pot = block(seed, 0, size, 0, size)
    ds = new_landscape({"landuse": lu, "zones": zones}, crs=CRS, transform=Affine(30, 0, 0, 0, -30, 30 * size))
    return ds, pot


def params_for(pot: np.ndarray, *, iterations: int) -> GrowthParams:
    allowed = np.zeros((3, 256), bool)
    allowed[:, [FARM, FOREST]] = True
    return GrowthParams(potential=pot, allowed=allowed, type_codes=(RES, IND, COM), iterations=iterations,
                        neighbourhood=3, neighbourhood_weights=np.eye(3) * 0.5 + 0.5, periods=(2030,))


def targets_for(size: int) -> pd.DataFrame:
    n = -(-size // ZONE)
    rows = []
    for zr in range(n):
        for zc in range(n):
            z = zr * 1000 + zc + 1
            cells = min(ZONE, size - zr * ZONE) * min(ZONE, size - zc * ZONE)
            for t, share in (("residential", 0.004), ("industrial", 0.0015), ("commercial", 0.0008)):
                rows.append((2030, z, t, int(cells * share)))
    return pd.DataFrame(rows, columns=["period", "zone", "type", "cells"])


def write_inputs(folder: Path, size: int, tile: int, seed: int = 1) -> dict[str, Path]:
    paths = {k: folder / f"{k}.tif" for k in ("landuse", "zones", "potential")}
    common = dict(driver="GTiff", width=size, height=size, crs=CRS, transform=Affine(30, 0, 0, 0, -30, 30 * size),
                  tiled=True, blockxsize=512, blockysize=512, BIGTIFF="YES")
    with rasterio.open(paths["landuse"], "w", count=1, dtype="uint8", nodata=255, **common) as a, \
            rasterio.open(paths["zones"], "w", count=1, dtype="int32", nodata=0, **common) as b, \
            rasterio.open(paths["potential"], "w", count=3, dtype="uint8", **common) as c:
        for r0 in range(0, size, tile):
            for c0 in range(0, size, tile):
                r1, c1 = min(size, r0 + tile), min(size, c0 + tile)
                lu, zones, pot = block(seed, r0, r1, c0, c1)
                win = Window(c0, r0, c1 - c0, r1 - r0)
                a.write(lu, 1, window=win)
                b.write(zones, 1, window=win)
                c.write(pot, window=win)
    return paths


class RssSampler:
    """Peak RSS of every worker (and of this process), sampled in a thread."""

    def __init__(self, client, every: float = 0.25) -> None:
        self.client, self.every = client, every
        self.peak: dict[str, int] = {}
        self.driver_peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                for addr, rss in self.client.run(lambda: psutil.Process().memory_info().rss).items():
                    self.peak[addr] = max(self.peak.get(addr, 0), rss)
            except Exception:  # a sample lost while workers are busy is fine
                pass
            self.driver_peak = max(self.driver_peak, me.memory_info().rss)
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def overhead(a: argparse.Namespace, small: int, chunk_small: int) -> dict[str, object]:
    """Part 1: in memory against tiled (states kept, and optionally not) at equal cores, medians of ``a.repeats``."""
    ds, pot = landscape(small)
    p = params_for(pot, iterations=a.iterations)
    t = targets_for(small)
    simulate(ds, t, params=p, runs=1, seed=0)  # warm-up (compilation, caches)
    mem_s, tiled_s, nostate_s = [], [], []
    loads = []
    same = True
    with dask_client("local", workers=2, memory_limit=a.memory_limit) as client:
        kw = dict(params=p, runs=1, chunks=chunk_small, client=client, workdir=a.workdir)
        simulate_tiled(ds, t, seed=0, **kw)
        if a.stateless:
            simulate_tiled(ds, t, seed=0, cache_mb=0, **kw)
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            r_mem = simulate(ds, t, params=p, runs=1, seed=1)
            mem_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            r_tiled = simulate_tiled(ds, t, seed=1, **kw)
            tiled_s.append(time.perf_counter() - t0)
            check = [r_tiled]
            if a.stateless:
                t0 = time.perf_counter()
                r_nostate = simulate_tiled(ds, t, seed=1, cache_mb=0, **kw)
                nostate_s.append(time.perf_counter() - t0)
                check.append(r_nostate)
            for r in check:
                same = same and bool(np.array_equal(r_mem.landuse[2030].values, r.landuse[2030].values)
                                     and np.array_equal(r_mem.counts.values, r.counts.values))
            loads.append(os.getloadavg()[0])
            extra = f", tiled without states {nostate_s[-1]:.3f} s" if a.stateless else ""
            print(f"  {small}^2: in memory {mem_s[-1]:.3f} s, tiled {tiled_s[-1]:.3f} s{extra} "
                  f"(load {loads[-1]:.2f})", flush=True)
    med_mem, med_tiled = (float(np.median(v)) for v in (mem_s, tiled_s))
    row: dict[str, object] = dict(
        size=small, chunks=chunk_small, tiles=(-(-small // chunk_small)) ** 2, repeats=a.repeats,
        in_memory_s=[round(x, 3) for x in mem_s], tiled_s=[round(x, 3) for x in tiled_s],
        in_memory_median_s=round(med_mem, 3), tiled_median_s=round(med_tiled, 3),
        tiled_over_in_memory=round(med_tiled / med_mem, 2),
        identical=same,
        converted=int(r_mem.shortfall.converted.sum()), load_avg_1min=[round(x, 2) for x in loads])
    if a.stateless:
        med_ns = float(np.median(nostate_s))
        row.update(tiled_no_state_s=[round(x, 3) for x in nostate_s], tiled_no_state_median_s=round(med_ns, 3),
                   tiled_no_state_over_in_memory=round(med_ns / med_mem, 2))
    print(f"{small}^2 medians of {a.repeats}: in memory {med_mem:.3f} s, tiled ({chunk_small}^2 tiles, 2 workers) "
          f"{med_tiled:.3f} s: ratio {med_tiled / med_mem:.2f}; identical {same}, load "
          f"{min(loads):.2f}-{max(loads):.2f}", flush=True)
    del ds, pot, p, r_mem, r_tiled
    return row


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        size, _, chunk = part.partition(":")
        out.append((int(size), int(chunk) if chunk else int(size) // 2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, default=None, help="edge of the large raster (default 20000; 3000 quick)")
    ap.add_argument("--chunks", type=int, default=2048)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--memory-limit", default="2GB")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-small", action="store_true", help="only the large raster (this process's RSS alone)")
    ap.add_argument("--skip-large", action="store_true", help="only the overhead comparison (part 1)")
    ap.add_argument("--sizes", default=None,
                    help="overhead sizes as SIZE:TILE,... (default 2048:1024,4096:2048,8192:2048; 1024:512 quick)")
    ap.add_argument("--stateless", action="store_true", help="also time the tiled path without tile states")
    ap.add_argument("--workdir", default="/work/scratch" if Path("/work/scratch").is_dir() else None)
    a = ap.parse_args()
    sizes = _sizes(a.sizes or ("1024:512" if a.quick else "2048:1024,4096:2048,8192:2048"))
    big = a.size or (3000 if a.quick else 20000)
    fig: dict[str, object] = {"bench": "dask_growth", "quick": a.quick, "cores": os.cpu_count(),
                              "load_avg_start": [round(x, 2) for x in os.getloadavg()], "iterations": a.iterations}
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores", flush=True)

    # 1. overhead at equal cores
    if not a.skip_small:
        rows = [overhead(a, size, chunk) for size, chunk in sizes]
        fig["overhead"] = rows
        first = rows[0]  # the smallest size under the flat keys of earlier versions
        fig.update(small_size=first["size"], small_chunks=first["chunks"], in_memory_median_s=first["in_memory_median_s"],
                   tiled_median_s=first["tiled_median_s"], tiled_over_in_memory=first["tiled_over_in_memory"],
                   identical=all(r["identical"] for r in rows),
                   ratios={f"{r['size']}:{r['chunks']}": r["tiled_over_in_memory"] for r in rows})
        print("ratios tiled / in memory: " + ", ".join(
            f"{r['size']}^2 ({r['chunks']}^2 tiles) {r['tiled_over_in_memory']}" for r in rows), flush=True)
    if a.skip_large:
        fig["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(fig))
        return

    # 2. large raster from GeoTIFFs under a memory limit
    scratch = Path(tempfile.mkdtemp(prefix="dask_growth_", dir=a.workdir))
    try:
        free = shutil.disk_usage(scratch).free
        need = big * big * 8 * 2.2  # inputs + tile store + outputs
        if free < need:
            sys.exit(f"not enough disk in {scratch}: {free / 1e9:.0f} GB free, about {need / 1e9:.0f} GB needed")
        t0 = time.perf_counter()
        with rasterio.Env(GDAL_CACHEMAX=64):  # else GDAL's block cache (5 % of RAM) inflates this process's RSS
            paths = write_inputs(scratch, big, 2000)
        fig["generate_s"] = round(time.perf_counter() - t0, 1)
        print(f"{big}^2 inputs written in {fig['generate_s']} s", flush=True)
        t = targets_for(big)
        p = params_for(np.zeros((3, 1, 1), np.uint8), iterations=a.iterations)
        driver_before = psutil.Process().memory_info().rss
        with dask_client("local", workers=2, memory_limit=a.memory_limit) as client, RssSampler(client) as rss:
            t0 = time.perf_counter()
            res = grow_tiled(paths["landuse"], paths["zones"], paths["potential"], t, params=p, chunks=a.chunks,
                             runs=1, seed=1, out_dir=scratch / "out", client=client, workdir=scratch)
            wall = time.perf_counter() - t0
        tiles = res.tiles
        fig.update(size=big, chunks=a.chunks, tiles=tiles, steps=res.steps, wall_s=round(wall, 1),
                   stage_s=round(res.seconds["stage"], 1), grow_and_write_s=round(res.seconds["grow_and_write"], 1),
                   converted=int(res.shortfall.converted.sum()), shortfall=int(res.shortfall.shortfall.sum()),
                   memory_limit=a.memory_limit,
                   peak_worker_rss_mb=[round(v / 2**20) for v in rss.peak.values()],
                   peak_driver_rss_mb=round(rss.driver_peak / 2**20),
                   driver_rss_before_mb=round(driver_before / 2**20), small_part_run=not a.skip_small,
                   ms_per_tile_step=round(1000 * res.seconds["grow_and_write"] * 2 / max(1, tiles * res.steps), 1),
                   cells_per_s=round(big * big * res.steps / res.seconds["grow_and_write"]))
        print(f"{big}^2: {wall:.1f} s ({res.steps} steps x {tiles} tiles of {a.chunks}^2), peak RSS per worker "
              f"{fig['peak_worker_rss_mb']} MB, driver {fig['peak_driver_rss_mb']} MB (before: {fig['driver_rss_before_mb']} MB), converted {fig['converted']}",
              flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    fig["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
