"""The SLEUTH urban growth model: its scenario files, its kernels and ``landuse sleuth``.

Contract: :func:`~landuse.sleuth.model.run_sleuth` runs a SLEUTH scenario file (test, calibrate, predict) with
SLEUTH's inputs (:mod:`~landuse.sleuth.inputs`) and writes SLEUTH's outputs and logs (:mod:`~landuse.sleuth.logs`);
:mod:`~landuse.sleuth.kernels` and :mod:`~landuse.sleuth.pattern` are its numba kernels. It
shares only the random streams of :mod:`landuse.growth` and the file formats of :mod:`landuse.io`.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "run_sleuth": "landuse.sleuth.model",
    "simulate_sleuth": "landuse.sleuth.model",
    "load_inputs": "landuse.sleuth.inputs",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
