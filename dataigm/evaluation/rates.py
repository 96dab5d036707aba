"""One method's rates from its judged images: forgetting, preservation (pooled, IRA/CRA), UnlearnCanvas' UA and
the positive rates, grouped and with intervals. The one computation behind both an eval's report
(:func:`dataigm.evaluation.evaluate.judge_set`) and an answer sheet's re-scored report
(:func:`dataigm.report.answers_report.method_result`), so the two cannot give different numbers for one verdict."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

from dataigm.evaluation.metrics import (
    aggregate, domain_of, grouped, in_cross_domain, prompt_key, rate, retain_correct, unlearning_accuracy,
)
from dataigm.evaluation.settings import StatsSettings


class JudgedImage(NamedTuple):
    """One image with its judge's verdict, as the rates read it (``id``: the image's own cluster when it knows no prompt)."""

    id: str
    meta: dict[str, Any]
    predicted: str
    positive: bool


class MethodRates(NamedTuple):
    """``report``: the rates as the report holds them (and ``forget_verdicts``, id -> verdict, for the judges'
    agreement); ``forget_items``: the forget images' (meta, verdict) after aggregation; ``correct``: each retain
    image's (meta, judged correctly)."""

    report: dict[str, Any]
    forget_items: list[tuple[dict[str, Any], bool]]
    correct: list[tuple[dict[str, Any], bool]]


def method_rates(forget: Sequence[JudgedImage], negatives: Sequence[JudgedImage], retain: Sequence[JudgedImage], *,
                 label_names: Sequence[str], target: str, category: Callable[[], str], stats: StatsSettings) -> MethodRates:
    """The rates of one method for one judge (``label_names``, ``target``; ``category()``: its category, asked only
    when no forget image knows its domain). ``negatives``: the concept-removed images, for the validity check.

        >>> img = JudgedImage("0_0.png", {"prompt_index": 0}, "church", True)
        >>> rates = method_rates([img], [], [img._replace(positive=False, predicted="other")], label_names=["other", "church"],
        ...                      target="church", category=lambda: "object", stats=StatsSettings(n_resamples=10))
        >>> rates.report["forgetting"]["all"]["value"], rates.report["preservation"]["all"]["value"]
        (1.0, 1.0)
    """
    st = stats.kwargs()
    kw = {**st, "by_prompt": stats.by_prompt, "group_by": stats.group_by}

    def clusters(items: Sequence[JudgedImage]) -> list[tuple[Any, ...]] | None:
        return [prompt_key(i.meta, i.id) for i in items] if stats.by_prompt else None

    correct = [(i.meta, retain_correct(i.meta, i.predicted, i.positive, label_names, target)) for i in retain]
    domains = [domain_of(i.meta) for i in forget if domain_of(i.meta)]
    forget_domain = domains[0] if domains else category()
    forget_items = aggregate([(i.meta, i.positive) for i in forget], stats.aggregate)
    forgetting = grouped(forget_items, **kw)
    report = {
        "forgetting": forgetting,
        "forget_positive_rate": rate([i.positive for i in forget], clusters=clusters(forget), **st).to_dict(),
        "preservation": grouped(correct, **kw),
        "preservation_domains": in_cross_domain(correct, forget_domain, by_prompt=stats.by_prompt, **st),
        # UnlearnCanvas' UA, beside its IRA/CRA: 1 - forgetting (the same images; higher is better)
        "unlearning_accuracy": unlearning_accuracy(forgetting["all"]),
        "retain_positive_rate": rate([i.positive for i in retain], clusters=clusters(retain), **st).to_dict(),
        "n_forget": len(forget),
        "n_retain": len(retain),
        "aggregate": stats.aggregate,
        "forget_verdicts": {i.id: i.positive for i in forget},  # for the judges' agreement; not in the report
    }
    if negatives:
        report["negative_positive_rate"] = rate([i.positive for i in negatives], clusters=clusters(negatives), **st).to_dict()
    return MethodRates(report, forget_items, correct)
