"""``ssdiff demo``: restore a real portrait with the built-in prior, offline, in seconds on a CPU.

The portrait is the public-domain NASA ``astronaut`` photo that scikit-image ships; its face is
found and framed as the prior's training faces are (:mod:`ssdiff.faces`), at 64 x 64 for the
built-in prior, degraded, and restored.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from PIL import Image

from .faces import face_template, frame_face
from .figures import Panel, render
from .io import pil_to_tensor, resize, write_image
from .metrics import psnr, ssim
from .models import load_model
from .models.catalog import CELEBA64, FaceTemplate
from .operators import LinearOperator, get_operator
from .pipeline import bicubic_upsample, display_measurement, simulate_measurement
from .solvers import restore

# Priors without a known face framing get this square around the face of skimage's 512 x 512 astronaut.
ASTRONAUT_FACE_BOX = (134, 18, 314, 198)


def astronaut_face(size: int = 64, template: FaceTemplate | None = CELEBA64.face_template) -> torch.Tensor:
    """The astronaut's face (3 x size x size in [-1, 1]), framed as ``template``'s training faces
    (found by the face detector, as ``ssdiff restore`` frames faces), else the square above."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    if template is not None:
        scaled = FaceTemplate(size, tuple(c * size / template.size for c in template.center),
                              template.width * size / template.size)
        framed = frame_face(pil_to_tensor(photo), scaled)
        if framed is not None:
            return framed
    return pil_to_tensor(resize(photo.crop(ASTRONAUT_FACE_BOX), size))


def write_examples(folder: str | Path, size: int = 64) -> list[Path]:
    """Four public-domain faces to try the commands on: the astronaut's face framed as the prior's
    training faces, mirrored, and two closer crops of it (all from scikit-image's portrait)."""
    face = astronaut_face(size * 2)  # twice the size: room for the closer crops
    inner, step = size * 7 // 4, size // 8
    views = {"astronaut": face, "astronaut_mirrored": face.flip(-1),
             "astronaut_close_up": face[:, :inner, step : step + inner],
             "astronaut_close_down": face[:, 2 * step : 2 * step + inner, step : step + inner]}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_image(torch.nn.functional.interpolate(view[None], size=(size, size), mode="area")[0],
                        folder / f"{name}.png") for name, view in views.items()]


def demo_panels(prior, operator: LinearOperator, truth: torch.Tensor, method: str = "ssd", nfe: int = 30,
                seed: int = 0, sigma_y: float = 0.0, **hparams) -> tuple[list[Panel], dict]:
    """Degrade ``truth`` (3 x H x W) (plus noise of std ``sigma_y``), restore it, and return the panels and figures."""

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

    started = time.perf_counter()
    prior = load_model(model, device=device)
    size = prior.require_resolution()
    truth = astronaut_face(size[0], face_template(prior))
    operator = get_operator(task, image_size=size, **params)
    panels, figures = demo_panels(prior, operator, truth, method=method, nfe=nfe, seed=seed, sigma_y=sigma_y,
                                  **(hparams or {}))
    path = write_image(render(panels), out)
    figures.update(path=str(path), total_seconds=time.perf_counter() - started, task=operator.name,
                   model=prior.name, device=str(prior.device))
    return figures
