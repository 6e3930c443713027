"""Named class schemes: ``classes: <name>`` in a scenario instead of a list of classes.

Each preset gives the codes, names, colours and roles of a land-cover product's legend, so that a map of that
product can be used as it is (docs/presets.md has one table per preset, with its sources and the decisions
taken on roles):

``default``
    landuse's own scheme: residential, industrial, commercial, farmland, forest, grassland, wetland, water, bare.
``corine`` (alias ``clc``)
    CORINE Land Cover, the 44 level-3 classes under the grid codes 1..44 of the 100 m CLC rasters (nodata 48).
``worldcover`` (alias ``esa_worldcover``)
    ESA WorldCover 10 m v100 / v200, 11 classes (nodata 0).
``clcd``
    The annual 30 m China Land Cover Dataset of Yang & Huang, 9 classes (nodata 0).
``globeland30`` (alias ``glc30``)
    GlobeLand30, 10 classes (nodata 255).

Names are case-insensitive; ``-`` and spaces count as ``_``. ``python -m landuse.core.presets NAME`` prints a preset
as a YAML list of classes to copy into a scenario and edit.

Examples
--------
>>> preset_scheme("default").urban_types
('residential', 'industrial', 'commercial')
>>> clc = preset_scheme("CORINE")
>>> len(clc), clc.nodata, clc.urban_types
(44, 48, ('residential', 'industrial'))
>>> clc.by_code(clc.code_of("residential")).name
'112 Discontinuous urban fabric'
>>> preset_scheme("esa_worldcover").urban_types
('built',)
>>> preset_records("clcd")[7]
{'code': 8, 'name': 'Impervious', 'colour': '#e24290', 'role': 'urban', 'type': 'built'}
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import yaml

from landuse.core.classes import ClassScheme, LandClass, default_scheme
from landuse.core.errors import ArgumentError, ConfigError

BUILT = "built"
"""Urban type of the single-type products (WorldCover, CLCD, GlobeLand30): built-up land of any use."""


def _built(code: int, name: str, colour: str) -> LandClass:
    return LandClass(code, name, colour, BUILT, urban=True)


# --------------------------------------------------------------------------- CORINE Land Cover

# (grid code, CLC code, label, colour, role); colours and labels of the CLC legend of the raster products.
_CORINE: tuple[tuple[int, int, str, str, str], ...] = (
    (1, 111, "Continuous urban fabric", "#e6004d", "residential"),
    (2, 112, "Discontinuous urban fabric", "#ff0000", "residential"),
    (3, 121, "Industrial or commercial units", "#cc4df2", "industrial"),
    (4, 122, "Road and rail networks and associated land", "#cc0000", "infrastructure"),
    (5, 123, "Port areas", "#e6cccc", "infrastructure"),
    (6, 124, "Airports", "#e6cce6", "infrastructure"),
    (7, 131, "Mineral extraction sites", "#a600cc", "infrastructure"),
    (8, 132, "Dump sites", "#a64d00", "infrastructure"),
    (9, 133, "Construction sites", "#ff4dff", "other"),
    (10, 141, "Green urban areas", "#ffa6ff", "urban_green"),
    (11, 142, "Sport and leisure facilities", "#ffe6ff", "urban_green"),
    (12, 211, "Non-irrigated arable land", "#ffffa8", "farmland"),
    (13, 212, "Permanently irrigated land", "#ffff00", "farmland"),
    (14, 213, "Rice fields", "#e6e600", "farmland"),
    (15, 221, "Vineyards", "#e68000", "farmland"),
    (16, 222, "Fruit trees and berry plantations", "#f2a64d", "farmland"),
    (17, 223, "Olive groves", "#e6a600", "farmland"),
    (18, 231, "Pastures", "#e6e64d", "farmland"),
    (19, 241, "Annual crops associated with permanent crops", "#ffe6a6", "farmland"),
    (20, 242, "Complex cultivation patterns", "#ffe64d", "farmland"),
    (
        21,
        243,
        "Land principally occupied by agriculture, with significant areas of natural vegetation",
        "#e6cc4d",
        "farmland",
    ),
    (22, 244, "Agro-forestry areas", "#f2cca6", "farmland"),
    (23, 311, "Broad-leaved forest", "#80ff00", "open_space"),
    (24, 312, "Coniferous forest", "#00a600", "open_space"),
    (25, 313, "Mixed forest", "#4dff00", "open_space"),
    (26, 321, "Natural grasslands", "#ccf24d", "open_space"),
    (27, 322, "Moors and heathland", "#a6ff80", "open_space"),
    (28, 323, "Sclerophyllous vegetation", "#a6e64d", "open_space"),
    (29, 324, "Transitional woodland-shrub", "#a6f200", "open_space"),
    (30, 331, "Beaches, dunes, sands", "#e6e6e6", "open_space"),
    (31, 332, "Bare rocks", "#cccccc", "open_space"),
    (32, 333, "Sparsely vegetated areas", "#ccffcc", "open_space"),
    (33, 334, "Burnt areas", "#000000", "open_space"),
    (34, 335, "Glaciers and perpetual snow", "#a6e6cc", "open_space"),
    (35, 411, "Inland marshes", "#a6a6ff", "open_space"),
    (36, 412, "Peat bogs", "#4d4dff", "open_space"),
    (37, 421, "Salt marshes", "#ccccff", "open_space"),
    (38, 422, "Salines", "#e6e6ff", "open_space"),
    (39, 423, "Intertidal flats", "#a6a6e6", "open_space"),
    (40, 511, "Water courses", "#00ccf2", "water"),
    (41, 512, "Water bodies", "#80f2e6", "water"),
    (42, 521, "Coastal lagoons", "#00ffa6", "water"),
    (43, 522, "Estuaries", "#a6ffe6", "water"),
    (44, 523, "Sea and ocean", "#e6f2ff", "water"),
)

CORINE_NODATA = 48
"""Grid code of the CLC legend's NODATA class (CLC code 999) in the 100 m rasters."""

CORINE_PRIMARY_RESIDENTIAL = 112
"""CLC code whose class new residential land takes: discontinuous urban fabric (see docs/presets.md)."""


def corine_scheme() -> ClassScheme:
    """CORINE Land Cover: the 44 level-3 classes under their raster grid codes 1..44, nodata 48.

    Each name starts with the 3-digit CLC code (``"111 Continuous urban fabric"``): the raster products store the
    grid code (1..44), since CLC codes 111..523 do not fit one byte.
    """
    classes = []
    for grid, clc, label, colour, role in _CORINE:
        classes.append(LandClass(grid, f"{clc} {label}", colour, role, primary=clc == CORINE_PRIMARY_RESIDENTIAL))
    return ClassScheme(tuple(classes), nodata=CORINE_NODATA)


def corine_grid_code(clc_code: int) -> int:
    """The raster grid code (1..44) of a 3-digit CLC code, e.g. ``corine_grid_code(112) == 2``.

    >>> corine_grid_code(523)
    44
    """
    for grid, clc, *_ in _CORINE:
        if clc == int(clc_code):
            return grid
    raise ArgumentError(f"{clc_code} is not a level-3 CLC code; codes are {', '.join(str(r[1]) for r in _CORINE)}")


# --------------------------------------------------------------------------- ESA WorldCover


def worldcover_scheme() -> ClassScheme:
    """ESA WorldCover 10 m (v100 2020, v200 2021): 11 classes, one urban type ``built``, nodata 0."""
    return ClassScheme(
        (
            LandClass(10, "Tree cover", "#006400", "open_space"),
            LandClass(20, "Shrubland", "#ffbb22", "open_space"),
            LandClass(30, "Grassland", "#ffff4c", "open_space"),
            LandClass(40, "Cropland", "#f096ff", "farmland"),
            _built(50, "Built-up", "#fa0000"),
            LandClass(60, "Bare / sparse vegetation", "#b4b4b4", "other"),
            LandClass(70, "Snow and ice", "#f0f0f0", "open_space"),
            LandClass(80, "Permanent water bodies", "#0064c8", "water"),
            LandClass(90, "Herbaceous wetland", "#0096a0", "open_space"),
            LandClass(95, "Mangroves", "#00cf75", "open_space"),
            LandClass(100, "Moss and lichen", "#fae6a0", "open_space"),
        ),
        nodata=0,
    )


# --------------------------------------------------------------------------- CLCD (China)


def clcd_scheme() -> ClassScheme:
    """China Land Cover Dataset (CLCD, Yang & Huang), annual 30 m: 9 classes, one urban type ``built``, nodata 0."""
    return ClassScheme(
        (
            LandClass(1, "Cropland", "#fae39c", "farmland"),
            LandClass(2, "Forest", "#446f33", "open_space"),
            LandClass(3, "Shrub", "#33a02c", "open_space"),
            LandClass(4, "Grassland", "#abd37b", "open_space"),
            LandClass(5, "Water", "#1e69b4", "water"),
            LandClass(6, "Snow/Ice", "#a6cee3", "open_space"),
            LandClass(7, "Barren", "#cfbda3", "other"),
            _built(8, "Impervious", "#e24290"),
            LandClass(9, "Wetland", "#289be8", "open_space"),
        ),
        nodata=0,
    )


# --------------------------------------------------------------------------- GlobeLand30


def globeland30_scheme() -> ClassScheme:
    """GlobeLand30 (2000 / 2010 / 2020): 10 classes, one urban type ``built``, nodata 255."""
    return ClassScheme(
        (
            LandClass(10, "Cultivated land", "#f9f3c1", "farmland"),
            LandClass(20, "Forest", "#147749", "open_space"),
            LandClass(30, "Grassland", "#a9d05f", "open_space"),
            LandClass(40, "Shrubland", "#3eb370", "open_space"),
            LandClass(50, "Wetland", "#7ecef4", "open_space"),
            LandClass(60, "Water bodies", "#00449a", "water"),
            LandClass(70, "Tundra", "#646432", "open_space"),
            _built(80, "Artificial surfaces", "#932f14"),
            LandClass(90, "Bare land", "#cacaca", "other"),
            LandClass(100, "Permanent snow and ice", "#d3edfb", "open_space"),
        ),
        nodata=255,
    )


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Preset:
    """A named class scheme and where its legend comes from."""

    name: str
    title: str
    build: Callable[[], ClassScheme]
    aliases: tuple[str, ...] = ()
    source: str = ""


PRESETS: tuple[Preset, ...] = (
    Preset(
        "default", "landuse default scheme", default_scheme, source="landuse's own nine classes (docs/data-model.md)"
    ),
    Preset(
        "corine",
        "CORINE Land Cover (CLC), 100 m raster grid codes",
        corine_scheme,
        aliases=("clc", "corine_land_cover"),
        source="CLC raster legend (clc_legend.csv / the QGIS colour map of the CLC2018 raster products, EEA / "
        "Copernicus Land Monitoring Service)",
    ),
    Preset(
        "worldcover",
        "ESA WorldCover 10 m v100 / v200",
        worldcover_scheme,
        aliases=("esa_worldcover",),
        source="ESA WorldCover Product User Manual v1.0 / v2.0 (Map band class table)",
    ),
    Preset(
        "clcd",
        "China Land Cover Dataset (CLCD), annual 30 m, Yang & Huang",
        clcd_scheme,
        aliases=("china_clcd",),
        source="Yang & Huang (2021), ESSD 13, 3907-3925, doi:10.5194/essd-13-3907-2021; palette: see docs/presets.md",
    ),
    Preset(
        "globeland30",
        "GlobeLand30 (2000 / 2010 / 2020)",
        globeland30_scheme,
        aliases=("glc30",),
        source="GlobeLand30 classification system (Chen et al. 2015, ISPRS J. 103, 7-27); colours not "
        "verified, see docs/presets.md",
    ),
)

PRESET_NAMES: tuple[str, ...] = tuple(p.name for p in PRESETS)
"""Preset names, ``default`` first."""

PRESET_ALIASES: dict[str, str] = {a: p.name for p in PRESETS for a in p.aliases}
"""Alias -> preset name."""

_BY_NAME = {p.name: p for p in PRESETS}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def preset(name: str) -> Preset:
    """The :class:`Preset` called ``name`` (or one of its aliases); :class:`ConfigError` for an unknown name."""
    key = _key(str(name))
    key = PRESET_ALIASES.get(key, key)
    if key not in _BY_NAME:
        aliases = ", ".join(f"{a} = {n}" for a, n in PRESET_ALIASES.items())
        raise ConfigError(
            f"classes: unknown preset {name!r}; presets are {', '.join(PRESET_NAMES)} (aliases: {aliases}), "
            "or give a list of classes (see docs/presets.md)"
        )
    return _BY_NAME[key]


def preset_scheme(name: str) -> ClassScheme:
    """The class scheme of preset ``name``; :class:`ConfigError` for an unknown name."""
    return preset(name).build()


def preset_records(name: str) -> list[dict]:
    """Preset ``name`` as the list of class dicts a scenario's ``classes:`` key takes.

    Each dict has code, name, colour, role (and type, primary where they apply).

    Give this list, edited, as ``classes:`` to change a preset, with ``landuse_nodata:`` set to the preset's nodata
    when it is not 255 (:func:`preset_yaml` writes both).
    """
    return preset_scheme(name).to_records()


def _flow(record: dict) -> str:
    """One class as a YAML flow mapping on one line (keys in their order, strings quoted where YAML needs it)."""
    return yaml.safe_dump(record, default_flow_style=True, sort_keys=False, width=10_000).strip()


def preset_yaml(name: str) -> str:
    """Preset ``name`` as YAML: comment lines saying what it is, then ``classes:`` and one class per line."""
    p = preset(name)
    scheme = p.build()
    lines = [
        f"# landuse preset {p.name!r}: {p.title}",
        f"# source: {p.source}",
        f"# urban types: {', '.join(scheme.urban_types)}; nodata of the preset: {scheme.nodata}",
    ]
    if scheme.nodata != 255:
        lines.append(f"landuse_nodata: {scheme.nodata}   # a list of classes has nodata 255 unless this key says so")
    lines.append("classes:")
    lines += [f"  - {_flow(rec)}" for rec in scheme.to_records()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m landuse.core.presets [NAME]``: print preset NAME as YAML, or list the presets; exit 2 if unknown."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m landuse.core.presets NAME   (prints the preset as a YAML list of classes)")
        for p in PRESETS:
            also = f" (also {', '.join(p.aliases)})" if p.aliases else ""
            print(f"  {p.name:<12} {p.title}{also}")
        return 0
    try:
        text = preset_yaml(args[0])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
