"""Policy checks computed from the rasters themselves: one row per check, period and unit.

:func:`policy_checks` is the one place where a run's (or any map's) compliance is decided;
the report, ``landuse run`` and ``landuse evaluate`` all read its table. Every *achieved*
value comes from the land-use maps (and the probability rasters), never from the plan;
*planned* comes from the allocation table when one is given, so a reader sees where the
map departs from the plan.

Columns of the table (:data:`CHECK_COLUMNS`):

``check``     policy name (see below)
``period``    end year of the period (int); ``start-end`` spans are in ``detail``
``unit``      ``"cluster"`` or ``"city <id>"``, or ``"residential"`` ... for ``demand_met``
``limit``     the policy's bound, in ``units``
``planned``   what the allocation planned, in ``units`` (NaN without an allocation table)
``achieved``  what the maps hold, in ``units``
``margin``    signed distance to the bound, ``>= 0`` when the check passes
``units``     ``ha``, ``cells``, ``%`` (shares; margins in percentage points) or ``ratio``
``passed``    True / False; None when the check is not enforced or not applicable
``detail``    a sentence for the reader (hectares, cells converted, why not enforced)

Checks (each period ``p`` goes from the map at its start to the map at its end):

* ``red_line``, ``permanent_farmland``, ``protected_open_space``, ``greenbelt`` (hard mode),
  ``growth_boundary`` (hard mode; the mask is the land *outside* the boundary): cells of
  the mask, inside the study area, whose class changed in ``p`` (limit 0). With
  probability rasters, ``<mask>_probability``: mask cells where any type's conversion
  probability of ``p`` is above 0 (limit 0) -- every Monte Carlo run respected the mask.
  A layer present while its policy switch is off gives a row that is not enforced.
* ``farmland_loss_cap``: farmland-role cells at the start of ``p`` that are urban at its
  end, in ha; ``per: period`` against ``hectares`` in each period, ``per: horizon`` the
  cumulative loss up to the end of ``p`` against ``hectares``.
* ``open_space_quota``: protected open space (:func:`landuse.surfaces.constraints.open_space_mask`,
  with the ``protected_open_space`` layer) as a share of land area
  (:func:`landuse.surfaces.constraints.land_area_mask`) on the map at the end of ``p``, per city or
  for the cluster; margin in percentage points.
* ``tod_share``: new residential cells (not residential at the start of ``p``, residential
  at its end) within ``policy.tod.radius_m`` of a station, as a share of all new
  residential cells; per cluster (``coordination: cluster``) or city (``city``). A city
  with no developable land within the radius at the start of ``p`` is not enforced (as in
  the LP).
* ``jobs_housing_min`` / ``jobs_housing_max``: (new industrial + new commercial) / new
  residential per city; the minimum only when ``policy.jobs_housing.min > 0``.
* ``city_growth_limit``: new urban ha (urban at the end of ``p``, not at its start) per
  limited city.
* ``demand_met``: per period and urban type, from the growth engine's shortfall table:
  passes when no cell is short (``margin = -shortfall`` cells).

A "period" of a map spanning ``k`` scenario periods (``landuse evaluate`` on a later
year's map) compares per-period limits (farmland cap ``per: period``, city growth
limits) with ``k`` times the limit, a necessary condition only; ``detail`` says so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario
from landuse.evaluation.check_rows import ArrayLike, _Checks, _demand_rows

CHECK_COLUMNS: tuple[str, ...] = (
    "check", "period", "unit", "limit", "planned", "achieved", "margin", "units", "passed", "detail",
)
"""Columns of the table :func:`policy_checks` returns."""

HARD_MASKS: tuple[str, ...] = ("red_line", "permanent_farmland", "protected_open_space", "greenbelt",
                               "growth_boundary")
"""Hard-mask checks, in table order."""


def policy_checks(
    scenario: Scenario,
    landscape: xr.Dataset,
    landuse_by_year: Mapping[int, ArrayLike],
    *,
    start_landuse: ArrayLike | None = None,
    allocation: pd.DataFrame | None = None,
    shortfall: pd.DataFrame | None = None,
    probability: Mapping[int, Mapping[str, ArrayLike] | ArrayLike] | None = None,
    strip_rows: int | None = None,
) -> pd.DataFrame:
    """Every policy check of a run, computed from the maps: one row per check, period and unit.

    Every achieved amount is a count of cells, added strip by strip over the rows (about
    :data:`landuse.core.strips.STRIP_CELLS` cells each, or ``strip_rows`` rows): the temporaries are
    those of one strip, whatever the size of the maps, and the table is the same for any strip
    height.

    Parameters
    ----------
    scenario : Scenario
        Supplies the policies, the class scheme and the periods.
    landscape : xarray.Dataset
        The Landscape: ``study_area``, and the layers the checks use when present
        (``cities``, ``red_line``, ``permanent_farmland``, ``protected_open_space``,
        ``greenbelt``, ``growth_boundary``, ``stations``).
    landuse_by_year : mapping of int to array
        Land use at each period end (an entry for the start year is ignored). Consecutive
        years form the periods.
    start_landuse : array, optional
        Land use at the start year (default ``landscape.landuse``).
    allocation : pandas.DataFrame, optional
        The allocation table (``period, zone, city, type, hectares, cells, from_*_ha``,
        ``near_station_ha`` and optionally the ``*_cells`` columns): the ``planned`` column.
    shortfall : pandas.DataFrame, optional
        The growth engine's ``period, zone, type, target, converted, shortfall`` table:
        the ``demand_met`` rows.
    probability : mapping, optional
        Per period end year, the conversion probability rasters (``{type: p}`` or one
        raster): the ``<mask>_probability`` rows.
    strip_rows : int, optional
        Rows per strip (default: about ``STRIP_CELLS`` cells a strip).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CHECK_COLUMNS`; see the module docstring for each check.

    Raises
    ------
    LanduseError
        A map's shape differs from the Landscape's, or it has nodata inside the study area.

    Examples
    --------
    >>> from affine import Affine
    >>> from landuse.core.config import scenario_from_dict
    >>> from landuse.core.landscape import new_landscape
    >>> sc = scenario_from_dict({"name": "d", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
    ...                          "policy": {"farmland_loss_cap": {"hectares": 1.0}}})
    >>> farm, res = sc.classes.codes_with_role("farmland")[0], sc.classes.code_of("residential")
    >>> lu = np.full((2, 2), farm, dtype=np.uint8)
    >>> ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 200))
    >>> after = lu.copy(); after[0, :] = res
    >>> t = policy_checks(sc, ds, {2030: after})
    >>> t[["check", "period", "achieved", "margin", "passed"]].to_dict("records")
    [{'check': 'farmland_loss_cap', 'period': 2030, 'achieved': 2.0, 'margin': -1.0, 'passed': False}]
    """
    run = _Checks(scenario, landscape, landuse_by_year, start_landuse=start_landuse, allocation=allocation,
                  probability=probability, strip_rows=strip_rows)
    for a, b in itertools.pairwise(run.years):
        per = run.period(a, b)
        for family in (run.mask_rows, run.farmland_rows, run.quota_rows, run.tod_rows, run.jobs_housing_rows,
                       run.plan_rows, run.export_rows, run.city_limit_rows):
            family(per)
    table = pd.DataFrame(run.rows + _demand_rows(shortfall, run.cell_ha), columns=list(CHECK_COLUMNS))
    table["passed"] = table["passed"].astype(object)
    return table


def failed(checks: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``checks`` that failed (``passed`` is False)."""
    return checks[checks["passed"].map(lambda v: v is False or v is np.False_)]


def summary(checks: pd.DataFrame) -> dict[str, int]:
    """Counts: ``checks`` (rows), ``passed``, ``failed`` and ``not_enforced`` (``passed`` is None)."""
    p = checks["passed"]
    n_failed = len(failed(checks))
    n_none = int(p.map(lambda v: v is None or (isinstance(v, float) and math.isnan(v))).sum())
    return {"checks": len(checks), "passed": len(checks) - n_failed - n_none, "failed": n_failed,
            "not_enforced": n_none}


def _num(v: float, units: str) -> str:
    if not math.isfinite(v):
        return "-" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    digits = {"cells": 0, "ratio": 3, "%": 2}.get(units, 1)
    return f"{round(v, digits) + 0.0:,.{digits}f}"  # no "-0.0"


def describe(row: Mapping[str, Any]) -> str:
    """One line for a check: ``check period unit: achieved X vs limit Y units (margin M)``."""
    u = row["units"]
    unit_s = {"%": " %", "ratio": "", "cells": " cells", "ha": " ha"}.get(u, f" {u}")
    margin_u = " pp" if u == "%" else unit_s
    status = {True: "ok", False: "FAIL", None: "not enforced"}[row["passed"] if row["passed"] in (True, False) else None]
    return (f"{status}: {row['check']} {row['period']} {row['unit']}: achieved {_num(row['achieved'], u)}{unit_s} "
            f"vs limit {_num(row['limit'], u)}{unit_s} (margin {_num(row['margin'], u)}{margin_u}); {row['detail']}")


def failure_lines(checks: pd.DataFrame) -> list[str]:
    """One line per failing check (see :func:`describe`)."""
    return [describe(r) for r in failed(checks).to_dict("records")]


def ordered(checks: pd.DataFrame) -> pd.DataFrame:
    """Failing rows first, then passing, then not enforced; each group in table order."""
    rank = checks["passed"].map(lambda v: 0 if v is False or v is np.False_ else (1 if v in (True,) else 2))
    return checks.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank")


def records(checks: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-compatible rows (nan and inf become None via :func:`landuse.evaluation.metrics.as_jsonable`)."""
    from landuse.evaluation.metrics import as_jsonable

    out = []
    for r in checks.to_dict("records"):
        r["passed"] = None if r["passed"] is None else bool(r["passed"])
        out.append(as_jsonable(r))
    return out


_EVALUATION_LAYERS = ("landuse", "cities", "red_line", "permanent_farmland", "protected_open_space", "greenbelt",
                      "growth_boundary", "stations")


def map_year(path: str | Any, scenario: Scenario, year: int | None = None) -> int:
    """The period end year a map stands for.

    ``year`` if given, else a period end year in the file name (``landuse_2040.tif``), else the scenario's last year.
    """
    import re
    from pathlib import Path

    ends = scenario.periods[1:]
    if year is not None:
        if int(year) not in ends:
            from landuse.core.errors import ConfigError

            raise ConfigError(f"year {year} is not a period end year of the scenario ({', '.join(map(str, ends))})")
        return int(year)
    found = [int(y) for y in re.findall(r"(?<!\d)(\d{4})(?!\d)", Path(path).stem) if int(y) in ends]
    return found[-1] if found else scenario.periods[-1]


def evaluate_file(
    landuse_path: str | Any, config_path: str | Any, *, year: int | None = None
) -> tuple[pd.DataFrame, Any, Scenario, int]:
    """Check a land-use GeoTIFF against a scenario (what ``landuse evaluate`` runs).

    The map is the land use at the end of the period ending ``year`` (see :func:`map_year`);
    the start is the scenario's start land use, so the checks cover the span from the
    start year to ``year`` as one period. The map must share the scenario grid (CRS, cell
    size, origin, shape) and use codes of the scenario's class scheme.

    Returns
    -------
    (checks, quota, scenario, year)
        The :func:`policy_checks` table, the :func:`landuse.evaluation.metrics.quota_report` of the
        map (open space and farmland per unit, for the table printed beside the checks),
        the scenario and the year used.

    Raises
    ------
    ConfigError, GridMismatchError, UnknownClassError, LanduseError
        Bad scenario or year, misaligned map, undeclared codes, nodata inside the study area.
    """
    from landuse.core.config import load_scenario
    from landuse.evaluation.metrics import check_is_landuse_map, quota_report
    from landuse.io.rasters import check_same_grid, read_header, read_landscape

    scenario = load_scenario(config_path)
    paths = {k: v for k, v in scenario.layer_paths().items() if k in _EVALUATION_LAYERS}
    ref = read_header(paths["landuse"])
    check_same_grid(ref, read_header(landuse_path), ref_name="landuse", name="evaluated map")
    y = map_year(landuse_path, scenario, year)
    landscape = read_landscape(paths, classes=scenario.classes)
    check_is_landuse_map(landuse_path, landscape)  # a cities or probability raster is refused, not evaluated
    evaluated = np.asarray(read_landscape({"landuse": landuse_path}, classes=scenario.classes)["landuse"].values)
    checks = policy_checks(scenario, landscape, {y: evaluated})
    return checks, quota_report(landscape, evaluated, scenario), scenario, y


__all__ = ["CHECK_COLUMNS", "HARD_MASKS", "describe", "evaluate_file", "failed", "failure_lines", "map_year",
           "ordered", "policy_checks", "records", "summary"]
