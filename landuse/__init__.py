"""landuse: land-use allocation and growth-boundary modelling for city clusters."""

from __future__ import annotations

import os

# numba's OpenMP threads spin while waiting by default; on a machine shared with other work
# that makes parallel kernels up to 50x slower. Passive waiting costs nothing measurable when
# the cores are free. Set before any numba parallel region runs; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # the version is looked up on first use: importlib.metadata costs ~50 ms at start-up
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("landuse")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0+unknown"
    raise AttributeError(f"module 'landuse' has no attribute {name!r}")
