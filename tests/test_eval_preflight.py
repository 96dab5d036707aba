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
    (["--lpips-net", "none"], "fid"),  # the default FID (torchmetrics' Inception via torch-fidelity) without its weights
    (["--fid-features", "none"], "lpips"),
    (["--fid-features", "none", "--lpips-net", "none", "--csdr", "--clip-model", "/nonexistent/clip"], "clip"),
    (["--fid-features", "none", "--lpips-net", "none", "--cmmd", "./no/such/clip"], "cmmd"),
])
def test_a_missing_model_fails_before_judging(small_eval: tuple[Path, Path], flags: list[str], what: str, tmp_path: Path,
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
    assert rc == 2 and len(err) == 1 and f"{what} " in err[0] and "cannot be loaded" in err[0], err
    from dataigm.cli import build_parser, in_flags
    from dataigm.commands.eval import PARAMETERS

    eval_parser = next(a for a in build_parser()._actions if a.dest == "command").choices["eval"]
    assert in_flags(EVAL_MODEL_HINTS[what], eval_parser, PARAMETERS) in err[0] and captured.out == ""
    assert "_" not in in_flags(EVAL_MODEL_HINTS[what], eval_parser, PARAMETERS).split("(")[0]  # every setting named by its flag
    assert not out.exists()  # nothing judged, nothing written


def test_torch_fidelity_is_installed_for_the_default_fid() -> None:
    """The default --fid-features (inception) needs torch-fidelity: a dependency, so only its weights can be missing."""
    from dataigm.evaluation.fidelity import create_feature_network

    assert create_feature_network("inception") == 2048
