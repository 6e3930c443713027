"""Suitability trained on observed 2010 -> 2020 change of the committed sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from landuse.calibration.suitability_model import train_suitability
from landuse.cli.app import app
from landuse.core.config import load_scenario
from landuse.core.errors import LanduseError
from landuse.io.rasters import read_landscape

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "configs" / "sample.yaml"


@pytest.fixture(scope="module")
def sample():
    sc = load_scenario(SAMPLE)
    return sc, read_landscape(sc.layer_paths(), classes=sc.classes)


@pytest.fixture(scope="module")
def trained(sample):
    sc, ds = sample
    return train_suitability(ds, sc, method="logistic", max_samples=4000, seed=1)


def test_trained_beats_weighted_linear_auc_on_sample_change(trained) -> None:
    assert trained.t0 == 2010 and trained.t1 == 2020
    for t, fit in trained.fits.items():
        assert fit.n_sampled == 2 * min(fit.n_converted, 4000)
        assert 0.5 < fit.auc_linear < fit.auc <= 1.0, (t, fit.auc, fit.auc_linear)
        assert abs(sum(fit.importances.values()) - 1.0) < 1e-6


def test_suitability_rasters_are_probabilities_inside_study_area(trained, sample) -> None:
    sc, ds = sample
    s = trained.suitability
    assert s.dims == ("type", "y", "x") and s.dtype == np.float32
    assert float(s.min()) >= 0.0 and float(s.max()) <= 1.0
    # cells next to existing urban land score higher than remote hill cells on average
    from landuse.surfaces.suitability import distance_to

    urban = sc.classes.is_role(ds.landuse.values, "residential", "industrial", "commercial")
    d = distance_to(urban, cell=60.0)
    res = s.sel(type="residential").values
    assert res[(d > 0) & (d <= 120)].mean() > res[d > 5000].mean() + 0.3


def test_forest_is_reproducible(sample) -> None:
    sc, ds = sample
    core = ds.isel(y=slice(250, 650), x=slice(450, 850))  # around the core city
    a = train_suitability(core, sc, method="forest", max_samples=800, seed=3)
    b = train_suitability(core, sc, method="forest", max_samples=800, seed=3)
    assert np.array_equal(a.suitability.values, b.suitability.values)
    assert {t: f.auc for t, f in a.fits.items()} == {t: f.auc for t, f in b.fits.items()}


def test_training_needs_history(sample) -> None:
    sc, ds = sample
    with pytest.raises(LanduseError, match="layers.history"):
        train_suitability(ds.drop_vars("landuse_2010"), sc)


def test_cli_writes_rasters_and_report(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["suitability", str(SAMPLE), "--out", str(tmp_path), "--method", "logistic",
                                   "--max-samples", "1500"])
    assert res.exit_code == 0, res.output
    assert "AUC" in res.output
    for t in ("residential", "industrial", "commercial"):
        with rasterio.open(tmp_path / f"suitability_{t}.tif") as src:
            assert src.crs.to_epsg() == 32651 and src.dtypes[0] == "float32"
    assert "AUC (held-out)" in (tmp_path / "suitability_report.md").read_text()


def test_run_with_trained_suitability_end_to_end(tmp_path: Path) -> None:
    """`growth.suitability.method: trained` in `landuse run`: trained on the history layer at the start of the run."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from landuse.sample.generate import generate_sample

    generate_sample(tmp_path / "sample", size=150, seed=42)
    d = yaml.safe_load((tmp_path / "sample" / "sample.yaml").read_text())
    d["growth"].update(runs=2, suitability={"method": "trained", "model": "logistic"})
    d["outputs"] = {"folder": "../out", "figures": False}
    cfg = tmp_path / "sample" / "trained.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "landuse", "validate", str(cfg)], capture_output=True, text=True,
                       env=os.environ)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "landuse", "run", str(cfg), "-q"], capture_output=True, text=True,
                       env=os.environ)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["growth"]["suitability"]["method"] == "trained"
    assert manifest["timings_s"]["train_suitability"] > 0
    with rasterio.open(tmp_path / "out" / "landuse_2035.tif") as src:
        final = src.read(1)
    with rasterio.open(tmp_path / "sample" / "landuse_2020.tif") as src:
        start = src.read(1)
    from landuse.core.classes import URBAN_TYPES, default_scheme

    urban = default_scheme().is_role
    assert urban(final, *URBAN_TYPES).sum() > urban(start, *URBAN_TYPES).sum()  # it grew
