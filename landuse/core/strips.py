"""Strips of rows: how every stage walks a raster too large to hold its temporaries whole.

A stage that needs whole-raster temporaries (masks, distances, counts) computes them strip by strip instead, over
row ranges of about :data:`STRIP_CELLS` cells, so its peak memory is that of one strip whatever the region's size;
results do not depend on the strip height (the tests vary it).
"""

from __future__ import annotations

STRIP_CELLS = 1 << 22
"""Cells per strip (about 4 M: 16 MiB of float32); also the window of a windowed read."""


def row_strips(height: int, width: int, block: int = 1) -> list[tuple[int, int]]:
    """Row ranges ``(r0, r1)`` of about :data:`STRIP_CELLS` cells each, whole multiples of ``block`` rows.

    Parameters
    ----------
    height, width
        The raster's rows and columns.
    block
        Strips are whole multiples of this many rows (a GeoTIFF's block height, for windowed reads).

    Returns
    -------
    list of tuple of int
        Consecutive half-open row ranges covering ``0 .. height``.
    """
    rows = max(block, (STRIP_CELLS // max(width, 1)) // block * block)
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]
