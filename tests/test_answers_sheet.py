"""An answer sheet's export, its rows, its re-scores and its report, per image and per judge, against answers
computed here from each judge's own verdicts: three tiny judges with thresholds at their median score (mixed verdicts that differ
between the judges), 10 prompts of two seeds per split, the defaults a user gets. Fast: the answer sheets'
mutation tests (``tests/test_answers.py`` runs the same round trip on real weights and photos, slowly)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dataigm
from dataigm.cli import main
from dataigm.core.shards import iter_tar
from dataigm.evaluation.metrics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from dataigm.evaluation.stats import cohen_kappa, judge_agreement, rate
from dataigm.judges.tiny import build_tiny_detector
from dataigm.report.answers import read_sheet, rescore
from dataigm.report.answers_report import sheet_report

FOLDERS = ("original/forget", "original/pair", "original/retain", "m/forget", "m/retain")
NAMES = [f"{p}_{s}.png" for p in range(10) for s in range(2)]  # <prompt index>_<seed>.png: 10 prompts, the bootstrap's unit


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("answers-sheet")
    rng = np.random.default_rng(7)
    files = []
    for folder in FOLDERS:
        (root / "tree" / folder).mkdir(parents=True)
        for name in NAMES:
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "tree" / folder / name)
            files.append(root / "tree" / folder / name)
    specs, thresholds = [], []
    for seed in (1, 3, 5):  # each judge's threshold at its median score over every image: mixed verdicts
        det = build_tiny_detector(root / f"probe-{seed}", ("other", "church"), category="object", seed=seed)
        s = dataigm.load_judge(f"local-dir:{det}", device="cpu")(files).scores
        thresholds.append(float(np.median(s)))
        det = build_tiny_detector(root / f"judge-{seed}", ("other", "church"), category="object", seed=seed, threshold=thresholds[-1])
        specs.append(f"local-dir:{det}")
    # each judge's verdict per (method, split, file), from the public API
    verdicts = []
    for spec in specs:
        v = dataigm.load_judge(spec, device="cpu")(files)
        verdicts.append({(p.parent.parent.name, p.parent.name, p.name): bool(x) for p, x in zip(files, v.positive)})
    tree = root / "tree"
    assert main(["eval", "--method", f"m={tree / 'm'}", "--original", str(tree / "original"), "--judge", specs[0],
                 "--lpips-net", "none", "--fid-features", "none", "--workers", "0", "--device", "cpu", "--out", str(root / "run")]) == 0
    sheet = root / "sheet"
    assert main(["answers", "export", str(root / "run"), "--out", str(sheet), "--workers", "0", "--device", "cpu"]) == 0
    for spec in specs[1:]:
        rescore(sheet, spec, workers=0, device="cpu")
    return {"root": root, "specs": specs, "thresholds": thresholds, "verdicts": verdicts, "sheet": sheet, "run": root / "run"}


def _samples(sheet: Path) -> list:
    """Every sample of the sheet at ``sheet``, in shard order."""
    return [s for tar in sorted((sheet / "data").rglob("*.tar")) for s in iter_tar(tar)]


def _rows(sheet: Path) -> list[dict]:
    return [s.meta for s in _samples(sheet)]


def test_every_row_holds_each_judges_own_verdict_in_the_order_the_judges_were_added(setup):
    rows = _rows(setup["sheet"])
    assert sorted((r["method"], r["split"], Path(r["file"]).name) for r in rows) == sorted(setup["verdicts"][0])
    for r in rows:
        key = (r["method"], r["split"], Path(r["file"]).name)
        assert [v["positive"] for v in r["verdicts"]] == [setup["verdicts"][k][key] for k in range(3)], key
        assert [v["detector"] for v in r["verdicts"]] == setup["specs"]
        assert r["prompt_index"] == int(key[2].split("_")[0])
    sheet = read_sheet(setup["sheet"])
    assert [j["detector"] for j in sheet["judges"]] == setup["specs"]
    # the judges disagree on some images, so a verdict from the wrong judge shows
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert any(setup["verdicts"][a][k] != setup["verdicts"][b][k] for k in setup["verdicts"][0])


def _expected(verdicts: dict, method: str) -> dict:
    st = {"n_resamples": DEFAULT_RESAMPLES, "confidence": DEFAULT_CONFIDENCE, "seed": DEFAULT_SEED}

    def split(name: str) -> tuple[list[bool], list[int]]:
        return [verdicts[(method, name, f)] for f in NAMES], [int(f.split("_")[0]) for f in NAMES]

    forget, clusters = split("forget")
    retain, _ = split("retain")
    out = {"forgetting": rate(forget, clusters=clusters, **st).to_dict(),
           "preservation": rate([not v for v in retain], clusters=clusters, **st).to_dict(),
           "forget_positive_rate": rate(forget, clusters=clusters, **st).to_dict(),
           "retain_positive_rate": rate(retain, clusters=clusters, **st).to_dict()}
    if method == "original":
        out["negative_positive_rate"] = rate(split("pair")[0], clusters=clusters, **st).to_dict()
    return out


@pytest.mark.parametrize("judge_index", [1, 0, -1])  # the middle judge first: taking the first or the last shows
def test_the_report_of_a_sheet_is_its_judges_numbers_grouped_by_prompt(setup, judge_index):
    rep = sheet_report(setup["sheet"], judge_index=judge_index)
    k = judge_index % 3
    assert rep["answers"]["judge_index"] == k and rep["config"]["detector"] == setup["specs"][k]
    assert rep["detector"]["name"] == setup["specs"][k] and rep["target"] == "church"
    assert rep["threshold"] == pytest.approx(setup["thresholds"][k])
    assert rep["config"]["n_resamples"] == DEFAULT_RESAMPLES and rep["config"]["bootstrap_unit"] == "prompt"
    assert list(rep["methods"]) == ["original", "m"]
    for method, res in rep["methods"].items():
        want = _expected(setup["verdicts"][k], method)
        assert res["forgetting"]["all"] == want["forgetting"], method
        assert res["forgetting"]["all"]["n_prompts"] == 10 and res["forgetting"]["all"]["interval"] == "bootstrap-prompts"
        assert res["preservation"]["all"] == want["preservation"], method
        for key in ("forget_positive_rate", "retain_positive_rate", "negative_positive_rate"):
            assert res.get(key) == want.get(key), (method, key)
        assert res["n_forget"] == res["n_retain"] == 20
        # every judge's column, and the kappa of each pair on the forget images
        assert res["judges"]["detectors"] == setup["specs"]
        assert [f["value"] for f in res["judges"]["forgetting"]] == [_expected(v, method)["forgetting"]["value"] for v in setup["verdicts"]]
        assert [p["value"] for p in res["judges"]["preservation"]] == [_expected(v, method)["preservation"]["value"] for v in setup["verdicts"]]
        pairs = {(a["a"], a["b"]): a for a in res["judges"]["agreement"]}
        assert sorted(pairs) == [(0, 1), (0, 2), (1, 2)]
        for (a, b), got in pairs.items():
            va = [setup["verdicts"][a][(method, "forget", f)] for f in NAMES]
            vb = [setup["verdicts"][b][(method, "forget", f)] for f in NAMES]
            assert got["kappa"] == pytest.approx(cohen_kappa(va, vb)) and got["n"] == 20
            assert got["agreement"] == pytest.approx(sum(x == y for x, y in zip(va, vb)) / 20)


def test_the_sheet_reproduces_the_eval_it_came_from(setup):
    run = json.loads((setup["run"] / "report.json").read_text())
    rep = sheet_report(setup["sheet"], judge_index=0)
    for method in ("original", "m"):
        for metric in ("forgetting", "preservation"):
            assert rep["methods"][method][metric]["all"] == run["methods"][method][metric]["all"], (method, metric)
    assert rep["warnings"] == run["warnings"]


@pytest.fixture(scope="module")
def custom(setup) -> dict:
    """The same images evaluated with every setting away from its default, exported and re-scored by a second judge."""
    root, tree = setup["root"], setup["root"] / "tree"
    assert main(["eval", "--method", f"m={tree / 'm'}", "--original", str(tree / "original"), "--judge", setup["specs"][0],
                 "--lpips-net", "none", "--fid-features", "none", "--workers", "0", "--device", "cpu", "--out", str(root / "run-custom"),
                 "--bootstrap", "200", "--seed", "4", "--bootstrap-unit", "image", "--aggregate", "prompt-any",
                 "--group-by", "seed", "--validity-level", "0.6"]) == 0
    sheet = root / "sheet-custom"
    assert main(["answers", "export", str(root / "run-custom"), "--out", str(sheet), "--workers", "0", "--device", "cpu"]) == 0
    rescore(sheet, setup["specs"][1], workers=0, device="cpu")
    return {"run": root / "run-custom", "sheet": sheet}


def test_a_sheet_keeps_every_setting_of_its_eval(setup, custom):
    run = json.loads((custom["run"] / "report.json").read_text())
    rep = sheet_report(custom["sheet"], judge_index=0)
    want = {"aggregate": "prompt-any", "group_by": ["seed"], "n_resamples": 200, "confidence": 0.95, "seed": 4, "bootstrap_unit": "image",
            "validity_level": 0.6}
    assert {k: rep["config"][k] for k in want} == want
    assert rep["format"] == run["format"] and rep["definitions"] == {k: run["definitions"][k] for k in rep["definitions"]}
    assert {"forgetting", "preservation", "judge_validity"} <= set(rep["definitions"])
    assert rep["validity"] == run["validity"] and rep["warnings"] == run["warnings"]
    assert rep["answers"]["sheet"] == str(custom["sheet"])
    for method in ("original", "m"):
        got, ran = rep["methods"][method], run["methods"][method]
        assert got["forgetting"] == ran["forgetting"], method  # per prompt (prompt-any), grouped by seed, images resampled
        assert "seed=0" in got["forgetting"] and got["forgetting"]["all"]["n"] == 10
        for key in ("preservation", "preservation_domains", "unlearning_accuracy", "forget_positive_rate", "retain_positive_rate",
                    "negative_positive_rate", "aggregate", "failed", "n_forget", "n_retain"):
            assert got.get(key) == ran.get(key), (method, key)
        assert got["sources"] == {split: f"{custom['sheet']} ({method}/{split})"
                                  for split in (("forget", "pair", "retain") if method == "original" else ("forget", "retain"))}
        # the two judges' kappa resampled with the eval's settings, on the forget images
        va = [setup["verdicts"][0][(method, "forget", f)] for f in NAMES]
        vb = [setup["verdicts"][1][(method, "forget", f)] for f in NAMES]
        assert got["judges"]["agreement"] == [{"a": 0, "b": 1, **judge_agreement(va, vb, n_resamples=200, seed=4)}]


def test_a_sheet_without_settings_reports_with_the_defaults(setup, tmp_path):
    """A sheet whose answers.json carries no config (written by hand, or by an older dataigm) is reported as a default eval."""
    import shutil

    sheet = tmp_path / "sheet"
    shutil.copytree(setup["sheet"], sheet)
    data = json.loads((sheet / "answers.json").read_text())
    del data["config"]
    (sheet / "answers.json").write_text(json.dumps(data))
    got, want = sheet_report(sheet, judge_index=1), sheet_report(setup["sheet"], judge_index=1)
    assert got["config"] == want["config"] and got["methods"].keys() == want["methods"].keys()
    for method in want["methods"]:
        for key in ("forgetting", "preservation", "forget_positive_rate", "retain_positive_rate", "judges"):
            assert got["methods"][method][key] == want["methods"][method][key], (method, key)
    assert got["validity"] == want["validity"]


@pytest.fixture(scope="module")
def two_judge_run(setup) -> Path:
    """An eval judged by the first two judges at once (the sheet's export then judges with both)."""
    root, tree = setup["root"], setup["root"] / "tree"
    assert main(["eval", "--method", f"m={tree / 'm'}", "--original", str(tree / "original"), "--judge", setup["specs"][0],
                 "--judge", setup["specs"][1], "--lpips-net", "none", "--fid-features", "none", "--workers", "0", "--device", "cpu",
                 "--out", str(root / "run-two"), "--bootstrap", "50"]) == 0
    return root / "run-two"


def test_an_export_holds_every_image_once_with_every_judges_verdict(setup, two_judge_run, tmp_path):
    from dataigm.core.manifest import verify
    from dataigm.report.answers import export_answers

    sheet = export_answers(two_judge_run, tmp_path / "sheet", workers=0, device="cpu")
    assert sheet["format"] == "dataigm-answers/1" and sheet["methods"] == ["m", "original"]
    assert [j["detector"] for j in sheet["judges"]] == setup["specs"][:2]
    assert [j["threshold"] for j in sheet["judges"]] == pytest.approx(setup["thresholds"][:2]) and sheet["category"] == "object"
    assert sheet["config"] == {"aggregate": "image", "group_by": [], "n_resamples": 50, "confidence": 0.95, "seed": 0,
                               "bootstrap_unit": "prompt", "validity_level": sheet["config"]["validity_level"]}
    assert Path(sheet["root"]) == setup["root"] / "tree"
    assert json.loads((tmp_path / "sheet" / "answers.json").read_text()) == sheet and verify(tmp_path / "sheet") == []
    rows = _rows(tmp_path / "sheet")
    keys = [(r["method"], r["split"], Path(r["file"]).name) for r in rows]
    assert sorted(keys) == sorted(setup["verdicts"][0]) and len(set(keys)) == len(keys)  # each image once
    judges = [dataigm.load_judge(spec, device="cpu") for spec in setup["specs"][:2]]
    order = {}  # a sample's key numbers the images of its method and split in file order
    for r, key in zip(rows, keys):
        order.setdefault(key[:2], sorted(n for (m, sp, n) in setup["verdicts"][0] if (m, sp) == key[:2]))
        assert r == {**r, "key": f"{key[0]}-{key[1]}-{order[key[:2]].index(key[2]):06d}", "method": key[0], "split": key[1],
                     "model": key[0], "prompt": "", "pair_prompt": "", "concept": "", "label_name": "", "role": "", "category": "",
                     "subcategory": ""}
        assert r["file"] == f"{key[0]}/{key[1]}/{key[2]}"  # below the sheet's root
        assert [v["positive"] for v in r["verdicts"]] == [setup["verdicts"][k][key] for k in range(2)], key
        assert [v["detector"] for v in r["verdicts"]] == setup["specs"][:2]
        assert r["prompt_index"] == int(key[2].split("_")[0]) and r["seed"] == int(key[2].split("_")[1].split(".")[0])
    images = {s.meta["file"]: s.image for s in _samples(tmp_path / "sheet")}
    assert all(data == (setup["root"] / "tree" / f).read_bytes() for f, data in images.items())  # PNGs kept byte for byte
    some = sorted(images)[:6]
    for k, j in enumerate(judges):  # each judge's score and class, as the judge gives them
        v = j([setup["root"] / "tree" / f for f in some])
        by_file = {r["file"]: r["verdicts"][k] for r in rows}
        assert [by_file[f]["positive_score"] for f in some] == pytest.approx(v.scores.tolist(), abs=1e-6)
        assert [by_file[f]["predicted"] for f in some] == [("church" if p else "other") for p in v.positive]
    manifest = json.loads((tmp_path / "sheet" / "manifest.json").read_text())
    assert manifest["totals"]["samples"] == len(rows) == 100 and manifest["counts"]["answers"]["splits"]["train"]["n"] == 100
    card = (tmp_path / "sheet" / "README.md").read_text()
    assert all(spec in card for spec in setup["specs"][:2])


def test_a_rescore_appends_one_verdict_per_image_and_keeps_the_rest(setup, two_judge_run, tmp_path):
    from dataigm.report.answers import export_answers

    sheet_dir = tmp_path / "sheet"
    export_answers(two_judge_run, sheet_dir, workers=0, device="cpu")
    before = {s.meta["file"]: (s.meta, s.image) for s in _samples(sheet_dir)}
    sheet = rescore(sheet_dir, setup["specs"][2], threshold=0.5, workers=0, device="cpu")
    assert json.loads((sheet_dir / "answers.json").read_text()) == sheet
    assert [j["detector"] for j in sheet["judges"]] == setup["specs"] and sheet["judges"][2]["threshold"] == 0.5
    assert sheet["judges"][2]["concept"] is None and sheet["judges"][2]["target"] == "church"
    assert all(j["label_names"] == ["other", "church"] for j in sheet["judges"])
    assert sheet["judges"][2]["weights_sha256"] == sheet["judges"][2]["describe"]["weights_sha256"]
    scores = dataigm.load_judge(setup["specs"][2], device="cpu")([setup["root"] / "tree" / f for f in sorted(before)]).scores
    after = {s.meta["file"]: (s.meta, s.image) for s in _samples(sheet_dir)}
    assert sorted(after) == sorted(before)
    for f, score in zip(sorted(before), scores):
        meta, image = after[f]
        assert image == before[f][1] and meta["verdicts"][:2] == before[f][0]["verdicts"]
        assert {k: v for k, v in meta.items() if k != "verdicts"} == {k: v for k, v in before[f][0].items() if k != "verdicts"}
        assert meta["verdicts"][2]["detector"] == setup["specs"][2] and meta["verdicts"][2]["positive"] == (score >= 0.5), f
        assert meta["verdicts"][2]["positive_score"] == pytest.approx(float(score), abs=1e-6)
    manifest = json.loads((sheet_dir / "manifest.json").read_text())
    assert manifest["totals"]["samples"] == 100 and setup["specs"][2] in (sheet_dir / "README.md").read_text()


@pytest.fixture(scope="module")
def jpeg_run(setup, tmp_path_factory) -> Path:
    """An eval of JPEG images (12 per folder), judged by the first judge."""
    root = tmp_path_factory.mktemp("jpeg")
    rng = np.random.default_rng(3)
    tree = root / "tree"
    for folder in ("original/forget", "original/retain", "m/forget", "m/retain"):
        (tree / folder).mkdir(parents=True)
        for name in NAMES[:12]:
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tree / folder / name.replace(".png", ".jpg"), quality=90)
    # each image's prompt from tables, as --prompts gives them: every field a record of a file can carry
    for split in ("forget", "retain"):
        rows = [{"prompt": f"a {split} prompt {i}", "concept": "church" if split == "forget" else "", "category": "object",
                 "subcategory": f"sub{i % 2}", "label": "church" if split == "forget" else "other",
                 "paired_negative": f"a plain prompt {i}" if split == "forget" else None, "index": i} for i in range(6)]
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", "--method", f"m={tree / 'm'}", "--original", str(tree / "original"), "--judge", setup["specs"][0],
                 "--lpips-net", "none", "--fid-features", "none", "--workers", "0", "--device", "cpu", "--out", str(root / "run"),
                 "--prompts", str(root / "forget.jsonl"), str(root / "retain.jsonl")]) == 0
    return root / "run"


def test_jpeg_images_and_a_report_without_image_paths_export_the_same_rows(jpeg_run, tmp_path):
    """JPEG files become PNG samples with the same pixels; a report written before its per-image records named their
    files (an older dataigm) is exported from its source folders, with the same rows."""
    from dataigm.report.answers import export_answers

    tree = jpeg_run.parent / "tree"
    export_answers(jpeg_run, tmp_path / "sheet", workers=0, device="cpu")
    samples = {s.meta["file"]: s for s in _samples(tmp_path / "sheet")}
    assert len(samples) == 48 and all(f.endswith(".jpg") for f in samples)
    for f, s in samples.items():
        split, index = f.split("/")[1], int(Path(f).stem.split("_")[0])
        assert {k: s.meta[k] for k in ("prompt", "pair_prompt", "concept", "category", "subcategory", "label_name", "role", "prompt_index")} == {
            "prompt": f"a {split} prompt {index}", "pair_prompt": f"a plain prompt {index}" if split == "forget" else "",
            "concept": "church" if split == "forget" else "", "category": "object", "subcategory": f"sub{index % 2}",
            "label_name": "church" if split == "forget" else "other", "role": "positive", "prompt_index": index}, f
        assert s.image[:8] == b"\x89PNG\r\n\x1a\n"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(s.image))), np.asarray(Image.open(tree / f).convert("RGB"))), f
    report = json.loads((jpeg_run / "report.json").read_text())
    for res in report["methods"].values():
        for rec in res.get("images") or []:
            rec.pop("path", None)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps(report))
    export_answers(tmp_path / "old", tmp_path / "old-sheet", workers=0, device="cpu")
    old = {s.meta["file"]: s for s in _samples(tmp_path / "old-sheet")}
    assert sorted(old) == sorted(samples)
    for f, s in samples.items():
        assert old[f].image == s.image and old[f].meta == s.meta, f


def test_shards_are_cut_at_their_size_and_the_manifest_counts_them(tmp_path, monkeypatch):
    import hashlib

    import dataigm.report.answers as answers

    monkeypatch.setattr(answers, "SHARD_SIZE", 3)
    samples = [({"key": f"m-{split}-{i:06d}", "split": split, "file": f"{i}.png"}, f"png{i}".encode())
               for i, split in enumerate(["forget", "retain", "forget", "pair", "forget", "retain", "forget"])]
    entries = answers.write_shards(tmp_path, iter(samples))
    assert [(e["path"], e["n"]) for e in entries] == [("data/answers/train/answers-00000.tar", 3), ("data/answers/train/answers-00001.tar", 3),
                                                     ("data/answers/train/answers-00002.tar", 1)]
    assert all(e["sha256"] == hashlib.sha256((tmp_path / e["path"]).read_bytes()).hexdigest() for e in entries)
    assert not list(tmp_path.rglob("*.tmp*"))  # each tar published whole
    got = [s for e in entries for s in iter_tar(tmp_path / e["path"])]
    assert [(s.key, s.meta, s.image) for s in got] == [(f["key"], f, png) for f, png in samples]
    with tarfile.open(tmp_path / entries[0]["path"]) as tar:  # the class of each sample: 1 for the forget split
        assert [tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".cls")] == [b"1", b"0", b"1"]
        assert [tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".json")] == \
               [json.dumps(f, sort_keys=True).encode() for f, _ in samples[:3]]
    again = answers.write_shards(tmp_path / "again", iter(samples))  # the same samples give the same bytes
    assert [e["sha256"] for e in again] == [e["sha256"] for e in entries]
    answers.write_sheet_files(tmp_path, {"format": "dataigm-answers/1", "judges": [], "category": "object", "methods": ["m"]}, entries)
    assert json.loads((tmp_path / "manifest.json").read_text()) == {
        "format": "dataigm-answers/1", "shards": entries, "hub": {"data_dir": "data"},
        "counts": {"answers": {"taxonomy": "object", "splits": {"train": {"n": 7}}}}, "totals": {"samples": 7}}
    assert json.loads((tmp_path / "answers.json").read_text())["category"] == "object" and (tmp_path / "README.md").read_text()
    assert answers.sheet_shards(tmp_path) == [tmp_path / e["path"] for e in entries]
    assert answers.write_shards(tmp_path / "empty", iter([])) == []
    answers.write_sheet_files(tmp_path, {"format": "dataigm-answers/1", "judges": [], "methods": ["m"]}, entries)
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"]["answers"]["taxonomy"] == ""


def test_the_judges_and_reports_of_a_run_are_found_once_in_order(tmp_path):
    from dataigm.core.errors import DataigmError
    from dataigm.report.answers import find_reports, run_judges

    def report(detector, more=(), threshold=None, concept=None):
        return {"format": "dataigm-eval/3", "config": {"detector": detector, "more_detectors": list(more), "threshold": threshold, "concept": concept}}

    for name, r in (("b/report.json", report("nudenet:esd", ["q16@x"], 0.5)), ("a/report.json", report("imagenet:church")),
                    ("c/report.json", {"format": "dataigm-audit/1"})):
        (tmp_path / name).parent.mkdir(parents=True)
        (tmp_path / name).write_text(json.dumps(r))
    found = find_reports(tmp_path)  # a benchmark's reports below it, sorted, other reports skipped
    assert [r["config"]["detector"] for r in found] == ["imagenet:church", "nudenet:esd"]
    assert find_reports(tmp_path / "a") == [report("imagenet:church")]  # a run's own report
    reports = [report("nudenet:esd", ["q16@x", "nudenet:esd"], 0.5), report("nudenet:esd", ["q16@x"], 0.5), report("nudenet:esd", [], 0.6),
               report("nudenet:esd", [], 0.6, "nudity")]
    del reports[1]["config"]["more_detectors"]  # an eval with one judge may not name more
    assert run_judges(reports) == [{"detector": "nudenet:esd", "threshold": 0.5, "concept": None},
                                   {"detector": "q16@x", "threshold": 0.5, "concept": None},
                                   {"detector": "nudenet:esd", "threshold": 0.6, "concept": None},
                                   {"detector": "nudenet:esd", "threshold": 0.6, "concept": "nudity"}]
    with pytest.raises(DataigmError, match="no eval report"):
        find_reports(tmp_path / "c")
