"""The plan's CSV tables, written atomically with floats to six decimals.

``allocation.csv`` (:func:`write_allocation_csv`) holds the targets of one or several periods per zone and type;
``duals.csv`` (:func:`write_duals_csv`) the shadow prices of the policies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from landuse.allocation.results import Allocation
from landuse.io.rasters import write_text


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.6f", lineterminator="\n")


def write_allocation_csv(allocations: Allocation | Sequence[Allocation], path: str | os.PathLike) -> Path:
    """Write the targets of one or several periods as ``allocation.csv`` (atomically)."""
    allocs = [allocations] if isinstance(allocations, Allocation) else list(allocations)
    frames = [a.targets.assign(coordination=a.coordination) for a in allocs]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return write_text(path, _csv(df))


def write_duals_csv(allocations: Allocation | Sequence[Allocation], path: str | os.PathLike) -> Path:
    """Write the shadow prices of one or several periods as ``duals.csv`` (atomically)."""
    allocs = [allocations] if isinstance(allocations, Allocation) else list(allocations)
    frames = [a.duals.assign(period=a.period, coordination=a.coordination) for a in allocs]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not df.empty:
        df = df[["period", "coordination", *[c for c in df.columns if c not in ("period", "coordination")]]]
    return write_text(path, _csv(df))
