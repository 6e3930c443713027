"""Cell-level growth models (cellular automata).

:func:`simulate` grows urban land of each type to meet per-zone targets over Monte Carlo
runs; :class:`GrowthParams` holds its precomputed inputs and :class:`GrowthResult` its
outcome. See ``docs/growth.md``.
"""

from landuse.growth.engine import (
    GrowthInputError,
    GrowthParams,
    GrowthResult,
    potential_levels,
    quantise_potential,
    simulate,
    targets_frame,
)

__all__ = [
    "GrowthInputError",
    "GrowthParams",
    "GrowthResult",
    "potential_levels",
    "quantise_potential",
    "simulate",
    "targets_frame",
]
