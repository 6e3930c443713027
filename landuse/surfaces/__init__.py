"""The per-cell surfaces the allocation and growth stages read: suitability and the planning constraints.

Contract: :mod:`~landuse.surfaces.suitability` scores each cell for each urban type from driver layers (a model
trained on observed change is fitted in :mod:`landuse.calibration`); :mod:`~landuse.surfaces.constraints` turns the red line, permanent farmland, greenbelts and growth boundaries into the never-convert mask and the
constraint factor. Functions take a Landscape and config sections and return arrays; nothing is written here.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "compute_suitability": "landuse.surfaces.suitability",
    "driver_score": "landuse.surfaces.suitability",
    "type_weights": "landuse.surfaces.suitability",
    "never_convert": "landuse.surfaces.constraints",
    "constraint_factor": "landuse.surfaces.constraints",
    "convertible": "landuse.surfaces.constraints",
    "protected_open_space": "landuse.surfaces.constraints",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
