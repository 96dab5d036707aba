"""Frozen-mode training as a linear probe, with real ImageNet EfficientNet-Lite0 weights: it matches a
logistic-regression probe on the same features, cached-feature training gives the streaming head, a 20-image
dataset without a val split carves one and learns; head initialisation, head norm, last_n normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dataigm.train.recipe import load_detector_recipe
from dataigm.train.run import train_detector

DETECTORS = Path(__file__).resolve().parents[1] / "detectors"
CLASSES = ["church", "parachute", "other"]
PATTERNS = ["triangle", "disc", "square"]


def _overrides(weights: Path, *extra: str) -> list[str]:
    return ["model.arch=efficientnet_lite0", f"model.pretrained={weights}", "model.img_size=64", "trainer.precision=32-true",
            "trainer.accelerator=cpu", "trainer.num_workers=0", *extra]


def _head(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("model.classifier")}


@pytest.fixture(scope="module")
def church_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Church (triangles) vs two other drawn classes: 12 train and 10 test images per class, no val split."""
    from dataigm.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("church-task")
    write_synthetic_dataset(root, "church", CLASSES, {"train": 12, "test": 10}, shard_size=50, patterns=PATTERNS)
    return root


def _probe_accuracy(weights: Path, data: Path) -> float:
    import timm
    from sklearn.linear_model import LogisticRegression

    from dataigm.core.shards import list_shards
    from dataigm.train.data import ImageBytesDataset, load_split
    from dataigm.train.models import build_transform, data_config_for

    backbone = timm.create_model(f"local-dir:{weights}", pretrained=True, num_classes=0).eval()
    transform = build_transform(data_config_for(backbone, 64), training=False)

    def features(split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels, _ = load_split(list_shards(data, "church", split), [1, 0, 0])
        with torch.inference_mode():
            x = torch.cat([backbone(b) for b, _ in torch.utils.data.DataLoader(ImageBytesDataset(images, labels, transform), batch_size=64)])
        return x.numpy(), np.asarray(labels)

    (xtr, ytr), (xte, yte) = features("train"), features("test")
    return float((LogisticRegression(max_iter=5000).fit(xtr, ytr).predict(xte) == yte).mean())


def test_frozen_training_matches_a_logistic_regression_probe(efficientnet_lite0_dir: Path, church_task: Path, tmp_path: Path) -> None:
    """The shipped church recipe in its own frozen mode; before the head re-initialisation this scored ~0.4."""
    recipe = load_detector_recipe(DETECTORS / "church_binary.yaml", _overrides(efficientnet_lite0_dir))
    result = train_detector(recipe, tmp_path / "run", data=church_task, progress=False)
    probe = _probe_accuracy(efficientnet_lite0_dir, church_task)
    test = result.reports["test"]
    assert test["n"] == 30 and probe >= 0.9
    assert test["accuracy"] >= probe - 0.02, (test["accuracy"], probe)
    assert test["roc_auc"] > 0.95
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["training"] == "cached_features" and info["threshold_rule"] == "calibrated_0.5_small_val"
    assert info["threshold"] == 0.5 and info["threshold_selection"] == {
        "n_images": 7, "per_class": {"not_church": 5, "church": 2}, "min_val_per_class": 50, "rule": "calibrated_0.5_small_val",
        "threshold": 0.5}
    carve = info["val_carve"]  # no val split: 20% of each class of train (church 12 -> 2, not-church 24 -> 5)
    assert len(carve["val_keys"]) == 7 and len(carve["train_keys"]) == 29
    assert not set(carve["val_keys"]) & set(carve["train_keys"])
    assert sum("-church-" in k for k in carve["val_keys"]) == 2
    assert info["train_counts"] == [19, 10]  # not_church, church after the carve
    assert result.reports["val"]["n"] == 7 and result.reports["val"]["carved_from"] == "train"


def test_cached_features_give_the_streaming_head(efficientnet_lite0_dir: Path, church_task: Path, tmp_path: Path) -> None:
    """Augmentation off, one full-train batch per step: both paths see the same batches, so the same head."""
    common = ["trainer.epochs=3", "trainer.min_steps=0", "trainer.batch_size=36", "trainer.shuffle_buffer=0", "augment.enabled=false",
              "data.val_fraction=0", "data.test_split=none", "optim.warmup_epochs=0",
              "optim.name=sgd", "optim.lr=0.01"]  # SGD: Adam would amplify float-order noise in near-zero gradients
    heads = {}
    for cached in ("true", "false"):
        recipe = load_detector_recipe(DETECTORS / "church_binary.yaml", _overrides(efficientnet_lite0_dir, *common, f"trainer.cache_features={cached}"))
        result = train_detector(recipe, tmp_path / cached, data=church_task, progress=False, evaluate=False)
        assert result.global_step == 3
        heads[cached] = _head(tmp_path / cached)
        info = json.loads((tmp_path / cached / "run.json").read_text())
        assert info["training"] == ("cached_features" if cached == "true" else "streaming") and info["val_carve"] is None
    for cached in ("true", "false"):  # the head learned (the loss fell), identically in both paths
        rows = next((tmp_path / cached / "logs").glob("version_*/metrics.csv")).read_text().splitlines()
        column = rows[0].split(",").index("train/loss")
        losses = [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
        assert len(losses) == 3 and losses[-1] < losses[0]
    for name, value in heads["true"].items():
        torch.testing.assert_close(value, heads["false"][name], atol=2e-5, rtol=1e-4)


def test_twenty_images_without_val_split_carve_validation_and_learn(efficientnet_lite0_dir: Path, tmp_path: Path) -> None:
    from dataigm.synthetic import write_synthetic_dataset

    data = tmp_path / "small"
    write_synthetic_dataset(data, "church", ["not_church", "church"], {"train": 10, "test": 15}, patterns=["disc", "triangle"])
    recipe = load_detector_recipe(DETECTORS / "church_binary.yaml", _overrides(efficientnet_lite0_dir, "trainer.min_steps=50"))
    result = train_detector(recipe, tmp_path / "run", data=data, progress=False)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(info["val_carve"]["val_keys"]) == 4 and info["train_counts"] == [8, 8]  # 2 of each class
    assert info["steps_per_epoch"] == 5 and result.global_step == 50  # 16 images, batch 128: 1 step an epoch without min_steps
    assert result.reports["test"]["n"] == 30 and result.reports["test"]["accuracy"] >= 0.8  # chance 0.5
    assert result.reports["val"]["n"] == 4


@pytest.mark.parametrize("how", ["trunc_normal", "zero", "timm"])
def test_head_initialisation(efficientnet_lite0_dir: Path, how: str) -> None:
    """A real photo's logits start near zero unless the architecture's own 2-class initialisation is kept."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from real_weights import skimage_photo

    from dataigm.train.models import build_transform, data_config_for
    from dataigm.train.module import DetectorModule

    torch.manual_seed(0)
    module = DetectorModule("efficientnet_lite0", 2, pretrained=str(efficientnet_lite0_dir), head_init=how).eval()
    head = module.model.get_classifier()
    x = build_transform(data_config_for(module.model, 96), training=False)(skimage_photo("chelsea"))[None]
    logits = module(x).detach()
    assert head.bias.abs().max() == 0 or how == "timm"
    if how == "trunc_normal":
        assert 0.008 < float(head.weight.std()) < 0.012 and logits.abs().max() < 1.5
    elif how == "zero":
        assert head.weight.abs().max() == 0 and logits.abs().max() == 0
    else:
        assert float(head.weight.abs().max()) > 0.5 and logits.abs().max() > 2.0  # timm: uniform in +-1/sqrt(2)


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "test_vit"])
def test_pooled_features_and_classifier_logits_are_timms_forward(arch: str, efficientnet_lite0_dir: Path) -> None:
    """The two halves of the forward that training (cached features) and curation (embeddings) share: real
    EfficientNet-Lite0 weights on real photos, and a tiny ViT (pooling + fc_norm before its head)."""
    import sys

    import timm

    sys.path.insert(0, str(Path(__file__).parent))
    from real_weights import skimage_photo

    from dataigm.train.models import build_transform, classifier_logits, data_config_for, pooled_features

    torch.manual_seed(0)
    real = arch == "efficientnet_lite0"
    model = timm.create_model(f"local-dir:{efficientnet_lite0_dir}" if real else arch, pretrained=real).eval()
    transform = build_transform(data_config_for(model, model.pretrained_cfg["input_size"][-1]), training=False)
    x = torch.stack([transform(skimage_photo(name)) for name in ("chelsea", "coffee", "astronaut")])
    with torch.no_grad():
        features = pooled_features(model, x)
        assert features.shape == (3, model.num_features)
        torch.testing.assert_close(features, model.forward_head(model.forward_features(x), pre_logits=True), rtol=0, atol=0)
        logits = classifier_logits(model, features)
        torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)
        assert not torch.equal(classifier_logits(model, features, drop_rate=0.5, training=True), logits)
    if real:  # real weights see ImageNet's classes: a cat (281-285), and espresso or a cup (967, 968)
        top = logits.argmax(1).tolist()
        assert 281 <= top[0] <= 285 and top[1] in (967, 968)


def test_head_norm_folds_into_a_plain_linear_head() -> None:
    import timm

    from dataigm.train.models import attach_head_norm, fold_head_norm

    torch.manual_seed(0)
    model = attach_head_norm(timm.create_model("test_resnet", num_classes=3)).eval()
    norm = model.get_classifier()[0]
    assert not norm.affine and norm.eps == 1e-6
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        folded = fold_head_norm(model)
        assert isinstance(folded.get_classifier(), torch.nn.Linear)
        torch.testing.assert_close(folded(x), expected, atol=1e-5, rtol=1e-4)


def test_last_n_keeps_the_frozen_stages_normalisation_in_eval_mode() -> None:
    from dataigm.train.module import DetectorModule

    torch.manual_seed(0)
    module = DetectorModule("efficientnet_lite0", 2, mode="last_n", last_n=1).train()
    frozen_bn = [m for n, m in module.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and not next(m.parameters()).requires_grad]
    trained_bn = [m for n, m in module.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and next(m.parameters()).requires_grad]
    assert frozen_bn and trained_bn
    before = [m.running_mean.clone() for m in frozen_bn]
    trained_before = [m.running_mean.clone() for m in trained_bn]
    module.training_step((torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 0, 1])), 0)
    assert all(not m.training for m in frozen_bn) and all(m.training for m in trained_bn)
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, frozen_bn))
    assert any(not torch.equal(a, m.running_mean) for a, m in zip(trained_before, trained_bn))


def test_logistic_probe_chooses_its_l2_on_validation(efficientnet_lite0_dir: Path, church_task: Path, tmp_path: Path) -> None:
    """``optim.name: logistic``: CLIP's L-BFGS probe, L2 strength from the carved validation set."""
    recipe = load_detector_recipe(DETECTORS / "church_binary.yaml", _overrides(efficientnet_lite0_dir, "optim.name=logistic"))
    result = train_detector(recipe, tmp_path / "run", data=church_task, progress=False)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    probe = info["logistic_probe"]
    assert len(probe["sweep"]) == 13 and probe["rule"] == "best_val_balanced_accuracy"
    best = max(s["val_balanced_accuracy"] for s in probe["sweep"])
    assert probe["l2"] in [s["l2"] for s in probe["sweep"] if s["val_balanced_accuracy"] == best]
    assert result.reports["test"]["accuracy"] >= 0.9 and result.reports["val"]["n"] == 7
    assert probe["refit"] == {"on": "train+val", "n_samples": 36}  # then refitted on train + the 7 carved images
    assert info["threshold_rule"] == "calibrated_0.5_val_refit" and info["threshold"] == 0.5


def test_threshold_rule_follows_the_validation_size() -> None:
    """Below ``threshold.min_val_per_class`` images in a class the calibrated 0.5 stays; above it the recipe's rule
    chooses; a head refitted on the validation images keeps 0.5 whatever their number."""
    from types import SimpleNamespace

    from dataigm.train.run import threshold_on_validation

    recipe = load_detector_recipe(DETECTORS / "church_binary.yaml", ["threshold.min_val_per_class=5"])
    detector = SimpleNamespace(binary=True, positive_label=1, label_names=["not_church", "church"])
    rng = np.random.default_rng(0)

    def preds(n: int) -> SimpleNamespace:
        labels = np.repeat([0, 1], n)
        p = np.clip(np.where(labels == 1, 0.8, 0.75) + rng.normal(0, 0.02, 2 * n), 0, 1)  # separable at ~0.775, not at 0.5
        return SimpleNamespace(labels=labels, probs=np.stack([1 - p, p], 1))

    small = threshold_on_validation(preds(4), detector, recipe, refit=False)
    assert small == (0.5, "calibrated_0.5_small_val", {"n_images": 8, "per_class": {"not_church": 4, "church": 4}, "min_val_per_class": 5})
    threshold, rule, selection = threshold_on_validation(preds(40), detector, recipe, refit=False)
    assert rule == "max_balanced_accuracy" and 0.76 < threshold < 0.79 and selection["n_images"] == 80
    assert threshold_on_validation(preds(40), detector, recipe, refit=True)[:2] == (0.5, "calibrated_0.5_val_refit")
    assert load_detector_recipe(DETECTORS / "church_binary.yaml").threshold.min_val_per_class == 50


def test_logistic_regression_head_matches_scikit_learn() -> None:
    """Same objective as scikit-learn's multinomial ``LogisticRegression(C)``: mean loss + l2/2 |W|^2, l2 = 1 / (C n)."""
    from sklearn.linear_model import LogisticRegression

    from dataigm.train.features import logistic_regression_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = np.digitize(x[:, 0] + 0.5 * rng.normal(size=60), [-0.5, 0.5]).astype(np.int64)  # 3 classes
    weight, bias = logistic_regression_head(torch.from_numpy(x), torch.from_numpy(y), 3, l2=1.0 / 60)
    ours = (torch.from_numpy(x) @ weight.T + bias).softmax(1).numpy()
    theirs = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_head_norm_run_loads_and_exports_as_a_plain_timm_model(efficientnet_lite0_dir: Path, church_task: Path, tmp_path: Path) -> None:
    from dataigm.train.evaluate import load_detector
    from dataigm.train.export import export_detector

    recipe = load_detector_recipe(DETECTORS / "church_binary.yaml", _overrides(efficientnet_lite0_dir, "model.head_norm=batchnorm"))
    result = train_detector(recipe, tmp_path / "run", data=church_task, progress=False)
    assert result.reports["test"]["accuracy"] >= 0.9
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert float(state["model.classifier.0.running_var"].mean()) != 1.0  # the norm learned the feature statistics
    detector = load_detector(tmp_path / "run")
    assert isinstance(detector.model.get_classifier(), torch.nn.Linear)
    exported = load_detector(export_detector(tmp_path / "run", tmp_path / "export"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(exported.model(x), detector.model(x))


@pytest.mark.parametrize("precision", ["bf16-true", "bf16-mixed"])
def test_cached_features_train_under_half_precision(precision: str, efficientnet_lite0_dir: Path, church_task: Path, tmp_path: Path) -> None:
    """Extraction runs under the trainer's precision (bf16 weights take bf16 images); the cache stays float32."""
    common = ["trainer.epochs=2", "trainer.min_steps=0", "trainer.batch_size=36", "augment.enabled=false", "data.val_fraction=0",
              "data.test_split=none", "optim.warmup_epochs=0", "optim.name=sgd", "optim.lr=0.01", "trainer.cache_features=true"]
    overrides = [o for o in _overrides(efficientnet_lite0_dir, *common) if not o.startswith("trainer.precision")]
    recipe = load_detector_recipe(DETECTORS / "church_binary.yaml", [*overrides, f"trainer.precision={precision}"])
    result = train_detector(recipe, tmp_path / "run", data=church_task, progress=False, evaluate=False)
    assert result.global_step == 2
    head = _head(tmp_path / "run")
    assert all(torch.isfinite(v.float()).all() for v in head.values())
    assert {v.dtype for v in head.values()} == ({torch.bfloat16} if precision == "bf16-true" else {torch.float32})


def test_logistic_probe_with_16_mixed_is_refused_up_front(efficientnet_lite0_dir: Path) -> None:
    from dataigm.recipe import RecipeError

    with pytest.raises(RecipeError, match="trainer.precision '16-mixed' with optim.name 'logistic'.*use 32-true or bf16-mixed"):
        load_detector_recipe(DETECTORS / "church_binary.yaml", [*_overrides(efficientnet_lite0_dir, "optim.name=logistic"),
                                                                 "trainer.precision=16-mixed"])
    with pytest.raises(RecipeError, match="trainer.precision"):
        load_detector_recipe(DETECTORS / "church_binary.yaml", [*_overrides(efficientnet_lite0_dir), "trainer.precision=fp16"])
