"""The library speaks in parameters, not flags: no string a library module shows (messages, hints, notes) names a
command-line flag. ``dataigm/commands/`` and ``dataigm/cli.py`` map parameters to flags (see ``cli.in_flags``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dataigm

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
ROOT = Path(dataigm.__file__).parent
# Strings that hold a flag which is not ours to rename: another program's command line, quoted as it is.
ALLOWED = {
    ("judges/nudenet_models.py", "--no-deps"),  # pip's flag, in the command that downloads the NudeNet wheel by hand
    ("judges/igmu_multi.py", "--indicator"),  # IGMU's eval_unlearning.py flag, in the reference the judge reproduces
    ("judges/wikiart.py", "--top_k"),  # Diffusion-MU-Attack's style_analysis.py flag, in the reference the judge reproduces
    # dataigm.submit composes the dataigm command line each job-array task runs: its flags are that argv, not messages
    ("submit.py", "--array-task"), ("submit.py", "--out"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def flags_in_library() -> list[tuple[str, int, str]]:
    """(module, line, flag) for every flag-like word in a library module's strings (docstrings aside)."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("commands/") or rel == "cli.py":
            continue
        tree = ast.parse(path.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                found += [(rel, node.lineno, m) for m in FLAG.findall(node.value) if (rel, m) not in ALLOWED]
    return found


def test_no_library_message_names_a_flag() -> None:
    assert flags_in_library() == []


def test_the_check_finds_a_flag(tmp_path: Path) -> None:
    tree = ast.parse('"""Docs may say --out."""\nraise ValueError(f"use --out {x}")\n')
    docs = _docstrings(tree)
    hits = [FLAG.findall(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]
    assert [h for h in hits if h] == [["--out"]]


def test_the_command_line_turns_parameters_into_its_flags() -> None:
    from dataigm.cli import build_parser, in_flags
    from dataigm.commands.eval import PARAMETERS
    from dataigm.generate.engine import OOM_ADVICE

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert in_flags(OOM_ADVICE, commands["build"]) == ("lower --generation-batch-size, or add --offload model (or --offload sequential), "
                                                       "--vae-slicing or --vae-tiling")
    assert in_flags("give fid_feature=none or judge= a copy", commands["eval"], PARAMETERS) == "give --fid-features none or --judge a copy"
    assert in_flags("or pass force=True; out=/a b", commands["new-concept"]) == "or pass --force; --out /a b"
    assert in_flags("pass split_from_folders=False", commands["import-images"]) == "pass --no-split-from-folders"
    # what is not a parameter of the command stays as written: recipe fields, other commands' settings
    assert in_flags("generation.batch_size=3 and cmmd=x", commands["build"]) == "generation.batch_size=3 and cmmd=x"
