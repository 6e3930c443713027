"""Agreement of a simulated map with the observed one: change components, figure of merit, Kappa, Lee–Sallee.

Every statistic here derives from one **joint histogram** of classes on the valid cells (in the study area, nodata
in no map): cell counts of each (before, observed, simulated) triple of classes, or of each (reference, simulated)
pair. Two ways build it, both with the one numba kernel
:func:`~landuse.evaluation.metrics_kernels._joint_codes` walked over row strips:

* :func:`joint_histogram` — any maps, the codes present in any of them; what the public functions below use;
* :class:`ChangeHistogram` — a fixed (before, observed) pair scored against many simulated maps (a calibration
  evaluates thousands): its codes are fixed once, :meth:`~ChangeHistogram.of_map` counts one simulated map and
  :meth:`~ChangeHistogram.of_counts` gives the ensemble-mean histogram of Monte Carlo conversion counts without
  building any map.

The statistics of a histogram (``h``: before x observed x simulated; ``m``: a confusion matrix, observed or
reference x simulated):

* :func:`components_from_histogram` — hits, wrong hits, misses, false alarms, correct rejections;
  :func:`fom_from_components` the figure of merit (Pontius et al. 2008);
* :func:`kappa_simulation_from_histogram` — Kappa-simulation (van Vliet et al. 2011);
* :func:`gains_from_histogram` — hits, misses, false alarms and FoM of each class's gains;
* :func:`accuracy_from_confusion`, :func:`kappa_from_confusion`, :func:`disagreement_from_confusion`
  (Pontius & Millones 2011), :func:`lee_sallee_from_confusion`;
* :func:`change_scores` — the scores a calibration maximises (FoM, Kappa-simulation, Lee–Sallee of urban land and
  the change components).

And on maps: :func:`change_components`, :func:`figure_of_merit`, :func:`change_components_by_class`,
:func:`confusion_matrix`, :func:`overall_accuracy`, :func:`kappa`, :func:`kappa_simulation`,
:func:`disagreement`, :func:`lee_sallee` and :func:`validation_metrics` bundling them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from landuse.core.classes import ClassScheme
from landuse.core.errors import ArgumentError
from landuse.evaluation.metrics import ArrayLike, _ratio, _values
from landuse.evaluation.metrics_kernels import _joint_codes

__all__ = [
    "VALIDATION_STRIP_ROWS",
    "ChangeHistogram",
    "accuracy_from_confusion",
    "change_components",
    "change_components_by_class",
    "change_scores",
    "components_from_histogram",
    "confusion_matrix",
    "disagreement",
    "disagreement_from_confusion",
    "figure_of_merit",
    "fom_from_components",
    "gains_from_histogram",
    "joint_histogram",
    "kappa",
    "kappa_from_confusion",
    "kappa_simulation",
    "kappa_simulation_from_histogram",
    "lee_sallee",
    "lee_sallee_from_confusion",
    "overall_accuracy",
    "validation_metrics",
]


def _codes8(a: ArrayLike) -> np.ndarray:
    arr = _values(a)
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ArgumentError("class-code maps must hold values within 0..255")
        arr = arr.astype(np.uint8)
    return arr


VALIDATION_STRIP_ROWS = 512
"""Rows per strip of the validation histogram: a map that is not C-contiguous is copied a strip at a time."""

_NO_STUDY = np.ones((1, 1), dtype=bool)


def _strip_counts(maps: tuple[np.ndarray, ...], study: np.ndarray | None, nodata: int, lut: np.ndarray, k: int,
                  strips: Sequence[tuple[int, int]]) -> np.ndarray:
    """:func:`~landuse.evaluation.metrics_kernels._joint_codes` summed over row strips (int64 counts)."""
    total = np.zeros(256 if k == 0 else k ** len(maps), dtype=np.int64)
    for r0, r1 in strips:
        strip = tuple(np.ascontiguousarray(m[r0:r1], dtype=np.uint8) for m in maps)
        st = _NO_STUDY if study is None else np.ascontiguousarray(study[r0:r1])
        total += _joint_codes(strip, st, study is not None, int(nodata), lut, k)
    return total


def _row_strips(rows: int, strip_rows: int | None) -> list[tuple[int, int]]:
    step = max(rows if strip_rows is None else int(strip_rows), 1)
    return [(r0, min(r0 + step, rows)) for r0 in range(0, rows, step)]


def joint_histogram(
    maps: tuple[np.ndarray, ...], *, study_area: ArrayLike | None, nodata: int,
    strip_rows: int | None = VALIDATION_STRIP_ROWS,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Cell counts of every combination of classes across ``maps`` on the valid cells.

    Parameters
    ----------
    maps : tuple of uint8 arrays (rows, cols)
        Class-code maps of one grid.
    study_area : bool array, optional
        Valid cells are in it (all when None) and not ``nodata`` in any map.
    nodata : int
    strip_rows : int, optional
        Rows per strip (None: the whole grid at once).

    Returns
    -------
    counts : int64 array of shape ``(K,) * len(maps)``
        Indexed by the position of each map's class in ``codes``, the first map first.
    codes : tuple of int
        Every code present in any map on the valid cells, ascending.

    Notes
    -----
    Two passes of a numba kernel (:func:`~landuse.evaluation.metrics_kernels._joint_codes`) over row strips of
    ``strip_rows`` rows: the codes present, then the counts; integer counts, so the result does not depend on the
    strip height, and no temporary is larger than a strip (a copy only of a map that is not C-contiguous).
    """
    shape = maps[0].shape
    st = None if study_area is None else np.asarray(_values(study_area), dtype=bool)
    if st is not None and st.shape != shape:
        raise ArgumentError(f"study_area shape {st.shape} differs from the maps' {shape}")
    for m in maps:
        if m.shape != shape:
            raise ArgumentError(f"maps differ in shape: {m.shape} and {shape}")
    strips = _row_strips(shape[0] if len(shape) else 0, strip_rows)
    lut = np.zeros(256, dtype=np.int32)
    codes = tuple(int(c) for c in np.flatnonzero(_strip_counts(maps, st, nodata, lut, 0, strips)))
    k = max(len(codes), 1)
    lut[list(codes)] = np.arange(len(codes), dtype=np.int32)
    return _strip_counts(maps, st, nodata, lut, k, strips).reshape((k,) * len(maps)), codes


class ChangeHistogram:
    """Joint (before, observed, simulated) histograms of one fixed pair of maps, for many simulated maps.

    Parameters
    ----------
    before, observed : uint8 array (rows, cols)
        The maps at the earlier and the later date.
    valid : bool array (rows, cols)
        The cells counted (a caller leaves out nodata and cells outside the study area).
    codes : sequence of int, optional
        Codes to index besides those present in ``before`` and ``observed`` on the valid cells (the urban types a
        simulation may create).

    Attributes
    ----------
    codes : ndarray of int
        The indexed class codes, ascending; ``K`` of them. A simulated code outside them counts as ``codes[0]``.
    K : int
    persist : ndarray of float64, flat (``K ** 3``)
        The histogram of a simulation that changes nothing (simulated = before).

    Notes
    -----
    Counts come from the kernel of :func:`joint_histogram` on the valid cells, so :meth:`of_map` equals the
    histogram :func:`joint_histogram` gives the three maps whenever they hold no other code.
    """

    def __init__(self, before: np.ndarray, observed: np.ndarray, valid: np.ndarray, *,
                 codes: Sequence[int] = ()) -> None:
        self.before = np.ascontiguousarray(before, dtype=np.uint8)
        self.observed = np.ascontiguousarray(observed, dtype=np.uint8)
        self.valid = np.ascontiguousarray(valid, dtype=bool)
        self._strips = _row_strips(self.before.shape[0], VALIDATION_STRIP_ROWS)
        lut = np.zeros(256, dtype=np.int32)
        present = _strip_counts((self.before, self.observed), self.valid, -1, lut, 0, self._strips) > 0
        present[list(codes)] = True
        self.codes = np.flatnonzero(present)
        self.K = int(self.codes.size)
        self.lut = lut
        self.lut[self.codes] = np.arange(self.K, dtype=np.int32)
        self._lut64 = self.lut.astype(np.int64)
        self.persist = self._counts(self.before)

    def _counts(self, simulated: np.ndarray) -> np.ndarray:
        # nodata -1: no cell is left out beyond ``valid`` (a code outside ``codes`` counts as codes[0])
        maps = (self.before, self.observed, simulated)
        return _strip_counts(maps, self.valid, -1, self.lut, self.K, self._strips).astype(np.float64)

    def of_map(self, simulated: np.ndarray) -> np.ndarray:
        """Histogram ``(K, K, K)`` float64 of one simulated map of the later date."""
        sim = np.asarray(simulated, dtype=np.uint8)
        if sim.shape != self.before.shape:
            raise ArgumentError(f"simulated map has shape {sim.shape}, the pair {self.before.shape}")
        return self._counts(sim).reshape((self.K,) * 3)

    def of_counts(self, counts: np.ndarray, runs: int, type_codes: Sequence[int]) -> np.ndarray:
        """Ensemble-mean histogram ``(K, K, K)``.

        A cell converted to ``type_codes[k]`` in ``c`` of ``runs`` runs counts ``c / runs`` there and
        ``1 - c / runs`` as persistence.

        ``counts`` is ``(types, rows, cols)`` (any integer type). Only the converted cells are visited: the weights of
        each type are moved, by ``numpy.bincount`` in cell order, from the persistence entry to the type's.
        """
        flat = self.persist.copy()
        c = np.asarray(counts).reshape(len(type_codes), -1)
        b, o, valid = self.before.reshape(-1), self.observed.reshape(-1), self.valid.reshape(-1)
        lut, K = self._lut64, self.K
        for k, code in enumerate(type_codes):
            cells = np.flatnonzero(c[k])
            cells = cells[valid[cells]]
            if cells.size == 0:
                continue
            w = c[k, cells].astype(np.float64) / runs
            lb = lut[b[cells]]
            base = (lb * K + lut[o[cells]]) * K
            flat -= np.bincount(base + lb, weights=w, minlength=flat.size)
            flat += np.bincount(base + lut[code], weights=w, minlength=flat.size)
        return flat.reshape((self.K,) * 3)


# =========================================================================== statistics of a histogram


def components_from_histogram(h: np.ndarray) -> dict[str, Any]:
    """Change components of a (before, observed, simulated) histogram ``h``.

    Returns ``hits`` (observed and simulated change to the same class), ``wrong_hits`` (both changed, to different
    classes), ``misses`` (observed change simulated as persistence), ``false_alarms`` (observed persistence
    simulated as change) and ``correct_rejections``: ints for an integer histogram, floats otherwise.
    """
    k = h.shape[0]
    cast = int if np.issubdtype(h.dtype, np.integer) else float
    i, j, m = np.meshgrid(np.arange(k), np.arange(k), np.arange(k), indexing="ij")
    oc, sc = j != i, m != i
    return {
        "hits": cast(h[oc & sc & (j == m)].sum()),
        "wrong_hits": cast(h[oc & sc & (j != m)].sum()),
        "misses": cast(h[oc & ~sc].sum()),
        "false_alarms": cast(h[sc & ~oc].sum()),
        "correct_rejections": cast(h[~oc & ~sc].sum()),
    }


def fom_from_components(c: Mapping[str, float]) -> float:
    """Figure of merit ``H / (H + M + W + F)`` of the components of :func:`components_from_histogram`; nan on 0/0."""
    return _ratio(c["hits"], c["hits"] + c["misses"] + c["wrong_hits"] + c["false_alarms"])


def kappa_simulation_from_histogram(h: np.ndarray) -> float:
    """Kappa-simulation of a (before, observed, simulated) histogram (van Vliet et al. 2011).

    ``KSim = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the agreement of observed and simulated
    maps and ``p_e = sum_j p(j) sum_i p_obs(i | j) p_sim(i | j)``, the agreement expected
    from the class transitions out of each original class ``j``. nan on an empty histogram or when ``p_e = 1``.
    """
    n = h.sum()
    if n <= 0:
        return math.nan
    po = float(np.einsum("bii->", h)) / n
    from_j = h.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_obs = np.where(from_j[:, None] > 0, h.sum(axis=2) / from_j[:, None], 0.0)
        p_sim = np.where(from_j[:, None] > 0, h.sum(axis=1) / from_j[:, None], 0.0)
    pe = float(((from_j / n)[:, None] * p_obs * p_sim).sum())
    return math.nan if math.isclose(pe, 1.0) else float((po - pe) / (1.0 - pe))


def gains_from_histogram(h: np.ndarray, codes: Sequence[int], wanted: Sequence[int]) -> dict[int, dict[str, float]]:
    """Per code of ``wanted``: ``hits``, ``misses``, ``false_alarms`` and ``figure_of_merit`` of that class's gains.

    ``h`` is a (before, observed, simulated) histogram over ``codes``; a gain of class ``c`` is a cell that is ``c``
    at the end and was not ``c`` before.
    """
    codes = tuple(codes)
    out = {}
    for c in wanted:
        if c in codes:
            ci = codes.index(c)
            sub = np.delete(h, ci, axis=0)  # before != c
            hit = int(sub[:, ci, ci].sum())
            miss = int(sub[:, ci, :].sum()) - hit
            fa = int(sub[:, :, ci].sum()) - hit
        else:
            hit = miss = fa = 0
        out[int(c)] = {"hits": hit, "misses": miss, "false_alarms": fa, "figure_of_merit": _ratio(hit, hit + miss + fa)}
    return out


def accuracy_from_confusion(m: np.ndarray) -> float:
    """Share of the cells of confusion matrix ``m`` on its diagonal; nan when empty."""
    return _ratio(np.trace(m), m.sum())


def kappa_from_confusion(m: np.ndarray) -> float:
    """Cohen's kappa ``(p_o - p_e) / (1 - p_e)`` of confusion matrix ``m``; nan when empty or ``p_e = 1``."""
    total = m.sum()
    if total == 0:
        return math.nan
    p = m / total
    po = float(np.trace(p))
    pe = float((p.sum(axis=1) * p.sum(axis=0)).sum())
    return math.nan if math.isclose(pe, 1.0) else (po - pe) / (1.0 - pe)


def disagreement_from_confusion(m: np.ndarray, codes: Sequence[int]) -> dict[str, Any]:
    """Quantity and allocation disagreement of confusion matrix ``m``; see :func:`disagreement`.

    Rows reference, columns simulated, over ``codes``.
    """
    total = m.sum()
    if total == 0:
        return {"quantity": math.nan, "allocation": math.nan, "total": math.nan, "by_class": {}}
    p = m / total  # rows = reference, cols = simulated
    ref_tot = p.sum(axis=1)
    sim_tot = p.sum(axis=0)
    diag = np.diag(p)
    q = np.abs(ref_tot - sim_tot)
    a = 2.0 * np.minimum(ref_tot - diag, sim_tot - diag)
    return {
        "quantity": float(q.sum() / 2.0),
        "allocation": float(a.sum() / 2.0),
        "total": float(1.0 - diag.sum()),
        "by_class": {int(c): {"quantity": float(q[i]), "allocation": float(a[i])} for i, c in enumerate(codes)},
    }


def lee_sallee_from_confusion(m: np.ndarray, codes: Sequence[int], selected: Sequence[int]) -> float:
    """Lee–Sallee index ``|O ∩ S| / |O ∪ S|`` of the classes ``selected`` from confusion matrix ``m``.

    ``m`` is observed x simulated, over ``codes``; nan when neither map holds them.
    """
    sel = np.isin(np.asarray(codes, dtype=np.int64), np.asarray(selected, dtype=np.int64))
    inter = m[np.ix_(sel, sel)].sum()
    union = m[sel, :].sum() + m[:, sel].sum() - inter
    return _ratio(inter, union)


def change_scores(h: np.ndarray, codes: Sequence[int], urban_codes: Sequence[int]) -> dict[str, float]:
    """The scores of a simulated change a calibration maximises, from its (before, observed, simulated) histogram.

    Returns ``fom`` (:func:`fom_from_components`), ``kappa_simulation``
    (:func:`kappa_simulation_from_histogram`), ``lee_sallee`` of the ``urban_codes`` at the later date
    (:func:`lee_sallee_from_confusion`) and the components ``hits, wrong_hits, misses, false_alarms``.
    """
    comp = components_from_histogram(h)
    return {
        "fom": fom_from_components(comp),
        "kappa_simulation": kappa_simulation_from_histogram(h),
        "lee_sallee": lee_sallee_from_confusion(h.sum(axis=0), codes, urban_codes),  # observed x simulated
        **{k: v for k, v in comp.items() if k != "correct_rejections"},
    }


# =========================================================================== statistics of maps


def change_components(
    before: ArrayLike,
    observed: ArrayLike,
    simulated: ArrayLike,
    *,
    study_area: ArrayLike | None = None,
    nodata: int = 255,
) -> dict[str, int]:
    """Hits, misses, wrong hits, false alarms and correct rejections of simulated change (cells).

    A cell *changed* when its class at the end differs from ``before``.

    * ``hits``: observed and simulated change, to the same class;
    * ``wrong_hits``: observed and simulated change, to different classes;
    * ``misses``: observed change simulated as persistence;
    * ``false_alarms``: observed persistence simulated as change;
    * ``correct_rejections``: persistence in both.

    Cells outside ``study_area`` or nodata in any map are left out.
    """
    h, _ = joint_histogram((_codes8(before), _codes8(observed), _codes8(simulated)),
                           study_area=study_area, nodata=nodata)
    return components_from_histogram(h)


def figure_of_merit(
    before: ArrayLike,
    observed: ArrayLike,
    simulated: ArrayLike,
    *,
    study_area: ArrayLike | None = None,
    nodata: int = 255,
) -> float:
    """Figure of merit of simulated change (Pontius et al. 2008).

    ``FoM = H / (M + H + W + F)`` with the components of :func:`change_components`.
    Range [0, 1]: 1 when simulated change matches observed change exactly, 0 when no
    change is a hit. ``nan`` when neither map shows any change (0/0).

    >>> b = np.array([[4, 4, 4, 4]]); o = np.array([[1, 1, 4, 4]]); s = np.array([[1, 4, 1, 4]])
    >>> figure_of_merit(b, o, s)  # 1 hit, 1 miss, 1 false alarm
    0.3333333333333333
    """
    return fom_from_components(change_components(before, observed, simulated, study_area=study_area, nodata=nodata))


def change_components_by_class(
    before: ArrayLike,
    observed: ArrayLike,
    simulated: ArrayLike,
    *,
    codes: tuple[int, ...],
    study_area: ArrayLike | None = None,
    nodata: int = 255,
) -> dict[int, dict[str, float]]:
    """Per class: hits, misses, false alarms and FoM of *gains* of that class.

    A gain of class ``c`` is a cell that is ``c`` at the end and was not ``c`` before.
    ``hits`` = observed and simulated gain, ``misses`` = observed gain only,
    ``false_alarms`` = simulated gain only; ``figure_of_merit = H / (H + M + F)``
    (nan if the class gains nowhere in either map).
    """
    h, present = joint_histogram((_codes8(before), _codes8(observed), _codes8(simulated)),
                                 study_area=study_area, nodata=nodata)
    return gains_from_histogram(h, present, tuple(int(c) for c in codes))


def kappa_simulation(
    before: ArrayLike,
    observed: ArrayLike,
    simulated: ArrayLike,
    *,
    study_area: ArrayLike | None = None,
    nodata: int = 255,
) -> float:
    """Kappa-simulation of a simulated map against the observed one (van Vliet et al. 2011).

    ``KSim = (p_o - p_e) / (1 - p_e)``: ``p_o`` is the share of cells where observed and
    simulated maps agree; ``p_e = sum_j p(j) sum_i p_obs(i | j) p_sim(i | j)`` the agreement
    expected from the transitions out of each class ``j`` of the ``before`` map. Range
    [-1, 1]; 0 means no better than the simulated transition sizes placed at random
    within each original class. Cells outside ``study_area`` or nodata in any map are
    left out; nan when ``p_e = 1``.

    >>> b = np.array([[4, 4, 4, 4]]); o = np.array([[1, 1, 4, 4]]); s = np.array([[1, 4, 1, 4]])
    >>> kappa_simulation(b, o, s)  # p_o = 0.5, p_e = 0.5
    0.0
    >>> kappa_simulation(b, o, o)
    1.0
    """
    h, _ = joint_histogram((_codes8(before), _codes8(observed), _codes8(simulated)),
                           study_area=study_area, nodata=nodata)
    return kappa_simulation_from_histogram(h)


def confusion_matrix(
    reference: ArrayLike,
    simulated: ArrayLike,
    *,
    study_area: ArrayLike | None = None,
    nodata: int = 255,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Cell counts ``M[i, j]``: reference class ``codes[i]``, simulated class ``codes[j]``.

    ``codes`` are every code present in either map on the valid cells (nodata excluded).
    """
    return joint_histogram((_codes8(reference), _codes8(simulated)), study_area=study_area, nodata=nodata)


def overall_accuracy(
    reference: ArrayLike, simulated: ArrayLike, *, study_area: ArrayLike | None = None, nodata: int = 255
) -> float:
    """Share of cells (in [0, 1]) where the two maps agree; nan on an empty study area."""
    return accuracy_from_confusion(confusion_matrix(reference, simulated, study_area=study_area, nodata=nodata)[0])


def kappa(
    reference: ArrayLike, simulated: ArrayLike, *, study_area: ArrayLike | None = None, nodata: int = 255
) -> float:
    """Cohen's kappa ``(p_o - p_e) / (1 - p_e)`` of the two maps.

    ``p_o`` is the observed agreement, ``p_e = sum_k p_k+ p_+k`` the agreement expected
    by chance. Range [-1, 1]; nan when ``p_e = 1`` (both maps a single, identical class).
    """
    return kappa_from_confusion(confusion_matrix(reference, simulated, study_area=study_area, nodata=nodata)[0])


def disagreement(
    reference: ArrayLike,
    simulated: ArrayLike,
    *,
    study_area: ArrayLike | None = None,
    nodata: int = 255,
) -> dict[str, Any]:
    """Quantity and allocation disagreement (Pontius & Millones 2011), as shares of the study area.

    With ``p_ij`` the share of cells of simulated class ``i`` and reference class ``j``:
    ``q_g = |sum_i p_ig - sum_j p_gj|``, ``a_g = 2 min(sum_i p_ig - p_gg, sum_j p_gj - p_gg)``;
    ``Q = sum_g q_g / 2``, ``A = sum_g a_g / 2``, and ``Q + A = 1 - overall accuracy``.
    Each in [0, 1].

    Returns
    -------
    dict
        ``quantity``, ``allocation``, ``total`` and ``by_class`` (code -> ``{quantity, allocation}``).
    """
    return disagreement_from_confusion(*confusion_matrix(reference, simulated, study_area=study_area, nodata=nodata))


def lee_sallee(
    observed: ArrayLike, simulated: ArrayLike, *, study_area: ArrayLike | None = None
) -> float:
    """Lee-Sallee shape index of two masks: ``|O ∩ S| / |O ∪ S|``, in [0, 1]; nan if both are empty."""
    o = np.asarray(_values(observed), dtype=bool)
    s = np.asarray(_values(simulated), dtype=bool)
    if study_area is not None:
        st = np.asarray(_values(study_area), dtype=bool)
        o, s = o & st, s & st
    return _ratio(np.count_nonzero(o & s), np.count_nonzero(o | s))


def validation_metrics(
    before: ArrayLike,
    observed: ArrayLike,
    simulated: ArrayLike,
    classes: ClassScheme,
    *,
    study_area: ArrayLike | None = None,
) -> dict[str, Any]:
    """Every validation metric of a simulated map against the observed one.

    Returns overall accuracy, kappa, quantity and allocation disagreement, the change
    components and figure of merit (all classes), per-class gains (FoM by class name),
    and the Lee-Sallee index of all urban land and of each urban type. One pass over the
    maps builds the joint histogram of (before, observed, simulated) classes on the
    valid cells; every metric derives from it.
    """
    h, codes = joint_histogram((_codes8(before), _codes8(observed), _codes8(simulated)),
                               study_area=study_area, nodata=classes.nodata)
    comp = components_from_histogram(h)
    conf = h.sum(axis=0)  # observed (rows) x simulated (cols)
    dis = disagreement_from_confusion(conf, codes)
    gains = gains_from_histogram(h, codes, classes.codes)
    urban = {"urban": lee_sallee_from_confusion(conf, codes, classes.codes_with_role("urban"))}
    for t in classes.urban_types:
        urban[t] = lee_sallee_from_confusion(conf, codes, classes.codes_of_type(t))
    names = {c.code: c.name for c in classes}
    return {
        "overall_accuracy": accuracy_from_confusion(conf),
        "kappa": kappa_from_confusion(conf),
        "quantity_disagreement": dis["quantity"],
        "allocation_disagreement": dis["allocation"],
        "disagreement_by_class": {names.get(c, str(c)): v for c, v in dis["by_class"].items()},
        "change_components": comp,
        "figure_of_merit": fom_from_components(comp),
        "gains_by_class": {names[c]: v for c, v in gains.items()},
        "lee_sallee": urban,
    }
