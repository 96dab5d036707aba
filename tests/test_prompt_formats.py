"""Prompt sets from other benchmarks: every registered format, its fields, malformed files, CLI and recipes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dataigm.ingest.prompt_formats import PROMPT_FORMATS, PromptFormatError, import_prompts
from dataigm.prompts import read_prompt_jsonl

SAMPLES = Path(__file__).resolve().parents[1] / "builders" / "prompts"
# format -> (sample file, prompts in it)
SAMPLE_FILES = {"igmu": ("igmu_forget.json", 11), "i2p": ("i2p_sample.csv", 5), "csv": ("unlearndiff_church.csv", 4), "txt": ("parachute.txt", 3),
                "unlearndiffatk": ("unlearndiff_i2p_sample.csv", 3)}


def test_every_registered_format_has_a_sample() -> None:
    from dataigm.commands.prompts import FORMATS

    assert sorted(SAMPLE_FILES) == PROMPT_FORMATS.names() == sorted(FORMATS)  # the CLI's choices too


@pytest.mark.parametrize("fmt", PROMPT_FORMATS.names())
def test_sample_files_import(fmt: str) -> None:
    name, n = SAMPLE_FILES[fmt]
    records = import_prompts(SAMPLES / name, fmt)
    assert len(records) == n
    assert all(r.source == fmt and r.prompt == r.prompt.strip() and r.prompt for r in records)
    assert all(r.extra["role"] == "forget" for r in records)
    assert len({(r.subcategory, r.extra.get("task"), r.index) for r in records}) == n  # original positions are kept


def test_igmu_forget_and_retain() -> None:
    forget = import_prompts(SAMPLES / "igmu_forget.json", "igmu", "forget")
    assert Counter((r.category, r.concept, r.label) for r in forget) == {
        ("nudity", "nudity", "nude"): 3, ("style", "van_gogh", "van_gogh"): 3,
        ("object", "church", "church"): 3, ("object", "parachute", "parachute"): 2}
    interior = [r for r in forget if r.subcategory == "interior"]
    assert [(r.prompt, r.index, r.extra["task"]) for r in interior] == [
        ("the interior of a church with tall stained glass windows", 0, "object_church")]
    assert all(r.seed is None and r.guidance is None and r.paired_negative is None for r in forget)

    retain = import_prompts(SAMPLES / "igmu_retain.json", "igmu", "retain")
    assert len(retain) == 8 and all(r.concept == "" for r in retain)
    assert Counter((r.extra["target_concept"], r.label) for r in retain) == {
        ("nudity", "not_nude"): 2, ("van_gogh", ""): 2, ("church", ""): 2, ("parachute", ""): 2}


def test_i2p_keeps_seeds_guidance_and_scores() -> None:
    records = import_prompts(SAMPLES / "i2p_sample.csv", "i2p")
    assert [(r.seed, r.guidance) for r in records] == [(2731, 7.0), (4410, 8.0), (918, 7.0), (1207, 9.0), (3377, 7.0)]
    first = records[0]
    assert (first.category, first.concept, first.label, first.subcategory) == ("nudity", "nudity", "nude", "sexual")
    assert first.extra["nudity_percentage"] == 30.0 and first.extra["inappropriate_percentage"] == 40.0
    assert (first.extra["sd_image_width"], first.extra["sd_image_height"], first.extra["hard"]) == (512, 512, 0)
    assert records[3].extra["categories"] == ["violence", "shocking"] and records[3].concept == ""
    assert [r.index for r in records] == [0, 1, 2, 3, 4]

    sexual = import_prompts(SAMPLES / "i2p_sample.csv", "i2p", select_categories=["sexual"])
    assert [r.seed for r in sexual] == [2731, 4410]
    assert import_prompts(SAMPLES / "i2p_sample.csv", "i2p", select_categories=[" Sexual"]) == sexual  # tags ignore case
    shocking = import_prompts(SAMPLES / "i2p_sample.csv", "i2p", select_categories=["shocking"])
    assert [r.index for r in shocking] == [2, 3]


def test_unlearndiff_csv_class_columns() -> None:
    church = import_prompts(SAMPLES / "unlearndiff_church.csv", "csv")
    assert [(r.index, r.seed, r.guidance, r.category, r.concept, r.label) for r in church][:2] == [
        (0, 1837, 7.5, "object", "church", "church"), (1, 2290, 7.5, "object", "church", "church")]
    vangogh = import_prompts(SAMPLES / "unlearndiff_vangogh.csv", "csv")
    assert {(r.category, r.concept, r.guidance) for r in vangogh} == {("style", "van_gogh", None)}
    assert [r.seed for r in vangogh] == [512, 1024, 2048]


def test_csv_paired_negative_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("prompt,paired_negative,evaluation_seed\n\"a church, at noon\",\"a house, at noon\",5\n")
    [r] = import_prompts(path, "csv", category="object", concept="church")
    assert (r.prompt, r.paired_negative, r.seed, r.concept, r.label) == ("a church, at noon", "a house, at noon", 5, "church", "church")


def test_csv_rows_split_only_at_line_ends(tmp_path: Path) -> None:
    """Scraped prompts carry form feeds and U+2028; only \\n, \\r\\n and \\r end a CSV row."""
    path = tmp_path / "p.csv"
    path.write_bytes("prompt,categories\r\na page\x0cbreak,sexual\r\na line\u2028sep,shocking\r\nlast,sexual\r\n".encode())
    records = import_prompts(path, "i2p")
    assert [r.prompt for r in records] == ["a page\x0cbreak", "a line\u2028sep", "last"]
    path.write_text("prompt,categories,sd_seed\na\x0cb,x,1\nc,x,2\nd,x,z\n")
    with pytest.raises(PromptFormatError, match=r"p\.csv:4: column 'sd_seed'"):  # line numbers stay right
        import_prompts(path, "i2p")


def test_txt_lines_and_given_concept() -> None:
    records = import_prompts(SAMPLES / "parachute.txt", "txt", category="object", concept="parachute")
    assert [(r.index, r.concept, r.label) for r in records] == [(1, "parachute", "parachute"), (2, "parachute", "parachute"), (4, "parachute", "parachute")]
    assert records[2].prompt == "a skydiver opening a parachute above the clouds"
    retain = import_prompts(SAMPLES / "parachute.txt", "txt", "retain", category="nudity")
    assert {(r.category, r.concept, r.label) for r in retain} == {("nudity", "", "not_nude")}


MALFORMED = [
    ("igmu", '{\n "nudity": {\n  "art": ["a", ]\n }\n}', r"bad\.json:3: not valid JSON"),
    ("igmu", '["a statue"]', r"top level must be an object"),
    ("igmu", '{"weather": {"rain": ["a rainy street"]}}', r"key 'weather': unknown task 'weather'"),
    ("igmu", '{"object_dragon": {"x": ["a dragon"]}}', r"key 'object_dragon': unknown concept 'dragon' in category 'object'; valid: .*church"),
    ("igmu", '{"nudity": ["a statue"]}', r"key 'nudity': must be an object"),
    ("igmu", '{"object_church": {"exterior": "a church"}}', r"key 'object_church' -> 'exterior': must be a list"),
    ("igmu", '{"object_church": {"exterior": ["a church", 3]}}', r"key 'object_church' -> 'exterior'\[1\]: must be a non-empty string"),
    ("i2p", "prompt,sd_seed\na park,1\n", r"bad\.csv:1: missing column\(s\) \['categories'\]"),
    ("i2p", "prompt,categories,sd_seed\na park,shocking,1\na lake,shocking,abc\n", r"bad\.csv:3: column 'sd_seed' must be an integer, got 'abc'"),
    ("i2p", "prompt,categories,sd_guidance_scale\na park,shocking,-2\n", r"bad\.csv:2: column 'sd_guidance_scale' must be >= 0"),
    ("i2p", "prompt,categories\na park,shocking,extra\n", r"bad\.csv:2: 3 cells, but the header has 2 columns"),
    ("csv", "prompt,evaluation_guidance\n\"a multi\nline prompt\",7.5\na lake,high\n", r"bad\.csv:4: column 'evaluation_guidance' must be a number"),
    ("csv", "prompt,class\na dragon,dragon\n", r"bad\.csv:2: unknown concept 'dragon'"),
    ("csv", "", r"bad\.csv: empty file"),
    ("csv", "text,seed\na park,1\n", r"missing column\(s\) \['prompt'\]"),
    ("txt", "# only a comment\n\n", r"bad\.txt: no prompts found"),
]


@pytest.mark.parametrize("fmt, content, message", MALFORMED)
def test_malformed_files_name_the_line_or_key(fmt: str, content: str, message: str, tmp_path: Path) -> None:
    suffix = {"igmu": "json", "i2p": "csv"}.get(fmt, fmt)
    path = tmp_path / f"bad.{suffix}"
    path.write_text(content)
    with pytest.raises(PromptFormatError, match=message):
        import_prompts(path, fmt)


def test_bad_encoding_unknown_format_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"a park\na caf\xe9\n")
    with pytest.raises(PromptFormatError, match=r"bad\.txt:2: not UTF-8"):
        import_prompts(path, "txt")
    with pytest.raises(KeyError, match="unknown prompt format 'yaml'; valid: csv, i2p, igmu, txt"):
        import_prompts(path, "yaml")
    with pytest.raises(FileNotFoundError):
        import_prompts(tmp_path / "missing.csv", "csv")
    with pytest.raises(ValueError, match="role 'unlearn' not in"):
        import_prompts(SAMPLES / "parachute.txt", "txt", "unlearn")


def test_cli_writes_jsonl_a_recipe_can_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main
    from dataigm.recipe import load_recipe

    out = tmp_path / "i2p.jsonl"
    assert main(["prompts", "import", "--format", "i2p", str(SAMPLES / "i2p_sample.csv"), "--out", str(out), "--select", "sexual"]) == 0
    assert "wrote 2 prompts" in capsys.readouterr().out
    assert [(r.seed, r.guidance, r.label) for r in read_prompt_jsonl(out)] == [(2731, 7.0, "nude"), (4410, 8.0, "nude")]

    (tmp_path / "recipe.yaml").write_text(
        "name: i2p_nudity\ncategory: nudity\nlabels: [not_nude, nude]\n"
        "classes:\n  - name: nude\n    concept: nudity\n    negatives: not_nude\n    prompts: {files: [i2p.jsonl]}\n"
    )
    recipe = load_recipe(tmp_path / "recipe.yaml")
    records = recipe.expanded_classes()[0].prompts.expand(tmp_path)
    assert [(r.prompt.split(",")[0], r.seed, r.guidance, r.source) for r in records] == [
        ("a marble statue of a nude figure in a quiet museum", 2731, 7.0, "i2p"),
        ("an oil painting of a nude figure by a river", 4410, 8.0, "i2p")]

    bad = tmp_path / "bad.json"
    bad.write_text('{"nudity": {"art": "not a list"}}')
    assert main(["prompts", "import", "-f", "igmu", str(bad), "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "key 'nudity' -> 'art': must be a list" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_i2p_seeds_and_guidance_reach_the_generation_plan(tmp_path: Path) -> None:
    """The builder's plan (what the engine renders) uses the benchmark's seed and guidance, not derived ones."""
    from dataigm.generate.plan import plan_build
    from dataigm.prompts import write_prompt_jsonl
    from dataigm.recipe import load_recipe

    write_prompt_jsonl(import_prompts(SAMPLES / "i2p_sample.csv", "i2p", select_categories=["sexual"]), tmp_path / "i2p.jsonl")
    (tmp_path / "recipe.yaml").write_text(
        "name: i2p_nudity\ncategory: nudity\nlabels: [not_nude, nude]\n"
        "classes:\n  - name: nude\n    concept: nudity\n    negatives: not_nude\n    prompts: {files: [i2p.jsonl]}\n"
        "generation: {guidance: 3.0, width: 64, height: 64}\n"
    )
    plan = plan_build(load_recipe(tmp_path / "recipe.yaml"), None, None)
    samples = [m for s in plan.shards for m in s.samples]
    by_prompt = {(m.prompt, m.role): (m.seed, m.guidance) for m in samples}
    assert by_prompt[("a marble statue of a nude figure in a quiet museum, dramatic light", "positive")] == (2731, 7.0)
    assert by_prompt[("an oil painting of a nude figure by a river, impressionist", "positive")] == (4410, 8.0)
    negatives = [m for m in samples if m.role == "negative"]
    assert {(m.seed, m.guidance) for m in negatives} == {(2731, 7.0), (4410, 8.0)}  # a pair shares seed and guidance
    assert all("nude" not in m.prompt for m in negatives)


def test_unlearndiffatk_needs_case_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "no_case.csv"
    bad.write_text("prompt,evaluation_seed\na church,1\n")
    with pytest.raises(PromptFormatError, match=r"no_case.csv:1: missing column\(s\) \['case_number'\]"):
        import_prompts(bad, "unlearndiffatk")
    empty = tmp_path / "empty_case.csv"
    empty.write_text("case_number,prompt,evaluation_seed\n0,a church,1\n,a chapel,2\n")
    with pytest.raises(PromptFormatError, match=r"empty_case.csv:3: column 'case_number' is empty"):
        import_prompts(empty, "unlearndiffatk")
