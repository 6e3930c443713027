"""SLEUTH urban growth: run SLEUTH scenario files with SLEUTH's rules, write its statistics.

The growth rules themselves are numba kernels in :mod:`landuse.sleuth.kernels` (the map statistics in
:mod:`landuse.sleuth.pattern`); the inputs are read by :mod:`landuse.sleuth.inputs` and the statistics and log
files are :mod:`landuse.sleuth.logs`. This module drives Monte Carlo runs in the three SLEUTH modes (test,
calibrate, predict) and writes ``avg.log``, ``std_dev.log`` and ``control_stats.log`` with SLEUTH's columns, plus
GeoTIFFs.

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
    SleuthScenario,
    read_scenario,
)
from landuse.sleuth import defs as D
from landuse.sleuth.inputs import SleuthInputs, load_inputs
from landuse.sleuth.logs import (
    CONTROL_COLUMNS,
    base_statistics,
    control_header,
    control_line,
    control_statistics,
    mean_and_sd,
    parse_stats_log,
    stats_header,
    stats_line,
)

MODES = ("test", "calibrate", "predict")
GROWTH_STATS = ("sng", "sdg", "og", "rt", "pop", "edges", "clusters", "xmean", "ymean", "rad", "slope", "leesalee")
ALL_RULES = 7  # spontaneous + spreading centres | edge | road


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
        """The constants a SLEUTH scenario file sets."""
        return cls(
            sc.critical_low, sc.critical_high, sc.critical_slope, sc.boom, sc.bust, sc.slope_sensitivity,
            sc.road_grav_sensitivity,
        )  # fmt: skip

    def array(self) -> np.ndarray:
        """The constants in the kernels' order (:mod:`landuse.sleuth.defs`)."""
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


def simulate_sleuth(
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
        """The summary ``landuse sleuth`` prints."""
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
        raise SleuthFormatError(f"`search`: unknown calibration search {search!r}; use 'grid' or 'refine'")
    if objective not in ("OSM", "Product"):
        raise SleuthFormatError(f"`objective`: unknown calibration objective {objective!r}; use 'OSM' or 'Product'")
    n_runs = int(runs if runs is not None else sc.monte_carlo_iterations)
    if n_runs < 1:
        where = "`runs`" if runs is not None else f"MONTE_CARLO_ITERATIONS ({sc.line_of('MONTE_CARLO_ITERATIONS')})"
        raise SleuthFormatError(f"{where} must be >= 1, got {n_runs}")
    rseed = int(seed if seed is not None else sc.random_seed)
    out = Path(out_dir) if out_dir is not None else Path(sc.source).parent / sc.output_dir
    option = "`out` (or the scenario's OUTPUT_DIR)"
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
        sim = simulate_sleuth(
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
    sim = simulate_sleuth(
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
    (COG, deflate, nodata 255, band description, dataset tags; overviews of grids over 2048 cells a side averaged),
    written by GDAL through rasterio without xarray, rioxarray or dask.
    """
    all_tags = {str(k): str(v) for k, v in {**tags, "units": "percent of Monte Carlo runs urban"}.items()}
    height, width = arr.shape
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
