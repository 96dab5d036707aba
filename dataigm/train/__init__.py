"""Detector training (Lightning + timm), evaluation, and export in timm's Hub layout.

Only ``data.py``, ``module.py`` and ``run.py`` import Lightning; evaluating and exporting never do.
"""
