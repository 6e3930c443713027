"""Named class schemes: ``classes: <name>`` in a scenario instead of a list of classes.

Each preset gives the codes, names, colours and roles of a land-cover product's legend, so that a map of that
product can be used as it is.

Examples
--------
>>> preset_scheme("default").urban_types
('residential', 'industrial', 'commercial')
"""

from __future__ import annotations

from landuse.classes import ClassScheme, default_scheme
from landuse.errors import ConfigError

_PRESETS = {
    "default": default_scheme,
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)
"""Preset names, ``default`` first."""


def preset_scheme(name: str) -> ClassScheme:
    """The class scheme of preset ``name``; :class:`ConfigError` for an unknown name."""
    key = name.strip().lower()
    if key not in _PRESETS:
        raise ConfigError(
            f"classes: unknown preset {name!r}; presets are {', '.join(PRESET_NAMES)}, or give a list of classes"
        )
    return _PRESETS[key]()
