"""SLEUTH compatibility: scenario parser, grey-value reader, each growth rule, kernel twins, modes."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from sleuth_data import DEMO  # the SLEUTH demo200 data; a missing copy fails, never skips
from sleuth_fixtures import gif, tiny_project
from typer.testing import CliRunner

from landuse.core.errors import SleuthFormatError
from landuse.growth.random import stream_key, uniform_numpy
from landuse.io.sleuth_files import parse_scenario_text, read_grey, read_scenario, year_of
from landuse.sleuth import inputs as SI
from landuse.sleuth import kernels as K
from landuse.sleuth import logs as SL
from landuse.sleuth import model as S

HYP = settings(max_examples=25, deadline=None)

# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    "name", ["scenario.demo200_test", "scenario.demo200_calibrate", "scenario.demo200_predict", "scenario.demo200_land_test"]
)
def test_parser_reads_shipped_scenarios(name):
    sc = read_scenario(DEMO / "scenarios" / name)
    assert [year_of(u) for u in sc.urban_data] == [1930, 1950, 1970, 1990]
    assert [year_of(r) for r in sc.road_data] == [1930, 1950, 1970, 1990]
    assert sc.slope_data == "demo200.slope.gif" and sc.excluded_data == "demo200.excluded.gif"
    assert sc.random_seed == 1 and sc.prediction_start_date == 1990 and sc.prediction_stop_date == 2010
    assert len(sc.landuse_classes) == 8 and sc.landuse_classes[1][2] == "URB"
    if name == "scenario.demo200_calibrate":
        assert sc.coefficient_range("DIFFUSION") == [0, 100]
        assert sc.critical_slope == 15.0 and sc.bust == 0.09 and sc.monte_carlo_iterations == 2
        assert sc.write_avg_file is False and len(sc.landuse_data) == 2
    if name == "scenario.demo200_predict":
        assert sc.best_fit == {"DIFFUSION": 2, "BREED": 5, "SPREAD": 20, "SLOPE": 51, "ROAD": 5}


def test_parser_reads_reference_scenario():
    sc = read_scenario(DEMO / "reference" / "test_50_50_50_50_50" / "scenario")
    assert {c: sc.calibration[c]["START"] for c in sc.calibration} == dict.fromkeys(sc.calibration, 50)
    assert sc.monte_carlo_iterations == 100 and sc.critical_slope == 21.0 and sc.boom == 1.01


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("RANDOM_SEED=1\nDIFUSION=3\n", "x.scen:2: unknown SLEUTH scenario key 'DIFUSION'"),
        ("MONTE_CARLO_ITERATIONS=ten\n", "x.scen:1: MONTE_CARLO_ITERATIONS must be an integer"),
        ("# c\nCRITICAL_SLOPE=steep\n", "x.scen:2: CRITICAL_SLOPE must be a number"),
        ("ECHO(YES/NO)=maybe\n", "x.scen:1: ECHO(YES/NO) must be YES or NO"),
        ("URBAN_DATA\n", "x.scen:1: expected KEY=value"),
        ("LANDUSE_CLASS= 1, Urban\n", "x.scen:1: LANDUSE_CLASS must be"),
        ("SEED_COLOR= 300, 2, 1\n", "x.scen:1: SEED_COLOR colour"),
        ("GROWTH_TYPE_PRINT_WINDOW=0,0,0\n", "x.scen:1: GROWTH_TYPE_PRINT_WINDOW must be six integers"),
        ("URBAN_DATA=\n", "x.scen:1: URBAN_DATA needs a file name"),
    ],
)
def test_parser_rejects_malformed_lines(text, fragment):
    with pytest.raises(SleuthFormatError) as err:
        parse_scenario_text(text, source="x.scen")
    assert fragment in str(err.value)


def test_parser_suggests_close_key_and_checks_ranges():
    with pytest.raises(SleuthFormatError, match="did you mean CALIBRATION_BREED_START"):
        parse_scenario_text("CALIBRATION_BRED_START=1\n", source="s")
    sc = parse_scenario_text("CALIBRATION_SPREAD_START=10\nCALIBRATION_SPREAD_STEP=0\nCALIBRATION_SPREAD_STOP=20\n")
    with pytest.raises(SleuthFormatError, match="CALIBRATION_SPREAD_STEP=0 .*line|CALIBRATION_SPREAD_STEP=0"):
        sc.coefficient_range("SPREAD")
    sc = parse_scenario_text("CALIBRATION_SLOPE_START=30\nCALIBRATION_SLOPE_STEP=5\nCALIBRATION_SLOPE_STOP=20\n")
    with pytest.raises(SleuthFormatError, match="below CALIBRATION_SLOPE_START"):
        sc.coefficient_range("SLOPE")
    sc = parse_scenario_text("CALIBRATION_ROAD_START= 0 # c\nCALIBRATION_ROAD_STEP= 25\nCALIBRATION_ROAD_STOP=60\n")
    assert sc.coefficient_range("ROAD") == [0, 25, 50]


# --------------------------------------------------------------------------- images


def test_read_grey_uses_palette_grey_values_not_indices(tmp_path):
    idx = np.array([[0, 1], [2, 1]])
    p = gif(tmp_path / "a.urban.1990.gif", idx, [(0, 0, 0), (200, 200, 200), (37, 37, 37)])
    np.testing.assert_array_equal(read_grey(p), [[0, 200], [37, 200]])
    bad = gif(tmp_path / "b.gif", idx, [(0, 0, 0), (200, 10, 200), (37, 37, 37)])
    with pytest.raises(SleuthFormatError, match="not a true grey-scale image: palette index 1"):
        read_grey(bad)


def test_demo_inputs_read_as_documented():
    sc = read_scenario(DEMO / "scenarios" / "scenario.demo200_test")
    inp = SI.load_inputs(sc, mode="test", input_dir=DEMO / "input")
    assert [int(u.sum()) for u in inp.urban] == [598, 861, 1821, 3881]
    assert inp.excluded_count == 4225 and int(inp.slope.max()) == 41
    assert set(np.unique(inp.roads)) == {0, 100} and inp.road_pixels == [375, 665, 945, 1104]
    pred = SI.load_inputs(sc, mode="predict", input_dir=DEMO / "input")
    assert pred.urban_years == [1990] and pred.road_years == [1990]


def test_normalize_roads_scales_to_largest_value_of_all_years():
    a = np.array([[0, 10], [20, 40]])
    b = np.array([[0, 80], [80, 0]])
    out = SI.normalize_roads([a, b])
    np.testing.assert_array_equal(out[0], [[0, 12], [25, 50]])
    np.testing.assert_array_equal(out[1], [[0, 100], [100, 0]])


# --------------------------------------------------------------------------- tiny grids


def _inputs(urban: np.ndarray, *, slope=None, excluded=None, roads=None, years=(2000, 2010)) -> SI.SleuthInputs:
    shape = urban.shape
    road = np.zeros(shape, dtype=np.int32) if roads is None else roads.astype(np.int32)
    return SI.SleuthInputs(
        urban=np.stack([urban.astype(np.uint8)] * len(years)),
        urban_years=list(years),
        roads=road[None],
        road_years=[years[0]],
        road_pixels=[int((road > 0).sum())],
        slope=np.zeros(shape, np.uint8) if slope is None else slope.astype(np.uint8),
        excluded=np.zeros(shape, np.int32) if excluded is None else excluded.astype(np.int32),
    )


NO_SELF_MOD = S.SelfModification(critical_low=-1.0, critical_high=1e9, critical_slope=21.0)


def _run(inputs, coeffs, *, years=10, runs=4, rules=S.ALL_RULES, consts=NO_SELF_MOD):
    y0 = inputs.urban_years[0]
    sim = S.simulate_sleuth(
        inputs, np.array([coeffs], float), start_year=y0, stop_year=y0 + years, record_years=[y0 + years],
        runs=runs, seed=3, constants=consts, rules=rules,
    )  # fmt: skip
    return sim.stats[0, :, 0, :]


def _blob(n=20):
    u = np.zeros((n, n), np.uint8)
    u[8:12, 8:12] = 1
    return u


def test_spread_coefficient_zero_grows_no_edges():
    st0 = _run(_inputs(_blob()), [1, 1, 0, 1, 1], rules=2)
    assert st0[:, K.S_OG].sum() == 0 and (st0[:, K.S_POP] == 16).all()
    st100 = _run(_inputs(_blob()), [1, 1, 100, 1, 1], rules=2)
    assert (st100[:, K.S_OG] > 0).all()


def test_excluded_100_never_urbanises_but_99_percent_barely_does():
    urban = _blob()
    excl = np.full(urban.shape, 100)
    excl[urban > 0] = 0
    st100 = _run(_inputs(urban, excluded=excl), [100, 100, 100, 1, 100], years=20)
    assert (st100[:, K.S_POP] == 16).all() and st100[:, K.S_GRWPIX].sum() == 0
    st0 = _run(_inputs(urban), [100, 100, 100, 1, 100], years=3)
    assert (st0[:, K.S_POP] > 16).all()


def test_slope_weight_formula_at_and_beyond_critical_slope():
    w = S.slope_weights(slope_resistance=60.0, critical_slope=20.0)
    assert w[0] == 0.0 and w[20] == 1.0 and w[21] == 1.0 and w[255] == 1.0
    assert w[10] == pytest.approx(1 - 0.5 ** (60 / 50), rel=1e-6)
    assert np.all(np.diff(w[:21]) > 0)
    steep = np.full((20, 20), 21)  # NO_SELF_MOD.critical_slope
    st_ = _run(_inputs(_blob(), slope=steep), [100, 100, 100, 1, 100], years=10)
    assert st_[:, K.S_GRWPIX].sum() == 0


def test_spontaneous_growth_and_spreading_centres_only_with_phase_1():
    urban = np.zeros((40, 40), np.uint8)
    urban[20, 20] = 1
    st_ = _run(_inputs(urban), [100, 100, 1, 1, 1], rules=1, years=1, runs=8)
    assert (st_[:, K.S_SNG] > 0).all() and st_[:, K.S_SDG].sum() > 0
    assert st_[:, K.S_OG].sum() == 0 and st_[:, K.S_RT].sum() == 0
    st_b0 = _run(_inputs(urban), [100, 1, 1, 1, 1], rules=1, years=1, runs=8)
    # breed 1: a spontaneous cell becomes a centre only when int(u * 101) < 1 (1 in 101)
    assert st_b0[:, K.S_SDG].sum() * 10 < st_[:, K.S_SDG].sum()


def test_road_growth_needs_a_road_within_the_search_radius():
    urban = np.zeros((40, 40), np.uint8)
    urban[5:8, 5:8] = 1
    far = np.zeros((40, 40), np.int32)
    far[35, :] = 100  # 27+ rows from the growth
    near = np.zeros((40, 40), np.int32)
    near[10, :] = 100
    coeffs = [50, 100, 100, 1, 1]  # rg 1 -> search max(8, 40, 40) = 40 spiral cells (rings 1-3)
    # edge growth only as road-trip starts (rules 2 | 4): growth stays within rows 3..9
    assert _run(_inputs(urban, roads=far), coeffs, years=1, runs=8, rules=6)[:, K.S_RT].sum() == 0
    assert _run(_inputs(urban, roads=near), coeffs, years=1, runs=8, rules=6)[:, K.S_RT].sum() > 0
    # road gravity 100 -> rg = int(80 / 16) = 5 -> 120 spiral cells (rings 1-5): row 12 is found
    # from growth at rows 4..8 (3 rings would not), row 35 still is not
    mid = np.zeros((40, 40), np.int32)
    mid[12, :] = 100
    assert _run(_inputs(urban, roads=mid), coeffs, years=1, runs=8, rules=6)[:, K.S_RT].sum() == 0
    assert _run(_inputs(urban, roads=mid), [50, 100, 100, 1, 100], years=1, runs=8, rules=6)[:, K.S_RT].sum() > 0
    assert _run(_inputs(urban, roads=far), [50, 100, 100, 1, 100], years=1, runs=8, rules=6)[:, K.S_RT].sum() == 0


def test_road_walk_length_follows_road_value_and_diffusion():
    roads = np.zeros((5, 40), np.int64)
    roads[2, :] = 100
    ctr = np.zeros(3, np.int64)
    key = np.uint64(stream_key(1, 0, 0, 0, 0))
    ok, i, j = K._road_walk(2, 20, roads, _road_nb(roads), 7.0, key, ctr)
    assert ok and i == 2 and ctr[0] == 8  # 8 steps (> int(100 // 100 * 7)), one direction draw per step
    roads[2, :] = 60  # value < 100: run_value 0, one step is enough
    ctr[:] = 0
    ok, i, j = K._road_walk(2, 20, roads, _road_nb(roads), 7.0, key, ctr)
    assert ok and abs(j - 20) == 1 and ctr[0] == 1
    lone = np.zeros((5, 5), np.int64)
    lone[2, 2] = 100
    assert not K._road_walk(2, 2, lone, _road_nb(lone), 7.0, key, np.zeros(3, np.int64))[0]


def _road_nb(roads: np.ndarray) -> np.ndarray:
    return K._road_neighbours(np.ascontiguousarray(roads)[None])[0]


RING = [(-1, -1), (0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0)]


@HYP
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 12), st.floats(0.0, 1.0))
def test_road_neighbours_match_twin(seed, h, w, p):
    roads = (np.random.default_rng(seed).random((h, w)) < p).astype(np.int32) * 100
    pad = np.pad(roads != 0, 1)
    expect = np.zeros((h, w), np.int64)
    for k, (di, dj) in enumerate(RING):
        expect |= pad[1 + di : 1 + di + h, 1 + dj : 1 + dj + w].astype(np.int64) << k
    np.testing.assert_array_equal(_road_nb(roads), expect)


@HYP
@given(st.integers(0, 10_000), st.integers(2, 12), st.integers(2, 12), st.lists(st.integers(0, 200), max_size=6))
def test_road_search_memo_gives_the_plain_search(seed, h, w, lengths):
    rng = np.random.default_rng(seed)
    roads = (rng.random((h, w)) < 0.05).astype(np.int32)
    spiral = K._spiral_offsets(200, max(h, w))
    memo = np.full(h * w, -1, np.int32)
    none = np.zeros(0, np.int32)
    for n_search in lengths:
        for gi, gj in [(int(rng.integers(0, h)), int(rng.integers(0, w))), (0, w + 2)]:  # the second: off the image
            expect = next((s for s in range(n_search) if 0 <= gi + spiral[s, 0] < h and 0 <= gj + spiral[s, 1] < w
                           and roads[gi + spiral[s, 0], gj + spiral[s, 1]]), -1)  # fmt: skip
            assert K._first_road(gi, gj, n_search, roads, spiral, memo) == expect
            assert K._first_road(gi, gj, n_search, roads, spiral, none) == expect


def frontier_twin(z: np.ndarray) -> np.ndarray:
    """Flags of interior urban cells with 2..7 urban 8-neighbours, flat, padded to a multiple of 8."""
    u = (z != 0).astype(int)
    nb = ndimage.convolve(u, np.ones((3, 3), int), mode="constant") - u
    f = (u == 1) & (nb >= 2) & (nb < 8)
    f[0, :] = f[-1, :] = False
    f[:, 0] = f[:, -1] = False
    out = np.zeros(-(-z.size // 8) * 8, np.uint8)
    out[: z.size] = f.ravel()
    return out


@HYP
@given(st.integers(0, 10_000), st.integers(3, 14), st.integers(3, 14), st.floats(0.05, 0.95))
def test_frontier_flags_match_twin(seed, h, w, p):
    z = (np.random.default_rng(seed).random((h, w)) < p).astype(np.uint8) * 3
    np.testing.assert_array_equal(K._frontier_flags(z), frontier_twin(z))


@HYP
@given(st.integers(0, 10_000), st.integers(3, 14), st.integers(3, 14), st.floats(0.05, 0.95))
def test_cell_by_cell_state_matches_full_recount(seed, h, w, p):
    """Urbanising cells one at a time (``_add_cell``) keeps every statistic equal to a recount of the grid."""
    rng = np.random.default_rng(seed)
    target = rng.random((h, w)) < p
    slope = rng.integers(0, 40, (h, w)).astype(np.uint8)
    controls = (rng.random((3, h, w)) < 0.4).astype(np.uint8)
    track = np.array([True, False, True])
    z = np.zeros((h, w), np.uint8)
    nb = np.zeros((h, w), np.uint8)
    nb4 = np.zeros((h, w), np.uint8)
    fr = np.zeros(-(-h * w // 8) * 8, np.uint8)
    parent = np.zeros(h * w, np.int64)
    acc = np.zeros(K.N_ACC, np.int64)
    inter = np.zeros((3, 2), np.int64)
    cells = rng.permutation(np.flatnonzero(target))
    checkpoints = {len(cells) // 3, len(cells)}
    for n, cell in enumerate(cells, start=1):
        K._add_cell(cell // w, cell % w, 4, z, nb, nb4, fr, parent, acc, slope, controls, track, inter, True)
        if n not in checkpoints:
            continue
        got = np.zeros(K.N_STATS)
        K._record_pattern(got, acc)
        expect = np.zeros(K.N_STATS)
        K._pattern_stats(z, slope, expect, np.zeros(h * w, np.int64), np.zeros((h, w), np.uint8))
        np.testing.assert_array_equal(got, expect)
        np.testing.assert_array_equal(fr, frontier_twin(z))
        for g in (0, 2):
            union = int(controls[g].astype(bool).sum()) + inter[g, 1]
            lee = inter[g, 0] / union if union else 0.0
            assert lee == K._leesalee(z, controls[g])
        assert inter[1].sum() == 0  # untracked grid


def test_statistics_do_not_depend_on_how_many_years_are_recorded():
    """Recording every year (statistics kept cell by cell) or a few (recounted) gives the same records."""
    u = np.zeros((30, 30), np.uint8)
    u[10:16, 12:15] = 1
    u[20, 5] = 1
    roads = np.zeros((30, 30), np.int32)
    roads[14, :] = 100
    inp = _inputs(u, roads=roads, years=(2000, 2004, 2012))
    kw = dict(start_year=2000, stop_year=2012, runs=5, seed=2, constants=S.SelfModification())
    coeffs = np.array([[40, 30, 60, 20, 50]], float)
    every = list(range(2001, 2013))
    assert len(every) > K.FULL_STATS_YEARS >= 2
    a = S.simulate_sleuth(inp, coeffs, record_years=every, **kw)
    b = S.simulate_sleuth(inp, coeffs, record_years=[2004, 2012], **kw)
    np.testing.assert_array_equal(a.stats[:, :, [3, 11]], b.stats)
    assert a.stats[0, :, 3, K.S_LEESALEE].min() > 0  # 2004 is a control year


def test_self_modification_boom_and_bust():
    consts = S.SelfModification(critical_low=0.97, critical_high=1.3, boom=1.1, bust=0.5).array()
    c = np.array([10.0, 20.0, 30.0, 50.0, 40.0])
    K._self_modify(c, 2.0, 10.0, consts)  # boom
    np.testing.assert_allclose(c, [11.0, 22.0, 33.0, 49.0, 40.1])
    c = np.array([10.0, 20.0, 30.0, 50.0, 40.0])
    K._self_modify(c, 0.5, 10.0, consts)  # bust
    np.testing.assert_allclose(c, [5.0, 10.0, 15.0, 51.0, 39.9])
    c = np.array([99.0, 99.0, 99.0, 0.5, 99.99])
    K._self_modify(c, 2.0, 10.0, consts)  # clamps: slope <= 0.01 -> 1, road <= 100, others <= 100
    np.testing.assert_allclose(c, [100.0, 100.0, 100.0, 1.0, 100.0])
    c = np.array([10.0, 20.0, 30.0, 50.0, 40.0])
    K._self_modify(c, 1.0, 10.0, consts)  # between the critical values: unchanged
    np.testing.assert_allclose(c, [10.0, 20.0, 30.0, 50.0, 40.0])


def test_zero_coefficients_become_one_as_in_sleuth():
    np.testing.assert_array_equal(S.sleuth_coefficients([0, 5, 0, 100, 0]), [[1, 5, 1, 100, 1]])


# --------------------------------------------------------------------------- twins


def spiral_twin(n: int) -> np.ndarray:
    out = []
    band = 1
    while len(out) < n:
        ring = [(i, -band) for i in range(-band, band + 1)]
        ring += [(band, j) for j in range(-band + 1, band)]
        ring += [(i, band) for i in range(band, -band - 1, -1)]
        ring += [(-band, j) for j in range(band - 1, -band, -1)]
        out += ring
        band += 1
    return np.array(out[:n])


@HYP
@given(st.integers(1, 400))
def test_spiral_matches_twin(n):
    np.testing.assert_array_equal(K._spiral_offsets(n, 400), spiral_twin(n))


def slope_weights_twin(res: float, crit: float) -> np.ndarray:
    s = np.arange(256, dtype=np.float64)
    w = 1.0 - np.clip((crit - s) / crit, 0, None) ** (res / 50.0)
    return np.where(s < crit, w, 1.0)


@HYP
@given(st.floats(0.01, 100), st.integers(100, 6000).map(lambda v: v / 100))  # critical slopes to 0.01 %
def test_slope_weights_match_twin(res, crit):
    # the kernel keeps SLEUTH's float32 lookup table: agreement to float32 precision
    np.testing.assert_allclose(K._slope_weights(res, crit), slope_weights_twin(res, crit), rtol=2e-4, atol=2e-5)


def pattern_twin(z: np.ndarray, slope: np.ndarray) -> dict[str, float]:
    u = z != 0
    pad = np.pad(u, 1, constant_values=True)  # outside the image is not a non-urban neighbour
    free = ~pad[:-2, 1:-1] | ~pad[2:, 1:-1] | ~pad[1:-1, :-2] | ~pad[1:-1, 2:]
    inner = np.zeros_like(u)
    inner[1:-1, 1:-1] = u[1:-1, 1:-1]
    _lab, n = ndimage.label(inner)
    area = int(u.sum())
    rows, cols = np.nonzero(u)
    return {
        "area": area,
        "edges": int((u & free).sum()),
        "clusters": n,
        "cl_size": (int(inner.sum()) // n) if n else 0,
        "xmean": cols.mean() if area else 0.0,
        "ymean": rows.mean() if area else 0.0,
        "slope": slope[u].mean() if area else 0.0,
        "rad": math.sqrt(area / math.pi),
    }


@HYP
@given(st.integers(0, 10_000), st.integers(3, 14), st.integers(3, 14), st.floats(0.05, 0.9))
def test_pattern_stats_match_twin(seed, h, w, p):
    rng = np.random.default_rng(seed)
    z = (rng.random((h, w)) < p).astype(np.uint8) * 3
    slope = rng.integers(0, 40, (h, w)).astype(np.uint8)
    out = np.zeros(K.N_STATS)
    K._pattern_stats(z, slope, out, np.zeros(h * w, np.int64), np.zeros((h, w), np.uint8))
    t = pattern_twin(z, slope)
    assert out[K.S_AREA] == t["area"] == out[K.S_POP]
    assert out[K.S_EDGES] == t["edges"] and out[K.S_CLUSTERS] == t["clusters"] and out[K.S_CLSIZE] == t["cl_size"]
    assert out[K.S_XMEAN] == pytest.approx(t["xmean"]) and out[K.S_YMEAN] == pytest.approx(t["ymean"])
    assert out[K.S_SLOPE] == pytest.approx(t["slope"]) and out[K.S_RAD] == pytest.approx(t["rad"])


@HYP
@given(st.integers(0, 10_000))
def test_leesalee_matches_twin(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((9, 7)) < 0.4
    b = rng.random((9, 7)) < 0.4
    expect = (a & b).sum() / (a | b).sum() if (a | b).any() else 0.0
    assert K._leesalee(a.astype(np.uint8), b.astype(np.uint8)) == pytest.approx(expect)


class _Draws:
    def __init__(self, key):
        self.key = key
        self.n = 0

    def __call__(self) -> float:
        u = float(uniform_numpy(self.key, np.array([self.n]))[0])
        self.n += 1
        return u


def grow_year_twin(z, slope, excluded, roads, coeff, swght, key):
    """Pure-Python twin of ``_grow_year``: same rules, same draw order; returns (delta, counts)."""
    nr, nc = z.shape
    delta = np.zeros_like(z)
    grown: list[int] = []
    draw = _Draws(key)
    counts = [0, 0, 0, 0]
    ring = [(-1, -1), (0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0)]
    walk = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]

    def urbanize(r, c, code):
        if z[r, c] or delta[r, c]:
            return False
        if not draw() > swght[slope[r, c]]:
            return False
        if excluded[r, c] < int(draw() * 100):
            delta[r, c] = code
            grown.append(r * nc + c)
            return True
        return False

    def neighbour(i, j):
        k0 = int(draw() * 8)
        for k in range(8):
            di, dj = ring[(k0 + k) % 8]
            if 0 <= i + di < nr and 0 <= j + dj < nc:
                return i + di, j + dj
        return i + ring[k0][0], j + ring[k0][1]

    def urbanize_nb(i, j, code):
        if not (0 <= i < nr and 0 <= j < nc):
            return False, i, j
        ni, nj = neighbour(i, j)
        return urbanize(ni, nj, code), ni, nj

    d, b, s, _sl, rg_c = coeff
    for _ in range(1 + int(d * 0.005 * math.sqrt(nr * nr + nc * nc))):
        i, j = int(draw() * nr), int(draw() * nc)
        if 0 < i < nr - 1 and 0 < j < nc - 1 and urbanize(i, j, K.SPONTANEOUS):
            counts[0] += 1
            if int(draw() * 101) < int(b):
                ok_n = 0
                for _t in range(8):
                    if urbanize_nb(i, j, K.SPREAD_CENTRE)[0]:
                        counts[1] += 1
                        ok_n += 1
                        if ok_n == 2:
                            break
    nbcount = ndimage.convolve((z != 0).astype(int), np.ones((3, 3), int), mode="constant") - (z != 0)
    for r in range(1, nr - 1):
        for c in range(1, nc - 1):
            if z[r, c] and 2 <= nbcount[r, c] < 8 and int(draw() * 101) < s:
                di, dj = walk[int(draw() * 8)]
                if urbanize(r + di, c + dj, K.EDGE):
                    counts[2] += 1
    order = sorted(grown)
    buf = np.zeros(2 * nr * nc + 2, dtype=np.int64)
    for k, idx in enumerate(order):  # SLEUTH's overlapping row/col lists
        buf[k] = idx // nc
        buf[nr + k] = idx % nc
    spiral = spiral_twin(max(4 * int((nr + nc) / 16) * (int((nr + nc) / 16) + 1), nr, nc))
    if order:
        for _ in range(1 + int(b)):
            rg = int((rg_c / 100.0) * ((nr + nc) / 16.0))
            g = int(len(order) * draw())
            gi, gj = buf[g], buf[nr + g]
            hit = None
            for oi, oj in spiral[: max(4 * rg * (rg + 1), nr, nc)]:
                if 0 <= gi + oi < nr and 0 <= gj + oj < nc and roads[gi + oi, gj + oj]:
                    hit = (gi + oi, gj + oj)
                    break
            if hit is None:
                continue
            i, j = hit
            run = 0
            while True:
                moved = False
                k0 = int(draw() * 8)
                for k in range(8):
                    di, dj = ring[(k0 + k) % 8]
                    if 0 <= i + di < nr and 0 <= j + dj < nc and roads[i + di, j + dj]:
                        i, j, run, moved = i + di, j + dj, run + 1, True
                        break
                if run > int((roads[i, j] // 100) * d):
                    spread_ok = True
                    break
                if not moved:
                    spread_ok = False
                    break
            if spread_ok:
                ok, ni, nj = urbanize_nb(i, j, K.ROAD)
                if ok:
                    counts[3] += 1
                    for _t in range(3):
                        if urbanize_nb(ni, nj, K.ROAD)[0]:
                            counts[3] += 1
    return delta, counts


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 100_000),
    st.integers(6, 16),
    st.integers(6, 16),
    st.lists(st.floats(1, 100), min_size=5, max_size=5),
)
def test_grow_year_matches_twin(seed, h, w, coeff):
    rng = np.random.default_rng(seed)
    z = (rng.random((h, w)) < 0.3).astype(np.uint8) * 3
    slope = rng.integers(0, 30, (h, w)).astype(np.uint8)
    excluded = np.where(rng.random((h, w)) < 0.1, 100, rng.integers(0, 50, (h, w))).astype(np.int32)
    roads = np.where(rng.random((h, w)) < 0.15, rng.choice([40, 100], (h, w)), 0).astype(np.int32)
    coeff = np.array(coeff)
    swght = K._slope_weights(coeff[3], 21.0)
    key = np.uint64(stream_key(seed, 1, 2, 0, K.PURPOSE))  # stream_key returns a Python int
    fr = K._frontier_flags(z)
    dflat = np.zeros(fr.size, np.uint8)
    delta = dflat[: h * w].reshape(h, w)
    ctr = np.zeros(2 + h * w, np.int64)
    counts = np.zeros(4, np.int64)
    rg_max = int((h + w) / 16)
    spiral = K._spiral_offsets(max(4 * rg_max * (rg_max + 1), h, w), max(h, w))
    growth = np.zeros(2 * h * w + 2, np.int64)
    memo = np.full(h * w, -1, np.int32) if seed % 2 else np.zeros(0, np.int32)  # with and without the road memo
    for _ in range(2):  # the second time with what the first remembered
        delta[:] = 0
        ctr[0] = 0  # the same draws
        K._grow_year(
            z, fr, delta, dflat, slope, excluded, roads, _road_nb(roads), memo, spiral, swght, coeff, key, ctr, growth,
            counts, 7,
        )  # fmt: skip
    t_delta, t_counts = grow_year_twin(z, slope, excluded, roads, coeff, swght, key)
    np.testing.assert_array_equal(delta, t_delta)
    assert list(counts) == t_counts


# --------------------------------------------------------------------------- determinism


def test_results_do_not_depend_on_chunking():
    inp = _inputs(_blob(24))
    kw = dict(start_year=2000, stop_year=2008, record_years=[2004, 2008], prob_years=[2008], runs=6, seed=9,
              constants=S.SelfModification())  # fmt: skip
    coeffs = np.array([[30, 40, 50, 20, 30], [5, 5, 80, 60, 5]], float)
    a = S.simulate_sleuth(inp, coeffs, n_chunks=1, **kw)
    b = S.simulate_sleuth(inp, coeffs, n_chunks=5, **kw)
    np.testing.assert_array_equal(a.stats, b.stats)
    np.testing.assert_array_equal(a.urban_counts, b.urban_counts)
    c = S.simulate_sleuth(inp, coeffs, n_chunks=1, **{**kw, "seed": 10})
    assert not np.array_equal(a.stats, c.stats)


_THREAD_SCRIPT = """
import numpy as np, hashlib
from landuse.sleuth import inputs as SI
from landuse.sleuth import logs as SL
from landuse.sleuth import model as S
u = np.zeros((24, 24), np.uint8); u[10:14, 10:14] = 1
inp = SI.SleuthInputs(urban=np.stack([u, u]), urban_years=[2000, 2010], roads=np.zeros((1, 24, 24), np.int32),
    road_years=[2000], road_pixels=[0], slope=np.zeros((24, 24), np.uint8), excluded=np.zeros((24, 24), np.int32))
sim = S.simulate_sleuth(inp, np.array([[30, 40, 50, 20, 30]], float), start_year=2000, stop_year=2010,
    record_years=[2010], prob_years=[2010], runs=12, seed=4, constants=S.SelfModification())
print(hashlib.sha256(sim.stats.tobytes() + sim.urban_counts.tobytes()).hexdigest())
"""


def test_same_results_with_one_and_two_threads():
    out = []
    for n in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": n}
        res = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, capture_output=True, text=True, check=True)
        out.append(res.stdout.strip())
    assert out[0] == out[1] and len(out[0]) == 64


# --------------------------------------------------------------------------- modes and CLI


def test_calibrate_honours_brute_force_ranges_in_sleuth_order(tmp_path):
    res = S.run_sleuth(tiny_project(tmp_path), mode="calibrate")
    rows = SL.parse_control_log(tmp_path / "Output" / "run" / "control_stats.log")
    got = [(r["Diff"], r["Brd"], r["Sprd"], r["Slp"], r["RG"]) for r in rows]
    assert got == [(d, 10, s, 20, 30) for d in (10, 50) for s in (1, 50, 100)]  # spread 0 runs as 1
    assert [r["Run"] for r in rows] == list(range(6))
    assert all(0 <= r["Product"] <= 1 and 0 < r["Compare"] <= 1 for r in rows)
    assert (tmp_path / "Output" / "run" / "avg.log").exists()
    assert not (tmp_path / "Output" / "run" / "std_dev.log").exists()  # WRITE_STD_DEV_FILE=no
    csv = (tmp_path / "Output" / "run" / "calibration.csv").read_text().splitlines()
    assert csv[0].startswith("run,diffusion,breed,spread,slope,road,OSM,Product") and len(csv) == 7
    assert res.control[0]["OSM"] == pytest.approx(
        np.prod([res.control[0][k] for k in ("Compare", "Pop", "Edges", "Clusters", "Slope", "Xmean", "Ymean")])
    )


def test_refine_search_stays_in_ranges_and_budget(tmp_path):
    res = S.run_sleuth(tiny_project(tmp_path), mode="calibrate", search="refine", budget=10, runs=2)
    pts = res.coefficients
    assert len(pts) == 10 and len({tuple(p) for p in pts}) == 10
    assert pts[:, 0].min() >= 10 and pts[:, 0].max() <= 50 and np.all(pts[:, 3] == 20)
    assert len(SL.parse_control_log(tmp_path / "Output" / "run" / "control_stats.log")) == 10


def test_cli_predict_writes_probability_geotiffs(tmp_path):
    import rasterio

    from landuse.cli.app import app

    scen = tiny_project(tmp_path)
    out = tmp_path / "pred"
    r = CliRunner().invoke(app, ["sleuth", str(scen), "--mode", "predict", "--out", str(out), "--runs", "5"])
    assert r.exit_code == 0, r.output
    for y in range(2001, 2005):
        assert (out / f"urban_probability_{y}.tif").exists()
    with rasterio.open(out / "cumulate_urban.tif") as src:
        arr = src.read(1)
        assert src.crs is None and tuple(src.transform)[:6] == (1.0, 0.0, 0.0, 0.0, -1.0, 30.0)
    seed_urban = read_grey(tmp_path / "Input" / "tiny.urban.2000.gif") > 0
    assert (arr[seed_urban] == 100).all() and (arr[:, :3] == 0).all()  # seed kept, excluded never urban
    log = SL.parse_stats_log(out / "avg.log")
    assert sorted(y for _, y in log) == [2001, 2002, 2003, 2004]


def test_cli_reports_bad_scenario_line(tmp_path):
    from landuse.cli.app import app

    scen = tiny_project(tmp_path, extra="SPREAD_COEFF=3\n")
    r = CliRunner().invoke(app, ["sleuth", str(scen)])
    assert r.exit_code == 2
    assert "scenario.tiny:37: unknown SLEUTH scenario key 'SPREAD_COEFF'" in r.output
    r = CliRunner().invoke(app, ["sleuth", str(tiny_project(tmp_path / "b")), "--mode", "forecast"])
    assert r.exit_code == 2 and "unknown SLEUTH mode 'forecast'" in r.output
    r = CliRunner().invoke(app, ["sleuth", str(tmp_path / "b" / "Scenarios" / "scenario.tiny"), "--runs", "0"])
    assert r.exit_code == 2 and "--runs must be >= 1, got 0" in r.output
    (tmp_path / "a_file").write_text("x")
    r = CliRunner().invoke(app, ["sleuth", str(tmp_path / "b" / "Scenarios" / "scenario.tiny"), "--out",
                                 str(tmp_path / "a_file" / "out")])
    assert r.exit_code == 2 and "cannot create the output folder" in r.output and "Traceback" not in r.output


# --------------------------------------------------------------------------- GeoTIFF writer


@pytest.mark.parametrize("shape", [(2, 2049), (2, 2048), (30, 47), (1, 1)])
def test_write_percent_writes_a_cog_on_the_sleuth_grid(tmp_path, shape):
    import rasterio

    arr = np.random.default_rng(sum(shape)).integers(0, 101, shape).astype(np.uint8)
    S._write_percent(arr, tmp_path / "p.tif", 'urban <&> "p"', {"seed": 1, "note": 'a <b> & "c"'})
    with rasterio.open(tmp_path / "p.tif") as src:
        np.testing.assert_array_equal(src.read(1), arr)
        assert src.descriptions == ('urban <&> "p"',) and src.tags()["seed"] == "1" and src.nodata == 255
        assert src.tags()["note"] == 'a <b> & "c"' and src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.transform == S.sleuth_grid(shape) and src.crs is None
    assert not list(tmp_path.glob(".*part*"))  # atomic writes left nothing behind


# --------------------------------------------------------------------------- the `landuse sleuth` command


def test_sleuth_command_reports_bad_scenarios_in_one_line(tmp_path):
    from landuse.cli.app import app

    bad = tiny_project(tmp_path / "bad", extra="SPREAD_COEFF=3\n")
    r = CliRunner().invoke(app, ["sleuth", str(bad)])
    assert r.exit_code == 2 and "unknown SLEUTH scenario key 'SPREAD_COEFF'" in r.output and "Traceback" not in r.output
    scen = tiny_project(tmp_path)
    r = CliRunner().invoke(app, ["sleuth", str(scen), "--mode", "forecast"])
    assert r.exit_code == 2 and "unknown SLEUTH mode 'forecast'" in r.output


def test_landuse_module_entry_runs_the_cli(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "landuse", "sleuth", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--input-dir" in r.stdout
    r = subprocess.run([sys.executable, "-m", "landuse", "sleuth", str(tmp_path / "none"), "--runs", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Invalid value" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "landuse", "sleuth", str(tmp_path / "none")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
