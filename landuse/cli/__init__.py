"""The ``landuse`` command: typer commands mapping options to the library's functions.

Contract: the only place that knows command-line flags; errors of the library (:class:`~landuse.core.errors.LanduseError`)
become one line per problem on stderr and a non-zero exit.
"""

from __future__ import annotations

from landuse.core.lazy import lazy_exports

_EXPORTS = {
    "app": "landuse.cli.app",
    "main": "landuse.cli.app",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
