"""Exceptions raised by landuse.

Every error the program raises on purpose derives from :class:`LanduseError`. Messages
state what is wrong, where (file, key, cell) and how to fix it; the command-line
interface prints them as one line and exits with code 2.
"""

from __future__ import annotations

import os


class LanduseError(Exception):
    """Root of every error landuse raises on purpose."""


class ArgumentError(LanduseError, ValueError):
    """A library function was called with a value it cannot use (a shape, a range, an unknown name).

    A :class:`ValueError` too, so code written against the standard library's convention still catches it.
    """


class GrowthInputError(LanduseError):
    """Inputs of the growth engine are inconsistent (targets table, arrays, options)."""


class ConfigError(LanduseError):
    """A scenario configuration is invalid (unknown key, wrong value, missing file).

    ``problems`` holds one message per problem found, so callers can list them all.
    """

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = list(problems) if problems else [message]
        super().__init__(message)


class GridMismatchError(LanduseError):
    """A raster layer does not share the reference layer's grid (CRS, transform, shape)."""


class UnknownClassError(LanduseError):
    """A land-use raster holds class codes that the class scheme does not declare."""


class InputOverwriteError(LanduseError):
    """An output would overwrite an input of the current scenario."""


class InfeasibleAllocationError(LanduseError):
    """The allocation LP has no solution under the given policies.

    ``violations`` maps each violated constraint to the amount by which it had to be
    relaxed (in planner units: hectares or percentage points). ``advice`` maps config key
    paths (``policy.open_space_quota.share``, ``policy.farmland_loss_cap.hectares``,
    ``demand.residential.2030`` ...) to values that, set together, make the period
    feasible.
    """

    def __init__(self, message: str, *, violations: dict[str, float] | None = None,
                 advice: dict[str, float] | None = None) -> None:
        self.violations = dict(violations) if violations else {}
        self.advice = dict(advice) if advice else {}
        super().__init__(message)


class SolverError(LanduseError):
    """An LP solver is unavailable or failed for a reason other than infeasibility."""


class OutputExistsError(LanduseError):
    """An output folder already holds the results of another scenario."""


class OutputFolderError(LanduseError):
    """An output folder cannot be created (no permission, read-only or missing file system)."""


def make_output_dir(path: os.PathLike[str] | str, *, option: str = "`out`") -> None:
    """Create the output folder ``path`` (and its parents) or raise :class:`OutputFolderError` saying why."""
    from pathlib import Path

    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(
            f"cannot create the output folder {path}: {exc.strerror or exc}; choose a writable {option}"
        ) from None


class SleuthFormatError(LanduseError):
    """A SLEUTH scenario file or input image is malformed."""
