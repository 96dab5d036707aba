"""The small core every stage shares: sample schema, shard I/O, manifest, registries, partitioning.

Nothing in here imports torch, diffusers, Lightning or FiftyOne.
"""
