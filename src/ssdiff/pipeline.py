"""From files to restorations and back: measurements as pictures, side-by-side panels, and the
classical baselines (bicubic upsampling, the interpolation of missing pixels).

A measurement ``y`` is written and read as an ordinary picture where it is one: the small
image of super-resolution, the gray image of colorization, the blurred image, the image with
its missing pixels black. Compressed-sensing measurements are not pictures and can only be
simulated from clean images (``--from-clean``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .io import InputError
from .operators import Colorization, Inpainting, LinearOperator, SeparableOperator, WalshHadamardCS
from .operators.blur import gaussian_kernel


def measurement_to_image(operator: LinearOperator, y: torch.Tensor) -> torch.Tensor:
    """A measurement (C x h x w) as an RGB picture to save (3 x h x w; a gray one repeated)."""
    if isinstance(operator, WalshHadamardCS):
        raise InputError(f"{operator.name}: compressed-sensing measurements are not images")
    return y.expand(3, -1, -1) if y.shape[0] == 1 else y


def image_to_measurement(operator: LinearOperator, image: torch.Tensor, name: str = "input") -> torch.Tensor:
    """A picture of a measurement (3 x h x w in [-1, 1]) as the ``y`` the operator expects (C x h x w)."""
    if isinstance(operator, WalshHadamardCS):
        raise InputError(f"{name}: compressed-sensing measurements are not images; use --from-clean")
    if isinstance(operator, Colorization):
        return image.mean(dim=0, keepdim=True)
    if isinstance(operator, Inpainting):
        operator.validate(*image.shape[-2:])
        return operator.A(image[None])[0]
    return image


def display_measurement(operator: LinearOperator, y: torch.Tensor, size: tuple[int, int],
                        mode: str = "nearest") -> torch.Tensor:
    """The measurement shown at the restored size: enlarged by ``mode`` (nearest-neighbour shows the
    measured pixels as they are; bicubic, the input as an image viewer shows a small photo, see
    :func:`input_title`), gray for colorization, or ``A^+ y`` for CS."""
    if isinstance(operator, WalshHadamardCS):
        return operator.A_pinv(y[None])[0].clamp(-1, 1)
    picture = measurement_to_image(operator, y)
    if tuple(picture.shape[-2:]) != tuple(size):
        picture = F.interpolate(picture[None], size=size, mode=mode)[0].clamp(-1, 1)  # bicubic overshoots
    return picture


def pad_to(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Extend ``image`` (... x H x W) at the bottom and right to ``size`` by mirror reflection."""
    height, width = image.shape[-2:]
    pad_h, pad_w = size[0] - height, size[1] - width
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    batch = image if image.ndim == 4 else image[None]
    padded = F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)
    return padded if image.ndim == 4 else padded[0]


def jpeg_roundtrip(picture: torch.Tensor, quality: int) -> torch.Tensor:
    """Compress a picture (C x H x W in [-1, 1], C = 1 or 3) as JPEG at ``quality`` and decode it again."""
    import io as bytes_io

    from PIL import Image

    from .io import pil_to_tensor, tensor_to_pil

    if not 1 <= quality <= 100:
        raise InputError(f"--jpeg quality must be between 1 and 100, got {quality}")
    buffer = bytes_io.BytesIO()
    gray = picture.shape[0] == 1
    image = tensor_to_pil(picture).convert("L") if gray else tensor_to_pil(picture)
    image.save(buffer, format="JPEG", quality=quality)
    decoded = pil_to_tensor(Image.open(buffer))
    return decoded[:1] if gray else decoded


def simulate_measurement(operator: LinearOperator, x: torch.Tensor, sigma_y: float = 0.0, jpeg: int | None = None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """``y = A x`` (B x C x H x W), then Gaussian noise of std ``sigma_y`` ([-1, 1] units) and/or a JPEG round trip."""
    y = operator.A(x)
    if sigma_y > 0:
        y = y + sigma_y * torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
    if jpeg is not None:
        if isinstance(operator, WalshHadamardCS):
            raise InputError(f"{operator.name}: compressed-sensing measurements are not images; --jpeg needs one")
        y = torch.stack([jpeg_roundtrip(m.cpu().clamp(-1, 1), jpeg) for m in y]).to(y.device)
    return y


# One 8-bit grey level in the [-1, 1] units of the images: a result further than this from its
# (noise-free) measurement, once clipped to the image range, is visibly not what was measured.
CONSISTENCY_TOLERANCE = 2 / 255


def consistency_warning(name: str, gap: float, method: str, nfe: int, sigma_y: float = 0.0) -> str | None:
    """A warning when a restoration is further from its measurement than one grey level (plus the noise)."""
    if gap <= CONSISTENCY_TOLERANCE + sigma_y:
        return None
    return (f"{name}: the result is {gap:.3f} off its measurement (mean |A x - y| once clipped to the image range; "
            f"one grey level is {CONSISTENCY_TOLERANCE:.4f}): {method} has not reached a consistent image in "
            f"{nfe} network calls; a larger --nfe usually closes the gap")


def input_title(operator: LinearOperator) -> str:
    """How ``display_measurement(..., mode="bicubic")`` shows the measurement, as a panel caption."""
    if isinstance(operator, WalshHadamardCS):
        return "A+y (CS measurement)"
    scale = getattr(operator, "scale", 1)
    return f"input (x{scale} bicubic)" if scale > 1 else "input"


def bicubic_upsample(y: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
    """The plain bicubic baseline for super-resolution (B x C x h x w -> B x C x H x W)."""
    if not isinstance(operator, SeparableOperator) or operator.scale == 1:
        raise ValueError(f"{operator.name}: bicubic upsampling is a super-resolution baseline")
    return F.interpolate(y, scale_factor=operator.scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of std ``sigma`` px (cut at 3 sigma), zero outside the image."""
    taps = torch.tensor(gaussian_kernel(2 * math.ceil(3 * sigma) + 1, sigma), dtype=images.dtype, device=images.device)
    channels, radius = images.shape[1], len(taps) // 2
    rows = F.conv2d(images, taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), padding=(0, radius), groups=channels)
    return F.conv2d(rows, taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), padding=(radius, 0), groups=channels)


def fill_missing(y: torch.Tensor, mask: torch.Tensor, sigma: float, floor: float = 1e-3) -> torch.Tensor:
    """Each pixel the Gaussian-weighted mean of the known pixels around it (normalised convolution,
    Knutsson and Westin 1993); where fewer than ``floor`` of the weight is known, it fades to 0."""
    return smooth(y * mask, sigma) / smooth(mask, sigma).clamp_min(floor)


# The interpolation baseline's scale: best of 0.8 / 1.0 / 1.2 / 1.6 px on 64 x 64 training faces
# 007001..007016 with 80 % of the pixels missing (22.93 dB), and on the photos' training faces.
INTERPOLATION_SIGMA = 1.2


def interpolate_missing(y: torch.Tensor, operator: Inpainting) -> torch.Tensor:
    """The classical baseline for inpainting: the missing pixels interpolated from the known ones
    around them (:func:`fill_missing`), the known ones kept."""
    if not isinstance(operator, Inpainting):
        raise TypeError(f"{operator.name}: interpolation of missing pixels is an inpainting baseline")
    return operator.project(fill_missing(y, operator.mask.to(y), INTERPOLATION_SIGMA), y).clamp(-1, 1)
