"""The skeleton every stage driver shares: which work units this rank owns, which are done, its own temp files,
one sink per unit (aborted on any error, closed on success), a stop at the next boundary on Ctrl-C or preemption,
and the file barriers where ranks meet.

Stops (:mod:`dataigm.core.interrupt`): on SIGINT, SIGTERM or SIGUSR1 :func:`run_units` finishes the step in flight
(the sample a ``work`` function last reported through ``advance``), keeps the unit's sink as a checkpoint when it can
(:meth:`dataigm.core.shards.ShardSink.checkpoint`; without one, the unit is finished and closed), and raises
:class:`~dataigm.core.interrupt.Interrupted` naming what was finished.

A driver reads its work units (shards, usually), then calls :func:`run_units` with a ``work`` function that fills
one unit's sink; ranks that must wait for the others' files use :func:`wait_for_files` (or :func:`wait_until`
for a condition other than "these files exist"). No process group is needed: every rank computes the same
partition (:func:`dataigm.core.partition.partition`) and the done markers are files.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, Protocol, Sequence, TypeVar

from dataigm.core.atomic import remove_stale_tmp, remove_tmp_of
from dataigm.core.interrupt import Interrupted, StopRequest, stop_at_boundary
from dataigm.core.partition import partition

U = TypeVar("U")
T = TypeVar("T")


class Sink(Protocol):
    """What :func:`run_units` needs of a unit's writer (:class:`~dataigm.core.shards.ShardSink` is one)."""

    def abort(self) -> None: ...

    def close(self) -> Any: ...


@dataclass
class OwnedUnits(Generic[U]):
    """This rank's share of the units, and the part of it still to do (in the same order)."""

    owned: list[U]
    todo: list[U]

    @property
    def skipped(self) -> int:
        return len(self.owned) - len(self.todo)


@dataclass
class UnitsResult:
    """What :func:`run_units` did: units owned by this rank, skipped as done, done now; ``results`` holds what each
    done unit's sink returned on close (or ``work`` returned, without a sink), in order."""

    owned: int
    skipped: int
    done: int
    results: list[Any] = field(default_factory=list)


def thread_map(fn: Callable[[T], U], items: Sequence[T], workers: int | None = None) -> list[U]:
    """``[fn(x) for x in items]`` in ``workers`` threads (default: 4 per core, at most 32) over contiguous chunks, in
    order: one task per chunk, not per item, since with 100k small files a pool's per-item overhead is most of the
    work. For I/O and for code that releases the GIL (hashing, reading files)."""
    workers = workers or max(1, min(32, 4 * (os.cpu_count() or 1), len(items)))
    if workers <= 1 or len(items) < 64:
        return [fn(x) for x in items]
    size = math.ceil(len(items) / workers)
    with ThreadPoolExecutor(workers) as pool:
        chunks = pool.map(lambda i: [fn(x) for x in items[i:i + size]], range(0, len(items), size))
        return [y for chunk in chunks for y in chunk]


def own_units(units: Sequence[U], rank: int, world: int, is_done: Callable[[U], bool] | None = None) -> OwnedUnits[U]:
    """The units rank ``rank`` of ``world`` owns, and those of them ``is_done`` does not call finished."""
    owned = partition(units, rank, world)
    return OwnedUnits(owned, [u for u in owned if is_done is None or not is_done(u)])


def remove_own_tmp(units: Iterable[U], outputs: Callable[[U], Iterable[Path]]) -> int:
    """Delete the temp files killed runs left for these units' output paths only (other ranks may be writing beside
    them); returns how many."""
    return sum(remove_tmp_of(path) for unit in units for path in outputs(unit))


class StopInUnit(BaseException):
    """Raised by ``advance`` inside :func:`run_unit` when a stop was asked and the sink can keep a checkpoint;
    ``held``: how many planned samples the checkpoint holds (set once it is written)."""

    held = 0


def run_unit(unit: U, work: Callable[[U, Any, Callable[[int], None]], Any], open_sink: Callable[[U], Any] | None = None,
             advance: Callable[[int], None] = lambda n: None, stop: StopRequest | None = None) -> Any:
    """Do one unit: open its sink, ``work(unit, sink, advance)``, close the sink and return what close returns.

    On any exception (a bug, a second Ctrl-C, a full disk) the sink is aborted, so nothing half-written is published,
    and the exception propagates. Without ``open_sink`` the sink is None and ``work``'s result is returned.
    With ``stop`` set and a sink that has ``checkpoint()``, the next ``advance`` call keeps the sink as a checkpoint
    and raises :class:`StopInUnit`.
    """
    sink = open_sink(unit) if open_sink is not None else None
    step = advance
    if stop is not None and hasattr(sink, "checkpoint"):
        def step(k: int) -> None:
            advance(k)
            if stop and not getattr(sink, "full", False):  # a sink holding every planned sample is closed instead
                raise StopInUnit

    try:
        result = work(unit, sink, step)
    except StopInUnit as e:
        e.held = sink.checkpoint()  # type: ignore[union-attr]
        raise
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    return sink.close() if sink is not None else result


def stopped(done: "UnitsResult", todo: int, noun: str = "shard", held: int = 0) -> str:
    """What a stopped stage finished, in words, for :class:`~dataigm.core.interrupt.Interrupted`."""
    text = f"{done.done} of {todo} {noun}s to do finished" + (f" ({done.skipped} done before)" if done.skipped else "")
    return text + (f", 1 checkpointed with {held} samples" if held else "")


def run_units(
    units: Sequence[U],
    rank: int,
    world: int,
    work: Callable[[U, Any, Callable[[int], None]], Any],
    *,
    open_sink: Callable[[U], Sink] | None = None,
    is_done: Callable[[U], bool] | None = None,
    outputs: Callable[[U], Iterable[Path]] | None = None,
    folder: Path | None = None,
    progress: bool = False,
    desc: str = "",
    unit: str = "unit",
    size: Callable[[U], int] | None = None,
) -> UnitsResult:
    """Partition ``units`` over ranks, skip the done ones, clean this rank's stale temps, then do each unit.

    1. This rank's units (:func:`own_units`); ``is_done`` marks the finished ones, which are skipped.
    2. Stale temps: those of ``outputs(unit)`` for this rank's units; with a world of 1, every stale temp below
       ``folder`` (no other rank can be writing there).
    3. Each unit to do through :func:`run_unit` (sink opened, filled by ``work``, aborted on error, closed).
    4. On a signal (:func:`~dataigm.core.interrupt.stop_at_boundary`), stop at the next ``advance`` call (the unit
       kept as a checkpoint, when its sink has ``checkpoint()``) or after the unit in flight, raising
       :class:`~dataigm.core.interrupt.Interrupted`.

    ``work(unit, sink, advance)`` may call ``advance(n)`` to move the progress bar by ``n`` (of ``size(unit)``,
    default 1 per unit); what it leaves of a unit's size is added when the unit is done. A ``work`` whose sink
    resumes from a checkpoint (``ShardSink(..., resume=True)``) starts at ``sink.position``.
    """
    from tqdm.auto import tqdm

    mine = own_units(units, rank, world, is_done)
    if outputs is not None:
        remove_own_tmp(mine.owned, outputs)
    if folder is not None and world == 1:
        remove_stale_tmp(folder)
    sizes = [size(u) if size is not None else 1 for u in mine.todo]
    done = UnitsResult(len(mine.owned), mine.skipped, 0)
    with stop_at_boundary() as stop, tqdm(total=sum(sizes), desc=desc or None, unit=unit, disable=not progress) as bar:
        for u, n in zip(mine.todo, sizes):
            stop.raise_if_set(stopped(done, len(mine.todo)))
            moved = 0

            def advance(k: int) -> None:
                nonlocal moved
                moved += k
                bar.update(k)

            try:
                done.results.append(run_unit(u, work, open_sink, advance, stop))
            except StopInUnit as e:
                raise Interrupted(stop.signum or 0, stopped(done, len(mine.todo), held=e.held)) from None
            if n > moved:
                bar.update(n - moved)
            done.done += 1
        stop.raise_if_set(stopped(done, len(mine.todo)))
    return done


# --- barriers between ranks ---------------------------------------------------------------------------------------
def wait_until(ready: Callable[[], T | None], what: str, timeout: float | None, poll: float = 2.0, *,
               missing: Callable[[], str] | None = None) -> T:
    """Poll ``ready()`` every ``poll`` seconds until it returns something other than None, and return that.

    ``ready`` may raise to stop the wait (another rank recorded an error). After ``timeout`` seconds (None: no
    limit) raise TimeoutError naming ``what`` and, with ``missing``, what is still missing.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = ready()
        if value is not None:
            return value
        if deadline is not None and time.monotonic() > deadline:
            detail = f": {missing()}" if missing is not None else ""
            raise TimeoutError(f"waited {timeout:.0f}s for {what}{detail}")
        time.sleep(poll)


def wait_for_files(paths: Sequence[Path], what: str, timeout: float | None, poll: float = 2.0) -> None:
    """A file barrier between ranks: return once every path exists; after ``timeout`` seconds raise TimeoutError
    naming ``what``, how many paths are missing and one of them."""
    paths = [Path(p) for p in paths]

    def absent() -> list[Path]:
        return [p for p in paths if not p.exists()]

    def describe() -> str:
        gone = absent()
        return f"{len(gone)} missing, e.g. {gone[0]}" if gone else "all there now"

    wait_until(lambda: True if not absent() else None, what, timeout, poll, missing=describe)
