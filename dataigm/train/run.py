"""``dataigm train``: a detector recipe -> a run folder (checkpoints, logs, threshold, evaluation).

Run folder layout::

    RUN/run.json                 recipe, data source, classes, data config, epoch plan, a carved validation set's
                                 keys; threshold after training
    RUN/checkpoints/last.ckpt    written every epoch (resume with ``--resume``), plus the best on validation
    RUN/logs/version_N/          Lightning CSV logs, one version per (resumed) attempt
    RUN/eval/{val,test}.json     final evaluation (rank 0), with PNG plots beside them

Multi-GPU and multi-node go through Lightning's DDP (``--devices``, ``--num-nodes``; Slurm is detected by
Lightning from its environment). Every rank runs the same number of steps per epoch (see
:mod:`dataigm.train.data`). A frozen backbone solves its head on cached features by L-BFGS (one step, the L2
strength chosen on validation or by cross-validation; :mod:`dataigm.train.features`); ``last_n`` and ``finetune``
stream images and take gradient steps.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataigm.core.errors import InputError
from dataigm.core.atomic import write_json_atomic
from dataigm.core.manifest import package_versions
from dataigm.train.evaluate import LAST_CHECKPOINT, RUN_FILE
from dataigm.train.recipe import DetectorRecipe
from dataigm.train.source import DatasetSource, detector_label_names, label_mapping, mapped_counts, resolve_dataset

log = logging.getLogger(__name__)


def _one_log_handler() -> None:
    """Lightning (and torchmetrics) add their own stderr handler and also propagate to the root logger's: with a
    root handler in place (the CLI's), theirs is dropped so each message is printed once."""
    if logging.getLogger().handlers:
        for name in ("lightning", "torchmetrics"):
            logging.getLogger(name).handlers.clear()


@dataclass
class TrainResult:
    """What a finished run left behind (reports only on rank 0)."""

    run_dir: Path
    global_step: int
    epochs: int
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    threshold: float | None = None


def class_weights(counts: list[int]) -> list[float]:
    """Inverse-frequency loss weights ``total / (K * n_c)`` over present classes (absent classes get 0)."""
    present = [c for c in counts if c > 0]
    total = sum(present)
    return [total / (len(present) * c) if c else 0.0 for c in counts]


def resolve_run(recipe: DetectorRecipe, data: str | Path | None = None) -> tuple[DatasetSource, dict[str, Any]]:
    """The dataset source and the detector's classes for a recipe (validated before any training)."""
    spec = recipe.data
    source = resolve_dataset(data or spec.path, spec.category, spec.revision)
    dataset_names = source.label_names(spec.category)
    names, positive = detector_label_names(dataset_names, positive=spec.positive, classes=spec.classes, other_class=spec.other_class)
    mapping = label_mapping(dataset_names, names, positive, spec.other_class)
    counts = mapped_counts(source.label_counts(spec.category, spec.train_split), dataset_names, mapping, len(names))
    if not source.shards(spec.category, spec.train_split):
        raise FileNotFoundError(f"{source.root}: no shards for {spec.category}/{spec.train_split}")
    if sum(counts) == 0:
        raise InputError(f"{source.root}: split {spec.category}/{spec.train_split} has no samples of the classes {names}")
    classes = {"label_names": names, "dataset_label_names": dataset_names, "positive_label": positive, "label_map": mapping, "train_counts": counts}
    return source, classes


def carve_run_validation(recipe: DetectorRecipe, source: DatasetSource, classes: dict[str, Any],
                         min_per_class: int = 0) -> dict[str, Any] | None:
    """Without a val split, a stratified ``data.val_fraction`` of train becomes validation; updates the train counts.

    Returns what run.json records (fraction, split, the keys on each side), or None when nothing is carved: no
    fraction, or a carve with fewer than ``min_per_class`` images of a trained class (the L-BFGS head then chooses its
    L2 strength by cross-validation on the whole train split instead of withholding a handful of images).
    """
    from dataigm.train.data import carve_validation
    from dataigm.train.source import covered_samples

    spec = recipe.data
    if source.shards(spec.category, spec.val_split) or spec.val_fraction <= 0:
        return None
    rows = [(meta["key"], label) for _, label, meta in covered_samples(source.shards(spec.category, spec.train_split), classes["label_map"])]
    keys, labels = [k for k, _ in rows], [y for _, y in rows]
    val_keys = carve_validation(keys, labels, spec.val_fraction, recipe.trainer.seed)
    if not val_keys:
        return None
    chosen = set(val_keys)
    counts = [0] * len(classes["label_names"])
    carved = [0] * len(classes["label_names"])
    for key, label in zip(keys, labels):
        if key not in chosen:
            counts[label] += 1
        else:
            carved[label] += 1
    if min(c for c, total in zip(carved, classes["train_counts"]) if total) < min_per_class:
        log.info("no val split: the L2 strength is chosen by cross-validation on train (a %.0f%% carve would hold %s images per "
                 "class, fewer than %d)", 100 * spec.val_fraction, carved, min_per_class)
        return None
    classes["train_counts"] = counts
    return {"from_split": spec.train_split, "fraction": spec.val_fraction, "val_keys": val_keys,
            "train_keys": sorted(k for k in keys if k not in chosen)}


def train_detector(
    recipe: DetectorRecipe,
    out: str | Path,
    *,
    data: str | Path | None = None,
    resume: str | Path | bool | None = None,
    progress: bool = True,
    evaluate: bool = True,
) -> TrainResult:
    """Train the detector of ``recipe`` into the run folder ``out``; rank 0 then picks the threshold and evaluates."""
    import lightning as L

    from dataigm.train.models import data_config_for

    _one_log_handler()
    # 1. Check inputs and resolve the data
    out = Path(out)
    ckpt_path = _resume_checkpoint(out, resume)
    source, classes = resolve_run(recipe, data)
    tr = recipe.trainer
    solver = recipe.head_solver()  # lbfgs: the frozen head solved on cached features; sgd: gradient steps
    carve = carve_run_validation(recipe, source, classes, recipe.threshold.min_val_per_class if solver == "lbfgs" else 0)
    L.seed_everything(tr.seed, workers=True, verbose=False)

    # 2. Model (timm inside) and data (shards + timm transforms, or the frozen backbone's cached features)
    m = recipe.model
    cached = m.mode == "frozen" and tr.cache_features
    module = build_module(recipe, classes, cached, solver)
    data_config = data_config_for(module.model, m.img_size)
    datamodule = build_datamodule(recipe, source, classes, data_config, carve, cached, progress)

    # 3. Trainer: DDP when more than one device or node; a checkpoint every epoch (the L-BFGS solve: one step)
    trainer = build_trainer(recipe, out, datamodule, progress, solver)
    run_info = _run_info(recipe, source, classes, data_config, datamodule, trainer.world_size)
    run_info.update(training="cached_features" if cached else "streaming", head_norm=m.head_norm, val_carve=carve, solver=solver)
    if solver == "lbfgs":
        run_info["steps_per_epoch"] = 1
    if trainer.is_global_zero:
        write_json_atomic(out / RUN_FILE, run_info)

    # 4. Fit (resuming restores weights, optimizer, schedule and the step count)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    result = TrainResult(out, int(trainer.global_step), int(trainer.current_epoch))
    if module.head_fit and trainer.is_global_zero:
        run_info["head_fit"] = module.head_fit  # the chosen L2 strength, the rule that chose it, and the sweep
        write_json_atomic(out / RUN_FILE, run_info)
    if not trainer.is_global_zero or not evaluate:
        return result

    # 5. Rank 0: threshold on validation data, then the held-out evaluation
    result.reports, result.threshold = finalize_run(out, recipe, source)
    return result


def threshold_on_validation(preds: Any, detector: Any, recipe: DetectorRecipe) -> tuple[float | None, str, dict[str, Any]]:
    """The binary threshold, the rule that chose it and what it was chosen on (``run.json``'s ``threshold_selection``).

    The calibrated 0.5 is kept when either class has fewer than ``threshold.min_val_per_class`` validation images;
    otherwise ``threshold.rule``.
    """
    from dataigm.train.evaluate import choose_threshold

    counts = {name: int((preds.labels == i).sum()) for i, name in enumerate(detector.label_names)}
    selection = {"n_images": int(len(preds.labels)), "per_class": counts, "min_val_per_class": recipe.threshold.min_val_per_class}
    if not detector.binary:
        return None, "", selection
    if min(counts.values()) < recipe.threshold.min_val_per_class:
        return 0.5, "calibrated_0.5_small_val", selection
    threshold = choose_threshold(preds, detector, recipe.threshold.rule, recipe.threshold.target_fpr)
    return threshold, recipe.threshold.rule if threshold is not None else "", selection


def build_module(recipe: DetectorRecipe, classes: dict[str, Any], cached: bool, solver: str) -> Any:
    """The LightningModule around the timm model the recipe describes (``solver``: :meth:`DetectorRecipe.head_solver`)."""
    from dataigm.train.module import DetectorModule

    m, o = recipe.model, recipe.optim
    return DetectorModule(
        arch=m.arch, num_classes=len(classes["label_names"]), pretrained=m.pretrained, mode=m.mode, last_n=m.last_n,
        drop_rate=m.drop_rate, model_kwargs=m.kwargs, optimizer=o.name, lr=o.lr, weight_decay=o.weight_decay,
        label_smoothing=o.label_smoothing, scheduler=o.scheduler, warmup_epochs=o.warmup_epochs,
        class_weights=class_weights(classes["train_counts"]) if recipe.balance == "loss" else None,
        head_init=m.head_init, head_norm=m.head_norm, cached_features=cached, solver=solver, cv_folds=o.cv_folds,
        min_val_per_class=recipe.threshold.min_val_per_class, seed=recipe.trainer.seed,
    )


def build_datamodule(recipe: DetectorRecipe, source: DatasetSource, classes: dict[str, Any], data_config: dict[str, Any],
                     carve: dict[str, Any] | None, cached: bool, progress: bool) -> Any:
    """Shards + timm transforms, or (frozen backbone, cached features) the features computed once."""
    from dataigm.train.data import ShardDataModule
    from dataigm.train.features import CachedFeatureDataModule

    spec, tr = recipe.data, recipe.trainer
    data_kwargs: dict[str, Any] = {"views": recipe.augment.views, "progress": progress} if cached else {}
    return (CachedFeatureDataModule if cached else ShardDataModule)(
        source.shards(spec.category, spec.train_split), source.shards(spec.category, spec.val_split), classes["label_map"],
        classes["train_counts"], data_config, recipe.augment.model_dump(), batch_size=tr.batch_size, eval_batch_size=tr.eval_batch_size,
        num_workers=tr.num_workers, shuffle_buffer=tr.shuffle_buffer, balance=recipe.balance, steps_per_epoch=tr.steps_per_epoch, seed=tr.seed,
        val_keys=carve["val_keys"] if carve else (), min_steps=tr.min_steps, epochs=tr.epochs, **data_kwargs,
    )


class _NoAdverts(logging.Filter):
    """Drops Lightning's product tips (the litlogger advert): nothing a user of dataigm can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "💡 Tip" not in str(record.msg)


def silence_lightning_adverts() -> None:
    """Install :class:`_NoAdverts` on Lightning's rank-zero logger, once per process, and ignore the deprecation
    Lightning's own code raises against torch's pytree (``LeafSpec``): neither is the user's to fix."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated", category=Warning)
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdverts) for f in log.filters):
        log.addFilter(_NoAdverts())


def build_trainer(recipe: DetectorRecipe, out: Path, datamodule: Any, progress: bool, solver: str = "sgd") -> Any:
    """The Lightning Trainer: DDP when more than one device or node, last.ckpt every epoch and the best on validation;
    settings Lightning refuses become one-line errors."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    tr, ckpt_dir = recipe.trainer, out / "checkpoints"
    multi = tr.num_nodes > 1 or (isinstance(tr.devices, int) and tr.devices > 1) or str(tr.devices) in ("-1", "auto") or "," in str(tr.devices)
    strategy = "ddp" if tr.strategy == "auto" and multi else tr.strategy
    has_val = datamodule.has_val
    # last.ckpt is rewritten after every epoch (resume point); the best one on validation is kept beside it
    checkpoints = [ModelCheckpoint(dirpath=ckpt_dir, filename="last", every_n_epochs=1, save_top_k=1, enable_version_counter=False)]
    if has_val:
        checkpoints.append(ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch:03d}", monitor="val/balanced_accuracy", mode="max", save_top_k=1))
    silence_lightning_adverts()
    try:
        return L.Trainer(
            default_root_dir=out, max_epochs=1 if solver == "lbfgs" else tr.epochs, limit_train_batches=1 if solver == "lbfgs" else 1.0,
            accelerator=tr.accelerator, devices=tr.devices,
            num_nodes=tr.num_nodes, strategy=strategy, precision=tr.precision, callbacks=checkpoints,
            logger=CSVLogger(out, name="logs"),  # logs/version_N per (resumed) attempt
            num_sanity_val_steps=0, limit_val_batches=1.0 if has_val else 0, log_every_n_steps=max(1, min(50, datamodule.epoch_plan(1).batches_per_rank)),
            enable_progress_bar=progress, enable_model_summary=False,
        )
    except (MisconfigurationException, TypeError, ValueError, RuntimeError, ImportError) as e:  # Lightning rejects the settings
        raise InputError(f"trainer settings (accelerator={tr.accelerator!r}, devices={tr.devices!r}, strategy={strategy!r}, "
                         f"precision={tr.precision!r}) refused by Lightning: {' '.join(str(e).split())}") from e


def finalize_run(run_dir: Path, recipe: DetectorRecipe, source: DatasetSource) -> tuple[dict[str, dict[str, Any]], float | None]:
    """Choose the binary threshold on the val split, save it in run.json, evaluate val and test with plots."""
    from dataigm.train.evaluate import evaluate_detector, json_safe, load_detector, predict
    from dataigm.core.devices import pick_device

    spec = recipe.data
    detector = load_detector(run_dir, device=pick_device())
    reports: dict[str, dict[str, Any]] = {}
    threshold, rule = None, ""
    info = json.loads((run_dir / RUN_FILE).read_text())
    carve = info.get("val_carve")  # no val split: the stratified part of train that training never saw
    val_paths = source.shards(spec.category, spec.train_split if carve else spec.val_split)
    val_keys = frozenset(carve["val_keys"]) if carve else None
    selection: dict[str, Any] = {"n_images": 0, "per_class": {}}
    if val_paths:
        preds = predict(detector, val_paths, source.label_names(spec.category), recipe.trainer.eval_batch_size, keys=val_keys)
        threshold, rule, selection = threshold_on_validation(preds, detector, recipe)
    if detector.binary and threshold is None:
        threshold, rule = 0.5, rule or "default"  # no validation data with both classes
    selection.update(rule=rule, threshold=threshold)
    info.update(threshold=threshold, threshold_rule=rule, threshold_selection=selection,
                target_fpr=recipe.threshold.target_fpr if rule == "target_fpr" else None)
    write_json_atomic(run_dir / RUN_FILE, info)
    detector.threshold, detector.threshold_rule = threshold, rule
    for split in (spec.val_split, spec.test_split):
        carved = carve is not None and split == spec.val_split
        if carved or source.shards(spec.category, split):
            report = evaluate_detector(detector, source, spec.train_split if carved else split, batch_size=recipe.trainer.eval_batch_size,
                                       plots_dir=run_dir / "eval", keys=val_keys if carved else None, name=split)
            reports[split] = json_safe(report)
            write_json_atomic(run_dir / "eval" / f"{split}.json", reports[split])
    return reports, threshold


def _resume_checkpoint(run_dir: Path, resume: str | Path | bool | None) -> str | None:
    """The checkpoint to resume from: the run's last one (``True`` / ``"last"``), a given path, or None for a new run."""
    last = run_dir / LAST_CHECKPOINT
    if resume in (None, False, ""):
        if last.exists():
            raise InputError(f"{last.parent} already holds checkpoints: pass resume=True to continue that run, or use another out=DIR")
        return None
    path = last if resume in (True, "last") else Path(str(resume))
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: checkpoint {path} not found")
    return str(path)


def _run_info(recipe: DetectorRecipe, source: DatasetSource, classes: dict[str, Any], data_config: dict[str, Any], datamodule: Any, world_size: int) -> dict[str, Any]:
    plan = datamodule.epoch_plan(world_size)
    return {
        "format": "dataigm-detector-run/1",
        "name": recipe.name,
        "recipe": recipe.model_dump(mode="json"),
        "recipe_sha256": recipe.sha256(),
        "arch": recipe.model.arch,
        "model_kwargs": recipe.model.kwargs,
        "pretrained": recipe.model.pretrained,
        "category": recipe.data.category,
        "concept": recipe.concept or (recipe.data.positive or ""),
        "other_class": recipe.data.other_class,
        "data": source.describe(),
        "data_config": data_config,
        "world_size": world_size,
        "epoch_samples": plan.samples,
        "steps_per_epoch": plan.batches_per_rank,
        "threshold": None,
        "threshold_rule": "",
        "versions": package_versions(("torch", "timm", "lightning", "webdataset", "torchmetrics")),
        **classes,
    }
