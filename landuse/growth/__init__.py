"""The urban cellular automaton: which cells convert to meet each zone's targets, over Monte Carlo runs.

Contract: :func:`simulate` grows urban land of each type to meet per-zone targets (from :mod:`landuse.allocation`)
under the never-convert mask and the constraint factor (from :mod:`landuse.surfaces`); :class:`GrowthParams` holds
its precomputed inputs and :class:`GrowthResult` its outcome (final maps, per-cell conversion counts). The same
seed gives bit-identical results whatever the number of threads.

The growth plan (:mod:`~landuse.growth.plan`) is what every growth path shares, and what :mod:`landuse.scale`
builds its tiled and distributed paths on: :func:`check_inputs`, :func:`zone_raster`, :func:`period_years`,
:func:`zone_cell_counts` and :func:`target_array` validate the inputs; :func:`build_plan` plans a simulation
(:class:`GrowthPlan`); :func:`period_schedule` runs the phases of one period with the steps it is given (stream
keys from :func:`stream_keys`); :func:`run_ensemble` grows runs in memory, one :class:`RunLog` each; and
:func:`finish_ensemble` turns the logs into a :class:`GrowthResult` (with :func:`add_counts`,
:func:`count_dtype` and :func:`shortfall_table`, which the tiled path uses tile by tile).

Modules: :mod:`~landuse.growth.engine` is the driver (:func:`simulate`), :mod:`~landuse.growth.params` what it
takes and gives, :mod:`~landuse.growth.plan` the plan above, :mod:`~landuse.growth.state` one run's state and
steps in memory, :mod:`~landuse.growth.kernels` the entry numba kernels, built from :mod:`~landuse.growth.bits`
(bitsets, intrinsics), :mod:`~landuse.growth.races` (a candidate's race, key brackets),
:mod:`~landuse.growth.selection` (the smallest keys per group, heaps) and :mod:`~landuse.growth.frontier`
(eligibility and frontier bitsets, the candidate list), whose public names are also the building blocks of
:mod:`landuse.scale.tiled_kernels`; :mod:`~landuse.growth.random` holds the counter-based random streams every
model shares. See ``docs/growth.md``.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "GrowthInputError": "landuse.core.errors",
    "GrowthParams": "landuse.growth.params",
    "GrowthResult": "landuse.growth.params",
    "potential_levels": "landuse.growth.params",
    "quantise_potential": "landuse.growth.params",
    "simulate": "landuse.growth.engine",
    "targets_frame": "landuse.growth.engine",
    # the growth plan: shared by every growth path (landuse.scale)
    "GrowthPlan": "landuse.growth.plan",
    "RunLog": "landuse.growth.plan",
    "add_counts": "landuse.growth.plan",
    "build_plan": "landuse.growth.plan",
    "check_inputs": "landuse.growth.plan",
    "count_dtype": "landuse.growth.plan",
    "finish_ensemble": "landuse.growth.plan",
    "period_schedule": "landuse.growth.plan",
    "period_years": "landuse.growth.plan",
    "run_ensemble": "landuse.growth.plan",
    "shortfall_table": "landuse.growth.plan",
    "stream_keys": "landuse.growth.plan",
    "target_array": "landuse.growth.plan",
    "zone_cell_counts": "landuse.growth.plan",
    "zone_raster": "landuse.growth.plan",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
