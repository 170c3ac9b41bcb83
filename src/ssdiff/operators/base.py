"""The interface every degradation shares: ``A``, ``A_pinv`` and the back-projection ``project``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum

import torch


class OperatorError(ValueError):
    """An operator cannot be built or applied as asked (bad option, incompatible image size)."""


class Kind(str, Enum):
    """What kind of degradation an operator is: the methods' per-task defaults are looked up by it
    (never by the operator's name, which a user's or deepinv's operator chooses freely)."""

    SUPER_RESOLUTION = "super-resolution"
    DEBLURRING = "deblurring"
    COLORIZATION = "colorization"
    INPAINTING = "inpainting"  # holes: most missing pixels far from a known one
    INPAINTING_SCATTERED = "inpainting-scattered"  # scattered missing pixels (random masks)
    COMPRESSED_SENSING = "compressed-sensing"
    DENOISING = "denoising"
    OTHER = "other"

    @property
    def inpainting(self) -> bool:
        return self in (Kind.INPAINTING, Kind.INPAINTING_SCATTERED)


class LinearOperator(ABC):
    """A linear degradation ``y = A x`` of images B x C x H x W in [-1, 1].

    Subclasses implement :meth:`A` and :meth:`A_pinv` (the Moore-Penrose pseudo-inverse, or the
    truncated one the reference code uses); :meth:`project` is the back-projection that SSD and
    DDNM apply to every x0 estimate. Operators work at the size of the image they are given and
    cache whatever they precompute per size, dtype and device.
    """

    name: str = "operator"
    kind: Kind = Kind.OTHER
    image_channels: int = 3  # the images A takes (RGB); operators built from functions read it off AT(y)
    # What ``A`` returns for images B x C x H x W: a tensor of this many dimensions and channels
    # (None: not known in advance, as for operators built from any pair of functions).
    measurement_ndim: int | None = 4
    measurement_channels: int | None = 3

    @abstractmethod
    def A(self, x: torch.Tensor) -> torch.Tensor:
        """The degradation ``y = A x``."""

    @abstractmethod
    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        """The pseudo-inverse ``A^+ y``, an image of the size that produced ``y``."""

    def project(self, x: torch.Tensor, y: torch.Tensor, rho: float = 0.0) -> torch.Tensor:
        """Back-projection onto ``{x : A x = y}``: ``x - A^+ A x + A^+ y`` (DDNM Eq. 13, SSD Eq. 12).

        With ``rho > 0``, the proximal step ``argmin_z |y - A z|^2 + rho |z - x|^2`` instead, i.e.
        ``x + A_rho^+ (y - A x)`` with the Tikhonov pseudo-inverse ``A_rho^+ = A^T (A A^T + rho)^-1``,
        ``s / (s^2 + rho)`` per singular value (DiffPIR's data step, CM4IR's regularised guidance),
        which needs the SVD view (:class:`Decomposable`) or a solver of its own (:class:`MatrixFree`).
        """
        if rho < 0:
            raise ValueError(f"the proximal weight rho must be >= 0, got {rho}")
        if rho > 0:
            raise OperatorError(f"{self.name}: the proximal step needs the SVD view or a matrix-free solve")
        return x + self.A_pinv(y - self.A(x))

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """The adjoint ``A^T y``. ``A`` is linear, so ``A^T y`` is the gradient of ``<A x, y>`` with
        respect to ``x`` (at any ``x``); operators with a cheaper closed form override this."""
        x = torch.zeros(self.image_batch_shape(y), dtype=y.dtype, device=y.device, requires_grad=True)
        with torch.enable_grad():
            (gradient,) = torch.autograd.grad((self.A(x) * y).sum(), x)
        return gradient

    @property
    def has_svd(self) -> bool:
        """Whether the operator has the SVD view (``Vt``, ``V``, ``singular_map``): a :class:`Decomposable`."""
        return isinstance(self, Decomposable)

    def image_shape(self, y: torch.Tensor) -> tuple[int, int]:
        """The (H, W) of the image a measurement ``y`` comes from (same as y's unless overridden)."""
        return tuple(y.shape[-2:])

    def image_batch_shape(self, y: torch.Tensor) -> tuple[int, ...]:
        """B x C x H x W of the images the measurements ``y`` come from."""
        return (y.shape[0], self.image_channels, *self.image_shape(y))

    def validate(self, height: int, width: int) -> None:
        """Raise :class:`OperatorError` if this operator cannot act on an H x W image."""

    def workspace_bytes(self, height: int, width: int) -> int:
        """Memory the operator precomputes for H x W images (factors, transfer functions), which
        the budget of a restoration counts (:func:`ssdiff.limits.restoration_bytes`) before any work."""
        return 0

    def check(self, x: torch.Tensor, atol: float = 1e-4) -> dict[str, float]:
        """Self-check on ``x``: the largest absolute errors of the two pseudo-inverse identities.

        Returns ``{"AApA": max|A A^+ A x - A x|, "ApAAp": max|A^+ A A^+ y - A^+ y|}`` for ``y = A x``;
        both vanish for an exact pseudo-inverse. Raises :class:`OperatorError` above ``atol``.
        """
        y = self.A(x)
        y_back = self.A_pinv(y)
        errors = {
            "AApA": (self.A(y_back) - y).abs().max().item(),
            "ApAAp": (self.A_pinv(self.A(y_back)) - y_back).abs().max().item(),
        }
        if max(errors.values()) > atol:
            raise OperatorError(f"{self.name}: pseudo-inverse self-check failed: {errors}")
        return errors

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class Decomposable(LinearOperator):
    """A degradation with an SVD view, ``A = U diag(s) V^T``: what DDRM, DDNM+'s noise-aware update,
    PiGDM's noisy weighting and the proximal step work in. Callers test ``isinstance(op,
    Decomposable)`` (or :attr:`~LinearOperator.has_svd`); an operator without one is a plain
    :class:`LinearOperator`.

    ``Vt`` maps an image to its coefficients in the orthonormal basis V (same shape as the image),
    ``V`` maps back, and ``singular_map`` gives each coefficient's singular value (zero for the
    null space). ``V^T A^+ y`` are then the measured coefficients divided by ``s``.
    """

    @abstractmethod
    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients ``V^T x`` of an image in the right-singular basis (same shape as ``x``)."""

    @abstractmethod
    def V(self, z: torch.Tensor) -> torch.Tensor:
        """The image ``V z`` of coefficients ``z``."""

    @abstractmethod
    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        """Singular value of every coefficient of ``Vt(x)``, broadcastable to ``x``'s shape."""

    def project(self, x: torch.Tensor, y: torch.Tensor, rho: float = 0.0) -> torch.Tensor:
        if rho <= 0:
            return super().project(x, y, rho)
        s = self.singular_map(x)
        return x + self.V(s**2 / (s**2 + rho) * self.Vt(self.A_pinv(y - self.A(x))))


class Identity(Decomposable):
    """``A = I``: plain denoising (with ``sigma_y`` > 0) or unconditional refinement."""

    name = "denoise"
    kind = Kind.DENOISING

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def V(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x[:1])
