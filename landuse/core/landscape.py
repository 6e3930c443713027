"""The Landscape: every layer of a study region on one grid, as an ``xarray.Dataset``.

A Landscape has dims ``(y, x)`` and is georeferenced the way rioxarray reads it: a scalar
``spatial_ref`` coordinate holds the CRS as WKT (``crs_wkt``) and the affine transform
(``GeoTransform``), and every variable names it as its ``grid_mapping``. :func:`crs_of` and
:func:`transform_of` read them without importing rioxarray (whose import pulls in dask and
pyproj: about 0.4 s of every process); with ``import rioxarray``, ``ds.rio.crs`` and
``ds.rio.transform()`` give the same. Variable dtypes follow the layer kind:

============  ===========  ===============================================
kind          dtype        meaning
============  ===========  ===============================================
categorical   ``uint8``    land-use class codes (``landuse``, ``landuse_2010`` ...)
zones         ``int32``    administrative units (``cities``, ``counties``); 0 = none
mask          ``bool``     red line, permanent farmland, greenbelt, roads ...
driver        ``float32``  continuous drivers (elevation, slope ...); NaN = nodata
============  ===========  ===============================================

The Boolean variable ``study_area`` marks cells where the land-use layer has data;
every later stage works inside it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import xarray as xr
from affine import Affine

from landuse.core.errors import ArgumentError
from landuse.core.store import store_copy, store_empty

MASK_LAYERS = frozenset(
    {
        "red_line",
        "permanent_farmland",
        "greenbelt",
        "growth_boundary",
        "roads",
        "rail",
        "stations",
        "centres",
        "protected_open_space",
    }
)
ZONE_LAYERS = frozenset({"cities", "counties", "zones"})
_CATEGORICAL = re.compile(r"^landuse(_\d{4})?$")


def layer_kind(name: str) -> str:
    """Kind of a layer from its name: ``categorical``, ``zones``, ``mask`` or ``driver``.

    >>> layer_kind("landuse_2010"), layer_kind("cities"), layer_kind("red_line"), layer_kind("slope")
    ('categorical', 'zones', 'mask', 'driver')
    """
    if _CATEGORICAL.match(name):
        return "categorical"
    if name in ZONE_LAYERS:
        return "zones"
    if name in MASK_LAYERS:
        return "mask"
    return "driver"


KIND_DTYPES = {"categorical": np.uint8, "zones": np.int32, "mask": np.bool_, "driver": np.float32}


def coords_from_transform(transform: Affine, height: int, width: int) -> dict[str, np.ndarray]:
    """Cell-centre coordinates ``{"y": ..., "x": ...}`` of a north-up grid."""
    x = transform.c + transform.a * (np.arange(width) + 0.5)
    y = transform.f + transform.e * (np.arange(height) + 0.5)
    return {"y": y, "x": x}


def new_landscape(
    layers: dict[str, np.ndarray],
    *,
    crs: str | object,
    transform: Affine,
    nodata: int = 255,
    attrs: dict | None = None,
    copy: bool = True,
) -> xr.Dataset:
    """Build a Landscape from in-memory arrays (used by tests, the sample and readers).

    Parameters
    ----------
    layers : dict of str to ndarray
        Arrays of one shape ``(rows, cols)``; ``landuse`` is required. Each is cast
        to the dtype of its kind (see :func:`layer_kind`).
    crs : str or CRS
        Projected coordinate reference system, e.g. ``"EPSG:32651"``.
    transform : Affine
        North-up affine transform of the grid.
    nodata : int
        Land-use value of cells outside the study area.
    attrs : dict, optional
        Dataset attributes to set.
    copy : bool
        Copy each array the cast leaves as it is (default), so the Landscape never shares
        memory with the caller's arrays; ``False`` when the arrays are the caller's to give
        away (a reader's fresh arrays): one copy fewer per layer.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> from affine import Affine
    >>> lu = np.array([[1, 4], [4, 255]], dtype=np.uint8)
    >>> ds = new_landscape({"landuse": lu}, crs="EPSG:32651", transform=Affine(100, 0, 0, 0, -100, 200))
    >>> int(ds.study_area.sum()), cell_area_ha(ds)
    (3, 1.0)
    """
    if "landuse" not in layers:
        raise ArgumentError("a Landscape needs a 'landuse' layer")
    shape = np.shape(layers["landuse"])
    data_vars = {}
    for name, arr in layers.items():
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise ArgumentError(f"layer {name!r} has shape {arr.shape}, landuse has {shape}")
        kind = layer_kind(name)
        cast = arr.astype(bool if kind == "mask" else KIND_DTYPES[kind], copy=False)
        if copy and np.shares_memory(cast, arr):
            cast = cast.copy()
        data_vars[name] = (("y", "x"), cast)
    lu = np.asarray(data_vars["landuse"][1])
    study = store_empty(shape, bool)  # in the run's raster store, if one is active
    np.not_equal(lu, nodata, out=study)
    data_vars["study_area"] = (("y", "x"), study)
    ds = xr.Dataset(data_vars, coords=coords_from_transform(transform, *shape))
    ds["landuse"].attrs["_FillValue"] = nodata
    ds["landuse"].attrs["nodata"] = nodata
    ds.attrs.update(attrs or {})
    return set_georef(ds, crs, transform)


GRID_MAPPING = "spatial_ref"


@lru_cache(maxsize=64)
def _crs_from_wkt(wkt: str):
    from rasterio.crs import CRS

    return CRS.from_wkt(wkt)


def _wkt(crs) -> str:
    if isinstance(crs, str) and crs.lstrip().upper().startswith(("PROJCS", "PROJCRS", "GEOGCS", "GEOGCRS", "LOCAL_CS")):
        return crs
    from rasterio.crs import CRS

    return (crs if isinstance(crs, CRS) else CRS.from_user_input(crs)).to_wkt()


def georef_coord(crs, transform: Affine) -> xr.Variable:
    """The scalar ``spatial_ref`` coordinate recording ``crs`` and ``transform`` (CF grid mapping, as rioxarray writes it)."""
    geo = " ".join(str(v) for v in transform.to_gdal())
    if crs is None:
        return xr.Variable((), np.int64(0), attrs={"GeoTransform": geo})
    wkt = _wkt(crs)
    return xr.Variable((), np.int64(0), attrs={"crs_wkt": wkt, "spatial_ref": wkt, "GeoTransform": geo})


def set_georef(obj: xr.DataArray | xr.Dataset, crs, transform: Affine | None = None, *,
               coord: xr.Variable | None = None) -> xr.DataArray | xr.Dataset:
    """Georeference ``obj`` in place (no data copied) and return it.

    Writes the ``spatial_ref`` coordinate (``crs_wkt``, ``spatial_ref`` and ``GeoTransform``
    attributes, which rioxarray reads as ``.rio.crs`` and ``.rio.transform()``) and names it as
    the ``grid_mapping`` of ``obj`` and of each of its variables. ``coord`` gives a ready
    coordinate (e.g. another raster's) instead of ``crs`` and ``transform``.
    """
    obj.coords[GRID_MAPPING] = coord.copy(deep=False) if coord is not None else georef_coord(crs, transform)
    obj.encoding["grid_mapping"] = GRID_MAPPING
    if isinstance(obj, xr.Dataset):
        for var in obj.data_vars.values():
            var.encoding["grid_mapping"] = GRID_MAPPING
    return obj


def _grid_mapping(obj: xr.DataArray | xr.Dataset) -> str:
    """Name of the coordinate holding ``obj``'s CRS and transform."""
    return obj.encoding.get("grid_mapping", obj.attrs.get("grid_mapping", GRID_MAPPING))


def _grid_mapping_attrs(obj: xr.DataArray | xr.Dataset) -> dict | None:
    name = _grid_mapping(obj)
    return obj.coords[name].attrs if name in obj.coords else None


def crs_of(obj: xr.DataArray | xr.Dataset):
    """The ``rasterio.crs.CRS`` of a georeferenced raster or Landscape (``obj.rio.crs`` without rioxarray)."""
    attrs = _grid_mapping_attrs(obj)
    wkt = attrs and (attrs.get("crs_wkt") or attrs.get("spatial_ref"))
    if wkt:
        return _crs_from_wkt(wkt)
    if attrs and attrs.get("GeoTransform"):
        return None  # georeferenced here without a CRS
    import rioxarray  # noqa: F401  (an object georeferenced some other way: let rioxarray find its CRS)

    return obj.rio.crs


def transform_of(obj: xr.DataArray | xr.Dataset) -> Affine:
    """The affine transform of a georeferenced raster or Landscape (``obj.rio.transform()`` without rioxarray)."""
    attrs = _grid_mapping_attrs(obj)
    geo = attrs and attrs.get("GeoTransform")
    if geo:
        return Affine.from_gdal(*(float(v) for v in geo.split()))
    import rioxarray  # noqa: F401  (no GeoTransform recorded: rioxarray derives it from the coordinates)

    return obj.rio.transform()


def drop_accessor_cycle(obj: xr.DataArray | xr.Dataset) -> xr.DataArray | xr.Dataset:
    """Forget ``obj``'s cached ``.rio`` accessor, which refers back to ``obj``; return ``obj``.

    xarray caches an accessor on its object and the accessor holds the object: a reference
    cycle, so a DataArray whose ``.rio`` was used is freed by the garbage collector only, not
    when its last reference goes. On large grids that kept rasters alive long after their use
    (a few hundred MB at 4 000² cells). The CRS and transform stay in the object's
    ``spatial_ref`` coordinate; the next ``.rio`` builds a new accessor from it.
    """
    cache = getattr(obj, "_cache", None)
    if isinstance(cache, dict):
        cache.pop("rio", None)
    return obj


def cell_sizes(ds: xr.Dataset) -> tuple[float, float]:
    """``(height, width)`` of a cell in CRS units: the row spacing ``|e|`` and the column spacing ``|a|``.

    Use it for anything measured in metres on the grid (distances, windows, blocks), so
    non-square cells keep their true x and y sizes.
    """
    t = transform_of(ds)
    return float(abs(t.e)), float(abs(t.a))


def cell_size(ds: xr.Dataset) -> float:
    """Nominal edge length of a cell in CRS units (metres for a projected CRS).

    The edge for square cells; for non-square cells the edge of a square of the same area,
    ``sqrt(|a e|)`` (use :func:`cell_sizes` wherever x and y differ in effect).
    """
    dy, dx = cell_sizes(ds)
    return dx if dy == dx else float(np.sqrt(dy * dx))


def cell_area_ha(ds: xr.Dataset) -> float:
    """Area of one cell in hectares."""
    t = transform_of(ds)
    return float(abs(t.a * t.e)) / 10_000.0


def landuse_nodata(ds: xr.Dataset) -> int:
    """The land-use nodata value recorded on the Landscape."""
    return int(ds["landuse"].attrs.get("nodata", 255))


def like(ds: xr.Dataset, array: np.ndarray, name: str, *, copy: bool = True, **attrs) -> xr.DataArray:
    """Wrap a copy of ``array`` as a DataArray on the Landscape's grid (coords and CRS).

    The DataArray never shares memory with ``array`` (one copy, in the run's raster store when one
    is active: :mod:`landuse.core.store`); ``copy=False`` wraps ``array`` itself, for a fresh array nobody
    else holds. It shares the Landscape's ``spatial_ref`` coordinate (see :func:`set_georef`).
    """
    data = store_copy(array) if copy else np.asarray(array)
    da = xr.DataArray(data, dims=("y", "x"), coords={"y": ds.y, "x": ds.x}, name=name)
    da.attrs.update(attrs)
    return set_georef(da, None, coord=georef_of(ds))


def georef_of(obj: xr.DataArray | xr.Dataset) -> xr.Variable:
    """``obj``'s ``spatial_ref`` coordinate (built from its CRS and transform if it has another grid mapping)."""
    attrs = _grid_mapping_attrs(obj)
    if _grid_mapping(obj) == GRID_MAPPING and attrs and attrs.get("GeoTransform"):
        return obj.coords[GRID_MAPPING].variable
    return georef_coord(crs_of(obj), transform_of(obj))
