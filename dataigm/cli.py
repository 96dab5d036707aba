"""The ``dataigm`` command line. Each sub-command is one module in :mod:`dataigm.commands` defining
``add_parser(subparsers)`` and ``run(args) -> int``; modules import heavy frameworks inside ``run`` only,
so ``dataigm --help`` answers quickly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback
from typing import NoReturn

from dataigm import __version__
from dataigm.core.errors import DataigmError, one_line


# The modules only an extra installs (pyproject.toml's [project.optional-dependencies]) -> the extras that do; a
# command that needs a missing one names the extra in one line (its own name when it is one of them, else the first).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "diffusers": ("build",), "peft": ("build",), "accelerate": ("build",),
    "lightning": ("train",), "pytorch_lightning": ("train",), "torchmetrics": ("eval", "train"), "torch_fidelity": ("eval",),
    "fiftyone": ("curate",), "datasets": ("hub",), "jinja2": ("report",), "matplotlib": ("report",),
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
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    import dataigm.commands as commands

    parser = OneLineParser(prog="dataigm", description="Datasets and judges for machine unlearning in image generation models.")
    parser.add_argument("--version", action="version", version=f"dataigm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [importlib.import_module(f"dataigm.commands.{m.name}") for m in pkgutil.iter_modules(commands.__path__)
               if not m.name.startswith("_")]  # _options: shared flags, not a command
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        sub_parser = module.add_parser(sub)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our own progress messages at INFO; other libraries' at WARNING unless -v.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dataigm").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (DataigmError, OSError) as e:  # OSError: missing, unwritable or unreachable (Hub) paths
        # Bad input is reported in one line, not a traceback (use -v for the traceback); one line even when a
        # library's message spans several (PyYAML, pydantic, torch).
        if args.verbose:
            raise
        print(f"dataigm {args.command}: error: {one_line(str(e))}", file=sys.stderr)
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
