"""The README a newcomer reads: short, install and three examples first, two set-up commands, every command in the
table, every link alive."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from dataigm.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_short_and_install_and_examples_come_first() -> None:
    assert len(README.split()) < 900
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings[:3] == ["Install", "Three examples", "Try it from a clone"]
    intro = README.split("\n## ")[0].strip().splitlines()
    assert len([line for line in intro[1:] if line.strip()]) <= 3  # two sentences of what it is
    examples = README.split("## Three examples")[1].split("\n## ")[0]
    assert "dataigm.load_judge(" in examples and "dataigm eval --layout " in examples and "dataigm build " in examples
    assert "pip install" in README.split("## Three examples")[0] and "source .venv/bin/activate" in README


def test_exactly_two_set_up_commands() -> None:
    assert sorted(set(re.findall(r"\bmake ([a-z-]+)", README))) == ["demo", "test"]


def test_every_command_is_in_the_table_and_no_old_name() -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listed = {c.dest for c in commands._choices_actions}
    table = "\n".join(line for line in README.splitlines() if line.startswith("| `"))
    missing = [c for c in listed if f"`{c}`" not in table]
    assert missing == []
    for old in ("evaluate", "judges", "export", "--detector"):
        assert f"dataigm {old} " not in README and f"`{old}`" not in README


def test_links_lead_to_pages_that_exist() -> None:
    links = re.findall(r"\]\((?!https?:)([^)#]+)", README)
    assert links and [link for link in links if not (ROOT / link).exists()] == []
    assert "docs/performance.md" in links and "docs/verified.md" in links
    for page in ("performance.md", "verified.md"):
        text = (ROOT / "docs" / page).read_text()
        assert [link for link in re.findall(r"\]\((?!https?:)([^)#]+)", text) if not (ROOT / "docs" / link).exists()] == []
