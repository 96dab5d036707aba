"""dataigm.core.shards.ShardIndex on hand-built tars with known members: keys, duplicates, defaults of a sample
without some fields, which member is the image, and how many shards stay open."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from dataigm.core.shards import ShardIndex


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("sub")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)  # a folder member is not a sample
    return path


@pytest.fixture()
def shards(tmp_path: Path) -> list[Path]:
    meta = json.dumps({"label_name": "church"}).encode()
    first = _tar(tmp_path / "a.tar", {"k1.png": b"png-1", "k1.json": meta, "k1.cls": b"3", "sub/k2.jpg": b"jpg-2",
                                      "k2.webp": b"webp-2", "k3.json": b"{}", "k3.txt": b"caption", "k4.x.png": b"png-4"})
    second = _tar(tmp_path / "b.tar", {"k1.png": b"other", "k5.png": b"png-5"})
    third = _tar(tmp_path / "c.tar", {"k6.png": b"png-6"})
    return [first, second, third]


def test_members_keys_and_duplicates(shards: list[Path]) -> None:
    with ShardIndex.of_dataset(shards) as index:
        assert index.keys == {"k1": shards[0], "k2": shards[0], "k3": shards[0], "k4": shards[0], "k5": shards[1], "k6": shards[2]}
        assert index.duplicates == ["k1"]  # the first shard wins
        assert {k: sorted(v) for k, v in index.members(shards[0]).items()} == {
            "k1": ["cls", "json", "png"], "k2": ["jpg", "webp"], "k3": ["json", "txt"], "k4": ["x.png"]}  # key ends at the first dot
        assert index.fields(shards[0], "k3") == {"json": b"{}", "txt": b"caption"}
        with pytest.raises(FileNotFoundError, match="no sample k9"):
            index.fields(shards[0], "k9")


def test_sample_fields_and_their_defaults(shards: list[Path]) -> None:
    with ShardIndex.of_dataset(shards) as index:
        s = index.sample("k1")
        assert (s.key, s.image, s.meta, s.label, s.shard) == ("k1", b"png-1", {"label_name": "church"}, 3, str(shards[0]))
        assert index.sample("k1", shards[1]).image == b"other"
        bare = index.sample("k5")
        assert (bare.image, bare.meta, bare.label, bare.shard) == (b"png-5", {}, -1, str(shards[1]))
        assert index.sample("k3").image == b""


def test_image_bytes_prefers_png_then_the_first_image_suffix(shards: list[Path]) -> None:
    with ShardIndex.of_dataset(shards) as index:
        assert index.image_bytes(shards[0], "k1") == b"png-1"
        assert index.image_bytes(shards[0], "k2") == b"jpg-2"  # jpg sorts before webp
        assert index.image_bytes(shards[0], "k4") == b"png-4"  # "x.png" ends in an image suffix
        with pytest.raises(FileNotFoundError, match="no image for sample k3"):
            index.image_bytes(shards[0], "k3")


def test_only_the_last_max_open_shards_stay_open(shards: list[Path]) -> None:
    index = ShardIndex(max_open=2)
    for path in shards:
        index.members(path)
    assert list(index._open) == shards[1:]
    first = index._tar(shards[1])  # reading a shard again makes it the newest
    assert list(index._open) == [shards[2], shards[1]] and index._tar(shards[1]) is first
    index.fields(shards[0], "k1")
    assert list(index._open) == [shards[1], shards[0]]
    tars = list(index._open.values())
    index.close()
    assert index._open == {} and all(t.closed for t in tars)
    with ShardIndex(max_open=1) as one:
        assert [one.image_bytes(p, k) for p, k in ((shards[0], "k1"), (shards[1], "k5"), (shards[0], "k2"))] == [b"png-1", b"png-5", b"jpg-2"]
        assert len(one._open) == 1
