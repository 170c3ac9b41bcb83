"""Deblurring: separable Gaussian and uniform blur, zero outside the image.

The paper's numbers (and DDRM's and DDNM's) come from the reference ``Deblurring`` class, which
differs from a plain separable blur in two ways that :class:`Blur` reproduces by default:

1. its 1-D matrix never uses the last tap of an odd kernel (row i holds
   ``kernel[j - i + k//2]`` for ``j`` in ``[i - k//2, i + k//2 - 1]``);
2. it sorts the 2-D singular values in descending order, but then lists them once per channel
   one after the other (``repeat(1, 3)``) while its coefficients are interleaved by channel,
   so sorted coefficient ``p`` of channel ``c`` is scaled by sorted singular value
   ``(3 p + c) mod N``. The result is still a linear operator with a known SVD, just not the
   same blur in every channel. Ties are ordered as ``torch.sort(descending=True)`` orders them.

``reference=False`` (the ``*_full`` task names) gives the blur as intended: every tap, and the
same singular values in every channel.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import Kind, OperatorError
from .svd import REFERENCE_ZERO, AxisSVD, ConvRows, SeparableOperator


def gaussian_kernel(size: int, sigma: float) -> tuple[float, ...]:
    """Samples of ``exp(-x^2 / (2 sigma^2))`` at integer offsets ``-size//2 .. size//2``, summing to 1."""
    values = [math.exp(-0.5 * (x / sigma) ** 2) for x in range(-(size // 2), size // 2 + 1)]
    total = sum(values)
    return tuple(v / total for v in values)


class Blur(SeparableOperator):
    """Separable blur with a 1-D ``kernel``; ``reference=True`` keeps the reference code's quirks."""

    channels = 3
    kind = Kind.DEBLURRING

    def __init__(self, kernel: tuple[float, ...], name: str, zero: float = REFERENCE_ZERO, reference: bool = True):
        if len(kernel) < 1:
            raise OperatorError(f"{name}: empty blur kernel")
        self.name = name
        self.reference = reference
        super().__init__(ConvRows(tuple(kernel), boundary="zero", all_taps=not reference), zero=zero)

    def spectrum(self, svd_h: AxisSVD, svd_w: AxisSVD) -> np.ndarray:
        S = super().spectrum(svd_h, svd_w)
        if not self.reference:
            return S
        flat = torch.from_numpy(S.reshape(-1))
        sorted_values, order = flat.sort(descending=True)
        n = flat.numel()
        shuffled = np.zeros((self.channels, n))
        for c in range(self.channels):
            shuffled[c, order.numpy()] = sorted_values.numpy()[(self.channels * np.arange(n) + c) % n]
        return shuffled.reshape(self.channels, *S.shape[-2:])


def gaussian_blur(kernel_size: int = 9, sigma: float = 15.0, reference: bool = True, zero: float = REFERENCE_ZERO) -> Blur:
    """The paper's Gaussian deblurring: 9 taps, sigma 15 (a nearly flat kernel, hence hard to invert)."""
    if kernel_size < 1 or sigma <= 0:
        raise OperatorError(f"deblur_gauss: need kernel_size >= 1 and sigma > 0, got {kernel_size}, {sigma}")
    return Blur(gaussian_kernel(kernel_size, sigma), "deblur_gauss" + ("" if reference else "_full"), zero, reference)


def uniform_blur(kernel_size: int = 9, reference: bool = True, zero: float = REFERENCE_ZERO) -> Blur:
    """DDRM's uniform deblurring: a box of ``kernel_size`` taps, each ``1 / kernel_size``."""
    if kernel_size < 1:
        raise OperatorError(f"deblur_uniform: need kernel_size >= 1, got {kernel_size}")
    return Blur((1.0 / kernel_size,) * kernel_size, "deblur_uniform" + ("" if reference else "_full"), zero, reference)
