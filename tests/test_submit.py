"""dataigm submit: a job array through submitit's local executor (the tasks as processes here), on a real image
import; the command checks; a plain import's array tasks in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core.manifest import MANIFEST, load_manifest, verify
from dataigm.core.shards import list_shards
from dataigm.submit import SlurmOptions, check_array_command
from dataigm.synthetic import draw_pattern


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for i in range(12):
        cls = ("church", "other")[i % 2]
        (root / cls).mkdir(parents=True, exist_ok=True)
        draw_pattern(("disc", "hstripes", "checker")[i % 3], seed=i, size=64).save(root / cls / f"{i:03d}.png")
    return root


def import_args(folder: Path, out: Path) -> list[str]:
    return ["import-images", str(folder), "--out", str(out), "--category", "object", "--shard-size", "2",
            "--split-fractions", "train=1.0", "--no-progress", "--workers", "1"]


@pytest.mark.slow
def test_submit_runs_a_job_array_through_submitits_local_executor(folder: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    code = main(["submit", "--slurm", "--local", "--tasks", "3", "--logs", str(tmp_path / "logs"), "--wait", "--",
                 *import_args(folder, out)])
    printed = capsys.readouterr().out
    assert code == 0 and "submitted 3 tasks of `dataigm import-images" in printed and "3 of 3 tasks done" in printed
    assert load_manifest(out)["totals"] == {"samples": 12, "failed": 0, "shards": 6}
    assert verify(out) == []
    logs = sorted((tmp_path / "logs").glob("*_log.err"))
    assert len(logs) == 3 and sum("other ranks or array tasks are still running" in p.read_text() for p in logs) <= 2


def test_array_tasks_of_an_import_in_process_equal_one_process(folder: Path, tmp_path: Path, capsys) -> None:
    assert main(import_args(folder, tmp_path / "one")) == 0
    for i in (2, 0, 1):  # any order; the last writes the manifest
        assert main([*import_args(folder, tmp_path / "array"), "--array-task", f"{i}/3"]) == 0
        assert (tmp_path / "array" / MANIFEST).exists() == (i == 1)
    assert {p.name: p.read_bytes() for p in list_shards(tmp_path / "array")} == {p.name: p.read_bytes() for p in list_shards(tmp_path / "one")}
    assert load_manifest(tmp_path / "array")["shards"] == load_manifest(tmp_path / "one")["shards"]


def test_submit_checks_its_command() -> None:
    assert check_array_command(["--", "build", "r.yaml", "--out", "d"]) == ["build", "r.yaml", "--out", "d"]
    with pytest.raises(ValueError, match=r"command 'biuld' cannot run as a job array \(did you mean 'build'\?\); one of: build, import-images"):
        check_array_command(["biuld"])
    with pytest.raises(ValueError, match="must not set --array-task"):
        check_array_command(["build", "r.yaml", "--array-task", "0/2"])
    with pytest.raises(ValueError, match="no command to submit"):
        check_array_command(["--"])
    params = SlurmOptions(partition="gpu", parallelism=50, account="lab").parameters("dataigm-build")
    assert params["slurm_partition"] == "gpu" and params["slurm_array_parallelism"] == 50
    assert params["slurm_additional_parameters"] == {"account": "lab"} and params["gpus_per_node"] == 1
