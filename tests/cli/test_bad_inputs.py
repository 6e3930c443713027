"""Bad inputs through the real command line: one clear line, exit 2, nothing changed.

A table of cases, each a bad scenario file, layer, option or run folder thrown at
``landuse`` in a subprocess, as a new user would. Every case asserts

* the exit code (2 for bad input, 1 only for a check that ran and failed);
* no ``Traceback`` and at most a few lines on stderr;
* that the message names the offending file, key, band or option (``says``);
* that the case's own inputs, the shared region and an earlier run's output folder
  are byte-identical afterwards.

The region is a 120 x 120 sample generated once per module; each case writes its
inputs into its own folder (scenario files point at the shared layers by absolute
path and at the earlier run's folder as ``outputs.folder``). Cases run two at a time;
``LANDUSE_CASE_TIMES=1 pytest -s`` prints the slowest.
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from landuse.sample.generate import generate_sample

# --------------------------------------------------------------------------- the region and an earlier run


def _cli(*args: str | os.PathLike, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "landuse", *map(str, args)], capture_output=True, text=True,
                          env=os.environ, cwd=cwd, timeout=timeout)


def _digest(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` (and the set of folders)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


@dataclass
class Region:
    root: Path
    base: Path  # the sample region's layers and sample.yaml
    other: Path  # a sample of another size (another region)
    out: Path  # an earlier run of the sample scenario
    out_other: Path  # an earlier run on the other region
    config: dict  # sample.yaml with absolute layer paths, outputs.folder = out

    def layer(self, name: str) -> tuple[np.ndarray, dict]:
        with rasterio.open(self.base / f"{name}.tif") as src:
            return src.read(1), src.profile.copy()


def _absolute(d: dict, base: Path) -> dict:
    d = copy.deepcopy(d)
    d["layers"] = {k: str(base / v) if isinstance(v, str) else {y: str(base / p) for y, p in v.items()}
                   for k, v in d["layers"].items()}
    return d


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Region:
    root = tmp_path_factory.mktemp("bad_inputs")
    generate_sample(root / "region", size=120, seed=42)
    generate_sample(root / "other", size=100, seed=3)
    runs = {}
    for name in ("region", "other"):
        d = _absolute(yaml.safe_load((root / name / "sample.yaml").read_text()), root / name)
        d["growth"]["runs"] = 2
        d["outputs"] = {"folder": str(root / f"out_{name}"), "figures": False}
        (root / f"{name}.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
        r = _cli("run", root / f"{name}.yaml", "-q")
        assert r.returncode == 0, r.stderr
        runs[name] = d
    return Region(root, root / "region", root / "other", root / "out_region", root / "out_other", runs["region"])


# --------------------------------------------------------------------------- building a case


@dataclass
class Ctx:
    """What a case builds its inputs with: its own folder and the shared region."""

    region: Region
    dir: Path

    def scenario(self, change: Callable[[dict], object] | None = None, *, name: str = "scenario.yaml") -> Path:
        """The sample scenario, changed by ``change(d)`` in place, written into the case folder."""
        d = copy.deepcopy(self.region.config)
        if change is not None:
            change(d)
        p = self.dir / name
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        return p

    def with_layer(self, layer: str, path: Path, change: Callable[[dict], object] | None = None) -> Path:
        """The sample scenario with ``layers.<layer>`` replaced by ``path`` (history years as ``history.<year>``)."""

        def set_layer(d: dict) -> None:
            if layer.startswith("history."):
                d["layers"]["history"] = {int(layer[8:]): str(path)}
            else:
                d["layers"][layer] = str(path)
            if change is not None:
                change(d)

        return self.scenario(set_layer)

    def raster(self, name: str, array: np.ndarray, *, like: str = "landuse_2020", **profile) -> Path:
        """Write ``array`` (2-D, or 3-D for several bands) as a GeoTIFF on the region's grid."""
        _, prof = self.region.layer(like)
        arr = np.asarray(array)
        if arr.ndim == 2:
            arr = arr[None]
        prof.update(driver="GTiff", count=arr.shape[0], dtype=arr.dtype.name, height=arr.shape[1],
                    width=arr.shape[2], nodata=None)
        prof.pop("blockxsize", None), prof.pop("blockysize", None), prof.pop("tiled", None)
        prof.update(profile)
        p = self.dir / name
        with rasterio.open(p, "w", **prof) as dst:
            dst.write(arr)
        return p

    def layer(self, name: str) -> np.ndarray:
        return self.region.layer(name)[0]

    def file(self, name: str, data: bytes | str) -> Path:
        p = self.dir / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p


@dataclass
class Case:
    id: str
    build: Callable[[Ctx], list]
    code: int
    says: tuple[str, ...]


CASES: list[Case] = []


def case(id: str, *says: str, code: int = 2):
    """Register a case: ``build(ctx)`` returns the command line; ``says`` must all appear on stderr.

    In ``says``, ``{dir}`` is the case folder and ``{base}`` the region's folder.
    """

    def deco(build: Callable[[Ctx], list]) -> Callable[[Ctx], list]:
        CASES.append(Case(id, build, code, says))
        return build

    return deco


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str
    before: dict = field(repr=False)
    after: dict = field(repr=False)
    shared_changed: list[str] = field(default_factory=list)
    seconds: float = 0.0


# =========================================================================== the scenario file


@case("config-missing", "not found", "nope.yaml")
def _(c):
    return ["validate", c.dir / "nope.yaml"]


@case("config-is-a-folder", "is a folder", "{dir}")
def _(c):
    return ["validate", c.dir]


@case("config-binary", "not a text", "scenario.yaml")
def _(c):
    return ["validate", c.file("scenario.yaml", bytes(range(256)) * 4)]


@case("config-binary-run", "not a text", "scenario.yaml")
def _(c):
    return ["run", c.file("scenario.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")]


@case("config-empty", "empty", "scenario.yaml")
def _(c):
    return ["validate", c.file("scenario.yaml", "")]


@case("config-bad-yaml", "not valid YAML", "line 3")
def _(c):
    return ["validate", c.file("scenario.yaml", "name: x\nlayers: [a\n")]


@case("config-a-list", "mapping", "scenario.yaml")
def _(c):
    return ["validate", c.file("scenario.yaml", "- a\n- b\n")]


@case("config-duplicate-key", "duplicate key", "periods", "line")
def _(c):
    text = yaml.safe_dump(c.region.config, sort_keys=False)
    return ["validate", c.file("scenario.yaml", text + "periods: [2020, 2030]\n")]


@case("config-duplicate-nested-key", "duplicate key", "strength")
def _(c):
    text = yaml.safe_dump(c.region.config, sort_keys=False).replace("strength: 0.6", "strength: 0.6\n    strength: 0.1")
    return ["validate", c.file("scenario.yaml", text)]


@case("config-unknown-key", "polcy", "unknown key", "valid keys")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(polcy={}))]


@case("config-missing-name", "name: required key is missing")
def _(c):
    return ["validate", c.scenario(lambda d: d.pop("name"))]


@case("config-bad-name", "name:", "does not match")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(name="my scenario!"))]


@case("config-periods-decreasing", "periods must be strictly increasing")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(periods=[2020, 2035, 2030]))]


@case("config-one-period", "periods:")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(periods=[2020]))]


@case("config-demand-year", "demand.residential", "not period end years")
def _(c):
    return ["validate", c.scenario(lambda d: d["demand"]["residential"].update({2027: 5}))]


@case("config-demand-negative", "demand.industrial.2025", "at least 0")
def _(c):
    return ["validate", c.scenario(lambda d: d["demand"]["industrial"].update({2025: -5}))]


@case("config-demand-text", "demand.commercial.2025")
def _(c):
    return ["validate", c.scenario(lambda d: d["demand"]["commercial"].update({2025: "lots"}))]


@case("config-greenbelt-strength", "policy.greenbelt.strength", "within [0, 1]")
def _(c):
    return ["validate", c.scenario(lambda d: d["policy"]["greenbelt"].update(strength=1.5))]


@case("config-greenbelt-mode", "policy.greenbelt.mode", "must be one of")
def _(c):
    return ["validate", c.scenario(lambda d: d["policy"]["greenbelt"].update(mode="medium"))]


@case("config-tod-share", "policy.tod.share")
def _(c):
    return ["validate", c.scenario(lambda d: d["policy"].update(tod={"share": 2}))]


@case("config-jobs-housing", "policy.jobs_housing", "must not exceed")
def _(c):
    return ["validate", c.scenario(lambda d: d["policy"].update(jobs_housing={"min": 3, "max": 1}))]


@case("config-city-limit-unknown-city", "policy.city_growth_limits.99", "cities")
def _(c):
    return ["validate", c.scenario(lambda d: d["policy"].update(city_growth_limits={99: 10}))]


@case("config-city-limit-no-cities-layer", "policy.city_growth_limits", "layers.cities")
def _(c):
    def change(d):
        d["policy"]["city_growth_limits"] = {1: 10}
        d["layers"].pop("cities")

    return ["validate", c.scenario(change)]


@case("config-by-city-unknown", "demand.by_city.42")
def _(c):
    return ["validate", c.scenario(lambda d: d["demand"].update(by_city={42: {"residential": {2025: 5}}}))]


@case("config-demand-too-large", "exceeds the developable land", "lower demand")
def _(c):
    return ["validate", c.scenario(lambda d: d["demand"]["residential"].update({2025: 1e6}))]


@case("config-quota-unit", "policy.open_space_quota.unit")
def _(c):
    return ["validate", c.scenario(lambda d: d["policy"].update(open_space_quota={"share": 0.2, "unit": "county"}))]


@case("config-landuse-key-missing", "layers.landuse: required key is missing")
def _(c):
    return ["validate", c.scenario(lambda d: d["layers"].pop("landuse"))]


@case("config-layer-file-missing", "layers.slope", "file not found", "no_slope.tif")
def _(c):
    return ["validate", c.scenario(lambda d: d["layers"].update(slope=str(c.dir / "no_slope.tif")))]


@case("config-layer-unknown", "layers.ndvi", "unknown key")
def _(c):
    return ["validate", c.scenario(lambda d: d["layers"].update(ndvi="x.tif"))]


@case("config-history-after-start", "layers.history.2030", "before the start year 2020")
def _(c):
    return ["validate", c.scenario(lambda d: d["layers"].update(history={2030: d["layers"]["history"][2010]}))]


@case("config-classes-no-urban-type", "classes")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(classes=[{"code": 1, "name": "a", "colour": "#000000",
                                                                 "role": "farmland"}]))]


@case("config-class-colour", "classes.0.colour")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(classes=[{"code": 1, "name": "a", "colour": "red",
                                                                 "role": "residential"}]))]


@case("config-conversion-name", "growth.conversion.residential", "'forrest'")
def _(c):
    return ["validate", c.scenario(lambda d: d["growth"].update(conversion={"residential": ["forrest"]}))]


@case("config-driver-name", "growth.suitability.weights.dist_river", "unknown driver")
def _(c):
    return ["validate", c.scenario(lambda d: d["growth"].update(suitability={"weights": {"dist_river": 1}}))]


@case("config-runs-zero", "growth.runs", "within")
def _(c):
    return ["validate", c.scenario(lambda d: d["growth"].update(runs=0))]


@case("config-neighbourhood", "growth.neighbourhood")
def _(c):
    return ["validate", c.scenario(lambda d: d["growth"].update(neighbourhood=4))]


@case("config-method-raster-no-layers", "growth.suitability.method", "layers.suitability")
def _(c):
    return ["validate", c.scenario(lambda d: d["growth"].update(suitability={"method": "raster"}))]


@case("config-method-trained-no-history", "growth.suitability.method", "layers.history")
def _(c):
    def change(d):
        d["growth"]["suitability"] = {"method": "trained"}
        d["layers"].pop("history")

    return ["validate", c.scenario(change)]


@case("config-trained-model", "growth.suitability.model", "must be one of")
def _(c):
    return ["validate", c.scenario(lambda d: d["growth"].update(suitability={"method": "trained", "model": "svm"}))]


@case("config-tod-empty-stations", "stations", "no station cells", "{dir}")
def _(c):
    stations = c.raster("stations.tif", np.zeros_like(c.layer("stations")), like="stations")
    return ["validate", c.with_layer("stations", stations, lambda d: d["policy"].update(tod={"share": 0.3}))]


@case("config-tod-empty-stations-run", "stations", "no station cells")
def _(c):
    stations = c.raster("stations.tif", np.zeros_like(c.layer("stations")), like="stations")
    return ["run", c.with_layer("stations", stations, lambda d: d["policy"].update(tod={"share": 0.3})), "-q"]


@case("config-tod-empty-stations-allocate", "stations", "no station cells")
def _(c):
    stations = c.raster("stations.tif", np.zeros_like(c.layer("stations")), like="stations")
    return ["allocate", c.with_layer("stations", stations, lambda d: d["policy"].update(tod={"share": 0.3})),
            "--out", c.dir / "alloc"]


@case("config-tod-no-stations-layer", "policy.tod", "layers.stations")
def _(c):
    def change(d):
        d["policy"]["tod"] = {"share": 0.3}
        d["layers"].pop("stations")

    return ["validate", c.scenario(change)]


@case("config-output-is-input-folder", "output folder", "input layer")
def _(c):
    return ["run", c.scenario(lambda d: d["outputs"].update(folder=str(c.region.base))), "-q"]


@case("config-calibration-parameter", "calibration.parameters.speed")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(calibration={"parameters": {"speed": [0, 1]}}))]


@case("config-calibration-range", "calibration.parameters", "spontaneous_share", "low <= high")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(calibration={"parameters": {"spontaneous_share": [0.5, 0.1]}}))]


@case("config-calibration-history-year", "calibration.history_year", "1990")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(calibration={"history_year": 1990}))]


@case("config-compute-scheduler", "compute.scheduler", "'nowhere'")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(compute={"scheduler": "nowhere"}))]


@case("config-compute-chunks", "compute.chunks", "within [64")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(compute={"chunks": 10}))]


@case("config-compute-workers", "compute.workers")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(compute={"workers": 0}))]


@case("config-compute-memory", "compute.memory_limit", "'lots'")
def _(c):
    return ["validate", c.scenario(lambda d: d.update(compute={"memory_limit": "lots"}))]


# =========================================================================== layers


def _truncated(c: Ctx, name: str, like: str) -> Path:
    data = (c.region.base / f"{like}.tif").read_bytes()
    return c.file(name, data[: len(data) // 2])


@case("landuse-truncated", "layers.landuse", "landuse.tif", "truncated or corrupt")
def _(c):
    return ["validate", c.with_layer("landuse", _truncated(c, "landuse.tif", "landuse_2020"))]


@case("landuse-truncated-run", "landuse.tif", "truncated or corrupt")
def _(c):
    return ["run", c.with_layer("landuse", _truncated(c, "landuse.tif", "landuse_2020")), "-q"]


@case("slope-truncated", "slope.tif", "truncated or corrupt")
def _(c):
    return ["validate", c.with_layer("slope", _truncated(c, "slope.tif", "slope"))]


@case("layer-empty-file", "layers.roads", "roads.tif")
def _(c):
    return ["validate", c.with_layer("roads", c.file("roads.tif", b""))]


@case("layer-text-file", "layers.rail", "rail.tif", "GeoTIFF")
def _(c):
    return ["validate", c.with_layer("rail", c.file("rail.tif", "not a raster\n"))]


@case("layer-is-a-folder", "layers.centres", "folder")
def _(c):
    (c.dir / "centres.tif").mkdir()
    return ["validate", c.with_layer("centres", c.dir / "centres.tif")]


@case("landuse-no-crs", "layers.landuse", "has no CRS", "gdal_edit.py -a_srs")
def _(c):
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", c.layer("landuse_2020"), crs=None))]


@case("slope-no-crs", "layers.slope", "has no CRS", "gdal_edit.py -a_srs EPSG:32651")
def _(c):
    return ["validate", c.with_layer("slope", c.raster("slope.tif", c.layer("slope"), like="slope", crs=None))]


@case("landuse-geographic", "geographic")
def _(c):
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", c.layer("landuse_2020"), crs="EPSG:4326"))]


@case("cities-other-crs", "layers.cities", "EPSG:32650", "gdalwarp")
def _(c):
    return ["validate", c.with_layer("cities", c.raster("cities.tif", c.layer("cities"), like="cities",
                                                        crs="EPSG:32650"))]


@case("cities-other-shape", "layers.cities", "shape")
def _(c):
    return ["validate", c.with_layer("cities", c.raster("cities.tif", c.layer("cities")[:100], like="cities"))]


@case("slope-other-cell-size", "layers.slope", "cell size")
def _(c):
    _, prof = c.region.layer("slope")
    t = prof["transform"]
    from affine import Affine

    return ["validate", c.with_layer("slope", c.raster("slope.tif", c.layer("slope"), like="slope",
                                                       transform=Affine(30, 0, t.c, 0, -30, t.f)))]


@case("red-line-shifted", "layers.red_line", "origin")
def _(c):
    _, prof = c.region.layer("red_line")
    t = prof["transform"]
    from affine import Affine

    return ["validate", c.with_layer("red_line", c.raster("rl.tif", c.layer("red_line"), like="red_line",
                                                          transform=Affine(t.a, 0, t.c + 500, 0, t.e, t.f)))]


@case("landuse-fractional-float", "layers.landuse", "fractional", "cells")
def _(c):
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", c.layer("landuse_2020").astype(np.float32)
                                                         + np.float32(0.4)))]


@case("landuse-two-bands", "layers.landuse", "2 bands", "gdal_translate -b 1")
def _(c):
    lu = c.layer("landuse_2020")
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", np.stack([lu, lu])))]


@case("slope-two-bands", "layers.slope", "2 bands")
def _(c):
    s = c.layer("slope")
    return ["validate", c.with_layer("slope", c.raster("slope.tif", np.stack([s, s]), like="slope"))]


@case("landuse-uint16-300", "layers.landuse", "300", "cells")
def _(c):
    lu = c.layer("landuse_2020").astype(np.uint16)
    lu[:2, :5] = 300
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", lu))]


@case("landuse-negative", "layers.landuse", "-3")
def _(c):
    lu = c.layer("landuse_2020").astype(np.int16)
    lu[5, 5] = -3
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", lu))]


@case("landuse-unknown-code", "layers.landuse", "77 (6 cells)", "declare them")
def _(c):
    lu = c.layer("landuse_2020")
    lu[:2, :3] = 77
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", lu, nodata=255))]


@case("landuse-unknown-code-run", "77 (6 cells)")
def _(c):
    lu = c.layer("landuse_2020")
    lu[:2, :3] = 77
    return ["run", c.with_layer("landuse", c.raster("landuse.tif", lu, nodata=255)), "-q"]


@case("landuse-all-nodata", "layers.landuse", "no cell with data")
def _(c):
    return ["validate", c.with_layer("landuse", c.raster("landuse.tif", np.full((120, 120), 255, np.uint8),
                                                         nodata=255))]


@case("landuse-all-nodata-run", "no cell with data")
def _(c):
    return ["run", c.with_layer("landuse", c.raster("landuse.tif", np.full((120, 120), 255, np.uint8), nodata=255)),
            "-q"]


@case("history-unknown-code", "layers.history.2010", "66 (1 cells)")
def _(c):
    lu = c.layer("landuse_2010")
    lu[0, 0] = 66
    return ["validate", c.with_layer("history.2010", c.raster("lu2010.tif", lu, nodata=255))]


@case("red-line-everything", "red line", "layers.red_line", "may be developed")
def _(c):
    return ["validate", c.with_layer("red_line", c.raster("rl.tif", np.ones((120, 120), np.uint8), like="red_line"))]


@case("red-line-everything-run", "red line", "layers.red_line")
def _(c):
    return ["run", c.with_layer("red_line", c.raster("rl.tif", np.ones((120, 120), np.uint8), like="red_line")),
            "-q"]


@case("greenbelt-nodata-among-inside-values", "layers.greenbelt", "nodata value 255", "set them to 0")
def _(c):
    g = c.layer("greenbelt")
    g[:3, :] = 255
    return ["validate", c.with_layer("greenbelt", c.raster("gb.tif", g, like="greenbelt", nodata=255))]


@case("red-line-nodata-1-is-read-as-inside", "red line", "layers.red_line", "may be developed")
def _(c):
    # every cell valued 1 and tagged nodata = 1: the tag does not hide the inside cells, so nothing is developable
    return ["validate", c.with_layer("red_line", c.raster("rl.tif", np.ones((120, 120), np.uint8), like="red_line",
                                                          nodata=1))]


@case("growth-boundary-hard-empty", "hard growth boundary", "layers.growth_boundary")
def _(c):
    gb = c.raster("gb.tif", np.zeros((120, 120), np.uint8), like="red_line")
    return ["validate", c.with_layer("growth_boundary", gb,
                                     lambda d: d["policy"].update(growth_boundary={"mode": "hard"}))]


@case("history-other-shape", "layers.history.2010", "shape")
def _(c):
    return ["validate", c.with_layer("history.2010", c.raster("lu2010.tif", c.layer("landuse_2010")[:, :90],
                                                              nodata=255))]


@case("slope-all-nan", "layers.slope", "no data")
def _(c):
    return ["validate", c.with_layer("slope", c.raster("slope.tif", np.full((120, 120), np.nan, np.float32),
                                                       like="slope"))]


@case("slope-1500-degrees", "layers.slope", "degrees", "1500")
def _(c):
    s = np.linspace(0, 1500, 120 * 120, dtype=np.float32).reshape(120, 120)
    return ["validate", c.with_layer("slope", c.raster("slope.tif", s, like="slope"))]


@case("slope-negative", "layers.slope", "degrees")
def _(c):
    s = c.layer("slope")
    s[0, 0] = -4
    return ["validate", c.with_layer("slope", c.raster("slope.tif", s, like="slope"))]


@case("elevation-all-nodata", "layers.elevation", "no data")
def _(c):
    return ["validate", c.with_layer("elevation", c.raster("el.tif", np.full((120, 120), -9999, np.float32),
                                                           like="elevation", nodata=-9999))]


@case("driver-all-nan", "layers.drivers.ndvi", "no data")
def _(c):
    p = c.raster("ndvi.tif", np.full((120, 120), np.nan, np.float32), like="slope")
    return ["validate", c.scenario(lambda d: d["layers"].update(drivers={"ndvi": str(p)}))]


@case("cities-all-nodata", "layers.cities", "no cell with data", "nodata tag 0")
def _(c):
    return ["validate", c.with_layer("cities", c.raster("cities.tif", np.zeros((120, 120), np.int32), like="cities",
                                                        nodata=0))]


@case("cities-all-nodata-run", "layers.cities", "no cell with data")
def _(c):
    return ["run", c.with_layer("cities", c.raster("cities.tif", np.zeros((120, 120), np.int32), like="cities",
                                                   nodata=0)), "-q"]


@case("cities-all-zero", "layers.cities", "no city id")
def _(c):
    return ["validate", c.with_layer("cities", c.raster("cities.tif", np.zeros((120, 120), np.int32), like="cities"))]


@case("cities-fractional", "layers.cities", "fractional")
def _(c):
    return ["validate", c.with_layer("cities", c.raster("cities.tif", c.layer("cities").astype(np.float32) + 0.5,
                                                        like="cities"))]


@case("cities-negative", "layers.cities", "negative")
def _(c):
    ci = c.layer("cities")
    ci[3, 3] = -2
    return ["validate", c.with_layer("cities", c.raster("cities.tif", ci, like="cities"))]


@case("suitability-raster-all-nan", "layers.suitability.residential", "no data")
def _(c):
    nan = c.raster("s.tif", np.full((120, 120), np.nan, np.float32), like="slope")
    ok = c.raster("ok.tif", np.full((120, 120), 0.5, np.float32), like="slope")
    return ["validate", c.scenario(lambda d: (
        d["layers"].update(suitability={"residential": str(nan), "industrial": str(ok), "commercial": str(ok)}),
        d["growth"].update(suitability={"method": "raster"})))]


# =========================================================================== options of every command


@case("run-runs-zero", "--runs", "0")
def _(c):
    return ["run", c.scenario(), "--runs", "0", "-q"]


@case("run-runs-text", "--runs", "valid integer")
def _(c):
    return ["run", c.scenario(), "--runs", "many", "-q"]


@case("run-seed-negative", "--seed", "-1")
def _(c):
    return ["run", c.scenario(), "--seed", "-1", "-q"]


@case("run-solver", "--solver", "'gurobi'")
def _(c):
    return ["run", c.scenario(), "--solver", "gurobi", "-q"]


@case("run-chunks", "--chunks", "within [64")
def _(c):
    return ["run", c.scenario(), "--chunks", "10", "-q"]


@case("run-scheduler", "scheduler", "'nowhere'")
def _(c):
    return ["run", c.scenario(), "--scheduler", "nowhere", "-q"]


@case("run-batch-scheduler", "scheduler", "'nowhere'")
def _(c):
    return ["run", c.scenario(), c.scenario(name="b.yaml"), "--scheduler", "nowhere"]


@case("run-out-is-a-file", "--out", "a_file")
def _(c):
    f = c.file("a_file", "x")
    return ["run", c.scenario(), "--out", f / "out", "-q"]


@case("run-out-other-scenario", "holds the results of scenario 'sample'", "--force")
def _(c):
    return ["run", c.scenario(lambda d: d.update(name="other")), "-q"]


@case("run-unknown-option", "--fast")
def _(c):
    return ["run", c.scenario(), "--fast"]


@case("run-batch-bad-config", "b.yaml", "polcy")
def _(c):
    return ["run", c.scenario(), c.scenario(lambda d: d.update(polcy={}), name="b.yaml")]


@case("unknown-command", "No such command", "frobnicate")
def _(c):
    return ["frobnicate", c.scenario()]


@case("run-no-config", "Missing argument")
def _(c):
    return ["run"]


@case("validate-no-argument", "Missing argument")
def _(c):
    return ["validate"]


@case("allocate-period", "--period 2027", "2025")
def _(c):
    return ["allocate", c.scenario(), "--period", "2027"]


@case("allocate-solver", "--solver", "'glpk'")
def _(c):
    return ["allocate", c.scenario(), "--solver", "glpk"]


@case("allocate-out-is-a-file", "--out", "a_file")
def _(c):
    f = c.file("a_file", "x")
    return ["allocate", c.scenario(), "--out", f / "x"]


@case("evaluate-missing-map", "not found", "nomap.tif")
def _(c):
    return ["evaluate", c.dir / "nomap.tif", "--config", c.scenario()]


@case("evaluate-no-config", "--config")
def _(c):
    return ["evaluate", c.region.out / "landuse_2035.tif"]


@case("evaluate-json-in-a-file", "--json", "afile")
def _(c):
    f = c.file("afile", "x")
    return ["evaluate", c.region.out / "landuse_2035.tif", "--config", c.scenario(), "--json", f / "x.json"]


@case("evaluate-quota-not-met", code=1)
def _(c):
    cfg = c.scenario(lambda d: d["policy"].update(open_space_quota={"share": 0.9, "unit": "cluster"}))
    return ["evaluate", c.region.out / "landuse_2035.tif", "--config", cfg]


@case("evaluate-cities-raster", "not a land-use map", "cities.tif")
def _(c):
    return ["evaluate", c.region.base / "cities.tif", "--config", c.scenario()]


@case("evaluate-probability-raster", "not a land-use map", "probability_urban.tif")
def _(c):
    return ["evaluate", c.region.out / "probability_urban.tif", "--config", c.scenario()]


@case("evaluate-other-region", "evaluated map", "shape")
def _(c):
    return ["evaluate", c.region.out_other / "landuse_2035.tif", "--config", c.scenario()]


@case("sample-size-too-small", "--size")
def _(c):
    return ["sample", c.dir / "s", "--size", "3"]


@case("sample-cell-size", "--cell-size")
def _(c):
    return ["sample", c.dir / "s", "--cell-size", "0"]


@case("sample-into-a-file", "a_file")
def _(c):
    return ["sample", c.file("a_file", "x"), "--size", "60"]


@case("sample-seed-negative", "--seed", "-1")
def _(c):
    return ["sample", c.dir / "s", "--size", "100", "--seed", "-1"]


@case("sample-config-dir-a-file", "--config-dir", "a_file")
def _(c):
    return ["sample", c.dir / "s", "--size", "100", "--config-dir", c.file("a_file", "x")]


@case("compare-one-run", "at least two")
def _(c):
    return ["compare", c.region.out, "--out", c.dir / "cmp"]


@case("compare-not-a-run", "report.json", "{dir}")
def _(c):
    (c.dir / "empty").mkdir()
    return ["compare", c.region.out, c.dir / "empty", "--out", c.dir / "cmp"]


@case("compare-two-regions", "region", "out_other")
def _(c):
    return ["compare", c.region.out, c.region.out_other, "--out", c.dir / "cmp", "--no-figures"]


@case("compare-out-is-a-run", "--out", "compared run folders")
def _(c):
    return ["compare", c.region.out, c.region.out, "--out", c.region.out]


@case("suitability-method", "--method", "'svm'")
def _(c):
    return ["suitability", c.scenario(), "--method", "svm", "--out", c.dir / "s"]


@case("suitability-no-history", "layers.history")
def _(c):
    return ["suitability", c.scenario(lambda d: d["layers"].pop("history")), "--out", c.dir / "s"]


@case("suitability-max-samples", "--max-samples")
def _(c):
    return ["suitability", c.scenario(), "--max-samples", "0", "--out", c.dir / "s"]


@case("calibrate-no-history", "layers.history")
def _(c):
    return ["calibrate", c.scenario(lambda d: d["layers"].pop("history")), "--out", c.dir / "cal", "-q"]


@case("calibrate-no-observed-change", "no urban land was gained", "layers.history.2010")
def _(c):
    same = str(c.region.base / "landuse_2020.tif")
    return ["calibrate", c.scenario(lambda d: d["layers"].update(history={2010: same})), "--out", c.dir / "cal", "-q"]


@case("calibrate-budget", "--budget", "1")
def _(c):
    return ["calibrate", c.scenario(), "--budget", "1", "--out", c.dir / "cal", "-q"]


@case("calibrate-objective", "--objective", "'rmse'")
def _(c):
    return ["calibrate", c.scenario(), "--objective", "rmse", "--out", c.dir / "cal", "-q"]


@case("calibrate-parallel", "--parallel", "'gpu'")
def _(c):
    return ["calibrate", c.scenario(), "--parallel", "gpu", "--out", c.dir / "cal", "-q"]


@case("calibrate-runs", "--runs", "0")
def _(c):
    return ["calibrate", c.scenario(), "--runs", "0", "--out", c.dir / "cal", "-q"]


# --------------------------------------------------------------------------- SLEUTH


def _sleuth_project(c: Ctx, extra: str = "") -> Path:
    from sleuth_fixtures import tiny_project

    return tiny_project(c.dir / "sleuth", extra=extra)


@case("sleuth-missing-scenario", "not found", "scenario.none")
def _(c):
    return ["sleuth", c.dir / "scenario.none"]


@case("sleuth-binary-scenario", "scenario.bin", "not a text file")
def _(c):
    return ["sleuth", c.file("scenario.bin", bytes(range(256)))]


@case("sleuth-scenario-is-a-folder", "is a folder", "{dir}")
def _(c):
    return ["sleuth", c.dir]


@case("sleuth-unknown-key", "SPREAD_COEFF", "scenario.tiny:")
def _(c):
    return ["sleuth", _sleuth_project(c, extra="SPREAD_COEFF=3\n")]


@case("sleuth-mode", "'forecast'")
def _(c):
    return ["sleuth", _sleuth_project(c), "--mode", "forecast"]


@case("sleuth-search", "--search", "'random'")
def _(c):
    return ["sleuth", _sleuth_project(c), "--mode", "calibrate", "--search", "random"]


@case("sleuth-objective", "--objective", "'R2'")
def _(c):
    return ["sleuth", _sleuth_project(c), "--mode", "calibrate", "--search", "refine", "--objective", "R2"]


@case("sleuth-missing-input", "tiny.slope.gif", "not found")
def _(c):
    scen = _sleuth_project(c)
    (c.dir / "sleuth" / "Input" / "tiny.slope.gif").unlink()
    return ["sleuth", scen]


@case("sleuth-input-corrupt", "tiny.slope.gif")
def _(c):
    scen = _sleuth_project(c)
    (c.dir / "sleuth" / "Input" / "tiny.slope.gif").write_bytes(b"GIF89a" + bytes(40))
    return ["sleuth", scen]


@case("sleuth-input-dir-missing", "--input-dir", "nowhere")
def _(c):
    return ["sleuth", _sleuth_project(c), "--input-dir", c.dir / "nowhere"]


# =========================================================================== running the table


def _run_case(region: Region, cs: Case, shared: dict[str, dict]) -> Outcome:
    ctx = Ctx(region, region.root / "cases" / cs.id)
    ctx.dir.mkdir(parents=True)
    args = cs.build(ctx)
    before = _digest(ctx.dir)
    t = time.perf_counter()
    r = _cli(*args, cwd=ctx.dir)
    seconds = time.perf_counter() - t
    after = _digest(ctx.dir)
    changed = [name for name, digest in shared.items() if _digest(region.root / name) != digest]
    return Outcome(r.returncode, r.stdout, r.stderr, before, after, changed, seconds)


@pytest.fixture(scope="module")
def outcomes(region: Region, request) -> dict[str, Outcome]:
    """Every selected case's outcome (all of them, or those ``-k`` leaves), two cases at a time."""
    selected = {item.callspec.params["cs"].id for item in request.session.items
                if getattr(item, "originalname", None) == "test_bad_input" and hasattr(item, "callspec")}
    shared_names = ("region", "other", "out_region", "out_other")
    shared = {n: _digest(region.root / n) for n in shared_names}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {cs.id: pool.submit(_run_case, region, cs, shared) for cs in CASES if cs.id in selected}
        out = {k: f.result() for k, f in futures.items()}
    if os.environ.get("LANDUSE_CASE_TIMES"):
        for k, o in sorted(out.items(), key=lambda kv: -kv[1].seconds)[:25]:
            print(f"{o.seconds:6.2f} s  {k}")
    return out


def test_the_table_is_large_enough():
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("cs", CASES, ids=[c.id for c in CASES])
def test_bad_input(cs: Case, outcomes: dict[str, Outcome], region: Region):
    o = outcomes[cs.id]
    text = o.stderr
    assert "Traceback" not in text + o.stdout, text
    assert o.rc == cs.code, f"exit {o.rc}, wanted {cs.code}:\n{text}\n{o.stdout}"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if cs.code == 2:
        assert 1 <= len(lines) <= 5, text
    else:  # a check that ran and failed: its report on stdout says which
        assert "FAIL" in o.stdout and not lines, o.stdout + text
    for s in cs.says:
        s = s.format(dir=region.root / "cases" / cs.id, base=region.base)
        assert s in text, f"{s!r} not in:\n{text}"
    assert o.before == o.after, "the case's inputs changed"
    assert not o.shared_changed, f"changed: {o.shared_changed} (the region's layers or an earlier run's folder)"
