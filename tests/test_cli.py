"""The command line as a user meets it: every stage listed, answers without heavy imports, clean errors."""

from __future__ import annotations

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
    assert out.returncode == 2 and "Traceback" not in out.stderr and "manifest.json not found" in out.stderr


def test_resources_are_found_and_can_be_redirected(tmp_path, monkeypatch):
    assert (resource_dir("builders") / "nudity.yaml").is_file()
    assert (resource_dir("cards") / "dataset.md.j2").is_file() and (resource_dir("detectors") / "tiny.yaml").is_file()
    (tmp_path / "builders").mkdir()
    monkeypatch.setenv("DATAIGM_RESOURCES", str(tmp_path))
    assert resource_dir("builders") == tmp_path / "builders"
    with pytest.raises(KeyError, match="valid: builders, detectors, cards"):
        resource_dir("recipes")
