import math

import pytest
import torch

from ssdiff.metrics import consistency, load_fid, load_lpips, psnr, ssim, swd
from ssdiff.operators import get_operator


def test_psnr_of_a_known_mse():
    truth = torch.zeros(3, 16, 16)  # 8-bit value 127.5 -> 128 after rounding
    noisy = truth.clone()
    noisy[:, ::2] += 10 / 127.5  # +10 gray levels on half the rows: MSE = 50
    assert psnr(noisy, truth) == pytest.approx(10 * math.log10(255**2 / 50), abs=1e-6)


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    generator = torch.Generator().manual_seed(0)  # unseeded, about 1 % of draws failed the bound
    image = torch.rand(3, 32, 32, generator=generator) * 2 - 1
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim((image + 0.3 * torch.randn(3, 32, 32, generator=generator)).clamp(-1, 1), image) < 0.9


def test_swd_is_zero_for_identical_sets_and_grows_with_a_shift():
    images = torch.nn.functional.interpolate(torch.rand(8, 3, 8, 8) * 2 - 1, size=(64, 64), mode="bilinear")
    assert swd(images, images)["avg"] == 0.0
    blurred = torch.nn.functional.avg_pool2d(images, 3, 1, 1)
    noisy = images + 0.2 * torch.randn_like(images)
    assert swd(noisy, images)["avg"] > swd(images + 0.02 * torch.randn_like(images), images)["avg"] > 0
    assert swd(blurred, images)["avg"] > 0
    assert set(swd(images, images)) == {"64px", "32px", "16px", "avg"}


def test_consistency():
    op = get_operator("sr_bicubic", scale=2)
    x = torch.rand(1, 3, 16, 16)
    assert consistency(op, x, op.A(x)) < 1e-6
    assert consistency(op, x + 0.1, op.A(x)) == pytest.approx(0.1, rel=1e-4)


def test_learned_metrics_are_skipped_with_a_reason_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    fn, reason = load_lpips(None)
    assert fn is None and "LPIPS skipped" in reason and "alexnet-owt-7be5be79.pth" in reason
    fn, reason = load_fid(None)
    assert fn is None and "FID/KID skipped" in reason and "hub cache" in reason


def test_learned_metrics_use_the_weights_in_the_libraries_cache(tmp_path, monkeypatch):
    from ssdiff.metrics import HUB_CACHE_FILES, cached_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert cached_weights("inception") is None
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / HUB_CACHE_FILES["inception"]).write_bytes(b"weights")
    assert cached_weights("inception") == checkpoints / HUB_CACHE_FILES["inception"]
    fn, reason = load_fid(None)  # past the weights: what stops it now can only be the missing package
    assert fn is not None or "not installed" in reason
