"""dataigm: datasets and detectors ("judges") for evaluating machine unlearning in image generation models.

The pipeline runs one way: recipe -> generate -> curate -> shard -> train -> export/publish -> judge.
Heavy frameworks are imported lazily by the stage that needs them, so ``import dataigm`` stays cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
