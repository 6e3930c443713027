"""The expected map: a period's exact amounts placed on the cells the ensemble converted most often.

:func:`allocate_by_rank` places amounts per zone and urban type on the highest-ranked developable cells (the
expected map, and the null models of a hindcast, are made with it); :func:`expected_map` ranks by the ensemble's
conversion counts (ties by growth potential, then cell index). ``landuse run`` writes it as
``expected_<year>.tif``; a hindcast scores it as ``model_expected``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["allocate_by_rank", "expected_map"]


def allocate_by_rank(
    before: np.ndarray,
    score: np.ndarray,
    zones: np.ndarray,
    targets: pd.DataFrame,
    *,
    developable: np.ndarray,
    type_codes: Sequence[int],
    types: Sequence[str],
) -> np.ndarray:
    """Convert, per zone and urban type, the ``cells`` developable cells of highest score.

    Parameters
    ----------
    before : ndarray of uint8
        Land use at the start.
    score : ndarray
        ``(n_types, rows, cols)`` (one ranking per type) or ``(rows, cols)`` (the same for
        every type). Higher goes first; ties by cell index (row-major).
    zones : ndarray of int
        Zone id of each cell (0 = none: never converted).
    targets : pandas.DataFrame
        ``zone, type, cells`` (type one of ``types``).
    developable : ndarray of bool
        ``(n_types, rows, cols)``: may the cell become that type (conversion matrix and
        constraints).
    type_codes : sequence of int
        Class code new land of each urban type takes, in ``types`` order.
    types : sequence of str
        The urban types (the scheme's ``urban_types``), in the order of the type axis of
        ``score`` and ``developable``.

    Returns
    -------
    ndarray of uint8
        The map after conversion. Types are served in ``types`` order; a cell taken
        by one type is not offered to the next. A zone with fewer developable cells than
        its amount converts all of them.

    Examples
    --------
    >>> before = np.array([[4, 4, 4, 4]], dtype=np.uint8)
    >>> t = pd.DataFrame({"zone": [1], "type": ["residential"], "cells": [2]})
    >>> dev = np.ones((3, 1, 4), dtype=bool)
    >>> allocate_by_rank(before, np.array([[0.1, 0.9, 0.5, 0.9]]), np.ones((1, 4), int), t,
    ...                  developable=dev, type_codes=(1, 2, 3), types=("residential", "industrial", "commercial"))
    array([[4, 1, 4, 1]], dtype=uint8)
    """
    sc = np.asarray(score)
    if sc.dtype.kind not in "fi":  # unsigned or Boolean scores would wrap when negated
        sc = sc.astype(np.float64)
    dev = np.asarray(developable, dtype=bool).reshape(len(types), -1)
    return _allocate_by_rank(before, zones, targets, type_codes=type_codes, types=types,
                             developable_of=lambda k: dev[k],
                             score_at=lambda k, cand: (sc[k] if sc.ndim == 3 else sc).reshape(-1)[cand])


def _allocate_by_rank(before: np.ndarray, zones: np.ndarray, targets: pd.DataFrame, *, type_codes: Sequence[int],
                      types: Sequence[str], developable_of, score_at, first_of=None) -> np.ndarray:
    """:func:`allocate_by_rank` one type's raster at a time, scores of the candidates only.

    The developable cells of type ``k`` (flat bool raster) come from ``developable_of(k)`` and the scores of the
    candidate cells ``cand`` (flat indices) from ``score_at(k, cand)``.

    ``first_of(k)``, optional: a flat bool raster of cells whose scores are higher than those of every other cell
    (for the expected map, the cells some run converted). They are ranked first, and the other candidates only in
    the zones they leave short: the same cells as one ranking of every candidate, without sorting the many cells
    no zone reaches.
    """
    out = np.asarray(before, dtype=np.uint8).reshape(-1).copy()
    z = np.asarray(zones).reshape(-1)
    taken = np.zeros(out.size, dtype=bool)
    n_zone = int(z.max(initial=0)) + 1
    for k, t in enumerate(types):
        sub = targets[targets["type"] == t]
        if sub.empty:
            continue
        need = np.zeros(n_zone, dtype=np.int64)
        np.add.at(need, sub["zone"].to_numpy(dtype=np.int64), sub["cells"].to_numpy(dtype=np.int64))
        need[0] = 0  # zone 0: no zone, never converted
        ok = developable_of(k) & (need > 0)[z]  # 1 byte per cell, not an int64 lookup
        ok &= ~taken
        if first_of is None:
            tiers = [ok]
        else:
            first = first_of(k)
            tiers = [ok & first, ok]  # the second tier: the rest (the first tier's cells are taken by then)
            del first
        del ok
        for i, tier in enumerate(tiers):
            if i:
                tier &= ~taken
                tier &= (need > 0)[z]  # only the zones the earlier tiers left short
            cand = np.flatnonzero(tier)
            tiers[i] = None  # free the tier's raster before the next
            del tier
            if cand.size == 0:
                continue
            s = score_at(k, cand)
            order = np.lexsort((cand, -s, z[cand]))
            cand = cand[order]
            zc = z[cand]
            start = np.searchsorted(zc, zc, side="left")
            pick = cand[(np.arange(cand.size) - start) < need[zc]]
            out[pick] = type_codes[k]
            taken[pick] = True
            need -= np.bincount(z[pick], minlength=n_zone)
    return out.reshape(np.shape(before))


def expected_map(before: np.ndarray, counts: np.ndarray, params: Any, zones: np.ndarray,
                 targets: pd.DataFrame) -> np.ndarray:
    """The **expected map** of an ensemble: per zone and type, the amounts on the cells of highest probability.

    Parameters
    ----------
    before : ndarray of uint8
        Land use at the start of the period (the runs' start).
    counts : ndarray
        ``(n_types, rows, cols)``: in how many runs each cell became each type
        (``GrowthResult.counts`` of the period).
    params : GrowthParams
        Of the simulation: ``potential`` (quantised, the tie-break: suitability x
        constraint), ``allowed`` (conversion matrix) and ``type_codes``.
    zones, targets
        The zones (or plan units) and the amounts (``zone, type, cells``) the runs met.

    Returns
    -------
    ndarray of uint8
        A map with exactly the period's amounts (where the zone has enough candidate
        cells: allowed class, potential > 0) — unlike any single run, the cells most runs
        agree on. Ties in probability go to the higher potential, then the lower cell index.
    """
    potential = np.asarray(params.potential)
    allowed = np.asarray(params.allowed)
    c = np.asarray(counts)
    before = np.asarray(before)
    flat_before = before.reshape(-1)

    def developable_of(k: int) -> np.ndarray:
        d = allowed[k][flat_before]
        d &= potential[k].reshape(-1) > 0
        return d

    def score_at(k: int, cand: np.ndarray) -> np.ndarray:
        # the order of count + potential / 256, as exact integers: count * 256 + potential, of the candidates
        # only (no raster of scores, no float temporaries); the same ranking bit for bit
        s = c[k].reshape(-1)[cand].astype(np.int64) << 8
        s |= potential[k].reshape(-1)[cand]
        return s

    return _allocate_by_rank(before, zones, targets, type_codes=tuple(int(t) for t in params.type_codes),
                             types=tuple(params.types), developable_of=developable_of, score_at=score_at,
                             first_of=lambda k: c[k].reshape(-1) > 0)  # count >= 1 ranks above any count 0
