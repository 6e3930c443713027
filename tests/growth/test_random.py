"""The counter-based random streams every model draws from (landuse.growth.random)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from landuse.growth.random import stream_key, uniform_array, uniform_numpy


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**62), run=st.integers(0, 10_000), period=st.integers(0, 50),
       iteration=st.integers(0, 100), purpose=st.integers(0, 255))
def test_a_draw_depends_only_on_its_stream_and_cell(seed, run, period, iteration, purpose) -> None:
    key = stream_key(seed, run, period, iteration, purpose)
    assert key == stream_key(seed, run, period, iteration, purpose)
    idx = np.array([0, 7, 123_456_789, 2**40 + 3], dtype=np.int64)
    a = uniform_array(key, idx)
    # the same draw whatever the order or company of the cells asked for (threads and tiles ask in any order)
    np.testing.assert_array_equal(uniform_array(key, idx[::-1])[::-1], a)
    np.testing.assert_array_equal(uniform_array(key, idx[2:3]), a[2:3])
    # the compiled kernel and its numpy twin agree bit for bit
    np.testing.assert_array_equal(uniform_numpy(key, idx), a)
    assert ((a > 0.0) & (a < 1.0)).all()


def test_streams_differ_by_every_part_of_their_key() -> None:
    base = (5, 1, 2, 3, 4)
    keys = {stream_key(*base)}
    for i in range(5):
        other = list(base)
        other[i] += 1
        keys.add(stream_key(*other))
    assert len(keys) == 6
    idx = np.arange(1000, dtype=np.int64)
    assert not np.array_equal(uniform_array(stream_key(*base), idx), uniform_array(stream_key(6, 1, 2, 3, 4), idx))


def test_draws_are_uniform() -> None:
    u = uniform_array(stream_key(42, 0, 0, 0, 0), np.arange(200_000, dtype=np.int64))
    counts = np.histogram(u, bins=20, range=(0.0, 1.0))[0]
    expected = u.size / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 43.8  # 99.9 % quantile of chi-square with 19 degrees of freedom
    assert abs(float(u.mean()) - 0.5) < 0.003
