"""dataigm.core.stage (run_units, wait_for_files, wait_until) and dataigm.core.atomic's folder publishing: the
skeleton every stage driver uses, on real shards and files."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from dataigm.core.atomic import make_tmp_dir, publish_dir, remove_stale_tmp, tmp_path_for
from dataigm.core.schema import SampleMeta
from dataigm.core.shards import ShardSink, ShardSpec, is_done, iter_tar
from dataigm.core.stage import own_units, remove_own_tmp, run_units, wait_for_files, wait_until

SPECS = [ShardSpec("object", "train", i) for i in range(5)]


def sample(spec: ShardSpec, i: int) -> SampleMeta:
    return SampleMeta(key=f"{spec.name}-{i}", category=spec.category, split=spec.split, label=0, label_name="church",
                      label_names=["church", "other"])


def write_two(spec: ShardSpec, sink: ShardSink, advance) -> None:
    for i in range(2):
        sink.write(sample(spec, i), f"image {spec.index}/{i}".encode())
        advance(1)


def shard_run(root: Path, rank: int, world: int, work=write_two, **kwargs):
    return run_units(SPECS, rank, world, work, open_sink=lambda s: ShardSink(root, s, 2), is_done=lambda s: is_done(root, s),
                     outputs=lambda s: (s.tar_path(root), s.stats_path(root)), **kwargs)


def test_two_ranks_write_every_shard_exactly_once(tmp_path: Path) -> None:
    first, second = shard_run(tmp_path, 0, 2), shard_run(tmp_path, 1, 2, progress=True, size=lambda s: 2)
    assert (first.owned, first.done, second.owned, second.done) == (3, 3, 2, 2)
    assert [s.shard for s in first.results + second.results] == [SPECS[i].relpath for i in (0, 2, 4, 1, 3)]
    keys = [r.key for spec in SPECS for r in iter_tar(spec.tar_path(tmp_path))]
    assert sorted(keys) == sorted(f"{s.name}-{i}" for s in SPECS for i in range(2))  # all of them, none twice
    assert [r.image for r in iter_tar(SPECS[3].tar_path(tmp_path))] == [b"image 3/0", b"image 3/1"]


def test_done_units_are_skipped(tmp_path: Path) -> None:
    shard_run(tmp_path, 0, 1)
    before = {s.relpath: s.tar_path(tmp_path).read_bytes() for s in SPECS}
    SPECS[1].stats_path(tmp_path).unlink()  # one shard not finished: only it is redone
    seen: list[str] = []

    def work(spec, sink, advance) -> None:
        seen.append(spec.relpath)
        write_two(spec, sink, advance)

    again = shard_run(tmp_path, 0, 1, work=work)
    assert (again.owned, again.skipped, again.done, seen) == (5, 4, 1, [SPECS[1].relpath])
    assert {s.relpath: s.tar_path(tmp_path).read_bytes() for s in SPECS} == before  # same samples, same bytes
    assert own_units(SPECS, 1, 2, lambda s: s.index == 1).todo == [SPECS[3]]


def test_a_failing_unit_aborts_its_sink_and_the_error_propagates(tmp_path: Path) -> None:
    def work(spec, sink, advance) -> None:
        write_two(spec, sink, advance)
        if spec.index == 2:
            raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError, match="decoder crashed"):
        shard_run(tmp_path, 0, 1, work=work)
    assert [is_done(tmp_path, s) for s in SPECS] == [True, True, False, False, False]  # stopped at the failing one
    assert not SPECS[2].tar_path(tmp_path).exists() and not SPECS[2].stats_path(tmp_path).exists()
    assert not list(tmp_path.rglob(".*.tmp-*"))  # its temp tar is gone too


def test_stale_temps_of_this_rank_are_removed_and_another_ranks_kept(tmp_path: Path) -> None:
    def stale(spec: ShardSpec) -> Path:
        path = spec.tar_path(tmp_path).parent / f".{spec.name}.tar.tmp-otherhost_4242_0badf00d"  # a killed writer's
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a shard")
        return path

    mine, theirs = stale(SPECS[0]), stale(SPECS[1])  # rank 0 of 2 owns shards 0, 2, 4
    stats_tmp = tmp_path_for(SPECS[4].stats_path(tmp_path))
    stats_tmp.parent.mkdir(parents=True)
    stats_tmp.write_text("{")
    result = shard_run(tmp_path, 0, 2)
    assert result.done == 3 and not mine.exists() and not stats_tmp.exists()
    assert theirs.read_bytes() == b"half a shard"  # rank 1 may be writing it right now
    assert remove_own_tmp([SPECS[1]], lambda s: [s.tar_path(tmp_path)]) == 1 and not theirs.exists()


def test_a_world_of_one_cleans_the_whole_folder(tmp_path: Path) -> None:
    loose = tmp_path / "_curation" / ".decided.jsonl.tmp-host_1_00000000"
    loose.parent.mkdir(parents=True)
    loose.write_text("x")
    folder = make_tmp_dir(tmp_path / "export")
    (folder / "inner").mkdir()
    (folder / "inner" / ".model.safetensors.tmp-host_1_11111111").write_bytes(b"w")
    shard_run(tmp_path, 1, 2, folder=tmp_path)
    assert loose.exists() and folder.exists()  # two ranks: the other may be writing them
    shard_run(tmp_path, 0, 1, folder=tmp_path)
    assert not loose.exists() and not folder.exists()
    assert remove_stale_tmp(tmp_path) == 0


def test_publish_dir_renames_a_complete_folder(tmp_path: Path) -> None:
    final = tmp_path / "out" / "detector"
    tmp = make_tmp_dir(final)
    assert tmp.parent == final.parent and tmp.name.startswith(".detector.tmp-") and tmp.name.count("-") == 1
    other = make_tmp_dir(final)
    assert other != tmp and other.name.startswith(".detector.tmp-")  # another process never shares one
    other.rmdir()
    (tmp / "eval").mkdir()
    (tmp / "config.json").write_text('{"a": 1}')
    (tmp / "eval" / "test.json").write_text("[]")
    assert publish_dir(tmp, final) is True
    assert sorted(p.relative_to(final).as_posix() for p in final.rglob("*")) == ["config.json", "eval", "eval/test.json"]
    assert json.loads((final / "config.json").read_text()) == {"a": 1} and not tmp.exists()

    second = make_tmp_dir(final)
    (second / "config.json").write_text('{"a": 2}')
    with pytest.raises(FileExistsError, match="detector exists"):
        publish_dir(second, final)
    assert publish_dir(second, final, existing="keep") is False and not second.exists()
    assert json.loads((final / "config.json").read_text()) == {"a": 1}
    third = make_tmp_dir(final)
    (third / "model.safetensors").write_bytes(b"w")
    assert publish_dir(third, final, existing="replace") is True
    assert sorted(p.name for p in final.iterdir()) == ["model.safetensors"]
    assert [p.name for p in final.parent.iterdir()] == ["detector"]  # no temp or old copy left beside it


def test_wait_for_files_returns_once_a_thread_writes_them(tmp_path: Path) -> None:
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    paths[0].write_text("{}")

    def late() -> None:
        time.sleep(0.05)
        paths[1].write_text("{}")

    writer = threading.Thread(target=late)
    writer.start()
    wait_for_files(paths, "the score files of all ranks", timeout=30, poll=0.01)
    writer.join()
    assert all(p.exists() for p in paths)


def test_wait_for_files_times_out_naming_the_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(TimeoutError, match=r"waited 0s for the curated shards of all ranks: 1 missing, e\.g\. .*b\.json$"):
        wait_for_files([tmp_path / "a.json", tmp_path / "b.json"], "the curated shards of all ranks", timeout=0.02, poll=0.005)


def test_wait_until_returns_the_value_and_lets_errors_through(tmp_path: Path) -> None:
    path = tmp_path / "decided.json"
    threading.Timer(0.05, lambda: path.write_text('{"n": 3}')).start()
    assert wait_until(lambda: json.loads(path.read_text()) if path.exists() else None, "the decisions", 30, 0.01) == {"n": 3}

    def broken() -> None:
        raise ValueError("rank 0 could not decide")

    with pytest.raises(ValueError, match="could not decide"):
        wait_until(broken, "the decisions", 30, 0.01)
    with pytest.raises(TimeoutError, match=r"^waited 0s for the decisions: 2 ranks silent$"):
        wait_until(lambda: None, "the decisions", 0.01, 0.005, missing=lambda: "2 ranks silent")
