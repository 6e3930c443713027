"""Demand from people and jobs (landuse.allocation.demand): hand-computed cases, interpolation, densities, bad tables."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from affine import Affine
from conftest import scenario_dict

from landuse.allocation.demand import derive_demand
from landuse.core.classes import default_scheme
from landuse.core.config import load_scenario, scenario_from_dict
from landuse.core.errors import ConfigError, LanduseError
from landuse.core.landscape import new_landscape
from landuse.pipeline.run import run_scenario

S = default_scheme()
R, IND, COM, F = S.code_of("residential"), S.code_of("industrial"), S.code_of("commercial"), S.codes_with_role(
    "farmland")[0]


def _landscape():
    """Two cities of 1-ha cells: city 1 holds 4 ha residential, 2 ha industrial, 1 ha commercial; city 2 holds
    2 ha residential and nothing else."""
    lu = np.full((4, 8), F, dtype=np.uint8)
    lu[0, 0:4] = R
    lu[1, 0:2] = IND
    lu[1, 2] = COM
    lu[0, 4:6] = R
    cities = np.array([[1] * 4 + [2] * 4] * 4, dtype=np.int32)
    return new_landscape({"landuse": lu, "cities": cities}, crs="EPSG:32651",
                         transform=Affine(100, 0, 0, 0, -100, 400))


def _scenario(people: dict, periods=(2020, 2030, 2040)):
    return scenario_from_dict({"name": "p", "layers": {"landuse": "lu.tif"}, "periods": list(periods),
                               "demand": {"people": people}})


def test_population_and_jobs_become_hectares_by_hand() -> None:
    people = {"cities": {1: {2020: {"population": 400, "jobs_industrial": 100, "jobs_commercial": 50},
                             2040: {"population": 600, "jobs_industrial": 140, "jobs_commercial": 50}},
                         2: {2020: {"population": 200, "jobs_industrial": 0, "jobs_commercial": 0},
                             2040: {"population": 100, "jobs_industrial": 0, "jobs_commercial": 0}}},
              "persons_per_ha": 100.0, "industrial_jobs_per_ha": 50.0, "commercial_jobs_per_ha": 50.0}
    d = derive_demand(_scenario(people), _landscape())
    ch = d.change.set_index(["period", "city", "type"]).hectares
    # city 1: population 400 -> 500 (2030, interpolated) -> 600 at 100 persons/ha: +1 ha per period
    assert ch[(2030, 1, "residential")] == pytest.approx(1.0) and ch[(2040, 1, "residential")] == pytest.approx(1.0)
    # industrial jobs 100 -> 120 -> 140 at 50 jobs/ha: +0.4 ha per period; commercial unchanged
    assert ch[(2030, 1, "industrial")] == pytest.approx(0.4) and ch[(2030, 1, "commercial")] == pytest.approx(0.0)
    # city 2 loses 50 people per period: a surplus of 0.5 ha, planned as no change and noted
    assert ch[(2030, 2, "residential")] == pytest.approx(-0.5)
    assert d.by_city[2]["residential"] == {2030: 0.0, 2040: 0.0}
    assert d.by_city[1]["residential"] == pytest.approx({2030: 1.0, 2040: 1.0})
    assert any("surplus land" in n and "city 2 0.5 ha" in n for n in d.notes)
    need = d.need.set_index(["city", "year", "type"])
    assert need.loc[(1, 2030, "residential"), "hectares"] == pytest.approx(5.0)


def test_auto_densities_reproduce_the_start_year_and_densification_shrinks_need() -> None:
    people = {"cities": {1: {2020: {"population": 800, "jobs": 300}, 2040: {"population": 800, "jobs": 300}}}}
    d = derive_demand(_scenario(people), _landscape())
    need = d.need.set_index(["city", "year", "type"])
    # auto: 800 persons on 4 ha residential -> 200 per ha; the start year needs exactly the land there is
    assert need.loc[(1, 2020, "residential"), "density"] == pytest.approx(200.0)
    assert need.loc[(1, 2020, "residential"), "hectares"] == pytest.approx(4.0)
    # jobs split by the cluster's industrial share of job land: 2 / (2 + 1)
    assert need.loc[(1, 2020, "industrial"), "people"] == pytest.approx(200.0)
    assert (d.change.hectares.abs() < 1e-9).all()  # same people, same densities: no change
    # densification: 200 -> 400 persons per ha by 2040 halves the need (a surplus, noted)
    people["persons_per_ha"] = {"default": "auto", 1: {2020: 200.0, 2040: 400.0}}
    d2 = derive_demand(_scenario(people), _landscape())
    ch = d2.change.set_index(["period", "city", "type"]).hectares
    assert ch[(2030, 1, "residential")] == pytest.approx(800 / 300 - 4.0)
    assert ch[(2040, 1, "residential")] == pytest.approx(2.0 - 800 / 300)


def test_bad_people_tables_are_clear_errors(tmp_path) -> None:
    ds = _landscape()
    with pytest.raises(ConfigError, match=r"city id\(s\) \[9\] do not occur"):
        derive_demand(_scenario({"cities": {9: {2020: {"population": 1, "jobs": 1},
                                                2040: {"population": 1, "jobs": 1}}}}), ds)
    with pytest.raises(ConfigError, match=r"needs years \[2040\]"):
        derive_demand(_scenario({"cities": {1: {2020: {"population": 1, "jobs": 1},
                                                2030: {"population": 1, "jobs": 1}}}}), ds)
    csv = tmp_path / "pop.csv"
    csv.write_text("city,year,population,jobs\n1,2020,100,50\n1,2040,-5,50\n")
    sc = scenario_from_dict({"name": "p", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2040],
                             "demand": {"people": {"table": str(csv)}}})
    with pytest.raises(ConfigError, match=r"column 'population', row 3: \"-5\" is not a non-negative number"):
        derive_demand(sc, ds)
    csv.write_text("city,year,pop\n1,2020,100\n")
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['population'\]"):
        derive_demand(sc, ds)
    with pytest.raises(LanduseError, match="remove demand.by_city"):
        scenario_from_dict({"name": "p", "layers": {"landuse": "lu.tif"}, "periods": [2020, 2040],
                            "demand": {"people": {"table": "x.csv"},
                                       "by_city": {1: {"residential": {2040: 1.0}}}}})


def test_a_run_plans_the_derived_hectares(tmp_path, tiny_layers) -> None:
    (tmp_path / "pop.csv").write_text("city,year,population,jobs\n1,2020,1000,400\n1,2025,1400,500\n"
                                      "2,2020,0,0\n2,2025,0,0\n")
    d = scenario_dict(tiny_layers, tmp_path, name="people")
    d["demand"] = {"people": {"table": "pop.csv", "persons_per_ha": 100.0, "industrial_jobs_per_ha": 50.0,
                              "commercial_jobs_per_ha": 100.0, "industrial_job_share": 0.5}}
    d["policy"] = {"coordination": "city"}  # each city meets its own derived demand
    cfg = tmp_path / "people.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    res = run_scenario(load_scenario(cfg), out=tmp_path / "out")
    a = res.allocations[0]
    got = a.targets.groupby("type").hectares.sum()
    # +400 persons at 100 per ha = 4 ha; +50 industrial jobs at 50 per ha = 1 ha; +50 commercial at 100 = 0.5 ha
    # (the tiny region's cells are 1 ha: demand rows ask for whole cells)
    assert got["residential"] == pytest.approx(4.0) and got["industrial"] == pytest.approx(1.0)
    assert set(a.targets.city) == {1}
    assert (tmp_path / "out" / "demand_people.csv").exists()
    assert res.report.data["extra"]["demand_from_people"]
