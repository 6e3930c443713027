"""landuse: land-use allocation and growth-boundary modelling for city clusters."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# numba's OpenMP threads spin while waiting by default; on a machine shared with other work
# that makes parallel kernels up to 50x slower. Passive waiting costs nothing measurable when
# the cores are free. Set before any numba parallel region runs; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("landuse")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
