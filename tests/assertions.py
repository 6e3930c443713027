"""Assertion helpers shared by tests (import as ``from assertions import ...``)."""

from __future__ import annotations

from pathlib import Path

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


def same_outputs_end_to_end(a: Path, b: Path) -> None:
    """Every output file of two runs is byte-identical (GeoTIFFs, CSVs, figures, report.md/html), and report.json
    differs in the output folder's path only; manifest.json records the run's own settings and times."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert any(f.suffix == ".csv" for f in files) and any(f.suffix == ".png" for f in files)
    for f in files:
        if f.name == "manifest.json":
            continue
        x, y = (a / f).read_bytes(), (b / f).read_bytes()
        if f.name == "report.json":
            x = x.replace(str(a).encode(), b"<out>")
            y = y.replace(str(b).encode(), b"<out>")
        assert x == y, f"{f} differs"
