"""Reports (landuse.report: data, figures, render, document) and the `landuse evaluate` command."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from landuse.cli.app import app
from landuse.core.classes import default_scheme
from landuse.core.config import scenario_from_dict
from landuse.core.landscape import like, new_landscape
from landuse.evaluation.boundary import delineate_ugb
from landuse.io.rasters import write_geotiff
from landuse.report.data import build_report
from landuse.report.document import write_report

S = default_scheme()
RES, IND, COM = S.code_of("residential"), S.code_of("industrial"), S.code_of("commercial")
FARM = S.codes_with_role("farmland")[0]
FOREST = S.codes_with_role("open_space")[0]
WATER = S.codes_with_role("water")[0]
CRS = "EPSG:32651"
TRANSFORM = Affine(100.0, 0.0, 300_000.0, 0.0, -100.0, 3_500_000.0)
PNG = b"\x89PNG\r\n\x1a\n"


def _start() -> np.ndarray:
    lu = np.full((20, 24), FARM, dtype=np.uint8)
    lu[:, 16:] = FOREST  # city 2 is mostly forest
    lu[5:10, 5:10] = RES
    lu[12:14, 3:6] = IND
    lu[18:, 20:] = WATER
    lu[0, 0] = S.nodata
    return lu


def _cities() -> np.ndarray:
    c = np.ones((20, 24), dtype=np.int32)
    c[:, 12:] = 2
    return c


def _red() -> np.ndarray:
    r = np.zeros((20, 24), dtype=bool)
    r[0:3, 18:24] = True
    return r


def _grown(lu: np.ndarray, ring: int) -> np.ndarray:
    out = lu.copy()
    sl = (slice(5 - ring, 10 + ring), slice(5 - ring, 10 + ring))
    block = out[sl]
    block[block == FARM] = COM if ring > 1 else RES
    return out


@pytest.fixture
def landscape():
    return new_landscape({"landuse": _start(), "cities": _cities(), "red_line": _red()}, crs=CRS,
                         transform=TRANSFORM, attrs={"inputs": {"landuse": "/data/landuse.tif"}})


@pytest.fixture
def scenario():
    return scenario_from_dict({
        "name": "report_test", "layers": {"landuse": "landuse.tif"}, "periods": [2020, 2030, 2040],
        "policy": {"open_space_quota": {"share": 0.3, "unit": "city"}, "farmland_loss_cap": {"hectares": 500}},
        "growth": {"seed": 1234, "runs": 3},
    })


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str]] = []
        self.links: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        elif tag in ("a", "link") and "href" in a:
            self.links.append(a["href"])
        elif tag == "table":
            self.tables += 1


def _build(scenario, landscape, **kw):
    lu = _start()
    y2030, y2040 = _grown(lu, 1), _grown(lu, 3)
    yy, xx = np.mgrid[0:20, 0:24]
    prob = np.exp(-((yy - 7.0) ** 2 + (xx - 7.0) ** 2) / 30.0).astype(np.float32)
    ugb = delineate_ugb(prob, landscape, threshold=0.3, closing_radius_m=200, min_area_ha=2)
    return build_report(scenario=scenario, landscape=landscape,
                        landuse_by_year={2030: y2030, 2040: like(landscape, y2040, "landuse")},
                        probability=kw.pop("probability", prob), ugb=ugb,
                        allocation=pd.DataFrame({"city": [1, 1], "type": ["residential", "commercial"],
                                                 "hectares": [16.0, 48.0]}),
                        observed={2040: _grown(lu, 2)}, **kw)


def test_html_report_parses_and_every_figure_exists(tmp_path, scenario, landscape) -> None:
    report = _build(scenario, landscape)
    paths = write_report(tmp_path, report)
    names = {p.name for p in paths}
    assert {"report.json", "report.md", "report.html"} <= names
    parser = _Refs()
    parser.feed((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert parser.tables >= 4
    shown = set()
    for img in parser.imgs:
        src = img["src"]
        if src.startswith("data:"):
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
        else:
            assert (tmp_path / src).is_file(), src
        shown.add(img.get("data-name"))
    for href in parser.links:
        assert href.startswith(("http", "#", "data:")) or (tmp_path / href).exists(), href
    assert {"landuse.png", "change.png", "probability.png", "growth_boundary.png", "quota.png",
            "farmland_loss.png", "expansion.png"} <= shown
    # markdown references PNG files that exist
    md = (tmp_path / "report.md").read_text()
    refs = [line.split("](", 1)[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(refs) == len(shown)
    for ref in refs:
        assert (tmp_path / ref).read_bytes().startswith(PNG)
    assert not list(tmp_path.rglob(".*part*"))


def test_report_json_states_scenario_seed_inputs(tmp_path, scenario, landscape) -> None:
    report = _build(scenario, landscape, seed=99)
    write_report(tmp_path, report, figures=False, html=False)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "figures").exists()
    data = json.loads((tmp_path / "report.json").read_text())
    meta = data["meta"]
    assert meta["scenario"] == "report_test" and meta["seed"] == 99 and meta["runs"] == 3
    assert meta["inputs"] == {"landuse": "/data/landuse.tif"}
    assert data["years"] == [2020, 2030, 2040]
    assert set(data["quotas"]) == {"2020", "2030", "2040"}
    q = data["quotas"]["2040"]
    assert [u["unit"] for u in q["units"]] == ["city 1", "city 2", "cluster"]
    assert q["units"][0]["quota_met"] is False  # city 1 is farmland and town, no open space
    assert data["passed"] is False and data["failures"]
    assert set(data["expansion"]) == {"2020-2030", "2030-2040", "2020-2040"}
    assert data["growth_boundary"]["red_line_cells_inside"] == 0
    assert data["landscape_metrics"]["2040"]["urban"]["number_of_patches"] == 1  # the town absorbs the works
    assert data["landscape_metrics"]["2020"]["urban"]["number_of_patches"] == 2
    # observed: 56 cells became commercial (9x9 block minus 25 residential); simulated: 93 (11x11 - 25 - 3 industrial)
    assert data["validation"]["2040"]["change_components"]["hits"] == 56
    assert data["validation"]["2040"]["figure_of_merit"] == pytest.approx(56 / 93)
    assert data["allocation"][1]["hectares"] == 48.0
    assert data["probability"]["urban"]["cells_at_least_0_5"] > 0
    md = (tmp_path / "report.md").read_text()
    assert "report_test" in md and "seed 99" in md and "/data/landuse.tif" in md


@pytest.mark.parametrize("strip", [1, 7, 24, 25, 1 << 22])
def test_probability_summary_is_counted_strip_by_strip(scenario, landscape, monkeypatch, strip) -> None:
    """Mean (summed in float64) and cells at 0.5 or more of each probability raster, inside the study area and
    where finite: the whole raster's figures for any strip height (``landuse.core.strips.STRIP_CELLS`` cells a strip)."""
    import landuse.io.rasters

    monkeypatch.setattr(landuse.core.strips, "STRIP_CELLS", strip)
    yy, xx = np.mgrid[0:20, 0:24]
    prob = np.exp(-((yy - 7.0) ** 2 + (xx - 7.0) ** 2) / 30.0).astype(np.float32)
    prob[3, 4:9] = np.nan
    summary = _build(scenario, landscape, probability={"urban": prob}).data["probability"]["urban"]
    inside = prob[landscape["study_area"].values & np.isfinite(prob)]
    assert summary["cells_at_least_0_5"] == int((inside >= 0.5).sum()) > 0
    assert summary["mean"] == pytest.approx(float(inside.astype(np.float64).mean()), rel=1e-12)


def test_report_seed_defaults_to_scenario(scenario, landscape) -> None:
    report = _build(scenario, landscape)
    assert report.data["meta"]["seed"] == 1234
    assert not report.passed


def test_report_without_optional_parts(tmp_path, scenario, landscape) -> None:
    report = build_report(scenario=scenario, landscape=landscape, landuse_by_year={2040: _start()})
    paths = write_report(tmp_path, report)
    names = {p.name for p in paths}
    assert "probability.png" not in names and "growth_boundary.png" not in names
    assert {"landuse.png", "quota.png", "farmland_loss.png"} <= names
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["growth_boundary"] is None and data["validation"] is None
    assert data["expansion"]["2020-2040"]["patches"] == 0


# --------------------------------------------------------------------------- landuse evaluate


def _write(path: Path, array: np.ndarray, *, transform: Affine = TRANSFORM, classes=None) -> Path:
    ds = new_landscape({"landuse": np.zeros(array.shape, dtype=np.uint8)}, crs=CRS, transform=transform)
    return write_geotiff(like(ds, array, path.stem), path, classes=classes)


@pytest.fixture
def cli_scenario(tmp_path) -> Path:
    _write(tmp_path / "landuse.tif", _start(), classes=S)
    _write(tmp_path / "cities.tif", _cities())
    _write(tmp_path / "red_line.tif", _red().astype(np.uint8))
    cfg = tmp_path / "scenario.yaml"
    cfg.write_text(
        "name: cli_eval\n"
        "layers:\n  landuse: landuse.tif\n  cities: cities.tif\n  red_line: red_line.tif\n"
        "periods: [2020, 2030]\n"
        "policy:\n  open_space_quota:\n    share: 0.15\n    unit: cluster\n"
    )
    return cfg


def test_evaluate_exit_0_when_quotas_hold(tmp_path, cli_scenario) -> None:
    plan = _write(tmp_path / "plan.tif", _grown(_start(), 1), classes=S)
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(app, ["evaluate", str(plan), "--config", str(cli_scenario), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "cluster" in res.output and "all checks pass" in res.output
    data = json.loads(out.read_text())
    assert data["passed"] is True and data["quota"]["units"][-1]["quota_met"] is True
    assert data["year"] == 2030 and data["checks_summary"]["failed"] == 0
    assert {r["check"] for r in data["checks"]} == {"red_line", "open_space_quota"}


def test_evaluate_exit_1_when_a_quota_fails(tmp_path, cli_scenario) -> None:
    lu = _start()
    lu[:, 16:][lu[:, 16:] == FOREST] = RES  # build over the forest
    lu[0:3, 18:24] = FOREST  # keep the red line intact
    plan = _write(tmp_path / "sprawl.tif", lu, classes=S)
    res = CliRunner().invoke(app, ["evaluate", str(plan), "--config", str(cli_scenario)])
    assert res.exit_code == 1, res.output
    assert "FAIL: open_space_quota 2030 cluster" in res.output and "1 FAILED" in res.output


def test_evaluate_exit_1_on_red_line_conversion(tmp_path, cli_scenario) -> None:
    lu = _start()
    lu[1, 20] = IND
    plan = _write(tmp_path / "redline.tif", lu, classes=S)
    res = CliRunner().invoke(app, ["evaluate", str(plan), "--config", str(cli_scenario)])
    assert res.exit_code == 1
    assert "row 1 col 20" in res.output


def test_evaluate_takes_the_year_from_the_file_name_or_the_option(tmp_path, cli_scenario) -> None:
    cfg = cli_scenario.read_text().replace("periods: [2020, 2030]", "periods: [2020, 2030, 2040]")
    cfg += "  farmland_loss_cap:\n    hectares: 30\n"
    cli_scenario.write_text(cfg)
    grown = _grown(_start(), 2)  # 56 ha of farmland built on since 2020
    named = _write(tmp_path / "landuse_2030.tif", grown, classes=S)
    out = tmp_path / "e.json"
    res = CliRunner().invoke(app, ["evaluate", str(named), "-c", str(cli_scenario), "--json", str(out)])
    assert res.exit_code == 1 and "FAIL: farmland_loss_cap 2030 cluster" in res.output
    assert json.loads(out.read_text())["year"] == 2030
    # as the 2040 map it spans two periods: 56 ha against 2 x 30 ha, a necessary condition only
    res = CliRunner().invoke(app, ["evaluate", str(named), "-c", str(cli_scenario), "--year", "2040"])
    assert res.exit_code == 0, res.output
    assert "spans 2 periods" in res.output
    res = CliRunner().invoke(app, ["evaluate", str(named), "-c", str(cli_scenario), "--year", "2035"])
    assert res.exit_code == 2 and "2035" in res.output


def test_evaluate_exit_2_on_bad_input(tmp_path, cli_scenario) -> None:
    runner = CliRunner()
    shifted = _write(tmp_path / "shifted.tif", _start(), classes=S,
                     transform=Affine(100.0, 0.0, 300_050.0, 0.0, -100.0, 3_500_000.0))
    res = runner.invoke(app, ["evaluate", str(shifted), "--config", str(cli_scenario)])
    assert res.exit_code == 2 and "origin" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path / "missing.tif"), "--config", str(cli_scenario)])
    assert res.exit_code == 2 and "not found" in res.output
    bad_codes = _start()
    bad_codes[3, 3] = 77
    odd = _write(tmp_path / "odd.tif", bad_codes)
    res = runner.invoke(app, ["evaluate", str(odd), "--config", str(cli_scenario)])
    assert res.exit_code == 2 and "77" in res.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nlayers: {landuse: landuse.tif}\nperiods: [2020, 2030]\nbogus: 1\n")
    res = runner.invoke(app, ["evaluate", str(tmp_path / "landuse.tif"), "--config", str(broken)])
    assert res.exit_code == 2 and "bogus" in res.output


def test_evaluate_start_map_passes_and_json_is_strict(tmp_path, cli_scenario) -> None:
    out = tmp_path / "start.json"
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "landuse.tif"), "-c", str(cli_scenario),
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    with rasterio.open(tmp_path / "landuse.tif") as src:  # the input is untouched
        np.testing.assert_array_equal(src.read(1), _start())


# --------------------------------------------------------------------------- policy checks, duals, fragmentation

_EXTRA = {
    "binding_policies": {"2030": [{"constraint": "farmland_cap", "cost": 2.5, "unit": "per ha the limit is lowered",
                                   "meaning": "increase in the objective if the farmland-loss cap were 1 ha lower"}]},
    "fragmentation": {
        "2030": {"differences": {"objective": 3.0, "farmland_lost_ha": 12.0, "open_space_lost_ha": 1.5,
                                 "mean_distance_new_m": 450.0},
                 "coordinated": {"objective": 10.0, "farmland_lost_ha": 40.0, "open_space_lost_ha": 2.0,
                                 "mean_distance_new_m": 300.0},
                 "fragmented": {"objective": 13.0, "farmland_lost_ha": 52.0, "open_space_lost_ha": 3.5,
                                "mean_distance_new_m": 750.0}},
        "2040": {"differences": {"objective": 1.0, "farmland_lost_ha": 8.0, "open_space_lost_ha": 0.5,
                                 "mean_distance_new_m": 150.0},
                 "coordinated": {"objective": 9.0, "farmland_lost_ha": 30.0, "open_space_lost_ha": 1.0,
                                 "mean_distance_new_m": 350.0},
                 "fragmented": {"objective": 10.0, "farmland_lost_ha": 38.0, "open_space_lost_ha": 1.5,
                                "mean_distance_new_m": 500.0}},
    },
}


def test_report_checks_every_period_and_shows_failures_first(tmp_path, landscape) -> None:
    # cap 50 ha per period: 24 ha lost in 2020-2030, 69 ha in 2030-2040 (93 < 2 x 50, yet the second period fails)
    sc = scenario_from_dict({"name": "per_period", "layers": {"landuse": "landuse.tif"}, "periods": [2020, 2030, 2040],
                             "policy": {"farmland_loss_cap": {"hectares": 50}}})
    lu = _start()
    report = build_report(scenario=sc, landscape=landscape,
                          landuse_by_year={2030: _grown(lu, 1), 2040: _grown(lu, 3)}, extra=_EXTRA)
    write_report(tmp_path, report, figures=False)
    data = json.loads((tmp_path / "report.json").read_text())
    cap = [(r["period"], r["achieved"], r["passed"]) for r in data["checks"] if r["check"] == "farmland_loss_cap"]
    assert cap == [(2030, 24.0, True), (2040, 69.0, False)]
    assert data["passed"] is False and data["checks_summary"]["failed"] == 1
    assert len(data["failures"]) == 1 and data["failures"][0].startswith("FAIL: farmland_loss_cap 2040 cluster")
    md = (tmp_path / "report.md").read_text()
    table = md.split("## Policy checks", 1)[1].split("## ", 1)[0]
    first_row = [ln for ln in table.splitlines() if ln.startswith("| ")][1]
    assert first_row.startswith("| FAIL | farmland_loss_cap | 2040 | cluster | 50.0 | - | 69.0 | -19.0 | ha |")
    # shadow prices, with the farmland equivalent at the default farmland weight (1 per ha)
    duals = md.split("## Shadow prices of binding policies", 1)[1].split("## ", 1)[0]
    assert "| 2030 | farmland_cap | 2.500 | per ha the limit is lowered | 2.5 |" in duals
    # fragmentation in hectares and km, per period and in total
    frag = md.split("## Cost of fragmentation", 1)[1].split("## ", 1)[0]
    assert "| 2030 | 40.0 | 52.0 | 12.0 | 2.0 | 3.5 | 1.5 | 0.30 | 0.75 | 0.45 | 3.00 |" in frag
    assert "| total |  |  | 20.0 |  |  | 2.0 |  |  | 0.30 (mean) | 4.00 |" in frag
    html = (tmp_path / "report.html").read_text()
    assert html.count('<tr class="fail">') == 1 and "Shadow prices of binding policies" in html
    # the landscape table reports SHAPE_AM, not the compactness index that rounds to 0.00
    assert "SHAPE_AM" in md and "compactness" not in md


def test_report_passes_the_shortfall_and_probabilities_to_the_checks(landscape) -> None:
    sc = scenario_from_dict({"name": "mc", "layers": {"landuse": "landuse.tif"}, "periods": [2020, 2030]})
    p = np.zeros(_start().shape, dtype=np.float32)
    p[1, 20] = 0.5  # a red-line cell converted in half of the runs
    sf = pd.DataFrame({"period": [2030], "zone": [1], "type": ["residential"], "target": [4], "converted": [4],
                       "shortfall": [0]})
    report = build_report(scenario=sc, landscape=landscape, landuse_by_year={2030: _grown(_start(), 1)},
                          shortfall=sf, probability_by_period={2030: {"industrial": p}})
    status = {r["check"]: r["passed"] for r in report.data["checks"]}
    assert status == {"red_line": True, "red_line_probability": False, "demand_met": True}
    assert not report.passed
