"""``landuse calibrate``: a scenario calibrated against its history, end to end.

:func:`calibrate_scenario` reads the scenario and its layers, prepares the historical set-up
(:func:`landuse.calibration.setup.historical_setup`), searches (:func:`landuse.calibration.search.calibrate`) and
writes the outputs (:func:`landuse.calibration.result.write_calibration`) as one folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from landuse.calibration.result import CalibrationResult, write_calibration
from landuse.calibration.search import calibrate
from landuse.calibration.setup import historical_setup
from landuse.core.config import Scenario

__all__ = ["calibrate_scenario"]


def calibrate_scenario(
    config: str | Path | Scenario,
    *,
    out: str | Path | None = None,
    budget: int | None = None,
    runs: int | None = None,
    objective: str | None = None,
    seed: int | None = None,
    parallel: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    write: bool = True,
    force: bool = False,
) -> tuple[CalibrationResult, dict[str, Path]]:
    """Read a scenario, calibrate it against its history and write the outputs.

    ``out`` defaults to ``<outputs.folder>/calibration``; it is written as a whole
    (:class:`landuse.io.folders.OutputFolder`), and a folder another command or scenario
    wrote is replaced only with ``force``. Other options override the scenario's
    ``calibration`` section. Returns the result and the written files.
    """
    from landuse.core.config import load_scenario
    from landuse.io.folders import OutputFolder, check_target
    from landuse.io.rasters import read_landscape

    scenario = config if isinstance(config, Scenario) else load_scenario(config)
    target = Path(out) if out is not None else scenario.output_dir() / "calibration"
    inputs = [*scenario.layer_paths().values(), *([scenario.path] if scenario.path else [])]
    if write:  # before the search, which takes minutes
        check_target(target, command="calibrate", owner=scenario.name, force=force, protected=inputs)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    setup = historical_setup(ds, scenario, history_year=scenario.config.calibration.history_year)
    result = calibrate(setup, budget=budget, runs=runs, objective=objective, seed=seed, parallel=parallel,
                       progress=progress)
    files: dict[str, Path] = {}
    if write:
        with OutputFolder(target, command="calibrate", owner=scenario.name, force=force, protected=inputs) as stage:
            staged = write_calibration(result, stage.path, scenario=scenario)
            stage.commit({"scenario": scenario.name, "objective": result.objective, "best": result.best})
        files = {k: target / p.name for k, p in staged.items()}
    return result, files
