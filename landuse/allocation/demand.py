"""Demand from people and jobs: population and jobs per city and year become hectares per type and period.

A scenario may give, instead of hectares, a planner's table of population and jobs per city and year
(``demand.people``: a CSV with columns ``city, year, population, jobs`` and optionally ``jobs_industrial,
jobs_commercial``, or the same inline) and densities: persons per hectare of residential land, jobs per hectare of
industrial and of commercial land. For each city ``c``, urban type ``t`` and year ``y`` the land needed is

    need[c, t, y] = people[c, t, y] / density[c, t, y]

with ``people`` the population (residential), the industrial jobs and the commercial jobs (``jobs`` split by
``industrial_job_share`` when the table gives only the total). A period ``(a, b)`` asks for the change of need,
``need[c, t, b] - need[c, t, a]``: growth when positive, a surplus when negative. Measuring the change of need (not
need minus the land there is) keeps a city that holds more or less land than its densities imply from being asked
to build or release it all in the first period.

Densities are a number, ``auto`` (the city's start-year people over its land of that type: the start-year land is
then exactly what its people need, and densities stay as they are), or per city (``default`` for the rest) and per
year, interpolated linearly between the years given and held beyond them — densification as a path. Population and
jobs are interpolated linearly between the table's years; every scenario year must lie within the table's years.

A negative change is a surplus: ``landuse run`` releases it (:mod:`landuse.allocation.shrink`), and a city that grows again first
reoccupies its vacant land; ``by_city`` holds the growth only (negative changes as 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from landuse.core.classes import DEFAULT_URBAN_TYPES
from landuse.core.config import Scenario
from landuse.core.errors import ConfigError
from landuse.core.landscape import cell_area_ha

PEOPLE_OF = {"residential": "population", "industrial": "jobs_industrial", "commercial": "jobs_commercial"}
DENSITY_KEY = {"residential": "persons_per_ha", "industrial": "industrial_jobs_per_ha",
               "commercial": "commercial_jobs_per_ha"}


@dataclass
class PeopleDemand:
    """Demand derived from people and jobs.

    Attributes
    ----------
    people : DataFrame
        ``city, year, population, jobs_industrial, jobs_commercial`` at every scenario year (interpolated).
    need : DataFrame
        ``city, year, type, people, density, hectares``: land each city needs at each scenario year.
    change : DataFrame
        ``period, city, type, hectares``: change of need over each period (negative: a surplus).
    by_city : dict
        ``{city: {type: {end year: hectares}}}``, the planned growth (negative changes as 0), as
        ``demand.by_city`` takes it.
    notes : list of str
    """

    people: pd.DataFrame
    need: pd.DataFrame
    change: pd.DataFrame
    by_city: dict[int, dict[str, dict[int, float]]]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A table of the derived hectares per period, city and type, for the terminal."""
        lines = ["demand from people and jobs (hectares of new land per period; negative = surplus):"]
        wide = self.change.pivot_table(index=["period", "city"], columns="type", values="hectares", aggfunc="sum")
        wide = wide.reindex(columns=[t for t in DEFAULT_URBAN_TYPES if t in wide.columns])
        lines.append("  period  city  " + "  ".join(f"{t:>12}" for t in wide.columns))
        for (period, city), row in wide.iterrows():
            lines.append(f"  {period:>6}  {city:>4}  " + "  ".join(f"{v:12.1f}" for v in row.to_numpy()))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _interp(years: np.ndarray, values: np.ndarray, at: float) -> float:
    return float(np.interp(at, years, values))


def people_table(scenario: Scenario) -> pd.DataFrame:
    """The population and jobs table of ``demand.people`` (CSV or inline), checked.

    Returns columns ``city, year, population, jobs_industrial, jobs_commercial`` (the last two NaN when only
    ``jobs`` is given; then ``jobs`` is kept).
    """
    cfg = scenario.config.demand.people
    if cfg is None:
        raise ConfigError("demand.people is not set")
    if cfg.table is not None and cfg.cities:
        raise ConfigError("demand.people: give either table (a CSV) or cities (inline), not both")
    table = cfg.table if cfg.table is not None or cfg.cities else next(iter(cfg.variants.values()), None)
    if table is not None:
        path = scenario.resolve(table)
        where = f"demand.people.table ({path})"
        try:
            df = pd.read_csv(path)
        except FileNotFoundError:
            raise ConfigError(f"{where}: file not found; give the path relative to the scenario file") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as exc:
            raise ConfigError(f"{where}: not a readable CSV ({exc.__class__.__name__}); save the table as CSV "
                              "with a header row city,year,population,jobs") from None
        df.columns = [str(c).strip().lower() for c in df.columns]
    elif cfg.cities:
        where = "demand.people.cities"
        df = pd.DataFrame([{"city": c, "year": y, **v} for c, per in cfg.cities.items() for y, v in per.items()])
    else:
        raise ConfigError("demand.people needs a table (CSV path) or cities (inline population and jobs)")
    need = {"city", "year", "population"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise ConfigError(f"{where}: missing column(s) {missing}; the table needs city, year, population and jobs "
                          "(or jobs_industrial and jobs_commercial)")
    has_split = {"jobs_industrial", "jobs_commercial"} <= set(df.columns)
    jobs_types = [t for t in ("industrial", "commercial") if t in scenario.urban_types]
    if "jobs" not in df.columns and not has_split:
        if jobs_types:
            raise ConfigError(f"{where}: no jobs column; give jobs, or jobs_industrial and jobs_commercial")
        df["jobs"] = 0.0  # the scheme has no land for jobs: population only
    cols = ["city", "year", "population", *(["jobs"] if "jobs" in df.columns else []),
            *(["jobs_industrial", "jobs_commercial"] if has_split else [])]
    for c in cols:
        v = pd.to_numeric(df[c], errors="coerce")
        bad = v.isna() | (v < 0) | ~np.isfinite(v.fillna(0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ConfigError(f"{where}: column {c!r}, row {i + 2 if table is not None else i + 1}: "
                              f'"{df[c].iloc[i]}" is not a non-negative number')
        df[c] = v
    for c in ("city", "year"):
        if not (df[c] == np.floor(df[c])).all():
            raise ConfigError(f"{where}: column {c!r} must hold whole numbers")
        df[c] = df[c].astype(int)
    dup = df.duplicated(["city", "year"])
    if dup.any():
        r = df[dup].iloc[0]
        raise ConfigError(f"{where}: city {int(r.city)}, year {int(r.year)} is given twice; give one row each")
    out = df[cols].copy()
    if not has_split:
        out["jobs_industrial"] = np.nan
        out["jobs_commercial"] = np.nan
    return out.sort_values(["city", "year"]).reset_index(drop=True)


def _density(spec: Any, city: int, year: int, auto: float, key: str) -> float:
    """Resolve one density spec for a city and year (see the module docstring)."""
    if isinstance(spec, dict):
        spec = spec.get(city, spec.get("default", "auto"))
    if spec == "auto":
        return auto
    if isinstance(spec, dict):
        ys = np.array(sorted(spec), dtype=float)
        return _interp(ys, np.array([float(spec[int(y)]) for y in ys]), year)
    v = float(spec)
    if not v > 0:
        raise ConfigError(f"demand.people.{key}: densities must be positive, got {v:g} for city {city}")
    return v


def derive_demand(scenario: Scenario, landscape: xr.Dataset, *, landuse: np.ndarray | None = None) -> PeopleDemand:
    """Hectares of new land per period, city and type from ``demand.people`` (see the module docstring).

    Parameters
    ----------
    scenario : Scenario
    landscape : xarray.Dataset
        Supplies the cities layer and the start-year land use ('auto' densities).
    landuse : ndarray, optional
        Start-year land use (default ``landscape.landuse``).
    """
    cfg = scenario.config.demand.people
    tab = people_table(scenario)
    years = scenario.periods
    classes = scenario.classes
    if "cities" not in landscape:
        raise ConfigError("demand.people needs layers.cities: population and jobs are given per city")
    lu = np.asarray(landscape["landuse"].values if landuse is None else landuse)
    cities = np.asarray(landscape["cities"].values, dtype=np.int64)
    study = np.asarray(landscape["study_area"].values, dtype=bool)
    present = sorted(int(c) for c in np.unique(cities[study]) if c > 0)
    unknown = sorted(set(tab.city) - set(present))
    if unknown:
        raise ConfigError(f"demand.people: city id(s) {unknown} do not occur in the cities raster "
                          f"(ids {present[:12]}{' ...' if len(present) > 12 else ''}); fix the city column")
    notes: list[str] = []
    absent = sorted(set(present) - set(tab.city))
    if absent:
        notes.append(f"cities {absent} have no population or jobs in demand.people: no demand there")
    cell_ha = cell_area_ha(landscape)
    n = max(present, default=0) + 1
    land = {t: np.bincount(cities[study & classes.is_role(lu, t)], minlength=n) * cell_ha for t in PEOPLE_OF}

    # people at every scenario year (linear interpolation within the table's years)
    rows = []
    for c, g in tab.groupby("city"):
        ys = g["year"].to_numpy(dtype=float)
        lo, hi = int(ys.min()), int(ys.max())
        outside = [y for y in years if y < lo or y > hi]
        if outside:
            raise ConfigError(f"demand.people: city {c} has population from {lo} to {hi}, but the scenario needs "
                              f"years {outside}; add rows for them (years in between are interpolated)")
        rec = {"city": int(c)}
        for y in years:
            r = {**rec, "year": int(y), "population": _interp(ys, g["population"].to_numpy(float), y)}
            for col in ("jobs", "jobs_industrial", "jobs_commercial"):
                if col in g and g[col].notna().all():
                    r[col] = _interp(ys, g[col].to_numpy(float), y)
            rows.append(r)
    people = pd.DataFrame(rows)
    types = [t for t in PEOPLE_OF if t in scenario.urban_types]
    if "residential" not in types:
        raise ConfigError(f"demand.people: turns population into residential land, but the class scheme declares "
                          f"no urban type 'residential' (its types are {', '.join(scenario.urban_types)})")
    split_given = "jobs_industrial" in people and not people["jobs_industrial"].isna().any()
    jobs_cols = ("jobs_industrial", "jobs_commercial") if split_given else ("jobs",)
    for t in ("industrial", "commercial"):
        cols_t = [c for c in jobs_cols if c == "jobs" or c == f"jobs_{t}"]
        if t not in types and split_given and float(people[cols_t].sum().sum()) > 0:
            raise ConfigError(f"demand.people: the table gives jobs_{t}, but the class scheme declares no urban type "
                              f"{t!r} (its types are {', '.join(scenario.urban_types)}); drop the column or "
                              "declare a class of that type")
    if not {"industrial", "commercial"} & set(types) and float(people[list(jobs_cols)].sum().sum()) > 0:
        raise ConfigError(f"demand.people: the table gives jobs, but the class scheme declares neither an "
                          f"'industrial' nor a 'commercial' urban type (its types are "
                          f"{', '.join(scenario.urban_types)}); drop the jobs column or declare such a class")
    if not split_given and not {"industrial", "commercial"} <= set(types):
        share = 1.0 if "industrial" in types else 0.0  # every job on the one jobs type the scheme has
        people["jobs_industrial"] = people["jobs"] * share
        people["jobs_commercial"] = people["jobs"] * (1.0 - share)
    elif not split_given:
        share = cfg.industrial_job_share
        if share == "auto":
            ind, com = land["industrial"].sum(), land["commercial"].sum()
            share = ind / (ind + com) if ind + com > 0 else 0.5
            notes.append(f"industrial_job_share auto: {share:.3f} (the start year's industrial share of "
                         "industrial + commercial land)")
        people["jobs_industrial"] = people["jobs"] * float(share)
        people["jobs_commercial"] = people["jobs"] * (1.0 - float(share))
    people = people[["city", "year", "population", "jobs_industrial", "jobs_commercial"]]

    start = people[people.year == years[0]].set_index("city")
    need_rows = []
    for t in types:
        col, key = PEOPLE_OF[t], DENSITY_KEY[t]
        spec = getattr(cfg, key)
        total_people = float(start[col].sum())
        total_land = float(sum(land[t][c] for c in start.index))
        cluster_auto = total_people / total_land if total_land > 0 else math.nan
        for r in people.itertuples(index=False):
            c = int(r.city)
            own = float(start.loc[c, col]) / land[t][c] if land[t][c] > 0 else cluster_auto
            d = _density(spec, c, int(r.year), own, key)
            if not (d > 0 and math.isfinite(d)):
                raise ConfigError(f"demand.people.{key}: 'auto' needs {t} land in the start year, and the cluster "
                                  f"has none; give a number (e.g. {key}: {100 if t == 'residential' else 50})")
            p = float(getattr(r, col))
            need_rows.append({"city": c, "year": int(r.year), "type": t, "people": p, "density": d,
                              "hectares": p / d})
    need = pd.DataFrame(need_rows)
    change_rows = []
    by_city: dict[int, dict[str, dict[int, float]]] = {}
    for (c, t), g in need.groupby(["city", "type"], sort=True):
        h = g.set_index("year")["hectares"]
        for a, b in scenario.period_pairs:
            d = float(h[b] - h[a])
            change_rows.append({"period": int(b), "city": int(c), "type": t, "hectares": d})
            by_city.setdefault(int(c), {}).setdefault(t, {})[int(b)] = max(d, 0.0)
    change = pd.DataFrame(change_rows, columns=["period", "city", "type", "hectares"])
    surplus = change[change.hectares < -1e-9]
    if len(surplus):
        per = surplus.groupby(["period", "city"]).hectares.sum()
        text = "; ".join(f"{p}: " + ", ".join(f"city {c} {-v:,.1f} ha" for (_, c), v in g.items())
                         for p, g in per.groupby(level=0))
        notes.append(f"surplus land ({text}): these cities need less land than they held; the run releases it "
                     "(landuse.allocation.shrink: shrinkage.outcome vacant, restore or mix)")
    return PeopleDemand(people=people, need=need, change=change, by_city=by_city, notes=notes)


def apply_people_demand(scenario: Scenario, landscape: xr.Dataset) -> PeopleDemand | None:
    """Derive ``demand.people`` and set the result as the scenario's ``demand.by_city`` (None without people)."""
    if scenario.config.demand.people is None:
        return None
    derived = derive_demand(scenario, landscape)
    scenario.config.demand.by_city = derived.by_city
    return derived


__all__ = ["PeopleDemand", "apply_people_demand", "derive_demand", "people_table"]
