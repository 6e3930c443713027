"""Benchmark: every evaluation metric on a large synthetic land-use map.

Usage: ``python benchmarks/metrics.py [--quick] [--size N] [--strips ROWS]``

Builds a seeded synthetic region (default 4000 x 4000 cells of 30 m; ``--quick`` 1000 x 1000)
with clustered urban land, grows it into a "simulated" and an "observed" map, then times
landscape metrics (all urban and per type), LEI expansion types, validation metrics,
the quota report and growth-boundary delineation. Each stage also gets the peak memory
it adds to the process (MB above the resident set before it: the kernel's high-water
mark, reset before the stage through ``/proc/self/clear_refs``; absent where that is
not writable; the script re-runs itself with ``MALLOC_MMAP_THRESHOLD_=65536`` so that
freed arrays go back to the system and do not hide the next stage's). ``--strips ROWS`` adds the strip-by-strip paths (landscape counts and
the validation histogram in strips of ROWS rows). Prints each figure as it goes and
ends with one JSON line holding all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from affine import Affine
from scipy import ndimage

from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.landscape import new_landscape
from landuse.evaluation.agreement import validation_metrics
from landuse.evaluation.boundary import delineate_ugb
from landuse.evaluation.metrics import (
    expansion_types,
    landscape_metrics,
    quota_report,
    urban_metrics,
)


def synthetic(size: int, seed: int) -> dict[str, np.ndarray]:
    """Start, simulated and observed land use plus cities and red line (default class scheme)."""
    s = default_scheme()
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size), dtype=np.float32), sigma=size / 200)
    noise /= noise.std()
    fine = rng.random((size, size), dtype=np.float32)
    lu = np.full((size, size), s.codes_with_role("farmland")[0], dtype=np.uint8)
    lu[noise < -0.8] = s.codes_with_role("open_space")[0]
    lu[noise < -1.6] = s.codes_with_role("water")[0]
    urban = noise > 1.2
    codes = np.array(s.urban_codes, dtype=np.uint8)
    lu[urban] = codes[(fine[urban] * 3).astype(np.int64) % 3]
    grow_sim = (noise > 0.9) & ~urban & (fine < 0.8) & (lu != s.codes_with_role("water")[0])
    grow_obs = (noise > 0.95) & ~urban & (fine > 0.1) & (lu != s.codes_with_role("water")[0])
    scatter = (fine > 0.9995) & (lu == s.codes_with_role("farmland")[0])  # leapfrog specks
    sim = lu.copy()
    sim[grow_sim | scatter] = codes[0]
    obs = lu.copy()
    obs[grow_obs] = codes[0]
    cities = (np.arange(size)[None, :] * 4 // size + 4 * (np.arange(size)[:, None] * 4 // size) + 1).astype(np.int32)
    red = (noise < -1.0) & (lu != s.codes_with_role("water")[0])
    return {"landuse": lu, "simulated": sim, "observed": obs, "cities": cities, "red_line": red,
            "probability": np.clip((noise - 0.5) / 1.0, 0, 1).astype(np.float32)}


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timed(label: str, fn, figures: dict, key: str):
    rss0 = _status_mb("VmRSS")
    track = rss0 is not None and _reset_peak()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    figures[key] = round(dt, 3)
    mem = ""
    if track:
        extra = max(_status_mb("VmHWM") - rss0, 0.0)
        figures[key.removesuffix("_s") + "_peak_mb"] = round(extra, 1)
        mem = f"  +{extra:7.1f} MB peak"
    print(f"{label:<56s} {dt:8.3f} s{mem}", flush=True)
    return out


def main() -> None:
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # every array of 64 KiB or more mapped and unmapped
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1000 x 1000 instead of 4000 x 4000")
    ap.add_argument("--size", type=int, default=None, help="grid edge in cells")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--strips", type=int, default=None, metavar="ROWS",
                    help="also time the strip-by-strip paths with strips of ROWS rows")
    args = ap.parse_args()
    size = args.size or (1000 if args.quick else 4000)
    cell = 30.0
    s = default_scheme()
    figures: dict = {"bench": "metrics", "size": size, "cell_size_m": cell}

    t0 = time.perf_counter()
    d = synthetic(size, args.seed)
    print(f"synthetic {size} x {size} map built in {time.perf_counter() - t0:.2f} s", flush=True)
    ds = new_landscape({"landuse": d["landuse"], "cities": d["cities"], "red_line": d["red_line"]},
                       crs="EPSG:32651", transform=Affine(cell, 0, 500_000, 0, -cell, 3_500_000))
    sc = scenario_from_dict({"name": "bench", "layers": {"landuse": "x.tif"}, "periods": [2020, 2030],
                             "policy": {"open_space_quota": {"share": 0.15, "unit": "city"}}})
    # compile (or load from numba's cache) every kernel on a small corner first
    t0 = time.perf_counter()
    tiny_ds = ds.isel(y=slice(0, 64), x=slice(0, 64))
    expansion_types(d["landuse"][:64, :64], d["simulated"][:64, :64], s, cell_size=cell, buffer_m=100)
    landscape_metrics(s.is_role(d["simulated"][:64, :64], *URBAN_TYPES), cell_size=cell)
    quota_report(tiny_ds, d["simulated"][:64, :64], sc)
    validation_metrics(d["landuse"][:64, :64], d["observed"][:64, :64], d["simulated"][:64, :64], s)
    delineate_ugb(d["probability"][:64, :64], tiny_ds, threshold=0.5, closing_radius_m=300.0, min_area_ha=50.0)
    if args.strips:
        from landuse.evaluation.metrics import landscape_counts

        landscape_counts(d["simulated"][:64, :64] > 0, strip_rows=16)
    figures["numba_compile_s"] = round(time.perf_counter() - t0, 3)

    urban = s.is_role(d["simulated"], *URBAN_TYPES)
    m = timed("landscape_metrics (all urban, 8-conn)", lambda: landscape_metrics(urban, cell_size=cell),
              figures, "landscape_metrics_s")
    figures["urban_patches"] = int(m["number_of_patches"])
    timed("landscape_metrics (all urban, 4-conn)",
          lambda: landscape_metrics(urban, cell_size=cell, connectivity=4), figures, "landscape_metrics_4_s")
    timed("urban_metrics (urban + 3 types)", lambda: urban_metrics(d["simulated"], s, cell_size=cell),
          figures, "urban_metrics_s")
    exp = timed("expansion_types (LEI, 100 m buffer)",
                lambda: expansion_types(d["landuse"], d["simulated"], s, cell_size=cell, buffer_m=100.0),
                figures, "lei_100m_s")
    figures["new_patches"] = int(exp.lei.size)
    timed("expansion_types (LEI, 300 m buffer)",
          lambda: expansion_types(d["landuse"], d["simulated"], s, cell_size=cell, buffer_m=300.0),
          figures, "lei_300m_s")
    v = timed("validation_metrics (FoM, kappa, disagreement...)",
              lambda: validation_metrics(d["landuse"], d["observed"], d["simulated"], s), figures, "validation_s")
    figures["figure_of_merit"] = round(v["figure_of_merit"], 4)
    timed("quota_report (16 cities)", lambda: quota_report(ds, d["simulated"], sc), figures, "quota_report_s")
    ugb = timed("delineate_ugb (300 m closing/opening)",
                lambda: delineate_ugb(d["probability"], ds, threshold=0.5, closing_radius_m=300.0,
                                      min_area_ha=50.0), figures, "delineate_ugb_s")
    figures["ugb_share"] = round(float(ugb.values.mean()), 4)
    if args.strips:
        from landuse.evaluation.agreement import joint_histogram
        from landuse.evaluation.metrics import landscape_counts

        whole = timed("landscape_counts (whole raster)", lambda: landscape_counts(urban), figures,
                      "landscape_counts_s")
        strip = timed(f"landscape_counts (strips of {args.strips} rows)",
                      lambda: landscape_counts(urban, strip_rows=args.strips), figures, "landscape_counts_strips_s")
        maps = (d["landuse"], d["observed"], d["simulated"])
        h_whole = timed("validation histogram (whole grid)",
                        lambda: joint_histogram(maps, study_area=None, nodata=s.nodata, strip_rows=None),
                        figures, "validation_histogram_s")
        h_strip = timed(f"validation histogram (strips of {args.strips} rows)",
                        lambda: joint_histogram(maps, study_area=None, nodata=s.nodata, strip_rows=args.strips),
                        figures, "validation_histogram_strips_s")
        figures["strips_equal"] = bool(whole == strip and (h_whole[0] == h_strip[0]).all())
    total = sum(figures[k] for k in ("urban_metrics_s", "lei_100m_s", "validation_s", "quota_report_s",
                                     "delineate_ugb_s"))
    figures["all_metrics_s"] = round(total, 3)
    print(f"{'all metrics (urban, LEI 100 m, validation, quota, UGB)':<56s} {total:8.3f} s", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
