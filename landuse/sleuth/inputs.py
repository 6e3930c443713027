"""SLEUTH's inputs: the urban, road, slope, excluded (and optional land-use) grids of a scenario, read and checked.

:func:`load_inputs` reads the GIF (or GeoTIFF) grids a SLEUTH scenario file names, as SLEUTH reads them (grey
values), and checks them against each other; :class:`SleuthInputs` holds them for the kernels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse.core.errors import SleuthFormatError
from landuse.io.sleuth_files import SleuthScenario, read_grey, resolve_input, year_of


@dataclass
class SleuthInputs:
    """SLEUTH input grids, as SLEUTH prepares them.

    ``urban`` holds the urban grids used by the mode (all years in test/calibrate, the
    prediction seed in predict); ``roads`` are rescaled to 0..100 over all road years;
    ``road_pixels`` counts road cells per road grid before rescaling.
    """

    urban: np.ndarray
    urban_years: list[int]
    roads: np.ndarray
    road_years: list[int]
    road_pixels: list[int]
    slope: np.ndarray
    excluded: np.ndarray
    location: str = "sleuth"
    files: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns of the grids."""
        return self.slope.shape

    @property
    def excluded_count(self) -> int:
        """Cells that can never urbanise (``excluded >= 100``)."""
        return int((self.excluded >= 100).sum())

    def road_index(self, year: int) -> int:
        """Road grid used in ``year``: the latest with a year <= ``year``, else the first."""
        idx = 0
        for i in range(len(self.road_years) - 1, 0, -1):
            if year >= self.road_years[i]:
                idx = i
                break
        return idx


def normalize_roads(grids: Sequence[np.ndarray]) -> np.ndarray:
    """Rescale road grids to 0..100 as SLEUTH does (relative to the largest value of all years)."""
    stack = np.stack([np.asarray(g, dtype=np.int64) for g in grids])
    maxima = [int(g.max(initial=0)) for g in stack]
    max_of_max = max(maxima) if maxima else 0
    out = np.zeros(stack.shape, dtype=np.int32)
    for k, g in enumerate(stack):
        if maxima[k] <= 0:
            continue
        image_max = np.float32(maxima[k])
        norm = np.float64(np.float32(image_max / np.float32(max_of_max)))
        out[k] = np.trunc(((100.0 * g) / np.float64(image_max)) * norm).astype(np.int32)
    return out


def load_inputs(
    scenario: SleuthScenario,
    *,
    mode: str,
    input_dir: str | os.PathLike | None = None,
) -> SleuthInputs:
    """Read the scenario's urban, road, slope and excluded images.

    Parameters
    ----------
    scenario : SleuthScenario
        Parsed scenario.
    mode : {"test", "calibrate", "predict"}
        In predict mode only urban and road images dated on or after
        ``PREDICTION_START_DATE`` are used (the last of each list if none is).
    input_dir : path, optional
        Folder of the images; default ``INPUT_DIR`` relative to the scenario file's folder.

    Returns
    -------
    SleuthInputs
    """
    folder = _input_dir(scenario, input_dir)
    if not scenario.urban_data:
        raise SleuthFormatError(f"{scenario.source}: no URBAN_DATA lines; SLEUTH needs at least two urban years")
    for key, attr in (("SLOPE_DATA", "slope_data"), ("EXCLUDED_DATA", "excluded_data")):
        if not getattr(scenario, attr):
            raise SleuthFormatError(f"{scenario.source}: {key} is missing")
    if not scenario.road_data:
        raise SleuthFormatError(f"{scenario.source}: no ROAD_DATA lines")
    urban_names = [(year_of(n, key="URBAN_DATA"), n) for n in scenario.urban_data]
    road_names = [(year_of(n, key="ROAD_DATA"), n) for n in scenario.road_data]
    if mode == "predict":
        start = scenario.prediction_start_date
        urban_names = [u for u in urban_names if u[0] >= start] or urban_names[-1:]
        road_names = [r for r in road_names if r[0] >= start] or road_names[-1:]
    elif len(urban_names) < 2:
        raise SleuthFormatError(f"{scenario.source}: {mode} mode needs at least two URBAN_DATA years")
    files: list[str] = []

    def grid(name: str) -> np.ndarray:
        p = resolve_input(folder, name)
        files.append(str(p))
        return read_grey(p)

    slope = grid(scenario.slope_data)
    shape = slope.shape
    excluded = grid(scenario.excluded_data)
    urban = [grid(n) for _, n in urban_names]
    roads_raw = [grid(n) for _, n in road_names]
    for name, arr in zip(files, [slope, excluded, *urban, *roads_raw], strict=True):
        if arr.shape != shape:
            raise SleuthFormatError(
                f"{name} is {arr.shape[0]} x {arr.shape[1]} cells but {files[0]} is {shape[0]} x {shape[1]}; "
                "all SLEUTH inputs must share one grid"
            )
    return SleuthInputs(
        urban=np.stack([(u > 0).astype(np.uint8) for u in urban]),
        urban_years=[y for y, _ in urban_names],
        roads=normalize_roads(roads_raw),
        road_years=[y for y, _ in road_names],
        road_pixels=[int((r > 0).sum()) for r in roads_raw],
        slope=np.clip(slope, 0, 255).astype(np.uint8),
        excluded=excluded.astype(np.int32),
        location=Path(scenario.slope_data).name.split(".")[0],
        files=files,
    )


def _input_dir(scenario: SleuthScenario, override: str | os.PathLike | None) -> Path:
    base = Path(scenario.source).parent if scenario.source not in ("", "<text>") else Path.cwd()
    if override is not None:
        folder = Path(override)
        if not folder.is_dir():
            raise SleuthFormatError(f"input folder {folder} (`input_dir`) does not exist")
        return folder
    folder = base / scenario.input_dir
    if not folder.is_dir():
        raise SleuthFormatError(
            f"INPUT_DIR={scenario.input_dir} ({scenario.line_of('INPUT_DIR')}) resolves to {folder.resolve()}, "
            "which does not exist; SLEUTH paths are relative to the scenario's folder: fix INPUT_DIR or pass "
            "`input_dir`"
        )
    return folder


