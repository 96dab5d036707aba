"""Several judges at once (``judge`` and ``eval`` with more than one ``--judge``), with two real ImageNet judges
(real EfficientNet-Lite0 weights) on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_photos import write_eval_tree, write_labelled_photos

from dataigm.cli import main
from dataigm.evaluation.agreement import cohen_kappa


def _specs(model: Path) -> list[str]:
    return [f"imagenet:281@local-dir:{model}", f"imagenet:285@local-dir:{model}"]  # tabby, Egyptian cat


@pytest.mark.slow
def test_judge_with_two_detectors(efficientnet_lite0_dir, tmp_path, capsys):
    photos = write_labelled_photos(tmp_path / "photos")
    specs = _specs(efficientnet_lite0_dir)
    out = tmp_path / "pred.jsonl"
    assert main(["judge", str(photos), "--judge", specs[0], "--judge", specs[1], "--workers", "0", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 23 and all([v["detector"] for v in r["verdicts"]] == specs for r in rows)
    a, b = ([r["verdicts"][i]["positive"] for r in rows] for i in (0, 1))
    assert [s["n_positive"] for s in summary["judges"]] == [sum(a), sum(b)] and sum(a) < sum(b)
    (pair,) = summary["agreement"]
    assert pair["kappa"] == pytest.approx(cohen_kappa(a, b)) and pair["n"] == 23
    assert rows[0]["verdicts"][0]["top1"] is not None  # the judge's own extras ride along


@pytest.mark.slow
def test_eval_with_two_detectors(efficientnet_lite0_dir, tmp_path, capsys):
    tree = write_eval_tree(tmp_path / "tree")
    specs = _specs(efficientnet_lite0_dir)
    assert main(["eval", "--method", f"m={tree / 'm'}", "--original", str(tree / "original"), "--judge", specs[0], "--judge", specs[1],
                 "--lpips-net", "none", "--fid-features", "none", "--bootstrap", "50", "--workers", "0", "--out", str(tmp_path / "r"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    orig = rep["methods"]["original"]
    assert "forget_verdicts" not in orig and orig["judges"]["detectors"] == specs
    assert orig["judges"]["forgetting"][0] == orig["forgetting"]["all"]
    assert orig["judges"]["forgetting"][0]["value"] < orig["judges"]["forgetting"][1]["value"]
    assert orig["judges"]["agreement"][0]["n"] == 8
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Judges" in md and "kappa A-B" in md
    # every image record carries every judge's verdict (report.html's disagreements filter reads them)
    forget = [r for r in orig["images"] if r["split"] == "forget"]
    assert len(forget) == 8 and all(list(r["judges"]) == specs for r in forget)
    assert [r["judges"][specs[0]]["positive"] for r in forget] == [r["positive"] for r in forget]
    disagree = sum(r["judges"][specs[0]]["positive"] != r["judges"][specs[1]]["positive"] for r in forget)
    html = (tmp_path / "r" / "report.html").read_text()
    assert disagree > 0 and html.count('data-disagree="1"') >= disagree
