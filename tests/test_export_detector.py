"""Export in timm's Hub layout: local-dir load gives identical logits, the config carries classes and threshold,
transformers' image-classification pipeline loads it, and the card's model-index holds the measured metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dataigm.train.export import export_detector
from dataigm.train.recipe import load_detector_recipe
from dataigm.train.run import train_detector

pytestmark = pytest.mark.slow  # a Lightning training run, then export

DETECTORS = Path(__file__).resolve().parents[1] / "detectors"


@pytest.fixture(scope="module")
def exported(shapes_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A binary 'church' judge (church vs parachute + other) trained 2 epochs, then exported."""
    base = tmp_path_factory.mktemp("export")
    recipe = load_detector_recipe(DETECTORS / "tiny.yaml", ["name=church_tiny", "data.positive=church", "concept=church", "trainer.epochs=2"])
    result = train_detector(recipe, base / "run", data=shapes_dataset, progress=False)
    out = export_detector(base / "run", base / "church_tiny")
    return {"run": base / "run", "out": out, "result": result}


def test_config_follows_the_export_contract(exported: dict) -> None:
    config = json.loads((exported["out"] / "config.json").read_text())
    assert config["architecture"] == "test_resnet" and config["num_classes"] == 2
    assert config["label_names"] == ["not_church", "church"]
    d = config["dataigm"]
    assert d["positive_label"] == 1 and d["category"] == "object" and d["concept"] == "church"
    assert isinstance(d["threshold"], float) and 0.0 < d["threshold"] < 1.0
    assert d["threshold"] == exported["result"].threshold
    assert d["threshold_rule"] == "calibrated_0.5_small_val" and d["threshold"] == 0.5  # 10 val images per class < 50
    assert d["training_data"]["manifest_sha256"] and d["dataset_label_names"] == ["church", "parachute", "other"]
    assert config["pretrained_cfg"]["input_size"] == [3, 64, 64]
    assert config["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5]
    assert (exported["out"] / "model.safetensors").stat().st_size > 100_000


def test_local_dir_load_gives_identical_logits(exported: dict) -> None:
    import timm

    from dataigm.train.evaluate import load_detector

    trained = load_detector(exported["run"]).model
    loaded = timm.create_model(f"local-dir:{exported['out']}", pretrained=True).eval()
    assert loaded.num_classes == 2 and loaded.pretrained_cfg["label_names"] == ["not_church", "church"]
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(trained(x), loaded(x))


def test_transformers_pipeline_loads_the_export(exported: dict, shapes_dataset: Path) -> None:
    import io

    import timm
    from PIL import Image
    from transformers import pipeline

    from dataigm.core.shards import iter_samples, list_shards

    classifier = pipeline("image-classification", model=str(exported["out"]))
    sample = next(iter_samples(list_shards(shapes_dataset, "object", "test")))
    image = Image.open(io.BytesIO(sample.image)).convert("RGB")
    scores = {r["label"]: r["score"] for r in classifier(image, top_k=2)}
    assert set(scores) == {"not_church", "church"}
    model = timm.create_model(f"local-dir:{exported['out']}", pretrained=True).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    with torch.no_grad():
        probs = model(transform(image)[None]).softmax(-1)[0]
    assert scores["church"] == pytest.approx(float(probs[1]), abs=1e-4)


def test_card_has_model_index_with_measured_metrics(exported: dict) -> None:
    card = (exported["out"] / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "timm" and meta["pipeline_tag"] == "image-classification"
    results = {r["dataset"]["split"]: {m["type"]: m["value"] for m in r["metrics"]} for r in meta["model-index"][0]["results"]}
    test = json.loads((exported["run"] / "eval" / "test.json").read_text())
    assert results["test"]["accuracy"] == pytest.approx(test["accuracy"])
    assert results["test"]["roc_auc"] == pytest.approx(test["roc_auc"])
    assert "threshold" in body and f"{exported['result'].threshold:.3f}" in body
    assert "Intended use and limitations" in body
    assert (exported["out"] / "eval" / "test-roc.png").exists()
    # how it does as a judge: sensitivity and specificity per source with Wilson intervals, and its sweep
    from dataigm.evaluation.agreement import wilson_interval

    audit = test["judge_audit"]
    c = audit["confusion"]
    assert c["tp"] + c["fn"] + c["tn"] + c["fp"] == test["n"]
    low, high = wilson_interval(c["tp"], c["tp"] + c["fn"])
    assert f"sensitivity {audit['sensitivity']['value']:.3f} [{low:.3f}, {high:.3f}]" in body
    assert "| threshold | sensitivity | specificity | precision |" in body and "sensitivity [95% Wilson]" in body
    assert all("sensitivity" in s for s in test["per_source"].values())


def test_evaluate_export_uses_its_threshold(exported: dict, shapes_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    assert main(["detector-eval", str(exported["out"]), "--data", str(shapes_dataset), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    run_report = exported["result"].reports["test"]
    assert report["threshold"] == exported["result"].threshold
    assert report["n"] == 30 and report["per_class"]["church"]["support"] == 10
    assert report["accuracy"] == pytest.approx(run_report["accuracy"])
    assert np.isfinite(report["roc_auc"]) and report["roc_auc"] > 0.8


def test_export_refuses_to_overwrite(exported: dict) -> None:
    with pytest.raises(ValueError, match="not empty"):
        export_detector(exported["run"], exported["out"])


def test_export_needs_a_run_folder_and_leaves_nothing_half_written(exported: dict, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"run\.json not found: export-detector takes a training run folder"):
        export_detector(exported["out"], tmp_path / "again")  # an export, not a run
    with pytest.raises(FileNotFoundError, match="model card template"):
        export_detector(exported["run"], tmp_path / "bad-card", card_template=tmp_path / "missing.j2")
    assert list(tmp_path.iterdir()) == []  # neither the destination nor its temporary folder remains


def test_cli_export_detector(exported: dict, tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dataigm", "export-detector", *map(str, args)], capture_output=True, text=True)

    out = cli(exported["run"], "--out", tmp_path / "det", "--repo-id", "acme/church-tiny")
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "det" / "config.json").read_text())
    threshold = config["dataigm"]["threshold"]
    assert out.stdout.splitlines()[0] == (f"exported test_resnet (2 classes: not_church, church; threshold {threshold}) to {tmp_path / 'det'}")
    assert config["label_names"] == ["not_church", "church"] and 0.0 < threshold < 1.0
    assert (tmp_path / "det" / "model.safetensors").read_bytes() == (exported["out"] / "model.safetensors").read_bytes()
    assert "acme/church-tiny" in (tmp_path / "det" / "README.md").read_text()
    again = cli(exported["run"], "--out", tmp_path / "det")
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr
    assert cli(exported["run"], "--out", tmp_path / "det", "--overwrite").returncode == 0
    missing = cli(exported["run"], "--out", tmp_path / "det2", "--checkpoint", tmp_path / "none.ckpt")
    assert missing.returncode == 2 and "none.ckpt: checkpoint not found" in missing.stderr and not (tmp_path / "det2").exists()


def test_card_lists_literature_judges(exported: dict) -> None:
    """The church detector's card lists the literature's ImageNet judge: run, or not run with the reason."""
    test = json.loads((exported["out"] / "eval" / "test.json").read_text())
    (row,) = test["literature_agreement"]
    assert row["detector"] == "imagenet:church"
    assert ("note" in row and row["note"].startswith("not run")) or 0 <= row["agreement"] <= 1
    assert "`imagenet:church`" in (exported["out"] / "README.md").read_text()


def test_literature_agreement_with_real_nudenet(shapes_with_nudity: Path, tmp_path: Path) -> None:
    from dataigm.judges.judge import judge
    from dataigm.evaluation.literature import literature_agreement
    from dataigm.judges.tiny import build_tiny_detector

    det = build_tiny_detector(tmp_path / "det", ("not_nude", "nude"), category="nudity", seed=3)
    (row,) = literature_agreement(det, shapes_with_nudity, "nudity", "nudity", "nude")
    nudenet = judge(shapes_with_nudity, "nudenet", split="test", category="nudity", progress=False)
    assert row["detector"] == "nudenet" and row["n"] == nudenet.summary["n_images"] == 4
    assert row["sensitivity"] == 0.0 and row["specificity"] == 1.0  # NudeNet flags no drawn shape
    ours = judge(shapes_with_nudity, f"local-dir:{det}", split="test", category="nudity", progress=False)
    assert row["agreement"] == sum(not p.positive for p in ours.predictions) / 4
