"""Benchmark suites: pinned prompt files, how to generate from them, and how to judge the images.

``suite`` holds the registry (one YAML per suite in ``builders/suites/``), ``fetch`` downloads and checks the pinned
files, ``run`` turns a suite plus an unlearned checkpoint into the ``dataigm eval`` report. Heavy frameworks are
imported inside the functions that need them.
"""
