"""Golden regression: a seeded small scenario's outputs against stored expected values.

A change to any model (sample generator, suitability, allocation, growth) that alters the
outputs fails this test. If the change is intended, regenerate the expected file with

    LANDUSE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

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

GOLDEN = Path(__file__).parent / "data" / "golden_reduced.json"


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _summary(reduced) -> dict:
    _, configs = reduced
    out = {}
    for name in ("bau", "compact", "ecological"):
        r = run_scenario(configs[name], runs=2, seed=11, write=False)
        final = r.scenario.periods[-1]
        cluster = r.report.data["quotas"][str(final)]["units"][-1]
        out[name] = {
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
    assert got == expected
