"""The Python face of judging: :func:`list_judges`, :func:`load_judge` and the :class:`Judge` it returns.

    >>> import dataigm
    >>> judge = dataigm.load_judge("nudenet:esd")               # doctest: +SKIP
    >>> verdicts = judge("samples/")                            # or PIL images, uint8 arrays or tensors
    >>> verdicts.positive_rate, verdicts.interval()

Every input form goes through the judging loop ``dataigm judge`` runs (:func:`dataigm.judges.judge.judge`): the
same decoding (:func:`dataigm.core.images.loaded_rgb`), the same preprocessing (the kind's ``preprocess``), the same
batches; so the verdicts do not depend on the form, nor on the batch size.
"""

from __future__ import annotations

import warnings
from dataclasses import fields
from typing import Any

from dataigm.judges.registry import JUDGE_KINDS, JudgeOptions, create_judge, judge_kinds
from dataigm.judges.verdicts import Verdicts

DEFAULT_BATCH_SIZE = 32  # dataigm judge's default
_OPTION_FIELDS = frozenset(f.name for f in fields(JudgeOptions)) - {"settings", "device", "precision", "model"}


def list_judges(kind: str | None = None) -> list[dict[str, Any]]:
    """The judge catalogue ``dataigm list-judges`` prints: per kind, its ``kind``, the spec ``syntax``, what it
    ``decides`` and how, the ``reference`` it reproduces, where its ``weights`` come from, their ``licence``,
    whether it runs ``offline`` here, and the ``options`` :func:`load_judge` takes for it.

        >>> [j["kind"] for j in dataigm.list_judges()][:3]
        ['clip', 'dataigm', 'gcd']
        >>> dataigm.list_judges("opennsfw")[0]["syntax"]
        'opennsfw[:yahoo][@ONNX]'

    ``kind`` picks one kind (an unknown one lists the valid kinds).
    """
    kinds = [JUDGE_KINDS.get(kind)] if kind else judge_kinds()
    return [k.catalogue_entry() for k in kinds]


class Judge:
    """A loaded judge: call it on images to get :class:`~dataigm.judges.verdicts.Verdicts`.

    ``model`` is the kind's judge object (``preprocess``, ``collate``, ``predict``, ``describe``: see
    :class:`dataigm.judges.types.Judge`), for callers that drive batches themselves.
    """

    def __init__(self, spec: str, model: Any) -> None:
        self.spec = spec
        self.model = model

    @property
    def name(self) -> str:
        """The judge's name as reports print it."""
        return self.model.name

    @property
    def label_names(self) -> list[str]:
        """The classes the judge scores."""
        return list(self.model.label_names)

    @property
    def target(self) -> str | None:
        """The class that means "the concept is shown"."""
        return self.model.target

    @property
    def threshold(self) -> float | None:
        """The decision threshold (None: a top-1 rule)."""
        return self.model.threshold

    def describe(self) -> dict[str, Any]:
        """The judge's description: kind, weights and their sha256, precision, preprocessing, threshold, reference."""
        return self.model.describe()

    def __repr__(self) -> str:
        return f"Judge({self.spec!r})"

    def __call__(self, images: Any, *, batch_size: int | None = None, workers: int | None = None, split: str | None = None,
                 category: str | None = None, progress: bool = False) -> Verdicts:
        """Judge ``images``.

        Args:
            images: a folder (every image below it, sorted by path), an image file, a list file, ``.tar`` shards, a
                dataigm dataset folder, or a list of paths (of image files: verdicts in the list's order); or images in
                memory: a PIL image, a numpy ``HxWx3`` (or ``NxHxWx3``) uint8 array, a torch uint8 ``CHW`` (or
                ``NCHW``) tensor, or a list of those (verdicts in input order).
            batch_size: images per forward pass (default 32, as ``dataigm judge``); the verdicts do not depend on it.
            workers: decoding workers (default: none on CPU, a few on GPU).
            split, category: dataset folders only: judge one split and/or category.
            progress: show a progress bar.

        Example:
            >>> v = judge([Image.open("a.png"), np.zeros((64, 64, 3), np.uint8)])   # doctest: +SKIP
            >>> v.ids, v.positive
        """
        from dataigm.judges.images import as_image_input
        from dataigm.judges.judge import judge

        inp = as_image_input(images, split=split, category=category)
        result = judge(inp, self.model, batch_size=batch_size or DEFAULT_BATCH_SIZE, workers=workers, progress=progress)
        if inp.in_order:  # a list of image files: the caller's order
            position = {ref.id: i for i, ref in enumerate(inp.files)}
            result.predictions.sort(key=lambda p: position[p.file])
        return Verdicts.from_result(self.spec, result, self.label_names, repr(self.model.preprocess))


def load_judge(spec: str, *, device: str | None = None, precision: str | None = None, **options: Any) -> Judge:
    """Load a judge from the spec the ``dataigm judge`` command takes: ``KIND[:NAME][@LOCATION]``, or a dataigm
    detector's location (a folder, ``local-dir:PATH``, ``org/name[@revision]``, ``hf-hub:org/name``).

    Args:
        spec: e.g. ``"nudenet"``, ``"nudenet:esd"``, ``"imagenet:church@local-dir:PATH"``, ``"opennsfw"``, ``"igmu:nudity@DIR"``.
            :func:`list_judges` gives every kind's syntax.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` (default: CUDA when available).
        precision: ``"fp32"`` (default: thresholds were chosen in fp32), ``"auto"``, ``"fp16"`` or ``"bf16"``.
        options: the kind's options (``list_judges()[i]["options"]``): ``concept``, ``threshold``, ``classes``
            (NudeNet), ``clip_model`` (CLIP-based kinds); any other keyword is one of the kind's documented settings
            (``input_size="train"`` for ``imagenet``, ``jpeg_reencode=False`` for ``opennsfw``...). ``model=`` is the
            old spelling of ``@LOCATION``: it still works in 0.2 and warns.

    Example:
        >>> judge = dataigm.load_judge("nudenet:esd", threshold=0.5)         # doctest: +SKIP
        >>> judge(["a.png", "b.png"]).positive
        array([False,  True])
    """
    if not isinstance(spec, str):  # a programming error, not bad input
        raise TypeError(f"load_judge: spec must be a string such as 'nudenet:esd', got {type(spec).__name__}")
    model = options.pop("model", None)
    if model is not None:
        warnings.warn(f"load_judge(model=...) is deprecated; put the weights in the spec: '{spec.split('@', 1)[0]}@{model}'",
                      FutureWarning, stacklevel=2)
    given = {k: options.pop(k) for k in list(options) if k in _OPTION_FIELDS}
    settings = {**options.pop("settings", {}), **options}
    if precision is not None:
        given["precision"] = precision
    inner = create_judge(spec, device=device, model=model, settings=settings or None, **given)
    return Judge(spec, inner)
