"""Fitting the growth model on the past and testing it there.

Contract: :mod:`~landuse.calibration.calibrate` searches the growth parameters against a historical pair of maps;
:mod:`~landuse.calibration.suitability_model` learns suitability from the
change observed between two maps; :mod:`~landuse.calibration.hindcast` runs the fitted model from an earlier map to a later one and scores it
against null models. Both use the suitability of :mod:`landuse.surfaces` and the statistics of
:mod:`landuse.evaluation`.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "calibrate_scenario": "landuse.calibration.calibrate",
    "apply_calibration": "landuse.calibration.calibrate",
    "hindcast_scenario": "landuse.calibration.hindcast",
    "train_suitability": "landuse.calibration.suitability_model",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
