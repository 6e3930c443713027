"""What the growth engine takes and gives: its parameters, its result, and potential quantisation.

:class:`GrowthParams` holds the validated, precomputed inputs (quantised potentials, the
conversion matrix, neighbourhood and schedule options); :class:`GrowthResult` the outcome of a
simulation (maps of the representative run, per-cell conversion counts, the shortfall table).
Potentials are log-quantised to uint8 codes (:func:`quantise_potential`) and decoded with
:func:`potential_levels`. Inconsistent inputs raise :class:`GrowthInputError` (:func:`require`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.classes import DEFAULT_URBAN_TYPES
from landuse.core.errors import GrowthInputError
from landuse.growth.kernels import quantise_into

__all__ = ["GrowthInputError", "GrowthParams", "GrowthResult", "potential_levels", "quantise_potential", "require"]

def potential_levels() -> np.ndarray:
    """Decoding table of quantised potentials: code 0 -> 0, code ``q`` -> ``2 ** ((q - 255) / 16)``.

    >>> lv = potential_levels()
    >>> float(lv[0]), float(lv[255]), round(float(lv[239]), 3)
    (0.0, 1.0, 0.5)
    """
    lv = 2.0 ** ((np.arange(256, dtype=np.float64) - 255.0) / 16.0)
    lv[0] = 0.0
    return lv


def quantise_potential(w: np.ndarray) -> np.ndarray:
    """Log-quantise potentials in [0, 1] to uint8 codes (relative error at most 2.2 %).

    0 maps to code 0 (never converts); positive values to codes 1..255 with 16 codes per
    halving, so potentials down to about 1.7e-5 keep their order of magnitude.

    >>> quantise_potential(np.array([0.0, 1.0, 0.5], dtype=np.float32)).tolist()
    [0, 255, 239]
    """
    a = np.ascontiguousarray(w, dtype=np.float32)
    out = np.empty(a.shape, dtype=np.uint8)
    quantise_into(a.reshape(-1), out.reshape(-1))
    return out


def require(cond: bool, message: str) -> None:
    """Raise :class:`GrowthInputError` with ``message`` unless ``cond``."""
    if not cond:
        raise GrowthInputError(message)


@dataclass(frozen=True, eq=False)
class GrowthParams:
    """Validated, precomputed inputs of :func:`~landuse.growth.simulate` (no config parsing at run time).

    Build with :meth:`from_scenario` (the pipeline) or :meth:`from_arrays` (tests, other
    suitability models); derive variants with :meth:`replace`.

    Attributes
    ----------
    potential : ndarray of uint8, shape (T, rows, cols)
        Static potential base ``S x C`` per urban type, log-quantised
        (:func:`quantise_potential`); 0 where the type may never go.
    allowed : ndarray of bool, shape (T, 256)
        Conversion matrix: may a cell of class code ``c`` become type ``k``.
    type_codes : tuple of int
        Class code new land of each urban type takes (its primary class).
    types : tuple of str
        Urban type names (the scheme's ``urban_types``; default the three default types).
    type_lut : ndarray of int8, shape (256,), optional
        Urban type index of every class code (-1: not urban). Several codes may share a type (they count as
        neighbours of that type); default: ``type_codes[k]`` -> ``k``. Must map ``type_codes[k]`` to ``k``.
    neighbourhood : int
        Moore window edge, 3, 5 or 7.
    neighbourhood_weights : ndarray (T, T)
        ``[k, j]``: weight of a type-``j`` neighbour for growth of type ``k``.
    neighbourhood_strength : float
        Exponent on the neighbourhood share (0 = neighbours do not matter beyond
        making a cell a frontier cell).
    iterations : int
        Edge-growth iterations per period.
    spontaneous_share : float
        Share of each (zone, type) target placed as new patches.
    adaptive_inertia : bool
        Raise the competitiveness of (zone, type) groups that fall behind schedule.
    periods : tuple of int or None
        Period end years of the scenario (periods without targets still get a map).
    period_offset : int
        Index among the scenario's periods of the first period this call grows. A period's random draws depend
        on its index, so a call that grows a later period alone (``periods=(year,)``, ``period_offset`` = its
        index) draws exactly as a call given every period would, without maps and counts of the other periods.
    """

    potential: np.ndarray
    allowed: np.ndarray
    type_codes: tuple[int, ...]
    types: tuple[str, ...] = DEFAULT_URBAN_TYPES
    neighbourhood: int = 3
    neighbourhood_weights: np.ndarray = field(default_factory=lambda: np.eye(len(DEFAULT_URBAN_TYPES)))
    neighbourhood_strength: float = 1.0
    iterations: int = 10
    spontaneous_share: float = 0.05
    adaptive_inertia: bool = True
    periods: tuple[int, ...] | None = None
    type_lut: np.ndarray | None = None
    period_offset: int = 0

    def __post_init__(self) -> None:
        pot = self.potential
        require(isinstance(pot, np.ndarray) and pot.dtype == np.uint8 and pot.ndim == 3,
                "GrowthParams.potential must be a uint8 array (type, rows, cols); quantise with quantise_potential")
        T = pot.shape[0]
        require(T == len(self.types) == len(self.type_codes),
                f"GrowthParams: {T} potential layers but {len(self.types)} types and {len(self.type_codes)} codes")
        require(1 <= T <= 8, f"GrowthParams: between 1 and 8 urban types are supported, got {T}")
        require(self.allowed.shape == (T, 256) and self.allowed.dtype == np.bool_,
                f"GrowthParams.allowed must be bool ({T}, 256), got {self.allowed.dtype} {self.allowed.shape}")
        w = np.asarray(self.neighbourhood_weights, dtype=np.float64)
        require(w.shape == (T, T) and bool(np.all(w >= 0)) and bool(np.all(np.isfinite(w))),
                f"GrowthParams.neighbourhood_weights must be a non-negative ({T}, {T}) matrix")
        require(self.neighbourhood in (3, 5, 7), f"neighbourhood must be 3, 5 or 7, got {self.neighbourhood}")
        require(self.neighbourhood_strength >= 0 and math.isfinite(self.neighbourhood_strength),
                f"neighbourhood_strength must be >= 0, got {self.neighbourhood_strength}")
        require(1 <= self.iterations <= 1000, f"iterations must be within [1, 1000], got {self.iterations}")
        require(0.0 <= self.spontaneous_share <= 1.0,
                f"spontaneous_share must be within [0, 1], got {self.spontaneous_share}")
        require(isinstance(self.period_offset, int | np.integer) and 0 <= self.period_offset < 2**15,
                f"period_offset must be a whole number within [0, 32767], got {self.period_offset!r}")
        object.__setattr__(self, "neighbourhood_weights", w)
        if self.type_lut is None:
            lut = np.full(256, -1, dtype=np.int8)
            for k, c in enumerate(self.type_codes):
                lut[c] = k
        else:
            lut = np.asarray(self.type_lut, dtype=np.int8)
            require(lut.shape == (256,) and bool(np.all((lut >= -1) & (lut < T))),
                    f"GrowthParams.type_lut must be 256 type indices in [-1, {T - 1}]")
            bad = [c for k, c in enumerate(self.type_codes) if lut[c] != k]
            require(not bad, f"GrowthParams.type_lut must map each type's code to its type; codes {bad} do not")
        object.__setattr__(self, "type_lut", lut)
        if not pot.flags.c_contiguous:
            object.__setattr__(self, "potential", np.ascontiguousarray(pot))

    def type_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The kernels' look-ups by class code: type index and packed neighbour count increment.

        The type index is int8, -1 not urban; the increment uint64, ``1 << (8 * k)`` for a class of type ``k``.
        """
        code_type = np.asarray(self.type_lut, dtype=np.int8).copy()
        packed = np.zeros(256, dtype=np.uint64)
        urban = code_type >= 0
        packed[urban] = np.uint64(1) << (np.uint64(8) * code_type[urban].astype(np.uint64))
        return code_type, packed

    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(rows, cols)``."""
        return int(self.potential.shape[1]), int(self.potential.shape[2])

    def replace(self, **changes: Any) -> GrowthParams:
        """A copy with some fields changed (validated again)."""
        import dataclasses

        return dataclasses.replace(self, **changes)

    @classmethod
    def from_arrays(
        cls,
        suitability: np.ndarray,
        *,
        allowed: np.ndarray,
        type_codes: tuple[int, ...] | list[int],
        constraint: np.ndarray | None = None,
        **options: Any,
    ) -> GrowthParams:
        """Parameters from float arrays.

        Parameters
        ----------
        suitability : ndarray (T, rows, cols)
            Suitability per urban type in [0, 1].
        allowed : ndarray of bool (T, 256)
            Conversion matrix by class code.
        type_codes : sequence of int
            Class code of each type.
        constraint : ndarray (rows, cols), optional
            Constraint factor in [0, 1] (default 1 everywhere).
        **options
            Any other :class:`GrowthParams` field.
        """
        s = np.asarray(suitability, dtype=np.float32)
        require(s.ndim == 3, f"suitability must be (type, rows, cols), got shape {s.shape}")
        pot = np.empty(s.shape, dtype=np.uint8)
        for k in range(s.shape[0]):
            w = s[k] if constraint is None else s[k] * np.asarray(constraint, dtype=np.float32)
            require(bool(np.all(np.nan_to_num(w, nan=0.0) <= 1.0 + 1e-6)),
                    f"suitability x constraint of type {k} exceeds 1; scale it into [0, 1]")
            pot[k] = quantise_potential(w)
        return cls(potential=pot, allowed=np.asarray(allowed, dtype=bool), type_codes=tuple(int(c) for c in type_codes),
                   **options)

    @classmethod
    def from_scenario(
        cls, scenario: Any, landscape: xr.Dataset, *, suitability: xr.DataArray | np.ndarray | None = None
    ) -> GrowthParams:
        """Precompute everything static from a :class:`~landuse.core.config.Scenario` and a Landscape.

        Suitability (``suitability`` (type, y, x) in [0, 1] when given, else
        :func:`landuse.surfaces.suitability.compute_suitability` from the Landscape's land use), the constraint factor (:func:`landuse.surfaces.constraints.constraint_factor`)
        and the conversion matrix (:func:`landuse.surfaces.constraints.source_allowed_lut`) are
        combined and quantised; ``growth`` options come from ``scenario.config.growth``.
        """
        from landuse.core.store import store_empty
        from landuse.core.strips import row_strips
        from landuse.surfaces.constraints import constraint_factor, source_allowed_lut
        from landuse.surfaces.suitability import compute_suitability

        cfg = scenario.config.growth
        if suitability is None:
            suitability = compute_suitability(landscape, scenario)
        suit = np.asarray(getattr(suitability, "values", suitability), dtype=np.float32)
        c = constraint_factor(landscape, scenario)
        types = scenario.classes.urban_types
        require(suit.shape == (len(types), *c.shape),
                f"suitability must be (type, rows, cols) = {(len(types), *c.shape)}, got {suit.shape}")
        pot = store_empty((len(types), *c.shape), np.uint8)  # kept for the run: in the raster store, if any
        for k in range(len(types)):
            for a, b in row_strips(c.shape[0], c.shape[1]):  # one strip's product at a time (the same codes)
                pot[k, a:b] = quantise_potential(suit[k, a:b] * c[a:b])
        del suit
        w = np.array(scenario.neighbourhood_matrix(), dtype=np.float64).reshape(len(types), len(types))
        return cls(
            potential=pot,
            allowed=source_allowed_lut(scenario),
            type_codes=tuple(scenario.classes.urban_codes),
            types=types,
            type_lut=scenario.classes.type_lut(),
            neighbourhood=cfg.neighbourhood,
            neighbourhood_weights=w,
            neighbourhood_strength=cfg.neighbourhood_strength,
            iterations=cfg.iterations,
            spontaneous_share=cfg.spontaneous_share,
            adaptive_inertia=cfg.adaptive_inertia,
            periods=tuple(scenario.periods[1:]),
        )


@dataclass(eq=False)
class GrowthResult:
    """Outcome of :func:`~landuse.growth.simulate`.

    Attributes
    ----------
    landuse : dict of int to DataArray
        Land use (uint8) at the end of each period (key: end year) of the representative
        run: the run whose conversions have the highest mean ensemble probability
        (ties: the lowest run number), i.e. the most typical run.
    counts : DataArray
        ``(period, type, y, x)`` uint8 (uint16 beyond 255 runs): in how many runs the cell
        had converted to that type by the end of the period (and still held it).
    runs : int
    seed : int
    shortfall : DataFrame
        One row per target: ``period, zone, type, target, converted, shortfall`` (the
        representative run) and ``converted_min, converted_max`` over all runs.
    representative_run : int
    run_scores : ndarray
        Mean ensemble probability of each run's conversions.
    run_landuse : list of dict of int to ndarray, optional
        With ``simulate(..., keep_runs=True)``: every run's land use (uint8, rows x cols)
        at the end of each period, replayed from its conversions (for checks on every
        Monte Carlo run; one map per run and period, so only for small grids).
    """

    landuse: dict[int, xr.DataArray]
    counts: xr.DataArray
    runs: int
    seed: int
    shortfall: pd.DataFrame
    representative_run: int
    run_scores: np.ndarray
    run_landuse: list[dict[int, np.ndarray]] | None = None

    @cached_property
    def probability(self) -> dict[str, xr.DataArray]:
        """Per type, float32 ``(period, y, x)`` share of runs in [0, 1] (``counts / runs``).

        Built on first access (4 bytes per cell, type and period); use :attr:`counts` on
        very large grids.
        """
        out = {}
        runs = np.float32(self.runs)
        for k, t in enumerate(self.counts.coords["type"].values.tolist()):
            c = self.counts.isel(type=k)  # a view, with the scalar ``type`` coordinate
            # one float32 array per type, divided in place: float32(count) / float32(runs), as
            # ``c.astype(float32) / float32(runs)`` but without its two temporaries and xarray's copies
            p = np.empty(c.shape, dtype=np.float32)
            np.divide(np.asarray(c.values), runs, out=p, dtype=np.float32, casting="unsafe")
            da = c.copy(deep=False, data=p)  # coords and attrs kept, encoding dropped: as xarray's arithmetic
            da.encoding = {}
            da.name = f"probability_{t}"
            out[t] = da
        return out
