"""The ``dataigm`` command line. Each sub-command is one module in :mod:`dataigm.commands` declaring
``COMMAND = Command(name, order=, help=, description=)``, ``add_arguments(parser)`` and ``run(args) -> int``; modules
import heavy frameworks inside ``run`` only, so ``dataigm --help`` answers quickly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from dataigm import __version__
from dataigm.commands._options import in_flags, note_old_command  # noqa: F401  (in_flags: also read from here)
from dataigm.core.errors import DataigmError, one_line
from dataigm.core.interrupt import SIGINT_EXIT, Interrupted, raise_on_termination


# The modules only an extra installs (pyproject.toml's [project.optional-dependencies]) -> the extras that do; a
# command that needs a missing one names the extra in one line (its own name when it is one of them, else the first).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "diffusers": ("build",), "peft": ("build",), "accelerate": ("build",),
    "lightning": ("train",), "pytorch_lightning": ("train",), "torchmetrics": ("eval", "train"), "torch_fidelity": ("eval",),
    "fiftyone": ("curate",), "datasets": ("hub",), "jinja2": ("report",), "matplotlib": ("report",),
    "ray": ("ray",),
}


def missing_extra(command: str, error: ModuleNotFoundError) -> str | None:
    """The one line for a command that failed on a module only an extra installs; None for any other module.

        >>> missing_extra("build", ModuleNotFoundError(name="diffusers"))
        "dataigm build needs the build extra: pip install 'dataigm[build]'"
    """
    extras = EXTRA_MODULES.get((error.name or "").split(".")[0])
    if not extras:
        return None
    extra = command if command in extras else extras[0]
    return f"dataigm {command} needs the {extra} extra: pip install 'dataigm[{extra}]'"


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line on stderr (the usage itself is one ``--help`` away), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}{self._suggestion(message)} (see '{self.prog} --help')\n")

    def _suggestion(self, message: str) -> str:
        """``(did you mean 'eval'?)`` for a misspelt command or choice: argparse names the bad value, we the closest."""
        import re

        from dataigm.core.registry import did_you_mean

        m = re.match(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)$", " ".join(message.split()))
        if not m:
            return ""
        return did_you_mean(m.group(2), [c.strip().strip("'") for c in m.group(3).split(",")])


def build_parser() -> argparse.ArgumentParser:
    import dataigm.commands as commands

    parser = OneLineParser(prog="dataigm", description="Datasets and judges for machine unlearning in image generation models.")
    parser.add_argument("--version", action="version", version=f"dataigm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [importlib.import_module(f"dataigm.commands.{m.name}") for m in pkgutil.iter_modules(commands.__path__)
               if not m.name.startswith("_")]  # _options: shared flags, not a command
    for module in sorted(modules, key=lambda m: (m.COMMAND.order, m.COMMAND.name)):
        sub_parser = module.COMMAND.add_to(sub)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run, _parameters=getattr(module, "PARAMETERS", {}))
    return parser


# Flags that name something a command writes (file or folder): checked writable before any work.
OUTPUT_FLAGS = {"out": "--out", "summary": "--summary", "report": "--report", "plots": "--plots", "export_labels": "--export-labels",
                "review_dir": "--review-dir"}


def check_outputs(args: argparse.Namespace) -> None:
    """Every output a command was given can be written, checked before the command does any work."""
    from dataigm.core.atomic import NotWritableError, ensure_writable

    for dest, flag in OUTPUT_FLAGS.items():
        value = getattr(args, dest, None)
        if isinstance(value, (str, Path)) and str(value):
            try:
                ensure_writable(value)
            except NotWritableError as e:
                raise NotWritableError(f"{flag}: {e}") from None


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The sub-command's own parser (the nested one for ``answers export`` and the like)."""
    sub = parser
    for dest in ("command", "answers_command", "prompts_command"):
        name = getattr(args, dest, None)
        action = next((a for a in sub._actions if isinstance(a, argparse._SubParsersAction)), None)
        if not isinstance(name, str) or action is None or name not in action.choices:
            break
        sub = action.choices[name]
    return sub


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our own progress messages at INFO; other libraries' at WARNING unless -v.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dataigm").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    note_old_command(args)
    if getattr(args, "_required_judge", False) and not args.judge:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        commands[args.command].error("the following arguments are required: --judge")
    try:
        check_outputs(args)
        args._parser = _command_parser(parser, args)  # commands print library notes in their own flags (in_flags)
        with raise_on_termination():
            return int(args._run(args) or 0)
    except Interrupted as e:  # Ctrl-C or preemption: the work in flight was closed; one line, the scheduler's code
        print(f"dataigm {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a stage, or a second one inside: nothing half-written was published
        print(f"dataigm {args.command}: interrupted: every finished shard is kept; run the same command again to resume",
              file=sys.stderr)
        return SIGINT_EXIT
    except (DataigmError, OSError) as e:  # OSError: missing, unwritable or unreachable (Hub) paths
        # Bad input is reported in one line, not a traceback (use -v for the traceback); one line even when a
        # library's message spans several (PyYAML, pydantic, torch).
        if args.verbose:
            raise
        message = in_flags(one_line(str(e)), _command_parser(parser, args), getattr(args, "_parameters", None))
        print(f"dataigm {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, not bad input: it keeps its traceback, and the last line says it is ours
        if args.verbose:
            raise
        extra = missing_extra(args.command, e) if isinstance(e, ModuleNotFoundError) else None
        if extra:  # not a bug: a stage's framework that its extra installs is missing
            print(extra, file=sys.stderr)
            return 2
        traceback.print_exc(file=sys.stderr)
        print(f"dataigm {args.command}: internal error (a bug in dataigm, not in your input): {type(e).__name__}: "
              f"{one_line(str(e))}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
