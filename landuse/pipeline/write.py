"""The outputs of ``landuse run``: the manifest, then every file staged and swapped in whole.

:func:`build_manifest` records the scenario as resolved, the overrides, seeds, versions and the SHA-256 of every
input; :func:`write_outputs` writes the maps, tables and report asked for (``outputs.*``) into a staging folder
beside the output folder and swaps it in with the manifest last (:class:`landuse.io.folders.OutputFolder`), so an
interrupted run leaves the earlier folder intact.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from pathlib import Path
from typing import Any

from landuse.core.store import active_store
from landuse.io.folders import OutputFolder
from landuse.io.rasters import protected_inputs, write_geotiff, write_text
from landuse.pipeline.steps import Finished, RunState, _inputs_of, _log, period_seed


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


def build_manifest(state: RunState, overrides: dict[str, Any], rasters: str) -> dict[str, Any]:
    """The run's ``manifest.json`` before its timings and files (added when the folder is written)."""
    scenario = state.scenario
    cfg = scenario.config
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
        "inputs": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in state.layer_paths.items()},
        "outputs": cfg.outputs.asked(),
        "timings_s": {},
        "files": [],
    }
    if scenario.path:
        manifest["inputs"]["config"] = {"path": str(scenario.path), "sha256": sha256_file(scenario.path)}
    return manifest


def write_outputs(state: RunState, fin: Finished, manifest: dict[str, Any], *, force: bool,
                  t_all: float) -> tuple[list[Path], dict[str, Any]]:
    """Write every output asked for and the manifest; return the files written and the manifest as written."""
    scenario, timings = state.scenario, state.timings
    cfg = scenario.config
    asked = cfg.outputs
    classes = scenario.classes
    t = time.perf_counter()
    _log(state.progress, stage="write")
    protected = _inputs_of(scenario, state.layer_paths)
    tags = {"scenario": scenario.name, "seed": cfg.growth.seed, "runs": cfg.growth.runs}
    # the whole folder is staged beside out_dir and swapped in with the manifest (landuse.io.folders)
    with protected_inputs(protected), OutputFolder(state.out_dir, command="run", owner=scenario.name, force=force,
                                                   protected=protected) as stage:
        d = stage.path
        for y1, da in state.landuse_by_year.items() if asked.maps else ():
            write_geotiff(da, d / f"landuse_{y1}.tif", classes=classes, tags=tags)
        for y1, da in state.expected.items():
            write_geotiff(da, d / f"expected_{y1}.tif", classes=classes, tags={**tags, "map": "expected"})
        if asked.probability:
            for y1, per_type in state.probability.items():
                for typ, da in per_type.items():
                    write_geotiff(da, d / f"probability_{typ}_{y1}.tif", tags=tags)
            write_geotiff(fin.urban_probability, d / "probability_urban.tif", tags=tags)
        if fin.ugb is not None:
            from landuse.evaluation.boundary import write_ugb

            write_ugb(fin.ugb, d, stem="ugb", tags=tags)
        if asked.allocation:
            _write_tables(state, fin, d)
        for y1, da in state.vacancy_by_year.items() if asked.maps else ():
            write_geotiff(da, d / f"vacancy_{y1}.tif", tags=tags)
        if asked.allocation and len(fin.shrinkage):
            write_text(d / "shrinkage.csv", fin.shrinkage.to_csv(index=False, float_format="%.4f"))
        if asked.allocation and state.people is not None:
            people = state.people
            write_text(d / "demand_people.csv", people.need.merge(
                people.change.rename(columns={"period": "year", "hectares": "change_ha"}),
                on=["city", "year", "type"], how="left").to_csv(index=False, float_format="%.4f"))
        if fin.report is not None:
            from landuse.report.document import write_report

            write_report(d, fin.report, figures=asked.figures, html=asked.html)
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_all
        timings.record(manifest)
        files = stage.commit(manifest)
        return files, stage.manifest


def _write_tables(state: RunState, fin: Finished, d: Path) -> None:
    """``allocation.csv``, ``duals.csv``, ``shortfall.csv`` and (when any) ``transfers.csv``."""
    from landuse.allocation.tables import write_allocation_csv, write_duals_csv

    write_allocation_csv(state.allocations, d / "allocation.csv")
    write_duals_csv(state.allocations, d / "duals.csv")
    write_text(d / "shortfall.csv", fin.shortfall.to_csv(index=False))
    if len(fin.transfers):
        write_text(d / "transfers.csv", fin.transfers.to_csv(index=False, float_format="%.4f"))
