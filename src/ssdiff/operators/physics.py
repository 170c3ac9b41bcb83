"""deepinv's physics objects as ssdiff operators, by duck typing (deepinv is not imported).

deepinv describes a linear degradation by ``A``, ``A_adjoint`` and ``A_dagger``; a decomposable
one also by its SVD, ``A = U diag(mask) V^T`` (``U``, ``U_adjoint``, ``V``, ``V_adjoint``, ``mask``).
When ``V_adjoint`` keeps the image's shape with real values, the SVD view is exact and every
method works; otherwise (deepinv's ``BlurFFT`` returns half-spectra, for one) the object goes
through the matrix-free path (:class:`~ssdiff.operators.MatrixFree`, CG).

deepinv's images are in [0, 1], ssdiff's in [-1, 1]. A linear ``A`` is the same map on both, only
the measurements differ: ``y = A x`` with ``x = 2 x01 - 1`` is ``2 y01 - A 1``. :func:`to_ours`
and :func:`from_ours` convert at the boundary.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .base import Decomposable, Kind, LinearOperator
from .inpaint import is_scattered
from .matrix_free import MatrixFree

# deepinv's A_dagger: singular values at or below this count as zero
DAGGER_ZERO = 1e-5

# deepinv's linear physics classes and the kind of degradation each is (its Inpainting by its mask);
# the methods' per-task defaults follow the kind, as for ssdiff's own operators
PHYSICS_KINDS = {
    "Blur": Kind.DEBLURRING,
    "BlurFFT": Kind.DEBLURRING,
    "SpaceVaryingBlur": Kind.DEBLURRING,
    "Downsampling": Kind.SUPER_RESOLUTION,
    "SuperResolution": Kind.SUPER_RESOLUTION,
    "Decolorize": Kind.COLORIZATION,
    "Denoising": Kind.DENOISING,
    "CompressedSensing": Kind.COMPRESSED_SENSING,
}
_warned: set[str] = set()


def physics_kind(physics: Any) -> Kind:
    """The :class:`Kind` of a deepinv physics object; an unknown class is :attr:`Kind.OTHER`, said once."""
    name = type(physics).__name__
    if name == "Inpainting":
        mask = torch.as_tensor(physics.mask).detach().cpu()  # the image's shape: one channel's mask tells
        return Kind.INPAINTING_SCATTERED if is_scattered(mask.reshape(-1, *mask.shape[-2:])[:1]) else Kind.INPAINTING
    if name in PHYSICS_KINDS:
        return PHYSICS_KINDS[name]
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"deepinv's {name} is not a degradation ssdiff knows ({', '.join([*PHYSICS_KINDS, 'Inpainting'])}): "
                      "the methods run with their defaults for other degradations (SSD t0=550, eta=0.4; DiffPIR "
                      "lam=1, zeta=0.25; DPS zeta=0.3); pass the method's options to restore() to choose",
                      UserWarning, stacklevel=4)
    return Kind.OTHER


def is_physics(candidate: Any) -> bool:
    """A deepinv-style physics object: ``A`` and ``A_adjoint``, and not an ssdiff operator."""
    return not isinstance(candidate, LinearOperator) and callable(getattr(candidate, "A", None)) \
        and callable(getattr(candidate, "A_adjoint", None))


def _is_decomposable(physics: Any) -> bool:
    return all(callable(getattr(physics, name, None)) for name in ("U", "U_adjoint", "V", "V_adjoint")) \
        and hasattr(physics, "mask")


class DecomposablePhysics(Decomposable):
    """A deepinv ``DecomposablePhysics`` whose ``V_adjoint`` keeps the image's shape: its SVD view."""

    measurement_ndim = measurement_channels = None  # whatever deepinv's A returns

    def __init__(self, physics: Any):
        self.physics = physics
        self.name = type(physics).__name__
        self.kind = physics_kind(physics)

    def _mask(self, like: torch.Tensor) -> torch.Tensor:
        mask = self.physics.mask
        return torch.as_tensor(mask, dtype=like.dtype, device=like.device).abs()

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.A(x)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.physics.A_adjoint(y)

    def image_shape(self, y: torch.Tensor) -> tuple[int, int]:
        return tuple(self.physics.A_adjoint(y).shape[-2:])

    def image_batch_shape(self, y: torch.Tensor) -> tuple[int, ...]:
        return tuple(self.physics.A_adjoint(y).shape)

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.V_adjoint(x)

    def V(self, z: torch.Tensor) -> torch.Tensor:
        return self.physics.V(z)

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        s = self._mask(x)
        return torch.where(s > DAGGER_ZERO, s, torch.zeros_like(s))

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        coefficients = self.physics.U_adjoint(y)
        mask = torch.as_tensor(self.physics.mask, dtype=coefficients.dtype, device=coefficients.device)
        kept = mask.abs() > DAGGER_ZERO  # divide by the mask itself: a negative entry flips its sign back
        return self.physics.V(torch.where(kept, coefficients / torch.where(kept, mask, 1), 0))


def physics_operator(physics: Any, y: torch.Tensor) -> LinearOperator:
    """The ssdiff operator for a deepinv-style physics object measuring ``y`` (see the module)."""
    if _is_decomposable(physics):
        x = physics.A_adjoint(y[:1])
        coefficients = physics.V_adjoint(x)
        if coefficients.shape == x.shape and not coefficients.is_complex():
            return DecomposablePhysics(physics)
    operator = MatrixFree(physics.A, physics.A_adjoint, name=type(physics).__name__)
    operator.kind = physics_kind(physics)
    operator.check_adjoint(physics.A_adjoint(y[:1]))
    return operator


def to_ours(operator: LinearOperator, y01: torch.Tensor) -> torch.Tensor:
    """A measurement of a [0, 1] image as the measurement of the same image in [-1, 1]: ``2 y - A 1``."""
    ones = torch.ones(operator.image_batch_shape(y01), dtype=y01.dtype, device=y01.device)
    return 2 * y01 - operator.A(ones)


def from_ours(image: torch.Tensor) -> torch.Tensor:
    """An image in [-1, 1] as deepinv's [0, 1]."""
    return (image + 1) / 2


def physics_noise(physics: Any) -> float | None:
    """The Gaussian noise level of the physics' noise model in ssdiff's units (twice deepinv's), if any."""
    sigma = getattr(getattr(physics, "noise_model", None), "sigma", None)
    return None if sigma is None else 2 * float(torch.as_tensor(sigma).max())
