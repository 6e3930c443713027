"""The ``landuse`` command.

Every :class:`~landuse.core.errors.LanduseError` becomes one clear line on stderr and exit
code 2; a failed check (e.g. a quota not met) exits 1; success exits 0. The engine
knows nothing of the terminal: progress reaches it through callbacks filled here.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from landuse.core.errors import LanduseError

app = typer.Typer(
    name="landuse",
    help="Land-use allocation and growth-boundary modelling for city clusters.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _err(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def command_flags(func: Callable[..., Any]) -> dict[str, str]:
    """Parameter name -> what the command line calls it: ``--flag`` for an option, ``NAME`` for an argument.

    Read from the typer command's signature (an option's first ``--`` declaration, else typer's own rule:
    ``--`` and the name with dashes).
    """
    import typing

    flags: dict[str, str] = {}
    for name, hint in typing.get_type_hints(func, include_extras=True).items():
        info = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, typer.models.ParameterInfo)), None)
        if isinstance(info, typer.models.ArgumentInfo):
            flags[name] = name.upper()
        elif info is not None:
            decls = [d for d in (getattr(info, "param_decls", None) or ()) if d.startswith("--")]
            flags[name] = decls[0] if decls else "--" + name.replace("_", "-")
    return flags


def as_command_line(message: str, flags: dict[str, str]) -> str:
    """A library message with its parameter names (written `` `name` ``) as the command's flags."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: flags.get(m.group(1), m.group(0)), message)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LanduseError into one line + exit 2, and Ctrl-C into a clear message + exit 130.

    Library messages name a parameter as `` `name` ``; the line printed names the command's flag instead.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except LanduseError as exc:
            flags = command_flags(func)  # read on the error path only: no cost at start-up
            problems = getattr(exc, "problems", None)
            if problems and len(problems) > 1:
                for p in problems:
                    _err(as_command_line(p, flags))
            else:
                _err(as_command_line(str(exc), flags))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            from landuse.io.folders import INTERRUPTED

            _err(INTERRUPTED)
            raise typer.Exit(130) from None

    return wrapper


@app.command(short_help="Check a scenario without running it.")
@handles_errors
def validate(
    config: Annotated[Path, typer.Argument(help="scenario YAML file")],
) -> None:
    """Check a scenario without running it: schema, files, grid alignment, class codes, demand."""
    from landuse.pipeline.validate import validate_scenario

    summary = validate_scenario(config)
    typer.echo(summary.text())


@app.command(short_help="Generate the synthetic sample city cluster.")
@handles_errors
def sample(
    outdir: Annotated[Path, typer.Argument(help="folder to write the sample region into")],
    size: Annotated[int, typer.Option(help="grid edge in cells (the region is size x size)")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives byte-identical rasters")] = 42,
    cell_size: Annotated[float, typer.Option("--cell-size", help="cell edge in metres")] = 60.0,
    config_dir: Annotated[
        Path | None, typer.Option("--config-dir", help="folder for the scenario YAML (default: OUTDIR)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a folder (or sample.yaml) landuse sample did "
                                        "not write")] = False,
    layout: Annotated[str, typer.Option(help="auto (megaregion from 2000 cells a side), cluster or megaregion")]
    = "auto",
) -> None:
    """Generate the synthetic sample city cluster (GeoTIFFs, scenario YAML, PNG overview)."""
    from landuse.sample.generate import generate_sample

    info = generate_sample(outdir, size=size, seed=seed, cell_size=cell_size, config_dir=config_dir, force=force,
                           layout=layout)
    typer.echo(info.text())


def _echo_checks(checks: Any, *, show_all: bool) -> bool:
    """Print failing checks (every check with ``show_all``) and a count line; True when none failed."""
    from landuse.evaluation.checks import describe, failed, ordered, summary

    rows = ordered(checks) if show_all else failed(checks)
    for r in rows.to_dict("records"):
        typer.echo(f"  {describe(r)}")
    n = summary(checks)
    enforced = n["checks"] - n["not_enforced"]
    extra = f", {n['not_enforced']} not enforced" if n["not_enforced"] else ""
    if n["failed"]:
        typer.echo(f"  {n['passed']} of {enforced} checks passed, {n['failed']} FAILED{extra}")
    else:
        typer.echo(f"  {n['passed']} checks passed{extra}: all checks pass")
    return n["failed"] == 0


@app.command(short_help="Evaluate a land-use map against the scenario's policies.")
@handles_errors
def evaluate(
    landuse_tif: Annotated[Path, typer.Argument(help="land-use GeoTIFF to evaluate, on the scenario's grid")],
    config: Annotated[Path, typer.Option("--config", "-c", help="scenario YAML file")],
    year: Annotated[int | None, typer.Option(help="period end year the map stands for (default: a period end "
                                             "year in the file name, else the last year)")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the checks and the per-unit table as JSON to this file")
    ] = None,
) -> None:
    """Check a land-use map against the scenario's policies; exit 1 if a check fails.

    Every policy check of landuse.evaluation.checks (protected layers, farmland-loss cap, open-space
    quota, TOD share, jobs-housing balance, city growth limits), computed on the map against
    the scenario's start land use, the span from the start year to YEAR taken as one period.
    """
    import json

    from landuse.evaluation.checks import evaluate_file, failure_lines, records, summary
    from landuse.evaluation.metrics import as_jsonable
    from landuse.io.rasters import write_text

    if json_out is not None:  # a path that cannot be written fails before evaluating
        from landuse.core.errors import OutputFolderError

        if json_out.is_dir():
            raise OutputFolderError(f"--json {json_out} is a folder; give a file name, e.g. {json_out / 'report.json'}")
        existing = next(p for p in [json_out.parent.absolute(), *json_out.parent.absolute().parents] if p.exists())
        if not existing.is_dir():
            raise OutputFolderError(f"cannot write --json {json_out}: {existing} is a file, not a folder; "
                                    "choose another --json path")
    checks, quota, scenario, y = evaluate_file(landuse_tif, config, year=year)
    typer.echo(quota.table())
    typer.echo("")
    typer.echo(f"checks {scenario.periods[0]}-{y}:")
    passed = _echo_checks(checks, show_all=True)
    if json_out is not None:
        data = {"scenario": scenario.name, "map": str(landuse_tif), "start_year": scenario.periods[0], "year": y,
                "passed": passed, "checks_summary": summary(checks), "failures": failure_lines(checks),
                "checks": records(checks), "quota": quota.to_dict()}
        write_text(json_out, json.dumps(as_jsonable(data), indent=2, allow_nan=False) + "\n")
    if not passed:
        raise typer.Exit(1)


@app.command(short_help="Run a SLEUTH scenario file (test/calibrate/predict).")
@handles_errors
def sleuth(
    scenario: Annotated[Path, typer.Argument(help="SLEUTH scenario file")],
    mode: Annotated[str, typer.Option(help="test, calibrate or predict")] = "test",
    out: Annotated[Path | None, typer.Option("--out", help="output folder (default: the scenario's OUTPUT_DIR)")] = None,
    input_dir: Annotated[
        Path | None, typer.Option("--input-dir", help="folder of the input images (default: INPUT_DIR)")
    ] = None,
    runs: Annotated[int | None, typer.Option(help="Monte Carlo runs (default: MONTE_CARLO_ITERATIONS)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (default: RANDOM_SEED)")] = None,
    search: Annotated[
        str, typer.Option(help="calibrate: 'grid' (SLEUTH's brute force) or 'refine' (Sobol + shrinking box)")
    ] = "grid",
    budget: Annotated[int | None, typer.Option(help="calibrate --search refine: coefficient sets to try")] = None,
    objective: Annotated[str, typer.Option(help="calibrate --search refine: OSM or Product")] = "OSM",
    force: Annotated[bool, typer.Option("--force", help="replace an output folder landuse sleuth did not write "
                                        "for this scenario")] = False,
) -> None:
    """Run a SLEUTH scenario (urban growth rules) and write SLEUTH's statistics logs and GeoTIFFs."""
    from landuse.sleuth.model import run_sleuth

    result = run_sleuth(
        scenario, mode=mode, out_dir=out, input_dir=input_dir, runs=runs, seed=seed, search=search, budget=budget,
        objective=objective, force=force, progress=lambda m: typer.echo(m, err=True),
    )  # fmt: skip
    typer.echo(result.text())


@app.command(short_help="Learn suitability from observed change.")
@handles_errors
def suitability(
    config: Annotated[Path, typer.Argument(help="scenario YAML with layers.history (an earlier land use)")],
    out: Annotated[Path | None, typer.Option(help="output folder (default: <outputs.folder>/suitability)")] = None,
    method: Annotated[str, typer.Option(help="forest or logistic")] = "forest",
    seed: Annotated[int, typer.Option(help="seed of sampling and model")] = 0,
    max_samples: Annotated[int, typer.Option("--max-samples", help="converted cells sampled per type")] = 20000,
    cv: Annotated[str, typer.Option(help="held-out cells: random, or blocked (whole allocation.block_size_m "
                                    "blocks, a more honest AUC)")] = "random",
    force: Annotated[bool, typer.Option("--force", help="replace an output folder another command wrote")] = False,
) -> None:
    """Learn suitability per urban type from observed change; write rasters and a report."""
    from landuse.calibration.suitability_model import train_suitability, write_trained
    from landuse.core.config import load_scenario
    from landuse.core.errors import ConfigError
    from landuse.io.folders import OutputFolder, check_target
    from landuse.io.rasters import read_landscape

    if method not in ("forest", "logistic"):
        raise ConfigError(f"--method must be forest or logistic, got {method!r}")
    if max_samples < 20:
        raise ConfigError(f"--max-samples must be at least 20 (converted cells sampled per type), got {max_samples}")
    scenario = load_scenario(config)
    target = out or scenario.output_dir() / "suitability"
    inputs = [*scenario.layer_paths().values(), *([scenario.path] if scenario.path else [])]
    check_target(target, command="suitability", owner=scenario.name, force=force, protected=inputs)  # before training
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    result = train_suitability(ds, scenario, method=method, seed=seed, max_samples=max_samples, cv=cv)
    with OutputFolder(target, command="suitability", owner=scenario.name, force=force, protected=inputs) as stage:
        write_trained(result, stage.path, scenario=scenario)
        stage.commit({"scenario": scenario.name, "method": method, "seed": seed, "cv": cv})
    for t, f in result.fits.items():
        typer.echo(f"{t:12s} AUC {f.auc:.3f} (weighted-linear {f.auc_linear:.3f}); top driver {next(iter(f.importances))}")
    typer.echo(f"wrote {target}/suitability_<type>.tif and suitability_report.md")


class _Progress:
    """Progress of `landuse run`: a rich bar on a terminal, plain lines otherwise, nothing with --quiet."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.tasks: dict[int, Any] = {}
        self.last: tuple | None = None

    def __enter__(self) -> _Progress:
        if not self.quiet and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        stage, period = event.get("stage"), event.get("period")
        if self.bar is not None:
            if stage == "grow":
                if period not in self.tasks:
                    self.tasks[period] = self.bar.add_task(f"period ending {period}: growth runs", total=event["runs"])
                self.bar.update(self.tasks[period], completed=event["run"] + 1)
            elif stage in ("allocate", "write"):
                self.bar.console.log(f"{stage} {period or ''}".strip())
            return
        key = (stage, period, event.get("run"))
        if key == self.last:
            return
        self.last = key
        if stage == "grow":
            typer.echo(f"period ending {period}: growth run {event['run'] + 1}/{event['runs']}", err=True)
        elif stage == "allocate":
            typer.echo(f"period ending {period}: allocating demand to zones", err=True)
        elif stage == "write":
            typer.echo("writing outputs", err=True)


@app.command(short_help="Run scenarios end to end (allocate, grow, report).")
@handles_errors
def run(
    configs: Annotated[list[Path], typer.Argument(help="scenario YAML file(s)", metavar="CONFIG...")],
    out: Annotated[Path | None, typer.Option(help="output folder (overrides outputs.folder); with several "
                                             "configs, the parent of one folder per scenario")] = None,
    runs: Annotated[int | None, typer.Option(help="Monte Carlo runs (overrides growth.runs)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (overrides growth.seed)")] = None,
    solver: Annotated[str | None, typer.Option(help="LP solver: cbc or highs (overrides allocation.solver)")] = None,
    scheduler: Annotated[str | None, typer.Option(help="run on Dask: 'local' or a scheduler address "
                                                  "(overrides compute.scheduler)")] = None,
    chunks: Annotated[int | None, typer.Option(help="tiled growth with tiles of N x N cells, same results "
                                               "(overrides compute.chunks)", metavar="N")] = None,
    rasters: Annotated[str | None, typer.Option(
        help="where the large rasters are kept: memory, disk (memory-mapped scratch files in compute.scratch, for "
        "regions larger than memory) or auto; same results (overrides compute.rasters)",
        metavar="WHERE")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an output folder holding another scenario's outputs or other files")] = False,
    calibration: Annotated[Path | None, typer.Option(help="calibrated.yaml of `landuse calibrate`: its growth and "
                                                     "policy keys override the scenario's (recorded in the manifest)",
                                                     metavar="FILE")] = None,
    outputs: Annotated[str | None, typer.Option(
        help="compute and write only these, a comma list of maps, expected, probability, boundary, allocation, "
        "report, figures, html, coordination, or all (overrides the outputs.* switches; policy checks always run)",
        metavar="LIST")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
) -> None:
    """Run scenarios end to end: allocate, grow, evaluate; write GeoTIFFs and a report.

    Exits 1 when any policy check of any period and unit failed (each printed on one line),
    0 when all pass, 2 on bad input.
    """
    if len(configs) > 1:
        if calibration is not None:
            _err("--calibration applies to one scenario; run each config with its own calibration file")
            raise typer.Exit(2)
        _run_batch(configs, out=out, runs=runs, seed=seed, solver=solver, scheduler=scheduler, force=force,
                   chunks=chunks, outputs=outputs, rasters=rasters)
        return
    from landuse.pipeline.run import run_scenario

    config = configs[0]
    if _has_variants(config):
        _run_variants(config, out=out, runs=runs, seed=seed, solver=solver, force=force, quiet=quiet,
                      chunks=chunks, scheduler=scheduler, outputs=outputs, rasters=rasters)
        return
    with _Progress(quiet=quiet) as progress:
        result = run_scenario(config, out=out, runs=runs, seed=seed, solver=solver, force=force, progress=progress,
                              chunks=chunks, scheduler=scheduler, calibration=calibration, outputs=outputs,
                              rasters=rasters)
    data = result.report.data if result.report is not None else {}
    final = str(result.scenario.periods[-1])
    lines = [f"scenario {result.scenario.name!r}: {len(result.landuse)} periods, {result.manifest['runs']} runs, "
             f"seed {result.manifest['seed']}, {result.manifest['timings_s']['total']:.1f} s"]
    units = data.get("quotas", {}).get(final, {}).get("units", [])
    cluster = units[-1] if units else {}
    if cluster:
        lines.append(f"  farmland lost {cluster.get('farmland_loss_ha', float('nan')):,.0f} ha")
    if "calibration" in result.manifest.get("overrides", {}):
        lines.append(f"  calibration applied: {result.manifest['overrides']['calibration']['file']}")
    lines += [f"  warning: {w}" for w in result.warnings]
    if result.shortfall is not None and len(result.shortfall) and int(result.shortfall["shortfall"].sum()):
        lines.append(f"  note: {int(result.shortfall['shortfall'].sum())} cells could not be placed (shortfall.csv)")
    typer.echo("\n".join(lines))
    passed = _echo_checks(result.checks, show_all=False)
    if result.report is not None:
        typer.echo(f"report: {result.report_path if result.scenario.config.outputs.html else result.out_dir / 'report.md'}")
    else:
        typer.echo(f"outputs ({', '.join(result.manifest['outputs']) or 'none'}): {result.out_dir}")
    if not passed:
        raise typer.Exit(1)


def _has_variants(config: Path) -> bool:
    from landuse.core.config import load_scenario

    people = load_scenario(config).config.demand.people
    return bool(people is not None and people.variants)


def _run_variants(config: Path, *, out: Path | None, quiet: bool, **overrides: Any) -> None:
    """Every demand variant of one scenario, then the robustness maps (landuse.pipeline.variants)."""
    from landuse.pipeline.variants import run_variants

    with _Progress(quiet=quiet) as progress:
        res = run_variants(config, out=out, progress=progress, **overrides)
    passed = True
    for name, r in res.runs.items():
        typer.echo(f"variant {name!r}: {r.out_dir}")
        passed &= _echo_checks(r.checks, show_all=False)
    t = res.table
    typer.echo(f"robustness ({res.out_dir / 'robustness'}): urbanised under every variant "
               f"{t.urbanised_every_variant_ha.sum():,.0f} ha, only under {res.high!r} "
               f"{t[f'urbanised_only_{res.high}_ha'].sum():,.0f} ha, restored under every variant "
               f"{t.restored_every_variant_ha.sum():,.0f} ha")
    if not passed:
        raise typer.Exit(1)


def _run_batch(configs: list[Path], *, scheduler: str | None, out: Path | None, **overrides: Any) -> None:
    from landuse.core.config import load_scenario
    from landuse.pipeline.batch import run_batch
    from landuse.scale.distributed import check_scheduler

    compute = load_scenario(configs[0]).config.compute
    scheduler = scheduler or compute.scheduler
    if scheduler is not None:
        check_scheduler(scheduler)
    where = f"on Dask ({scheduler})" if scheduler else "one after another"
    typer.echo(f"running {len(configs)} scenario(s) {where}", err=True)
    results = run_batch(configs, scheduler=scheduler, workers=compute.workers, memory_limit=compute.memory_limit,
                        out=out, **overrides)
    failed_any = False
    for r in results:
        n = r.get("checks_summary") or {}
        enforced = n.get("checks", 0) - n.get("not_enforced", 0)
        status = (f"{n.get('passed', '?')} checks passed" if r["passed"] else
                  f"{n.get('passed', '?')} of {enforced} checks passed, {len(r['failures'])} FAILED")
        typer.echo(f"{r['scenario']}: {r['seconds']:.1f} s, {status}; report: {Path(r['out_dir']) / 'report.html'}")
        for line in r["failures"]:
            typer.echo(f"  {line}")
        failed_any |= not r["passed"]
    if failed_any:
        raise typer.Exit(1)


@app.command(short_help="Run the LP allocator alone.")
@handles_errors
def allocate(
    config: Annotated[Path, typer.Argument(help="scenario YAML file")],
    period: Annotated[int | None, typer.Option(help="end year of one period (default: every period)")] = None,
    solver: Annotated[str | None, typer.Option(help="LP solver: cbc or highs (overrides allocation.solver)")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="also plan city by city: the cost of fragmentation")] = False,
    out: Annotated[Path | None, typer.Option(help="folder for allocation.csv and duals.csv "
                                             "(default: <outputs.folder>/allocation)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an output folder another command wrote")] = False,
) -> None:
    """Run the LP allocator alone: hectares per zone and urban type, shadow prices of the policies.

    Every period starts from the layers' land use; later periods see the zone table
    advanced by the earlier allocations (capacities and open space reduced at zone level).
    """
    from landuse.allocation.coordination import compare_coordination
    from landuse.allocation.handoff import advance_zone_table
    from landuse.allocation.planner import allocate
    from landuse.allocation.tables import write_allocation_csv, write_duals_csv
    from landuse.allocation.zone_stats import zone_table
    from landuse.core.config import load_scenario
    from landuse.core.errors import ConfigError
    from landuse.io.folders import OutputFolder, check_target
    from landuse.io.rasters import read_landscape
    from landuse.pipeline.validate import check_inputs

    scenario = load_scenario(config)
    target = out or scenario.output_dir() / "allocation"
    inputs = [*scenario.layer_paths().values(), *([scenario.path] if scenario.path else [])]
    check_target(target, command="allocate", owner=scenario.name, force=force, protected=inputs)  # before solving
    if solver is not None and solver not in ("cbc", "highs"):
        raise ConfigError(f"--solver must be cbc or highs, got {solver!r}")
    ends = scenario.periods[1:]
    if period is not None and period not in ends:
        raise ConfigError(f"--period {period} is not a period end year of {config} ({', '.join(map(str, ends))})")
    ds = read_landscape(scenario.layer_paths(), classes=scenario.classes)
    from landuse.allocation.demand import apply_people_demand

    people = apply_people_demand(scenario, ds)
    if people is not None:
        typer.echo(people.summary())
    from landuse.allocation.demand_trend import apply_trend_demand

    trend = apply_trend_demand(scenario, ds)
    if trend is not None:
        typer.echo(trend.summary())
    check_inputs(ds, scenario)
    zt = zone_table(ds, scenario)
    results = []
    lost = 0.0
    for y1 in ends:
        a = allocate(zt, scenario, y1, solver=solver, farmland_lost_so_far_ha=lost)
        if period is None or y1 == period:
            results.append(a)
            typer.echo(a.summary())
            if compare:
                cmp = compare_coordination(zt, scenario, y1, solver=solver, farmland_lost_so_far_ha=lost)
                typer.echo(cmp.summary())
        if period is not None and y1 == period:
            break
        lost += a.farmland_lost_ha
        zt = advance_zone_table(zt, a, scenario)
    with OutputFolder(target, command="allocate", owner=scenario.name, force=force, protected=inputs) as stage:
        write_allocation_csv(results, stage.path / "allocation.csv")
        write_duals_csv(results, stage.path / "duals.csv")
        stage.commit({"scenario": scenario.name, "period": period, "solver": solver, "compare": compare})
    typer.echo(f"wrote {target / 'allocation.csv'} and {target / 'duals.csv'}")


@app.command(short_help="Compare scenario runs side by side.")
@handles_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(help="output folders of `landuse run` (two or more)")],
    out: Annotated[Path, typer.Option(help="folder for compare.md/html/json and the PNGs")],
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="draw maps and bar charts")] = True,
    force: Annotated[bool, typer.Option("--force", help="replace an output folder landuse compare did not write")] = False,
) -> None:
    """Compare scenario runs side by side: table (md, html, json) and figures (png)."""
    from landuse.report.compare import LABELS, compare_runs, format_value

    data = compare_runs(runs, out, figures=figures, force=force)
    width = max(len(v) for v in LABELS.values())
    col = 2 + max(len(format_value(v)) for vals in data["rows"].values() for v in vals)
    col = max(col, 2 + max(len(n) for n in data["scenarios"]))
    typer.echo(" " * width + "".join(f"{n:>{col}}" for n in data["scenarios"]))
    for key, vals in data["rows"].items():
        typer.echo(f"{LABELS[key]:<{width}}" + "".join(f"{format_value(v):>{col}}" for v in vals))
    typer.echo(f"wrote {Path(out) / 'compare.html'}")


@app.command(short_help="Fit growth parameters to observed change.")
@handles_errors
def calibrate(
    config: Annotated[Path, typer.Argument(help="scenario YAML with layers.history (an earlier land use)")],
    budget: Annotated[int | None, typer.Option(help="parameter points to evaluate (default calibration.budget)")] = None,
    runs: Annotated[int | None, typer.Option(help="Monte Carlo runs per point (default calibration.runs)")] = None,
    objective: Annotated[
        str | None, typer.Option(help="fom, kappa_simulation or lee_sallee (default calibration.objective)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the search and the runs (default calibration.seed)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <outputs.folder>/calibration)")] = None,
    parallel: Annotated[
        str | None, typer.Option(help="threads (engine threads) or dask (two local workers); default calibration.parallel")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
    force: Annotated[bool, typer.Option("--force", help="replace an output folder another command wrote")] = False,
) -> None:
    """Fit the growth parameters to the change observed between a history year and the start year."""
    from landuse.calibration.objective import OBJECTIVES
    from landuse.calibration.run import calibrate_scenario
    from landuse.core.errors import ConfigError

    if budget is not None and budget < 4:
        raise ConfigError(f"--budget must be at least 4 points, got {budget}")
    if runs is not None and runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    if objective is not None and objective not in OBJECTIVES:
        raise ConfigError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if parallel is not None and parallel not in ("threads", "dask"):
        raise ConfigError(f"--parallel must be threads or dask, got {parallel!r}")
    if seed is not None and not 0 <= seed < 2**63:
        raise ConfigError(f"--seed must be within [0, 2**63 - 1], got {seed}")

    def progress(ev: dict[str, Any]) -> None:
        if not quiet:
            typer.echo(_calibration_progress(ev), err=True)

    result, files = calibrate_scenario(config, out=out, budget=budget, runs=runs, objective=objective, seed=seed,
                                       parallel=parallel, progress=progress, force=force)
    v = result.validation
    typer.echo(f"calibrated {result.info['before_year']} -> {result.info['after_year']} on {result.objective}: "
               f"{len(result.table)} points, {result.info['seconds']:.1f} s")
    typer.echo(f"  FoM calibrated {v['calibrated']['fom']:.4f}, uncalibrated default {v['default']['fom']:.4f}, "
               f"null model {v['null']['fom']:.4f} (fresh seeds)")
    typer.echo("  " + ", ".join(f"{k} = {val}" for k, val in result.best.items()))
    typer.echo(f"wrote {files['yaml']}, {files['csv'].name}, {files['png'].name}, {files['md'].name}")
    typer.echo(f"apply with: landuse run {config} --calibration {files['yaml']}")


def _calibration_progress(ev: dict[str, Any]) -> str:
    """One progress line of a calibration.

    Search points count against the budget; the finalists and the refinement around the chosen point come after
    the search, on fresh seeds, outside the budget.
    """
    if ev["stage"] in ("default", "sobol", "gp"):
        return f"point {ev['point']}/{ev['budget']} ({ev['stage']}): {ev['objective']:.4f}, best {ev['best']:.4f}"
    return f"point {ev['point']}, after the search ({ev['stage']}, fresh seeds): {ev['objective']:.4f}"


@app.command(short_help="Fit on the past, predict the next observed map, score against null models.")
@handles_errors
def hindcast(
    config: Annotated[Path, typer.Argument(help="scenario YAML with two layers.history years before the start year")],
    t0: Annotated[int | None, typer.Option(help="start of the fit interval (default: the earliest history year)")] = None,
    t1: Annotated[int | None, typer.Option(help="end of the fit interval, start of the prediction "
                                           "(default: the latest history year)")] = None,
    quantities: Annotated[str, typer.Option(help="amounts of the predicted year given cluster-wide (cluster) or "
                                            "per allocation zone (zone)")] = "cluster",
    budget: Annotated[int | None, typer.Option(help="calibration points (default calibration.budget)")] = None,
    runs: Annotated[int | None, typer.Option(help="Monte Carlo runs (default calibration.runs)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed (default calibration.seed)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <outputs.folder>/hindcast)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
    force: Annotated[bool, typer.Option("--force", help="replace an output folder another command wrote")] = False,
) -> None:
    """Fit on t0 -> t1, predict t1 -> the start year with its observed amounts, and score the model.

    The model is scored against the distance, logistic and random null models on the same amounts
    (hindcast.json/md).
    """
    from landuse.calibration.hindcast import hindcast_scenario

    def progress(ev: dict[str, Any]) -> None:
        if not quiet:
            typer.echo("fit: " + _calibration_progress(ev), err=True)

    result, files = hindcast_scenario(config, out=out, t0=t0, t1=t1, quantities=quantities, budget=budget, runs=runs,
                                      seed=seed, progress=progress, force=force)
    t0_, t1_, t2_ = result.years
    typer.echo(f"hindcast: fitted on {t0_} -> {t1_}, predicted {t1_} -> {t2_} ({result.quantities} amounts: "
               + ", ".join(f"{t} {n} cells" for t, n in result.amounts.items()) + ")")
    typer.echo(f"  {'map':<16}{'FoM':>8}{'hits':>8}{'misses':>8}{'f.alarms':>10}{'quant.':>8}{'alloc.':>8}")
    for _, r in result.table().iterrows():
        typer.echo(f"  {r['map']:<16}{r['fom']:>8.4f}{r['hits']:>8}{r['misses']:>8}{r['false_alarms']:>10}"
                   f"{r['quantity_dis']:>8.4f}{r['allocation_dis']:>8.4f}")
    ratio = result.to_dict()["model_over_best_null"]
    typer.echo(f"  best null: {result.best_null}; model {100 * ratio['model']:+.1f} %, "
               f"expected map {100 * ratio['model_expected']:+.1f} %")
    typer.echo(f"wrote {files['json']}, {files['md'].name}, {files['expected'].name}, {files['png'].name}")


@app.command(short_help="Check an output folder against its manifest.")
@handles_errors
def verify(
    folder: Annotated[Path, typer.Argument(help="output folder of a landuse command")],
) -> None:
    """Check an output folder against its manifest.json: every file with its size and SHA-256, nothing else.

    Exit 0 if it matches, 1 if not (a file changed, missing or not in the manifest), 2 if
    there is no such folder. Leftovers of a stopped run beside the folder are cleaned up
    first (a folder caught between the two renames of its swap is restored).
    """
    from landuse.io.folders import verify_folder

    result = verify_folder(folder)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(result.text())
    if not result.ok:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - outside any command
        _err("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
