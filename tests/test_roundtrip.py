"""The published dataset as a user meets it, through the command line only.

build + import-images into one dataset -> curate -> export -> push (faked Hub write API) -> pull (from a Hub cache
holding what the push wrote) -> train from the pulled folder and from the exported folder -> evaluate (also by Hub
id) -> export-detector -> judge the exported dataset with the exported detector. Counts, label names and metrics
are checked at each step.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core.manifest import load_manifest, verify
from dataigm.resources import resource_dir
from dataigm.synthetic import write_synthetic_folder

pytestmark = pytest.mark.slow  # a whole build-train-export-judge run

SMALL = ["generation.width=64", "generation.height=64", "generation.steps=2", "generation.batch_size=4", "images_per_prompt=1",
         "models=[tiny]"]
TRAIN = ["--set", "data.category=church", "--set", "data.positive=church", "--epochs", "3", "--batch-size", "16", "--no-progress"]
REPO = "acme/dataigm-roundtrip"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run one command in-process; it must succeed; returns its stdout."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, f"dataigm {' '.join(map(str, args))} exited {code}: {err[-2000:]}"
    return out


def photo_folder(root: Path) -> Path:
    """train/validation/test x church/other of drawn patterns, named LAION_* and REAL_* like the paper's folders."""
    for split, n in (("train", 16), ("validation", 4), ("test", 6)):
        write_synthetic_folder(root, ["church", "other"], n, splits=[split], seed=3)
    for i, path in enumerate(sorted(root.rglob("*.png"))):
        path.rename(path.with_name(f"{'LAION' if i % 2 else 'REAL'}_{path.name}"))
    return root


def split_counts(manifest: dict, category: str = "church") -> dict[str, dict[str, int]]:
    return {s: dict(sp["labels"]) for s, sp in manifest["counts"][category]["splits"].items() if sp["n"]}


def test_published_dataset_round_trip(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from hub_cache import write_hub_cache
    from test_hub_push import FakeHfApi

    # 1. build (tiny model) and import real photos (split folders detected, source from the file name) into one dataset
    ds = tmp_path / "dataset"
    cli(capsys, "build", resource_dir("builders") / "church.yaml", "--model", "tiny", "--out", ds, "--limit", "2", "--device", "cpu",
        "--no-progress", *[a for s in SMALL if not s.startswith("models") for a in ("--set", s)])
    generated = load_manifest(ds)["totals"]["samples"]
    assert generated > 0
    out = cli(capsys, "import-images", photo_folder(tmp_path / "photos"), "-c", "church", "-o", ds, "--max-size", "64",
              "--source-from-name", r"^(?P<source>[A-Z]+)_", "--no-progress")
    assert "52 images imported, 0 failed" in out
    built = load_manifest(ds)
    assert built["counts"]["church"]["label_names"] == ["other", "church"]
    real = {s: Counter() for s in ("train", "val", "test")}
    for split, sp in built["counts"]["church"]["splits"].items():
        real[split].update({k: v for k, v in sp["sources"].items() if k != "generated"})
    assert {s: sum(c.values()) for s, c in real.items()} == {"train": 32, "val": 8, "test": 12}
    assert real["test"] == {"LAION": 6, "REAL": 6}

    # 2. curate (blank + near-duplicate filters): what is kept is what the curated manifest counts
    cur = tmp_path / "curated"
    cli(capsys, "curate", ds, "--out", cur, "--no-progress")
    curated = load_manifest(cur)
    decisions = [json.loads(line) for line in (cur / "_curation" / "decisions.jsonl").read_text().splitlines()]
    assert curated["totals"]["samples"] == sum(d["verdict"] != "drop" for d in decisions) > 0
    assert curated["counts"]["church"]["label_names"] == ["other", "church"]

    # 3. export: the Hub layout, nothing empty published, `val` published as `validation`
    hub = tmp_path / "hub"
    out = cli(capsys, "export", cur, "--out", hub, "--repo-id", REPO)
    assert f"exported {curated['totals']['samples']} samples" in out
    exported = load_manifest(hub)
    assert split_counts(exported) == split_counts(curated) and exported["hub"]["data_dir"] == "data"
    assert all(s["n"] > 0 and s["path"].startswith("data/church/") for s in exported["shards"])
    card = huggingface_hub.DatasetCard.load(hub / "README.md").data
    [config] = card.configs
    assert {f["split"]: f["path"] for f in config["data_files"]} == {
        "train": "data/church/train/*.tar", "validation": "data/church/val/*.tar", "test": "data/church/test/*.tar"}
    assert cli(capsys, "verify", hub).startswith("ok: every shard")

    # 4. push with the faked Hub write API; 5. pull from a Hub cache holding exactly what the push wrote
    api = FakeHfApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: api)
    out = cli(capsys, "push", hub, "--repo-id", REPO, "--private")
    files = {k: v for k, v in api.repos[REPO].files.items() if k != ".gitattributes"}
    assert f"{len(files)} files uploaded" in out and sorted(files) == sorted(
        [p.relative_to(hub).as_posix() for p in hub.rglob("*.tar")] + ["README.md", "manifest.json"])
    write_hub_cache(REPO, files, COMMIT)
    pulled = tmp_path / "pulled"
    out = cli(capsys, "pull", REPO, "--out", pulled)
    assert f"{exported['totals']['samples']} samples of church" in out and "all checksums match" in out
    assert load_manifest(pulled) == exported and verify(pulled) == []

    # 6. train from the pulled folder and from the exported folder: same data, same seed, same detector
    recipe = resource_dir("detectors") / "tiny.yaml"
    cli(capsys, "train", recipe, "--data", pulled, "--out", tmp_path / "run-pulled", *TRAIN)
    cli(capsys, "train", recipe, "--data", hub, "--out", tmp_path / "run-exported", *TRAIN)
    reports = {name: json.loads((tmp_path / name / "eval" / "test.json").read_text()) for name in ("run-pulled", "run-exported")}
    test_n = sum(split_counts(exported)["test"].values())
    for report in reports.values():
        assert report["n"] == test_n and report["label_names"] == ["other", "church"]
        assert report["per_source"]["LAION"]["n"] + report["per_source"]["REAL"]["n"] + sum(
            v["n"] for k, v in report["per_source"].items() if k.startswith("generated:")) == test_n
    assert reports["run-pulled"]["confusion_matrix"] == reports["run-exported"]["confusion_matrix"]
    assert reports["run-pulled"]["roc_auc"] == pytest.approx(reports["run-exported"]["roc_auc"])

    # 7. evaluate by Hub id (resolved from the cache: manifest + data/church/** of the pushed commit)
    out = cli(capsys, "evaluate", tmp_path / "run-pulled", "--data", REPO, "--json")
    by_id = json.loads(out)
    assert by_id["dataset"]["repo"] == REPO and by_id["dataset"]["revision"] == COMMIT
    assert by_id["confusion_matrix"] == reports["run-pulled"]["confusion_matrix"]
    real_test = {k: v for k, v in by_id["per_source"].items() if not k.startswith("generated:")}
    assert sorted(real_test) == ["LAION", "REAL"] and all(v["balanced_accuracy"] > 0.8 for v in real_test.values()), real_test

    # 8. export the detector, 9. judge the exported dataset's test split with it
    det = tmp_path / "detector"
    out = cli(capsys, "export-detector", tmp_path / "run-pulled", "--out", det)
    assert "2 classes: other, church" in out
    summary = json.loads(cli(capsys, "judge", hub, "--judge", f"local-dir:{det}", "--category", "church", "--split", "test",
                             "--json"))
    cm = by_id["confusion_matrix"]  # rows: true class, columns: predicted class
    assert summary["n_images"] == test_n and summary["n_failed"] == 0
    assert summary["per_class"] == {"other": cm[0][0] + cm[1][0], "church": cm[0][1] + cm[1][1]}
