"""Blur with any 2-D kernel, applied in the Fourier domain as a circular convolution.

A circular convolution is diagonal in the 2-D Fourier basis: ``A x = F^-1 (K^ . F x)`` with
``K^`` the kernel's transfer function (its FFT at the image's size, centred on pixel (0, 0)). Its
singular values are ``|K^|``; since ``|K^(k)| = |K^(-k)|`` for a real kernel, ``A^T A`` is also
diagonal in the real, orthonormal and self-inverse 2-D discrete Hartley transform
``H x = Re(F x) - Im(F x)`` (unitary scaling), which is therefore the SVD view's ``V``: DDRM,
DDNM+ and DiffPIR's proximal step work on its real coefficients unchanged. As for the separable
operators, transfer values under a cut-off (``zero``, default 1e-2 of the DC gain) are dropped
from both ``A`` and ``A^+``, so ``A A^+ A = A`` holds exactly.

Real photos are not periodic: their border pixels saw the scene beyond the frame. For them,
:class:`ValidBlur` restores a canvas larger than the photo by the kernel's support, of which the
photo is the "valid" part of the blur (nothing wraps around); ``ssdiff restore`` uses it for
photos and crops the canvas back to the photo's frame.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base import Decomposable, Kind, OperatorError
from .matrix_free import MatrixFree

KERNEL_SPECS = "gauss:SIGMA, motion:LENGTH,ANGLE or disk:RADIUS"
MAX_KERNEL_SIZE = 1024  # px: a spec beyond it is a typo, and its kernel would not fit in memory


# The benchmark's motion blurs (length px, angle degrees): drawn once with numpy's default_rng(2026),
# lengths 9-21 and angles 0-179, and fixed here; image i of a benchmark is blurred by kernel i mod 8.
BENCHMARK_MOTION = ((20, 115), (11, 63), (9, 149), (17, 142), (13, 126), (15, 162), (10, 129), (13, 31))


def gaussian_kernel_2d(sigma: float) -> np.ndarray:
    """An isotropic Gaussian of std ``sigma`` px, cut at 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    grid = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * (grid / sigma) ** 2)
    return np.outer(g, g)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A straight motion blur of ``length`` px at ``angle`` degrees (counter-clockwise from the x axis),
    drawn as many points along the segment splatted bilinearly, so any angle is antialiased."""
    radius = max(1, math.ceil(length / 2) + 1)
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1))
    theta = math.radians(angle)
    for s in np.linspace(-length / 2, length / 2, max(2, int(length * 8))):
        col, row = radius + s * math.cos(theta), radius - s * math.sin(theta)  # image rows grow downwards
        r0, c0 = math.floor(row), math.floor(col)
        fr, fc = row - r0, col - c0
        for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            kernel[r0 + dr, c0 + dc] += w
    return kernel


def disk_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """A defocus disk of ``radius`` px: each pixel weighted by the fraction of it inside the circle."""
    half = math.ceil(radius)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    grid = np.arange(-half, half + 1)
    ys = (grid[:, None] + offsets[None, :]).reshape(-1)
    inside = (ys[:, None] ** 2 + ys[None, :] ** 2) <= radius**2
    n = len(grid)
    return inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))


def _parse_spec(spec: str) -> np.ndarray:
    kind, _, args = spec.partition(":")
    try:
        values = [float(v) for v in args.split(",")] if args else []
    except ValueError:
        values = None
    shapes = {"gauss": (1, gaussian_kernel_2d), "motion": (2, motion_kernel), "disk": (1, disk_kernel)}
    if kind not in shapes or values is None or len(values) != shapes[kind][0]:
        raise OperatorError(f"kernel {spec!r}: expected a kernel image or array, or {KERNEL_SPECS}")
    if not all(math.isfinite(v) for v in values):
        raise OperatorError(f"kernel {spec!r}: its numbers must be finite ({KERNEL_SPECS})")
    if kind in ("gauss", "disk") and values[0] <= 0 or kind == "motion" and values[0] < 1:
        raise OperatorError(f"kernel {spec!r}: the size must be positive (motion: a length of at least 1 px)")
    if values[0] > MAX_KERNEL_SIZE / (6 if kind == "gauss" else 2 if kind == "disk" else 1):
        raise OperatorError(f"kernel {spec!r}: larger than {MAX_KERNEL_SIZE} px, more than any image here can take")
    return shapes[kind][1](*values)


def _read_kernel_image(path: Path) -> np.ndarray:
    from ..io import InputError, opened_image

    try:
        with opened_image(path, "the kernel image") as image:
            return np.asarray(image.convert("F"), dtype=np.float64)
    except InputError as error:
        raise OperatorError(str(error)) from None


def make_kernel(kernel: str | os.PathLike | np.ndarray | torch.Tensor | None) -> torch.Tensor:
    """A 2-D blur kernel, float64 and normalised to sum 1, from an array or tensor, an image file,
    or a spec string (:data:`KERNEL_SPECS`). Raises :class:`OperatorError` for a bad kernel."""
    if kernel is None:
        raise OperatorError(f"this task needs a blur kernel: an image file, an array, or {KERNEL_SPECS} (--kernel)")
    if isinstance(kernel, (str, os.PathLike)):
        if Path(kernel).is_file():
            name, array = str(kernel), _read_kernel_image(Path(kernel))
        elif isinstance(kernel, str) and re.fullmatch(r"[a-z]+:.*", kernel):
            name, array = f"kernel {kernel!r}", _parse_spec(kernel)
        else:
            raise OperatorError(f"{kernel}: no such kernel file (a kernel is an image file, an array, or {KERNEL_SPECS})")
    else:
        name = "kernel"
        try:
            array = kernel.detach().cpu().double().numpy() if torch.is_tensor(kernel) else np.asarray(kernel, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise OperatorError(f"kernel: not a 2-D array of numbers ({error})") from None
    if array.ndim != 2 or array.size == 0:
        raise OperatorError(f"{name}: a blur kernel must be a non-empty 2-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise OperatorError(f"{name}: the kernel holds NaN or infinite values")
    total = array.sum()
    if not total > 0:
        raise OperatorError(f"{name}: the kernel sums to {total:g}; a blur kernel must have a positive sum "
                            "(it is normalised to 1)")
    return torch.from_numpy(array / total)


def make_kernels(kernels) -> torch.Tensor:
    """One kernel (n = 1) or one per image: a 1 x kh x kw or n x kh x kw stack, each normalised.

    ``kernels`` is anything :func:`make_kernel` takes, a list of such, or a 3-D array or tensor
    (n x kh x kw). Kernels of different sizes are zero-padded around their centres to one size.
    """
    if isinstance(kernels, (list, tuple)) and kernels and not isinstance(kernels[0], (int, float)) \
            and not (isinstance(kernels[0], (list, tuple)) and kernels[0] and isinstance(kernels[0][0], (int, float))) or (torch.is_tensor(kernels) or isinstance(kernels, np.ndarray)) and kernels.ndim == 3:
        stack = [make_kernel(k) for k in kernels]
    else:
        stack = [make_kernel(kernels)]
    kh = max(k.shape[0] for k in stack) | 1  # odd, so the centre stays a pixel
    kw = max(k.shape[1] for k in stack) | 1
    out = torch.zeros(len(stack), kh, kw, dtype=torch.float64)
    for i, k in enumerate(stack):
        top, left = (kh - k.shape[0]) // 2, (kw - k.shape[1]) // 2
        out[i, top : top + k.shape[0], left : left + k.shape[1]] = k
    return out


def hartley(x: torch.Tensor) -> torch.Tensor:
    """The unitary 2-D discrete Hartley transform over the last two axes (its own inverse)."""
    spectrum = torch.fft.fft2(x, norm="ortho")
    return spectrum.real - spectrum.imag


class KernelBlur(Decomposable):
    """Circular convolution with any 2-D ``kernel`` (see the module's docstring), by FFT; or with
    one kernel per image of the batch (a list of kernels, or an n x kh x kw stack)."""

    name = "deblur_kernel"
    kind = Kind.DEBLURRING

    def __init__(self, kernel: str | os.PathLike | np.ndarray | torch.Tensor | None = None, zero: float = 1e-2):
        self.kernels = make_kernels(kernel)
        if not 0 <= zero < 1:
            raise OperatorError(f"deblur_kernel: the cut-off zero must be in [0, 1), got {zero}")
        self.zero = zero
        self._transfer: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def kernel(self) -> torch.Tensor:
        """The kernel (kh x kw), or the stack of kernels, one per image (n x kh x kw)."""
        return self.kernels[0] if len(self.kernels) == 1 else self.kernels

    @property
    def support(self) -> tuple[int, int]:
        """The kernels' height and width in pixels."""
        return tuple(self.kernels.shape[-2:])

    def validate(self, height: int, width: int) -> None:
        kh, kw = self.support
        if kh > height or kw > width:
            raise OperatorError(f"deblur_kernel: the {kh}x{kw} kernel is larger than the {height}x{width} image")

    def workspace_bytes(self, height: int, width: int) -> int:
        # per kernel: the float64 and complex128 arrays that build the transfer function, and its two cached halves
        return len(self.kernels) * 96 * height * width

    def transfer(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(K^ with the cut-off applied, its pseudo-inverse), H x W complex, cached per size, device and dtype."""
        key = (height, width, device, dtype)
        if key not in self._transfer:
            self.validate(height, width)
            n, kh, kw = self.kernels.shape
            padded = torch.zeros(n, 1, height, width, dtype=torch.float64)
            padded[..., :kh, :kw] = self.kernels[:, None]
            # centre the kernel on pixel (0, 0), so that blurring does not shift the image
            K = torch.fft.fft2(torch.roll(padded, (-(kh // 2), -(kw // 2)), dims=(-2, -1)))
            # values under the cut-off, and exact zeros even without one, are the null space
            kept = K.abs() > (self.zero * K.abs().amax(dim=(-2, -1), keepdim=True)).clamp_min(1e-12)
            K = torch.where(kept, K, 0)
            K_pinv = torch.where(kept, 1 / torch.where(kept, K, 1), 0)
            complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
            self._transfer[key] = (K.to(device, complex_dtype), K_pinv.to(device, complex_dtype))
        return self._transfer[key]

    def _for(self, x: torch.Tensor, which: int) -> torch.Tensor:
        H = self.transfer(*x.shape[-2:], x.device, x.dtype)[which]
        if H.shape[0] not in (1, x.shape[0]):
            raise OperatorError(f"deblur_kernel: {H.shape[0]} kernels, one per image, but a batch of {x.shape[0]} images")
        return H

    def _filter(self, x: torch.Tensor, which: int) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(x) * self._for(x, which)).real.to(x.dtype)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return self._filter(x, 0)

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        return self._filter(y, 1)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(y) * self._for(y, 0).conj()).real.to(y.dtype)

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return hartley(x).to(x.dtype)

    def V(self, z: torch.Tensor) -> torch.Tensor:
        return hartley(z).to(z.dtype)

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        return self._for(x, 0).abs()


class KernelSR(MatrixFree):
    """Super-resolution with a user's blur kernel: ``y = (k * x)`` sampled every ``scale`` pixels
    (circular blur, then decimation), an operator without a cheap SVD: its pseudo-inverse and
    back-projection go by conjugate gradient (:class:`~ssdiff.operators.matrix_free.MatrixFree`)."""

    kind = Kind.SUPER_RESOLUTION
    measurement_ndim, measurement_channels = 4, 3  # images, unlike a MatrixFree of any functions

    def __init__(self, kernel: str | os.PathLike | np.ndarray | torch.Tensor | None = None, scale: int = 4,
                 cg_iterations: int = 100):
        if int(scale) != scale or scale < 1:
            raise OperatorError(f"sr_kernel: the scale must be a positive integer, got {scale}")
        self.scale = int(scale)
        self.blur = KernelBlur(kernel, zero=0.0)
        super().__init__(self._downsample, self._upsample, name=f"sr_kernel_x{self.scale}", cg_iterations=cg_iterations)

    def validate(self, height: int, width: int) -> None:
        if height % self.scale or width % self.scale:
            raise OperatorError(f"sr_kernel: image size {height}x{width} is not a multiple of the scale {self.scale}")
        self.blur.validate(height, width)

    def workspace_bytes(self, height: int, width: int) -> int:
        return self.blur.workspace_bytes(height, width)

    def _downsample(self, x: torch.Tensor) -> torch.Tensor:
        self.validate(*x.shape[-2:])
        return self.blur.A(x)[..., :: self.scale, :: self.scale]

    def _upsample(self, y: torch.Tensor) -> torch.Tensor:
        up = torch.zeros(*y.shape[:-2], y.shape[-2] * self.scale, y.shape[-1] * self.scale, dtype=y.dtype, device=y.device)
        up[..., :: self.scale, :: self.scale] = y
        return self.blur.A_adjoint(up)


class ValidBlur(MatrixFree):
    """A camera's blur (``deblur_kernel``), or blur and decimation (``sr_kernel``, ``scale`` > 1),
    of a scene larger than the photo: ``y = crop(K x)``, the part of the circular operator's
    measurement that saw only the canvas ``x``, which is ``margin`` measurement pixels (times the
    scale) larger than the photo on each side; the "valid" convolution of scipy when the margin
    is the kernel's reach.

    Why not mirror the photo and undo a circular blur: the mirrored border is not the blur of any
    image, and the pseudo-inverse, which amplifies transfer values down to 1 % by up to 100x,
    spreads that mismatch over the whole picture (8-11 dB on faces, against 28-32 here). This model
    assumes nothing beyond the frame: the prior fills the margin, the photo fixes the rest.
    The blur has no cut-off, so no SVD view: pseudo-inverse and back-projection by CG, stopped
    after ``cg_iterations`` steps. Stopping early regularises, as the cut-off does for the circular
    operators: an exact inverse amplifies the photo's 8-bit steps (SSD@30 on motion-blurred faces:
    32.4 dB after 20 steps, 28.9 after 100; ``benchmarks/camera_blur.py``, training faces).
    """

    measurement_ndim, measurement_channels = 4, 3  # images, unlike a MatrixFree of any functions

    def __init__(self, kernel: str | os.PathLike | np.ndarray | torch.Tensor | None = None, scale: int = 1,
                 margin: int | None = None, cg_iterations: int = 20):
        self.circular = KernelBlur(kernel, zero=0.0) if scale == 1 else KernelSR(kernel, scale, cg_iterations)
        self.scale = int(scale)
        self.kind = self.circular.kind
        blur = self.circular if scale == 1 else self.circular.blur
        # default: the kernel's whole support, twice its reach, whatever pixel a kernel file centres on
        self.margin = -(-max(blur.support) // self.scale) if margin is None else int(margin)
        if self.margin < 1:
            raise OperatorError(f"{self.circular.name}: the margin must be at least 1 measurement pixel, got {margin}")
        super().__init__(self._valid, self._valid_adjoint, name=self.circular.name, cg_iterations=cg_iterations)

    def workspace_bytes(self, height: int, width: int) -> int:
        return self.circular.workspace_bytes(height, width)

    def _valid(self, x: torch.Tensor) -> torch.Tensor:
        m = self.margin
        return self.circular.A(x)[..., m:-m, m:-m]

    def _valid_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.circular.A_adjoint(F.pad(y, (self.margin,) * 4))

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The photo's frame of a restored canvas."""
        m = self.margin * self.scale
        return x[..., m:-m, m:-m]
