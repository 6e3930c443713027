"""landuse: land-use allocation and growth-boundary modelling for city clusters."""

from __future__ import annotations

import os
from typing import Any

# numba's OpenMP threads spin while waiting by default; on a machine shared with other work
# that makes parallel kernels up to 50x slower. Passive waiting costs nothing measurable when
# the cores are free. Set before any numba parallel region runs; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from landuse.core.lazy import lazy_exports  # after the environment is set

# The facade a notebook or script uses: the names below load on first use, from the stage package that
# defines them (see docs/architecture.md), so ``import landuse`` stays cheap.
_EXPORTS = {
    "LanduseError": "landuse.core.errors",
    "ConfigError": "landuse.core.errors",
    "load_scenario": "landuse.core.config",
    "scenario_from_dict": "landuse.core.config",
    "transform_of": "landuse.core.landscape",
    "read_landscape": "landuse.io.rasters",
    "write_geotiff": "landuse.io.rasters",
    "generate_sample": "landuse.sample.generate",
    "build_sample": "landuse.sample.region",
    "compute_suitability": "landuse.surfaces.suitability",
    "allocate": "landuse.allocation.planner",
    "simulate": "landuse.growth.engine",
    "run_scenario": "landuse.pipeline.run",
    "run_variants": "landuse.pipeline.variants",
    "validate_scenario": "landuse.pipeline.validate",
    "quota_report": "landuse.evaluation.metrics",
    "policy_checks": "landuse.evaluation.checks",
    "failure_lines": "landuse.evaluation.checks",
    "compare_runs": "landuse.report.compare",
    "calibrate_scenario": "landuse.calibration.run",
    "hindcast_scenario": "landuse.calibration.hindcast",
    "run_sleuth": "landuse.sleuth.model",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    # the version is looked up on first use: importlib.metadata costs ~50 ms at start-up
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("landuse")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0+unknown"
    return _load(name)


_load, _listed = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(set(_listed()) | {"__version__"})
