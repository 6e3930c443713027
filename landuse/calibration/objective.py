"""What a calibration maximises.

:data:`OBJECTIVES` (all maximised; see ``docs/calibration.md``), each computed by
:func:`landuse.evaluation.agreement.change_scores` from the **ensemble-mean** joint histogram of (before,
observed, simulated) classes over the Monte Carlo runs of a point
(:meth:`landuse.evaluation.agreement.ChangeHistogram.of_counts`): a cell converted to type *k* in *c* of *R* runs
counts ``c / R`` towards that class.

* ``fom`` — figure of merit ``H / (H + M + W + F)`` (Pontius et al. 2008);
* ``kappa_simulation`` — Kappa-simulation (van Vliet et al. 2011), kappa with the
  agreement expected from the observed and simulated *transitions* out of each class;
* ``lee_sallee`` — ``|O ∩ S| / |O ∪ S|`` of urban land at the later date.

A second objective, weighted by ``calibration.patch_weight``, compares the new patches of the simulated change with
the observed ones (:func:`new_patch_stats`, :func:`patch_error`); :func:`objective_value` combines the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import xarray as xr

from landuse.core.config import Scenario

__all__ = ["OBJECTIVES", "new_patch_stats", "objective_value", "patch_error"]

OBJECTIVES: tuple[str, ...] = ("fom", "kappa_simulation", "lee_sallee")


def new_patch_stats(before: np.ndarray, after: np.ndarray, landscape: xr.Dataset, scenario: Scenario, *,
                    valid: np.ndarray) -> dict[str, float]:
    """The new urban patches of a change: how many, how large, how many far from urban land.

    New urban land is urban in ``after`` and not in ``before`` (8-connected patches);
    ``outlying`` patches have no urban land of ``before`` among their 8 neighbours
    (Landscape Expansion Index 0 with a 1.5-cell buffer, :func:`landuse.evaluation.metrics.expansion_types`). Returns
    ``new_patches`` (count), ``mean_patch_cells``, ``outlying_patches`` and
    ``outlying_share`` (share of the new cells lying in outlying patches).
    """
    from landuse.core.landscape import cell_sizes
    from landuse.evaluation.metrics import expansion_types

    cx, cy = cell_sizes(landscape)
    e = expansion_types(before, after, scenario.classes, cell_size=float(cx),
                        buffer_m=1.5 * float(max(cx, cy)), study_area=valid)
    cells = e.patch_area_ha / (float(cx) * float(cy) / 10_000.0)
    n = int(cells.size)
    total = float(cells.sum())
    out_cells = float(cells[e.patch_type == 3].sum())
    return {"new_patches": float(n), "mean_patch_cells": total / n if n else 0.0,
            "outlying_patches": float((e.patch_type == 3).sum()), "outlying_share": out_cells / total if total else 0.0}


def patch_error(simulated: Mapping[str, float], observed: Mapping[str, float]) -> float:
    """Distance of simulated new patches from the observed ones (0 = the same; the second objective).

    ``|ln((n_sim + 1) / (n_obs + 1))| + |outlying_sim - outlying_obs|``: the log ratio of
    the patch counts (with the amount of change fixed, the same as of the mean patch
    sizes) plus the difference of the shares of new land in outlying patches.

    >>> patch_error({"new_patches": 9, "outlying_share": 0.2}, {"new_patches": 9, "outlying_share": 0.1})
    0.1
    """
    return float(round(abs(math.log((simulated["new_patches"] + 1.0) / (observed["new_patches"] + 1.0)))
                       + abs(simulated["outlying_share"] - observed["outlying_share"]), 12))


def objective_value(scores: Mapping[str, float], objective: str, *, patch_weight: float = 0.0) -> float:
    """The value a calibration maximises.

    The ``objective`` score, less ``patch_weight`` times the patch error when ``patch_weight`` is positive.
    """
    v = float(scores[objective])
    return v - patch_weight * float(scores["patch_error"]) if patch_weight > 0 else v
