"""Several scenarios in one command: one after another here, or one task each on Dask.

:func:`run_batch` runs each scenario with the same :func:`landuse.pipeline.run.run_scenario` as on a single machine,
with the same seeds, so a scenario's outputs are byte-identical whether it ran in this process or on a worker
(:func:`landuse.scale.distributed.dask_client` gives the cluster).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landuse.core.errors import LanduseError
from landuse.scale.distributed import dask_client

__all__ = ["run_batch"]


def _run_one(config: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario (on a worker) and return a light summary (no arrays)."""
    from landuse.core.config import load_scenario
    from landuse.evaluation.checks import summary
    from landuse.pipeline.run import run_scenario

    sc = load_scenario(config)
    sc.config.compute.scheduler = None  # already on a worker: its periods grow here, not on another cluster
    r = run_scenario(sc, **overrides)
    return {
        "scenario": r.scenario.name,
        "config": str(config),
        "out_dir": str(r.out_dir),
        "passed": r.passed,
        "failures": r.failures,
        "checks_summary": summary(r.checks),
        "seconds": r.manifest["timings_s"]["total"],
        "shortfall_cells": int(r.shortfall["shortfall"].sum()) if len(r.shortfall) else 0,
        "worker_pid": os.getpid(),
    }


def run_batch(
    configs: Sequence[str | os.PathLike],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    memory_limit: str = "auto",
    out: str | os.PathLike | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Run several scenarios, on Dask when ``scheduler`` is given, else one after another here.

    Parameters
    ----------
    configs : sequence of path
        Scenario YAML files.
    scheduler : str, optional
        ``local`` or a Dask scheduler address.
    workers, memory_limit
        Size of a ``local`` cluster.
    out : path, optional
        Parent folder: each scenario writes into ``out/<scenario name>``.
    **overrides
        ``runs``, ``seed``, ``solver``, ``force`` as for :func:`landuse.pipeline.run.run_scenario`.

    Returns
    -------
    list of dict
        One summary per scenario, in the order given.
    """
    from landuse.core.config import load_scenario

    jobs = []
    names = set()
    for c in configs:
        sc = load_scenario(c)  # validate everything before any work starts
        if sc.name in names and out is not None:
            raise LanduseError(f"two configs share the scenario name {sc.name!r}; their outputs would collide in {out}")
        names.add(sc.name)
        kw = dict(overrides)
        if out is not None:
            kw["out"] = str(Path(out) / sc.name)
        jobs.append((str(Path(c).resolve()), kw))
    if scheduler is None:
        return [_run_one(c, kw) for c, kw in jobs]
    with dask_client(scheduler, workers=workers, memory_limit=memory_limit) as client:
        futures = [client.submit(_run_one, c, kw, pure=False) for c, kw in jobs]
        return client.gather(futures)
