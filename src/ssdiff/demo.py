"""``ssdiff demo``: restore a real portrait with the built-in prior, offline, in seconds on a CPU.

The portrait is the public-domain NASA ``astronaut`` photo that scikit-image ships; its face is
cropped and framed like the CelebA training faces, resized to 64 x 64, degraded, and restored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from .io import pil_to_tensor, resize, tensor_to_pil, write_image
from .metrics import psnr, ssim
from .operators import LinearOperator, get_operator
from .pipeline import bicubic_upsample, display_measurement, simulate_measurement

# The face in skimage's 512 x 512 astronaut, framed as the CelebA crops are (eyes near mid-height).
ASTRONAUT_FACE_BOX = (134, 18, 314, 198)


def astronaut_face(size: int = 64) -> torch.Tensor:
    """The astronaut's face as a 3 x size x size tensor in [-1, 1]."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    return pil_to_tensor(resize(photo.crop(ASTRONAUT_FACE_BOX), size))


@dataclass
class Panel:
    title: str
    image: torch.Tensor  # 3 x H x W in [-1, 1]
    scores: dict[str, float] = field(default_factory=dict)


def render(panels: list[Panel], zoom: int = 3) -> Image.Image:
    """Panels side by side, enlarged ``zoom`` times (nearest neighbour, so pixels stay honest), captioned."""
    font = ImageFont.load_default(size=13)
    tiles = [tensor_to_pil(p.image).resize((p.image.shape[-1] * zoom, p.image.shape[-2] * zoom), Image.Resampling.NEAREST)
             for p in panels]
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


def demo_panels(prior, operator: LinearOperator, truth: torch.Tensor, method: str = "ssd", nfe: int = 30,
                seed: int = 0, sigma_y: float = 0.0, **hparams) -> tuple[list[Panel], dict]:
    """Degrade ``truth`` (3 x H x W) (plus noise of std ``sigma_y``), restore it, and return the panels and figures."""
    from . import restore

    x = truth[None].to(prior.device)
    y = simulate_measurement(operator, x, sigma_y, generator=torch.Generator().manual_seed(seed))
    if sigma_y > 0:
        hparams["sigma_y"] = sigma_y
    baseline = operator.A_pinv(y).clamp(-1, 1)
    started = time.perf_counter()
    result = restore(prior, operator, y, method=method, nfe=nfe, seed=seed, **hparams)
    seconds = time.perf_counter() - started
    restored = result.image.clamp(-1, 1)

    def scored(title: str, image: torch.Tensor) -> Panel:
        image = image[0].cpu() if image.ndim == 4 else image.cpu()
        return Panel(title, image, {"PSNR": psnr(image, truth), "SSIM": ssim(image, truth)})

    scale = getattr(operator, "scale", 1)
    first = (scored(f"bicubic x{scale}", bicubic_upsample(y, operator)) if scale > 1
             else scored("measurement", display_measurement(operator, y[0].cpu(), tuple(truth.shape[-2:]))))
    panels = [first, scored("A+y (pseudo-inverse)", baseline), scored(f"{method.upper()} ({result.nfe} NFE)", restored),
              Panel("truth", truth)]
    figures = {"seconds": seconds, "nfe": result.nfe,
               "consistency": float((operator.A(restored) - y).abs().mean()),
               **{f"{p.title.split(' ')[0]}_{k}": v for p in panels for k, v in p.scores.items()}}
    return panels, figures


def run_demo(out: str | Path = "ssdiff_demo.png", task: str = "sr_bicubic", model: str = "celeba64", nfe: int = 30,
             method: str = "ssd", seed: int = 0, device: str = "auto", hparams: dict | None = None,
             sigma_y: float = 0.0, **params) -> dict:
    """Run the demo end to end and write the side-by-side PNG; returns the figures printed by the CLI."""
    from . import load_model

    started = time.perf_counter()
    prior = load_model(model, device=device)
    size = prior.require_resolution()
    truth = astronaut_face(size[0])
    operator = get_operator(task, image_size=size, **params)
    panels, figures = demo_panels(prior, operator, truth, method=method, nfe=nfe, seed=seed, sigma_y=sigma_y,
                                  **(hparams or {}))
    path = write_image(render(panels), out)
    figures.update(path=str(path), total_seconds=time.perf_counter() - started, task=operator.name,
                   model=prior.name, device=str(prior.device))
    return figures
