"""`landuse validate`: check a scenario without running it.

Checks, in order, collecting every problem rather than stopping at the first:
schema (via :func:`landuse.config.load_scenario`), files exist, every layer aligns with
the land-use layer (headers only), land-use class codes are declared, and demand is
not larger than the land that may be developed (per period and over the horizon,
cluster-wide and per city when demand is given per city).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse.classes import URBAN_TYPES
from landuse.config import Scenario, load_scenario
from landuse.errors import ConfigError, LanduseError
from landuse.io import check_class_codes, check_same_grid, read_header, read_landscape


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
    cell_height_m: float | None = None

    @property
    def cell_text(self) -> str:
        """``100 m`` for square cells, ``100 x 50 m`` (width x height) otherwise."""
        h = self.cell_height_m
        if h is None or h == self.cell_size_m:
            return f"{self.cell_size_m:g} m"
        return f"{self.cell_size_m:g} x {h:g} m (width x height)"

    def text(self) -> str:
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
        if self.dropped_drivers:
            lines.append(f"  note: suitability drivers without a layer are dropped: {', '.join(self.dropped_drivers)}")
        return "\n".join(lines)


def _demand_problems(scenario: Scenario, ds, developable: np.ndarray, cell_ha: float) -> tuple[list[str], dict]:
    problems: list[str] = []
    demand = scenario.config.demand
    ends = scenario.periods[1:]
    per_year = {y: sum(demand.cluster(t, y) for t in URBAN_TYPES) for y in ends}
    dev_ha = float(developable.sum()) * cell_ha
    for y, d in per_year.items():
        if d > dev_ha:
            problems.append(
                f"demand for the period ending {y} ({d:,.0f} ha) exceeds the developable land "
                f"({dev_ha:,.0f} ha) by {d - dev_ha:,.0f} ha; lower demand or relax constraints"
            )
    total = sum(per_year.values())
    if total > dev_ha and not problems:
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
                    problems.append(f"demand.by_city.{city}: no cell of the cities raster has id {city}")
                    continue
                need = sum(sum(series.values()) for series in per_type.values())
                if need > have:
                    problems.append(
                        f"demand.by_city.{city}: total demand {need:,.0f} ha exceeds the city's developable land "
                        f"{have:,.0f} ha by {need - have:,.0f} ha"
                    )
    return problems, per_year


def validate_scenario(path: str | os.PathLike) -> ValidationSummary:
    """Validate a scenario file; raise :class:`ConfigError` listing every problem found."""
    from landuse.constraints import never_convert
    from landuse.landscape import cell_area_ha, cell_sizes

    scenario = load_scenario(path)
    src = str(Path(path))
    paths = scenario.layer_paths()
    problems: list[str] = []
    headers = {}
    for name, p in paths.items():
        try:
            headers[name] = read_header(p)
        except LanduseError as exc:
            problems.append(f"{src}: layers.{name}: {exc}")
    ref = headers.get("landuse")
    if ref is not None:
        for name, h in headers.items():
            if name == "landuse":
                continue
            try:
                check_same_grid(ref, h, ref_name="landuse", name=name)
            except LanduseError as exc:
                problems.append(f"{src}: layers.{name}: {exc}")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)

    # class codes of every categorical layer (reads pixel data of those layers only)
    import rasterio

    for name, p in paths.items():
        if name == "landuse" or name.startswith("landuse_"):
            with rasterio.open(p) as r:
                data = r.read(1, masked=True)
            codes = np.ma.getdata(data)[~np.ma.getmaskarray(data)]
            try:
                check_class_codes(codes.astype(np.uint8), scenario.classes, path=p)
            except LanduseError as exc:
                problems.append(f"{src}: layers.{name}: {exc}")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)

    ds = read_landscape(paths, classes=scenario.classes)
    lu = np.asarray(ds["landuse"].values)
    conv = np.zeros(lu.shape, dtype=bool)
    from landuse.constraints import convertible

    blocked = never_convert(ds, scenario)
    for t in URBAN_TYPES:
        conv |= convertible(ds, scenario, t) & ~blocked
    cell_ha = cell_area_ha(ds)
    demand_problems, per_year = _demand_problems(scenario, ds, conv, cell_ha)
    problems += [f"{src}: {p}" for p in demand_problems]
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems=problems)
    return ValidationSummary(
        scenario=scenario,
        shape=lu.shape,
        cell_size_m=cell_sizes(ds)[1],
        cell_height_m=cell_sizes(ds)[0],
        crs=str(ds.rio.crs),
        layers=list(paths),
        study_area_ha=float(ds["study_area"].values.sum()) * cell_ha,
        developable_ha=float(conv.sum()) * cell_ha,
        demand_ha=per_year,
        dropped_drivers=_missing_drivers(scenario, ds),
    )


def _missing_drivers(scenario: Scenario, ds) -> list[str]:
    """Weighted-linear drivers with a positive weight whose layer the scenario does not give."""
    from landuse.suitability import type_weights

    needs = {"dist_roads": "roads", "dist_rail": "rail", "dist_stations": "stations", "dist_centres": "centres",
             "slope": "slope", "elevation": "elevation"}
    if scenario.config.growth.suitability.method != "linear":
        return []
    used = {n for w in type_weights(scenario).values() for n, v in w.items() if v > 0}
    return sorted(n for n in used if n in needs and needs[n] not in ds)
