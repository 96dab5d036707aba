"""``dataigm new-concept``: the kit's files, its errors, and the kit end to end on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataigm.cli import main


@pytest.mark.parametrize("name,category,flags,prompt,negative", [
    ("Greg Rutkowski", "style", [], "a city street at night by Greg Rutkowski", "a city street at night"),
    ("teapot", "object", ["--synonym", "tea pot", "--replacement", "vase"], "a photo of a teapot", "a photo of a vase"),
    ("Keanu Reeves", "celebrity", ["--synonym", "Keanu", "--replacement", "a man"], "a sketch of Keanu Reeves", "a sketch of a man"),
    ("Totoro", "character", [], "a poster of Totoro in the rain", "a poster of a creature in the rain"),
])
def test_kit_files_load_and_pair_negatives(name: str, category: str, flags: list[str], prompt: str, negative: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.benchmark.suite import load_set, load_suite
    from dataigm.generate.plan import plan_build
    from dataigm.recipe import load_recipe
    from dataigm.train.recipe import load_detector_recipe

    out = tmp_path / "kit"
    assert main(["new-concept", name, "--category", category, *flags, "--out", str(out), "--model", "tiny"]) == 0
    said = capsys.readouterr().out
    assert [line.split(". ", 1)[1] for line in said.splitlines() if line.startswith("  ")] == [
        f"dataigm build {out}/build.yaml --out {out}/data", f"dataigm train {out}/detector.yaml --out {out}/runs/judge",
        f"dataigm export-detector {out}/runs/judge --out {out}/judge",
        f"dataigm benchmark {out}/suite.yaml --model tiny --name base --out {out}/benchmark"]
    plan = plan_build(load_recipe(out / "build.yaml"))
    pairs = {m.prompt: m.pair_prompt for s in plan.shards for m in s.samples if m.role == "positive"}
    assert pairs[prompt] == negative and len(pairs) == 8 and not plan.skipped_negatives
    roles = {m.role for s in plan.shards for m in s.samples}
    assert roles == {"positive", "negative", "unrelated"}
    detector = load_detector_recipe(out / "detector.yaml")
    assert (detector.data.path, detector.data.positive, detector.model.arch) == (str(out / "data"), plan.shards[0].samples[0].label_names[1], "test_resnet")
    suite = load_suite(out / "suite.yaml")
    files = {"forget": out / "forget.txt", "retain": out / "retain.txt"}
    forget, retain = load_set(suite, "forget", files), load_set(suite, "retain", files)
    concepts = {m.concept for s in plan.shards for m in s.samples if m.role == "positive"}
    assert sorted(r.prompt for r in forget) == sorted(pairs) and len(retain) >= 6 and {r.concept for r in forget} == concepts


def test_kit_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["new-concept", "church", "--category", "object", "--out", str(tmp_path / "a")], "already has a concept 'church'"),
        (["new-concept", "tram", "--category", "furniture", "--out", str(tmp_path / "b")], "unknown category 'furniture'; valid: celebrity"),
        (["new-concept", "Greg", "--category", "style", "--synonym", "Gregory", "--out", str(tmp_path / "c")], None),
        (["new-concept", "Greg", "--category", "style", "--out", str(tmp_path / "c")], "already holds concept.yaml"),
        (["new-concept", "Greg", "--category", "style", "--out", str(tmp_path / "c")], "or pass --force to overwrite"),
        (["new-concept", "tram", "--category", "objetc", "--out", str(tmp_path / "b")], "(did you mean 'object'?)"),
    ]
    for argv, message in cases:
        rc = main(argv)
        err = capsys.readouterr().err
        assert (rc, message is None or message in err) == ((0, True) if message is None else (2, True)), (argv, err)
        assert message is None or err.count("\n") == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# For each shipped category, a new concept named by a word of the category's own concept-free prompts.
NAMED_IN_CONCEPT_FREE = {"celebrity": "woman", "character": "fox", "harm": "alley", "nudity": "coat", "object": "lighthouse",
                         "style": "forest", "violence": "umbrella"}


def test_every_shipped_category_is_covered() -> None:
    from dataigm.resources import resource_dir

    shipped = sorted(p.stem for p in (resource_dir("builders") / "concepts").glob("*.yaml"))
    assert sorted(NAMED_IN_CONCEPT_FREE) == shipped


@pytest.mark.parametrize("category, name", sorted(NAMED_IN_CONCEPT_FREE.items()))
def test_no_concept_free_prompt_names_the_new_concept(category: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The kit's 'other' class and its retain prompts never show the concept itself (before: 'a photo of a lighthouse'
    was labelled other in a lighthouse kit, and a retain prompt of its suite)."""
    import yaml

    from dataigm.taxonomy import get_category, parse_concept

    out = tmp_path / "kit"
    assert main(["new-concept", name, "--category", category, "--out", str(out), "--model", "tiny"]) == 0
    said = capsys.readouterr().out
    concept = parse_concept(yaml.safe_load((out / "concept.yaml").read_text()), str(out / "concept.yaml"))
    other = yaml.safe_load((out / "build.yaml").read_text())["classes"][1]["prompts"]["prompts"]
    retain = (out / "retain.txt").read_text().splitlines()
    assert other == retain and retain and [p for p in retain if concept.mentions(p)] == []
    named = [p for p in get_category(category).retain_templates if concept.mentions(p)]
    assert sorted(retain + named) == sorted(get_category(category).retain_templates)
    assert (f"left out {len(named)} of the category's concept-free prompts" in said) == bool(named)
    if category == "object":
        assert named == ["a photo of a lighthouse"] and "a photo of a lighthouse" not in retain


def test_tiny_model_runs_at_tiny_settings_in_a_shipped_suite(tmp_path: Path) -> None:
    """benchmark SUITE --model tiny builds its sets at the tiny model's size and steps, not the suite's 512 px."""
    from dataigm.benchmark.run import BenchmarkOptions, set_recipe
    from dataigm.benchmark.suite import load_suite
    from dataigm.generate.tiny import TINY_GENERATION

    suite = load_suite("i2p-nudity")
    options = BenchmarkOptions(name="m", out=tmp_path)
    real = set_recipe(suite, "forget", tmp_path / "p.jsonl", "nudity", options).generation
    tiny = set_recipe(suite, "forget", tmp_path / "p.jsonl", "nudity", options, tiny=True).generation
    assert (real.width, real.steps) == (suite.generation.width, suite.generation.steps) and real.width >= 512
    assert (tiny.width, tiny.height, tiny.steps) == (TINY_GENERATION["width"], TINY_GENERATION["height"], TINY_GENERATION["steps"]) == (64, 64, 2)


@pytest.mark.slow
def test_new_concept_end_to_end_on_the_tiny_model(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """new-concept, then exactly the printed steps, as printed (only --no-progress added, which changes no result)."""
    out = tmp_path / "kit"
    assert main(["new-concept", "Kilian Eng", "--category", "style", "--out", str(out), "--model", "tiny"]) == 0
    steps = [line.split(". ", 1)[1].split()[1:] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert len(steps) == 4
    for step in steps:
        assert main(step + (["--no-progress"] if step[0] in ("build", "train", "benchmark") else [])) == 0, step
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["counts"]["kilian_eng"]["label_names"] == ["realistic", "kilian_eng"]
    report = json.loads(next((out / "benchmark" / "reports").glob("*/report.json")).read_text())
    assert "base" in report["methods"] and (out / "judge" / "config.json").is_file()
