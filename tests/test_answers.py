"""Answer sheets: export an eval run, read it with stock ``datasets``, re-score it with a second real judge, and
get the first judge's verdicts back unchanged (real ImageNet EfficientNet-Lite0 weights on real photos)."""

from __future__ import annotations

import json

import pytest
from audit_photos import write_eval_tree

from dataigm.cli import main
from dataigm.core.manifest import verify
from dataigm.hub.push import folder_kind


@pytest.mark.slow
def test_answer_sheet_round_trip(efficientnet_lite0_dir, tmp_path, capsys):
    tree = write_eval_tree(tmp_path / "tree")
    tabby, egyptian = (f"imagenet:{c}@local-dir:{efficientnet_lite0_dir}" for c in (281, 285))
    assert main(["eval", "--method", f"m={tree / 'm'}", "--original", str(tree / "original"), "--judge", tabby, "--lpips-net", "none",
                 "--fid-features", "none", "--bootstrap", "50", "--workers", "0", "--out", str(tmp_path / "run"), "--json"]) == 0
    run_report = json.loads(capsys.readouterr().out)
    sheet_dir = tmp_path / "sheet"
    assert main(["answers", "export", str(tmp_path / "run"), "--out", str(sheet_dir), "--workers", "0"]) == 0
    assert verify(sheet_dir) == [] and folder_kind(sheet_dir) == "dataset"  # 'dataigm push' publishes it as a dataset
    assert "imagenet:281" in (sheet_dir / "README.md").read_text()
    # stock datasets reads it: one row per image (2 methods x forget/retain + the original's pair images)
    import datasets

    ds = datasets.load_dataset(str(sheet_dir), split="train")
    assert len(ds) == 8 * 5 and set(ds.column_names) >= {"png", "json"}
    fields = [row["json"] for row in ds]
    assert {(f["method"], f["split"]) for f in fields} == {("original", "forget"), ("original", "retain"), ("original", "pair"), ("m", "forget"), ("m", "retain")}
    first = {f["file"] + f["method"] + f["split"]: f["verdicts"][0]["positive"] for f in fields}
    assert all(f["verdicts"][0]["detector"] == tabby for f in fields) and ds[0]["png"].size[0] >= 64
    orig_forget = [f["verdicts"][0]["positive"] for f in fields if (f["method"], f["split"]) == ("original", "forget")]
    assert sum(orig_forget) / 8 == run_report["methods"]["original"]["forgetting"]["all"]["value"]  # the eval's own verdicts
    # re-score with a second judge, then with the first again: the stored verdicts are reproduced
    assert main(["answers", "rescore", str(sheet_dir), "--judge", egyptian, "--workers", "0", "--report", str(tmp_path / "r1")]) == 0
    assert main(["answers", "rescore", str(sheet_dir), "--judge", tabby, "--workers", "0", "--report", str(tmp_path / "r2"), "--json"]) == 0
    capsys.readouterr()
    sheet = json.loads((sheet_dir / "answers.json").read_text())
    assert [j["detector"] for j in sheet["judges"]] == [tabby, egyptian, tabby] and sheet["judges"][1]["describe"]["kind"] == "imagenet"
    rows = [row["json"] for row in datasets.load_dataset(str(sheet_dir), split="train", download_mode="force_redownload")]
    assert all(r["verdicts"][2]["positive"] == first[r["file"] + r["method"] + r["split"]] for r in rows)
    assert all(r["verdicts"][2]["positive_score"] == pytest.approx(r["verdicts"][0]["positive_score"], abs=1e-6) for r in rows)
    assert sum(r["verdicts"][1]["positive"] for r in rows) > sum(r["verdicts"][0]["positive"] for r in rows)
    # the report of the re-score: the first judge's numbers equal the eval's, one column per judge
    rep = json.loads((tmp_path / "r2" / "report.json").read_text())
    for method in ("original", "m"):
        assert rep["methods"][method]["forgetting"]["all"]["value"] == run_report["methods"][method]["forgetting"]["all"]["value"]
        assert rep["methods"][method]["preservation"]["all"]["value"] == run_report["methods"][method]["preservation"]["all"]["value"]
    assert rep["warnings"] == run_report["warnings"] and len(rep["methods"]["m"]["judges"]["agreement"]) == 3
    assert "## Judges" in (tmp_path / "r2" / "report.md").read_text()
    # the first re-score's report is the second judge's (index 1, where taking judge 0 or the last would show)
    rep1 = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert rep1["config"]["detector"] == egyptian and rep1["answers"]["judge_index"] == 1 and rep1["detector"]["spec"].startswith("imagenet:285")
    for method in ("original", "m"):
        forget = [r["verdicts"][1]["positive"] for r in rows if (r["method"], r["split"]) == (method, "forget")]
        assert rep1["methods"][method]["forgetting"]["all"]["value"] == pytest.approx(sum(forget) / len(forget))
        assert rep1["methods"][method]["n_forget"] == len(forget) == 8
    differs = [m for m in ("original", "m") if rep1["methods"][m]["forgetting"]["all"]["value"] != rep["methods"][m]["forgetting"]["all"]["value"]]
    assert differs  # the two judges give different numbers on these images, so a wrong index cannot pass
