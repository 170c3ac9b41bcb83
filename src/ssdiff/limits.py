"""Budgets: how large a piece of work ssdiff takes on, decided before anything is allocated.

As ImageMagick's resource limits and Pillow's decompression-bomb guard do, every image is sized
from its header before it is decoded, and every restoration from its shapes before it runs:

- **pixels**: no image that is read, padded or produced, and no per-axis matrix of an operator,
  may hold more than :func:`max_pixels` values (16 megapixels unless ``SSDIFF_MAX_PIXELS`` or
  ``--max-pixels`` says otherwise: a 4096 x 4096 photo, or a 12-megapixel phone picture);
- **memory**: a restoration's estimate (its images, the operator's precomputed factors, the
  network's activations; :func:`restoration_bytes`) must fit in the memory this process can
  still get (the system's available memory, or the container's limit where lower).

A refusal is a :class:`~ssdiff.errors.BudgetError` whose one line says what the work would need.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from .errors import BudgetError

DEFAULT_MAX_PIXELS = 16_000_000
ENV_MAX_PIXELS = "SSDIFF_MAX_PIXELS"
HOW_TO_RAISE = f"--max-pixels or {ENV_MAX_PIXELS} raises the limit"

# Full-size float32 images a restoration holds at its peak, per image of the batch, counted
# generously over the solvers (x_t, x0, eps, the noise, A+y, the update's terms, the CG vectors,
# the tiles and their blending weights): measured peaks stay under it (README, robustness section).
IMAGE_COPIES = 40
BYTES_PER_PIXEL = 3 * 4 * IMAGE_COPIES  # three float32 channels, IMAGE_COPIES times


def parse_pixels(text: str | float, source: str) -> int:
    """A pixel count from an option or the environment (``16000000``, ``16e6``), or a one-line error."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise BudgetError(f"{source}: expected a positive whole number of pixels, got {text!r}")
    return int(value)


def max_pixels() -> int:
    """The most pixels an image (or values an operator's matrix) may have: ``SSDIFF_MAX_PIXELS`` or the default."""
    text = os.environ.get(ENV_MAX_PIXELS, "").strip()
    return parse_pixels(text, ENV_MAX_PIXELS) if text else DEFAULT_MAX_PIXELS


def set_max_pixels(value: str | float) -> int:
    """Set the limit for this process and the processes it starts (what ``--max-pixels`` does)."""
    pixels = parse_pixels(value, "--max-pixels")
    os.environ[ENV_MAX_PIXELS] = str(pixels)
    return pixels


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def gigabytes(size: float, round_up: bool = False) -> str:
    """``size`` bytes in GB with one decimal (rounded up for a bound that must hold)."""
    value = size / 2**30
    return f"{math.ceil(value * 10) / 10 if round_up else value:.1f} GB"


def check_pixels(name: str, height: int, width: int, what: str = "the image") -> None:
    """Refuse an image of ``height`` x ``width`` beyond the pixel budget, saying what it would need."""
    pixels, limit = int(height) * int(width), max_pixels()
    if pixels > limit:
        raise BudgetError(f"{name}: {what} is {width}x{height}, {megapixels(pixels)}, more than the limit of "
                          f"{megapixels(limit)} (restoring it would need about {gigabytes(pixels * BYTES_PER_PIXEL)} "
                          f"of memory; {HOW_TO_RAISE})")


def check_matrix(name: str, side: int) -> None:
    """Refuse a separable operator's per-axis matrix (``side`` x ``side``, and its SVD) beyond the budget."""
    limit = max_pixels()
    if side * side > limit:
        raise BudgetError(f"{name}: an image {side} px along one side needs a {side} x {side} matrix and its SVD "
                          f"(about {gigabytes(SVD_BYTES_PER_ENTRY * side * side)} of memory), more than the limit of "
                          f"{megapixels(limit)} values; crop the image, or use a matrix-free task such as "
                          f"deblur_kernel or sr_kernel ({HOW_TO_RAISE})")


# float64 matrix, U, V and LAPACK's workspace, and float32 copies of U and V (both SVD views)
SVD_BYTES_PER_ENTRY = 8 * 7 + 4 * 4


# ---- memory -------------------------------------------------------------------------------------------

def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    """What a container's memory limit leaves this process (cgroup v2), or None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes this process can still allocate, as far as the system tells (None where it does not)."""
    known = [value for value in (_meminfo_available(), _cgroup_headroom()) if value is not None]
    return min(known) if known else None


def peak_resident_memory() -> int:
    """The most resident memory this process has held so far, in bytes (loading a model peaks above
    what it keeps, and the system does not always take freed memory back): the base of an estimate."""
    try:
        import resource  # POSIX only
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, kilobytes on Linux


def restoration_bytes(prior, operator, batch: int, height: int, width: int, gradient: bool = False) -> int:
    """Memory a restoration of ``batch`` images of ``height`` x ``width`` needs beyond what the process
    holds: the images (:data:`IMAGE_COPIES` of each), the operator's precomputed factors, and the
    network's activations for its largest forward (several times more with ``gradient``: DPS, PiGDM)."""
    images = batch * height * width * BYTES_PER_PIXEL
    # any callable may stand in for a prior (analytic denoisers): only a DiffusionPrior sizes its network
    network = prior.forward_bytes(batch, height, width, gradient=gradient) if hasattr(prior, "forward_bytes") else 0
    return images + operator.workspace_bytes(height, width) + network


def check_memory(name: str, needed: int, what: str) -> None:
    """Refuse work that needs more memory than this process can still get."""
    available = available_memory()
    if available is not None and needed > available:
        raise BudgetError(f"{name}: {what} needs about {gigabytes(needed)} of memory, and {gigabytes(available)} are "
                          "available; use a smaller --batch-size or a smaller image")
