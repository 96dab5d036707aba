"""Evaluating a detector (a training run folder, an exported folder or a Hub model) on dataset shards.

Plain torch inference (no Lightning): the detector's timm eval transform, batched forward passes, softmax
probabilities, then :mod:`dataigm.train.metrics` overall and per data source (each generator model, real
images), so cross-generator generalisation is visible.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Container, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from dataigm.core.detector_export import CONFIG, normalize_positive_label, read_detector_config, resolve_detector_folder
from dataigm.core.errors import InputError
from dataigm.train.metrics import classification_report, select_threshold
from dataigm.train.types import Detector, Predictions
from dataigm.train.source import DatasetSource, covered_samples, label_mapping

RUN_FILE = "run.json"
LAST_CHECKPOINT = "checkpoints/last.ckpt"


def load_detector(path_or_repo: str | Path, device: str | torch.device = "cpu", checkpoint: str | Path | None = None) -> Detector:
    """Load a detector from a training run folder (``run.json`` + checkpoint), or an exported detector: a folder
    (``config.json`` + ``model.safetensors``) or a Hub model repo (``org/name[@revision]``, ``hf-hub:org/name``),
    resolved and validated exactly as the ``dataigm`` judge does (:mod:`dataigm.core.detector_export`)."""
    import timm
    from timm.data import resolve_data_config

    text = str(path_or_repo)
    folder = Path(text).expanduser()
    if (folder / RUN_FILE).is_file():
        info = json.loads((folder / RUN_FILE).read_text())
        model = _model_from_run(folder, info, checkpoint)
        section = {**info, "positive_label": normalize_positive_label(info.get("positive_label"))}
        data_config = info["data_config"]
    else:
        if folder.is_dir() and not (folder / CONFIG).is_file():
            raise FileNotFoundError(f"{folder}: neither a training run ({RUN_FILE}) nor an exported detector ({CONFIG})")
        folder, _ = resolve_detector_folder(text)
        info = read_detector_config(folder)  # refuses a folder without model.safetensors: timm never falls back to a pickle
        model = timm.create_model(f"local-dir:{folder}", pretrained=True)
        section = info["dataigm"]
        data_config = {k: list(v) if isinstance(v, tuple) else v for k, v in resolve_data_config({}, model=model).items()}
    label_names = list(info.get("label_names") or [])
    if len(label_names) != model.num_classes:
        raise InputError(f"{text}: {len(label_names)} label_names {label_names} for a model with {model.num_classes} classes")
    return Detector(
        model=model.to(device).eval(),
        label_names=label_names,
        data_config=data_config,
        category=section.get("category", ""),
        concept=section.get("concept", ""),
        threshold=section.get("threshold"),
        threshold_rule=section.get("threshold_rule", ""),
        positive_label=section.get("positive_label"),
        other_class=section.get("other_class"),
        source=text,
        info=info,
    )


def _model_from_run(folder: Path, info: dict[str, Any], checkpoint: str | Path | None) -> nn.Module:
    from dataigm.train.models import attach_head_norm, create_detector_model, fold_head_norm

    ckpt = Path(checkpoint) if checkpoint else folder / LAST_CHECKPOINT
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: checkpoint not found (has the run in {folder} finished an epoch?)")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    model = create_detector_model(info["arch"], len(info["label_names"]), False, **info.get("model_kwargs", {}))
    if info.get("head_norm") == "batchnorm":
        # trained with a norm before the head: folded into the linear layer, a plain timm model again
        attach_head_norm(model).load_state_dict(weights)
        return fold_head_norm(model)
    model.load_state_dict(weights)
    return model


def _batches(
    paths: Sequence[Path], mapping: Sequence[int], batch_size: int, keys: Container[str] | None = None
) -> Iterator[tuple[tuple[bytes, ...], tuple[int, ...], tuple[dict[str, Any], ...]]]:
    """``(images, labels, metas)`` of up to ``batch_size`` covered samples at a time (only ``keys`` if given)."""
    rows = (r for r in covered_samples(paths, mapping) if keys is None or r[2].get("key") in keys)
    while batch := list(itertools.islice(rows, batch_size)):
        yield tuple(zip(*batch))  # type: ignore[misc]


@torch.inference_mode()
def predict(
    detector: Detector, paths: Sequence[Path], dataset_label_names: Sequence[str], batch_size: int = 128, progress: bool = False,
    keys: Container[str] | None = None,
) -> Predictions:
    """Run the detector over the samples of ``paths`` it covers (its label mapping drops the others), only the
    samples with these ``keys`` if given (a validation set carved out of train)."""
    from PIL import Image
    from tqdm import tqdm

    from dataigm.train.models import build_transform

    transform = build_transform(detector.data_config, training=False)
    mapping = label_mapping(dataset_label_names, detector.label_names, detector.positive_label, detector.other_class)
    device = next(detector.model.parameters()).device
    probs, labels, metas = [], [], []
    def load(data: bytes) -> torch.Tensor:
        with Image.open(io.BytesIO(data)) as img:
            return transform(img.convert("RGB"))

    for images, y, m in tqdm(_batches(paths, mapping, batch_size, keys), desc="evaluate", unit="batch", disable=not progress):
        x = torch.stack([load(b) for b in images]).to(device)
        probs.append(detector.model(x).float().softmax(-1).cpu().numpy())
        labels += y
        metas += m
    n_classes = len(detector.label_names)
    return Predictions(np.concatenate(probs) if probs else np.zeros((0, n_classes)), np.asarray(labels, dtype=np.int64), metas)


def source_name(meta: dict[str, Any]) -> str:
    """Data source of a sample: ``generated:<model>``, else its own source (``real``, or an imported one like ``LAION``)."""
    if meta.get("source", "generated") != "generated":
        return str(meta["source"])
    return f"generated:{meta.get('model') or 'unknown'}"


def report_predictions(preds: Predictions, detector: Detector, threshold: float | None) -> dict[str, Any]:
    """Metrics overall and per data source."""
    pos = detector.positive_label if detector.binary else 1
    report = classification_report(preds.probs, preds.labels, detector.label_names, threshold if detector.binary else None, pos)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, meta in enumerate(preds.metas):
        groups[source_name(meta)].append(i)
    report["per_source"] = {}
    for name, idx in sorted(groups.items()):
        sub = classification_report(preds.probs[idx], preds.labels[idx], detector.label_names, threshold if detector.binary else None, pos)
        report["per_source"][name] = {k: sub[k] for k in ("n", "accuracy", "balanced_accuracy", "roc_auc", "ece") if k in sub}
    if detector.binary and threshold is not None and len(preds.labels):
        add_judge_audit(report, preds, pos, threshold, groups)
    return report


def add_judge_audit(report: dict[str, Any], preds: Predictions, pos: int, threshold: float, groups: dict[str, list[int]]) -> None:
    """How the detector does as a judge (:func:`dataigm.evaluation.agreement.judge_audit`): sensitivity and specificity
    with Wilson intervals and its threshold sweep, overall (``judge_audit``) and per source / generator."""
    from dataigm.evaluation.agreement import judge_audit

    y, scores = (preds.labels == pos).tolist(), preds.probs[:, pos].tolist()
    report["judge_audit"] = judge_audit(y, scores, threshold, n_resamples=200)
    for name, idx in groups.items():
        sub = judge_audit([y[i] for i in idx], [scores[i] for i in idx], threshold, n_resamples=200)
        report["per_source"][name] |= {k: sub[k] for k in ("sensitivity", "specificity")}


def choose_threshold(preds: Predictions, detector: Detector, rule: str, target_fpr: float = 0.05) -> float | None:
    """The binary threshold on these (validation) predictions; None for multi-class or one-class data."""
    if not detector.binary or len(preds.labels) == 0:
        return None
    positives = preds.labels == detector.positive_label
    if positives.all() or not positives.any():
        return None
    return select_threshold(preds.probs[:, detector.positive_label], positives, rule, target_fpr)


def evaluate_detector(
    detector: Detector,
    source: DatasetSource,
    split: str = "test",
    *,
    category: str | None = None,
    threshold: float | None = None,
    batch_size: int = 128,
    plots_dir: Path | None = None,
    progress: bool = False,
    keys: Container[str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``detector`` on one split of a dataset; ``threshold`` defaults to the detector's own.

    ``keys`` restricts the split to those samples (a validation set carved out of train), reported as ``name``.
    """
    category = category or detector.category
    if not category:
        raise InputError(f"detector {detector.source} records no category: pass one explicitly")
    paths = source.shards(category, split)
    if not paths:
        raise FileNotFoundError(f"{source.root}: no shards for {category}/{split}")
    preds = predict(detector, paths, source.label_names(category), batch_size, progress, keys)
    threshold = detector.threshold if threshold is None else threshold
    report = report_predictions(preds, detector, threshold)
    if keys is not None:
        report["carved_from"] = split
    split = name or split
    report.update(split=split, category=category, detector=detector.source, dataset=source.describe())
    if plots_dir is not None and report["n"]:
        from dataigm.train.plots import save_plots

        report["plots"] = save_plots(preds, detector, report, Path(plots_dir), prefix=split)
    return report


def json_safe(obj: Any) -> Any:
    """NaN/inf become null, so the report is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


__all__ = ["Detector", "Predictions", "load_detector", "predict", "evaluate_detector", "choose_threshold", "report_predictions",
           "json_safe", "source_name"]
