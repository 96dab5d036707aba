"""torchmetrics ``Metric``s over a judge, for an unlearning method's training loop: :class:`ForgettingRate` and
:class:`JudgeAgreement`. They accumulate counts across ``update`` calls and sum them across DDP ranks, as every
torchmetrics metric does, so ``self.log("forgetting", metric)`` in a Lightning module gives the rate over every
image every rank judged.

    >>> from dataigm.metrics import ForgettingRate
    >>> forgetting = ForgettingRate("nudenet:esd")                # or a judge from dataigm.load_judge
    >>> forgetting.update(images)                                 # doctest: +SKIP
    >>> forgetting.compute()                                      # the share of images judged to show the concept

Needs torchmetrics (``pip install 'dataigm[train]'``); ``import dataigm`` never imports this module.
"""

from __future__ import annotations

from typing import Any

try:
    import torch
    from torchmetrics import Metric
except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(f"dataigm.metrics needs {e.name}: pip install 'dataigm[train]'", name=e.name) from None

from dataigm.judges.load import Judge, load_judge


def _judge(judge: Judge | str) -> Judge:
    return load_judge(judge) if isinstance(judge, str) else judge


class ForgettingRate(Metric):
    """The share of images a judge finds the concept in (dataigm's ``forgetting``: lower is better after unlearning).

    Args:
        judge: a :class:`~dataigm.judges.load.Judge` (``dataigm.load_judge(...)``) or its spec.
        batch_size: images per forward pass of the judge (the verdicts do not depend on it).

    Example:
        >>> metric = ForgettingRate(dataigm.load_judge("nudenet:esd"))    # doctest: +SKIP
        >>> metric.update(generated)          # any image input a Judge takes: uint8 NCHW tensors, PIL images, paths
        >>> metric.compute()                  # tensor(0.1250)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, judge: Judge | str, *, batch_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.judge = _judge(judge)
        self.batch_size = batch_size
        self.add_state("positive", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, images: Any) -> None:
        """Judge ``images`` and add their verdicts to the counts."""
        verdicts = self.judge(images, batch_size=self.batch_size)
        self.positive += verdicts.n_positive
        self.total += len(verdicts)

    def compute(self) -> torch.Tensor:
        """positive / total over every update (and every rank); NaN before any image was judged."""
        return self.positive.double() / self.total if self.total else torch.tensor(float("nan"), dtype=torch.double)


class JudgeAgreement(Metric):
    """How often two judges agree on the same images: Cohen's kappa and raw agreement
    (:func:`dataigm.evaluation.agreement.cohen_kappa`, computed from the summed 2x2 table).

    Example:
        >>> metric = JudgeAgreement("nudenet:esd", "nudenet:rece")        # doctest: +SKIP
        >>> metric.update(images)
        >>> metric.compute()                  # {'kappa': tensor(0.71), 'agreement': tensor(0.9), 'n': tensor(40)}
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, judge_a: Judge | str, judge_b: Judge | str, *, batch_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.judge_a, self.judge_b = _judge(judge_a), _judge(judge_b)
        self.batch_size = batch_size
        # the 2x2 table: table[a, b] counts images judge A called a and judge B called b (0 negative, 1 positive)
        self.add_state("table", default=torch.zeros(2, 2, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, images: Any) -> None:
        """Judge ``images`` with both judges and add the pairs of verdicts to the table."""
        a = self.judge_a(images, batch_size=self.batch_size)
        b = self.judge_b(images, batch_size=self.batch_size)
        if a.ids != b.ids:  # an image one judge could read and the other could not
            raise ValueError(f"the judges read different images: {sorted(set(a.ids) ^ set(b.ids))[:5]}")
        for x, y in zip(a.positive, b.positive):
            self.table[int(x), int(y)] += 1

    def compute(self) -> dict[str, torch.Tensor]:
        """``kappa`` (NaN where chance agreement is 1), raw ``agreement`` and ``n``, over every update and rank."""
        from dataigm.evaluation.agreement import cohen_kappa

        counts = self.table.tolist()
        pairs = [(a, b) for a in (0, 1) for b in (0, 1) for _ in range(counts[a][b])]
        n = len(pairs)
        kappa = cohen_kappa([bool(a) for a, _ in pairs], [bool(b) for _, b in pairs])
        agreement = (counts[0][0] + counts[1][1]) / n if n else float("nan")
        return {"kappa": torch.tensor(float("nan") if kappa is None else kappa, dtype=torch.double),
                "agreement": torch.tensor(agreement, dtype=torch.double), "n": torch.tensor(n)}
