"""Colorization: the measurement is the per-pixel mean of the three channels."""

from __future__ import annotations

import math

import torch

from .base import LinearOperator, OperatorError


def _color_basis() -> torch.Tensor:
    """An orthonormal 3 x 3 basis whose first row is the gray direction (1, 1, 1) / sqrt(3)."""
    gray = torch.full((3,), 1 / math.sqrt(3), dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.stack([gray, torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64),
                                        torch.tensor([1.0, 1.0, -2.0], dtype=torch.float64)], dim=1))
    basis = q.T
    return basis * torch.sign(basis[0, 0])


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

    # SVD view: per pixel, A = (1/sqrt(3)) e_1^T Q with Q's first row the gray direction.
    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,...jhw->...ihw", _color_basis().to(x), x)

    def V(self, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ji,...jhw->...ihw", _color_basis().to(z), z)

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([1 / math.sqrt(3), 0.0, 0.0], dtype=x.dtype, device=x.device).view(3, 1, 1)
