"""Property tests: every policy the plan sets holds on every Monte Carlo run's map.

Random small regions and policy mixes (hypothesis, 200 examples) go through the real
pipeline (:func:`landuse.pipeline.run.run_scenario` with ``keep_runs=True``); each run's map of
each period is checked against the policies, computed from the rasters themselves:
hard masks never change, the farmland-loss cap (per period and over the horizon), the
open-space quota per unit, city growth limits, and the plan's amounts per zone, source
role and band are never exceeded; where a run placed its whole plan, the TOD share and
the jobs-housing band hold too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml
from conftest import write_array
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landuse.allocation.pieces import SOURCE_ROLES
from landuse.allocation.zones import zone_grid
from landuse.core.classes import URBAN_TYPES, default_scheme
from landuse.core.errors import InfeasibleAllocationError
from landuse.core.landscape import cell_area_ha, cell_size
from landuse.pipeline.run import run_scenario
from landuse.surfaces.constraints import land_area_mask, open_space_mask
from landuse.surfaces.suitability import distance_to

S = default_scheme()
FARM = S.codes_with_role("farmland")[0]
OPEN = S.codes_with_role("open_space")
OTHER = S.codes_with_role("other")
WATER = S.codes_with_role("water")[0]
URBAN = [S.code_of(t) for t in URBAN_TYPES]


def _blobs(rng: np.random.Generator, shape: tuple[int, int], n: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, dtype=bool)
    for _ in range(n):
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        out |= (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(1, r + 1) ** 2
    return out


def make_region(seed: int, base: Path) -> tuple[Path, dict]:
    """A random region (GeoTIFFs) and scenario (YAML) with a random mix of policies."""
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(18, 30)), int(rng.integers(18, 30))
    shape = (rows, cols)
    lu = np.full(shape, FARM, dtype=np.uint8)
    lu[_blobs(rng, shape, 4, 5)] = OPEN[0]
    lu[_blobs(rng, shape, 3, 3)] = OTHER[0]
    lu[_blobs(rng, shape, 1, 2)] = WATER
    for code in URBAN:
        lu[_blobs(rng, shape, 2, 2)] = code
    cities = np.ones(shape, dtype=np.int32)
    cities[:, cols // 2:] = 2
    if rng.random() < 0.5:
        cities[rows // 2:, :] = 3
    layers = {"landuse": write_array(base / "landuse.tif", lu, classes=S),
              "cities": write_array(base / "cities.tif", cities)}
    policy: dict = {"coordination": str(rng.choice(["cluster", "city"]))}
    for name, n, r in (("red_line", 2, 3), ("permanent_farmland", 2, 3), ("protected_open_space", 2, 3)):
        if rng.random() < 0.7:
            layers[name] = write_array(base / f"{name}.tif", _blobs(rng, shape, n, r).astype(np.uint8))
    if rng.random() < 0.7:
        layers["greenbelt"] = write_array(base / "greenbelt.tif", _blobs(rng, shape, 2, 4).astype(np.uint8))
        policy["greenbelt"] = {"mode": str(rng.choice(["soft", "hard"])), "strength": float(rng.uniform(0, 1))}
    if rng.random() < 0.5:
        ugb = np.zeros(shape, dtype=np.uint8)
        ugb[rows // 6: rows - rows // 6, cols // 6: cols - cols // 6] = 1
        layers["growth_boundary"] = write_array(base / "growth_boundary.tif", ugb)
        policy["growth_boundary"] = {"mode": str(rng.choice(["soft", "hard"])),
                                     "outside_factor": float(rng.uniform(0, 1))}
    if rng.random() < 0.6:
        stations = np.zeros(shape, dtype=np.uint8)
        stations[rng.integers(0, rows, 3), rng.integers(0, cols, 3)] = 1
        layers["stations"] = write_array(base / "stations.tif", stations)
        policy["tod"] = {"radius_m": float(rng.choice([300, 500, 800])), "share": float(rng.uniform(0.05, 0.5))}
    if rng.random() < 0.5:
        # a unit already below the quota plans on losing no open space there (the default refuses such a run)
        policy["open_space_quota"] = {"share": float(rng.uniform(0.02, 0.3)),
                                      "unit": str(rng.choice(["city", "cluster"])),
                                      "already_below": "no_further_loss"}
    demand_cells = {t: int(rng.integers(2, 12)) for t in URBAN_TYPES}
    total_ha = sum(demand_cells.values())  # 100 m cells: 1 ha each
    if rng.random() < 0.5:
        policy["farmland_loss_cap"] = {"hectares": float(rng.integers(total_ha // 3, total_ha + 1)),
                                       "per": str(rng.choice(["period", "horizon"]))}
        if policy["farmland_loss_cap"]["per"] == "horizon":
            policy["farmland_loss_cap"]["hectares"] *= 2
    if rng.random() < 0.4:
        lo = float(rng.uniform(0, 0.5))
        policy["jobs_housing"] = {"min": lo, "max": lo + float(rng.uniform(0.3, 3))}
    if rng.random() < 0.3:
        policy["city_growth_limits"] = {1: float(rng.integers(total_ha // 2, total_ha + 5))}
    d = {
        "name": f"prop{seed}",
        "layers": {k: str(Path(v).relative_to(base)) for k, v in layers.items()},
        "periods": [2020, 2025, 2030],
        "demand": {t: {2025: float(c), 2030: float(c)} for t, c in demand_cells.items()},
        "policy": policy,
        "allocation": {"block_size_m": float(rng.choice([300, 500, 1000])), "working_set": "never"},
        "growth": {"runs": 3, "seed": int(seed), "iterations": 3,
                   "spontaneous_share": float(rng.choice([0.0, 0.2]))},
        "outputs": {"figures": False, "html": False, "folder": "out"},
    }
    path = base / "scenario.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path, d


def check_map(res, p_idx: int, before: np.ndarray, after: np.ndarray, *, run_complete: bool,
              lost_before_ha: float) -> float:
    """Assert every policy on one run's map of one period; return the farmland lost (ha)."""
    sc = res.scenario
    pol = sc.config.policy
    ds = res.report.landscape
    ca = cell_area_ha(ds)
    year = sc.periods[p_idx + 1]
    changed = before != after
    for layer, on in (("red_line", pol.red_line), ("permanent_farmland", pol.permanent_farmland),
                      ("protected_open_space", pol.protected_open_space)):
        if on and layer in ds:
            assert not (changed & ds[layer].values.astype(bool)).any(), (layer, year)
    assert not (changed & S.is_role(before, "water")).any()
    if pol.greenbelt.mode == "hard" and "greenbelt" in ds:
        assert not (changed & ds["greenbelt"].values.astype(bool)).any(), ("greenbelt", year)
    if pol.growth_boundary.mode == "hard" and "growth_boundary" in ds:
        assert not (changed & ~ds["growth_boundary"].values.astype(bool)).any(), ("growth_boundary", year)
    urban_after = S.is_role(after, *URBAN_TYPES)
    new = {t: S.is_role(after, t) & ~S.is_role(before, t) for t in URBAN_TYPES}
    # farmland cap per period or over the horizon
    lost = float((S.is_role(before, "farmland") & urban_after).sum() * ca)
    cap = pol.farmland_loss_cap
    if cap is not None:
        limit = cap.hectares - (lost_before_ha if cap.per == "horizon" else 0.0)
        assert lost <= max(limit, 0.0) + 1e-6, ("farmland cap", year, lost, limit)
    # open-space quota: met, or (a unit already below it) no open space lost
    q = pol.open_space_quota
    if q is not None:
        prot = ds["protected_open_space"].values.astype(bool) if (
            "protected_open_space" in ds and pol.protected_open_space) else None
        cities = ds["cities"].values
        units = [None] if q.unit == "cluster" else sorted(int(c) for c in np.unique(cities))
        for u in units:
            sel = np.ones(after.shape, bool) if u is None else cities == u
            land_a = land_area_mask(ds, S, landuse=after) & sel
            land_b = land_area_mask(ds, S, landuse=before) & sel
            os_a = (open_space_mask(after, S, protected=prot) & land_a).sum()
            os_b = (open_space_mask(before, S, protected=prot) & land_b).sum()
            if os_b >= q.share * land_b.sum():
                assert os_a >= q.share * land_a.sum() - 1e-9, ("quota", year, u)
            else:
                assert os_a >= os_b, ("quota already unmet, open space lost", year, u)
    for c, lim in pol.city_growth_limits.items():
        assert (urban_after & ~S.is_role(before, *URBAN_TYPES) & (ds["cities"].values == c)).sum() * ca <= lim + 1e-6
    # the plan's amounts per zone, type, source role and band are never exceeded
    alloc = res.allocations[p_idx]
    zones = zone_grid(ds, block_size_m=sc.config.allocation.block_size_m).zones
    near = (distance_to(ds["stations"].values.astype(bool), cell=cell_size(ds)) <= pol.tod.radius_m
            if pol.tod is not None and "stations" in ds else np.zeros(after.shape, bool))
    band_masks = {"near_station": near}
    if pol.greenbelt.mode == "soft" and "greenbelt" in ds and pol.greenbelt.strength > 0:
        band_masks["greenbelt"] = ds["greenbelt"].values.astype(bool)
    if pol.growth_boundary.mode == "soft" and "growth_boundary" in ds and pol.growth_boundary.outside_factor < 1:
        band_masks["outside_boundary"] = ~ds["growth_boundary"].values.astype(bool)
    tg = alloc.targets.set_index(["zone", "type"])
    nz = int(zones.max()) + 1
    for t in URBAN_TYPES:
        planned = lambda col, t=t: tg.xs(t, level="type")[col].reindex(range(nz), fill_value=0).to_numpy()  # noqa: E731
        got = np.bincount(zones[new[t]], minlength=nz)
        assert (got <= planned("cells")).all(), ("cells", year, t)
        if run_complete:
            assert (got == planned("cells")).all(), ("complete run", year, t)
        for r in SOURCE_ROLES:
            got_r = np.bincount(zones[new[t] & S.is_role(before, r)], minlength=nz)
            assert (got_r <= planned(f"from_{r}_cells")).all(), (r, year, t)
        for b, mask in band_masks.items():
            got_b = np.bincount(zones[new[t] & mask], minlength=nz)
            assert (got_b <= planned(f"{b}_cells")).all(), (b, year, t)
            got_out = np.bincount(zones[new[t] & ~mask], minlength=nz)
            assert (got_out <= planned("cells") - planned(f"{b}_cells")).all(), ("outside " + b, year, t)
    if run_complete:
        cities = ds["cities"].values
        n_res = {c: int((new["residential"] & (cities == c)).sum()) for c in np.unique(cities)}
        if pol.tod is not None and "stations" in ds:
            units = [None] if pol.coordination == "cluster" else list(n_res)
            for u in units:
                sel = np.ones(after.shape, bool) if u is None else cities == u
                skipped = any(f"TOD: city {u} " in w for w in alloc.warnings)
                if not skipped:
                    got_near = (new["residential"] & near & sel).sum()
                    assert got_near >= pol.tod.share * (new["residential"] & sel).sum() - 1e-9, ("tod", year, u)
        jh = pol.jobs_housing
        if jh is not None:
            for c, r in n_res.items():
                j = int(((new["industrial"] | new["commercial"]) & (cities == c)).sum())
                assert jh.min * r - 1e-9 <= j <= jh.max * r + 1e-9, ("jobs-housing", year, c, r, j)
    return lost


# 200 examples, the same in every run (CI must not depend on luck); LANDUSE_PROP_EXAMPLES=N and
# LANDUSE_PROP_RANDOM=1 explore more and other regions
@settings(max_examples=int(os.environ.get("LANDUSE_PROP_EXAMPLES", 200)), deadline=None,
          derandomize=not os.environ.get("LANDUSE_PROP_RANDOM"),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_every_run_honours_every_policy(seed, tmp_path_factory) -> None:
    base = tmp_path_factory.mktemp("prop")
    path, _ = make_region(seed, base)
    try:
        res = run_scenario(path, write=False, keep_runs=True)
    except InfeasibleAllocationError:
        return  # an infeasible mix is refused before any map is drawn (its advice is tested elsewhere)
    sc = res.scenario
    lu0 = np.asarray(res.report.landscape["landuse"].values)
    before = lu0
    lost_so_far = 0.0
    for p_idx, year in enumerate(sc.periods[1:]):
        alloc = res.allocations[p_idx]
        assert not alloc.plan_broken, alloc.plan_broken
        sf = res.shortfall[res.shortfall.period == year]
        planned = int(alloc.unit_targets.cells.sum())
        for run, after in enumerate(res.run_landuse[year]):
            placed = int(sum((S.is_role(after, t) & ~S.is_role(before, t)).sum() for t in URBAN_TYPES))
            assert planned - int((sf.target - sf.converted_min).sum()) <= placed <= planned, (year, run)
            check_map(res, p_idx, before, after, run_complete=placed == planned, lost_before_ha=lost_so_far)
        rep = np.asarray(res.landuse[year].values)
        assert any(np.array_equal(rep, m) for m in res.run_landuse[year])
        lost_so_far += check_map(res, p_idx, before, rep, run_complete=int(sf.shortfall.sum()) == 0,
                                 lost_before_ha=lost_so_far)
        before = rep


def test_region_generator_makes_policies_bite() -> None:
    """The random regions are not all trivial: a fixed seed has masks, bands and a binding plan."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        kinds = set()
        for seed in range(12):
            sub = Path(d) / str(seed)
            sub.mkdir()
            _, cfg = make_region(seed, sub)
            kinds |= set(cfg["policy"]) | set(cfg["layers"])
    assert {"tod", "greenbelt", "open_space_quota", "farmland_loss_cap", "red_line", "growth_boundary"} <= kinds


def test_soft_greenbelt_is_priced_in_the_plan(tmp_path) -> None:
    """The LP moves away from a soft greenbelt as its strength rises (not only the CA), and no
    run builds more greenbelt land than planned."""
    rows, cols = 20, 20
    lu = np.full((rows, cols), FARM, dtype=np.uint8)
    lu[8:12, 8:12] = URBAN[0]
    gb = np.zeros((rows, cols), dtype=np.uint8)
    gb[:, :10] = 1  # half of the farmland around the town is greenbelt
    layers = {"landuse": write_array(tmp_path / "landuse.tif", lu, classes=S),
              "greenbelt": write_array(tmp_path / "greenbelt.tif", gb)}
    planned = {}
    for strength in (0.05, 0.3, 0.9):
        d = {"name": "gb", "layers": {k: v.name for k, v in layers.items()}, "periods": [2020, 2030],
             "demand": {"residential": {2030: 60.0}},
             "policy": {"greenbelt": {"mode": "soft", "strength": strength}},
             "allocation": {"block_size_m": 500.0},
             "growth": {"runs": 3, "iterations": 3}, "outputs": {"figures": False, "html": False}}
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(d))
        res = run_scenario(tmp_path / "s.yaml", write=False, keep_runs=True)
        planned[strength] = int(res.allocations[0].targets.greenbelt_cells.sum())
        on_map = [int(((m != lu) & gb.astype(bool)).sum()) for m in res.run_landuse[2030]]
        assert all(n <= planned[strength] for n in on_map), (strength, planned, on_map)
    assert planned[0.05] > planned[0.3] >= planned[0.9] == 0, planned


def test_whole_cells_where_single_cell_moves_get_stuck(tmp_path) -> None:
    """A region (found by this property test) whose TOD, jobs-housing and horizon farmland rows bind together: the
    greedy rounding left 5 cells unplaced and the TOD row 0.65 ha short; the integer programme places every cell and
    keeps every row."""
    path, _ = make_region(31908, tmp_path)
    res = run_scenario(path, write=False, keep_runs=True)
    for a in res.allocations:
        assert not a.plan_broken and not a.plan_unplaced, (a.period, a.plan_broken, a.plan_unplaced)
    lu0 = np.asarray(res.report.landscape["landuse"].values)
    before, lost = lu0, 0.0
    for p_idx, year in enumerate(res.scenario.periods[1:]):
        for after in res.run_landuse[year]:
            check_map(res, p_idx, before, after, run_complete=True, lost_before_ha=lost)
        rep = np.asarray(res.landuse[year].values)
        lost += check_map(res, p_idx, before, rep, run_complete=True, lost_before_ha=lost)
        before = rep
