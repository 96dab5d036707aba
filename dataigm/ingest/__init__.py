"""Inputs from outside: prompt sets other benchmarks publish, and folders of real images.

* :mod:`dataigm.ingest.prompt_formats` reads igmu / i2p / csv / txt prompt files into ``PromptRecord`` s
  (``dataigm prompts import``); recipes use the resulting JSONL under ``classes[].prompts.files``.
* :mod:`dataigm.ingest.images` imports a class-per-folder image tree as a ``real`` part of a dataset, in the
  same shard layout and sample schema as generated images (``dataigm import-images``).

Both are imported lazily by the CLI; this package imports neither torch nor diffusers.
"""
