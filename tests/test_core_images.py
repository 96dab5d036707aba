"""dataigm.core.images and ShardIndex: ingest, curation, judging and fidelity see the same images in a folder, the
same pixels for the same bytes, and the same sample bytes inside a shard."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataigm.core.errors import DataigmError
from dataigm.core.images import IMAGE_SUFFIXES, ImageDecodeError, decode_rgb, walk_images
from dataigm.core.shards import ShardIndex, iter_tar, list_shards
from dataigm.curate.engine import decode as curation_decode
from dataigm.ingest.images import decode_image, scan_folder
from dataigm.evaluation.fidelity import ImageReader
from dataigm.judges.images import ImageRef, decode as judge_decode, resolve_images
from dataigm.synthetic import draw_pattern


def _folder(root: Path) -> Path:
    (root / "church" / ".ipynb_checkpoints").mkdir(parents=True)
    (root / "other").mkdir()
    draw_pattern("disc", 1).save(root / "church" / "a.png")
    draw_pattern("ring", 2).save(root / "church" / "b.tif")  # a suffix only ingest used to read
    draw_pattern("disc", 1).save(root / "church" / ".ipynb_checkpoints" / "a-checkpoint.png")  # a copy only judging used to read
    draw_pattern("hstripes", 3).save(root / "other" / "c.JPG")
    draw_pattern("vstripes", 4).save(root / "other" / "d.webp")
    (root / "other" / "notes.txt").write_text("not an image")
    return root


def test_import_and_judge_see_the_same_images(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs")
    files, ignored = scan_folder(folder)
    judged = resolve_images(folder).files
    assert [f.relpath for f in files] == [r.id for r in judged] == ["church/a.png", "church/b.tif", "other/c.JPG", "other/d.webp"]
    assert [p.relative_to(folder).as_posix() for p in walk_images(folder)] == [f.relpath for f in files]
    assert ignored == ["other/notes.txt"]
    assert ".tif" in IMAGE_SUFFIXES and ".webp" in IMAGE_SUFFIXES


def test_one_decoder_for_every_stage() -> None:
    rgba = Image.new("RGBA", (8, 8), (10, 20, 30, 0))  # fully transparent: flattened onto white everywhere
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    data = buf.getvalue()
    judged, (curated, reason) = judge_decode(data), curation_decode(data)
    stored = Image.open(io.BytesIO(decode_image(data, 64).png))
    assert reason == "" and judged.mode == curated.mode == stored.mode == "RGB"
    assert np.asarray(judged).tolist() == np.asarray(curated).tolist() == np.asarray(stored).tolist() == np.full((8, 8, 3), 255).tolist()


def test_exif_orientation_is_applied_when_judging() -> None:
    img = Image.new("RGB", (16, 8), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert decode_rgb(buf.getvalue()).size == (8, 16) == Image.open(io.BytesIO(decode_image(buf.getvalue(), 64).png)).size


def test_nan_and_garbage_are_decode_errors() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), np.nan, dtype=np.float32), "F").save(buf, "TIFF")
    with pytest.raises(ImageDecodeError, match="nan") as e:
        decode_rgb(buf.getvalue(), "x.tif")
    assert isinstance(e.value, DataigmError) and e.value.kind == "nan"
    assert curation_decode(buf.getvalue()) == (None, "nan")
    image, reason = curation_decode(b"garbage")
    assert image is None and reason == "unreadable: not an image: Pillow cannot identify the format"


def test_shard_index_reads_what_the_shard_iterator_reads(shapes_dataset: Path) -> None:
    shards = list_shards(shapes_dataset)
    samples = [s for path in shards[:2] for s in iter_tar(path)]
    with ShardIndex.of_dataset(shards, max_open=1) as index, ImageReader(max_open=1) as reader:
        assert len(index.keys) == sum(1 for path in shards for _ in iter_tar(path)) and index.duplicates == []
        for s in samples[::3]:
            again = index.sample(s.key)
            assert (again.image, again.meta, again.label, again.shard) == (s.image, s.meta, s.label, s.shard)
            assert reader.read(ImageRef(s.key, s.shard, s.key)) == s.image == index.image_bytes(s.shard, s.key)
        with pytest.raises(FileNotFoundError, match="no sample nope"):
            index.fields(shards[0], "nope")
