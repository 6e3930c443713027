"""``landuse run``: one scenario from its config to its output folder.

Contract: :func:`~landuse.pipeline.run.run_scenario` prepares the inputs (landscape, suitability, constraints,
zones), runs each period (allocation, then growth), evaluates and writes every output atomically;
:func:`~landuse.pipeline.variants.run_variants` runs one scenario under several demand variants;
:func:`~landuse.pipeline.batch.run_batch` several scenarios (on Dask if asked); :mod:`~landuse.pipeline.validate`
checks a scenario's inputs before any solving (``landuse validate``, and every run).
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "run_scenario": "landuse.pipeline.run",
    "run_variants": "landuse.pipeline.variants",
    "run_batch": "landuse.pipeline.batch",
    "validate_scenario": "landuse.pipeline.validate",
    "input_problems": "landuse.pipeline.validate",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
