"""Planning constraints as cell masks and a constraint factor.

Policies (from ``scenario.config.policy``) become:

* :func:`never_convert` — cells no urban type may take: outside the study area, the
  ecological red line, permanent farmland, designated protected open space (the
  ``protected_open_space`` layer), water, a hard greenbelt, outside a hard growth boundary.
  The growth engine gives them potential 0 by construction, and the allocator counts no
  capacity there.
* :func:`convertible` — per urban type, cells whose current class the conversion matrix
  (``growth.conversion``) lets become that type, minus :func:`never_convert`.
* :func:`constraint_factor` — a multiplier in [0, 1] on transition potential:
  0 where conversion is never allowed, ``1 - strength`` in a soft greenbelt,
  ``outside_factor`` outside a soft growth boundary, 1 elsewhere; the soft greenbelt can be
  left out and put back at another strength (:func:`soft_greenbelt_cells`,
  :func:`with_soft_greenbelt`, as the calibration of its leakage does).

Open space for quotas (:func:`open_space_mask`): a cell of the quota's land area counts as
protected open space when its class has role ``open_space`` (or ``water`` when
``include_water`` is set), or when it lies in the designated ``protected_open_space``
layer and is not urban — land kept unbuilt. The quota's land area
(:func:`land_area_mask`) is the study area without water (water included when
``include_water`` is set).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from landuse.core.classes import ClassScheme
from landuse.core.config import Scenario
from landuse.core.store import store_by_strips


def _layer(ds: xr.Dataset, name: str) -> np.ndarray | None:
    return np.asarray(ds[name].values, dtype=bool) if name in ds else None


def never_convert(ds: xr.Dataset, scenario: Scenario, *, landuse: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of cells that no urban type may take, whatever the period.

    Parameters
    ----------
    ds : xarray.Dataset
        The Landscape.
    scenario : Scenario
        Supplies the policy switches and the class scheme.
    landuse : ndarray, optional
        Current land use (default: ``ds.landuse``); water is read from it.
    """
    lu = np.asarray(ds["landuse"].values if landuse is None else landuse)
    return store_by_strips(lu.shape, bool, never_convert_rows(ds, scenario, lu))


def never_convert_rows(ds: xr.Dataset, scenario: Scenario, lu: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """A function of ``a, b`` giving the rows ``a:b`` of :func:`never_convert` (``lu``: the land use).

    The mask of one strip, with that strip's temporaries only.
    """
    pol = scenario.config.policy
    study = np.asarray(ds["study_area"].values, dtype=bool)
    blocked = [layer for on, name in ((pol.red_line, "red_line"), (pol.permanent_farmland, "permanent_farmland"),
                                      (pol.protected_open_space, "protected_open_space"),
                                      (pol.greenbelt.mode == "hard", "greenbelt"))
               if on and (layer := _layer(ds, name)) is not None]
    outside = _layer(ds, "growth_boundary") if pol.growth_boundary.mode == "hard" else None

    def rows(a: int, b: int) -> np.ndarray:
        mask = ~study[a:b]
        mask |= scenario.classes.is_role(lu[a:b], "water")
        for layer in blocked:
            mask |= layer[a:b]
        if outside is not None:
            mask |= ~outside[a:b]
        return mask

    return rows


def convertible(
    ds: xr.Dataset, scenario: Scenario, urban_type: str, *, landuse: np.ndarray | None = None
) -> np.ndarray:
    """Cells that may become ``urban_type`` now: allowed source class and not :func:`never_convert`."""
    lu = np.asarray(ds["landuse"].values if landuse is None else landuse, dtype=np.uint8)
    lut = np.zeros(256, dtype=bool)
    lut[list(scenario.conversion_codes()[urban_type])] = True
    return lut[lu] & ~never_convert(ds, scenario, landuse=lu)


def source_allowed_lut(scenario: Scenario) -> np.ndarray:
    """Array ``(T, 256)`` bool: may class code ``c`` become urban type ``k`` (``scenario.urban_types`` order)."""
    conv = scenario.conversion_codes()
    lut = np.zeros((len(scenario.urban_types), 256), dtype=bool)
    for k, t in enumerate(scenario.urban_types):
        lut[k, list(conv[t])] = True
    return lut


def constraint_factor(ds: xr.Dataset, scenario: Scenario, *, landuse: np.ndarray | None = None,
                      soft_greenbelt: bool = True) -> np.ndarray:
    """Constraint factor C in [0, 1] (float32), common to all urban types.

    0 on :func:`never_convert` cells; ``1 - greenbelt.strength`` inside a soft greenbelt;
    ``growth_boundary.outside_factor`` outside a soft growth boundary; the product where
    both apply; 1 elsewhere. Per-type source restrictions are in :func:`convertible`.

    ``soft_greenbelt=False`` leaves a soft greenbelt out (the factor of ``policy.greenbelt.mode: none``);
    :func:`soft_greenbelt_cells` and :func:`with_soft_greenbelt` then put it back at any strength, bit for bit.
    """
    pol = scenario.config.policy
    lu = np.asarray(ds["landuse"].values if landuse is None else landuse)
    gb = _layer(ds, "greenbelt") if pol.greenbelt.mode == "soft" and soft_greenbelt else None
    ugb = _layer(ds, "growth_boundary") if pol.growth_boundary.mode == "soft" else None
    never = never_convert_rows(ds, scenario, lu)

    def rows(a: int, b: int) -> np.ndarray:
        c = np.ones((b - a, lu.shape[1]), np.float32)
        if gb is not None:
            c[gb[a:b]] *= np.float32(1.0 - pol.greenbelt.strength)
        if ugb is not None:
            c[~ugb[a:b]] *= np.float32(pol.growth_boundary.outside_factor)
        c[never(a, b)] = 0.0
        return c

    return store_by_strips(lu.shape, np.float32, rows)  # in the raster store, if any; strip by strip


def soft_greenbelt_cells(ds: xr.Dataset, scenario: Scenario, factor: np.ndarray) -> np.ndarray | None:
    """The cells a soft greenbelt lowers: the ``greenbelt`` layer where ``factor`` is positive.

    ``factor`` is the constraint factor without the greenbelt (:func:`constraint_factor` with
    ``soft_greenbelt=False``). None unless ``policy.greenbelt.mode`` is ``soft`` and the Landscape has the layer.
    """
    if scenario.config.policy.greenbelt.mode != "soft" or "greenbelt" not in ds:
        return None
    return np.asarray(ds["greenbelt"].values, dtype=bool) & (factor > 0)


def with_soft_greenbelt(factor: np.ndarray, cells: np.ndarray | None, keep: float) -> np.ndarray:
    """``factor`` multiplied by ``keep`` (in float32) on the soft greenbelt's ``cells``.

    A copy; ``factor`` itself when ``cells`` is None.

    With ``factor`` and ``cells`` of :func:`soft_greenbelt_cells` and ``keep = 1 - policy.greenbelt.strength`` this
    is :func:`constraint_factor` bit for bit (a product of two float32 factors, in either order); a calibration
    varies ``keep`` (the greenbelt's leakage) without recomputing the rest.
    """
    if cells is None:
        return factor
    c = factor.copy()
    c[cells] *= np.float32(keep)
    return c


def open_space_mask(landuse: np.ndarray, classes: ClassScheme, *, include_water: bool = False,
                    protected: np.ndarray | None = None) -> np.ndarray:
    """Cells counted as protected open space.

    Role ``open_space`` (plus ``water`` if ``include_water``), and every cell of the
    designated ``protected`` mask (the ``protected_open_space`` layer) that is not urban
    land (and not water unless ``include_water``). Callers intersect it with
    :func:`land_area_mask`.
    """
    roles = ("open_space", "water") if include_water else ("open_space",)
    out = classes.is_role(landuse, *roles)
    if protected is not None:
        excluded = ("water", "urban") if not include_water else ("urban",)
        out |= np.asarray(protected, dtype=bool) & ~classes.is_role(landuse, *excluded)
    return out


def protected_open_space(ds: xr.Dataset, scenario: Scenario) -> np.ndarray | None:
    """The designated protected open-space mask the policy honours (None without the layer or when off)."""
    if not scenario.config.policy.protected_open_space:
        return None
    return _layer(ds, "protected_open_space")


def land_area_mask(ds: xr.Dataset, classes: ClassScheme, *, include_water: bool = False,
                   landuse: np.ndarray | None = None, rows: slice = slice(None)) -> np.ndarray:
    """Cells counted in the land area a quota share applies to (study area, without water unless asked).

    ``rows``: the mask of these rows only (a strip; ``landuse``, when given, holds the same rows).
    """
    lu = np.asarray(ds["landuse"].values[rows] if landuse is None else landuse)
    mask = np.asarray(ds["study_area"].values, dtype=bool)[rows].copy()
    if not include_water:
        mask &= ~classes.is_role(lu, "water")
    return mask
