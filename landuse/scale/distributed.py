"""Dask scale-out: the client, and growth ensembles split across workers.

A user moves from one machine to a cluster by a config key (``compute.scheduler``) or a
flag (``landuse run --scheduler local|tcp://host:8786``):

* ``local`` starts a ``LocalCluster`` on the loopback interface (``compute.workers``
  worker processes of one thread each, ``compute.memory_limit`` per worker, numba
  limited to one thread per worker so the workers do not oversubscribe the cores);
* an address connects to an existing scheduler.

:func:`dask_client` opens either; :func:`landuse.pipeline.batch.run_batch` runs several scenarios on it, one
task each. No home-made process pool or scheduler is involved.

:func:`simulate_ensemble` splits the Monte Carlo runs of one growth simulation across the
workers (each task runs a block of global run indices with the same counter-based draws)
and merges their logs into the counts, representative run and maps exactly as
:func:`landuse.growth.simulate` does. :func:`growth_function` picks the growth path of a
pipeline period: in memory, ensembles on Dask, or tiled (:mod:`landuse.scale.tiled`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from landuse.core.config_stages import DASK_MISSING, dask_installed
from landuse.core.config_stages import SCHEDULER_SCHEMES as _SCHEMES
from landuse.core.errors import LanduseError


def check_scheduler(address: str) -> str:
    """Validate a ``--scheduler`` value: ``local`` or a Dask scheduler address."""
    if address == "local" or address.startswith(_SCHEMES):
        if not dask_installed():
            raise LanduseError(f"scheduler {address!r} {DASK_MISSING}")
        return address
    raise LanduseError(
        f"scheduler {address!r} is neither 'local' nor a Dask scheduler address such as tcp://10.0.0.5:8786"
    )


@contextlib.contextmanager
def dask_client(scheduler: str, *, workers: int = 2, memory_limit: str = "auto") -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``scheduler`` (``local`` or an address), closed on exit."""
    check_scheduler(scheduler)
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        # one numba thread per single-threaded worker (applied in each worker process before it
        # runs a task; the parent's environment is left alone)
        one_thread = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # a free port: never clashes with another cluster's dashboard
            memory_limit=memory_limit,
            env=one_thread,
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
            "`scheduler` local"
        ) from None
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------- growth ensembles


def _ensemble_part(lu0: Any, zones: Any, targets: Any, params: Any, seed: int, run_ids: list[int]) -> list[Any]:
    """Runs ``run_ids`` of one simulation (on a worker); returns their logs."""
    from landuse.growth.plan import build_plan, run_ensemble

    plan = build_plan(zones, targets, params)
    return run_ensemble(plan, lu0, params, seed=seed, run_ids=run_ids)


def simulate_ensemble(
    landscape: Any,
    targets: Any,
    *,
    params: Any,
    client: Any,
    runs: int = 10,
    seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
    parts: int | None = None,
) -> Any:
    """:func:`landuse.growth.simulate` with its Monte Carlo runs spread over a Dask cluster.

    Each task runs a block of the global run indices (draws depend on the run index, not
    on where it runs); counts, the representative run and the maps are then built from
    the merged logs exactly as in memory, so the result is identical to ``simulate``.

    Parameters
    ----------
    landscape, targets, params, runs, seed
        As for :func:`landuse.growth.simulate`.
    client : dask.distributed.Client
        From :func:`dask_client` or your own.
    progress : callable, optional
        Called per run and period as the blocks come back (same events as ``simulate``).
    parts : int, optional
        Number of tasks (default: two per worker, at most ``runs``).

    Returns
    -------
    GrowthResult
    """
    import numpy as np
    from dask.distributed import as_completed

    from landuse.growth.plan import build_plan, check_inputs, finish_ensemble, zone_raster

    runs, seed, lu0 = check_inputs(landscape, params, runs, seed)
    zones = zone_raster(landscape)
    plan = build_plan(zones, targets, params)  # validates the targets here, before any task starts
    if parts is None:
        parts = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    parts = max(1, min(int(parts), runs))
    blocks = [list(b) for b in np.array_split(np.arange(runs), parts) if b.size]
    data = client.scatter([lu0, zones, targets, params], broadcast=True)
    futs = [client.submit(_ensemble_part, *data, seed, [int(r) for r in b], pure=False) for b in blocks]
    logs: dict[int, Any] = {}
    tgt = plan.tgt
    for _, part in as_completed(futs, with_results=True):
        for lg in part:
            logs[lg.run] = lg
            if progress is not None:
                for p, year in enumerate(plan.years):
                    conv = lg.conv[p]
                    progress({"run": lg.run, "runs": runs, "period": year, "period_index": p, "periods": plan.P,
                              "converted": int(conv.sum()), "shortfall": int(tgt[p].sum() - conv.sum())})
    return finish_ensemble(landscape, lu0, plan, params, [logs[r] for r in range(runs)], runs=runs, seed=seed)


def growth_function(*, chunks: int | None = None, client: Any | None = None) -> Callable[..., Any]:
    """The growth call of a pipeline period, with :func:`landuse.growth.simulate`'s signature.

    ``chunks`` set: the tiled path (:func:`landuse.scale.tiled.simulate_tiled`, its tile
    tasks on ``client`` when given); else ``client`` set: :func:`simulate_ensemble`; else
    the in-memory :func:`landuse.growth.simulate` itself. All give the same result.
    """
    import functools

    if chunks is not None:
        from landuse.scale.tiled import simulate_tiled

        return functools.partial(simulate_tiled, chunks=chunks, client=client)
    if client is not None:
        return functools.partial(simulate_ensemble, client=client)
    from landuse.growth import simulate

    return simulate


_CLIENTS: dict[tuple[str, int, str], Any] = {}


def shared_client(scheduler: str, *, workers: int = 2, memory_limit: str = "auto") -> Any:
    """A client kept for the rest of the process (one per scheduler and cluster size), closed at exit.

    The pipeline grows every period on the same cluster; a ``local`` cluster is started
    once, not per period.
    """
    import atexit

    key = (scheduler, int(workers), str(memory_limit))
    if key not in _CLIENTS:
        cm = dask_client(scheduler, workers=workers, memory_limit=memory_limit)
        client = cm.__enter__()
        _CLIENTS[key] = client
        atexit.register(cm.__exit__, None, None, None)
    return _CLIENTS[key]


def pipeline_growth(compute: Any) -> Callable[..., Any]:
    """The growth call for a scenario's ``compute`` section (see :func:`growth_function`).

    ``compute.scheduler`` set: the period's ensemble (or, with ``compute.chunks``, its tile
    tasks) run on that Dask cluster (:func:`shared_client`); ``compute.chunks`` set: the
    tiled path; neither: the in-memory :func:`landuse.growth.simulate`.
    """
    client = None
    if compute.scheduler is not None:
        client = shared_client(check_scheduler(compute.scheduler), workers=compute.workers,
                               memory_limit=compute.memory_limit)
    return growth_function(chunks=compute.chunks, client=client)
