"""Judges: decide, per image, whether it shows a concept.

:mod:`dataigm.judges.registry` holds the registry and the spec grammar (``KIND[:NAME][@LOCATION]``), and imports no
kind; each judge kind is one module here that registers itself with ``@register_judge``, imported below (as
``timm/models/__init__.py`` imports its model families). :mod:`dataigm.judges.types` holds the ``Judge`` and
``Verdict`` types, :mod:`dataigm.judges.images` the image inputs, :mod:`dataigm.judges.judge` the one-call judging of
a folder, and :mod:`dataigm.judges.load` the Python face (``load_judge`` -> ``Judge`` -> ``Verdicts``,
:mod:`dataigm.judges.verdicts`) over that loop. Nothing here imports diffusers, Lightning or FiftyOne, and every kind
imports its own framework lazily.
"""

from dataigm.judges import clip_zero_shot, dataigm_detector, gcd, i2p, igmu, igmu_multi, imagenet, nudenet, opennsfw  # noqa: F401
from dataigm.judges import q16, sd_safety_checker, unlearncanvas, vlm, wikiart  # noqa: F401
from dataigm.judges import aesthetic, detect, imagereward, pickscore, vlm_api, vqascore  # noqa: F401
