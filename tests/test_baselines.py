import pytest
import torch
from test_ssd import GaussianPrior

from ssdiff import get_operator, restore
from ssdiff.solvers import METHODS

BASELINES = ["ddnm", "ddrm", "dps", "pigdm", "red-diff"]
EXPECTED_CALLS = {"ssd": 9, "ssd+": 9, "ssd-attn": 9, "ddim-inversion": 9, "sdedit": 8, "ssd-noproj": 9}  # nfe=10: Nf=2, Nb=8


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_on_a_real_network(device_ddpm, device_images, method):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    y = op.A(device_images)
    first = restore(device_ddpm, op, y, method=method, nfe=10, seed=1)
    assert first.image.shape == device_images.shape and torch.isfinite(first.image).all()
    assert first.nfe == EXPECTED_CALLS.get(method, 10)
    again = restore(device_ddpm, op, y, method=method, nfe=10, seed=1)
    assert torch.equal(first.image, again.image)
    other = restore(device_ddpm, op, y, method=method, nfe=10, seed=2)
    assert not torch.equal(first.image, other.image)


@pytest.mark.parametrize("method", list(METHODS))
def test_results_do_not_depend_on_the_batch(device_ddpm, device_images, method):
    # every batch element draws its noise from its own generator: an image restored alone and
    # in a batch with the same seed comes out the same, whatever the method
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    y = op.A(device_images)
    both = restore(device_ddpm, op, y, method=method, nfe=6, seed=3).image
    second = restore(device_ddpm, op, y[1:], method=method, nfe=6, seed=3).image
    per_image = restore(device_ddpm, op, y, method=method, nfe=6, seed=[5, 3]).image
    # equal up to float rounding (batched matrix products round differently; the random test
    # network lets some methods grow large values, hence a tolerance relative to the largest).
    # A noise stream shared across the batch would differ by O(0.1); DiffPIR's authors' steps end
    # at t = 87 in 6 calls, where the last x0 carries sqrt(1 - a) = 0.28 times eps's rounding.
    tolerance = 1e-4 + 1e-4 * second.abs().max()
    assert (both[1:] - second).abs().max() <= tolerance
    assert (per_image[1:] - second).abs().max() <= tolerance


@pytest.mark.parametrize("method,tolerance", [("ddnm", 1e-4), ("ssd", 1e-4), ("ddrm", 0.02), ("pigdm", 0.05)])
@pytest.mark.parametrize("task,options", [("sr_bicubic", {"scale": 4}), ("colorization", {}), ("deblur_gauss", {})])
def test_projection_methods_agree_with_y(method, tolerance, task, options):
    truth = (0.2 + 0.3 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))).clamp(-1, 1)
    op = get_operator(task, image_size=(32, 32), **options)
    y = op.A(truth)
    result = restore(GaussianPrior(), op, y, method=method, nfe=20, seed=0)
    assert (op.A(result.image) - y).abs().mean() < tolerance


def test_dps_gradients_flow_through_the_network(device_ddpm, device_images):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    y = op.A(device_images)
    guided = restore(device_ddpm, op, y, method="dps", nfe=6, seed=0)
    unguided = restore(device_ddpm, op, y, method="dps", nfe=6, seed=0, zeta=0.0)
    assert guided.extras["backward_passes"] == 6
    assert (guided.image - unguided.image).abs().max() > 1e-3


def test_dps_reduces_the_measurement_error():
    truth = (0.2 + 0.3 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))).clamp(-1, 1)
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = op.A(truth)
    def error(zeta):
        return (op.A(restore(GaussianPrior(), op, y, method="dps", nfe=50, zeta=zeta).image) - y).abs().mean()
    assert error(3.0) < 0.6 * error(0.0)  # few steps: DPS needs a large step to pull toward y


def test_ddnm_plus_beats_ddnm_on_noisy_measurements():
    truth = (0.2 + 0.3 * torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(6))).clamp(-1, 1)
    op = get_operator("sr_average", image_size=(32, 32), scale=2)
    sigma_y = 0.5
    y = op.A(truth) + sigma_y * torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    def mse(**kw):
        return ((restore(GaussianPrior(), op, y, method="ddnm", nfe=50, seed=0, **kw).image - truth) ** 2).mean()
    assert mse(sigma_y=sigma_y) < 0.6 * mse()  # plain DDNM copies the noise of y into x


def test_ddrm_uses_the_noise_level():
    truth = (0.2 + 0.3 * torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(8))).clamp(-1, 1)
    op = get_operator("deblur_gauss_full", image_size=(32, 32))
    sigma_y = 0.1
    y = op.A(truth) + sigma_y * torch.randn(op.A(truth).shape, generator=torch.Generator().manual_seed(9))
    def mse(**kw):
        return ((restore(GaussianPrior(), op, y, method="ddrm", nfe=20, seed=0, **kw).image - truth) ** 2).mean()
    assert mse(sigma_y=sigma_y) < mse()


def test_red_diff_moves_toward_the_measurement():
    truth = (0.2 + 0.3 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(10))).clamp(-1, 1)
    op = get_operator("inpaint", image_size=(32, 32))
    y = op.A(truth)
    result = restore(GaussianPrior(), op, y, method="red-diff", nfe=50, seed=0)
    hole = op.mask[0, 0] == 0
    assert abs(result.image[0][:, hole].mean().item() - 0.2) < abs(0 - 0.2)  # filled toward the prior mean
    assert (op.A(result.image) - y).abs().mean() < 0.05


def test_attention_injection_replaces_decoder_maps(tiny_ddpm, images):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    y = op.A(images)
    plain = restore(tiny_ddpm, op, y, method="ssd", nfe=30, seed=0)
    injected = restore(tiny_ddpm, op, y, method="ssd-attn", nfe=30, seed=0, inject_steps=None)
    # 4 inversion steps (t = 0, 137, 274, 412) are evaluated and all appear among the generation
    # steps; the tiny network has 3 decoder attention layers (one level, num_res_blocks + 1).
    assert injected.extras["injected_maps"] == 4 * 3
    # by default the maps of inversion steps 2 and 3 only, as the released --aligned_timestep 2 3
    released = restore(tiny_ddpm, op, y, method="ssd-attn", nfe=30, seed=0)
    assert released.extras["injected_maps"] == 2 * 3 and released.extras["inject_steps"] == [2, 3]
    with pytest.raises(ValueError, match="out of range"):  # 30 NFEs evaluate inversion steps 0..3 only
        restore(tiny_ddpm, op, y, method="ssd-attn", nfe=30, seed=0, inject_steps=[4])
    assert injected.nfe == plain.nfe == 29
    assert (injected.image - plain.image).abs().max() > 1e-4
    only_first = restore(tiny_ddpm, op, y, method="ssd-attn", nfe=30, seed=0, inject_steps=[1])
    assert only_first.extras["injected_maps"] == 3
    # other budgets: generation steps are aligned onto the inversion steps, so all maps are used
    odd = restore(tiny_ddpm, op, y, method="ssd-attn", nfe=23, seed=0, inject_steps=None)
    forward = odd.extras["forward_steps"]
    assert set(forward) <= set(odd.extras["backward_steps"])
    assert odd.extras["injected_maps"] == (len(forward) - 1) * 3
    # processors are restored afterwards: a plain run is unchanged
    assert torch.equal(restore(tiny_ddpm, op, y, method="ssd", nfe=30, seed=0).image, plain.image)


def test_attention_injection_needs_a_network():
    op = get_operator("colorization")
    with pytest.raises(TypeError, match="diffusers network"):
        restore(GaussianPrior(), op, torch.zeros(1, 1, 8, 8), method="ssd-attn", nfe=10)


def test_pigdm_weighs_the_residual_by_the_noise_level():
    truth = (0.2 + 0.3 * torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(6))).clamp(-1, 1)
    op = get_operator("deblur_gauss", image_size=(32, 32))
    sigma_y = 0.1
    y = op.A(truth) + sigma_y * torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    mse = lambda **kw: ((restore(GaussianPrior(), op, y, method="pigdm", nfe=30, seed=0, **kw).image - truth) ** 2).mean()
    assert mse(sigma_y=sigma_y) < 0.01 * mse()  # the truncated pseudo-inverse amplifies the noise ~1000x
