"""Scenario configuration: YAML -> dict -> validated pydantic model -> :class:`Scenario`.

Every section rejects unknown keys (naming the valid ones) and every value is checked
with a message that names its key path, e.g.
``policy.greenbelt.strength: must be within [0, 1], got 1.5``.
Paths under ``layers`` are relative to the YAML file. The full reference of keys,
meanings and defaults is in ``docs/config.md``.

Later stages extend the schema by adding optional sections or keys with defaults, so
existing configs keep validating.

This module holds the whole file (:class:`ScenarioConfig`), the validated :class:`Scenario` (the class scheme
and the checks that need it) and the loader (:func:`load_scenario`, :func:`scenario_from_dict`). The sections are
in :mod:`landuse.core.config_plan` (layers, classes, demand, policy) and :mod:`landuse.core.config_stages`
(allocation, growth, evaluation, calibration, compute, shrinkage, outputs), built on
:mod:`landuse.core.config_types`.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, Field, ValidationError, model_validator

from landuse.core.classes import DEFAULT_URBAN_TYPES, ClassScheme
from landuse.core.config_plan import ClassConfig, DemandConfig, LayersConfig, PolicyConfig
from landuse.core.config_stages import (
    DEFAULT_CROSS_WEIGHT,
    DEFAULT_SELF_WEIGHT,
    DEFAULT_SOURCES,
    KNOWN_DRIVERS,
    AllocationConfig,
    CalibrationConfig,
    ComputeConfig,
    EvaluationConfig,
    GrowthConfig,
    OutputsConfig,
    ShrinkageConfig,
    _default_neighbourhood_weights,
)
from landuse.core.config_types import MAX_URBAN_TYPES, Strict, _within
from landuse.core.errors import ConfigError
from landuse.core.presets import PRESET_NAMES, preset_scheme

# --------------------------------------------------------------------------- scenario


class ScenarioConfig(Strict):
    """The whole scenario file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="scenario name (letters, digits, _ . -)")
    description: str = Field("", description="one line shown in reports")
    layers: LayersConfig
    classes: str | list[ClassConfig] = Field(
        "default", description="a preset name (default, " + ", ".join(PRESET_NAMES[1:]) + ") or a list of "
        "{code, name, colour, role[, type, primary]} (see docs/data-model.md)"
    )
    landuse_nodata: Annotated[int, AfterValidator(_within(0, 255))] | None = Field(
        None, description="land-use value of cells outside the study area; default: the preset's (48 for corine, "
        "0 for worldcover and clcd, 255 otherwise), 255 for a list of classes"
    )
    periods: list[int] = Field(min_length=2, description="start year, then the end year of each period")
    demand: DemandConfig = Field(default_factory=DemandConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    allocation: AllocationConfig = Field(default_factory=AllocationConfig)
    growth: GrowthConfig = Field(default_factory=GrowthConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    shrinkage: ShrinkageConfig = Field(default_factory=ShrinkageConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)

    @model_validator(mode="after")
    def _check_periods_and_demand(self) -> ScenarioConfig:
        p = self.periods
        if any(b <= a for a, b in itertools.pairwise(p)):
            raise ValueError(f"periods must be strictly increasing years, got {p}")
        ends = set(p[1:])
        given = [*DEFAULT_URBAN_TYPES, *(self.demand.model_extra or {})]
        for t in given:
            bad = sorted(set(self.demand.series(t)) - ends)
            if bad:
                raise ValueError(
                    f"demand.{t}: years {bad} are not period end years {sorted(ends)}; "
                    "key demand by the year each period ends"
                )
        if self.demand.people is not None and (self.demand.by_city or self.demand.type_keys()):
            raise ValueError("demand.people derives the demand of every city and type: remove demand.by_city and "
                             "the per-type hectare series, or remove demand.people")
        for city, per_type in self.demand.by_city.items():
            for t, series in per_type.items():
                bad = sorted(set(series) - ends)
                if bad:
                    raise ValueError(f"demand.by_city.{city}.{t}: years {bad} are not period end years {sorted(ends)}")
        self._one_demand_source()
        later = sorted(y for y in self.layers.history if y >= p[0])
        if later:
            raise ValueError(
                f"layers.history.{later[0]}: history years must be before the start year {p[0]} (periods[0]); "
                "a history layer is the land use at an earlier date: fix its year or the periods"
            )
        return self


    def _one_demand_source(self) -> None:
        """Exactly one source of demand: hectares (per-type series and/or by_city), people, share or extrapolate."""
        dem = self.demand
        derived = ("by_city", "split", "people", "share", "extrapolate")
        hectares = [f"demand.{k}" for k, v in dem if k not in derived and v] + (["demand.by_city"] if dem.by_city
                                                                                else [])
        given = ([", ".join(hectares)] if hectares else []) + [
            f"demand.{k}" for k in ("people", "share", "extrapolate") if getattr(dem, k) is not None]
        if len(given) > 1:
            raise ValueError(f"demand: one source of demand per scenario, got {' and '.join(given)}; keep one of "
                             "them (hectares per type and/or by_city, people, share or extrapolate)")
        ex = dem.extrapolate
        if ex is not None:
            if not self.layers.history:
                raise ValueError("demand.extrapolate needs layers.history: at least one land-use map of an earlier "
                                 "year (the start map is the last point of the trend)")
            bad = sorted(set(ex.years or []) - set(self.layers.history))
            if bad:
                raise ValueError(f"demand.extrapolate.years: {bad} are not years of layers.history "
                                 f"({sorted(self.layers.history)})")
            if ex.years is not None and not ex.years:
                raise ValueError("demand.extrapolate.years: give at least one history year, or leave it out to use "
                                 "them all")


def _given(model: BaseModel, name: str) -> bool:
    """Whether the key ``name`` of a section holds something other than its default.

    A default that depends on the class scheme (conversion, neighbourhood weights, per-type driver weights) is
    resolved per scheme when not given; a config dumped and validated again (which marks every key as set) keeps
    its defaults.
    """
    if name not in model.model_fields_set:
        return False
    field = type(model).model_fields[name]
    return getattr(model, name) != field.get_default(call_default_factory=True)


class Scenario:
    """A validated scenario: the config model plus resolved paths and the class scheme.

    Attributes
    ----------
    config : ScenarioConfig
    path : Path or None
        The YAML file it came from.
    base_dir : Path
        Folder that relative paths are resolved against.
    classes : ClassScheme
    """

    def __init__(self, config: ScenarioConfig, *, path: Path | None = None, base_dir: Path | None = None) -> None:
        self.config = config
        self.path = path
        self.base_dir = (base_dir or (path.parent if path else Path.cwd())).resolve()
        if isinstance(config.classes, str):
            self.classes = preset_scheme(config.classes)
            if config.landuse_nodata is not None and config.landuse_nodata != self.classes.nodata:
                self.classes = ClassScheme(self.classes.classes, nodata=config.landuse_nodata)
        else:
            self.classes = ClassScheme(tuple(c.land_class() for c in config.classes),
                                       nodata=255 if config.landuse_nodata is None else config.landuse_nodata)
        self._check_types()
        self._check_conversion_names()
        self._check_driver_names()

    @property
    def urban_types(self) -> tuple[str, ...]:
        """The urban types of the class scheme (the order of every array with a type axis)."""
        return self.classes.urban_types

    def _check_types(self) -> None:
        """Every urban type the config names must be one the class scheme declares."""
        types = self.classes.urban_types
        listed = ", ".join(types)
        cfg = self.config
        problems: list[str] = []

        def check(where: str, names: Any) -> None:
            for t in names:
                if t not in types:
                    problems.append(f"{where}.{t}: the class scheme declares no urban type {t!r}; its urban types "
                                    f"are {listed} (declare a class of that type under classes, or remove the key)")

        if len(types) > MAX_URBAN_TYPES:
            problems.append(f"classes: {len(types)} urban types ({listed}); the growth engine supports at most "
                            f"{MAX_URBAN_TYPES}: give some classes the same type")
        dem = cfg.demand
        check("demand", [t for t in DEFAULT_URBAN_TYPES if getattr(dem, t)])
        extra = [t for t in (dem.model_extra or {}) if t not in types]
        if extra:
            fields = ", ".join(type(dem).model_fields)
            for t in extra:
                problems.append(f"demand.{t}: unknown key; valid keys here are: {fields}, and the urban types of "
                                f"the class scheme ({listed})")
        for city, per_type in dem.by_city.items():
            check(f"demand.by_city.{city}", per_type)
        check("layers.suitability", cfg.layers.suitability)
        g = cfg.growth
        if _given(g, "neighbourhood_weights"):
            check("growth.neighbourhood_weights", g.neighbourhood_weights)
            for k, row in g.neighbourhood_weights.items():
                check(f"growth.neighbourhood_weights.{k}", row)
        if _given(g, "conversion"):
            check("growth.conversion", g.conversion)
        if _given(g.suitability, "by_type"):
            check("growth.suitability.by_type", g.suitability.by_type)
        pol = cfg.policy
        if pol.tod is not None and "residential" not in types:
            problems.append(f"policy.tod: steers new residential land to stations, but the class scheme declares "
                            f"no urban type 'residential' (its types are {listed}); remove policy.tod or declare "
                            "a residential class")
        if pol.jobs_housing is not None and ("residential" not in types
                                             or not {"industrial", "commercial"} & set(types)):
            problems.append(f"policy.jobs_housing: compares new industrial + commercial land with new residential "
                            f"land, but the class scheme's urban types are {listed}; it needs residential and "
                            "industrial or commercial (remove policy.jobs_housing or declare those classes)")
        if dem.people is not None:
            if "residential" not in types:
                problems.append(f"demand.people: turns population into residential land, but the class scheme "
                                f"declares no urban type 'residential' (its types are {listed}); declare a "
                                "residential class or give demand in hectares per type")
            ppl = dem.people
            for t in ("industrial", "commercial"):
                key = f"{t}_jobs_per_ha"
                if t not in types and key in ppl.model_fields_set:
                    problems.append(f"demand.people.{key}: the class scheme declares no urban type {t!r} (its "
                                    f"types are {listed}); remove the key")
        if problems:
            raise ConfigError(problems[0], problems=problems)

    def conversion_sources(self) -> dict[str, list[str]]:
        """Urban type -> roles or class names that may convert to it.

        ``growth.conversion`` when given (a type it leaves out has no source); by default every urban type of
        the scheme takes farmland, open space and other land (:data:`DEFAULT_SOURCES`).
        """
        g = self.config.growth
        if _given(g, "conversion"):
            return {t: list(g.conversion.get(t, [])) for t in self.urban_types}
        return {t: list(DEFAULT_SOURCES) for t in self.urban_types}

    def neighbourhood_matrix(self) -> list[list[float]]:
        """``[k][j]``: weight of a type-``j`` neighbour for growth of type ``k`` (:attr:`urban_types` order).

        ``growth.neighbourhood_weights`` when given (pairs it leaves out weigh 0); by default the default
        scheme's weights, and :data:`DEFAULT_SELF_WEIGHT` / :data:`DEFAULT_CROSS_WEIGHT` for a pair with a type
        outside it.
        """
        g = self.config.growth
        nw = g.neighbourhood_weights
        types = self.urban_types
        if _given(g, "neighbourhood_weights"):
            return [[float(nw.get(k, {}).get(j, 0.0)) for j in types] for k in types]
        dflt = _default_neighbourhood_weights()
        return [[float(dflt[k][j]) if k in dflt and j in dflt[k] else
                 (DEFAULT_SELF_WEIGHT if k == j else DEFAULT_CROSS_WEIGHT) for j in types] for k in types]

    def driver_weights(self) -> dict[str, dict[str, float]]:
        """Urban type -> its suitability driver weights (``growth.suitability.by_type``, else ``weights``)."""
        sc = self.config.growth.suitability
        return {t: dict(sc.by_type.get(t, sc.weights)) for t in self.urban_types}

    def _check_driver_names(self) -> None:
        sc = self.config.growth.suitability
        types = self.urban_types
        valid = ({d for d in KNOWN_DRIVERS if not (d.startswith("dist_") and d[5:] in DEFAULT_URBAN_TYPES)}
                 | {f"dist_{t}" for t in types} | set(self.config.layers.drivers))
        problems = []
        for where, weights in [("weights", sc.weights),
                               *((f"by_type.{t}", w) for t, w in sc.by_type.items() if t in types)]:
            for name in weights:
                if name not in valid:
                    problems.append(
                        f"growth.suitability.{where}.{name}: unknown driver; drivers are "
                        f"{', '.join(sorted(valid))} (extra ones come from layers.drivers)"
                    )
        if problems:
            raise ConfigError(problems[0], problems=problems)

    def _check_conversion_names(self) -> None:
        roles = set(self.classes.roles)
        names = {c.name for c in self.classes}
        problems = []
        for t, sources in self.config.growth.conversion.items():
            if t not in self.urban_types:
                continue  # reported by _check_types when given; a default entry of a type the scheme lacks
            for s in sources:
                if s not in roles and s not in names:
                    problems.append(
                        f"growth.conversion.{t}: {s!r} is neither a role ({', '.join(sorted(roles))}) "
                        f"nor a class name ({', '.join(sorted(names))})"
                    )
        if problems:
            raise ConfigError(problems[0], problems=problems)

    # ---- convenience
    @property
    def name(self) -> str:
        """The scenario's name (``name`` in the config)."""
        return self.config.name

    @property
    def periods(self) -> list[int]:
        """The config's ``periods``: the start year, then the end year of each period."""
        return list(self.config.periods)

    @property
    def period_pairs(self) -> list[tuple[int, int]]:
        """``(start, end)`` of each period."""
        p = self.config.periods
        return list(itertools.pairwise(p))

    def resolve(self, p: str | os.PathLike) -> Path:
        """Resolve a config path against the scenario folder."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.base_dir / q).resolve()

    def layer_paths(self) -> dict[str, Path]:
        """Layer name -> resolved path of every layer in the config."""
        return {k: self.resolve(v) for k, v in self.config.layers.as_mapping().items()}

    def output_dir(self) -> Path:
        """The output folder (``outputs.folder``), resolved against the scenario folder."""
        return self.resolve(self.config.outputs.folder)

    def conversion_codes(self) -> dict[str, tuple[int, ...]]:
        """Urban type -> class codes allowed to convert to it (from :meth:`conversion_sources`).

        A source is a role (an urban type, ``urban``, farmland, open_space, water, infrastructure, urban_green,
        other) or a class name; the classes of the type itself are never its sources.
        """
        out = {}
        roles = set(self.classes.roles)
        for t, sources in self.conversion_sources().items():
            codes = set()
            for s in sources:
                if s in roles:
                    codes.update(self.classes.codes_with_role(s))
                else:
                    codes.update(c.code for c in self.classes if c.name == s)
            codes.difference_update(self.classes.codes_of_type(t))
            out[t] = tuple(sorted(codes))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The config as resolved (defaults filled), JSON-compatible."""
        return self.config.model_dump(mode="json")


# --------------------------------------------------------------------------- loading


def layer_key(name: str) -> str:
    """The config key of a layer name: ``landuse_2010`` -> ``layers.history.2010``, ``ndvi`` -> ``layers.drivers.ndvi``."""
    if name.startswith("landuse_") and name[8:].isdigit():
        return f"layers.history.{name[8:]}"
    if name.startswith("suitability_") and re.fullmatch(r"[a-z][a-z0-9_]*", name[12:]):
        return f"layers.suitability.{name[12:]}"
    if name in LayersConfig.model_fields:
        return f"layers.{name}"
    return f"layers.drivers.{name}"



def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class found by walking ``loc`` (None if not a model)."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:
            return None
        # unwrap Optional / Union / Annotated / dict / list
        changed = True
        while changed:
            changed = False
            origin = typing.get_origin(current)
            if origin is typing.Annotated:
                current = typing.get_args(current)[0]
                changed = True
            elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
                models = [a for a in typing.get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)]
                if models:
                    current = models[0]
                    changed = True
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _format_errors(exc: ValidationError, source: str) -> list[str]:
    messages = []
    errors = exc.errors()
    for err in errors:
        # a union (e.g. classes: 'default' or a list): skip the literal alternative when the value is a list/dict
        if err["type"] == "literal_error" and isinstance(err.get("input"), dict | list) and len(errors) > 1:
            continue
        loc = tuple(p for p in err["loc"]
                    if not (isinstance(p, str) and (p.startswith(("function-after", "literal")) or "[" in p)))
        path = ".".join(str(p) for p in loc) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _model_at(ScenarioConfig, loc[:-1]) if len(loc) > 1 else ScenarioConfig
            valid = ", ".join(parent.model_fields) if parent else "see docs/config.md"
            msg = f"{path}: unknown key; valid keys here are: {valid}"
        elif kind == "missing":
            msg = f"{path}: required key is missing"
        elif kind == "value_error":
            msg = f"{path}: {err['msg'].removeprefix('Value error, ')}"
        elif kind == "literal_error":
            msg = f"{path}: must be one of {err['ctx']['expected']}, got {err.get('input')!r}"
        elif kind == "string_pattern_mismatch":
            msg = f"{path}: {err.get('input')!r} does not match the pattern {err['ctx']['pattern']}"
        else:
            got = err.get("input")
            got_txt = "" if isinstance(got, dict | list) else f", got {got!r}"
            msg = f"{path}: {err['msg'].lower()}{got_txt}"
        if not path or path == "(top level)":
            msg = msg.replace("(top level): ", "")
        messages.append(f"{source}: {msg}")
    return messages


def scenario_from_dict(data: dict[str, Any], *, base_dir: Path | None = None, source: str = "config") -> Scenario:
    """Validate a config dict (as parsed from YAML) into a :class:`Scenario`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a scenario must be a mapping of keys, got {type(data).__name__}")
    try:
        cfg = ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        problems = _format_errors(exc, source)
        raise ConfigError(problems[0] if len(problems) == 1 else "; ".join(problems), problems=problems) from None
    try:
        return Scenario(cfg, base_dir=base_dir)
    except ConfigError as exc:
        problems = [f"{source}: {p}" for p in exc.problems]
        raise ConfigError("; ".join(problems), problems=problems) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (YAML would keep the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        try:
            key = loader.construct_object(key_node, deep=True)
            hash(key)
        except (TypeError, yaml.YAMLError):
            continue  # the base constructor reports unhashable keys
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given at line {seen[key]}); give each key once",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def read_yaml(path: str | os.PathLike, *, what: str = "scenario file") -> Any:
    """Parse a YAML file, refusing duplicate keys; :class:`ConfigError` for a missing, unreadable or malformed file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} not found: {p.resolve()}")
    if p.is_dir():
        raise ConfigError(f"{p.resolve()} is a folder, not a {what}; give the path of the YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not a text file (byte {exc.start} is not UTF-8); a {what} is YAML text, e.g. configs/sample.yaml"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise ConfigError(f"{p}: not a text file (it holds NUL bytes); a {what} is YAML text, e.g. configs/sample.yaml")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def load_scenario(path: str | os.PathLike, *, check_files: bool = True) -> Scenario:
    """Load and validate a scenario YAML file.

    Parameters
    ----------
    path : path
        The YAML file. Relative layer paths resolve against its folder.
    check_files : bool
        Also check that every layer file exists.

    Raises
    ------
    ConfigError
        With one entry in ``problems`` per problem, each naming the key path.
    """
    p = Path(path)
    data = read_yaml(p)
    if data is None:
        raise ConfigError(f"{p}: the file is empty; a scenario needs at least name, layers and periods")
    scenario = scenario_from_dict(data, base_dir=p.parent, source=str(p))
    scenario.path = p.resolve()
    if check_files:
        missing = [
            f"{p}: {layer_key(name)}: file not found: {fp}"
            for name, fp in scenario.layer_paths().items() if not fp.exists()
        ]
        missing += [
            f"{p}: {layer_key(name)}: {fp} is a folder, not a raster file; give the GeoTIFF's path"
            for name, fp in scenario.layer_paths().items() if fp.is_dir()
        ]
        if missing:
            raise ConfigError(missing[0] if len(missing) == 1 else "; ".join(missing), problems=missing)
    return scenario
