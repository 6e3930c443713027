"""Benchmark: every evaluation metric on a large synthetic land-use map.

Usage: ``python benchmarks/metrics.py [--quick] [--size N]``

Builds a seeded synthetic region (default 4000 x 4000 cells of 30 m; ``--quick`` 1000 x 1000)
with clustered urban land, grows it into a "simulated" and an "observed" map, then times
landscape metrics (all urban and per type), LEI expansion types, validation metrics,
the quota report and growth-boundary delineation. Prints each figure as it goes and
ends with one JSON line holding all of them.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from affine import Affine
from scipy import ndimage

from landuse.boundary import delineate_ugb
from landuse.classes import URBAN_TYPES, default_scheme
from landuse.config import scenario_from_dict
from landuse.landscape import new_landscape
from landuse.metrics import expansion_types, landscape_metrics, quota_report, urban_metrics, validation_metrics


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


def timed(label: str, fn, figures: dict, key: str):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    figures[key] = round(dt, 3)
    print(f"{label:<56s} {dt:8.3f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1000 x 1000 instead of 4000 x 4000")
    ap.add_argument("--size", type=int, default=None, help="grid edge in cells")
    ap.add_argument("--seed", type=int, default=7)
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
    tiny = d["landuse"][:50, :50]
    t0 = time.perf_counter()
    expansion_types(tiny, d["simulated"][:50, :50], s, cell_size=cell, buffer_m=100)
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
    total = sum(figures[k] for k in ("urban_metrics_s", "lei_100m_s", "validation_s", "quota_report_s",
                                     "delineate_ugb_s"))
    figures["all_metrics_s"] = round(total, 3)
    print(f"{'all metrics (urban, LEI 100 m, validation, quota, UGB)':<56s} {total:8.3f} s", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
