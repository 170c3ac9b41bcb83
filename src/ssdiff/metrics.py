"""Image-quality measures as the papers compute them: on 8-bit images, per image."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .io import tensor_to_uint8


def psnr(restored: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR in dB of two images (3 x H x W in [-1, 1]) after quantisation to 8 bits."""
    return float(peak_signal_noise_ratio(tensor_to_uint8(truth), tensor_to_uint8(restored), data_range=255))


def ssim(restored: torch.Tensor, truth: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004, Gaussian window sigma 1.5) of two 8-bit RGB images, averaged over channels."""
    a, b = tensor_to_uint8(truth), tensor_to_uint8(restored)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def consistency(operator, restored: torch.Tensor, y: torch.Tensor) -> float:
    """``mean |A x_hat - y|``: how well a restoration agrees with its measurement (B x C x H x W)."""
    return float((operator.A(restored.float()) - y.float()).abs().mean())


def per_image(fn, restored: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Apply an image metric to every pair of a batch."""
    return np.array([fn(r, t) for r, t in zip(restored, truth)])
