"""How far to trust a verdict: a judge against human labels, judges against each other, rates corrected for the
judge's errors. The statistics themselves live in :mod:`dataigm.evaluation.stats` (one statistics module); this
module keeps their old import path for callers.
"""

from __future__ import annotations

from dataigm.evaluation.stats import (  # noqa: F401  (re-exported names)
    CARD_THRESHOLDS, INTERVALS, SMALL_SWEEP, UNSTABLE_YOUDEN, Confusion, classification, cohen_kappa, confusion, corrected_rate, judge_agreement,
    judge_audit, operating_points, proportion, rogan_gladen, threshold_sweep, wilson_interval,
)
from dataigm.evaluation.stats import balanced_accuracy_ci as balanced_accuracy  # noqa: F401  (binary, with its interval)
