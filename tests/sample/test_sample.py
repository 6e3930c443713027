"""The synthetic sample city cluster: determinism, plausibility ranges, alignment, YAML.

The plausible ranges checked here are the ones documented in docs/sample.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from scipy import ndimage
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.config import load_scenario
from landuse.io.rasters import read_class_names, read_landscape
from landuse.sample.generate import generate_sample
from landuse.sample.region import LAYER_FILES, build_sample

SIZE = 200
SEED = 7
REPO = Path(__file__).resolve().parents[2]
SCHEME = default_scheme()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    """Two generations with the same seed, one with another seed (200 x 200 cells)."""
    a = tmp_path_factory.mktemp("sample_a")
    b = tmp_path_factory.mktemp("sample_b")
    c = tmp_path_factory.mktemp("sample_c")
    info_a = generate_sample(a, size=SIZE, seed=SEED)
    info_b = generate_sample(b, size=SIZE, seed=SEED)
    info_c = generate_sample(c, size=SIZE, seed=SEED + 1)
    return info_a, info_b, info_c


@pytest.fixture(scope="module")
def region():
    return build_sample(size=SIZE, seed=SEED)


@pytest.fixture(scope="module")
def landscape(generated):
    info = generated[0]
    layers = {("landuse" if k == "landuse_2020" else k): p for k, p in info.files.items() if k != "overview"}
    return read_landscape(layers)


def _urban(lu: np.ndarray) -> np.ndarray:
    return SCHEME.is_role(lu, *URBAN_TYPES)


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_rasters(generated):
    a, b, _ = generated
    names = sorted(p.name for p in a.outdir.iterdir() if p.suffix in (".tif", ".xml"))
    assert len([n for n in names if n.endswith(".tif")]) == len(LAYER_FILES)
    for name in names:
        assert (a.outdir / name).read_bytes() == (b.outdir / name).read_bytes(), name
    assert a.config_path.read_text() == b.config_path.read_text()


def test_different_seed_gives_different_region(generated):
    a, _, c = generated
    for name in ("landuse_2020.tif", "elevation.tif", "cities.tif"):
        assert (a.outdir / name).read_bytes() != (c.outdir / name).read_bytes(), name
    with rasterio.open(a.files["landuse_2020"]) as s1, rasterio.open(c.files["landuse_2020"]) as s2:
        assert (s1.read(1) != s2.read(1)).mean() > 0.2


def test_build_sample_matches_written_files(generated, region):
    info = generated[0]
    for name, path in info.files.items():
        if name == "overview":
            continue
        with rasterio.open(path) as src:
            stored = src.read(1)
        np.testing.assert_array_equal(stored, region.arrays[name].astype(stored.dtype), err_msg=name)


# --------------------------------------------------------------------------- plausibility


def test_class_shares_within_documented_ranges(region):
    s10, s20 = region.role_shares(2010), region.role_shares(2020)
    assert 0.05 <= s10["urban"] <= 0.10
    assert 0.07 <= s20["urban"] <= 0.13
    assert 0.20 <= s20["urban"] / s10["urban"] - 1 <= 0.45
    assert 0.40 <= s20["farmland"] <= 0.65
    assert 0.25 <= s20["open_space"] <= 0.45
    assert 0.01 <= s20["water"] <= 0.08
    assert s20["other"] < 0.01
    assert abs(sum(v for k, v in s20.items() if k != "urban") - 1.0) < 1e-9
    shares = region.class_shares(2020)
    for name in ("forest", "grassland", "wetland", "water", "farmland"):
        assert shares[name] > 0.003, name


def test_new_urban_land_mix_residential_industrial_commercial(region):
    added = region.new_urban_ha()
    total = sum(added.values())
    assert total > 0
    assert abs(added["residential"] / total - 0.60) < 0.03
    assert abs(added["industrial"] / total - 0.25) < 0.03
    assert abs(added["commercial"] / total - 0.15) < 0.03


def test_cities_count_and_clearly_different_sizes(region):
    cities = region.cities
    assert len(cities) >= 5
    ha = [c.urban_2020_ha for c in cities]
    ranks = [c.rank for c in cities]
    assert ranks.count("core") == 1 and ranks.count("medium") >= 2 and ranks.count("small") >= 2
    core = ha[ranks.index("core")]
    medium = [h for h, r in zip(ha, ranks, strict=True) if r == "medium"]
    small = [h for h, r in zip(ha, ranks, strict=True) if r == "small"]
    assert core >= 1.5 * max(medium + small)
    assert min(medium) >= 1.2 * max(small)
    assert core >= 5 * min(small)


def test_every_city_has_each_urban_type_in_its_place(region):
    lu10 = region.arrays["landuse_2010"]
    lu20 = region.arrays["landuse_2020"]
    zones = region.arrays["cities"]
    rows, cols = np.indices(lu10.shape)
    for c in region.cities:
        for t in URBAN_TYPES:
            assert ((lu20 == SCHEME.code_of(t)) & (zones == c.id)).sum() >= 5, (c.id, t)
    # commercial in the centre, industrial towards the edges (core city, 2010)
    core = region.cities[0]
    d = np.hypot(rows - core.centre[0], cols - core.centre[1])
    inside = zones == core.id
    mean_d = {t: d[(lu10 == SCHEME.code_of(t)) & inside & (d < 1.5 * core.radius_cells)].mean() for t in URBAN_TYPES}
    assert mean_d["commercial"] < mean_d["residential"] < mean_d["industrial"]
    # industrial lies closer to rail and major transport than residential land
    transport = region.arrays["rail"] | region.arrays["roads"]
    dt = ndimage.distance_transform_edt(~transport)
    assert dt[lu10 == SCHEME.code_of("industrial")].mean() < dt[lu10 == SCHEME.code_of("residential")].mean()


def test_red_line_permanent_farmland_greenbelt_coverage(region):
    a = region.arrays
    assert 0.15 <= a["red_line"].mean() <= 0.40
    assert 0.10 <= a["permanent_farmland"].mean() <= 0.35
    assert 0.02 <= a["greenbelt"].mean() <= 0.07
    lu10 = a["landuse_2010"]
    # red line: every wetland and water cell, most forest, no 2010 built-up land
    assert a["red_line"][SCHEME.is_role(lu10, "water")].all()
    wet = lu10 == next(c.code for c in SCHEME if c.name == "wetland")
    assert a["red_line"][wet].all()
    assert not a["red_line"][_urban(lu10)].any()
    # permanent farmland is farmland
    assert SCHEME.is_role(lu10, "farmland")[a["permanent_farmland"]].all()
    # the greenbelt rings the core city (city 1) and holds no built-up land or water
    gb = a["greenbelt"]
    assert (a["cities"][gb] == 1).all()
    assert not (_urban(a["landuse_2020"]) | SCHEME.is_role(a["landuse_2020"], "water"))[gb].any()
    core = region.cities[0]
    rows, cols = np.nonzero(gb)
    angles = np.arctan2(rows - core.centre[0], cols - core.centre[1])
    assert np.histogram(angles, bins=8, range=(-np.pi, np.pi))[0].min() > 0  # all the way round


def test_zones_cover_region_one_id_per_city(region):
    cities, counties = region.arrays["cities"], region.arrays["counties"]
    ids = np.unique(cities)
    assert ids.tolist() == list(range(1, len(region.cities) + 1))
    for c in region.cities:
        assert cities[c.centre] == c.id
    assert counties.min() >= 1
    county_ids = np.unique(counties)
    assert len(county_ids) >= len(ids)
    for k in county_ids:  # counties nest in cities
        assert np.unique(cities[counties == k]).size == 1
    areas = [c.territory_ha for c in region.cities]
    assert sum(areas) == pytest.approx(SIZE * SIZE * region.cell_area_ha)


# --------------------------------------------------------------------------- epochs


def test_urban_2010_subset_of_2020_and_protected_cells_unchanged(region):
    a = region.arrays
    lu10, lu20 = a["landuse_2010"], a["landuse_2020"]
    u10, u20 = _urban(lu10), _urban(lu20)
    assert not (u10 & ~u20).any()
    assert (u20 & ~u10).sum() > 0.2 * u10.sum()
    changed = lu10 != lu20
    assert not (changed & a["red_line"]).any()
    assert not (changed & a["permanent_farmland"]).any()
    assert not (changed & SCHEME.is_role(lu10, "water")).any()
    assert not (changed & ~u20).any()  # every change is a conversion to urban land
    assert not (changed & u10).any()  # existing urban land keeps its type
    assert (region.arrays["slope"][changed] < 12).all()


def test_growth_happens_at_edges_and_near_roads(region):
    a = region.arrays
    u10 = _urban(a["landuse_2010"])
    new = _urban(a["landuse_2020"]) & ~u10
    d_urban = ndimage.distance_transform_edt(~u10)
    lbl, _ = ndimage.label(u10 | new, structure=np.ones((3, 3)))
    attached = np.isin(lbl, np.unique(lbl[u10]))
    assert attached[new].mean() > 0.75  # mostly growth at the edges of 2010 built-up land
    assert (new & ~attached).any()  # and some new patches
    assert (d_urban[new] > 3).any()  # some new patches
    d_road = ndimage.distance_transform_edt(~a["roads"])
    candidates = ~u10 & ~a["red_line"] & ~a["permanent_farmland"]
    assert d_road[new].mean() < d_road[candidates].mean()


# --------------------------------------------------------------------------- terrain and transport


def test_rivers_flow_downhill_in_the_stored_elevation(generated, region):
    with rasterio.open(generated[0].files["elevation"]) as src:
        elev = src.read(1)
        assert src.dtypes[0] == "int16"
    water = SCHEME.is_role(region.arrays["landuse_2010"], "water")
    assert len(region.rivers) >= 3
    for path in region.rivers:
        profile = elev[path[:, 0], path[:, 1]].astype(int)
        assert (np.diff(profile) <= 0).all()
        assert water[path[:, 0], path[:, 1]].all()
        steps = np.abs(np.diff(path, axis=0)).max(axis=1)
        assert (steps == 1).all()  # 8-connected
    assert elev.max() - elev.min() > 200  # hills


def test_slope_matches_elevation_and_forest_sits_on_hills(generated, region):
    with rasterio.open(generated[0].files["slope"]) as src:
        slope = src.read(1)
        assert src.dtypes[0] == "float32"
    np.testing.assert_allclose(slope, np.round(slope, 1), atol=1e-4)
    elev = region.arrays["elevation"].astype(float)
    gy, gx = np.gradient(elev, region.cell_size)
    np.testing.assert_allclose(slope, np.degrees(np.arctan(np.hypot(gx, gy))), atol=0.051)
    lu = region.arrays["landuse_2020"]
    forest = lu == next(c.code for c in SCHEME if c.name == "forest")
    assert slope[forest].mean() > 2 * slope[SCHEME.is_role(lu, "farmland")].mean()


def test_rail_stations_and_roads_link_the_cities(region):
    a = region.arrays
    rail, stations, roads = a["rail"], a["stations"], a["roads"]
    assert (rail[stations]).all()
    lbl, n = ndimage.label(rail, structure=np.ones((3, 3)))
    assert n == 1  # one connected line
    served = set()
    for r, c in zip(*np.nonzero(stations), strict=True):
        for city in region.cities:
            if np.hypot(r - city.centre[0], c - city.centre[1]) <= city.radius_cells:
                served.add(city.id)
    assert 1 in served and len(served) >= 3
    core_stations = sum(
        np.hypot(r - region.cities[0].centre[0], c - region.cities[0].centre[1]) <= region.cities[0].radius_cells
        for r, c in zip(*np.nonzero(stations), strict=True)
    )
    assert core_stations >= 2
    lbl, _ = ndimage.label(roads, structure=np.ones((3, 3)))
    centre_labels = {int(lbl[c.centre]) for c in region.cities}
    assert len(centre_labels) == 1 and 0 not in centre_labels  # one road network reaches every centre
    assert a["centres"].sum() == len(region.cities) + 2
    assert all(a["centres"][c.centre] for c in region.cities)


# --------------------------------------------------------------------------- files


def test_every_layer_aligns_and_has_its_kind(generated, landscape):
    info = generated[0]
    assert set(info.files) == {*LAYER_FILES, "overview"}
    ds = landscape
    assert ds.rio.crs.to_epsg() == 32651
    t = ds.rio.transform()
    assert (t.a, -t.e, t.c, t.f) == (60.0, 60.0, 300_000.0, 3_500_000.0)
    for name in ds.data_vars:
        assert ds[name].shape == (SIZE, SIZE), name
    assert ds["landuse"].dtype == np.uint8 and ds["landuse_2010"].dtype == np.uint8
    assert ds["cities"].dtype == np.int32 and ds["red_line"].dtype == bool
    assert ds["elevation"].dtype == np.float32 and not np.isnan(ds["elevation"].values).any()
    assert bool(ds["study_area"].all())
    for name in ("roads", "rail", "stations", "centres", "red_line", "permanent_farmland", "greenbelt"):
        with rasterio.open(info.files[name]) as src:
            assert src.dtypes[0] == "uint8"
            assert set(np.unique(src.read(1)).tolist()) == {0, 1}, name
    assert read_class_names(info.files["landuse_2020"])[SCHEME.code_of("industrial")] == "industrial"
    with rasterio.open(info.files["landuse_2010"]) as src:
        assert src.colormap(1)[SCHEME.code_of("residential")][:3] == SCHEME.by_code(SCHEME.code_of("residential")).rgb


def test_overview_png_is_written(generated):
    png = generated[0].files["overview"]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000


def test_yaml_is_a_complete_runnable_scenario(generated, region):
    info = generated[0]
    sc = load_scenario(info.config_path)
    assert sc.name == "sample"
    assert sc.periods == [2020, 2025, 2030, 2035]
    paths = sc.layer_paths()
    assert paths["landuse"] == info.files["landuse_2020"].resolve()
    assert paths["landuse_2010"] == info.files["landuse_2010"].resolve()
    for name in LAYER_FILES:
        key = "landuse" if name == "landuse_2020" else name
        assert paths[key].exists()
    raw = yaml.safe_load(info.config_path.read_text())
    assert all(not Path(p).is_absolute() for p in raw["layers"].values() if isinstance(p, str))
    cfg = sc.config
    assert cfg.policy.greenbelt.mode == "soft" and cfg.policy.greenbelt.strength == 0.6
    assert cfg.outputs.folder == Path("outputs")
    demand = {t: [cfg.demand.cluster(t, y) for y in (2025, 2030, 2035)] for t in URBAN_TYPES}
    totals = np.sum([demand[t] for t in URBAN_TYPES], axis=0)
    assert (np.diff(totals) > 0).all()  # compound growth
    assert demand["residential"][0] > demand["industrial"][0] > demand["commercial"][0] > 0
    # the first period continues the 2010-2020 rate: about half a decade's growth
    u10 = _urban(region.arrays["landuse_2010"]).sum() * region.cell_area_ha
    u20 = _urban(region.arrays["landuse_2020"]).sum() * region.cell_area_ha
    expected = u20 * ((u20 / u10) ** 0.5 - 1)
    assert totals[0] == pytest.approx(expected, rel=0.01, abs=3)
    assert info.text().count(str(info.config_path)) >= 1


def test_cli_sample_with_separate_config_dir(tmp_path: Path):
    out = tmp_path / "rasters" / "sample"
    cfg = tmp_path / "configs"
    result = CliRunner().invoke(app, ["sample", str(out), "--size", "120", "--seed", "3", "--config-dir", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "sample.yaml" in result.output and "7 cities" in result.output
    sc = load_scenario(cfg / "sample.yaml")
    raw = yaml.safe_load((cfg / "sample.yaml").read_text())
    assert raw["layers"]["landuse"] == "../rasters/sample/landuse_2020.tif"
    assert sc.config.outputs.folder == Path("../outputs/sample")
    assert sc.output_dir() == (tmp_path / "outputs" / "sample").resolve()
    assert all(p.exists() for p in sc.layer_paths().values())


def test_cli_sample_rejects_a_too_small_grid(tmp_path: Path):
    result = CliRunner().invoke(app, ["sample", str(tmp_path / "x"), "--size", "20"])
    assert result.exit_code == 2
    assert "--size must be at least 100" in result.output
    assert "Traceback" not in result.output


def test_committed_sample_loads_and_is_small():
    config = REPO / "configs" / "sample.yaml"
    sc = load_scenario(config)  # checks that every file exists
    paths = sc.layer_paths()
    assert len(paths) == len(LAYER_FILES)
    folder = REPO / "rasters" / "sample"
    assert all(p.parent == folder.resolve() for p in paths.values())
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total < 5_000_000
    with rasterio.open(paths["landuse"]) as src:
        assert (src.width, src.height) == (1000, 1000)
    assert sc.config.outputs.folder == Path("../outputs/sample")


# --------------------------------------------------------------------------- megaregion layout (large sizes)

MEGA = 1000  # forced megaregion at a small size (the default threshold is MEGA_THRESHOLD)


@pytest.fixture(scope="module")
def mega():
    """The megaregion in memory, as one tile."""
    from landuse.sample.mega import build_megaregion

    return build_megaregion(size=MEGA, seed=SEED, cell_size=30.0, tile=MEGA)


@pytest.fixture(scope="module")
def mega_written(tmp_path_factory: pytest.TempPathFactory):
    """The megaregion written twice with different tile sizes (``auto`` with a lowered threshold)."""
    a = tmp_path_factory.mktemp("mega_a")
    b = tmp_path_factory.mktemp("mega_b")
    info_a = generate_sample(a, size=MEGA, seed=SEED, cell_size=30.0, megaregion_from=MEGA, tile=256)
    info_b = generate_sample(b, size=MEGA, seed=SEED, cell_size=30.0, layout="megaregion", tile=400)
    return info_a, info_b


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_megaregion_is_byte_identical_whatever_the_tile_size(mega_written):
    a, b = mega_written
    names = sorted(p.name for p in a.outdir.iterdir() if p.is_file())
    assert {f"{f}" for f in LAYER_FILES.values()} <= set(names)
    assert "overview.png" in names and "sample.yaml" in names
    for name in names:
        assert _sha(a.outdir / name) == _sha(b.outdir / name), name
    manifest = yaml.safe_load((a.outdir / "manifest.json").read_text())
    assert manifest["layout"] == "megaregion"


def test_megaregion_written_files_equal_the_in_memory_tiles(mega_written, mega):
    info = mega_written[0]
    for name in LAYER_FILES:
        with rasterio.open(info.files[name]) as src:
            stored = src.read(1)
            assert src.tags()["layout"] == "megaregion"
        np.testing.assert_array_equal(stored, mega.arrays[name].astype(stored.dtype), err_msg=name)


def test_megaregion_tiles_do_not_change_the_result(mega):
    from landuse.sample.mega import build_megaregion

    other = build_megaregion(size=MEGA, seed=SEED, cell_size=30.0, tile=333, workers=2)  # 9 tiles, 2 processes
    for name, arr in mega.arrays.items():
        np.testing.assert_array_equal(other.arrays[name], arr, err_msg=name)


def test_megaregion_another_seed_differs():
    from landuse.sample.mega import build_megaregion

    a = build_megaregion(size=600, seed=1, tile=600).arrays["landuse_2020"]
    b = build_megaregion(size=600, seed=2, tile=600).arrays["landuse_2020"]
    assert (a != b).mean() > 0.2


def test_megaregion_has_dozens_of_cities_of_very_different_sizes(mega):
    cities = mega.cities
    assert len(cities) >= 24
    ids = np.unique(mega.arrays["cities"])
    assert set(ids.tolist()) == {c.id for c in cities}
    radii = np.array([c.radius_cells for c in cities])
    assert radii[0] >= 3.5 * radii[-1]  # rank-size: area of the n-th city ~ 1/n
    built = np.array([c.urban_2020_ha for c in cities])
    assert built[0] >= 15 * np.median(built[built > 0]) / 4
    assert built[0] == built.max() and built[0] >= 20 * built.min()
    ranks = [c.rank for c in cities]
    assert ranks.count("core") == 1 and ranks.count("large") == 5 and ranks.count("small") >= 4
    u20 = _urban(mega.arrays["landuse_2020"])
    zones = mega.arrays["cities"]
    for c in cities[:8]:
        assert (u20 & (zones == c.id)).sum() > 0, c.id


def test_megaregion_delta_distributaries_reach_the_sea(mega):
    rivers = mega.rivers
    lu = mega.arrays["landuse_2020"]
    elev = mega.arrays["elevation"]
    water = SCHEME.is_role(lu, "water")
    sea_label, _ = ndimage.label(water)
    east = set(np.unique(sea_label[:, -1]).tolist()) - {0}
    apex = tuple(rivers[0][-1])
    distributaries = [r for r in rivers[1:] if tuple(r[0]) == apex]
    assert len(distributaries) >= 4
    ends = set()
    for r in distributaries:
        end = tuple(r[-1])
        assert water[end] and sea_label[end] in east  # ends in the sea, which reaches the east edge
        ends.add(end[0] // 50)
    assert len(ends) >= 4  # mouths spread along the coast
    for r in rivers:
        assert water[r[:, 0], r[:, 1]].all()
        z = elev[r[:, 0], r[:, 1]]
        assert (np.diff(z.astype(np.int32)) <= 0).all()  # never rises downstream


def test_megaregion_rail_corridors_link_the_largest_cities(mega):
    rail = mega.arrays["rail"]
    stations = mega.arrays["stations"]
    zones = mega.arrays["cities"]
    labels, _ = ndimage.label(rail, structure=np.ones((3, 3)))
    served = []
    for c in mega.cities[:8]:
        here = stations & (zones == c.id)
        assert here.any(), c.id
        served.append(set(np.unique(labels[here]).tolist()))
    common = set.intersection(*served)
    assert common - {0}  # one connected rail network serves the eight largest cities
    roads = mega.arrays["roads"]
    for c in mega.cities:
        r, col = c.centre
        assert roads[max(r - 2, 0):r + 3, max(col - 2, 0):col + 3].any(), c.id


def test_megaregion_growth_and_policy_masks_are_consistent(mega):
    a = mega.arrays
    u10, u20 = _urban(a["landuse_2010"]), _urban(a["landuse_2020"])
    assert (u10 <= u20).all() and u20.sum() > 1.15 * u10.sum()
    changed = a["landuse_2010"] != a["landuse_2020"]
    assert not (changed & ~u20).any()  # every change is a conversion to urban land
    assert not (changed & (a["red_line"] | a["permanent_farmland"])).any()
    water = SCHEME.is_role(a["landuse_2010"], "water")
    assert (a["red_line"] >= water).all() and not (a["red_line"] & u10).any()
    assert a["permanent_farmland"].mean() > 0.05 and a["greenbelt"].mean() > 0.005
    assert set(np.unique(a["cities"][a["greenbelt"]]).tolist()) <= {1, 2, 3}
    county_city = {}
    for county, city in zip(a["counties"].ravel()[::7], a["cities"].ravel()[::7], strict=True):
        assert county_city.setdefault(int(county), int(city)) == int(city)  # counties nest in cities
    assert len(county_city) > len(mega.cities)
    s = mega.role_shares(2020)
    assert 0.04 <= s["urban"] <= 0.15 and 0.3 <= s["farmland"] <= 0.65 and s["water"] > 0.05


def test_megaregion_layers_align_and_the_yaml_validates(mega_written):
    info = mega_written[0]
    layers = {("landuse" if k == "landuse_2020" else k): p for k, p in info.files.items() if k != "overview"}
    ds = read_landscape(layers)
    assert ds.sizes == {"y": MEGA, "x": MEGA}
    assert read_class_names(info.files["landuse_2020"])[SCHEME.code_of("residential")] == "residential"
    load_scenario(info.config_path)
    assert "megaregion" in yaml.safe_load(info.config_path.read_text())["description"]
    total = sum(v for t in URBAN_TYPES for v in info.demand_ha[t].values())
    assert total > 0
    result = CliRunner().invoke(app, ["validate", str(info.config_path)])
    assert result.exit_code == 0, result.output


def test_megaregion_rejects_a_too_small_grid(tmp_path: Path):
    result = CliRunner().invoke(app, ["sample", str(tmp_path / "x"), "--size", "300", "--layout", "megaregion"])
    assert result.exit_code != 0
    assert "at least 500" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["sample", str(tmp_path / "y"), "--layout", "huge"])
    assert result.exit_code != 0 and "--layout must be one of" in result.output
