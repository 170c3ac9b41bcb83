"""Colorization: the measurement is the per-pixel mean of the three channels."""

from __future__ import annotations

import torch

from .base import LinearOperator, OperatorError


class Colorization(LinearOperator):
    """``y = (x_R + x_G + x_B) / 3`` (1 channel); ``A^+ y`` repeats ``y`` in every channel.

    The pseudo-inverse of the row ``w = (1/3, 1/3, 1/3)`` is ``w^T / |w|^2 = (1, 1, 1)^T``.
    """

    name = "colorization"

    def A(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-3] != 3:
            raise OperatorError(f"colorization: needs 3-channel images, got {x.shape[-3]} channels")
        return x.mean(dim=-3, keepdim=True)

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        return y.expand(*y.shape[:-3], 3, *y.shape[-2:]).contiguous()
