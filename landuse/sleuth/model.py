"""SLEUTH urban growth: run SLEUTH scenario files with SLEUTH's rules, write its statistics.

The growth rules themselves are numba kernels in :mod:`landuse.sleuth.kernels`;
this module reads the inputs, drives Monte Carlo runs in the three SLEUTH modes (test,
calibrate, predict), computes SLEUTH's statistics and writes ``avg.log``,
``std_dev.log`` and ``control_stats.log`` with SLEUTH's columns, plus GeoTIFFs.

Randomness follows the project's counter-based scheme: run ``mc`` of year ``y`` draws from
the stream ``stream_key(seed, mc, y, 0, PURPOSE)``. Every coefficient set uses the same
streams (common random numbers, as SLEUTH re-seeds for every set), and a run gives the
same result on any thread, so outputs are identical whatever ``NUMBA_NUM_THREADS``.

>>> from landuse.sleuth.model import slope_weights
>>> w = slope_weights(slope_resistance=50.0, critical_slope=20.0)
>>> float(w[0]), float(w[20]), float(w[30])
(0.0, 1.0, 1.0)
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse.core.errors import ArgumentError, SleuthFormatError
from landuse.io.folders import OutputFolder, atomic_path, check_target, protected_inputs, write_text
from landuse.io.sleuth_files import (
    COEFFICIENTS,
    COG_FAST_MAX_SIDE,
    SleuthScenario,
    cog_uint8_bytes,
    read_grey,
    read_scenario,
    resolve_input,
    year_of,
)
from landuse.sleuth import defs as D

MODES = ("test", "calibrate", "predict")
GROWTH_STATS = ("sng", "sdg", "og", "rt", "pop", "edges", "clusters", "xmean", "ymean", "rad", "slope", "leesalee")
CONTROL_COLUMNS = (
    "Product", "Compare", "Pop", "Edges", "Clusters", "Size", "Leesalee", "Slope", "%Urban", "Xmean", "Ymean",
    "Rad", "Fmatch",
)  # fmt: skip
ALL_RULES = 7  # spontaneous + spreading centres | edge | road


# --------------------------------------------------------------------------- inputs


@dataclass
class SleuthInputs:
    """SLEUTH input grids, as SLEUTH prepares them.

    ``urban`` holds the urban grids used by the mode (all years in test/calibrate, the
    prediction seed in predict); ``roads`` are rescaled to 0..100 over all road years;
    ``road_pixels`` counts road cells per road grid before rescaling.
    """

    urban: np.ndarray
    urban_years: list[int]
    roads: np.ndarray
    road_years: list[int]
    road_pixels: list[int]
    slope: np.ndarray
    excluded: np.ndarray
    location: str = "sleuth"
    files: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.slope.shape

    @property
    def excluded_count(self) -> int:
        """Cells that can never urbanise (``excluded >= 100``)."""
        return int((self.excluded >= 100).sum())

    def road_index(self, year: int) -> int:
        """Road grid used in ``year``: the latest with a year <= ``year``, else the first."""
        idx = 0
        for i in range(len(self.road_years) - 1, 0, -1):
            if year >= self.road_years[i]:
                idx = i
                break
        return idx


def normalize_roads(grids: Sequence[np.ndarray]) -> np.ndarray:
    """Rescale road grids to 0..100 as SLEUTH does (relative to the largest value of all years)."""
    stack = np.stack([np.asarray(g, dtype=np.int64) for g in grids])
    maxima = [int(g.max(initial=0)) for g in stack]
    max_of_max = max(maxima) if maxima else 0
    out = np.zeros(stack.shape, dtype=np.int32)
    for k, g in enumerate(stack):
        if maxima[k] <= 0:
            continue
        image_max = np.float32(maxima[k])
        norm = np.float64(np.float32(image_max / np.float32(max_of_max)))
        out[k] = np.trunc(((100.0 * g) / np.float64(image_max)) * norm).astype(np.int32)
    return out


def load_inputs(
    scenario: SleuthScenario,
    *,
    mode: str,
    input_dir: str | os.PathLike | None = None,
) -> SleuthInputs:
    """Read the scenario's urban, road, slope and excluded images.

    Parameters
    ----------
    scenario : SleuthScenario
        Parsed scenario.
    mode : {"test", "calibrate", "predict"}
        In predict mode only urban and road images dated on or after
        ``PREDICTION_START_DATE`` are used (the last of each list if none is).
    input_dir : path, optional
        Folder of the images; default ``INPUT_DIR`` relative to the scenario file's folder.

    Returns
    -------
    SleuthInputs
    """
    folder = _input_dir(scenario, input_dir)
    if not scenario.urban_data:
        raise SleuthFormatError(f"{scenario.source}: no URBAN_DATA lines; SLEUTH needs at least two urban years")
    for key, attr in (("SLOPE_DATA", "slope_data"), ("EXCLUDED_DATA", "excluded_data")):
        if not getattr(scenario, attr):
            raise SleuthFormatError(f"{scenario.source}: {key} is missing")
    if not scenario.road_data:
        raise SleuthFormatError(f"{scenario.source}: no ROAD_DATA lines")
    urban_names = [(year_of(n, key="URBAN_DATA"), n) for n in scenario.urban_data]
    road_names = [(year_of(n, key="ROAD_DATA"), n) for n in scenario.road_data]
    if mode == "predict":
        start = scenario.prediction_start_date
        urban_names = [u for u in urban_names if u[0] >= start] or urban_names[-1:]
        road_names = [r for r in road_names if r[0] >= start] or road_names[-1:]
    elif len(urban_names) < 2:
        raise SleuthFormatError(f"{scenario.source}: {mode} mode needs at least two URBAN_DATA years")
    files: list[str] = []

    def grid(name: str) -> np.ndarray:
        p = resolve_input(folder, name)
        files.append(str(p))
        return read_grey(p)

    slope = grid(scenario.slope_data)
    shape = slope.shape
    excluded = grid(scenario.excluded_data)
    urban = [grid(n) for _, n in urban_names]
    roads_raw = [grid(n) for _, n in road_names]
    for name, arr in zip(files, [slope, excluded, *urban, *roads_raw], strict=True):
        if arr.shape != shape:
            raise SleuthFormatError(
                f"{name} is {arr.shape[0]} x {arr.shape[1]} cells but {files[0]} is {shape[0]} x {shape[1]}; "
                "all SLEUTH inputs must share one grid"
            )
    return SleuthInputs(
        urban=np.stack([(u > 0).astype(np.uint8) for u in urban]),
        urban_years=[y for y, _ in urban_names],
        roads=normalize_roads(roads_raw),
        road_years=[y for y, _ in road_names],
        road_pixels=[int((r > 0).sum()) for r in roads_raw],
        slope=np.clip(slope, 0, 255).astype(np.uint8),
        excluded=excluded.astype(np.int32),
        location=Path(scenario.slope_data).name.split(".")[0],
        files=files,
    )


def _input_dir(scenario: SleuthScenario, override: str | os.PathLike | None) -> Path:
    base = Path(scenario.source).parent if scenario.source not in ("", "<text>") else Path.cwd()
    if override is not None:
        folder = Path(override)
        if not folder.is_dir():
            raise SleuthFormatError(f"input folder {folder} (--input-dir) does not exist")
        return folder
    folder = base / scenario.input_dir
    if not folder.is_dir():
        raise SleuthFormatError(
            f"INPUT_DIR={scenario.input_dir} ({scenario.line_of('INPUT_DIR')}) resolves to {folder.resolve()}, "
            "which does not exist; SLEUTH paths are relative to the scenario's folder: fix INPUT_DIR or pass "
            "--input-dir"
        )
    return folder


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class SelfModification:
    """SLEUTH's self-modification constants (scenario keys of the same names)."""

    # defaults are the scenario file's (SleuthScenario), defined once there
    critical_low: float = SleuthScenario.critical_low
    critical_high: float = SleuthScenario.critical_high
    critical_slope: float = SleuthScenario.critical_slope
    boom: float = SleuthScenario.boom
    bust: float = SleuthScenario.bust
    slope_sensitivity: float = SleuthScenario.slope_sensitivity
    road_grav_sensitivity: float = SleuthScenario.road_grav_sensitivity

    @classmethod
    def from_scenario(cls, sc: SleuthScenario) -> SelfModification:
        return cls(
            sc.critical_low, sc.critical_high, sc.critical_slope, sc.boom, sc.bust, sc.slope_sensitivity,
            sc.road_grav_sensitivity,
        )  # fmt: skip

    def array(self) -> np.ndarray:
        return np.array(
            [self.critical_low, self.critical_high, self.critical_slope, self.boom, self.bust,
             self.slope_sensitivity, self.road_grav_sensitivity],
            dtype=np.float64,
        )  # fmt: skip


@dataclass
class Simulation:
    """Raw Monte Carlo output.

    ``stats[set, run, k, :]`` is the statistics record (columns
    :data:`~landuse.sleuth.kernels.STAT_NAMES`) of recorded year ``record_years[k]``;
    ``urban_counts[k]`` counts the runs (over all sets) in which each cell is urban in
    ``prob_years[k]``.
    """

    coefficients: np.ndarray
    stats: np.ndarray
    record_years: list[int]
    urban_counts: np.ndarray
    prob_years: list[int]
    runs: int
    seed: int


def sleuth_coefficients(values: Sequence[float]) -> np.ndarray:
    """Coefficients as SLEUTH sets them: a value of 0 becomes 1 (order D, B, S, SL, R)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1, 5).copy()
    arr[arr == 0] = 1.0
    return arr


def slope_weights(*, slope_resistance: float, critical_slope: float) -> np.ndarray:
    """Probability that the slope test rejects a cell, per slope value 0..255.

    ``w(s) = 1 - ((c - s) / c) ** (resistance / 50)`` for ``s < c`` and ``1`` for
    ``s >= c`` (``c`` the critical slope): a cell at or above the critical slope never
    urbanises; flat land always passes.
    """
    return _jit()._slope_weights(float(slope_resistance), float(critical_slope))


def _jit():
    """The kernels module (imports numba on first use)."""
    from landuse.sleuth import kernels as sleuth_kernels

    return sleuth_kernels


def simulate(
    inputs: SleuthInputs,
    coefficients: np.ndarray,
    *,
    start_year: int,
    stop_year: int,
    record_years: Sequence[int],
    prob_years: Sequence[int] = (),
    runs: int,
    seed: int,
    constants: SelfModification,
    seed_index: int = 0,
    rules: int = ALL_RULES,
    n_chunks: int | None = None,
) -> Simulation:
    """Run ``runs`` Monte Carlo simulations of every coefficient set from ``start_year``.

    Parameters
    ----------
    inputs : SleuthInputs
        Grids; the seed urban grid is ``inputs.urban[seed_index]``.
    coefficients : ndarray
        ``(sets, 5)`` diffusion, breed, spread, slope resistance, road gravity (already
        through :func:`sleuth_coefficients`).
    start_year, stop_year : int
        Growth runs for the years ``start_year + 1 .. stop_year``.
    record_years : sequence of int
        Years whose statistics are recorded (Lee-Sallee against observed urban grids of the
        same year, when there is one).
    prob_years : sequence of int
        Years whose urban cells are counted over runs (probability maps).
    runs : int
        Monte Carlo runs per coefficient set.
    seed : int
        Random seed.
    constants : SelfModification
        Self-modification constants and the critical slope.
    rules : int
        Growth phases switched on (bit 0 spontaneous + spreading centres, bit 1 edge,
        bit 2 road-influenced); all by default.
    n_chunks : int, optional
        Fixed number of work chunks, dealt the (set, run) items round-robin and simulated
        in parallel (default: up to 16); results do not depend on it (nor on the number of
        threads), memory use does.
    Returns
    -------
    Simulation
    """
    if runs < 1:
        raise ArgumentError("runs must be >= 1")
    coefficients = np.ascontiguousarray(coefficients, dtype=np.float64).reshape(-1, 5)
    nrows, ncols = inputs.shape
    years = list(range(start_year + 1, stop_year + 1))
    if not years:
        raise SleuthFormatError(f"nothing to simulate: stop year {stop_year} is not after start year {start_year}")
    rec = {y: k for k, y in enumerate(record_years)}
    prob = {y: k for k, y in enumerate(prob_years)}
    ctrl = {y: k for k, y in enumerate(inputs.urban_years)}
    record_slot = np.array([rec.get(y, -1) for y in years], dtype=np.int64)
    prob_slot = np.array([prob.get(y, -1) for y in years], dtype=np.int64)
    control_of_year = np.array([ctrl.get(y, -1) for y in years], dtype=np.int64)
    road_of_year = np.array([inputs.road_index(y) for y in years], dtype=np.int64)
    road_count = np.array([inputs.road_pixels[i] for i in road_of_year], dtype=np.float64)
    rg_max = int((nrows + ncols) / 16.0)
    n_spiral = max(4 * rg_max * (rg_max + 1), nrows, ncols)
    spiral = _jit()._spiral_offsets(n_spiral, max(nrows, ncols))
    n_tasks = coefficients.shape[0] * runs
    chunks = n_chunks or min(n_tasks, 16)
    if prob_years:  # cells are counted per chunk in uint16
        chunks = max(chunks, -(-n_tasks // 65535))
    seed_urban = np.ascontiguousarray(inputs.urban[seed_index], dtype=np.uint8)
    slope = np.ascontiguousarray(inputs.slope, dtype=np.uint8)
    excluded = np.ascontiguousarray(inputs.excluded, dtype=np.int32)
    roads = np.ascontiguousarray(inputs.roads, dtype=np.int32)
    control = np.ascontiguousarray(inputs.urban, dtype=np.uint8)
    common = (
        seed_urban, slope, excluded, roads, road_of_year, road_count, spiral, coefficients, constants.array(),
        np.int64(seed), np.int64(runs), np.int64(start_year + 1),
    )  # fmt: skip
    stats, counts = _jit()._simulate_batch(
        *common, record_slot, np.int64(len(record_years)), control, control_of_year, prob_slot,
        np.int64(len(prob_years)), np.int64(chunks), np.int64(inputs.excluded_count), np.int64(rules),
    )  # fmt: skip
    return Simulation(coefficients, stats, list(record_years), counts, list(prob_years), runs, seed)


# --------------------------------------------------------------------------- statistics


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
    pattern_stats = _jit()._pattern_stats
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


# --------------------------------------------------------------------------- modes


@dataclass
class SleuthResult:
    """What a SLEUTH run produced: files written and the figures behind them."""

    mode: str
    out_dir: Path
    files: list[Path]
    coefficients: np.ndarray
    control: list[dict[str, float]] = field(default_factory=list)
    mean: np.ndarray | None = None
    sd: np.ndarray | None = None
    record_years: list[int] = field(default_factory=list)
    probability: np.ndarray | None = None
    prob_years: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        lines = [f"SLEUTH {self.mode}: {len(self.coefficients)} coefficient set(s) in {self.seconds:.2f} s"]
        if self.control:
            best = max(range(len(self.control)), key=lambda i: self.control[i]["Product"])
            c = self.control[best]
            co = " ".join(f"{v:g}" for v in self.coefficients[best])
            lines.append(f"best Product {c['Product']:.5f} (OSM {c['OSM']:.5f}) at D B S SL R = {co}")
        lines += [f"wrote {p}" for p in self.files]
        return "\n".join(lines)


def _calibration_grid(sc: SleuthScenario) -> np.ndarray:
    ranges = [sc.coefficient_range(c) for c in COEFFICIENTS]
    grid = np.array(np.meshgrid(*ranges, indexing="ij")).reshape(5, -1).T
    return grid.astype(np.float64)


def _grid_bounds(sc: SleuthScenario) -> tuple[np.ndarray, np.ndarray]:
    lo = []
    hi = []
    for c in COEFFICIENTS:
        r = sc.coefficient_range(c)
        lo.append(min(r))
        hi.append(max(r))
    return np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)


def refine_search(
    evaluate: Callable[[np.ndarray], list[dict[str, float]]],
    *,
    lower: np.ndarray,
    upper: np.ndarray,
    budget: int,
    seed: int,
    objective: str = "OSM",
    batch: int = 32,
    keep: int = 6,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Calibration search: a scrambled Sobol start, then Sobol batches in a shrinking box.

    Each round evaluates ``batch`` integer coefficient sets (all in one parallel call, with
    common random numbers), keeps the ``keep`` best by ``objective`` and samples the next
    round in their bounding box widened by a quarter of its size, until ``budget``
    evaluations are spent. Points already evaluated are not run again.

    Returns
    -------
    (points, control statistics) of every evaluated point, in evaluation order.
    """
    from scipy.stats import qmc

    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    sampler = qmc.Sobol(d=5, scramble=True, seed=seed)
    points: list[np.ndarray] = []
    stats: list[dict[str, float]] = []
    seen: set[tuple[int, ...]] = set()
    lo, hi = lower.copy(), upper.copy()
    while len(points) < budget:
        n = min(batch, budget - len(points))
        raw = sampler.random(max(2, 1 << (n - 1).bit_length()))[: n * 4]
        cand = np.rint(lo + raw * (hi - lo))
        new = []
        for p in cand:
            t = tuple(int(v) for v in p)
            if t not in seen:
                seen.add(t)
                new.append(p)
            if len(new) == n:
                break
        if not new:
            break
        new_arr = np.array(new)
        res = evaluate(new_arr)
        points.extend(new_arr)
        stats.extend(res)
        order = np.argsort([-s[objective] for s in stats])[:keep]
        best = np.array([points[i] for i in order])
        span = np.maximum(best.max(axis=0) - best.min(axis=0), 1.0)
        lo = np.maximum(lower, best.min(axis=0) - 0.25 * span)
        hi = np.minimum(upper, best.max(axis=0) + 0.25 * span)
    return np.array(points), stats


def run_sleuth(
    scenario: SleuthScenario | str | os.PathLike,
    *,
    mode: str = "test",
    out_dir: str | os.PathLike | None = None,
    input_dir: str | os.PathLike | None = None,
    runs: int | None = None,
    seed: int | None = None,
    search: str = "grid",
    budget: int | None = None,
    objective: str = "OSM",
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> SleuthResult:
    """Run a SLEUTH scenario in test, calibrate or predict mode and write its outputs.

    Parameters
    ----------
    scenario : SleuthScenario or path
        The scenario (file).
    mode : {"test", "calibrate", "predict"}
        test: the ``CALIBRATION_*_START`` coefficients over the historical years;
        calibrate: every coefficient set of the brute-force ranges (or the refined
        search); predict: the ``PREDICTION_*_BEST_FIT`` coefficients from
        ``PREDICTION_START_DATE`` to ``PREDICTION_STOP_DATE``.
    out_dir : path, optional
        Output folder; default ``OUTPUT_DIR`` relative to the scenario file's folder.
    input_dir : path, optional
        Folder of the input images (default ``INPUT_DIR``).
    runs : int, optional
        Monte Carlo runs per coefficient set (default ``MONTE_CARLO_ITERATIONS``).
    seed : int, optional
        Random seed (default ``RANDOM_SEED``).
    search : {"grid", "refine"}
        Calibrate mode only: SLEUTH's brute-force grid, or the refined Sobol search of
        :func:`refine_search` within the same ranges.
    budget : int, optional
        Refined search: coefficient sets to evaluate (default: the grid's size, at most 243).
    objective : {"OSM", "Product"}
        Refined search: the statistic maximised.
    progress : callable, optional
        Receives one-line progress messages.
    force : bool
        Replace an output folder that was not written by ``landuse sleuth`` for this
        scenario file.

    Returns
    -------
    SleuthResult

    Files
    -----
    test/calibrate: ``control_stats.log`` and, as the scenario's WRITE_AVG_FILE /
    WRITE_STD_DEV_FILE ask, ``avg.log`` / ``std_dev.log`` (test mode always writes them);
    calibrate also ``calibration.csv`` (every set with all statistics and OSM, best first).
    predict: ``avg.log``, ``std_dev.log``, ``urban_probability_YYYY.tif`` per year and
    ``cumulate_urban.tif`` (percent of runs in which a cell is urban at the stop year).
    All runs also write ``sleuth_run.json`` (seed, runs, coefficients, timing). The folder
    is written as a whole (:class:`landuse.io.folders.OutputFolder`), with ``manifest.json``.
    """
    t0 = time.perf_counter()
    say = progress or (lambda _m: None)
    if mode not in MODES:
        raise SleuthFormatError(f"unknown SLEUTH mode {mode!r}; use one of {', '.join(MODES)}")
    sc = scenario if isinstance(scenario, SleuthScenario) else read_scenario(scenario)
    if search not in ("grid", "refine"):
        raise SleuthFormatError(f"--search: unknown calibration search {search!r}; use 'grid' or 'refine'")
    if objective not in ("OSM", "Product"):
        raise SleuthFormatError(f"--objective: unknown calibration objective {objective!r}; use 'OSM' or 'Product'")
    n_runs = int(runs if runs is not None else sc.monte_carlo_iterations)
    if n_runs < 1:
        where = "--runs" if runs is not None else f"MONTE_CARLO_ITERATIONS ({sc.line_of('MONTE_CARLO_ITERATIONS')})"
        raise SleuthFormatError(f"{where} must be >= 1, got {n_runs}")
    rseed = int(seed if seed is not None else sc.random_seed)
    out = Path(out_dir) if out_dir is not None else Path(sc.source).parent / sc.output_dir
    option = "--out (or the scenario's OUTPUT_DIR)"
    owner = str(Path(sc.source).resolve())
    inputs = load_inputs(sc, mode=mode, input_dir=input_dir)
    protected = [*inputs.files, sc.source]
    check_target(out, command="sleuth", owner=owner, force=force, protected=protected, option=option)
    consts = SelfModification.from_scenario(sc)
    files: list[Path] = []
    with protected_inputs(protected), OutputFolder(out, command="sleuth", owner=owner, force=force,
                                                   protected=protected, option=option) as stage:
        if mode == "predict":
            result = _predict(sc, inputs, consts, stage.path, n_runs, rseed, files, say)
        else:
            result = _historical(sc, inputs, consts, stage.path, mode, n_runs, rseed, search, budget, objective,
                                 files, say)
        result.seconds = time.perf_counter() - t0
        meta = {
            "mode": mode,
            "scenario": owner,
            "runs": n_runs,
            "seed": rseed,
            "search": search if mode == "calibrate" else None,
            "coefficient_sets": len(result.coefficients),
            "seconds": round(result.seconds, 3),
            "grid": "unit cells, no CRS: x = column, y = rows - row (SLEUTH inputs have no georeferencing)",
            "random": "counter-based streams per (seed, run, year); common random numbers across coefficient sets",
        }
        files.append(write_text(stage.path / "sleuth_run.json", json.dumps(meta, indent=2) + "\n"))
        written = stage.commit({"mode": mode, "runs": n_runs, "seed": rseed})
    result.out_dir = stage.target
    files = [stage.target / p.relative_to(stage.path) for p in files] + [written[-1]]
    result.files = files
    return result


def _historical(sc, inputs, consts, out, mode, n_runs, rseed, search, budget, objective, files, say) -> SleuthResult:
    years = inputs.urban_years
    ctrl_years = years[1:]
    actual = base_statistics(inputs)[1:]

    def evaluate(points: np.ndarray) -> tuple[np.ndarray, Simulation]:
        coeffs = sleuth_coefficients(points)
        sim = simulate(
            inputs, coeffs, start_year=years[0], stop_year=years[-1], record_years=ctrl_years, runs=n_runs,
            seed=rseed, constants=consts,
        )  # fmt: skip
        return coeffs, sim

    if mode == "test":
        start = [sc.calibration[c]["START"] for c in COEFFICIENTS]
        coeffs, sim = evaluate(np.array([start], dtype=np.float64))
    elif search == "grid":
        grid = _calibration_grid(sc)
        say(f"calibrate: {len(grid)} coefficient sets x {n_runs} runs")
        coeffs, sim = evaluate(grid)
    else:
        lo, hi = _grid_bounds(sc)
        n_budget = budget or min(len(_calibration_grid(sc)), 243)
        sims: list[Simulation] = []

        def eval_stats(points: np.ndarray) -> list[dict[str, float]]:
            _c, s = evaluate(points)
            sims.append(s)
            m, _sd = mean_and_sd(s.stats)
            say(f"refine: evaluated {sum(len(x.coefficients) for x in sims)} sets")
            return [control_statistics(actual, m[k]) for k in range(m.shape[0])]

        refine_search(eval_stats, lower=lo, upper=hi, budget=n_budget, seed=rseed, objective=objective)
        coeffs = np.concatenate([s.coefficients for s in sims])
        sim = Simulation(coeffs, np.concatenate([s.stats for s in sims]), ctrl_years, sims[0].urban_counts, [],
                         n_runs, rseed)  # fmt: skip
    mean, sd = mean_and_sd(sim.stats)
    control = [control_statistics(actual, mean[k]) for k in range(len(coeffs))]
    text = control_header() + "".join(control_line(k, control[k], coeffs[k]) for k in range(len(coeffs)))
    files.append(write_text(out / "control_stats.log", text))
    if mode == "test" or sc.write_avg_file:
        avg = stats_header() + "".join(
            stats_line(k, y, i + 1, mean[k, i]) for k in range(len(coeffs)) for i, y in enumerate(ctrl_years)
        )
        files.append(write_text(out / "avg.log", avg))
    if mode == "test" or sc.write_std_dev_file:
        std = stats_header() + "".join(
            stats_line(k, y, i + 1, sd[k, i]) for k in range(len(coeffs)) for i, y in enumerate(ctrl_years)
        )
        files.append(write_text(out / "std_dev.log", std))
    if mode == "calibrate":
        order = sorted(range(len(coeffs)), key=lambda k: -control[k][objective if search == "refine" else "Product"])
        cols = ["run", "diffusion", "breed", "spread", "slope", "road", "OSM", *CONTROL_COLUMNS]
        rows = [",".join(cols)]
        for k in order:
            vals = [str(k), *(f"{v:g}" for v in coeffs[k]), f"{control[k]['OSM']:.6f}"]
            vals += [f"{control[k][c]:.6f}" for c in CONTROL_COLUMNS]
            rows.append(",".join(vals))
        files.append(write_text(out / "calibration.csv", "\n".join(rows) + "\n"))
    return SleuthResult(mode, out, [], coeffs, control, mean, sd, ctrl_years)


def _predict(sc, inputs, consts, out, n_runs, rseed, files, say) -> SleuthResult:
    start = sc.prediction_start_date
    stop = sc.prediction_stop_date
    if stop <= start:
        raise SleuthFormatError(
            f"PREDICTION_STOP_DATE={stop} must be after PREDICTION_START_DATE={start} "
            f"({sc.line_of('PREDICTION_STOP_DATE')})"
        )
    best = [sc.best_fit[c] for c in COEFFICIENTS]
    coeffs = sleuth_coefficients([best])
    years = list(range(start + 1, stop + 1))
    say(f"predict: {start} -> {stop}, {n_runs} runs")
    sim = simulate(
        inputs, coeffs, start_year=start, stop_year=stop, record_years=years, prob_years=years, runs=n_runs,
        seed=rseed, constants=consts,
    )  # fmt: skip
    mean, sd = mean_and_sd(sim.stats)
    files.append(write_text(out / "avg.log", stats_header() + "".join(
        stats_line(0, y, 0, mean[0, i]) for i, y in enumerate(years))))  # fmt: skip
    files.append(write_text(out / "std_dev.log", stats_header() + "".join(
        stats_line(0, y, 0, sd[0, i]) for i, y in enumerate(years))))  # fmt: skip
    percent = (100 * sim.urban_counts // n_runs).astype(np.uint8)
    tags = {"seed": rseed, "runs": n_runs, "coefficients_D_B_S_SL_R": " ".join(f"{v:g}" for v in coeffs[0])}
    for i, y in enumerate(years):
        files.append(_write_percent(percent[i], out / f"urban_probability_{y}.tif", f"urban_probability_{y}", tags))
    files.append(_write_percent(percent[-1], out / "cumulate_urban.tif", "cumulate_urban", tags))
    return SleuthResult("predict", out, [], coeffs, [], mean, sd, years, percent, years)


def sleuth_grid(shape: tuple[int, int]):
    """The dummy local grid of SLEUTH outputs: unit cells, no CRS, row 0 at the top.

    Cell (row, col) covers x in [col, col + 1] and y in [rows - row - 1, rows - row].
    """
    from affine import Affine

    return Affine(1.0, 0.0, 0.0, 0.0, -1.0, float(shape[0]))


def _write_percent(arr: np.ndarray, path: Path, name: str, tags: dict) -> Path:
    """Write a ``uint8`` percent grid as a Cloud-Optimized GeoTIFF on :func:`sleuth_grid`, atomically.

    The same file :func:`landuse.io.rasters.write_geotiff` writes for a ``uint8`` layer with ``resampling="average"``
    (COG, deflate, nodata 255, band description, dataset tags; overviews of larger grids averaged), so that xarray, rioxarray and
    dask are not imported (:mod:`landuse.io.folders` needs the standard library only). Grids up to
    :data:`~landuse.io.sleuth_files.COG_FAST_MAX_SIDE` cells a side, which need no overviews, are
    encoded by :func:`~landuse.io.sleuth_files.cog_uint8_bytes` without GDAL (importing rasterio
    alone takes about 0.09 s); larger ones are written by GDAL through rasterio.
    """
    all_tags = {str(k): str(v) for k, v in {**tags, "units": "percent of Monte Carlo runs urban"}.items()}
    height, width = arr.shape
    if max(height, width) <= COG_FAST_MAX_SIDE:
        data = cog_uint8_bytes(
            arr, origin=(0.0, float(height)), cell_size=(1.0, 1.0), nodata=255, description=name, tags=all_tags
        )
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return Path(path)
    import rasterio

    profile = {
        "driver": "COG", "height": height, "width": width, "count": 1, "dtype": "uint8", "crs": None,
        "transform": sleuth_grid(arr.shape), "compress": "deflate", "blocksize": 256 if max(height, width) > 256 else 128,
        "overviews": "auto" if max(height, width) > 2048 else "none", "nodata": 255,
        "resampling": "average",  # overviews show the mean percent (landuse.io.rasters.overview_resampling: not cubic)
    }  # fmt: skip
    with atomic_path(path) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(tmp, "w", **profile) as dst:
        dst.write(np.ascontiguousarray(arr, dtype=np.uint8), 1)
        dst.set_band_description(1, name)
        dst.update_tags(**all_tags)
    return Path(path)


# --------------------------------------------------------------------------- equivalence


def equivalence_scores(
    reference_avg: str | os.PathLike,
    reference_sd: str | os.PathLike,
    mean: np.ndarray,
    sd: np.ndarray,
    years: Sequence[int],
    *,
    runs: int,
    reference_runs: int,
    stats: Sequence[str] = GROWTH_STATS,
    reference_sd_from_ours: bool = False,
    rounding: float = 0.005,
    resolution: float = 1.0,
) -> dict[tuple[str, int], float]:
    """``|m - m_ref| / sqrt(se_ref² + se²)`` per (statistic, year), ``se = sd / sqrt(runs)``.

    Parameters
    ----------
    reference_avg, reference_sd : path
        The reference program's ``avg.log`` and ``std_dev.log`` (one coefficient set).
    mean, sd : ndarray
        ``(years, N_STATS)`` mean and standard deviation of our runs.
    years : sequence of int
        Years of the rows of ``mean``.
    runs, reference_runs : int
        Monte Carlo runs behind ``mean`` and behind the reference.
    reference_sd_from_ours : bool
        Use our standard deviation for the reference too (equal variances under the null
        hypothesis). SLEUTH 3.0beta_p01's ``std_dev.log`` holds ``|x_last - mean| /
        sqrt(runs)`` of the last Monte Carlo run rather than a standard deviation, so its
        values understate the spread; the default uses them as written (stricter).
    rounding : float
        Half the last printed digit of the logs (they print 2 decimals): a difference
        within it is no evidence of a difference, so ``|m - m_ref| - rounding`` (at least
        0) is scored.
    resolution : float
        Floor of the combined standard error is ``resolution / runs``: a mean of integer
        counts over ``runs`` runs moves in steps of ``1 / runs``, so a rare event seen in
        none of our runs (sd 0) is not a difference of infinitely many standard errors.

    Returns
    -------
    dict
        Score per (statistic, year); 0 where both standard errors are 0 and means agree,
        ``inf`` where they are 0 and means differ.
    """
    ref_m = parse_stats_log(reference_avg)
    ref_s = parse_stats_log(reference_sd)
    out: dict[tuple[str, int], float] = {}
    for i, y in enumerate(years):
        key = next(k for k in ref_m if k[1] == y)
        for name in stats:
            col = D.STAT_NAMES.index(name)
            m_ref = ref_m[key][name]
            s_ref = sd[i, col] if reference_sd_from_ours else ref_s[key][name]
            se = max(math.sqrt(s_ref**2 / reference_runs + sd[i, col] ** 2 / runs), resolution / runs)
            diff = max(0.0, abs(mean[i, col] - m_ref) - rounding)
            out[(name, y)] = diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
    return out
