"""Raster input and output.

* :func:`read_landscape` reads GeoTIFFs into a :mod:`landuse.landscape` Dataset,
  checking that every layer shares the reference layer's grid.
* :func:`write_geotiff` writes a Cloud-Optimized GeoTIFF atomically, with a colour
  table and class names for categorical layers.
* :func:`atomic_path`, :func:`write_text`, :func:`write_bytes` (from :mod:`landuse.outputs`)
  write one file under a temporary name and rename it; whole output folders are written
  through :class:`landuse.outputs.OutputFolder`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from landuse.classes import ClassScheme, default_scheme
from landuse.errors import GridMismatchError, LanduseError, UnknownClassError
from landuse.landscape import KIND_DTYPES, layer_kind, new_landscape
from landuse.outputs import (  # noqa: F401  (re-exported: the writers of landuse.io)
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
        return abs(self.transform.a), abs(self.transform.e)


def read_header(path: str | os.PathLike) -> GridHeader:
    """Read a raster's header (no pixel data)."""
    p = Path(path)
    if not p.exists():
        raise LanduseError(f"raster file not found: {p.resolve()}")
    try:
        with rasterio.open(p) as src:
            return GridHeader(p, src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata)
    except rasterio.errors.RasterioIOError as exc:
        raise LanduseError(f"cannot read raster {p.resolve()}: {exc}; is it a GeoTIFF?") from exc


def _crs_label(crs: CRS | None) -> str:
    if crs is None:
        return "no CRS"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def check_same_grid(ref: GridHeader, other: GridHeader, *, ref_name: str, name: str) -> None:
    """Raise :class:`GridMismatchError` naming both files if the grids differ."""
    where = f"layer {name!r} ({other.path}) against {ref_name!r} ({ref.path})"
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
            f"origin ({other.transform.c:g}, {other.transform.f:g}) of {where} differs from "
            f"({ref.transform.c:g}, {ref.transform.f:g}); align it to the reference grid, e.g. "
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


def check_class_codes(landuse: np.ndarray, classes: ClassScheme, *, path: str | os.PathLike = "landuse") -> None:
    """Raise :class:`UnknownClassError` listing undeclared codes and their cell counts."""
    unknown = unknown_code_counts(landuse, classes)
    if unknown:
        listing = ", ".join(f"{c} ({n} cells)" for c, n in sorted(unknown.items()))
        raise UnknownClassError(
            f"land-use raster {path} holds class codes the class scheme does not declare: {listing}; "
            f"declare them under 'classes' in the scenario (declared: {', '.join(map(str, classes.codes))}) "
            f"or recode the raster"
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
        :func:`landuse.landscape.layer_kind`); ``landuse`` is required.
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
    classes = classes or default_scheme()
    if "landuse" not in layers:
        raise LanduseError("layers must include 'landuse' (the land-use raster of the start year)")
    if reference not in layers:
        raise LanduseError(f"reference layer {reference!r} is not among the layers {sorted(layers)}")
    headers = {name: read_header(p) for name, p in layers.items()}
    ref = headers[reference]
    if ref.crs is None:
        raise GridMismatchError(f"reference layer {reference!r} ({ref.path}) has no CRS; assign one with `gdal_edit.py -a_srs EPSG:... {ref.path}`")
    if ref.crs.is_geographic:
        raise GridMismatchError(
            f"reference layer {reference!r} ({ref.path}) is in geographic coordinates ({_crs_label(ref.crs)}); "
            "landuse works in metres: reproject every layer to a projected CRS (e.g. UTM) with gdalwarp"
        )
    for name, h in headers.items():
        if name != reference:
            check_same_grid(ref, h, ref_name=reference, name=name)

    lu_nodata = classes.nodata
    arrays: dict[str, np.ndarray] = {}
    for name, path in layers.items():
        kind = layer_kind(name)
        with rasterio.open(path) as src:
            data = src.read(1, masked=True)
        arr = np.ma.getdata(data)
        nod = np.ma.getmaskarray(data)
        if kind == "categorical":
            if arr.dtype.kind == "f":
                nod = nod | ~np.isfinite(arr)
                arr = np.where(nod, lu_nodata, arr)
            if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
                raise UnknownClassError(
                    f"land-use raster {path} holds values outside 0..255; class codes must fit in uint8"
                )
            arr = arr.astype(np.uint8)
            arr[nod] = lu_nodata
            check_class_codes(arr, classes, path=path)
        elif kind == "zones":
            arr = np.where(nod, 0, arr).astype(np.int32)
        elif kind == "mask":
            arr = np.where(nod, False, arr != 0)
        else:
            arr = arr.astype(np.float32)
            arr[nod] = np.nan
        arrays[name] = arr.astype(KIND_DTYPES[kind], copy=False)

    ds = new_landscape(
        arrays,
        crs=ref.crs,
        transform=ref.transform,
        nodata=lu_nodata,
        attrs={"inputs": {n: str(_resolve(p)) for n, p in layers.items()}},
    )
    for name, path in layers.items():
        ds[name].attrs["source"] = str(_resolve(path))
    ds["study_area"] = ds["study_area"] & _nodata_free(ds, reference)
    return ds


def _nodata_free(ds: xr.Dataset, reference: str) -> xr.DataArray:
    """Cells with data in the reference layer too (when it is not the land-use layer)."""
    if reference == "landuse":
        return xr.ones_like(ds["study_area"])
    ref = ds[reference]
    if ref.dtype.kind == "f":
        return np.isfinite(ref)
    return xr.ones_like(ds["study_area"])


# --------------------------------------------------------------------------- writing


def _category_aux_xml(classes: ClassScheme, description: str) -> str:
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


def write_geotiff(
    data_array: xr.DataArray,
    path: str | os.PathLike,
    *,
    classes: ClassScheme | None = None,
    nodata: float | int | None = None,
    protected: Iterable[str | os.PathLike] = (),
    tags: Mapping[str, object] | None = None,
) -> Path:
    """Write a DataArray as a Cloud-Optimized GeoTIFF, atomically.

    Parameters
    ----------
    data_array : xarray.DataArray
        2-D ``(y, x)`` array georeferenced through rioxarray. Boolean arrays are
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

    Returns
    -------
    pathlib.Path
    """
    target = Path(path)
    if data_array.ndim != 2:
        raise ValueError(f"write_geotiff needs a 2-D (y, x) array, got dims {data_array.dims}")
    crs = data_array.rio.crs
    transform = data_array.rio.transform()
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
        "overviews": "auto" if max(height, width) > 2048 else "none",
    }
    if dtype.kind == "f":
        profile["predictor"] = 3
    elif dtype.kind in "iu" and dtype.itemsize > 1:
        profile["predictor"] = 2
    if classes is not None:
        profile["resampling"] = "nearest"
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
            write_text(aux, _category_aux_xml(classes, str(data_array.name or target.stem)))
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


def read_raster(path: str | os.PathLike, *, name: str | None = None) -> xr.DataArray:
    """Read a single-band raster as a georeferenced DataArray (nodata kept as stored)."""
    import rioxarray

    p = Path(path)
    if not p.exists():
        raise LanduseError(f"raster file not found: {p.resolve()}")
    da = rioxarray.open_rasterio(p, masked=False).squeeze("band", drop=True).load()
    da.name = name or p.stem
    return da


def unknown_code_counts(landuse: np.ndarray, classes: ClassScheme) -> Counter:
    """Counts of undeclared codes (empty when all are declared)."""
    counts = np.bincount(np.asarray(landuse, dtype=np.uint8).ravel(), minlength=256)
    ok = set(classes.codes) | {classes.nodata}
    return Counter({int(c): int(counts[c]) for c in np.flatnonzero(counts) if int(c) not in ok})
