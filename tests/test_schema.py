"""The sample schema: every field round-trips, keys added by later stages are tolerated, bad values refused."""

from __future__ import annotations

import json

import pytest

from dataigm.core.schema import SampleMeta, check_key, encode_sample, slugify


def meta(**over) -> SampleMeta:
    fields = dict(key="church-tiny-church-00003-pos-001", category="church", split="val", label=1, label_name="church",
                  label_names=["other", "church"], concept="church", pair_id="church-00003", prompt="a church", seed=7, image_index=1)
    return SampleMeta(**{**fields, **over})


def test_from_dict_round_trips_and_ignores_keys_of_later_stages() -> None:
    m = meta()
    data = json.loads(m.to_json_bytes())
    assert SampleMeta.from_dict(data) == m
    assert SampleMeta.from_dict({**data, "curation": {"kept": True}}) == m
    with pytest.raises(TypeError):
        SampleMeta.from_dict({k: v for k, v in data.items() if k != "label"})  # a schema field is required


def test_encoded_sample_has_the_three_fields() -> None:
    sample = encode_sample(meta(), b"png-bytes")
    assert sorted(sample) == ["__key__", "cls", "json", "png"] and sample["cls"] == b"1" and sample["png"] == b"png-bytes"
    assert json.loads(sample["json"])["pair_id"] == "church-00003"


@pytest.mark.parametrize("over, message", [
    ({"split": "validation"}, "split 'validation'"),
    ({"source": "web crawl"}, "source 'web crawl'"),
    ({"label": 2}, "label 2 out of range"),
    ({"label": -1}, "label -1 out of range"),
    ({"key": "Church.png"}, "invalid sample key"),
])
def test_bad_values_are_refused_naming_the_value(over, message) -> None:
    with pytest.raises(ValueError, match=message):
        meta(**over)


def test_slugify_and_keys() -> None:
    assert slugify("Vincent van Gogh") == "vincent_van_gogh" and slugify("  A--B  ") == "a_b"
    with pytest.raises(ValueError):
        slugify("!!!")
    assert check_key("a-b_c9") == "a-b_c9"


def test_json_bytes_are_sorted_and_utf8() -> None:
    # the same sample always gives the same bytes (sorted keys), and non-ASCII prompts stay readable UTF-8
    data = meta(prompt="une église à Paris").to_json_bytes()
    assert data.startswith(b'{"batch_size": -1, "category": "church", "concept": "church", "generator_device": "", "guidance": -1.0, '
                           b'"height": -1, "image_index": 1,')
    assert "une église à Paris".encode() in data


def test_field_docs_are_one_line_per_field_in_schema_order() -> None:
    import dataclasses

    from dataigm.core.schema import field_docs

    docs = field_docs()
    assert list(docs) == [f.name for f in dataclasses.fields(SampleMeta)] and all(docs.values())
    assert docs["key"] == "sample key, unique in the dataset (lowercase, no dots)" and docs["seed"] == "generator seed of this image"
