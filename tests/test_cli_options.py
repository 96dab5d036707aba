"""dataigm.commands._options: shared flag groups mean the same thing in every command; renamed flags keep their old
spelling as a deprecated alias that still works."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dataigm.cli import build_parser
from dataigm.commands._options import emit_json

ALIASES = [  # (command and its required arguments, old flag, new flag, value, dest)
    (["build", "r.yaml", "--out", "o"], "--config", "--model-config", "cfg", "model_config"),
    (["build", "r.yaml", "--out", "o"], "--batch-size", "--generation-batch-size", "4", "batch_size"),
    (["benchmark", "s", "--model", "tiny", "--name", "m", "--out", "o"], "--config", "--model-config", "cfg", "model_config"),
    (["benchmark", "s", "--model", "tiny", "--name", "m", "--out", "o"], "--batch-size", "--generation-batch-size", "4", "batch_size"),
    (["benchmark", "s", "--model", "tiny", "--name", "m", "--out", "o"], "--original", "--original-model", "orig", "original"),
]


@pytest.mark.parametrize("argv, old, new, value, dest", ALIASES)
def test_old_spelling_still_works_and_says_the_new_one(argv, old, new, value, dest, capsys) -> None:
    import dataigm.commands._options as options

    options._NOTED.clear()
    parser = build_parser()
    via_new = parser.parse_args([*argv, new, value])
    assert capsys.readouterr().err == ""
    via_old = parser.parse_args([*argv, old, value])
    assert getattr(via_old, dest) == getattr(via_new, dest) == (int(value) if value.isdigit() else value)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{old} is an old name" in err and f"use {new}" in err
    sub = next(a for a in parser._actions if a.dest == "command").choices[argv[0]]
    assert new in sub.format_help() and f"{old} " not in sub.format_help().replace(f"{old}-", "")


def test_metric_flags_are_eval_config_fields() -> None:
    from dataigm.commands._options import metric_settings
    from dataigm.evaluation.evaluate import EvalConfig

    parser = build_parser()
    for argv in (["eval", "--judge", "nudenet"], ["benchmark", "s", "--model", "tiny", "--name", "m", "--out", "o"]):
        settings = metric_settings(parser.parse_args(argv))
        assert set(settings) <= {f.name for f in dataclasses.fields(EvalConfig)}
    assert metric_settings(parser.parse_args(["eval", "--judge", "nudenet", "--lpips-net", "none"]))["lpips_net"] is None
    bench = metric_settings(parser.parse_args(["benchmark", "s", "--model", "tiny", "--name", "m", "--out", "o"]))
    assert (bench["lpips_net"], bench["fid_feature"]) == ("suite", "suite")


def test_emit_json_prints_one_object(capsys) -> None:
    emit_json({"b": [1, 2], "a": "é"})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"a": "é", "b": [1, 2]} and out.startswith('{"a"')


def _choices() -> dict[tuple[str, str], list]:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    return {(name, a.dest): list(a.choices) for name, sub in commands.items() for a in sub._actions if a.choices}


def _sync_table() -> dict[tuple[str, str], list]:
    """Each hard-coded CLI choice list -> the library's own list (the CLI keeps literals so --help imports no torch)."""
    from typing import get_args

    from dataigm.core.precision import JUDGE_PRECISIONS
    from dataigm.evaluation.clip_metrics import CLIP_SCORE_MODES
    from dataigm.evaluation.csdr import CSDR_PROMPTS, CSDR_UNITS
    from dataigm.evaluation.evaluate import BOOTSTRAP_UNITS, FORGET_REFERENCES
    from dataigm.evaluation.fidelity import LPIPS_NETS
    from dataigm.evaluation.metrics import AGGREGATIONS
    from dataigm.recipe import GenerationSpec

    dtypes = list(get_args(GenerationSpec.model_fields["dtype"].annotation))
    table = {("judge", "precision"): list(JUDGE_PRECISIONS), ("eval", "aggregate"): list(AGGREGATIONS),
             ("eval", "bootstrap_unit"): list(BOOTSTRAP_UNITS),
             ("eval", "lpips_net"): [*LPIPS_NETS, "none"], ("benchmark", "lpips_net"): ["suite", *LPIPS_NETS, "none"],
             ("build", "dtype"): dtypes, ("benchmark", "dtype"): dtypes}
    for command in ("eval", "benchmark"):
        table.update({(command, "csdr_unit"): list(CSDR_UNITS), (command, "csdr_prompts"): list(CSDR_PROMPTS),
                      (command, "clip_score"): list(CLIP_SCORE_MODES), (command, "forget_reference"): list(FORGET_REFERENCES)})
    return table


@pytest.mark.parametrize("key", sorted(_sync_table()), ids=lambda key: ":".join(key))
def test_cli_choices_follow_the_library(key) -> None:
    assert sorted(_choices()[key]) == sorted(_sync_table()[key])
