"""Everything landuse reads from and writes to disk.

Contract: outputs are written atomically (a temporary file renamed into place) inside output folders replaced as
a whole or not at all (:mod:`~landuse.io.folders`); GeoTIFFs and Cloud-Optimised GeoTIFFs are read and written
with rasterio (:mod:`~landuse.io.rasters`), window by window where a raster can be large (strips of
:mod:`landuse.core.strips`, into the raster store of :mod:`landuse.core.store`); SLEUTH's scenario files and GIF inputs are
parsed in :mod:`~landuse.io.sleuth_files`; rasters larger than memory are read and written window by window
(:mod:`~landuse.io.windows`). Inputs are never modified.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "read_landscape": "landuse.io.rasters",
    "read_layer": "landuse.io.rasters",
    "read_band": "landuse.io.rasters",
    "write_geotiff": "landuse.io.rasters",
    "check_same_grid": "landuse.io.rasters",
    "OutputFolder": "landuse.io.folders",
    "verify_folder": "landuse.io.folders",
    "atomic_path": "landuse.io.folders",
    "write_text": "landuse.io.folders",
    "write_bytes": "landuse.io.folders",
    "raster_store": "landuse.core.store",
    "store_empty": "landuse.core.store",
    "store_zeros": "landuse.core.store",
    "store_full": "landuse.core.store",
    "store_by_strips": "landuse.core.store",
    "SleuthScenario": "landuse.io.sleuth_files",
    "WindowedGeoTIFF": "landuse.io.windows",
    "read_window": "landuse.io.windows",
    "raster_profile": "landuse.io.windows",
    "read_scenario": "landuse.io.sleuth_files",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
