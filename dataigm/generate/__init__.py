"""Generation stage: recipe -> planned samples -> diffusers pipeline -> shards."""
