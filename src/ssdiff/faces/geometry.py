"""The geometry of face framing: the similarity between a photo and the prior's frame, warps
through it, and the feathered mask that blends a warped face into its photo."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Similarity:
    """``dst = scale * R(angle) (src - src_center) + dst_center`` on continuous pixel coordinates (x, y)."""

    scale: float
    angle: float  # radians; with y pointing down, a positive angle turns the picture clockwise
    src_center: tuple[float, float]
    dst_center: tuple[float, float]

    def inverse(self) -> Similarity:
        return Similarity(1.0 / self.scale, -self.angle, self.dst_center, self.src_center)

    def rescaled(self, src_factor: float, dst_factor: float) -> Similarity:
        """The same map between grids whose pixels are ``src_factor`` and ``dst_factor`` times larger."""
        return Similarity(self.scale * src_factor / dst_factor, self.angle,
                          (self.src_center[0] / src_factor, self.src_center[1] / src_factor),
                          (self.dst_center[0] / dst_factor, self.dst_center[1] / dst_factor))

    def source_of(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The source coordinates of destination points (x, y)."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        dx, dy = (x - self.dst_center[0]) / self.scale, (y - self.dst_center[1]) / self.scale
        return cos * dx + sin * dy + self.src_center[0], -sin * dx + cos * dy + self.src_center[1]


def warp(image: torch.Tensor, similarity: Similarity, size: tuple[int, int], mode: str = "bilinear",
         padding: str = "border") -> torch.Tensor:
    """Resample ``image`` (B x C x H x W) onto a ``size`` grid through ``similarity`` (source -> destination).

    Shrinking low-passes first (antialiased resize to about the target scale), so the samples do
    not alias; grid coordinates are normalised, so they do not depend on that resize.
    """
    height, width = image.shape[-2:]
    if similarity.scale < 1:
        shrunk = (max(1, round(height * similarity.scale)), max(1, round(width * similarity.scale)))
        image = F.interpolate(image, size=shrunk, mode="bilinear", antialias=True, align_corners=False)
    # coordinates in float32 even for half-precision images (float16 quantises 2048 px to 2 px steps)
    rows = torch.arange(size[0], dtype=torch.float32, device=image.device) + 0.5
    cols = torch.arange(size[1], dtype=torch.float32, device=image.device) + 0.5
    grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")
    src_x, src_y = similarity.source_of(grid_x, grid_y)
    grid = torch.stack([2 * src_x / width - 1, 2 * src_y / height - 1], dim=-1).to(image.dtype)
    return F.grid_sample(image, grid.expand(image.shape[0], -1, -1, -1), mode=mode, padding_mode=padding,
                         align_corners=False)


def feather(size: int, width: float, like: torch.Tensor) -> torch.Tensor:
    """1 x 1 x size x size: 1 inside, falling linearly to 0 over ``width`` pixels at the border."""
    position = torch.arange(size, dtype=like.dtype, device=like.device) + 0.5
    edge = torch.minimum(position, size - position)
    ramp = (edge / width).clamp(0, 1)
    return torch.minimum(ramp[:, None], ramp[None, :])[None, None]
