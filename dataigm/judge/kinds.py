"""The built-in judge kinds: importing this module registers each (see :mod:`dataigm.judge.registry`).

A new kind is a module with a :class:`~dataigm.judge.registry.JudgeKind` subclass under ``@register_judge``,
imported here.
"""

from dataigm.judge import dataigm_detector, igmu, imagenet, nudenet  # noqa: F401
from dataigm.judge import gcd  # noqa: F401
from dataigm.judge import igmu_multi  # noqa: F401
from dataigm.judge import unlearncanvas  # noqa: F401
from dataigm.judge import vlm  # noqa: F401
from dataigm.judge import wikiart  # noqa: F401
