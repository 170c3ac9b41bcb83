"""Where SSD's inversion starts (solvers/starts.py): A+y, or its null space filled with the prior's mean colour."""

import pytest
import torch
from conftest import GaussianPrior

from ssdiff import get_operator, restore
from ssdiff.solvers.starts import STARTS, mean_colour_start, pinv_start

MEAN = (0.3, -0.2, -0.4)


class ColouredPrior(GaussianPrior):
    """The closed-form Gaussian prior, with its mean colour recorded as a loaded known model's is."""

    def __init__(self, s: float = 0.3):
        super().__init__(mu=MEAN, s=s)
        self.mean_colour = MEAN


@pytest.fixture()
def truth():
    g = torch.Generator().manual_seed(5)
    return (torch.tensor(MEAN).view(1, 3, 1, 1) + 0.3 * torch.randn(2, 3, 16, 16, generator=g)).clamp(-1, 1)


OPERATORS = [("colorization", {}), ("inpaint", {"mask": "center"}), ("sr_bicubic", {"scale": 4}),
             ("sr_average", {"scale": 2}), ("deblur_gauss", {})]


@pytest.mark.parametrize(("task", "params"), OPERATORS)
def test_every_start_agrees_with_the_measurement(truth, task, params):
    op = get_operator(task, image_size=(16, 16), **params)
    y = op.A(truth)
    for start in STARTS.values():
        x = start(ColouredPrior(), op, y)
        assert torch.allclose(op.A(x), op.A(op.A_pinv(y)), atol=1e-5)


def test_mean_colour_fills_what_the_measurement_does_not_see(truth):
    colour = torch.tensor(MEAN).view(1, 3, 1, 1)
    gray = get_operator("colorization", image_size=(16, 16))
    x = mean_colour_start(ColouredPrior(), gray, gray.A(truth))
    chroma = x - x.mean(1, keepdim=True)  # what the gray image does not see, for equal channel weights: none of it
    expected = (colour - gray.A_pinv(gray.A(colour)))
    assert torch.allclose(x - pinv_start(None, gray, gray.A(truth)), expected.expand_as(x), atol=1e-6)
    assert chroma.abs().amax() > 0.1  # not gray

    holes = get_operator("inpaint", image_size=(16, 16), mask="center")
    x = mean_colour_start(ColouredPrior(), holes, holes.A(truth))
    hole = holes.mask.expand_as(x) == 0
    assert torch.allclose(x[hole], colour.expand_as(x)[hole])  # the holes take the mean colour
    assert torch.allclose(x[~hole], truth[~hole], atol=1e-6)  # the known pixels are the measurement's


def test_from_the_mean_colour_deterministic_ssd_lands_on_the_posterior_mean(truth):
    # For x ~ N(mu, s^2 I) the posterior mean given y = A x is A+y + (I - A+A) mu: the mean-colour
    # start itself. DDIM inversion and generation with the exact score carry it out and back; from
    # A+y a short inversion (t0 200, 4 calls) cannot reach it (the null space stays grayish).
    op = get_operator("colorization", image_size=(16, 16))
    y = op.A(truth)
    posterior_mean = mean_colour_start(ColouredPrior(), op, y)
    errors = {start: (restore(ColouredPrior(), op, y, method="ssd", nfe=4, t0=200, eta=0.0, ddim_eta=0.0,
                              start=start).image - posterior_mean).abs().amax().item() for start in STARTS}
    assert errors["mean-colour"] < 1e-4 and errors["pinv"] > 0.05


def test_the_start_is_reported_and_a_prior_without_a_mean_colour_is_refused(truth):
    op = get_operator("colorization", image_size=(16, 16))
    y = op.A(truth)
    assert restore(ColouredPrior(), op, y, method="ssd", nfe=6, start="mean-colour").extras["start"] == "mean-colour"
    assert restore(ColouredPrior(), op, y, method="ssd", nfe=6).extras["start"] == "pinv"  # the paper's by default
    with pytest.raises(ValueError, match="mean colour"):
        restore(GaussianPrior(mu=MEAN), op, y, method="ssd", nfe=6, start="mean-colour")
    with pytest.raises(ValueError, match="unknown start"):
        restore(ColouredPrior(), op, y, method="ssd", nfe=6, start="zeros")


def test_known_models_carry_their_mean_colour():
    from ssdiff.models import load_model
    from ssdiff.models.catalog import CELEBA64

    assert load_model("celeba64", device="cpu").mean_colour == CELEBA64.mean_colour


def test_tune_leaves_out_a_start_the_prior_cannot_make(monkeypatch):
    import ssdiff.tune as tune_module

    seen = []

    def fake_evaluate(prior, operator, truths, config, nfe, *args):
        seen.append(config.get("start", "pinv"))
        return {"psnr": 20.0 + (config.get("start") == "mean-colour"), "swd": 0.0, "score": 20.0, "calls": nfe}

    monkeypatch.setattr(tune_module, "evaluate", fake_evaluate)
    space = {"start": ["pinv", "mean-colour"]}
    for prior, starts in ((GaussianPrior(), {"pinv"}), (ColouredPrior(), {"pinv", "mean-colour"})):
        seen.clear()
        tune_module.tune(prior, get_operator("colorization"), torch.zeros(1, 3, 8, 8), 10, task_defaults={},
                         space=space, rounds=1, progress=False)
        assert set(seen) == starts
