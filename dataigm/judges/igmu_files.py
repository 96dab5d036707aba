"""The file layout of a converted IGMU head (binary or multi-class), shared by :mod:`dataigm.judges.igmu` and
:mod:`dataigm.judges.igmu_multi` so that neither imports the other for it."""

IGMU_CLIP = "openai/clip-vit-base-patch32"  # the CLIP IGMU's heads were trained on
IGMU_FORMAT = "dataigm-igmu-head/1"
HEAD_WEIGHTS = "model.safetensors"
HEAD_CONFIG = "config.json"
