"""Evaluation plots as PNG files: confusion matrix, ROC curve (binary), reliability diagram."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dataigm.train.metrics import calibration_bins, roc_curve

if TYPE_CHECKING:
    from dataigm.train.types import Detector, Predictions


def save_plots(preds: "Predictions", detector: "Detector", report: dict[str, Any], out_dir: Path, prefix: str = "test") -> dict[str, str]:
    """Write ``<prefix>-confusion.png``, ``<prefix>-roc.png`` (binary) and ``<prefix>-reliability.png``; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}

    cm = np.asarray(report["confusion_matrix"])
    names = detector.label_names
    side = min(2 + 0.35 * len(names), 30)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true", title=f"Confusion matrix (n={report['n']})")
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    if len(names) <= 20:
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    fig.colorbar(im, ax=ax)
    written["confusion_matrix"] = _save(fig, out_dir / f"{prefix}-confusion.png")

    if detector.binary and report.get("roc_auc") is not None and np.isfinite(report["roc_auc"]):
        fpr, tpr, _ = roc_curve(preds.probs[:, detector.positive_label], preds.labels == detector.positive_label)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, label=f"AUC {report['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {names[detector.positive_label]}")
        ax.legend(loc="lower right")
        written["roc"] = _save(fig, out_dir / f"{prefix}-roc.png")

    bins = [b for b in calibration_bins(preds.probs, preds.labels) if b["n"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.bar([b["lower"] for b in bins], [b["accuracy"] for b in bins], width=[b["upper"] - b["lower"] for b in bins], align="edge", edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=f"Reliability (ECE {report['ece']:.3f})")
    ax.legend(loc="upper left")
    written["reliability"] = _save(fig, out_dir / f"{prefix}-reliability.png")
    return written


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    from dataigm.core.atomic import publish, tmp_path_for

    fig.tight_layout()
    tmp = tmp_path_for(path)
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    publish(tmp, path)
    return path.name
