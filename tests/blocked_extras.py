"""Run Python with the extras' frameworks unimportable, as in a base install of dataigm (no second venv needed).

``python tests/blocked_extras.py MODULE_OR_SCRIPT ARGS...`` blocks :data:`BLOCKED` and then runs the module
(``-m dataigm ...``) or script, like ``python -m``/``python script``. Blocked modules behave as if they were not
installed: ``import diffusers`` raises ``ModuleNotFoundError`` (name set) and ``importlib.util.find_spec`` answers None,
which is how transformers and timm probe for optional packages. (A ``sys.meta_path`` finder that raises would make
those probes raise too, which an absent package never does; a ``None`` entry in ``sys.modules`` is Python's own way
to make a module unimportable.)
"""

from __future__ import annotations

import runpy
import sys

# Every framework pyproject.toml puts in an extra, and the extras' own heavy dependencies.
BLOCKED = ("diffusers", "peft", "accelerate", "lightning", "pytorch_lightning", "torchmetrics", "torch_fidelity", "fiftyone",
           "datasets", "jinja2", "matplotlib", "ray")


def block(names: tuple[str, ...] = BLOCKED) -> None:
    """Make ``names`` unimportable in this process."""
    for name in names:
        if name in sys.modules and sys.modules[name] is not None:
            raise RuntimeError(f"{name} is already imported")
        sys.modules[name] = None  # type: ignore[assignment]


def still_blocked(names: tuple[str, ...] = BLOCKED) -> list[str]:
    """The blocked names that got imported anyway (none, unless something removed the block)."""
    return [n for n in names if sys.modules.get(n, None) is not None]


if __name__ == "__main__":
    block()
    if sys.argv[1] == "-m":
        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
