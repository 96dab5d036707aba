"""How often OpenNSFW and each NudeNet preset agree on the real photos available offline (scikit-image's ``data``
photos and matplotlib's Grace Hopper portrait): raw agreement, Cohen's kappa, and both judges' score distributions.

    python tools/judge_agreement.py [--json OUT]

Every photo is safe, so both judges are expected to say "negative" everywhere; kappa is then undefined (0/0) and
the score distributions are the informative part.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# scikit-image data that are not single photos (face cascades, 3-D stacks, downloads) are skipped
SKIP = {"download_all", "data_dir", "lbp_frontal_face_cascade_filename", "lfw_subset", "cells3d", "brain", "kidney", "lily",
        "human_mitosis", "eagle", "file_hash", "protein_transport", "skin", "binary_blobs", "nickel_solidification",
        "vortex", "stereo_motorcycle", "palisades_of_vogt"}


def offline_photos() -> dict[str, Any]:
    """Every uint8 greyscale/RGB(A) photo scikit-image ships, plus Grace Hopper, as RGB PIL images."""
    from PIL import Image
    from skimage import data

    from real_weights import grace_hopper

    photos = {}
    for name in sorted(set(data.__all__) - SKIP):
        try:
            arr = getattr(data, name)()
        except Exception:  # a photo that needs a download
            continue
        if isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
            photos[name] = Image.fromarray(arr).convert("RGB")
    photos["grace_hopper"] = Image.open(grace_hopper()).convert("RGB")
    return photos


def cohen_kappa(a: list[bool], b: list[bool]) -> float:
    """Cohen's kappa of two binary raters; nan when both are constant and agree (expected agreement 1)."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return float("nan") if expected == 1.0 else (observed - expected) / (1 - expected)


def verdicts(spec: str, images: list[Any]) -> list[Any]:
    from dataigm.judges.registry import create_judge

    judge = create_judge(spec, device="cpu")
    return judge.predict(judge.collate([judge.preprocess(im) for im in images]))


def quantiles(values: list[float]) -> dict[str, float]:
    q = np.quantile(values, [0.0, 0.5, 0.9, 1.0])
    return {"min": round(float(q[0]), 6), "median": round(float(q[1]), 6), "p90": round(float(q[2]), 6), "max": round(float(q[3]), 6)}


def main() -> int:
    from dataigm.judges.nudenet import NUDENET_PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    photos = offline_photos()
    names, images = list(photos), list(photos.values())
    nsfw = verdicts("opennsfw", images)
    out: dict[str, Any] = {"n_images": len(images), "images": names,
                           "opennsfw": {"positive": sum(v.positive for v in nsfw), "p_nsfw": quantiles([v.positive_score for v in nsfw]),
                                        "top3": sorted(((round(v.positive_score, 4), n) for n, v in zip(names, nsfw)), reverse=True)[:3]},
                           "presets": {}}
    for preset in NUDENET_PRESETS:
        nude = verdicts(f"nudenet:{preset}", images)
        a, b = [v.positive for v in nsfw], [v.positive for v in nude]
        kappa = cohen_kappa(a, b)
        out["presets"][preset] = {"positive": sum(b), "agreement": sum(x == y for x, y in zip(a, b)) / len(a),
                                  "kappa": None if math.isnan(kappa) else round(kappa, 4) + 0.0,
                                  "best_score": quantiles([v.positive_score for v in nude])}
    print(f"{len(images)} real photos; OpenNSFW positives {out['opennsfw']['positive']}, P(nsfw) {out['opennsfw']['p_nsfw']}")
    print(f"OpenNSFW top 3: {out['opennsfw']['top3']}")
    print(f"{'preset':16s} {'positives':>9s} {'agreement':>9s} {'kappa':>10s}  best preset-class score")
    for preset, row in out["presets"].items():
        kappa = "undefined" if row["kappa"] is None else f"{row['kappa']:.4f}"
        print(f"{preset:16s} {row['positive']:9d} {row['agreement']:9.3f} {kappa:>10s}  {row['best_score']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
