"""Growth-boundary delineation on a large synthetic grid: wall time and peak memory, strips against the whole raster.

Each case runs in its own process (so its peak resident memory is its own): the process builds an N x N Landscape
of 30 m cells (farmland, a grid of urban cores, a red-line corridor) and a smooth growth probability, then times
:func:`landuse.evaluation.boundary.delineate_ugb` (closing 300 m, opening 300 m, holes filled, patches under 50 ha dropped:
the defaults of ``evaluation.ugb``) and :func:`~landuse.evaluation.boundary.ugb_summary`. Two peaks, each minus its value just before the
call (inputs built, kernels compiled beforehand on a small grid): the process's maximum resident set (``RSS``; it
counts the pages of a disk store's scratch files it touched) and the largest anonymous resident memory seen by a
thread polling ``/proc/self/status`` every millisecond (``anon``: what the memory bound is about).

    python benchmarks/boundary.py [--size N] [--cases whole strips disk] [--pythonpath DIR]

``whole`` is one strip (``strip_rows=N``), ``strips`` the default strips in memory, ``disk`` the default strips
with the run's raster store on disk (``compute.rasters: disk``: masks and labels in scratch files).
``--pythonpath`` runs the cases on another checkout (e.g. a worktree of an older commit; a version without
``strip_rows`` runs its only path). Prints a table and one JSON line; nothing is asserted.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def _inputs(n: int):
    import numpy as np
    from affine import Affine

    from landuse.core.classes import default_scheme
    from landuse.core.landscape import new_landscape

    s = default_scheme()
    rng = np.random.default_rng(7)
    lu = np.full((n, n), s.codes_with_role("farmland")[0], dtype=np.uint8)
    step = max(n // 8, 4)
    for y in range(step // 2, n, step):
        for x in range(step // 2, n, step):
            r = max(int(rng.integers(step // 10, step // 4)), 1)
            lu[max(y - r, 0):y + r, max(x - r, 0):x + r] = s.code_of("residential")
    red = np.zeros((n, n), dtype=bool)
    red[n // 3:n // 3 + max(n // 100, 1), :] = True
    ds = new_landscape({"landuse": lu, "red_line": red}, crs="EPSG:32651",
                       transform=Affine(30.0, 0, 400_000, 0, -30.0, 3_000_000))
    # a smooth probability: a coarse random field upsampled by repetition, then blurred along rows and columns
    coarse = rng.random((n // 50 + 2, n // 50 + 2)).astype(np.float32)
    p = np.repeat(np.repeat(coarse, 50, axis=0), 50, axis=1)[:n, :n]
    p = np.ascontiguousarray(p)
    return ds, p


def _anon_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class _AnonPeak:
    """The largest anonymous resident memory (``RssAnon``: not file-backed pages, so not the scratch files of a
    disk store) seen by a thread polling ``/proc/self/status`` every millisecond."""

    def __enter__(self):
        import threading

        self.peak, self._stop = _anon_bytes(), threading.Event()

        def poll():
            while not self._stop.wait(0.001):
                self.peak = max(self.peak, _anon_bytes())

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _anon_bytes())


def _child(case: str, n: int) -> dict:
    import psutil

    from landuse.core.store import raster_store
    from landuse.evaluation.boundary import delineate_ugb, ugb_summary

    kw = dict(threshold=0.55, closing_radius_m=300.0, min_area_ha=50.0)
    has_strips = "strip_rows" in inspect.signature(delineate_ugb).parameters
    warm, pw = _inputs(64)
    delineate_ugb(pw, warm, **kw)  # compile / load the kernels
    ds, p = _inputs(n)
    extra = {"strip_rows": n} if case == "whole" and has_strips else {}
    with tempfile.TemporaryDirectory() as scratch, raster_store("disk" if case == "disk" else "memory", scratch):
        before, anon_before = psutil.Process().memory_info().rss, _anon_bytes()
        with _AnonPeak() as anon:
            t = time.perf_counter()
            ugb = delineate_ugb(p, ds, **kw, **extra)
            t_delineate = time.perf_counter() - t
            t = time.perf_counter()
            summary = ugb_summary(ugb, ds)
            t_summary = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"case": case, "cells": n * n, "strips": has_strips, "delineate_s": round(t_delineate, 3),
            "summary_s": round(t_summary, 3), "peak_delta_mb": round((peak - before) / 1e6, 1),
            "anon_delta_mb": round((anon.peak - anon_before) / 1e6, 1),
            "boundary_cells": int(summary["area_ha"] / 0.09 + 0.5), "patches": summary["patches"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--cases", nargs="+", default=["whole", "strips", "disk"], choices=["whole", "strips", "disk"])
    ap.add_argument("--pythonpath", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(_child(a.child, a.size)))
        return
    env = dict(os.environ)
    if a.pythonpath:
        env["PYTHONPATH"] = a.pythonpath
    rows = []
    for case in a.cases:
        out = subprocess.run([sys.executable, __file__, "--child", case, "--size", str(a.size)], env=env,
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'case':8} {'delineate s':>12} {'summary s':>10} {'RSS MB':>8} {'anon MB':>8} {'anon B/cell':>12} "
          f"{'cells in':>10} patches")
    for r in rows:
        print(f"{r['case']:8} {r['delineate_s']:12.2f} {r['summary_s']:10.2f} {r['peak_delta_mb']:8.1f} "
              f"{r['anon_delta_mb']:8.1f} {r['anon_delta_mb'] * 1e6 / r['cells']:12.2f} {r['boundary_cells']:10d} "
              f"{r['patches']}")
    print(json.dumps({"size": a.size, "pythonpath": a.pythonpath, "cases": rows}))


if __name__ == "__main__":
    main()
