"""One way to stop: Ctrl-C (SIGINT) and a scheduler's preemption (SIGTERM, and SIGUSR1, which Slurm sends before
the time limit with ``--signal=USR1@SECONDS``) both ask the stage in flight to stop at its next boundary.

A stage driver wraps its loop in :func:`stop_at_boundary`. The first signal only sets the flag; the driver finishes
the batch in flight, closes it as done work (a finished shard is published; an unfinished one is kept as a
checkpoint, :meth:`dataigm.core.shards.ShardSink.checkpoint`, that the rerun continues from) and raises
:class:`Interrupted`, which the command line prints as one line and turns into the exit code below. A second
signal stops at once (SIGINT as ``KeyboardInterrupt``): the unit in flight is aborted, what was published stays.

Exit codes (the shell's 128 + signal number, what a process killed by that signal reports): 130 for SIGINT, 143 for
SIGTERM, 138 for SIGUSR1. Schedulers match them to requeue: ``sbatch --requeue`` jobs are requeued by Slurm on
preemption whatever the code; a time-limit script requeues itself on 138/143 (docs/many-machines.md); Kubernetes'
``podFailurePolicy`` and Ray's retries match the same codes. Outside a stage (loading a model, planning) the command
line turns SIGTERM and SIGUSR1 into :class:`Interrupted` at once (:func:`raise_on_termination`).

Torch-free: only the standard library.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None)
SIGINT_EXIT = 130


def exit_code(signum: int) -> int:
    """The exit code a stop by ``signum`` reports: 128 + the signal number (130 SIGINT, 143 SIGTERM, 138 SIGUSR1)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(BaseException):
    """A stop asked for by a signal, raised once the work in flight is closed. A ``BaseException`` (like
    ``KeyboardInterrupt``), so no ``except Exception`` on the way up mistakes it for a failure to record.

    ``done``: what was finished, in words (``"3 shards finished, 1 checkpointed"``); str() is the one line to print.
    """

    def __init__(self, signum: int, done: str = "") -> None:
        super().__init__(signum, done)
        self.signum = signum
        self.done = done

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)

    def __str__(self) -> str:
        what = f"{self.done}; " if self.done else ""
        return f"interrupted by {signal_name(self.signum)}: {what}run the same command again to resume"


@dataclass
class StopRequest:
    """Set by the first signal inside :func:`stop_at_boundary`; ``signum`` is that signal (None: no stop asked)."""

    signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    def raise_if_set(self, done: str = "") -> None:
        """Raise :class:`Interrupted` when a stop was asked (call it at a boundary, with the work closed)."""
        if self.signum is not None:
            raise Interrupted(self.signum, done)


_active: StopRequest | None = None


@contextmanager
def stop_at_boundary() -> Iterator[StopRequest]:
    """Catch SIGINT, SIGTERM and SIGUSR1 for the duration: the first sets the yielded :class:`StopRequest`, a second
    one stops at once. Re-entrant (a stage inside a stage shares one request); outside the main thread, where
    Python cannot install handlers, it yields a request no signal sets. Previous handlers come back on exit.

    Example::

        with stop_at_boundary() as stop:
            for unit in units:
                do(unit)
                stop.raise_if_set(f"{done} units finished")
    """
    global _active
    if _active is not None:
        yield _active
        return
    if threading.current_thread() is not threading.main_thread():
        yield StopRequest()
        return
    request = StopRequest()

    def handler(signum: int, frame: Any) -> None:
        if request.signum is None:
            request.signum = signum
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum, "stopped at once by a second signal; the unit in flight was not kept")

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    _active = request
    try:
        yield request
    finally:
        _active = None
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def raise_on_termination() -> Iterator[None]:
    """For the duration, make SIGTERM and SIGUSR1 raise :class:`Interrupted` at once wherever no stage is catching them
    (SIGINT already raises ``KeyboardInterrupt``); the previous handlers come back on exit. For the command line's
    process; outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum, "stopped between work units; every finished one is kept")

    previous = {s: signal.signal(s, handler) for s in SIGNALS if s != signal.SIGINT}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
