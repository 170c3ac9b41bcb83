"""From files to restorations and back: measurements as pictures, and side-by-side panels.

A measurement ``y`` is written and read as an ordinary picture where it is one: the small
image of super-resolution, the gray image of colorization, the blurred image, the image with
its missing pixels black. Compressed-sensing measurements are not pictures and can only be
simulated from clean images (``--from-clean``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .io import InputError
from .operators import Colorization, Inpainting, LinearOperator, SeparableOperator, WalshHadamardCS


def measurement_to_image(operator: LinearOperator, y: torch.Tensor) -> torch.Tensor:
    """A measurement (C x h x w) as a picture to save (3 x h x w)."""
    if isinstance(operator, WalshHadamardCS):
        raise InputError(f"{operator.name}: compressed-sensing measurements are not images")
    return y.expand(3, -1, -1) if y.shape[0] == 1 else y


def image_to_measurement(operator: LinearOperator, image: torch.Tensor, name: str = "input") -> torch.Tensor:
    """A picture of a measurement (3 x h x w in [-1, 1]) as the ``y`` the operator expects (C x h x w)."""
    if isinstance(operator, WalshHadamardCS):
        raise InputError(f"{name}: compressed-sensing measurements are not images; use --from-clean")
    if isinstance(operator, Colorization):
        return image.mean(dim=0, keepdim=True)
    if isinstance(operator, Inpainting):
        operator.validate(*image.shape[-2:])
        return operator.A(image[None])[0]
    return image


def restored_size(operator: LinearOperator, y: torch.Tensor) -> tuple[int, int]:
    """(H, W) of the image a measurement ``y`` (C x h x w) restores to."""
    return tuple(operator.image_shape(y[None]))


def display_measurement(operator: LinearOperator, y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The measurement shown at the restored size: nearest-neighbour enlarged, or ``A^+ y`` for CS."""
    if isinstance(operator, WalshHadamardCS):
        return operator.A_pinv(y[None])[0].clamp(-1, 1)
    picture = measurement_to_image(operator, y)
    if tuple(picture.shape[-2:]) != tuple(size):
        picture = F.interpolate(picture[None], size=size, mode="nearest")[0]
    return picture


def crop_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """The centred crop of ``image`` (... x H x W) whose sides are multiples of ``multiple``."""
    height, width = image.shape[-2:]
    new_h, new_w = height - height % multiple, width - width % multiple
    if new_h == 0 or new_w == 0:
        raise InputError(f"image of {height}x{width} is smaller than the scale {multiple}")
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return image[..., top : top + new_h, left : left + new_w]


def side_by_side(panels: list[torch.Tensor], gap: int = 4) -> torch.Tensor:
    """Panels of equal height (3 x H x W_i) in a row, separated by white gaps."""
    height = max(p.shape[-2] for p in panels)
    pieces = []
    for index, panel in enumerate(panels):
        if index:
            pieces.append(torch.ones(3, height, gap))
        pieces.append(panel.detach().float().cpu().clamp(-1, 1))
    return torch.cat(pieces, dim=-1)


def bicubic_upsample(y: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
    """The plain bicubic baseline for super-resolution (B x C x h x w -> B x C x H x W)."""
    if not isinstance(operator, SeparableOperator) or operator.scale == 1:
        raise ValueError(f"{operator.name}: bicubic upsampling is a super-resolution baseline")
    return F.interpolate(y, scale_factor=operator.scale, mode="bicubic", align_corners=False).clamp(-1, 1)
