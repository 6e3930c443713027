"""SLEUTH's statistics and its log files.

The per-year statistics of a map, the control (fit) statistics, and ``avg.log`` / ``std_dev.log`` /
``control_stats.log`` written and parsed with SLEUTH's columns.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landuse.sleuth import defs as D
from landuse.sleuth.inputs import SleuthInputs

CONTROL_COLUMNS = (
    "Product", "Compare", "Pop", "Edges", "Clusters", "Size", "Leesalee", "Slope", "%Urban", "Xmean", "Ymean",
    "Rad", "Fmatch",
)  # fmt: skip

def base_statistics(inputs: SleuthInputs) -> np.ndarray:
    """Statistics of the observed urban grids, one record per urban year (``N_STATS`` columns).

    ``%urban`` follows SLEUTH's definition for observed data (road cells of the first road
    year, scaled by 100 * 100); only its correlation with the simulated values is used.
    """
    nrows, ncols = inputs.shape
    out = np.zeros((len(inputs.urban_years), D.N_STATS))
    queue = np.zeros(nrows * ncols, dtype=np.int64)
    visited = np.zeros((nrows, ncols), dtype=np.uint8)
    rc = inputs.road_pixels[0]
    from landuse.sleuth import kernels

    pattern_stats = kernels._pattern_stats
    slope = np.ascontiguousarray(inputs.slope, dtype=np.uint8)
    for k in range(len(inputs.urban_years)):
        pattern_stats(np.ascontiguousarray(inputs.urban[k], dtype=np.uint8), slope, out[k], queue, visited)
        out[k, D.S_PURBAN] = 100.0 * 100.0 * (out[k, D.S_POP] + rc) / (nrows * ncols - rc - inputs.excluded_count)
    return out


def mean_and_sd(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (divisor = runs) over the runs axis (axis -3)."""
    mean = stats.mean(axis=-3)
    sd = stats.std(axis=-3)
    return mean, sd


def r_squared(actual: np.ndarray, simulated: np.ndarray) -> float:
    """Squared Pearson correlation between actual and simulated values (0 if degenerate)."""
    a = np.asarray(actual, dtype=np.float64)
    s = np.asarray(simulated, dtype=np.float64)
    da = a - a.mean()
    ds = s - s.mean()
    sa = float((da * da).sum())
    ss = float((ds * ds).sum())
    if sa * ss < 1e-11:
        return 0.0
    r = float((da * ds).sum()) / math.sqrt(sa * ss)
    return r * r


def control_statistics(actual: np.ndarray, mean: np.ndarray) -> dict[str, float]:
    """SLEUTH's fit statistics of one coefficient set (the columns of ``control_stats.log``).

    Parameters
    ----------
    actual : ndarray
        ``(control years, N_STATS)`` observed statistics (from :func:`base_statistics`,
        without the seed year).
    mean : ndarray
        ``(control years, N_STATS)`` mean simulated statistics of the same years.

    Returns
    -------
    dict
        ``Compare`` = min/max of simulated and observed final population; ``Pop``,
        ``Edges``, ``Clusters``, ``Size`` (mean cluster size), ``Slope``, ``%Urban``,
        ``Xmean``, ``Ymean``, ``Rad`` are r² across control years; ``Leesalee`` the mean
        Lee-Sallee; ``Product`` the product of all these; ``OSM`` the Optimal SLEUTH
        Metric (Compare × Pop × Edges × Clusters × Slope × Xmean × Ymean); ``Fmatch`` 0
        (no land-cover module).
    """
    fin_a = actual[-1, D.S_POP]
    fin_s = mean[-1, D.S_POP]
    hi = max(fin_a, fin_s)
    compare = min(fin_a, fin_s) / hi if hi > 0 else 0.0
    r2 = {
        name: r_squared(actual[:, col], mean[:, col])
        for name, col in (
            ("Pop", D.S_POP), ("Edges", D.S_EDGES), ("Clusters", D.S_CLUSTERS), ("Size", D.S_CLSIZE),
            ("Slope", D.S_SLOPE), ("%Urban", D.S_PURBAN), ("Xmean", D.S_XMEAN), ("Ymean", D.S_YMEAN),
            ("Rad", D.S_RAD),
        )
    }  # fmt: skip
    leesalee = float(mean[:, D.S_LEESALEE].mean())
    product = compare * leesalee
    for name in ("Edges", "Clusters", "Pop", "Xmean", "Ymean", "Rad", "Slope", "Size", "%Urban"):
        product *= r2[name]
    osm = compare * r2["Pop"] * r2["Edges"] * r2["Clusters"] * r2["Slope"] * r2["Xmean"] * r2["Ymean"]
    return {"Product": product, "Compare": compare, **r2, "Leesalee": leesalee, "Fmatch": 0.0, "OSM": osm}


# --------------------------------------------------------------------------- log writers


def stats_header() -> str:
    """Header line of ``avg.log`` / ``std_dev.log``."""
    return "  run year index" + "".join(f"{n:>8s} " for n in D.STAT_NAMES) + "\n"


def stats_line(run: int, year: int, index: int, values: np.ndarray) -> str:
    """One line of ``avg.log`` / ``std_dev.log`` (SLEUTH's fixed-width format)."""
    return f"{run:5d} {year:4d} {index:2d}   " + "".join(f"{float(v):8.2f} " for v in values) + "\n"


def control_header() -> str:
    """The two header lines of ``control_stats.log``."""
    return (
        "                                               Cluster\n"
        "  Run  Product Compare     Pop   Edges Clusters   Size Leesalee  Slope  %Urban   Xmean   Ymean     Rad"
        "  Fmatch Diff  Brd Sprd  Slp   RG\n"
    )


def control_line(run: int, cs: dict[str, float], coefficients: Sequence[float]) -> str:
    """One line of ``control_stats.log``; ``coefficients`` in the order D, B, S, SL, R."""
    d, b, s, sl, rg = (float(c) for c in coefficients)
    return (
        f"{run:5d} {cs['Product']:8.5f} {cs['Compare']:7.5f} {cs['Pop']:7.5f} {cs['Edges']:7.5f} "
        f"{cs['Clusters']:7.5f} {cs['Size']:7.5f} {cs['Leesalee']:7.5f} {cs['Slope']:7.5f} {cs['%Urban']:7.5f} "
        f"{cs['Xmean']:7.5f} {cs['Ymean']:7.5f} {cs['Rad']:7.5f} {cs['Fmatch']:7.5f} "
        f"{d:4.0f} {b:4.0f} {s:4.0f} {sl:4.0f} {rg:4.0f}\n"
    )


def parse_stats_log(path: str | os.PathLike) -> dict[tuple[int, int], dict[str, float]]:
    """Read an ``avg.log`` / ``std_dev.log``: ``{(run, year): {column: value}}``."""
    out: dict[tuple[int, int], dict[str, float]] = {}
    names: list[str] = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "run":
            names = parts[3:]
            continue
        vals = [float(v) for v in parts[3:]]
        out[(int(parts[0]), int(parts[1]))] = dict(zip(names, vals, strict=False))
    return out


def parse_control_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read a ``control_stats.log`` into one dict per run."""
    cols = ["Run", *CONTROL_COLUMNS, "Diff", "Brd", "Sprd", "Slp", "RG"]
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == len(cols) and parts[0].isdigit():
            rows.append(dict(zip(cols, (float(p) for p in parts), strict=True)))
    return rows


