"""Georeferencing without rioxarray: the Landscape's ``spatial_ref`` coordinate, read by landuse and by rioxarray alike."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio: the reference the helpers must agree with)
from affine import Affine

from landuse.core.landscape import crs_of, like, new_landscape, set_georef, transform_of

TRANSFORMS = [Affine(30, 0, 300_000, 0, -30, 3_500_000), Affine(100, 0, -50.5, 0, -25, 1e6), Affine(1 / 3, 0, 0, 0, -2.5, 7)]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("crs", ["EPSG:32651", "EPSG:3857", "EPSG:2326"])
def test_landuse_and_rioxarray_read_the_same_georeference(crs: str, transform: Affine) -> None:
    ds = new_landscape({"landuse": np.ones((3, 4), np.uint8), "slope": np.zeros((3, 4))}, crs=crs, transform=transform)
    assert crs_of(ds) == ds.rio.crs and crs_of(ds).to_epsg() == int(crs.split(":")[1])
    assert transform_of(ds) == ds.rio.transform() == transform
    da = like(ds, np.zeros((3, 4), np.float32), "x")
    assert crs_of(da) == da.rio.crs == ds.rio.crs and transform_of(da) == da.rio.transform() == transform
    assert da.encoding["grid_mapping"] == "spatial_ref" and ds["slope"].encoding["grid_mapping"] == "spatial_ref"
    da.coords["spatial_ref"].attrs["extra"] = 1  # the coordinate is the raster's own, not the Landscape's
    assert "extra" not in ds.coords["spatial_ref"].attrs


def test_objects_georeferenced_by_rioxarray_are_read_too() -> None:
    """A DataArray a user georeferenced with rioxarray (full CF attributes) reads the same."""
    import xarray as xr

    t = TRANSFORMS[0]
    da = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), coords={"y": [1.0, 0.0], "x": [0.0, 1.0]})
    da = da.rio.write_crs("EPSG:32650").rio.write_transform(t)
    assert crs_of(da).to_epsg() == 32650 and transform_of(da) == t
    fresh = set_georef(xr.DataArray(np.zeros((2, 2)), dims=("y", "x")), "EPSG:32650", t)
    assert fresh.rio.crs == da.rio.crs and fresh.rio.transform() == t


def test_a_run_never_imports_rioxarray(tmp_path, tiny_config) -> None:
    """A run reads, grows, checks and writes every output without importing rioxarray or pyproj (~0.1 s)."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from landuse.pipeline.run import run_scenario
        run_scenario({str(tiny_config)!r}, out={str(tmp_path / "out")!r}, runs=1)
        assert any(Path({str(tmp_path / "out")!r}).glob("landuse_*.tif"))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("rioxarray", "pyproj")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
