"""The few-step baselines (DiffPIR, CM4IR), the proximal data step, ``ssdiff tune`` and ``ssd-fast``."""

import itertools
import json
import math
import warnings

import pytest
import torch
from conftest import write_images
from test_ssd import GaussianPrior

from ssdiff import get_operator, restore
from ssdiff.bench import parse_method, split_method
from ssdiff.cli import main
from ssdiff.solvers.cm4ir import cm4ir_levels
from ssdiff.solvers.fast import UNTUNED, config_to_hparams, find_preset


@pytest.fixture()
def truth():
    g = torch.Generator().manual_seed(3)
    return (0.2 + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)


def test_proximal_step_is_diffpirs_closed_form_for_inpainting(truth):
    # argmin |y - M x|^2 + rho |x - z|^2 for a mask M is (m y + rho z) / (m + rho) per pixel
    op = get_operator("inpaint", image_size=(32, 32))
    z = torch.randn(truth.shape, generator=torch.Generator().manual_seed(1))
    y, m = op.A(truth), op.mask
    for rho in (0.01, 0.3, 5.0):
        assert torch.allclose(op.project(z, y, rho=rho), (m * y + rho * z) / (m + rho), atol=1e-6)


@pytest.mark.parametrize("task,options", [("sr_bicubic", {"scale": 4}), ("colorization", {}), ("deblur_gauss", {})])
def test_proximal_step_balances_data_and_prior(truth, task, options):
    op = get_operator(task, image_size=(32, 32), **options)
    y = op.A(truth)
    z = truth + 0.3 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(2))
    errors = [(op.A(op.project(z, y, rho=rho)) - y).norm().item() for rho in (0.0, 0.1, 1.0, 10.0)]
    assert errors[0] < 1e-3 * errors[-1]  # rho = 0 is the back-projection
    assert errors == sorted(errors)  # more weight on z, less on the data
    # the objective's gradient A^T(A x - y) + rho (x - z) vanishes: x - z is in the row space
    # of A, so the projection of x - z onto the null space is zero
    x = op.project(z, y, rho=1.0)
    null_part = (x - z) - op.A_pinv(op.A(x - z))
    assert null_part.abs().max() < 1e-4


@pytest.mark.parametrize("method,nfe", [("diffpir", 7), ("cm4ir", 4), ("cm4ir", 6)])
@pytest.mark.parametrize("task,options", [("sr_bicubic", {"scale": 4}), ("colorization", {}), ("inpaint", {})])
def test_few_step_baselines_agree_with_y_and_count_their_calls(truth, method, nfe, task, options):
    op = get_operator(task, image_size=(32, 32), **options)
    y = op.A(truth)
    calls = []
    prior = GaussianPrior()
    result = restore(lambda x, t: calls.append(t) or prior(x, t), op, y, method=method, nfe=nfe, seed=0)
    assert result.nfe == len(calls) == nfe
    assert (op.A(result.image) - y).abs().mean() < 2e-3  # sigma_n = 0.001 leaves DiffPIR a hair off y
    again = restore(prior, op, y, method=method, nfe=nfe, seed=0)
    assert torch.equal(result.image, again.image)


def test_cm4ir_noise_levels_follow_the_authors_rule():
    # a_0 = alpha_bar[iN + 1], a_{k+1} = min(a_k (1 + gamma), 0.9999), sigma = sqrt(1 - a)
    levels = cm4ir_levels(250, 0.2, 4)
    assert [round(sigma, 3) for sigma, _ in levels] == [0.694, 0.614, 0.503, 0.322]
    assert [t for _, t in levels] == sorted([t for _, t in levels], reverse=True)


def test_diffpir_fills_a_hole_toward_the_prior():
    mu, s = 0.5, 0.1
    truth = (mu + s * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    op = get_operator("inpaint", image_size=(32, 32))
    result = restore(GaussianPrior(mu, s), op, op.A(truth), method="diffpir", nfe=20, seed=0)
    assert abs(result.image[0][:, op.mask[0, 0] == 0].mean().item() - mu) < 0.05


def test_diffpir_takes_its_authors_time_steps_by_default():
    """Their quad (main_ddpir_*.py; deepinv reproduces it): 999, 770, 675, ..., 26 at 19 calls,
    their 20 iterations without the final call at t = 0 whose prediction they discard."""
    from ssdiff.schedule import diffpir_steps

    steps = diffpir_steps(999, 19)[::-1]
    assert steps[:3] == [999, 770, 675] and steps[-2:] == [54, 26] and len(steps) == 19
    assert steps == [999 - int(math.sqrt(k / 19) * 1000 + 1e-9) for k in range(19)]  # s_k = int(sqrt(k/19) 1000)
    calls = []

    def recording(x, t):
        calls.append(int(t) if not torch.is_tensor(t) else int(t.flatten()[0]))
        return torch.zeros_like(x)

    op = get_operator("deblur_gauss")
    result = restore(recording, op, op.A(torch.zeros(1, 3, 16, 16)), method="diffpir", nfe=19, seed=0)
    assert calls == steps and result.extras["steps"] == sorted(steps) and result.nfe == 19
    ddim_quad = restore(recording, op, op.A(torch.zeros(1, 3, 16, 16)), method="diffpir", nfe=19, spacing="quadratic")
    assert ddim_quad.extras["steps"][-1] == 999 and ddim_quad.extras["steps"][0] < 10  # the former default, by name


def test_bench_methods_take_options():
    assert split_method("ssd[sampler=unipc;t0=450;eta=0.2]") == ("ssd", {"sampler": "unipc", "t0": 450, "eta": 0.2})
    assert parse_method("ssd[sampler=unipc]@10", [30]) == ("ssd[sampler=unipc]", [10])
    with pytest.raises(ValueError, match="unknown method"):
        parse_method("ssdx[sampler=unipc]@10", [30])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        split_method("ssd[sampler]")


def test_configurations_spend_the_whole_budget():
    assert config_to_hparams({"inversion_calls": 2, "sampler": "unipc", "ddim_eta": 0.3}, 10) == {
        "sampler": "unipc", "forward_steps": 3, "backward_steps": 8}
    assert config_to_hparams({"inversion_calls": 0, "sampler": "ddim", "ddim_eta": 0.3}, 4)["inversion"] == "sdedit"
    with pytest.raises(ValueError, match="no generation step"):
        config_to_hparams({"inversion_calls": 3}, 3)
    # null-space noise belongs to the samplers with fresh noise, and None is its absence
    assert config_to_hparams({"inversion_calls": 1, "sampler": "ddim", "null_eta": 1.0}, 4)["null_eta"] == 1.0
    for config in ({"sampler": "unipc", "null_eta": 1.0}, {"sampler": "ddim", "null_eta": None},
                   {"sampler": "ddim", "ddim_eta": 0.3, "null_eta": 0.3}):  # the same share everywhere: the plain run
        assert "null_eta" not in config_to_hparams({"inversion_calls": 1, **config}, 4)


def test_presets_of_another_prior_or_task_are_refused():
    presets = {"prior": "celeba64", "source": "file", "presets": {"colorization": {"10": {"config": {"t0": 450}}}}}
    with pytest.raises(ValueError, match="tuned for the prior 'celeba64'"):
        find_preset(presets, "other", "colorization", 10)
    with pytest.raises(ValueError, match="no preset for the task 'inpaint'"):
        find_preset(presets, "celeba64", "inpaint", 10)
    assert find_preset(presets, "celeba64", "colorization", 12) == ({"t0": 450}, "tuned at 10 NFEs")
    with pytest.warns(UserWarning, match="no tuned preset"):
        assert find_preset(presets, "celeba64", "colorization", 6)[0] == UNTUNED
    # a file from before masks were told apart: random masks take its inpainting presets
    older = {"prior": "celeba64", "source": "file", "presets": {"inpaint": {"10": {"config": {"t0": 750}}}}}
    assert find_preset(older, "celeba64", "inpaint_scattered", 10) == ({"t0": 750}, "tuned for inpaint at 10 NFEs")


def test_tune_visits_ddim_with_each_of_its_noise_levels(monkeypatch):
    import ssdiff.tune as tune_module

    # a score landscape where ddim is worse than the start unless both its noise levels are right
    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        good = config["sampler"] == "ddim" and config["ddim_eta"] == 0.8 and config.get("null_eta") == 1.0
        psnr = 30.0 if good else 20.0 - (config["sampler"] == "ddim")
        return {"psnr": psnr, "swd": 0.0, "score": psnr, "calls": nfe}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    space = {"sampler": ["unipc", "ddim"], "ddim_eta": [0.0, 0.8], "null_eta": [None, 1.0]}
    entry = tune_module.tune(GaussianPrior(), get_operator("colorization"), torch.zeros(1, 3, 8, 8), 10,
                             task_defaults={}, space=space, rounds=1, progress=False, start={"sampler": "unipc"})
    assert entry["config"] == {"sampler": "ddim", "ddim_eta": 0.8, "null_eta": 1.0} and entry["psnr"] == 30.0


def test_tune_searches_the_noise_predictions_scale_and_scores_scale_one_once(monkeypatch):
    import ssdiff.tune as tune_module

    seen = []

    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        seen.append(config)
        psnr = 21.0 if config.get("eps_scale") == 1.01 else 20.0
        return {"psnr": psnr, "swd": 0.0, "score": psnr, "calls": nfe}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    assert 1.0 in tune_module.SEARCH_SPACE["eps_scale"]
    space = {"sampler": ["ddim"], "eps_scale": [1.0, 1.005, 1.01]}
    entry = tune_module.tune(GaussianPrior(), get_operator("colorization"), torch.zeros(1, 3, 8, 8), 10,
                             task_defaults={}, space=space, rounds=2, progress=False, start={"sampler": "ddim"})
    assert entry["config"] == {"sampler": "ddim", "eps_scale": 1.01}
    # scale 1 is the network's own prediction: the start, not scored again under another name
    assert seen == [{"sampler": "ddim"}, {"sampler": "ddim", "eps_scale": 1.005}, {"sampler": "ddim", "eps_scale": 1.01}]
    hparams = config_to_hparams(entry["config"], 10)
    assert hparams["eps_scale"] == 1.01


def test_tune_writes_a_preset_that_ssd_fast_uses(tmp_path, tiny_model_args, golden, model_configs, images):
    import ssdiff

    data = write_images(tmp_path / "faces", images.repeat(2, 1, 1, 1), ["a", "b", "c", "d"])
    preset = tmp_path / "presets.json"
    space = '{"t0": [200, 400], "inversion_calls": [0, 1]}'
    assert main(["tune", "--data", str(data), "--task", "colorization", "--nfe", "4", "--out", str(preset),
                 "--rounds", "1", "--space", space, "--device", "cpu", *tiny_model_args]) == 0
    written = json.loads(preset.read_text())
    entry = written["presets"]["colorization"]["4"]
    assert written["prior"] == "ddpm_model_small.safetensors"
    assert entry["search"]["evaluations"] <= 4 and entry["search"]["network_calls"] == entry["search"]["evaluations"] * 4 * 4
    assert set(entry["config"]) >= {"t0", "inversion_calls"}

    prior = ssdiff.load_model(golden / "ddpm_model_small.safetensors", config=model_configs["ddpm_model_small"])
    op = get_operator("colorization", image_size=(32, 32))
    y = op.A(images)
    fast = restore(prior, op, y, method="ssd-fast", nfe=4, preset=str(preset))
    assert fast.nfe == 4 and fast.extras["preset"] == "tuned at 4 NFEs"
    assert fast.extras["t0"] == entry["config"]["t0"]
    # the frontier of what the search scored: realism 0 and 1 run its two ends
    front = entry["frontier"]
    for realism, end in ((0, front[0]), (1, front[-1])):
        chosen = restore(prior, op, y, method="ssd-fast", nfe=4, preset=str(preset), realism=realism)
        assert chosen.extras["preset"] == f"tuned at 4 NFEs, realism {realism} on its frontier"
        assert chosen.extras["t0"] == end["config"]["t0"] and chosen.nfe == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore(prior, op, y, method="ssd-fast", nfe=4, preset=str(preset))  # tuned: no warning
    with pytest.warns(UserWarning, match="untuned"):
        untuned = restore(prior, op, y, method="ssd-fast", nfe=4)  # no presets ship for this prior
    assert untuned.extras["preset"] == "untuned" and untuned.nfe == 4
    # the preset file holds another prior's presets: refused before any work
    assert main(["tune", "--data", str(data), "--task", "colorization", "--nfe", "4", "--out", str(preset),
                 "--device", "cpu"]) == 2


def test_tune_check_judges_on_other_images_of_the_folder(tmp_path, tiny_model_args, images, capsys):
    data = write_images(tmp_path / "faces", images.repeat(2, 1, 1, 1), ["a", "b", "c", "d"])
    preset = tmp_path / "presets.json"
    args = ["tune", "--data", str(data), "--task", "colorization", "--nfe", "4", "--out", str(preset), "--rounds", "1",
            "--space", '{"t0": [200, 400]}', "--device", "cpu", *tiny_model_args, "--subset", "0:2"]
    # the check must not see the search's images: refused in one line, before any work
    assert main([*args, "--check", "1:3"]) == 2
    assert "--check 1:3 overlaps --subset (1 of its images, the first b)" in capsys.readouterr().err and not preset.exists()
    assert main([*args, "--check", "2:4"]) == 0
    entry = json.loads(preset.read_text())["presets"]["colorization"]["4"]
    judged = entry["search"]["check"]
    assert judged["images"] == 2 and judged["data"].endswith("[2:4]") and 1 <= judged["evaluations"] <= 2
    lines = [json.loads(line) for line in preset.with_suffix(".log.jsonl").read_text().splitlines()]
    checked = [line for line in lines if line["data"] == judged["data"]]
    assert len(checked) == judged["evaluations"] and entry["config"] in [line["config"] for line in checked]
    assert "on the 2 --check images" in capsys.readouterr().out
    assert main(args) == 2  # without --check it would undo the check: refused in one line
    assert "re-tune it with --check on those images too" in capsys.readouterr().err
    assert json.loads(preset.read_text())["presets"]["colorization"]["4"] == entry


def test_pareto_front_keeps_the_points_nothing_cheaper_beats():
    from ssdiff.bench import pareto_front

    points = [(1.0, 20.0), (2.0, 19.0), (2.0, 23.0), (4.0, 22.0), (8.0, 24.0)]
    assert pareto_front(points, higher_is_better=True) == [(1.0, 20.0), (2.0, 23.0), (8.0, 24.0)]
    assert pareto_front(points, higher_is_better=False) == [(1.0, 20.0), (2.0, 19.0)]


def test_shipped_presets_are_valid_for_the_builtin_prior():
    from ssdiff.operators import get_operator, parse_task
    from ssdiff.solvers.fast import builtin_presets

    presets = builtin_presets("celeba64")
    assert presets["prior"] == "celeba64" and presets["presets"]
    names = {get_operator(base, image_size=(64, 64), **params).name
             for base, params in map(parse_task, ["sr_bicubic4", "sr_bicubic8", "colorization", "deblur_gauss", "inpaint",
                                               "inpaint_random80"])}
    assert set(presets["presets"]) <= names
    for task, by_budget in presets["presets"].items():
        for nfe, entry in by_budget.items():
            hparams = config_to_hparams(entry["config"], int(nfe))
            assert hparams["forward_steps"] - 1 + hparams["backward_steps"] == int(nfe) or hparams.get("inversion") == "sdedit"
            assert entry["search"]["network_calls"] > 0
            found, origin = find_preset(presets, "celeba64", task, int(nfe))
            assert found == entry["config"] and origin == f"tuned at {nfe} NFEs"


def test_sr_factors_without_presets_borrow_the_nearest_tuned_factor():
    from ssdiff.solvers.fast import builtin_presets, find_preset, nearest_scale

    presets = builtin_presets("celeba64")
    assert nearest_scale("sr_bicubic_x2", presets["presets"]) == "sr_bicubic_x4"
    assert nearest_scale("sr_bicubic_x16", presets["presets"]) == "sr_bicubic_x8"
    assert nearest_scale("colorization", presets["presets"]) is None
    config, origin = find_preset(presets, "celeba64", "sr_bicubic_x2", 10)
    assert config == presets["presets"]["sr_bicubic_x4"]["10"]["config"] and origin == "tuned for sr_bicubic_x4 at 10 NFEs"
    assert nearest_scale("sr_bicubic_x2", ["sr_bicubic", "colorization"]) is None  # no factor to compare
    # a user's preset file for SR x4 serves the x2 SR of a face frame too
    borrowed, _ = find_preset({**presets, "source": "file"}, "celeba64", "sr_bicubic_x2", 10)
    assert borrowed == config


def test_tasks_with_a_users_kernel_borrow_the_papers_task_of_their_kind():
    from ssdiff.solvers.fast import builtin_presets, find_preset

    presets = builtin_presets("celeba64")
    config, origin = find_preset(presets, "celeba64", "deblur_kernel", 10)
    assert config == presets["presets"]["deblur_gauss"]["10"]["config"] and origin == "tuned for deblur_gauss at 10 NFEs"
    _, origin = find_preset(presets, "celeba64", "sr_kernel_x2", 6)
    assert origin == "tuned for sr_bicubic_x4 at 6 NFEs"  # the nearest tuned factor of bicubic SR
    with pytest.warns(UserWarning, match="no tuned preset"):
        assert find_preset(presets, "celeba64", "cs_walsh_hadamard", 10)[1] == "untuned"


def test_explicit_time_steps_and_per_step_noise_equal_their_named_forms():
    from ssdiff.schedule import spaced_steps

    op = get_operator("sr_bicubic", image_size=(16, 16), scale=2)
    g = torch.Generator().manual_seed(1)
    y = op.A((0.3 * torch.randn(1, 3, 16, 16, generator=g)).clamp(-1, 1))
    steps = spaced_steps("logsnr", 549, 8)
    named = restore(GaussianPrior(), op, y, method="ssd", nfe=10, t0=550, spacing="logsnr", ddim_eta=0.3,
                    forward_steps=2, backward_steps=8, seed=4)
    listed = restore(GaussianPrior(), op, y, method="ssd", nfe=10, t0=550, spacing=steps, ddim_eta=[0.3] * 8,
                     forward_steps=2, backward_steps=8, seed=4)
    assert torch.equal(named.image, listed.image) and listed.nfe == named.nfe == 9
    moved = restore(GaussianPrior(), op, y, method="ssd", nfe=10, t0=550, spacing=steps, ddim_eta=[1.0] + [0.3] * 7,
                    forward_steps=2, backward_steps=8, seed=4)
    assert not torch.equal(moved.image, named.image)  # each step's noise is its own
    for bad in ([*steps[:-1], 500], steps[:-1], [steps[1], steps[0], *steps[2:]]):
        with pytest.raises(ValueError, match="explicit time steps"):
            spaced_steps(bad, 549, 8)
    with pytest.raises(ValueError, match="one per step"):
        restore(GaussianPrior(), op, y, method="ssd", nfe=10, t0=550, spacing=steps, ddim_eta=[0.3] * 3,
                forward_steps=2, backward_steps=8)


def test_the_step_search_moves_single_steps_and_noises_and_ssd_fast_runs_its_preset(monkeypatch):
    import ssdiff.tune as tune_module

    # a landscape that rewards a late first step and noise at the first (noisiest) step only
    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        spacing, etas = config["spacing"], config["ddim_eta"]
        psnr = 20.0
        if isinstance(spacing, list):
            psnr += spacing[0] / 100 + (etas[0] == 1.0) - sum(etas[1:])
        return {"psnr": psnr, "swd": 0.0, "score": psnr, "calls": nfe}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    start = {"sampler": "ddim", "spacing": "trailing", "t0": 550, "eta": 0.4, "inversion_calls": 1, "ddim_eta": 0.3}
    entry = tune_module.tune(GaussianPrior(), get_operator("colorization"), torch.zeros(1, 3, 8, 8), 6,
                             task_defaults={}, space={k: [v] for k, v in start.items()}, rounds=3, progress=False,
                             start=start, steps=True)
    config = entry["config"]
    assert len(config["spacing"]) == 5 and config["spacing"][-1] == 549 and config["spacing"][0] > 109  # trailing's first: 109
    assert config["ddim_eta"] == [1.0, 0.0, 0.0, 0.0, 0.3]  # the last step, to the clean image, takes no noise: not moved
    assert entry["search"]["step_search_evaluations"] > 0
    g = torch.Generator().manual_seed(2)
    op = get_operator("colorization", image_size=(8, 8))
    result = restore(GaussianPrior(), op, op.A(torch.randn(1, 3, 8, 8, generator=g).clamp(-1, 1)), method="ssd-fast",
                     nfe=6, preset={"prior": "unnamed", "presets": {"colorization": {"6": entry}}})
    assert result.nfe == 6 and result.extras["backward_steps"] == config["spacing"]


def test_the_step_search_moves_each_steps_null_space_noise(monkeypatch):
    import ssdiff.tune as tune_module

    # a landscape that rewards fresh null-space noise at the first two steps and none at the next two
    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        shares = config.get("null_eta")
        psnr = 20.0 + (sum(shares[:2]) - sum(shares[2:4]) if isinstance(shares, list) else 0.0)
        return {"psnr": psnr, "swd": 0.0, "score": psnr, "calls": nfe}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    start = {"sampler": "ddim", "spacing": "trailing", "t0": 550, "eta": 0.4, "inversion_calls": 1, "ddim_eta": 0.3,
             "null_eta": 0.5}
    entry = tune_module.tune(GaussianPrior(), get_operator("colorization"), torch.zeros(1, 3, 8, 8), 6,
                             task_defaults={}, space={k: [v] for k, v in start.items()}, rounds=2, progress=False,
                             start=start, steps=True)
    assert entry["config"]["null_eta"] == [1.0, 1.0, 0.0, 0.0, 0.5]  # the last step's share is never moved
    assert entry["config"]["ddim_eta"] == [0.3] * 5
    hparams = config_to_hparams(entry["config"], 9)  # another budget: one share per step, refitted
    assert len(hparams["null_eta"]) == len(hparams["ddim_eta"]) == 8


def test_a_retune_from_a_preset_without_a_sampler_starts_from_ddim(monkeypatch):
    # a search whose space left the sampler out writes configurations without one: ssd() runs them
    # as ddim, so a re-tune from one starts there, noise shares and all
    import ssdiff.tune as tune_module

    seen = []

    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        seen.append(config)
        return {"psnr": 20.0, "swd": 0.0, "score": 20.0, "calls": nfe}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    start = {"spacing": "trailing", "t0": 550, "eta": 0.0, "inversion_calls": 2, "ddim_eta": 0.1, "null_eta": [1.0] * 7 + [0.0]}
    tune_module.tune(GaussianPrior(), get_operator("colorization"), torch.zeros(1, 3, 8, 8), 10, task_defaults={},
                     space={"t0": [550], "sampler": ["ddim"]}, rounds=1, progress=False, start=start)
    assert seen == [{"t0": 550, "sampler": "ddim"}]  # the space's knobs only, the sampler ssd() ran
    tune_module.tune(GaussianPrior(), get_operator("colorization"), torch.zeros(1, 3, 8, 8), 10, task_defaults={},
                     rounds=1, progress=False, start=start)
    assert seen[1]["sampler"] == "ddim" and seen[1]["null_eta"] == start["null_eta"] and seen[1]["ddim_eta"] == 0.1


def test_per_step_noise_shares_follow_the_budget_whatever_the_spacing():
    # a per-step preset whose spacing a re-tune named again, at another number of inversion calls
    config = {"sampler": "ddim", "spacing": "trailing", "inversion_calls": 2, "ddim_eta": [0.3] * 9 + [0.0],
              "null_eta": [1.0] * 8 + [0.0, 1.0]}
    hparams = config_to_hparams(config, 10)
    assert len(hparams["ddim_eta"]) == len(hparams["null_eta"]) == hparams["backward_steps"] == 8
    g = torch.Generator().manual_seed(3)
    op = get_operator("colorization", image_size=(8, 8))
    result = restore(GaussianPrior(), op, op.A(torch.randn(1, 3, 8, 8, generator=g).clamp(-1, 1)), method="ssd", nfe=10,
                     **hparams)
    assert result.nfe == 10


def test_the_tuners_score_is_any_methods_score_on_the_same_seeds():
    # a configuration is scored as ssd with its keyword arguments; a baseline (the targets) alike
    from ssdiff.tune import evaluate, evaluate_method

    g = torch.Generator().manual_seed(5)
    truths, op = (0.3 * torch.randn(5, 3, 8, 8, generator=g)).clamp(-1, 1), get_operator("colorization")
    config = {"sampler": "ddim", "t0": 300, "inversion_calls": 1, "ddim_eta": 1.0}
    scored = evaluate(GaussianPrior(), op, truths, config, 4, batch_size=2)
    assert scored == evaluate_method(GaussianPrior(), op, truths, "ssd", 4, 0, 2, **config_to_hparams(config, 4))
    assert scored["calls"] == 4 * 5 and scored["score"] == pytest.approx(scored["psnr"] - 0.15 * scored["swd"])
    assert scored != evaluate(GaussianPrior(), op, truths, config, 4, seed=1, batch_size=2)  # seeded per image
    baseline = evaluate_method(GaussianPrior(), op, truths, "ddnm", 6, batch_size=2)
    assert baseline["calls"] == 6 * 5 and math.isfinite(baseline["psnr"]) and baseline["swd"] >= 0


def test_a_rerun_tune_replays_its_log_instead_of_scoring_again(tmp_path, monkeypatch):
    import ssdiff.tune as tune_module

    calls = []

    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        calls.append(config)
        psnr = 20.0 + config["t0"] / 1000 - config.get("eta", 0)
        return {"psnr": psnr, "swd": 1.0, "score": psnr - 0.15, "calls": nfe * len(truths)}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    space = {"t0": [350, 550, 750], "eta": [0.0, 0.4]}
    out, op, truths = tmp_path / "presets.json", get_operator("colorization"), torch.zeros(2, 3, 8, 8)
    prior = GaussianPrior()
    prior.name = "gaussian"
    first = tune_module.tune_into(out, prior, op, truths, [6], source="faces", space=space, progress=False)
    scored = len(calls)
    assert scored > 0 and first[0]["config"]["t0"] == 750
    out.unlink()  # as if the run had stopped before writing its preset
    calls.clear()
    again = tune_module.tune_into(out, prior, op, truths, [6], source="faces", space=space, progress=False)
    assert calls == [] and again[0]["config"] == first[0]["config"] and again[0]["psnr"] == first[0]["psnr"]
    assert again[0]["search"]["network_calls"] == first[0]["search"]["network_calls"]  # what the whole search cost
    tune_module.tune_into(out, prior, op, truths, [6], source="other faces", space=space, progress=False)
    assert len(calls) > 0  # other images: nothing to replay


def test_a_check_on_other_images_chooses_the_preset_and_the_frontier(tmp_path, monkeypatch):
    import ssdiff.tune as tune_module

    calls = []

    # on the 2 search images a later t0 gains PSNR for SWD (550 lies under the chord of 350 and 750, so
    # realism never picks it) and eta costs PSNR; on the 3 check images an earlier t0 and eta 0.4 win
    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        calls.append((len(truths), config))
        x = config["t0"] / 1000
        if len(truths) == 2:
            psnr, swd = 20.0 + x - config["eta"], {350: 1.0, 550: 1.9, 750: 2.0}[config["t0"]]
        else:
            psnr, swd = 21.0 - x + config["eta"], 1.0
        return {"psnr": psnr, "swd": swd, "score": psnr - 0.15 * swd, "calls": nfe * len(truths)}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    out, op = tmp_path / "presets.json", get_operator("colorization")
    prior = GaussianPrior()
    prior.name = "gaussian"
    stored = [{"config": {"t0": t0, "eta": 0.4}, "psnr": value, "swd": value} for t0, value in ((550, 2.0), (350, 1.0))]
    before = {"config": {"t0": 550, "eta": 0.4}, "frontier": stored, "search": {}}
    out.write_text(json.dumps({"prior": "gaussian", "presets": {op.name: {"6": before}}}))
    space, check = {"t0": [350, 550, 750], "eta": [0.0, 0.4]}, (torch.zeros(3, 3, 8, 8), "check faces")
    search = {"source": "faces", "space": space, "progress": False, "check": check}
    entry = tune_module.tune_into(out, prior, op, torch.zeros(2, 3, 8, 8), [6], **search)[0]
    judged = entry["search"]["check"]
    # judged: the search frontier's two supported points (350 and 750, the winner, with eta 0; not 550),
    # the start and the stored frontier's supported point (350 with eta 0.4), which wins on the check images
    assert judged["search_winner"]["config"] == {"t0": 750, "eta": 0.0} and judged["data"] == "check faces"
    assert sorted((c["t0"], c["eta"]) for n, c in calls if n == 3) == [(350, 0.0), (350, 0.4), (550, 0.4), (750, 0.0)]
    assert judged["evaluations"] == 4 and judged["network_calls"] == 4 * 6 * 3 and judged["images"] == 3
    assert entry["config"] == {"t0": 350, "eta": 0.4} and entry["psnr"] == pytest.approx(21.05) and entry["swd"] == 1.0
    assert entry["frontier"] == [{"config": {"t0": 350, "eta": 0.4}, "psnr": pytest.approx(21.05), "swd": 1.0}]
    assert entry["score"] == pytest.approx(21.05 - 0.15)
    assert json.loads(out.read_text())["presets"][op.name]["6"]["config"] == entry["config"]
    lines = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert sum(line["data"] == "check faces" for line in lines) == 4
    calls.clear()  # a rerun replays the search and the check from the log, and counts what they cost
    again = tune_module.tune_into(out, prior, op, torch.zeros(2, 3, 8, 8), [6], **search)[0]
    assert calls == [] and again["config"] == entry["config"] and again["frontier"] == entry["frontier"]
    # it starts from the checked preset, so it judges 350 and 750 with eta 0 and that preset (replayed, all three)
    assert {k: again["search"]["check"][k] for k in ("evaluations", "network_calls")} == {"evaluations": 3, "network_calls": 54}
    # re-tuning the checked preset without a check would undo it: refused before any work
    with pytest.raises(ValueError, match="judged on check faces; re-tune it with --check"):
        tune_module.tune_into(out, prior, op, torch.zeros(2, 3, 8, 8), [6], source="faces", space=space, progress=False)
    assert calls == []


def test_supported_points_are_those_realism_picks():
    from ssdiff.solvers.fast import frontier, on_frontier, supported

    # (SWD, PSNR): (14, 22.9) lies under the chord from (10, 22) to (20, 24.5); realism never picks it
    front = frontier([{"config": {"t0": t}, "psnr": p, "swd": w}
                      for t, p, w in [(1, 25.0, 30.0), (2, 24.5, 20.0), (3, 22.9, 14.0), (4, 22.0, 10.0), (5, 21.0, 9.5)]])
    assert len(front) == 5
    assert [e["config"]["t0"] for e in supported(front)] == [1, 2, 4, 5]
    picked = {on_frontier({"frontier": front}, r / 1000)["t0"]
              for r in range(1001)}
    assert picked == {1, 2, 4, 5}
    assert supported(front[:1]) == front[:1] and supported([]) == []


def test_realism_chooses_along_the_measured_frontier():
    from ssdiff.solvers.fast import frontier, on_frontier, realism_weight

    scored = [{"config": {"t0": t0}, "psnr": psnr, "swd": swd}
              for t0, psnr, swd in [(1, 25.0, 30.0), (2, 24.0, 20.0), (3, 23.0, 14.0), (4, 22.0, 25.0), (5, 24.5, 31.0)]]
    front = frontier(scored)
    assert [e["config"]["t0"] for e in front] == [1, 2, 3]  # 4 and 5 are beaten in both
    entry = {"config": {"t0": 2}, "frontier": front}
    assert on_frontier(entry, 0) == {"t0": 1} and on_frontier(entry, 1) == {"t0": 3}
    assert on_frontier(entry, 0.5) == {"t0": 2}  # weight 0.15: 25 - 4.5 < 24 - 3 > 23 - 2.1
    assert realism_weight(0) == 0 and realism_weight(0.5) == pytest.approx(0.15) and math.isinf(realism_weight(1))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        realism_weight(1.5)
    presets = {"prior": "p", "presets": {"colorization": {"10": entry}}}
    assert find_preset(presets, "p", "colorization", 10, realism=1) == ({"t0": 3}, "tuned at 10 NFEs, realism 1 on its frontier")
    with pytest.raises(ValueError, match="no frontier"):
        find_preset({"prior": "p", "presets": {"colorization": {"10": {"config": {}}}}}, "p", "colorization", 10, realism=0)


def test_shipped_presets_choose_along_their_frontiers_and_the_preset_is_the_middle():
    from ssdiff.solvers.fast import builtin_presets, on_frontier

    for task, by_budget in builtin_presets("celeba64")["presets"].items():
        for nfe, entry in by_budget.items():
            front = entry["frontier"]
            assert front and all(a["psnr"] >= b["psnr"] and a["swd"] > b["swd"] for a, b in itertools.pairwise(front))
            ends = on_frontier(entry, 0), on_frontier(entry, 1)
            assert ends == (front[0]["config"], front[-1]["config"]), (task, nfe)
            middle = max(front, key=lambda e: e["psnr"] - 0.15 * e["swd"])
            assert middle["psnr"] - 0.15 * middle["swd"] == pytest.approx(entry["score"], abs=1e-6), (task, nfe)


def test_presets_with_searched_steps_run_at_any_budget_and_t0():
    from ssdiff.schedule import refit_per_step, refit_steps
    from ssdiff.solvers.fast import builtin_presets

    steps = [108, 144, 180, 225, 277, 433, 469, 514, 649]
    assert refit_steps(steps, 649, 9) == steps  # its own budget and t0: as searched
    for t_end, count in ((649, 12), (649, 4), (449, 9), (849, 20)):
        fitted = refit_steps(steps, t_end, count)
        assert len(fitted) == count and fitted[-1] == t_end and fitted == sorted(set(fitted))
    assert refit_steps(steps, 649, 18)[1::2] == steps  # the same shape, twice as dense
    # the last share (the move to the clean image) stays last; the others spread over the new steps
    assert refit_per_step([0.0, 1.0, 0.3], 5) == [0.0, 0.0, 1.0, 1.0, 0.3]
    assert refit_per_step([1, 1, 1, 1, 0, 1, 0, 1], 28)[-4:] == [0.0, 0.0, 0.0, 1.0]  # the searched late 0 reaches the end
    assert refit_per_step([0.0, 1.0, 0.5, 0.3], 2) == [0.0, 0.3] and refit_per_step([0.5], 3) == [0.5] * 3

    # the shipped presets with listed steps, at budgets between the tuned ones and at another t0
    prior = GaussianPrior(mu=(0.0, -0.15, -0.25))
    prior.name, prior.mean_colour = "celeba64", (0.0, -0.15, -0.25)
    listed = [(task, int(nfe)) for task, by_budget in builtin_presets("celeba64")["presets"].items()
              for nfe, entry in by_budget.items() if isinstance(entry["config"].get("spacing"), list)]
    assert listed  # the step search's presets ship
    g = torch.Generator().manual_seed(8)
    truth = (0.3 * torch.randn(1, 3, 16, 16, generator=g)).clamp(-1, 1)
    for task, nfe in listed:
        base, params = ("inpaint", {"mask": "center"}) if task == "inpaint" else ("sr_bicubic", {"scale": int(task[-1])})
        op = get_operator(base, image_size=(16, 16), **params)
        for options in ({"nfe": nfe + 1}, {"nfe": nfe + 3, "realism": 0}, {"nfe": nfe, "t0": 300}):
            result = restore(prior, op, op.A(truth), method="ssd-fast", **options)
            assert result.nfe == options["nfe"] and torch.isfinite(result.image).all(), (task, options)
