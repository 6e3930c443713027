"""Scenario config: a valid file, and invalid ones each with its message and exit code 2."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import scenario_dict
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.config import load_scenario, scenario_from_dict
from landuse.core.errors import ConfigError

runner = CliRunner()


def test_valid_config_loads_with_defaults(tiny_config: Path) -> None:
    sc = load_scenario(tiny_config)
    assert sc.name == "tiny"
    assert sc.periods == [2020, 2025]
    assert sc.period_pairs == [(2020, 2025)]
    assert sc.config.policy.greenbelt.mode == "none"
    assert sc.config.growth.neighbourhood == 3
    assert sc.layer_paths()["landuse"] == (tiny_config.parent / "landuse.tif").resolve()
    assert sc.classes.code_of("residential") == 1
    # water is never a source by default; urban types never convert into each other by default
    conv = sc.conversion_codes()
    assert sc.classes.codes_with_role("water")[0] not in conv["residential"]
    assert sc.classes.code_of("industrial") not in conv["residential"]
    assert sc.config.demand.cluster("residential", 2025) == 5.0


def test_valid_config_via_cli(tiny_config: Path) -> None:
    res = runner.invoke(app, ["validate", str(tiny_config)])
    assert res.exit_code == 0, res.output
    assert "is valid" in res.output and "6 x 8 cells of 100 m" in res.output


def _mutate(d: dict, path: str, value) -> dict:
    d = copy.deepcopy(d)
    keys = path.split(".")
    cur = d
    for k in keys[:-1]:
        cur = cur.setdefault(k, {})
    if value is _DELETE:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = value
    return d


_DELETE = object()

INVALID = [
    ("policy.greenbelt.strength", 1.5, "policy.greenbelt.strength: must be within [0, 1], got 1.5"),
    ("policy.greenbelt.colour", "green", "policy.greenbelt.colour: unknown key; valid keys here are: mode, strength"),
    ("nmae", "x", "nmae: unknown key; valid keys here are: name, description, layers"),
    ("layers.landuse_typo", "x.tif", "layers.landuse_typo: unknown key; valid keys here are: landuse, cities"),
    ("growth.neighbourhood", 4, "growth.neighbourhood: must be one of 3, 5 or 7, got 4"),
    ("growth.runs", 0, "growth.runs: must be within [1, 10000], got 0"),
    ("policy.coordination", "county", "policy.coordination: must be one of 'cluster' or 'city', got 'county'"),
    ("periods", [2020, 2020], "periods must be strictly increasing years"),
    ("periods", [2020], "periods: list should have at least 2 items"),
    ("demand.residential", {2030: 5}, "demand.residential: years [2030] are not period end years [2025]"),
    ("policy.open_space_quota", {"share": -0.1}, "policy.open_space_quota.share: must be within [0, 1], got -0.1"),
    ("policy.jobs_housing", {"min": 2, "max": 1}, "min (2) must not exceed max (1)"),
    ("name", _DELETE, "name: required key is missing"),
    ("growth.conversion", {"residential": ["farmland", "orchard"]}, "'orchard' is neither a role"),
    ("classes", [{"code": 1, "name": "a", "colour": "#ff0000", "role": "farmland"}], "no urban class"),
    ("classes", [{"code": 1, "name": "a", "colour": "#ff0000", "role": "urban"}], "role urban needs a type"),
    ("classes", "corinne", "unknown preset 'corinne'"),
    ("layers.slope", "missing.tif", "layers.slope: file not found"),
    ("allocation.solver", "gurobi", "allocation.solver: must be one of 'cbc' or 'highs', got 'gurobi'"),
]


@pytest.mark.parametrize(("path", "value", "message"), INVALID, ids=[i[0] + "-" + str(n) for n, i in enumerate(INVALID)])
def test_invalid_config_message_and_exit_code(tmp_path: Path, tiny_layers, path, value, message) -> None:
    d = _mutate(scenario_dict(tiny_layers, tmp_path), path, value)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_scenario(cfg)
    assert any(message in p for p in info.value.problems), info.value.problems
    res = runner.invoke(app, ["validate", str(cfg)])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output
    assert str(cfg) in res.output  # names the file


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("name: x\nlayers: {landuse: a.tif\nperiods: [2020, 2025]\n")
    res = runner.invoke(app, ["validate", str(cfg)])
    assert res.exit_code == 2
    assert "not valid YAML at line" in res.output


def test_missing_config_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2
    assert "scenario file not found" in res.output and str(tmp_path / "nope.yaml") in res.output


def test_missing_layer_names_resolved_path(tmp_path: Path, tiny_layers) -> None:
    d = scenario_dict(tiny_layers, tmp_path)
    d["layers"]["greenbelt"] = "sub/../gb.tif"
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError) as info:
        load_scenario(cfg)
    assert str((tmp_path / "gb.tif").resolve()) in str(info.value)


def test_several_problems_are_all_reported(tmp_path: Path, tiny_layers) -> None:
    d = scenario_dict(tiny_layers, tmp_path)
    d["policy"] = {"greenbelt": {"strength": 2}, "tod": {"share": 3}}
    d["growth"] = {"seed": -1}
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(d)
    assert len(info.value.problems) == 3


def test_per_city_demand_sums_to_cluster() -> None:
    sc = scenario_from_dict(
        {
            "name": "c",
            "layers": {"landuse": "x.tif"},
            "periods": [2020, 2025, 2030],
            "demand": {"by_city": {1: {"residential": {2025: 10, 2030: 5}}, 2: {"residential": {2025: 3}}}},
        }
    )
    assert sc.config.demand.cluster("residential", 2025) == 13
    assert sc.config.demand.cluster("residential", 2030) == 5
    assert sc.period_pairs == [(2020, 2025), (2025, 2030)]


def test_outputs_switches_and_the_comma_list(tmp_path: Path, tiny_layers) -> None:
    from landuse.core.config_stages import OUTPUT_NAMES, OutputsConfig

    sc = scenario_from_dict(scenario_dict(tiny_layers, tmp_path, outputs={"report": False, "boundary": False}),
                            base_dir=tmp_path)
    o = sc.config.outputs
    # figures and html are parts of the report: off with it
    assert o.asked() == ["maps", "expected", "probability", "allocation", "coordination"]
    o.ask("all")
    assert o.asked() == list(OUTPUT_NAMES)
    o.ask(" maps , boundary ")
    assert o.asked() == ["maps", "boundary"]
    o.ask(["figures"])
    assert o.asked() == ["report", "figures"]
    for bad, word in (("maps,ugb", "'ugb'"), (",", "at least one")):
        with pytest.raises(ValueError, match=word):
            OutputsConfig().ask(bad)
    with pytest.raises(ConfigError, match="outputs.*maps"):
        scenario_from_dict(scenario_dict(tiny_layers, tmp_path, outputs={"maps": "sometimes"}), base_dir=tmp_path)
