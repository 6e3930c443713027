"""Growth on rasters larger than memory and ensembles on many workers (Dask).

Contract: :mod:`~landuse.scale.tiled` runs the growth engine tile by tile (same seed, same map as the in-memory
engine, whatever the tiles or workers); :mod:`~landuse.scale.distributed` batches scenarios and Monte Carlo runs
on ``dask.distributed``. Dask is optional: it is imported only when these are used.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "simulate_tiled": "landuse.scale.tiled",
    "grow_tiled": "landuse.scale.tiled",
    "TileGrid": "landuse.scale.tiled",
    "simulate_ensemble": "landuse.scale.distributed",
    "dask_client": "landuse.scale.distributed",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
