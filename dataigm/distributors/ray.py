"""The Ray Data distributor: a stage's work units done by actors on a Ray cluster, each loading its pipeline once.

The driver (the process that runs the command) plans the units and records the part, exactly as a one-process run
does; :func:`map_units` then sends the index of every unit to do through ``ray.data`` ``map_batches`` (one unit per
batch) on a pool of actors. Each actor builds its worker once (``make_worker()``: the pipeline, the filters or the
judge loaded there) and calls it on each unit it gets; the worker writes the unit through
:class:`~dataigm.core.shards.ShardSink` (temp file + rename, stats last), so a unit is published whole or not at
all. A worker process that dies (preempted node, OOM kill, ``os._exit``) is restarted by Ray and its unit re-run
from the start (Ray Data restarts a dead actor and re-runs its unit): the retried unit writes a fresh temp file and replaces nothing half-written,
so no sample is duplicated. An exception raised by the worker (a bug, a refused input) is not retried: it stops the
run, a :class:`~dataigm.core.errors.DataigmError` with its own one-line message. The driver writes the manifest afterwards with the stage's own code.

Placement: with ``gpu=True`` and GPUs in the cluster, one actor per GPU (``num_gpus=1``); otherwise one actor per
CPU of the cluster (``num_cpus=1``), never more actors than units.

This is the only module of dataigm that imports ray (:func:`dataigm.distributors.ray_distributor` loads it).

    >>> results = map_units([1, 2, 3], SquareWorker)            # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import ray

from dataigm.core.errors import DataigmError

log = logging.getLogger(__name__)

U = TypeVar("U")


@dataclass(frozen=True)
class Placement:
    """How many actors run the units and what each one reserves."""

    actors: int
    num_gpus: float = 0.0
    num_cpus: float = 1.0


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` (``None``: ``RAY_ADDRESS``, else a local one), unless already connected."""
    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)


def placement(n_units: int, gpu: bool, resources: dict[str, float] | None = None) -> Placement:
    """One actor per GPU (``gpu`` and the cluster has GPUs), else one per CPU; at least one, at most ``n_units``."""
    resources = ray.cluster_resources() if resources is None else resources
    gpus = int(resources.get("GPU", 0))
    if gpu and gpus:
        return Placement(max(1, min(gpus, n_units)), num_gpus=1.0, num_cpus=0.0)
    return Placement(max(1, min(int(resources.get("CPU", 1)), n_units)))


class UnitFailed(DataigmError):
    """An expected error (a :class:`DataigmError`) raised while a worker did a unit, raised again in the driver with
    the worker's message, which Ray's own additions to the exception do not change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class _UnitActor:
    """A Ray Data actor: builds the worker once, then does the units whose indices each batch carries."""

    def __init__(self, units: Sequence[Any], make_worker: Callable[[], Callable[[Any], Any]]) -> None:
        self.units = units
        self.worker = make_worker()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices = batch["i"]
        results = np.empty(len(indices), dtype=object)
        for k, i in enumerate(indices):
            try:
                results[k] = self.worker(self.units[int(i)])
            except DataigmError as e:
                raise UnitFailed(str(e)) from None
        return {"i": indices, "result": results}


def map_units(units: Sequence[U], make_worker: Callable[[], Callable[[U], Any]], *, address: str | None = None,
              gpu: bool = False, progress: bool = False) -> list[Any]:
    """Do every unit on the Ray cluster at ``address``; returns what the worker returned for each, in unit order.

    ``make_worker`` is called once per actor (it must be picklable: a module-level class or a ``functools.partial``
    of one) and returns the function that does one unit. ``gpu``: the work runs on a GPU where the cluster has one.
    A unit whose worker process dies is re-run on a restarted actor (Ray Data's defaults for actor pools: restarts
    and re-runs without limit); an exception the worker raises stops the run.
    """
    if not units:
        return []
    connect(address)
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.raise_original_map_exception = True  # a worker's exception reaches the caller as itself (see below)
    where = placement(len(units), gpu)
    log.info("ray: %d units on %d actors (%g GPU, %g CPU each)", len(units), where.actors, where.num_gpus, where.num_cpus)
    dataset = ray.data.from_items([{"i": i} for i in range(len(units))], override_num_blocks=len(units))
    done = dataset.map_batches(
        _UnitActor, fn_constructor_kwargs={"units": list(units), "make_worker": make_worker}, batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=where.actors), num_gpus=where.num_gpus, num_cpus=where.num_cpus,
    )
    try:
        rows = done.take_all()
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, UnitFailed):  # bad input met by a worker: its one-line message
            raise UnitFailed(e.cause.message) from None
        raise  # a bug: Ray's error, with the worker's traceback
    results: list[Any] = [None] * len(units)
    for row in rows:
        results[int(row["i"])] = row["result"]
    return results
