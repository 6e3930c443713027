"""SLEUTH test projects built in a temporary folder: GIF inputs and a scenario file in SLEUTH's folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def gif(path: Path, index: np.ndarray, palette: list[tuple[int, int, int]]) -> Path:
    im = Image.fromarray(index.astype(np.uint8), mode="P")
    flat = [v for rgb in palette for v in rgb]
    im.putpalette(flat + [0] * (768 - len(flat)))
    im.save(path)
    return path


def tiny_project(tmp_path: Path, *, extra: str = "") -> Path:
    """A SLEUTH project (Scenarios/, Input/, Output/) with 30 x 30 GIF inputs."""
    inp = tmp_path / "Input"
    inp.mkdir(parents=True)
    grey = [(v, v, v) for v in range(256)]
    rng = np.random.default_rng(0)
    urban = np.zeros((30, 30), int)
    urban[12:17, 12:17] = 255
    for year, grow in ((1980, 0), (1990, 2), (2000, 4)):
        u = urban.copy()
        u[12 - grow : 17 + grow, 12 - grow : 17 + grow] = 255
        gif(inp / f"tiny.urban.{year}.gif", u, grey)
    roads = np.zeros((30, 30), int)
    roads[15, :] = 255
    gif(inp / "tiny.roads.1980.gif", roads, grey)
    gif(inp / "tiny.slope.gif", rng.integers(0, 25, (30, 30)), grey)
    excl = np.ones((30, 30), int)
    excl[:, :3] = 100
    gif(inp / "tiny.excluded.gif", excl, grey)
    (tmp_path / "Scenarios").mkdir()
    text = f"""# tiny
INPUT_DIR=../Input/
OUTPUT_DIR=../Output/run/
RANDOM_SEED=5
MONTE_CARLO_ITERATIONS=3
WRITE_AVG_FILE(YES/NO)=yes
WRITE_STD_DEV_FILE(YES/NO)=no
CALIBRATION_DIFFUSION_START=10
CALIBRATION_DIFFUSION_STEP=40
CALIBRATION_DIFFUSION_STOP=50
CALIBRATION_BREED_START=10
CALIBRATION_BREED_STEP=1
CALIBRATION_BREED_STOP=10
CALIBRATION_SPREAD_START=0
CALIBRATION_SPREAD_STEP=50
CALIBRATION_SPREAD_STOP=100
CALIBRATION_SLOPE_START=20
CALIBRATION_SLOPE_STEP=1
CALIBRATION_SLOPE_STOP=20
CALIBRATION_ROAD_START=30
CALIBRATION_ROAD_STEP=1
CALIBRATION_ROAD_STOP=30
PREDICTION_DIFFUSION_BEST_FIT=10
PREDICTION_BREED_BEST_FIT=10
PREDICTION_SPREAD_BEST_FIT=40
PREDICTION_SLOPE_BEST_FIT=20
PREDICTION_ROAD_BEST_FIT=30
PREDICTION_START_DATE=2000
PREDICTION_STOP_DATE=2004
URBAN_DATA= tiny.urban.1980.gif
URBAN_DATA= tiny.urban.1990.gif
URBAN_DATA= tiny.urban.2000.gif
ROAD_DATA= tiny.roads.1980.gif
EXCLUDED_DATA= tiny.excluded.gif
SLOPE_DATA= tiny.slope.gif
CRITICAL_SLOPE=21.0
{extra}"""
    path = tmp_path / "Scenarios" / "scenario.tiny"
    path.write_text(text)
    return path
