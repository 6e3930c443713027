"""What an LP piece is, cell by cell: source roles and classes, band bits, and :func:`cell_pieces`.

A *piece* of the allocation LP is the developable land of one zone held by one source group (classes of one
role that ``growth.conversion`` lets become the same urban types) in one *band* (near a station, in a soft
greenbelt, outside a soft growth boundary). This module holds that vocabulary — :data:`SOURCE_ROLES`,
:data:`ALL_SOURCE_ROLES`, :func:`source_classes`, the band bits :data:`BAND_NEAR`, :data:`BAND_GREENBELT`,
:data:`BAND_OUTSIDE` — and :func:`cell_pieces`, the per-cell definition the zone table counts capacities with
and the growth engine's units are cut from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from landuse.core.classes import ClassScheme
from landuse.core.config import Scenario
from landuse.core.errors import ArgumentError
from landuse.core.landscape import cell_sizes
from landuse.core.store import store_by_strips, store_empty
from landuse.surfaces.suitability import distance_to

SOURCE_ROLES: tuple[str, ...] = ("farmland", "open_space", "other")
"""Roles whose classes may be converted to urban land in every scheme (water never is); the plan reports
``from_<role>`` amounts for each."""

EXTRA_SOURCE_ROLES: tuple[str, ...] = ("infrastructure", "urban_green")
"""Roles whose classes are sources only when ``growth.conversion`` lists them (by role or class name); the plan
reports their ``from_<role>`` amounts when the scheme has such classes."""

ALL_SOURCE_ROLES: tuple[str, ...] = (*SOURCE_ROLES, *EXTRA_SOURCE_ROLES)
"""Every source role; ``piece_role`` / ``unit_role`` index into it."""


def plan_roles(classes: ClassScheme) -> tuple[str, ...]:
    """Source roles the plan reports for a scheme: :data:`SOURCE_ROLES`, then the extra roles it has classes of."""
    present = {c.role for c in classes if not c.urban}
    return (*SOURCE_ROLES, *(r for r in EXTRA_SOURCE_ROLES if r in present))


_TOL = 1e-6
"""Hectares below which a unit's capacity counts as none (and a row's activity as 0 in an empty model)."""
_INF = math.inf


def source_classes(classes: ClassScheme) -> list[tuple[str, int, str]]:
    """``(name, code, role)`` of every class that may be a source of new urban land."""
    return [(c.name, c.code, c.role) for c in classes if not c.urban and c.role in ALL_SOURCE_ROLES]


BAND_NEAR, BAND_GREENBELT, BAND_OUTSIDE = 1, 2, 4
"""Bits of a piece's *band*: within the TOD radius of a station, inside a soft greenbelt,
outside a soft growth boundary. Each band of a zone's source group is its own LP piece and
its own growth group, so the plan's amounts per band hold on every simulated map."""
N_BANDS = 8


@dataclass(frozen=True)
class CellPieces:
    """Per cell: which source class it offers to new urban land (``source``) and its band bits (uint8).

    ``source`` is an index into :func:`source_classes`, -1 where the cell is not developable now (int8, int16 beyond
    127 source classes).
    """

    source: np.ndarray
    band: np.ndarray
    tod_radius_m: float | None
    soft_bands: bool


def _source_dtype(n_sources: int) -> np.dtype:
    """The smallest signed dtype holding source indices ``-1 .. n_sources - 1``."""
    return np.dtype(np.int8) if n_sources <= 127 else np.dtype(np.int16)


def _flat(a: np.ndarray) -> np.ndarray:
    """A C-contiguous 1-D view (a copy only when ``a`` is not contiguous)."""
    return np.ascontiguousarray(a).reshape(-1)


def cell_pieces(ds: xr.Dataset, scenario: Scenario, landuse: np.ndarray, zones: np.ndarray,
                suitability: np.ndarray) -> CellPieces:
    """Developable source class and band of every cell (the cell-level definition of LP pieces).

    A cell is developable when it lies in a zone, its class is a source class
    (:func:`source_classes`), :func:`landuse.surfaces.constraints.constraint_factor` is positive
    there (not red line, permanent farmland, protected open space, water, hard greenbelt,
    outside a hard boundary, nor a soft greenbelt of strength 1) and some urban type its
    class may become (``growth.conversion``) has positive suitability there — exactly the
    cells the growth engine may convert.
    """
    from landuse.evaluation.metrics_kernels import cell_source_band
    from landuse.surfaces.constraints import constraint_factor, source_allowed_lut

    pol = scenario.config.policy
    lu = np.ascontiguousarray(landuse, dtype=np.uint8)
    sources = source_classes(scenario.classes)
    src_index = np.full(256, -1, dtype=_source_dtype(len(sources)))
    for i, (_, code, _) in enumerate(sources):
        src_index[code] = i
    factor = constraint_factor(ds, scenario, landuse=lu)
    lut = source_allowed_lut(scenario)
    suit = np.ascontiguousarray(getattr(suitability, "values", suitability))
    near = gb = ugb = np.zeros(0, dtype=bool)  # an absent band layer: an empty array
    tod_radius = None
    if pol.tod is not None and "stations" in ds:
        tod_radius = float(pol.tod.radius_m)
        dist = distance_to(np.asarray(ds["stations"].values, dtype=bool), cell=cell_sizes(ds),
                           out=store_empty(lu.shape, np.float32))
        near = store_by_strips(lu.shape, bool, lambda a, b: dist[a:b] <= tod_radius)
        del dist
    soft = False
    if pol.greenbelt.mode == "soft" and pol.greenbelt.strength > 0 and "greenbelt" in ds:
        gb = np.asarray(ds["greenbelt"].values, dtype=bool)
        soft = True
    gbd = pol.growth_boundary
    if gbd.mode == "soft" and gbd.outside_factor < 1 and "growth_boundary" in ds:
        ugb = np.asarray(ds["growth_boundary"].values, dtype=bool)
        soft = True
    if suit.shape[0] < lut.shape[0] or suit.shape[1:] != lu.shape:
        raise ArgumentError(f"suitability has shape {suit.shape}, expected ({lut.shape[0]}, {lu.shape[0]}, {lu.shape[1]})")
    if np.shape(zones) != lu.shape:
        raise ArgumentError(f"zone raster has shape {np.shape(zones)}, the land use {lu.shape}")
    source = store_empty(lu.shape, src_index.dtype)  # kept for the period: in the raster store, if any
    band = store_empty(lu.shape, np.uint8)
    # one compiled pass: no index, bool or int64 raster besides the two outputs
    cell_source_band(lu.reshape(-1), _flat(zones), factor.reshape(-1), suit.reshape(suit.shape[0], -1), lut,
                     src_index, _flat(near), _flat(gb), _flat(ugb), source.reshape(-1), band.reshape(-1))
    return CellPieces(source=source, band=band, tod_radius_m=tod_radius, soft_bands=soft)
