"""Answer sheets from runs whose inputs are not plain folders: the demo's evaluation of dataset shards (its report
used to fail 'answers export' because its sources were labels, not paths). One row per judged image, named by its
real shard path and key below the sheet's root, with the prompt, the method and the judge's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from dataigm.core.shards import iter_tar
from dataigm.judges.tiny import build_tiny_detector
from dataigm.synthetic import write_synthetic_dataset


def test_the_demo_report_exports_one_row_per_judged_shard_sample(tmp_path: Path) -> None:
    from dataigm.cli import main
    from dataigm.evaluation.demo import write_eval_report

    dataset = tmp_path / "dataset"
    write_synthetic_dataset(dataset, "object", ["church", "other"], {"train": 2, "test": 6}, shard_size=4)
    det = build_tiny_detector(tmp_path / "det", ("other", "church"), positive_label=1, category="object", seed=1)
    write_eval_report(SimpleNamespace(out=tmp_path / "demo", console=Console(file=open("/dev/null", "w"))), dataset, det, "object")
    report = json.loads((tmp_path / "demo" / "eval" / "report.json").read_text())
    records = report["methods"]["tiny"]["images"]
    assert records and all(r["key"] and Path(r["path"]).is_file() for r in records)
    assert main(["answers", "export", str(tmp_path / "demo" / "eval"), "--out", str(tmp_path / "sheet"), "--workers", "0", "--device", "cpu"]) == 0
    sheet = json.loads((tmp_path / "sheet" / "answers.json").read_text())
    rows = [s.meta for tar in sorted((tmp_path / "sheet" / "data/answers/train").glob("*.tar")) for s in iter_tar(tar)]
    assert len(rows) == len(records)  # one row per judged image, and only those (the train split is not in the report)
    by_file = {(r["split"], r["file"]): r for r in rows}
    root = Path(sheet["root"])
    for rec in records:
        shard = Path(rec["path"]).resolve().relative_to(root).as_posix()
        row = by_file[(rec["split"], f"{shard}#{rec['key']}")]
        assert row["method"] == "tiny" and row["prompt"] == rec["prompt"] and row["prompt"]
        # every field a shard sample's record knows, as the sheet names it
        assert (row["concept"], row["label_name"], row["role"], row["category"], row["subcategory"], row["pair_prompt"]) == (
            str(rec.get("concept") or ""), str(rec.get("label") or ""), str(rec.get("role") or ""), str(rec.get("category") or ""),
            str(rec.get("subcategory") or ""), str(rec.get("pair_prompt") or ""))
        assert row["seed"] == rec["seed"] and row["prompt_index"] == rec["prompt_index"] and row["model"] == str(rec.get("model") or "tiny")
        assert row["verdicts"][0]["positive"] == rec["positive"]
        assert abs(row["verdicts"][0]["positive_score"] - rec["score"]) < 1e-4
