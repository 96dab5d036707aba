"""Benchmark ``dataigm judge`` against a plain loop over the same files (open, preprocess, forward one at a time),
for a dataigm detector and for NudeNet, in the same run.

    python benchmarks/judge.py [--n-detector 512] [--n-nudenet 96] [--size 64]

The last line is ``ratio=<geometric mean of the two speed-ups (dataigm detector, NudeNet)>``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path


def write_images(folder: Path, n: int, size: int) -> list[Path]:
    from dataigm.synthetic import PATTERNS, draw_pattern

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i}_{i}.png"
        draw_pattern(PATTERNS[i % len(PATTERNS)], i, size).save(p)
        paths.append(p)
    return paths


def plain_detector_loop(detector_dir: Path, paths: list[Path]) -> float:
    """The loop a researcher writes first: one image at a time through timm."""
    import timm
    import torch
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    model = timm.create_model(f"local-dir:{detector_dir}", pretrained=True).eval()
    transform = create_transform(**resolve_data_config(model=model), is_training=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        for p in paths:
            model(transform(Image.open(p).convert("RGB"))[None]).softmax(-1)
    return len(paths) / (time.perf_counter() - t0)


def plain_nudenet_loop(paths: list[Path]) -> float:
    from nudenet import NudeDetector

    detector = NudeDetector()
    t0 = time.perf_counter()
    for p in paths:
        detector.detect(str(p))
    return len(paths) / (time.perf_counter() - t0)


def dataigm_judge(spec: str, folder: Path, n: int, batch_size: int) -> float:
    from dataigm.judges.registry import create_judge
    from dataigm.judges.judge import judge

    judge_ = create_judge(spec)  # loading the model is not part of the throughput, as in the plain loop
    t0 = time.perf_counter()
    result = judge(folder, judge_, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - t0
    assert result.summary["n_images"] == n, result.summary
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-detector", type=int, default=512)
    parser.add_argument("--n-nudenet", type=int, default=96)
    parser.add_argument("--size", type=int, default=64, help="image size in pixels")
    parser.add_argument("--arch", default="resnet18", help="timm architecture of the random detector")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from dataigm.judges.tiny import build_tiny_detector

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        det = build_tiny_detector(tmp_path / "detector", arch=args.arch, img_size=args.size)
        det_paths = write_images(tmp_path / "det-images", args.n_detector, args.size)
        nn_paths = write_images(tmp_path / "nn-images", args.n_nudenet, args.size)

        base_det = plain_detector_loop(det, det_paths)
        ours_det = dataigm_judge(f"local-dir:{det}", tmp_path / "det-images", args.n_detector, args.batch_size)
        print(f"dataigm detector ({args.arch}, {args.size}px, {args.n_detector} images): plain loop {base_det:.1f} img/s, dataigm judge {ours_det:.1f} img/s, speed-up {ours_det / base_det:.2f}x")

        base_nn = plain_nudenet_loop(nn_paths)
        ours_nn = dataigm_judge("nudenet", tmp_path / "nn-images", args.n_nudenet, min(args.batch_size, 16))
        print(f"NudeNet (320n onnx, {args.size}px, {args.n_nudenet} images): plain loop {base_nn:.1f} img/s, dataigm judge {ours_nn:.1f} img/s, speed-up {ours_nn / base_nn:.2f}x")

    ratio = math.sqrt((ours_det / base_det) * (ours_nn / base_nn))
    print("ratio = geometric mean of the dataigm-detector and NudeNet speed-ups")
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
