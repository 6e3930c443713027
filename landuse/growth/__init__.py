"""Cell-level growth models (cellular automata).

:func:`simulate` grows urban land of each type to meet per-zone targets over Monte Carlo
runs; :class:`GrowthParams` holds its precomputed inputs and :class:`GrowthResult` its
outcome. See ``docs/growth.md``.

The names below are loaded on first use (module ``__getattr__``), so importing a sibling
module such as :mod:`landuse.growth.sleuth` does not load the engine and its pandas /
xarray dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from landuse.growth.engine import (
        GrowthInputError,
        GrowthParams,
        GrowthResult,
        potential_levels,
        quantise_potential,
        simulate,
        targets_frame,
    )

_LAZY = {
    "GrowthInputError": "landuse.growth.engine",
    "GrowthParams": "landuse.growth.engine",
    "GrowthResult": "landuse.growth.engine",
    "potential_levels": "landuse.growth.engine",
    "quantise_potential": "landuse.growth.engine",
    "simulate": "landuse.growth.engine",
    "targets_frame": "landuse.growth.engine",
}

__all__ = [
    "GrowthInputError",
    "GrowthParams",
    "GrowthResult",
    "potential_levels",
    "quantise_potential",
    "simulate",
    "targets_frame",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'landuse.growth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
