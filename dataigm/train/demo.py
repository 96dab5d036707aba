"""Demo stage: train the tiny detector on the demo dataset's nudity shards, evaluate, export, print metrics.

The demo images come from the embedded tiny model and are noise-like, so the detector has nothing real to
learn: near-chance metrics are the expected, honest outcome and are printed as such.
"""

from __future__ import annotations

import logging
from typing import Any

from dataigm.resources import resource_dir

DEMO_CATEGORY = "nudity"
DEMO_OVERRIDES = ["name=tiny_nudity", f"data.category={DEMO_CATEGORY}", "data.positive=nude", "concept=nudity",
                  "trainer.epochs=2", "trainer.batch_size=16"]


def stage(ctx: Any) -> None:
    """Train, evaluate and export the tiny detector on ``ctx.artifacts["dataset"]``; sets ``ctx.artifacts["detector"]``."""
    import lightning  # noqa: F401  (importing it sets its loggers to INFO; the demo prints its own summary)

    from dataigm.train.evaluate import LAST_CHECKPOINT
    from dataigm.train.present import metrics_table
    from dataigm.train.export import export_detector
    from dataigm.train.recipe import load_detector_recipe
    from dataigm.train.run import train_detector

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    dataset = ctx.artifacts["dataset"]
    recipe = load_detector_recipe(resource_dir("detectors") / "tiny.yaml", DEMO_OVERRIDES)
    run_dir = ctx.out / "detector-run"
    result = train_detector(recipe, run_dir, data=dataset, resume=True if (run_dir / LAST_CHECKPOINT).exists() else None, progress=False)
    detector = export_detector(run_dir, ctx.out / "detector", overwrite=True)
    for split, report in result.reports.items():
        ctx.console.print(metrics_table(report, f"tiny {DEMO_CATEGORY} detector ({recipe.model.arch}, {result.global_step} steps): {split} split"))
    ctx.console.print(
        "[dim]Trained from scratch on the tiny model's noise-like images: metrics near chance (balanced accuracy ~0.5, "
        "ROC-AUC ~0.5) are expected here. On drawn shapes the same code reaches > 0.8 (tests/test_train.py).[/dim]"
    )
    ctx.console.print(f"exported to {detector}: timm.create_model('local-dir:{detector}', pretrained=True)")
    ctx.artifacts["detector"] = detector
    ctx.artifacts["detector_category"] = DEMO_CATEGORY
