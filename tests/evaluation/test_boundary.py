"""Growth-boundary delineation (landuse.evaluation.boundary)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage import morphology

from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.errors import LanduseError
from landuse.core.landscape import new_landscape
from landuse.evaluation.boundary import (
    _dilate,
    _disk_half_widths,
    _erode,
    _fill_holes,
    delineate_ugb,
    ugb_from_config,
    ugb_geojson,
    ugb_summary,
    write_ugb,
)

S = default_scheme()
RES = S.code_of("residential")
FARM = S.codes_with_role("farmland")[0]
CELL = 30.0  # metres; 0.09 ha per cell


def _landscape(n: int = 60, *, red: bool = True):
    lu = np.full((n, n), FARM, dtype=np.uint8)
    lu[20:30, 20:30] = RES  # city core
    lu[50:52, 5:7] = RES  # a small village far from everything
    lu[0, 0] = S.nodata
    layers = {"landuse": lu}
    if red:
        rl = np.zeros((n, n), dtype=bool)
        rl[24:26, :] = True  # a corridor crossing the city core and the probability blob
        layers["red_line"] = rl
    return new_landscape(layers, crs="EPSG:32651", transform=Affine(CELL, 0, 400_000, 0, -CELL, 3_000_000))


def _probability(n: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    p = np.exp(-((yy - 25.0) ** 2 + (xx - 30.0) ** 2) / 150.0)
    p += 0.9 * np.exp(-((yy - 45.0) ** 2 + (xx - 45.0) ** 2) / 20.0)
    return np.clip(p, 0, 1).astype(np.float32)


KW = {"closing_radius_m": 90.0, "min_area_ha": 2.0}


def test_never_contains_red_line_cells() -> None:
    ds = _landscape()
    rl = ds["red_line"].values
    for thr in (0.1, 0.3, 0.6, 0.9):
        ugb = delineate_ugb(_probability(), ds, threshold=thr, **KW)
        assert not (ugb.values & rl).any()
    assert (S.is_role(ds["landuse"].values, *URBAN_TYPES) & rl).any()  # red line crosses urban land
    everything = delineate_ugb(np.ones((60, 60)), ds, threshold=0.01, closing_radius_m=0, min_area_ha=0)
    assert not (everything.values & rl).any()
    assert everything.values.sum() == ds["study_area"].values.sum() - rl.sum()


def test_contains_existing_urban_unless_told_otherwise() -> None:
    ds = _landscape()
    urban = S.is_role(ds["landuse"].values, *URBAN_TYPES) & ~ds["red_line"].values
    ugb = delineate_ugb(_probability(), ds, threshold=0.95, closing_radius_m=90.0, min_area_ha=50.0)
    assert ugb.values[urban].all()  # the 4-cell village survives the 50 ha minimum area
    bare = delineate_ugb(np.zeros((60, 60)), ds, threshold=0.5, include_urban=False, **KW)
    assert not bare.values.any()


def test_grows_with_lower_thresholds() -> None:
    ds = _landscape()
    areas = []
    previous = None
    for thr in (0.9, 0.7, 0.5, 0.3, 0.1):
        ugb = delineate_ugb(_probability(), ds, threshold=thr, **KW).values
        if previous is not None:
            assert (ugb | previous).sum() == ugb.sum()  # a superset of the stricter boundary
        previous = ugb
        areas.append(int(ugb.sum()))
    assert areas == sorted(areas) and areas[-1] > areas[0]


def test_fill_holes_and_min_area() -> None:
    ds = _landscape(red=False)
    yy, xx = np.mgrid[0:60, 0:60]
    ring = ((np.hypot(yy - 40, xx - 40) < 10) & (np.hypot(yy - 40, xx - 40) > 4)).astype(np.float32)
    ring[5:7, 50:52] = 1.0  # a 4-cell (0.36 ha) speck
    kw = {"closing_radius_m": 0.0, "min_area_ha": 1.0, "include_urban": False}
    filled = delineate_ugb(ring, ds, threshold=0.5, fill_holes=True, **kw).values
    holed = delineate_ugb(ring, ds, threshold=0.5, fill_holes=False, **kw).values
    assert filled[40, 40] and not holed[40, 40]
    assert not filled[5:7, 50:52].any()  # under the minimum area
    kept = delineate_ugb(ring, ds, threshold=0.5, closing_radius_m=0.0, min_area_ha=0.3, include_urban=False)
    assert kept.values[5:7, 50:52].all()


def test_closing_bridges_gaps_and_opening_removes_spurs() -> None:
    ds = _landscape(red=False)
    p = np.zeros((60, 60), dtype=np.float32)
    p[35:45, 10:20] = 1.0
    p[35:45, 22:32] = 1.0  # a 2-cell (60 m) gap
    kw = {"min_area_ha": 0.0, "include_urban": False}
    closed = delineate_ugb(p, ds, threshold=0.5, closing_radius_m=90.0, opening_radius_m=0.0, **kw).values
    assert closed[40, 20:22].all()
    raw = delineate_ugb(p, ds, threshold=0.5, closing_radius_m=0.0, **kw).values
    assert not raw[40, 20:22].any()
    spur = np.zeros((60, 60), dtype=np.float32)
    spur[35:45, 10:20] = 1.0
    spur[40, 20:30] = 1.0  # one-cell-wide spur
    opened = delineate_ugb(spur, ds, threshold=0.5, closing_radius_m=0.0, opening_radius_m=60.0, **kw).values
    assert not opened[40, 25] and opened[40, 15]


def test_bad_parameters_and_shape() -> None:
    ds = _landscape()
    with pytest.raises(LanduseError, match="threshold"):
        delineate_ugb(_probability(), ds, threshold=0.0, **KW)
    with pytest.raises(LanduseError, match="shape"):
        delineate_ugb(np.zeros((5, 5)), ds, threshold=0.5, **KW)


def test_from_config_uses_evaluation_ugb() -> None:
    ds = _landscape()
    sc = scenario_from_dict({"name": "u", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
                             "evaluation": {"ugb": {"threshold": 0.3, "closing_radius_m": 60,
                                                    "min_area_ha": 1, "opening_radius_m": 30}}})
    ugb = ugb_from_config(_probability(), ds, sc)
    assert ugb.attrs["threshold"] == 0.3 and ugb.attrs["opening_radius_m"] == 30.0
    direct = delineate_ugb(_probability(), ds, threshold=0.3, closing_radius_m=60, min_area_ha=1,
                           opening_radius_m=30)
    np.testing.assert_array_equal(ugb.values, direct.values)


def test_write_ugb_geotiff_and_geojson(tmp_path) -> None:
    ds = _landscape()
    ugb = delineate_ugb(_probability(), ds, threshold=0.4, **KW)
    tif, gj = write_ugb(ugb, tmp_path, tags={"seed": 7})
    with rasterio.open(tif) as src:
        assert src.crs.to_epsg() == 32651
        assert src.transform == ds.rio.transform()
        np.testing.assert_array_equal(src.read(1), ugb.values.astype(np.uint8))
        assert src.tags()["seed"] == "7"
    data = json.loads(gj.read_text())
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32651"
    total = sum(f["properties"]["area_ha"] for f in data["features"])
    assert total == pytest.approx(ugb.values.sum() * 0.09)
    xs = [pt[0] for f in data["features"] for pt in f["geometry"]["coordinates"][0]]
    assert 400_000 <= min(xs) and max(xs) <= 400_000 + 60 * CELL  # raster CRS, not degrees
    assert not list(tmp_path.glob(".*part*"))
    assert ugb_geojson(ugb)["features"]


def test_summary() -> None:
    ds = _landscape()
    ugb = delineate_ugb(_probability(), ds, threshold=0.4, **KW)
    s = ugb_summary(ugb, ds)
    assert s["area_ha"] == pytest.approx(ugb.values.sum() * 0.09)
    assert s["share_of_region"] == pytest.approx(ugb.values.sum() / ds["study_area"].values.sum())
    assert s["red_line_cells_inside"] == 0
    assert 0 < s["urban_inside_share"] < 1  # urban cells under the red line are outside
    assert s["parameters"]["threshold"] == 0.4


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), density=st.floats(0.1, 0.9))
def test_fill_holes_matches_scipy(seed: int, density: float) -> None:
    rng = np.random.default_rng(seed)
    m = rng.random(tuple(rng.integers(1, 20, size=2))) < density
    np.testing.assert_array_equal(_fill_holes(m), ndimage.binary_fill_holes(m))


# --------------------------------------------------------------------------- disk morphology kernel


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    density=st.floats(0.0, 1.0),
    radius=st.sampled_from([1.0, 1.2, 1.5, 2.0, 2.2361, 2.5, 3.0, 4.7, 6.0, 10.0, 10.5]),
)
def test_disk_dilation_and_erosion_equal_the_distance_map_ones(seed: int, density: float, radius: float) -> None:
    """The O(rows*cols) kernel against skimage's distance-map thresholds (the slow twin), cell for cell."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 30, size=2))
    mask = rng.random(shape) < density
    sp = (1.0, 1.0)
    # skimage's distance map has nothing to measure from on an empty mask (dilation) or a full one (erosion) and
    # answers the opposite of the disk operation there; the kernel answers the operation's own result
    want_dilated = morphology.isotropic_dilation(mask, radius, spacing=sp) if mask.any() else mask
    want_eroded = morphology.isotropic_erosion(mask, radius, spacing=sp) if not mask.all() else mask
    np.testing.assert_array_equal(_dilate(mask, radius, sp), want_dilated)
    np.testing.assert_array_equal(_erode(mask, radius, sp), want_eroded)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    density=st.floats(0.0, 1.0),
    radius=st.sampled_from([1.0, 1.5, 2.2361, 3.0, 6.0, 10.5]),
    spacing=st.sampled_from([(1.0, 1.0), (1.0, 0.6), (0.8, 1.0)]),
    strip_rows=st.integers(1, 12),
)
def test_disk_operations_strip_by_strip_equal_the_whole_raster(seed, density, radius, spacing, strip_rows) -> None:
    """Each strip reads a halo of the disk's reach: the same cells as one pass over the whole raster."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 40, size=2))
    mask = rng.random(shape) < density
    for op in (_dilate, _erode):
        whole = op(mask, radius, spacing, shape[0])
        np.testing.assert_array_equal(op(mask, radius, spacing, strip_rows), whole)
        if spacing != (1.0, 1.0) and 0 < mask.sum() < mask.size:
            sk = morphology.isotropic_dilation if op is _dilate else morphology.isotropic_erosion
            np.testing.assert_array_equal(whole, sk(mask, radius, spacing=spacing))


def test_empty_and_full_windows() -> None:
    """A strip far from every mask cell dilates to nothing; a strip inside the mask erodes to itself."""
    mask = np.zeros((40, 9), dtype=bool)
    mask[:4] = True
    np.testing.assert_array_equal(_dilate(mask, 2.0, (1.0, 1.0), 5)[10:], False)
    np.testing.assert_array_equal(_erode(~mask, 2.0, (1.0, 1.0), 5)[10:], True)
    for sp in ((1.0, 1.0), (1.0, 0.5)):
        assert not _dilate(np.zeros((6, 6), bool), 2.0, sp).any()
        assert _erode(np.ones((6, 6), bool), 2.0, sp).all()


def test_disk_half_widths_follow_the_sqrt_threshold() -> None:
    for radius in (1.0, 1.5, 2.0, 3.3, 7.0, 10.0, 12.25):
        hw = _disk_half_widths(radius)
        assert hw.size == int(radius) + 1
        for g, h in enumerate(hw):
            assert math.sqrt(h * h + g * g) <= radius < math.sqrt((h + 1) ** 2 + g * g)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), close_m=st.sampled_from([0.0, 30.0, 45.0, 90.0, 150.0]),
       open_m=st.sampled_from([None, 0.0, 60.0]))
def test_delineation_equals_the_skimage_pipeline(seed: int, close_m: float, open_m: float | None) -> None:
    rng = np.random.default_rng(seed)
    ds = _landscape(40)
    p = ndimage.uniform_filter(rng.random((40, 40)), 5)
    got = delineate_ugb(p, ds, threshold=0.5, closing_radius_m=close_m, opening_radius_m=open_m,
                        min_area_ha=0.5).values
    study = ds["study_area"].values.astype(bool)
    urban = S.is_role(ds["landuse"].values, "urban") & study
    mask = ((p >= 0.5) & study) | urban
    r_close, r_open = close_m / CELL, (close_m if open_m is None else open_m) / CELL
    sp = (1.0, 1.0)

    def dilate(m, r):  # skimage's, except on an empty mask (no distance to measure: nothing is dilated)
        return morphology.isotropic_dilation(m, r, spacing=sp) if m.any() else m

    def erode(m, r):  # skimage's, except on a full mask (no background to measure from: every cell stays)
        return morphology.isotropic_erosion(m, r, spacing=sp) if not m.all() else m

    if r_close >= 1.0:
        mask = erode(dilate(mask, r_close), r_close)
    if r_open >= 1.0:
        mask = dilate(erode(mask, r_open), r_open)
    mask = _fill_holes(mask)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= math.ceil(0.5 / 0.09 - 1e-9)
    keep[0] = False
    mask = (keep[labels] | urban) & study & ~ds["red_line"].values.astype(bool)
    np.testing.assert_array_equal(got, mask)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), close_m=st.sampled_from([0.0, 30.0, 90.0, 200.0]),
       open_m=st.sampled_from([None, 0.0, 60.0]), min_ha=st.sampled_from([0.0, 0.5, 3.0]),
       holes=st.booleans(), strip_rows=st.integers(1, 45))
def test_delineation_is_the_same_for_any_strip_height(seed, close_m, open_m, min_ha, holes, strip_rows) -> None:
    rng = np.random.default_rng(seed)
    ds = _landscape(40)
    p = ndimage.uniform_filter(rng.random((40, 40)), 5).astype(np.float32)
    kw = dict(threshold=0.5, closing_radius_m=close_m, opening_radius_m=open_m, min_area_ha=min_ha, fill_holes=holes)
    whole = delineate_ugb(p, ds, strip_rows=40, **kw)
    got = delineate_ugb(p, ds, strip_rows=strip_rows, **kw)
    np.testing.assert_array_equal(got.values, whole.values)
    assert ugb_summary(got, ds) == ugb_summary(whole, ds)


def test_a_closing_that_covers_the_whole_grid_keeps_it() -> None:
    """The dilation of a closing may cover every cell: its erosion keeps every cell (skimage's distance map has no
    background there and used to erase the whole boundary down to the urban cells)."""
    ds = _landscape(40, red=False)
    p = np.zeros((40, 40))
    p[5:35, 5:35] = 0.9
    small = delineate_ugb(p, ds, threshold=0.5, closing_radius_m=300.0, opening_radius_m=0.0, min_area_ha=0.0)
    huge = delineate_ugb(p, ds, threshold=0.5, closing_radius_m=3000.0, opening_radius_m=0.0, min_area_ha=0.0)
    study = ds["study_area"].values.astype(bool)
    assert small.values[5:35, 5:35].all()
    np.testing.assert_array_equal(huge.values, study)  # the closing of one blob by a disk wider than the grid


def test_float32_probability_is_compared_in_float64() -> None:
    """float32(0.7) is just under 0.7: out of a 0.7 boundary, as with a float64 copy of the grid."""
    ds = _landscape(20, red=False)
    p = np.zeros((20, 20), dtype=np.float32)
    p[2:6, 2:6] = np.float32(0.7)
    p[10:14, 10:14] = np.float32(0.75)
    got = delineate_ugb(p, ds, threshold=0.7, closing_radius_m=0.0, min_area_ha=0.0).values
    assert not got[2:6, 2:6].any() and got[10:14, 10:14].all()
    np.testing.assert_array_equal(
        got, delineate_ugb(p.astype(np.float64), ds, threshold=0.7, closing_radius_m=0.0, min_area_ha=0.0).values)
