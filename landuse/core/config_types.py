"""The building blocks of the scenario schema: the strict base of every section and the checked value types.

:class:`Strict` rejects unknown keys; :data:`Fraction`, :data:`NonNegative` and :data:`Positive` check a number's
range with a message a planner reads (``must be within [0, 1], got 1.5``); :data:`UrbanType` is the pattern of an
urban type's name. The sections built from them are in :mod:`landuse.core.config_plan` and
:mod:`landuse.core.config_stages`, the whole scenario in :mod:`landuse.core.config`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

UrbanType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
"""An urban type name; checked against the scenario's class scheme when the :class:`Scenario` is built."""

MAX_URBAN_TYPES = 8
"""The growth engine counts neighbours of at most this many urban types."""


def _num(v: float) -> str:
    """A bound or value as a planner reads it: whole numbers in full (10000, 9223372036854775807), others as %g."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _within(lo: float | None, hi: float | None) -> Callable[[float], float]:
    """A pydantic after-validator: the value unchanged when within ``[lo, hi]`` (None: no bound), else ValueError."""

    def check(v: float) -> float:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if lo is not None and hi is not None:
                raise ValueError(f"must be within [{_num(lo)}, {_num(hi)}], got {_num(v)}")
            if lo is not None:
                raise ValueError(f"must be at least {_num(lo)}, got {_num(v)}")
            raise ValueError(f"must be at most {_num(hi)}, got {_num(v)}")
        return v

    return check


Fraction = Annotated[float, AfterValidator(_within(0.0, 1.0))]
NonNegative = Annotated[float, AfterValidator(_within(0.0, None))]
Positive = Annotated[float, AfterValidator(_within(1e-12, None))]


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
