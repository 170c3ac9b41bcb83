"""Compressed sensing with a randomly subsampled Walsh-Hadamard transform, per channel."""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .base import Decomposable, Kind, OperatorError


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal fast Walsh-Hadamard transform over the last axis (Hadamard order); its own inverse."""
    n = x.shape[-1]
    y, h = x, 1
    while h < n:
        y = y.reshape(*x.shape[:-1], n // (2 * h), 2, h)
        y = torch.stack((y[..., 0, :] + y[..., 1, :], y[..., 0, :] - y[..., 1, :]), dim=-2)
        h *= 2
    return y.reshape(x.shape) / math.sqrt(n)


@lru_cache(maxsize=16)
def _permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


class WalshHadamardCS(Decomposable):
    """``y = S H x``: the Walsh-Hadamard transform ``H`` of each flattened channel, of which a
    fixed random subset ``S`` of ``round(ratio * H * W)`` coefficients is kept. The rows are
    orthonormal, so ``A^+ = A^T`` (scatter back, transform again). The measurement
    (B x C x m) does not tell the image size, so the operator is built for one size.

    The subset comes from ``torch.randperm`` seeded with 42 on the CPU (the reference draws it on
    CUDA, whose stream differs, so the chosen coefficients differ from the reference's).
    """

    measurement_ndim = 3  # B x C x m coefficients
    kind = Kind.COMPRESSED_SENSING

    def __init__(self, image_size: tuple[int, int], ratio: float = 0.25, seed: int = 42):
        if not 0 < ratio <= 1:
            raise OperatorError(f"cs_walsh_hadamard: ratio must be in (0, 1], got {ratio}")
        self.name = f"cs_walsh_hadamard_{ratio:g}"
        self.height, self.width = image_size
        self.validate(self.height, self.width)
        n = self.height * self.width
        self.kept = _permutation(n, seed)[: max(1, round(ratio * n))]

    def validate(self, height: int, width: int) -> None:
        n = height * width
        if n & (n - 1):
            raise OperatorError(
                f"{self.name}: the Walsh-Hadamard transform needs H*W to be a power of two, got {height}x{width}"
            )
        if hasattr(self, "height") and (height, width) != (self.height, self.width):
            raise OperatorError(f"{self.name}: built for {self.height}x{self.width} images, got {height}x{width}")

    def workspace_bytes(self, height: int, width: int) -> int:
        return 16 * height * width  # the permutation and the kept indices (int64)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        self.validate(*x.shape[-2:])
        return fwht(x.flatten(-2))[..., self.kept.to(x.device)]

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(*y.shape[:-1], self.height * self.width, dtype=y.dtype, device=y.device)
        full[..., self.kept.to(y.device)] = y
        return fwht(full).reshape(*y.shape[:-1], self.height, self.width)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.A_pinv(y)  # orthonormal rows: A^T = A^+ (the generic adjoint assumes image-shaped measurements)

    def image_shape(self, y: torch.Tensor) -> tuple[int, int]:
        return self.height, self.width

    # SVD view: V = H (symmetric, orthonormal), the kept coefficients have singular value 1.
    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return fwht(x.flatten(-2)).reshape(x.shape)

    def V(self, z: torch.Tensor) -> torch.Tensor:
        return fwht(z.flatten(-2)).reshape(z.shape)

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        kept = torch.zeros(self.height * self.width, dtype=x.dtype, device=x.device)
        kept[self.kept.to(x.device)] = 1.0
        return kept.view(1, self.height, self.width)
