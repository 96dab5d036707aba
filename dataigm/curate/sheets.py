"""Contact sheets: one PNG grid of captioned thumbnails per category/split/label, plus one of dropped samples
per category, so a person can look at what the curated dataset holds and what curation removed.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PIL import Image, ImageDraw, ImageFont

from dataigm.core.atomic import write_bytes_atomic
from dataigm.core.shards import ShardSpec, iter_tar

if TYPE_CHECKING:
    from dataigm.curate.config import CurationConfig
    from dataigm.curate.decision import Decision

HEADER = 20
CAPTION = 26
MAX_COLUMNS = 8


def sheet_size(n: int, thumb: int) -> tuple[int, int]:
    """Pixel size of a sheet of ``n`` thumbnails of ``thumb`` px: up to 8 columns, a title bar, captions."""
    cols = max(1, min(MAX_COLUMNS, n))
    rows = max(1, math.ceil(n / cols))
    return cols * thumb, HEADER + rows * (thumb + CAPTION)


def contact_sheet(title: str, items: Sequence[tuple[bytes, str, str]], thumb: int = 96) -> Image.Image:
    """A grid of ``(image bytes, caption line 1, caption line 2)``; unreadable images show as grey tiles."""
    width, height = sheet_size(len(items), thumb)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    draw.text((4, 4), title, fill=(0, 0, 0), font=font)
    cols = max(1, min(MAX_COLUMNS, len(items)))
    for i, (data, line1, line2) in enumerate(items):
        x, y = (i % cols) * thumb, HEADER + (i // cols) * (thumb + CAPTION)
        try:
            tile = Image.open(io.BytesIO(data)).convert("RGB")
            tile.thumbnail((thumb, thumb))
        except Exception:  # a corrupt image is exactly what a dropped sheet should show, as a grey tile
            tile = Image.new("RGB", (thumb, thumb), (128, 128, 128))
        sheet.paste(tile, (x + (thumb - tile.width) // 2, y + (thumb - tile.height) // 2))
        draw.text((x + 2, y + thumb + 1), line1[-16:], fill=(0, 0, 0), font=font)
        draw.text((x + 2, y + thumb + 13), line2[:16], fill=(160, 0, 0), font=font)
    return sheet


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
