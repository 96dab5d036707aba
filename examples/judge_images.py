"""Judge a folder of images, then the same images as PIL images, from Python.

    python examples/judge_images.py FOLDER [SPEC]

SPEC is any judge spec ``dataigm list-judges`` lists (default ``nudenet``, the NudeNet 3.4 wheel's detector, which runs
offline). Both calls go through the decoding and preprocessing ``dataigm judge`` uses, so their verdicts agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

import dataigm


def main(folder: Path, spec: str = "nudenet") -> None:
    judge = dataigm.load_judge(spec)
    verdicts = judge(folder)  # every image below the folder, sorted by path
    low, high = verdicts.interval(0.95)
    print(f"{spec}: {verdicts.n_positive} of {len(verdicts)} images show '{judge.target}' "
          f"({verdicts.positive_rate:.1%}, 95% Wilson interval {low:.1%} to {high:.1%})")
    for image_id, positive, score in zip(verdicts.ids, verdicts.positive, verdicts.scores):
        print(f"  {image_id}: {'positive' if positive else 'negative'} (score {score:.3f})")

    pictures = [Image.open(folder / image_id) for image_id in verdicts.ids]  # the same images, already in memory
    again = judge(pictures, batch_size=4)
    print(f"as PIL images: the same verdicts: {again.positive.tolist() == verdicts.positive.tolist()}")
    print(f"weights sha256: {verdicts.describe()['weights_sha256']}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
