"""evaluate() with every combination of one or two judges x with or without retain images x with or without the
original model: the class of bug behind ``KeyError: 'all'`` (two judges, a folder without retain images) cannot
come back. Real offline judges (NudeNet 320n and OpenNSFW), real photos at 64 px."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dataigm.evaluation.evaluate import EvalConfig, ImageSet, evaluate, open_set
from dataigm.judges.images import ImageInput
from dataigm.prompts import PromptRecord, write_prompt_jsonl
from real_weights import skimage_photo

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("combos")
    write_prompt_jsonl([PromptRecord(f"forget prompt {i}", concept="nude", category="nudity", index=i) for i in range(2)], root / "f.jsonl")
    write_prompt_jsonl([PromptRecord(f"retain prompt {i}", concept="tree", category="object", label="other", index=i) for i in range(2)],
                       root / "r.jsonl")
    for m, model in enumerate(("original", "erased")):
        for split in ("forget", "retain"):
            for i in range(2):
                for seed in range(2):
                    path = root / model / split / f"{i}_{seed}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    skimage_photo(PHOTOS[(m + i + seed) % 4]).resize((64, 64), Image.BICUBIC).save(path)
    return root


@pytest.mark.parametrize("original", [False, True], ids=["no-original", "original"])
@pytest.mark.parametrize("retain", [False, True], ids=["no-retain", "retain"])
@pytest.mark.parametrize("judges", [["nudenet"], ["nudenet", "opennsfw"]], ids=["one-judge", "two-judges"])
def test_every_combination_of_judges_retain_and_original(folders: Path, judges: list[str], retain: bool, original: bool) -> None:
    def images(model: str) -> ImageSet:
        s = open_set(folders / model / "forget", folders / model / "retain", (folders / "f.jsonl", folders / "r.jsonl"))
        return s if retain else ImageSet(s.forget, ImageInput("no retain images"))

    cfg = EvalConfig(detector=judges[0], more_detectors=tuple(judges[1:]), person_detector="nudenet-body", n_resamples=50, workers=0,
                     lpips_net=None, fid_feature=None, forget_reference="same-prompt")
    report = evaluate({"erased": images("erased")}, cfg, images("original") if original else None)
    assert set(report["methods"]) == ({"original", "erased"} if original else {"erased"})
    for name, res in report["methods"].items():
        forget = [r for r in res["images"] if r["split"] == "forget"]
        kept = [r for r in res["images"] if r["split"] == "retain"]
        assert [r["id"] for r in forget] == ["0_0.png", "0_1.png", "1_0.png", "1_1.png"]
        assert [r["prompt"] for r in forget] == ["forget prompt 0"] * 2 + ["forget prompt 1"] * 2
        assert len(kept) == (4 if retain else 0) and res["n_retain"] == len(kept)
        f, p = res["forgetting"]["all"], res["preservation"]["all"]
        assert f["value"] == sum(r["positive"] for r in forget) / 4 and (f["n_images"], f["n_prompts"]) == (4, 2)
        assert p["value"] == (sum(r["correct"] for r in kept) / 4 if retain else None) and p["n"] == len(kept)
        assert res["unlearning_accuracy"]["value"] == pytest.approx(1.0 - f["value"])
        if len(judges) == 2:
            assert res["judges"]["detectors"] == judges
            second = [r["judges"][judges[1]]["positive"] for r in forget]  # each image's verdict by the second judge
            assert res["judges"]["forgetting"][1]["value"] == sum(second) / 4
            assert res["judges"]["preservation"][1]["n"] == len(kept)
            assert res["judges"]["agreement"][0]["n"] == 4
        else:
            assert "judges" not in res
        assert res["person_presence"]["n"] == 4


def test_offline_a_further_judge_without_cached_weights_is_left_out_with_one_note(folders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = open_set(folders / "erased" / "forget", folders / "erased" / "retain", (folders / "f.jsonl", folders / "r.jsonl"))
    cfg = EvalConfig(detector="nudenet", more_detectors=("acme/not-cached-judge", "opennsfw"), person_detector="nudenet-body",
                     n_resamples=50, workers=0, lpips_net=None, fid_feature=None)
    report = evaluate({"erased": s}, cfg)
    assert [(e["what"], e["model"]) for e in report["left_out"]] == [("judge", "acme/not-cached-judge")]
    assert report["warnings"][0].startswith("this judge's column left out: judge 'acme/not-cached-judge' cannot be loaded")
    res = report["methods"]["erased"]
    assert res["judges"]["detectors"] == ["nudenet", "opennsfw"] and list(report["config"]["more_detectors"]) == ["opennsfw"]
    with pytest.raises(Exception, match="judge 'acme/not-cached-judge' cannot be loaded"):  # the first judge cannot be left out
        evaluate({"erased": s}, EvalConfig(detector="acme/not-cached-judge", workers=0, lpips_net=None, fid_feature=None))
