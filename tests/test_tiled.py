"""Tiled growth gives the in-memory result bit for bit, whatever the chunking and the number of workers."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from growth_fixtures import BARE, COM, FARM, FOREST, IND, RES, random_landscape, targets

from landuse.distributed import dask_client
from landuse.growth import GrowthParams, simulate
from landuse.growth.engine import GrowthInputError
from landuse.growth.tiled import TileGrid, check_chunks, grow_tiled, simulate_tiled


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


def assert_same(a, b) -> None:
    assert list(a.landuse) == list(b.landuse)
    for y in a.landuse:
        assert a.landuse[y].dtype == b.landuse[y].dtype
        np.testing.assert_array_equal(a.landuse[y].values, b.landuse[y].values, err_msg=f"landuse {y}")
        assert a.landuse[y].attrs == b.landuse[y].attrs
    assert a.counts.dtype == b.counts.dtype
    np.testing.assert_array_equal(a.counts.values, b.counts.values)
    np.testing.assert_array_equal(a.run_scores, b.run_scores)
    assert a.representative_run == b.representative_run
    assert a.shortfall.equals(b.shortfall)


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
    from landuse.growth import tiled

    return len(tiled._STATES)


def _forget_states() -> int:
    from landuse.growth import tiled

    return sum(tiled._drop_states(root) for root in list(tiled._STATE_BYTES))


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
