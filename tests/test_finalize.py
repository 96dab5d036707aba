"""dataigm.core.manifest.finalize: the manifest is written once every planned shard is done, by one finalizer at a
time, never rewritten when equal; `dataigm finalize` by hand; verify with and without hashes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core import manifest as manifest_module
from dataigm.core.manifest import LOCK, MANIFEST, PartRecord, finalize, missing_shards, verify, write_part
from dataigm.core.schema import SampleMeta
from dataigm.core.shards import ShardSink, ShardSpec

SPECS = [ShardSpec("object", "train", i, "real") for i in range(4)]


def write_shard(root: Path, spec: ShardSpec, n: int = 2) -> None:
    sink = ShardSink(root, spec, n)
    for i in range(n):
        sink.write(SampleMeta(key=f"{spec.name}-{i}", category="object", split="train", label=i % 2, label_name=["church", "other"][i % 2],
                              label_names=["church", "other"]), f"image {spec.index} {i}".encode() * 20)
    sink.close()


@pytest.fixture()
def planned(tmp_path: Path) -> Path:
    write_part(tmp_path, "object", "real", PartRecord(kind="real", category="object", label_names=["church", "other"],
                                                     config_sha256="c", shards=[s.relpath for s in SPECS]))
    for spec in SPECS[:3]:
        write_shard(tmp_path, spec)
    return tmp_path


def test_written_once_every_shard_is_done_and_never_rewritten_equal(planned: Path) -> None:
    result = finalize(planned)
    assert (result.manifest, result.missing, result.written) == (None, [SPECS[3].relpath], False)
    assert missing_shards(planned) == [SPECS[3].relpath] and not (planned / MANIFEST).exists()
    write_shard(planned, SPECS[3])
    result = finalize(planned)
    assert result.written and result.manifest["totals"] == {"samples": 8, "failed": 0, "shards": 4}
    stamp = (planned / MANIFEST).stat()
    again = finalize(planned)
    assert (again.written, again.manifest == result.manifest) == (False, True)
    assert (planned / MANIFEST).stat().st_ino == stamp.st_ino  # not rewritten
    assert not (planned / LOCK).exists() and verify(planned) == [] and verify(planned, deep=False, hashes=False) == []


def test_tasks_finishing_at_once_write_it_once(planned: Path) -> None:
    write_shard(planned, SPECS[3])
    results, start = [], threading.Barrier(6)

    def task() -> None:
        start.wait()
        results.append(finalize(planned, poll=0.01))

    threads = [threading.Thread(target=task) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.written for r in results) == [False] * 5 + [True]
    assert all(r.manifest == results[0].manifest for r in results)


def test_a_held_lock_is_waited_for_and_a_stale_one_broken(planned: Path, monkeypatch) -> None:
    write_shard(planned, SPECS[3])
    (planned / LOCK).write_text("other-host 1\n")
    with pytest.raises(TimeoutError, match=r"held for over 0s by another finalizer; if none is running, delete it"):
        finalize(planned, lock_timeout=0.2, poll=0.05)
    old = time.time() - manifest_module.STALE_LOCK_S - 5
    os.utime(planned / LOCK, (old, old))  # a killed finalizer's
    assert finalize(planned).written and not (planned / LOCK).exists()


def test_verify_without_hashes_checks_sizes(planned: Path) -> None:
    write_shard(planned, SPECS[3])
    finalize(planned)
    tar = SPECS[1].tar_path(planned)
    data = bytearray(tar.read_bytes())
    data[600] ^= 0xFF
    tar.write_bytes(bytes(data))  # same size: only the hash sees it
    assert verify(planned, deep=False, hashes=False) == []
    assert [(p.shard, p.problem[:7]) for p in verify(planned, deep=False)] == [(SPECS[1].relpath, "sha256 ")]
    tar.write_bytes(bytes(data[:-512]))
    assert [str(p) for p in verify(planned, deep=False, hashes=False, workers=2)] == \
        [f"{SPECS[1].relpath}: {len(data) - 512} bytes != manifest {len(data)}"]


def test_verify_command_without_hashes(planned: Path, capsys) -> None:
    write_shard(planned, SPECS[3])
    finalize(planned)
    tar = SPECS[2].tar_path(planned)
    tar.write_bytes(tar.read_bytes()[:-512])
    assert main(["verify", str(planned), "--fast", "--no-hash"]) == 1
    assert f"FAIL {SPECS[2].relpath}: " in capsys.readouterr().err


def test_finalize_command(planned: Path, capsys) -> None:
    assert main(["finalize", str(planned)]) == 1
    assert f"1 planned shard(s) not done yet, e.g. {SPECS[3].relpath}" in capsys.readouterr().err
    write_shard(planned, SPECS[3])
    assert main(["finalize", str(planned)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {planned / MANIFEST} (4 shards, 8 samples)")
    assert main(["finalize", str(planned)]) == 0
    assert "already current:" in capsys.readouterr().out
    assert main(["finalize", str(planned / "nothing")]) == 2
    assert "has no _parts/ folder" in capsys.readouterr().err
