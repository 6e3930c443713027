"""`landuse validate`: check a scenario without running it.

Checks, in order, collecting every problem rather than stopping at the first:
schema (via :func:`landuse.core.config.load_scenario`), files exist, every layer aligns with
the land-use layer (headers only), land-use class codes are declared, and demand is
not larger than the land that may be developed (per period and over the horizon,
cluster-wide and per city when demand is given per city).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse.core.config import Scenario, load_scenario
from landuse.core.errors import ConfigError, LanduseError


@dataclass
class ValidationSummary:
    """What `landuse validate` found for a valid scenario."""

    scenario: Scenario
    shape: tuple[int, int]
    cell_size_m: float  # the cell width (x); cell_height_m the height (y)
    crs: str
    layers: list[str]
    study_area_ha: float
    developable_ha: float
    demand_ha: dict[int, float] = field(default_factory=dict)
    dropped_drivers: list[str] = field(default_factory=list)
    people: str | None = None
    cell_height_m: float | None = None

    @property
    def cell_text(self) -> str:
        """``100 m`` for square cells, ``100 x 50 m`` (width x height) otherwise."""
        h = self.cell_height_m
        if h is None or h == self.cell_size_m:
            return f"{self.cell_size_m:g} m"
        return f"{self.cell_size_m:g} x {h:g} m (width x height)"

    def text(self) -> str:
        """The summary ``landuse validate`` prints."""
        rows, cols = self.shape
        total = sum(self.demand_ha.values())
        lines = [
            f"scenario {self.scenario.name!r} is valid",
            f"  grid: {rows} x {cols} cells of {self.cell_text}, {self.crs}",
            f"  layers ({len(self.layers)}): {', '.join(self.layers)}",
            f"  classes: {len(self.scenario.classes)} ({', '.join(c.name for c in self.scenario.classes)})",
            f"  periods: {' -> '.join(map(str, self.scenario.periods))}",
            f"  study area: {self.study_area_ha:,.0f} ha; developable now: {self.developable_ha:,.0f} ha",
            f"  demand: {total:,.0f} ha over {len(self.demand_ha)} periods "
            f"({', '.join(f'{y}: {v:,.0f}' for y, v in self.demand_ha.items())})",
        ]
        if self.people:
            lines.append("  " + self.people.replace("\n", "\n  "))
        if self.dropped_drivers:
            lines.append(f"  note: suitability drivers without a layer are dropped: {', '.join(self.dropped_drivers)}")
        return "\n".join(lines)


def _demand_problems(scenario: Scenario, ds, developable: np.ndarray, cell_ha: float) -> tuple[list[str], dict, bool]:
    """Problems of demand against developable land, demand per period end, and whether demand exceeds the land."""
    problems: list[str] = []
    short = False
    demand = scenario.config.demand
    ends = scenario.periods[1:]
    per_year = {y: sum(demand.cluster(t, y) for t in scenario.urban_types) for y in ends}
    dev_ha = float(developable.sum()) * cell_ha
    for y, d in per_year.items():
        if d > dev_ha:
            short = True
            problems.append(
                f"demand for the period ending {y} ({d:,.0f} ha) exceeds the developable land "
                f"({dev_ha:,.0f} ha) by {d - dev_ha:,.0f} ha; lower demand or relax constraints"
            )
    total = sum(per_year.values())
    if total > dev_ha and not problems:
        short = True
        problems.append(
            f"total demand over the horizon ({total:,.0f} ha) exceeds the developable land "
            f"({dev_ha:,.0f} ha) by {total - dev_ha:,.0f} ha; lower demand or relax constraints"
        )
    if demand.by_city:
        if "cities" not in ds:
            problems.append("demand.by_city is given but layers.cities is not; add the cities raster")
        else:
            cities = np.asarray(ds["cities"].values)
            dev_by_city = np.bincount(cities[developable].ravel(), minlength=int(cities.max()) + 1) * cell_ha
            for city, per_type in demand.by_city.items():
                have = float(dev_by_city[city]) if city < dev_by_city.size else 0.0
                if city >= dev_by_city.size or not (cities == city).any():
                    ids = ", ".join(map(str, sorted(set(np.unique(cities).tolist()) - {0})[:20]))
                    problems.append(
                        f"demand.by_city.{city}: no cell of the cities raster (layers.cities, "
                        f"{ds['cities'].attrs.get('source', '')}) has id {city}; city ids are {ids}"
                    )
                    continue
                need = sum(sum(series.values()) for series in per_type.values())
                if need > have:
                    short = True
                    problems.append(
                        f"demand.by_city.{city}: total demand {need:,.0f} ha exceeds the city's developable land "
                        f"{have:,.0f} ha by {need - have:,.0f} ha"
                    )
    return problems, per_year, short


def _blocking_layers(ds, scenario: Scenario, candidates: np.ndarray) -> list[str]:
    """What keeps land from development: '<policy> (<key>, <file>) blocks N cells', largest first."""
    from landuse.core.config import layer_key

    pol = scenario.config.policy
    lu = np.asarray(ds["landuse"].values)
    parts: list[tuple[int, str]] = []
    layers = [("red_line", "the ecological red line", pol.red_line),
              ("permanent_farmland", "permanent farmland", pol.permanent_farmland),
              ("protected_open_space", "protected open space", pol.protected_open_space),
              ("greenbelt", "the hard greenbelt", pol.greenbelt.mode == "hard")]
    for name, label, on in layers:
        if on and name in ds:
            n = int((np.asarray(ds[name].values, dtype=bool) & candidates).sum())
            if n:
                parts.append((n, f"{label} ({layer_key(name)}, {ds[name].attrs.get('source', '')}) covers {n:,} of them"))
    if pol.growth_boundary.mode == "hard" and "growth_boundary" in ds:
        n = int((~np.asarray(ds["growth_boundary"].values, dtype=bool) & candidates).sum())
        if n:
            parts.append((n, f"{n:,} lie outside the hard growth boundary (layers.growth_boundary)"))
    n = int((scenario.classes.is_role(lu, "water") & candidates).sum())
    if n:
        parts.append((n, f"{n:,} are water"))
    return [t for _, t in sorted(parts, key=lambda p: -p[0])]


def developable_explanation(ds, scenario: Scenario, developable: np.ndarray) -> str:
    """Why the developable land is what it is: the cells of a class that may convert, and what blocks them."""
    from landuse.surfaces.constraints import source_allowed_lut

    lu = np.asarray(ds["landuse"].values)
    study = np.asarray(ds["study_area"].values, dtype=bool)
    candidates = source_allowed_lut(scenario).any(axis=0)[lu] & study
    text = (f"of {int(study.sum()):,} study-area cells, {int(candidates.sum()):,} are of a class that may become "
            f"urban (growth.conversion) and {int(developable.sum()):,} of those may be developed")
    blocks = _blocking_layers(ds, scenario, candidates)
    if blocks:
        text += ": " + "; ".join(blocks)
    return text


def input_problems(ds, scenario: Scenario) -> list[str]:
    """Problems of the inputs together that `landuse run` would otherwise meet only while solving.

    The layers a method or policy needs are given (``raster`` and ``trained`` suitability,
    TOD stations, cities for ``city_growth_limits``); the
    city ids of ``policy.city_growth_limits`` exist in the cities raster; ``policy.tod``
    has station cells; some land may be developed at all when there is demand.
    """
    from landuse.core.strips import row_strips
    from landuse.surfaces.constraints import never_convert_rows, source_allowed_lut

    problems: list[str] = []
    cfg = scenario.config
    pol = cfg.policy
    start = scenario.periods[0]
    history = sorted(int(v[8:]) for v in ds.data_vars if v.startswith("landuse_") and v[8:].isdigit())
    sc = cfg.growth.suitability
    if sc.method == "raster":
        missing = [t for t in scenario.urban_types if f"suitability_{t}" not in ds]
        if missing:
            problems.append(
                f"growth.suitability.method is 'raster' but layers.suitability.{missing[0]} is not given; add "
                f"layers.suitability.{{{', '.join(missing)}}} (e.g. written by `landuse suitability`) "
                "or use method 'linear'"
            )
    if sc.method == "trained" and not [y for y in history if y < start]:
        problems.append(
            f"growth.suitability.method is 'trained' but there is no layers.history year before the start year "
            f"{start}; the model is trained on the change from a history layer to layers.landuse: add "
            "layers.history (e.g. {2010: landuse_2010.tif}) or use method 'linear'"
        )
    if pol.tod is not None and "stations" not in ds:
        problems.append("policy.tod needs the stations layer, but layers.stations is not given; add it or remove "
                        "policy.tod")
    if pol.city_growth_limits and "cities" not in ds:
        problems.append("policy.city_growth_limits needs the cities layer, but layers.cities is not given; add it "
                        "or remove the limits")
    study = np.asarray(ds["study_area"].values, dtype=bool)
    strips = row_strips(*study.shape)  # every count below strip by strip: no whole-raster temporaries
    if pol.city_growth_limits and "cities" in ds:
        cities = np.asarray(ds["cities"].values)
        present: set[int] = set()
        for a, b in strips:
            present.update(np.unique(cities[a:b][study[a:b]]).tolist())
        present -= {0}
        listing = ", ".join(map(str, sorted(present)[:20])) + (" ..." if len(present) > 20 else "")
        for city in sorted(pol.city_growth_limits):
            if city not in present:
                problems.append(
                    f"policy.city_growth_limits.{city}: no cell of the cities raster (layers.cities, "
                    f"{ds['cities'].attrs.get('source', '')}) has id {city} in the study area; city ids are {listing}"
                )
    if pol.tod is not None and "stations" in ds:
        stations = np.asarray(ds["stations"].values, dtype=bool)
        n = sum(int(np.count_nonzero(stations[a:b] & study[a:b])) for a, b in strips)
        if n == 0:
            problems.append(
                f"policy.tod: the stations layer (layers.stations, {ds['stations'].attrs.get('source', '')}) has "
                "no station cells in the study area (no finite non-zero value), so no land can be near a station; "
                "give a stations raster with the station cells non-zero, or remove policy.tod"
            )
    q = pol.open_space_quota
    if q is not None and q.already_below == "error":
        problems += _quota_below_at_start(ds, scenario)
    demand = scenario.config.demand
    if any(demand.cluster(t, y) > 0 for t in scenario.urban_types for y in scenario.periods[1:]):
        # a developable cell: of a class some urban type may take (growth.conversion), not never_convert; the first
        # strip holding one ends the search
        lu = np.asarray(ds["landuse"].values)
        may = source_allowed_lut(scenario).any(axis=0)
        never = never_convert_rows(ds, scenario, lu)
        if not any(np.any(may[lu[a:b]] & ~never(a, b)) for a, b in strips):
            problems.append(
                "no land may be developed, but the scenario has demand: "
                + developable_explanation(ds, scenario, np.zeros(lu.shape, dtype=bool))
                + "; check those layers (and their nodata tags) or the policy switches"
            )
    return problems


def _quota_below_at_start(ds, scenario: Scenario) -> list[str]:
    """Units already below the open-space quota in the start year: no plan can meet it (the allocator refuses)."""
    import math

    from landuse.core.strips import row_strips
    from landuse.surfaces.constraints import land_area_mask, open_space_mask, protected_open_space

    q = scenario.config.policy.open_space_quota
    classes = scenario.classes
    lu = np.asarray(ds["landuse"].values)
    protected = protected_open_space(ds, scenario)
    by_city = q.unit == "city" and "cities" in ds
    cities = np.asarray(ds["cities"].values) if by_city else None
    n_land: dict[int, int] = {}
    n_space: dict[int, int] = {}
    for a, b in row_strips(*lu.shape):  # land and open space per unit, counted strip by strip
        land = land_area_mask(ds, classes, include_water=q.include_water, landuse=lu[a:b], rows=slice(a, b))
        space = open_space_mask(lu[a:b], classes, include_water=q.include_water,
                                protected=None if protected is None else protected[a:b]) & land
        for counts, mask in ((n_land, land), (n_space, space)):
            if cities is None:
                counts[-1] = counts.get(-1, 0) + int(np.count_nonzero(mask))
                continue
            ids, n = np.unique(np.asarray(cities[a:b][mask], dtype=np.int64), return_counts=True)
            for c, k in zip(ids.tolist(), n.tolist(), strict=True):
                counts[c] = counts.get(c, 0) + k
    units = [c for c in sorted(n_land) if c >= 0] if cities is not None else [-1]
    below = []
    for c in units:
        land_cells, space_cells = n_land.get(c, 0), n_space.get(c, 0)
        if land_cells and space_cells < q.share * land_cells - 1e-9:
            below.append((f"city {c}" if cities is not None else "the cluster", 100.0 * space_cells / land_cells))
    if not below:
        return []
    share = math.floor(min(h for _, h in below) * 10) / 10
    listing = ", ".join(f"{w} {h:.2f} %" for w, h in below[:8]) + (" ..." if len(below) > 8 else "")
    return [f"policy.open_space_quota: {len(below)} unit(s) already hold less than the {100 * q.share:g} % quota in "
            f"the start year ({listing}), so no plan can meet it; lower policy.open_space_quota.share to "
            f"{share:.1f} % or less, or set policy.open_space_quota.already_below: no_further_loss"]


def check_inputs(ds, scenario: Scenario) -> None:
    """Raise :class:`ConfigError` listing :func:`input_problems` (what `landuse run` checks before solving)."""
    src = str(scenario.path) if scenario.path else "scenario"
    problems = [f"{src}: {p}" for p in input_problems(ds, scenario)]
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)


def validate_scenario(path: str | os.PathLike) -> ValidationSummary:
    """Validate a scenario file; raise :class:`ConfigError` listing every problem found."""
    scenario = load_scenario(path)  # first: a bad scenario file is reported before the raster stack is imported
    from landuse.core.config import layer_key
    from landuse.core.landscape import cell_area_ha, cell_sizes, crs_of
    from landuse.io.rasters import check_reference_crs, check_same_grid, read_header, read_landscape, read_layer
    from landuse.surfaces.constraints import never_convert

    src = str(Path(path))
    paths = scenario.layer_paths()
    problems: list[str] = []
    headers = {}
    for name, p in paths.items():
        try:
            headers[name] = read_header(p)
        except LanduseError as exc:
            problems.append(f"{src}: {layer_key(name)}: {exc}")
    ref = headers.get("landuse")
    if ref is not None:
        try:
            check_reference_crs(ref)
        except LanduseError as exc:
            problems.append(f"{src}: layers.landuse: {exc}")
            ref = None
    if ref is not None:
        for name, h in headers.items():
            if name == "landuse":
                continue
            try:
                check_same_grid(ref, h, ref_name="landuse", name=name)
            except LanduseError as exc:
                problems.append(f"{src}: {layer_key(name)}: {exc}")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)

    # the values of every layer: class codes, ids, drivers (reads pixel data)
    for name, p in paths.items():
        try:
            read_layer(name, p, classes=scenario.classes)
        except LanduseError as exc:
            problems.append(f"{src}: {exc}")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)

    ds = read_landscape(paths, classes=scenario.classes)
    problems += [f"{src}: {p}" for p in input_problems(ds, scenario)]
    cal_year = scenario.config.calibration.history_year
    if cal_year is not None and cal_year not in scenario.config.layers.history:  # what `landuse calibrate` needs
        problems.append(
            f"{src}: calibration.history_year: {cal_year} is not a year of layers.history "
            f"({', '.join(map(str, sorted(scenario.config.layers.history))) or 'none given'})"
        )
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)
    lu = np.asarray(ds["landuse"].values)
    conv = np.zeros(lu.shape, dtype=bool)
    from landuse.surfaces.constraints import convertible

    blocked = never_convert(ds, scenario)
    for t in scenario.urban_types:
        conv |= convertible(ds, scenario, t) & ~blocked
    cell_ha = cell_area_ha(ds)
    from landuse.allocation.demand import apply_people_demand

    people = apply_people_demand(scenario, ds)
    from landuse.allocation.demand_trend import apply_trend_demand

    apply_trend_demand(scenario, ds)
    demand_problems, per_year, short = _demand_problems(scenario, ds, conv, cell_ha)
    if short:
        demand_problems.append("developable land: " + developable_explanation(ds, scenario, conv))
    problems += [f"{src}: {p}" for p in demand_problems]
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)
    return ValidationSummary(
        scenario=scenario,
        shape=lu.shape,
        cell_size_m=cell_sizes(ds)[1],
        cell_height_m=cell_sizes(ds)[0],
        crs=str(crs_of(ds)),
        layers=list(paths),
        study_area_ha=float(ds["study_area"].values.sum()) * cell_ha,
        developable_ha=float(conv.sum()) * cell_ha,
        demand_ha=per_year,
        dropped_drivers=_missing_drivers(scenario, ds),
        people=people.summary() if people is not None else None,
    )


def _missing_drivers(scenario: Scenario, ds) -> list[str]:
    """Weighted-linear drivers with a positive weight whose layer the scenario does not give."""
    from landuse.surfaces.suitability import type_weights

    needs = {"dist_roads": "roads", "dist_rail": "rail", "dist_stations": "stations", "dist_centres": "centres",
             "slope": "slope", "elevation": "elevation"}
    if scenario.config.growth.suitability.method != "linear":
        return []
    used = {n for w in type_weights(scenario).values() for n, v in w.items() if v > 0}
    return sorted(n for n in used if n in needs and needs[n] not in ds)
