"""The urban cellular automaton: which cells convert to meet each zone's targets, over Monte Carlo runs.

Contract: :func:`simulate` grows urban land of each type to meet per-zone targets (from :mod:`landuse.allocation`)
under the never-convert mask and the constraint factor (from :mod:`landuse.surfaces`); :class:`GrowthParams` holds
its precomputed inputs and :class:`GrowthResult` its outcome (final maps, per-cell conversion counts). The same
seed gives bit-identical results whatever the number of threads. :mod:`~landuse.growth.engine` is the driver,
:mod:`~landuse.growth.kernels` its entry numba kernels, built from :mod:`~landuse.growth.bits` (bitsets,
intrinsics), :mod:`~landuse.growth.races` (a candidate's race, key brackets), :mod:`~landuse.growth.selection`
(the smallest keys per group, heaps) and :mod:`~landuse.growth.frontier` (eligibility and frontier bitsets, the
candidate list); :mod:`~landuse.growth.random` holds the counter-based random streams every model shares. See
``docs/growth.md``.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "GrowthInputError": "landuse.growth.engine",
    "GrowthParams": "landuse.growth.engine",
    "GrowthResult": "landuse.growth.engine",
    "potential_levels": "landuse.growth.engine",
    "quantise_potential": "landuse.growth.engine",
    "simulate": "landuse.growth.engine",
    "targets_frame": "landuse.growth.engine",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
