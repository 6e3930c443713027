"""Evaluation metrics on hand-computed rasters (landuse.evaluation.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.errors import LanduseError
from landuse.core.landscape import new_landscape
from landuse.evaluation.agreement import (
    ChangeHistogram,
    change_components,
    change_components_by_class,
    change_scores,
    disagreement,
    figure_of_merit,
    joint_histogram,
    kappa,
    kappa_simulation,
    lee_sallee,
    overall_accuracy,
    validation_metrics,
)
from landuse.evaluation.metrics import (
    disk_offsets,
    expansion_types,
    landscape_counts,
    landscape_metrics,
    max_like_adjacencies,
    min_perimeter,
    quota_report,
    urban_metrics,
)

S = default_scheme()
R, IND, C = S.code_of("residential"), S.code_of("industrial"), S.code_of("commercial")
F = S.codes_with_role("farmland")[0]
OS = S.codes_with_role("open_space")[0]
W = S.codes_with_role("water")[0]
N = S.nodata

# 5 x 5, cell 10 m: a 2x2 block in the corner, a single cell on the right border, a diagonal pair
MASK = np.array(
    [
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 0],
    ],
    dtype=bool,
)


# --------------------------------------------------------------------------- landscape metrics


def test_landscape_metrics_hand_computed_8_connectivity() -> None:
    m = landscape_metrics(MASK, cell_size=10.0)  # landscape 25 cells = 0.25 ha
    assert m["number_of_patches"] == 3  # block, single cell, diagonal pair
    assert m["total_area"] == pytest.approx(0.07)
    assert m["percentage_of_landscape"] == pytest.approx(28.0)
    assert m["largest_patch_index"] == pytest.approx(16.0)  # 4 of 25 cells
    assert m["mean_patch_area"] == pytest.approx(0.07 / 3)
    # E* = 4*7 - 2*4 like adjacencies = 20 sides; 6 lie on the grid border
    assert m["edge_density"] == pytest.approx(14 * 10.0 / 0.25)  # 560 m/ha, boundary not counted
    assert m["landscape_shape_index"] == pytest.approx(0.25 * 20 / math.sqrt(7))
    # a = 7: n = 2, m = 3 > n -> max g = 2*2*1 + 2*3 - 2 = 8; g = 4
    assert m["aggregation_index"] == pytest.approx(50.0)
    # compactness: (8/8 + 4/4 + 6/8) / 3**2
    assert m["compactness_index"] == pytest.approx(2.75 / 9)
    # SHAPE_AM: perimeter / smallest perimeter of the area, area-weighted: (4 * 8/8 + 1 * 4/4 + 2 * 8/6) / 7
    assert m["shape_index_am"] == pytest.approx((4 + 1 + 2 * 8 / 6) / 7)


def test_landscape_metrics_4_connectivity_splits_the_diagonal_pair() -> None:
    m = landscape_metrics(MASK, cell_size=10.0, connectivity=4)
    assert m["number_of_patches"] == 4
    assert m["mean_patch_area"] == pytest.approx(0.07 / 4)
    assert m["compactness_index"] == pytest.approx(4 / 16)
    assert m["aggregation_index"] == pytest.approx(50.0)  # adjacency-based, independent of the patch rule


def test_edge_density_boundary_choice() -> None:
    m = landscape_metrics(MASK, cell_size=10.0, count_boundary=True)
    assert m["edge_density"] == pytest.approx(20 * 10.0 / 0.25)


def test_landscape_metrics_nodata_is_outside_the_landscape() -> None:
    study = np.ones((5, 5), dtype=bool)
    study[:, 4] = False  # the last column is nodata: drops the single cell, borders the pair
    m = landscape_metrics(MASK, cell_size=10.0, study_area=study)
    assert m["number_of_patches"] == 2
    assert m["largest_patch_index"] == pytest.approx(20.0)  # 4 of 20 cells
    # E* = 24 - 8 = 16; boundary sides: 4 (block) + 2 (bottom and right of (4, 3)) -> background 10
    assert m["edge_density"] == pytest.approx(10 * 10.0 / 0.20)
    assert m["landscape_shape_index"] == pytest.approx(4 / math.sqrt(6))
    assert m["aggregation_index"] == pytest.approx(100 * 4 / 7)


def test_no_class_cells() -> None:
    m = landscape_metrics(np.zeros((4, 4), dtype=bool), cell_size=30.0)
    assert m["number_of_patches"] == 0
    assert m["largest_patch_index"] == 0
    assert m["edge_density"] == 0
    assert m["total_area"] == 0
    for k in ("mean_patch_area", "landscape_shape_index", "aggregation_index", "compactness_index",
              "shape_index_am"):
        assert math.isnan(m[k]), k


def test_all_class_cells() -> None:
    m = landscape_metrics(np.ones((3, 3), dtype=bool), cell_size=100.0)
    assert m["number_of_patches"] == 1
    assert m["largest_patch_index"] == pytest.approx(100.0)
    assert m["percentage_of_landscape"] == pytest.approx(100.0)
    assert m["edge_density"] == 0.0  # only landscape boundary, not counted
    assert m["landscape_shape_index"] == pytest.approx(1.0)
    assert m["aggregation_index"] == pytest.approx(100.0)
    assert m["compactness_index"] == pytest.approx(1.0)
    assert m["shape_index_am"] == pytest.approx(1.0)


def test_single_cell_patches() -> None:
    one = np.zeros((3, 3), dtype=bool)
    one[1, 1] = True
    m = landscape_metrics(one, cell_size=100.0)
    assert m["number_of_patches"] == 1
    assert m["landscape_shape_index"] == pytest.approx(1.0)
    assert math.isnan(m["aggregation_index"])  # max g = 0 for one cell
    assert m["edge_density"] == pytest.approx(400.0 / 9.0)
    checker = (np.indices((4, 4)).sum(axis=0) % 2).astype(bool)
    m8 = landscape_metrics(checker, cell_size=100.0)
    m4 = landscape_metrics(checker, cell_size=100.0, connectivity=4)
    assert m8["number_of_patches"] == 1 and m4["number_of_patches"] == 8
    assert m8["aggregation_index"] == 0.0


def test_lsi_is_one_for_a_square_and_grows_when_split() -> None:
    sq = np.zeros((10, 10), dtype=bool)
    sq[2:6, 2:6] = True
    assert landscape_metrics(sq, cell_size=30.0)["landscape_shape_index"] == pytest.approx(1.0)
    split = sq.copy()
    split[:, 4] = False
    split[2:6, 6] = True
    assert landscape_metrics(split, cell_size=30.0)["landscape_shape_index"] > 1.0


def test_empty_study_area_is_an_error() -> None:
    with pytest.raises(LanduseError, match="study area is empty"):
        landscape_metrics(np.ones((2, 2), dtype=bool), cell_size=1.0, study_area=np.zeros((2, 2), dtype=bool))


def test_bad_connectivity() -> None:
    with pytest.raises(ValueError, match="connectivity"):
        landscape_metrics(MASK, cell_size=1.0, connectivity=6)


def test_area_formulas() -> None:
    assert min_perimeter(np.arange(1, 10)).tolist() == [4, 6, 8, 8, 10, 10, 12, 12, 12]
    assert [max_like_adjacencies(a) for a in range(0, 10)] == [0, 0, 1, 2, 4, 5, 7, 8, 10, 12]


def _slow_edges(mask: np.ndarray, study: np.ndarray) -> tuple[int, int]:
    """Class cell sides facing background (in study) and facing the boundary, by loops."""
    rows, cols = mask.shape
    bg = bd = 0
    for r in range(rows):
        for c in range(cols):
            if not mask[r, c]:
                continue
            for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                rr, cc = r + dr, c + dc
                inside = 0 <= rr < rows and 0 <= cc < cols and study[rr, cc]
                if not inside:
                    bd += 1
                elif not mask[rr, cc]:
                    bg += 1
    return bg, bd


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), density=st.floats(0.05, 0.95))
def test_landscape_metrics_match_loops(seed: int, density: float) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 9, size=2))
    mask = rng.random(shape) < density
    study = rng.random(shape) < 0.9
    study[0, 0] = True
    m = mask & study
    res = landscape_metrics(mask, cell_size=10.0, study_area=study)
    bg, bd = _slow_edges(m, study)
    land_ha = study.sum() * 0.01
    assert res["edge_density"] == pytest.approx(bg * 10.0 / land_ha)
    a = int(m.sum())
    if a:
        assert res["landscape_shape_index"] == pytest.approx(0.25 * (bg + bd) / math.sqrt(a))
        _, n8 = ndimage.label(m, structure=np.ones((3, 3)))
        assert res["number_of_patches"] == n8
        assert res["number_of_patches"] <= landscape_metrics(mask, cell_size=10.0, study_area=study,
                                                             connectivity=4)["number_of_patches"]
        assert res["largest_patch_index"] <= res["percentage_of_landscape"] + 1e-9
        if a > 1:
            assert 0.0 <= res["aggregation_index"] <= 100.0
        assert 0.0 < res["compactness_index"] <= 1.0


def test_urban_metrics_per_type_and_nodata() -> None:
    lu = np.full((4, 4), F, dtype=np.uint8)
    lu[0, 0:2] = R
    lu[3, 3] = IND
    lu[2, 2] = C
    lu[0, 3] = N
    out = urban_metrics(lu, S, cell_size=100.0)
    assert set(out) == {"urban", *URBAN_TYPES}
    assert out["urban"]["number_of_patches"] == 2  # (2,2)-(3,3) touch diagonally
    assert out["residential"]["number_of_patches"] == 1
    assert out["urban"]["percentage_of_landscape"] == pytest.approx(100 * 4 / 15)
    assert out["industrial"]["total_area"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- expansion types


def _lei_case() -> tuple[np.ndarray, np.ndarray]:
    before = np.full((9, 9), F, dtype=np.uint8)
    before[2:7, 2:7] = R
    before[4, 4] = F  # a hole in the old urban ring
    after = before.copy()
    after[4, 4] = R  # infilling: all 8 neighbours old urban
    after[4, 7] = C  # edge expansion: 3 of 8 neighbours old urban
    after[0, 0:2] = IND  # outlying pair in the corner
    return before, after


def test_lei_hand_computed() -> None:
    before, after = _lei_case()
    exp = expansion_types(before, after, S, cell_size=10.0, buffer_m=15.0)  # 8-neighbour buffer
    np.testing.assert_allclose(exp.lei, [0.0, 100.0, 37.5])  # labels in raster order
    assert exp.patch_type.tolist() == [3, 1, 2]
    s = exp.summary()
    assert s["count"] == {"infilling": 1, "edge_expansion": 1, "outlying": 1}
    assert s["share_count"]["infilling"] == pytest.approx(1 / 3)
    assert s["share_area"] == pytest.approx({"infilling": 0.25, "edge_expansion": 0.25, "outlying": 0.5})
    assert s["new_urban_ha"] == pytest.approx(4 * 0.01)
    tm = exp.type_map
    assert tm[4, 4] == 1 and tm[4, 7] == 2 and tm[0, 0] == 3 and tm[5, 5] == 0


def test_lei_buffer_distance_matters() -> None:
    before, after = _lei_case()
    # a 10 m buffer reaches only the 4 orthogonal neighbours: (4, 7) touches 1 old cell of 4
    exp = expansion_types(before, after, S, cell_size=10.0, buffer_m=10.0)
    assert exp.lei[2] == pytest.approx(25.0)
    # a wide buffer sees old urban from the corner pair too: no longer outlying
    wide = expansion_types(before, after, S, cell_size=10.0, buffer_m=30.0)
    assert wide.patch_type[0] == 2


def test_lei_no_new_urban_and_small_buffer() -> None:
    before, _ = _lei_case()
    s = expansion_types(before, before, S, cell_size=10.0, buffer_m=15.0).summary()
    assert s["patches"] == 0 and math.isnan(s["share_area"]["infilling"])
    with pytest.raises(LanduseError, match="lei_buffer_m"):
        expansion_types(before, before, S, cell_size=30.0, buffer_m=10.0)


def _slow_lei(before: np.ndarray, after: np.ndarray, cell: float, buffer_m: float) -> np.ndarray:
    """Slow twin of the LEI kernel: dilate each patch with the disk footprint."""
    study = (before != N) & (after != N)
    old = S.is_role(before, *URBAN_TYPES) & study
    new = S.is_role(after, *URBAN_TYPES) & ~old & study
    labels, n = ndimage.label(new, structure=np.ones((3, 3)))
    dy, dx = disk_offsets(buffer_m / cell)
    r = int(max(np.abs(dy).max(), np.abs(dx).max()))
    foot = np.zeros((2 * r + 1, 2 * r + 1), dtype=bool)
    foot[dy + r, dx + r] = True
    foot[r, r] = True
    out = []
    for k in range(1, n + 1):
        patch = labels == k
        ring = ndimage.binary_dilation(patch, structure=foot) & ~patch & study
        out.append(100.0 * (ring & old).sum() / ring.sum() if ring.sum() else 0.0)
    return np.array(out)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), buffer_cells=st.sampled_from([1.0, 1.5, 2.0, 2.3, 3.0]))
def test_lei_kernel_matches_slow_twin(seed: int, buffer_cells: float) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(3, 16, size=2))
    before = rng.choice([F, OS, R, IND, W], size=shape, p=[0.4, 0.2, 0.2, 0.1, 0.1]).astype(np.uint8)
    after = before.copy()
    grow = rng.random(shape) < 0.25
    after[grow] = rng.choice([R, IND, C], size=int(grow.sum()))
    after[rng.random(shape) < 0.03] = N
    exp = expansion_types(before, after, S, cell_size=10.0, buffer_m=10.0 * buffer_cells)
    np.testing.assert_allclose(exp.lei, _slow_lei(before, after, 10.0, 10.0 * buffer_cells))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), strip_cells=st.integers(1, 120), with_study=st.booleans())
def test_metrics_and_lei_are_the_same_whatever_the_strip_height(seed, strip_cells, with_study) -> None:
    """The class masks are built strip by strip (``landuse.core.strips.STRIP_CELLS`` cells a strip): any strip height
    gives the same metrics, labels, LEI and types as one strip."""
    import landuse.io.rasters

    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(3, 25, size=2))
    before = rng.choice([F, OS, R, IND, W], size=shape, p=[0.4, 0.2, 0.2, 0.1, 0.1]).astype(np.uint8)
    after = before.copy()
    grow = rng.random(shape) < 0.25
    after[grow] = rng.choice([R, IND, C], size=int(grow.sum()))
    after[rng.random(shape) < 0.03] = N
    study = (rng.random(shape) < 0.9) if with_study else None

    def compute():
        m = urban_metrics(after, S, cell_size=(10.0, 12.0), study_area=study)
        e = expansion_types(before, after, S, cell_size=10.0, buffer_m=20.0, study_area=study)
        return m, e

    whole_m, whole_e = compute()
    old = landuse.core.strips.STRIP_CELLS
    landuse.core.strips.STRIP_CELLS = strip_cells
    try:
        m, e = compute()
    finally:
        landuse.core.strips.STRIP_CELLS = old
    assert m.keys() == whole_m.keys()
    for k in m:
        np.testing.assert_equal(m[k], whole_m[k])  # nan == nan here
    np.testing.assert_array_equal(e.labels, whole_e.labels)
    np.testing.assert_array_equal(e.lei, whole_e.lei)
    np.testing.assert_array_equal(e.patch_type, whole_e.patch_type)


# --------------------------------------------------------------------------- validation

B = np.array([[F, F, F, F, F, F]], dtype=np.uint8)
OBS = np.array([[R, R, IND, F, F, F]], dtype=np.uint8)
SIM = np.array([[R, F, C, R, F, F]], dtype=np.uint8)


def test_change_components_and_fom() -> None:
    c = change_components(B, OBS, SIM)
    assert c == {"hits": 1, "wrong_hits": 1, "misses": 1, "false_alarms": 1, "correct_rejections": 2}
    assert figure_of_merit(B, OBS, SIM) == pytest.approx(0.25)
    assert figure_of_merit(B, OBS, OBS) == 1.0
    assert figure_of_merit(B, OBS, B) == 0.0
    assert math.isnan(figure_of_merit(B, B, B))


def test_validation_on_study_area_and_nodata() -> None:
    sim = SIM.copy()
    sim[0, 3] = N  # the false alarm becomes nodata: left out
    c = change_components(B, OBS, sim)
    assert c["false_alarms"] == 0 and c["correct_rejections"] == 2
    study = np.array([[True, True, True, True, False, False]])
    assert change_components(B, OBS, SIM, study_area=study)["correct_rejections"] == 0
    assert overall_accuracy(OBS, SIM, study_area=study) == pytest.approx(0.25)


def test_accuracy_kappa_disagreement_hand_computed() -> None:
    assert overall_accuracy(OBS, SIM) == pytest.approx(0.5)
    assert kappa(OBS, SIM) == pytest.approx(5 / 23)
    d = disagreement(OBS, SIM)
    assert d["quantity"] == pytest.approx(1 / 6)
    assert d["allocation"] == pytest.approx(1 / 3)
    assert d["quantity"] + d["allocation"] == pytest.approx(1 - overall_accuracy(OBS, SIM))
    assert d["by_class"][IND] == {"quantity": pytest.approx(1 / 6), "allocation": 0.0}
    assert d["by_class"][R]["allocation"] == pytest.approx(2 / 6)
    perfect = disagreement(OBS, OBS)
    assert perfect["quantity"] == 0 and perfect["allocation"] == 0
    assert kappa(OBS, OBS) == pytest.approx(1.0)
    assert math.isnan(kappa(B, B))


def test_per_class_gains_and_lee_sallee() -> None:
    g = change_components_by_class(B, OBS, SIM, codes=(R, IND, C))
    assert g[R] == {"hits": 1, "misses": 1, "false_alarms": 1, "figure_of_merit": pytest.approx(1 / 3)}
    assert g[IND]["figure_of_merit"] == 0.0
    assert lee_sallee(S.is_role(OBS, *URBAN_TYPES), S.is_role(SIM, *URBAN_TYPES)) == pytest.approx(0.5)
    assert math.isnan(lee_sallee(np.zeros(3, bool), np.zeros(3, bool)))
    v = validation_metrics(B, OBS, SIM, S)
    assert v["figure_of_merit"] == pytest.approx(0.25)
    assert v["lee_sallee"]["urban"] == pytest.approx(0.5)
    assert v["lee_sallee"]["residential"] == pytest.approx(1 / 3)
    assert v["gains_by_class"]["residential"]["hits"] == 1
    assert v["kappa"] == pytest.approx(5 / 23)


# --------------------------------------------------------------------------- quotas

QUOTA_LU = np.array(
    [
        [OS, OS, F, F],
        [OS, F, F, F],
        [W, F, R, R],
        [W, F, R, R],
    ],
    dtype=np.uint8,
)


def _quota_landscape(**layers: np.ndarray):
    cities = np.array([[1, 1, 2, 2]] * 4, dtype=np.int32)
    return new_landscape({"landuse": QUOTA_LU, "cities": cities, **layers}, crs="EPSG:32651",
                         transform=Affine(100.0, 0.0, 0.0, 0.0, -100.0, 400.0))


def _scenario(**policy):
    return scenario_from_dict({"name": "q", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2030],
                               "policy": policy})


def _after() -> np.ndarray:
    after = QUOTA_LU.copy()
    after[1, 1] = R  # farmland lost in city 1
    after[0, 1] = R  # open space lost in city 1
    return after


def test_quota_per_city_hand_computed() -> None:
    ds = _quota_landscape()
    rep = quota_report(ds, _after(), _scenario(open_space_quota={"share": 0.25, "unit": "city"}))
    c1, c2, cl = rep.units
    assert (c1["unit"], c2["unit"], cl["unit"]) == ("city 1", "city 2", "cluster")
    assert c1["land_area_ha"] == pytest.approx(6.0)  # water excluded
    assert c1["open_space_ha"] == pytest.approx(2.0)
    assert c1["open_space_before_ha"] == pytest.approx(3.0)
    assert c1["open_space_share"] == pytest.approx(1 / 3)
    assert c1["margin_ha"] == pytest.approx(0.5) and c1["quota_met"] is True
    assert c2["margin_ha"] == pytest.approx(-2.0) and c2["quota_met"] is False
    assert cl["quota_share"] is None and cl["quota_met"] is None
    assert c1["farmland_before_ha"] == 3.0 and c1["farmland_after_ha"] == 2.0 and c1["farmland_loss_ha"] == 1.0
    assert cl["new_urban_ha"] == pytest.approx(2.0)
    assert "FAIL" in rep.table() and "all checks pass" not in rep.table()  # the verdict is landuse.evaluation.checks'



def test_quota_cluster_unit_and_water() -> None:
    ds = _quota_landscape()
    fail = quota_report(ds, _after(), _scenario(open_space_quota={"share": 0.2, "unit": "cluster"}))
    assert fail.units[-1]["margin_ha"] == pytest.approx(2.0 - 2.8)
    assert fail.units[-1]["quota_met"] is False
    ok = quota_report(ds, _after(), _scenario(open_space_quota={"share": 0.1, "unit": "cluster"}))
    assert ok.units[-1]["quota_met"] is True and ok.units[0]["quota_met"] is None
    wet = quota_report(ds, QUOTA_LU, _scenario(open_space_quota={"share": 0.5, "unit": "city",
                                                                "include_water": True}))
    assert wet.units[0]["land_area_ha"] == 8.0 and wet.units[0]["open_space_ha"] == 5.0


def test_red_line_and_permanent_farmland_listed() -> None:
    red = np.zeros((4, 4), dtype=bool)
    red[0, 0] = True
    pf = np.zeros((4, 4), dtype=bool)
    pf[3, 1] = True
    ds = _quota_landscape(red_line=red, permanent_farmland=pf)
    sc = _scenario()
    assert quota_report(ds, QUOTA_LU, sc).red_line["intact"]
    after = QUOTA_LU.copy()
    after[0, 0] = R
    after[3, 1] = IND
    rep = quota_report(ds, after, sc)
    assert rep.red_line["converted_cells"] == 1
    assert rep.red_line["converted"][0] == {"row": 0, "col": 0, "x": 50.0, "y": 350.0,
                                            "before": "forest", "after": "residential"}
    assert rep.permanent_farmland["intact"] is False
    assert rep.permanent_farmland["converted"][0]["after"] == "industrial"
    off = quota_report(ds, after, _scenario(red_line=False, permanent_farmland=False))
    assert off.red_line["enforced"] is False and off.red_line["converted_cells"] == 1  # reported, not enforced


def test_quota_counts_the_protected_open_space_layer() -> None:
    pos = np.zeros((4, 4), dtype=bool)
    pos[0:3, 3] = True  # two farmland cells and one residential cell of city 2
    ds = _quota_landscape(protected_open_space=pos)
    rep = quota_report(ds, QUOTA_LU, _scenario(open_space_quota={"share": 0.25, "unit": "city"}))
    assert rep.units[1]["open_space_ha"] == 2.0 and rep.units[1]["quota_met"] is True  # 2 of 8 ha
    off = quota_report(ds, QUOTA_LU, _scenario(open_space_quota={"share": 0.25, "unit": "city"},
                                               protected_open_space=False))
    assert off.units[1]["open_space_ha"] == 0.0 and off.units[1]["quota_met"] is False


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), strip_cells=st.integers(1, 150), quota_unit=st.sampled_from(["city", "cluster"]),
       water=st.booleans(), with_layers=st.booleans())
def test_quota_report_is_the_same_whatever_the_strip_height(seed, strip_cells, quota_unit, water, with_layers) -> None:
    """Every amount of the quota table is a count of cells added strip by strip (``landuse.core.strips.STRIP_CELLS``):
    any strip height gives the table of one strip, the listed converted cells included."""
    import landuse.io.rasters

    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(2, 22, size=2))
    lu = rng.choice([F, OS, R, IND, W], size=shape, p=[0.4, 0.2, 0.2, 0.1, 0.1]).astype(np.uint8)
    lu[rng.random(shape) < 0.05] = N
    after = lu.copy()
    grow = (rng.random(shape) < 0.3) & (lu != N)
    after[grow] = rng.choice([R, IND, C, F], size=int(grow.sum()))
    layers = {"landuse": lu, "cities": rng.integers(-1, 5, size=shape).astype(np.int32)}
    if with_layers:
        layers |= {k: rng.random(shape) < 0.3 for k in ("red_line", "permanent_farmland", "protected_open_space")}
    ds = new_landscape(layers, crs="EPSG:32651", transform=Affine(100.0, 0.0, 0.0, 0.0, -100.0, 4000.0))
    sc = _scenario(open_space_quota={"share": 0.2, "unit": quota_unit, "include_water": water})
    whole = quota_report(ds, after, sc)
    old = landuse.core.strips.STRIP_CELLS
    landuse.core.strips.STRIP_CELLS = strip_cells
    try:
        got = quota_report(ds, after, sc)
    finally:
        landuse.core.strips.STRIP_CELLS = old
    assert got.units == whole.units
    assert got.red_line == whole.red_line and got.permanent_farmland == whole.permanent_farmland
    if with_layers:
        assert whole.red_line["converted_cells"] > 0 or not (layers["red_line"] & (lu != after)).any()


def _quota_twin(ds, after: np.ndarray, sc) -> dict:
    """The quota table's amounts (cells) per city and for the cluster with whole-raster masks of the public
    functions (``land_area_mask``, ``open_space_mask``, ``is_role``): the reference of the one-pass kernel."""
    from landuse.surfaces.constraints import land_area_mask, open_space_mask, protected_open_space

    classes = sc.classes
    q = sc.config.policy.open_space_quota
    wet = bool(q.include_water) if q is not None else False
    before = ds["landuse"].values
    study = ds["study_area"].values
    prot = protected_open_space(ds, sc)
    land = land_area_mask(ds, classes, include_water=wet, landuse=after)
    masks = (land, open_space_mask(after, classes, include_water=wet, protected=prot) & land,
             open_space_mask(before, classes, include_water=wet, protected=prot)
             & land_area_mask(ds, classes, include_water=wet, landuse=before),
             classes.is_role(before, "farmland") & study, classes.is_role(after, "farmland") & study,
             classes.is_role(before, "farmland") & ~classes.is_role(after, "farmland") & study,
             classes.is_role(after, "urban") & ~classes.is_role(before, "urban") & study)
    cities = ds["cities"].values.astype(np.int64) if "cities" in ds else np.zeros(before.shape, np.int64)
    cities = np.where(study & (cities > 0), cities, 0)
    out = {"cluster": tuple(int(m.sum()) for m in masks)}
    for c in np.unique(cities[cities > 0]).tolist():
        out[f"city {c}"] = tuple(int((m & (cities == c)).sum()) for m in masks)
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), water=st.booleans(), protected=st.booleans(), cities=st.booleans(),
       dtype=st.sampled_from([np.int32, np.uint16, np.int64, np.float32]), strip_cells=st.integers(1, 200))
def test_quota_amounts_equal_the_whole_raster_masks(seed, water, protected, cities, dtype, strip_cells) -> None:
    """Land, open space (now and before), farmland before / after / lost and new urban land per city and for the
    cluster: the compiled one-pass counts equal the masks of the constraint functions cell for cell."""
    import landuse.io.rasters

    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 25, size=2))
    lu = rng.choice([F, OS, R, IND, W, C], size=shape).astype(np.uint8)
    lu[rng.random(shape) < 0.08] = N
    after = lu.copy()
    change = (rng.random(shape) < 0.4) & (lu != N)
    after[change] = rng.choice([R, IND, C, F, OS, W], size=int(change.sum()))
    layers = {"landuse": lu}
    if cities:
        layers["cities"] = rng.integers(-2, 7, size=shape).astype(dtype)
    if protected:
        layers["protected_open_space"] = rng.random(shape) < 0.4
    ds = new_landscape(layers, crs="EPSG:32651", transform=Affine(100.0, 0.0, 0.0, 0.0, -100.0, 100.0 * shape[0]))
    sc = _scenario(open_space_quota={"share": 0.2, "unit": "city", "include_water": water})
    want = _quota_twin(ds, after, sc)
    old = landuse.core.strips.STRIP_CELLS
    landuse.core.strips.STRIP_CELLS = strip_cells
    try:
        rep = quota_report(ds, after, sc)
    finally:
        landuse.core.strips.STRIP_CELLS = old
    keys = ("land_area_ha", "open_space_ha", "open_space_before_ha", "farmland_before_ha", "farmland_after_ha",
            "farmland_loss_ha", "new_urban_ha")
    got = {u["unit"]: tuple(u[k] for k in keys) for u in rep.units}
    assert got == {name: tuple(float(v) for v in cells) for name, cells in want.items()}  # 1 ha cells


def test_quota_report_rejects_nodata_in_study_area() -> None:
    ds = _quota_landscape()
    after = QUOTA_LU.copy()
    after[2, 2] = N
    with pytest.raises(LanduseError, match="nodata cells inside the study area"):
        quota_report(ds, after, _scenario())


def _slow_components(b: np.ndarray, o: np.ndarray, s: np.ndarray) -> dict[str, int]:
    v = (b != N) & (o != N) & (s != N)
    oc, sc = (o != b) & v, (s != b) & v
    return {"hits": int((oc & sc & (o == s)).sum()), "wrong_hits": int((oc & sc & (o != s)).sum()),
            "misses": int((oc & ~sc).sum()), "false_alarms": int((sc & ~oc).sum()),
            "correct_rejections": int((v & ~oc & ~sc).sum())}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_validation_matches_direct_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 12, size=2))
    pool = np.array([R, IND, C, F, OS, W, N], dtype=np.uint8)
    b, o, s = (rng.choice(pool, size=shape, p=[0.15, 0.1, 0.1, 0.3, 0.2, 0.1, 0.05]).astype(np.uint8)
               for _ in range(3))
    assert change_components(b, o, s) == _slow_components(b, o, s)
    v = (b != N) & (o != N) & (s != N)
    acc = overall_accuracy(o, s, study_area=v)
    if v.any():
        assert acc == pytest.approx(float((o == s)[v].mean()))
        d = disagreement(o, s, study_area=v)
        assert d["quantity"] + d["allocation"] == pytest.approx(1 - acc)
        gains = change_components_by_class(b, o, s, codes=(R,))[R]
        og, sg = (o == R) & (b != R) & v, (s == R) & (b != R) & v
        assert gains["hits"] == int((og & sg).sum()) and gains["false_alarms"] == int((sg & ~og).sum())
        full = validation_metrics(b, o, s, S)
        assert full["lee_sallee"]["residential"] == pytest.approx(
            lee_sallee(o == R, s == R, study_area=v), nan_ok=True)
        assert full["change_components"] == _slow_components(b, o, s)


def test_non_square_cells_keep_their_height_and_width():
    """Cells 100 m high and 50 m wide: edges and the LEI buffer are measured in metres on both axes."""
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 1] = True
    m = landscape_metrics(mask, cell_size=(100.0, 50.0))
    assert m["total_area"] == pytest.approx(0.5)  # 100 m x 50 m
    # two sides 100 m long (left, right), two 50 m long (top, bottom) over 9 x 0.5 ha
    assert m["edge_density"] == pytest.approx(300.0 / 4.5)
    classes = default_scheme()
    res, farm = classes.code_of("residential"), classes.codes_with_role("farmland")[0]
    before = np.full((3, 3), farm, dtype=np.uint8)
    before[1, 2] = res  # old urban 50 m east of the new cell
    after = before.copy()
    after[1, 1] = res
    exp = expansion_types(before, after, classes, cell_size=(100.0, 50.0), buffer_m=100.0)
    # within 100 m: the cells north and south (100 m) and west and east (50 m); the diagonals are 112 m away
    assert exp.lei.tolist() == [pytest.approx(25.0)]
    assert exp.patch_area_ha.tolist() == [pytest.approx(0.5)]


# --------------------------------------------------------------------------- strip by strip


def _slow_counts(mask: np.ndarray, study: np.ndarray) -> dict[str, int]:
    """Numpy twin of :func:`landscape_counts` on the whole raster."""
    m = mask & study
    pad = np.pad(study, 1)
    left, right = pad[1:-1, :-2], pad[1:-1, 2:]
    up, down = pad[:-2, 1:-1], pad[2:, 1:-1]
    lr = int((~left[m]).sum() + (~right[m]).sum())
    return {
        "class_cells": int(m.sum()),
        "like_adjacencies_h": int((m[:, :-1] & m[:, 1:]).sum()),
        "like_adjacencies_v": int((m[:-1, :] & m[1:, :]).sum()),
        "boundary_sides": lr + int((~up[m]).sum() + (~down[m]).sum()),
        "boundary_sides_lr": lr,
        "study_cells": int(study.sum()),
    }


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), density=st.floats(0.0, 1.0), strip=st.integers(1, 14))
def test_landscape_counts_strip_by_strip_equal_the_whole_raster(seed: int, density: float, strip: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 15, size=2))
    mask = rng.random(shape) < density
    study = rng.random(shape) < 0.85
    whole = landscape_counts(mask, study_area=study)
    assert landscape_counts(mask, study_area=study, strip_rows=strip) == whole
    assert whole == _slow_counts(mask, study)
    # the counts are the ones landscape_metrics uses
    res = landscape_metrics(mask, cell_size=10.0, study_area=study) if study.any() else None
    if res is not None:
        assert res["total_area"] == pytest.approx(whole["class_cells"] * 0.01)
        if whole["class_cells"]:
            e_star = 4 * whole["class_cells"] - 2 * (whole["like_adjacencies_h"] + whole["like_adjacencies_v"])
            assert res["landscape_shape_index"] == pytest.approx(0.25 * e_star / math.sqrt(whole["class_cells"]))


def test_landscape_counts_rejects_a_bad_strip_height() -> None:
    with pytest.raises(ValueError, match="strip_rows"):
        landscape_counts(MASK, strip_rows=0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), strip=st.integers(1, 13), with_study=st.booleans())
def test_validation_histogram_strip_by_strip_equals_the_whole_grid(seed: int, strip: int, with_study: bool) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 14, size=2))
    pool = np.array([R, IND, C, F, OS, W, N], dtype=np.uint8)
    maps = tuple(rng.choice(pool, size=shape).astype(np.uint8) for _ in range(3))
    study = rng.random(shape) < 0.8 if with_study else None
    whole, codes = joint_histogram(maps, study_area=study, nodata=N, strip_rows=None)
    strips, codes_s = joint_histogram(maps, study_area=study, nodata=N, strip_rows=strip)
    assert codes_s == codes
    np.testing.assert_array_equal(strips, whole)
    # the whole-grid histogram against direct counting
    valid = np.ones(shape, dtype=bool) if study is None else study.copy()
    for m in maps:
        valid &= m != N
    assert int(whole.sum()) == int(valid.sum())
    if codes:
        i, j, k = (codes.index(int(maps[n][valid][0])) for n in range(3))
        direct = int((valid & (maps[0] == codes[i]) & (maps[1] == codes[j]) & (maps[2] == codes[k])).sum())
        assert whole[i, j, k] == direct

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), runs=st.integers(1, 5))
def test_change_histogram_equals_the_joint_histogram(seed: int, runs: int) -> None:
    """The calibration's fixed-pair histogram: a map's is joint_histogram's; the ensemble mean of runs is the mean
    of the runs' histograms."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(2, 30, size=2))
    before = rng.choice(np.array([F, OS, R, W], dtype=np.uint8), size=shape)
    observed = np.where(rng.random(shape) < 0.3, rng.choice(np.array([R, IND], dtype=np.uint8), size=shape), before)
    valid = rng.random(shape) < 0.9
    types = (R, IND, C)
    hist = ChangeHistogram(before, observed, valid, codes=types)
    sims = []
    counts = np.zeros((len(types), *shape), dtype=np.int32)
    for _ in range(runs):
        k = rng.integers(0, len(types), size=shape)
        conv = (rng.random(shape) < 0.2) & (before != W)
        sims.append(np.where(conv, np.asarray(types, dtype=np.uint8)[k], before))
        for t in range(len(types)):
            counts[t] += conv & (k == t)
    for sim in sims:
        h, codes = joint_histogram((before, observed, sim), study_area=valid, nodata=N, strip_rows=None)
        full = np.zeros((hist.K,) * 3)
        idx = [int(np.flatnonzero(hist.codes == c)[0]) for c in codes]
        full[np.ix_(idx, idx, idx)] = h
        np.testing.assert_array_equal(hist.of_map(sim), full)
    mean = hist.of_counts(counts, runs, types)
    np.testing.assert_allclose(mean, np.mean([hist.of_map(s) for s in sims], axis=0), atol=1e-9)
    if runs == 1:
        scores = change_scores(mean, hist.codes, S.urban_codes)
        assert scores == change_scores(hist.of_map(sims[0]), hist.codes, S.urban_codes)
        assert scores["fom"] == figure_of_merit(before, observed, sims[0], study_area=valid)


def test_kappa_simulation_counts_a_simulated_class_absent_from_both_maps() -> None:
    # class 2 appears in the simulated map only: p_o = 3/5; p_e = 0.8 (0.5 * 0.5 + 0.5 * 0.25) + 0.2 * 1 = 0.5
    b, o, s = np.array([[4, 4, 4, 4, 5]]), np.array([[1, 1, 4, 4, 5]]), np.array([[1, 2, 1, 4, 5]])
    assert kappa_simulation(b, o, s) == pytest.approx(0.2, abs=1e-12)



@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), role=st.sampled_from(["urban", "farmland", "open_space", "water",
                                                             "residential", "industrial", "commercial"]))
def test_is_role_equals_a_lookup_table(seed: int, role: str) -> None:
    rng = np.random.default_rng(seed)
    lu = rng.integers(0, 256, size=tuple(int(v) for v in rng.integers(1, 20, size=2))).astype(np.uint8)
    lu[rng.random(lu.shape) < 0.6] = rng.choice(np.array([R, IND, C, F, OS, W, N], dtype=np.uint8))
    for roles in ((role,), (role, "farmland")):
        lut = np.zeros(256, dtype=bool)
        lut[list(S.codes_with_role(*roles))] = True
        got = S.is_role(lu, *roles)
        assert got.dtype == bool and got.shape == lu.shape
        np.testing.assert_array_equal(got, lut[lu])


def test_lei_beyond_65535_patches() -> None:
    """The kernel's uint16 stamps wrap after 65 535 patches: patch 65 536 still counts the cells patch 1 counted.

    Patch 1 is a line down column 0 (its buffer reaches column 2); then single cells every
    other row and column from column 4, 217 a row, so patch 65 536 is at row 604, column 4,
    and its buffer takes in column 2 again.
    """
    from landuse.evaluation.metrics import disk_offsets

    rows, cols = 610, 440
    rng = np.random.default_rng(3)
    before = np.where(rng.random((rows, cols)) < 0.3, R, F).astype(np.uint8)
    before[:, 0] = F
    before[::2, 4:437:2] = F
    after = before.copy()
    after[:, 0] = R
    after[::2, 4:437:2] = R
    exp = expansion_types(before, after, S, cell_size=10.0, buffer_m=20.0)
    assert exp.lei.size == 1 + 305 * 217 > 65536
    dy, dx = disk_offsets(2.0)
    old = before == R
    rr, cc = np.mgrid[0:rows:2, 4:437:2]
    buf = np.zeros(rr.shape, dtype=np.int64)
    old_in = np.zeros(rr.shape, dtype=np.int64)
    for oy, ox in zip(dy, dx, strict=True):
        y, x = rr + oy, cc + ox
        inside = (y >= 0) & (y < rows) & (x >= 0) & (x < cols)
        buf += inside
        old_in += inside & old[np.clip(y, 0, rows - 1), np.clip(x, 0, cols - 1)]
    expected = np.where(buf > 0, 100.0 * old_in / np.maximum(buf, 1), 0.0).ravel()  # labels in row-major order
    np.testing.assert_array_equal(exp.lei[1:], expected)
