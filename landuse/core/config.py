"""Scenario configuration: YAML -> dict -> validated pydantic model -> :class:`Scenario`.

Every section rejects unknown keys (naming the valid ones) and every value is checked
with a message that names its key path, e.g.
``policy.greenbelt.strength: must be within [0, 1], got 1.5``.
Paths under ``layers`` are relative to the YAML file. The full reference of keys,
meanings and defaults is in ``docs/config.md``.

Later stages extend the schema by adding optional sections or keys with defaults, so
existing configs keep validating.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from landuse.core.classes import DEFAULT_URBAN_TYPES, URBAN_TYPES, ClassScheme, LandClass
from landuse.core.errors import ConfigError
from landuse.core.presets import PRESET_NAMES, preset_scheme

UrbanType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
"""An urban type name; checked against the scenario's class scheme when the :class:`Scenario` is built."""

MAX_URBAN_TYPES = 8
"""The growth engine counts neighbours of at most this many urban types."""


def _num(v: float) -> str:
    """A bound or value as a planner reads it: whole numbers in full (10000, 9223372036854775807), others as %g."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _within(lo: float | None, hi: float | None) -> Callable[[float], float]:
    def check(v: float) -> float:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if lo is not None and hi is not None:
                raise ValueError(f"must be within [{_num(lo)}, {_num(hi)}], got {_num(v)}")
            if lo is not None:
                raise ValueError(f"must be at least {_num(lo)}, got {_num(v)}")
            raise ValueError(f"must be at most {_num(hi)}, got {_num(v)}")
        return v

    return check


Fraction = Annotated[float, AfterValidator(_within(0.0, 1.0))]
NonNegative = Annotated[float, AfterValidator(_within(0.0, None))]
Positive = Annotated[float, AfterValidator(_within(1e-12, None))]


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- layers


class LayersConfig(Strict):
    """Raster layers, as paths relative to the scenario file. Only ``landuse`` is required."""

    landuse: Path = Field(description="land use at the start year (uint8 class codes)")
    cities: Path | None = Field(None, description="administrative units (int32 ids, 0 = none)")
    counties: Path | None = Field(None, description="optional finer administrative units")
    elevation: Path | None = Field(None, description="elevation in metres")
    slope: Path | None = Field(None, description="slope in degrees")
    roads: Path | None = Field(None, description="road cells (non-zero = road)")
    rail: Path | None = Field(None, description="rail line cells")
    stations: Path | None = Field(None, description="rail station cells")
    centres: Path | None = Field(None, description="city-centre cells")
    red_line: Path | None = Field(None, description="ecological red line (no-build)")
    permanent_farmland: Path | None = Field(None, description="permanent basic farmland")
    greenbelt: Path | None = Field(None, description="greenbelt cells (policy.greenbelt sets soft/hard)")
    growth_boundary: Path | None = Field(None, description="planned urban growth boundary (inside = 1)")
    protected_open_space: Path | None = Field(None, description="designated protected open space")
    history: dict[int, Path] = Field(default_factory=dict, description="year -> land use at a past date")
    drivers: dict[str, Path] = Field(default_factory=dict, description="extra continuous drivers")
    suitability: dict[UrbanType, Path] = Field(
        default_factory=dict, description="pre-computed suitability rasters per urban type"
    )

    def as_mapping(self) -> dict[str, Path]:
        """Layer name -> path for every layer given (history as ``landuse_<year>``)."""
        out: dict[str, Path] = {}
        for name in type(self).model_fields:
            if name in ("history", "drivers", "suitability"):
                continue
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for year, p in sorted(self.history.items()):
            out[f"landuse_{year}"] = p
        out.update(self.drivers)
        for t, p in self.suitability.items():
            out[f"suitability_{t}"] = p
        return out


class ClassConfig(Strict):
    """One land-use class of the scenario's class scheme."""

    code: Annotated[int, AfterValidator(_within(0, 254))] = Field(description="raster value 0..254")
    name: str = Field(description="unique class name")
    colour: str = Field(pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb for maps and the colour table")
    role: Literal["urban", "residential", "industrial", "commercial", "farmland", "open_space", "water", "other",
                  "infrastructure", "urban_green"] = Field(
        description="what the class is to the models: urban (with a type), residential / industrial / commercial "
        "(short for urban of that type), farmland, open_space, water, infrastructure (roads, rail, ports, "
        "airports, mines: built but not a development site), urban_green (parks, sport grounds) or other"
    )
    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] | None = Field(
        None, description="urban type of an urban class (any lower-case name, e.g. institutional); several "
        "classes may share a type"
    )
    primary: bool = Field(False, description="urban class whose code new land of its type takes (default: the "
                          "type's first class)")

    @model_validator(mode="after")
    def _type_with_urban(self) -> ClassConfig:
        if self.role == "urban" and self.type is None:
            raise ValueError(f"class {self.name!r}: role urban needs a type (e.g. type: institutional)")
        if self.type is not None and self.role != "urban":
            raise ValueError(f"class {self.name!r}: type is for role urban; role {self.role!r} has no type "
                             "(write role: urban, type: NAME)")
        return self

    def land_class(self) -> LandClass:
        """The :class:`LandClass` this entry declares."""
        if self.role == "urban":
            return LandClass(self.code, self.name, self.colour, str(self.type), urban=True, primary=self.primary)
        return LandClass(self.code, self.name, self.colour, self.role, primary=self.primary)


# --------------------------------------------------------------------------- demand

PeriodSeries = dict[int, NonNegative]


Density = float | Literal["auto"] | dict[int | Literal["default"], float | Literal["auto"] | dict[int, float]]


class PeopleConfig(Strict):
    """Demand from people and jobs: population and jobs per city and year, turned into hectares by densities."""

    table: Path | None = Field(
        None, description="CSV with columns city, year, population, jobs (optional jobs_industrial, "
        "jobs_commercial), relative to the scenario file"
    )
    cities: dict[int, dict[int, dict[Literal["population", "jobs", "jobs_industrial", "jobs_commercial"],
                                     NonNegative]]] = Field(
        default_factory=dict, description="city id -> year -> {population, jobs[, jobs_industrial, jobs_commercial]}"
    )
    persons_per_ha: Density = Field(
        "auto", description="persons per hectare of residential land: a number, 'auto' (each city's start-year "
        "population / residential land), or {default: .., <city>: number | 'auto' | {year: number}} "
        "(years in between interpolated: densification)"
    )
    industrial_jobs_per_ha: Density = Field(
        "auto", description="jobs per hectare of industrial land (same forms as persons_per_ha)"
    )
    commercial_jobs_per_ha: Density = Field(
        "auto", description="jobs per hectare of commercial land (same forms as persons_per_ha)"
    )
    industrial_job_share: Fraction | Literal["auto"] = Field(
        "auto", description="share of jobs that need industrial land when the table gives only 'jobs'; 'auto': "
        "the cluster's start-year share of industrial in industrial + commercial land"
    )
    variants: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], Path] = Field(
        default_factory=dict, description="name -> CSV of the same columns (e.g. low / medium / high population): "
        "landuse run runs every variant into <out>/<name>/ and maps what is robust across them in <out>/robustness/"
    )


class ShareDemandConfig(Strict):
    """Demand as a yearly growth rate of each urban type's land at the start of the run (landuse.allocation.demand_trend)."""

    rate_per_year: NonNegative | dict[str, NonNegative] = Field(
        description="yearly growth rate of a type's start-year land (0.015 = 1.5 % a year, compounded): one rate "
        "for every urban type, or urban type -> rate (a type not named gets no demand)"
    )
    per_city: bool = Field(
        True, description="with layers.cities: each city grows its own land (demand.by_city); false: one "
        "cluster-wide amount per type, split among cities by demand.split"
    )


class ExtrapolateConfig(Strict):
    """Demand extrapolated from the history layers and the start map (landuse.allocation.demand_trend)."""

    method: Literal["linear", "markov"] = Field(
        description="linear: least-squares trend of each type's area, its slope x the period length; markov: the "
        "class transition matrix of the last history interval, raised to period length / interval length, "
        "applied to the class areas"
    )
    years: list[int] | None = Field(
        None, description="years of layers.history to use (default all); the start map is always used"
    )
    per_city: bool = Field(
        True, description="with layers.cities: the demand of each city from its own land (linear: its own trend; "
        "markov: the cluster's matrix applied to its class areas), as demand.by_city; false: cluster-wide, "
        "split among cities by demand.split"
    )


_TYPE_KEY = re.compile(r"[a-z][a-z0-9_]*")
_SERIES = TypeAdapter(PeriodSeries)


class DemandConfig(Strict):
    """New urban land per urban type (any type of the scheme) and period, in hectares, keyed by the period's end year.

    A type outside residential / industrial / commercial is its own key, e.g. ``institutional: {2030: 40}``.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    residential: PeriodSeries = Field(default_factory=dict, description="end year -> hectares, cluster-wide")
    industrial: PeriodSeries = Field(default_factory=dict, description="end year -> hectares, cluster-wide")
    commercial: PeriodSeries = Field(default_factory=dict, description="end year -> hectares, cluster-wide")
    by_city: dict[int, dict[UrbanType, PeriodSeries]] = Field(
        default_factory=dict, description="city id -> type -> end year -> hectares"
    )
    split: Literal["urban_area", "land_area"] = Field(
        "urban_area",
        description="how cluster demand is split among cities when by_city is not given",
    )
    people: PeopleConfig | None = Field(
        None, description="derive demand.by_city from population and jobs per city and year (landuse.allocation.demand)"
    )
    share: ShareDemandConfig | None = Field(
        None, description="derive demand from a yearly growth rate of each type's current land "
        "(landuse.allocation.demand_trend)"
    )
    extrapolate: ExtrapolateConfig | None = Field(
        None, description="derive demand from the history layers: linear trend or Markov chain "
        "(landuse.allocation.demand_trend)"
    )

    @model_validator(mode="after")
    def _type_series(self) -> DemandConfig:
        """Another urban type's key holds a series like residential's (its name is checked against the scheme
        when the Scenario is built).
        """
        extra = self.__pydantic_extra__
        for key in list(extra or {}):
            if not _TYPE_KEY.fullmatch(str(key)):
                raise ValueError(f"{key}: unknown key; an urban type's name is lower-case letters, digits and _ "
                                 f"(valid keys here are: {', '.join(type(self).model_fields)}, and urban types)")
            try:
                extra[key] = _SERIES.validate_python(extra[key])
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in (key, *err["loc"]) if not str(p).startswith(("function-after", "[")))
                raise ValueError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None
        return self

    def series(self, t: str) -> dict[int, float]:
        """The cluster-wide series (end year -> hectares) of urban type ``t`` (empty when not given)."""
        if t in DEFAULT_URBAN_TYPES:
            return dict(getattr(self, t))
        return dict((self.model_extra or {}).get(t, {}))

    def type_keys(self) -> list[str]:
        """Urban types given a cluster-wide series (non-empty), default types first."""
        extra = [t for t, v in (self.model_extra or {}).items() if v]
        return [t for t in DEFAULT_URBAN_TYPES if getattr(self, t)] + extra

    def cluster(self, t: str, year: int) -> float:
        """Cluster-wide demand (hectares) of type ``t`` for the period ending ``year``."""
        series = self.series(t)
        if year in series:
            return float(series[year])
        if self.by_city:
            return float(sum(c.get(t, {}).get(year, 0.0) for c in self.by_city.values()))
        return 0.0


# --------------------------------------------------------------------------- policy


class GreenbeltConfig(Strict):
    """How the greenbelt layer constrains growth."""

    mode: Literal["none", "soft", "hard"] = Field("none", description="soft: potential x (1 - strength); hard: no-build")
    strength: Fraction = Field(0.5, description="soft mode: potential inside is multiplied by 1 - strength")


class GrowthBoundaryConfig(Strict):
    """How a planned growth boundary (layers.growth_boundary) constrains growth."""

    mode: Literal["none", "soft", "hard"] = Field(
        "none", description="soft: potential x outside_factor outside the boundary; hard: no growth outside"
    )
    outside_factor: Fraction = Field(0.1, description="soft mode: potential multiplier outside the boundary")


class QuotaConfig(Strict):
    """Protected open-space quota: open space after growth >= share x land area."""

    share: Fraction = Field(description="minimum share of land area kept as protected open space")
    unit: Literal["city", "cluster"] = Field("city", description="quota per city or for the whole cluster")
    include_water: bool = Field(False, description="count water bodies as open space")
    already_below: Literal["error", "no_further_loss"] = Field(
        "error",
        description="a unit already below the quota at the start of a period: error (no plan can meet the "
        "quota; the message says by how much it is short and which share can be met) or no_further_loss (plan "
        "on, losing no open space there; the report's quota check fails for that unit)",
    )


class FarmlandCapConfig(Strict):
    """Cap on farmland converted to urban land."""

    hectares: NonNegative = Field(description="maximum farmland converted (hectares)")
    per: Literal["period", "horizon"] = Field("period", description="the cap applies to each period or to all together")


class TodConfig(Strict):
    """Transit-oriented development: a share of new residential land near stations."""

    radius_m: Positive = Field(800.0, description="station catchment radius in metres")
    share: Fraction = Field(0.3, description="minimum share of new residential land within the radius")


class JobsHousingConfig(Strict):
    """Jobs-housing balance per city: (new industrial + commercial) / new residential within [min, max]."""

    min: NonNegative = Field(0.0, description="minimum (new industrial + commercial) / new residential, per city")
    max: NonNegative = Field(10.0, description="maximum of the same ratio")

    @model_validator(mode="after")
    def _ordered(self) -> JobsHousingConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not exceed max ({self.max:g})")
        return self


class TransfersConfig(Strict):
    """Cluster-wide plans with per-city demand: how much of its demand a city may have placed elsewhere."""

    max_export_share: Fraction = Field(
        1.0, description="per city and urban type, at most this share of the city's own demand (demand.by_city) "
        "may be placed in other cities; 0 = each city hosts all of its own demand"
    )


class PolicyConfig(Strict):
    coordination: Literal["cluster", "city"] = Field(
        "cluster", description="cluster: one plan meets cluster demand; city: each city meets its own demand"
    )
    red_line: bool = Field(True, description="honour the red_line layer (never converted)")
    permanent_farmland: bool = Field(True, description="honour the permanent_farmland layer")
    protected_open_space: bool = Field(
        True, description="honour the protected_open_space layer: never converted, and counted as protected "
        "open space by the open-space quota"
    )
    greenbelt: GreenbeltConfig = Field(default_factory=GreenbeltConfig)
    growth_boundary: GrowthBoundaryConfig = Field(default_factory=GrowthBoundaryConfig)
    open_space_quota: QuotaConfig | None = None
    farmland_loss_cap: FarmlandCapConfig | None = None
    tod: TodConfig | None = None
    jobs_housing: JobsHousingConfig | None = None
    city_growth_limits: dict[int, NonNegative] = Field(
        default_factory=dict, description="city id -> maximum new urban hectares per period"
    )
    transfers: TransfersConfig | None = Field(
        None, description="cluster mode with demand.by_city: bounds on the demand a city may send to other cities"
    )


# --------------------------------------------------------------------------- allocation


class AllocationWeights(Strict):
    sprawl: NonNegative = Field(1.0, description="per km of mean distance to existing urban land")
    centre: NonNegative = Field(0.2, description="per km of mean distance to the city centre")
    farmland: NonNegative = Field(1.0, description="per hectare of farmland lost")
    open_space: NonNegative = Field(2.0, description="per hectare of open space lost")
    suitability: NonNegative = Field(1.0, description="reward per hectare times mean suitability")
    greenbelt: NonNegative = Field(
        5.0, description="per hectare inside a soft greenbelt, times policy.greenbelt.strength (the LP's price of "
        "the soft greenbelt; a hard greenbelt is never a source)"
    )
    outside_boundary: NonNegative = Field(
        5.0, description="per hectare outside a soft growth boundary, times 1 - policy.growth_boundary.outside_factor"
    )
    fill: NonNegative = Field(
        0.5,
        description="extra cost per hectare for each further tranche of a zone's developable land "
        "(see allocation.fill_tranches); spreads growth over neighbouring zones instead of filling the "
        "cheapest zones completely",
    )


class AllocationConfig(Strict):
    block_size_m: Positive = Field(1000.0, description="zone block edge in metres (zones = cities x blocks)")
    solver: Literal["cbc", "highs"] = Field(
        "highs", description="LP solver: HiGHS (the matrix handed straight to highspy) or CBC (via PuLP)")
    time_limit_s: Positive = Field(300.0, description="solver time limit per LP")
    weights: AllocationWeights = Field(default_factory=AllocationWeights)
    highs_method: Literal["auto", "ipm", "simplex", "choose"] = Field(
        "auto", description="HiGHS method: auto (dual simplex; interior point with crossover for a cluster-wide "
        "plan from 150 000 variables), dual simplex, interior point (then crossover), or HiGHS's choice"
    )
    highs_interface: Literal["direct", "pulp"] = Field(
        "direct", description="hand the LP matrix straight to highspy, or go through PuLP's HiGHS interface"
    )
    fill_tranches: Annotated[int, AfterValidator(_within(1, 10))] = Field(
        3, description="split each zone's developable land into this many equal tranches, each costing "
        "weights.fill more per hectare than the one before (1 = no fill cost)"
    )
    working_set: Literal["auto", "always", "never"] = Field(
        "auto",
        description="solve on a working set of the cheapest zones and price the rest with the duals (exact); "
        "auto: from 20 000 variables on",
    )


# --------------------------------------------------------------------------- growth


DEFAULT_SOURCES: tuple[str, ...] = ("farmland", "open_space", "other")
"""Roles every urban type may be converted from unless ``growth.conversion`` says otherwise."""

DEFAULT_SELF_WEIGHT, DEFAULT_CROSS_WEIGHT = 1.0, 0.1
"""Default neighbourhood weights of a type the default scheme does not have: itself, and any other type."""


def _default_neighbourhood_weights() -> dict[str, dict[str, float]]:
    return {
        "residential": {"residential": 1.0, "industrial": 0.1, "commercial": 0.5},
        "industrial": {"residential": 0.1, "industrial": 1.0, "commercial": 0.1},
        "commercial": {"residential": 0.6, "industrial": 0.1, "commercial": 1.0},
    }


KNOWN_DRIVERS = (
    "dist_urban",
    "dist_residential",
    "dist_industrial",
    "dist_commercial",
    "dist_roads",
    "dist_rail",
    "dist_stations",
    "dist_centres",
    "slope",
    "elevation",
)
"""Driver names of the weighted-linear suitability (besides the names of ``layers.drivers``)."""


def _default_driver_weights() -> dict[str, float]:
    return {"dist_urban": 0.35, "dist_roads": 0.2, "dist_stations": 0.1, "dist_centres": 0.2, "slope": 0.15}


def default_type_weights() -> dict[str, dict[str, float]]:
    """The suitability drivers' weights of each urban type when a scenario gives none."""
    return {
        "industrial": {"dist_urban": 0.3, "dist_roads": 0.3, "dist_rail": 0.15, "dist_centres": 0.05, "slope": 0.2},
        "commercial": {"dist_urban": 0.3, "dist_centres": 0.4, "dist_stations": 0.15, "dist_roads": 0.1,
                       "slope": 0.05},
    }


class SuitabilityConfig(Strict):
    """How suitability per urban type is computed (see docs/suitability.md)."""

    method: Literal["linear", "trained", "raster"] = Field(
        "linear", description="weighted-linear drivers, a model trained on layers.history, or layers.suitability rasters"
    )
    weights: dict[str, NonNegative] = Field(
        default_factory=_default_driver_weights,
        description="driver name -> weight of its normalised score, for types not in by_type",
    )
    by_type: dict[UrbanType, dict[str, NonNegative]] = Field(
        default_factory=default_type_weights, description="urban type -> its own driver weights"
    )
    distance_scale_m: Positive = Field(3000.0, description="distance at which a distance score halves")
    model: Literal["logistic", "forest"] = Field(
        "logistic", description="method 'trained': model fitted on the history layers at the start of a run"
    )
    density_radii_m: list[Positive] = Field(
        default_factory=list,
        description="method 'trained': add the share of urban land within each of these radii (m) as features",
    )
    balanced: bool = Field(
        True, description="method 'trained': sample as many unconverted as converted cells (false: the observed rate)"
    )


class GrowthConfig(Strict):
    runs: Annotated[int, AfterValidator(_within(1, 10_000))] = Field(10, description="Monte Carlo runs")
    seed: Annotated[int, AfterValidator(_within(0, 2**63 - 1))] = Field(0, description="random seed")
    iterations: Annotated[int, AfterValidator(_within(1, 1000))] = Field(
        10, description="edge-growth iterations per period"
    )
    neighbourhood: Literal[3, 5, 7] = Field(3, description="Moore window edge in cells")
    neighbourhood_weights: dict[UrbanType, dict[UrbanType, NonNegative]] = Field(
        default_factory=_default_neighbourhood_weights,
        description="[type grown][neighbour type] -> weight of that neighbour's share in the neighbourhood effect "
        "(pairs not given: 0; by default, a type outside residential / industrial / commercial weighs 1 for "
        "itself and 0.1 for every other type)",
    )
    neighbourhood_strength: NonNegative = Field(1.0, description="exponent-like strength of the neighbourhood effect")
    spontaneous_share: Fraction = Field(0.05, description="share of each target placed as new patches")
    adaptive_inertia: bool = Field(True, description="raise zones/types that fall behind schedule (FLUS-style)")
    conversion: dict[UrbanType, list[str]] = Field(
        default_factory=lambda: {t: list(DEFAULT_SOURCES) for t in URBAN_TYPES},
        description="urban type -> roles or class names that may convert to it (default: every urban type of the "
        "class scheme from farmland, open_space and other; infrastructure and urban_green only when listed; water "
        "never)",
    )
    suitability: SuitabilityConfig = Field(default_factory=SuitabilityConfig)


# --------------------------------------------------------------------------- evaluation


class UgbConfig(Strict):
    threshold: Fraction = Field(0.5, description="minimum horizon urban probability inside the boundary")
    closing_radius_m: NonNegative = Field(300.0, description="morphological closing radius")
    min_area_ha: NonNegative = Field(50.0, description="boundary patches smaller than this are dropped")
    fill_holes: bool = Field(True, description="fill enclosed holes")
    opening_radius_m: NonNegative | None = Field(
        None, description="opening radius in metres after the closing (default: closing_radius_m; 0 skips it)"
    )


class EvaluationConfig(Strict):
    ugb: UgbConfig = Field(default_factory=UgbConfig)
    lei_buffer_m: Positive = Field(100.0, description="buffer of the Landscape Expansion Index")
    connectivity: Literal[4, 8] = Field(8, description="patch connectivity of the landscape metrics")


CalibrationParameter = Literal[
    "neighbourhood_strength", "spontaneous_share", "cross_weight", "greenbelt_leakage", "iterations",
    "adaptive_inertia", "distance_scale_m",
]


DASK_MISSING = ("needs Dask, which is not installed here: install the 'dask' extra (`pip install 'landuse[dask]'`, "
                "or `pip install 'dask[array]' distributed`)")
"""What to do when a Dask scheduler is asked for and Dask is not installed (it is an optional dependency)."""


def dask_installed() -> bool:
    """Whether ``dask`` and ``distributed`` can be imported (looked up, not imported: importing dask takes ~0.5 s)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))
    except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken package
        return False


class CalibrationConfig(Strict):
    """Calibration of the growth parameters against a historical pair of maps (``landuse calibrate``)."""

    budget: Annotated[int, AfterValidator(_within(4, 100_000))] = Field(
        80, description="parameter points evaluated (each with `runs` Monte Carlo runs)"
    )
    runs: Annotated[int, AfterValidator(_within(1, 1000))] = Field(
        4, description="Monte Carlo runs per point (the same seeds at every point)"
    )
    objective: Literal["fom", "kappa_simulation", "lee_sallee"] = Field(
        "fom", description="figure of merit, Kappa-simulation or Lee-Sallee"
    )
    seed: Annotated[int, AfterValidator(_within(0, 2**63 - 1))] = Field(0, description="seed of the search and runs")
    parameters: dict[CalibrationParameter, list[float]] | None = Field(
        None, description="parameter -> [low, high] to fit (default: every applicable one, default ranges)"
    )

    @field_validator("parameters")
    @classmethod
    def _ranges(cls, params: dict[str, list[float]] | None) -> dict[str, list[float]] | None:
        for name, rng in (params or {}).items():
            if len(rng) != 2 or not rng[0] <= rng[1]:
                raise ValueError(f"{name}: give [low, high] with low <= high, got {rng}")
        return params
    history_year: int | None = Field(None, description="layers.history year to start from (default: the latest)")
    parallel: Literal["threads", "dask"] = Field(
        "threads", description="evaluate points one at a time on the engine's threads, or two at a time on Dask"
    )
    amounts: Literal["allocator", "observed_zone", "cluster"] = Field(
        "allocator",
        description="how the observed change is given to the simulation: allocator (its cluster totals to the "
        "scenario's LP allocator, the engine grows the plan, as in a run), observed_zone (the observed gain of "
        "each allocation zone) or cluster (one total per type, the engine decides where)",
    )
    finalists: Annotated[int, AfterValidator(_within(1, 50))] = Field(
        4, description="best points of the search re-run with fresh seeds and 3 x runs; the best of them is chosen"
    )
    refine: bool = Field(True, description="a local search (coordinate steps) around the chosen point, "
                                           "with the finalists' seeds and runs")
    patch_weight: Annotated[float, AfterValidator(_within(0.0, 10.0))] = Field(
        0.0, description="weight of the new-patch error (patch count and outlying share against the observed "
        "new patches) subtracted from the objective; 0 reports the patches without fitting them"
    )

    @field_validator("parallel")
    @classmethod
    def _parallel(cls, p: str) -> str:
        if p == "dask" and not dask_installed():
            raise ValueError(f"parallel 'dask' {DASK_MISSING}")
        return p


SCHEDULER_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")
"""Address schemes of a Dask scheduler."""


class ComputeConfig(Strict):
    """Where the work runs: in memory on this machine (default) or on Dask."""

    scheduler: str | None = Field(
        None,
        description="Dask scheduler for ensembles and scenario batches: 'local' (a LocalCluster on this machine) "
        "or an address such as tcp://10.0.0.5:8786; null runs in this process",
    )
    chunks: Annotated[int, AfterValidator(_within(64, 1_000_000))] | None = Field(
        None, description="tile edge in cells for the tiled (larger-than-memory) growth path; null = in memory"
    )
    workers: Annotated[int, AfterValidator(_within(1, 1024))] = Field(
        2, description="workers of a 'local' cluster (one thread each)"
    )
    memory_limit: str = Field("auto", description="memory limit per worker of a 'local' cluster, e.g. '4GB'")
    rasters: Literal["auto", "memory", "disk"] = Field(
        "auto", description="where the run keeps its large rasters (layers, zones, driver scores, maps and counts of "
        "each period): memory, disk (memory-mapped scratch files, for regions larger than memory; same results), or "
        "auto (disk from 100 million cells)"
    )
    scratch: Path | None = Field(
        None, description="folder of the scratch files of compute.rasters: disk (manifest.json's scratch_mapped_bytes "
        "says how much a run mapped); null = the system's temporary folder"
    )

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, s: str | None) -> str | None:
        if s is not None and s != "local" and not s.startswith(SCHEDULER_SCHEMES):
            raise ValueError(f"{s!r} is neither 'local' nor a Dask scheduler address such as tcp://10.0.0.5:8786")
        if s is not None and not dask_installed():
            raise ValueError(f"scheduler {s!r} {DASK_MISSING}")
        return s

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v: str) -> str:
        if not re.fullmatch(r"auto|\d+(\.\d+)?\s*([kKmMgGtT]i?[bB])?", v.strip()):
            raise ValueError(f"{v!r} is not a memory size; give 'auto' or a size such as '4GB' or '512MiB'")
        return v


class ShrinkageWeights(Strict):
    """What releasing a hectare of surplus urban land costs (positive) or gains (negative) in a zone."""

    centre: NonNegative = Field(
        2.0, description="cost per ha released, times exp(-distance to the nearest centre / 5 km): keep the centre")
    stations: NonNegative = Field(
        1.0, description="cost per ha released, times exp(-distance to the nearest station / 1 km): keep station areas")
    open_space: NonNegative = Field(
        1.0, description="reward per ha released, times the zone's share of open space and red line: restore "
        "where it reconnects open space and the red line")
    farmland: NonNegative = Field(
        0.5, description="reward per ha released, times the zone's share of farmland plus the share of its urban "
        "land that was farmland in the earliest history layer: restore on former farmland")


class ShrinkageOutcome(Strict):
    """What becomes of released urban land (the whole cluster, or one city under shrinkage.by_city)."""

    outcome: Literal["vacant", "restore", "mix"] = Field(
        "vacant", description="vacant: stays urban, marked vacant (vacancy_<year>.tif); restore: reverts to "
        "restore_to; mix: restore_share of it restored, the rest vacant")
    restore_share: Fraction = Field(0.5, description="mix: share of the released cells restored")
    restore_to: str = Field(
        "neighbours", description="class restored land becomes: a class name, a role (open_space, farmland: its "
        "first class), or 'neighbours' (the most common non-urban, non-water class of the cell's 3x3 window, "
        "else the first open-space class)")


class ShrinkageConfig(ShrinkageOutcome):
    """Shrinking cities: how surplus urban land (a negative change of need, demand.people) is released."""

    pattern: Literal["contraction", "perforation"] = Field(
        "contraction", description="contraction: cells from the edge of the urban area inwards; perforation: "
        "scattered cells")
    weights: ShrinkageWeights = Field(default_factory=ShrinkageWeights)
    by_city: dict[int, ShrinkageOutcome] = Field(
        default_factory=dict, description="city id -> its own outcome, restore_share, restore_to")


OUTPUT_NAMES = ("maps", "expected", "probability", "boundary", "allocation", "report", "figures", "html",
                "coordination")
"""What a run can be asked for (``landuse run --outputs``, the ``outputs.*`` switches), in this order."""


class OutputsConfig(Strict):
    """What a run computes and writes. Policy checks run on the maps whatever is switched off."""

    folder: Path = Field(Path("outputs"), description="output folder, relative to the scenario file")
    maps: bool = Field(True, description="write landuse_<year>.tif (and vacancy_<year>.tif under demand.people)")
    expected: bool = Field(True, description="compute and write expected_<year>.tif (the amounts on the most "
                           "probable cells)")
    probability: bool = Field(True, description="write probability_<type>_<year>.tif")
    boundary: bool = Field(True, description="delineate the growth boundary and write ugb.tif, ugb.geojson")
    allocation: bool = Field(True, description="write the tables: allocation.csv, duals.csv, shortfall.csv "
                             "(and transfers, shrinkage, demand_people when they apply)")
    report: bool = Field(True, description="evaluate the run and write report.json and report.md; false skips "
                         "the evaluation, the figures and report.html too")
    figures: bool = Field(True, description="draw the report's PNG figures")
    html: bool = Field(True, description="write report.html")
    coordination: bool = Field(
        True, description="solve each period city by city too and report the cost of fragmentation (skipped "
        "without a second city)")

    def asked(self) -> list[str]:
        """The outputs switched on, as :data:`OUTPUT_NAMES` (figures and html only with the report)."""
        on = [n for n in OUTPUT_NAMES if getattr(self, n)]
        return [n for n in on if self.report or n not in ("figures", "html")]

    def ask(self, names: str | list[str]) -> None:
        """Switch on exactly ``names`` (a comma list or a list; ``all`` = every output) and switch off the rest.

        Listing ``figures`` or ``html`` asks for the report as well: they are parts of it.

        >>> o = OutputsConfig()
        >>> o.ask("maps,html")
        >>> o.asked()
        ['maps', 'report', 'html']
        """
        items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
        items = [n for n in items if n]
        if not items:
            raise ValueError("name at least one output; allowed: " + ", ".join((*OUTPUT_NAMES, "all")))
        bad = [n for n in items if n not in (*OUTPUT_NAMES, "all")]
        if bad:
            raise ValueError(f"unknown output {bad[0]!r}; allowed: " + ", ".join((*OUTPUT_NAMES, "all")))
        want = set(OUTPUT_NAMES) if "all" in items else set(items)
        if want & {"figures", "html"}:
            want.add("report")
        for n in OUTPUT_NAMES:
            setattr(self, n, n in want)


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
        return self.config.name

    @property
    def periods(self) -> list[int]:
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
