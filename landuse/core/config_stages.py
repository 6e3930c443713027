"""Scenario schema, how the stages run and what a run writes.

The sections ``allocation``, ``growth``, ``evaluation``, ``calibration``, ``compute``, ``shrinkage`` and
``outputs``.

Each section is a pydantic model that rejects unknown keys and checks every value (a validator raises
``ValueError``, which pydantic reports with the key path), with the defaults that depend on the class scheme
(conversion sources, neighbourhood and driver weights). The whole scenario and its loader are in
:mod:`landuse.core.config`; the region and the demand and policy sections in :mod:`landuse.core.config_plan`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from landuse.core.classes import URBAN_TYPES
from landuse.core.config_types import Fraction, NonNegative, Positive, Strict, UrbanType, _within

# --------------------------------------------------------------------------- allocation


class AllocationWeights(Strict):
    """Weights of the allocation LP's objective terms: sprawl, centre, farmland, open space, suitability, bands."""

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
    """The LP allocator: zone blocks, solver and its options, objective weights, working set."""

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
    """The growth cellular automaton: Monte Carlo runs, seed, neighbourhood, iterations, suitability."""

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
    """Delineating the urban growth boundary from the growth probability."""

    threshold: Fraction = Field(0.5, description="minimum horizon urban probability inside the boundary")
    closing_radius_m: NonNegative = Field(300.0, description="morphological closing radius")
    min_area_ha: NonNegative = Field(50.0, description="boundary patches smaller than this are dropped")
    fill_holes: bool = Field(True, description="fill enclosed holes")
    opening_radius_m: NonNegative | None = Field(
        None, description="opening radius in metres after the closing (default: closing_radius_m; 0 skips it)"
    )


class EvaluationConfig(Strict):
    """The evaluation: growth-boundary delineation, the LEI buffer and patch connectivity of the landscape metrics."""

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
