"""One flag vocabulary: --judge on every judging command, old names as hidden aliases with one note, help text for
every flag, did-you-mean for misspelt names, a list-judges table that fits 80 columns, outputs checked writable first."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from dataigm.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _every_parser(parser: argparse.ArgumentParser, name: str = "dataigm"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for sub_name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from _every_parser(sub, f"{name} {sub_name}")


def test_every_flag_and_argument_has_help() -> None:
    missing = [(name, a.option_strings or a.dest) for name, p in _every_parser(build_parser()) for a in p._actions
               if not isinstance(a, argparse._SubParsersAction) and a.help != argparse.SUPPRESS and not (a.help or "").strip()]
    assert missing == []


def test_help_pages_render_without_doubled_percent(capsys: pytest.CaptureFixture[str]) -> None:
    for name, p in _every_parser(build_parser()):
        text = p.format_help()
        assert "%%" not in text and "%(" not in text, name
    assert "(95% Wilson intervals" in " ".join(_commands(build_parser())["audit"].format_help().split())


JUDGING = {  # command and its other required arguments -> how a judge is given
    "eval": ["eval", "--forget", "f", "--retain", "r"],
    "judge": ["judge", "images"],
    "audit": ["audit", "images", "--labels", "l.csv"],
    "benchmark": ["benchmark", "s", "--model", "tiny", "--name", "m", "--out", "o"],
    "answers rescore": ["answers", "rescore", "sheet"],
}


@pytest.mark.parametrize("command", sorted(JUDGING))
def test_judge_flag_on_every_judging_command_and_detector_says_so(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    import dataigm.commands._options as options

    options._NOTED.clear()
    new = build_parser().parse_args([*JUDGING[command], "--judge", "nudenet"])
    assert capsys.readouterr().err == ""
    old = build_parser().parse_args([*JUDGING[command], "--detector", "nudenet"])
    assert old.judge == new.judge and new.judge in ("nudenet", ["nudenet"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--detector is an old name" in err and "use --judge" in err
    sub = build_parser()
    for part in command.split():
        sub = _commands(sub)[part]
    assert "--judge SPEC" in sub.format_help() and "--detector" not in sub.format_help()


OLD_FLAGS = [  # argv, old flag + value, new flag + value, dest
    (["eval", "--judge", "nudenet"], ["--clip-score-model", "m"], ["--clip-model", "m"], "clip_model"),
    (["judge", "x", "--judge", "nudenet"], ["--nudenet-model", "f.onnx"], None, "nudenet_model"),
    (["judge", "x", "--judge", "imagenet:church"], ["--imagenet-model", "m"], None, "imagenet_model"),
    (["judge", "x", "--judge", "igmu:nudity"], ["--igmu-head", "d"], None, "igmu_head"),
    (["convert-judge", "igmu", "w.pth", "--out", "o"], ["--clip", "m"], ["--clip-model", "m"], "clip_model"),
    (["benchmark", "s", "--model", "tiny", "--name", "m", "--out", "o"], ["--variant", "nudity50"], ["--prompt-set", "nudity50"], "prompt_set"),
]


@pytest.mark.parametrize("argv, old, new, dest", OLD_FLAGS, ids=lambda v: v[0] if isinstance(v, list) else str(v))
def test_old_flags_still_work_hidden_with_one_note(argv, old, new, dest, capsys: pytest.CaptureFixture[str]) -> None:
    import dataigm.commands._options as options

    options._NOTED.clear()
    args = build_parser().parse_args([*argv, *old])
    assert getattr(args, dest) == old[1]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{old[0]} is an old name" in err
    if new:
        assert getattr(build_parser().parse_args([*argv, *new]), dest) == old[1] and new[0] in err
    sub = _commands(build_parser())[argv[0]]
    assert f"{old[0]} " not in sub.format_help().replace(f"{old[0]}-", "")


def test_clip_old_flag_turns_csdr_on_with_its_model(capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.commands._options import CLIP_IGMU, metric_settings

    parser = build_parser()
    assert metric_settings(parser.parse_args(["eval", "--judge", "x", "--clip", "local/clip"]))["clip"] == "local/clip"
    assert metric_settings(parser.parse_args(["eval", "--judge", "x", "--clip"]))["clip"] == CLIP_IGMU
    assert metric_settings(parser.parse_args(["eval", "--judge", "x", "--csdr", "--clip-model", "d"]))["clip"] == "d"
    settings = metric_settings(parser.parse_args(["eval", "--judge", "x", "--clip-model", "d"]))
    assert (settings["clip"], settings["clip_model"], settings["clip_score_model"]) == (None, "d", "d")


@pytest.mark.parametrize("old, new", [("evaluate", "detector-eval"), ("judges", "list-judges"), ("export", "export-dataset")])
def test_renamed_commands_keep_their_old_name_hidden(old: str, new: str, capsys: pytest.CaptureFixture[str]) -> None:
    import dataigm.commands._options as options

    import re

    parser = build_parser()
    assert _commands(parser)[old] is _commands(parser)[new]
    listing = parser.format_help()
    assert re.search(rf"^    {new}\s", listing, re.M) and not re.search(rf"^    {old}\s", listing, re.M)
    if old == "judges":  # the old name runs the command
        options._NOTED.clear()
        assert main([old, "--json"]) == 0 and json.loads(capsys.readouterr().out)["judges"]
    args = build_parser().parse_args([old, *{"evaluate": ["d", "--data", "x"], "export": ["d", "--out", "o"], "judges": []}[old]])
    from dataigm.commands._options import note_old_command

    options._NOTED.clear()
    capsys.readouterr()
    note_old_command(args)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"'dataigm {old}' is an old name" in err and f"use 'dataigm {new}'" in err


def test_a_misspelt_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["evl"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "(did you mean 'eval'?)" in err


@pytest.mark.parametrize("spec, suggestion", [("nudnet", "nudenet"), ("imagnet:church", "imagenet"), ("nudenet:rce", "rece"),
                                              ("igmu:nudty", "nudity")])
def test_a_misspelt_judge_gets_a_suggestion(spec: str, suggestion: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    assert main(["judge", str(tmp_path), "--judge", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"did you mean {suggestion!r}?" in err and "neither an existing path" not in err


def test_misspelt_recipe_fields_and_presets_get_a_suggestion() -> None:
    import yaml

    from dataigm.recipe import RecipeError, parse_recipe
    from dataigm.resources import resource_dir

    data = yaml.safe_load((resource_dir("builders") / "church.yaml").read_text())
    data["generation"]["stpes"] = 3
    data["imags_per_prompt"] = 2
    with pytest.raises(RecipeError) as e:
        parse_recipe(dict(data), "church.yaml")
    assert "field 'generation.stpes': unknown field (did you mean 'steps'?)" in str(e.value)
    assert "field 'imags_per_prompt': unknown field (did you mean 'images_per_prompt'?)" in str(e.value)


def test_list_judges_fits_80_columns_and_long_and_json_give_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.judges.registry import judge_kinds

    assert main(["list-judges"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80 and len(lines) == len(judge_kinds()) + 3
    assert lines[0].split() == ["kind", "syntax", "decides"] and any(line.startswith("nudenet ") for line in lines)
    assert main(["list-judges", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["judges"]
    assert {"reference", "weights", "licence", "offline"} <= set(entries[0]) and len(entries) == len(judge_kinds())
    assert main(["list-judges", "--long"]) == 0
    long = capsys.readouterr().out
    assert long.count("\n  licence: ") == len(judge_kinds()) and max(len(line) for line in long.splitlines()) <= 80


def test_an_unwritable_out_fails_before_any_judging(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path below a regular file cannot be written, even by root: eval refuses it before opening an image."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    # the forget/retain folders do not even exist: any judging or reading would fail with another message
    rc = main(["eval", "--forget", str(tmp_path / "nowhere"), "--retain", str(tmp_path / "nowhere"), "--judge", "nudenet",
               "--out", str(blocker / "report")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"--out: {blocker / 'report'} cannot be written: {blocker} is a file, not a folder" in err
    assert blocker.read_text() == "x"


def test_ensure_writable_creates_nothing_and_refuses_a_read_only_place(tmp_path: Path) -> None:
    from dataigm.core.atomic import NotWritableError, ensure_writable

    target = tmp_path / "new" / "deeper"
    assert ensure_writable(target) == target and not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(NotWritableError, match="is a file"):
        (tmp_path / "f").write_text("")
        ensure_writable(tmp_path / "f" / "x")
    with pytest.raises(NotWritableError, match="/proc"):
        ensure_writable("/proc/dataigm-out")  # a read-only file system (root cannot create files there either)


def test_eval_clip_model_reaches_the_clip_based_judges_only() -> None:
    """eval --clip-model: the CLIP weights of igmu/clip/q16 judges too (before, eval had no way to give them), and never
    an option a judge refuses."""
    from dataigm.commands.eval import eval_config
    from dataigm.evaluation.evaluate import shared_judge_options

    cfg = eval_config(build_parser().parse_args(["eval", "--judge", "igmu:nudity@head", "--judge", "nudenet", "--clip-model", "clip/"]))
    assert shared_judge_options("igmu:nudity@head", cfg)["clip_model"] == "clip/"
    assert "clip_model" not in shared_judge_options("nudenet", cfg)
    assert (cfg.detector, cfg.more_detectors, cfg.clip, cfg.clip_model) == ("igmu:nudity@head", ("nudenet",), None, "clip/")
