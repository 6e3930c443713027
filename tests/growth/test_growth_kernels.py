"""Every growth kernel against a slow pure-numpy twin, on small random inputs (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landuse.growth import bits as B
from landuse.growth import frontier as F
from landuse.growth import kernels as K
from landuse.growth import races as R
from landuse.growth import selection as S
from landuse.growth.engine import potential_levels
from landuse.growth.random import stream_key, uniform_numpy

SETTINGS = settings(max_examples=25, deadline=None)
CODES = np.array([1, 2, 3, 4, 5, 8, 255], dtype=np.uint8)  # three urban types, farmland, forest, water, nodata
TYPE_CODES = np.array([1, 2, 3], dtype=np.int64)


# --------------------------------------------------------------------------- twins


def np_code_type() -> np.ndarray:
    ct = np.full(256, -1, dtype=np.int8)
    ct[TYPE_CODES] = np.arange(3)
    return ct


def np_packed() -> np.ndarray:
    p = np.zeros(256, dtype=np.uint64)
    for k, c in enumerate(TYPE_CODES):
        p[c] = np.uint64(1) << np.uint64(8 * k)
    return p


def np_quantise(w: np.ndarray) -> np.ndarray:
    out = np.zeros(w.shape, dtype=np.uint8)
    pos = w > 0
    q = np.floor(255.0 + 16.0 * np.log2(np.where(pos, w, 1.0).astype(np.float64)) + 0.5)
    out[pos] = np.clip(q, 1, 255)[pos].astype(np.uint8)
    out[w >= 1.0] = 255
    return out


def np_window_counts(lu2: np.ndarray, radius: int) -> np.ndarray:
    """(3, rows, cols) count of each urban type in the Moore window, centre excluded."""
    rows, cols = lu2.shape
    ct = np_code_type()[lu2]
    out = np.zeros((3, rows, cols), dtype=np.int64)
    for r in range(rows):
        for c in range(cols):
            for rr in range(max(0, r - radius), min(rows, r + radius + 1)):
                for cc in range(max(0, c - radius), min(cols, c + radius + 1)):
                    if (rr, cc) != (r, c) and ct[rr, cc] >= 0:
                        out[ct[rr, cc], r, c] += 1
    return out


def np_eligible(lu: np.ndarray, zones: np.ndarray, pot: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    return (zones > 0) & np.any(allowed[:, lu] & (pot > 0), axis=0)


def np_frontier(lu2, zones2, pot3, allowed, radius) -> np.ndarray:
    counts = np_window_counts(lu2, radius).sum(axis=0)
    return np_eligible(lu2.ravel(), zones2.ravel(), pot3.reshape(3, -1), allowed) & (counts.ravel() > 0)


def np_keys(cand, lu2, zones, pot, levels, allowed, weights, strength, radius, inertia, quota, keys, lock, gidx):
    """Exponential-race keys of frontier candidates, cell by cell in plain numpy."""
    counts = np_window_counts(lu2, radius).reshape(3, -1)
    lu = lu2.ravel()
    inv = 1.0 / ((2 * radius + 1) ** 2 - 1)
    group = np.full(cand.size, -1, dtype=np.int32)
    t = np.full(cand.size, np.inf)
    for i, c in enumerate(cand):
        z = zones[c]
        if z <= 0 or lock[c]:
            continue
        best, bestk = np.inf, -1
        for k in range(3):
            if quota[z * 3 + k] > 0 and allowed[k, lu[c]] and pot[k, c] > 0:
                nk = float(np.dot(weights[k], counts[:, c]))
                if nk > 0:
                    nk *= inv
                    if strength != 1.0:
                        nk = nk ** strength
                    w = levels[pot[k, c]] * nk * inertia[z, k]
                    tk = -np.log(uniform_numpy(keys[k], np.array([gidx[i]]))[0]) / w
                    if tk < best:
                        best, bestk = tk, k
        if bestk >= 0:
            group[i], t[i] = z * 3 + bestk, best
    return group, t


def np_select(group, t, gidx, quota) -> np.ndarray:
    """The quota smallest (t, gidx) per group, by sorting."""
    sel = np.zeros(group.size, dtype=bool)
    for g in np.unique(group[group >= 0]):
        idx = np.flatnonzero(group == g)
        order = idx[np.lexsort((gidx[idx], t[idx]))]
        sel[order[: max(0, quota[g])]] = True
    return sel


def frontier_keys(cand, *args):
    """Call ``K._frontier_keys`` with fresh output buffers; return ``(group, t)``."""
    group = np.full(cand.size, 99, dtype=np.int32)
    t = np.full(cand.size, -1.0)
    K._frontier_keys(cand, *args, group, t)
    return group, t


def to_bits(mask: np.ndarray) -> np.ndarray:
    n = mask.size
    bits = np.zeros((n + 63) // 64, dtype=np.uint64)
    for i in np.flatnonzero(mask):
        bits[i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    return bits


def from_bits(bits: np.ndarray, n: int) -> np.ndarray:
    return np.unpackbits(bits.view(np.uint8), bitorder="little")[:n].astype(bool)


# --------------------------------------------------------------------------- strategies


@st.composite
def grids(draw, max_side: int = 12):
    rows = draw(st.integers(1, max_side))
    cols = draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lu2 = rng.choice(CODES, size=(rows, cols), p=[0.1, 0.05, 0.05, 0.45, 0.15, 0.1, 0.1])
    zones2 = rng.integers(0, 4, size=(rows, cols)).astype(np.int32)
    pot3 = rng.integers(0, 256, size=(3, rows, cols)).astype(np.uint8)
    pot3[rng.random((3, rows, cols)) < 0.2] = 0
    allowed = np.zeros((3, 256), dtype=bool)
    allowed[:, 4] = True
    allowed[:, 5] = rng.random(3) < 0.7
    allowed[2, 1] = rng.random() < 0.5  # residential -> commercial sometimes allowed
    radius = draw(st.sampled_from([1, 2, 3]))
    return rng, lu2, zones2, pot3, allowed, radius


# --------------------------------------------------------------------------- tests


@SETTINGS
@given(st.lists(st.floats(-0.5, 1.5, allow_nan=False, width=32), min_size=1, max_size=50))
def test_quantise_matches_twin(values) -> None:
    w = np.array(values, dtype=np.float32)
    out = np.empty(w.size, dtype=np.uint8)
    K.quantise_into(w, out)
    np.testing.assert_array_equal(out, np_quantise(w))
    lv = potential_levels()
    pos = (w > 2e-5) & (w <= 1)
    assert np.all(np.abs(lv[out[pos]] / w[pos] - 1) <= 0.022)


@SETTINGS
@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_bits_to_indices_matches_flatnonzero(n, seed) -> None:
    mask = np.random.default_rng(seed).random(n) < 0.3
    np.testing.assert_array_equal(B.bits_to_indices(to_bits(mask), n), np.flatnonzero(mask))
    np.testing.assert_array_equal(from_bits(to_bits(mask), n), mask)


@SETTINGS
@given(grids())
def test_build_frontier_matches_twin(g) -> None:
    _, lu2, zones2, pot3, allowed, radius = g
    rows, cols = lu2.shape
    elig = F.eligible_bits(lu2.ravel(), zones2.ravel(), pot3.reshape(3, -1), allowed)
    np.testing.assert_array_equal(from_bits(elig, rows * cols),
                                  np_eligible(lu2.ravel(), zones2.ravel(), pot3.reshape(3, -1), allowed))
    bits = F.build_frontier(elig, lu2.ravel(), np_code_type(), rows, cols, radius)
    np.testing.assert_array_equal(from_bits(bits, rows * cols), np_frontier(lu2, zones2, pot3, allowed, radius))


@SETTINGS
@given(grids(), st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5]))
def test_frontier_keys_match_twin(g, strength) -> None:
    rng, lu2, zones2, pot3, allowed, radius = g
    rows, cols = lu2.shape
    n = rows * cols
    lu, zones, pot = lu2.ravel(), zones2.ravel(), pot3.reshape(3, -1)
    cand = np.flatnonzero(np_frontier(lu2, zones2, pot3, allowed, radius))
    cz, cpot = F._gather_records(cand, zones, pot)
    weights = rng.random((3, 3)) * (rng.random((3, 3)) < 0.8)
    inertia = 1.0 + rng.random((4, 3))
    quota = rng.integers(0, 3, size=12)
    keys = np.array([stream_key(7, 1, 2, 3, k) for k in range(3)], dtype=np.uint64)
    lock = rng.random(n) < 0.1
    levels = potential_levels()
    group, t = frontier_keys(cand, cz, cpot, lu, levels, allowed, np_packed(), weights, strength, rows, cols,
                                radius, inertia, quota, keys, to_bits(lock), 0, 0, cols)
    eg, et = np_keys(cand, lu2, zones, pot, levels, allowed, weights, strength, radius, inertia, quota, keys, lock,
                     cand)
    np.testing.assert_array_equal(group, eg)
    np.testing.assert_allclose(t, et, rtol=1e-12)


@SETTINGS
@given(grids(max_side=14), st.integers(0, 13), st.integers(0, 13), st.integers(1, 14), st.integers(1, 14))
def test_frontier_keys_are_tiling_invariant(g, r0, c0, h, w) -> None:
    """A tile with a halo computes the same keys as the whole raster for its own cells."""
    _, lu2, zones2, pot3, allowed, radius = g
    rows, cols = lu2.shape
    r0, c0 = min(r0, rows - 1), min(c0, cols - 1)
    r1, c1 = min(rows, r0 + h), min(cols, c0 + w)
    weights = np.ones((3, 3))
    inertia = np.ones((4, 3))
    quota = np.ones(12, dtype=np.int64)
    keys = np.array([stream_key(3, 0, 0, 0, k) for k in range(3)], dtype=np.uint64)
    lv = potential_levels()
    cand = np.flatnonzero(np_frontier(lu2, zones2, pot3, allowed, radius))
    cz, cpot = F._gather_records(cand, zones2.ravel(), pot3.reshape(3, -1))
    lock = np.zeros((rows * cols + 63) // 64, dtype=np.uint64)
    g_all, t_all = frontier_keys(cand, cz, cpot, lu2.ravel(), lv, allowed, np_packed(), weights, 1.0, rows, cols,
                                    radius, inertia, quota, keys, lock, 0, 0, cols)
    # tile with halo
    hr0, hc0 = max(0, r0 - radius), max(0, c0 - radius)
    hr1, hc1 = min(rows, r1 + radius), min(cols, c1 + radius)
    tl = np.ascontiguousarray(lu2[hr0:hr1, hc0:hc1])
    tz = np.ascontiguousarray(zones2[hr0:hr1, hc0:hc1])
    tp = np.ascontiguousarray(pot3[:, hr0:hr1, hc0:hc1])
    trows, tcols = tl.shape
    rr, cc = np.divmod(cand, cols)
    inside = (rr >= r0) & (rr < r1) & (cc >= c0) & (cc < c1)
    local = (rr[inside] - hr0) * tcols + (cc[inside] - hc0)
    lz, lp = F._gather_records(local, tz.ravel(), tp.reshape(3, -1))
    tlock = np.zeros((trows * tcols + 63) // 64, dtype=np.uint64)
    g_t, t_t = frontier_keys(local, lz, lp, tl.ravel(), lv, allowed, np_packed(), weights, 1.0, trows, tcols,
                                radius, inertia, quota, keys, tlock, hr0, hc0, cols)
    np.testing.assert_array_equal(g_t, g_all[inside])
    np.testing.assert_array_equal(t_t, t_all[inside])
    gl = K._global_indices(local, tcols, hr0, hc0, cols)
    np.testing.assert_array_equal(gl, cand[inside])
    np.testing.assert_array_equal(K._local_index(gl, tcols, hr0, hc0, cols), local)


@SETTINGS
@given(st.integers(0, 400), st.integers(1, 6), st.integers(0, 2**32 - 1), st.booleans())
def test_thresholds_select_the_quota_smallest_keys(n, G, seed, ties) -> None:
    rng = np.random.default_rng(seed)
    group = rng.integers(-1, G, size=n).astype(np.int32)
    t = rng.integers(0, 5, size=n).astype(np.float64) if ties else rng.random(n)
    gidx = rng.permutation(10 * n + 1)[:n].astype(np.int64)
    quota = rng.integers(0, 30, size=G).astype(np.int64)
    thr_t, thr_i = S._group_thresholds(group, t, gidx, quota)
    sel = S._apply_thresholds(group, t, gidx, thr_t, thr_i)
    expect = np_select(group, t, gidx, quota)
    np.testing.assert_array_equal(sel, expect)
    # order-free: a permutation of the candidates selects the same cells
    p = rng.permutation(n)
    thr_t2, thr_i2 = S._group_thresholds(group[p], t[p], gidx[p], quota)
    np.testing.assert_array_equal(S._apply_thresholds(group[p], t[p], gidx[p], thr_t2, thr_i2), expect[p])
    # and converting applies exactly that selection
    lu = np.full(10 * n + 1, 4, dtype=np.uint8)
    lock = np.zeros((lu.size + 63) // 64, dtype=np.uint64)
    conv = np.zeros(G, dtype=np.int64)
    tc = np.array([1, 2, 3, 1, 2, 3], dtype=np.int64)[:G] if G <= 3 else np.arange(1, G + 1, dtype=np.int64)
    pos = S.select_smallest(group, t, gidx, quota)
    assert pos.size == np.unique(pos).size
    np.testing.assert_array_equal(np.sort(pos), np.flatnonzero(expect))
    nobits = np.zeros_like(lock)
    c, k, src, dead = F.convert_clear(lu, gidx, np.ones(n, np.int32), group, pos, tc, lock, conv, nobits, nobits.copy(),
                                      np.zeros(256, dtype=bool), False)
    assert src.size == 0 and dead == 0
    np.testing.assert_array_equal(c, gidx[pos])
    np.testing.assert_array_equal(conv, np.bincount(group[expect], minlength=G))
    assert np.all(lu[c] == tc[k.astype(np.int64)])
    np.testing.assert_array_equal(from_bits(lock, lu.size), np.isin(np.arange(lu.size), c))


@SETTINGS
@given(grids(), st.data())
def test_update_frontier_matches_rebuild(g, data) -> None:
    rng, lu2, zones2, pot3, allowed, radius = g
    rows, cols = lu2.shape
    lu = lu2.ravel().copy()
    zones, pot = zones2.ravel(), pot3.reshape(3, -1)
    front = np_frontier(lu2, zones2, pot3, allowed, radius)
    bits = to_bits(front)
    elig = to_bits(np_eligible(lu, zones, pot, allowed))
    # convert some eligible cells (frontier or not) to an allowed urban type
    el = np.flatnonzero(np_eligible(lu, zones, pot, allowed))
    conv = rng.choice(el, size=min(el.size, data.draw(st.integers(0, 40))), replace=False) if el.size else el
    for c in conv:
        ks = np.flatnonzero(allowed[:, lu[c]] & (pot[:, c] > 0))
        lu[c] = TYPE_CODES[ks[0]]
    conv = conv.astype(np.int64)
    added = F.update_frontier(bits, elig, conv, lu, zones, pot, allowed, np_code_type(), rows, cols, radius)
    expect = np_frontier(lu.reshape(rows, cols), zones2, pot3, allowed, radius)
    np.testing.assert_array_equal(from_bits(bits, rows * cols), expect)
    np.testing.assert_array_equal(from_bits(elig, rows * cols), np_eligible(lu, zones, pot, allowed))
    assert added.size == np.unique(added).size  # each cell once
    np.testing.assert_array_equal(np.sort(added), np.flatnonzero(expect & ~front))


@SETTINGS
@given(grids(), st.data())
def test_candidate_list_runs_retire_and_merge(g, data) -> None:
    """Retired slots, appended runs and their merge keep exactly the frontier, sorted."""
    rng, lu2, zones2, pot3, allowed, radius = g
    _rows, _cols = lu2.shape
    zones, pot = zones2.ravel(), pot3.reshape(3, -1)
    front = np_frontier(lu2, zones2, pot3, allowed, radius)
    cells = np.flatnonzero(front)
    # split the frontier into sorted runs (as appended iteration by iteration) with stale entries
    nruns = data.draw(st.integers(1, 4))
    which = rng.integers(0, nruns, size=cells.size)
    stale = np.flatnonzero(~front)[: data.draw(st.integers(0, 5))]
    runs = [np.sort(np.concatenate([cells[which == r], stale[r::nruns]])) for r in range(nruns)]
    m = sum(r.size for r in runs)
    cap = m + 3
    cand = np.zeros(cap, dtype=np.int64)
    cz = np.zeros(cap, dtype=np.int32)
    cpot = np.zeros((cap, 3), dtype=np.uint8)
    starts, p = [], 0
    for r in runs:
        starts.append(p)
        F.append_records(cand, cz, cpot, p, r.astype(np.int64), zones, pot)
        p += r.size
    np.testing.assert_array_equal(cz[:m], zones[cand[:m]])
    np.testing.assert_array_equal(cpot[:m], pot[:, cand[:m]].T)
    bits = to_bits(front)
    in_first = np.flatnonzero(np.isin(cand[:m], stale))
    half = in_first[: in_first.size // 2]
    n1 = F.retire(cand[:m], cz[:m], half, bits)
    n2 = F.retire_all(cand[:m], cz[:m], bits)
    assert n1 == np.count_nonzero(zones[cand[half]] > 0)
    assert n1 + n2 == np.count_nonzero(zones[stale] > 0)
    nc, nz, npot, live = F.merge_runs(cand, cz, cpot, np.array([*starts, m], dtype=np.int64), m + 5)
    np.testing.assert_array_equal(nc[:live], cells)
    np.testing.assert_array_equal(nz[:live], zones[cells])
    np.testing.assert_array_equal(npot[:live], pot[:, cells].T)


@SETTINGS
@given(grids(), st.booleans(), st.integers(1, 5))
def test_sweep_topk_matches_twin(g, exclude_frontier, nchunks) -> None:
    rng, lu2, zones2, pot3, allowed, radius = g
    rows, cols = lu2.shape
    n = rows * cols
    lu, zones, pot = lu2.ravel(), zones2.ravel(), pot3.reshape(3, -1)
    front = np_frontier(lu2, zones2, pot3, allowed, radius)
    lock = rng.random(n) < 0.1
    quota = rng.integers(0, 4, size=12).astype(np.int64)
    inertia = 1.0 + rng.random((4, 3))
    keys = np.array([stream_key(11, 0, 1, 0, 8 + k) for k in range(3)], dtype=np.uint64)
    lv = potential_levels()
    group, t, gidx = K.sweep_topk(lu, zones, pot, lv, allowed, to_bits(front), to_bits(lock), exclude_frontier,
                                  quota, inertia, keys, rows, cols, 0, 0, cols, min(nchunks, rows))
    thr_t, thr_i = S._group_thresholds(group, t, gidx, quota)
    got = set(gidx[S._apply_thresholds(group, t, gidx, thr_t, thr_i)].tolist())
    # twin: race over every eligible cell, then the quota smallest per group
    eg, et, ei = [], [], []
    for c in range(n):
        z = zones[c]
        if z <= 0 or lock[c] or (exclude_frontier and front[c]):
            continue
        best, bestk = np.inf, -1
        for k in range(3):
            if quota[z * 3 + k] > 0 and allowed[k, lu[c]] and pot[k, c] > 0:
                tk = -np.log(uniform_numpy(keys[k], np.array([c]))[0]) / (lv[pot[k, c]] * inertia[z, k])
                if tk < best:
                    best, bestk = tk, k
        if bestk >= 0:
            eg.append(z * 3 + bestk)
            et.append(best)
            ei.append(c)
    eg, et, ei = np.array(eg, dtype=np.int32), np.array(et), np.array(ei, dtype=np.int64)
    expect = set(ei[np_select(eg, et, ei, quota)].tolist()) if ei.size else set()
    assert got == expect


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 60))
def test_counts_and_scores_match_twin(seed, m) -> None:
    rng = np.random.default_rng(seed)
    n = 50
    cells = rng.integers(0, n, size=m).astype(np.int64)
    types = rng.integers(0, 3, size=m).astype(np.int8)
    counts = np.zeros((3, n), dtype=np.uint8)
    seen = np.zeros(1, dtype=np.uint64)
    K.accumulate_counts(counts, cells, types, seen)
    expect = np.zeros((3, n), dtype=np.uint8)
    last = {}
    for c, k in zip(cells.tolist(), types.tolist(), strict=True):
        last[c] = k
    for c, k in last.items():
        expect[k, c] += 1
    np.testing.assert_array_equal(counts, expect)
    assert not seen.any()
    periods = rng.integers(0, 2, size=m).astype(np.int16)
    c3 = rng.integers(0, 9, size=(2, 3, n)).astype(np.uint8)
    assert K.score_log(c3, cells, types, periods) == pytest.approx(
        float(c3[periods.astype(int), types.astype(int), cells].sum()))


@SETTINGS
@given(grids(), st.data(), st.booleans())
def test_convert_clear_and_join_match_rebuild(g, data, in_list) -> None:
    """The in-memory engine's conversion and frontier update (three kernels) against the numpy rebuild.

    ``in_list``: the candidates are the frontier list (edge growth; converted entries are
    retired), else every eligible cell (a sweep).
    """
    rng, lu2, zones2, pot3, allowed, radius = g
    rows, cols = lu2.shape
    lu = lu2.ravel().copy()
    zones, pot = zones2.ravel(), pot3.reshape(3, -1)
    front = np_frontier(lu2, zones2, pot3, allowed, radius)
    eligible = np_eligible(lu, zones, pot, allowed)
    bits, elig = to_bits(front), to_bits(eligible)
    cells = np.flatnonzero(front if in_list else eligible).astype(np.int64)
    cz = zones[cells].astype(np.int32)
    ks = np.array([np.flatnonzero(allowed[:, lu[c]] & (pot[:, c] > 0))[0] for c in cells], dtype=np.int64)
    group = (cz * 3 + ks).astype(np.int32)
    G = 3 * (int(zones.max(initial=0)) + 1)
    pick = data.draw(st.integers(0, 40))
    pos = np.sort(rng.choice(cells.size, size=min(cells.size, pick), replace=False)).astype(np.int64)
    lock = np.zeros((rows * cols + 63) // 64, dtype=np.uint64)
    conv = np.zeros(G, dtype=np.int64)
    c, k, src, dead = F.convert_clear(lu, cells, cz, group, pos, TYPE_CODES, lock, conv, elig, bits,
                                      allowed.any(axis=0), in_list)
    np.testing.assert_array_equal(c, cells[pos])
    np.testing.assert_array_equal(lu[c], TYPE_CODES[k.astype(np.int64)])
    np.testing.assert_array_equal(conv, np.bincount(group[pos], minlength=G))
    np.testing.assert_array_equal(from_bits(lock, rows * cols), np.isin(np.arange(rows * cols), c))
    np.testing.assert_array_equal(np.sort(c[src]), np.sort(c[allowed.any(axis=0)[lu[c]]]))
    span = (2 * radius + 1) ** 2 - 1
    raw = F.join_scan(bits, elig, c, c[src], lu, zones, pot, allowed, np_code_type(), rows, cols, radius,
                      np.full(c.size * span + 1, -7, dtype=np.int64))
    added = np.sort(raw)
    expect = np_frontier(lu.reshape(rows, cols), zones2, pot3, allowed, radius)
    np.testing.assert_array_equal(from_bits(bits, rows * cols), expect)
    np.testing.assert_array_equal(from_bits(elig, rows * cols), np_eligible(lu, zones, pot, allowed))
    np.testing.assert_array_equal(added, np.flatnonzero(expect & ~front))  # each cell once
    if in_list:
        dead += F.retire(cells, cz, pos[src], bits)
        np.testing.assert_array_equal(cz == 0, np.isin(np.arange(cells.size), pos) & ~expect[cells])
        assert dead == int((cz == 0).sum())
    else:
        assert dead == 0 and np.all(cz > 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_selection_and_frontier_update_with_many_chunks(seed) -> None:
    """Inputs large enough that the parallel kernels split their work into several chunks."""
    rng = np.random.default_rng(seed)
    n = 70_000
    group = rng.integers(-1, 40, size=n).astype(np.int32)
    t = rng.integers(0, 50, size=n).astype(np.float64)  # many ties
    gidx = rng.permutation(n).astype(np.int64)
    quota = rng.integers(0, 2000, size=40).astype(np.int64)
    pos = S.select_smallest(group, t, gidx, quota)
    expect = np_select(group, t, gidx, quota)
    np.testing.assert_array_equal(np.sort(pos), np.flatnonzero(expect))
    thr_t, thr_i = S._group_thresholds(group, t, gidx, quota)
    np.testing.assert_array_equal(S._apply_thresholds(group, t, gidx, thr_t, thr_i), expect)
    # frontier update after thousands of conversions
    rows, cols, radius = 100, 110, 1
    lu2 = rng.choice(CODES, size=(rows, cols), p=[0.03, 0.01, 0.01, 0.7, 0.15, 0.05, 0.05])
    zones2 = rng.integers(0, 4, size=(rows, cols)).astype(np.int32)
    pot3 = rng.integers(1, 256, size=(3, rows, cols)).astype(np.uint8)
    allowed = np.zeros((3, 256), dtype=bool)
    allowed[:, 4] = True
    allowed[2, 1] = True
    lu, zones, pot = lu2.ravel().copy(), zones2.ravel(), pot3.reshape(3, -1)
    front = np_frontier(lu2, zones2, pot3, allowed, radius)
    bits, elig = to_bits(front), to_bits(np_eligible(lu, zones, pot, allowed))
    el = np.flatnonzero(np_eligible(lu, zones, pot, allowed))
    conv = np.sort(rng.choice(el, size=el.size // 2, replace=False)).astype(np.int64)
    assert conv.size >= 2048
    lu0 = lu.copy()
    lu[conv] = np.where(lu[conv] == 1, 3, 1)
    added = F.update_frontier(bits, elig, conv, lu, zones, pot, allowed, np_code_type(), rows, cols, radius)
    expect = np_frontier(lu.reshape(rows, cols), zones2, pot3, allowed, radius)
    np.testing.assert_array_equal(from_bits(bits, rows * cols), expect)
    np.testing.assert_array_equal(np.sort(added), np.flatnonzero(expect & ~front))
    # the in-memory engine's two parallel kernels on the same conversions (several chunks each)
    bits, elig = to_bits(front), to_bits(np_eligible(lu0, zones, pot, allowed))
    group = (zones[conv] * 3 + np.where(lu0[conv] == 1, 2, 0)).astype(np.int32)  # 1 -> commercial, else residential
    lock = np.zeros_like(bits)
    cz = zones[conv].astype(np.int32)
    counts = np.zeros(12, dtype=np.int64)
    c, k, src, dead = F.convert_clear(lu0, conv, cz, group, np.arange(conv.size), TYPE_CODES, lock, counts, elig,
                                      bits, allowed.any(axis=0), True)
    np.testing.assert_array_equal(lu0, lu)
    np.testing.assert_array_equal(TYPE_CODES[k.astype(np.int64)], lu[conv])
    np.testing.assert_array_equal(counts, np.bincount(group, minlength=12))
    np.testing.assert_array_equal(from_bits(lock, rows * cols), np.isin(np.arange(rows * cols), conv))
    raw = F.join_scan(bits, elig, c, c[src], lu0, zones, pot, allowed, np_code_type(), rows, cols, radius,
                      np.empty(c.size * 8, dtype=np.int64))
    np.testing.assert_array_equal(from_bits(bits, rows * cols), expect)
    np.testing.assert_array_equal(np.sort(raw), np.flatnonzero(expect & ~front))
    dead += F.retire(conv, cz, src, bits)
    assert dead == int((cz == 0).sum()) == int((~expect[conv]).sum())


# --------------------------------------------------------------------------- bracketed selection


def frontier_select(cand, *args):
    """Call ``K.frontier_select`` with fresh scratch buffers; return the selected positions, sorted."""
    group = np.full(cand.size, 99, dtype=np.int32)
    hi = np.full(cand.size, -1.0)
    seg_v = np.full(cand.size + 3, -2.0)
    seg_p = np.full(cand.size + 3, -1, dtype=np.int64)
    return np.sort(K.frontier_select(cand, *args, group, hi, seg_v, seg_p))


@SETTINGS
@given(grids(max_side=16), st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 9.0]), st.integers(0, 4))
def test_frontier_select_matches_twin(g, strength, qmax) -> None:
    """Bracketed keys select exactly the quota smallest exact keys per group (numpy twin: keys, then sort)."""
    rng, lu2, zones2, pot3, allowed, radius = g
    rows, cols = lu2.shape
    n = rows * cols
    lu, zones, pot = lu2.ravel(), zones2.ravel(), pot3.reshape(3, -1)
    cand = np.flatnonzero(np_frontier(lu2, zones2, pot3, allowed, radius))
    cz, cpot = F._gather_records(cand, zones, pot)
    weights = rng.random((3, 3)) * (rng.random((3, 3)) < 0.8)
    inertia = 1.0 + rng.random((4, 3)) * rng.choice([1.0, 1000.0], size=(4, 3))
    quota = rng.integers(0, qmax + 1, size=12)
    keys = np.array([stream_key(11, 2, 1, 4, k) for k in range(3)], dtype=np.uint64)
    lock = rng.random(n) < 0.1
    levels = potential_levels()
    pos = frontier_select(cand, cz, cpot, lu, levels, allowed, np_packed(), weights, strength, rows, cols, radius,
                          inertia, quota, keys, to_bits(lock))
    eg, et = np_keys(cand, lu2, zones, pot, levels, allowed, weights, strength, radius, inertia, quota, keys, lock,
                     cand)
    np.testing.assert_array_equal(pos, np.flatnonzero(np_select(eg, et, cand, quota)))


@pytest.mark.parametrize(("seed", "strength", "share", "pot_low"),
                         [(0, 1.0, 0.1, 200), (1, 2.0, 0.3, 200), (2, 0.7, 0.02, 200), (3, 1.0, 0.1, 1)])
def test_frontier_select_matches_exact_keys_on_large_groups(seed, strength, share, pot_low) -> None:
    """Thousands of candidates per group (many brackets near the threshold, close races between types).

    ``pot_low`` 1 mixes in tiny weights: wide brackets, so hundreds of candidates per
    group fall in the uncertain band (the argsort branch) and some take the exact path.
    """
    rng = np.random.default_rng(seed)
    rows, cols, radius = 160, 150, 1
    lu2 = rng.choice(CODES, size=(rows, cols), p=[0.1, 0.05, 0.05, 0.6, 0.1, 0.05, 0.05])
    zones2 = (1 + (np.arange(rows)[:, None] // 80) * 2 + np.arange(cols)[None, :] // 75).astype(np.int32)
    pot3 = rng.integers(pot_low, 256, size=(3, rows, cols)).astype(np.uint8)
    pot3[1] = pot3[0]  # equal potentials: races between types are often close
    allowed = np.zeros((3, 256), dtype=bool)
    allowed[:, 4] = True
    allowed[:, 5] = True
    lu, zones, pot = lu2.ravel(), zones2.ravel(), pot3.reshape(3, -1)
    elig = F.eligible_bits(lu, zones, pot, allowed)
    cand = B.bits_to_indices(F.build_frontier(elig, lu, np_code_type(), rows, cols, radius), rows * cols)
    assert cand.size > 10_000
    cz, cpot = F._gather_records(cand, zones, pot)
    weights = np.array([[1.0, 0.9, 0.5], [0.9, 1.0, 0.1], [0.6, 0.1, 1.0]])
    inertia = 1.0 + rng.random((5, 3))
    zc = np.bincount(cz, minlength=5)
    quota = np.repeat((zc * share).astype(np.int64), 3)
    quota[:3] = 0
    keys = np.array([stream_key(5, seed, 0, 1, k) for k in range(3)], dtype=np.uint64)
    lock = np.zeros((rows * cols + 63) // 64, dtype=np.uint64)
    args = (cand, cz, cpot, lu, potential_levels(), allowed, np_packed(), weights, strength, rows, cols, radius,
            inertia, quota, keys, lock)
    group, t = frontier_keys(*args, 0, 0, cols)
    expect = np.sort(S.select_smallest(group, t, cand, quota))
    assert expect.size > 200
    np.testing.assert_array_equal(frontier_select(*args), expect)


@SETTINGS
@given(st.integers(1, 5000), st.floats(0.0, 1.0), st.sampled_from(["random", "ties", "sorted", "reversed", "adverse"]),
       st.integers(0, 2**32 - 1))
def test_kth_value_matches_partition(n, frac, kind, seed) -> None:
    """``_kth_value`` (sample bracket + quickselect, or its fallback) returns ``np.partition``'s value."""
    rng = np.random.default_rng(seed)
    x = rng.exponential(size=n)
    if kind == "ties":
        x = np.round(x * 3) / 3
    elif kind == "sorted":
        x = np.sort(x)
    elif kind == "reversed":
        x = np.sort(x)[::-1].copy()
    elif kind == "adverse":  # the sampled positions hold the largest values: the bracket misses the rank
        pos = (np.arange(256) * n) // 256 if n > 1024 else np.arange(0)
        x[pos] = 1e6 + np.arange(pos.size)
    k = min(n - 1, int(frac * n))
    pad = np.concatenate([[-1.0, 7.0], x, [np.inf]])  # the segment sits inside a larger array
    before = pad.copy()
    assert S.kth_value(pad, 2, 2 + n, k) == np.partition(x, k)[k]
    np.testing.assert_array_equal(pad, before)  # values untouched
    y = x.copy()
    assert S._quickselect(y, n, k) == np.sort(x)[k]
    assert np.all(y[:k] <= y[k]) and np.all(y[k + 1:] >= y[k])


def test_neglog_approx_error_bound() -> None:
    """The table logarithm stays within 1.2e-7 of -ln(u) (the brackets assume 6e-7)."""
    from numba import njit

    @njit
    def approx(u):
        fb = np.empty(1, dtype=np.float64)
        bv = fb.view(np.uint64)
        out = np.empty(u.size)
        for i in range(u.size):
            out[i] = R.neglog_approx(u[i], fb, bv, R.LOG_TABLE)
        return out

    rng = np.random.default_rng(0)
    u = np.concatenate([rng.random(200_000), 1.0 - rng.random(1000) * 1e-12, rng.random(1000) * 1e-15,
                        [2.0**-54, 0.5, 1.0 - 2.0**-53, np.nextafter(0.5, 0.0)]])
    u = u[(u > 0) & (u < 1)]
    assert np.abs(approx(u) + np.log(u)).max() < 1.2e-7
    assert 5 * 1.2e-7 <= R.APPROX_SLACK
