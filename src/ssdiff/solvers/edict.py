"""EDICT: exact inversion of a deterministic sampler by coupled transformations (Wallace et al., CVPR 2023).

DDIM inversion is approximate: its step from ``t`` to ``t_next`` evaluates the network at ``t``
where the generation step back evaluates it at ``t_next``. EDICT carries two coupled copies
``(x, y)`` of the state; each denoising step is a pair of affine coupling layers and a mixing
with weight ``p`` (Eqs. 11-14 of the paper), ::

    x_inter = a x + b eps(y, t)          y_inter = a y + b eps(x_inter, t)
    x'      = p x_inter + (1 - p) y_inter  y'    = p y_inter + (1 - p) x'

with the DDIM coefficients ``a = sqrt(a_prev / a_t)``, ``b = sqrt(1 - a_prev) - sqrt(a_prev (1 -
a_t) / a_t)``. Each line can be solved for its input given its output, so inversion undoes
generation to float precision. The price is two network calls per step.

Levels are integer time steps, ascending, and ``-1`` stands for the clean image (alpha-bar 1).
No diffusers scheduler carries a state pair, so the loop is written here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule
from .common import EpsPrior, StepCallback, predict_x0
from .consistency import Consistency, Step

# the eps that the coupling uses, given the state the network saw, its raw eps and the step
EpsCorrection = Callable[[torch.Tensor, torch.Tensor, Step], torch.Tensor]

DEFAULT_MIX = 0.93  # the paper's p


def ddim_coefficients(alpha_bar_t: float, alpha_bar_prev: float) -> tuple[float, float]:
    """``(a, b)`` of the deterministic DDIM step ``x_prev = a x_t + b eps`` (DDIM Eq. 12 with eta = 0)."""
    a = math.sqrt(alpha_bar_prev / alpha_bar_t)
    b = math.sqrt(1 - alpha_bar_prev) - math.sqrt(alpha_bar_prev * (1 - alpha_bar_t) / alpha_bar_t)
    return a, b


def _check(levels: list[int], p: float) -> None:
    if len(levels) < 2 or any(s >= t for s, t in itertools.pairwise(levels)):
        raise ValueError(f"EDICT needs at least two strictly increasing levels, got {levels}")
    if not 0 < p <= 1:
        raise ValueError(f"the EDICT mixing weight p must be in (0, 1], got {p}")


@torch.no_grad()
def edict_invert(prior: EpsPrior, x: torch.Tensor, levels: list[int], p: float = DEFAULT_MIX,
                 schedule: NoiseSchedule = DEFAULT_SCHEDULE, callback: StepCallback | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert EDICT generation: from ``x`` at ``levels[0]`` to the pair ``(x, y)`` at ``levels[-1]``.

    Each step runs the four lines of the generation step backwards (EDICT Eqs. 15-18), with
    the network evaluated at the upper level, as the generation step it undoes evaluates it.
    """
    _check(levels, p)
    y = x.clone()
    for k in range(len(levels) - 1):
        t_prev, t = levels[k], levels[k + 1]
        a, b = ddim_coefficients(schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev))
        y_inter = (y - (1 - p) * x) / p
        x_inter = (x - (1 - p) * y_inter) / p
        if callback:
            callback("inversion", k, t, x_inter)
        y = (y_inter - b * prior(x_inter, t)) / a
        x = (x_inter - b * prior(y, t)) / a
    return x, y


@torch.no_grad()
def edict_generate(prior: EpsPrior, pair: tuple[torch.Tensor, torch.Tensor], levels: list[int], p: float = DEFAULT_MIX,
                   correct: EpsCorrection | None = None, schedule: NoiseSchedule = DEFAULT_SCHEDULE,
                   callback: StepCallback | None = None) -> torch.Tensor:
    """EDICT generation from the pair at ``levels[-1]`` down to ``levels[0]``; returns ``x``.

    ``correct(state, eps, step)`` may replace each eps before the coupling uses it (the
    back-projection of its clean-image estimate); without it the walk is exactly invertible.
    """
    _check(levels, p)
    x, y = pair
    for i, k in enumerate(range(len(levels) - 1, 0, -1)):
        t, t_prev = levels[k], levels[k - 1]
        alpha_bar, alpha_bar_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        a, b = ddim_coefficients(alpha_bar, alpha_bar_prev)
        if callback:
            callback("generation", i, t, y)
        step = Step(i, t, alpha_bar, alpha_bar_prev)
        x_inter = a * x + b * _eps(prior, y, step, correct)
        y_inter = a * y + b * _eps(prior, x_inter, step, correct)
        x = p * x_inter + (1 - p) * y_inter
        y = p * y_inter + (1 - p) * x
    return x


def _eps(prior: EpsPrior, state: torch.Tensor, step: Step, correct: EpsCorrection | None) -> torch.Tensor:
    raw = prior(state, step.t)
    return raw if correct is None else correct(state, raw, step)


def projected_eps(consistency: Consistency, schedule: NoiseSchedule = DEFAULT_SCHEDULE, clip: bool = True) -> EpsCorrection:
    """An eps correction from a consistency rule: the eps under which ``state`` predicts the corrected x0."""

    def correct(state: torch.Tensor, eps: torch.Tensor, step: Step) -> torch.Tensor:
        x0 = consistency(predict_x0(state, eps, step.alpha_bar, clip=clip), step)
        return (state - math.sqrt(step.alpha_bar) * x0) / math.sqrt(1 - step.alpha_bar)

    return correct
