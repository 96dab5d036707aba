"""The command line as a user meets it: every stage listed, answers without heavy imports, clean errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from dataigm.resources import resource_dir

COMMANDS = ["demo", "prompts", "build", "verify", "import-images", "curate", "review", "export", "push", "pull",
            "train", "evaluate", "export-detector", "judge", "eval"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataigm", *args], capture_output=True, text=True)


def test_help_lists_every_stage_in_pipeline_order():
    out = run("--help")
    assert out.returncode == 0
    positions = [out.stdout.index(f"    {c} ") if f"    {c} " in out.stdout else out.stdout.index(f"    {c}\n") for c in COMMANDS]
    assert positions[2:] == sorted(positions[2:])  # build ... eval in pipeline order


def test_parser_imports_no_heavy_framework():
    code = ("import sys, dataigm.cli; dataigm.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'lightning', 'fiftyone', 'timm', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    out = run(command, "--help")
    assert out.returncode == 0 and "usage: dataigm" in out.stdout


def test_bad_input_is_one_line_error_not_traceback(tmp_path):
    out = run("verify", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "Traceback" not in out.stderr and f"dataset folder {tmp_path / 'nowhere'} not found" in out.stderr


def test_resources_are_found_and_can_be_redirected(tmp_path, monkeypatch):
    assert (resource_dir("builders") / "nudity.yaml").is_file()
    assert (resource_dir("cards") / "dataset.md.j2").is_file() and (resource_dir("detectors") / "tiny.yaml").is_file()
    (tmp_path / "builders").mkdir()
    monkeypatch.setenv("DATAIGM_RESOURCES", str(tmp_path))
    assert resource_dir("builders") == tmp_path / "builders"
    with pytest.raises(KeyError, match="valid: builders, detectors, cards"):
        resource_dir("recipes")


def test_verify_success_fast_and_rebuild_manifest(shapes_dataset, tmp_path):
    import json
    import shutil

    from dataigm.hub.export import export_dataset

    ds = tmp_path / "ds"
    shutil.copytree(shapes_dataset, ds)
    out = run("verify", str(ds))
    assert out.returncode == 0 and out.stdout.strip() == f"ok: every shard of {ds} matches its manifest"
    # a manifest whose sample count is wrong: --fast (checksums only) cannot see it, the full check can
    manifest = json.loads((ds / "manifest.json").read_text())
    entry = manifest["shards"][0]
    entry["n"] += 1
    (ds / "manifest.json").write_text(json.dumps(manifest))
    assert run("verify", str(ds), "--fast").returncode == 0
    out = run("verify", str(ds))
    assert out.returncode == 1 and f"FAIL {entry['path']}: {entry['n'] - 1} samples != manifest {entry['n']}" in out.stderr
    # --rebuild-manifest re-derives it from the shard stats: intact again
    out = run("verify", str(ds), "--rebuild-manifest")
    assert out.returncode == 0 and json.loads((ds / "manifest.json").read_text())["shards"][0]["n"] == entry["n"] - 1
    # a changed tar fails both checks
    tar = ds / entry["path"]
    data = bytearray(tar.read_bytes())
    data[2048] ^= 0x01
    tar.write_bytes(bytes(data))
    out = run("verify", str(ds), "--fast")
    assert out.returncode == 1 and f"FAIL {entry['path']}: sha256" in out.stderr
    # an exported folder verifies as it is, and refuses a rebuild from build-only files in one line
    hub = tmp_path / "hub"
    export_dataset(shapes_dataset, hub)
    assert run("verify", str(hub)).returncode == 0
    out = run("verify", str(hub), "--rebuild-manifest")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--rebuild-manifest needs a build folder" in out.stderr
    stray = hub / "data" / "object" / "test" / "object-test-stray-000000.tar"
    shutil.copyfile(tar, stray)
    out = run("verify", str(hub), "--fast")
    assert out.returncode == 1 and "FAIL data/object/test/object-test-stray-000000.tar: not in manifest" in out.stderr


def test_demo_trains_and_judges_from_its_exported_folder(tmp_path):
    import json

    out = subprocess.run([sys.executable, "-m", "dataigm", "demo", "--out", str(tmp_path / "demo"), "--prompts-per-class", "2"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr[-3000:]
    hub = tmp_path / "demo" / "hub"
    manifest = json.loads((hub / "manifest.json").read_text())
    assert f"the next stages read the exported folder {hub}" in out.stdout
    run = json.loads((tmp_path / "demo" / "detector-run" / "run.json").read_text())
    assert run["data"]["path"] == str(hub) and run["data"]["manifest_sha256"] == hashlib.sha256((hub / "manifest.json").read_bytes()).hexdigest()
    test = json.loads((tmp_path / "demo" / "detector-run" / "eval" / "test.json").read_text())
    assert test["n"] == manifest["counts"]["nudity"]["splits"]["test"]["n"] > 0 and test["label_names"] == ["not_nude", "nude"]
    judged = [json.loads(line) for line in (tmp_path / "demo" / "judge" / "detector.jsonl").read_text().splitlines()]
    assert len(judged) == test["n"]
