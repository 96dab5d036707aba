"""dataigm submit: run build or import-images as a Slurm job array through submitit (the [slurm] extra)."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("submit", order=13,
                  help="submit build/import-images as a Slurm job array (submitit); the last task writes the manifest",
                  description="Submit `dataigm COMMAND ...` as a job array of --tasks tasks, each running it with --array-task I/N: "
                  "e.g. `dataigm submit --slurm --tasks 250 --partition gpu -- build RECIPE --out DIR`. Tasks are requeued at the "
                  "time limit and resume. Needs pip install 'dataigm[slurm]'; docs/many-machines.md has a plain sbatch script too.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--slurm", action="store_true", required=True, help="submit to Slurm through submitit (the only scheduler so far)")
    p.add_argument("--tasks", type=int, required=True, help="array tasks (each takes every N-th shard)")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--time", dest="time_min", type=int, default=240, help="time limit of each task in minutes (default: %(default)s)")
    p.add_argument("--gpus-per-task", type=int, default=1, help="GPUs per task (default: %(default)s)")
    p.add_argument("--cpus-per-task", type=int, default=8, help="CPU cores per task (default: %(default)s)")
    p.add_argument("--mem-gb", type=int, help="memory per task in GB (default: the partition's)")
    p.add_argument("--parallelism", type=int, help="at most this many tasks at once (sbatch --array=...%%K)")
    p.add_argument("--account", help="Slurm account")
    p.add_argument("--qos", help="Slurm QOS")
    p.add_argument("--logs", type=Path, default=Path("submitit-logs"), help="folder for each task's call and output (default: %(default)s)")
    p.add_argument("--local", action="store_true", help="run the tasks as processes on this machine (submitit's local executor), to try it")
    p.add_argument("--wait", action="store_true", help="wait for every task and report the manifest")
    p.add_argument("task_command", nargs=argparse.REMAINDER, metavar="COMMAND", help="-- then the dataigm command, e.g. -- build RECIPE --out DIR")


def run(args: argparse.Namespace) -> int:
    import sys

    from dataigm.submit import SlurmOptions, check_array_command, submit_array

    argv = check_array_command(args.task_command)
    options = SlurmOptions(partition=args.partition, time_min=args.time_min, gpus_per_task=args.gpus_per_task,
                           cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, parallelism=args.parallelism,
                           account=args.account, qos=args.qos)
    jobs = submit_array(argv, args.tasks, options, folder=args.logs, cluster="local" if args.local else "slurm")
    print(f"submitted {len(jobs)} tasks of `dataigm {' '.join(argv)}`: job {jobs[0].job_id.split('_')[0]} (logs in {args.logs})")
    if not args.wait:
        return 0
    failed = 0
    for job in jobs:
        try:
            job.result()
        except Exception as e:  # a task's failure is its own; report it and go on waiting for the others
            failed += 1
            print(f"task {job.job_id} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}", file=sys.stderr)
    print(f"{len(jobs) - failed} of {len(jobs)} tasks done" + (f", {failed} failed: resubmit to resume" if failed else ""))
    return 1 if failed else 0
