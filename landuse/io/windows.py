"""GeoTIFFs read and written window by window: rasters larger than memory (the tiled growth path).

:func:`raster_profile` reads a GeoTIFF's grid without its cells; :func:`read_window` reads one window of it;
:class:`WindowedGeoTIFF` writes a tiled, deflate-compressed GeoTIFF window by window into a hidden ``.part`` file
beside its final path and renames it on :meth:`~WindowedGeoTIFF.commit` (an interrupted writer leaves no partial
output); :func:`gdal_block_cache` bounds GDAL's block cache while such files are written (blocks written once are
never read back).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

Window = tuple[int, int, int, int]  # rows r0:r1, columns c0:c1


def raster_profile(path: str | os.PathLike) -> dict[str, Any]:
    """Height, width, band count, CRS, transform, nodata and band 1's colour map (None without one) of a raster."""
    import rasterio

    with rasterio.open(path) as src:
        try:
            cmap = src.colormap(1)
        except ValueError:
            cmap = None
        return {"height": src.height, "width": src.width, "count": src.count, "crs": src.crs,
                "transform": src.transform, "nodata": src.nodata, "colormap": cmap}


def read_window(path: str | os.PathLike, window: Window, *, band: int | None = 1) -> tuple[np.ndarray, Any]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of one band (``band=None``: every band, band first) and the nodata."""
    import rasterio
    from rasterio.windows import Window as RioWindow

    r0, r1, c0, c1 = window
    with rasterio.open(path) as src:
        win = RioWindow(c0, r0, c1 - c0, r1 - r0)
        data = src.read(window=win) if band is None else src.read(band, window=win)
        return data, src.nodata


@contextlib.contextmanager
def gdal_block_cache(megabytes: int) -> Iterator[None]:
    """GDAL's block cache bounded to ``megabytes`` (by default it grows to 5 % of the machine's memory)."""
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=megabytes):
        yield


class WindowedGeoTIFF:
    """A single-band tiled GeoTIFF written window by window, atomically.

    Parameters
    ----------
    path
        The final path; the file is written as ``.<name>.part`` beside it until :meth:`commit`.
    height, width, crs, transform
        The grid.
    dtype, nodata
        Cell type and nodata value (None: no nodata).
    tags
        Dataset tags set when the file is opened.
    colormap
        Band 1's colour table, or None.
    """

    def __init__(self, path: str | os.PathLike, *, height: int, width: int, crs: Any, transform: Any, dtype: Any,
                 nodata: Any, tags: dict[str, Any], colormap: dict | None = None) -> None:
        import rasterio

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self._ds = rasterio.open(
            self.tmp, "w", driver="GTiff", width=width, height=height, count=1, crs=crs, transform=transform,
            tiled=True, blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER",
            NUM_THREADS="ALL_CPUS",  # blocks compressed in GDAL's threads
            dtype=np.dtype(dtype).name, nodata=nodata,
        )  # fmt: skip
        if colormap:
            self._ds.write_colormap(1, colormap)
        self._ds.update_tags(**tags)

    def write(self, arr: np.ndarray, window: Window) -> None:
        """Write ``arr`` into rows ``r0:r1`` and columns ``c0:c1``."""
        from rasterio.windows import Window as RioWindow

        r0, r1, c0, c1 = window
        self._ds.write(arr, 1, window=RioWindow(c0, r0, c1 - c0, r1 - r0))

    def commit(self, **tags: Any) -> Path:
        """Add ``tags``, close the file and rename it onto its final path."""
        self._ds.update_tags(**tags)
        self._ds.close()
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Close and remove the partial file (the final path is left as it was)."""
        self._ds.close()
        self.tmp.unlink(missing_ok=True)
