"""The Ray distributor on a local Ray cluster (two CPUs): a build, an import, a curation and a judge run give what one
process gives, a worker killed in the middle of a shard is retried with the dataset verifying, and nothing imports
ray unless asked to."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dataigm.core.manifest import load_manifest, verify
from dataigm.core.shards import iter_samples, list_shards

ROOT = Path(__file__).resolve().parents[1]
BUILDERS = ROOT / "builders"
SMALL = ["generation.width=64", "generation.height=64", "generation.steps=2", "generation.batch_size=4",
         "images_per_prompt=2", "shard_size=3", "models=[tiny]"]


def tar_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in list_shards(root)}


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp-*"))


def small_recipe():
    from dataigm.recipe import load_recipe

    return load_recipe(BUILDERS / "nudity.yaml", SMALL)


# --- no ray unless asked ---------------------------------------------------------------------------------------------
def test_importing_dataigm_and_every_help_imports_no_ray():
    code = ("import sys, dataigm, dataigm.distributors, dataigm.generate.engine, dataigm.ingest.images, dataigm.curate.engine, "
            "dataigm.distributors.judging\n"
            "from dataigm.cli import build_parser\n"
            "parser = build_parser()\n"
            "for command in ('build', 'import-images', 'curate', 'judge'):\n"
            "    try:\n"
            "        parser.parse_args([command, '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('ray' in sys.modules, 'ray.data' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.parametrize("command", [["build", str(BUILDERS / "nudity.yaml"), "--out", "{tmp}/b"],
                                     ["import-images", "{tmp}", "--category", "church", "--out", "{tmp}/i"],
                                     ["curate", "{tmp}", "--out", "{tmp}/c"],
                                     ["judge", "{tmp}", "--judge", "nudenet"]])
def test_ray_without_the_extra_fails_in_one_line_naming_it(command, tmp_path):
    args = [a.format(tmp=tmp_path) for a in command] + ["--distributor", "ray"]
    code = f"import sys; sys.modules['ray'] = None\nfrom dataigm.cli import main\nsys.exit(main({args!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"dataigm {command[0]}: error: --distributor ray needs the ray extra: pip install 'dataigm[ray]'"]


def test_library_names_the_missing_extra_not_a_flag():
    code = ("import sys; sys.modules['ray'] = None\n"
            "from dataigm.core.errors import MissingExtraError\n"
            "from dataigm.distributors import ray_distributor\n"
            "try:\n    ray_distributor()\nexcept MissingExtraError as e:\n    print(e.extra, '|', e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "ray | distributor 'ray' needs the ray extra: pip install 'dataigm[ray]'"


def test_ray_address_alone_and_unknown_distributor_are_refused(tmp_path):
    from dataigm.cli import main
    from dataigm.core.errors import UnknownNameError
    from dataigm.distributors import check_distributor

    with pytest.raises(UnknownNameError, match="valid: local, ray"):
        check_distributor("spark")
    assert main(["judge", str(tmp_path), "--judge", "nudenet", "--ray-address", "auto"]) == 2


# --- on a local Ray cluster --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster of two CPUs for every test below (starting one takes seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_process_build(tmp_path_factory, tiny_model_dir):
    """The reference: the small recipe built by one process under --deterministic."""
    from dataigm.generate.engine import BuildOptions, build

    out = tmp_path_factory.mktemp("one-process") / "ds"
    build(small_recipe(), out, BuildOptions(device="cpu", limit=1, progress=False, deterministic=True))
    return out


def _kill_first_worker_mid_shard(out: Path, stop: threading.Event, killed: list[int]) -> None:
    """Kill (SIGKILL) the first process other than this one seen writing a shard's temp file below ``out``."""
    me = os.getpid()
    while not stop.is_set() and not killed:
        for tmp in out.rglob(".*.tar.tmp-*"):
            pid = int(re.search(r"_(\d+)_[0-9a-f]{8}$", tmp.name).group(1))
            if pid != me:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.002)


@pytest.mark.slow
def test_build_on_ray_gives_the_bytes_of_one_process_with_a_worker_killed_mid_shard(ray_cluster, one_process_build, tmp_path):
    from dataigm.generate.engine import BuildOptions, build

    options = BuildOptions(device="cpu", limit=1, progress=False, deterministic=True)
    out = tmp_path / "ds"
    out.mkdir()
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_worker_mid_shard, args=(out, stop, killed), daemon=True)
    killer.start()
    try:
        result = build(small_recipe(), out, options, distributor="ray")
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was caught writing a shard"
    expected = tar_bytes(one_process_build)
    assert len(expected) >= 2 and tar_bytes(out) == expected  # every shard once, none half-written, same bytes
    assert result.written_shards == len(expected) and result.samples_failed == 0
    manifest = load_manifest(out)
    assert manifest["totals"] == load_manifest(one_process_build)["totals"] and manifest["incomplete"] == []
    assert manifest["settings"]["agreed"] and manifest["settings"]["values"]["deterministic"] is True
    assert verify(out) == [] and temp_files(out) == []
    again = build(small_recipe(), out, options, distributor="ray")  # resumes: nothing left to do
    assert again.written_shards == 0 and again.skipped_shards == len(expected)


@pytest.mark.slow
def test_import_on_ray_gives_the_bytes_of_one_process(ray_cluster, tmp_path):
    from PIL import Image

    from dataigm.ingest.images import import_images

    folder = tmp_path / "photos"
    for name, colour in (("church", (200, 30, 30)), ("other", (30, 30, 200))):
        (folder / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (24 + i, 20), tuple((c + 17 * i) % 256 for c in colour)).save(folder / name / f"{i}.png")
    (folder / "other" / "broken.png").write_bytes(b"not an image")
    local = import_images(folder, tmp_path / "local", "church", shard_size=3, progress=False)
    on_ray = import_images(folder, tmp_path / "ray", "church", shard_size=3, progress=False, distributor="ray")
    assert tar_bytes(tmp_path / "ray") == tar_bytes(tmp_path / "local") and len(tar_bytes(tmp_path / "local")) >= 3
    assert (on_ray.ok, on_ray.failed, dict(on_ray.failures)) == (local.ok, local.failed, dict(local.failures)) == (10, 1, dict(local.failures))
    assert on_ray.shards_written == local.shards_written and verify(tmp_path / "ray") == []


@pytest.mark.slow
def test_curation_on_ray_keeps_the_keys_of_one_process(ray_cluster, shapes_dataset, tmp_path):
    from dataigm.curate import curate

    dataset = tmp_path / "in"
    shutil.copytree(shapes_dataset, dataset)
    local = curate(dataset, tmp_path / "local", progress=False)
    on_ray = curate(dataset, tmp_path / "ray", progress=False, distributor="ray")
    verdicts = {k: d.verdict for k, d in local.decisions.items()}
    assert {k: d.verdict for k, d in on_ray.decisions.items()} == verdicts and len(verdicts) == 180
    kept = {s.key for s in iter_samples(list_shards(tmp_path / "ray"))}
    assert kept == {k for k, v in verdicts.items() if v != "drop"}
    assert tar_bytes(tmp_path / "ray") == tar_bytes(tmp_path / "local")
    decisions = (tmp_path / "ray" / "_curation" / "decisions.jsonl").read_text()
    assert decisions == (tmp_path / "local" / "_curation" / "decisions.jsonl").read_text()
    assert verify(tmp_path / "ray") == [] and temp_files(tmp_path / "ray") == []


@pytest.mark.slow
def test_judge_on_ray_gives_the_verdicts_of_one_process(ray_cluster, shapes_dataset, church_detector, tmp_path, capsys):
    from dataigm.cli import main
    from dataigm.distributors.judging import judge

    first = sorted(p.positive_score for p in judge(shapes_dataset, str(church_detector), device="cpu", progress=False, workers=0).predictions)
    gap = max(range(45, 135), key=lambda i: first[i + 1] - first[i])  # a threshold far from any score, about the median
    threshold = (first[gap] + first[gap + 1]) / 2
    local = judge(shapes_dataset, str(church_detector), device="cpu", progress=False, workers=0, threshold=threshold)
    assert len(local.predictions) == 180 and len(list_shards(shapes_dataset)) >= 2
    assert 0 < local.summary["n_positive"] < 180  # both verdicts occur
    # the command a user runs
    capsys.readouterr()
    assert main(["judge", str(shapes_dataset), "--judge", str(church_detector), "--device", "cpu", "--threshold", repr(threshold),
                 "--distributor", "ray", "--out", str(tmp_path / "p.jsonl"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [(x["file"], x["predicted"], x["positive"]) for x in lines] == [(p.file, p.predicted, p.positive) for p in local.predictions]
    # scores to float32 rounding: an actor reserves one CPU and runs torch on one thread, this process on several
    assert [x["positive_score"] for x in lines] == pytest.approx([p.positive_score for p in local.predictions], abs=1e-6)
    for key in ("n_images", "n_positive", "per_class", "threshold", "target", "n_failed"):
        assert summary[key] == local.summary[key]


def test_map_units_keeps_unit_order_and_a_workers_bad_input_stops_the_run_in_one_line(ray_cluster):
    import copy
    from functools import partial

    from dataigm.core.errors import DataigmError
    from dataigm.distributors import check_distributor
    from dataigm.distributors.ray import map_units

    check = partial(copy.copy, check_distributor)  # make_worker() -> check_distributor, built in each actor
    assert map_units(["ray", "local", "ray"], check) == ["ray", "local", "ray"]
    with pytest.raises(DataigmError) as raised:
        map_units(["local", "spark", "ray"], check)
    assert str(raised.value) == "distributor 'spark' unknown; valid: local, ray"
