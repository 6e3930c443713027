"""The disk raster store (compute.rasters: disk): memory-mapped scratch rasters, windowed reads, same outputs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import rasterio
from affine import Affine
from assertions import same_outputs_end_to_end
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import landuse.core.store as store_mod
import landuse.core.strips as lio
from landuse.cli.app import app
from landuse.core.errors import LanduseError
from landuse.core.store import (
    RasterStore,
    active_store,
    in_store,
    label_sizes,
    raster_store,
    store_copy,
    store_empty,
    store_full,
    store_label,
    store_zeros,
    use_disk,
)
from landuse.io.rasters import read_landscape, read_layer, read_layer_windowed
from landuse.pipeline.run import run_scenario

runner = CliRunner()


@pytest.fixture
def map_everything(monkeypatch):
    """Map every array, however small (the fixtures' rasters are far below the 1 MiB floor)."""
    monkeypatch.setattr(store_mod, "MIN_MAPPED_BYTES", 0)


def test_store_arrays_are_file_backed_and_leave_no_file(tmp_path, map_everything) -> None:
    with raster_store("disk", tmp_path) as st_:
        assert active_store() is st_
        a = store_zeros((30, 40), np.float32)
        b = store_full((5, 6), 7, np.int16)
        c = store_copy(np.arange(12, dtype=np.uint8).reshape(3, 4), np.int32)
        e = store_empty(100, bool)
    assert active_store() is None
    assert all(in_store(x) for x in (a, b, c, e, a[3:5], c.T))
    assert a.dtype == np.float32 and not a.any() and (b == 7).all() and c.dtype == np.int32
    np.testing.assert_array_equal(c, np.arange(12).reshape(3, 4))
    a[:] = 1.5  # writable, and a plain ndarray every numpy and numba function takes
    assert type(a) is np.ndarray and float(a.sum()) == 1.5 * 1200
    assert os.listdir(tmp_path) == []  # unlinked as soon as mapped
    assert st_.bytes == 30 * 40 * 4 + 5 * 6 * 2 + 12 * 4 + 100
    # no store active: plain numpy arrays
    assert not in_store(store_zeros((3, 3), np.float32)) and not in_store(store_copy(a))


def test_small_arrays_stay_in_memory(tmp_path) -> None:
    with raster_store("disk", tmp_path):
        small = store_zeros((10, 10), np.float32)
        big = store_zeros((1024, 1024), np.uint8)  # 1 MiB: the floor
    assert not in_store(small) and not small.any()
    assert in_store(big) and not big.any()


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), p=st.floats(0.0, 1.0), seed=st.integers(0, 1000),
       eight=st.booleans())
def test_store_label_is_scipys_label_in_int32(tmp_path_factory, h, w, p, seed, eight) -> None:
    from scipy import ndimage

    mask = np.random.default_rng(seed).random((h, w)) < p
    structure = np.ones((3, 3), dtype=bool) if eight else None
    want, n_want = ndimage.label(mask, structure=structure)
    with raster_store("disk", tmp_path_factory.mktemp("s")):
        store_mod.MIN_MAPPED_BYTES, floor = 0, store_mod.MIN_MAPPED_BYTES
        try:
            got, n = store_label(mask, structure)
        finally:
            store_mod.MIN_MAPPED_BYTES = floor
        assert in_store(got)
    assert got.dtype == np.int32 and n == n_want
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(label_sizes(got, n, step=7), np.bincount(want.ravel(), minlength=n + 1))


def test_auto_mode_and_bad_settings(tmp_path) -> None:
    assert not use_disk("auto", 99_999_999) and use_disk("auto", 100_000_000)
    assert use_disk("disk", 1) and not use_disk("memory", 10**12)
    with raster_store("auto", tmp_path, cells=10) as s:
        assert s is None and active_store() is None
    with pytest.raises(LanduseError, match="not one of memory, disk, auto"):
        use_disk("ram", 1)
    with pytest.raises(LanduseError, match="is not a folder"):
        RasterStore(tmp_path / "missing")


# --------------------------------------------------------------------------- windowed reads


def _write(path, arr, *, nodata=None, block=16) -> None:
    h, w = arr.shape
    tiled = h >= block and w >= block
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype=arr.dtype, crs="EPSG:32651",
                   transform=Affine(30, 0, 0, 0, -30, 30 * h), nodata=nodata)
    if tiled:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 70), w=st.integers(1, 50), strip=st.integers(1, 900), seed=st.integers(0, 2**16))
def test_windowed_read_equals_whole_read(tmp_path_factory, monkeypatch, h, w, strip, seed) -> None:
    monkeypatch.setattr(lio, "STRIP_CELLS", strip)
    d = tmp_path_factory.mktemp("win")
    rng = np.random.default_rng(seed)
    lu = rng.choice(np.array([1, 2, 4, 5, 6, 255], np.uint8), size=(h, w))
    lu.flat[0] = 1
    cities = rng.integers(0, 4, size=(h, w)).astype(np.int16)
    cities.flat[0] = 1
    slope = rng.uniform(0, 40, size=(h, w)).astype(np.float32)
    slope[rng.random((h, w)) < 0.2] = -9999
    slope.flat[0] = 3.0
    elev = rng.normal(50, 10, size=(h, w))  # float64 band, NaN holes
    elev[rng.random((h, w)) < 0.1] = np.nan
    elev.flat[0] = 1.0
    mask = (rng.random((h, w)) < 0.3).astype(np.uint8) * 3
    layers = {"landuse": (lu, 255), "cities": (cities, -1), "slope": (slope, -9999), "elevation": (elev, None),
              "red_line": (mask, 0)}
    for name, (arr, nod) in layers.items():
        _write(d / f"{name}.tif", arr, nodata=nod)
        whole = read_layer(name, d / f"{name}.tif")
        win = read_layer_windowed(name, d / f"{name}.tif")
        assert whole.dtype == win.dtype and whole.shape == win.shape
        np.testing.assert_array_equal(whole, win, err_msg=name)


def _message(fn, *args) -> str:
    with pytest.raises(LanduseError) as exc:
        fn(*args)
    return str(exc.value)


@pytest.mark.parametrize("case", ["fraction", "unknown", "negative", "no_id", "slope", "mask_tag", "no_data"])
def test_windowed_read_errors_are_the_whole_reads(tmp_path, monkeypatch, case) -> None:
    """A bad value in one strip, or a check of the whole layer (a mask's tag in one strip and inside values in
    another), gives read_layer's message with the whole layer's counts."""
    monkeypatch.setattr(lio, "STRIP_CELLS", 64)
    h, w = 40, 20
    name, nod = {"fraction": ("landuse", 255), "unknown": ("landuse", 255), "negative": ("cities", None),
                 "no_id": ("cities", 0), "slope": ("slope", None), "mask_tag": ("red_line", 7),
                 "no_data": ("elevation", -1)}[case]
    if name == "landuse":
        arr = np.full((h, w), 4.0 if case == "fraction" else 4, np.float32 if case == "fraction" else np.uint8)
        arr[35, 3] = 4.5 if case == "fraction" else 77
        arr[36, 4] = 4.5 if case == "fraction" else 77
    elif name == "cities":
        arr = np.ones((h, w), np.int32) if case == "negative" else np.zeros((h, w), np.int32)
        if case == "negative":
            arr[30:32, 0] = -3
    elif name == "slope":
        arr = np.full((h, w), 5.0, np.float32)
        arr[39, :3] = 120.0
    elif name == "red_line":
        arr = np.zeros((h, w), np.uint8)
        arr[1, 1] = 7  # the tag in the first strip ...
        arr[38, 2] = 1  # ... an inside value in the last
    else:
        arr = np.full((h, w), -1.0, np.float32)
    p = tmp_path / f"{name}.tif"
    _write(p, arr, nodata=nod)
    whole = _message(read_layer, name, p)
    assert _message(read_layer_windowed, name, p) == whole
    assert any(ch.isdigit() for ch in whole)


def test_disk_landscape_is_the_memory_landscape(reduced, tmp_path, map_everything) -> None:
    _, configs = reduced
    from landuse.core.config import load_scenario

    sc = load_scenario(configs["bau"])
    mem = read_landscape(sc.layer_paths(), classes=sc.classes)
    with raster_store("disk", tmp_path):
        disk = read_landscape(sc.layer_paths(), classes=sc.classes)
    assert list(mem.data_vars) == list(disk.data_vars)
    for k in mem.data_vars:
        assert in_store(disk[k].values), k
        assert mem[k].dtype == disk[k].dtype
        np.testing.assert_array_equal(mem[k].values, disk[k].values, err_msg=k)


# --------------------------------------------------------------------------- a whole run


def test_run_with_disk_rasters_is_byte_identical(reduced, tmp_path, monkeypatch, map_everything) -> None:
    _, configs = reduced
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    base = ["run", str(configs["compact"]), "--runs", "2", "-q"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "mem")])
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the scratch files' folder (they are unlinked at once)
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "disk"), "--rasters", "disk"])
    assert res.exit_code == 0, res.output
    same_outputs_end_to_end(tmp_path / "mem", tmp_path / "disk")
    assert json.loads((tmp_path / "mem" / "manifest.json").read_text())["rasters"] == "memory"
    manifest = json.loads((tmp_path / "disk" / "manifest.json").read_text())
    assert manifest["rasters"] == "disk" and manifest["overrides"]["compute.rasters"] == "disk"
    assert manifest["scratch_mapped_bytes"] > 26 * 300 * 300  # at least the layers
    assert json.loads((tmp_path / "mem" / "manifest.json").read_text())["scratch_mapped_bytes"] == 0
    # the kept rasters were in scratch files
    r = run_scenario(configs["compact"], out=tmp_path / "api", runs=2, rasters="disk", write=False)
    assert all(in_store(da.values) for da in r.landuse.values())
    assert all(in_store(p.counts) for p in r.probability.values())
    assert in_store(r.urban_probability.values) and in_store(r.landscape["slope"].values)


def test_bad_rasters_setting_is_a_clear_error(reduced, tmp_path) -> None:
    _, configs = reduced
    res = runner.invoke(app, ["run", str(configs["bau"]), "--rasters", "ram", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--rasters" in res.output and "disk" in res.output, res.output
    cfg = configs["bau"].read_text() + "compute:\n  rasters: disk\n  scratch: no_such_folder\n"
    bad = configs["bau"].with_name("bad_scratch.yaml")
    bad.write_text(cfg)
    res = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "compute.scratch" in res.output and "no_such_folder" in res.output, res.output


def test_full_scratch_disk_is_a_clear_error_and_keeps_earlier_outputs(reduced, tmp_path, monkeypatch,
                                                                      map_everything) -> None:
    """No room in compute.scratch: one clear line and exit 2 (not a SIGBUS when a mapped page is written later);
    the earlier run's output folder is left as it was."""
    import errno

    _, configs = reduced
    base = ["run", str(configs["bau"]), "--runs", "1", "-q", "--out", str(tmp_path / "o")]
    assert runner.invoke(app, base).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir() if p.is_file()}

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.os, "posix_fallocate", full)
    res = runner.invoke(app, [*base, "--rasters", "disk"])
    assert res.exit_code == 2, res.output
    assert "compute.scratch" in res.output and "No space left" in res.output and "Traceback" not in res.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir() if p.is_file()} == before
