"""Demand from the land there is: a growth rate of current urban land, or a trend of the history layers.

Besides hectares per type and period (``demand.<type>``, ``demand.by_city``) and people (``demand.people``,
:mod:`landuse.allocation.demand`), a scenario may derive its demand from the land-use maps it already holds. Exactly one source
of demand per scenario; the one here is resolved to hectares per urban type and period (per city with a cities
layer) before anything is planned, set as ``demand.by_city`` (or the per-type series) like demand from people, and
stated in the report.

**Share** (``demand.share: {rate_per_year: r}``, one rate or one per type): each type's land at the start of the run
``L`` grows by ``r`` a year, compounded, so the period ``(a, b)`` of a run starting in ``y0`` asks for

    gain(a, b) = L * ((1 + r) ** (b - y0) - (1 + r) ** (a - y0))

Compounding from the start-year land (rather than from the land at each period start) resolves every period before
the run; the two agree whenever the plan is met, which the engine guarantees or reports as a shortfall.

**Linear trend** (``demand.extrapolate: {method: linear}``): the area ``A(y)`` of each type in the history years and
the start map, fitted by least squares ``A(y) = c + s * y``; each period asks for ``s * (b - a)``, the trend's slope
times the period length (a start map above or below the line changes nothing: the rate is extended, not the
residual made up).

**Markov** (``demand.extrapolate: {method: markov}``): the class transition matrix ``P`` of the last history interval
(the two latest of the history years used and the start map; ``P[i, j]`` = share of class ``i``'s cells that were
class ``j`` at the end), raised to ``m = period length / interval length`` and applied to the class areas:
``a_k = a_(k-1) @ P ** m``, starting from the start map. A type's demand is its net gain of area,
``sum(a_k[type]) - sum(a_(k-1)[type])``. A whole ``m`` is a matrix power; a fractional ``m`` uses the eigen
decomposition ``V diag(w ** m) V^-1`` when every eigenvalue is real and positive and the result is a transition
matrix, else the blend of the two neighbouring whole powers (always a transition matrix; the report notes it).
A class absent from the interval's first map keeps its land.

**Per city** (``per_city: true``, the default, with ``layers.cities``): the demand of each city comes from its own
land -- share: its own land of the type; linear: its own trend; Markov: the cluster's matrix (estimated on every
cell, robust for small cities) applied to its own class areas -- and becomes ``demand.by_city``. Without a cities
layer, or with ``per_city: false``, one cluster-wide amount per type.

Areas are counted over the cells of the study area that hold a declared class in every map used. A negative gain (a
type losing land in the trend) is planned as 0 and noted: shrinking is what ``demand.people`` models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.config import Scenario
from landuse.core.errors import ArgumentError, ConfigError
from landuse.core.landscape import cell_area_ha

_TOL = 1e-9


@dataclass
class TrendDemand:
    """Demand derived from a growth rate of the land there is or from the history layers.

    Attributes
    ----------
    method : str
        ``share``, ``linear`` or ``markov``.
    text : str
        One sentence stating the method and the years it used, for the report.
    table : DataFrame
        ``period, city, type, trend_ha, hectares``: the raw gain per period end year, city (0 = cluster-wide) and
        type, and the hectares planned (negative gains as 0).
    by_city : dict or None
        ``{city: {type: {end year: hectares}}}`` when resolved per city, as ``demand.by_city`` takes it.
    cluster : dict
        ``{type: {end year: hectares}}``, the cluster-wide totals.
    notes : list of str
    """

    method: str
    text: str
    table: pd.DataFrame
    by_city: dict[int, dict[str, dict[int, float]]] | None
    cluster: dict[str, dict[int, float]]
    notes: list[str] = field(default_factory=list)

    def statement(self) -> str:
        """The report's line: the method, then the resolved cluster-wide hectares per type and period."""
        parts = [f"{t} " + ", ".join(f"{y}: {v:,.0f} ha" for y, v in series.items())
                 for t, series in self.cluster.items()]
        return f"Demand: {self.text}; " + "; ".join(parts) + "."

    def summary(self) -> str:
        """The statement and the notes, for the terminal."""
        return "\n".join([self.statement(), *(f"  note: {n}" for n in self.notes)])

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible record for report.json (``extra.demand_trend``)."""
        return {"method": self.method, "text": self.text, "statement": self.statement(),
                "per_city": self.by_city is not None,
                "cluster": {t: {str(y): v for y, v in s.items()} for t, s in self.cluster.items()},
                "table": self.table.to_dict(orient="records"), "notes": list(self.notes)}


# --------------------------------------------------------------------------- areas


def _maps(scenario: Scenario, landscape: xr.Dataset, years: list[int]) -> dict[int, np.ndarray]:
    """Land use of each history year asked for, plus the start map at the start year."""
    out = {}
    for y in years:
        name = f"landuse_{y}"
        if name not in landscape:
            raise ConfigError(f"demand.extrapolate: the history map of {y} (layers.history.{y}) is not in the "
                              "Landscape; read it with the scenario's layers")
        out[int(y)] = np.asarray(landscape[name].values)
    out[scenario.periods[0]] = np.asarray(landscape["landuse"].values)
    return out


def _city_ids(scenario: Scenario, landscape: xr.Dataset, per_city: bool,
              mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Per cell the index of its city in the list of cities (``[0]``: one cluster-wide unit), and the list."""
    if not per_city or "cities" not in landscape:
        return np.zeros(mask.shape, dtype=np.int64), [0]
    cities = np.asarray(landscape["cities"].values, dtype=np.int64)
    present = sorted(int(c) for c in np.unique(cities[mask]) if c > 0)
    index = np.full(int(cities.max(initial=0)) + 1, -1, dtype=np.int64)
    index[present] = np.arange(len(present))
    return np.where(cities > 0, index[np.clip(cities, 0, None)], -1), present


def class_areas(lu: np.ndarray, codes: list[int], unit: np.ndarray, n_units: int, mask: np.ndarray,
                cell_ha: float) -> np.ndarray:
    """Hectares of each class (``codes`` order) per unit: array ``(n_units, len(codes))``.

    Cells outside ``mask`` or with ``unit < 0`` are not counted.

    >>> lu = np.array([[1, 1, 2], [2, 2, 3]], dtype=np.uint8)
    >>> class_areas(lu, [1, 2, 3], np.zeros((2, 3), int), 1, np.ones((2, 3), bool), 0.5).tolist()
    [[1.0, 1.5, 0.5]]
    """
    lut = np.full(256, -1, dtype=np.int64)
    lut[list(codes)] = np.arange(len(codes))
    k = lut[np.asarray(lu, dtype=np.uint8)]
    ok = mask & (k >= 0) & (unit >= 0)
    flat = unit[ok] * len(codes) + k[ok]
    return np.bincount(flat, minlength=n_units * len(codes)).reshape(n_units, len(codes)).astype(float) * cell_ha


def _type_columns(scenario: Scenario, codes: list[int]) -> dict[str, list[int]]:
    """Urban type -> column indices (in ``codes``) of its classes."""
    classes = scenario.classes
    return {t: [codes.index(c) for c in classes.codes_of_type(t)] for t in classes.urban_types}


def _valid_mask(scenario: Scenario, landscape: xr.Dataset, maps: dict[int, np.ndarray]) -> np.ndarray:
    """Study-area cells holding a declared class in every map."""
    declared = np.zeros(256, dtype=bool)
    declared[[c for c in scenario.classes.codes if c != scenario.classes.nodata]] = True
    mask = np.asarray(landscape["study_area"].values, dtype=bool).copy()
    for lu in maps.values():
        mask &= declared[np.asarray(lu, dtype=np.uint8)]
    return mask


# --------------------------------------------------------------------------- methods


def _share(scenario: Scenario, landscape: xr.Dataset) -> tuple[str, np.ndarray, list[int], list[str]]:
    """Gains ``(unit, type, period)`` from ``demand.share``."""
    cfg = scenario.config.demand.share
    types = list(scenario.classes.urban_types)
    notes: list[str] = []
    if isinstance(cfg.rate_per_year, dict):
        unknown = sorted(set(cfg.rate_per_year) - set(types))
        if unknown:
            raise ConfigError(f"demand.share.rate_per_year: {unknown} are not urban types of the class scheme "
                              f"({', '.join(types)}); name the scheme's types")
        rates = {t: float(cfg.rate_per_year.get(t, 0.0)) for t in types}
        missing = [t for t in types if t not in cfg.rate_per_year]
        if missing:
            notes.append(f"no rate for {', '.join(missing)} in demand.share.rate_per_year: no demand for them")
        text = "share of current urban land (" + ", ".join(f"{t} {100 * r:g} %" for t, r in rates.items()
                                                           if t in cfg.rate_per_year)
    else:
        rates = {t: float(cfg.rate_per_year) for t in types}
        text = f"share of current urban land ({100 * float(cfg.rate_per_year):g} %"
    y0 = scenario.periods[0]
    start = {y0: np.asarray(landscape["landuse"].values)}
    mask = _valid_mask(scenario, landscape, start)
    unit, cities = _city_ids(scenario, landscape, cfg.per_city, mask)
    codes = list(scenario.classes.codes)
    cols = _type_columns(scenario, codes)
    areas = class_areas(start[y0], codes, unit, len(cities), mask, cell_area_ha(landscape))
    gains = np.zeros((len(cities), len(types), len(scenario.period_pairs)))
    for k, t in enumerate(types):
        land = areas[:, cols[t]].sum(axis=1)
        g = 1.0 + rates[t]
        for p, (a, b) in enumerate(scenario.period_pairs):
            gains[:, k, p] = land * (g ** (b - y0) - g ** (a - y0))
    text += f" a year, compounded from the land of {y0}{', per city' if cities != [0] else ''})"
    return text, gains, cities, notes


def _linear(scenario: Scenario, landscape: xr.Dataset) -> tuple[str, np.ndarray, list[int], list[str]]:
    """Gains ``(unit, type, period)`` from the least-squares trend of each type's area."""
    cfg = scenario.config.demand.extrapolate
    hist = sorted(cfg.years or scenario.config.layers.history)
    maps = _maps(scenario, landscape, hist)
    mask = _valid_mask(scenario, landscape, maps)
    unit, cities = _city_ids(scenario, landscape, cfg.per_city, mask)
    codes = list(scenario.classes.codes)
    cols = _type_columns(scenario, codes)
    types = list(scenario.classes.urban_types)
    years = np.array(sorted(maps), dtype=float)
    cell_ha = cell_area_ha(landscape)
    areas = np.stack([class_areas(maps[int(y)], codes, unit, len(cities), mask, cell_ha) for y in years])
    dy = years - years.mean()
    gains = np.zeros((len(cities), len(types), len(scenario.period_pairs)))
    for k, t in enumerate(types):
        a = areas[:, :, cols[t]].sum(axis=2)  # (year, unit)
        slope = (dy[:, None] * (a - a.mean(axis=0))).sum(axis=0) / float((dy ** 2).sum())
        for p, (y_a, y_b) in enumerate(scenario.period_pairs):
            gains[:, k, p] = slope * (y_b - y_a)
    text = (f"extrapolated from history {', '.join(str(int(y)) for y in years)} (linear trend"
            f"{', per city' if cities != [0] else ''})")
    return text, gains, cities, []


def transition_matrix(before: np.ndarray, after: np.ndarray, codes: list[int],
                      mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class transition counts and probabilities between two maps.

    Returns ``(counts, P)``, both ``(n, n)`` in ``codes`` order: ``counts[i, j]`` cells of class ``i`` in ``before``
    that are class ``j`` in ``after`` (within ``mask``), ``P`` the counts over their row sums (a class absent from
    ``before`` stays what it is: ``P[i, i] = 1``).

    >>> b = np.array([[1, 1, 1, 1, 2]]); a = np.array([[1, 1, 1, 2, 2]])
    >>> transition_matrix(b, a, [1, 2], np.ones(b.shape, bool))[1].tolist()
    [[0.75, 0.25], [0.0, 1.0]]
    """
    n = len(codes)
    lut = np.full(256, -1, dtype=np.int64)
    lut[list(codes)] = np.arange(n)
    i = lut[np.asarray(before, dtype=np.uint8)]
    j = lut[np.asarray(after, dtype=np.uint8)]
    ok = mask & (i >= 0) & (j >= 0)
    counts = np.bincount(i[ok] * n + j[ok], minlength=n * n).reshape(n, n)
    rows = counts.sum(axis=1, keepdims=True)
    p = np.where(rows > 0, counts / np.maximum(rows, 1), 0.0)
    p[rows[:, 0] == 0] = np.eye(n)[rows[:, 0] == 0]
    return counts, p


def matrix_power(p: np.ndarray, m: float) -> tuple[np.ndarray, str | None]:
    """``P ** m`` for a transition matrix and a positive ``m``, and a note when it could only be approximated.

    A whole ``m``: the matrix power. A fractional ``m``: the eigen decomposition when every eigenvalue is real and
    positive and the result is a transition matrix (rows of non-negative shares summing to 1); otherwise the blend
    ``(1 - f) P ** floor(m) + f P ** ceil(m)``, ``f`` the fraction.

    >>> p = np.array([[0.9, 0.1], [0.0, 1.0]])
    >>> matrix_power(p, 2)[0].round(4).tolist()
    [[0.81, 0.19], [0.0, 1.0]]
    >>> matrix_power(p, 0.5)[0].round(4).tolist()
    [[0.9487, 0.0513], [0.0, 1.0]]
    """
    if not m > 0:
        raise ArgumentError(f"power must be positive, got {m}")
    whole = round(m)
    if abs(m - whole) < 1e-9:
        return np.linalg.matrix_power(p, int(whole)), None
    try:
        w, v = np.linalg.eig(p)
        if np.all(np.abs(w.imag) < 1e-12) and np.all(w.real > 1e-12):
            q = (v @ np.diag(w.real.astype(complex) ** m) @ np.linalg.inv(v)).real
            if q.min() > -1e-9 and np.allclose(q.sum(axis=1), 1.0, atol=1e-9):
                q = np.clip(q, 0.0, None)
                return q / q.sum(axis=1, keepdims=True), None
    except np.linalg.LinAlgError:
        pass
    lo = int(np.floor(m))
    f = m - lo
    q = (1 - f) * np.linalg.matrix_power(p, lo) + f * np.linalg.matrix_power(p, lo + 1)
    return q, (f"the transition matrix has no real {m:g}-th power (an eigenvalue is negative, zero or complex): "
               f"used the blend of its powers {lo} and {lo + 1}")


def _markov(scenario: Scenario, landscape: xr.Dataset) -> tuple[str, np.ndarray, list[int], list[str]]:
    """Gains ``(unit, type, period)`` from the transition matrix of the last history interval."""
    cfg = scenario.config.demand.extrapolate
    hist = sorted(cfg.years or scenario.config.layers.history)
    maps = _maps(scenario, landscape, hist)
    y1, y2 = sorted(maps)[-2:]
    pair = {y1: maps[y1], y2: maps[y2]}
    mask = _valid_mask(scenario, landscape, pair)
    codes = [c for c in scenario.classes.codes if c != scenario.classes.nodata]
    _, p = transition_matrix(maps[y1], maps[y2], codes, mask)
    unit, cities = _city_ids(scenario, landscape, cfg.per_city, mask)
    cols = _type_columns(scenario, codes)
    types = list(scenario.classes.urban_types)
    a = class_areas(maps[y2], codes, unit, len(cities), mask, cell_area_ha(landscape))
    gains = np.zeros((len(cities), len(types), len(scenario.period_pairs)))
    notes: list[str] = []
    for k, (ya, yb) in enumerate(scenario.period_pairs):
        m = (yb - ya) / (y2 - y1)
        q, note = matrix_power(p, m)
        if note and note not in notes:
            notes.append(note)
        b = a @ q
        for j, t in enumerate(types):
            gains[:, j, k] = b[:, cols[t]].sum(axis=1) - a[:, cols[t]].sum(axis=1)
        a = b
    text = (f"extrapolated from history {y1} and {y2} (Markov chain of the {y1}-{y2} transitions, "
            f"{'applied to each city' if cities != [0] else 'cluster-wide'})")
    return text, gains, cities, notes


# --------------------------------------------------------------------------- resolution


def resolve_trend_demand(scenario: Scenario, landscape: xr.Dataset) -> TrendDemand | None:
    """Hectares per type and period (per city) from ``demand.share`` or ``demand.extrapolate`` (None without).

    Parameters
    ----------
    scenario : Scenario
    landscape : xarray.Dataset
        The Landscape as :func:`landuse.io.rasters.read_landscape` reads it: the start map, ``study_area``, the history
        maps as ``landuse_<year>`` and, for per-city demand, ``cities``.
    """
    dem = scenario.config.demand
    if dem.share is not None:
        method = "share"
        text, gains, cities, notes = _share(scenario, landscape)
    elif dem.extrapolate is not None:
        method = dem.extrapolate.method
        text, gains, cities, notes = (_linear if method == "linear" else _markov)(scenario, landscape)
    else:
        return None
    types = list(scenario.classes.urban_types)
    ends = [b for _, b in scenario.period_pairs]
    rows = []
    for i, c in enumerate(cities):
        for k, t in enumerate(types):
            for p, y in enumerate(ends):
                g = float(gains[i, k, p])
                rows.append({"period": int(y), "city": int(c), "type": t, "trend_ha": g, "hectares": max(g, 0.0)})
    table = pd.DataFrame(rows, columns=["period", "city", "type", "trend_ha", "hectares"])
    negative = table[table.trend_ha < -_TOL]
    if len(negative):
        where = "; ".join(f"{r.type} {r.period}{f' city {r.city}' if r.city else ''}: {r.trend_ha:,.1f} ha"
                          for r in negative.itertuples(index=False))
        notes.append(f"negative gains planned as 0 ({where}): the land of these types shrank in the history; "
                     "releasing urban land is modelled by demand.people (landuse.allocation.shrink)")
    table["hectares"] = table["hectares"].clip(lower=0.0)
    cluster = {t: {int(y): float(table[(table.type == t) & (table.period == y)].hectares.sum()) for y in ends}
               for t in types}
    by_city = None
    if cities != [0]:
        by_city = {int(c): {t: {int(r.period): float(r.hectares) for r in g.itertuples(index=False)}
                            for t, g in table[table.city == c].groupby("type", sort=False)} for c in cities}
    return TrendDemand(method=method, text=text, table=table, by_city=by_city, cluster=cluster, notes=notes)


def apply_trend_demand(scenario: Scenario, landscape: xr.Dataset) -> TrendDemand | None:
    """Resolve ``demand.share`` / ``demand.extrapolate`` and set the hectares as the scenario's demand.

    Per city as ``demand.by_city``; cluster-wide as the per-type hectare series. None (nothing changed) when the
    scenario gives neither.
    """
    derived = resolve_trend_demand(scenario, landscape)
    if derived is None:
        return None
    dem = scenario.config.demand
    if derived.by_city is not None:
        dem.by_city = derived.by_city
    else:
        for t, series in derived.cluster.items():
            if t not in type(dem).model_fields:
                raise ConfigError(f"demand: urban type {t!r} takes no cluster-wide hectare series here; resolve the "
                                  "demand per city (layers.cities with per_city: true)")
            setattr(dem, t, series)
    return derived


__all__ = ["TrendDemand", "apply_trend_demand", "class_areas", "matrix_power", "resolve_trend_demand",
           "transition_matrix"]
