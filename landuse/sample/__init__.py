"""Synthetic study regions: the shipped sample city cluster and megaregions of any size."""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "build_sample": "landuse.sample.region",
    "generate_sample": "landuse.sample.generate",
    "build_megaregion": "landuse.sample.mega",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
