"""Entry point of the ``landuse`` command: ``landuse sleuth`` without loading the full CLI.

A ``landuse sleuth`` predict run of the demo region simulates in about 0.15 s; loading
the typer CLI took 0.1 s more (typer itself, and pydantic, which typer uses to coerce
option values). So a well-formed ``landuse sleuth ...`` command line is parsed here with
:mod:`argparse` and runs the very function the typer command runs
(:func:`run_sleuth_command`). Anything else, including ``--help``, an unknown option or
a value of the wrong type, goes to the typer CLI (:mod:`landuse.cli.app`), which prints the
usual messages. A test keeps the options of both parsers the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# (option, destination, type, default) of `landuse sleuth`, as in landuse.cli.app.sleuth
SLEUTH_OPTIONS: tuple[tuple[str, str, Callable, object], ...] = (
    ("--mode", "mode", str, "test"),
    ("--out", "out", Path, None),
    ("--input-dir", "input_dir", Path, None),
    ("--runs", "runs", int, None),
    ("--seed", "seed", int, None),
    ("--search", "search", str, "grid"),
    ("--budget", "budget", int, None),
    ("--objective", "objective", str, "OSM"),
    ("--force", "force", bool, False),
)


class _NotForUs(Exception):
    """The command line is not a plain `landuse sleuth` run: leave it to the typer CLI."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse hook: never print or exit here
        raise _NotForUs(message)

    def exit(self, status: int = 0, message: str | None = None):
        raise _NotForUs(message or "")


def _sleuth_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="landuse sleuth", add_help=False, allow_abbrev=False)
    p.add_argument("scenario", type=Path)
    for flag, dest, kind, default in SLEUTH_OPTIONS:
        if kind is bool:  # a flag without a value, as typer's
            p.add_argument(flag, dest=dest, action="store_true", default=default)
        else:
            p.add_argument(flag, dest=dest, type=kind, default=default)
    return p


def run_sleuth_command(scenario: Path, *, mode: str = "test", out: Path | None = None,
                       input_dir: Path | None = None, runs: int | None = None, seed: int | None = None,
                       search: str = "grid", budget: int | None = None, objective: str = "OSM",
                       force: bool = False) -> str:
    """Run a SLEUTH scenario as ``landuse sleuth`` does; progress to stderr; returns the summary text."""
    from landuse.sleuth.model import run_sleuth, skip_numba_blas_probe

    skip_numba_blas_probe(lazy=True)  # start-up: no BLAS probe if numba is needed at all (see its docstring)
    result = run_sleuth(
        scenario, mode=mode, out_dir=out, input_dir=input_dir, runs=runs, seed=seed, search=search, budget=budget,
        objective=objective, force=force, progress=lambda m: print(m, file=sys.stderr, flush=True),
    )  # fmt: skip
    return result.text()


def fast_sleuth(argv: Sequence[str]) -> int | None:
    """Run ``landuse sleuth ARGS`` without the typer CLI; None when the command line is left to it.

    Returns the exit code: 0, 2 after a :class:`~landuse.core.errors.LanduseError` (one line
    per problem on stderr, as the CLI prints it), 130 when interrupted.
    """
    argv = list(argv)
    if not argv or argv[0] != "sleuth" or any(a in ("-h", "--help") or a.startswith("--help=") for a in argv[1:]):
        return None
    try:
        args = _sleuth_parser().parse_args(argv[1:])
    except _NotForUs:  # argparse reports bad values through error(), which raises it
        return None
    from landuse.core.errors import LanduseError

    try:
        text = run_sleuth_command(**vars(args))
    except LanduseError as exc:
        problems = getattr(exc, "problems", None)
        for p in (problems if problems and len(problems) > 1 else [str(exc)]):
            print(f"error: {p}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        from landuse.io.folders import INTERRUPTED

        print(f"error: {INTERRUPTED}", file=sys.stderr)
        return 130
    print(text)
    return 0


def main() -> None:
    """Console-script entry point: ``landuse sleuth`` directly, every other command through :mod:`landuse.cli.app`."""
    code = fast_sleuth(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from landuse.cli.app import main as cli_main

    cli_main()


if __name__ == "__main__":  # pragma: no cover
    main()
