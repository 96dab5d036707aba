"""HUB's quality table in ``dataigm eval`` (``--quality``): each score judge's mean per method on the prompts every
row shares, with intervals, for the original and each method; and FID against reference statistics (``--fid-reference
STATS.npz``) with the statistics' sha256 in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataigm.judges.tiny import build_tiny_detector
from dataigm.prompts import PromptRecord, write_prompt_jsonl
from real_weights import skimage_photo

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "horse", "moon", "page")


def _save(folder: Path, index: int, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    skimage_photo(name).resize((72, 56), Image.BILINEAR).save(folder / f"{index}_0.png")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """original: 4 forget + 4 retain photos; esd: other photos of the same prompts; ga: esd's, without retain prompt 3."""
    from dataigm.generate.tiny import build_tiny_clip

    root = tmp_path_factory.mktemp("quality")
    forget = [f"a photo of {w}" for w in ("an astronaut", "a cat", "coffee", "a rocket")]
    retain = [f"a picture of {w}" for w in ("a camera", "a horse", "the moon", "a page")]
    write_prompt_jsonl([PromptRecord(p, concept="thing", index=i) for i, p in enumerate(forget)], root / "forget.jsonl")
    write_prompt_jsonl([PromptRecord(p, concept="other", label="other", index=i) for i, p in enumerate(retain)], root / "retain.jsonl")
    for i in range(4):
        _save(root / "original" / "forget", i, PHOTOS[i])
        _save(root / "original" / "retain", i, PHOTOS[4 + i])
        _save(root / "esd" / "forget", i, PHOTOS[(i + 5) % 8])
        _save(root / "esd" / "retain", i, PHOTOS[(i + 1) % 8])
        _save(root / "ga" / "forget", i, PHOTOS[(i + 5) % 8])
        if i != 3:
            _save(root / "ga" / "retain", i, PHOTOS[(i + 1) % 8])
    return {"root": root, "forget": forget, "retain": retain, "clip": build_tiny_clip(root / "clip"),
            "det": build_tiny_detector(root / "det", ("other", "thing"), seed=3)}


def direct_scores(judge_, folder: Path, prompts: list[str], indices: list[int]) -> list[float]:
    images = [Image.open(folder / f"{i}_0.png").convert("RGB") for i in indices]
    return judge_.score(judge_.collate([judge_.preprocess(im) for im in images]), [prompts[i] for i in indices])


@pytest.mark.slow
def test_eval_quality_table_and_fid_statistics(tree: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    import timm

    from dataigm.cli import main
    from dataigm.evaluation.fidelity import ImageReader, TimmFeatures, to_uint8_tensor
    from dataigm.judges.images import resolve_images
    from dataigm.judges.registry import create_judge

    root = tree["root"]
    net = TimmFeatures(timm.create_model(f"local-dir:{tree['det']}", pretrained=True, num_classes=0))
    with torch.no_grad(), ImageReader() as reader:
        feats = net(to_uint8_tensor([reader.image(r, 299) for r in resolve_images(root / "original" / "retain").files])).double().numpy()
    np.savez(tmp_path / "stats.npz", mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    spec = f"pickscore@{tree['clip']}"
    out = tmp_path / "report"
    rc = main(["eval", "--method", f"esd={root / 'esd'}", "--original", str(root / "original"), "--prompts", str(root / "forget.jsonl"),
               str(root / "retain.jsonl"), "--judge", f"local-dir:{tree['det']}", "--concept", "thing", "--quality", spec,
               "--fid-reference", str(tmp_path / "stats.npz"), "--fid-features", f"local-dir:{tree['det']}",
               "--lpips-net", "none", "--forget-reference", "same-prompt", "--bootstrap", "50", "--workers", "0", "--out", str(out), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    judge_ = create_judge(spec)
    for name in ("original", "esd"):
        q = report["methods"][name]["quality"][spec]
        forget = direct_scores(judge_, root / name / "forget", tree["forget"], [0, 1, 2, 3])
        retain = direct_scores(judge_, root / name / "retain", tree["retain"], [0, 1, 2, 3])
        assert q["forget"]["value"] == pytest.approx(np.mean(forget), rel=1e-5) and q["forget"]["n"] == 4
        assert q["retain"]["value"] == pytest.approx(np.mean(retain), rel=1e-5) and q["retain"]["n_prompts"] == 4
        assert q["forget"]["low"] <= q["forget"]["value"] <= q["forget"]["high"] and q["forget"]["low"] < q["forget"]["high"]
    assert report["methods"]["original"]["quality"][spec]["forget"]["value"] != pytest.approx(
        report["methods"]["esd"]["quality"][spec]["forget"]["value"])
    assert report["definitions"]["quality"] == "quality/1" and report["definitions"]["fid_stats"] == "fid_stats/1"
    rf = report["methods"]["esd"]["reference_fidelity"]
    assert rf["sha256"] == hashlib.sha256((tmp_path / "stats.npz").read_bytes()).hexdigest() and rf["verified"] is None
    # the statistics are the original's retain images' (FID ~ 0); esd's retain images are other photos
    assert abs(report["methods"]["original"]["reference_fidelity"]["fid"]) < 1e-2 < rf["fid"]
    md = (out / "report.md").read_text()
    assert "## Quality and alignment" in md and f"`{spec}` forget (↑)" in md and "| esd |" in md
    assert f"statistics, sha256 {rf['sha256'][:16]}… (unverified)" in md
    assert f"{spec} forget (↑)" in (out / "report.html").read_text()


def test_the_table_keeps_the_prompts_every_row_shares(tree: dict) -> None:
    from dataigm.evaluation.evaluate import open_set
    from dataigm.evaluation.quality import quality_table
    from dataigm.judges.registry import create_judge

    root = tree["root"]
    prompts = (root / "forget.jsonl", root / "retain.jsonl")
    spec = f"pickscore@{tree['clip']}"
    judge_ = create_judge(spec)
    rows = {name: open_set(root / name / "forget", root / name / "retain", prompts) for name in ("original", "esd", "ga")}
    table = quality_table({spec: judge_}, {n: {"forget": s.forget, "retain": s.retain} for n, s in rows.items()}, n_resamples=20)
    for name in ("original", "esd", "ga"):
        retain = table[name][spec]["retain"]
        assert retain["n"] == 3 and retain["n_prompts"] == 3  # ga has no image of retain prompt 3: every row leaves it out
        assert retain["value"] == pytest.approx(np.mean(direct_scores(judge_, root / name / "retain", tree["retain"], [0, 1, 2])), rel=1e-5)
        assert table[name][spec]["forget"]["n"] == 4
    assert table["esd"][spec]["retain"]["value"] == pytest.approx(table["ga"][spec]["retain"]["value"])


def test_a_judge_without_scores_is_refused(tree: dict, tmp_path: Path) -> None:
    from dataigm.core.errors import InputError
    from dataigm.evaluation.evaluate import EvalConfig, evaluate, open_set

    root = tree["root"]
    prompts = (root / "forget.jsonl", root / "retain.jsonl")
    cfg = EvalConfig(detector=f"local-dir:{tree['det']}", concept="thing", quality=(f"local-dir:{tree['det']}",), lpips_net=None,
                     fid_feature=None, workers=0, n_resamples=20)
    with pytest.raises(InputError, match="gives no score"):
        evaluate({"esd": open_set(root / "esd" / "forget", root / "esd" / "retain", prompts)}, cfg)
