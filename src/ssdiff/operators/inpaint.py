"""Inpainting: keep the pixels where the mask is 1, lose the others."""

from __future__ import annotations

import os

import numpy as np
import torch

from .base import Decomposable, Kind, OperatorError


def _fraction(spec: str, value: float | str, within: str) -> float:
    """``value`` as a float inside ``within`` ("[0, 1)" or "(0, 1]"), or an error showing the spec's form."""
    try:
        fraction = float(value)
    except ValueError:
        fraction = -1.0
    inside = 0 <= fraction < 1 if within == "[0, 1)" else 0 < fraction <= 1
    if not inside:
        what = "the fraction of missing pixels" if spec == "random" else "the fraction of each side missing"
        raise OperatorError(f"inpaint: a {spec} mask looks like {spec}:F with F, {what}, in {within}; got {spec}:{value}")
    return fraction


def center_box_mask(height: int, width: int, fraction: float | str = 0.5) -> torch.Tensor:
    """A mask (H x W, 1 = known) with a centred box of ``fraction`` of each side missing."""
    fraction = _fraction("box", fraction, "(0, 1]")
    mask = torch.ones(height, width)
    box_h, box_w = round(height * fraction), round(width * fraction)
    top, left = (height - box_h) // 2, (width - box_w) // 2
    mask[top : top + box_h, left : left + box_w] = 0
    return mask


def random_mask(height: int, width: int, missing: float | str, seed: int = 0) -> torch.Tensor:
    """A mask (H x W, 1 = known) with a fraction ``missing`` of the pixels lost, drawn from ``seed``."""
    fraction = _fraction("random", missing, "[0, 1)")
    draw = torch.rand(height, width, generator=torch.Generator().manual_seed(int(seed)))
    return (draw >= fraction).float()


def load_mask(path: str | os.PathLike) -> torch.Tensor:
    """A mask image: white (>= 50% gray) marks known pixels, black the pixels to fill in."""
    from ..io import InputError, opened_image

    try:
        with opened_image(path, "mask image") as image:
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except InputError as error:
        raise OperatorError(str(error)) from None
    return torch.from_numpy((gray >= 0.5).astype(np.float32))


def is_scattered(mask: torch.Tensor) -> bool:
    """Whether most missing pixels (0) have a known pixel among their 8 neighbours: random-pixel
    masks (80 % missing: 83 % of them do), unlike holes such as the centre box (12 % at 64 x 64).

    A random mask is scattered up to about 91 % missing (``1 - F^8 > 1/2``); beyond, its known
    pixels are sparse hints in a hole. Holes up to 6 px wide count as scattered. Per-image masks
    (B x 1 x H x W) are judged together."""
    missing = mask < 0.5
    if not missing.any():
        return False
    near_known = torch.nn.functional.max_pool2d((~missing).float().reshape(-1, 1, *mask.shape[-2:]), 3, 1, 1) > 0
    return bool(near_known.reshape(missing.shape)[missing].float().mean() > 0.5)


class Inpainting(Decomposable):
    """``y = m * x`` with a binary mask ``m`` (1 = known); ``A^+ = A`` since ``m`` is a projection.

    The measurement keeps the image's shape, with zeros where pixels are missing, so one mask
    or one mask per image (B x 1 x H x W) both work. The name says the mask's kind, since the
    best few-step configuration differs: ``inpaint`` for holes, ``inpaint_scattered`` for
    scattered missing pixels (:func:`is_scattered`); the ``ssd-fast`` presets are looked up by it.
    """

    def __init__(self, mask: torch.Tensor | np.ndarray | str | os.PathLike):
        if isinstance(mask, (str, os.PathLike)):
            mask = load_mask(mask)
        mask = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask, dtype=torch.float32)
        if mask.ndim == 2:
            mask = mask[None, None]
        elif mask.ndim == 3:
            mask = mask[:, None] if mask.shape[0] != 1 else mask[None]
        if mask.ndim != 4 or mask.shape[1] != 1:
            raise OperatorError(f"inpaint: mask must be H x W, 1 x H x W or B x 1 x H x W, got {tuple(mask.shape)}")
        self.mask = (mask > 0.5).float()
        self.kind = Kind.INPAINTING_SCATTERED if is_scattered(self.mask) else Kind.INPAINTING
        self.name = "inpaint_scattered" if self.kind is Kind.INPAINTING_SCATTERED else "inpaint"

    def validate(self, height: int, width: int) -> None:
        if tuple(self.mask.shape[-2:]) != (height, width):
            raise OperatorError(
                f"inpaint: mask is {self.mask.shape[-2]}x{self.mask.shape[-1]} but the image is {height}x{width}"
            )

    def _mask_for(self, x: torch.Tensor) -> torch.Tensor:
        self.validate(x.shape[-2], x.shape[-1])
        return self.mask.to(device=x.device, dtype=x.dtype)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._mask_for(x)

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._mask_for(y)

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def V(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        return self._mask_for(x)
