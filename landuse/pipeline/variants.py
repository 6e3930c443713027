"""Demand variants: one scenario run under several population projections, and what is robust across them.

``demand.people.variants`` names CSV tables of population and jobs (e.g. the low, medium and high variants of a
national projection). :func:`run_variants` runs the scenario once per variant, each into ``<out>/<variant>/`` (a
complete run folder with its own manifest, named ``<scenario>-<variant>``), then compares the maps at the horizon
in ``<out>/robustness/``:

``urbanised_every_variant.tif``   new urban land (not urban at the start) under every variant
``urbanised_only_<high>.tif``     new urban land only under the variant with the most people at the horizon
``restored_every_variant.tif``    urban land restored to a non-urban class under every variant
``robustness.json|md``            the same per city, in hectares, and each variant's summary

These are what a plan can rely on whatever the population does (land urbanised under every variant), what it should
hold open for the high projection only, and what can be restored with confidence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from landuse.core.config import Scenario, load_scenario
from landuse.core.errors import ConfigError


@dataclass
class VariantsResult:
    """What :func:`run_variants` produced: each variant's run and the robustness table."""

    runs: dict[str, Any]
    table: pd.DataFrame
    high: str
    out_dir: Path


def variant_scenarios(config: str | os.PathLike) -> list[tuple[str, Scenario]]:
    """One scenario per ``demand.people.variants`` entry (its table replacing the base table)."""
    base = load_scenario(config)
    people = base.config.demand.people
    if people is None or not people.variants:
        raise ConfigError(f"{config}: demand.people.variants is empty; name at least one variant table")
    out = []
    for name, table in people.variants.items():
        sc = load_scenario(config)
        p = sc.config.demand.people
        p.table = base.resolve(table)
        p.cities = {}
        p.variants = {}
        sc.config.name = f"{base.name}-{name}"
        out.append((name, sc))
    return out


def _high(scenarios: list[tuple[str, Scenario]], horizon: int) -> str:
    """The variant with the most people at the horizon (population interpolated per city, summed)."""
    from landuse.allocation.demand import people_table

    def people(sc: Scenario) -> float:
        t = people_table(sc)
        return float(sum(np.interp(horizon, g.year.to_numpy(float), g.population.to_numpy(float))
                         for _, g in t.groupby("city")))
    return max(scenarios, key=lambda ns: people(ns[1]))[0]


def robustness(start: np.ndarray, finals: dict[str, np.ndarray], cities: np.ndarray, scenario: Scenario, *,
               high: str, cell_ha: float) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Masks of what is robust across the variants' horizon maps, and the same per city in hectares."""
    classes = scenario.classes
    urban0 = classes.is_role(start, "urban")
    new = {v: classes.is_role(m, "urban") & ~urban0 for v, m in finals.items()}
    restored = {v: urban0 & ~classes.is_role(m, "urban") for v, m in finals.items()}
    every_new = np.logical_and.reduce(list(new.values()))
    others = [m for v, m in new.items() if v != high]
    only_high = new[high] & ~np.logical_or.reduce(others) if others else new[high].copy()
    every_restored = np.logical_and.reduce(list(restored.values()))
    masks = {"urbanised_every_variant": every_new, f"urbanised_only_{high}": only_high,
             "restored_every_variant": every_restored}
    ids = [int(c) for c in np.unique(cities) if c > 0]
    rows = []
    for c in ids:
        sel = cities == c
        row = {"city": c, **{f"{k}_ha": float((m & sel).sum() * cell_ha) for k, m in masks.items()}}
        for v in finals:
            row[f"new_urban_ha_{v}"] = float((new[v] & sel).sum() * cell_ha)
            row[f"restored_ha_{v}"] = float((restored[v] & sel).sum() * cell_ha)
        rows.append(row)
    return masks, pd.DataFrame(rows)


def run_variants(config: str | os.PathLike, *, out: str | os.PathLike | None = None, force: bool = False,
                 progress: Any = None, **overrides: Any) -> VariantsResult:
    """Run every demand variant of a scenario and write the robustness maps and tables (see the module docstring)."""
    from landuse.core.landscape import cell_area_ha, like
    from landuse.io.folders import OutputFolder, write_text
    from landuse.io.rasters import write_geotiff
    from landuse.pipeline.run import run_scenario

    scenarios = variant_scenarios(config)
    base = load_scenario(config)
    parent = Path(out).resolve() if out is not None else base.output_dir()
    runs = {}
    for name, sc in scenarios:
        runs[name] = run_scenario(sc, out=parent / name, force=force, progress=progress, **overrides)
    high = _high(scenarios, base.periods[-1])
    first = next(iter(runs.values()))
    ds = first.landscape
    final = base.periods[-1]
    finals = {v: np.asarray(r.landuse[final].values) for v, r in runs.items()}
    masks, table = robustness(np.asarray(ds["landuse"].values), finals, np.asarray(ds["cities"].values), base,
                              high=high, cell_ha=cell_area_ha(ds))
    summary = {v: {"checks_passed": r.passed, "folder": str(r.out_dir)} for v, r in runs.items()}
    lines = [f"# Robustness across demand variants: {base.name}", "",
             f"Variants: {', '.join(runs)}; the high variant (most people at the horizon, {final}): {high}.", "",
             "| city | urbanised under every variant ha | urbanised only under " + high + " ha | restored under every "
             "variant ha | " + " | ".join(f"new urban {v} ha" for v in runs) + " |",
             "|---|---|---|---|" + "---|" * len(runs)]
    for r in table.to_dict("records"):
        lines.append(f"| city {r['city']} | {r['urbanised_every_variant_ha']:,.1f} | "
                     f"{r[f'urbanised_only_{high}_ha']:,.1f} | {r['restored_every_variant_ha']:,.1f} | "
                     + " | ".join(f"{r[f'new_urban_ha_{v}']:,.1f}" for v in runs) + " |")
    with OutputFolder(parent / "robustness", command="robustness", owner=base.name, force=force) as stage:
        for k, m in masks.items():
            write_geotiff(like(ds, np.where(np.asarray(ds["study_area"].values), m, 0).astype(np.uint8), k, nodata=255),
                          stage.path / f"{k}.tif")
        write_text(stage.path / "robustness.json", json.dumps(
            {"variants": summary, "high": high, "horizon": final, "per_city": table.to_dict("records")},
            indent=2) + "\n")
        write_text(stage.path / "robustness.md", "\n".join(lines) + "\n")
        stage.commit({"scenario": base.name, "variants": list(runs)})
    return VariantsResult(runs=runs, table=table, high=high, out_dir=parent)


__all__ = ["VariantsResult", "robustness", "run_variants", "variant_scenarios"]
