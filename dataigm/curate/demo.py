"""Demo stage: curate the latest dataset and print what was kept, sent to review and dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataigm.curate.present import kept_dropped_table

if TYPE_CHECKING:
    from dataigm.curate.config import CurationConfig
    from dataigm.demo import DemoContext


def demo_config() -> "CurationConfig":
    """The demo's config: the default filters, but judge disagreements go to review instead of the bin.

    The tiny model draws noise that barely depends on the prompt: NudeNet sees no nudity on any "nude" positive,
    and a positive is near-identical to its paired negative (same seed), i.e. a label conflict. Dropping those
    would empty the positive classes. With a real model ``builders/curation/default.yaml`` applies.
    """
    from dataigm.curate.config import CategoryCuration, CurationConfig

    return CurationConfig(
        default=CategoryCuration(filters={"blank": {}, "phash": {"max_distance": 4, "conflict_action": "review"}}),
        categories={"nudity": CategoryCuration(filters={"nudenet": {"on_positive_miss": "review", "on_negative_hit": "drop"}})},
        sheet_thumbs=32,
        sheet_thumb_size=64,
    )


def stage(ctx: "DemoContext") -> None:
    """Curate ``ctx.artifacts["dataset"]`` into ``ctx.out / "curated"`` and make it the latest dataset."""
    from dataigm.curate import curate

    out = ctx.out / "curated"
    result = curate(ctx.artifacts["dataset"], out, demo_config(), progress=False)
    ctx.console.print(kept_dropped_table(result))
    pairs = result.pair_stats
    for category, s in pairs.items():
        ctx.console.print(f"pairs in {category}: {s['pairs']} ({s['complete']} complete, {s['positive_dropped']} lost their positive, "
                          f"{s['negative_dropped']} lost their negative)")
    ctx.console.print(
        "The tiny model draws prompt-independent noise: NudeNet sees no nudity on the 'nude' positives and each positive "
        "looks like its paired negative (phash:conflict). The demo config keeps those for review instead of dropping them; "
        "with a real model use builders/curation/default.yaml. "
        f"Report: {result.report}; contact sheets: {out / '_curation' / 'sheets'}"
    )
    ctx.artifacts["curated"] = out
    ctx.artifacts["curation_report"] = result.report
    ctx.artifacts["dataset"] = out
