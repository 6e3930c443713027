"""The tile grid and the tile store of tiled growth.

:class:`TileGrid` cuts a raster into ``chunks x chunks`` tiles with a halo of the neighbourhood radius; the tile
store keeps every input layer as one ``.npy`` file per tile, staged once from in-memory arrays or from GeoTIFFs read
window by window, and read back through memory maps window by window.
"""


from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from landuse.core.errors import GrowthInputError
from landuse.io.windows import read_window

_GDAL_CACHE_MB = 64  # GDAL block cache of the output writer (MB)

__all__ = ["TileGrid", "check_chunks"]


def check_chunks(chunks: Any, *, neighbourhood: int = 7) -> int:
    """Validate a tile edge in cells: a whole number of at least ``neighbourhood`` cells.

    >>> check_chunks(16, neighbourhood=3)
    16
    """
    ok = isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool)
    if not ok or int(chunks) < neighbourhood:
        raise GrowthInputError(
            f"chunks must be a whole number of cells >= {neighbourhood} (the neighbourhood window edge), got "
            f"{chunks!r}; use e.g. `chunks` 2048 (tile edge in cells) or compute.chunks: 2048"
        )
    return int(chunks)


@dataclass(frozen=True)
class TileGrid:
    """Square tiles of edge ``chunk`` over a ``rows x cols`` raster, with a halo of ``radius`` cells."""

    rows: int
    cols: int
    chunk: int
    radius: int

    @property
    def ny(self) -> int:
        """Number of tile rows."""
        return -(-self.rows // self.chunk)

    @property
    def nx(self) -> int:
        """Number of tile columns."""
        return -(-self.cols // self.chunk)

    def tiles(self) -> list[tuple[int, int]]:
        """Tile indices ``(i, j)`` in row-major order."""
        return [(i, j) for i in range(self.ny) for j in range(self.nx)]

    def interior(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(r0, r1, c0, c1)`` of tile ``(i, j)``."""
        r0, c0 = i * self.chunk, j * self.chunk
        return r0, min(self.rows, r0 + self.chunk), c0, min(self.cols, c0 + self.chunk)

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """The tile with its halo, clipped at the raster's edges."""
        r0, r1, c0, c1 = self.interior(i, j)
        rd = self.radius
        return max(0, r0 - rd), min(self.rows, r1 + rd), max(0, c0 - rd), min(self.cols, c1 + rd)

    def tile_of(self, g: np.ndarray) -> np.ndarray:
        """Flat tile number (``i * nx + j``) of global flat cell indices."""
        g = np.asarray(g, dtype=np.int64)
        return (g // self.cols // self.chunk) * self.nx + (g % self.cols) // self.chunk

    def neighbours(self, i: int, j: int) -> list[int]:
        """Flat numbers of the tiles that a halo window of tile ``(i, j)`` may touch (itself included)."""
        return [a * self.nx + b for a in range(max(0, i - 1), min(self.ny, i + 2))
                for b in range(max(0, j - 1), min(self.nx, j + 2))]


# --------------------------------------------------------------------------- tile store


@dataclass(frozen=True)
class _Store:
    """A folder of per-tile ``.npy`` files, each holding its tile's window (the tile with its halo).

    A tile state maps its window (copy-on-write); the finishing pass reads the interior
    through a memory map.
    """

    root: str
    grid: TileGrid

    def path(self, name: str, i: int, j: int) -> str:
        return os.path.join(self.root, f"{name}_{i}_{j}.npy")

    def write(self, name: str, i: int, j: int, arr: np.ndarray) -> None:
        final = self.path(name, i, j)
        tmp = f"{final}.{os.getpid()}.part"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr))
        os.replace(tmp, final)

    def window(self, name: str, i: int, j: int) -> np.ndarray:
        """Layer ``name`` on tile ``(i, j)``'s window (:meth:`TileGrid.window`; leading axes kept).

        A private copy-on-write map of the file: its pages come from the page cache as they
        are read (a few faults per 64 KiB, no copy), and only the pages written to are copied
        (the land use at converted cells); the file itself never changes. Reading the window
        into new memory instead cost 50 ms per 2048^2 window in a Dask worker (a page fault
        per 4 KiB of fresh memory), more than building its frontier. Where the file system
        cannot map files, the window is read into memory instead (same values).
        """
        return self._load(name, i, j, "c")

    def _load(self, name: str, i: int, j: int, mode: str) -> np.ndarray:
        path = self.path(name, i, j)
        try:
            return np.load(path, mmap_mode=mode)
        except OSError:  # e.g. a file system without mmap support
            return np.load(path)

    def interior(self, name: str, i: int, j: int) -> np.ndarray:
        """Layer ``name`` on tile ``(i, j)`` without its halo, a new array."""
        a = self._load(name, i, j, "r")
        wr0, _, wc0, _ = self.grid.window(i, j)
        r0, r1, c0, c1 = self.grid.interior(i, j)
        return np.array(a[..., r0 - wr0:r1 - wr0, c0 - wc0:c1 - wc0])


def _zero_halo(grid: TileGrid, i: int, j: int, z: np.ndarray) -> np.ndarray:
    """``z`` (tile ``(i, j)``'s window) with its halo set to zone 0: context for neighbour counts, never candidates."""
    wr0, _, wc0, _ = grid.window(i, j)
    r0, r1, c0, c1 = grid.interior(i, j)
    z[:r0 - wr0, :] = 0
    z[r1 - wr0:, :] = 0
    z[:, :c0 - wc0] = 0
    z[:, c1 - wc0:] = 0
    return z


def _zone_dtype(Z: int) -> type:
    """The smallest dtype of the staged zone ids (fewer bytes to write, read and keep in tile states)."""
    return np.uint8 if Z < 2**8 else np.uint16 if Z < 2**16 else np.int32


def _stage_arrays(store: _Store, lu: np.ndarray, zones: np.ndarray, pot: np.ndarray, i: int, j: int, *,
                  zone_dtype: type = np.int32) -> None:
    wr0, wr1, wc0, wc1 = store.grid.window(i, j)
    store.write("lu0", i, j, lu[wr0:wr1, wc0:wc1])
    store.write("zones", i, j, _zero_halo(store.grid, i, j, zones[wr0:wr1, wc0:wc1].astype(zone_dtype)))
    store.write("pot", i, j, pot[:, wr0:wr1, wc0:wc1])


def _stage_geotiffs(store: _Store, paths: tuple[str, str, str], i: int, j: int, zmax_hint: int) -> np.ndarray:
    """Read tile ``(i, j)``'s window of each GeoTIFF (:func:`landuse.io.windows.read_window`) into the store.

    Returns the bincount of the tile's zones (its interior only).
    """
    grid = store.grid
    wr0, wr1, wc0, wc1 = win = grid.window(i, j)
    r0, r1, c0, c1 = grid.interior(i, j)
    store.write("lu0", i, j, read_window(paths[0], win)[0].astype(np.uint8, copy=False))
    z, nd = read_window(paths[1], win)
    if z.dtype.kind not in "iu":
        raise GrowthInputError(f"{paths[1]}: zone raster must hold integer zone ids, got {z.dtype}")
    z = z.astype(np.int64)
    if nd is not None:
        z[z == int(nd)] = 0
    if z.size and int(z.min()) < 0:
        raise GrowthInputError(f"{paths[1]}: negative zone ids in rows {wr0}..{wr1}, cols {wc0}..{wc1}; 0 marks "
                               "cells outside every zone")
    counts = np.bincount(z[r0 - wr0:r1 - wr0, c0 - wc0:c1 - wc0].reshape(-1), minlength=zmax_hint + 1)
    # each tile's zone ids in the smallest dtype that holds them (its state keeps that dtype)
    store.write("zones", i, j, _zero_halo(grid, i, j, z.astype(_zone_dtype(int(z.max(initial=0))))))
    store.write("pot", i, j, read_window(paths[2], win, band=None)[0].astype(np.uint8, copy=False))
    return counts


