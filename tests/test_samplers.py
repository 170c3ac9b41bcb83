"""Fast generation inside SSD and DDNM: multistep solvers, time-step spacings, EDICT inversion."""

import itertools
import math

import numpy as np
import pytest
import torch
from test_ssd import GaussianPrior

import ssdiff
from ssdiff import get_operator, restore
from ssdiff.schedule import SPACINGS, spaced_steps
from ssdiff.solvers.common import NoiseSource
from ssdiff.solvers.edict import edict_generate, edict_invert
from ssdiff.solvers.samplers import MULTISTEP, SAMPLERS, ddim, dpm_solver_pp


@pytest.fixture()
def truth():
    g = torch.Generator().manual_seed(3)
    return (0.2 + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)


@pytest.mark.parametrize("spacing", ["uniform", "quadratic"])
def test_first_order_dpm_solver_is_ddim(spacing):
    # DPM-Solver++(1) in data prediction is DDIM with eta = 0 (Lu et al. 2022, Sec. 4.1), step
    # for step. (With a correction of x0 they differ by design: SSD's DDIM moves with the
    # network's eps, a solver with the eps implied by the corrected x0.)
    steps = spaced_steps(spacing, 549, 6)
    start = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    noise, prior = NoiseSource(0, 2, "cpu"), GaussianPrior()
    for n in range(1, len(steps) + 1):
        deterministic = ddim(prior, start, steps[-n:], noise=noise, eta=0.0)
        dpm = dpm_solver_pp(prior, start, steps[-n:], noise=noise, order=1)
        assert (deterministic - dpm).abs().max() < 1e-5


@pytest.mark.parametrize("sampler,inversion,calls", [
    ("ddim", "da", 9), ("dpm-solver++", "da", 9), ("sde-dpm-solver++", "da", 9), ("unipc", "da", 9),
    ("edict", "da", 9), ("dpm-solver++", "edict", 10), ("edict", "edict", 10),
])
def test_nfe_is_exact_for_every_sampler(device_ddpm, device_images, sampler, inversion, calls):
    # nfe=10 splits into 2 inversion and 8 generation steps; EDICT's two calls per step halve its steps
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    seen = []
    result = restore(lambda x, t: seen.append(t) or device_ddpm(x, t), op, op.A(device_images), nfe=10, seed=0,
                     sampler=sampler, inversion=inversion)
    assert result.nfe == len(seen) == calls
    assert torch.isfinite(result.image).all()


@pytest.mark.parametrize("sampler", MULTISTEP)
def test_ddnm_takes_the_fast_samplers(device_ddpm, device_images, sampler):
    op = get_operator("colorization", image_size=(32, 32))
    y = op.A(device_images)
    result = restore(device_ddpm, op, y, method="ddnm", nfe=5, seed=0, sampler=sampler)
    assert result.nfe == 5 and result.extras["steps"] == spaced_steps("trailing", 999, 5)
    assert (op.A(result.image) - y).abs().max() < 1e-4


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_seeded_runs_are_reproducible(device_ddpm, device_images, sampler):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    y = op.A(device_images)
    first = restore(device_ddpm, op, y, nfe=8, seed=4, sampler=sampler).image
    assert torch.equal(first, restore(device_ddpm, op, y, nfe=8, seed=4, sampler=sampler).image)
    other = restore(device_ddpm, op, y, nfe=8, seed=5, sampler=sampler).image
    assert not torch.equal(first, other)  # DA inversion draws noise whatever the sampler


@pytest.mark.parametrize("sampler,spacing,nfe", [
    *[(sampler, spacing, 20) for sampler in ("ddim", *MULTISTEP) for spacing in SPACINGS], ("edict", "uniform", 200),
])
def test_gaussian_prior_fills_the_hole_with_its_posterior(sampler, spacing, nfe):
    # Inpainting under an exact Gaussian prior N(mu, s^2) per pixel: the restoration agrees with
    # y, and the missing pixels, whose posterior is the prior, have the prior's mean and spread.
    # (EDICT's coupled chains evaluate the network at the level they left, which needs small
    # steps: at a few dozen steps it drifts, so it gets 200 NFEs here.)
    mu, s = 0.5, 0.1
    truth = (mu + s * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    op = get_operator("inpaint", image_size=(32, 32))
    y = op.A(truth)
    result = restore(GaussianPrior(mu, s), op, y, nfe=nfe, seed=0, sampler=sampler, spacing=spacing)
    assert (op.A(result.image) - y).abs().max() < 1e-5
    filled = result.image[0][:, op.mask[0, 0] == 0]
    assert abs(filled.mean().item() - mu) < 0.03
    assert 0.3 * s < filled.std().item() < 2 * s


@pytest.mark.parametrize("sampler", MULTISTEP)
def test_ddnm_fast_samplers_fill_the_hole_with_the_posterior(sampler):
    mu, s = -0.3, 0.2
    truth = (mu + s * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    op = get_operator("inpaint", image_size=(32, 32))
    y = op.A(truth)
    result = restore(GaussianPrior(mu, s), op, y, method="ddnm", nfe=30, seed=0, sampler=sampler)
    assert (op.A(result.image) - y).abs().max() < 1e-5
    filled = result.image[0][:, op.mask[0, 0] == 0]
    # (at 30 steps from pure noise the spread is still a little short of the prior's)
    assert abs(filled.mean().item() - mu) < 0.03 and 0.6 * s < filled.std().item() < 1.4 * s


def test_edict_inversion_round_trip_on_a_real_network(golden, model_configs, images):
    # invert, then generate without projection: the input comes back (float64, a real UNet)
    prior = ssdiff.load_model(golden / "ddpm_model_small.safetensors", config=model_configs["ddpm_model_small"])
    prior.to(dtype=torch.float64)
    x = images.double()
    levels = [-1, 50, 200, 400, 549]
    pair = edict_invert(prior, x, levels)
    assert (pair[0] - x).abs().max() > 0.1  # it did travel
    back = edict_generate(prior, pair, levels)
    assert (back - x).abs().max() < 1e-4


def test_quadratic_and_logsnr_spacings_crowd_the_clean_end():
    for spacing in ("quadratic", "logsnr"):
        steps = spaced_steps(spacing, 549, 10)
        assert len(steps) == 10 and steps[-1] == 549 and steps[0] > 0
        gaps = [b - a for a, b in itertools.pairwise(steps)]
        assert gaps[0] < gaps[-1] / 3 and steps[0] < 549 / 10  # crowded near the clean end
    assert spaced_steps("trailing", 549, 4) == [137, 274, 412, 549]
    assert spaced_steps("uniform", 549, 5) == [0, 137, 274, 412, 549]  # the paper's
    lam = [0.5 * math.log(a / (1 - a)) for a in (ssdiff.schedule.DEFAULT_SCHEDULE.alpha_bar_at(t) for t in [0, 549])]
    logsnr = spaced_steps("logsnr", 549, 4)
    target = lam[0] + 0.25 * (lam[1] - lam[0])  # the first point sits a quarter of the way in lambda
    got = ssdiff.schedule.log_snr(ssdiff.schedule.DEFAULT_SCHEDULE.alpha_bar_at(logsnr[0]))
    assert abs(got - target) < 0.2


@pytest.mark.parametrize("options,message", [
    ({"sampler": "heun"}, "unknown sampler"),
    ({"spacing": "cubic"}, "unknown time-step spacing"),
    ({"inversion": "bdia"}, "unknown inversion"),
    ({"sampler": "unipc", "ddim_eta": 0.5}, "ddim_eta applies to the ddim, cm4ir-noise samplers only"),
    ({"sampler": "ddim", "order": 2}, "order applies to the dpm-solver"),
    ({"sampler": "ddim", "edict_p": 0.9}, "edict_p applies to the edict inversion and sampler only"),
    ({"sampler": "dpm-solver++", "null_eta": 1.0}, "null_eta applies to the ddim, cm4ir-noise samplers only"),
    ({"sampler": "ddim", "null_eta": 1.5}, r"null_eta takes one eta in \[0, 1\], or one per step"),
    ({"sampler": "ddim", "null_eta": [0.5, 1.0]}, r"null_eta takes one eta in \[0, 1\], or one per step \(\d+\); got \[0.5, 1.0\]"),
    ({"sampler": "ddim", "null_eta": "1"}, r"null_eta takes one eta"),
    ({"sampler": "ddim", "null_eta": "10"}, r"null_eta takes one eta"),
    ({"sampler": "cm4ir-noise", "ddim_eta": [0.5, 1.0]}, r"ddim_eta takes one eta in \[0, 1\], or one per step"),
    ({"eps_scale": 0.0}, "eps_scale must be a positive number"),
    ({"eps_scale": -1.005}, "eps_scale must be a positive number"),
    ({"eps_scale": float("inf")}, "eps_scale must be a finite number"),
    ({"eps_scale": "1.005"}, "eps_scale must be a positive number"),
    ({"eps_scale": True}, "eps_scale must be a positive number"),
    ({"sampler": "unipc", "spacing": "logsnr", "backward_steps": 600, "forward_steps": 2}, "do not fit"),
    ({"sampler": "dpm-solver++", "order": 4}, "solver order"),
    ({"sampler": "unipc", "order": 3, "forward_steps": 2, "backward_steps": 2}, "needs at least 3 generation steps"),
])
def test_bad_sampler_options_fail_before_any_call(truth, options, message):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    calls = []

    def prior(x, t):
        calls.append(t)
        return torch.zeros_like(x)

    with pytest.raises(ValueError, match=message):
        restore(prior, op, op.A(truth), nfe=10, **options)
    assert not calls


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_noise_aware_back_projection_reaches_every_sampler(truth, sampler):
    # DDNM+'s rule is a consistency component, so a noisy measurement no longer needs the ddim
    # sampler: the estimate is corrected only as far as y is less noisy than the next state.
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    clean = op.A(truth)
    y = clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(5))
    pasted = restore(GaussianPrior(), op, y, nfe=12, seed=0, sampler=sampler)
    aware = restore(GaussianPrior(), op, y, nfe=12, seed=0, sampler=sampler, sigma_y=0.2)
    assert aware.nfe == pasted.nfe == 11 and torch.isfinite(aware.image).all()
    assert (op.A(pasted.image) - y).abs().max() < 1e-4  # the plain projection copies y, noise and all
    assert (op.A(aware.image) - y).pow(2).mean().sqrt() > 0.1  # the noise-aware one does not
    if sampler in ("ddim", "dpm-solver++", "unipc"):  # and lands nearer the truth on a Gaussian prior
        assert (aware.image - truth).pow(2).mean() < 0.9 * (pasted.image - truth).pow(2).mean()


@pytest.mark.parametrize("sampler", MULTISTEP)
def test_ddnm_plus_runs_on_the_multistep_samplers(truth, sampler):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=2)
    y = op.A(truth) + 0.2 * torch.randn(op.A(truth).shape, generator=torch.Generator().manual_seed(5))
    result = restore(GaussianPrior(), op, y, method="ddnm", nfe=12, seed=0, sampler=sampler, sigma_y=0.2)
    plain = restore(GaussianPrior(), op, y, method="ddnm", nfe=12, seed=0, sampler=sampler)
    assert result.nfe == 12
    assert (result.image - truth).pow(2).mean() < (plain.image - truth).pow(2).mean()


def test_cm4ir_noise_injection_is_ddim_with_the_predicted_noise_negated():
    from ssdiff.solvers.samplers import cm4ir_noise

    op = get_operator("sr_bicubic", image_size=(16, 16), scale=2)
    g = torch.Generator().manual_seed(6)
    y = op.A((0.3 * torch.randn(1, 3, 16, 16, generator=g)).clamp(-1, 1))
    common = {"method": "ssd", "nfe": 8, "t0": 500, "seed": 3}
    # all fresh noise: the two updates are the same step
    fresh = restore(GaussianPrior(), op, y, sampler="cm4ir-noise", ddim_eta=1.0, **common)
    assert torch.allclose(fresh.image, restore(GaussianPrior(), op, y, sampler="ddim", ddim_eta=1.0, **common).image, atol=1e-6)
    # no fresh noise: from x_t = sqrt(a) x0 + sqrt(1 - a) e, the next state carries -e where DDIM carries e
    prior, steps = GaussianPrior(), [100, 300]
    x = torch.randn(1, 3, 4, 4, generator=g)
    a, a_next = (ssdiff.schedule.DEFAULT_SCHEDULE.alpha_bar_at(t) for t in steps[::-1])
    seen = []
    out = cm4ir_noise(prior, x, steps, eta=0.0, callback=lambda phase, i, t, x_t: seen.append(x_t), clip=False)
    x0 = (x - math.sqrt(1 - a) * prior(x, 300)) / math.sqrt(a)
    e = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
    assert torch.allclose(seen[1], math.sqrt(a_next) * x0 - math.sqrt(1 - a_next) * e, atol=1e-5)
    assert out.shape == x.shape and restore(GaussianPrior(), op, y, sampler="cm4ir-noise", **common).nfe == 7


@pytest.mark.parametrize("rule", ["projection", "noise-aware"])
def test_null_space_noise_changes_only_what_y_does_not_measure(rule):
    # a box hole: the move with fresh-noise share 1 in the null space keeps the sampler's move on the
    # measured pixels and is sqrt(a') x0 + sqrt(1 - a') z in the hole, z the one draw both moves share
    from ssdiff.solvers.consistency import BackProjection, NoiseAwareProjection, NullSpaceNoise, Step

    op = get_operator("inpaint", image_size=(16, 16), mask="box:0.5")
    g = torch.Generator().manual_seed(2)
    y = op.A(torch.rand(1, 3, 16, 16, generator=g) * 2 - 1)
    base = BackProjection(op, y) if rule == "projection" else NoiseAwareProjection(op, y, 0.1)
    x0, eps = torch.randn(1, 3, 16, 16, generator=g).clamp(-1, 1), torch.randn(1, 3, 16, 16, generator=g)
    step, eta = Step(0, 400, 0.5, 0.8), 0.3
    split = NullSpaceNoise(base, op, 1.0).move(x0, eps, step, eta, NoiseSource(5, 1, "cpu"))
    plain = base.move(x0, eps, step, eta, NoiseSource(5, 1, "cpu"))
    z = NoiseSource(5, 1, "cpu").draw(x0.shape, "cpu")
    hole = op.singular_map(x0).expand_as(x0) == 0
    assert hole.any() and (~hole).any()
    assert torch.allclose(split[~hole], plain[~hole], atol=1e-6)
    fresh = math.sqrt(0.8) * base(x0, step) + math.sqrt(0.2) * z
    assert torch.allclose(split[hole], fresh[hole], atol=1e-6)
    # the same share everywhere is the rule's own move
    same = NullSpaceNoise(base, op, eta).move(x0, eps, step, eta, NoiseSource(5, 1, "cpu"))
    assert torch.equal(same, plain)


@pytest.mark.parametrize("sampler", ["ddim", "cm4ir-noise"])
def test_null_space_noise_in_ssd(truth, sampler):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = op.A(truth)
    common = {"method": "ssd", "nfe": 8, "t0": 500, "seed": 3, "sampler": sampler, "ddim_eta": 0.3}
    plain = restore(GaussianPrior(), op, y, **common)
    # null_eta equal to ddim_eta is the plain run, draw for draw
    assert torch.equal(restore(GaussianPrior(), op, y, null_eta=0.3, **common).image, plain.image)
    split = restore(GaussianPrior(), op, y, null_eta=1.0, **common)
    assert split.nfe == plain.nfe == 7 and split.extras["null_eta"] == 1.0
    assert not torch.allclose(split.image, plain.image, atol=1e-3)
    # both end on the measurement (the last estimate is back-projected) and are seeded
    assert torch.allclose(op.A(split.image), y, atol=1e-4)
    assert torch.equal(split.image, restore(GaussianPrior(), op, y, null_eta=1.0, **common).image)


@pytest.mark.parametrize("sampler", ["ddim", "cm4ir-noise"])
def test_null_space_noise_per_step(truth, sampler):
    # one share per generation step, in the order they are taken: all equal is the one number; a
    # step whose share is ddim_eta's is the plain step there, draw for draw (seen by the callback)
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = op.A(truth)
    common = {"method": "ssd", "nfe": 8, "t0": 500, "seed": 3, "sampler": sampler, "ddim_eta": 0.3}
    steps = restore(GaussianPrior(), op, y, **common).extras["backward_steps"]
    assert len(steps) == 6
    one = restore(GaussianPrior(), op, y, null_eta=1.0, **common)
    listed = restore(GaussianPrior(), op, y, null_eta=[1.0] * 6, **common)
    assert torch.equal(listed.image, one.image) and listed.extras["null_eta"] == [1.0] * 6
    assert torch.equal(restore(GaussianPrior(), op, y, null_eta=np.float32(1.0), **common).image, one.image)

    def states(null_eta):
        seen = []
        restore(GaussianPrior(), op, y, null_eta=null_eta, callback=lambda phase, i, t, x: seen.append(x.clone())
                if phase == "generation" else None, **common)
        return seen

    plain, fresh, late = states(0.3), states(1.0), states([0.3, 0.3, 1.0, 1.0, 1.0, 1.0])
    assert all(torch.equal(a, b) for a, b in zip(late[:3], plain[:3]))  # the first two moves are the plain ones
    assert not torch.allclose(late[3], plain[3], atol=1e-3) and not torch.allclose(late[3], fresh[3], atol=1e-3)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_eps_scale_divides_the_generations_noise_predictions_only(truth, sampler):
    # Epsilon Scaling: generation sees the network's prediction divided by the scale, the DA
    # inversion the network's own; any sampler (EDICT's two calls a step too), the same calls
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = op.A(truth)
    common = {"method": "ssd", "nfe": 8, "t0": 500, "seed": 3, "sampler": sampler, "forward_steps": 3, "backward_steps": 6}

    class Divided:  # divides by ``scale`` in the phase the callback says is generation
        scale = 1.0

        def __call__(self, x, t):
            return GaussianPrior()(x, t) / self.scale

    reference = Divided()

    def phase(name, i, t, x):
        reference.scale = 1.02 if name == "generation" else 1.0

    expected = restore(reference, op, y, callback=phase, **common)
    scaled = restore(GaussianPrior(), op, y, eps_scale=1.02, **common)
    plain = restore(GaussianPrior(), op, y, **common)
    assert torch.equal(scaled.image, expected.image) and scaled.nfe == expected.nfe == plain.nfe
    assert scaled.extras["eps_scale"] == 1.02
    for one in (1, None, np.float32(1)):  # the network's own prediction
        assert torch.equal(restore(GaussianPrior(), op, y, eps_scale=one, **common).image, plain.image)
    assert not torch.allclose(scaled.image, plain.image, atol=1e-4)
    assert torch.allclose(op.A(scaled.image), y, atol=1e-4)  # still back-projected


@pytest.mark.parametrize("task, options", [("sr_bicubic", {"scale": 4}), ("colorization", {})])
def test_null_space_noise_splits_along_the_pseudo_inverse(task, options):
    # beyond a mask (where A^T = A^+): the range part of the move is the plain one, the null-space
    # part is that of the rule's move with the null share, for any SVD operator
    from ssdiff.solvers.consistency import BackProjection, NullSpaceNoise, Step

    op = get_operator(task, image_size=(16, 16), **options)
    g = torch.Generator().manual_seed(4)
    y = op.A(torch.rand(1, 3, 16, 16, generator=g) * 2 - 1)
    rule = BackProjection(op, y)
    x0, eps = torch.randn(1, 3, 16, 16, generator=g).clamp(-1, 1), torch.randn(1, 3, 16, 16, generator=g)
    step = Step(0, 400, 0.5, 0.8)
    split = NullSpaceNoise(rule, op, 1.0).move(x0, eps, step, 0.2, NoiseSource(5, 1, "cpu"))
    plain = rule.move(x0, eps, step, 0.2, NoiseSource(5, 1, "cpu"))
    fresh = rule.move(x0, eps, step, 1.0, NoiseSource(5, 1, "cpu"))

    def null(v):
        return v - op.A_pinv(op.A(v))

    assert torch.allclose(op.A(split), op.A(plain), atol=1e-4)
    assert torch.allclose(null(split), null(fresh), atol=1e-4)
    assert not torch.allclose(null(split), null(plain), atol=1e-2)


def test_ssd_fast_runs_its_presets_eps_scale_unless_told_otherwise(truth):
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = op.A(truth)
    entry = {"config": {"sampler": "ddim", "t0": 500, "inversion_calls": 2, "eps_scale": 1.01}}
    preset = {"prior": "unnamed", "presets": {op.name: {"8": entry}}}

    def run(**options):
        return restore(GaussianPrior(), op, y, method="ssd-fast", nfe=8, preset=preset, **options)

    tuned = run()
    assert tuned.extras["eps_scale"] == 1.01 and tuned.nfe == 8
    assert torch.equal(run(eps_scale=None).image, tuned.image)  # None: not given
    assert run(eps_scale=1).extras["eps_scale"] == 1.0
    plain = restore(GaussianPrior(), op, y, method="ssd", nfe=8, seed=0, sampler="ddim", t0=500, forward_steps=3, backward_steps=6,
                    inversion="da", eta=tuned.extras["eta"])
    assert torch.equal(run(eps_scale=1).image, plain.image)


def test_ssd_fast_refuses_noise_shares_its_presets_sampler_ignores(truth):
    # a preset without fresh noise (the untuned dpm-solver++ here) would silently drop them
    op = get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    calls = []

    def prior(x, t):
        calls.append(t)
        return torch.zeros_like(x)

    presets = {"prior": "unnamed", "presets": {"sr_bicubic_x4": {"10": {"config": {"sampler": "unipc", "inversion_calls": 1}}}}}
    for knob in ("null_eta", "ddim_eta"):
        with pytest.raises(ValueError, match=f"{knob} applies to the ddim, cm4ir-noise samplers only.*'unipc'"):
            restore(prior, op, op.A(truth), method="ssd-fast", nfe=10, preset=presets, **{knob: 1.0})
    assert not calls
    # given the sampler too, it runs; a noisy measurement's switch to ddim keeps what the user gave
    ok = restore(GaussianPrior(), op, op.A(truth), method="ssd-fast", nfe=10, preset=presets, sampler="ddim", null_eta=1.0)
    assert ok.extras["null_eta"] == 1.0
    noisy = restore(GaussianPrior(), op, op.A(truth), method="ssd-fast", nfe=10, preset=presets, null_eta=1.0, sigma_y=0.05)
    assert noisy.extras["sampler"] == "ddim" and noisy.extras["null_eta"] == 1.0
    # and drops the noise shares of the preset's own sampler
    tuned = {"prior": "unnamed", "presets": {"sr_bicubic_x4": {"10": {"config": {
        "sampler": "cm4ir-noise", "inversion_calls": 1, "ddim_eta": 0.1, "null_eta": 0.5}}}}}
    switched = restore(GaussianPrior(), op, op.A(truth), method="ssd-fast", nfe=10, preset=tuned, sigma_y=0.05)
    assert switched.extras["sampler"] == "ddim" and switched.extras["null_eta"] is None and switched.extras["ddim_eta"] == 0.8
    # a preset that is ddim already (by default: no sampler named) keeps its own shares
    own = {"prior": "unnamed", "presets": {"sr_bicubic_x4": {"10": {"config": {
        "inversion_calls": 2, "ddim_eta": 0.1, "null_eta": [1.0] * 7 + [0.0]}}}}}
    kept = restore(GaussianPrior(), op, op.A(truth), method="ssd-fast", nfe=10, preset=own, sigma_y=0.05)
    assert kept.extras["null_eta"] == [1.0] * 7 + [0.0] and kept.extras["ddim_eta"] == 0.1
