"""Degradation operators. Every operator has ``A``, ``A_pinv`` and ``project``; build one by name.

>>> op = get_operator("sr_bicubic", image_size=(256, 256), scale=4)
>>> y = op.A(x); x_back = op.A_pinv(y); x_proj = op.project(x_hat, y)
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from ..limits import check_pixels
from .base import Identity, Kind, LinearOperator, OperatorError
from .blur import Blur, gaussian_blur, uniform_blur
from .color import MEAN_WEIGHTS, Colorization
from .cs import WalshHadamardCS
from .inpaint import Inpainting, center_box_mask, random_mask
from .kernel import BENCHMARK_MOTION, KernelBlur, KernelSR, ValidBlur, make_kernel
from .matrix_free import MatrixFree, conjugate_gradient
from .superres import AverageSR, BicubicSR
from .svd import SeparableOperator


def _inpaint(image_size: tuple[int, int] | None = None, mask: Any = "center", seed: int = 0) -> Inpainting:
    """``mask``: an image or array (1 = known), ``"box:F"`` (a centred box of F of each side
    missing; ``"center"`` is ``"box:0.5"``) or ``"random:F"`` (a fraction F of the pixels missing,
    drawn from ``seed``)."""
    if isinstance(mask, str) and (mask == "center" or mask.startswith(("box:", "random:"))):
        kind, _, fraction = mask.partition(":")
        if image_size is None:
            raise OperatorError(f"inpaint: a {kind} mask needs image_size")
        if kind == "random":
            mask = random_mask(*image_size, missing=fraction, seed=seed)
        else:
            mask = center_box_mask(*image_size, fraction=0.5 if kind == "center" else fraction)
    return Inpainting(mask)


def _cs(image_size: tuple[int, int] | None = None, ratio: float = 0.25) -> WalshHadamardCS:
    if image_size is None:
        raise OperatorError("cs_walsh_hadamard: needs image_size")
    return WalshHadamardCS(tuple(image_size), ratio=ratio)


# name -> (builder, one-line description). Builders that need the image size take `image_size`.
OPERATORS: dict[str, tuple[Callable[..., LinearOperator], str]] = {
    "sr_bicubic": (BicubicSR, "bicubic downsampling by --scale (2, 4, 8, ...), the paper's SR"),
    "sr_average": (AverageSR, "box-average downsampling by --scale"),
    "colorization": (Colorization, "grayscale = 0.3333 R + 0.3334 G + 0.3333 B, as the released code of DDRM, DDNM and SSD"),
    "colorization_mean": (lambda: Colorization(MEAN_WEIGHTS, name="colorization_mean"), "grayscale = exact mean of R, G, B"),
    "deblur_gauss": (gaussian_blur, "the paper's Gaussian blur (9 taps, sigma 15), as the reference computes it"),
    "deblur_gauss_full": (partial(gaussian_blur, reference=False), "the same Gaussian blur without the reference's quirks"),
    "deblur_uniform": (uniform_blur, "DDRM's uniform 9-tap blur, as the reference computes it"),
    "deblur_uniform_full": (partial(uniform_blur, reference=False), "uniform 9-tap blur without the reference's quirks"),
    "inpaint": (_inpaint, "missing pixels: --mask FILE (white = known), random:F (a fraction F missing), box:F (a centred box of F of each side; default 0.5)"),
    "sr_kernel": (KernelSR, "downsampling by --scale after blurring with --kernel (matrix-free: CG back-projection)"),
    "deblur_kernel": (KernelBlur, "blur with any kernel (--kernel FILE, gauss:SIGMA, motion:LENGTH,ANGLE, disk:RADIUS), by FFT"),
    "cs_walsh_hadamard": (_cs, "compressed sensing: --ratio of Walsh-Hadamard coefficients kept"),
    "denoise": (lambda: Identity(), "identity (use with --sigma-y)"),
}


# Benchmark tasks named after their fixed options
NAMED_TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "deblur_motion": ("deblur_kernel", {"kernel": [f"motion:{length},{angle}" for length, angle in BENCHMARK_MOTION]}),
    "inpaint_random80": ("inpaint", {"mask": "random:0.8"}),
    "inpaint_box30": ("inpaint", {"mask": "box:0.3"}),
}


def parse_task(task: str) -> tuple[str, dict[str, Any]]:
    """``"sr_bicubic4"`` or ``"sr_bicubic_x4"`` -> ``("sr_bicubic", {"scale": 4})``; the benchmark's
    ``deblur_motion`` (8 motion kernels, image i takes kernel i mod 8), ``inpaint_random80``
    (80 % of the pixels missing) and ``inpaint_box30`` (a centred box of 30 % of each side
    missing) -> their operator and options; other names pass through."""
    if task in NAMED_TASKS:
        base, params = NAMED_TASKS[task]
        return base, dict(params)
    match = re.fullmatch(r"(sr_bicubic|sr_average|sr_kernel)_?x?(\d+)", task)
    if match:
        return match.group(1), {"scale": int(match.group(2))}
    return task, {}


def task_scale(task: str, params: dict[str, Any] | None = None) -> int:
    """How many times larger the image is than its measurement, per side (1 except for SR)."""
    base, implied = parse_task(task)
    if not base.startswith("sr_"):
        return 1
    return int({**implied, **(params or {})}.get("scale", 4))


def valid_image_size(task: str, height: int, width: int, params: dict[str, Any] | None = None) -> tuple[int, int]:
    """The smallest size >= (H, W) that the task's operator accepts.

    Super-resolution needs multiples of the scale; the Walsh-Hadamard transform needs sides that
    are powers of two; every other operator takes any size.
    """
    base, _ = parse_task(task)
    if base.startswith("sr_"):
        scale = task_scale(task, params)
        return -(-height // scale) * scale, -(-width // scale) * scale
    if base == "cs_walsh_hadamard":
        return 1 << (height - 1).bit_length(), 1 << (width - 1).bit_length()
    return height, width


def check_task(task: str, params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Validate a task name and its option names; returns the base name and the full options."""
    base, implied = parse_task(task)
    if base not in OPERATORS:
        raise OperatorError(f"unknown task {task!r}; choose from: {', '.join(OPERATORS)}")
    params = {**implied, **(params or {})}
    accepted = inspect.signature(OPERATORS[base][0]).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        unknown = [key for key in params if key not in accepted or key == "image_size"]
        if unknown:
            raise OperatorError(f"{base}: unknown option(s) {', '.join(unknown)}")
    return base, params


def _check_image_size(name: str, image_size: Any) -> tuple[int, int] | None:
    """``image_size`` as (H, W) of positive integers within the pixel budget, or a clear error."""
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    try:
        height, width = size
    except (TypeError, ValueError):
        height = width = None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in (height, width)):
        raise OperatorError(f"{name}: image_size must be (H, W) of positive integers, or one, got {image_size!r}")
    check_pixels(name, int(height), int(width), what="image_size")
    return int(height), int(width)


def get_operator(name: str, image_size: tuple[int, int] | int | None = None, **params: Any) -> LinearOperator:
    """Build the degradation called ``name`` for images of ``image_size`` (H, W).

    ``params`` are the operator's options (``scale``, ``sigma``, ``kernel_size``, ``mask``,
    ``ratio``, ...). Raises :class:`OperatorError` for unknown names, options or sizes.
    """
    if not isinstance(name, str):
        raise TypeError(f"the operator's name must be a string such as 'sr_bicubic', not {type(name).__name__}")
    base, params = check_task(name, params)
    image_size = _check_image_size(base, image_size)
    for option, value in params.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
            raise OperatorError(f"{base}: {option} must be a finite number, got {value!r}")
    builder = OPERATORS[base][0]
    if "image_size" in inspect.signature(builder).parameters:
        params["image_size"] = image_size
    try:
        operator = builder(**params)
    except TypeError as error:
        raise OperatorError(f"{base}: {error}") from None
    if image_size is not None:
        operator.validate(*image_size)
    return operator


__all__ = [
    "OPERATORS",
    "AverageSR",
    "BicubicSR",
    "Blur",
    "Colorization",
    "Identity",
    "Inpainting",
    "KernelBlur",
    "KernelSR",
    "Kind",
    "LinearOperator",
    "MatrixFree",
    "OperatorError",
    "SeparableOperator",
    "ValidBlur",
    "WalshHadamardCS",
    "center_box_mask",
    "check_task",
    "conjugate_gradient",
    "get_operator",
    "make_kernel",
    "parse_task",
    "random_mask",
    "task_scale",
    "valid_image_size",
]
