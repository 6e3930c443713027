"""Tiled growth gives the in-memory result bit for bit, whatever the chunking and the number of workers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from growth_fixtures import BARE, COM, FARM, FOREST, IND, RES, assert_same, random_landscape, targets
from hypothesis import given, settings
from hypothesis import strategies as st

from landuse.growth import GrowthParams, simulate
from landuse.growth.engine import GrowthInputError
from landuse.scale.distributed import dask_client
from landuse.scale.tiled import TileGrid, check_chunks, grow_tiled, simulate_tiled


@pytest.fixture(scope="module")
def cluster1():
    with dask_client("local", workers=1) as client:
        yield client


@pytest.fixture(scope="module")
def cluster2():
    with dask_client("local", workers=2) as client:
        yield client


def _case(nb: int, rows: int, cols: int, *, cells: dict[str, int], spontaneous: float = 0.1, iterations: int = 6,
          seed: int = 0):
    ds = random_landscape(nb + seed, rows, cols, zone_block=13)
    rng = np.random.default_rng(nb + seed)
    suit = rng.random((3, rows, cols)).astype(np.float32)
    allowed = np.zeros((3, 256), bool)
    allowed[:, [FARM, FOREST, BARE]] = True
    allowed[2, RES] = True  # residential may become commercial: a cell can convert twice over two periods
    p = GrowthParams.from_arrays(suit, allowed=allowed, type_codes=(RES, IND, COM), neighbourhood=nb,
                                 spontaneous_share=spontaneous, iterations=iterations, periods=(2030, 2040),
                                 neighbourhood_weights=np.array([[1, .2, .5], [.1, 1, .2], [.8, .1, 1]]))
    t = targets([2030, 2040], ds["zones"].values, cells)
    return ds, p, t


CASES = {
    3: _case(3, 60, 70, cells={"residential": 12, "industrial": 5, "commercial": 3}),
    5: _case(5, 50, 45, cells={"residential": 12, "industrial": 5, "commercial": 3}),
}


@pytest.mark.parametrize("nb", [3, 5])
@pytest.mark.parametrize("chunks", [7, 16, 33])
def test_tiled_equals_in_memory(nb: int, chunks: int) -> None:
    ds, p, t = CASES[nb]
    a = simulate(ds, t, params=p, runs=3, seed=11)
    b = simulate_tiled(ds, t, params=p, runs=3, seed=11, chunks=chunks)
    assert_same(a, b)
    assert len(set(a.run_scores.tolist())) > 1  # runs differ: the representative choice means something


@settings(max_examples=60, deadline=None)
@given(nb=st.sampled_from([3, 5]), rows=st.integers(9, 48), cols=st.integers(9, 48), data=st.data(),
       seed=st.integers(0, 50), spontaneous=st.sampled_from([0.0, 0.1, 0.5]))
def test_tiled_equals_in_memory_for_any_tile_size(nb: int, rows: int, cols: int, data, seed: int,
                                                  spontaneous: float) -> None:
    """Any tile edge from the neighbourhood window up to beyond the grid, any grid shape (tiles cut through zones,
    patches and the halo at every edge), new patches or none: the in-memory result bit for bit."""
    chunks = data.draw(st.integers(nb, max(rows, cols) + 3), label="chunks")
    ds, p, t = _case(nb, rows, cols, cells={"residential": 8, "industrial": 4, "commercial": 2},
                     spontaneous=spontaneous, iterations=4, seed=seed)
    a = simulate(ds, t, params=p, runs=2, seed=seed)
    assert_same(a, simulate_tiled(ds, t, params=p, runs=2, seed=seed, chunks=chunks))


def test_tiled_equals_in_memory_with_catch_up_fill_and_shortfall() -> None:
    # targets beyond what edge growth can place in 2 iterations (catch-up and fill run) and
    # beyond some zones' room (shortfall)
    ds, p, t = _case(3, 40, 37, cells={"residential": 90, "industrial": 40, "commercial": 30}, spontaneous=0.0,
                     iterations=2, seed=4)
    a = simulate(ds, t, params=p, runs=3, seed=5)
    assert a.shortfall.shortfall.sum() > 0
    b = simulate_tiled(ds, t, params=p, runs=3, seed=5, chunks=9)
    assert_same(a, b)


def test_tiled_on_one_and_two_workers(cluster1, cluster2) -> None:
    ds, p, t = CASES[5]
    a = simulate(ds, t, params=p, runs=3, seed=2)
    for client in (cluster1, cluster2):
        assert_same(a, simulate_tiled(ds, t, params=p, runs=3, seed=2, chunks=16, client=client))


def _resident() -> int:
    """Tile states held in this process (by every tile store)."""
    from landuse.scale import tile_tasks

    return len(tile_tasks._STATES)


def _forget_states() -> int:
    from landuse.scale import tile_tasks

    return sum(tile_tasks._drop_states(root) for root in list(tile_tasks._STATE_BYTES))


@pytest.mark.parametrize(("cache_mb", "kept"), [(None, "all"), (0.02, "some"), (0, "none")])
def test_tile_states_kept_some_or_none_give_the_same_result(cache_mb, kept) -> None:
    ds, p, t = CASES[3]
    a = simulate(ds, t, params=p, runs=2, seed=13)
    held = []
    b = simulate_tiled(ds, t, params=p, runs=2, seed=13, chunks=16, cache_mb=cache_mb,
                       progress=lambda ev: held.append(_resident()))
    assert_same(a, b)
    n_tiles = len(TileGrid(60, 70, 16, 1).tiles())
    assert held and {"all": min(held) == n_tiles, "some": 0 < max(held) < n_tiles, "none": max(held) == 0}[kept]
    assert _resident() == 0  # freed at the end


def test_lost_tile_states_are_rebuilt() -> None:
    # a worker that restarts loses its states: the next step finds none and the tile is rebuilt
    ds, p, t = CASES[5]
    a = simulate(ds, t, params=p, runs=2, seed=4)
    freed = []
    b = simulate_tiled(ds, t, params=p, runs=2, seed=4, chunks=16, progress=lambda ev: freed.append(_forget_states()))
    assert_same(a, b)
    assert min(freed) > 0


def test_tile_states_stay_on_the_workers(cluster2) -> None:
    ds, p, t = CASES[3]
    a = simulate(ds, t, params=p, runs=2, seed=6)
    held = []

    def look(ev) -> None:
        per_worker = cluster2.run(_resident)
        held.append(sorted(per_worker.values()))
        if ev["period_index"] == 0 and ev["run"] == 0:
            cluster2.run(_forget_states)  # and rebuilt where lost

    b = simulate_tiled(ds, t, params=p, runs=2, seed=6, chunks=16, client=cluster2, progress=look)
    assert_same(a, b)
    assert _resident() == 0
    assert all(v == [10, 10] for v in held)  # 20 tiles, 10 on each worker, none in this process
    assert sorted(cluster2.run(_resident).values()) == [0, 0]


class _LostActor:
    """An actor whose worker is gone: every call fails."""

    calls = 0

    def run(self, payload):
        _LostActor.calls += 1
        raise OSError("worker lost")


def test_steps_fall_back_to_tasks_when_an_actor_is_lost(cluster2, monkeypatch) -> None:
    from landuse.scale import protocol

    def lost(self):
        if not getattr(self, "_lost", False):  # the first call: the (maybe cached) actors are gone
            self._lost = True
            self._actors = {w: _LostActor() for w in self._actor_workers}
        return self._actors

    ds, p, t = CASES[5]
    a = simulate(ds, t, params=p, runs=2, seed=3)
    simulate_tiled(ds, t, params=p, runs=1, seed=3, chunks=16, client=cluster2)
    cached = protocol._ACTOR_CACHE[cluster2][1]
    monkeypatch.setattr(protocol._Runner, "_step_actors", lost)
    _LostActor.calls = 0
    assert_same(a, simulate_tiled(ds, t, params=p, runs=2, seed=3, chunks=16, client=cluster2))
    assert _LostActor.calls == 1  # tried once, then ordinary tasks
    # the failed actors are not offered to the next run
    assert cluster2 not in protocol._ACTOR_CACHE or protocol._ACTOR_CACHE[cluster2][1] is not cached


def test_step_actors_are_reused_by_the_next_run_on_a_client(cluster2) -> None:
    from landuse.scale import protocol

    ds, p, t = CASES[5]
    a = simulate(ds, t, params=p, runs=1, seed=4)
    assert_same(a, simulate_tiled(ds, t, params=p, runs=1, seed=4, chunks=16, client=cluster2))
    workers, futs, actors = protocol._ACTOR_CACHE[cluster2]
    assert sorted(workers) == sorted(cluster2.scheduler_info()["workers"]) and actors is not None
    assert_same(a, simulate_tiled(ds, t, params=p, runs=1, seed=4, chunks=16, client=cluster2))
    assert protocol._ACTOR_CACHE[cluster2][1] is futs  # no new actors
    assert all(f.status == "finished" for f in futs)


def _write(path, arr, ds, *, nodata=None):
    arr = np.asarray(arr)
    count = 1 if arr.ndim == 2 else arr.shape[0]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[-1], height=arr.shape[-2], count=count,
                       dtype=arr.dtype, crs=ds.rio.crs, transform=ds.rio.transform(), nodata=nodata) as dst:
        dst.write(arr if arr.ndim == 3 else arr[None])


def test_grow_tiled_from_and_to_geotiffs(tmp_path, cluster2) -> None:
    ds, p, t = CASES[3]
    a = simulate(ds, t, params=p, runs=3, seed=9)
    zones = np.where(ds["study_area"].values, ds["zones"].values, 0).astype(np.int32)
    _write(tmp_path / "lu.tif", ds["landuse"].values, ds, nodata=255)
    _write(tmp_path / "zones.tif", zones, ds)
    _write(tmp_path / "pot.tif", p.potential, ds)
    placeholder = p.replace(potential=np.zeros((3, 1, 1), np.uint8))
    r = grow_tiled(tmp_path / "lu.tif", tmp_path / "zones.tif", tmp_path / "pot.tif", t, params=placeholder,
                   chunks=16, runs=3, seed=9, out_dir=tmp_path / "out", client=cluster2, workdir=tmp_path / "work")
    assert r.representative_run == a.representative_run and r.tiles == 4 * 5
    assert r.shortfall.equals(a.shortfall)
    for y, path in r.landuse.items():
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(1), a.landuse[y].values)
            assert src.crs == ds.rio.crs and src.transform == ds.rio.transform() and src.nodata == 255
            assert src.tags()["run"] == str(a.representative_run)
    for (y, typ), path in r.counts.items():
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(1), a.counts.sel(period=y, type=typ).values)
    assert not any((tmp_path / "work").iterdir())  # the tile store is removed
    assert not list((tmp_path / "out").glob(".*part"))


def test_grow_tiled_with_zone_ids_of_several_dtypes(tmp_path) -> None:
    # tiles stage their zone ids in the smallest dtype that holds them (uint8 here, uint16 there)
    ds, p, t = CASES[3]

    def remap(z):
        z = np.asarray(z, dtype=np.int64)
        return np.where((z > 0) & (z % 2 == 1) & (np.arange(z.size).reshape(z.shape) % 70 >= 35), z + 300, z)

    zones = np.where(ds["study_area"].values, ds["zones"].values, 0)
    z2 = remap(zones).astype(np.int32)
    old_new = dict(zip(zones.ravel().tolist(), z2.ravel().tolist(), strict=True))
    assert len(set(old_new.values())) == len(old_new)  # a zone lies on one side only
    assert z2.max() > 255 and set(np.unique(z2[:, :32])) <= set(range(256))
    ds2 = ds.assign(zones=(("y", "x"), z2))
    t2 = t.assign(zone=t["zone"].map(old_new))
    a = simulate(ds2, t2, params=p, runs=2, seed=21)
    _write(tmp_path / "lu.tif", ds["landuse"].values, ds, nodata=255)
    _write(tmp_path / "zones.tif", z2, ds)
    _write(tmp_path / "pot.tif", p.potential, ds)
    placeholder = p.replace(potential=np.zeros((3, 1, 1), np.uint8))
    r = grow_tiled(tmp_path / "lu.tif", tmp_path / "zones.tif", tmp_path / "pot.tif", t2, params=placeholder,
                   chunks=16, runs=2, seed=21, out_dir=tmp_path / "out", workdir=tmp_path / "work")
    assert r.shortfall.equals(a.shortfall)
    for y, path in r.landuse.items():
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(1), a.landuse[y].values)


@pytest.mark.parametrize("bad", [0, 2, 7.5, True, "16", None])
def test_bad_chunks_are_a_clear_error(bad) -> None:
    with pytest.raises(GrowthInputError, match="chunks must be a whole number of cells >= 3"):
        check_chunks(bad, neighbourhood=3)
    ds, p, t = CASES[5]
    with pytest.raises(GrowthInputError, match="chunks must be"):
        simulate_tiled(ds, t, params=p, runs=1, seed=0, chunks=4 if bad == 0 else bad)


def test_tile_grid_covers_the_raster_once() -> None:
    g = TileGrid(23, 17, 7, 2)
    seen = np.zeros((23, 17), int)
    for i, j in g.tiles():
        r0, r1, c0, c1 = g.interior(i, j)
        seen[r0:r1, c0:c1] += 1
        wr0, wr1, wc0, wc1 = g.window(i, j)
        assert wr0 == max(0, r0 - 2) and wr1 == min(23, r1 + 2) and wc0 == max(0, c0 - 2) and wc1 == min(17, c1 + 2)
    assert (seen == 1).all()
    cells = np.arange(23 * 17)
    tile = g.tile_of(cells).reshape(23, 17)
    for n, (i, j) in enumerate(g.tiles()):
        r0, r1, c0, c1 = g.interior(i, j)
        assert (tile[r0:r1, c0:c1] == n).all()


# --------------------------------------------------------------------------- tiled kernels against numpy twins

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from landuse.growth import kernels as K  # noqa: E402
from landuse.growth.engine import potential_levels  # noqa: E402
from landuse.growth.random import stream_key, uniform_numpy  # noqa: E402
from landuse.scale import tiled_kernels as TK  # noqa: E402

KSET = settings(max_examples=30, deadline=None)
_CODES = np.array([1, 2, 3, 4, 5, 8, 255], dtype=np.uint8)  # three urban types, two open classes, water, nodata
_TYPES = np.array([1, 2, 3], dtype=np.int64)


def _bits(mask: np.ndarray) -> np.ndarray:
    bits = np.zeros((mask.size + 63) // 64, dtype=np.uint64)
    for i in np.flatnonzero(mask):
        bits[i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    return bits


@st.composite
def _tiles(draw):
    """A small tile (a window of a larger raster at ``row0, col0`` of ``gcols`` columns) and its inputs."""
    rows, cols = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lu = rng.choice(_CODES, size=rows * cols, p=[0.12, 0.06, 0.06, 0.4, 0.16, 0.1, 0.1])
    zones = rng.integers(0, 4, size=rows * cols).astype(np.int32)
    pot = rng.integers(0, 256, size=(3, rows * cols)).astype(np.uint8)
    pot[rng.random((3, rows * cols)) < 0.2] = 0
    allowed = np.zeros((3, 256), dtype=bool)
    allowed[:, 4] = True
    allowed[:, 5] = rng.random(3) < 0.7
    allowed[2, 1] = rng.random() < 0.5
    quota = rng.integers(0, 4, size=12).astype(np.int64)
    inertia = np.where(rng.random((4, 3)) < 0.2, 1e3, 1.0 + rng.random((4, 3)))
    lock = rng.random(rows * cols) < 0.1
    front = rng.random(rows * cols) < 0.5
    row0, col0 = int(rng.integers(0, 50)), int(rng.integers(0, 50))
    gcols = col0 + cols + int(rng.integers(0, 50))
    keys = np.array([stream_key(int(rng.integers(0, 2**31)), 0, 1, 2, k) for k in range(3)], dtype=np.uint64)
    return dict(rows=rows, cols=cols, lu=lu, zones=zones, pot=pot, allowed=allowed, quota=quota, inertia=inertia,
                lock=lock, front=front, row0=row0, col0=col0, gcols=gcols, keys=keys)


def _gidx(d: dict, c: int) -> int:
    r = c // d["cols"]
    return (d["row0"] + r) * d["gcols"] + d["col0"] + c - r * d["cols"]


def _smallest(entries: list[tuple[int, float, int]], quota: np.ndarray) -> list[tuple[int, float, int]]:
    """The quota smallest ``(t, gidx)`` per group, by sorting."""
    out = []
    for g in sorted({e[0] for e in entries}):
        mine = sorted((e for e in entries if e[0] == g), key=lambda e: (e[1], e[2]))
        out += mine[:max(0, int(quota[g]))]
    return sorted(out)


def _trim(group: np.ndarray, t: np.ndarray, gidx: np.ndarray, quota: np.ndarray) -> list[tuple[int, float, int]]:
    return _smallest(list(zip(group.tolist(), t.tolist(), gidx.tolist(), strict=True)), quota)


def np_sweep(d: dict, levels: np.ndarray, exclude_frontier: bool) -> list[tuple[int, float, int]]:
    """Twin of ``kernels.sweep_topk``: every eligible cell's race, then the quota smallest per group."""
    entries = []
    for c in range(d["rows"] * d["cols"]):
        z = d["zones"][c]
        if z <= 0 or d["lock"][c] or (exclude_frontier and d["front"][c]):
            continue
        best, bestk = np.inf, -1
        for k in range(3):
            if d["quota"][z * 3 + k] > 0 and d["allowed"][k, d["lu"][c]] and d["pot"][k, c] > 0:
                w = levels[d["pot"][k, c]] * d["inertia"][z, k]
                tk = -np.log(uniform_numpy(d["keys"][k], np.array([_gidx(d, c)]))[0]) / w
                if tk < best:
                    best, bestk = tk, k
        if bestk >= 0:
            entries.append((int(z * 3 + bestk), float(best), _gidx(d, c)))
    return _smallest(entries, d["quota"])


def np_frontier_race(d: dict, levels: np.ndarray, weights: np.ndarray, strength: float,
                     radius: int, *, every: bool = False) -> list[tuple[int, float, int]]:
    """The neighbourhood race of every frontier cell (the keys of ``_frontier_keys``), then the quota smallest
    per group (``every``: all of them, unsorted)."""
    rows, cols = d["rows"], d["cols"]
    ctype = np.full(256, -1)
    ctype[_TYPES] = np.arange(3)
    inv = 1.0 / ((2 * radius + 1) ** 2 - 1)
    entries = []
    for c in np.flatnonzero(d["front"]):
        z = d["zones"][c]
        if z <= 0 or d["lock"][c]:
            continue
        r, col = divmod(int(c), cols)
        cnt = np.zeros(3, dtype=np.int64)
        for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
            for cc in range(max(0, col - radius), min(cols, col + radius + 1)):
                k = ctype[d["lu"][rr * cols + cc]]
                if (rr, cc) != (r, col) and k >= 0:
                    cnt[k] += 1
        best, bestk = np.inf, -1
        for k in range(3):
            if d["quota"][z * 3 + k] > 0 and d["allowed"][k, d["lu"][c]] and d["pot"][k, c] > 0:
                nk = 0.0
                for j in range(3):
                    nk += weights[k, j] * float(cnt[j])
                if nk <= 0.0:
                    continue
                nk *= inv
                nk = nk * nk if strength == 2.0 else nk if strength == 1.0 else nk ** strength
                if nk <= 0.0:
                    continue
                tk = -np.log(uniform_numpy(d["keys"][k], np.array([_gidx(d, int(c))]))[0]) / (
                    levels[d["pot"][k, c]] * nk * d["inertia"][z, k])
                if tk < best:
                    best, bestk = tk, k
        if bestk >= 0:
            entries.append((int(z * 3 + bestk), float(best), _gidx(d, int(c))))
    return entries if every else _smallest(entries, d["quota"])


def _same_selection(got: list, expect: list) -> None:
    assert [(g, i) for g, _, i in got] == [(g, i) for g, _, i in expect]
    np.testing.assert_allclose([t for _, t, _ in got], [t for _, t, _ in expect], rtol=1e-12)


@KSET
@given(_tiles(), st.booleans(), st.integers(1, 4))
def test_pruned_sweep_matches_twin(d, exclude_frontier, nchunks) -> None:
    lv = potential_levels()
    nchunks = min(nchunks, d["rows"])
    args = (d["lu"], d["zones"], d["pot"], lv, d["allowed"], _bits(d["front"]), _bits(d["lock"]), exclude_frontier,
            d["quota"], d["inertia"], d["keys"], d["rows"], d["cols"], d["row0"], d["col0"], d["gcols"], nchunks)
    got = _trim(*K.sweep_topk(*args), d["quota"])
    _same_selection(got, np_sweep(d, lv, exclude_frontier))


_WEIGHTS = np.array([[1.0, 0.2, 0.5], [0.1, 1.0, 0.2], [0.8, 0.0, 1.0]])


def _packed() -> np.ndarray:
    packed = np.zeros(256, dtype=np.uint64)
    for k, code in enumerate(_TYPES):
        packed[code] = np.uint64(1) << np.uint64(8 * k)
    return packed


def _brackets(d: dict, strength: float, radius: int, nchunks: int) -> tuple:
    return TK._frontier_brackets(_bits(d["front"]), d["lu"], d["zones"], d["pot"], potential_levels(), d["allowed"],
                                 _packed(), _WEIGHTS, strength, d["rows"], d["cols"], radius, d["inertia"], d["quota"],
                                 d["keys"], _bits(d["lock"]), d["row0"], d["col0"], d["gcols"], nchunks)


def _selected(parts: list[tuple], quota: np.ndarray, keys: np.ndarray) -> list[tuple[int, int]]:
    """The driver's selection over the tiles' brackets: sorted ``(group, gidx)``."""
    group, hi, w, gidx = (np.concatenate([p[i] for p in parts]) for i in range(4))
    pos = TK._select_brackets(group, hi, w, gidx, quota, keys, max(p[4] for p in parts))
    assert np.unique(pos).size == pos.size
    return sorted(zip(group[pos].tolist(), gidx[pos].tolist(), strict=True))


@KSET
@given(_tiles(), st.sampled_from([1.0, 2.0, 0.7]), st.sampled_from([1, 2]), st.integers(1, 3))
def test_frontier_brackets_select_the_twins_keys(d, strength, radius, nchunks) -> None:
    lv = potential_levels()
    rows, cols = d["rows"], d["cols"]
    parts = _brackets(d, strength, radius, nchunks)
    expect = np_frontier_race(d, lv, _WEIGHTS, strength, radius)
    assert _selected([parts], d["quota"], d["keys"]) == sorted((g, i) for g, _, i in expect)
    # the output does not depend on the chunking
    for a, b in zip(parts, _brackets(d, strength, radius, 1), strict=True):
        np.testing.assert_array_equal(a, b)
    # every candidate the tile returns: its exact key from w is the engine's (_frontier_keys), bit for bit,
    # and lies in its bracket; the tile's own quota smallest are all returned
    cells = np.flatnonzero(d["front"]).astype(np.int64)
    group = np.empty(cells.size, dtype=np.int32)
    t = np.empty(cells.size)
    K._frontier_keys(cells, d["zones"][cells], np.ascontiguousarray(d["pot"][:, cells].T), d["lu"], lv, d["allowed"],
                     _packed(), _WEIGHTS, strength, rows, cols, radius, d["inertia"], d["quota"], d["keys"],
                     _bits(d["lock"]), d["row0"], d["col0"], d["gcols"], group, t)
    engine = {_gidx(d, int(c)): (int(g), float(tt)) for c, g, tt in zip(cells, group, t, strict=True) if g >= 0}
    g_out, hi, w, gidx, width = parts
    for g, h, ww, i in zip(g_out.tolist(), hi.tolist(), w.tolist(), gidx.tolist(), strict=True):
        exact = -math.log(float(uniform_numpy(d["keys"][g % 3], np.array([i]))[0])) / ww  # libm, as numba
        assert engine[i] == (g, exact)
        assert exact <= h <= exact + width
    assert {(g, i) for g, _, i in expect} <= set(zip(g_out.tolist(), gidx.tolist(), strict=True))


def test_pruned_kernels_skip_most_logarithms_yet_select_exactly() -> None:
    # a tile large enough for the heaps to fill (and for the brackets to leave most candidates out): the
    # kernels must still pick the exact keys
    rng = np.random.default_rng(3)
    rows, cols = 90, 70
    d = dict(rows=rows, cols=cols, lu=rng.choice(_CODES[:5], size=rows * cols, p=[0.05, 0.03, 0.02, 0.6, 0.3]),
             zones=rng.integers(1, 3, size=rows * cols).astype(np.int32),
             pot=rng.integers(1, 256, size=(3, rows * cols)).astype(np.uint8), allowed=np.zeros((3, 256), bool),
             quota=np.array([0, 0, 0, 7, 3, 2, 5, 0, 1], dtype=np.int64), inertia=np.ones((3, 3)),
             lock=np.zeros(rows * cols, bool), front=rng.random(rows * cols) < 0.6, row0=100, col0=7, gcols=300,
             keys=np.array([stream_key(5, 1, 0, 3, k) for k in range(3)], dtype=np.uint64))
    d["allowed"][:, [4, 5]] = True
    lv = potential_levels()
    for excl in (True, False):
        args = (d["lu"], d["zones"], d["pot"], lv, d["allowed"], _bits(d["front"]), _bits(d["lock"]), excl,
                d["quota"], d["inertia"], d["keys"], rows, cols, d["row0"], d["col0"], d["gcols"], 1)
        group, t, gidx = K.sweep_topk(*args)
        assert group.size == d["quota"].sum()
        _same_selection(_trim(group, t, gidx, d["quota"]), np_sweep(d, lv, excl))
    # three bands of rows as three tiles: each returns a few more than its quota smallest, the driver
    # selects exactly over their union
    bands = [(0, 30), (30, 55), (55, 90)]
    for strength in (1.0, 2.0):
        parts, every = [], []
        for r0, r1 in bands:
            sl = slice(r0 * cols, r1 * cols)
            b = dict(d, rows=r1 - r0, lu=d["lu"][sl], zones=d["zones"][sl], pot=np.ascontiguousarray(d["pot"][:, sl]),
                     lock=d["lock"][sl], front=d["front"][sl], row0=d["row0"] + r0)
            parts.append(_brackets(b, strength, 1, 2))
            every += np_frontier_race(b, lv, _WEIGHTS, strength, 1, every=True)
        returned = sum(p[0].size for p in parts)
        assert d["quota"].sum() <= returned < len(every) // 10  # most candidates never leave their tile
        assert _selected(parts, d["quota"], d["keys"]) == sorted((g, i) for g, _, i in _smallest(every, d["quota"]))


def np_apply_changes(lu, lock, g, code, per, period, wr0, wr1, wc0, wc1, gcols):
    """Twin of ``_apply_changes``: the window's conversions with numpy (latest per cell), lock bits of ``period``."""
    r, c = g // gcols, g % gcols
    m = (r >= wr0) & (r < wr1) & (c >= wc0) & (c < wc1)
    loc = (r[m] - wr0) * (wc1 - wc0) + (c[m] - wc0)
    last_u, last_i = np.unique(loc[::-1], return_index=True)
    lu[last_u] = code[m][::-1][last_i]
    set_ = loc[per[m] == period]
    np.bitwise_or.at(lock, set_ >> 6, np.left_shift(np.uint64(1), (set_ & 63).astype(np.uint64)))
    return loc


@KSET
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1), st.integers(0, 60))
def test_apply_changes_matches_twin(h, w, seed, n) -> None:
    rng = np.random.default_rng(seed)
    grows, gcols = h + int(rng.integers(0, 5)), w + int(rng.integers(0, 5))
    wr0, wc0 = int(rng.integers(0, grows - h + 1)), int(rng.integers(0, gcols - w + 1))
    # repeated cells (a cell converted in two periods) and cells outside the window
    g = rng.integers(0, grows * gcols, size=n).astype(np.int64)
    code = rng.choice(np.array([1, 2, 3], np.uint8), size=n)
    per = np.sort(rng.integers(0, 3, size=n)).astype(np.int16)
    period = int(rng.integers(0, 3))
    lu0 = rng.choice(_CODES, size=h * w)
    lock0 = np.zeros((h * w + 63) // 64, dtype=np.uint64)
    lu_a, lock_a, lu_b, lock_b = lu0.copy(), lock0.copy(), lu0.copy(), lock0.copy()
    got = TK._apply_changes(lu_a, lock_a, g, code, per, period, wr0, wr0 + h, wc0, wc0 + w, gcols)
    expect = np_apply_changes(lu_b, lock_b, g, code, per, period, wr0, wr0 + h, wc0, wc0 + w, gcols)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(lu_a, lu_b)
    np.testing.assert_array_equal(lock_a, lock_b)


def test_windows_are_read_when_the_store_cannot_be_mapped(tmp_path, monkeypatch) -> None:
    from landuse.scale import tiles

    real_load = np.load
    mapped = []

    def no_mmap(path, mmap_mode=None, **kw):
        mapped.append(mmap_mode)
        if mmap_mode is not None:
            raise OSError(19, "No such device (mmap)")
        return real_load(path, **kw)

    ds, p, t = CASES[5]
    a = simulate(ds, t, params=p, runs=2, seed=8)
    monkeypatch.setattr(tiles.np, "load", no_mmap)
    assert_same(a, simulate_tiled(ds, t, params=p, runs=2, seed=8, chunks=16))
    assert "c" in mapped and None in mapped  # tried to map, then read
    # the finishing pass of grow_tiled reads the tiles' interiors the same way
    store = tiles._Store(str(tmp_path), TileGrid(20, 20, 8, 1))
    lu = np.arange(400, dtype=np.uint8).reshape(20, 20)
    tiles._stage_arrays(store, lu, np.ones((20, 20), np.int32), np.zeros((3, 20, 20), np.uint8), 1, 1)
    mapped.clear()
    np.testing.assert_array_equal(store.interior("lu0", 1, 1), lu[8:16, 8:16])
    assert mapped == ["r", None]


def _manifest_minus_run_details(path) -> dict:
    """A run's manifest without what may differ between two identical runs made differently: timings and the
    stages' spans, the compute overrides and the compute section of the config."""
    import json

    m = json.loads(path.read_text())
    m.pop("timings_s")
    m.pop("timeline_s")
    m["overrides"] = {k: v for k, v in m["overrides"].items() if not k.startswith("compute.")}
    m["config"].pop("compute", None)
    return m


def test_chunked_run_writes_the_same_bytes_as_in_memory_end_to_end(tmp_path, monkeypatch) -> None:
    """`landuse run --chunks 64` on a 150 x 150 region (3 periods, 2 runs): every output file byte-identical."""
    import yaml
    from typer.testing import CliRunner

    from landuse.cli.app import app
    from landuse.sample.generate import generate_sample

    generate_sample(tmp_path / "region", size=150, seed=11)
    cfg = tmp_path / "region" / "sample.yaml"
    d = yaml.safe_load(cfg.read_text())
    d["growth"]["runs"] = 2
    d["outputs"]["folder"] = "out"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # report.json "created": the same in both runs
    folders = {}
    for name, extra in (("memory", []), ("chunks", ["--chunks", "64"])):
        res = CliRunner().invoke(app, ["run", str(cfg), "--quiet", *extra])
        assert res.exit_code in (0, 1), res.output
        folders[name] = (tmp_path / "region" / "out").rename(tmp_path / name)
    files = {n: sorted(p.relative_to(f).as_posix() for p in f.rglob("*") if p.is_file()) for n, f in folders.items()}
    assert files["memory"] == files["chunks"]
    assert {"landuse_2035.tif", "expected_2035.tif", "probability_urban.tif", "ugb.tif", "ugb.geojson",
            "allocation.csv", "report.json", "report.html"} <= set(files["memory"])
    for rel in files["memory"]:
        a, b = (folders[n] / rel for n in ("memory", "chunks"))
        if rel == "manifest.json":
            assert _manifest_minus_run_details(a) == _manifest_minus_run_details(b)
        else:
            assert a.read_bytes() == b.read_bytes(), rel
    m = _manifest_minus_run_details(folders["chunks"] / "manifest.json")
    assert {f["path"] for f in m["files"]} == set(files["memory"]) - {"manifest.json"}
