"""Fail fast: resolve every model an evaluation needs (judge, person detector, LPIPS net, FID feature net, CLIP)
before the first image is judged or generated. An unavailable one (offline without a local copy, a wrong path)
fails in one line that names the flag supplying its weights or switching the metric off.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

from dataigm.core.errors import DataigmError

T = TypeVar("T")

# The setting that supplies each model the evaluation loads, for offline machines.
EVAL_MODEL_HINTS = {
    "judge": "give judge= a local copy (local-dir:PATH, imagenet:<class>@local-dir:PATH, igmu:<task>@DIR)",
    "person": "give person_detector= a detector whose weights are installed (nudenet-body ships in the nudenet wheel)",
    "lpips": "give lpips_net= a network whose torchvision weights are in the torch hub cache ($TORCH_HOME), or lpips_net=none",
    "fid": "give fid_weights=FILE (a local copy of the Inception weights), fid_feature=local-dir:PATH (a timm folder), or fid_feature=none",
    "clip": "give clip_model=PATH (a local CLIP folder with its processor)",
    "clip_score": "give clip_model=PATH (a local CLIP folder with its processor)",
    "cmmd": "give cmmd=PATH (a local CLIP folder with its processor)",
}


class ModelUnavailable(DataigmError):
    """A model the evaluation needs cannot be loaded; the message names the flag that fixes it."""


def load_model(what: str, name: str, fn: Callable[[], T]) -> T:
    """``fn()``, or :class:`ModelUnavailable` in one line naming ``what``'s flag (:data:`EVAL_MODEL_HINTS`)."""
    # torch.hub announces a download on stdout: keep it (on stderr, stdout may carry --json) only when the load
    # succeeds, so a failure stays one line
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        try:
            value = fn()
        except (OSError, ValueError, RuntimeError, ImportError, DataigmError) as e:
            msg = " ".join(str(e.args[0] if e.args else e).split())[:300]
            raise ModelUnavailable(f"{what} {name!r} cannot be loaded: {type(e).__name__}: {msg}; {EVAL_MODEL_HINTS[what]}") from None
    sys.stderr.write(said.getvalue())
    return value


def missing_local_path(name: str) -> None:
    """Raise FileNotFoundError at once for a model given as a path (``/``, ``.``, ``~`` or ``local-dir:``) that does
    not exist, instead of after the loader's own slower lookups."""
    path = name.removeprefix("local-dir:")
    if (name.startswith("local-dir:") or path.startswith(("/", ".", "~"))) and not Path(path).expanduser().exists():
        raise FileNotFoundError(f"{path} does not exist")


def load_clip(what: str, model: str, device: str = "cpu") -> Any:
    """A :class:`~dataigm.evaluation.csdr.ClipScorer` of ``model`` through :func:`load_model` (``what``: clip, clip_score, cmmd)."""
    from dataigm.evaluation.csdr import ClipScorer

    def build() -> Any:
        missing_local_path(model)
        return ClipScorer(model, device)

    return load_model(what, model, build)


def fid_network(feature: str, weights: str | None) -> Any:
    """The FID feature network as :func:`dataigm.evaluation.fidelity.fid_kid` builds it (Inception weights included)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    from dataigm.evaluation.fidelity import create_feature_network

    net = create_feature_network(feature)
    extra = {"feature_extractor_weights_path": weights} if (weights and net == 2048) else {}
    return FrechetInceptionDistance(feature=net, normalize=False, **extra)


def check_eval_models(cfg: Any, *, clip: bool = True, person: str | None = None) -> None:
    """Load, once, the fidelity models of ``cfg`` (an :class:`~dataigm.evaluation.evaluate.EvalConfig`): LPIPS net, FID
    feature net, the person detector ``person`` and (``clip``) the CLIP models; the first unavailable one fails."""
    from dataigm.evaluation.clip_metrics import CLIP_SCORE_DEFAULT_MODEL

    cfg.check()
    if cfg.lpips_net:
        from dataigm.evaluation.fidelity import create_lpips

        load_model("lpips", cfg.lpips_net, lambda: create_lpips(cfg.lpips_net, "cpu"))
    if cfg.fid_feature:
        load_model("fid", cfg.fid_feature, lambda: (missing_local_path(cfg.fid_feature), fid_network(cfg.fid_feature, cfg.fid_weights)))
    if person:
        from dataigm.judges.person import create_person_detector

        load_model("person", person, lambda: create_person_detector(person))
    if not clip:
        return
    for what, model in (("clip", cfg.clip), ("clip_score", (cfg.clip_score_model or CLIP_SCORE_DEFAULT_MODEL[cfg.clip_score]) if cfg.clip_score else None),
                        ("cmmd", getattr(cfg, "cmmd", None))):
        if model:
            load_clip(what, model)
