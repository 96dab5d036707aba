"""Global near-duplicate search over perceptual hashes, independent of how shards were spread over ranks.

Samples are visited in one global order (split train < val < test, then key); a sample within
``max_distance`` bits of an earlier kept sample is a duplicate of the closest one (ties: the earliest), so the
copy in the later split (e.g. test) is the one dropped and a train/test pair is reported as a leak.
Candidates are found exactly with the pigeonhole rule: two 64-bit hashes within ``d`` bits share at least one
of ``d + 1`` bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from dataigm.core.schema import SPLITS

_SPLIT_ORDER = {s: i for i, s in enumerate(SPLITS)}


@dataclass(frozen=True)
class HashedSample:
    key: str
    split: str
    phash: int


@dataclass(frozen=True)
class Duplicate:
    key: str
    dup_of: str
    distance: int
    leak: bool  # the two copies sit in different splits


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _bands(h: int, n_bands: int) -> list[tuple[int, int]]:
    width = -(-64 // n_bands)
    return [(i, (h >> (i * width)) & ((1 << width) - 1)) for i in range(n_bands)]


def global_order(samples: Iterable[HashedSample]) -> list[HashedSample]:
    return sorted(samples, key=lambda s: (_SPLIT_ORDER.get(s.split, len(SPLITS)), s.key))


def find_duplicates(samples: Iterable[HashedSample], max_distance: int) -> dict[str, Duplicate]:
    """Map each duplicate's key to what it duplicates; kept representatives are not in the result."""
    n_bands = min(max_distance + 1, 64)
    tables: dict[tuple[int, int], list[int]] = {}
    kept: list[HashedSample] = []
    out: dict[str, Duplicate] = {}
    for s in global_order(samples):
        candidates = sorted({i for band in _bands(s.phash, n_bands) for i in tables.get(band, [])})
        best = min(((hamming(s.phash, kept[i].phash), i) for i in candidates), default=None)
        if best is not None and best[0] <= max_distance:
            rep = kept[best[1]]
            out[s.key] = Duplicate(s.key, rep.key, best[0], rep.split != s.split)
            continue
        for band in _bands(s.phash, n_bands):
            tables.setdefault(band, []).append(len(kept))
        kept.append(s)
    return out
