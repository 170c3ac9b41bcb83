"""Captioned side-by-side panels: the demo's picture and the ``_compare.png`` of ``ssdiff restore``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from PIL import Image, ImageDraw, ImageFont

from .io import tensor_to_pil

# Small images are enlarged until about this tall, so that faces and captions stay readable.
READABLE_HEIGHT = 192


@dataclass
class Panel:
    title: str
    image: torch.Tensor  # 3 x H x W in [-1, 1]
    scores: dict[str, float] = field(default_factory=dict)


def render(panels: list[Panel], zoom: int | None = None) -> Image.Image:
    """Panels side by side, enlarged ``zoom`` times (nearest neighbour, so pixels stay honest), captioned
    with their titles and scores; ``zoom`` defaults to the largest whole factor that keeps them near
    :data:`READABLE_HEIGHT` pixels tall (1 for images at least that tall)."""
    if zoom is None:
        zoom = max(1, READABLE_HEIGHT // max(p.image.shape[-2] for p in panels))
    font = ImageFont.load_default(size=13)
    tiles = [tensor_to_pil(p.image.detach().float().cpu().clamp(-1, 1))
             .resize((p.image.shape[-1] * zoom, p.image.shape[-2] * zoom), Image.Resampling.NEAREST) for p in panels]
    gap, caption = 6, 40
    captions = [(panel.title, "  ".join(f"{k} {v:.2f}" if k == "PSNR" else f"{k} {v:.3f}" for k, v in panel.scores.items()))
                for panel in panels]
    # a column is as wide as its image or its captions, so that captions of small images never overlap
    columns = [max(tile.width, *(math.ceil(font.getlength(text)) for text in texts)) for tile, texts in zip(tiles, captions)]
    width = sum(columns) + gap * (len(tiles) + 1)
    height = max(t.height for t in tiles) + caption + 2 * gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    left = gap
    for tile, column, (title, scores) in zip(tiles, columns, captions):
        canvas.paste(tile, (left + (column - tile.width) // 2, gap))
        draw.text((left, tile.height + gap + 3), title, fill="black", font=font)
        if scores:
            draw.text((left, tile.height + gap + 20), scores, fill=(60, 60, 60), font=font)
        left += column + gap
    return canvas
