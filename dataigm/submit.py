"""Submit a dataigm command as a job array through `submitit <https://github.com/facebookincubator/submitit>`_
(the ``[slurm]`` extra): one task per array index, each run as ``--array-task I/N`` of a world that never meets.

Each task writes its share of shards and exits; the one that finds every planned shard done writes the manifest
(:func:`dataigm.core.manifest.finalize`). Tasks are :class:`submitit.helpers.Checkpointable`: when Slurm's time limit
comes (submitit's warning signal), submitit requeues the task and the rerun resumes (finished shards are skipped).
A plain sbatch script does the same without submitit (docs/many-machines.md).

Example::

    >>> from dataigm.submit import SlurmOptions, submit_array
    >>> jobs = submit_array(["build", "builders/nudity.yaml", "--out", "out/nudity"], 250,    # doctest: +SKIP
    ...                     SlurmOptions(partition="gpu", time_min=240), folder="logs/nudity")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from dataigm.core.errors import DataigmError, InputError

ARRAY_COMMANDS = ("build", "import-images")  # the commands that take --array-task


@dataclass
class SlurmOptions:
    """Resources of each array task (submitit's AutoExecutor parameters); ``extra``: more sbatch options by name."""

    partition: str | None = None
    time_min: int = 240
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    mem_gb: int | None = None
    parallelism: int | None = None  # tasks running at once (sbatch --array=...%K)
    account: str | None = None
    qos: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def parameters(self, name: str) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "timeout_min": self.time_min, "gpus_per_node": self.gpus_per_task,
                                  "tasks_per_node": 1, "nodes": 1, "cpus_per_task": self.cpus_per_task}
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.parallelism:
            params["slurm_array_parallelism"] = self.parallelism
        extra = dict(self.extra)
        if self.account:
            extra["account"] = self.account
        if self.qos:
            extra["qos"] = self.qos
        if extra:
            params["slurm_additional_parameters"] = extra
        return params


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise DataigmError("submitting needs submitit: pip install 'dataigm[slurm]'") from None
    return submitit


def array_task_class() -> type:
    """The callable each task runs (defined on first use: it derives from submitit's Checkpointable)."""
    submitit = _submitit()

    class ArrayTask(submitit.helpers.Checkpointable):
        """``dataigm <argv> --array-task index/count`` in the task's process; returns its exit code (0), raises otherwise."""

        def __init__(self, argv: Sequence[str], count: int) -> None:
            self.argv, self.count = list(argv), count

        def __call__(self, index: int) -> int:
            from dataigm.cli import main

            code = main([*self.argv, "--array-task", f"{index}/{self.count}"])
            if code:
                raise DataigmError(f"array task {index}/{self.count}: dataigm {self.argv[0]} exited with code {code}")
            return code

    return ArrayTask


def check_array_command(argv: Sequence[str]) -> list[str]:
    """The dataigm command to run in every task, checked: one that takes ``--array-task``, without it."""
    argv = list(argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise InputError("no command to submit: give it after --, e.g. -- build RECIPE --out DIR")
    if argv[0] not in ARRAY_COMMANDS:
        from dataigm.core.registry import did_you_mean

        raise InputError(f"command {argv[0]!r} cannot run as a job array{did_you_mean(argv[0], ARRAY_COMMANDS)}; "
                         f"one of: {', '.join(ARRAY_COMMANDS)}")
    if any(a == "--array-task" or a.startswith("--array-task=") for a in argv):
        raise InputError("the submitted command must not set --array-task: each task gets its own")
    return argv


def submit_array(argv: Sequence[str], tasks: int, options: SlurmOptions | None = None, *, folder: str | Path,
                 cluster: Literal["slurm", "local"] = "slurm") -> list[Any]:
    """Submit ``dataigm <argv>`` as ``tasks`` array tasks; returns submitit's jobs (``job.result()`` waits for one).

    ``cluster="local"``: submitit's local executor, the tasks as processes on this machine (to try a submission, and
    in tests). ``folder``: where submitit keeps each task's pickled call and its stdout/stderr.
    """
    argv = check_array_command(argv)
    if tasks < 1:
        raise InputError(f"tasks must be >= 1, got {tasks}")
    submitit = _submitit()
    options = options or SlurmOptions()
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params = options.parameters(f"dataigm-{argv[0]}")
    if cluster == "local":  # the generic ones only; the local executor has no slurm_* and no GPUs to ask for
        params = {k: v for k, v in params.items() if not k.startswith("slurm_") and k not in ("gpus_per_node", "nodes")}
    executor.update_parameters(**params)
    task = array_task_class()(argv, tasks)
    return executor.map_array(task, list(range(tasks)))
