"""The ``landuse`` command.

Every :class:`~landuse.errors.LanduseError` becomes one clear line on stderr and exit
code 2; a failed check (e.g. a quota not met) exits 1; success exits 0. The engine
knows nothing of the terminal: progress reaches it through callbacks filled here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from landuse.errors import LanduseError

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


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LanduseError into one line + exit 2, and Ctrl-C into a clear message + exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except LanduseError as exc:
            problems = getattr(exc, "problems", None)
            if problems and len(problems) > 1:
                for p in problems:
                    _err(p)
            else:
                _err(str(exc))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            _err("interrupted; files being written were discarded, earlier outputs are intact")
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@handles_errors
def validate(
    config: Annotated[Path, typer.Argument(help="scenario YAML file")],
) -> None:
    """Check a scenario without running it: schema, files, grid alignment, class codes, demand."""
    from landuse.validate import validate_scenario

    summary = validate_scenario(config)
    typer.echo(summary.text())


@app.command()
@handles_errors
def sample(
    outdir: Annotated[Path, typer.Argument(help="folder to write the sample region into")],
    size: Annotated[int, typer.Option(help="grid edge in cells (the region is size x size)")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives byte-identical rasters")] = 42,
    cell_size: Annotated[float, typer.Option("--cell-size", help="cell edge in metres")] = 60.0,
    config_dir: Annotated[
        Path | None, typer.Option("--config-dir", help="folder for the scenario YAML (default: OUTDIR)")
    ] = None,
) -> None:
    """Generate the synthetic sample city cluster (GeoTIFFs, scenario YAML, PNG overview)."""
    from landuse.sample import generate_sample

    info = generate_sample(outdir, size=size, seed=seed, cell_size=cell_size, config_dir=config_dir)
    typer.echo(info.text())


@app.command()
@handles_errors
def evaluate(
    landuse_tif: Annotated[Path, typer.Argument(help="land-use GeoTIFF to evaluate, on the scenario's grid")],
    config: Annotated[Path, typer.Option("--config", "-c", help="scenario YAML file")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the full quota report as JSON to this file")
    ] = None,
) -> None:
    """Evaluate a land-use map against the scenario's quotas; exit 1 if a check fails.

    Checks: open-space quota per city or for the cluster, the farmland-loss cap, permanent
    farmland intact and no red-line cell converted, each against the scenario's start land use.
    """
    import json

    from landuse.io import write_text
    from landuse.metrics import as_jsonable, evaluate_file

    report, _scenario = evaluate_file(landuse_tif, config)
    typer.echo(report.table())
    if json_out is not None:
        write_text(json_out, json.dumps(as_jsonable(report.to_dict()), indent=2, allow_nan=False) + "\n")
    if not report.passed:
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
