"""dataigm eval fails fast: every model it needs is loaded before the first image is judged, and a missing one
fails in one stderr line naming the flag that supplies it or turns the metric off."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataigm.evaluation.preflight import EVAL_MODEL_HINTS
from dataigm.judges.tiny import build_tiny_detector
from report_helpers import write_photo_eval


@pytest.fixture(scope="module")
def small_eval(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = write_photo_eval(tmp_path_factory.mktemp("preflight"))
    return root, build_tiny_detector(root / "det", ("other", "cat"), positive_label=1, category="object", seed=1)


@pytest.mark.parametrize("flags, what", [
    (["--csdr", "--clip-model", "/nonexistent/clip"], ["clip"]),
    (["--cmmd", "./no/such/clip"], ["cmmd"]),
    (["--csdr", "--clip-model", "/nonexistent/clip", "--cmmd", "./no/such/clip"], ["clip", "cmmd"]),  # every one at once, not the first alone
])
def test_a_missing_model_fails_before_judging(small_eval: tuple[Path, Path], flags: list[str], what: list[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    root, det = small_eval
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached torchvision weights, no network
    out = tmp_path / "report"
    rc = main(["eval", "--method", f"erased={root / 'erased'}", "--original", str(root / "original"), "--prompts", str(root / "forget.jsonl"),
               str(root / "retain.jsonl"), "--judge", f"local-dir:{det}", "--forget-reference", "same-prompt", "--workers", "0",
               "--out", str(out), *flags])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot be loaded" in err[0], err
    from dataigm.cli import build_parser, in_flags
    from dataigm.commands.eval import PARAMETERS

    eval_parser = next(a for a in build_parser()._actions if a.dest == "command").choices["eval"]
    for w in what:  # each with the fix this command accepts, in flags
        fix = in_flags(EVAL_MODEL_HINTS[w], eval_parser, PARAMETERS)
        assert f"{w} '" in err[0] and fix in err[0] and "_" not in fix.split("(")[0]
    assert ("models cannot be loaded" in err[0]) == (len(what) > 1) and captured.out == ""
    assert not out.exists()  # nothing judged, nothing written


def test_offline_lpips_and_fid_without_cached_weights_are_left_out_with_one_note(small_eval: tuple[Path, Path], tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The default path offline: no flag for LPIPS or FID, no cached weights. The run goes on; each row left out says
    which, why and how to get it."""
    import json

    from dataigm.cli import main

    root, det = small_eval
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "400")  # one printed line per note
    out = tmp_path / "report"
    assert main(["eval", "--method", f"erased={root / 'erased'}", "--original", str(root / "original"), "--prompts", str(root / "forget.jsonl"),
                 str(root / "retain.jsonl"), "--judge", f"local-dir:{det}", "--forget-reference", "same-prompt", "--workers", "0",
                 "--bootstrap", "50", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [(e["what"], e["model"]) for e in report["left_out"]] == [("lpips", "alex"), ("fid", "inception")]
    assert "lpips" not in report["methods"]["erased"]["fidelity"]["forget"] and "fid" not in report["methods"]["erased"]["fidelity"]["forget"]
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:") and " left out: " in line]
    assert len(notes) == 2 and notes[0].startswith("warning: LPIPS left out: lpips 'alex' cannot be loaded: offline, and its weights")
    assert notes[0].endswith("or --lpips-net none") and "--fid-weights" in notes[1] and "--fid-features" in notes[1]
    assert report["methods"]["erased"]["forgetting"]["all"]["n"] == 6  # the judge still ran on every image


def test_torch_fidelity_is_installed_for_the_default_fid() -> None:
    """The default --fid-features (inception) needs torch-fidelity: a dependency, so only its weights can be missing."""
    from dataigm.evaluation.fidelity import create_feature_network

    assert create_feature_network("inception") == 2048
