"""How the driver of tiled growth talks to its workers.

Every step of a period is one round of tasks, one per worker thread, each carrying a batch of that thread's tiles.
On Dask (``client`` given) each worker thread has a step actor (:class:`_StepActor`) pinned to it, so the tile
states a step builds stay in that worker's memory for the next steps; a tile always goes to the same actor
(:meth:`_Runner.owner`), so its state is found again, and when a worker is lost its tiles are rebuilt from the
store and the run's history on another. Arguments and results cross as pickles of plain numpy arrays and tuples
(:func:`_send` / :func:`_receive`). Without a client the same batches run on a local thread pool, the same
functions, so results do not depend on the path. Actors rather than ``map_overlap``: a step's tasks need the
conversions of the step before in their halo and keep per-tile state between steps, which ``map_overlap``'s
stateless blocks would rebuild every step (measured in docs/scaling.md).
"""


from __future__ import annotations

import pickle
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from landuse.scale.tile_tasks import (
    _drop_states,
)

# --------------------------------------------------------------------------- execution


def _batch(fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
    return [fn(*a) for a in calls]


# step actors per client, kept between runs: (workers, actor futures, actors once gathered)
_ACTOR_CACHE: weakref.WeakKeyDictionary[Any, tuple[list[str], list[Any], dict[str, Any] | None]] = (
    weakref.WeakKeyDictionary())


class _StepActor:
    """A Dask actor on one worker that runs the driver's batches of tile tasks in the worker's threads.

    The driver calls it directly (no scheduler in between): a step's round trip is one
    message each way instead of a task's passage through the scheduler (about 1 ms instead
    of 10-20 ms on the 2-core test machine). Each batch runs in a thread of the worker's
    own executor, with the worker in context (``get_worker`` works, e.g. for the state
    budget), so a worker of ``n`` threads steps ``n`` batches at once.
    """

    def __init__(self) -> None:
        from distributed import get_worker

        self.worker = get_worker()

    async def run(self, payload: bytes) -> bytes:
        """Run each batch of ``payload`` (pickled ``(fn, batches)``) in a thread of the worker; their results, pickled.

        One pickled message each way: Dask sends every array of the arguments as a frame of
        its own, which cost about 1 ms more per step round on the 2-core test machine.
        """
        import asyncio
        import contextvars

        fn, batches = pickle.loads(payload)
        loop = asyncio.get_running_loop()
        pool = self.worker.executors["default"]
        futs = [loop.run_in_executor(pool, contextvars.copy_context().run, _batch, fn, b) for b in batches]
        return pickle.dumps(list(await asyncio.gather(*futs)), protocol=5)


def _send(actor: Any, fn: Callable[..., Any], batches: list[list[tuple[Any, ...]]]) -> Any:
    """Call ``actor.run`` with ``fn`` and its batches as one pickled message; the call's future."""
    return actor.run(pickle.dumps((fn, batches), protocol=5))


def _receive(call: Any) -> list[list[Any]]:
    """The batches' results of a :func:`_send` call (waits for it)."""
    return pickle.loads(call.result())


class _Runner:
    """Runs a list of tile tasks on a Dask client or here, one after another.

    On a client, tile ``n``'s step tasks go to one worker (``owner(n)``), where its state
    stays between steps: through an actor per worker (:class:`_StepActor`, a direct call
    per worker and step), or, if an actor fails (its worker is gone), as ordinary tasks
    that may run elsewhere (the state is then rebuilt).
    """

    def __init__(self, client: Any | None) -> None:
        self.client = client
        self.slots: list[tuple[str, int]] = []  # (worker, thread) pairs
        self._actors: dict[str, Any] | None = None  # worker -> actor; {} once an actor failed
        self._actor_futs: list[Any] = []
        if client is not None:
            info = client.scheduler_info().get("workers", {})
            self.slots = [(w, k) for w in sorted(info) for k in range(max(1, int(info[w].get("nthreads", 1))))]
            self._actor_workers = sorted(info)
            cached = _ACTOR_CACHE.get(client)
            if cached is not None and cached[0] == self._actor_workers:
                # the actors of an earlier run on this client (same workers): no start-up, and
                # their connections are open
                self._actor_futs, self._actors = cached[1], cached[2]
            else:
                # started now, while the driver stages the inputs; they live as long as their futures
                self._actor_futs = [client.submit(_StepActor, actor=True, pure=False, workers=[w])
                                    for w in self._actor_workers]
                _ACTOR_CACHE[client] = (self._actor_workers, self._actor_futs, None)

    def owner(self, n: int) -> tuple[str, int] | None:
        """The worker thread that steps tile ``n`` (None: this process)."""
        return self.slots[n % len(self.slots)] if self.slots else None

    def _step_actors(self) -> dict[str, Any]:
        if self._actors is None:
            try:
                self._actors = dict(zip(self._actor_workers, self.client.gather(self._actor_futs), strict=True))
                _ACTOR_CACHE[self.client] = (self._actor_workers, self._actor_futs, self._actors)
            except Exception:  # no actors (a worker left): ordinary tasks instead
                self._forget_actors()
        return self._actors

    def _map_actors(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]],
                    batches: dict[tuple[str, int] | None, list[int]]) -> list[Any] | None:
        actors = self._step_actors()
        per_worker: dict[str, list[list[int]]] = {}
        for o, ns in batches.items():
            if o is None or o[0] not in actors:
                return None
            per_worker.setdefault(o[0], []).append(ns)
        try:
            calls = {w: _send(actors[w], fn, [[args[n] for n in ns] for ns in lists]) for w, lists in per_worker.items()}
            done = {w: _receive(c) for w, c in calls.items()}
        except Exception:  # an actor's worker is gone: ordinary tasks from now on
            self._forget_actors()
            return None
        out: list[Any] = [None] * len(args)
        for w, lists in per_worker.items():
            for ns, res in zip(lists, done[w], strict=True):
                for n, r in zip(ns, res, strict=True):
                    out[n] = r
        return out

    def _forget_actors(self) -> None:
        """Stop using the step actors (one failed): release them, here and in the client's cache."""
        if self.client is not None and _ACTOR_CACHE.get(self.client, (None, None))[1] is self._actor_futs:
            del _ACTOR_CACHE[self.client]
        for f in self._actor_futs:
            f.release()
        self._actor_futs = []
        self._actors = {}

    def map_batched(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]],
                    owners: Sequence[tuple[str, int] | None]) -> list[Any]:
        """``[fn(*a) for a in args]``, one batch per worker thread holding all its calls (fewer round trips)."""
        if self.client is None:
            return [fn(*a) for a in args]
        batches: dict[tuple[str, int] | None, list[int]] = {}
        for n, o in enumerate(owners):
            batches.setdefault(o, []).append(n)
        out = self._map_actors(fn, args, batches)
        if out is not None:
            return out
        futs = [self.client.submit(_batch, fn, [args[n] for n in ns], pure=False,
                                   workers=None if o is None else [o[0]], allow_other_workers=True)
                for o, ns in batches.items()]
        out = [None] * len(args)
        for ns, res in zip(batches.values(), self.client.gather(futs), strict=True):
            for n, r in zip(ns, res, strict=True):
                out[n] = r
        return out

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        if self.client is None:
            return [fn(*a) for a in args]
        futs = [self.client.submit(fn, *a, pure=False) for a in args]
        return self.client.gather(futs)

    def drop_states(self, root: str) -> None:
        """Free the tile states of the store ``root`` here and on every worker.

        Through the step actors when they work (a direct call each), else with
        ``client.run`` (through the scheduler, a few ms more).
        """
        _drop_states(root)
        if self.client is None:
            return
        actors = self._actors or {}
        if actors and set(actors) == set(self._actor_workers):
            try:
                for c in [_send(a, _drop_states, [[(root,)]]) for a in actors.values()]:
                    _receive(c)
                return
            except Exception:  # a worker is gone: the scheduler reaches the others
                self._forget_actors()
        self.client.run(_drop_states, root)

    def map_unordered(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> Iterable[tuple[int, Any]]:
        """``(index, result)`` as tasks finish (in order when run here); results are not kept."""
        if self.client is None:
            for n, a in enumerate(args):
                yield n, fn(*a)
            return
        from dask.distributed import as_completed

        # a sliding window of tasks: results (whole tiles) never pile up here faster than
        # the caller writes them
        limit = 2 * max(1, len(self.client.scheduler_info().get("workers", {})))
        index = {}
        todo = iter(enumerate(args))
        ac = as_completed(with_results=True)
        for n, a in todo:
            fut = self.client.submit(fn, *a, pure=False)
            index[fut.key] = n
            ac.add(fut)
            if len(index) >= limit:
                break
        for fut, res in ac:
            nxt = next(todo, None)
            if nxt is not None:
                f2 = self.client.submit(fn, *nxt[1], pure=False)
                index[f2.key] = nxt[0]
                ac.add(f2)
            yield index.pop(fut.key), res
            fut.release()
            del res


