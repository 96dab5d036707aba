"""Pair the images of an unlearned model with the original model's images of the same prompt and seed.

The pairing key of an image is, in order of preference:

* shard samples: (concept, role, prompt_index, seed, image_index) from the sample json;
* files named ``<prompt index>_<seed>.png`` (or ``<prompt index>.png``): (prompt_index, seed);
* otherwise the file's path relative to its input folder, without extension.

Both sides must have exactly the same keys, each once; anything else is an error naming the files, because a
silently mis-paired image would corrupt LPIPS and every paired metric.

:func:`pair_reference_key` pairs an unlearned model's forget image with the original model's image of the
concept-removed prompt (IGMU's reference for LPIPS, FID and CSDR): shard samples by (``pair_id``, seed), which a
positive and its paired negative share; files by (prompt index, seed), the pair folder naming each image after the
index of the forget prompt it belongs to.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath
from typing import Any, Callable, Sequence

from dataigm.core.errors import InputError
from dataigm.judges.images import ImageRef

MAX_LISTED = 10


def pair_key(ref: ImageRef) -> tuple[Any, ...]:
    """The identity of an image across runs (see the module docstring)."""
    m = ref.meta
    if ref.key:  # a shard sample
        if int(m.get("prompt_index", -1)) >= 0 and int(m.get("seed", -1)) >= 0:
            return ("sample", m.get("concept", ""), m.get("role", ""), int(m["prompt_index"]), int(m["seed"]), int(m.get("image_index", -1)))
        return ("key", ref.key)
    if "prompt_index" in m:
        return ("file", int(m["prompt_index"]), int(m.get("seed", -1)))
    return ("path", str(PurePosixPath(ref.id).with_suffix("")))


def pair_reference_key(ref: ImageRef) -> tuple[Any, ...]:
    """The key shared by a forget image and the original model's image of its concept-removed prompt."""
    m = ref.meta
    if m.get("pair_id") and int(m.get("seed", -1)) >= 0:
        return ("pair", str(m["pair_id"]), int(m["seed"]))
    if "prompt_index" in m:
        return ("file", int(m["prompt_index"]), int(m.get("seed", -1)))
    return ("path", str(PurePosixPath(ref.id).with_suffix("")))


def _names(refs: Sequence[ImageRef]) -> str:
    shown = ", ".join(r.id for r in refs[:MAX_LISTED])
    return shown + (f" ... ({len(refs)} in all)" if len(refs) > MAX_LISTED else "")


def pair_images(
    original: Sequence[ImageRef], unlearned: Sequence[ImageRef], *, what: str = "images",
    key: Callable[[ImageRef], tuple[Any, ...]] = pair_key, what_unlearned: str | None = None,
) -> list[tuple[ImageRef, ImageRef]]:
    """``[(original, unlearned)]`` sorted by ``key``; raises ValueError naming unmatched or duplicated files.

    ``what`` names the images in the errors (``what_unlearned`` the unlearned side's, when they differ).
    """
    problems = []
    names = {"original": what, "unlearned": what_unlearned or what}
    for side, refs in (("original", original), ("unlearned", unlearned)):
        counts = Counter(key(r) for r in refs)
        dups = [r for r in refs if counts[key(r)] > 1]
        if dups:
            problems.append(f"{side} {names[side]} have duplicate prompt index/seed: {_names(dups)}")
    by_key_o = {key(r): r for r in original}
    by_key_u = {key(r): r for r in unlearned}
    only_o = [r for k, r in sorted(by_key_o.items(), key=lambda kv: repr(kv[0])) if k not in by_key_u]
    only_u = [r for k, r in sorted(by_key_u.items(), key=lambda kv: repr(kv[0])) if k not in by_key_o]
    if only_o:
        problems.append(f"original {names['original']} without an unlearned counterpart: {_names(only_o)}")
    if only_u:
        problems.append(f"unlearned {names['unlearned']} without an original counterpart: {_names(only_u)}")
    if problems:
        raise InputError("cannot pair original and unlearned images by prompt index and seed: " + "; ".join(problems))
    return [(by_key_o[k], by_key_u[k]) for k in sorted(by_key_o, key=repr)]
