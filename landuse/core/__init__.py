"""The vocabulary every stage shares: errors, the class scheme, the Landscape and the scenario config.

Contract: nothing here computes a model. :mod:`~landuse.core.errors` holds every error landuse raises (one root,
:class:`LanduseError`; messages name the file, key or cell and how to fix it, never a command-line flag);
:mod:`~landuse.core.classes` and :mod:`~landuse.core.presets` the land-use classes and their roles;
:mod:`~landuse.core.landscape` the study region's layers on one grid; :mod:`~landuse.core.config` the scenario
schema (pydantic) and its loader, with the sections in :mod:`~landuse.core.config_plan` and
:mod:`~landuse.core.config_stages` (on :mod:`~landuse.core.config_types`); :mod:`~landuse.core.store` where large
rasters live (memory or memory-mapped scratch files) and :mod:`~landuse.core.strips` the row strips every stage walks
a large raster by. Depends on no other landuse package.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "LanduseError": "landuse.core.errors",
    "ConfigError": "landuse.core.errors",
    "ArgumentError": "landuse.core.errors",
    "GrowthInputError": "landuse.core.errors",
    "GridMismatchError": "landuse.core.errors",
    "InfeasibleAllocationError": "landuse.core.errors",
    "InputOverwriteError": "landuse.core.errors",
    "OutputExistsError": "landuse.core.errors",
    "OutputFolderError": "landuse.core.errors",
    "SleuthFormatError": "landuse.core.errors",
    "SolverError": "landuse.core.errors",
    "UnknownClassError": "landuse.core.errors",
    "ClassScheme": "landuse.core.classes",
    "LandClass": "landuse.core.classes",
    "default_scheme": "landuse.core.classes",
    "URBAN_TYPES": "landuse.core.classes",
    "preset_scheme": "landuse.core.presets",
    "PRESET_NAMES": "landuse.core.presets",
    "new_landscape": "landuse.core.landscape",
    "cell_area_ha": "landuse.core.landscape",
    "cell_size": "landuse.core.landscape",
    "transform_of": "landuse.core.landscape",
    "crs_of": "landuse.core.landscape",
    "Scenario": "landuse.core.config",
    "ScenarioConfig": "landuse.core.config",
    "load_scenario": "landuse.core.config",
    "raster_store": "landuse.core.store",
    "store_empty": "landuse.core.store",
    "store_zeros": "landuse.core.store",
    "store_full": "landuse.core.store",
    "store_by_strips": "landuse.core.store",
    "STRIP_CELLS": "landuse.core.strips",
    "row_strips": "landuse.core.strips",
    "scenario_from_dict": "landuse.core.config",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
