"""Assertion helpers shared by tests (import as ``from assertions import ...``)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def assert_same_grid(a: xr.DataArray | xr.Dataset, b: xr.DataArray | xr.Dataset) -> None:
    """Both objects share CRS, transform and shape."""
    assert a.rio.crs == b.rio.crs, (a.rio.crs, b.rio.crs)
    assert a.rio.transform().almost_equals(b.rio.transform()), (a.rio.transform(), b.rio.transform())
    assert a.rio.shape == b.rio.shape


def assert_respects_mask(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> None:
    """No cell under ``mask`` changed between ``before`` and ``after``."""
    changed = (np.asarray(before) != np.asarray(after)) & np.asarray(mask, dtype=bool)
    assert not changed.any(), f"{int(changed.sum())} masked cells changed, e.g. at {np.argwhere(changed)[:5].tolist()}"
