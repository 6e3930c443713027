"""Fitting the growth model on the past and testing it there.

Contract: the calibration of the growth parameters against a historical pair of maps is split by concern —
:mod:`~landuse.calibration.parameters` (the calibrated parameters and the unit cube searched),
:mod:`~landuse.calibration.amounts` (the observed change as amounts to grow),
:mod:`~landuse.calibration.setup` (the historical set-up computed once, one point simulated and scored, the null
model), :mod:`~landuse.calibration.objective` (what is maximised), :mod:`~landuse.calibration.search` (Sobol
design, Bayesian steps, finalists, refinement), :mod:`~landuse.calibration.result` (the outputs written, a
``calibrated.yaml`` applied) and :mod:`~landuse.calibration.run` (``landuse calibrate``, end to end);
:mod:`~landuse.calibration.suitability_model` learns suitability from the change observed between two maps;
:mod:`~landuse.calibration.hindcast` runs the fitted model from an earlier map to a later one and scores it against
null models. They use the suitability and constraints of :mod:`landuse.surfaces` and the statistics of
:mod:`landuse.evaluation.agreement` (figure of merit, Kappa-simulation, Lee–Sallee, the joint histogram), never
copies of them.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "PARAMETERS": "landuse.calibration.parameters",
    "OBJECTIVES": "landuse.calibration.objective",
    "AMOUNTS": "landuse.calibration.amounts",
    "HistoricalSetup": "landuse.calibration.setup",
    "historical_setup": "landuse.calibration.setup",
    "null_model": "landuse.calibration.setup",
    "calibrate": "landuse.calibration.search",
    "CalibrationResult": "landuse.calibration.result",
    "write_calibration": "landuse.calibration.result",
    "apply_calibration": "landuse.calibration.result",
    "calibrate_scenario": "landuse.calibration.run",
    "hindcast_scenario": "landuse.calibration.hindcast",
    "train_suitability": "landuse.calibration.suitability_model",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
