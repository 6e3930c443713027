"""Scenario schema, the region and what is asked of it: ``layers``, ``classes``, ``demand`` and ``policy``.

Each section is a pydantic model that rejects unknown keys and checks every value (a validator raises
``ValueError``, which pydantic reports with the key path). The whole scenario and its loader are in
:mod:`landuse.core.config`; the sections of how the stages run are in :mod:`landuse.core.config_stages`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from landuse.core.classes import DEFAULT_URBAN_TYPES, LandClass
from landuse.core.config_types import Fraction, NonNegative, Positive, Strict, UrbanType, _within

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
        """Another urban type's key holds a series like residential's.

        Its name is checked against the scheme when the Scenario is built.
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
    """Planning policies: coordination, protected land, greenbelt, growth boundary, quotas and caps, TOD, limits."""

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
