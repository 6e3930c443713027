"""The calibrated growth parameters and the unit cube a calibration searches.

:data:`PARAMETERS` lists every parameter a calibration may fit (:class:`Parameter`: its default range, hard limits,
scale and what it sets in a scenario); :func:`resolve_ranges` checks the ranges a scenario asks for;
:class:`SearchSpace` maps the fitted parameters to the unit cube the search moves in and back. Continuous values
are evaluated at 4 significant digits, so the ``calibrated.yaml`` holds exactly the evaluated point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from landuse.core.errors import ConfigError

__all__ = ["PARAMETERS", "Parameter", "SearchSpace", "resolve_ranges"]

_SIG = 4  # significant digits of evaluated continuous values (so the YAML holds exactly them)
_EDGE = 0.02  # a calibrated value this close to an end of its range (unit scale) is reported as at the edge


@dataclass(frozen=True)
class Parameter:
    """One calibrated parameter and how it maps to the unit interval.

    Attributes
    ----------
    name : str
    low, high : float
        Default search range.
    limit : tuple of float
        Hard limits a user range must stay within.
    kind : {"float", "log", "int", "bool"}
        ``log``: log-uniform; ``int``: log-uniform then rounded; ``bool``: ``u >= 0.5``.
    meaning : str
        What it sets in a scenario.
    """

    name: str
    low: float
    high: float
    limit: tuple[float, float]
    kind: Literal["float", "log", "int", "bool"]
    meaning: str

    def decode(self, u: float, low: float, high: float) -> float | int | bool:
        """Value at ``u`` in [0, 1] within ``[low, high]`` (rounded to what is evaluated)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "bool":
            return bool(u >= 0.5)
        if self.kind in ("log", "int"):
            v = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            v = low + u * (high - low)
        if self.kind == "int":
            return int(min(max(round(v), math.ceil(low)), math.floor(high)))
        v = float(f"{v:.{_SIG}g}")
        return min(max(v, low), high)

    def snap_discrete(self, u: np.ndarray, low: float, high: float) -> np.ndarray:
        """Positions ``u`` moved onto the values a bool or int parameter can take (vectorised)."""
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        if self.kind == "bool":
            return np.where(u >= 0.5, 0.75, 0.25)
        if self.kind == "int":
            a, b = math.log(low), math.log(high)
            v = np.clip(np.round(np.exp(a + u * (b - a))), math.ceil(low), math.floor(high))
            return np.clip((np.log(v) - a) / (b - a), 0.0, 1.0)
        return u

    def encode(self, v: float | int | bool, low: float, high: float) -> float:
        """Position of value ``v`` in [0, 1] (clipped)."""
        if self.kind == "bool":
            return 0.75 if v else 0.25
        if self.kind in ("log", "int"):
            u = (math.log(max(float(v), 1e-300)) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            u = (float(v) - low) / (high - low) if high > low else 0.5
        return min(max(u, 0.0), 1.0)


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("neighbourhood_strength", 0.0, 10.0, (0.0, 50.0), "float",
                  "growth.neighbourhood_strength: exponent on the neighbourhood share (higher = more compact)"),
        Parameter("spontaneous_share", 0.0, 0.5, (0.0, 1.0), "float",
                  "growth.spontaneous_share: share of each target placed as new patches away from urban land"),
        Parameter("cross_weight", 0.0, 4.0, (0.0, 100.0), "float",
                  "factor on the off-diagonal growth.neighbourhood_weights (how much a type is drawn to "
                  "the other types' land; the diagonal is kept)"),
        Parameter("greenbelt_leakage", 0.0, 1.0, (0.0, 1.0), "float",
                  "1 - policy.greenbelt.strength: potential kept inside a soft greenbelt"),
        Parameter("iterations", 2.0, 40.0, (1.0, 1000.0), "int",
                  "growth.iterations: edge-growth iterations per period"),
        Parameter("adaptive_inertia", 0.0, 1.0, (0.0, 1.0), "bool",
                  "growth.adaptive_inertia: raise a (zone, type) that falls behind its schedule"),
        Parameter("distance_scale_m", 50.0, 30_000.0, (1.0, 1e7), "log",
                  "growth.suitability.distance_scale_m: distance at which a distance score halves"),
    )
}


def resolve_ranges(parameters: Mapping[str, Sequence[float]] | None, *, applicable: Mapping[str, tuple[float, float]],
                   skipped: Mapping[str, str]) -> dict[str, tuple[float, float]]:
    """The search range of each parameter to fit.

    Parameters
    ----------
    parameters : mapping, optional
        ``calibration.parameters``: parameter -> ``[low, high]`` (empty or None: its default range). None: every
        ``applicable`` parameter with its default range.
    applicable : mapping
        Parameter -> default range, for every parameter that matters in the set-up.
    skipped : mapping
        Parameter -> why it cannot be calibrated in the set-up.

    Raises
    ------
    ConfigError
        An unknown or skipped parameter, a range outside the parameter's limits, a log-scale range reaching 0, or no
        parameter at all.
    """
    if parameters is None:
        return dict(applicable)
    out: dict[str, tuple[float, float]] = {}
    for name, rng in parameters.items():
        where = f"calibration.parameters.{name}"
        if name not in PARAMETERS:
            raise ConfigError(f"{where}: unknown parameter; choose among {', '.join(PARAMETERS)}")
        if name in skipped:
            raise ConfigError(f"{where}: cannot be calibrated here: {skipped[name]}")
        p = PARAMETERS[name]
        if rng is None or len(rng) == 0:
            out[name] = (p.low, p.high)
            continue
        if len(rng) != 2:
            raise ConfigError(f"{where}: give [low, high], got {list(rng)}")
        lo, hi = float(rng[0]), float(rng[1])
        if not (p.limit[0] <= lo < hi <= p.limit[1]):
            raise ConfigError(f"{where}: need {p.limit[0]:g} <= low < high <= {p.limit[1]:g}, got [{lo:g}, {hi:g}]")
        if p.kind in ("log", "int") and lo <= 0:
            raise ConfigError(f"{where}: the range is searched on a log scale; low must be > 0, got {lo:g}")
        out[name] = (lo, hi)
    if not out:
        raise ConfigError("calibration.parameters: no parameter to calibrate")
    return out


class SearchSpace:
    """The fitted parameters with their ranges, as positions in the unit cube ``[0, 1] ** d``.

    Parameters
    ----------
    ranges : mapping of str to (float, float)
        Parameter -> search range (:func:`resolve_ranges`), in the order of the cube's axes.
    """

    def __init__(self, ranges: Mapping[str, tuple[float, float]]) -> None:
        self.ranges = dict(ranges)
        self.names = list(self.ranges)
        self.specs = [PARAMETERS[n] for n in self.names]
        self.d = len(self.names)

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        """The parameter values at position ``u`` (:meth:`Parameter.decode`)."""
        return {n: p.decode(float(x), *self.ranges[n]) for n, p, x in zip(self.names, self.specs, u, strict=True)}

    def encode(self, values: Mapping[str, Any]) -> np.ndarray:
        """The position of ``values`` (:meth:`Parameter.encode`)."""
        return np.array([p.encode(values[n], *self.ranges[n]) for n, p in zip(self.names, self.specs, strict=True)])

    def snap(self, U: np.ndarray) -> np.ndarray:
        """Positions moved onto the values that are evaluated (decoded, then encoded), one row each."""
        return np.array([self.encode(self.decode(u)) for u in np.atleast_2d(U)])

    def snap_discrete(self, U: np.ndarray) -> np.ndarray:
        """Positions with the bool and int coordinates moved onto their values (vectorised), one row each."""
        U = np.array(U, dtype=np.float64)
        for k, n in enumerate(self.names):
            U[:, k] = self.specs[k].snap_discrete(U[:, k], *self.ranges[n])
        return U

    def native(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` of the fitted parameters as Python bool, int or float by kind."""
        out: dict[str, Any] = {}
        for n in self.names:
            v, kind = values[n], PARAMETERS[n].kind
            out[n] = bool(v) if kind == "bool" else int(v) if kind == "int" else float(v)
        return out

    def at_edge(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Parameter -> ``"low"`` or ``"high"`` for a (not bool) value within 2 % of the unit scale of an end."""
        out = {}
        for n, p, x in zip(self.names, self.specs, self.encode(values), strict=True):
            if p.kind != "bool" and (x <= _EDGE or x >= 1.0 - _EDGE):
                out[n] = "low" if x <= _EDGE else "high"
        return out
