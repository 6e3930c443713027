"""Suitability at megaregion scale: scipy's distance transform against the compiled one, and
``compute_suitability`` in the first and a later period with the run's cache of land-use-independent drivers.

For each ``--size`` a region is generated with ``landuse sample DIR --size N --cell-size 30`` (kept under
``--keep DIR`` and reused when present), then a fresh process per size loads its scenario and Landscape and times:

* ``edt``: the distance to urban land (the ``dist_urban`` driver's mask) and to roads, with
  ``scipy.ndimage.distance_transform_edt(...).astype(float32)`` and with :func:`landuse.surfaces.suitability.distance_to`
  (the two are checked bit for bit);
* ``suitability``: ``compute_suitability`` with scipy's transform swapped in and every driver computed
  (``scipy_every_driver``: every period before the compiled transform and the cache, with this version's
  accumulation), then with the compiled transform and a ``static`` cache: the first period (fills the cache)
  and a later one.

Peak memory is the rise of the process's resident set over what it held before the step (Linux ``VmHWM`` reset
through ``/proc/self/clear_refs``), so it counts numpy temporaries and the compiled code's work arrays alike
(peaks come from a second process run with ``MALLOC_MMAP_THRESHOLD_=65536``, so that freed arrays leave the
resident set; seconds from a process with the default allocator).

    python benchmarks/suitability.py [--size 2000 4000] [--keep DIR]

Ends with one JSON line. Timings are single runs on a shared machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, val = line.split(":")
                out[key] = int(val.split()[0]) * 1024
    return out


def measure(fn):
    """(result, seconds, peak rise of the resident set in bytes) of ``fn()``."""
    before = _status()["VmRSS"]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current resident set
    t = time.perf_counter()
    res = fn()
    secs = time.perf_counter() - t
    return res, secs, max(0, _status()["VmHWM"] - before)


def child(region: Path) -> dict:
    import numpy as np
    from scipy import ndimage

    import landuse.surfaces.suitability as suit
    from landuse.core.config import load_scenario
    from landuse.core.landscape import cell_sizes
    from landuse.io.rasters import read_landscape

    sc = load_scenario(region / "sample.yaml")
    ds = read_landscape(sc.layer_paths(), classes=sc.classes)
    cell = cell_sizes(ds)
    inside = np.asarray(ds["study_area"].values, dtype=bool)
    lu = np.asarray(ds["landuse"].values, dtype=np.uint8)
    masks = {"urban": sc.classes.is_role(lu, "urban") & inside, "roads": np.asarray(ds["roads"].values, dtype=bool)}
    suit.distance_to(np.eye(8, dtype=bool), cell=cell)  # compile / load the cached kernels

    def scipy_edt(mask):
        return ndimage.distance_transform_edt(~mask, sampling=cell).astype(np.float32)

    res: dict = {"shape": list(lu.shape), "cell_m": list(cell), "edt": {}, "suitability": {}}
    for name, mask in masks.items():
        a, s_old, m_old = measure(lambda m=mask: scipy_edt(m))
        b, s_new, m_new = measure(lambda m=mask: suit.distance_to(m, cell=cell))
        res["edt"][name] = {"true_share": round(float(mask.mean()), 5),
                            "scipy_s": round(s_old, 3), "scipy_peak_mib": round(m_old / 2**20, 1),
                            "numba_s": round(s_new, 3), "numba_peak_mib": round(m_new / 2**20, 1),
                            "identical": bool(np.array_equal(a.view(np.uint32), b.view(np.uint32)))}
        del a, b
    # scipy's transform, every driver every period
    new_distance_to = suit.distance_to
    suit.distance_to = lambda mask, *, cell: (np.full(mask.shape, np.inf, np.float32) if not mask.any()
                                              else scipy_edt(np.asarray(mask, dtype=bool)))
    try:
        before, s, m = measure(lambda: suit.compute_suitability(ds, sc, landuse=lu).values)
    finally:
        suit.distance_to = new_distance_to
    res["suitability"]["scipy_every_driver"] = {"s": round(s, 3), "peak_mib": round(m / 2**20, 1)}
    static: dict = {}
    first, s, m = measure(lambda: suit.compute_suitability(ds, sc, landuse=lu, static=static).values)
    res["suitability"]["first_period"] = {"s": round(s, 3), "peak_mib": round(m / 2**20, 1)}
    later, s, m = measure(lambda: suit.compute_suitability(ds, sc, landuse=lu, static=static).values)
    res["suitability"]["later_period"] = {"s": round(s, 3), "peak_mib": round(m / 2**20, 1)}
    res["suitability"]["static_drivers"] = sorted(static)
    res["suitability"]["static_cache_mib"] = round(sum(v.nbytes for v in static.values() if v is not None) / 2**20, 1)
    res["suitability"]["identical"] = bool(np.array_equal(before.view(np.uint32), first.view(np.uint32))
                                           and np.array_equal(before.view(np.uint32), later.view(np.uint32)))
    return res


def _merge(timed: dict, sized: dict) -> dict:
    """Seconds (and everything else) from ``timed``, ``*peak_mib`` from ``sized``."""
    if isinstance(timed, dict):
        return {k: (sized[k] if "peak_mib" in k else _merge(v, sized[k])) for k, v in timed.items()}
    return timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs="+", default=[2000, 4000], help="cells a side (default 2000 4000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the generated regions in this folder")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    exe = shutil.which("landuse") or str(Path(sys.executable).with_name("landuse"))
    work = args.keep or Path(tempfile.mkdtemp(prefix="landuse-suit-"))
    fig: dict = {"bench": "suitability", "sizes": {}}
    for size in args.size:
        region = work / f"region{size}"
        if not (region / "sample.yaml").exists():
            subprocess.run([exe, "sample", str(region), "--size", str(size), "--seed", str(args.seed),
                            "--cell-size", "30", "--force"], check=True, capture_output=True)
        load0 = os.getloadavg()[0]
        # seconds from a plain process; peaks from one with a fixed mmap threshold, where every large array is
        # returned to the system when freed, so a step's peak is not hidden by heap pages an earlier step left
        runs = []
        for extra in ({}, {"MALLOC_MMAP_THRESHOLD_": "65536"}):
            out = subprocess.run([sys.executable, __file__, "--child", str(region)], check=True, capture_output=True,
                                 text=True, env={**os.environ, **extra})
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        res = _merge(*runs)
        res["load"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
        fig["sizes"][str(size)] = res
        print(f"{size} x {size} cells, load {res['load'][0]:.1f} -> {res['load'][1]:.1f}")
        print(f"  {'distance transform':<28}{'scipy s':>9}{'MiB':>8}{'numba s':>9}{'MiB':>8}  identical")
        for name, e in res["edt"].items():
            print(f"  {name + ' (' + format(e['true_share'], '.2%') + ' True)':<28}{e['scipy_s']:>9.2f}"
                  f"{e['scipy_peak_mib']:>8.0f}{e['numba_s']:>9.2f}{e['numba_peak_mib']:>8.0f}  {e['identical']}")
        s = res["suitability"]
        print(f"  {'compute_suitability':<28}{'s':>9}{'MiB':>8}")
        for key in ("scipy_every_driver", "first_period", "later_period"):
            print(f"  {key:<28}{s[key]['s']:>9.2f}{s[key]['peak_mib']:>8.0f}")
        print(f"  cached drivers {', '.join(s['static_drivers'])} ({s['static_cache_mib']:.0f} MiB); "
              f"identical to before: {s['identical']}", flush=True)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
