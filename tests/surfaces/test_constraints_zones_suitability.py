"""Shared building blocks: constraint masks and factor, allocation zones, weighted-linear suitability."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from conftest import CRS, tiny_landuse
from hypothesis import given, settings
from hypothesis import strategies as st

from landuse.allocation.zones import zone_grid
from landuse.core.classes import default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.errors import ConfigError
from landuse.core.landscape import new_landscape
from landuse.surfaces.constraints import (
    constraint_factor,
    convertible,
    land_area_mask,
    never_convert,
    open_space_mask,
    soft_greenbelt_cells,
    with_soft_greenbelt,
)
from landuse.surfaces.suitability import compute_suitability, distance_score, distance_to

T = Affine(100.0, 0, 0, 0, -100.0, 600.0)
S = default_scheme()


def _scenario(**policy):
    return scenario_from_dict({"name": "t", "layers": {"landuse": "x.tif"}, "periods": [2020, 2025],
                               "policy": policy})


def _ds(**extra):
    lu = tiny_landuse()
    layers = {"landuse": lu}
    layers.update(extra)
    return new_landscape(layers, crs=CRS, transform=T)


def test_never_convert_follows_policy_switches() -> None:
    red = np.zeros((6, 8), bool)
    red[4, 4] = True
    pf = np.zeros((6, 8), bool)
    pf[5, 1] = True
    gb = np.zeros((6, 8), bool)
    gb[:, 0] = True
    ds = _ds(red_line=red, permanent_farmland=pf, greenbelt=gb)
    lu = tiny_landuse()
    water = S.is_role(lu, "water")
    base = never_convert(ds, _scenario())
    assert base[4, 4] and base[5, 1] and base[5, 7]  # red line, permanent farmland, nodata
    assert (base[water]).all()
    assert not base[0, 0]  # soft/none greenbelt does not forbid
    assert not never_convert(ds, _scenario(red_line=False))[4, 4]
    assert not never_convert(ds, _scenario(permanent_farmland=False))[5, 1]
    assert never_convert(ds, _scenario(greenbelt={"mode": "hard"}))[:, 0].all()


def test_constraint_factor_soft_greenbelt_and_boundary() -> None:
    gb = np.zeros((6, 8), bool)
    gb[0, 0:2] = True
    ugb = np.ones((6, 8), bool)
    ugb[0, 1] = False
    ugb[5, 5] = False
    ds = _ds(greenbelt=gb, growth_boundary=ugb)
    c = constraint_factor(ds, _scenario(greenbelt={"mode": "soft", "strength": 0.75},
                                        growth_boundary={"mode": "soft", "outside_factor": 0.2}))
    assert c.dtype == np.float32
    assert c[0, 0] == pytest.approx(0.25)
    assert c[0, 1] == pytest.approx(0.25 * 0.2)
    assert c[5, 5] == pytest.approx(0.2)
    assert c[4, 4] == 1.0
    assert c[2, 7] == 0.0  # water
    hard = constraint_factor(ds, _scenario(growth_boundary={"mode": "hard"}))
    assert hard[5, 5] == 0.0 and hard[0, 1] == 0.0


def test_convertible_honours_conversion_matrix() -> None:
    ds = _ds()
    sc = scenario_from_dict({"name": "t", "layers": {"landuse": "x.tif"}, "periods": [2020, 2025],
                             "growth": {"conversion": {"residential": ["farmland"], "industrial": ["farmland", "forest"],
                                                       "commercial": ["residential"]}}})
    lu = tiny_landuse()
    res = convertible(ds, sc, "residential")
    assert (res == (S.is_role(lu, "farmland") & ~never_convert(ds, sc))).all()
    assert convertible(ds, sc, "industrial")[0, 4]  # forest allowed for industrial
    com = convertible(ds, sc, "commercial")
    assert com[1, 1] and not com[0, 0]  # residential may become commercial, farmland may not


def test_open_space_and_land_area() -> None:
    ds = _ds()
    lu = tiny_landuse()
    os_ = open_space_mask(lu, S)
    assert os_.sum() == S.is_role(lu, "open_space").sum()
    assert open_space_mask(lu, S, include_water=True).sum() == os_.sum() + S.is_role(lu, "water").sum()
    land = land_area_mask(ds, S)
    assert land.sum() == 47 - S.is_role(lu, "water").sum()


def test_zone_grid_crosses_cities_with_blocks() -> None:
    lu = np.full((5, 7), 4, np.uint8)
    lu[4, 6] = 255
    cities = np.zeros((5, 7), np.int32)
    cities[:, :3] = 1
    cities[:, 3:] = 2
    ds = new_landscape({"landuse": lu, "cities": cities}, crs=CRS, transform=T)
    zg = zone_grid(ds, block_size_m=200)  # 2-cell blocks: 3 block rows x 4 block columns
    assert zg.block_cells == 2
    assert zg.zones[4, 6] == 0
    # block column 1 (cells 2-3) is split between city 1 and 2
    assert zg.zones[0, 2] != zg.zones[0, 3]
    t = zg.table
    assert t.cells.sum() == 34
    assert (t.zone.to_numpy() == np.arange(1, len(t) + 1)).all()
    for _, r in t.iterrows():
        cells = zg.zones == r.zone
        assert cells.sum() == r.cells
        assert (cities[cells] == r.city).all()
    # deterministic
    assert (zone_grid(ds, block_size_m=200).zones == zg.zones).all()


def test_distance_and_score() -> None:
    m = np.zeros((1, 5), bool)
    m[0, 0] = True
    d = distance_to(m, cell=100.0)
    np.testing.assert_allclose(d[0], [0, 100, 200, 300, 400])
    np.testing.assert_allclose(distance_score(d, scale_m=100.0)[0], [1, 0.5, 0.25, 0.125, 0.0625], rtol=1e-6)
    assert np.isinf(distance_to(np.zeros((2, 2), bool), cell=1.0)).all()


def test_linear_suitability_prefers_cells_near_urban_and_roads() -> None:
    roads = np.zeros((6, 8), bool)
    roads[:, 6] = True
    ds = _ds(roads=roads)
    s = compute_suitability(ds, _scenario())
    assert s.dims == ("type", "y", "x") and s.dtype == np.float32
    assert float(s.min()) >= 0 and float(s.max()) <= 1
    res = s.sel(type="residential").values
    assert res[2, 4] > res[5, 0]  # next to the urban core beats a far corner
    assert res[5, 7] == 0.0  # outside the study area
    assert "slope" in s.attrs["dropped_drivers"]  # default weights, no slope layer given


def test_unknown_driver_is_a_config_error_and_missing_layers_are_dropped() -> None:
    with pytest.raises(ConfigError, match=r"growth.suitability.weights.dist_staions: unknown driver"):
        scenario_from_dict({"name": "t", "layers": {"landuse": "x.tif"}, "periods": [2020, 2025],
                            "growth": {"suitability": {"weights": {"dist_staions": 1}}}})
    sc = scenario_from_dict({"name": "t", "layers": {"landuse": "x.tif"}, "periods": [2020, 2025],
                             "growth": {"suitability": {"weights": {"dist_urban": 1, "dist_stations": 1},
                                                        "by_type": {}}}})
    s = compute_suitability(_ds(), sc)
    assert s.attrs["dropped_drivers"] == ["dist_stations"]
    # only dist_urban remains: every type gets the same, distance-only score
    np.testing.assert_array_equal(s.values[0], s.values[1])


def test_config_round_trip_keeps_suitability() -> None:
    roads = np.zeros((6, 8), bool)
    roads[:, 6] = True
    ds = _ds(roads=roads)
    sc = _scenario()
    again = scenario_from_dict(sc.to_dict())
    np.testing.assert_array_equal(compute_suitability(ds, sc).values, compute_suitability(ds, again).values)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 20), cols=st.integers(1, 20),
       strip_cells=st.integers(1, 80), greenbelt=st.sampled_from(["none", "soft", "hard"]),
       boundary=st.sampled_from(["none", "soft", "hard"]), switches=st.booleans())
def test_never_convert_and_factor_are_the_whole_raster_formulas_for_any_strip_height(
        seed, rows, cols, strip_cells, greenbelt, boundary, switches) -> None:
    """Both are filled strip by strip (``landuse.core.strips.STRIP_CELLS`` cells a strip): every cell is the whole-raster
    formula's, so no red-line, permanent-farmland or protected cell escapes at a strip edge."""
    import landuse.io.rasters

    rng = np.random.default_rng(seed)
    codes = np.array([c.code for c in S], dtype=np.uint8)
    lu = rng.choice(codes, size=(rows, cols))
    lu[rng.random((rows, cols)) < 0.1] = S.nodata
    layers = {name: rng.random((rows, cols)) < 0.2
              for name in ("red_line", "permanent_farmland", "protected_open_space", "greenbelt", "growth_boundary")}
    ds = new_landscape({"landuse": lu, **layers}, crs=CRS, transform=Affine(30, 0, 0, 0, -30, 30 * rows))
    sc = _scenario(red_line=switches, permanent_farmland=True, protected_open_space=not switches,
                   greenbelt={"mode": greenbelt, "strength": 0.4},
                   growth_boundary={"mode": boundary, "outside_factor": 0.3})
    inside = np.asarray(ds["study_area"].values)
    never = ~inside | S.is_role(lu, "water") | layers["permanent_farmland"]
    never |= layers["red_line"] if switches else layers["protected_open_space"]
    if greenbelt == "hard":
        never |= layers["greenbelt"]
    if boundary == "hard":
        never |= ~layers["growth_boundary"]
    factor = np.ones((rows, cols), np.float32)
    if greenbelt == "soft":
        factor[layers["greenbelt"]] *= np.float32(1 - 0.4)
    if boundary == "soft":
        factor[~layers["growth_boundary"]] *= np.float32(0.3)
    factor[never] = 0.0
    old = landuse.core.strips.STRIP_CELLS
    landuse.core.strips.STRIP_CELLS = strip_cells
    try:
        np.testing.assert_array_equal(never_convert(ds, sc), never)
        got = constraint_factor(ds, sc)
    finally:
        landuse.core.strips.STRIP_CELLS = old
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), factor.view(np.uint32))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), strength=st.sampled_from([0.0, 0.1, 0.25, 0.4, 0.6, 0.9999, 1.0]),
       outside=st.sampled_from([0.0, 0.2, 0.3, 1.0]), boundary=st.sampled_from(["none", "soft", "hard"]))
def test_soft_greenbelt_put_back_is_the_constraint_factor(seed, strength, outside, boundary) -> None:
    """The factor without the soft greenbelt, times ``1 - strength`` on its cells, is constraint_factor bit for bit
    (what the calibration of the greenbelt's leakage relies on)."""
    rng = np.random.default_rng(seed)
    codes = np.array([c.code for c in S], dtype=np.uint8)
    lu = rng.choice(codes, size=(9, 11))
    layers = {name: rng.random((9, 11)) < 0.3 for name in ("red_line", "greenbelt", "growth_boundary")}
    ds = new_landscape({"landuse": lu, **layers}, crs=CRS, transform=Affine(30, 0, 0, 0, -30, 270))
    sc = _scenario(greenbelt={"mode": "soft", "strength": strength},
                   growth_boundary={"mode": boundary, "outside_factor": outside})
    free = constraint_factor(ds, sc, soft_greenbelt=False)
    none = _scenario(greenbelt={"mode": "none"}, growth_boundary={"mode": boundary, "outside_factor": outside})
    np.testing.assert_array_equal(free.view(np.uint32), constraint_factor(ds, none).view(np.uint32))
    cells = soft_greenbelt_cells(ds, sc, free)
    assert cells is not None and not (cells & (free == 0)).any()
    got = with_soft_greenbelt(free, cells, 1.0 - strength)
    np.testing.assert_array_equal(got.view(np.uint32), constraint_factor(ds, sc).view(np.uint32))
    assert soft_greenbelt_cells(ds, none, free) is None and with_soft_greenbelt(free, None, 0.5) is free
