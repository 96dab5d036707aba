"""FID against published reference statistics (``mu``, ``sigma`` of a real image set's Inception features), such as
HUB's COCO-30k: ``eval --fid-reference coco-30k`` or a local ``.npz``.

HUB (ml-postech/HUB ``source/quality/evaluation.py`` ``evaluate_fid``) computes
``calculate_fid(input_dir, get_coco_fid_stats())`` with T2IBenchmark (boomb0om/text2image-benchmark
``T2IBenchmark/datasets/coco2014/__init__.py``): the statistics ``MS-COCO_val2014_fid_stats.npz`` (``mu``, ``sigma`` of
30,000 MS-COCO val2014 images) from T2IBenchmark's release v0.0.1. The publisher gives no hash, so the file's sha256
is computed when it is downloaded (once, into dataigm's cache), recorded in every report, and marked
``verified: false``; :data:`FID_STATS` pins the hash in code only where a publisher gives one.

The statistics are read with ``numpy.load(allow_pickle=False)``. The generated images' features come from the
evaluation's FID feature network (torchmetrics' FID Inception, the 2015-12-05 TF weights pytorch-fid and
T2IBenchmark also load); the distance is torchmetrics' ``FrechetInceptionDistance`` with the real side's running
sums set from ``mu`` and ``sigma``. T2IBenchmark resizes images with its own resizer before Inception; dataigm
resizes with the evaluation's ``fid_size`` (bicubic), so values may differ from HUB's in the decimals (not measured
here: the real statistics and weights are not on this machine).
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import InputError


@dataclass(frozen=True)
class FidStatsSource:
    """Published FID reference statistics: where they are, their sha256 when the publisher gives one, and who uses them."""

    url: str
    sha256: str | None
    publisher: str
    used_by: str
    feature: str = "inception"


FID_STATS = {
    "coco-30k": FidStatsSource(
        url="https://github.com/boomb0om/text2image-benchmark/releases/download/v0.0.1/MS-COCO_val2014_fid_stats.npz",
        sha256=None,  # T2IBenchmark publishes no hash
        publisher="boomb0om/text2image-benchmark T2IBenchmark/datasets/coco2014/__init__.py (COCO_FID_STATS_URL, get_coco_fid_stats)",
        used_by="ml-postech/HUB source/quality/evaluation.py (evaluate_fid)",
    ),
}


@dataclass(frozen=True)
class FidStats:
    """Reference statistics read from ``path``: ``mu`` (D,), ``sigma`` (D, D), the file's sha256 and whether it matched
    a published hash (``verified``; None when the publisher gives none)."""

    name: str
    path: Path
    sha256: str
    verified: bool | None
    mu: Any
    sigma: Any
    source: str = ""

    def describe(self) -> dict[str, Any]:
        return {"reference": self.name, "stats_file": self.path.name, "sha256": self.sha256, "verified": self.verified,
                **({"source": self.source} if self.source else {})}


def is_fid_stats(spec: str | None) -> bool:
    """Whether ``spec`` (``EvalConfig.fid_reference``) names reference statistics rather than an image folder."""
    return bool(spec) and (spec in FID_STATS or str(spec).endswith(".npz"))


def read_fid_stats(path: Path) -> tuple[Any, Any]:
    """``mu``, ``sigma`` (float64) of an ``.npz`` (``numpy.load(allow_pickle=False)``); errors name the file."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = np.asarray(data["mu"], dtype=np.float64), np.asarray(data["sigma"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path}: not FID statistics with 'mu' and 'sigma' ({type(e).__name__}: {e})") from None
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise InputError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit (need (D,) and (D, D))")
    return mu, sigma


def fetch_fid_stats(name: str, cache: Path | None = None) -> Path:
    """The cached file of published statistics ``name``, downloaded once (atomically); a pinned hash is checked."""
    from dataigm.core.atomic import sha256_file, write_bytes_atomic
    from dataigm.core.cache import cache_dir

    if name not in FID_STATS:
        raise InputError(f"unknown FID reference statistics {name!r}; valid: {', '.join(FID_STATS)}, or a .npz file")
    source = FID_STATS[name]
    path = Path(cache or cache_dir() / "fid-stats") / source.url.rsplit("/", 1)[1]
    if not path.is_file():
        try:
            with urllib.request.urlopen(source.url, timeout=120) as response:
                data = response.read()
        except OSError as e:
            raise InputError(f"FID statistics {name!r} could not be downloaded from {source.url} ({e}); "
                             f"download the file yourself and give its path (.npz)") from None
        write_bytes_atomic(path, data)
    if source.sha256 and sha256_file(path) != source.sha256:
        raise InputError(f"{path}: sha256 {sha256_file(path)} is not the published {source.sha256}; delete it to download again")
    return path


def load_fid_stats(spec: str, cache: Path | None = None) -> FidStats:
    """Reference statistics from a name of :data:`FID_STATS` (downloaded once) or a local ``.npz``."""
    from dataigm.core.atomic import sha256_file

    path = fetch_fid_stats(spec, cache) if spec in FID_STATS else Path(spec).expanduser()
    if not path.is_file():
        raise InputError(f"FID reference statistics {path} not found")
    mu, sigma = read_fid_stats(path)
    digest = sha256_file(path)
    pinned = FID_STATS[spec].sha256 if spec in FID_STATS else None
    source = f"{FID_STATS[spec].url} ({FID_STATS[spec].publisher}; used by {FID_STATS[spec].used_by})" if spec in FID_STATS else ""
    return FidStats(spec if spec in FID_STATS else str(path), path, digest, (digest == pinned) if pinned else None, mu, sigma, source)


def fid_against_stats(
    stats: FidStats, images: Sequence[Any], *, feature: str = "inception", weights_path: str | None = None, size: int = 299,
    batch_size: int = 32, device: str = "cpu", reader: Any = None,
) -> dict[str, Any]:
    """FID of ``images`` (ImageRefs) against ``stats``, with the evaluation's feature network (:func:`fid_kid`'s)."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    from dataigm.evaluation.fidelity import _chunks, create_feature_network, open_reader, to_uint8_tensor

    if len(images) < 2:
        raise InputError(f"FID needs at least 2 images, got {len(images)}")
    net = create_feature_network(feature)
    extra = {"feature_extractor_weights_path": weights_path} if (weights_path and net == 2048) else {}
    fid = FrechetInceptionDistance(feature=net, normalize=False, **extra).to(device)
    dim = int(fid.real_features_sum.shape[0])
    if stats.mu.shape[0] != dim:
        raise InputError(f"FID statistics {stats.name} have {stats.mu.shape[0]}-d features; the feature network {feature!r} gives {dim}-d "
                         "(published statistics need the Inception network: fid_feature 'inception')")
    with torch.inference_mode(), open_reader(reader) as reader:
        for chunk in _chunks(images, batch_size):
            fid.update(to_uint8_tensor([reader.image(r, size) for r in chunk]).to(device), real=False)
        # the real side from the statistics: with n = 2, sum = 2 mu and cov_sum = sigma + 2 mu mu^T give back mu and sigma
        mu = torch.as_tensor(stats.mu, dtype=torch.float64, device=device)
        sigma = torch.as_tensor(stats.sigma, dtype=torch.float64, device=device)
        fid.real_features_sum = 2 * mu
        fid.real_features_cov_sum = sigma + 2 * torch.outer(mu, mu)
        fid.real_features_num_samples = torch.tensor(2, dtype=torch.long, device=device)
        value = float(fid.compute())
    return {"fid": value, "n_images": len(images), "feature": feature, **stats.describe()}
