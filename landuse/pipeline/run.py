"""The scenario pipeline: config -> Landscape -> (allocate -> grow) per period -> evaluate -> write.

:func:`run_scenario` is what ``landuse run`` calls. For each period ``(start, end)``:

1. suitability of each urban type from the land use at ``start`` (weighted-linear,
   pre-computed rasters, or a model trained on the history layers);
2. the zone table of that land use and the LP allocation of the period's demand
   (:func:`landuse.allocation.planner.allocate`), plus the city-by-city allocation to measure the
   cost of fragmentation (:func:`landuse.allocation.coordination.compare_coordination`);
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

import copy
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario, load_scenario
from landuse.core.errors import LanduseError
from landuse.pipeline.steps import (
    PeriodProbability,
    ProgressFn,
    Timings,
    finish,
    period_seed,
    prepare,
    prepare_output_dir,
    run_period,
    unit_shortfall,
)
from landuse.pipeline.write import build_manifest, package_versions, sha256_file, write_outputs


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
        """The run's ``report.html``."""
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


def apply_overrides(scenario: Scenario, **overrides: Any) -> dict[str, Any]:
    """Set overrides on ``scenario``'s config (validated, in place); return those that were given.

    :func:`run_scenario` applies them to its own copy of the scenario, never to the caller's.
    """
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
                raise ConfigError(f"`outputs` {shown!r}: {exc}") from None
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
            raise ConfigError(f"`{key}` {value!r}: {msg}") from None
        applied[f"{sections[key]}.{attr}"] = value
    return applied


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
        ``policy`` keys are merged into the scenario (:func:`landuse.calibration.result.apply_calibration`);
        the manifest's ``overrides.calibration`` records the file, its SHA-256 and the values.
    outputs : str or list of str, optional
        Exactly the outputs to compute and write, e.g. ``"maps"`` or ``"maps,allocation,report"``
        (``all``: every one; names in :data:`landuse.core.config_stages.OUTPUT_NAMES`); overrides the
        ``outputs.*`` switches. Policy checks run on the maps either way.
    rasters : {"memory", "disk", "auto"}, optional
        Override of ``compute.rasters``: where the large rasters are kept (disk: memory-mapped
        scratch files in ``compute.scratch``, for regions larger than memory); same outputs either way.

    Returns
    -------
    RunResult
    """
    t_all = time.perf_counter()
    timings = Timings(t_all)
    t = time.perf_counter()
    # a Scenario passed in is copied: the overrides, calibration and derived demand change the run's own copy only
    scenario = copy.deepcopy(config) if isinstance(config, Scenario) else load_scenario(config)
    overrides = apply_overrides(scenario, out=out, runs=runs, seed=seed, solver=solver, chunks=chunks,
                                scheduler=scheduler, outputs=outputs, rasters=rasters)
    if calibration is not None:  # calibrated growth / policy keys, recorded in the manifest
        from landuse.calibration.result import apply_calibration

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


def _run_loaded(scenario: Scenario, overrides: dict[str, Any], timings: Timings, *, t_all: float,
                t_read: float, force: bool, progress: ProgressFn | None, write: bool, keep_runs: bool,
                rasters: str) -> RunResult:
    """The run of :func:`run_scenario` once the scenario is loaded and overridden, inside its raster store."""
    state = prepare(scenario, timings, t_read=t_read, force=force, progress=progress, write=write,
                    keep_runs=keep_runs)
    for p_idx, (_, y1) in enumerate(scenario.period_pairs):
        run_period(state, p_idx, y1)
    fin = finish(state, overrides)
    manifest = build_manifest(state, overrides, rasters)
    files: list[Path] = []
    if write:
        files, manifest = write_outputs(state, fin, manifest, force=force, t_all=t_all)
    else:
        timings["total"] = time.perf_counter() - t_all
        timings.record(manifest)
    return RunResult(
        scenario=scenario,
        out_dir=state.out_dir,
        landuse=state.landuse_by_year,
        probability=state.probability,
        urban_probability=fin.urban_probability,
        ugb=fin.ugb,
        allocations=state.allocations,
        shortfall=fin.shortfall,
        report=fin.report,
        manifest=manifest,
        files=files,
        run_landuse=state.run_landuse,
        checks=fin.checks,
        warnings=fin.source_warnings,
        landscape=state.ds,
    )


__all__ = ["PeriodProbability", "RunResult", "apply_overrides", "package_versions", "period_seed",
           "prepare_output_dir", "run_scenario", "sha256_file", "unit_shortfall"]
