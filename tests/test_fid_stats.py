"""FID against reference statistics (``--fid-reference coco-30k`` or a .npz): statistics computed here from a few real
photos, written the way T2IBenchmark writes them (``FIDStats.from_features`` + ``to_npz``), read through the same
loading path as the published file; downloaded once from a local server standing in for the release page."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from dataigm.core.errors import InputError
from dataigm.evaluation import fid_stats
from dataigm.evaluation.fid_stats import FidStatsSource, fid_against_stats, load_fid_stats, read_fid_stats
from dataigm.judges.images import resolve_images
from dataigm.judges.tiny import build_tiny_detector
from real_weights import skimage_photo

REAL = ("astronaut", "chelsea", "coffee", "rocket", "camera", "retina", "cat", "hubble_deep_field")
FAKE = ("horse", "immunohistochemistry", "moon", "page", "text", "brick", "grass", "gravel")


def write_photos(folder: Path, names: tuple[str, ...]) -> list:
    folder.mkdir(parents=True)
    for i, n in enumerate(names):
        skimage_photo(n).resize((80, 64)).save(folder / f"{i}_0.png")
    return resolve_images(folder).files


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import timm

    from dataigm.evaluation.fidelity import ImageReader, TimmFeatures, to_uint8_tensor

    root = tmp_path_factory.mktemp("fidstats")
    net_dir = build_tiny_detector(root / "features", ("a", "b"), seed=5)
    real, fake = write_photos(root / "real", REAL), write_photos(root / "fake", FAKE)
    net = TimmFeatures(timm.create_model(f"local-dir:{net_dir}", pretrained=True, num_classes=0))
    with torch.no_grad(), ImageReader() as reader:
        features = net(to_uint8_tensor([reader.image(r, 64) for r in real])).double().numpy()
    # T2IBenchmark metrics/fid.py: FIDStats.from_features, then to_npz
    mu, sigma = np.mean(features, axis=0), np.cov(features, rowvar=False)
    np.savez(root / "stats.npz", mu=mu, sigma=sigma)
    return {"root": root, "feature": f"local-dir:{net_dir}", "real": real, "fake": fake, "npz": root / "stats.npz"}


def test_fid_against_stats_equals_fid_against_the_images(setup: dict) -> None:
    from dataigm.evaluation.fidelity import fid_kid

    stats = load_fid_stats(str(setup["npz"]))
    got = fid_against_stats(stats, setup["fake"], feature=setup["feature"], size=64, batch_size=3)
    direct = fid_kid(setup["real"], setup["fake"], feature=setup["feature"], size=64)
    assert got["fid"] == pytest.approx(direct["fid"], rel=1e-6) and got["fid"] > 1e-3
    assert fid_against_stats(stats, setup["real"], feature=setup["feature"], size=64)["fid"] == pytest.approx(0.0, abs=1e-3)
    assert got["sha256"] == __import__("hashlib").sha256(setup["npz"].read_bytes()).hexdigest() and got["verified"] is None
    assert got["n_images"] == len(FAKE) and got["stats_file"] == "stats.npz"


def test_stats_are_read_without_pickle(setup: dict, tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", mu=np.array([{"a": 1}], dtype=object), sigma=np.zeros((1, 1)))
    with pytest.raises(InputError, match="not FID statistics"):
        read_fid_stats(tmp_path / "obj.npz")
    np.savez(tmp_path / "bad.npz", mu=np.zeros(3), sigma=np.zeros((2, 2)))
    with pytest.raises(InputError, match="do not fit"):
        read_fid_stats(tmp_path / "bad.npz")
    stats = load_fid_stats(str(setup["npz"]))
    wrong = type(stats)(stats.name, stats.path, stats.sha256, None, np.zeros(7), np.eye(7))
    with pytest.raises(InputError, match="7-d features"):
        fid_against_stats(wrong, setup["fake"], feature=setup["feature"], size=64)


@pytest.fixture
def release(setup: dict) -> Iterator[tuple[str, list]]:
    hits: list = []
    payload = setup["npz"].read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v0.0.1/MS-COCO_val2014_fid_stats.npz", hits
    httpd.shutdown()
    httpd.server_close()


def test_published_stats_download_once_and_record_their_hash(setup: dict, release: tuple[str, list], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url, hits = release
    digest = __import__("hashlib").sha256(setup["npz"].read_bytes()).hexdigest()
    monkeypatch.setitem(fid_stats.FID_STATS, "coco-30k", FidStatsSource(url, None, "test", "test"))
    first = load_fid_stats("coco-30k", cache=tmp_path)
    second = load_fid_stats("coco-30k", cache=tmp_path)
    assert len(hits) == 1 and first.path == second.path == tmp_path / "MS-COCO_val2014_fid_stats.npz"
    assert first.sha256 == digest and first.verified is None and first.describe()["reference"] == "coco-30k"
    monkeypatch.setitem(fid_stats.FID_STATS, "coco-30k", FidStatsSource(url, digest, "test", "test"))
    assert load_fid_stats("coco-30k", cache=tmp_path).verified is True
    monkeypatch.setitem(fid_stats.FID_STATS, "coco-30k", FidStatsSource(url, "0" * 64, "test", "test"))
    with pytest.raises(InputError, match="is not the published"):
        load_fid_stats("coco-30k", cache=tmp_path)


def test_the_published_entry_is_t2ibenchmarks_release() -> None:
    source = fid_stats.FID_STATS["coco-30k"]
    assert source.url == "https://github.com/boomb0om/text2image-benchmark/releases/download/v0.0.1/MS-COCO_val2014_fid_stats.npz"
    assert source.sha256 is None and "HUB" in source.used_by
