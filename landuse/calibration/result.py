"""What a calibration found, written and applied.

:class:`CalibrationResult` (the table of every evaluated point, the chosen values, fresh-seed figures);
:func:`write_calibration` writes ``calibrated.yaml`` (the keys to merge into a scenario), ``calibration.csv``,
``calibration.png`` and ``calibration.md``; :func:`apply_calibration` merges a ``calibrated.yaml`` into a scenario
(``landuse run --calibration``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from landuse.calibration.parameters import PARAMETERS
from landuse.core.config import Scenario
from landuse.core.errors import ConfigError

__all__ = ["SEARCH_STAGES", "CalibrationResult", "apply_calibration", "write_calibration"]

SEARCH_STAGES: tuple[str, ...] = ("default", "sobol", "gp")
"""Stages of the table evaluated on the search seeds (the Gaussian process's data); ``final`` and ``refine`` points
run on the finalists' seeds."""


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per evaluated point: ``point, stage`` (default, sobol, gp), the parameter
        values, ``objective`` and the scores ``fom, kappa_simulation, lee_sallee, hits,
        misses, wrong_hits, false_alarms, shortfall`` (ensemble means).
    best : dict
        Calibrated value of every fitted parameter.
    default : dict
        The scenario's own values of the fitted parameters.
    objective : str
    ranges : dict of str to tuple
        Search range of each fitted parameter.
    skipped : dict of str to str
        Parameters not fitted, and why.
    validation : dict
        Scores with fresh seeds (not used by the search): ``calibrated`` and ``default``
        (ensemble means), ``calibrated_map`` (the representative run's map) and ``null``
        (the null model, deterministic).
    info : dict
        Years, budget, runs, seed, parallel mode, timings, observed change.
    """

    table: pd.DataFrame
    best: dict[str, Any]
    default: dict[str, Any]
    objective: str
    ranges: dict[str, tuple[float, float]]
    skipped: dict[str, str]
    validation: dict[str, dict[str, float]]
    info: dict[str, Any]
    calibrated_map: np.ndarray | None = None

    @property
    def best_objective(self) -> float:
        """Objective of the chosen point on the finalists' seeds (``3 x runs``)."""
        if "best_objective" in self.info:
            return float(self.info["best_objective"])
        return float(self.table["objective"].max())

    @property
    def search_best_objective(self) -> float:
        """Best objective during the search (the search seeds; biased upwards by the luck of the draw)."""
        t = self.table
        return float(t.loc[t["stage"].isin(SEARCH_STAGES), "objective"].max())

    @property
    def default_objective(self) -> float:
        """Objective of the scenario's own (uncalibrated) values: the ``default`` stage of ``table``."""
        return float(self.table.loc[self.table["stage"] == "default", "objective"].iloc[0])

    def yaml_block(self, scenario: Scenario) -> str:
        """The calibrated parameters as YAML keys to merge into ``scenario``'s sections."""
        import yaml

        g: dict[str, Any] = {}
        b = self.best
        for name in ("neighbourhood_strength", "spontaneous_share", "iterations", "adaptive_inertia"):
            if name in b:
                g[name] = b[name]
        if "cross_weight" in b:
            nw = scenario.config.growth.neighbourhood_weights
            g["neighbourhood_weights"] = {
                k: {j: (float(nw.get(k, {}).get(j, 0.0)) if j == k
                        else float(b["cross_weight"]) * float(nw.get(k, {}).get(j, 0.0)))  # exactly as evaluated
                    for j in scenario.classes.urban_types}
                for k in scenario.classes.urban_types
            }
        if "distance_scale_m" in b:
            g["suitability"] = {"distance_scale_m": b["distance_scale_m"]}
        data: dict[str, Any] = {}
        if g:
            data["growth"] = g
        if "greenbelt_leakage" in b:
            data["policy"] = {"greenbelt": {"mode": "soft", "strength": 1.0 - float(b["greenbelt_leakage"])}}
        v = self.validation
        head = (
            f"# Growth parameters calibrated by `landuse calibrate` against the change {self.info['before_year']} -> "
            f"{self.info['after_year']}\n"
            f"# (objective {self.objective}, budget {self.info['budget']}, {self.info['runs']} runs per point, "
            f"seed {self.info['seed']}).\n"
            f"# FoM with fresh seeds: calibrated {v['calibrated']['fom']:.4f}, uncalibrated default "
            f"{v['default']['fom']:.4f}, null model {v['null']['fom']:.4f}.\n"
            "# Apply with `landuse run CONFIG --calibration calibrated.yaml`, or merge these keys into the scenario's\n"
            "# growth: and policy: sections.\n"
        )
        return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    def markdown(self, scenario: Scenario) -> str:
        """A short report of the calibration."""
        v, i = self.validation, self.info
        lines = [
            f"# Calibration of scenario `{scenario.name}`",
            "",
            f"Simulated the observed change {i['before_year']} -> {i['after_year']} ({i['observed_change_cells']} cells "
            f"gained by urban types in {i['zones_with_change']} zones, one period) and maximised **{self.objective}** "
            f"over {len(self.table)} parameter points ({i['runs']} Monte Carlo runs each, the same seeds at every "
            f"point; seed {i['seed']}) in {i['seconds']:.1f} s ({i['parallel']}).",
            "",
            "## Figures (fresh seeds, not used by the search)",
            "",
            "| model | FoM | Kappa-simulation | Lee-Sallee | hits | misses | wrong hits | false alarms |",
            "|---|---|---|---|---|---|---|---|",
        ]
        labels = (("calibrated", "calibrated (ensemble mean)"), ("calibrated_map", "calibrated (representative run)"),
                  ("default", "uncalibrated default (ensemble mean)"),
                  ("null", "null model (nearest developable cells)"))
        for key, label in labels:
            s = v[key]
            lines.append(f"| {label} | {s['fom']:.4f} | {s['kappa_simulation']:.4f} | {s['lee_sallee']:.4f} | "
                         f"{s['hits']:.0f} | {s['misses']:.0f} | {s['wrong_hits']:.0f} | {s['false_alarms']:.0f} |")
        un = i.get("unreachable") or {}
        amounts = {"allocator": "the cluster totals planned by the scenario's LP allocator, the plan's units grown",
                   "observed_zone": "the observed gain of each allocation zone",
                   "cluster": "one cluster-wide total per type, placed by the growth engine"}.get(i.get("amounts"), "")
        lines += [
            "",
            f"Best objective during the search: {self.search_best_objective:.4f} (default "
            f"{self.default_objective:.4f}); the chosen point on the finalists' fresh seeds ({i.get('finalists', 0)} "
            f"finalists, {i.get('final_runs', 0)} runs each, {i.get('refine_points', 0)} refinement points): "
            f"{self.best_objective:.4f}.",
            "",
            f"Amounts: **{i.get('amounts', '')}** ({amounts}). Observed gain the model cannot make (class not "
            f"convertible, or constraint factor 0): {un.get('cells', 0)} cells, {100 * un.get('share', 0.0):.1f} % "
            "of the observed gain, left out of the amounts and the scores.",
        ]
        op = i.get("observed_patches")
        if op:
            cp, dp = v["calibrated"], v["default"]
            lines += ["", "New patches (8-connected; outlying = no urban neighbour at the start):", "",
                      "| | patches | outlying share of new cells | patch error |", "|---|---|---|---|",
                      f"| observed | {op['new_patches']:.0f} | {op['outlying_share']:.3f} | 0 |",
                      f"| calibrated (mean of runs) | {cp['new_patches']:.1f} | {cp['outlying_share']:.3f} | "
                      f"{cp['patch_error']:.3f} |",
                      f"| default (mean of runs) | {dp['new_patches']:.1f} | {dp['outlying_share']:.3f} | "
                      f"{dp['patch_error']:.3f} |"]
        if i.get("at_edge"):
            lines += ["", "At the edge of its range: " + ", ".join(f"`{k}` ({side})" for k, side in
                                                                     i["at_edge"].items())
                      + " — widen the range in calibration.parameters if its limits allow."]
        lines += [
            "",
            "## Parameters",
            "",
            "| parameter | calibrated | default | range |",
            "|---|---|---|---|",
        ]
        for name, (lo, hi) in self.ranges.items():
            kind = PARAMETERS[name].kind
            span = "true or false" if kind == "bool" else f"[{lo:g}, {hi:g}]" + (" (log scale)" if kind == "log" else "")

            def fmt(x: Any, kind: str = kind) -> str:
                return str(bool(x)).lower() if kind == "bool" else f"{x:g}"

            lines.append(f"| {name} | {fmt(self.best[name])} | {fmt(self.default[name])} | {span} |")
        if self.skipped:
            lines += ["", "Not calibrated: " + "; ".join(f"{k} ({r})" for k, r in self.skipped.items()) + "."]
        shortfall = float(self.table["shortfall"].max()) if len(self.table) else 0.0
        if shortfall > 0:
            lines += ["", f"Note: up to {shortfall:.0f} observed cells could not be placed at some points (their zone "
                      "had no cell left that the conversion matrix and constraints allow)."]
        lines += [
            "",
            "Files: `calibrated.yaml` (keys to merge into the scenario), `calibration.csv` (every point), "
            "`calibration.png` (objective against each parameter).",
            "",
        ]
        return "\n".join(lines)


# =========================================================================== outputs


def write_calibration(result: CalibrationResult, out_dir: str | Path, *, scenario: Scenario) -> dict[str, Path]:
    """Write ``calibrated.yaml``, ``calibration.csv``, ``calibration.png`` and ``calibration.md`` atomically."""
    from landuse.io.rasters import write_text

    out = Path(out_dir)
    files = {
        "yaml": write_text(out / "calibrated.yaml", result.yaml_block(scenario)),
        "csv": write_text(out / "calibration.csv", result.table.to_csv(index=False, float_format="%.10g")),
        "md": write_text(out / "calibration.md", result.markdown(scenario)),
    }
    from landuse.report.figures import calibration_figure

    calibration_figure(result, {name: PARAMETERS[name].kind for name in result.ranges}, out / "calibration.png")
    files["png"] = out / "calibration.png"
    return files


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def apply_calibration(scenario: Scenario, path: str | Path) -> tuple[Scenario, dict[str, Any]]:
    """The scenario with the parameters of a ``calibrated.yaml`` merged in, and a record of it.

    The file's ``growth`` and ``policy`` keys (written by :func:`write_calibration`) are
    merged into the scenario's sections and the result is validated like a scenario
    file. Returns the new scenario and ``{"file", "sha256", "values"}`` for the manifest.

    Raises
    ------
    ConfigError
        No such file, not a mapping, a key outside ``growth`` / ``policy``, or a value
        the scenario model refuses (named by its key path).
    """
    import hashlib

    import yaml
    from pydantic import ValidationError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"calibration file not found: {p}; write one with `landuse calibrate CONFIG`")
    raw = p.read_bytes()
    data = yaml.safe_load(raw) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a calibration file must be a mapping with growth: and policy: keys")
    extra = sorted(set(data) - {"growth", "policy"})
    if extra:
        raise ConfigError(f"{p}: only growth: and policy: keys can be applied from a calibration file, "
                          f"got {', '.join(extra)}")
    merged = _merge(scenario.config.model_dump(), data)
    try:
        cfg = type(scenario.config).model_validate(merged)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{p}: {where}") from None
    record = {"file": str(p.resolve()), "sha256": hashlib.sha256(raw).hexdigest(), "values": data}
    return Scenario(cfg, path=scenario.path, base_dir=scenario.base_dir), record
