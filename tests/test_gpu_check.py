"""The GPU acceptance script runs its checks' code on the CPU (``--cpu-smoke``): every check passes or is skipped
for a stated reason, one line each, and the JSON summary comes last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_smoke_passes_or_skips_every_check() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--cpu-smoke"], capture_output=True, text=True,
                         env=env, timeout=900)
    lines = [line for line in run.stdout.splitlines() if line.split(" ", 1)[0] in ("PASS", "FAIL", "SKIP")]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, run.stdout[-3000:]
    assert summary["failed"] == [] and summary["device"] == "cpu"
    assert sorted(line.split(" ", 2)[1].rstrip(":") for line in lines) == sorted(summary["checks"])
    statuses = {name: c["status"] for name, c in summary["checks"].items()}
    assert statuses == {"devices": "PASS", "dtype": "PASS", "memory": "SKIP", "rerun": "PASS", "cpu_noise": "PASS", "judge_precision": "PASS",
                        "nudenet": "PASS", "train": "PASS", "oom": "SKIP", "faiss": "SKIP"}
    assert len(summary["checks"]["dtype"]["data"]["runs"]) == 10  # five families in two dtypes
