"""Decided once: rank 0 decides and writes the verdicts, other ranks read them (never stale ones) or fail with rank 0's
error; the FAISS embedding path against exact search, with its measured recall, and that recall in the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dataigm.core.errors import DataigmError
from dataigm.core.schema import SPLITS
from dataigm.core.shards import ShardSpec, iter_samples
from dataigm.curate import curate, parse_curation_config
from dataigm.curate import dedup
from dataigm.curate.dedup import find_embedding_duplicates, search_embedding_duplicates
from dataigm.core.partition import partition
from dataigm.curate.engine import input_shards, decide_error_path, decided_path, embedding_path, score_path
from dataigm.generate.tiny import build_tiny_clip

from curation_helpers import curate_on_two_ranks, tree_digest

from test_curate_dedup_embedding import THRESHOLD, config_for, write_dataset

PHASH = {"default": {"filters": {"blank": {}, "phash": {}}}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("once-dataset"))


@pytest.fixture(scope="module")
def curated(dataset, tmp_path_factory):
    return curate(dataset, tmp_path_factory.mktemp("once-out") / "out", parse_curation_config(PHASH), progress=False)


def keys_in(root: Path, spec: ShardSpec) -> set[str]:
    return {s.key for s in iter_samples([spec.tar_path(root)])}


def test_rank0_writes_the_decisions_with_the_digest_of_its_inputs(curated):
    lines = decided_path(curated.out).read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "dataigm-decided/1" and len(header["inputs_sha256"]) == 64
    assert header["samples"] == len(lines) - 1 == len(curated.decisions)
    rows = {r["key"]: r for r in map(json.loads, lines[1:])}
    assert rows["c1-copy"]["verdict"] == "drop" and rows["c1-copy"]["fields"]["dup_of"] == "c0-orig"
    assert header["searches"] == [{"category": "object", "by": "phash", "samples": len(curated.decisions) - 1,
                                  "method": "brute force within 4 bits"}]  # few hashes: all pairs compared
    assert not decide_error_path(curated.out).exists()


def test_two_ranks_share_one_decision_file_and_give_the_same_bytes(dataset, curated, tmp_path):
    out = tmp_path / "ranks"
    curate_on_two_ranks(dataset, out, parse_curation_config(PHASH))
    digest = tree_digest(out)
    assert "_curation/decided.jsonl" in digest and digest == tree_digest(curated.out)
    assert not decide_error_path(out).exists()


def test_other_ranks_read_rank0s_decisions_instead_of_deciding(dataset, curated, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(curated.out, out)
    mine = partition(input_shards(dataset), 1, 2)  # the shards rank 1 of 2 writes
    assert len(mine) == 1
    (mine,) = mine
    victim = next(k for k in sorted(keys_in(out, mine)) if curated.decisions[k].verdict == "keep")
    # rank 0's file says drop: a rank that decided for itself would keep the sample
    path = decided_path(out)
    lines = path.read_text().splitlines()
    lines = [line.replace('"verdict": "keep"', '"verdict": "drop"') if json.loads(line).get("key") == victim else line for line in lines]
    path.write_text("\n".join(lines) + "\n")
    for p in (mine.tar_path(out), mine.stats_path(out)):
        p.unlink()
    result = curate(dataset, out, parse_curation_config(PHASH), rank=1, world_size=2, progress=False, barrier_timeout=5)
    assert result.decisions[victim].verdict == "drop" and result.report is None
    assert victim not in keys_in(out, mine) and keys_in(out, mine) == keys_in(curated.out, mine) - {victim}


def test_other_ranks_never_read_decisions_made_from_other_inputs(dataset, curated, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(curated.out, out)
    spec = ShardSpec("object", "test", 0)
    rows = [json.loads(line) for line in score_path(out, spec).read_text().splitlines()]
    rows[0]["flags"].append(["blank:blank", "drop"])  # a rescored shard: the decisions no longer match
    score_path(out, spec).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    with pytest.raises(TimeoutError, match="rank 0's decisions"):
        curate(dataset, out, parse_curation_config(PHASH), rank=1, world_size=2, progress=False, barrier_timeout=0.1)
    result = curate(dataset, out, parse_curation_config(PHASH), progress=False)  # rank 0 decides anew
    assert result.decisions[rows[0]["key"]].verdict == "drop"
    assert curate(dataset, out, parse_curation_config(PHASH), rank=1, world_size=2, progress=False, barrier_timeout=5).decisions[rows[0]["key"]].verdict == "drop"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


def test_other_ranks_fail_with_rank0s_error(dataset, tiny_clip, tmp_path):
    out = tmp_path / "out"
    config = config_for(tiny_clip)
    curate(dataset, out, config, progress=False, batch_size=3)
    embedding_path(out, ShardSpec("object", "test", 0)).unlink()  # its score file remains: no decision can be made
    with pytest.raises(FileNotFoundError, match="embeddings of shard object/test/object-test-000000.tar"):
        curate(dataset, out, config, rank=0, world_size=2, progress=False)
    with pytest.raises(DataigmError, match="rank 0 could not decide: FileNotFoundError: embeddings of shard object/test"):
        curate(dataset, out, config, rank=1, world_size=2, progress=False, barrier_timeout=5)


# --- the FAISS embedding path ---------------------------------------------------------------------------------------
def clustered_vectors(n: int, noise: float, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Half unrelated unit vectors, half noisy copies of them (several per original), random keys and splits."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n // 2, 32)).astype(np.float32)
    near = base[rng.integers(0, n // 2, n - n // 2)] + noise * rng.standard_normal((n - n // 2, 32)).astype(np.float32)
    x = np.concatenate([base, near])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    keys = [f"k{v:06d}" for v in rng.permutation(10 * n)[:n]]
    return keys, [str(s) for s in rng.choice(["train", "train", "val", "test"], n)], x


def independent_recall(keys, splits, x, threshold, found) -> tuple[int, float]:
    """Over all samples but the first: how many have an earlier kept sample (kept: not in ``found``) at or above the
    threshold by exact float64 search, and the share of those ``found`` flags."""
    order = sorted(range(len(keys)), key=lambda i: (SPLITS.index(splits[i]), keys[i]))
    kept: list[int] = []
    dups = hits = 0
    for i in order:
        if kept and float((x[kept].astype(np.float64) @ x[i].astype(np.float64)).max()) >= threshold:
            dups += 1
            hits += keys[i] in found
        if keys[i] not in found:
            kept.append(i)
    return dups, hits / dups


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_faiss_search_matches_exact_and_measures_its_recall(index):
    keys, splits, x = clustered_vectors(3000, 0.1, seed=3)
    threshold = 0.97
    exact = find_embedding_duplicates(keys, splits, x, threshold)
    found = search_embedding_duplicates(keys, splits, x, threshold, exact_max=1000, index=index, recall_sample=len(keys), chunk=256)
    assert found.method == {"ivf": "ivf (nlist 76, nprobe 32)", "hnsw": "hnsw (M 32, efSearch 128)"}[index]  # 3000 // 39 lists
    assert found.samples == 3000
    assert len(exact) > 800
    agree = sum(1 for k, d in found.duplicates.items() if k in exact and exact[k].dup_of == d.dup_of)
    assert agree >= 0.98 * len(exact) and len(found.duplicates) <= len(exact) * 1.02
    dups, recall = independent_recall(keys, splits, x, threshold, found.duplicates)
    assert (found.recall_queries, found.recall_duplicates) == (len(keys) - 1, dups)
    assert found.duplicate_recall == pytest.approx(recall) and found.duplicate_recall >= 0.98
    assert 0.5 < found.recall_at_1 <= 1.0
    assert search_embedding_duplicates(keys, splits, x, threshold, exact_max=1000, index=index, recall_sample=len(keys), chunk=256) == found
    small = search_embedding_duplicates(keys, splits, x, threshold, exact_max=3000, index=index)
    assert (small.method, small.recall_at_1, small.duplicates) == ("exact", None, exact)


def test_recall_reveals_a_weak_index(monkeypatch):
    keys, splits, x = clustered_vectors(4000, 0.3, seed=4)
    threshold = 0.9
    monkeypatch.setattr(dedup, "IVF_NPROBE", 1)  # one list of many: near copies in a neighbouring list are missed
    found = search_embedding_duplicates(keys, splits, x, threshold, exact_max=0, index="ivf", recall_sample=len(keys), chunk=512)
    assert found.method == "ivf (nlist 102, nprobe 1)"
    dups, recall = independent_recall(keys, splits, x, threshold, found.duplicates)
    assert found.recall_duplicates == dups > 100
    assert found.duplicate_recall == pytest.approx(recall) and found.duplicate_recall < 0.97
    sampled = search_embedding_duplicates(keys, splits, x, threshold, exact_max=0, index="ivf", recall_sample=300, chunk=512)
    assert sampled.recall_queries == 300 and abs(sampled.duplicate_recall - recall) < 0.15


def test_search_settings_errors():
    with pytest.raises(ValueError, match="index must be one of ivf, hnsw"):
        search_embedding_duplicates(["a"], ["train"], np.eye(1), 0.9, index="flat")
    with pytest.raises(ValueError, match="exact_max"):
        search_embedding_duplicates(["a"], ["train"], np.eye(1), 0.9, exact_max=-1)
    with pytest.raises(ValueError, match="index"):
        parse_curation_config({"default": {"filters": {"embedding": {"model": "m", "index": "flat"}}}})


def test_the_report_gives_the_faiss_search_and_its_recall(dataset, tiny_clip, tmp_path):
    exact = curate(dataset, tmp_path / "exact", config_for(tiny_clip), progress=False, batch_size=3)
    raw = {"default": {"filters": {"blank": {}, "embedding": {"model": str(tiny_clip), "threshold": THRESHOLD, "batch_size": 4, "exact_max": 0}}}}
    approx = curate(dataset, tmp_path / "faiss", parse_curation_config(raw), progress=False, batch_size=3)
    assert {k: (d.verdict, d.fields["emb_dup_of"]) for k, d in approx.decisions.items()} == {k: (d.verdict, d.fields["emb_dup_of"]) for k, d in exact.decisions.items()}
    n = sum(1 for d in exact.decisions.values() if "unreadable" not in d.reasons)
    search = {"category": "object", "by": "embedding", "samples": n, "method": "ivf (nlist 1, nprobe 1)",
              "recall_at_1": 1.0, "duplicate_recall": 1.0, "recall_queries": n - 1, "recall_duplicates": 3}
    hashes = {"category": "object", "by": "phash", "samples": n, "method": "equal hashes only"}  # leaks are always reported
    assert approx.searches == [hashes, search]
    assert json.loads((approx.out / "curation_report.json").read_text())["searches"] == [hashes, search]
    assert f"| object | embedding | {n} | ivf (nlist 1, nprobe 1) | 1.0000 | 1.0000 | {n - 1} | 3 |" in approx.report.read_text()
    assert exact.searches == [hashes, {"category": "object", "by": "embedding", "samples": n, "method": "exact"}]
    assert f"| object | embedding | {n} | exact |  |  |  |  |" in exact.report.read_text()
