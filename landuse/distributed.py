"""Dask scale-out: scenario batches on ``dask.distributed``.

A user moves from one machine to a cluster by a config key (``compute.scheduler``) or a
flag (``landuse run --scheduler local|tcp://host:8786``):

* ``local`` starts a ``LocalCluster`` on the loopback interface (``compute.workers``
  worker processes of one thread each, ``compute.memory_limit`` per worker, numba
  limited to one thread per worker so the workers do not oversubscribe the cores);
* an address connects to an existing scheduler.

:func:`run_batch` runs several scenarios, one task each; every task is the same
:func:`landuse.scenario.run_scenario` as on a single machine, with the same seeds, so a
scenario's outputs are byte-identical whether it ran in this process or on a worker.
No home-made process pool or scheduler is involved.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from landuse.errors import LanduseError

_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


def check_scheduler(address: str) -> str:
    """Validate a ``--scheduler`` value: ``local`` or a Dask scheduler address."""
    if address == "local" or address.startswith(_SCHEMES):
        return address
    raise LanduseError(
        f"scheduler {address!r} is neither 'local' nor a Dask scheduler address such as tcp://10.0.0.5:8786"
    )


@contextlib.contextmanager
def dask_client(scheduler: str, *, workers: int = 2, memory_limit: str = "auto") -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``scheduler`` (``local`` or an address), closed on exit."""
    from dask.distributed import Client, LocalCluster

    check_scheduler(scheduler)
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=memory_limit,
            env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout="5s")
    except OSError as exc:
        raise LanduseError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with `dask scheduler` or use "
            "--scheduler local"
        ) from None
    try:
        yield client
    finally:
        client.close()


def _run_one(config: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario (on a worker) and return a light summary (no arrays)."""
    from landuse.scenario import run_scenario

    r = run_scenario(config, **overrides)
    return {
        "scenario": r.scenario.name,
        "config": str(config),
        "out_dir": str(r.out_dir),
        "passed": bool(r.report.data.get("passed")),
        "failures": list(r.report.data.get("failures", [])),
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
        ``runs``, ``seed``, ``solver``, ``force`` as for :func:`landuse.scenario.run_scenario`.

    Returns
    -------
    list of dict
        One summary per scenario, in the order given.
    """
    from landuse.config import load_scenario

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
