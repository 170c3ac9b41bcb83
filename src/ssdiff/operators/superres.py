"""Super-resolution: bicubic and box-average downsampling by an integer factor."""

from __future__ import annotations

import numpy as np

from .base import Kind, OperatorError
from .svd import REFERENCE_ZERO, ConvRows, SeparableOperator


def cubic(x: float, a: float = -0.5) -> float:
    """Keys' cubic convolution kernel (Keys 1981, Eq. 15) with ``a = -0.5``."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def bicubic_kernel(scale: int) -> tuple[float, ...]:
    """The reference's 1-D anti-aliasing bicubic kernel: ``4 * scale`` taps at half-pixel offsets, sum 1."""
    taps = 4 * scale
    kernel = np.array([cubic((i - taps // 2 + 0.5) / scale) for i in range(taps)])
    return tuple(kernel / kernel.sum())


def _check_scale(name: str, scale: int) -> int:
    if int(scale) != scale or scale < 1:
        raise OperatorError(f"{name}: scale must be a positive integer, got {scale}")
    return int(scale)


class BicubicSR(SeparableOperator):
    """Bicubic downsampling by ``scale`` (reflective borders), as in DDRM/DDNM/SSD's ``SRConv``."""

    kind = Kind.SUPER_RESOLUTION

    def __init__(self, scale: int = 4, zero: float = REFERENCE_ZERO):
        scale = _check_scale("sr_bicubic", scale)
        self.name = f"sr_bicubic_x{scale}"
        rows = ConvRows(bicubic_kernel(scale), stride=scale, boundary="reflect")
        super().__init__(rows, zero=zero, scale=scale)


class AverageSR(SeparableOperator):
    """Box-average downsampling by ``scale``; its exact pseudo-inverse repeats each pixel ``scale`` times."""

    kind = Kind.SUPER_RESOLUTION

    def __init__(self, scale: int = 4):
        scale = _check_scale("sr_average", scale)
        self.name = f"sr_average_x{scale}"
        # Centred at i = scale//2 + k*scale, the box covers exactly block k: plain block averaging.
        rows = ConvRows((1.0 / scale,) * scale, stride=scale, boundary="zero", all_taps=True)
        super().__init__(rows, zero=0.0, scale=scale)
