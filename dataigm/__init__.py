"""dataigm: datasets and detectors ("judges") for evaluating machine unlearning in image generation models.

Judge images from Python with the judges ``dataigm judge`` runs:

    >>> import dataigm
    >>> judge = dataigm.load_judge("nudenet:esd")               # doctest: +SKIP
    >>> verdicts = judge("samples/")                            # a folder, paths, PIL images, uint8 arrays/tensors
    >>> verdicts.positive_rate, verdicts.interval()

* :func:`list_judges`: every judge kind (syntax, what it decides, reference, weights, licence, offline);
* :func:`load_judge` -> :class:`Judge`, whose call returns :class:`Verdicts`;
* :func:`evaluate` and :func:`audit`: the evaluation and the judge audit that ``dataigm eval`` and ``dataigm audit`` run;
* :mod:`dataigm.metrics`: ``ForgettingRate`` and ``JudgeAgreement`` as torchmetrics metrics (needs the ``train`` extra).

The pipeline runs one way: recipe -> generate -> curate -> shard -> train -> export/publish -> judge. Every name here
is imported on first use (PEP 562), so ``import dataigm`` loads no framework and stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# public name -> "module:attribute", imported on first access (by name, so that the modules here that read
# __version__ do not import this table's targets back)
_LAZY = {
    "list_judges": "dataigm.judges.load:list_judges",
    "load_judge": "dataigm.judges.load:load_judge",
    "Judge": "dataigm.judges.load:Judge",
    "Verdicts": "dataigm.judges.verdicts:Verdicts",
    "evaluate": "dataigm.evaluation.evaluate:evaluate",
    "audit": "dataigm.evaluation.audit:audit",
}

__all__ = ["__version__", *_LAZY]

_SUBMODULES = ("metrics",)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"dataigm.{name}")
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'dataigm' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})
