"""Judging stage: score images from (unlearned) generators with dataigm detectors or NudeNet, and evaluate
forgetting, preservation, fidelity and alignment.

Nothing here imports diffusers or Lightning: judging a folder needs only the detector's own framework.
"""
