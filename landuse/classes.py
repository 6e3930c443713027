"""Land-use class scheme: codes, names, colours and roles.

The scheme is declared by the scenario (or the default below is used). Code elsewhere
asks the scheme for the codes of a role; nothing hard-codes a class code.

Roles
-----
``residential``, ``industrial``, ``commercial``
    The three urban growth types. Each role is held by exactly one class.
``farmland``
    Cultivated land; may be lost to growth at a cost unless protected.
``open_space``
    Forest, grassland, wetland and other natural land counted by open-space quotas.
``water``
    Rivers and lakes; never converted by default.
``other``
    Anything else (bare land, mines, ...).

Examples
--------
>>> scheme = default_scheme()
>>> scheme.code_of("residential")
1
>>> scheme.codes_with_role("open_space")
(5, 6, 7)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from landuse.errors import ConfigError

URBAN_TYPES: tuple[str, ...] = ("residential", "industrial", "commercial")
"""The three urban growth types, in the order used by every array with a type axis."""

ROLES: tuple[str, ...] = (*URBAN_TYPES, "farmland", "open_space", "water", "other")


@dataclass(frozen=True)
class LandClass:
    """One land-use class.

    Parameters
    ----------
    code : int
        Raster value, 0..254 (255 is reserved as the land-use nodata value).
    name : str
        Human-readable name, written into GeoTIFF category names.
    colour : str
        ``#rrggbb`` colour for maps and the GeoTIFF colour table.
    role : str
        One of :data:`ROLES`.
    """

    code: int
    name: str
    colour: str
    role: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as an ``(r, g, b)`` tuple of 0..255 integers."""
        c = self.colour.lstrip("#")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


@dataclass(frozen=True)
class ClassScheme:
    """An ordered collection of :class:`LandClass` with role look-ups.

    Parameters
    ----------
    classes : tuple of LandClass
        The classes; codes and names must be unique.
    nodata : int
        Land-use value marking cells outside the study area (default 255).
    """

    classes: tuple[LandClass, ...]
    nodata: int = 255
    _by_code: dict[int, LandClass] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        codes = [c.code for c in self.classes]
        names = [c.name for c in self.classes]
        if len(set(codes)) != len(codes):
            dup = sorted({c for c in codes if codes.count(c) > 1})
            problems.append(f"classes: codes must be unique, {dup} appear more than once")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            problems.append(f"classes: names must be unique, {dup} appear more than once")
        for c in self.classes:
            if not 0 <= c.code <= 254:
                problems.append(f"classes: code {c.code} ({c.name}) must be within [0, 254]")
            if c.code == self.nodata:
                problems.append(
                    f"classes: code {c.code} ({c.name}) equals the land-use nodata value; "
                    "choose another code or another nodata value"
                )
            if c.role not in ROLES:
                problems.append(
                    f"classes: role of {c.name!r} must be one of {', '.join(ROLES)}, got {c.role!r}"
                )
        for t in URBAN_TYPES:
            n = sum(1 for c in self.classes if c.role == t)
            if n != 1:
                problems.append(
                    f"classes: exactly one class must have role {t!r}, found {n}; "
                    "the growth engine needs one class per urban type"
                )
        if problems:
            raise ConfigError(problems[0], problems=problems)
        object.__setattr__(self, "_by_code", {c.code: c for c in self.classes})

    def __iter__(self):
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def codes(self) -> tuple[int, ...]:
        """All declared codes, in declaration order."""
        return tuple(c.code for c in self.classes)

    def by_code(self, code: int) -> LandClass:
        """The class with raster value ``code``."""
        return self._by_code[int(code)]

    def codes_with_role(self, *roles: str) -> tuple[int, ...]:
        """Codes of every class holding one of ``roles``."""
        for r in roles:
            if r not in ROLES:
                raise ValueError(f"unknown role {r!r}; roles are {', '.join(ROLES)}")
        return tuple(c.code for c in self.classes if c.role in roles)

    def code_of(self, role: str) -> int:
        """Code of the single class of an urban-type role (``residential`` ...)."""
        codes = self.codes_with_role(role)
        if len(codes) != 1:
            raise ValueError(f"role {role!r} is held by {len(codes)} classes, not exactly one")
        return codes[0]

    @property
    def urban_codes(self) -> tuple[int, ...]:
        """Codes of the urban types in :data:`URBAN_TYPES` order."""
        return tuple(self.code_of(t) for t in URBAN_TYPES)

    def role_lut(self) -> np.ndarray:
        """A 256-entry lookup table code -> role index in :data:`ROLES` (-1 undeclared)."""
        lut = np.full(256, -1, dtype=np.int8)
        for c in self.classes:
            lut[c.code] = ROLES.index(c.role)
        return lut

    def is_role(self, landuse: np.ndarray, *roles: str) -> np.ndarray:
        """Boolean mask of cells whose class holds one of ``roles``."""
        lut = np.zeros(256, dtype=bool)
        lut[list(self.codes_with_role(*roles))] = True
        return lut[np.asarray(landuse, dtype=np.uint8)]

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """GDAL colour table: code -> RGBA; nodata is transparent."""
        cmap = {c.code: (*c.rgb, 255) for c in self.classes}
        cmap[self.nodata] = (0, 0, 0, 0)
        return cmap

    def category_names(self) -> list[str]:
        """Category names indexed by raster value 0..max(code, nodata), as GDAL expects."""
        top = max(max(self.codes), self.nodata)
        names = [""] * (top + 1)
        for c in self.classes:
            names[c.code] = c.name
        names[self.nodata] = "nodata"
        return names

    def to_records(self) -> list[dict]:
        """The scheme as a list of plain dicts (for YAML and JSON)."""
        return [
            {"code": c.code, "name": c.name, "colour": c.colour, "role": c.role}
            for c in self.classes
        ]


_DEFAULT = (
    LandClass(1, "residential", "#e31a1c", "residential"),
    LandClass(2, "industrial", "#7b3294", "industrial"),
    LandClass(3, "commercial", "#ff7f00", "commercial"),
    LandClass(4, "farmland", "#f6e8a6", "farmland"),
    LandClass(5, "forest", "#1b7837", "open_space"),
    LandClass(6, "grassland", "#a6d96a", "open_space"),
    LandClass(7, "wetland", "#66c2a5", "open_space"),
    LandClass(8, "water", "#2b83ba", "water"),
    LandClass(9, "bare", "#bababa", "other"),
)


def default_scheme() -> ClassScheme:
    """The class scheme shipped with landuse (codes 1..9, nodata 255)."""
    return ClassScheme(_DEFAULT, nodata=255)
