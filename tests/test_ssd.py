import math

import numpy as np
import pytest
import torch
from conftest import GaussianPrior

from ssdiff import get_operator, restore
from ssdiff.schedule import DEFAULT_SCHEDULE, respaced_betas, uniform_steps
from ssdiff.solvers.ssd import split_budget


@pytest.fixture()
def truth():
    g = torch.Generator().manual_seed(3)
    return (0.2 + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)


def test_budget_split_matches_the_paper():
    assert split_budget(30) == (5, 25)
    assert split_budget(100) == (15, 85)
    assert split_budget(50) == (8, 42)


@pytest.mark.parametrize("nfe", [10, 30, 100])
def test_nfe_is_counted_from_network_calls(truth, nfe):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    calls = []
    prior = GaussianPrior()
    result = restore(lambda x, t: calls.append(t) or prior(x, t), op, op.A(truth), nfe=nfe, seed=0)
    forward, backward = split_budget(nfe)
    assert result.nfe == len(calls) == forward - 1 + backward == nfe - 1


@pytest.mark.parametrize("task,options", [
    ("sr_bicubic", {"scale": 4}), ("deblur_gauss", {}), ("colorization", {}), ("inpaint", {}), ("sr_average", {"scale": 2}),
])
@pytest.mark.parametrize("method", ["ssd", "ssd+"])
def test_output_agrees_with_the_measurement(truth, task, options, method):
    op = get_operator(task, image_size=(32, 32), **options)
    y = op.A(truth)
    result = restore(GaussianPrior(), op, y, method=method, nfe=30, seed=0)
    error = (op.A(result.image) - y).abs().mean().item()
    if method == "ssd":
        assert error < 1e-4  # the last step returns the projected x0
    else:  # SSD+ leaves the last steps unprojected, but starts consistent
        unprojected = restore(GaussianPrior(), op, y, method="ssd-noproj", nfe=30, seed=0).image
        assert error < (op.A(unprojected) - y).abs().mean().item()


def test_seeded_runs_are_reproducible_and_seeds_matter(truth):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = op.A(truth)
    first = restore(GaussianPrior(), op, y, nfe=30, seed=7).image
    again = restore(GaussianPrior(), op, y, nfe=30, seed=7).image
    other = restore(GaussianPrior(), op, y, nfe=30, seed=8).image
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-3


def test_ssd_plus_stops_projecting_below_the_stop_time(truth):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    state = {"t": None, "projected": [], "unprojected": []}
    project = op.project

    def spy(x, y):
        state["projected"].append(state["t"])
        return project(x, y)

    op.project = spy
    def hook(phase, i, t, x):
        return state.update(t=t) if phase == "generation" else None
    result = restore(GaussianPrior(), op, op.A(truth), method="ssd+", nfe=30, seed=0, callback=hook)
    generation = result.extras["backward_steps"]
    assert all(t >= 200 for t in state["projected"])
    assert [t for t in generation if t < 200] and all(t not in state["projected"] for t in generation if t < 200)
    # the reference's rule: the first int((t0 - stop) / t0 * Nb) generation steps are projected
    assert len(state["projected"]) == int((550 - 200) / 550 * 25) == result.extras["projected_steps"]


def test_ssd_fills_missing_pixels_from_the_prior():
    # Inpainting with an exact Gaussian prior: the unknown box must be drawn from N(mu, s^2),
    # not left at A+ y = 0.
    mu, s = 0.5, 0.1
    truth = (mu + s * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    op = get_operator("inpaint", image_size=(32, 32))
    result = restore(GaussianPrior(mu, s), op, op.A(truth), nfe=30, seed=0)
    hole = op.mask[0, 0] == 0
    filled = result.image[0][:, hole]
    assert abs(filled.mean().item() - mu) < 0.05
    assert filled.std().item() < 3 * s


def test_matches_a_reference_style_implementation(truth):
    """Recompute SSD with the reference's respaced-diffusion arrays and the same noise stream."""
    prior, op = GaussianPrior(), get_operator("deblur_gauss", image_size=(32, 32))
    y = op.A(truth)
    t0, eta, ddim_eta, nf, nb = 550, 0.4, 0.8, 5, 25
    ours = restore(prior, op, y, nfe=30, seed=11, t0=t0, eta=eta).image

    alpha_bar = DEFAULT_SCHEDULE.alpha_bar
    fwd, bwd = uniform_steps(t0 - 1, nf), uniform_steps(t0 - 1, nb)
    ab_f = np.cumprod(1 - respaced_betas(alpha_bar, fwd))  # SpacedDiffusion's alphas_cumprod
    betas_f = respaced_betas(alpha_bar, fwd)
    ab_b = np.cumprod(1 - respaced_betas(alpha_bar, bwd))
    ab_b_prev = np.append(1.0, ab_b[:-1])
    generators = [torch.Generator().manual_seed(11) for _ in range(len(y))]  # one stream per image

    def randn(shape):
        return torch.stack([torch.randn(shape[1:], generator=g) for g in generators])

    x = op.A_pinv(y)
    for i in range(nf - 1):  # q_sample_ddim with add_noise
        eps = prior(x, fwd[i])
        x0 = ((x - math.sqrt(1 - ab_f[i]) * eps) / math.sqrt(ab_f[i])).clamp(-1, 1)
        c1, c2 = math.sqrt(1 - ab_f[i + 1] - eta * betas_f[i + 1]), math.sqrt(eta * betas_f[i + 1])
        x = x0 * math.sqrt(ab_f[i + 1]) + c1 * eps + c2 * randn(x.shape)
    for i in reversed(range(nb)):  # p_sample_svd with use_ddim
        eps = prior(x, bwd[i])
        x0 = ((x - math.sqrt(1 - ab_b[i]) * eps) / math.sqrt(ab_b[i])).clamp(-1, 1)
        x0 = op.project(x0, y)
        c1 = math.sqrt(1 - ddim_eta**2) * math.sqrt(1 - ab_b_prev[i])
        c2 = ddim_eta * math.sqrt(1 - ab_b_prev[i])
        noise = randn(x.shape) if c2 > 0 else 0
        x = x0 * math.sqrt(ab_b_prev[i]) + c1 * eps + c2 * noise
    assert torch.allclose(ours, x, atol=1e-5)


def test_ablations_run(truth):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = op.A(truth)
    for method in ("ddim-inversion", "sdedit", "ssd-noproj"):
        result = restore(GaussianPrior(), op, y, method=method, nfe=30, seed=0)
        assert result.image.shape == truth.shape and torch.isfinite(result.image).all()
    assert restore(GaussianPrior(), op, y, method="sdedit", nfe=30).nfe == 25  # no inversion calls


def test_real_network_end_to_end(device_ddpm, device_images):
    op = get_operator("colorization", image_size=(32, 32))
    result = restore(device_ddpm, op, op.A(device_images), nfe=10, seed=0)
    assert result.image.shape == device_images.shape and result.nfe == 9
    assert (op.A(result.image) - op.A(device_images)).abs().max() < 1e-4


@pytest.mark.parametrize("task,options", [("sr_bicubic", {"scale": 4}), ("deblur_gauss", {}), ("colorization", {})])
def test_noise_aware_projection_beats_plain_projection_on_noisy_y(task, options):
    from ssdiff.metrics import psnr

    truth = (0.2 + 0.3 * torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(6))).clamp(-1, 1)
    op = get_operator(task, image_size=(32, 32), **options)
    sigma_y = 0.3
    clean = op.A(truth)
    y = clean + sigma_y * torch.randn(clean.shape, generator=torch.Generator().manual_seed(7))
    def score(**kw):
        return np.mean([psnr(r, t) for r, t in zip(restore(GaussianPrior(), op, y, nfe=30, seed=0, **kw).image, truth)])
    assert score(sigma_y=sigma_y) > score() + 0.5
