"""Global near-duplicate search, independent of how shards were spread over ranks.

Samples are visited in one global order (split train < val < test, then key); a sample close enough to an
earlier kept sample is a duplicate of the closest one (ties: the earliest), so the copy in the later split (e.g.
test) is the one dropped and a train/test pair is reported as a leak. Two measures share this rule:

* perceptual hashes (:func:`find_duplicates`): within ``max_distance`` bits, exactly. All pairs of distinct hashes
  within the distance are found by multi-index hashing (:class:`HashSearchPlan`: bands that partition the 64 bits,
  one table each, probed with bit flips when fewer, wider bands are cheaper), so the cost grows near-linearly.
* L2-normalised embeddings (:func:`find_embedding_duplicates`, :func:`search_embedding_duplicates`): cosine
  similarity at or above ``threshold``. Exact and blockwise (``chunk`` x ``chunk`` similarity blocks, so memory stays
  bounded) up to a configurable size; above it a FAISS index of the kept samples, with its recall measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from dataigm.core.errors import DataigmError, InputError
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


def order_key(split: str, key: str) -> tuple[int, str]:
    """The global visiting order: split (train < val < test, unknown splits last), then key."""
    return _SPLIT_ORDER.get(split, len(SPLITS)), key


def global_order(samples: Iterable[HashedSample]) -> list[HashedSample]:
    """``samples`` sorted by :func:`order_key`."""
    return sorted(samples, key=lambda s: order_key(s.split, s.key))


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each element of a uint64 array (uint8 counts)."""
    if hasattr(np, "bitwise_count"):  # pragma: no mutate, numpy >= 2.0; both paths give the same counts
        return np.bitwise_count(x)
    return popcount_by_bytes(x)


def popcount_by_bytes(x: np.ndarray) -> np.ndarray:
    """:func:`popcount` for numpy < 2.0 (no ``np.bitwise_count``): a 256-entry table over the 8 bytes of each hash."""
    b = np.ascontiguousarray(x, dtype=np.uint64).view(np.uint8).reshape(*np.shape(x), 8)
    return _POPCOUNT8[b].sum(axis=-1, dtype=np.uint8)


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

# --- the search plan: multi-index hashing or, for few hashes or wide radii, blockwise brute force ---------------
MAX_TABLE_BITS = 24  # a band's table holds 2**width (first, size) pairs of int32 (128 MB at 24 bits)
# relative costs per unit of work, measured with numpy on a 2-core CPU
_COST_PROBE = 1.0  # one query looked up in one band table with one flip mask (about 35 ns)
_COST_CANDIDATE = 0.4  # one candidate pair expanded and verified
_COST_PAIR = 0.1  # one pair compared by the blockwise brute force
_COST_BUCKET = 1.0  # one bucket of a band table built


@dataclass(frozen=True)
class HashSearchPlan:
    """How :func:`near_pairs` finds all pairs of distinct hashes within ``max_distance`` bits.

    ``bands`` near-equal bands partition the 64 bits; by the pigeonhole rule two hashes within ``max_distance`` bits
    differ in at most ``radius = max_distance // bands`` bits on at least one band, so looking each hash up in every
    band's table, with every flip of at most ``radius`` bits, finds every such pair (multi-index hashing, Norouzi
    et al., CVPR 2012). ``bands == 0`` means blockwise brute force (few hashes, or a radius so wide that every
    band plan costs more).
    """

    max_distance: int
    bands: int
    radius: int

    @property
    def widths(self) -> list[int]:
        """Band widths in bits: near-equal, summing to 64 (the wider bands first); none for brute force."""
        if self.bands == 0:
            return []
        base, extra = divmod(64, self.bands)
        return [base + (i < extra) for i in range(self.bands)]

    def describe(self) -> str:
        if self.bands == 0:
            return f"brute force within {self.max_distance} bits"
        widths = sorted(set(self.widths))
        return (f"multi-index hashing within {self.max_distance} bits: {self.bands} bands of "
                f"{'-'.join(map(str, widths))} bits, each probed within {self.radius} bit(s)")


def _flips(width: int, radius: int) -> int:
    return sum(comb(width, k) for k in range(radius + 1))


def plan_search(n: int, max_distance: int) -> HashSearchPlan:
    """The cheapest exact plan for ``n`` distinct hashes, by a cost model of uniformly spread hashes."""
    if max_distance < 0:
        raise InputError(f"max_distance must be >= 0, got {max_distance}")
    best = (_COST_PAIR * n * (n - 1) / 2, HashSearchPlan(max_distance, 0, max_distance))
    # At least 3 bands: a band is then at most 22 bits, and its table within 2**MAX_TABLE_BITS buckets.
    for bands in range(3, 65):  # pragma: no mutate, 2 or 65 bands never win: 2**32 buckets or empty bands
        plan = HashSearchPlan(max_distance, bands, max_distance // bands)
        wide, narrow = max(plan.widths), min(plan.widths)
        probes = n * bands * _flips(wide, plan.radius)
        cost = _COST_PROBE * probes + _COST_CANDIDATE * probes * n / 2**narrow + _COST_BUCKET * bands * 2**wide
        best = min(best, (cost, plan), key=lambda c: c[0])  # pragma: no mutate, the key only avoids comparing plans on a tie
    return best[1]


_CANDIDATE_BLOCK = 1 << 22  # candidate pairs expanded at once (bounds memory on crowded buckets)
_QUERY_BLOCK = 1 << 16


def _brute_pairs(h: np.ndarray, max_distance: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rows = max(1, _CANDIDATE_BLOCK // max(1, len(h)))
    for i0 in range(0, len(h), rows):
        a = np.arange(i0, min(i0 + rows, len(h)))
        dist = popcount(h[a, None] ^ h[None, i0:])
        i, j = np.nonzero(dist <= max_distance)
        j += i0
        later = j > a[i]
        yield a[i[later]], j[later], dist[i[later], j[later] - i0]


def _band_pairs(h: np.ndarray, plan: HashSearchPlan) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    n = len(h)
    start = 0
    for width in plan.widths:
        vals = ((h >> np.uint64(start)) & np.uint64((1 << width) - 1)).astype(np.int64)
        start += width
        # work in band order: a query's probes then land near the previous query's, which keeps the table in cache
        order = np.argsort(vals, kind="stable")
        svals, sh = vals[order], h[order]
        counts = np.bincount(vals, minlength=2**width)
        table = np.empty((2**width, 2), dtype=np.int32 if n < 2**31 else np.int64)  # per bucket: first position in band order, size
        table[:, 0] = np.cumsum(counts) - counts
        table[:, 1] = counts
        masks = [sum(1 << b for b in bits) for k in range(plan.radius + 1) for bits in combinations(range(width), k)]
        for q0 in range(0, n, _QUERY_BLOCK):
            qv = svals[q0 : q0 + _QUERY_BLOCK]
            for mask in masks:
                found = table[qv ^ mask]
                hit = np.flatnonzero(found[:, 1])
                lo, c = found[hit, 0].astype(np.int64), found[hit, 1].astype(np.int64)
                ends = np.cumsum(c)
                # expand in pieces of about _CANDIDATE_BLOCK candidate pairs (a crowded bucket must not exhaust memory)
                cuts = np.unique(np.searchsorted(ends, np.arange(_CANDIDATE_BLOCK, ends[-1] if len(ends) else 0, _CANDIDATE_BLOCK)))
                for piece in np.split(np.arange(len(hit)), cuts):
                    if len(piece) == 0:
                        continue
                    pc = c[piece]
                    u = np.repeat(hit[piece] + q0, pc)
                    v = np.repeat(lo[piece] - (np.cumsum(pc) - pc), pc) + np.arange(int(pc.sum()))
                    later = v > u  # each pair once per band (it is found from both ends)
                    u, v = u[later], v[later]
                    dist = popcount(sh[u] ^ sh[v])
                    near = dist <= plan.max_distance
                    i, j = order[u[near]], order[v[near]]
                    yield np.minimum(i, j), np.maximum(i, j), dist[near]


def near_pairs(hashes: np.ndarray, max_distance: int, plan: HashSearchPlan | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` of ``hashes`` (uint64) within ``max_distance`` bits, each once: (i, j, distance)."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    plan = plan or plan_search(len(h), max_distance)
    if plan.max_distance != max_distance or (plan.bands and plan.radius < max_distance // plan.bands):
        raise ValueError(f"{plan} does not find all pairs within {max_distance} bits")
    parts = list(_brute_pairs(h, max_distance) if plan.bands == 0 else _band_pairs(h, plan))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j, dist = (np.concatenate([p[k] for p in parts]).astype(np.int64) for k in range(3))
    _, first = np.unique(i * len(h) + j, return_index=True)  # a pair close on several bands is found on each
    return i[first], j[first], dist[first]


def describe_hash_search(distinct: int, max_distance: int) -> str:
    """How :func:`find_duplicates` searches ``distinct`` distinct hashes (for the curation report)."""
    if max_distance == 0:
        return "equal hashes only"
    return plan_search(distinct, max_distance).describe()


def _global_positions(keys: Sequence[str], splits: Sequence[str]) -> np.ndarray:
    """Input indices in the global order (:func:`order_key`), sorted with numpy rather than per-object keys."""
    rank = np.array([_SPLIT_ORDER.get(s, len(SPLITS)) for s in splits], dtype=np.int64)
    return np.lexsort((np.array(keys, dtype=str), rank)) if len(keys) else np.zeros(0, dtype=np.int64)


def find_duplicates(samples: Iterable[HashedSample], max_distance: int) -> dict[str, Duplicate]:
    """Map each duplicate's key to what it duplicates (in the global order); kept representatives are not in it.

    Equal to visiting the samples in the global order and comparing each with every kept one, but the comparisons
    are made once, between distinct hashes, by :func:`near_pairs`; only samples with a near (not equal) hash are
    then visited one by one, since whether a sample is kept depends on the verdicts before it.
    """
    samples = list(samples)
    order = _global_positions([s.key for s in samples], [s.split for s in samples])
    try:
        h = np.array([s.phash for s in samples], dtype=np.uint64)[order]
    except OverflowError:
        bad = next(s for s in samples if not 0 <= s.phash < 2**64)
        raise InputError(f"sample {bad.key!r}: phash {bad.phash} is not a 64-bit unsigned integer") from None
    # 1. all pairs of distinct hashes within max_distance
    uniq, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)  # pragma: no mutate, h is 1-D: a guard for numpy 2.0's inverse of the input's shape
    a, b, dist = near_pairs(uniq, max_distance) if max_distance > 0 else (np.zeros(0, np.int64),) * 3
    # 2. a hash near no other: its first sample is kept, later copies duplicate it at distance 0
    rep = first[inv].astype(np.int64)
    rep_dist = np.zeros(len(h), dtype=np.int64)  # pragma: no mutate, float zeros compare equal
    # 3. samples whose hash is near another, in the global order: the nearest kept one, ties the earliest
    connected = np.zeros(len(uniq), dtype=bool)  # pragma: no mutate, 0/1 floats select alike
    connected[a] = connected[b] = True
    visit = np.flatnonzero(connected[inv])
    if len(visit):
        src, dst, dd = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([dist, dist])
        by = np.lexsort((dst, dd, src))  # each hash's neighbours, nearest first
        dst_l, dd_l = dst[by].tolist(), dd[by].tolist()
        # every visited hash is in src, so minlength never matters (an equivalent mutant)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=len(uniq)))]).tolist()
        # the kept sample of each hash (at most one: a later copy is at distance 0); any negative means none
        kept_of = [-1] * len(uniq)  # pragma: no mutate
        reps, dists = [], []
        for p, u in zip(visit.tolist(), inv[visit].tolist()):
            best_d, best_k = (0, kept_of[u]) if kept_of[u] >= 0 else (max_distance + 1, -1)
            if best_k < 0:
                for e in range(indptr[u], indptr[u + 1]):
                    if dd_l[e] > best_d:
                        break
                    k = kept_of[dst_l[e]]
                    if k >= 0 and (dd_l[e] < best_d or k < best_k):
                        best_d, best_k = dd_l[e], k
            if best_k < 0:
                kept_of[u] = best_k = p
                best_d = 0  # pragma: no mutate, a kept sample's own distance is never reported
            reps.append(best_k)
            dists.append(best_d)
        rep[visit], rep_dist[visit] = reps, dists
    out: dict[str, Duplicate] = {}
    dup = np.flatnonzero(rep != np.arange(len(h)))
    for i, j, d in zip(order[dup].tolist(), order[rep[dup]].tolist(), rep_dist[dup].tolist()):
        s, r = samples[i], samples[j]
        out[s.key] = Duplicate(s.key, r.key, d, r.split != s.split)
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


def _check_embeddings(keys: Sequence[str], splits: Sequence[str], embeddings: np.ndarray, chunk: int) -> np.ndarray:
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(keys) or len(keys) != len(splits):
        raise ValueError(f"embeddings must be (n, dim) with n = len(keys) = len(splits); got {x.shape}, {len(keys)} keys, {len(splits)} splits")
    if len(set(keys)) != len(keys):
        raise InputError("keys must be unique")
    if chunk < 1:
        raise InputError(f"chunk must be >= 1, got {chunk}")
    if not np.isfinite(x).all():
        raise InputError("embeddings contain NaN or infinite values")
    return x


# the best earlier kept sample of each row of a block: (similarity, position in ``kept``; -1 for none)
_Prior = Callable[[np.ndarray, list[int]], tuple[np.ndarray, np.ndarray]]


def _exact_prior(x: np.ndarray, chunk: int) -> _Prior:
    def prior(block: np.ndarray, kept: list[int]) -> tuple[np.ndarray, np.ndarray]:
        best = np.full(len(block), -np.inf, dtype=np.float32)
        best_at = np.full(len(block), -1, dtype=np.int64)
        for k0 in range(0, len(kept), chunk):  # argmax takes the first, i.e. earliest, of equal maxima
            sims = block @ x[kept[k0 : k0 + chunk]].T
            arg = sims.argmax(axis=1)
            top = sims[np.arange(len(block)), arg]
            better = top > best  # strictly: an earlier block wins ties
            best[better], best_at[better] = top[better], arg[better] + k0
        return best, best_at
    return prior


def _greedy(
    x: np.ndarray, keys: Sequence[str], splits: Sequence[str], order: Sequence[int], threshold: float, chunk: int,
    prior: _Prior, on_kept: Callable[[list[int]], None] = lambda rows: None,
) -> tuple[dict[str, EmbeddingDuplicate], list[int], np.ndarray]:
    """The global greedy rule, ``chunk`` samples at a time: (duplicates, kept rows in the global order, and for each
    position in ``order`` the similarity with the kept sample it was compared best with, -inf for none)."""
    kept: list[int] = []  # rows of x, in the global order
    best_seen = np.full(len(order), -np.inf, dtype=np.float32)
    out: dict[str, EmbeddingDuplicate] = {}
    for start in range(0, len(order), chunk):
        rows = list(order[start : start + chunk])
        block = x[rows]
        # 1. the best earlier kept sample from previous blocks
        best, best_at = prior(block, kept)
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
            best_seen[start + j] = sim if rep >= 0 else -np.inf
            if rep >= 0 and sim >= threshold:
                other = kept[rep]
                out[keys[row]] = EmbeddingDuplicate(keys[row], keys[other], sim, splits[other] != splits[row])
                continue
            kept.append(row)
            kept_here.append(j)
        on_kept([rows[j] for j in kept_here])
    return out, kept, best_seen


def find_embedding_duplicates(
    keys: Sequence[str], splits: Sequence[str], embeddings: np.ndarray, threshold: float, chunk: int = EMBEDDING_CHUNK,
) -> dict[str, EmbeddingDuplicate]:
    """Map each duplicate's key to what it duplicates, by cosine similarity of L2-normalised ``embeddings`` (exact).

    Row ``i`` of ``embeddings`` belongs to ``keys[i]`` in ``splits[i]``; the input order does not matter. In the
    global order, a sample whose best similarity with an earlier kept sample is ``>= threshold`` duplicates the most
    similar one (ties: the earliest); otherwise it is kept. Each block of ``chunk`` samples is compared with the
    kept samples ``chunk`` at a time, then with itself row by row, so at most ``chunk`` x ``chunk`` similarities
    exist at once. Cost: O(n x kept x dim) multiply-adds.
    """
    x = _check_embeddings(keys, splits, embeddings, chunk)
    order = _global_positions(keys, splits).tolist()
    return _greedy(x, keys, splits, order, threshold, chunk, _exact_prior(x, chunk))[0]


# --- embeddings beyond brute force: a FAISS index of the kept samples -----------------------------------------------
EXACT_MAX = 100_000  # default: up to this many embeddings per category the search stays exact
ANN_INDEXES = ("ivf", "hnsw")
IVF_NPROBE = 32  # inverted lists visited per query
HNSW_M, HNSW_EF_SEARCH, HNSW_EF_CONSTRUCTION = 32, 128, 80


@dataclass(frozen=True)
class EmbeddingSearch:
    """What :func:`search_embedding_duplicates` found and how: for an approximate index, its recall measured
    against exact search on ``recall_queries`` sampled samples (the same kept samples, exact similarities)."""

    duplicates: dict[str, EmbeddingDuplicate]
    method: str  # exact, or the index (ivf or hnsw) with its parameters
    samples: int
    recall_at_1: float | None = None  # the index found the most similar kept sample (up to float32 rounding)
    duplicate_recall: float | None = None  # of the sampled samples exact search calls duplicates, the share it found
    recall_queries: int = 0
    recall_duplicates: int = 0  # sampled samples that exact search calls duplicates


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise DataigmError("the embedding search above exact_max samples needs FAISS: pip install faiss-cpu "
                           "(or faiss-gpu), or raise the embedding filter's exact_max") from None
    return faiss


def _ann_index(x: np.ndarray, method: str, seed: int) -> tuple[Any, str]:
    """An empty FAISS inner-product index for ``x``'s rows (IVF trained on a seeded sample of them), and its name."""
    faiss = _faiss()
    n, dim = x.shape
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH
        return index, f"hnsw (M {HNSW_M}, efSearch {HNSW_EF_SEARCH})"
    nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))  # FAISS wants >= 39 training points per list
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    train = x[np.sort(np.random.default_rng(seed).choice(n, min(n, 64 * nlist), replace=False))]
    index.train(train)
    index.nprobe = min(nlist, IVF_NPROBE)
    return _on_gpu_if_any(faiss, index, f"ivf (nlist {nlist}, nprobe {index.nprobe})")


def _on_gpu_if_any(faiss: Any, index: Any, name: str) -> tuple[Any, str]:  # pragma: no mutate block, GPU only: see docs/testing.md
    """The index moved to the first GPU when faiss-gpu sees one (not run here: no GPU), and its name saying so."""
    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index), name + " on GPU"
    return index, name


def _measure_recall(
    x: np.ndarray, order: Sequence[int], kept: list[int], best_seen: np.ndarray, threshold: float, sample: int, seed: int, chunk: int,
) -> tuple[float | None, float | None, int, int]:
    """Exact best similarity with the earlier kept samples for ``sample`` seeded positions, against what was used."""
    n = len(order)
    if sample <= 0 or n < 2:
        return None, None, 0, 0
    queries = np.sort(np.random.default_rng(seed).choice(np.arange(1, n), min(sample, n - 1), replace=False))
    position = np.empty(n, dtype=np.int64)
    position[np.asarray(order)] = np.arange(n)
    kept_pos = position[np.asarray(kept, dtype=np.int64)]
    q = x[np.asarray(order)[queries]]
    exact = np.full(len(queries), -np.inf, dtype=np.float32)
    for k0 in range(0, len(kept), chunk):
        sims = x[kept[k0 : k0 + chunk]] @ q.T
        sims[kept_pos[k0 : k0 + chunk, None] >= queries[None, :]] = -np.inf  # only samples before the query
        exact = np.maximum(exact, sims.max(axis=0))
    used = best_seen[queries]
    has = np.isfinite(exact)
    dup = exact >= threshold
    at1 = float(np.mean(used[has] >= exact[has] - 1e-5)) if has.any() else None
    dup_recall = float(np.mean(used[dup] >= threshold)) if dup.any() else None
    return at1, dup_recall, int(has.sum()), int(dup.sum())


def search_embedding_duplicates(
    keys: Sequence[str], splits: Sequence[str], embeddings: np.ndarray, threshold: float, *,
    exact_max: int = EXACT_MAX, index: str = "ivf", recall_sample: int = 1000, chunk: int = EMBEDDING_CHUNK, seed: int = 0,
) -> EmbeddingSearch:
    """Embedding near-duplicates by the rule of :func:`find_embedding_duplicates`: exact up to ``exact_max`` samples,
    above it with a FAISS ``index`` (``ivf``: IVF-Flat, inner product over the L2-normalised rows, on a GPU when
    faiss-gpu sees one; ``hnsw``: HNSW-Flat) holding the kept samples, searched for each block's most similar one.

    Within a block the comparison stays exact. The approximate search may miss a near-duplicate (the sample is then
    kept) or pick a less similar kept sample; on ``recall_sample`` seeded samples the similarity it used is compared
    with the exact best over the same kept samples, and the recall returned (reported by curation).
    """
    if index not in ANN_INDEXES:
        raise InputError(f"index must be one of {', '.join(ANN_INDEXES)}, got {index!r}")
    if exact_max < 0 or recall_sample < 0:
        raise InputError(f"exact_max and recall_sample must be >= 0, got {exact_max}, {recall_sample}")
    x = _check_embeddings(keys, splits, embeddings, chunk)
    if len(x) <= exact_max:
        return EmbeddingSearch(find_embedding_duplicates(keys, splits, x, threshold, chunk), "exact", len(x))
    order = _global_positions(keys, splits).tolist()
    ann, name = _ann_index(x, index, seed)

    def prior(block: np.ndarray, kept: list[int]) -> tuple[np.ndarray, np.ndarray]:
        if not kept:
            return np.full(len(block), -np.inf, dtype=np.float32), np.full(len(block), -1, dtype=np.int64)
        sims, ids = ann.search(block, 1)
        sims, ids = sims[:, 0].astype(np.float32), ids[:, 0].astype(np.int64)
        sims[ids < 0] = -np.inf
        return sims, ids

    def on_kept(rows: list[int]) -> None:
        if rows:
            ann.add(x[rows])  # ids follow: an index id is a position in ``kept``

    dups, kept, best_seen = _greedy(x, keys, splits, order, threshold, chunk, prior, on_kept)
    at1, dup_recall, nq, nd = _measure_recall(x, order, kept, best_seen, threshold, recall_sample, seed, chunk)
    return EmbeddingSearch(dups, name, len(x), at1, dup_recall, nq, nd)
