r"""Reading SLEUTH scenario files and their input images (GIF or GeoTIFF).

A SLEUTH scenario file holds ``KEY=value`` lines; ``#`` starts a comment; ``URBAN_DATA``,
``ROAD_DATA``, ``LANDUSE_DATA``, ``LANDUSE_CLASS``, ``PROBABILITY_COLOR`` and
``DELTATRON_COLOR`` may repeat. Keys are matched exactly as SLEUTH matches them
(case-sensitive, e.g. ``ECHO(YES/NO)``); an unknown key or a malformed value raises
:class:`~landuse.core.errors.SleuthFormatError` naming the file and line.

Input images are read as SLEUTH reads them: the **grey value** of each pixel's palette
entry (red = green = blue), not the palette index; a colour entry is an error. An input
may also be a single-band GeoTIFF with the same name and a ``.tif`` ending, in which case
its cell values are used directly.

>>> text = "URBAN_DATA= demo.urban.1930.gif\nRANDOM_SEED=7\n"
>>> sc = parse_scenario_text(text, source="inline")
>>> sc.random_seed, sc.urban_data
(7, ['demo.urban.1930.gif'])
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse.core.errors import SleuthFormatError

COEFFICIENTS = ("DIFFUSION", "BREED", "SPREAD", "SLOPE", "ROAD")

_YES_NO_KEYS = {
    "ECHO(YES/NO)": "echo",
    "WRITE_COEFF_FILE(YES/NO)": "write_coeff_file",
    "WRITE_AVG_FILE(YES/NO)": "write_avg_file",
    "WRITE_STD_DEV_FILE(YES/NO)": "write_std_dev_file",
    "WRITE_MEMORY_MAP(YES/NO)": None,
    "LOGGING(YES/NO)": None,
    "LOG_LANDCLASS_SUMMARY(YES/NO)": None,
    "LOG_SLOPE_WEIGHTS(YES/NO)": None,
    "LOG_READS(YES/NO)": None,
    "LOG_WRITES(YES/NO)": None,
    "LOG_COLORTABLES(YES/NO)": None,
    "LOG_TRANSITION_MATRIX(YES/NO)": None,
    "LOG_URBANIZATION_ATTEMPTS(YES/NO)": None,
    "LOG_INITIAL_COEFFICIENTS(YES/NO)": None,
    "LOG_BASE_STATISTICS(YES/NO)": None,
    "LOG_DEBUG(YES/NO)": None,
    "WRITE_COLOR_KEY_IMAGES(YES/NO)": None,
    "ECHO_IMAGE_FILES(YES/NO)": None,
    "ANIMATION(YES/NO)": None,
    "VIEW_GROWTH_TYPES(YES/NO)": None,
    "VIEW_DELTATRON_AGING(YES/NO)": None,
}
_INT_KEYS = {
    "RANDOM_SEED": "random_seed",
    "MONTE_CARLO_ITERATIONS": "monte_carlo_iterations",
    "NUM_WORKING_GRIDS": None,
    "PREDICTION_START_DATE": "prediction_start_date",
    "PREDICTION_STOP_DATE": "prediction_stop_date",
    "LOG_PROCESSING_STATUS(0:off/1:low verbosity/2:high verbosity)": None,
    "LOG_TIMINGS(0:off/1:low verbosity/2:high verbosity)": None,
}
for _c in COEFFICIENTS:
    for _part in ("START", "STEP", "STOP"):
        _INT_KEYS[f"CALIBRATION_{_c}_{_part}"] = f"calibration:{_c}:{_part}"
    _INT_KEYS[f"PREDICTION_{_c}_BEST_FIT"] = f"best_fit:{_c}"
_FLOAT_KEYS = {
    "ROAD_GRAV_SENSITIVITY": "road_grav_sensitivity",
    "SLOPE_SENSITIVITY": "slope_sensitivity",
    "CRITICAL_LOW": "critical_low",
    "CRITICAL_HIGH": "critical_high",
    "CRITICAL_SLOPE": "critical_slope",
    "BOOM": "boom",
    "BUST": "bust",
}
_PATH_KEYS = {
    "INPUT_DIR": "input_dir",
    "OUTPUT_DIR": "output_dir",
    "WHIRLGIF_BINARY": None,
    "EXCLUDED_DATA": "excluded_data",
    "SLOPE_DATA": "slope_data",
    "BACKGROUND_DATA": "background_data",
}
_LIST_KEYS = {"URBAN_DATA": "urban_data", "ROAD_DATA": "road_data", "LANDUSE_DATA": "landuse_data"}
_COLOR_KEYS = {
    "DATE_COLOR", "SEED_COLOR", "WATER_COLOR", "PHASE0G_GROWTH_COLOR", "PHASE1G_GROWTH_COLOR",
    "PHASE2G_GROWTH_COLOR", "PHASE3G_GROWTH_COLOR", "PHASE4G_GROWTH_COLOR", "PHASE5G_GROWTH_COLOR",
    "DELTATRON_COLOR",
}  # fmt: skip
_WINDOW_KEYS = {"GROWTH_TYPE_PRINT_WINDOW", "DELTATRON_PRINT_WINDOW"}
_OTHER_KEYS = {"PROBABILITY_COLOR", "LANDUSE_CLASS"}
KNOWN_KEYS = frozenset(
    set(_YES_NO_KEYS) | set(_INT_KEYS) | set(_FLOAT_KEYS) | set(_PATH_KEYS) | set(_LIST_KEYS) | _COLOR_KEYS
    | _WINDOW_KEYS | _OTHER_KEYS
)  # fmt: skip


@dataclass
class SleuthScenario:
    """A parsed SLEUTH scenario file (values as written; paths not yet resolved).

    Paths in the file are relative to the folder SLEUTH is run from, by convention a
    ``Scenarios/`` folder beside ``Input/`` and ``Output/``; :meth:`resolve` takes them
    relative to the scenario file's own folder.
    """

    source: str = "<text>"
    input_dir: str = ""
    output_dir: str = ""
    urban_data: list[str] = field(default_factory=list)
    road_data: list[str] = field(default_factory=list)
    landuse_data: list[str] = field(default_factory=list)
    excluded_data: str = ""
    slope_data: str = ""
    background_data: str = ""
    random_seed: int = 1
    monte_carlo_iterations: int = 1
    calibration: dict[str, dict[str, int]] = field(
        default_factory=lambda: {c: {"START": 0, "STEP": 1, "STOP": 0} for c in COEFFICIENTS}
    )
    best_fit: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COEFFICIENTS, 0))
    prediction_start_date: int = 0
    prediction_stop_date: int = 0
    road_grav_sensitivity: float = 0.01
    slope_sensitivity: float = 0.1
    critical_low: float = 0.97
    critical_high: float = 1.3
    critical_slope: float = 21.0
    boom: float = 1.01
    bust: float = 0.9
    echo: bool = False
    write_coeff_file: bool = False
    write_avg_file: bool = True
    write_std_dev_file: bool = True
    landuse_classes: list[tuple[int, str, str, str]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers
    def line_of(self, key: str) -> str:
        """``file:line`` where ``key`` was (last) set, for error messages."""
        n = self.lines.get(key)
        return f"{self.source}:{n}" if n else f"{self.source} (key {key} not set)"

    def coefficient_range(self, name: str) -> list[int]:
        """Values SLEUTH's calibration loop takes for one coefficient (START..STOP by STEP)."""
        rng = self.calibration[name]
        start, step, stop = rng["START"], rng["STEP"], rng["STOP"]
        if step <= 0:
            raise SleuthFormatError(
                f"CALIBRATION_{name}_STEP={step} ({self.line_of(f'CALIBRATION_{name}_STEP')}) must be > 0"
            )
        if stop < start:
            raise SleuthFormatError(
                f"CALIBRATION_{name}_STOP={stop} is below CALIBRATION_{name}_START={start} "
                f"({self.line_of(f'CALIBRATION_{name}_STOP')}); the range would be empty"
            )
        return list(range(start, stop + 1, step))


def _yes_no(value: str, key: str, where: str) -> bool:
    v = value.strip().upper()
    if v in ("YES", "Y", "1", "TRUE"):
        return True
    if v in ("NO", "N", "0", "FALSE"):
        return False
    raise SleuthFormatError(f"{where}: {key} must be YES or NO, got {value!r}")


def _first_token(value: str) -> str:
    parts = value.split()
    return parts[0] if parts else ""


def _check_color(value: str, key: str, where: str) -> None:
    v = value.strip().rstrip(",").strip()
    if not v:
        raise SleuthFormatError(f"{where}: {key} needs a colour (0XRRGGBB or red, green, blue)")
    if v.upper().startswith("0X"):
        try:
            int(v.split()[0], 16)
        except ValueError:
            raise SleuthFormatError(f"{where}: {key} colour {v!r} is not a hexadecimal 0XRRGGBB") from None
        return
    parts = [p.strip() for p in v.split(",") if p.strip()]
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise SleuthFormatError(f"{where}: {key} colour {v!r} must be 0XRRGGBB or red, green, blue (0-255)")


def parse_scenario_text(text: str, *, source: str = "<text>") -> SleuthScenario:
    """Parse the text of a SLEUTH scenario file.

    Parameters
    ----------
    text : str
        File contents.
    source : str
        Name used in error messages.

    Returns
    -------
    SleuthScenario

    Raises
    ------
    SleuthFormatError
        An unknown key, a line without ``=``, or a malformed value; the message names the
        line and, for unknown keys, the closest known keys.
    """
    sc = SleuthScenario(source=source)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith("#"):
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        if "=" not in line:
            raise SleuthFormatError(f"{where}: expected KEY=value, got {line!r}")
        key, value = line.split("=", 1)
        key = key.strip()
        value = value.strip()
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SleuthFormatError(f"{where}: unknown SLEUTH scenario key {key!r}{hint}")
        sc.lines[key] = lineno
        if key in _YES_NO_KEYS:
            flag = _yes_no(_first_token(value), key, where)
            attr = _YES_NO_KEYS[key]
            if attr:
                setattr(sc, attr, flag)
        elif key in _INT_KEYS:
            tok = _first_token(value)
            try:
                number = int(tok)
            except ValueError:
                raise SleuthFormatError(f"{where}: {key} must be an integer, got {value!r}") from None
            attr = _INT_KEYS[key]
            if attr is None:
                continue
            if attr.startswith("calibration:"):
                _, coeff, part = attr.split(":")
                sc.calibration[coeff][part] = number
            elif attr.startswith("best_fit:"):
                sc.best_fit[attr.split(":")[1]] = number
            else:
                setattr(sc, attr, number)
        elif key in _FLOAT_KEYS:
            tok = _first_token(value)
            try:
                number = float(tok)
            except ValueError:
                raise SleuthFormatError(f"{where}: {key} must be a number, got {value!r}") from None
            setattr(sc, _FLOAT_KEYS[key], number)
        elif key in _PATH_KEYS:
            tok = _first_token(value)
            if not tok:
                raise SleuthFormatError(f"{where}: {key} needs a path")
            attr = _PATH_KEYS[key]
            if attr:
                setattr(sc, attr, tok)
        elif key in _LIST_KEYS:
            tok = _first_token(value)
            if not tok:
                raise SleuthFormatError(f"{where}: {key} needs a file name")
            getattr(sc, _LIST_KEYS[key]).append(tok)
        elif key in _COLOR_KEYS:
            _check_color(value, key, where)
        elif key in _WINDOW_KEYS:
            parts = [p.strip() for p in value.split(",")]
            if len(parts) != 6 or not all(p.lstrip("-").isdigit() for p in parts):
                raise SleuthFormatError(
                    f"{where}: {key} must be six integers run1,run2,mc1,mc2,year1,year2, got {value!r}"
                )
        elif key == "PROBABILITY_COLOR":
            parts = [p.strip() for p in value.split(",")]
            if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
                raise SleuthFormatError(f"{where}: PROBABILITY_COLOR must start with low, upper, got {value!r}")
        elif key == "LANDUSE_CLASS":
            parts = [p.strip() for p in value.split(",")]
            if len(parts) < 4 or not parts[0].isdigit():
                raise SleuthFormatError(
                    f"{where}: LANDUSE_CLASS must be 'pix, name, flag, colour', got {value!r}"
                )
            if parts[2].upper() not in ("", "URB", "EXC", "UNC"):
                raise SleuthFormatError(f"{where}: LANDUSE_CLASS flag must be URB, EXC, UNC or empty, got {parts[2]!r}")
            sc.landuse_classes.append((int(parts[0]), parts[1], parts[2].upper(), parts[3]))
    return sc


def read_scenario(path: str | os.PathLike) -> SleuthScenario:
    """Read and parse a SLEUTH scenario file (see :func:`parse_scenario_text`)."""
    p = Path(path)
    if p.is_dir():
        raise SleuthFormatError(f"{p.resolve()} is a folder, not a SLEUTH scenario file; give the scenario file's path")
    if not p.is_file():
        raise SleuthFormatError(f"SLEUTH scenario file not found: {p.resolve()}")
    try:
        text = p.read_text(encoding="latin-1")
    except OSError as exc:
        raise SleuthFormatError(f"cannot read SLEUTH scenario file {p.resolve()}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise SleuthFormatError(
            f"{p}: not a text file (it holds NUL bytes); a SLEUTH scenario file is KEY=value lines, "
            "e.g. scenario.demo200_test"
        )
    return parse_scenario_text(text, source=str(p))


def year_of(filename: str, *, key: str = "") -> int:
    """Year of a SLEUTH input name ``<location>.<kind>.<year>[.<info>].gif`` (third dot field)."""
    parts = Path(filename).name.split(".")
    if len(parts) < 4 or not parts[2].isdigit():
        raise SleuthFormatError(
            f"{key or 'input'} file name {filename!r} does not follow <location>.<kind>.<year>.gif; "
            "SLEUTH reads the year from the third dot-separated field"
        )
    return int(parts[2])


def resolve_input(input_dir: Path, name: str) -> Path:
    """The file for an input name: as given, or the same stem with a ``.tif``/``.tiff`` ending."""
    p = input_dir / name
    for cand in (p, p.with_suffix(".tif"), p.with_suffix(".tiff")):
        if cand.exists():
            return cand
    raise SleuthFormatError(f"SLEUTH input {name!r} not found in {input_dir} (looked for {p.name} and {p.with_suffix('.tif').name})")


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """Read an input image as SLEUTH does: grey value per pixel, row 0 at the top.

    GIFs are decoded with Pillow; a palette entry whose red, green and blue differ is an
    error (SLEUTH needs true greyscale). GeoTIFFs (``.tif``) return band 1 as integers.

    Returns
    -------
    numpy.ndarray
        ``int32`` array ``(rows, cols)``.
    """
    p = Path(path)
    if p.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        try:
            with rasterio.open(p) as src:
                arr = src.read(1)
        except rasterio.errors.RasterioIOError as exc:
            raise SleuthFormatError(f"cannot read GeoTIFF {p}: {exc}") from exc
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)):
                raise SleuthFormatError(f"{p}: SLEUTH inputs need finite values everywhere (found NaN/inf)")
            arr = np.floor(arr)
        return arr.astype(np.int32)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.load()
            mode = im.mode
            idx = np.asarray(im)
            palette = im.getpalette() if mode == "P" else None
    except (UnidentifiedImageError, OSError) as exc:
        raise SleuthFormatError(f"cannot read image {p}: {exc}") from exc
    if mode == "L":
        return idx.astype(np.int32)
    if mode == "P" and palette is not None:
        pal = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
        used = np.unique(idx)
        used = used[used < len(pal)]
        bad = used[(pal[used, 0] != pal[used, 1]) | (pal[used, 0] != pal[used, 2])]
        if bad.size:
            r, g, b = pal[bad[0]]
            raise SleuthFormatError(
                f"{p} is not a true grey-scale image: palette index {int(bad[0])} is RGB ({r},{g},{b}); "
                "SLEUTH reads grey values, re-save the image in grey scale"
            )
        lut = np.zeros(256, dtype=np.int32)
        lut[: len(pal)] = pal[:, 0]
        return lut[idx]
    raise SleuthFormatError(f"{p}: image mode {mode} is not grey scale; SLEUTH inputs are 8-bit grey-scale GIFs")
