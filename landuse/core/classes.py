"""Land-use class scheme: codes, names, colours and roles.

The scheme is declared by the scenario (or the default below is used). Code elsewhere
asks the scheme for the codes of a role; nothing hard-codes a class code.

Roles
-----
urban types
    The land the models grow: the default scheme declares ``residential``, ``industrial`` and ``commercial``; a
    scheme may declare one or several types of any name (``institutional`` ...). An urban class has
    ``urban=True`` and its type name as its role; several classes may share one type (CORINE's continuous and
    discontinuous urban fabric are both ``residential``). New land of a type takes the code of its *primary*
    class (the first declared, or the one marked ``primary``).
``farmland``
    Cultivated land; may be lost to growth at a cost unless protected.
``open_space``
    Forest, grassland, wetland and other natural land counted by open-space quotas.
``water``
    Rivers and lakes; never converted by default.
``infrastructure``
    Built-up land that is not a development site: roads, rail, ports, airports, mines, dumps. Not converted by
    default and not counted as urban land of any type.
``urban_green``
    Parks, sport and leisure grounds inside the built-up area. Not converted by default.
``other``
    Anything else (bare land, ...).

Examples
--------
>>> scheme = default_scheme()
>>> scheme.code_of("residential")
1
>>> scheme.urban_types
('residential', 'industrial', 'commercial')
>>> scheme.codes_with_role("open_space")
(5, 6, 7)
>>> one = ClassScheme((LandClass(1, "built", "#ff0000", "residential"), LandClass(2, "rest", "#cccccc", "other")))
>>> one.urban_types
('residential',)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from landuse.core.errors import ArgumentError, ConfigError

DEFAULT_URBAN_TYPES: tuple[str, ...] = ("residential", "industrial", "commercial")
"""The urban types of the default scheme; also the names a class config may use as a role for short."""

URBAN_TYPES = DEFAULT_URBAN_TYPES
"""The default scheme's urban types. Code working on a scenario uses ``scheme.urban_types``."""

NON_URBAN_ROLES: tuple[str, ...] = ("farmland", "open_space", "water", "other", "infrastructure", "urban_green")
"""Roles of classes that are not urban land."""

ROLES: tuple[str, ...] = (*DEFAULT_URBAN_TYPES, *NON_URBAN_ROLES)
"""The fixed role names (a scheme may add urban types of its own)."""

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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
        One of :data:`NON_URBAN_ROLES`, or the urban type of an urban class.
    urban : bool, optional
        Whether the class is urban land of type ``role``. Default: ``role`` is one of
        :data:`DEFAULT_URBAN_TYPES`.
    primary : bool
        For an urban class: new land of its type takes this class's code (at most one per type; default the
        first declared class of the type).
    """

    code: int
    name: str
    colour: str
    role: str
    urban: bool | None = None
    primary: bool = False

    def __post_init__(self) -> None:
        if self.urban is None:
            object.__setattr__(self, "urban", self.role in DEFAULT_URBAN_TYPES)

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
    _types: tuple[str, ...] = field(init=False, repr=False, compare=False)

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
            if c.urban:
                if c.role in NON_URBAN_ROLES or c.role == "urban" or not _TYPE_NAME.match(c.role):
                    problems.append(
                        f"classes: urban type of {c.name!r} must be a lower-case name (letters, digits, _) other "
                        f"than {', '.join(('urban', *NON_URBAN_ROLES))}, got {c.role!r}"
                    )
            elif c.role not in NON_URBAN_ROLES:
                problems.append(
                    f"classes: role of {c.name!r} must be one of urban (with a type), "
                    f"{', '.join((*DEFAULT_URBAN_TYPES, *NON_URBAN_ROLES))}, got {c.role!r}"
                )
            if c.primary and not c.urban:
                problems.append(f"classes: {c.name!r} is not urban; only an urban class can be primary")
        types: list[str] = []
        for c in self.classes:
            if c.urban and c.role not in types:
                types.append(c.role)
        if not types:
            problems.append(
                "classes: no urban class; declare at least one class with role urban and a type "
                "(or role residential, industrial or commercial)"
            )
        for t in types:
            prim = [c.name for c in self.classes if c.urban and c.role == t and c.primary]
            if len(prim) > 1:
                problems.append(f"classes: urban type {t!r} has {len(prim)} primary classes ({', '.join(prim)}); "
                                "mark at most one")
        if problems:
            raise ConfigError(problems[0], problems=problems)
        order = [t for t in DEFAULT_URBAN_TYPES if t in types] + [t for t in types if t not in DEFAULT_URBAN_TYPES]
        object.__setattr__(self, "_by_code", {c.code: c for c in self.classes})
        object.__setattr__(self, "_types", tuple(order))

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

    @property
    def urban_types(self) -> tuple[str, ...]:
        """The scheme's urban types, in the order of every array with a type axis.

        The default types first in their usual order (residential, industrial, commercial, those present), then
        the others in declaration order.
        """
        return self._types

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role name this scheme understands: its urban types, ``urban`` and :data:`NON_URBAN_ROLES`."""
        return (*self._types, "urban", *NON_URBAN_ROLES)

    def codes_with_role(self, *roles: str) -> tuple[int, ...]:
        """Codes of every class holding one of ``roles``.

        A role is an urban type of this scheme, ``urban`` (every urban class), or one of :data:`NON_URBAN_ROLES`.
        A default urban type the scheme does not declare (``industrial`` in a one-type scheme) has no classes.
        """
        for r in roles:
            if r not in self.roles and r not in DEFAULT_URBAN_TYPES:
                raise ArgumentError(f"unknown role {r!r}; roles are {', '.join(self.roles)}")
        return tuple(c.code for c in self.classes
                     if (c.role in roles and (c.urban or c.role in NON_URBAN_ROLES)) or (c.urban and "urban" in roles))

    def codes_of_type(self, t: str) -> tuple[int, ...]:
        """Codes of every class of urban type ``t`` (its land is all of them)."""
        if t not in self._types:
            raise ArgumentError(f"unknown urban type {t!r}; this scheme's types are {', '.join(self._types)}")
        return tuple(c.code for c in self.classes if c.urban and c.role == t)

    def code_of(self, t: str) -> int:
        """Code that new land of urban type ``t`` takes: its primary class, else its first declared class."""
        members = [c for c in self.classes if c.urban and c.role == t]
        if not members:
            raise ArgumentError(f"unknown urban type {t!r}; this scheme's types are {', '.join(self._types)}")
        for c in members:
            if c.primary:
                return c.code
        return members[0].code

    @property
    def urban_codes(self) -> tuple[int, ...]:
        """The code new land of each urban type takes, in :attr:`urban_types` order."""
        return tuple(self.code_of(t) for t in self._types)

    def type_lut(self) -> np.ndarray:
        """A 256-entry lookup table code -> index of its urban type in :attr:`urban_types` (-1 not urban)."""
        lut = np.full(256, -1, dtype=np.int8)
        for c in self.classes:
            if c.urban:
                lut[c.code] = self._types.index(c.role)
        return lut

    def is_role(self, landuse: np.ndarray, *roles: str) -> np.ndarray:
        """Boolean mask of cells whose class holds one of ``roles``.

        Up to 16 codes: one uint8 comparison per code (a byte a cell); a 256-entry lookup table
        would index with an intp copy of the raster (eight bytes a cell; 32.8 vs 8.2 ms on 4000² cells).
        """
        codes = list(self.codes_with_role(*roles))
        lu = np.asarray(landuse, dtype=np.uint8)
        if len(codes) > 16:
            lut = np.zeros(256, dtype=bool)
            lut[codes] = True
            return lut[lu]
        out = np.zeros(lu.shape, dtype=bool)
        for c in codes:
            out |= lu == np.uint8(c)
        return out

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
        out = []
        for c in self.classes:
            rec = {"code": c.code, "name": c.name, "colour": c.colour, "role": c.role}
            if c.urban and c.role not in DEFAULT_URBAN_TYPES:
                rec = {**rec, "role": "urban", "type": c.role}
            if c.primary:
                rec["primary"] = True
            out.append(rec)
        return out


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
