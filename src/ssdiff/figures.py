"""Captioned side-by-side panels: the demo's picture and the ``_compare.png`` of ``ssdiff restore``."""

from __future__ import annotations

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
    width = sum(t.width for t in tiles) + gap * (len(tiles) + 1)
    height = max(t.height for t in tiles) + caption + 2 * gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    left = gap
    for tile, panel in zip(tiles, panels):
        canvas.paste(tile, (left, gap))
        draw.text((left, tile.height + gap + 3), panel.title, fill="black", font=font)
        if panel.scores:
            line = "  ".join(f"{k} {v:.2f}" if k == "PSNR" else f"{k} {v:.3f}" for k, v in panel.scores.items())
            draw.text((left, tile.height + gap + 20), line, fill=(60, 60, 60), font=font)
        left += tile.width + gap
    return canvas
