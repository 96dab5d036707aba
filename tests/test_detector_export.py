"""dataigm.core.detector_export: the judge and ``dataigm evaluate`` read an exported detector folder through one
contract, so they accept and refuse the same folders and read the same positive label."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core.detector_export import DetectorExport, read_detector_config
from dataigm.judges.registry import create_judge
from dataigm.judges.tiny import build_tiny_detector
from dataigm.train.evaluate import load_detector

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_folder_without_safetensors_is_refused_by_both_readers(nudity_detector: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(nudity_detector, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")  # what timm would fall back to through torch.load
    messages = []
    for read in (lambda: create_judge(f"local-dir:{folder}"), lambda: load_detector(folder)):
        with pytest.raises(FileNotFoundError) as e:
            read()
        messages.append(str(e.value))
    assert messages[0] == messages[1] == f"{folder} has no model.safetensors (found pytorch_model.bin): dataigm loads detector weights from safetensors only and never unpickles"
    assert main(["detector-eval", str(folder), "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"dataigm detector-eval: error: {messages[0]}\n"


def test_hub_id_at_a_revision_loads_in_both_readers(nudity_detector: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    snap = cache / "models--dataigm--tiny-judge" / "snapshots" / COMMIT
    shutil.copytree(nudity_detector, snap)
    (cache / "models--dataigm--tiny-judge" / "refs").mkdir(parents=True)
    (cache / "models--dataigm--tiny-judge" / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    spec = f"dataigm/tiny-judge@{COMMIT}"
    judge = create_judge(spec)
    detector = load_detector(spec)
    assert judge.describe()["revision"] == COMMIT
    assert (detector.label_names, detector.positive_label, detector.threshold) == (judge.label_names, 1, judge.threshold) == (["not_nude", "nude"], 1, 0.5)
    assert detector.info == read_detector_config(snap)


@pytest.mark.parametrize("written, read", [(-1, None), (None, None), (2, 2)])
def test_positive_label_has_one_spelling(tmp_path: Path, written: int | None, read: int | None) -> None:
    folder = build_tiny_detector(tmp_path / "three", ("church", "house", "tree"), positive_label=1)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["dataigm"]["positive_label"] = written
    (folder / "config.json").write_text(json.dumps(cfg))
    assert read_detector_config(folder)["dataigm"]["positive_label"] == load_detector(folder).positive_label == read


def test_a_binary_export_without_positive_label_reads_the_second_class(tmp_path: Path) -> None:
    folder = build_tiny_detector(tmp_path / "two")
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["dataigm"]["positive_label"]
    (folder / "config.json").write_text(json.dumps(cfg))
    assert read_detector_config(folder)["dataigm"]["positive_label"] == load_detector(folder).positive_label == 1


def test_the_section_round_trips_and_keeps_unknown_fields() -> None:
    section = DetectorExport(category="object", positive_label=-1, threshold=0.3, extra_note="kept").model_dump(mode="json")
    assert section["positive_label"] is None and section["format"] == "dataigm-detector/1" and section["extra_note"] == "kept"
    assert DetectorExport.model_validate(section).model_dump(mode="json") == section
