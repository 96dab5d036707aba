"""dataigm.core.atomic: the one canonical JSON digest and the one atomic JSON-lines writer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dataigm.core.atomic import json_sha256, write_jsonl_atomic
from dataigm.curate.config import default_config
from dataigm.prompts import PromptRecord, read_prompt_jsonl, write_prompt_jsonl


@pytest.mark.parametrize("value", [{"b": 1, "a": [1.5, None, "é"]}, [], "x", {"nested": {"z": 0, "y": {"k": True}}}])
def test_json_sha256_is_the_digest_every_stage_recorded(value) -> None:
    assert json_sha256(value) == hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    assert default_config().sha256() == json_sha256(default_config().model_dump(mode="json"))


def test_jsonl_writer_round_trips_and_keeps_order_when_asked(tmp_path: Path) -> None:
    rows = [{"b": 2, "a": "é"}, {"z": 1, "a": 0}]
    assert write_jsonl_atomic(tmp_path / "sorted.jsonl", rows) == 2
    assert (tmp_path / "sorted.jsonl").read_text(encoding="utf-8") == '{"a": "é", "b": 2}\n{"a": 0, "z": 1}\n'
    write_jsonl_atomic(tmp_path / "ordered.jsonl", rows, sort_keys=False)
    assert [json.loads(line) for line in (tmp_path / "ordered.jsonl").read_text().splitlines()] == rows
    assert list(json.loads((tmp_path / "ordered.jsonl").read_text().splitlines()[0])) == ["b", "a"]
    assert write_jsonl_atomic(tmp_path / "empty.jsonl", []) == 0 and (tmp_path / "empty.jsonl").read_bytes() == b""
    assert not list(tmp_path.glob(".*tmp-*"))


def test_prompt_files_go_through_the_same_writer(tmp_path: Path) -> None:
    records = [PromptRecord(prompt="a church in the snow"), PromptRecord(prompt="a café")]
    assert write_prompt_jsonl(records, tmp_path / "p.jsonl") == 2
    assert [r.prompt for r in read_prompt_jsonl(tmp_path / "p.jsonl")] == ["a church in the snow", "a café"]
