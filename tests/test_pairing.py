"""Pairing keys of judged images, case by case: which fields identify an image, and what each error names."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataigm.judges.images import ImageRef, name_fields
from dataigm.evaluation.pairing import pair_images, pair_key, pair_reference_key


def sample(key: str, **meta) -> ImageRef:
    return ImageRef(f"s.tar#{key}", "s.tar", key, meta)


def file(name: str) -> ImageRef:
    return ImageRef(name, name, "", name_fields(Path(name)))


def test_pair_key_of_each_kind_of_image() -> None:
    full = sample("k1", concept="church", role="positive", prompt_index=4, seed=17, image_index=2, pair_id="church-00004")
    assert pair_key(full) == ("sample", "church", "positive", 4, 17, 2)
    assert pair_key(sample("k2", concept="church", role="negative", prompt_index=0, seed=0)) == ("sample", "church", "negative", 0, 0, -1)
    # a sample without a prompt index or without a seed falls back to its key
    assert pair_key(sample("k3", prompt_index=-1, seed=5)) == ("key", "k3")
    assert pair_key(sample("k4", prompt_index=2, seed=-1)) == ("key", "k4")
    assert pair_key(sample("k5")) == ("key", "k5")
    assert pair_key(file("12_345.png")) == ("file", 12, 345)
    assert pair_key(file("12.png")) == ("file", 12, -1)
    assert pair_key(file("sub/cat photo.png")) == ("path", "sub/cat photo")


def test_pair_reference_key_of_each_kind_of_image() -> None:
    assert pair_reference_key(sample("a", pair_id="church-00004", seed=17, prompt_index=9)) == ("pair", "church-00004", 17)
    assert pair_reference_key(sample("b", pair_id="church-00004", seed=0)) == ("pair", "church-00004", 0)
    assert pair_reference_key(sample("c", pair_id="church-00004", seed=-1, prompt_index=3)) == ("file", 3, -1)
    assert pair_reference_key(sample("d", pair_id="", seed=5, prompt_index=3)) == ("file", 3, 5)
    assert pair_reference_key(file("7_8.png")) == ("file", 7, 8)
    assert pair_reference_key(file("x/y.png")) == ("path", "x/y")


def test_pairs_come_sorted_by_key_whatever_the_input_order() -> None:
    orig = [sample(f"o{i}", concept="c", role="positive", prompt_index=i, seed=10 + i, image_index=0) for i in (2, 0, 1)]
    unl = [sample(f"u{i}", concept="c", role="positive", prompt_index=i, seed=10 + i, image_index=0) for i in (1, 2, 0)]
    assert [(o.key, u.key) for o, u in pair_images(orig, unl)] == [("o0", "u0"), ("o1", "u1"), ("o2", "u2")]


def test_duplicates_and_unmatched_are_named_and_long_lists_cut() -> None:
    orig = [file(f"{i}_1.png") for i in range(12)] + [file("0_1.jpg")]
    with pytest.raises(ValueError) as e:
        pair_images(orig, [file("0_1.png")], what="forget images")
    msg = str(e.value)
    assert msg.startswith("cannot pair original and unlearned images by prompt index and seed: ")
    assert "original forget images have duplicate prompt index/seed: 0_1.png, 0_1.jpg;" in msg
    listed = [f"{i}_1.png" for i in sorted(range(1, 12), key=lambda i: repr(("file", i, 1)))][:10]
    assert f"original forget images without an unlearned counterpart: {', '.join(listed)} ... (11 in all)" in msg
    assert "without an original counterpart" not in msg  # the one unlearned image has its original
    with pytest.raises(ValueError, match=r"unlearned retain images without an original counterpart: 5_5\.png$"):
        pair_images([file("1_1.png")], [file("1_1.png"), file("5_5.png")], what="ignored", what_unlearned="retain images")


def test_missing_fields_take_their_documented_defaults() -> None:
    # a sample needs both a prompt index and a seed to pair by them; concept, role and image index default to ""/-1
    assert pair_key(sample("a", seed=5)) == ("key", "a")
    assert pair_key(sample("b", prompt_index=3)) == ("key", "b")
    assert pair_key(sample("c", prompt_index=3, seed=5)) == ("sample", "", "", 3, 5, -1)
    assert pair_key(ImageRef("p.png", "p.png", "", {"prompt_index": 3})) == ("file", 3, -1)  # e.g. from a prompts file
    assert pair_reference_key(sample("d", pair_id="church-00001", prompt_index=3)) == ("file", 3, -1)
    assert pair_reference_key(ImageRef("p.png", "p.png", "", {"prompt_index": 3})) == ("file", 3, -1)


def test_exactly_ten_names_are_listed_without_a_count_and_unlearned_problems_are_named() -> None:
    with pytest.raises(ValueError) as e:
        pair_images([file(f"{i}_1.png") for i in range(10)], [])
    assert str(e.value).endswith("without an unlearned counterpart: " + ", ".join(
        f"{i}_1.png" for i in sorted(range(10), key=lambda i: repr(("file", i, 1)))))
    with pytest.raises(ValueError) as e:
        pair_images([], [file("9_1.png"), file("10_1.png"), file("10_1.jpg")])
    msg = str(e.value)
    assert "unlearned images have duplicate prompt index/seed: 10_1.png, 10_1.jpg" in msg
    # listed in the order of their keys' text, the same on every run
    assert "unlearned images without an original counterpart: 10_1.jpg, 9_1.png" in msg


def test_unmatched_files_are_listed_in_key_order_on_both_sides() -> None:
    # keys ("file", 1, 0) < ("file", 2, 0) while the names sort the other way: the errors follow the keys
    original = [file("z/1_0.png"), file("a/2_0.png"), file("m/5_0.png")]
    unlearned = [file("m/5_0.png"), file("y/1_1.png"), file("b/2_1.png")]
    with pytest.raises(ValueError) as err:
        pair_images(original, unlearned)
    assert ("original images without an unlearned counterpart: z/1_0.png, a/2_0.png; "
            "unlearned images without an original counterpart: y/1_1.png, b/2_1.png") in str(err.value)
