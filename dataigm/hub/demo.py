"""Demo stage: export the latest dataset to the Hub layout and load it back with stock ``datasets``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dataigm.hub import README
from dataigm.hub.card import CardOptions, config_entries, hf_split


def stage(ctx: Any) -> None:
    """Export ``ctx.artifacts["dataset"]`` to ``ctx.out / "hub"``, load the default config back, print the call; the
    exported folder becomes ``ctx.artifacts["dataset"]`` for the stages after this one."""
    import datasets
    from rich.table import Table

    from dataigm.core.manifest import load_manifest
    from dataigm.hub.export import export_dataset

    out = ctx.out / "hub"
    result = export_dataset(ctx.artifacts["dataset"], out, options=CardOptions(repo_id="ORG/dataigm"))
    ctx.console.print(f"exported {result.samples} samples of {', '.join(result.categories)} ({result.shards} shards) to {out}")
    ctx.console.print(f"card: {out / README}; publish it with dataigm push (a private repo first)")

    manifest = load_manifest(out)
    config = next(c["config_name"] for c in config_entries(manifest) if c.get("default"))
    cache = ctx.out / "hf-datasets-cache"
    ctx.console.print("a user loads it with:")
    ctx.console.print(f'  datasets.load_dataset("{out}", "{config}")', soft_wrap=True, markup=False)
    loaded = datasets.load_dataset(str(out), config, cache_dir=str(cache))
    names = loaded[next(iter(loaded))].features["cls"].names
    table = Table(title=f'load_dataset(..., "{config}")', show_lines=False)
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("rows", justify="right")
    for split, ds in loaded.items():
        labels = Counter(ds["cls"])
        table.add_row(split, *(str(labels.get(i, 0)) for i in range(len(names))), str(len(ds)))
        folder = {hf_split(s): s for s in manifest["counts"][config]["splits"]}[split]  # validation -> val
        expected = manifest["counts"][config]["splits"][folder]["n"]
        if len(ds) != expected:
            raise RuntimeError(f"{config}/{split}: loaded {len(ds)} rows, manifest says {expected}")
    ctx.console.print(table)
    first = loaded[next(iter(loaded))][0]
    label, prompt = names[first["cls"]], first["json"]["prompt"]
    ctx.console.print(f"first sample: image {first['png'].size}, label {label!r}, prompt {prompt!r}", markup=False)
    ctx.artifacts["hub_repo"] = out
    # From here on the demo works as a user who downloaded the published dataset: training and judging read the
    # exported folder (data/<category>/<split>/*.tar), not the build folder.
    ctx.artifacts["built_dataset"], ctx.artifacts["dataset"] = ctx.artifacts["dataset"], out
    ctx.console.print(f"the next stages read the exported folder {out}, as a user of the published dataset would")
