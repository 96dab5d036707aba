"""Fail fast: resolve every model an evaluation needs (judge, person detector, LPIPS net, FID feature net, CLIP)
before the first image is judged or generated. An unavailable one (offline without a local copy, a wrong path)
fails in one line that names the flag supplying its weights or switching the metric off.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

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
# What each model feeds in the report (the row left out when an optional model cannot load offline)
EVAL_MODEL_METRICS = {"judge": "this judge's column", "lpips": "LPIPS", "fid": "FID/KID", "clip": "CSDR and csdr_win_rate", "clip_score": "CLIP score", "cmmd": "CMMD",
                      "person": "person presence"}


@dataclass(frozen=True)
class Missing:
    """A model that cannot be loaded: ``what`` it is (a key of :data:`EVAL_MODEL_HINTS`), its ``name`` and why."""

    what: str
    name: str
    reason: str
    offline: bool = False  # offline and not in the local cache: the run leaves its rows out instead of failing

    def line(self) -> str:
        return f"{self.what} {self.name!r} cannot be loaded: {self.reason}; {EVAL_MODEL_HINTS[self.what]}"

    def note(self) -> str:
        """The one note a report carries when the model's row is left out."""
        return f"{EVAL_MODEL_METRICS.get(self.what, self.what)} left out: {self.line()}"


class ModelUnavailable(DataigmError):
    """Models the evaluation needs cannot be loaded; the message lists every one, each with its fix (named by
    parameter; the command line shows its flags, see ``dataigm.cli.in_flags``). ``missing`` holds them."""

    def __init__(self, message: str, missing: Sequence[Missing] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)

    @classmethod
    def of(cls, missing: Sequence[Missing]) -> "ModelUnavailable":
        if len(missing) == 1:
            return cls(missing[0].line(), missing)
        return cls(f"{len(missing)} models cannot be loaded: " + " | ".join(f"({i}) {m.line()}" for i, m in enumerate(missing, 1)), missing)


def try_load(what: str, name: str, fn: Callable[[], T]) -> tuple[T | None, Missing | None]:
    """(``fn()``, None), or (None, :class:`Missing`) when it fails the way an unavailable model fails."""
    try:
        return load_model(what, name, fn), None
    except ModelUnavailable as e:
        from dataclasses import replace

        from dataigm.core.network import offline

        local = name.startswith(("local-dir:", "/", ".", "~")) or Path(name).expanduser().exists()
        return None, replace(e.missing[0], offline=not local and offline())


def load_model(what: str, name: str, fn: Callable[[], T]) -> T:
    """``fn()``, or :class:`ModelUnavailable` in one line naming ``what``'s fix (:data:`EVAL_MODEL_HINTS`)."""
    # torch.hub announces a download on stdout: keep it (on stderr, stdout may carry --json) only when the load
    # succeeds, so a failure stays one line
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        try:
            value = fn()
        except (OSError, ValueError, RuntimeError, ImportError, DataigmError) as e:
            msg = " ".join(str(e.args[0] if e.args else e).split())[:300]
            raise ModelUnavailable.of([Missing(what, name, f"{type(e).__name__}: {msg}")]) from None
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


TORCHVISION_WEIGHTS = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth", "squeeze": "squeezenet1_1-b8a52dc0.pth"}
FID_INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def torch_hub_cached(filename: str) -> bool:
    """Whether ``filename`` is in torch hub's checkpoint cache ($TORCH_HOME/hub/checkpoints)."""
    import torch

    return (Path(torch.hub.get_dir()) / "checkpoints" / filename).is_file()


def offline_gap(what: str, name: str, weights: str | None = None) -> Missing | None:
    """Offline, the :class:`Missing` of a model whose weights are not in the local cache (found without trying a
    download, which would only spend the network's retries); None when it may load."""
    from dataigm.core.network import offline

    if what == "lpips" and name in TORCHVISION_WEIGHTS and not torch_hub_cached(TORCHVISION_WEIGHTS[name]) and offline():
        return Missing(what, name, f"offline, and its weights {TORCHVISION_WEIGHTS[name]} are not in the torch hub cache", True)
    if what == "fid" and name == "inception" and not weights and not torch_hub_cached(FID_INCEPTION_WEIGHTS) and offline():
        return Missing(what, name, f"offline, and {FID_INCEPTION_WEIGHTS} is not in the torch hub cache", True)
    return None


def find_missing_models(settings: Any, *, clip: bool = True, person: str | None = None) -> list[Missing]:
    """Every model of ``settings`` (:class:`~dataigm.evaluation.settings.MetricSettings`, or an
    :class:`~dataigm.evaluation.evaluate.EvalConfig`'s) that cannot be loaded: LPIPS net, FID feature net, the
    person detector ``person`` and (``clip``) the CLIP models, each tried once."""
    from dataigm.evaluation.clip_metrics import CLIP_SCORE_DEFAULT_MODEL

    settings.check()
    cfg = getattr(settings, "metrics", settings)
    missing: list[Missing] = []

    def attempt(what: str, name: str, fn: Callable[[], Any], weights: str | None = None) -> None:
        gap = offline_gap(what, name, weights)
        if gap is None:
            gap = try_load(what, name, fn)[1]
        if gap is not None:
            missing.append(gap)

    if cfg.lpips_net:
        from dataigm.evaluation.fidelity import create_lpips

        attempt("lpips", cfg.lpips_net, lambda: create_lpips(cfg.lpips_net, "cpu"))
    if cfg.fid_feature:
        attempt("fid", cfg.fid_feature, lambda: (missing_local_path(cfg.fid_feature), fid_network(cfg.fid_feature, cfg.fid_weights)), cfg.fid_weights)
    if person:
        from dataigm.judges.person import create_person_detector

        attempt("person", person, lambda: create_person_detector(person))
    if clip:
        for what, model in (("clip", cfg.clip), ("clip_score", (cfg.clip_score_model or CLIP_SCORE_DEFAULT_MODEL[cfg.clip_score]) if cfg.clip_score else None),
                            ("cmmd", getattr(cfg, "cmmd", None))):
            if model:
                attempt(what, model, lambda model=model, what=what: load_clip(what, model))
    return missing


def check_eval_models(cfg: Any, *, clip: bool = True, person: str | None = None) -> None:
    """Load, once, the fidelity models of ``cfg`` (see :func:`find_missing_models`); when any is unavailable, fail
    with one message listing every one of them, each with its fix."""
    missing = find_missing_models(cfg, clip=clip, person=person)
    if missing:
        raise ModelUnavailable.of(missing)
