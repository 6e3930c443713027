"""Shared fixtures: tiny hand-typed rasters written as GeoTIFFs, and scenario files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401  (tests read .rio on the Landscape: its spatial_ref coordinate is what rioxarray reads)
import yaml
from affine import Affine

from landuse.core.classes import default_scheme
from landuse.core.landscape import like, new_landscape
from landuse.io.rasters import write_geotiff
from landuse.sample.generate import generate_sample

CRS = "EPSG:32651"
TRANSFORM = Affine(100.0, 0.0, 300_000.0, 0.0, -100.0, 3_500_000.0)


def tiny_landuse() -> np.ndarray:
    """6 x 8 land use (default scheme): urban core, farmland, forest, water, one nodata cell."""
    s = default_scheme()
    R, Ind, C = s.code_of("residential"), s.code_of("industrial"), s.code_of("commercial")
    F = s.codes_with_role("farmland")[0]
    W = s.codes_with_role("water")[0]
    Os = s.codes_with_role("open_space")[0]
    N = s.nodata
    return np.array(
        [
            [F, F, F, F, Os, Os, Os, Os],
            [F, R, R, F, F, Os, Os, Os],
            [F, R, C, R, F, F, Os, W],
            [F, Ind, R, F, F, F, W, W],
            [F, Ind, F, F, F, F, F, W],
            [F, F, F, F, F, F, F, N],
        ],
        dtype=np.uint8,
    )


def write_array(path: Path, array: np.ndarray, *, transform: Affine = TRANSFORM, crs: str = CRS,
                classes=None, nodata=None) -> Path:
    """Write a bare numpy array as a GeoTIFF on the given grid."""
    ds = new_landscape({"landuse": np.zeros(array.shape, dtype=np.uint8)}, crs=crs, transform=transform)
    da = like(ds, array, path.stem)
    return write_geotiff(da, path, classes=classes, nodata=nodata)


@pytest.fixture
def tiny_layers(tmp_path: Path) -> dict[str, Path]:
    """Every basic layer of a tiny region as GeoTIFFs in tmp_path."""
    lu = tiny_landuse()
    rows, cols = lu.shape
    cities = np.ones((rows, cols), dtype=np.int32)
    cities[:, 4:] = 2
    red = np.zeros((rows, cols), dtype=np.uint8)
    red[0, 5:] = 1
    farm = np.zeros((rows, cols), dtype=np.uint8)
    farm[5, 0:3] = 1
    slope = np.linspace(0, 20, rows * cols, dtype=np.float32).reshape(rows, cols)
    out = {
        "landuse": write_array(tmp_path / "landuse.tif", lu, classes=default_scheme()),
        "cities": write_array(tmp_path / "cities.tif", cities),
        "red_line": write_array(tmp_path / "red_line.tif", red),
        "permanent_farmland": write_array(tmp_path / "permanent_farmland.tif", farm),
        "slope": write_array(tmp_path / "slope.tif", slope),
    }
    return out


def scenario_dict(layers: dict[str, Path], base: Path, **overrides) -> dict:
    d = {
        "name": "tiny",
        "layers": {k: str(Path(v).relative_to(base)) for k, v in layers.items()},
        "periods": [2020, 2025],
        "demand": {"residential": {2025: 5.0}, "industrial": {2025: 2.0}, "commercial": {2025: 1.0}},
    }
    d.update(overrides)
    return d


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_layers: dict[str, Path]) -> Path:
    """A valid scenario YAML beside the tiny rasters."""
    p = tmp_path / "scenario.yaml"
    p.write_text(yaml.safe_dump(scenario_dict(tiny_layers, tmp_path), sort_keys=False))
    return p


@pytest.fixture(scope="session")
def reduced(tmp_path_factory):
    """A 300 x 300 sample and the three demo scenarios pointed at it (3 runs each)."""
    base = tmp_path_factory.mktemp("reduced")
    generate_sample(base / "sample", size=300, seed=7)
    sample = yaml.safe_load((base / "sample" / "sample.yaml").read_text())
    configs = {}
    for name in ("bau", "compact", "ecological"):
        d = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml").read_text())
        d["layers"] = {
            k: f"sample/{v}" if isinstance(v, str) else {y: f"sample/{p}" for y, p in v.items()}
            for k, v in sample["layers"].items()
        }
        d["demand"] = {**sample["demand"], **{k: v for k, v in d["demand"].items() if k == "split"}}
        d["growth"]["runs"] = 3
        d["outputs"]["folder"] = f"out_{name}"
        path = base / f"{name}.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False))
        configs[name] = path
    return base, configs
