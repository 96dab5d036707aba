"""The built-in judge kinds: importing this module registers each (see :mod:`dataigm.judge.registry`).

A new kind is a module with a :class:`~dataigm.judge.registry.JudgeKind` subclass under ``@register_judge``,
imported here.
"""

from dataigm.judge import dataigm_detector, igmu, imagenet, nudenet  # noqa: F401
