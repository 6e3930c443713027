"""Where a run keeps its large rasters: in memory, or in memory-mapped scratch files on disk.

A run on a megaregion holds more whole rasters than a machine has memory for: the Landscape's layers (26 bytes
per cell for the sample's 13), the zone raster, the cached driver scores, every period's map and run counts. With
a **disk store** active, those rasters are allocated in scratch files mapped into memory: the arrays are ordinary
``numpy.ndarray`` objects (every stage, numba kernel and writer sees the same values, so results are
byte-identical to the in-memory run), but their pages are the kernel's page cache, written back to the scratch
file and dropped when memory runs short, instead of anonymous memory that cannot leave RAM on a machine without
swap. Short-lived temporaries of a stage stay in anonymous memory.

Each scratch file is unlinked as soon as it is mapped, so nothing is left on disk when the run ends, is killed or
fails: the space is freed when the last array viewing the map is garbage-collected.

    with raster_store("disk", scratch="/scratch"):
        a = store_empty((rows, cols), np.float32)   # file-backed
    b = store_empty((rows, cols), np.float32)       # no store active: numpy.empty

``compute.rasters`` chooses the store of ``landuse run``: ``memory``, ``disk``, or ``auto`` (disk from
:data:`AUTO_DISK_CELLS` cells, the default); ``compute.scratch`` is the folder of its files (default: the
system's temporary folder). See docs/scaling.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import mmap
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from landuse.core.errors import LanduseError

AUTO_DISK_CELLS = 100_000_000
"""``compute.rasters: auto`` keeps rasters on disk from this many cells (10 000 x 10 000) upward."""

MIN_MAPPED_BYTES = 1 << 20
"""Arrays smaller than this are plain numpy arrays even with a disk store (a map costs a file and a page table)."""


class RasterStore:
    """Allocates arrays in memory-mapped, unlinked scratch files in ``directory``."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory is not None else Path(tempfile.gettempdir())
        if not self.directory.is_dir():
            raise LanduseError(
                f"compute.scratch: {self.directory} is not a folder; create it, or give a folder on a disk with room "
                "for the run's rasters (the scratch_mapped_bytes of an earlier run's manifest.json)"
            )
        self.bytes = 0  # allocated so far (a figure for the manifest and tests)

    def empty(self, shape: tuple[int, ...] | int, dtype: np.dtype | type | str) -> np.ndarray:
        """An uninitialised (in practice zero-filled) array of ``shape`` and ``dtype`` backed by a scratch file."""
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < MIN_MAPPED_BYTES:
            return np.empty(shape, dtype=dtype)
        try:
            fd, name = tempfile.mkstemp(prefix="landuse-raster-", suffix=".bin", dir=self.directory)
        except OSError as exc:
            raise LanduseError(f"compute.scratch: cannot create a scratch file in {self.directory}: {exc}") from None
        try:
            os.unlink(name)  # the map keeps the file; nothing is left behind whatever happens to the run
            try:
                # the blocks are reserved now: a full disk is this clear error, not a SIGBUS when a page is written
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, nbytes)
                else:
                    os.ftruncate(fd, nbytes)
                buf = mmap.mmap(fd, nbytes, access=mmap.ACCESS_WRITE)
            except OSError as exc:
                raise LanduseError(
                    f"compute.scratch: cannot map {nbytes / 2**20:,.0f} MiB in {self.directory}: {exc}; free disk "
                    "space there or give another folder (compute.scratch)"
                ) from None
        finally:
            os.close(fd)
        self.bytes += nbytes
        return np.ndarray(shape, dtype=dtype, buffer=buf)  # the array holds the map: unmapped when it is freed


_ACTIVE: contextvars.ContextVar[RasterStore | None] = contextvars.ContextVar("landuse_raster_store", default=None)


def active_store() -> RasterStore | None:
    """The disk store of the current run, or None when rasters are kept in memory."""
    return _ACTIVE.get()


def use_disk(mode: str, cells: int) -> bool:
    """Whether ``compute.rasters`` (``memory``, ``disk``, ``auto``) keeps a grid of ``cells`` cells on disk."""
    if mode not in ("memory", "disk", "auto"):
        raise LanduseError(f"compute.rasters: {mode!r} is not one of memory, disk, auto")
    return mode == "disk" or (mode == "auto" and cells >= AUTO_DISK_CELLS)


@contextlib.contextmanager
def raster_store(mode: str = "disk", scratch: str | os.PathLike | None = None, *,
                 cells: int = 0) -> Iterator[RasterStore | None]:
    """Make a disk store active for the block (``mode`` as :func:`use_disk`), or none when rasters stay in memory."""
    store = RasterStore(scratch) if use_disk(mode, cells) else None
    token = _ACTIVE.set(store)
    try:
        yield store
    finally:
        _ACTIVE.reset(token)


def store_empty(shape: tuple[int, ...] | int, dtype: np.dtype | type | str) -> np.ndarray:
    """``numpy.empty`` in the active store (a scratch file on disk), or in memory when none is active."""
    store = _ACTIVE.get()
    return np.empty(shape, dtype=dtype) if store is None else store.empty(shape, dtype)


def store_zeros(shape: tuple[int, ...] | int, dtype: np.dtype | type | str) -> np.ndarray:
    """``numpy.zeros`` in the active store (a new scratch file is all zeros), or in memory."""
    store = _ACTIVE.get()
    if store is None:
        return np.zeros(shape, dtype=dtype)
    out = store.empty(shape, dtype)
    if not isinstance(out.base, mmap.mmap):  # a small array: plain numpy, not zero-filled
        out.fill(0)
    return out


def store_full(shape: tuple[int, ...] | int, value, dtype: np.dtype | type | str) -> np.ndarray:
    """``numpy.full`` in the active store, or in memory."""
    store = _ACTIVE.get()
    if store is None:
        return np.full(shape, value, dtype=dtype)
    out = store.empty(shape, dtype)
    out.fill(value)
    return out


def store_copy(a: np.ndarray, dtype: np.dtype | type | str | None = None) -> np.ndarray:
    """A C-ordered copy of ``a`` (cast to ``dtype``) in the active store, or in memory when none is active."""
    store = _ACTIVE.get()
    a = np.asarray(a)
    if store is None:
        return np.array(a, dtype=dtype, order="C")
    out = store.empty(a.shape, a.dtype if dtype is None else dtype)
    np.copyto(out, a, casting="unsafe")
    return out


def store_by_strips(shape: tuple[int, int], dtype: np.dtype | type | str,
                    fill: Callable[[int, int], np.ndarray | bool | float]) -> np.ndarray:
    """A raster of the active store filled strip by strip.

    ``out[a:b] = fill(a, b)`` for row strips ``a:b`` of about :data:`landuse.core.strips.STRIP_CELLS` cells (in
    memory when no disk store is active).

    A whole-raster result of cell-by-cell operations without whole-raster temporaries: ``fill`` computes the rows
    ``a:b`` only, so the result is the whole-raster expression's, cell for cell, whatever the strip height.
    """
    from landuse.core.strips import row_strips

    out = store_empty(shape, dtype)
    for a, b in row_strips(*shape):
        out[a:b] = fill(a, b)
    return out


def in_store(a: np.ndarray) -> bool:
    """Whether ``a`` (or the array it views) lives in a scratch file of a disk store."""
    while isinstance(a, np.ndarray):
        if isinstance(a.base, mmap.mmap):
            return True
        a = a.base
    return False


__all__ = ["AUTO_DISK_CELLS", "RasterStore", "active_store", "in_store", "raster_store", "store_by_strips",
           "store_copy", "store_empty", "store_full", "store_zeros", "use_disk"]


def store_label(mask: np.ndarray, structure: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``scipy.ndimage.label`` into an int32 raster of the active store.

    The same labels as scipy's own (an int64 raster in memory, 8 bytes per cell) in 4 bytes per cell, file-backed
    when a disk store is active.
    """
    from scipy import ndimage

    labels = store_empty(mask.shape, np.int32)
    n = ndimage.label(mask, structure=structure, output=labels)
    return labels, int(n)


def label_sizes(labels: np.ndarray, n: int, *, step: int = 1 << 20) -> np.ndarray:
    """Cells of each label ``0 .. n``.

    ``numpy.bincount`` of ``labels`` in chunks: a bincount of an int32 raster casts it whole to int64 first.
    """
    flat = labels.reshape(-1)
    out = np.zeros(n + 1, dtype=np.int64)
    for a in range(0, flat.size, step):
        out += np.bincount(flat[a:a + step], minlength=n + 1)
    return out
