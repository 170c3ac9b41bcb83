"""Colorization: the measurement is a weighted sum of the three channels per pixel."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import Decomposable, Kind, OperatorError

# The released code of DDRM, DDNM and SSD builds the gray row as (0.3333, 0.3334, 0.3333), not an
# exact mean; reproducing it keeps the published numbers (1.6e-3 end-to-end difference).
RELEASED_WEIGHTS = (0.3333, 0.3334, 0.3333)
MEAN_WEIGHTS = (1 / 3, 1 / 3, 1 / 3)


class Colorization(Decomposable):
    """``y = w_R x_R + w_G x_G + w_B x_B`` (1 channel); ``A^+ y = w y / |w|^2`` in every channel.

    Per pixel ``A`` is the row ``w``: its SVD has one singular value ``|w|`` along ``w / |w|`` and
    a two-dimensional null space (the chroma), completed here to an orthonormal basis.
    """

    measurement_channels = 1
    kind = Kind.COLORIZATION

    def __init__(self, weights: Sequence[float] = RELEASED_WEIGHTS, name: str = "colorization"):
        self.weights = torch.tensor([float(w) for w in weights], dtype=torch.float64)
        if self.weights.shape != (3,) or self.weights.norm() == 0:
            raise OperatorError(f"{name}: needs three channel weights, not all zero; got {list(weights)}")
        self.name = name
        # rows of the basis: w / |w| first, then two orthonormal chroma directions (QR of [w, e_x, e_y])
        q, _ = torch.linalg.qr(torch.stack([self.weights, torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64),
                                            torch.tensor([1.0, 1.0, -2.0], dtype=torch.float64)], dim=1))
        self.basis = q.T * torch.sign(q[0, 0])

    def A(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-3] != 3:
            raise OperatorError(f"{self.name}: needs 3-channel images, got {x.shape[-3]} channels")
        return torch.einsum("c,...chw->...hw", self.weights.to(x), x).unsqueeze(-3)

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        return (self.weights / self.weights.square().sum()).to(y).view(3, 1, 1) * y

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,...jhw->...ihw", self.basis.to(x), x)

    def V(self, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ji,...jhw->...ihw", self.basis.to(z), z)

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([self.weights.norm().item(), 0.0, 0.0], dtype=x.dtype, device=x.device).view(3, 1, 1)
