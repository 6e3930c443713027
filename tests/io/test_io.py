"""GeoTIFF round trips, grid alignment checks, nodata, class codes, atomic writes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from conftest import CRS, TRANSFORM, tiny_landuse, write_array

from landuse.core.classes import ClassScheme, LandClass, default_scheme
from landuse.core.errors import (
    GridMismatchError,
    InputOverwriteError,
    LanduseError,
    OutputFolderError,
    UnknownClassError,
)
from landuse.core.landscape import MASK_LAYERS, like, new_landscape
from landuse.io.rasters import protected_inputs, read_class_names, read_landscape, write_geotiff, write_text


def test_categorical_round_trip_keeps_values_crs_transform_nodata_colours_and_names(tmp_path: Path) -> None:
    scheme = default_scheme()
    lu = tiny_landuse()
    p = write_array(tmp_path / "lu.tif", lu, classes=scheme)
    with rasterio.open(p) as src:
        assert src.crs.to_epsg() == 32651
        assert src.transform.almost_equals(TRANSFORM)
        assert src.nodata == scheme.nodata
        assert src.dtypes[0] == "uint8"
        np.testing.assert_array_equal(src.read(1), lu)
        cmap = src.colormap(1)
        for c in scheme:
            assert cmap[c.code][:3] == c.rgb
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        assert src.tags(1)["CLASS_1"].startswith("residential|residential")
    assert read_class_names(p) == {c.code: c.name for c in scheme}
    aux = (tmp_path / "lu.tif.aux.xml").read_text()
    for c in scheme:
        assert f"<Category>{c.name}</Category>" in aux
    assert "GDALRasterAttributeTable" in aux


def test_float_and_mask_round_trip(tmp_path: Path) -> None:
    slope = np.arange(48, dtype=np.float32).reshape(6, 8)
    slope[0, 0] = np.nan
    p = write_array(tmp_path / "slope.tif", slope)
    mask = np.zeros((6, 8), dtype=bool)
    mask[2:4, 2:5] = True
    m = write_array(tmp_path / "red_line.tif", mask)
    ds = read_landscape({"landuse": write_array(tmp_path / "lu.tif", tiny_landuse(), classes=default_scheme()),
                         "slope": p, "red_line": m})
    assert ds.slope.dtype == np.float32 and np.isnan(ds.slope.values[0, 0])
    np.testing.assert_array_equal(ds.slope.values[1:], slope[1:])
    assert ds.red_line.dtype == bool
    np.testing.assert_array_equal(ds.red_line.values, mask)
    assert ds.rio.crs.to_epsg() == 32651
    assert ds.rio.transform().almost_equals(TRANSFORM)


def test_read_landscape_dtypes_and_study_area(tiny_layers: dict[str, Path]) -> None:
    ds = read_landscape(tiny_layers)
    assert ds.landuse.dims == ("y", "x")
    assert ds.landuse.dtype == np.uint8
    assert ds.cities.dtype == np.int32
    assert ds.red_line.dtype == bool
    assert ds.slope.dtype == np.float32
    # the one nodata cell of the land-use layer is outside the study area
    assert int((~ds.study_area).sum()) == 1 and not bool(ds.study_area.values[5, 7])
    assert set(ds.attrs["inputs"]) == set(tiny_layers)


@pytest.mark.parametrize(
    ("kind", "transform", "crs", "shape", "expect"),
    [
        ("crs", TRANSFORM, "EPSG:32650", (6, 8), ["EPSG:32650", "EPSG:32651"]),
        ("cell size", Affine(50.0, 0, 300_000.0, 0, -50.0, 3_500_000.0), CRS, (6, 8), ["cell size 50 x 50", "100 x 100"]),
        ("origin", Affine(100.0, 0, 300_100.0, 0, -100.0, 3_500_000.0), CRS, (6, 8), ["origin (300100", "(300000"]),
        ("shape", TRANSFORM, CRS, (7, 8), ["7 rows x 8 columns", "6 x 8"]),
    ],
)
def test_each_grid_mismatch_names_both_files_and_values(tmp_path, kind, transform, crs, shape, expect) -> None:
    lu = write_array(tmp_path / "landuse.tif", tiny_landuse(), classes=default_scheme())
    other = write_array(tmp_path / "slope.tif", np.ones(shape, dtype=np.float32), transform=transform, crs=crs)
    with pytest.raises(GridMismatchError) as info:
        read_landscape({"landuse": lu, "slope": other})
    msg = str(info.value)
    assert str(lu) in msg and str(other) in msg
    for e in expect:
        assert e in msg, msg
    assert "gdalwarp" in msg  # says how to fix it


def test_unknown_class_codes_listed_with_counts(tmp_path: Path) -> None:
    lu = tiny_landuse()
    lu[0, 0] = 42
    lu[0, 1] = 42
    lu[1, 0] = 77
    p = write_array(tmp_path / "lu.tif", lu, classes=default_scheme())
    with pytest.raises(UnknownClassError, match=r"42 \(2 cells\), 77 \(1 cells\)"):
        read_landscape({"landuse": p})
    # a scheme that declares them accepts the raster
    scheme = ClassScheme((*default_scheme().classes, LandClass(42, "mine", "#000000", "other"),
                          LandClass(77, "port", "#111111", "other")))
    ds = read_landscape({"landuse": p}, classes=scheme)
    assert int((ds.landuse == 42).sum()) == 2


def test_nodata_of_each_kind(tmp_path: Path) -> None:
    lu = tiny_landuse()
    lu_p = write_array(tmp_path / "landuse.tif", lu, classes=default_scheme())
    zones = np.full(lu.shape, 3, dtype=np.int32)
    zones[0, 0] = -9
    z_p = write_array(tmp_path / "cities.tif", zones, nodata=-9)
    slope = np.full(lu.shape, 4.0, dtype=np.float32)
    slope[2, 2] = -1
    s_p = write_array(tmp_path / "slope.tif", slope, nodata=-1)
    ds = read_landscape({"landuse": lu_p, "cities": z_p, "slope": s_p})
    assert ds.cities.values[0, 0] == 0 and ds.cities.values[0, 1] == 3
    assert np.isnan(ds.slope.values[2, 2]) and ds.slope.values[0, 0] == 4
    assert not ds.study_area.values[5, 7]


# --------------------------------------------------------------------------- masks are read as masks

MASKS = sorted(MASK_LAYERS)


@pytest.mark.parametrize("tag", [1, 0, None, 255])
@pytest.mark.parametrize("name", MASKS)
def test_a_mask_nodata_tag_never_hides_its_inside_cells(tmp_path: Path, name: str, tag) -> None:
    lu_p = write_array(tmp_path / "landuse.tif", tiny_landuse(), classes=default_scheme())
    inside = np.zeros(tiny_landuse().shape, dtype=np.uint8)
    inside[1:3, 2:6] = 1
    p = tmp_path / f"{name}.tif"
    with rasterio.open(lu_p) as src:
        profile = {**src.profile, "driver": "GTiff", "nodata": tag}
    with rasterio.open(p, "w", **profile) as dst:  # written directly: the tag is exactly what the test says
        dst.write(inside, 1)
    ds = read_landscape({"landuse": lu_p, name: p})
    np.testing.assert_array_equal(ds[name].values, inside.astype(bool))


@pytest.mark.parametrize("tag", [1, 0])
def test_red_line_with_a_nodata_tag_is_never_converted(tiny_layers: dict[str, Path], tmp_path: Path, tag) -> None:
    from conftest import scenario_dict

    from landuse.core.config import scenario_from_dict
    from landuse.surfaces.constraints import never_convert

    red = np.zeros(tiny_landuse().shape, dtype=np.uint8)
    red[3:6, 2:5] = 1
    with rasterio.open(tiny_layers["landuse"]) as src:
        profile = {**src.profile, "driver": "GTiff", "nodata": tag}
    with rasterio.open(tiny_layers["red_line"], "w", **profile) as dst:
        dst.write(red, 1)
    scenario = scenario_from_dict(scenario_dict(tiny_layers, tmp_path), base_dir=tmp_path)
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    assert int(ds.red_line.sum()) == 9
    assert never_convert(ds, scenario)[red == 1].all()


def test_a_mask_holding_its_nodata_value_besides_inside_values_is_refused(tmp_path: Path) -> None:
    lu_p = write_array(tmp_path / "landuse.tif", tiny_landuse(), classes=default_scheme())
    mask = np.zeros(tiny_landuse().shape, dtype=np.uint8)
    mask[0, :3] = 1
    mask[5, :] = 255
    p = write_array(tmp_path / "greenbelt.tif", mask, nodata=255)
    with pytest.raises(LanduseError, match=r"layers.greenbelt .* holds 8 cells of its nodata value 255 besides inside "
                                           r"values \(1\).*set them to 0"):
        read_landscape({"landuse": lu_p, "greenbelt": p})


def test_atomic_write_keeps_earlier_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    scheme = default_scheme()
    p = write_array(tmp_path / "lu.tif", tiny_landuse(), classes=scheme)
    before = p.read_bytes()
    ds = new_landscape({"landuse": tiny_landuse()}, crs=CRS, transform=TRANSFORM)
    other = like(ds, np.full((6, 8), 4, dtype=np.uint8), "landuse")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # failure while the new GeoTIFF is open for writing
    monkeypatch.setattr(rasterio.io.BufferedDatasetWriter, "write_colormap", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_geotiff(other, p, classes=scheme)
    assert p.read_bytes() == before
    monkeypatch.undo()
    # failure after the pixels are written, before the rename
    monkeypatch.setattr("landuse.io.rasters.category_aux_xml", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_geotiff(other, p, classes=scheme)
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lu.tif", "lu.tif.aux.xml"]


def test_writing_over_an_input_is_refused(tiny_layers: dict[str, Path]) -> None:
    ds = read_landscape(tiny_layers)
    before = tiny_layers["slope"].read_bytes()
    with protected_inputs(ds.attrs["inputs"].values()), pytest.raises(InputOverwriteError, match="input"):
        write_geotiff(ds.slope, tiny_layers["slope"])
    with pytest.raises(InputOverwriteError):
        write_geotiff(ds.slope, tiny_layers["slope"], protected=[tiny_layers["slope"]])
    assert tiny_layers["slope"].read_bytes() == before


def test_geographic_reference_is_refused(tmp_path: Path) -> None:
    p = write_array(tmp_path / "lu.tif", tiny_landuse(), crs="EPSG:4326",
                    transform=Affine(0.001, 0, 120, 0, -0.001, 30), classes=default_scheme())
    with pytest.raises(GridMismatchError, match="geographic"):
        read_landscape({"landuse": p})


def test_same_array_writes_identical_bytes(tmp_path: Path) -> None:
    a = write_array(tmp_path / "a" / "lu.tif", tiny_landuse(), classes=default_scheme())
    b = write_array(tmp_path / "b" / "lu.tif", tiny_landuse(), classes=default_scheme())
    assert a.read_bytes() == b.read_bytes()


def test_outputs_get_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    p = write_array(tmp_path / "lu.tif", tiny_landuse(), classes=default_scheme())
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_output_folder_that_cannot_be_created_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "a_file").write_text("keep me")
    with pytest.raises(OutputFolderError, match=r"cannot create the output folder .*a_file.*choose a writable `out`"):
        write_text(tmp_path / "a_file" / "sub" / "report.md", "x")
    assert (tmp_path / "a_file").read_text() == "keep me"


def test_threaded_compression_writes_the_bytes_of_one_thread(tmp_path: Path, monkeypatch) -> None:
    """write_geotiff compresses on GDAL's threads; the file is the one a single thread writes."""
    rng = np.random.default_rng(3)
    arr = (rng.integers(0, 5, (1100, 1000)).astype(np.float32) / np.float32(4))  # threaded from 2**20 cells
    ds = new_landscape({"landuse": np.full(arr.shape, 4, np.uint8)}, crs=CRS,
                       transform=Affine(30, 0, 0, 0, -30, 30 * arr.shape[0]))
    opened = []
    real_open = rasterio.open

    def spy(path, mode="r", **kw):
        if mode == "w":
            opened.append(dict(kw))
        return real_open(path, mode, **kw)

    monkeypatch.setattr(rasterio, "open", spy)
    threaded = write_geotiff(like(ds, arr, "p"), tmp_path / "threaded.tif")
    monkeypatch.undo()
    assert opened and opened[0].get("num_threads") == "ALL_CPUS"
    one = {k: v for k, v in opened[0].items() if k != "num_threads"}
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(tmp_path / "one.tif", "w", **one) as dst:
        dst.write(arr, 1)
        dst.set_band_description(1, "p")
    assert threaded.read_bytes() == (tmp_path / "one.tif").read_bytes()


def _overview(path: Path, level: int = 0) -> np.ma.MaskedArray:
    with rasterio.open(path, overview_level=level) as src:
        return src.read(1, masked=True)


def test_overviews_average_floats_and_keep_the_values_of_classes_and_masks(tmp_path: Path) -> None:
    """Past 2048 cells a side a COG gets overviews: floats averaged (within the cells' range), the rest nearest."""
    n = 2056  # 257 blocks of 8 cells: one overview cell of the first level covers 2 x 2 cells
    ds = new_landscape({"landuse": np.full((n, n), 4, np.uint8)}, crs=CRS, transform=Affine(30, 0, 0, 0, -30, 30 * n))
    yy, xx = np.indices((n, n))
    sharp = ((yy // 3 + xx // 3) % 2).astype(np.float32)  # 0/1 squares of 3 cells: cubic overshoots at the edges
    prob = sharp.copy()
    prob[(yy % 7 == 0)] = np.float32(0.5)
    prob[:5, :5] = np.nan
    p = write_geotiff(like(ds, prob, "probability"), tmp_path / "p.tif")
    with rasterio.open(p) as src:
        assert src.overviews(1)[:1] == [2]
    ov = _overview(p)
    finite = ov.compressed()[np.isfinite(ov.compressed())]
    assert finite.min() >= 0.0 and finite.max() <= 1.0  # GDAL's default, cubic, goes below 0 here
    # the first level is the mean of each 2 x 2 block (cells with data only)
    blocks = prob[: n // 2 * 2, : n // 2 * 2].reshape(n // 2, 2, n // 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN blocks of the corner
        mean = np.nanmean(blocks, axis=(1, 3))
    inside = np.isfinite(mean) & np.isfinite(ov.filled(np.nan))
    np.testing.assert_allclose(ov.filled(np.nan)[inside], mean[inside], atol=1e-6)

    mask = like(ds, sharp.astype(bool), "ugb")
    m = write_geotiff(mask, tmp_path / "m.tif")
    assert set(np.unique(_overview(m).compressed())) <= {0, 1}
    scheme = default_scheme()
    codes = np.array([c.code for c in scheme], dtype=np.uint8)
    lu = codes[(yy // 8 + 3 * (xx // 8)) % codes.size]
    c = write_geotiff(like(ds, lu, "landuse"), tmp_path / "lu.tif", classes=scheme)
    for level in (0, 1):
        assert set(np.unique(_overview(c, level).compressed())) <= set(codes.tolist())


def test_an_unknown_overview_resampling_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    ds = new_landscape({"landuse": np.full((4, 4), 4, np.uint8)}, crs=CRS, transform=Affine(30, 0, 0, 0, -30, 120))
    with pytest.raises(LanduseError, match=r"resampling 'bogus' is not one of nearest, average.*p\.tif"):
        write_geotiff(like(ds, np.zeros((4, 4), np.float32), "p"), tmp_path / "p.tif", resampling="bogus")
    assert list(tmp_path.iterdir()) == []
