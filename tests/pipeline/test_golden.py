"""Golden regression: a seeded small scenario's outputs against stored expected values.

A change to any model (sample generator, suitability, allocation, growth) that alters the
outputs fails this test. Beside each map's digest the file keeps a summary a reader can compare (cells per class,
cells per class that changed since the start map), and the summaries are compared first, so a failure says what
changed before it says that a digest differs. If the change is intended, regenerate the expected file with

    LANDUSE_UPDATE_GOLDEN=1 python -m pytest tests/pipeline/test_golden.py

and say in the commit message why the outputs changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from landuse.pipeline.run import run_scenario

GOLDEN = Path(__file__).parents[1] / "data" / "golden_reduced.json"


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _class_counts(a: np.ndarray) -> dict[str, int]:
    codes, counts = np.unique(a, return_counts=True)
    return {str(int(c)): int(n) for c, n in zip(codes, counts, strict=True)}


def _summary(reduced) -> dict:
    _, configs = reduced
    out = {}
    for name in ("bau", "compact", "ecological"):
        r = run_scenario(configs[name], runs=2, seed=11, write=False)
        final = r.scenario.periods[-1]
        cluster = r.report.data["quotas"][str(final)]["units"][-1]
        before = r.landscape["landuse"].values  # the start map
        out[name] = {
            "class_cells": {str(y): _class_counts(da.values) for y, da in r.landuse.items()},
            "changed_cells": {str(y): int((da.values != before).sum()) for y, da in r.landuse.items()},
            "landuse": {str(y): _digest(da.values) for y, da in r.landuse.items()},
            "probability_urban": _digest(np.nan_to_num(r.urban_probability.values, nan=-1.0)),
            "allocated_cells": {str(a.period): int(a.targets.cells.sum()) for a in r.allocations},
            "objective": {str(a.period): round(a.objective, 6) for a in r.allocations},
            "farmland_loss_ha": round(cluster["farmland_loss_ha"], 6),
            "patches": r.report.data["landscape_metrics"][str(final)]["urban"]["number_of_patches"],
        }
    return out


def test_outputs_match_golden(reduced) -> None:
    got = _summary(reduced)
    if os.environ.get("LANDUSE_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        pytest.skip("golden file regenerated")
    expected = json.loads(GOLDEN.read_text())
    readable = ("class_cells", "changed_cells", "allocated_cells", "objective", "farmland_loss_ha", "patches")
    for name in expected:  # what changed, in numbers a reader can follow, before the digests
        for key in readable:
            assert got[name][key] == expected[name][key], f"{name}: {key} changed"
    assert got == expected
