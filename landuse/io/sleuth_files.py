"""Reading SLEUTH scenario files and their input images (GIF or GeoTIFF).

A SLEUTH scenario file holds ``KEY=value`` lines; ``#`` starts a comment; ``URBAN_DATA``,
``ROAD_DATA``, ``LANDUSE_DATA``, ``LANDUSE_CLASS``, ``PROBABILITY_COLOR`` and
``DELTATRON_COLOR`` may repeat. Keys are matched exactly as SLEUTH matches them
(case-sensitive, e.g. ``ECHO(YES/NO)``); an unknown key or a malformed value raises
:class:`~landuse.core.errors.SleuthFormatError` naming the file and line.

Input images are read as SLEUTH reads them: the **grey value** of each pixel's palette
entry (red = green = blue), not the palette index; a colour entry is an error. An input
may also be a single-band GeoTIFF with the same name and a ``.tif`` ending, in which case
its cell values are used directly.

>>> text = "URBAN_DATA= demo.urban.1930.gif\\nRANDOM_SEED=7\\n"
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

from landuse.core.errors import ArgumentError, SleuthFormatError

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


# --------------------------------------------------------------------------- GeoTIFF writing

# The structural-metadata block GDAL's COG driver puts before the first IFD: it tells GDAL
# (and any COG-aware reader) that the IFD precedes the data and that each tile is preceded
# by its size (uint32) and followed by a copy of its last 4 bytes.
_COG_GHOST = (
    b"GDAL_STRUCTURAL_METADATA_SIZE=000140 bytes\n"
    b"LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
    b"BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n "
)
COG_FAST_MAX_SIDE = 2048  # larger grids get overviews, written by GDAL (rasterio)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def cog_uint8_bytes(
    array: np.ndarray,
    *,
    origin: tuple[float, float],
    cell_size: tuple[float, float],
    nodata: int | None = None,
    description: str = "",
    tags: dict[str, object] | None = None,
    block: int | None = None,
    level: int = 6,
) -> bytes:
    """A single-band ``uint8`` Cloud-Optimized GeoTIFF, north up and without CRS, as bytes.

    The file GDAL's COG driver writes for such a grid without overviews (tiles of
    ``block`` cells, deflate, the structural-metadata block, IFD before the data, tile
    leaders and trailers, ``GDAL_NODATA``, dataset tags and the band description in
    ``GDAL_METADATA``), built with the standard library so that a SLEUTH run needs no GDAL.

    Parameters
    ----------
    array : ndarray
        ``(rows, cols)`` values, cast to ``uint8``; at most :data:`COG_FAST_MAX_SIDE` cells a
        side (GDAL would add overviews beyond).
    origin : (float, float)
        x and y of the upper-left corner of cell (0, 0).
    cell_size : (float, float)
        Cell width and height (both positive; rows go south).
    nodata : int, optional
        Nodata value written to ``GDAL_NODATA``.
    description, tags :
        Band description and dataset metadata items.
    block : int, optional
        Tile size (multiple of 16); default 256 above 256 cells a side, else 128 (as
        :func:`landuse.io.rasters.write_geotiff`).
    level : int
        zlib compression level.

    Examples
    --------
    >>> data = cog_uint8_bytes(np.zeros((3, 4), np.uint8), origin=(0.0, 3.0), cell_size=(1.0, 1.0))
    >>> data[:4] == b"II*\\x00" and b"LAYOUT=IFDS_BEFORE_DATA" in data
    True
    """
    import struct
    import zlib

    arr = np.ascontiguousarray(array, dtype=np.uint8)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ArgumentError(f"need a non-empty 2-D grid, got shape {arr.shape}")
    height, width = arr.shape
    if max(height, width) > COG_FAST_MAX_SIDE:
        raise ArgumentError(f"grid of {height} x {width} cells is too large for the overview-free writer")
    if block is None:
        block = 256 if max(height, width) > 256 else 128
    if block % 16 or block <= 0:
        raise ArgumentError(f"tile size must be a positive multiple of 16, got {block}")
    tiles_y = -(-height // block)
    tiles_x = -(-width // block)
    padded = np.zeros((tiles_y * block, tiles_x * block), dtype=np.uint8)
    padded[:height, :width] = arr
    tiles = [
        zlib.compress(padded[ty * block : (ty + 1) * block, tx * block : (tx + 1) * block].tobytes(), level)
        for ty in range(tiles_y)
        for tx in range(tiles_x)
    ]
    # GDAL escapes item values twice (once as a metadata value, once as XML text) and
    # unescapes them twice on reading
    items = "".join(
        f'  <Item name="{_xml_escape(str(k))}">{_xml_escape(_xml_escape(str(v)))}</Item>\n'
        for k, v in (tags or {}).items()
    )
    if description:
        desc = _xml_escape(_xml_escape(description))
        items += f'  <Item name="DESCRIPTION" sample="0" role="description">{desc}</Item>\n'
    n_tiles = len(tiles)

    def num(tag: int, typ: str, values: list) -> tuple[int, int, int, bytes]:  # SHORT H, LONG I, DOUBLE d
        return tag, {"H": 3, "I": 4, "d": 12}[typ], len(values), struct.pack(f"<{len(values)}{typ}", *values)

    def ascii_(tag: int, text: str) -> tuple[int, int, int, bytes]:
        raw = text.encode("utf-8") + b"\x00"
        return tag, 2, len(raw), raw

    entries = [
        num(256, "H", [width]), num(257, "H", [height]), num(258, "H", [8]), num(259, "H", [8]),  # deflate
        num(262, "H", [1]), num(277, "H", [1]), num(284, "H", [1]), num(317, "H", [1]),
        num(322, "H", [block]), num(323, "H", [block]), num(324, "I", [0] * n_tiles),
        num(325, "I", [len(t) for t in tiles]), num(339, "H", [1]),
        num(33550, "d", [float(cell_size[0]), float(cell_size[1]), 0.0]),
        num(33922, "d", [0.0, 0.0, 0.0, float(origin[0]), float(origin[1]), 0.0]),
    ]  # fmt: skip
    if items:
        entries.append(ascii_(42112, f"<GDALMetadata>\n{items}</GDALMetadata>\n"))
    if nodata is not None:
        entries.append(ascii_(42113, str(int(nodata))))
    ghost = _COG_GHOST + b"\x00" * (len(_COG_GHOST) % 2)
    ifd_at = 8 + len(ghost)
    extra_at = ifd_at + 2 + 12 * len(entries) + 4
    ifd = bytearray(struct.pack("<H", len(entries)))
    extra = bytearray()
    offsets_at = 0  # where the tile offsets go, once known
    for tag, typ, count, raw in entries:
        if len(raw) <= 4:
            if tag == 324:
                offsets_at = ifd_at + len(ifd) + 8
            ifd += struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\x00")
        else:
            if tag == 324:
                offsets_at = extra_at + len(extra)
            ifd += struct.pack("<HHII", tag, typ, count, extra_at + len(extra))
            extra += raw + b"\x00" * (len(raw) % 2)
    ifd += struct.pack("<I", 0)  # no further IFD
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at) + ghost + ifd + extra)
    offsets = []
    for t in tiles:  # leader (size), data, trailer (last 4 bytes again)
        out += struct.pack("<I", len(t))
        offsets.append(len(out))
        out += t + t[-4:]
    out[offsets_at : offsets_at + 4 * n_tiles] = struct.pack(f"<{n_tiles}I", *offsets)
    return bytes(out)
