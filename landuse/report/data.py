"""The report's data: :func:`build_report` evaluates a scenario's outputs into a :class:`Report`.

Everything is computed here (every policy check per period and unit from the maps,
:func:`landuse.evaluation.checks.policy_checks`; open space and farmland per year, landscape metrics, LEI
expansion types per period, the growth-probability and growth-boundary summaries, validation against observed
maps when given) into :attr:`Report.data`, a JSON-compatible dict, and the arrays the figures need are kept.
:mod:`landuse.report.figures` draws the figures, :mod:`landuse.report.render` the Markdown and HTML, and
:func:`landuse.report.document.write_report` writes the files.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.classes import ClassScheme
from landuse.core.config import Scenario
from landuse.core.errors import LanduseError
from landuse.core.landscape import cell_area_ha, cell_size, cell_sizes, crs_of, transform_of
from landuse.core.strips import row_strips
from landuse.evaluation.agreement import validation_metrics
from landuse.evaluation.boundary import ugb_summary
from landuse.evaluation.checks import failure_lines, policy_checks, records, summary
from landuse.evaluation.metrics import (
    QuotaReport,
    as_jsonable,
    class_areas,
    expansion_types,
    quota_report,
    urban_metrics,
)


@dataclass
class Report:
    """A built report: JSON-compatible ``data`` plus what the figures are drawn from.

    Attributes
    ----------
    data : dict
        Everything machine-readable (written as ``report.json``).
    classes : ClassScheme
    landscape : xarray.Dataset
    landuse_by_year : dict of int to ndarray
        Land use per year, the start year first.
    probability : dict of str to ndarray
    ugb : ndarray or None
    quotas : dict of int to QuotaReport
    type_maps : dict of str to ndarray
        LEI expansion type per new urban cell, per period label ``"<start>-<end>"``.
    allocation : pandas.DataFrame or None
    checks : pandas.DataFrame
        :func:`landuse.evaluation.checks.policy_checks` of the run, one row per check, period and unit.
    """

    data: dict[str, Any]
    classes: ClassScheme
    landscape: xr.Dataset = field(repr=False)
    landuse_by_year: dict[int, np.ndarray] = field(repr=False)
    probability: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    ugb: np.ndarray | None = field(default=None, repr=False)
    quotas: dict[int, QuotaReport] = field(default_factory=dict, repr=False)
    type_maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    allocation: pd.DataFrame | None = field(default=None, repr=False)
    checks: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        """Every enforced check of every period and unit holds (none failed)."""
        return bool(self.data["passed"])


def _arr(a: Any) -> np.ndarray:
    return np.asarray(a.values if isinstance(a, xr.DataArray) else a)


def _read_only_f32(a: Any) -> np.ndarray:
    """A read-only float32 view of ``a``: no copy of a float32 grid (one grid a key at megaregion scale)."""
    out = np.asarray(_arr(a), dtype=np.float32).view()
    out.flags.writeable = False
    return out


def _arr(a: Any) -> np.ndarray:
    return np.asarray(a.values if isinstance(a, xr.DataArray) else a)


def _read_only_f32(a: Any) -> np.ndarray:
    """A read-only float32 view of ``a``: no copy of a float32 grid (one grid a key at megaregion scale)."""
    out = np.asarray(_arr(a), dtype=np.float32).view()
    out.flags.writeable = False
    return out


def build_report(
    *,
    scenario: Scenario,
    landscape: xr.Dataset,
    landuse_by_year: Mapping[int, xr.DataArray | np.ndarray],
    probability: xr.DataArray | np.ndarray | Mapping[str, xr.DataArray | np.ndarray] | None = None,
    ugb: xr.DataArray | None = None,
    allocation: pd.DataFrame | None = None,
    observed: Mapping[int, xr.DataArray | np.ndarray] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
    start_landuse: xr.DataArray | np.ndarray | None = None,
    shortfall: pd.DataFrame | None = None,
    probability_by_period: Mapping[int, Mapping[str, xr.DataArray | np.ndarray]] | None = None,
) -> Report:
    """Evaluate a scenario's outputs into a :class:`Report`.

    Parameters
    ----------
    scenario : Scenario
    landscape : xarray.Dataset
        The scenario's Landscape; its ``landuse`` is the start-year map (baseline) unless
        ``start_landuse`` is given.
    landuse_by_year : mapping of int to array
        Land use per period end year (an entry for the start year is ignored).
        Consecutive years are the periods the checks evaluate; ``passed`` is True when
        no check of any period and unit failed.
    probability : array or mapping of str to array, optional
        Growth probability (e.g. ``{"urban": p}`` or one map per type or year).
    ugb : xarray.DataArray, optional
        A delineated growth boundary (:func:`landuse.evaluation.boundary.delineate_ugb`).
    allocation : pandas.DataFrame, optional
        The allocation table (written in full to JSON, the first rows to md/html).
    observed : mapping of int to array, optional
        Observed land use for some years; validation metrics (FoM, kappa,
        disagreement, Lee-Sallee) are computed for each year also in ``landuse_by_year``.
    seed : int, optional
        Seed that produced the outputs (default ``growth.seed`` of the scenario).
    extra : mapping, optional
        Anything else to record under ``"extra"`` (must be JSON-compatible). The md/html
        report shows ``extra["binding_policies"]`` (shadow prices per period) and
        ``extra["fragmentation"]`` (coordinated vs city-by-city plans per period).
    start_landuse : array, optional
        Land use at the start year (default ``landscape.landuse``).
    shortfall : pandas.DataFrame, optional
        The growth engine's shortfall table: the ``demand_met`` checks.
    probability_by_period : mapping, optional
        Per period end year, the conversion probability of each urban type: every
        hard-mask cell must have probability 0 (every Monte Carlo run respected it).

    Returns
    -------
    Report
    """
    classes = scenario.classes
    ev = scenario.config.evaluation
    start = scenario.periods[0]
    base, maps = _maps_by_year(scenario, landscape, landuse_by_year, start_landuse)
    years = sorted(maps)
    cyx = cell_sizes(landscape)  # (height, width): non-square cells keep both in the metrics
    cell_ha = cell_area_ha(landscape)
    study = np.asarray(landscape["study_area"].values, dtype=bool)

    checks = policy_checks(scenario, landscape, {y: maps[y] for y in years if y != start}, start_landuse=base,
                           allocation=allocation, shortfall=shortfall, probability=probability_by_period)
    counts = summary(checks)
    quotas: dict[int, QuotaReport] = {y: quota_report(landscape, maps[y], scenario) for y in years}
    metrics = {
        y: urban_metrics(maps[y], classes, cell_size=cyx, connectivity=ev.connectivity, study_area=study)
        for y in years
    }
    expansion, type_maps = _expansion(maps, classes, cyx, ev.lei_buffer_m, ev.connectivity, study)
    prob = _probability_maps(probability)
    prob_summary = _probability_summary(prob, study, cell_ha)
    validation = {}
    for y, obs in sorted((observed or {}).items()):
        if int(y) in maps and int(y) != start:
            validation[str(y)] = validation_metrics(base, _arr(obs), maps[int(y)], classes, study_area=study)

    data = {
        "meta": _meta(scenario, landscape, base, seed),
        "years": years,
        "passed": counts["failed"] == 0,
        "failures": failure_lines(checks),
        "checks_summary": counts,
        "checks": records(checks),
        "class_areas_ha": {str(y): class_areas(maps[y], classes, cell_ha=cell_ha) for y in years},
        "quotas": {str(y): q.to_dict() for y, q in quotas.items()},
        "landscape_metrics": {str(y): m for y, m in metrics.items()},
        "expansion": expansion,
        "probability": prob_summary or None,
        "growth_boundary": ugb_summary(ugb, landscape, classes=classes) if ugb is not None else None,
        "validation": validation or None,
        "allocation": allocation.to_dict(orient="records") if allocation is not None else None,
        "extra": dict(extra) if extra else None,
    }
    return Report(
        data=as_jsonable(data),
        classes=classes,
        landscape=landscape,
        landuse_by_year=maps,
        probability=prob,
        ugb=None if ugb is None else np.asarray(_arr(ugb), dtype=bool),
        quotas=quotas,
        type_maps=type_maps,
        allocation=allocation,
        checks=checks,
    )


def _maps_by_year(scenario: Scenario, landscape: xr.Dataset, landuse_by_year: Mapping[int, Any],
                  start_landuse: Any) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """``(start map, land use per year)``: the start year first, then each map on the Landscape's grid."""
    start = scenario.periods[0]
    base = _arr(landscape["landuse"] if start_landuse is None else start_landuse)
    maps: dict[int, np.ndarray] = {start: base}
    for y, a in sorted(landuse_by_year.items()):
        if int(y) == start:
            continue
        arr = _arr(a)
        if arr.shape != base.shape:
            raise LanduseError(f"land use of {y} has shape {arr.shape}, the Landscape's grid is {base.shape}")
        maps[int(y)] = arr
    return base, maps


def _expansion(maps: dict[int, np.ndarray], classes: ClassScheme, cyx: tuple[float, float], lei_buffer_m: float,
               connectivity: int, study: np.ndarray) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """LEI expansion types per period (and start to final year when there are several periods).

    The summaries and the type maps, keyed ``"<start>-<end>"``.
    """
    years = sorted(maps)
    start, final = years[0], years[-1]
    expansion, type_maps = {}, {}
    for a, b in itertools.pairwise(years):
        exp = expansion_types(maps[a], maps[b], classes, cell_size=cyx, buffer_m=max(lei_buffer_m, *cyx),
                              connectivity=connectivity, study_area=study)
        expansion[f"{a}-{b}"] = exp.summary()
        type_maps[f"{a}-{b}"] = exp.type_map  # kept until the figures: in the raster store, if any
    if len(years) > 2:
        exp = expansion_types(maps[start], maps[final], classes, cell_size=cyx,
                              buffer_m=max(lei_buffer_m, *cyx), connectivity=connectivity, study_area=study)
        expansion[f"{start}-{final}"] = exp.summary()
        type_maps[f"{start}-{final}"] = exp.type_map
    return expansion, type_maps


def _probability_maps(probability: Any) -> dict[str, np.ndarray]:
    """Growth probability maps by key (one map alone is ``"urban"``), as read-only float32."""
    prob: dict[str, np.ndarray] = {}
    if probability is not None:
        if isinstance(probability, Mapping):
            prob = {str(k): _read_only_f32(v) for k, v in probability.items()}
        else:
            prob = {"urban": _read_only_f32(probability)}
    return prob


def _probability_summary(prob: dict[str, np.ndarray], study: np.ndarray, cell_ha: float) -> dict[str, Any]:
    """Per probability map: the mean over the study area and the cells (and hectares) at 0.5 or more."""
    prob_summary = {}
    for k, p in prob.items():  # strip by strip: the mean summed in float64, the counts exact
        total, n, high = 0.0, 0, 0
        for a, b in row_strips(*p.shape):
            inside = p[a:b][study[a:b] & np.isfinite(p[a:b])]
            total += float(inside.sum(dtype=np.float64))
            n += inside.size
            high += int(np.count_nonzero(inside >= 0.5))
        prob_summary[k] = {
            "mean": total / n if n else math.nan,
            "cells_at_least_0_5": high,
            "area_at_least_0_5_ha": float(high) * cell_ha,
        }
    return prob_summary


def _meta(scenario: Scenario, landscape: xr.Dataset, base: np.ndarray, seed: int | None) -> dict[str, Any]:
    """The report's ``meta``: the scenario, its inputs, the grid, the class scheme and the settings it ran with."""
    inputs = landscape.attrs.get("inputs") or {k: str(v) for k, v in scenario.layer_paths().items()}
    t = transform_of(landscape)
    return {
        "scenario": scenario.name,
        "description": scenario.config.description,
        "config": str(scenario.path) if scenario.path else None,
        "seed": int(scenario.config.growth.seed if seed is None else seed),
        "runs": int(scenario.config.growth.runs),
        "periods": scenario.periods,
        "coordination": scenario.config.policy.coordination,
        "inputs": {str(k): str(v) for k, v in inputs.items()},
        "created": (_dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), _dt.UTC)  # reproducible
                    if os.environ.get("SOURCE_DATE_EPOCH") else _dt.datetime.now(_dt.UTC)).isoformat(timespec="seconds"),
        "landuse_version": _version(),
        "grid": {"rows": int(base.shape[0]), "cols": int(base.shape[1]), "cell_size_m": cell_size(landscape),
                 "crs": str(crs_of(landscape)), "origin": [float(t.c), float(t.f)]},
        "classes": scenario.classes.to_records(),
        "evaluation": scenario.config.evaluation.model_dump(mode="json"),
        "policy": scenario.config.policy.model_dump(mode="json"),
        "allocation_weights": scenario.config.allocation.weights.model_dump(mode="json"),
    }


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("landuse")
    except Exception:  # pragma: no cover - not installed
        return "unknown"
