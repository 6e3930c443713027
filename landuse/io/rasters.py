"""Raster input and output.

* :func:`read_landscape` reads GeoTIFFs into a :mod:`landuse.core.landscape` Dataset,
  checking that every layer shares the reference layer's grid.
* :func:`write_geotiff` writes a Cloud-Optimized GeoTIFF atomically, with a colour
  table and class names for categorical layers.
* :func:`atomic_path`, :func:`write_text`, :func:`write_bytes` (from :mod:`landuse.io.folders`)
  write one file under a temporary name and rename it; whole output folders are written
  through :class:`landuse.io.folders.OutputFolder`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio._err
import rasterio.windows
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from landuse.core.classes import ClassScheme, default_scheme
from landuse.core.errors import ArgumentError, GridMismatchError, LanduseError, UnknownClassError
from landuse.core.landscape import KIND_DTYPES, crs_of, layer_kind, new_landscape, transform_of
from landuse.core.strips import row_strips
from landuse.io.folders import (  # noqa: F401  (re-exported: the writers of landuse.io.rasters)
    atomic_path,
    check_not_input,
    protected_inputs,
    write_bytes,
    write_text,
)


def _resolve(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class GridHeader:
    """What a raster's header says about its grid."""

    path: Path
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | None

    @property
    def cell_size(self) -> tuple[float, float]:
        """Cell width and height in CRS units."""
        return abs(self.transform.a), abs(self.transform.e)


def _read_failure(p: Path, exc: Exception) -> LanduseError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "See previous exception" in detail and exc.__context__ is not None:
        detail = str(exc.__context__).strip().splitlines()[0]
    return LanduseError(
        f"cannot read raster {p}: the file is truncated or corrupt ({detail}); "
        "copy or export it again (check it with `gdalinfo -checksum`)"
    )


def read_header(path: str | os.PathLike) -> GridHeader:
    """Read a raster's header and check that it is one readable band (only its last block is read).

    Raises :class:`LanduseError` for a missing file, a folder, a file that is no raster, a
    raster of several bands, or a truncated file (its last block cannot be read).
    """
    p = Path(path)
    if not p.exists():
        raise LanduseError(f"raster file not found: {p.resolve()}")
    if p.is_dir():
        raise LanduseError(f"{p.resolve()} is a folder, not a raster file; give the GeoTIFF's path")
    if p.stat().st_size == 0:
        raise LanduseError(f"raster file {p.resolve()} is empty (0 bytes); copy or export it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(p) as src:
                if src.count != 1:
                    raise LanduseError(
                        f"raster {p} has {src.count} bands; a layer is one band: extract the band you mean, "
                        f"e.g. `gdal_translate -b 1 {p} band1.tif`"
                    )
                rows, cols = src.block_shapes[0]
                last = rasterio.windows.Window(
                    ((src.width - 1) // cols) * cols, ((src.height - 1) // rows) * rows,
                    min(cols, src.width - ((src.width - 1) // cols) * cols),
                    min(rows, src.height - ((src.height - 1) // rows) * rows),
                )
                try:
                    src.read(1, window=last)
                except (rasterio.errors.RasterioError, rasterio._err.CPLE_BaseError) as exc:
                    raise _read_failure(p, exc) from None
                return GridHeader(p, src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata)
    except rasterio.errors.RasterioIOError as exc:
        raise LanduseError(f"cannot read raster {p.resolve()}: {_first_line(exc).rstrip('.')}; is it a GeoTIFF?") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_band(path: str | os.PathLike) -> tuple[np.ma.MaskedArray, float | None]:
    """Band 1 of a raster with nodata masked, and the nodata tag; :class:`LanduseError` if it cannot be read whole."""
    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(p) as src:
                return src.read(1, masked=True), src.nodata
    except (rasterio.errors.RasterioError, rasterio._err.CPLE_BaseError) as exc:
        raise _read_failure(p, exc) from None


def _crs_label(crs: CRS | None) -> str:
    if crs is None:
        return "no CRS"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def check_reference_crs(ref: GridHeader, *, name: str = "landuse") -> None:
    """Raise :class:`GridMismatchError` if the reference layer has no CRS or a geographic one."""
    if ref.crs is None:
        raise GridMismatchError(
            f"reference layer {name!r} ({ref.path}) has no CRS; every layer is checked against it: assign its "
            f"projected CRS, e.g. `gdal_edit.py -a_srs EPSG:32651 {ref.path}` (the CRS of your other layers)"
        )
    if ref.crs.is_geographic:
        raise GridMismatchError(
            f"reference layer {name!r} ({ref.path}) is in geographic coordinates ({_crs_label(ref.crs)}); "
            "landuse works in metres: reproject every layer to a projected CRS (e.g. UTM) with gdalwarp"
        )


def check_same_grid(ref: GridHeader, other: GridHeader, *, ref_name: str, name: str) -> None:
    """Raise :class:`GridMismatchError` naming both files if the grids differ."""
    where = f"layer {name!r} ({other.path}) against {ref_name!r} ({ref.path})"
    if other.crs is None and ref.crs is not None:
        raise GridMismatchError(
            f"{where}: it has no CRS; if it is on the reference grid, assign the reference's CRS with "
            f"`gdal_edit.py -a_srs {_crs_label(ref.crs)} {other.path}`, else reproject it with gdalwarp"
        )
    if ref.crs != other.crs:
        raise GridMismatchError(
            f"CRS {_crs_label(other.crs)} of {where} differs from {_crs_label(ref.crs)}; "
            f"reproject it onto the reference grid, e.g. `gdalwarp -t_srs {_crs_label(ref.crs)} "
            f"-tr {ref.cell_size[0]:g} {ref.cell_size[1]:g} -tap {other.path} out.tif`"
        )
    tol = 1e-6 * max(ref.cell_size)
    if not np.allclose(ref.cell_size, other.cell_size, rtol=0, atol=tol):
        raise GridMismatchError(
            f"cell size {other.cell_size[0]:g} x {other.cell_size[1]:g} of {where} differs from "
            f"{ref.cell_size[0]:g} x {ref.cell_size[1]:g}; resample it to the reference grid, e.g. "
            f"`gdalwarp -tr {ref.cell_size[0]:g} {ref.cell_size[1]:g} -te <reference extent> {other.path} out.tif`"
        )
    if abs(ref.transform.c - other.transform.c) > tol or abs(ref.transform.f - other.transform.f) > tol:
        raise GridMismatchError(
            f"origin ({other.transform.c:.10g}, {other.transform.f:.10g}) of {where} differs from "
            f"({ref.transform.c:.10g}, {ref.transform.f:.10g}); align it to the reference grid, e.g. "
            f"`gdalwarp -te <reference extent> -tr {ref.cell_size[0]:g} {ref.cell_size[1]:g} {other.path} out.tif`"
        )
    if abs(other.transform.b) > tol or abs(other.transform.d) > tol:
        raise GridMismatchError(f"{where}: rotated grids are not supported; warp it north-up with gdalwarp")
    if (ref.height, ref.width) != (other.height, other.width):
        raise GridMismatchError(
            f"shape {other.height} rows x {other.width} columns of {where} differs from "
            f"{ref.height} x {ref.width}; clip or pad it to the reference extent, e.g. "
            f"`gdalwarp -te <reference extent> -tr {ref.cell_size[0]:g} {ref.cell_size[1]:g} {other.path} out.tif`"
        )


def check_class_codes(codes: np.ndarray, classes: ClassScheme, *, path: str | os.PathLike = "landuse",
                      key: str = "layers.landuse") -> None:
    """Raise :class:`UnknownClassError` listing undeclared codes, as stored (e.g. 300 of a ``uint16`` raster), with counts.

    ``codes`` are the values of the cells with data, of any integer dtype.
    """
    codes = np.asarray(codes)
    if codes.dtype.kind == "u" and codes.dtype.itemsize <= 2:  # count over the code range: no sort
        counts = np.bincount(codes.ravel(), minlength=1)
        values = np.flatnonzero(counts)
        counts = counts[values]
    else:
        values, counts = np.unique(codes.astype(np.int64, copy=False), return_counts=True)
    ok = np.isin(values, [*classes.codes, classes.nodata])
    if not ok.all():
        listing = ", ".join(f"{int(c)} ({int(n)} cells)" for c, n in zip(values[~ok], counts[~ok], strict=True))
        raise UnknownClassError(
            f"land-use raster {path} ({key}) holds class codes the class scheme does not declare: {listing}; "
            f"declare them under 'classes' in the scenario (declared: {', '.join(map(str, classes.codes))}) "
            "or recode the raster"
        )


# --------------------------------------------------------------------------- reading


def read_landscape(
    layers: Mapping[str, str | os.PathLike],
    *,
    reference: str = "landuse",
    classes: ClassScheme | None = None,
) -> xr.Dataset:
    """Read GeoTIFF layers into a Landscape, checking every grid against ``reference``.

    Parameters
    ----------
    layers : mapping of str to path
        Layer name -> GeoTIFF path. The name decides the dtype (see
        :func:`landuse.core.landscape.layer_kind`); ``landuse`` is required.
    reference : str
        The layer whose grid every other layer must match.
    classes : ClassScheme, optional
        Class scheme the land-use codes are checked against (default scheme if omitted).

    Returns
    -------
    xarray.Dataset
        With dims ``(y, x)``, a ``study_area`` mask, and ``attrs["inputs"]`` mapping each
        layer to its resolved path.

    Raises
    ------
    GridMismatchError
        A layer's CRS, cell size, origin or shape differs from the reference layer's.
    UnknownClassError
        The land-use layer holds codes the class scheme does not declare.
    """
    from landuse.core.config import layer_key

    classes = classes or default_scheme()
    if "landuse" not in layers:
        raise LanduseError("layers must include 'landuse' (the land-use raster of the start year)")
    if reference not in layers:
        raise LanduseError(f"reference layer {reference!r} is not among the layers {sorted(layers)}")
    headers = {}
    for name, p in layers.items():
        try:
            headers[name] = read_header(p)
        except LanduseError as exc:
            raise type(exc)(f"{layer_key(name)}: {exc}") from None
    ref = headers[reference]
    check_reference_crs(ref, name=reference)
    for name, h in headers.items():
        if name != reference:
            check_same_grid(ref, h, ref_name=reference, name=name)

    # window by window into the layer's array (in the active store's scratch file, if any): the memory of one
    # window besides the layers, and faster than whole reads (1 024-row strips of a 4 000² region: 1.3 s for its 13
    # layers against 1.8-2.1 s)
    arrays = {name: read_layer_windowed(name, path, classes=classes) for name, path in layers.items()}

    ds = new_landscape(
        arrays,
        crs=ref.crs,
        transform=ref.transform,
        nodata=classes.nodata,
        attrs={"inputs": {n: str(_resolve(p)) for n, p in layers.items()}},
        copy=False,  # read_layer's arrays are fresh
    )
    for name, path in layers.items():
        ds[name].attrs["source"] = str(_resolve(path))
    # cells with data in the reference layer too (when it is not the land-use layer), strip by strip
    ref = ds[reference].values
    if reference != "landuse" and ref.dtype.kind == "f":
        study = ds["study_area"].values
        for r0, r1 in row_strips(ref.shape[0], ref.shape[1]):
            study[r0:r1] &= np.isfinite(ref[r0:r1])
    return ds


def read_layer_windowed(name: str, path: str | os.PathLike, *, classes: ClassScheme | None = None) -> np.ndarray:
    """:func:`read_layer` window by window (strips of whole block rows), into an array of the active store.

    Same array, same checks and the same error messages as :func:`read_layer`, in the memory of one window: when a
    window fails a check, or a check of the whole layer fails (no cell with data, a mask's tag beside inside
    values), the layer is read again whole by :func:`read_layer`, which raises the error with its counts.
    """
    from landuse.core.store import store_empty

    classes = classes or default_scheme()
    kind = layer_kind(name)
    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(p) as src:
                tag = src.nodata
                out = store_empty((src.height, src.width), bool if kind == "mask" else KIND_DTYPES[kind])
                flags = [False, False]
                failed = False
                for r0, r1 in row_strips(src.height, src.width, src.block_shapes[0][0]):
                    data = src.read(1, masked=True, window=rasterio.windows.Window(0, r0, src.width, r1 - r0))
                    try:
                        _, (a, b) = _convert_layer(name, path, np.ma.getdata(data), np.ma.getmaskarray(data), tag,
                                                   classes=classes, whole=False, out=out[r0:r1])
                    except LanduseError:
                        failed = True
                        break
                    flags[0] |= a
                    flags[1] |= b
    except (rasterio.errors.RasterioError, rasterio._err.CPLE_BaseError) as exc:
        raise _read_failure(p, exc) from None
    whole_fails = (flags[0] and flags[1]) if kind == "mask" else not flags[0]
    if failed or whole_fails:
        read_layer(name, path, classes=classes)  # raises the check's error, with the whole layer's counts
        raise LanduseError(f"{path}: reading {name} window by window and whole gave different checks")
    return out


SLOPE_RANGE_DEG = (0.0, 90.0)


def _tag(tag: float | None) -> str:
    return "none" if tag is None else f"{tag:g}"


def read_layer(name: str, path: str | os.PathLike, *, classes: ClassScheme | None = None) -> np.ndarray:
    """Read one layer as the dtype of its kind (see :func:`landuse.core.landscape.layer_kind`), checking its values.

    * categorical (land use): whole-number class codes declared by ``classes``; nodata
      becomes the scheme's nodata code; at least one cell with data;
    * zones (cities, counties): whole, non-negative ids, nodata becomes 0; at least one id;
    * mask: **the nodata tag is ignored**: a cell is inside when its value is finite and
      non-zero, whatever the tag says (a tag equal to the inside value would otherwise
      empty the mask);
    * driver: float32 with NaN for nodata; at least one cell with data; ``slope`` in
      degrees within [0, 90].

    Raises :class:`LanduseError` (:class:`UnknownClassError` for undeclared codes) naming
    the layer's key, file, the cell count and the fix.
    """
    classes = classes or default_scheme()
    data, tag = read_band(path)
    out, _ = _convert_layer(name, path, np.ma.getdata(data), np.ma.getmaskarray(data), tag, classes=classes)
    return out


def _convert_layer(name: str, path: str | os.PathLike, arr: np.ndarray, nod: np.ndarray, tag: float | None, *,
                   classes: ClassScheme, whole: bool = True, out: np.ndarray | None = None
                   ) -> tuple[np.ndarray, tuple[bool, bool]]:
    """Check and cast the values ``arr`` (nodata where ``nod``) of layer ``name``, read from ``path``.

    With ``whole`` the arrays are the whole layer and every check runs; otherwise they are one window of it: the
    checks that need the whole layer (no cell with data, a mask's tag beside inside values) are left to the
    caller, who gets two flags for them: (a cell has data, False) or, for a mask, (a cell at the tag, another
    inside cell). ``out``: where to write the result (the window of the layer's array), else a new array.
    """
    from landuse.core.config import layer_key

    kind = layer_kind(name)
    where = f"{layer_key(name)} ({path})"
    if kind == "mask":
        raw = np.asarray(arr)
        inside = raw != 0
        if raw.dtype.kind == "f":
            inside &= np.isfinite(raw)
        flags = (False, False)
        if tag is not None and np.isfinite(tag) and tag != 0:
            at_tag = raw == tag
            flags = (bool(at_tag.any()), bool((inside & ~at_tag).any()))
            if whole and flags[0] and flags[1]:
                others = np.unique(raw[inside & ~at_tag])[:5]
                raise LanduseError(
                    f"{where} holds {int(at_tag.sum()):,} cells of its nodata value {tag:g} besides inside values "
                    f"({', '.join(f'{v:g}' for v in others)}): a mask layer is read as 0 = outside, non-zero = inside, "
                    f"whatever its nodata tag, so those cells would count as inside; set them to 0 (e.g. "
                    f"`gdal_calc.py -A {path} --calc \"A*(A!={tag:g})\" --NoDataValue=none --outfile fixed.tif`)"
                )
        if out is None:
            return inside, flags
        out[...] = inside
        return out, flags
    if arr.dtype.kind == "f":
        nod = nod | ~np.isfinite(arr)
    has_data = bool((~nod).any())
    if kind in ("categorical", "zones"):
        if arr.dtype.kind == "f":
            frac = ~nod & (arr != np.round(arr))
            if frac.any():
                example = float(arr[frac][0])
                what = "class codes" if kind == "categorical" else "ids"
                raise (UnknownClassError if kind == "categorical" else LanduseError)(
                    f"{where} holds fractional values in {int(frac.sum()):,} cells (e.g. {example:g}); {what} are "
                    f"whole numbers: is it the right layer? recode it to integers (e.g. `gdal_translate -ot "
                    f"{'Byte' if kind == 'categorical' else 'Int32'}` after rounding)"
                )
        if whole and not has_data:
            raise LanduseError(
                f"{where} has no cell with data: all {nod.size:,} cells are nodata (nodata tag {_tag(tag)}); "
                "check the file and its nodata tag"
            )
    if kind == "categorical":
        check_class_codes(arr[~nod], classes, path=path, key=layer_key(name))
        # every code with data is a declared one (0..255): one pass, no second gather of the cells with data
        if out is None:
            return np.where(nod, classes.nodata, arr).astype(np.uint8, copy=False), (has_data, False)
        np.copyto(out, arr, casting="unsafe")
        out[nod] = classes.nodata
        return out, (has_data, False)
    if kind == "zones":
        neg = ~nod & (arr < 0)
        if neg.any():
            raise LanduseError(
                f"{where} holds negative ids in {int(neg.sum()):,} cells (e.g. {int(arr[neg][0])}); ids are 1, 2, ... "
                "and 0 means none: recode them, or set the raster's nodata value to the one they use"
            )
        if out is not None:
            np.copyto(out, np.where(nod, 0, arr), casting="unsafe")
        elif arr.dtype.kind in "iu" and arr.dtype.itemsize <= 4 and arr.dtype != np.uint32:
            out = arr.astype(np.int32, copy=False)  # the band read is ours: no second raster
            out[nod] = 0
        else:
            out = np.where(nod, 0, arr).astype(np.int32)
        has_id = bool(out.any())
        if not whole:
            return out, (has_id, False)
        if not has_id:
            unit = {"cities": "city", "counties": "county"}.get(name, "zone")
            raise LanduseError(
                f"{where} holds no {unit} id: all {out.size:,} cells are nodata or 0 (nodata tag {_tag(tag)}); give "
                f"each cell its {unit}'s id (1, 2, ...), or fix the nodata tag"
            )
        return out, (has_id, False)
    if out is None:
        out = arr.astype(np.float32, copy=False)  # the band read is ours: a float32 band is not copied again
    else:
        np.copyto(out, arr, casting="unsafe")
    out[nod] = np.nan
    has_data = bool(np.isfinite(out).any())
    if whole and not has_data:
        raise LanduseError(
            f"{where} has no data: all {out.size:,} cells are nodata or NaN; check the file and its nodata tag, "
            "or leave the layer out"
        )
    if name == "slope":
        lo, hi = SLOPE_RANGE_DEG
        bad = np.isfinite(out) & ((out < lo) | (out > hi))
        if bad.any():
            raise LanduseError(
                f"{where} holds {int(bad.sum()):,} cells outside {lo:g}..{hi:g} degrees (from "
                f"{float(np.nanmin(out)):g} to {float(np.nanmax(out)):g}); slope is in degrees: if it is in percent, "
                "convert it (degrees = atan(percent / 100) in degrees), and check its nodata tag"
            )
    return out, (has_data, False)


# --------------------------------------------------------------------------- writing


def category_aux_xml(classes: ClassScheme, description: str) -> str:
    """The ``.aux.xml`` sidecar text naming and colouring a class raster's categories for GIS software."""
    names = classes.category_names()
    cats = "\n".join(f"      <Category>{escape(n)}</Category>" for n in names)
    rows = "\n".join(
        f'      <Row index="{i}"><F>{c.code}</F><F>{escape(c.name)}</F><F>{escape(c.role)}</F>'
        f"<F>{c.rgb[0]}</F><F>{c.rgb[1]}</F><F>{c.rgb[2]}</F></Row>"
        for i, c in enumerate(classes)
    )
    return f"""<PAMDataset>
  <PAMRasterBand band="1">
    <Description>{escape(description)}</Description>
    <CategoryNames>
{cats}
    </CategoryNames>
    <GDALRasterAttributeTable tableType="thematic">
      <FieldDefn index="0"><Name>Value</Name><Type>0</Type><Usage>5</Usage></FieldDefn>
      <FieldDefn index="1"><Name>Class</Name><Type>2</Type><Usage>2</Usage></FieldDefn>
      <FieldDefn index="2"><Name>Role</Name><Type>2</Type><Usage>0</Usage></FieldDefn>
      <FieldDefn index="3"><Name>Red</Name><Type>0</Type><Usage>6</Usage></FieldDefn>
      <FieldDefn index="4"><Name>Green</Name><Type>0</Type><Usage>7</Usage></FieldDefn>
      <FieldDefn index="5"><Name>Blue</Name><Type>0</Type><Usage>8</Usage></FieldDefn>
{rows}
    </GDALRasterAttributeTable>
  </PAMRasterBand>
</PAMDataset>
"""


def _default_nodata(dtype: np.dtype) -> float | int | None:
    if dtype == np.bool_:
        return None
    if dtype.kind == "f":
        return float("nan")
    if dtype == np.uint8:
        return 255
    if dtype.kind in "iu":
        return 0
    return None


_THREADED_FROM_CELLS = 1 << 20
"""Rasters from this many cells are compressed on GDAL's threads (smaller ones gain nothing from it)."""

OVERVIEWS_ABOVE_SIDE = 2048
"""Rasters with a side longer than this get overviews (halved levels down to about a block)."""


def overview_resampling(dtype: np.dtype | type | str, *, categorical: bool = False) -> str:
    """The resampling of a COG's overviews: ``average`` for continuous values, ``nearest`` for the rest.

    Floats (probabilities, suitability, slope) are averaged, so a zoomed-out view shows the mean of the cells it
    covers and stays within their range; GDAL's default for them, cubic, overshoots (a probability raster's
    overviews held values from -0.15 to 1.20). Classes, ids, masks and other integers take one of their cells'
    values (``nearest``): an average of class codes or of 0/1 would be a value no cell has.
    """
    return "nearest" if categorical or np.dtype(dtype).kind in "biu" else "average"


OVERVIEW_RESAMPLINGS = ("nearest", "average", "mode", "bilinear", "cubic", "cubicspline", "lanczos", "rms")
"""GDAL resamplings a COG's overviews may be written with (``write_geotiff(resampling=)``)."""



def write_geotiff(
    data_array: xr.DataArray,
    path: str | os.PathLike,
    *,
    classes: ClassScheme | None = None,
    nodata: float | int | None = None,
    protected: Iterable[str | os.PathLike] = (),
    tags: Mapping[str, object] | None = None,
    resampling: str | None = None,
) -> Path:
    """Write a DataArray as a Cloud-Optimized GeoTIFF, atomically.

    Parameters
    ----------
    data_array : xarray.DataArray
        2-D ``(y, x)`` array georeferenced (:func:`landuse.core.landscape.set_georef`, or rioxarray). Boolean arrays are
        written as ``uint8`` 0/1.
    path : path
        Destination. Written to a temporary file in the same folder, then renamed.
    classes : ClassScheme, optional
        For a categorical (land-use) layer: embeds the colour table and class names
        (band tags ``CLASS_<code>`` in the file, category names and a raster
        attribute table in the ``.aux.xml`` side-car that GDAL and QGIS read).
    nodata : number, optional
        Nodata value; by default the scheme's for categorical layers, NaN for floats,
        255 for other ``uint8`` arrays and none for Booleans.
    protected : iterable of path
        Paths that must not be overwritten (the scenario's inputs), besides those
        registered with :func:`protected_inputs`.
    tags : mapping, optional
        Extra dataset tags (e.g. seed, scenario name).
    resampling : str, optional
        GDAL resampling of the overviews (written for rasters with a side over :data:`OVERVIEWS_ABOVE_SIDE`
        cells); by default :func:`overview_resampling`: ``nearest`` for classes and integers, ``average`` for
        floats.

    Returns
    -------
    pathlib.Path
    """
    target = Path(path)
    if resampling is not None and resampling not in OVERVIEW_RESAMPLINGS:
        raise LanduseError(f"write_geotiff: resampling {resampling!r} is not one of {', '.join(OVERVIEW_RESAMPLINGS)} "
                           f"(writing {target}); leave it out for the default (nearest for classes and integers, "
                           "average for floats)")
    if data_array.ndim != 2:
        raise ArgumentError(f"write_geotiff needs a 2-D (y, x) array, got dims {data_array.dims}")
    crs = crs_of(data_array)
    transform = transform_of(data_array)
    arr = np.asarray(data_array.values)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
        dtype = np.dtype(np.uint8)
        nod = nodata
    else:
        dtype = arr.dtype
        if classes is not None:
            nod = classes.nodata if nodata is None else nodata
        else:
            nod = _default_nodata(dtype) if nodata is None else nodata
    if dtype == np.dtype(np.int64):
        arr = arr.astype(np.int32)
        dtype = np.dtype(np.int32)
    height, width = arr.shape
    blocksize = 256 if max(height, width) > 256 else 128
    profile = {
        "driver": "COG",
        "height": height,
        "width": width,
        "count": 1,
        "dtype": dtype.name,
        "crs": crs,
        "transform": transform,
        "compress": "deflate",
        "blocksize": blocksize,
        "overviews": "auto" if max(height, width) > OVERVIEWS_ABOVE_SIDE else "none",
        "resampling": resampling or overview_resampling(dtype, categorical=classes is not None),
    }
    if height * width >= _THREADED_FROM_CELLS:
        # blocks are compressed one by one on GDAL's threads: the same bytes, ~1.8x faster on 2 cores
        profile["num_threads"] = "ALL_CPUS"
    if dtype.kind == "f":
        profile["predictor"] = 3
    elif dtype.kind in "iu" and dtype.itemsize > 1:
        profile["predictor"] = 2
    if nod is not None:
        profile["nodata"] = nod
    with atomic_path(target, protected=protected) as tmp:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(arr, 1)
                name = str(data_array.name or target.stem)
                dst.set_band_description(1, name)
                if tags:
                    dst.update_tags(**{str(k): str(v) for k, v in tags.items()})
                if classes is not None:
                    dst.write_colormap(1, classes.colormap())
                    dst.update_tags(1, **{f"CLASS_{c.code}": f"{c.name}|{c.role}|{c.colour}" for c in classes})
        if classes is not None:
            aux = target.with_name(target.name + ".aux.xml")
            write_text(aux, category_aux_xml(classes, str(data_array.name or target.stem)))
    return target


def read_class_names(path: str | os.PathLike) -> dict[int, str]:
    """Class names embedded in a categorical GeoTIFF written by :func:`write_geotiff`."""
    with rasterio.open(path) as src:
        tags = src.tags(1)
    out = {}
    for key, value in tags.items():
        if key.startswith("CLASS_"):
            out[int(key[6:])] = value.split("|")[0]
    return out
