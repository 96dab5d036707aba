"""One stop for Ctrl-C and preemption (dataigm.core.interrupt): a shard's checkpoint and its resume, byte for byte;
run_units stopping after the sample in flight; a second signal stopping at once; exit codes and handlers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dataigm.core.interrupt import Interrupted, exit_code, stop_at_boundary
from dataigm.core.schema import SampleMeta
from dataigm.core.shards import ShardSink, ShardSpec, checkpoint_paths, is_done, read_checkpoint
from dataigm.core.stage import run_units

SPEC = ShardSpec("object", "train", 0)
SPECS = [ShardSpec("object", "train", i) for i in range(3)]


def meta(spec: ShardSpec, i: int, label: str = "church") -> SampleMeta:
    return SampleMeta(key=f"{spec.name}-{i}", category=spec.category, split=spec.split, label=["church", "other"].index(label),
                      label_name=label, label_names=["church", "other"], source="real" if i % 2 else "sd")


def fill(sink: ShardSink, spec: ShardSpec, start: int, stop: int) -> None:
    for i in range(start, stop):
        if i == 2:
            sink.fail(f"{spec.name}-{i}", "ValueError: bad image")
        else:
            sink.write(meta(spec, i, "other" if i == 3 else "church"), f"image {i}".encode() * 50)


def test_a_checkpointed_shard_resumes_to_the_same_bytes_and_stats(tmp_path: Path) -> None:
    whole = ShardSink(tmp_path / "a", SPEC, 6)
    fill(whole, SPEC, 0, 6)
    expected = whole.close()

    first = ShardSink(tmp_path / "b", SPEC, 6)
    fill(first, SPEC, 0, 4)
    assert first.checkpoint() == 4  # 3 written + 1 failed
    assert not is_done(tmp_path / "b", SPEC) and not SPEC.tar_path(tmp_path / "b").exists()
    assert all(p.exists() and p.name.startswith(".") for p in checkpoint_paths(tmp_path / "b", SPEC))
    resumed = ShardSink(tmp_path / "b", SPEC, 6, resume=True)
    assert (resumed.position, resumed.resumed) == (4, 4)
    fill(resumed, SPEC, resumed.position, 6)
    got = resumed.close()
    assert SPEC.tar_path(tmp_path / "b").read_bytes() == SPEC.tar_path(tmp_path / "a").read_bytes()
    assert (got.ok, got.failed, got.labels, got.sources, got.errors, got.sha256) == \
        (expected.ok, expected.failed, expected.labels, expected.sources, expected.errors, expected.sha256)
    assert (got.ok, got.failed, got.labels) == (5, 1, {"church": 4, "other": 1})
    assert not any(p.exists() for p in checkpoint_paths(tmp_path / "b", SPEC))  # the done shard leaves no checkpoint


def test_a_damaged_or_foreign_checkpoint_is_ignored(tmp_path: Path) -> None:
    sink = ShardSink(tmp_path, SPEC, 6)
    fill(sink, SPEC, 0, 2)
    sink.checkpoint()
    assert read_checkpoint(tmp_path, SPEC, 6)["ok"] == 2
    assert read_checkpoint(tmp_path, SPEC, 7) is None  # another plan of the shard
    tar, _ = checkpoint_paths(tmp_path, SPEC)
    tar.write_bytes(tar.read_bytes()[:-10])  # damaged: its sha256 no longer matches
    fresh = ShardSink(tmp_path, SPEC, 6, resume=True)
    assert fresh.position == 0 and not any(p.exists() for p in checkpoint_paths(tmp_path, SPEC))
    fresh.abort()
    empty = ShardSink(tmp_path, SPEC, 6)
    assert empty.checkpoint() == 0 and not any(p.exists() for p in checkpoint_paths(tmp_path, SPEC))


def write_four(root: Path, signal_at: tuple[int, int] | None = None, signum: int = signal.SIGTERM, times: int = 1):
    def work(spec, sink, advance) -> None:
        for i in range(sink.position, 4):
            sink.write(meta(spec, i), f"{spec.name} {i}".encode())
            if signal_at == (spec.index, i):
                for _ in range(times):
                    os.kill(os.getpid(), signum)
            advance(1)

    return run_units(SPECS, 0, 1, work, open_sink=lambda s: ShardSink(root, s, 4, resume=True), is_done=lambda s: is_done(root, s),
                     outputs=lambda s: (s.tar_path(root), s.stats_path(root)), folder=root)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1])
def test_run_units_stops_after_the_sample_in_flight_and_the_rerun_resumes(tmp_path: Path, signum: int) -> None:
    write_four(tmp_path / "whole")
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as stopped:
        write_four(tmp_path / "cut", signal_at=(1, 1), signum=signum)
    assert signal.getsignal(signum) is before  # handlers given back
    assert stopped.value.signum == signum and stopped.value.exit_code == {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGUSR1: 138}[signum]
    assert str(stopped.value) == (f"interrupted by {signal.Signals(signum).name}: 1 of 3 shards to do finished, 1 checkpointed "
                                  "with 2 samples; run the same command again to resume")
    assert [is_done(tmp_path / "cut", s) for s in SPECS] == [True, False, False]
    assert read_checkpoint(tmp_path / "cut", SPECS[1], 4)["ok"] == 2  # nothing of the sample in flight is lost
    again = write_four(tmp_path / "cut")
    assert (again.skipped, again.done) == (1, 2)
    for s in SPECS:
        assert s.tar_path(tmp_path / "cut").read_bytes() == s.tar_path(tmp_path / "whole").read_bytes()


def test_a_stop_between_units_and_a_second_signal(tmp_path: Path) -> None:
    with pytest.raises(Interrupted, match=r"2 of 3 shards to do finished; run"):  # the last sample of shard 1: it closes
        write_four(tmp_path / "a", signal_at=(1, 3))
    assert [is_done(tmp_path / "a", s) for s in SPECS] == [True, True, False]
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C twice: at once, the unit in flight aborted
        write_four(tmp_path / "b", signal_at=(0, 1), signum=signal.SIGINT, times=2)
    assert not list((tmp_path / "b").rglob("*.tar")) and not list((tmp_path / "b").rglob(".*"))


def test_stop_requests_nest_and_exit_codes() -> None:
    assert [exit_code(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)] == [130, 143, 138]
    with stop_at_boundary() as outer:
        with stop_at_boundary() as inner:
            assert inner is outer and not inner
            os.kill(os.getpid(), signal.SIGUSR1)
        assert outer.signum == signal.SIGUSR1
        with pytest.raises(Interrupted, match="interrupted by SIGUSR1: 3 done; run the same command again to resume"):
            outer.raise_if_set("3 done")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
