"""``dataigm export-detector``: a training run -> a folder laid out like timm's own Hub models.

``DIR/config.json`` (architecture, num_classes, label_names, pretrained_cfg with mean/std/input size, and a
``dataigm`` section: category, concept, positive_label, threshold, threshold rule, training data) and
``DIR/model.safetensors`` are written by timm's ``save_for_hf``, so ``timm.create_model("local-dir:DIR",
pretrained=True)`` (or ``"hf-hub:org/name"`` once pushed) rebuilds the detector with its classes, and
``transformers.pipeline("image-classification", model=DIR)`` loads it through transformers' TimmWrapper.
``DIR/README.md`` is the model card rendered from ``cards/detector.md.j2``, with a ``model-index`` of the
measured metrics. The folder is assembled beside its destination and renamed into place.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataigm import __version__
from dataigm.core.atomic import make_tmp_dir, publish_dir, write_bytes_atomic, write_json_atomic
from dataigm.core.detector_export import DetectorExport
from dataigm.core.errors import InputError
from dataigm.resources import resource_dir

if TYPE_CHECKING:
    from dataigm.train.types import Detector

CARD_TEMPLATE = "detector.md.j2"  # in the shipped cards/ folder


def export_detector(
    run_dir: str | Path,
    out: str | Path,
    *,
    checkpoint: str | Path | None = None,
    repo_id: str = "",
    card_template: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Export the run in ``run_dir`` (its last checkpoint unless ``checkpoint``) to the folder ``out``."""
    from dataigm.train.evaluate import RUN_FILE, load_detector

    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / RUN_FILE).is_file():  # else load_detector would take it for an export or a Hub id
        raise FileNotFoundError(f"{run_dir / RUN_FILE} not found: export-detector takes a training run folder (the output folder of dataigm train)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(f"{out} exists and is not empty (pass overwrite=True to replace it)")
    detector = load_detector(run_dir, checkpoint=checkpoint)
    info = detector.info
    if detector.binary and detector.threshold is None:
        raise InputError(f"{run_dir}/run.json has no threshold: the run did not finish (evaluate step); rerun it with resume=True")
    reports = {split: json.loads(p.read_text()) for split in ("val", "test") if (p := run_dir / "eval" / f"{split}.json").exists()}
    section = DetectorExport(
        name=info["name"],
        category=info["category"],
        concept=info.get("concept", ""),
        positive_label=info["positive_label"],
        other_class=info.get("other_class"),
        threshold=detector.threshold,
        threshold_rule=detector.threshold_rule,
        target_fpr=info.get("target_fpr"),
        training_data=info["data"],
        dataset_label_names=info["dataset_label_names"],
        recipe=info["recipe"],
        metrics={split: _headline(r) for split, r in reports.items()},
        versions={**info.get("versions", {}), "dataigm": __version__},
    ).model_dump(mode="json")

    tmp = make_tmp_dir(out)
    try:
        _write_export(tmp, detector, section, reports, run_dir, repo_id=repo_id, card_template=card_template)
        publish_dir(tmp, out, existing="replace")  # an existing out was allowed above (empty, or overwrite=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written export left beside the destination
        raise
    return out


def _write_export(
    folder: Path, detector: Detector, section: dict[str, Any], reports: dict[str, dict[str, Any]], run_dir: Path, *,
    repo_id: str, card_template: str | Path | None,
) -> None:
    """Weights and config (timm's ``save_for_hf``), the model card, and the run's evaluation files into ``folder``."""
    from timm.models import save_for_hf

    data_config = {k: tuple(v) if isinstance(v, list) else v for k, v in detector.data_config.items()}
    save_for_hf(detector.model, str(folder), model_config={"label_names": detector.label_names, "dataigm": section},
                model_args=detector.info.get("model_kwargs") or None, safe_serialization=True, data_config=data_config)
    _make_transformers_compatible(folder / "config.json")
    if "test" in reports and detector.binary and detector.positive_label >= 0:
        reports["test"]["literature_agreement"] = _literature(folder, section, detector.label_names[detector.positive_label])
    card = render_card(json.loads((folder / "config.json").read_text()), reports, repo_id=repo_id, template=card_template)
    write_bytes_atomic(folder / "README.md", card.encode())
    for plot in sorted((run_dir / "eval").glob("*.png")):
        (folder / "eval").mkdir(exist_ok=True)
        shutil.copy2(plot, folder / "eval" / plot.name)
    for split, report in reports.items():
        write_json_atomic(folder / "eval" / f"{split}.json", report)


def _literature(folder: Path, section: dict[str, Any], positive: str) -> list[dict[str, Any]]:
    """Agreement with the literature's judges of the category on the test split, when the training data is a
    local folder (:func:`dataigm.evaluation.literature.literature_agreement`)."""
    from dataigm.evaluation.literature import literature_agreement

    data = section["training_data"].get("path")
    if not data or not Path(data).is_dir():
        return []
    return literature_agreement(folder, Path(data), section["category"], section["concept"], positive)


def _make_transformers_compatible(config_path: Path) -> None:
    """timm also records ``num_classes`` in ``model_args``; transformers' TimmWrapper passes ``num_classes``
    itself and fails on the duplicate, while timm reads it from the top level. Drop the duplicate."""
    config = json.loads(config_path.read_text())
    config.get("model_args", {}).pop("num_classes", None)
    if not config.get("model_args"):
        config.pop("model_args", None)
    write_json_atomic(config_path, config)


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "balanced_accuracy", "roc_auc", "ece", "chance_balanced_accuracy")
    return {k: report[k] for k in keys if k in report}


def render_card(config: dict[str, Any], reports: dict[str, dict[str, Any]], *, repo_id: str = "", template: str | Path | None = None) -> str:
    """The model card (README.md) from the Jinja2 template, with a ``model-index`` of the measured metrics."""
    import jinja2

    path = Path(template) if template else resource_dir("cards") / CARD_TEMPLATE
    if not path.is_file():
        raise FileNotFoundError(f"model card template {path} not found")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    section = config["dataigm"]
    data = section["training_data"]
    dataset_id = data.get("repo") or ""
    model_index = _model_index(repo_id or section["name"], section, reports, dataset_id)
    return env.from_string(path.read_text()).render(
        config=config, d=section, reports=reports, repo_id=repo_id, dataset_id=dataset_id,
        model_index_yaml=_yaml(model_index), binary=len(config["label_names"]) == 2,
        fmt=_fmt, ci=lambda e: "n/a" if not e or e.get("value") is None else f"{_fmt(e['value'])} [{_fmt(e['low'])}, {_fmt(e['high'])}]",
    )


def _fmt(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _model_index(name: str, section: dict[str, Any], reports: dict[str, dict[str, Any]], dataset_id: str) -> list[dict[str, Any]]:
    results = []
    for split, report in reports.items():
        metrics = [{"type": "accuracy", "value": report["accuracy"], "name": "accuracy"},
                   {"type": "balanced_accuracy", "value": report["balanced_accuracy"], "name": "balanced accuracy"},
                   {"type": "ece", "value": report["ece"], "name": "expected calibration error"}]
        if report.get("roc_auc") is not None:
            metrics.append({"type": "roc_auc", "value": report["roc_auc"], "name": "ROC-AUC"})
        results.append({
            "task": {"type": "image-classification", "name": "Image Classification"},
            "dataset": {"type": dataset_id or "dataigm", "name": f"DataIGM {section['category']} ({split})", "split": split},
            "metrics": [m for m in metrics if m["value"] is not None],
        })
    return [{"name": name, "results": results}]


def _yaml(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True).rstrip()
