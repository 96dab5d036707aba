"""The built-in judge kinds: importing this module registers each (see :mod:`dataigm.judge.registry`).

A new kind is a module with a :class:`~dataigm.judge.registry.JudgeKind` subclass under ``@register_judge``,
imported here.
"""

from dataigm.judge import clip_zero_shot, dataigm_detector, i2p, igmu, imagenet, nudenet, opennsfw, q16, sd_safety_checker  # noqa: F401
from dataigm.judge import gcd, igmu_multi, unlearncanvas, vlm, wikiart  # noqa: F401
