"""The command line as a user meets it: every stage listed, answers without heavy imports, clean errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from dataigm.resources import resource_dir

COMMANDS = ["demo", "prompts", "build", "verify", "import-images", "curate", "review", "export-dataset", "push", "pull",
            "train", "detector-eval", "export-detector", "judge", "eval"]


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


@pytest.mark.slow  # the whole demo, in a subprocess
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
    # the evaluation report of the tiny model's test images: every judged image in report.html
    tiny = json.loads((tmp_path / "demo" / "eval" / "report.json").read_text())["methods"]["tiny"]
    html = (tmp_path / "demo" / "eval" / "report.html").read_text()
    assert tiny["n_forget"] > 0 and tiny["n_retain"] > 0 and html.count('<img src="media/t') == tiny["n_forget"] + tiny["n_retain"]
    assert f"evaluation report: {tmp_path / 'demo' / 'eval' / 'report.html'}" in " ".join(out.stdout.split())


def one_line_error(out: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (asserting there is exactly one and no traceback)."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr[-2000:]
    return lines[0]


def test_invalid_configs_and_yaml_are_one_line_naming_file_fields_values(tmp_path):
    recipe = (resource_dir("builders") / "church.yaml").read_text()
    bad_recipe = tmp_path / "recipe.yaml"
    bad_recipe.write_text(recipe.replace("steps: 30", "steps: 0").replace("width: 512", "width: wide"))
    assert one_line_error(run("build", str(bad_recipe), "--out", str(tmp_path / "o"))) == (
        f"dataigm build: error: {bad_recipe}: invalid recipe: field 'generation.steps': Input should be greater than or equal to 1 "
        "(got 0); field 'generation.width': Input should be a valid integer, unable to parse string as an integer (got 'wide')")
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("name: x\nclasses: [a\n  b: c\n")
    assert one_line_error(run("build", str(syntax), "--out", str(tmp_path / "o"))) == (
        f"dataigm build: error: {syntax}: not valid YAML: expected ',' or ']', but got ':' at line 3, column 4 (while parsing a flow sequence)")
    detector = tmp_path / "detector.yaml"
    detector.write_text((resource_dir("detectors") / "tiny.yaml").read_text().replace("balance: loss", "balance: lots"))
    assert one_line_error(run("train", str(detector), "--data", str(tmp_path))) == (
        f"dataigm train: error: {detector}: invalid detector recipe: field 'balance': Input should be 'none', 'loss' or 'sample' (got 'lots')")
    curation = tmp_path / "curation.yaml"
    curation.write_text((resource_dir("builders") / "curation" / "default.yaml").read_text().replace("blank: {action: drop", "blank: {action: burn"))
    assert one_line_error(run("curate", str(tmp_path), "--config", str(curation))) == (
        f"dataigm curate: error: {curation}: invalid curation config: default.filters.blank: field 'action': "
        "Input should be 'keep', 'review' or 'drop' (got 'burn')")
    suite = tmp_path / "suite.yaml"
    suite.write_text((resource_dir("builders") / "suites" / "igmu-church.yaml").read_text()
                     .replace("prompts: 600", "prompts: lots").replace("taxonomy: object", "taxonomi: object"))
    assert one_line_error(run("suites", str(suite))) == (
        f"dataigm suites: error: {suite}: invalid suite: field 'files.forgot.prompts': Input should be a valid integer, unable to parse "
        "string as an integer (got 'lots'); field 'taxonomy': Field required; field 'taxonomi': unknown field (did you mean 'taxonomy'?)")
    assert run("-v", "suites", str(suite)).stderr.startswith("Traceback")  # -v shows the traceback


def test_build_checks_every_model_source_before_writing(tmp_path):
    recipe = str(resource_dir("builders") / "church.yaml")
    out = tmp_path / "out"
    cases = {("--model", "/no/such/dir"): "--model '/no/such/dir': no such file or folder, and not a Hub id (ORG/NAME[:SUBFOLDER])",
             ("--model", "tiny", "--unet", "esd.safetensors"): "--unet 'esd.safetensors': no such file or folder, and not a Hub id (ORG/NAME[:SUBFOLDER])",
             ("--model", "tiny", "--component", "vae=./vae"): "component vae='./vae': no such file or folder, and not a Hub id (ORG/NAME[:SUBFOLDER])",
             ("--model", "tiny", "--text-encoder", "org/advunlearn:text_encoder"):
                 "--text-encoder 'org/advunlearn:text_encoder': not in the Hub cache, and HF_HUB_OFFLINE is set",
             ("--model", "tiny", "--device", "cuda:7"): "device 'cuda:7': no CUDA GPU is visible on this machine; use auto or cpu"}
    for flags, message in cases.items():
        out_ = subprocess.run([sys.executable, "-m", "dataigm", "build", recipe, "--out", str(out), "--limit", "1", *flags],
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert one_line_error(out_) == f"dataigm build: error: {message}"
        assert not out.exists()  # nothing written


def _snapshot(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_curate_into_a_build_folder_is_refused_before_writing(shapes_dataset, tmp_path):
    import shutil

    other = tmp_path / "other-build"
    shutil.copytree(shapes_dataset, other)
    before = _snapshot(other)
    line = one_line_error(run("curate", str(shapes_dataset), "--out", str(other), "--no-progress"))
    assert line == (f"dataigm curate: error: --out {other} already holds _parts, _stats, manifest.json ... but no curation run; "
                    "curated shards go to a new or empty folder")
    assert _snapshot(other) == before


def test_build_and_import_refuse_an_exported_folder_and_compare_reads_it(shapes_dataset, tmp_path):
    from dataigm.hub.export import export_dataset

    hub = tmp_path / "hub"
    export_dataset(shapes_dataset, hub)
    before = _snapshot(hub)
    refusal = (f"--out {hub} is an exported dataset folder (data/<category>/<split>); {{}} writes into a build folder: "
               "give another --out DIR, then export it again")
    line = one_line_error(run("build", str(resource_dir("builders") / "church.yaml"), "--model", "tiny", "--out", str(hub), "--limit", "1"))
    assert line == "dataigm build: error: " + refusal.format("build")
    (tmp_path / "photos" / "church").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 20, 20)).save(tmp_path / "photos" / "church" / "a.png")
    line = one_line_error(run("import-images", str(tmp_path / "photos"), "--category", "object", "--out", str(hub)))
    assert line == "dataigm import-images: error: " + refusal.format("import-images")
    assert _snapshot(hub) == before
    out = run("compare", str(shapes_dataset), str(hub), "--json")
    import json

    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["identical"] == report["n_b"] == 180 and report["ok"]


def test_usage_and_trainer_errors_are_one_line(shapes_dataset, tmp_path):
    line = one_line_error(run("build", "x.yaml", "--out", str(tmp_path), "--dtype", "float8"))
    assert line == ("dataigm build: error: argument --dtype: invalid choice: 'float8' (choose from 'auto', 'float32', 'float16', 'bfloat16') (did you mean 'float32'?) "
                    "(see 'dataigm build --help')")
    line = one_line_error(run("train", str(resource_dir("detectors") / "tiny.yaml"), "--data", str(shapes_dataset),
                              "--devices", "banana", "--out", str(tmp_path / "run")))
    assert line.startswith("dataigm train: error: trainer settings (") and "--devices 'banana'" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_devices_a_machine_lacks_are_refused_in_one_line(shapes_dataset, tmp_path):
    line = one_line_error(run("judge", str(shapes_dataset), "--judge", "nudenet", "--device", "banana"))
    assert line == "dataigm judge: error: device 'banana': not a device; use auto, cpu, cuda, cuda:N or mps"
    import torch

    if not torch.cuda.is_available():
        line = one_line_error(run("judge", str(shapes_dataset), "--judge", "nudenet", "--device", "cuda:3"))
        assert line == "dataigm judge: error: device 'cuda:3': no CUDA GPU is visible on this machine; use auto or cpu"
    line = one_line_error(run("train", str(resource_dir("detectors") / "tiny.yaml"), "--data", str(shapes_dataset),
                              "--accelerator", "tpu", "--out", str(tmp_path / "run")))
    assert line.startswith("dataigm train: error: trainer settings (--accelerator 'tpu'") and "refused by Lightning" in line


# --- one error family: user errors in one line, bugs as internal errors that keep their traceback ---------------
def test_user_error_types_are_one_family():
    from dataigm.core.errors import DataigmError, InputError, UnknownNameError
    from dataigm.core.images import ImageDecodeError
    from dataigm.core.registry import Registry
    from dataigm.core.settings import SettingsError
    from dataigm.ingest.prompt_formats import PromptFormatError

    for cls in (SettingsError, PromptFormatError, ImageDecodeError, UnknownNameError, InputError):
        assert issubclass(cls, DataigmError)
    assert issubclass(UnknownNameError, KeyError) and issubclass(InputError, ValueError)  # callers that catch those still do
    with pytest.raises(UnknownNameError) as e:
        Registry("judge").get("nope")
    assert str(e.value) == "unknown judge 'nope'; valid: "  # no quotes around the message, as KeyError would add


def test_a_bug_is_an_internal_error_and_keeps_its_traceback(monkeypatch, capsys, tmp_path):
    from dataigm.cli import main
    import dataigm.commands.verify as verify_command

    def buggy(args):
        return {}["counts"]

    monkeypatch.setattr(verify_command, "run", buggy)
    assert main(["verify", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and 'return {}["counts"]' in err
    assert err.endswith("dataigm verify: internal error (a bug in dataigm, not in your input): KeyError: 'counts'\n")
    with pytest.raises(KeyError, match="counts"):
        main(["-v", "verify", str(tmp_path)])


def test_user_errors_from_registries_and_values_stay_one_line(tmp_path):
    from dataigm.synthetic import draw_pattern

    (tmp_path / "imgs").mkdir()
    draw_pattern("disc", 0).save(tmp_path / "imgs" / "0_0.png")
    for spec, message in (("foo:bar", "unknown judge kind 'foo'; valid: "), ("nudenet:nope", "unknown NudeNet preset 'nope'; valid: "),
                          ("imagenet:zebra_x", "unknown ImageNet concept 'zebra_x'; valid: ")):
        out = run("judge", str(tmp_path / "imgs"), "--judge", spec)
        assert out.returncode == 2 and out.stderr.startswith(f"dataigm judge: error: {message}") and len(out.stderr.splitlines()) == 1


def test_a_corrupt_manifest_is_a_user_error_not_an_internal_one(tmp_path, capsys):
    from dataigm.cli import main

    (tmp_path / "manifest.json").write_text('{"shards": [')
    assert main(["verify", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"dataigm verify: error: {tmp_path / 'manifest.json'}: the manifest is not valid JSON (Expecting value at line 1, column 13)\n"
