"""Contact sheets: a PNG grid of captioned thumbnails, the picture curation and judge audits show a person."""

from __future__ import annotations

import io
import math
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

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
