"""Global near-duplicate search, independent of how shards were spread over ranks.

Samples are visited in one global order (split train < val < test, then key); a sample close enough to an
earlier kept sample is a duplicate of the closest one (ties: the earliest), so the copy in the later split (e.g.
test) is the one dropped and a train/test pair is reported as a leak. Two measures share this rule:

* perceptual hashes (:func:`find_duplicates`): within ``max_distance`` bits. Candidates are found exactly with
  the pigeonhole rule: two 64-bit hashes within ``d`` bits share at least one of ``d + 1`` bands.
* L2-normalised embeddings (:func:`find_embedding_duplicates`): cosine similarity at or above ``threshold``.
  The search is exact and blockwise (``chunk`` x ``chunk`` similarity blocks), so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from dataigm.core.schema import SPLITS

_SPLIT_ORDER = {s: i for i, s in enumerate(SPLITS)}


@dataclass(frozen=True)
class HashedSample:
    """A sample's perceptual hash, with what the global order needs (split, key)."""

    key: str
    split: str
    phash: int


@dataclass(frozen=True)
class Duplicate:
    """A perceptual-hash duplicate: ``key`` is within ``distance`` bits of the kept sample ``dup_of``."""

    key: str
    dup_of: str
    distance: int
    leak: bool  # the two copies sit in different splits


def hamming(a: int, b: int) -> int:
    """The number of bits in which two hashes differ."""
    return (a ^ b).bit_count()


def _bands(h: int, width: int) -> list[tuple[int, int]]:
    """The 64-bit hash cut into bands of ``width`` bits (the last one may be narrower): (band index, value)."""
    return [(i, (h >> start) & ((1 << width) - 1)) for i, start in enumerate(range(0, 64, width))]


def order_key(split: str, key: str) -> tuple[int, str]:
    """The global visiting order: split (train < val < test, unknown splits last), then key."""
    return _SPLIT_ORDER.get(split, len(SPLITS)), key


def global_order(samples: Iterable[HashedSample]) -> list[HashedSample]:
    """``samples`` sorted by :func:`order_key`."""
    return sorted(samples, key=lambda s: order_key(s.split, s.key))


def find_duplicates(samples: Iterable[HashedSample], max_distance: int) -> dict[str, Duplicate]:
    """Map each duplicate's key to what it duplicates; kept representatives are not in the result."""
    # Pigeonhole: with at least max_distance + 1 bands that each cover real bits, two hashes within
    # max_distance of each other agree exactly on some band, so the band tables find every candidate.
    width = max(1, 64 // (max_distance + 1))
    tables: dict[tuple[int, int], list[int]] = {}
    kept: list[HashedSample] = []
    out: dict[str, Duplicate] = {}
    for s in global_order(samples):
        candidates = sorted({i for band in _bands(s.phash, width) for i in tables.get(band, [])})
        best = min(((hamming(s.phash, kept[i].phash), i) for i in candidates), default=None)
        if best is not None and best[0] <= max_distance:
            rep = kept[best[1]]
            out[s.key] = Duplicate(s.key, rep.key, best[0], rep.split != s.split)
            continue
        for band in _bands(s.phash, width):
            tables.setdefault(band, []).append(len(kept))
        kept.append(s)
    return out


# --- embeddings ----------------------------------------------------------------------------------------------
EMBEDDING_CHUNK = 4096  # rows per similarity block: a block is chunk x chunk float32 (64 MB at 4096)


@dataclass(frozen=True)
class EmbeddingDuplicate:
    """An embedding duplicate: ``key`` is at least as similar as the threshold to the kept sample ``dup_of``."""

    key: str
    dup_of: str
    similarity: float  # cosine similarity with the kept sample it duplicates
    leak: bool  # the two copies sit in different splits


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float32); an all-zero row stays zero, so it is similar to nothing."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def find_embedding_duplicates(
    keys: Sequence[str], splits: Sequence[str], embeddings: np.ndarray, threshold: float, chunk: int = EMBEDDING_CHUNK,
) -> dict[str, EmbeddingDuplicate]:
    """Map each duplicate's key to what it duplicates, by cosine similarity of L2-normalised ``embeddings``.

    Row ``i`` of ``embeddings`` belongs to ``keys[i]`` in ``splits[i]``; the input order does not matter. In the
    global order, a sample whose best similarity with an earlier kept sample is ``>= threshold`` duplicates the most
    similar one (ties: the earliest); otherwise it is kept. Each block of ``chunk`` samples is compared with the
    kept samples ``chunk`` at a time, then with itself row by row, so at most ``chunk`` x ``chunk`` similarities
    exist at once.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(keys) or len(keys) != len(splits):
        raise ValueError(f"embeddings must be (n, dim) with n = len(keys) = len(splits); got {x.shape}, {len(keys)} keys, {len(splits)} splits")
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be unique")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    order = sorted(range(len(keys)), key=lambda i: order_key(splits[i], keys[i]))
    kept: list[int] = []  # rows of x, in the global order
    out: dict[str, EmbeddingDuplicate] = {}
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        block = x[rows]
        # 1. the best earlier kept sample from previous blocks (argmax takes the first, i.e. earliest, of equal maxima)
        best = np.full(len(rows), -np.inf, dtype=np.float32)
        best_at = np.full(len(rows), -1, dtype=np.int64)  # a position in ``kept``
        for k0 in range(0, len(kept), chunk):
            sims = block @ x[kept[k0 : k0 + chunk]].T
            arg = sims.argmax(axis=1)
            top = sims[np.arange(len(rows)), arg]
            better = top > best  # strictly: an earlier block wins ties
            best[better], best_at[better] = top[better], arg[better] + k0
        # 2. samples kept earlier in this block, visited row by row since each verdict depends on the previous ones
        inner = block @ block.T
        kept_here: list[int] = []  # positions in ``rows``
        for j, row in enumerate(rows):
            sim, rep = float(best[j]), int(best_at[j])
            if kept_here:
                local = inner[j, kept_here]
                i = int(local.argmax())
                if local[i] > best[j]:  # strictly: earlier blocks precede this one
                    sim, rep = float(local[i]), len(kept) - len(kept_here) + i
            if rep >= 0 and sim >= threshold:
                other = kept[rep]
                out[keys[row]] = EmbeddingDuplicate(keys[row], keys[other], sim, splits[other] != splits[row])
                continue
            kept.append(row)
            kept_here.append(j)
    return out
