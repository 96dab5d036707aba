"""Contact sheets: one PNG grid of captioned thumbnails per category/split/label, plus one of dropped samples
per category, so a person can look at what the curated dataset holds and what curation removed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Sequence


from dataigm.core.atomic import write_bytes_atomic
from dataigm.core.shards import ShardSpec, iter_tar
from dataigm.core.sheets import contact_sheet

if TYPE_CHECKING:
    from dataigm.curate.config import CurationConfig
    from dataigm.curate.decision import Decision

def write_contact_sheets(dataset: Path, out: Path, specs: Sequence[ShardSpec], decisions: dict[str, "Decision"], config: "CurationConfig") -> list[str]:
    """Write the sheets below ``out/_curation/sheets``; returns their paths relative to ``out``."""
    n, thumb = config.sheet_thumbs, config.sheet_thumb_size
    groups: dict[tuple[str, str, str], list[tuple[bytes, str, str]]] = {}
    dropped: dict[str, list[tuple[bytes, str, str]]] = {}
    wanted = {(d.category, d.split, d.relabel_to or d.label_name) for d in decisions.values() if d.verdict != "drop"}
    wanted_dropped = {d.category for d in decisions.values() if d.verdict == "drop"}
    for spec in specs:
        if all(len(groups.get(g, [])) >= n for g in wanted) and all(len(dropped.get(c, [])) >= n for c in wanted_dropped):
            break  # every sheet is full: stop reading
        for raw in iter_tar(spec.tar_path(dataset)):
            d = decisions[raw.key]
            short = raw.key.rsplit("-", 2)[-2:]
            if d.verdict == "drop":
                items = dropped.setdefault(d.category, [])
                if len(items) < n:
                    items.append((raw.image, "-".join(short), d.reasons[0].split(":")[-1] if d.reasons else "drop"))
                continue
            items = groups.setdefault((d.category, d.split, d.relabel_to or d.label_name), [])
            if len(items) < n:
                note = "review" if d.verdict == "review" else (f"was {d.label_name}" if d.relabel_to else "")
                items.append((raw.image, "-".join(short), note))
    written = []
    sheets = {f"{c}-{s}-{label}": (f"{c} / {s} / {label}", items) for (c, s, label), items in sorted(groups.items())}
    sheets.update({f"{c}-dropped": (f"{c} / dropped", items) for c, items in sorted(dropped.items())})
    for name, (title, items) in sheets.items():
        buf = io.BytesIO()
        contact_sheet(f"{title} ({len(items)} shown)", items, thumb).save(buf, format="PNG")
        rel = f"_curation/sheets/{name}.png"
        write_bytes_atomic(Path(out) / rel, buf.getvalue())
        written.append(rel)
    return written
