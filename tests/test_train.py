"""Training learns (held-out accuracy well above chance), resumes with a continuing step count, runs 2-process
DDP over uneven shards on CPU, and `dataigm evaluate --json` prints exactly one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dataigm.train.recipe import load_detector_recipe
from dataigm.train.run import train_detector

DETECTORS = Path(__file__).resolve().parents[1] / "detectors"


def _step(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


@pytest.fixture(scope="module")
def trained_run(shapes_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """2 epochs, then resumed to 4 epochs (3 classes x 40 train images, batch 32: 4 steps per epoch)."""
    run = tmp_path_factory.mktemp("run") / "tiny"
    first = train_detector(load_detector_recipe(DETECTORS / "tiny.yaml", ["trainer.epochs=2"]), run, data=shapes_dataset, progress=False, evaluate=False)
    step_after_first = _step(run / "checkpoints" / "last.ckpt")
    second = train_detector(load_detector_recipe(DETECTORS / "tiny.yaml", ["trainer.epochs=4"]), run, data=shapes_dataset, resume=True, progress=False)
    return {"run": run, "first": first, "second": second, "step_after_first": step_after_first}


def test_training_learns_the_drawn_classes(trained_run: dict) -> None:
    test = trained_run["second"].reports["test"]
    assert test["n"] == 30
    assert test["accuracy"] > 0.8, test  # chance is 1/3
    assert test["balanced_accuracy"] > 0.8
    assert test["per_source"]["generated:synthetic-shapes"]["n"] == 30
    eval_dir = trained_run["run"] / "eval"
    assert json.loads((eval_dir / "test.json").read_text())["accuracy"] == pytest.approx(test["accuracy"])
    for name in ("test-confusion.png", "test-reliability.png"):
        assert (eval_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_continues_the_step_count(trained_run: dict) -> None:
    info = json.loads((trained_run["run"] / "run.json").read_text())
    assert info["steps_per_epoch"] == 4  # ceil(120 / 32)
    assert trained_run["first"].global_step == trained_run["step_after_first"] == 2 * 4
    assert trained_run["second"].global_step == _step(trained_run["run"] / "checkpoints" / "last.ckpt") == 4 * 4
    epochs = set()
    for csv in (trained_run["run"] / "logs").glob("version_*/metrics.csv"):  # one version per attempt
        rows = csv.read_text().splitlines()
        epochs |= {row.split(",")[rows[0].split(",").index("epoch")] for row in rows[1:]}
    assert epochs == {"0", "1", "2", "3"}


def test_a_finished_run_is_not_silently_overwritten(trained_run: dict, shapes_dataset: Path) -> None:
    with pytest.raises(ValueError, match="resume=True"):
        train_detector(load_detector_recipe(DETECTORS / "tiny.yaml"), trained_run["run"], data=shapes_dataset, progress=False)


def test_evaluate_json_prints_exactly_one_object(trained_run: dict, shapes_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    assert main(["evaluate", str(trained_run["run"]), "--data", str(shapes_dataset), "--split", "val", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)  # fails on anything besides one JSON document
    assert out.count("\n") == 1
    assert {"accuracy", "balanced_accuracy", "n", "per_class", "threshold", "ece", "confusion_matrix", "per_source"} <= set(report)
    assert report["n"] == 30 and report["threshold"] is None  # multi-class: arg-max
    assert sum(map(sum, report["confusion_matrix"])) == 30


def test_unknown_category_is_reported_with_the_valid_ones(shapes_dataset: Path, tmp_path: Path) -> None:
    recipe = load_detector_recipe(DETECTORS / "tiny.yaml", ["data.category=style"])
    with pytest.raises(ValueError, match="present: object"):
        train_detector(recipe, tmp_path / "run", data=shapes_dataset, progress=False)


def test_ddp_two_cpu_processes_over_uneven_shards(tmp_path: Path) -> None:
    """2 ranks (gloo) over 3 shards of 20, 20 and 5 samples: fixed-length epochs, so both ranks finish."""
    from dataigm.synthetic import write_synthetic_dataset

    data = tmp_path / "uneven"
    write_synthetic_dataset(data, "object", ["church", "parachute", "other"], {"train": 15, "val": 4}, shard_size=20)
    sizes = sorted(int(json.loads(p.read_text())["ok"]) for p in (data / "_stats" / "object" / "train").glob("*.json"))
    assert sizes == [5, 20, 20]
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "dataigm", "train", str(DETECTORS / "tiny.yaml"), "--data", str(data), "--out", str(run),
           "--devices", "2", "--accelerator", "cpu", "--epochs", "2", "--batch-size", "8", "--no-progress", "--set", "trainer.num_workers=1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2
    assert info["steps_per_epoch"] == 3  # ceil(45 / (8 * 2)) on every rank
    assert _step(run / "checkpoints" / "last.ckpt") == 2 * 3
    assert info["threshold"] is None and (run / "eval" / "val.json").exists()


def test_ddp_lbfgs_head_solves_on_every_ranks_features(tmp_path: Path) -> None:
    """Frozen + cached features on 2 ranks (gloo): each rank caches its share (23 and 22 of 45 images), the head's
    solve gathers them all, so ``head_fit`` counts 45 training images, not one rank's share."""
    from dataigm.synthetic import write_synthetic_dataset

    data = tmp_path / "uneven"
    write_synthetic_dataset(data, "object", ["church", "parachute", "other"], {"train": 15, "val": 4}, shard_size=20)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "dataigm", "train", str(DETECTORS / "tiny.yaml"), "--data", str(data), "--out", str(run),
           "--devices", "2", "--accelerator", "cpu", "--no-progress", "--set", "trainer.num_workers=0", "--set", "model.mode=frozen"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2 and info["solver"] == "lbfgs" and _step(run / "checkpoints" / "last.ckpt") == 1
    fit = info["head_fit"]
    assert fit["n_train"] == 45 and fit["rule"] == "cross_validation" and fit["val_per_class"] == {"0": 4, "1": 4, "2": 4}
