"""The scenario pipeline: config -> Landscape -> (allocate -> grow) per period -> evaluate -> write.

:func:`run_scenario` is what ``landuse run`` calls. For each period ``(start, end)``:

1. suitability of each urban type from the land use at ``start`` (weighted-linear,
   pre-computed rasters, or a model trained on the history layers);
2. the zone table of that land use and the LP allocation of the period's demand
   (:func:`landuse.allocation.lp.allocate`), plus the city-by-city allocation to measure the
   cost of fragmentation (:func:`landuse.allocation.lp.compare_coordination`);
3. the growth engine places the allocated cells per zone and type over ``runs`` Monte
   Carlo runs (:func:`landuse.growth.simulate`); the representative run's map is the
   land use at ``end`` and the start of the next period.

Each period's growth has its own seed, derived from the scenario seed and the period
index with the counter-based hash, so periods never share random draws.

After the last period the growth boundary is delineated from the probability that a
cell is urban at the horizon, ``1 - prod_t (1 - p_t)`` over the periods' conversion
probabilities ``p_t`` (existing urban land counts as 1), and the report is built.

Outputs (staged beside the output folder and swapped in whole, see :mod:`landuse.io.folders`):

``landuse_<year>.tif``                 land use of the representative run, each period end
``probability_<type>_<year>.tif``       share of runs converting the cell to the type in the period
``probability_urban.tif``               probability of being urban at the horizon
``ugb.tif``, ``ugb.geojson``            the delineated growth boundary
``allocation.csv``, ``duals.csv``       the LP allocation and shadow prices of every period
``shortfall.csv``                       cells the growth engine could not place (zone, type)
``report.json|md|html``, ``figures/``   the evaluation report
``manifest.json``                       scenario, config as resolved, overrides, seed, versions,
                                        SHA-256 of every input, timings per stage, every output
                                        file with its size and SHA-256, the outputs asked for

``outputs.*`` (or ``landuse run --outputs``) asks for less: a stage whose outputs nobody asked
for is not computed at all (the boundary is not delineated, the report not evaluated, the
city-by-city plan not solved). The policy checks always run on the maps
(:attr:`RunResult.checks`).
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario, load_scenario
from landuse.core.errors import LanduseError, OutputExistsError
from landuse.core.landscape import cell_area_ha, like
from landuse.core.store import active_store, store_by_strips, store_copy, store_empty, store_full, store_zeros
from landuse.core.strips import row_strips
from landuse.io.folders import OutputFolder, check_target, recover
from landuse.io.rasters import protected_inputs, write_geotiff, write_text

ProgressFn = Callable[[dict[str, Any]], None]

_PURPOSE_PERIOD_SEED = 0x5EED


@dataclass
class RunResult:
    """What :func:`run_scenario` produced."""

    scenario: Scenario
    out_dir: Path
    landuse: dict[int, xr.DataArray]
    probability: dict[int, Mapping[str, xr.DataArray]]
    urban_probability: xr.DataArray
    ugb: xr.DataArray | None
    allocations: list[Any]
    shortfall: pd.DataFrame
    report: Any
    manifest: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    run_landuse: dict[int, list[np.ndarray]] | None = None
    checks: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    landscape: xr.Dataset | None = None

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"

    @property
    def passed(self) -> bool:
        """No policy check of any period and unit failed (checked on the maps, with or without a report)."""
        from landuse.evaluation.checks import summary

        return self.checks is None or summary(self.checks)["failed"] == 0

    @property
    def failures(self) -> list[str]:
        """One line per failed policy check."""
        from landuse.evaluation.checks import failure_lines

        return [] if self.checks is None else failure_lines(self.checks)


def period_seed(seed: int, period_index: int) -> int:
    """Seed of one period's growth: a counter-based hash of (seed, period index), 63 bits."""
    from landuse.growth.random import stream_key

    return int(stream_key(seed, 0, period_index, 0, _PURPOSE_PERIOD_SEED)) >> 1


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of landuse and the libraries that shape its results."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("landuse", "numpy", "numba", "scipy", "xarray", "rasterio", "rioxarray", "pulp", "highspy",
                 "scikit-image", "scikit-learn", "pandas", "pydantic"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    import rasterio

    out["gdal"] = rasterio.__gdal_version__
    return out


def apply_overrides(scenario: Scenario, **overrides: Any) -> dict[str, Any]:
    """Set command-line overrides on the config (validated); return those that were given."""
    applied: dict[str, Any] = {}
    cfg = scenario.config
    mapping = {
        "runs": (cfg.growth, "runs"),
        "seed": (cfg.growth, "seed"),
        "solver": (cfg.allocation, "solver"),
        "chunks": (cfg.compute, "chunks"),
        "scheduler": (cfg.compute, "scheduler"),
        "rasters": (cfg.compute, "rasters"),
    }
    sections = {"runs": "growth", "seed": "growth", "solver": "allocation", "chunks": "compute", "scheduler": "compute",
                "rasters": "compute"}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "out":
            cfg.outputs.folder = Path(value).resolve()
            applied["outputs.folder"] = str(Path(value).resolve())
            continue
        if key == "outputs":
            from landuse.core.errors import ConfigError

            try:
                cfg.outputs.ask(value)
            except ValueError as exc:
                shown = value if isinstance(value, str) else ",".join(value)
                raise ConfigError(f"--outputs {shown!r}: {exc}") from None
            applied["outputs"] = cfg.outputs.asked()
            continue
        section, attr = mapping[key]
        if key == "scheduler":
            from landuse.scale.distributed import check_scheduler

            check_scheduler(value)
        try:
            setattr(section, attr, value)
        except Exception as exc:  # pydantic ValidationError: re-raise as a clear config error
            from landuse.core.errors import ConfigError

            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "errors.pydantic.dev" not in ln]
            msg = lines[-1].split(" [type=")[0].replace("Value error, ", "")
            raise ConfigError(f"--{key} {value!r}: {msg}") from None
        applied[f"{sections[key]}.{attr}"] = value
    return applied


def prepare_output_dir(out_dir: Path, scenario_name: str, *, force: bool = False,
                       protected: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse an output folder the run may not replace (see :func:`landuse.io.folders.check_target`).

    A folder of the same scenario is replaced; another scenario's outputs or other files
    need ``force``; a folder holding an input (``protected``) is always refused. Leftovers
    of stopped runs beside the folder are cleaned up (:func:`landuse.io.folders.recover`).
    """
    check_target(out_dir, command="run", owner=scenario_name, force=force, protected=protected)
    recover(out_dir)


def _inputs_of(scenario: Scenario, layer_paths: dict[str, Any]) -> list[str]:
    return [str(p) for p in layer_paths.values()] + ([str(scenario.path)] if scenario.path else [])


def _log(progress: ProgressFn | None, **event: Any) -> None:
    if progress is not None:
        progress(event)


def _suitability_provider(ds: xr.Dataset, scenario: Scenario, timings: dict[str, float], *,
                          static: dict | None = None):
    """A function land use -> suitability DataArray, per the scenario's suitability method.

    ``static`` receives the land-use-independent driver scores, computed on the first call and reused (one float32
    raster per driver); the caller may clear it once no further call comes.
    """
    from landuse.surfaces.suitability import compute_suitability

    cfg = scenario.config.growth.suitability
    if cfg.method != "trained":
        static = {} if static is None else static
        return lambda lu: compute_suitability(ds, scenario, landuse=lu, static=static)
    from landuse.calibration.suitability_model import train_suitability

    t = time.perf_counter()
    trained = train_suitability(ds, scenario, method=cfg.model, seed=scenario.config.growth.seed, skip_scarce=True)
    timings["train_suitability"] = time.perf_counter() - t
    return lambda lu: trained.predict(ds, scenario, lu)


def unit_shortfall(shortfall: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """The growth engine's shortfall per unit (its ``zone`` column holds unit ids) with each
    unit's zone, city, source role and band: ``period, zone, city, unit, role, near_station,
    greenbelt, outside_boundary, type, target, converted, shortfall, converted_min,
    converted_max`` (the last two over all Monte Carlo runs)."""
    sf = shortfall.rename(columns={"zone": "unit"})
    info = units[["unit", "zone", "city", "role", "near_station", "greenbelt", "outside_boundary"]]
    out = sf.merge(info, on="unit", how="left")
    first = ["period", "zone", "city", "unit", "role", "near_station", "greenbelt", "outside_boundary", "type"]
    return out[first + [c for c in out.columns if c not in first]]


class PeriodProbability(Mapping[str, xr.DataArray]):
    """One period's conversion probability per urban type, kept as the ensemble's run counts.

    A mapping ``type -> float32 DataArray`` (``counts / runs``, the share of Monte Carlo runs that
    converted the cell to the type in the period) whose rasters are built when read: the run
    keeps 1 byte per cell and type (2 beyond 255 runs) instead of 4 for every period until the
    outputs are written. :attr:`counts` is the ``(type, y, x)`` count array.
    """

    def __init__(self, ds: xr.Dataset, counts: xr.DataArray, runs: int, year: int) -> None:
        self._ds = ds
        self.types = tuple(str(t) for t in counts.coords["type"].values.tolist())
        # a copy (in the run's raster store, if any): not a view keeping every period of the ensemble's counts
        self.counts = store_copy(counts.values)
        self.runs = int(runs)
        self.year = int(year)

    def __getitem__(self, typ: str) -> xr.DataArray:
        try:
            k = self.types.index(typ)
        except ValueError:
            raise KeyError(typ) from None
        p = store_empty(self.counts[k].shape, np.float32)  # in the run's raster store, if any
        p[...] = self.counts[k]
        p /= np.float32(self.runs)  # float32 division, as counts.astype(float32) / float32(runs)
        return like(self._ds, p, f"probability_{typ}_{self.year}", copy=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self.types)

    def __len__(self) -> int:
        return len(self.types)


def _not_converted(not_urban: np.ndarray, prob: PeriodProbability, types: Sequence[str]) -> None:
    """``not_urban *= clip(1 - sum of the period's probabilities of the types, 0, 1)``, strip by strip.

    The probabilities are ``counts / runs`` in float32 (:meth:`PeriodProbability.__getitem__`), added in the types'
    order: the same operations per cell as on whole rasters, in the memory of one strip.
    """
    runs = np.float32(prob.runs)
    index = [prob.types.index(t) for t in types]
    for a, b in row_strips(*not_urban.shape):
        p_any = np.zeros(not_urban[a:b].shape, dtype=np.float32)
        for k in index:
            p = prob.counts[k, a:b].astype(np.float32)
            p /= runs
            p_any += p
        not_urban[a:b] *= np.clip(1.0 - p_any, 0.0, 1.0)


class _Timings(dict):
    """Seconds per stage (``timings[stage] = perf_counter() - start``), and each stage's span since the run began.

    Setting a stage's seconds right when it ends records its span: ``spans[stage] = (start, end)`` in seconds from
    ``t0``, the run's start. ``manifest.json`` keeps both (``timings_s``, ``timeline_s``), so a profile of the
    process (e.g. its memory over time) can be cut at the stages' true edges, gaps between stages included.
    """

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.spans: dict[str, tuple[float, float]] = {}

    def __setitem__(self, key: str, seconds: float) -> None:
        end = time.perf_counter() - self.t0
        self.spans[key] = (end - seconds, end)
        super().__setitem__(key, seconds)

    def record(self, manifest: dict[str, Any]) -> None:
        """Put ``timings_s`` (seconds per stage) and ``timeline_s`` (``stage -> [start, end]`` in seconds since the run
        began, in stage order) into ``manifest``, rounded to milliseconds."""
        manifest["timings_s"] = {k: round(v, 3) for k, v in self.items()}
        manifest["timeline_s"] = {k: [round(a, 3), round(b, 3)] for k, (a, b) in self.spans.items()}


class _NoComparison(Exception):
    """The city-by-city comparison is not solved for this run (switched off, or a single city)."""


def _shrink_period(ds: xr.Dataset, scenario: Scenario, people: Any, lu: np.ndarray, vacant: np.ndarray, zg: Any,
                   suit: Any, year: int, p_idx: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, bool]:
    """Before a period's growth: reoccupy vacant land, then release each shrinking city's surplus.

    Sets the period's growth demand (``demand.by_city``) to the derived growth less the vacant land reoccupied;
    returns the new land use and vacancy, one row per city and type (``landuse.allocation.shrink``), and whether any cell was
    restored to a non-urban class.
    """
    from landuse.allocation.lp import zone_table
    from landuse.allocation.shrink import occupied_cells, plan_release, release_cells, reoccupy, zone_shares

    cell_ha = cell_area_ha(ds)
    seed = period_seed(scenario.config.growth.seed, p_idx)
    cities = np.asarray(ds["cities"].values, dtype=np.int64)
    ch = people.change[people.change.period == year]
    grow = {(int(r.city), r.type): round(r.hectares / cell_ha) for r in ch.itertuples() if r.hectares > 0}
    shrink = {(int(r.city), r.type): round(-r.hectares / cell_ha) for r in ch.itertuples() if r.hectares < 0}
    vacant, reused = reoccupy(lu, vacant, cities, grow, scenario, seed=seed, period_index=p_idx)
    by_city = {c: {t: dict(v) for t, v in per.items()} for c, per in scenario.config.demand.by_city.items()}
    for (c, t), n in reused.items():
        by_city[c][t][year] = max(0.0, (grow[(c, t)] - n) * cell_ha)
    scenario.config.demand.by_city = by_city
    plan = pd.DataFrame(columns=["period", "zone", "city", "type", "cells", "cost_per_ha"])
    unplaced: dict[tuple[int, str], int] = {}
    done = pd.DataFrame(columns=["period", "city", "type", "vacant_cells", "restored_cells"])
    if shrink:
        zt = zone_table(ds, scenario, landuse=lu, zones=zg, suitability=suit)
        occ = occupied_cells(zg.zones, lu, vacant, scenario, len(zt))
        plan, unplaced = plan_release(zt, scenario, year, shrink, occ,
                                      zone_shares(ds, zg.zones, lu, scenario, len(zt)))
        lu, vacant, done = release_cells(lu, vacant, zg.zones, plan, scenario, seed=seed, period=year,
                                         period_index=p_idx)
    keys = sorted(set(grow) | set(shrink) | set(reused))
    rec = pd.DataFrame([{"period": year, "city": c, "type": t,
                         "change_cells": grow.get((c, t), 0) - shrink.get((c, t), 0),
                         "reoccupied_cells": reused.get((c, t), 0),
                         "released_cells": int(plan.loc[(plan.city == c) & (plan.type == t), "cells"].sum()),
                         "release_shortfall_cells": unplaced.get((c, t), 0)} for c, t in keys])
    if len(rec) and len(done):
        rec = rec.merge(done.astype({"city": int}), on=["period", "city", "type"], how="left").fillna(0)
    else:
        rec["vacant_cells"] = 0
        rec["restored_cells"] = 0
    restored = bool(len(done)) and int(done["restored_cells"].sum()) > 0
    return lu, vacant, rec, restored


def _shrinkage_table(ds: xr.Dataset, scenario: Scenario, maps: dict[int, xr.DataArray],
                     vacancy: dict[int, xr.DataArray], records: list[pd.DataFrame]) -> pd.DataFrame:
    """Per period and city: urban, vacant and restored (cumulative) hectares, and the period's released and
    reoccupied hectares (empty when the scenario has no demand from people)."""
    if not records:
        return pd.DataFrame()
    classes = scenario.classes
    ca = cell_area_ha(ds)
    cities = np.asarray(ds["cities"].values, dtype=np.int64)
    lu0 = np.asarray(ds["landuse"].values)
    n = int(cities.max(initial=0)) + 1
    urban0 = classes.is_role(lu0, "urban")
    per = pd.concat(records, ignore_index=True)
    rows = []
    for y, da in maps.items():
        lu = np.asarray(da.values)
        urban = classes.is_role(lu, "urban")
        vac = np.asarray(vacancy[y].values, dtype=bool) if y in vacancy else np.zeros(lu.shape, bool)
        restored = urban0 & ~urban
        cnt = {k: np.bincount(cities[m], minlength=n) for k, m in
               (("urban", urban), ("vacant", vac & urban), ("restored", restored))}
        p = per[per.period == y].groupby("city")[["released_cells", "reoccupied_cells", "vacant_cells",
                                                    "restored_cells", "release_shortfall_cells"]].sum()
        for c in range(1, n):
            if not (cities == c).any():
                continue
            r = p.loc[c] if c in p.index else None
            rows.append({"period": y, "city": c, "urban_ha": cnt["urban"][c] * ca,
                         "occupied_ha": (cnt["urban"][c] - cnt["vacant"][c]) * ca, "vacant_ha": cnt["vacant"][c] * ca,
                         "restored_ha": cnt["restored"][c] * ca,
                         "released_ha": 0.0 if r is None else float(r.released_cells) * ca,
                         "newly_vacant_ha": 0.0 if r is None else float(r.vacant_cells) * ca,
                         "newly_restored_ha": 0.0 if r is None else float(r.restored_cells) * ca,
                         "reoccupied_ha": 0.0 if r is None else float(r.reoccupied_cells) * ca,
                         "release_shortfall_ha": 0.0 if r is None else float(r.release_shortfall_cells) * ca})
    return pd.DataFrame(rows)


def run_scenario(
    config: str | os.PathLike | Scenario,
    *,
    out: str | os.PathLike | None = None,
    runs: int | None = None,
    seed: int | None = None,
    solver: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    write: bool = True,
    chunks: int | None = None,
    scheduler: str | None = None,
    keep_runs: bool = False,
    calibration: str | os.PathLike | None = None,
    outputs: str | list[str] | None = None,
    rasters: str | None = None,
) -> RunResult:
    """Run a scenario end to end and write its outputs.

    Parameters
    ----------
    config : path or Scenario
        The scenario YAML (or an already loaded :class:`~landuse.core.config.Scenario`).
    out, runs, seed, solver : optional
        Overrides of ``outputs.folder``, ``growth.runs``, ``growth.seed`` and
        ``allocation.solver``; recorded in the manifest.
    force : bool
        Write into an output folder that holds another scenario's results.
    progress : callable, optional
        Receives event dicts (``stage``, ``period``, ``run`` ...); the CLI draws them.
    write : bool
        Write the output files (the notebook and tests may only want the result).
    chunks, scheduler : optional
        Overrides of ``compute.chunks`` (tiled growth, tile edge in cells) and
        ``compute.scheduler`` (each period's ensemble on Dask); same outputs either way.
    keep_runs : bool
        Keep every Monte Carlo run's map of every period in ``RunResult.run_landuse``
        (each run of a period starts from the representative map of the period before);
        in-memory growth only, for checks on small regions.
    calibration : path, optional
        A ``calibrated.yaml`` written by ``landuse calibrate``: its ``growth`` and
        ``policy`` keys are merged into the scenario (:func:`landuse.calibration.calibrate.apply_calibration`);
        the manifest's ``overrides.calibration`` records the file, its SHA-256 and the values.
    outputs : str or list of str, optional
        Exactly the outputs to compute and write, e.g. ``"maps"`` or ``"maps,allocation,report"``
        (``all``: every one; names in :data:`landuse.core.config.OUTPUT_NAMES`); overrides the
        ``outputs.*`` switches. Policy checks run on the maps either way.
    rasters : {"memory", "disk", "auto"}, optional
        Override of ``compute.rasters``: where the large rasters are kept (disk: memory-mapped
        scratch files in ``compute.scratch``, for regions larger than memory); same outputs either way.

    Returns
    -------
    RunResult
    """
    t_all = time.perf_counter()
    timings = _Timings(t_all)
    t = time.perf_counter()
    scenario = config if isinstance(config, Scenario) else load_scenario(config)
    overrides = apply_overrides(scenario, out=out, runs=runs, seed=seed, solver=solver, chunks=chunks,
                                scheduler=scheduler, outputs=outputs, rasters=rasters)
    if calibration is not None:  # calibrated growth / policy keys, recorded in the manifest
        from landuse.calibration.calibrate import apply_calibration

        scenario, overrides["calibration"] = apply_calibration(scenario, calibration)
    from landuse.core.store import raster_store
    from landuse.io.rasters import read_header

    cfg = scenario.config
    layer_paths = scenario.layer_paths()
    # where the large rasters live (compute.rasters): memory, or scratch files mapped into memory (same results)
    try:
        ref = read_header(layer_paths["landuse"])
        cells = ref.height * ref.width
    except (KeyError, LanduseError):
        cells = 0  # reading the layers below says what is wrong, naming the layer's key
    scratch = scenario.resolve(cfg.compute.scratch) if cfg.compute.scratch is not None else None
    with raster_store(cfg.compute.rasters, scratch, cells=cells) as store:
        return _run_loaded(scenario, overrides, timings, t_all=t_all, t_read=t, force=force, progress=progress,
                           write=write, keep_runs=keep_runs, rasters="memory" if store is None else "disk")


def _run_loaded(scenario: Scenario, overrides: dict[str, Any], timings: _Timings, *, t_all: float,
                t_read: float, force: bool, progress: ProgressFn | None, write: bool, keep_runs: bool,
                rasters: str) -> RunResult:
    """The run of :func:`run_scenario` once the scenario is loaded and overridden, inside its raster store."""
    from landuse.allocation.lp import (
        allocate,
        cell_pieces,
        compare_coordination,
        unit_raster,
        write_allocation_csv,
        write_duals_csv,
        zone_table,
    )
    from landuse.allocation.zones import zone_grid
    from landuse.growth import GrowthParams, simulate
    from landuse.io.rasters import read_landscape
    from landuse.pipeline.validate import check_inputs

    t = t_read
    cfg = scenario.config
    asked = cfg.outputs
    in_memory = cfg.compute.chunks is None and cfg.compute.scheduler is None
    if keep_runs and not in_memory:
        raise LanduseError("keep_runs needs the in-memory growth path (no compute.chunks, no compute.scheduler)")
    if in_memory:
        grow = simulate
    else:
        from landuse.scale.distributed import pipeline_growth

        grow = pipeline_growth(cfg.compute)
    run_landuse: dict[int, list[np.ndarray]] | None = {} if keep_runs else None
    grow_kw: dict[str, Any] = {"keep_runs": True} if keep_runs else {}
    out_dir = scenario.output_dir()
    layer_paths = scenario.layer_paths()
    ds = read_landscape(layer_paths, classes=scenario.classes)
    from landuse.allocation.demand import apply_people_demand

    people = apply_people_demand(scenario, ds)  # demand.people -> demand.by_city (hectares per city and period)
    from landuse.allocation.demand_trend import apply_trend_demand

    trend = apply_trend_demand(scenario, ds)  # demand.share / demand.extrapolate -> hectares per type and period
    check_inputs(ds, scenario)  # what `landuse validate` checks of the layers together, before any solving
    timings["read"] = time.perf_counter() - t
    if write:
        # outputs never share a folder with the layers (whatever --force says): a run writes
        # landuse_<year>.tif, and the inputs are often named the same way
        for p in layer_paths.values():
            if Path(p).resolve().parent == out_dir.resolve():
                raise OutputExistsError(
                    f"output folder {out_dir} holds the input layer {p}; choose another folder with --out"
                )
        prepare_output_dir(out_dir, scenario.name, force=force, protected=_inputs_of(scenario, layer_paths))

    zg = zone_grid(ds, block_size_m=cfg.allocation.block_size_m)
    ds_z = ds.assign(zones=(("y", "x"), zg.zones))
    ds_z["landuse"].attrs.update(ds["landuse"].attrs)
    static_scores: dict = {}  # land-use-independent driver scores: kept from the first period to the last
    suitability_of = _suitability_provider(ds, scenario, timings, static=static_scores)
    classes = scenario.classes
    nodata = classes.nodata
    lu = store_copy(ds["landuse"].values)  # the rasters kept from period to period: in the store, if any
    study_mask = np.asarray(ds["study_area"].values, dtype=bool)
    start_urban = store_by_strips(lu.shape, bool, lambda a, b: classes.is_role(lu[a:b], "urban"))
    not_urban_prob = store_full(lu.shape, 1.0, np.float32)

    allocations = []
    fragmentation: dict[str, Any] = {}
    landuse_by_year: dict[int, xr.DataArray] = {}
    probability: dict[int, Mapping[str, xr.DataArray]] = {}
    shortfalls = []
    farmland_lost = 0.0
    n_periods = len(scenario.period_pairs)
    vacant = store_zeros(lu.shape, bool)
    shrink_records: list[pd.DataFrame] = []
    vacancy_by_year: dict[int, xr.DataArray] = {}
    from landuse.evaluation.expected import expected_map

    expected: dict[int, xr.DataArray] = {}  # expected_<year>.tif: the amounts on the most probable cells
    for p_idx, (_, y1) in enumerate(scenario.period_pairs):
        _log(progress, stage="period", period=y1, period_index=p_idx, periods=n_periods)
        t = time.perf_counter()
        suit = suitability_of(lu)
        if people is not None:
            lu, vacant, rec, restored = _shrink_period(ds, scenario, people, lu, vacant, zg, suit, y1, p_idx)
            shrink_records.append(rec)
            if restored:
                suit = suitability_of(lu)  # restored cells are no longer urban land for the drivers
        if p_idx == n_periods - 1:
            static_scores.clear()  # no later suitability: free them before the last growth, evaluation and writing
        timings[f"suitability_{y1}"] = time.perf_counter() - t

        t = time.perf_counter()
        suit_arr = np.asarray(getattr(suit, "values", suit), dtype=np.float32)
        pieces = cell_pieces(ds, scenario, lu, zg.zones, suit_arr)
        zt = zone_table(ds, scenario, landuse=lu, zones=zg, suitability=suit_arr, pieces=pieces)
        timings[f"zone_table_{y1}"] = time.perf_counter() - t
        t = time.perf_counter()
        _log(progress, stage="allocate", period=y1)
        lost_before = farmland_lost
        alloc = allocate(zt, scenario, y1, farmland_lost_so_far_ha=lost_before)
        allocations.append(alloc)
        timings[f"allocate_{y1}"] = time.perf_counter() - t
        t = time.perf_counter()
        n_cities = int(zt["city"].nunique())
        try:
            if not cfg.outputs.coordination or n_cities < 2:
                raise _NoComparison("switched off (outputs.coordination: false)" if n_cities >= 2 else
                                    "one city only: a city-by-city plan is the cluster-wide plan")
            cmp = compare_coordination(zt, scenario, y1, farmland_lost_so_far_ha=lost_before, solved=alloc)
            fragmentation[str(y1)] = {
                "differences": cmp.differences,
                **{
                    name: {"objective": a.objective, "farmland_lost_ha": a.farmland_lost_ha,
                           "open_space_lost_ha": a.open_space_lost_ha, "mean_distance_new_m": a.mean_distance_new_m}
                    for name, a in (("coordinated", cmp.coordinated), ("fragmented", cmp.fragmented))
                },
            }
        except _NoComparison as exc:
            fragmentation[str(y1)] = {"skipped": str(exc)}
        except LanduseError as exc:
            fragmentation[str(y1)] = {"error": str(exc)}
        timings[f"compare_coordination_{y1}"] = time.perf_counter() - t

        t = time.perf_counter()
        # the engine grows per unit (zone x source group x band) to the plan's whole cells, so every
        # amount the plan sets -- per source role, station band, greenbelt and boundary band -- holds
        ds_p = ds_z.copy()
        ds_p["landuse"] = (("y", "x"), lu)
        ds_p["landuse"].attrs.update(ds["landuse"].attrs)
        ds_p["zones"] = (("y", "x"), unit_raster(ds, scenario, alloc, landuse=lu, zones=zg, suitability=suit,
                                                          pieces=pieces))
        # this period alone, drawn as its index in the scenario: no maps and counts of the other periods
        params = GrowthParams.from_scenario(scenario, ds_p, suitability=suit).replace(periods=(y1,),
                                                                                      period_offset=p_idx)
        del suit, suit_arr, pieces, zt  # the growth needs none of them: free them before its peak
        targets = alloc.unit_targets.rename(columns={"unit": "zone"})

        def growth_progress(ev: dict[str, Any], _y1: int = y1) -> None:
            _log(progress, stage="grow", period=_y1, run=ev["run"], runs=ev["runs"])

        res = grow(ds_p, targets, params=params, runs=cfg.growth.runs, seed=period_seed(cfg.growth.seed, p_idx),
                   progress=growth_progress, **grow_kw)
        if run_landuse is not None:
            run_landuse[y1] = [maps[y1] for maps in res.run_landuse]
        timings[f"grow_{y1}"] = time.perf_counter() - t
        lu_start = lu
        lu = store_copy(res.landuse[y1].values)
        lost = sum(int(np.count_nonzero(classes.is_role(lu_start[a:b], "farmland") & classes.is_role(lu[a:b], "urban")))
                   for a, b in row_strips(*lu.shape))  # counted strip by strip
        farmland_lost += float(lost * cell_area_ha(ds))
        landuse_by_year[y1] = like(ds, lu, f"landuse_{y1}", nodata=nodata)  # a copy: lu changes next period
        if people is not None:  # demand from people may release land: one vacancy map per period
            vacancy_by_year[y1] = like(ds, np.where(study_mask, vacant, 0).astype(np.uint8), f"vacancy_{y1}",
                                       nodata=255)
        probability[y1] = PeriodProbability(ds, res.counts.sel(period=y1), res.runs, y1)
        _not_converted(not_urban_prob, probability[y1], scenario.urban_types)
        shortfalls.append(unit_shortfall(res.shortfall, alloc.units))
        if asked.expected:
            expected[y1] = like(ds, expected_map(lu_start, np.asarray(res.counts.sel(period=y1).values), params,
                                                 np.asarray(ds_p["zones"].values), targets),
                                f"expected_{y1}", nodata=nodata)
        del res, params, ds_p

    t = time.perf_counter()
    study = np.asarray(ds["study_area"].values, dtype=bool)
    p_urban = store_empty(lu.shape, np.float32)
    np.subtract(np.float32(1.0), not_urban_prob, out=p_urban)
    p_urban[start_urban] = 1.0
    p_urban[~study] = np.nan
    urban_probability = like(ds, p_urban, "probability_urban", copy=False)
    ugb = None
    if asked.boundary:  # the boundary's modules are imported only when it is asked for
        from landuse.evaluation.boundary import ugb_from_config

        ugb = ugb_from_config(urban_probability, ds, scenario, landuse=ds["landuse"].values)
        ugb.name = "ugb"
        timings["boundary"] = time.perf_counter() - t

    t = time.perf_counter()
    allocation_df = pd.concat([a.targets for a in allocations], ignore_index=True)
    from landuse.calibration.hindcast import unreachable_sources

    source_warnings = unreachable_sources(ds, scenario, allocation_df)
    shortfall_df = pd.concat(shortfalls, ignore_index=True) if shortfalls else pd.DataFrame()
    transfers_df = pd.concat([a.transfers for a in allocations], ignore_index=True)
    shrink_df = _shrinkage_table(ds, scenario, landuse_by_year, vacancy_by_year, shrink_records)
    report = None
    if asked.report:
        from landuse.report.data import build_report
        extra = {
            "objective": {str(a.period): a.objective for a in allocations},
            "objective_terms": {str(a.period): a.objective_terms for a in allocations},
            "binding_policies": {
                str(a.period): a.duals[a.duals.binding & (a.duals.kind != "demand")][
                    ["constraint", "cost", "unit", "meaning"]].to_dict(orient="records")
                for a in allocations
            },
            "fragmentation": fragmentation,
            "mean_distance_new_m": {str(a.period): a.mean_distance_new_m for a in allocations},
            "shortfall_cells": int(shortfall_df["shortfall"].sum()) if len(shortfall_df) else 0,
            "transfers": transfers_df.to_dict(orient="records"),
            "demand_from_people": (people.change.to_dict(orient="records") if people is not None else []),
            "demand_notes": (people.notes if people is not None else []),
            "demand_trend": trend.to_json() if trend is not None else None,
            "shrinkage": shrink_df.to_dict(orient="records"),
            # how the run was computed (tiles, scheduler) changes no result: the manifest records it, not the report
            "overrides": {k: v for k, v in overrides.items() if not k.startswith("compute.")},
            "source_warnings": source_warnings,
        }
        report = build_report(
            scenario=scenario,
            landscape=ds,
            landuse_by_year=landuse_by_year,
            probability={"urban": urban_probability, **{t_: probability[scenario.periods[-1]][t_] for t_ in scenario.urban_types}},
            ugb=ugb,
            allocation=allocation_df,
            seed=cfg.growth.seed,
            extra=extra,
            start_landuse=ds["landuse"],
            shortfall=shortfall_df,
            probability_by_period=probability,
        )
        checks = report.checks
    else:  # no report: the policy checks still run, on the maps
        from landuse.evaluation.checks import policy_checks

        checks = policy_checks(scenario, ds, landuse_by_year, start_landuse=ds["landuse"].values,
                               allocation=allocation_df, shortfall=shortfall_df, probability=probability)
    timings["evaluate"] = time.perf_counter() - t

    manifest = {
        "scenario": scenario.name,
        "config_file": str(scenario.path) if scenario.path else None,
        "config": scenario.to_dict(),
        "overrides": overrides,
        "seed": cfg.growth.seed,
        "period_seeds": {str(y1): period_seed(cfg.growth.seed, i) for i, (_, y1) in enumerate(scenario.period_pairs)},
        "runs": cfg.growth.runs,
        "solver": cfg.allocation.solver,
        "rasters": rasters,  # where the large rasters were kept (compute.rasters): memory or disk; same results
        # bytes mapped in scratch files so far (an upper bound of the scratch disk used: files go with their arrays)
        "scratch_mapped_bytes": getattr(active_store(), "bytes", 0),
        "versions": package_versions(),
        "inputs": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in layer_paths.items()},
        "outputs": asked.asked(),
        "timings_s": {},
        "files": [],
    }
    if scenario.path:
        manifest["inputs"]["config"] = {"path": str(scenario.path), "sha256": sha256_file(scenario.path)}

    files: list[Path] = []
    if write:
        t = time.perf_counter()
        _log(progress, stage="write")
        protected = _inputs_of(scenario, layer_paths)
        tags = {"scenario": scenario.name, "seed": cfg.growth.seed, "runs": cfg.growth.runs}
        # the whole folder is staged beside out_dir and swapped in with the manifest (landuse.io.folders)
        with protected_inputs(protected), OutputFolder(out_dir, command="run", owner=scenario.name, force=force,
                                                       protected=protected) as stage:
            d = stage.path
            for y1, da in landuse_by_year.items() if asked.maps else ():
                write_geotiff(da, d / f"landuse_{y1}.tif", classes=classes, tags=tags)
            for y1, da in expected.items():
                write_geotiff(da, d / f"expected_{y1}.tif", classes=classes, tags={**tags, "map": "expected"})
            if asked.probability:
                for y1, per_type in probability.items():
                    for typ, da in per_type.items():
                        write_geotiff(da, d / f"probability_{typ}_{y1}.tif", tags=tags)
                write_geotiff(urban_probability, d / "probability_urban.tif", tags=tags)
            if ugb is not None:
                from landuse.evaluation.boundary import write_ugb

                write_ugb(ugb, d, stem="ugb", tags=tags)
            if asked.allocation:
                write_allocation_csv(allocations, d / "allocation.csv")
                write_duals_csv(allocations, d / "duals.csv")
                write_text(d / "shortfall.csv", shortfall_df.to_csv(index=False))
                if len(transfers_df):
                    write_text(d / "transfers.csv", transfers_df.to_csv(index=False, float_format="%.4f"))
            for y1, da in vacancy_by_year.items() if asked.maps else ():
                write_geotiff(da, d / f"vacancy_{y1}.tif", tags=tags)
            if asked.allocation and len(shrink_df):
                write_text(d / "shrinkage.csv", shrink_df.to_csv(index=False, float_format="%.4f"))
            if asked.allocation and people is not None:
                write_text(d / "demand_people.csv", people.need.merge(
                    people.change.rename(columns={"period": "year", "hectares": "change_ha"}),
                    on=["city", "year", "type"], how="left").to_csv(index=False, float_format="%.4f"))
            if report is not None:
                from landuse.report.document import write_report

                write_report(d, report, figures=asked.figures, html=asked.html)
            timings["write"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - t_all
            timings.record(manifest)
            files = stage.commit(manifest)
            manifest = stage.manifest
    else:
        timings["total"] = time.perf_counter() - t_all
        timings.record(manifest)
    return RunResult(
        scenario=scenario,
        out_dir=out_dir,
        landuse=landuse_by_year,
        probability=probability,
        urban_probability=urban_probability,
        ugb=ugb,
        allocations=allocations,
        shortfall=shortfall_df,
        report=report,
        manifest=manifest,
        files=files,
        run_landuse=run_landuse,
        checks=checks,
        warnings=source_warnings,
        landscape=ds,
    )


__all__ = ["PeriodProbability", "RunResult", "apply_overrides", "period_seed", "prepare_output_dir", "run_scenario", "unit_shortfall"]
