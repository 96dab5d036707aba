"""Benchmark: training images/s of `dataigm train` (Lightning + the shard DataModule) against a plain PyTorch
loop over the same shards, model and batch size, in the same run; and inference images/s of the export.

    python benchmarks/train.py [--images-per-class 400] [--epochs 4] [--batch-size 32] [--repeats 3]

The first epoch of each is a warm-up and not timed. Last line: ratio=<dataigm / plain training throughput>.

Both do the same work: the same timm model (372,979 parameters), decode, transform, batch size and torch threads;
dataigm adds Lightning's per-step machinery (hooks, logging, optimizer closure), a step-wise cosine schedule and a
class-weighted loss. Measured (--images-per-class 100 --epochs 3, load 3.3): 0.912, 0.865, 1.397 wall and 0.921,
0.874, 1.230 in CPU time per repeat (medians 0.912 and 0.921).
"""

from __future__ import annotations

import argparse
import io
import logging
import tempfile
import time
from pathlib import Path

import torch

DETECTORS = Path(__file__).resolve().parents[1] / "detectors"
CLASSES = ["church", "parachute", "other"]


def plain_loop(shards: list[Path], data_config: dict, batch_size: int, epochs: int, lr: float, steps_per_epoch: int) -> tuple[float, float]:
    """Images/s of a hand-written loop: webdataset -> timm transform -> DataLoader -> timm model -> AdamW; per wall
    second and per second of this process's CPU time (which other processes on a shared machine do not inflate)."""
    import timm
    import webdataset as wds
    from PIL import Image

    from dataigm.train.models import build_transform

    transform = build_transform(data_config, training=True, augment={"scale": (0.6, 1.0), "hflip": 0.5})
    dataset = (
        wds.WebDataset([str(s) for s in shards], shardshuffle=False, empty_check=False).repeat()
        .shuffle(200).map(lambda s: (transform(Image.open(io.BytesIO(s["png"])).convert("RGB")), int(s["cls"])))
    )
    loader = iter(torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=0))
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=len(CLASSES)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    timed_images, timed_seconds, timed_cpu = 0, 0.0, 0.0
    for epoch in range(epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps_per_epoch):
            x, y = next(loader)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if epoch > 0:
            timed_seconds += time.perf_counter() - t0
            timed_cpu += time.process_time() - c0
            timed_images += steps_per_epoch * batch_size
    return timed_images / timed_seconds, timed_images / timed_cpu


class EpochTimer:
    """Lightning callback timing every epoch but the first (same rule as the plain loop)."""

    def __new__(cls, batch_size: int):
        import lightning as L

        class _Timer(L.Callback):
            def __init__(self) -> None:
                self.images, self.seconds, self.cpu, self.t0, self.c0 = 0, 0.0, 0.0, 0.0, 0.0

            def on_train_epoch_start(self, trainer, module) -> None:
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def on_train_epoch_end(self, trainer, module) -> None:
                if trainer.current_epoch > 0:
                    self.seconds += time.perf_counter() - self.t0
                    self.cpu += time.process_time() - self.c0
                    self.images += trainer.num_training_batches * batch_size

        return _Timer()


def dataigm_loop(data: Path, out: Path, batch_size: int, epochs: int) -> tuple[float, float, int, dict]:
    """Images/s of `dataigm train` with the tiny recipe (validation off, so only training is timed)."""
    import lightning as L

    from dataigm.train.recipe import load_detector_recipe
    from dataigm.train import run as run_module

    recipe = load_detector_recipe(DETECTORS / "tiny.yaml", [f"trainer.epochs={epochs}", f"trainer.batch_size={batch_size}",
                                                             "data.val_split=none", "data.test_split=none", "trainer.num_workers=0"])
    timer = EpochTimer(batch_size)
    original = L.Trainer.__init__

    def with_timer(self, *args, **kwargs):  # add the timing callback to the Trainer dataigm builds
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), timer]
        original(self, *args, **kwargs)

    L.Trainer.__init__ = with_timer
    try:
        run_module.train_detector(recipe, out, data=data, progress=False, evaluate=False)
    finally:
        L.Trainer.__init__ = original
    import json

    info = json.loads((out / "run.json").read_text())
    return timer.images / timer.seconds, timer.images / timer.cpu, info["steps_per_epoch"], info["data_config"]


def inference(export_dir: Path, batch_size: int = 64, batches: int = 20) -> float:
    import timm

    model = timm.create_model(f"local-dir:{export_dir}", pretrained=True).eval()
    x = torch.randn(batch_size, *model.pretrained_cfg["input_size"])
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(batches):
            model(x)
    return batch_size * batches / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images-per-class", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="both loops are alternated this often; best of each")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    from dataigm.core.shards import list_shards
    from dataigm.synthetic import write_synthetic_dataset
    from dataigm.train.evaluate import load_detector, predict
    from dataigm.train.export import export_detector

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes"
        write_synthetic_dataset(data, "object", CLASSES, {"train": args.images_per_class, "test": 50}, shard_size=100)
        print(f"data: {len(CLASSES) * args.images_per_class} train images (64 px) in {len(list_shards(data, 'object', 'train'))} shards; "
              f"model test_resnet; batch {args.batch_size}; {args.epochs} epochs (first untimed); {torch.get_num_threads()} torch threads")
        # alternated, best of --repeats: this machine is shared and a run is a few seconds
        ours, plain, ratios = [], [], []
        for r in range(args.repeats):
            speed, cpu_speed, steps, data_config = dataigm_loop(data, Path(tmp) / f"run{r}", args.batch_size, args.epochs)
            plain_speed, plain_cpu = plain_loop(list_shards(data, "object", "train"), data_config, args.batch_size, args.epochs, 0.003, steps)
            ours.append(speed)
            plain.append(plain_speed)
            ratios.append((speed / plain_speed, cpu_speed / plain_cpu))
        print(f"train plain PyTorch loop: {max(plain):8.1f} images/s (best of {args.repeats})")
        print(f"train dataigm (Lightning + DataModule): {max(ours):8.1f} images/s (best of {args.repeats})")
        print(f"per repeat, dataigm/plain: wall {', '.join(f'{w:.3f}' for w, _ in ratios)}; CPU time {', '.join(f'{c:.3f}' for _, c in ratios)}")
        export = export_detector(Path(tmp) / "run0", Path(tmp) / "export")
        print(f"inference exported detector (model only, batch 64): {inference(export):8.1f} images/s")
        detector = load_detector(export)
        t0 = time.perf_counter()
        preds = predict(detector, list_shards(data, "object", "test"), ["church", "parachute", "other"], batch_size=64)
        print(f"inference exported detector (decode + transform + model, dataigm evaluate path): {len(preds.labels) / (time.perf_counter() - t0):8.1f} images/s")
        print(f"ratio={max(ours) / max(plain):.3f}")


if __name__ == "__main__":
    main()
