"""Operators known only through two functions, ``A(x)`` and its adjoint ``AT(y)``.

Without an SVD, the pseudo-inverse and the back-projection are least-squares problems, solved by
conjugate gradient on the normal equations ``A^T A z = A^T b`` as the Decomposed Diffusion Sampler
does (DDS, Chung et al., ICLR 2024). Started from zero, CG stays in the range of ``A^T`` and
reaches the minimum-norm solution ``A^+ b``; started from an image ``x`` it reaches
``x + A^+ (y - A x)``, the back-projection, without ever forming ``A^+``. Inner products are per
image, so a batch gives the same results as its images one by one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import LinearOperator, OperatorError

Linear = Callable[[torch.Tensor], torch.Tensor]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image inner products, shaped to broadcast against the images."""
    return (a * b).flatten(1).sum(1).view(-1, *([1] * (a.ndim - 1)))


def conjugate_gradient(apply: Linear, b: torch.Tensor, x: torch.Tensor, iterations: int, tol: float = 1e-6) -> torch.Tensor:
    """Solve ``apply(x) = b`` for a symmetric positive semi-definite ``apply`` by CG from ``x``.

    Runs at most ``iterations`` steps, and stops once every image's residual is below ``tol``
    times its ``|b|``; images that converged earlier stop moving.
    """
    r = b - apply(x)
    p = r.clone()
    rs = _dot(r, r)
    floor = (tol * _dot(b, b).sqrt()) ** 2
    for _ in range(iterations):
        active = rs > floor
        if not active.any():
            break
        Ap = apply(p)
        alpha = torch.where(active, rs / _dot(p, Ap).clamp_min(1e-30), 0)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = _dot(r, r)
        p = r + torch.where(active, rs_new / rs.clamp_min(1e-30), 0) * p
        rs = rs_new
    return x


class MatrixFree(LinearOperator):
    """A linear degradation given by ``A(x)`` and its adjoint ``AT(y)``.

    ``A_pinv`` and ``project`` run conjugate gradient on the normal equations (see the module's
    docstring) for at most ``cg_iterations`` steps to a relative residual ``cg_tol``, unless a
    ``pinv`` function is given. ``shape`` (C, H, W) checks the adjoint, ``<A x, y> = <x, AT y>``,
    at construction; without it the check runs at the first image of each shape. Operators
    without an SVD view work with ``ssd``, ``ddnm`` (noise-free), ``dds``, ``diffpir``, ``cm4ir``,
    ``dps`` and ``red-diff``.
    """

    measurement_ndim = measurement_channels = None  # whatever the user's A returns

    def __init__(self, A: Linear, AT: Linear, pinv: Linear | None = None, name: str = "matrix_free",
                 shape: tuple[int, ...] | None = None, cg_iterations: int = 100, cg_tol: float = 1e-6):
        self._A, self._AT, self._pinv = A, AT, pinv
        self.name = name
        self.cg_iterations, self.cg_tol = cg_iterations, cg_tol
        self._checked: set[tuple[int, ...]] = set()
        if shape is not None:
            self.check_adjoint(torch.randn(1, *shape, generator=torch.Generator().manual_seed(0)))

    def check_adjoint(self, x: torch.Tensor, rtol: float = 1e-4) -> float:
        """Relative error of ``<A x, y> = <x, AT y>`` for ``x`` and a random ``y``; raises
        :class:`OperatorError` above ``rtol``."""
        x = x.double() if x.dtype == torch.float64 else x.float()
        ax = self._A(x)
        y = torch.randn(ax.shape, generator=torch.Generator().manual_seed(1), dtype=ax.dtype).to(ax.device)
        aty = self._AT(y)
        if aty.shape != x.shape:
            raise OperatorError(f"{self.name}: AT maps a {tuple(y.shape[1:])} measurement to {tuple(aty.shape[1:])}, "
                                f"not to the image's {tuple(x.shape[1:])}")
        left, right = (ax * y).sum().item(), (x * aty).sum().item()
        error = abs(left - right) / max(abs(left), abs(right), 1e-12)
        if error > rtol:
            raise OperatorError(f"{self.name}: AT is not the adjoint of A (<A x, y> = {left:.6g} but <x, AT y> = "
                                f"{right:.6g}, relative error {error:.2g})")
        self._checked.add(tuple(x.shape[1:]))
        return error

    def A(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) not in self._checked:
            self.check_adjoint(x[:1])
        return self._A(x)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._AT(y)

    def image_shape(self, y: torch.Tensor) -> tuple[int, int]:
        return tuple(self._AT(y).shape[-2:])

    def image_batch_shape(self, y: torch.Tensor) -> tuple[int, ...]:
        return tuple(self._AT(y).shape)

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        if self._pinv is not None:
            return self._pinv(y)
        b = self._AT(y)
        return conjugate_gradient(self.normal, b, torch.zeros_like(b), self.cg_iterations, self.cg_tol)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^T A x``."""
        return self._AT(self.A(x))

    def project(self, x: torch.Tensor, y: torch.Tensor, rho: float = 0.0) -> torch.Tensor:
        """The back-projection ``x + A^+(y - A x)`` (``rho = 0``) or the proximal step
        ``argmin_z |y - A z|^2 + rho |z - x|^2``, by CG started from ``x``."""
        if rho < 0:
            raise ValueError(f"the proximal weight rho must be >= 0, got {rho}")
        if self._pinv is not None and rho == 0:
            return super().project(x, y)
        b = self._AT(y) + rho * x
        return conjugate_gradient(lambda z: self.normal(z) + rho * z, b, x, self.cg_iterations, self.cg_tol)
