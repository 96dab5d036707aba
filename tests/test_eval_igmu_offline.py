"""``dataigm eval --layout igmu`` works the first time, offline, with no extra flag, on a synthetic copy of IGMU's
published layout (ryliu68/IGMU ``dataset/Benchmarking_images_demo/<task>``: 11 method folders under ``forgot/``,
``unrelated/<METHOD>/<class>/``, ``remove_word/``, five images per prompt, and the prompt files
``dataset/Benchmarking_prompts/forgot.json`` / ``retain.json`` beside the images). LPIPS and FID have no cached
weights here: their rows are left out with one note each, not a failed run. ``dataigm answers export`` of each run
writes one row per judged image, with the prompt text, the method and every judge's verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from dataigm.core.shards import iter_tar
from real_weights import skimage_photo

METHODS = ["ORG", "AdvUnlearn", "ESD", "FMN", "MACE", "RECE", "SalUn", "SDD", "SPM", "UCE", "EraseDiff"]  # 11 folders
PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "camera"]
SEEDS = 5
PROMPTS = 1  # of the two in the prompt file: one prompt x five seeds per method keeps the test fast


def _photo(path: Path, name: str, k: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = skimage_photo(name).resize((64, 64), Image.BICUBIC)
    im.rotate(8 * k).save(path)  # five different images of one prompt


def write_igmu(root: Path, task: str, *, unrelated: bool) -> tuple[Path, dict, dict]:
    """``root/Benchmarking_images_demo/<task>`` and ``root/Benchmarking_prompts``; (task folder, forgot.json, retain.json)."""
    key = {"Nudity": "nudity", "Church": "object_church"}[task]
    forgot = {key: {"girl" if task == "Nudity" else "Church": [f"{task} prompt {j}" for j in range(2)]}}
    retain = {key: {k: [p.replace(task, "removed") for p in v] for k, v in forgot[key].items()}}
    (root / "Benchmarking_prompts").mkdir(parents=True)
    (root / "Benchmarking_prompts" / "forgot.json").write_text(json.dumps(forgot))
    (root / "Benchmarking_prompts" / "retain.json").write_text(json.dumps(retain))
    folder = root / "Benchmarking_images_demo" / task
    for m, method in enumerate(METHODS):
        for j in range(PROMPTS):
            for k in range(SEEDS):
                _photo(folder / "forgot" / method / f"0_{j}_{k}.png", PHOTOS[(m + j) % 5], k)
                if unrelated:
                    _photo(folder / "unrelated" / method / "Airplane" / f"1_{j}_{k}.png", PHOTOS[(m + j + 2) % 5], k)
    for j in range(PROMPTS):
        for k in range(SEEDS):
            _photo(folder / "remove_word" / "ORG" / f"0_{j}_{k}.png", PHOTOS[(j + 3) % 5], k)
    return folder, forgot[key], retain[key]


def _judged(report: dict) -> list[tuple[str, dict]]:
    return [(m, rec) for m, res in report["methods"].items() for rec in res["images"]]


def _sheet_rows(sheet: Path) -> list[dict]:
    return [s.meta for tar in sorted((sheet / "data/answers/train").glob("*.tar")) for s in iter_tar(tar)]


def _eval_and_export(tmp_path: Path, folder: Path, judges: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list[dict], dict]:
    from dataigm.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached LPIPS/FID weights
    out = tmp_path / "report"
    args = ["eval", "--layout", "igmu", str(folder), "--bootstrap", "50", "--workers", "0", "--out", str(out)]
    for spec in judges:
        args += ["--detector", spec]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert main(["answers", "export", str(out), "--out", str(tmp_path / "sheet"), "--workers", "0", "--device", "cpu"]) == 0
    sheet = json.loads((tmp_path / "sheet" / "answers.json").read_text())
    return report, _sheet_rows(tmp_path / "sheet"), sheet


def _check_rows(report: dict, rows: list[dict], sheet: dict, folder: Path, forgot: dict, retain: dict, judges: list[str]) -> None:
    judged = _judged(report)
    assert len(rows) == len(judged)  # one row per judged image
    root = Path(sheet["root"])
    by_path = {(r["method"], r["split"], str((root / r["file"]).resolve())): r for r in rows}
    assert len(by_path) == len(rows)
    prompts = [p for ps in forgot.values() for p in ps]
    removed = [p for ps in retain.values() for p in ps]
    for method, rec in judged:
        row = by_path[(method, rec["split"], str(Path(rec["path"]).resolve()))]
        assert "|" not in row["file"] and (root / row["file"]).is_file()
        folder = "ORG" if method == "original" else method  # IGMU's name of the original model
        assert row["file"].split("/")[:2] == {"forget": ["forgot", folder], "retain": ["unrelated", folder], "pair": ["remove_word", "ORG"]}[rec["split"]]
        j = int(Path(row["file"]).stem.split("_")[1])
        if rec["split"] == "forget":
            assert (row["prompt"], row["pair_prompt"]) == (prompts[j], removed[j])
        elif rec["split"] == "pair":
            assert row["prompt"] == removed[j] and row["role"] == "negative"
        assert [v["detector"] for v in row["verdicts"]] == judges
        assert row["verdicts"][0]["positive"] == rec["positive"]  # the sheet's verdict is the report's, image by image
        assert row["verdicts"][0]["positive_score"] == pytest.approx(rec["score"], abs=1e-4)
        for spec, v in zip(judges[1:], row["verdicts"][1:]):
            assert v["positive"] == rec["judges"][spec]["positive"]


@pytest.mark.slow
def test_igmu_nudity_two_judges_without_retain_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was ``internal error ... KeyError: 'all'`` (two judges, no retain images)."""
    folder, forgot, retain = write_igmu(tmp_path / "igmu", "Nudity", unrelated=False)
    judges = ["nudenet", "opennsfw"]
    report, rows, sheet = _eval_and_export(tmp_path, folder, judges, monkeypatch)
    assert set(report["methods"]) == {"original", *METHODS[1:]}
    for name, res in report["methods"].items():
        n = PROMPTS * SEEDS
        assert res["n_forget"] == n and res["n_retain"] == 0
        assert res["preservation"]["all"]["value"] is None and res["preservation"]["all"]["n"] == 0
        assert [f["n"] for f in res["judges"]["forgetting"]] == [n, n]
        f = res["forgetting"]["all"]
        flagged = sum(r["positive"] for r in res["images"] if r["split"] == "forget")
        assert f["value"] == flagged / n and (f["n_images"], f["n_prompts"], f["interval"]) == (n, n // 5, "wilson-images")
        assert f["low"] < f["value"] < f["high"] or f["value"] in (0.0, 1.0)
    left = {e["what"] for e in report["left_out"]}
    assert left == {"lpips", "fid"} and all("left out" in w for w in report["warnings"][:2])
    assert sum(r["split"] == "pair" for r in report["methods"]["original"]["images"]) == PROMPTS * SEEDS
    _check_rows(report, rows, sheet, folder, forgot, retain, judges)


@pytest.mark.slow
def test_igmu_church_imagenet_judge_with_retain_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, efficientnet_lite0_dir: Path) -> None:
    folder, forgot, retain = write_igmu(tmp_path / "igmu", "Church", unrelated=True)
    judges = [f"imagenet:497@local-dir:{efficientnet_lite0_dir}"]  # 497: church
    report, rows, sheet = _eval_and_export(tmp_path, folder, judges, monkeypatch)
    for name, res in report["methods"].items():
        n = PROMPTS * SEEDS
        assert (res["n_forget"], res["n_retain"]) == (n, n)
        retain_recs = [r for r in res["images"] if r["split"] == "retain"]
        assert [r["label"] for r in retain_recs] == ["Airplane"] * n
        p = res["preservation"]["all"]
        assert p["value"] == sum(r["correct"] for r in retain_recs) / n and p["n_prompts"] == n // 5
    forget_recs = [r for r in report["methods"]["ESD"]["images"] if r["split"] == "forget"]
    assert [r["prompt"] for r in forget_recs] == [forgot["Church"][0]] * SEEDS  # prompt text on every record
    assert {e["what"] for e in report["left_out"]} == {"lpips", "fid"}
    _check_rows(report, rows, sheet, folder, forgot, retain, judges)
