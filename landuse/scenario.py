"""The scenario pipeline: config -> Landscape -> (allocate -> grow) per period -> evaluate -> write.

:func:`run_scenario` is what ``landuse run`` calls. For each period ``(start, end)``:

1. suitability of each urban type from the land use at ``start`` (weighted-linear,
   pre-computed rasters, or a model trained on the history layers);
2. the zone table of that land use and the LP allocation of the period's demand
   (:func:`landuse.allocate.allocate`), plus the city-by-city allocation to measure the
   cost of fragmentation (:func:`landuse.allocate.compare_coordination`);
3. the growth engine places the allocated cells per zone and type over ``runs`` Monte
   Carlo runs (:func:`landuse.growth.simulate`); the representative run's map is the
   land use at ``end`` and the start of the next period.

Each period's growth has its own seed, derived from the scenario seed and the period
index with the counter-based hash, so periods never share random draws.

After the last period the growth boundary is delineated from the probability that a
cell is urban at the horizon, ``1 - prod_t (1 - p_t)`` over the periods' conversion
probabilities ``p_t`` (existing urban land counts as 1), and the report is built.

Outputs (all written atomically into the output folder):

``landuse_<year>.tif``                 land use of the representative run, each period end
``probability_<type>_<year>.tif``       share of runs converting the cell to the type in the period
``probability_urban.tif``               probability of being urban at the horizon
``ugb.tif``, ``ugb.geojson``            the delineated growth boundary
``allocation.csv``, ``duals.csv``       the LP allocation and shadow prices of every period
``shortfall.csv``                       cells the growth engine could not place (zone, type)
``report.json|md|html``, ``figures/``   the evaluation report
``manifest.json``                       scenario, config as resolved, overrides, seed, versions,
                                        SHA-256 of every input, timings per stage
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.classes import URBAN_TYPES
from landuse.config import Scenario, load_scenario
from landuse.errors import LanduseError, OutputExistsError, make_output_dir
from landuse.io import protected_inputs, write_geotiff, write_text
from landuse.landscape import like

ProgressFn = Callable[[dict[str, Any]], None]

_PURPOSE_PERIOD_SEED = 0x5EED


@dataclass
class RunResult:
    """What :func:`run_scenario` produced."""

    scenario: Scenario
    out_dir: Path
    landuse: dict[int, xr.DataArray]
    probability: dict[int, dict[str, xr.DataArray]]
    urban_probability: xr.DataArray
    ugb: xr.DataArray
    allocations: list[Any]
    shortfall: pd.DataFrame
    report: Any
    manifest: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"


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
    }
    sections = {"runs": "growth", "seed": "growth", "solver": "allocation", "chunks": "compute", "scheduler": "compute"}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "out":
            cfg.outputs.folder = Path(value).resolve()
            applied["outputs.folder"] = str(Path(value).resolve())
            continue
        section, attr = mapping[key]
        if key == "scheduler":
            from landuse.distributed import check_scheduler

            check_scheduler(value)
        try:
            setattr(section, attr, value)
        except Exception as exc:  # pydantic ValidationError: re-raise as a clear config error
            from landuse.errors import ConfigError

            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "errors.pydantic.dev" not in ln]
            msg = lines[-1].split(" [type=")[0].replace("Value error, ", "")
            raise ConfigError(f"--{key} {value!r}: {msg}") from None
        applied[f"{sections[key]}.{attr}"] = value
    return applied


def prepare_output_dir(out_dir: Path, scenario_name: str, *, force: bool = False) -> None:
    """Refuse to write into a folder holding another scenario's outputs (or other files) unless ``force``."""
    if not out_dir.exists():
        make_output_dir(out_dir)
        return
    if not out_dir.is_dir():
        raise OutputExistsError(f"output path {out_dir} exists and is not a folder; choose another --out")
    entries = [p for p in out_dir.iterdir() if not p.name.startswith(".")]
    if not entries or force:
        return
    manifest = out_dir / "manifest.json"
    if manifest.exists():
        try:
            other = json.loads(manifest.read_text()).get("scenario")
        except (OSError, ValueError):
            other = None
        if other == scenario_name:
            return
        raise OutputExistsError(
            f"output folder {out_dir} holds the results of scenario {other!r}, not {scenario_name!r}; "
            "choose another folder with --out, or pass --force to overwrite"
        )
    raise OutputExistsError(
        f"output folder {out_dir} is not empty and holds no landuse manifest; choose another folder with --out, "
        "or pass --force to write into it"
    )


def _log(progress: ProgressFn | None, **event: Any) -> None:
    if progress is not None:
        progress(event)


def _suitability_provider(ds: xr.Dataset, scenario: Scenario, timings: dict[str, float]):
    """A function land use -> suitability DataArray, per the scenario's suitability method."""
    from landuse.suitability import compute_suitability

    cfg = scenario.config.growth.suitability
    if cfg.method != "trained":
        return lambda lu: compute_suitability(ds, scenario, landuse=lu)
    from landuse.suitability_model import train_suitability

    t = time.perf_counter()
    trained = train_suitability(ds, scenario, method=cfg.model, seed=scenario.config.growth.seed)
    timings["train_suitability"] = time.perf_counter() - t
    return lambda lu: trained.predict(ds, scenario, lu)


_SOURCE_ROLES = ("farmland", "open_space", "other")


def honour_source_split(
    potential: np.ndarray, zones: np.ndarray, landuse: np.ndarray, targets: pd.DataFrame, scenario: Scenario
) -> np.ndarray:
    """Zero the potential of cells whose source role the allocation did not use in their zone.

    The LP decides hectares per zone, urban type *and source role* (farmland, open space,
    other); the growth engine meets targets per zone and type. So that the cells it picks
    come from the land the LP planned to convert, a non-urban cell of role ``r`` in zone
    ``z`` keeps a positive potential for type ``k`` only if the allocation converts some
    land of role ``r`` in zone ``z`` to ``k``. (Where the LP takes several roles in one zone
    the engine chooses among them by potential; the report checks the quotas on the map.)

    Parameters
    ----------
    potential : ndarray of uint8 (type, rows, cols)
        Quantised potentials (``GrowthParams.potential``); a modified copy is returned.
    zones : ndarray of int32
    landuse : ndarray of uint8
        Land use at the start of the period.
    targets : DataFrame
        Allocation targets with ``zone, type, from_farmland_ha, from_open_space_ha, from_other_ha``.
    scenario : Scenario
    """
    classes = scenario.classes
    cols = [f"from_{r}_ha" for r in _SOURCE_ROLES]
    if not all(c in targets for c in cols):
        return potential
    role_idx = np.full(256, -1, dtype=np.int8)
    for i, r in enumerate(_SOURCE_ROLES):
        role_idx[list(classes.codes_with_role(r))] = i
    cell_role = role_idx[landuse]
    n_zone = int(zones.max(initial=0)) + 1
    out = potential.copy()
    for k, t in enumerate(URBAN_TYPES):
        sub = targets[targets["type"] == t]
        allowed = np.zeros((n_zone, len(_SOURCE_ROLES)), dtype=bool)
        for i, c in enumerate(cols):
            z = sub.loc[sub[c] > 1e-9, "zone"].to_numpy(dtype=np.int64)
            allowed[z[z < n_zone], i] = True
        blocked = (cell_role >= 0) & ~allowed[zones, np.maximum(cell_role, 0)]
        out[k][blocked] = 0
    return out


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
) -> RunResult:
    """Run a scenario end to end and write its outputs.

    Parameters
    ----------
    config : path or Scenario
        The scenario YAML (or an already loaded :class:`~landuse.config.Scenario`).
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

    Returns
    -------
    RunResult
    """
    from landuse.allocate import allocate, compare_coordination, write_allocation_csv, write_duals_csv, zone_table
    from landuse.boundary import ugb_from_config, write_ugb
    from landuse.distributed import pipeline_growth
    from landuse.growth import GrowthParams, simulate
    from landuse.io import read_landscape
    from landuse.report import build_report, write_report
    from landuse.validate import check_inputs
    from landuse.zones import zone_grid

    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    scenario = config if isinstance(config, Scenario) else load_scenario(config)
    overrides = apply_overrides(scenario, out=out, runs=runs, seed=seed, solver=solver, chunks=chunks,
                                scheduler=scheduler)
    cfg = scenario.config
    grow = simulate if cfg.compute.chunks is None and cfg.compute.scheduler is None else pipeline_growth(cfg.compute)
    out_dir = scenario.output_dir()
    layer_paths = scenario.layer_paths()
    ds = read_landscape(layer_paths, classes=scenario.classes)
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
        prepare_output_dir(out_dir, scenario.name, force=force)

    zg = zone_grid(ds, block_size_m=cfg.allocation.block_size_m)
    ds_z = ds.assign(zones=(("y", "x"), zg.zones))
    ds_z["landuse"].attrs.update(ds["landuse"].attrs)
    suitability_of = _suitability_provider(ds, scenario, timings)
    classes = scenario.classes
    nodata = classes.nodata
    lu = np.asarray(ds["landuse"].values).copy()
    start_urban = classes.is_role(lu, *URBAN_TYPES)
    not_urban_prob = np.ones(lu.shape, dtype=np.float32)

    allocations = []
    fragmentation: dict[str, Any] = {}
    landuse_by_year: dict[int, xr.DataArray] = {}
    probability: dict[int, dict[str, xr.DataArray]] = {}
    shortfalls = []
    farmland_lost = 0.0
    n_periods = len(scenario.period_pairs)
    for p_idx, (_, y1) in enumerate(scenario.period_pairs):
        _log(progress, stage="period", period=y1, period_index=p_idx, periods=n_periods)
        t = time.perf_counter()
        suit = suitability_of(lu)
        timings[f"suitability_{y1}"] = time.perf_counter() - t

        t = time.perf_counter()
        zt = zone_table(ds, scenario, landuse=lu, zones=zg, suitability=suit)
        timings[f"zone_table_{y1}"] = time.perf_counter() - t
        t = time.perf_counter()
        _log(progress, stage="allocate", period=y1)
        lost_before = farmland_lost
        alloc = allocate(zt, scenario, y1, farmland_lost_so_far_ha=lost_before)
        allocations.append(alloc)
        farmland_lost += alloc.farmland_lost_ha
        timings[f"allocate_{y1}"] = time.perf_counter() - t
        t = time.perf_counter()
        try:
            cmp = compare_coordination(zt, scenario, y1, farmland_lost_so_far_ha=lost_before, solved=alloc)
            fragmentation[str(y1)] = {
                "differences": cmp.differences,
                **{
                    name: {"objective": a.objective, "farmland_lost_ha": a.farmland_lost_ha,
                           "open_space_lost_ha": a.open_space_lost_ha, "mean_distance_new_m": a.mean_distance_new_m}
                    for name, a in (("coordinated", cmp.coordinated), ("fragmented", cmp.fragmented))
                },
            }
        except LanduseError as exc:
            fragmentation[str(y1)] = {"error": str(exc)}
        timings[f"compare_coordination_{y1}"] = time.perf_counter() - t

        t = time.perf_counter()
        ds_p = ds_z.copy()
        ds_p["landuse"] = (("y", "x"), lu)
        ds_p["landuse"].attrs.update(ds["landuse"].attrs)
        params = GrowthParams.from_scenario(scenario, ds_p, suitability=suit)
        params = params.replace(potential=honour_source_split(params.potential, zg.zones, lu, alloc.targets, scenario))
        targets = alloc.targets[["period", "zone", "type", "cells"]]
        targets = targets[targets.cells > 0]

        def growth_progress(ev: dict[str, Any], _y1: int = y1) -> None:
            _log(progress, stage="grow", period=_y1, run=ev["run"], runs=ev["runs"])

        res = grow(ds_p, targets, params=params, runs=cfg.growth.runs, seed=period_seed(cfg.growth.seed, p_idx),
                   progress=growth_progress)
        timings[f"grow_{y1}"] = time.perf_counter() - t
        lu = np.asarray(res.landuse[y1].values).copy()
        landuse_by_year[y1] = like(ds, lu, f"landuse_{y1}", nodata=nodata)
        probability[y1] = {}
        p_any = np.zeros(lu.shape, dtype=np.float32)
        for typ in URBAN_TYPES:
            pk = res.probability[typ].sel(period=y1).values.astype(np.float32)
            probability[y1][typ] = like(ds, pk, f"probability_{typ}_{y1}")
            p_any += pk
        not_urban_prob *= np.clip(1.0 - p_any, 0.0, 1.0)
        sf = res.shortfall.copy()
        shortfalls.append(sf)
        del res, params, ds_p

    t = time.perf_counter()
    study = np.asarray(ds["study_area"].values, dtype=bool)
    p_urban = np.where(start_urban, 1.0, 1.0 - not_urban_prob).astype(np.float32)
    p_urban[~study] = np.nan
    urban_probability = like(ds, p_urban, "probability_urban")
    ugb = ugb_from_config(urban_probability, ds, scenario, landuse=ds["landuse"].values)
    ugb.name = "ugb"
    timings["boundary"] = time.perf_counter() - t

    t = time.perf_counter()
    allocation_df = pd.concat([a.targets for a in allocations], ignore_index=True)
    shortfall_df = pd.concat(shortfalls, ignore_index=True) if shortfalls else pd.DataFrame()
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
        "overrides": overrides,
    }
    report = build_report(
        scenario=scenario,
        landscape=ds,
        landuse_by_year=landuse_by_year,
        probability={"urban": urban_probability, **{t_: probability[scenario.periods[-1]][t_] for t_ in URBAN_TYPES}},
        ugb=ugb,
        allocation=allocation_df,
        seed=cfg.growth.seed,
        extra=extra,
    )
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
        "versions": package_versions(),
        "inputs": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in layer_paths.items()},
        "timings_s": {},
        "files": [],
    }
    if scenario.path:
        manifest["inputs"]["config"] = {"path": str(scenario.path), "sha256": sha256_file(scenario.path)}

    files: list[Path] = []
    if write:
        t = time.perf_counter()
        _log(progress, stage="write")
        protected = [str(p) for p in layer_paths.values()] + ([str(scenario.path)] if scenario.path else [])
        tags = {"scenario": scenario.name, "seed": cfg.growth.seed, "runs": cfg.growth.runs}
        with protected_inputs(protected):
            for y1, da in landuse_by_year.items():
                files.append(write_geotiff(da, out_dir / f"landuse_{y1}.tif", classes=classes, tags=tags))
            if cfg.outputs.probability:
                for y1, per_type in probability.items():
                    for typ, da in per_type.items():
                        files.append(write_geotiff(da, out_dir / f"probability_{typ}_{y1}.tif", tags=tags))
                files.append(write_geotiff(urban_probability, out_dir / "probability_urban.tif", tags=tags))
            files += write_ugb(ugb, out_dir, stem="ugb", tags=tags)
            files.append(write_allocation_csv(allocations, out_dir / "allocation.csv"))
            files.append(write_duals_csv(allocations, out_dir / "duals.csv"))
            files.append(write_text(out_dir / "shortfall.csv", shortfall_df.to_csv(index=False)))
            files += write_report(out_dir, report, figures=cfg.outputs.figures, html=cfg.outputs.html)
        timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    manifest["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    manifest["files"] = sorted(str(p.relative_to(out_dir)) for p in files)
    if write:
        with protected_inputs(protected):
            files.append(write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n"))
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
    )


__all__ = ["RunResult", "apply_overrides", "honour_source_split", "period_seed", "prepare_output_dir", "run_scenario"]
