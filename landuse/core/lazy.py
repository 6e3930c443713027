"""Packages whose public names load on first use.

Every stage package of landuse states its contract in its ``__init__`` and lists its public names there, each
with the module that defines it. Importing the package imports none of those modules: a name is loaded on first
use (module ``__getattr__``), so ``import landuse.io`` costs nothing until a raster function is called, and a
command that needs one stage never pays for the imports (rasterio, xarray, numba, PuLP) of the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of a package whose public names load on first use.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> the module (absolute name) that defines it.

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)`` to assign at the package's top level.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
