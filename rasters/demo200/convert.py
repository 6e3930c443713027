"""Convert the SLEUTH demo200 GIFs into the GeoTIFFs beside this file.

Run from the repository root::

    python rasters/demo200/convert.py [/work/shared/data/sleuth_demo200]

See README.md in this folder for the class mapping and the invented georeferencing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from affine import Affine

from landuse.core.classes import default_scheme
from landuse.core.landscape import coords_from_transform
from landuse.io.rasters import write_geotiff
from landuse.io.sleuth_files import read_grey

CRS = "EPSG:32610"  # invented: UTM zone 10 N
CELL = 100.0  # invented: 100 m cells
ORIGIN = (500_000.0, 4_000_000.0)  # invented upper-left corner
YEARS = (1930, 1950, 1970, 1990)

#: SLEUTH demo land-use class (landuse.1930.gif) -> default-scheme class name, for non-urban cells
NON_URBAN = {1: "bare", 2: "farmland", 3: "grassland", 4: "forest", 5: "water", 6: "wetland", 7: "bare"}


def _da(arr: np.ndarray, name: str):
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    t = Affine(CELL, 0.0, ORIGIN[0], 0.0, -CELL, ORIGIN[1])
    coords = coords_from_transform(t, *arr.shape)
    da = xr.DataArray(arr, dims=("y", "x"), coords={"y": coords["y"], "x": coords["x"]}, name=name)
    return da.rio.write_crs(CRS).rio.write_transform(t)


def convert(src: Path, out: Path) -> None:
    """Convert the SLEUTH demo200 GIFs in ``src`` into the land-use GeoTIFFs of ``out``."""
    scheme = default_scheme()
    code = {c.name: c.code for c in scheme.classes}
    inp = src / "input"
    lu30 = read_grey(inp / "demo200.landuse.1930.gif")
    excluded = read_grey(inp / "demo200.excluded.gif")
    base = np.full(lu30.shape, code["bare"], dtype=np.uint8)
    for sleuth, name in NON_URBAN.items():
        base[lu30 == sleuth] = code[name]
    base[excluded >= 100] = code["water"]
    for year in YEARS:
        urban = read_grey(inp / f"demo200.urban.{year}.gif") > 0
        lu = np.where(urban, np.uint8(code["residential"]), base).astype(np.uint8)
        write_geotiff(_da(lu, "landuse"), out / f"landuse_{year}.tif", classes=scheme)
    roads = read_grey(inp / "demo200.roads.1970.gif") > 0
    write_geotiff(_da(roads.astype(np.uint8), "roads"), out / "roads.tif", nodata=255)
    slope_pct = read_grey(inp / "demo200.slope.gif").astype(np.float64)
    slope_deg = np.degrees(np.arctan(slope_pct / 100.0)).astype(np.float32)
    write_geotiff(_da(slope_deg, "slope"), out / "slope.tif")


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data/sleuth_demo200")
    convert(src, Path(__file__).resolve().parent)
