"""Shortcut Sampling for Diffusion (SSD, Liu et al., IJCAI 2024, arXiv 2305.16965).

1. Distortion Adaptive (DA) inversion: from ``x = A^+ y`` run ``Nf - 1`` DDIM inversion steps up
   to ``t0``, each adding fresh noise of variance ``eta * beta`` (Eq. 10), which yields the
   "Embryo", a noisy state that is faithful to ``y`` and realistic enough to generate from;
2. generation: ``Nb`` DDIM steps from ``t0`` down to 0, back-projecting every x0 estimate onto
   ``{x : A x = y}`` (Eq. 12). SSD+ stops the projection near the end (``stop_consistency_t``),
   which trades a little consistency for realism.

The time steps, the noise and the coefficients follow the released code (see ``schedule``).
Beyond the paper, the generation can run on a fast multistep solver (``sampler``, see
:mod:`samplers`) over non-uniform time steps (``spacing``), and the Embryo can come from an exact
EDICT inversion (:mod:`edict`); the defaults are the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule, spaced_steps, uniform_steps
from .common import (
    CallCounter,
    EpsPrior,
    NoiseSource,
    Restoration,
    ddim_move,
    noise_aware_update,
    predict_x0,
)
from .edict import DEFAULT_MIX, edict_generate, edict_invert, projected_eps
from .samplers import check_sampler, multistep_generate

# Hook called at every network evaluation: (phase, step index, time step, x_t) -> None.
StepHook = Callable[[str, int, int, torch.Tensor], None]
INVERSIONS = ("da", "sdedit", "edict")


def split_budget(nfe: int) -> tuple[int, int]:
    """Map an NFE budget to (Nf, Nb) as the paper splits it: 30 -> (5, 25), 100 -> (15, 85).

    ``Nf = ceil(3 nfe / 20)`` inversion steps and ``Nb = nfe - Nf`` generation steps; the
    network is called ``Nf - 1 + Nb = nfe - 1`` times.
    """
    if nfe < 3:
        raise ValueError(f"SSD needs an NFE budget of at least 3, got {nfe}")
    forward = max(2, (3 * nfe + 19) // 20)
    return forward, nfe - forward


def stop_index(t0: int, stop_t: int | None, backward_steps: int) -> int:
    """How many generation steps (from the first) are projected in SSD+; the rest are not.

    The reference computes ``int((t0 - stop_t) / t0 * Nb)``; None means every step is projected.
    """
    if stop_t is None:
        return backward_steps
    return max(0, min(backward_steps, int((t0 - stop_t) / t0 * backward_steps)))


@dataclass(frozen=True)
class SSDSchedule:
    """The two time-step lists of one SSD run."""

    forward: list[int]  # DA inversion steps F[0] = 0 .. F[-1] = t0 - 1
    backward: list[int]  # generation steps, ascending; walked from the last to the first
    projected: int  # generation steps (from the first) that use back-projection

    @classmethod
    def build(cls, t0: int, forward_steps: int, backward_steps: int, stop_consistency_t: int | None = None,
              align: bool = False, spacing: str = "uniform") -> SSDSchedule:
        """``align`` moves the generation step nearest to each inversion step onto it (what attention
        injection needs; the paper's 5/25 and 15/85 splits are aligned already); ``spacing``
        places the generation steps (the inversion's are always uniform, as the paper's)."""
        if not 1 <= t0 <= DEFAULT_SCHEDULE.num_train_timesteps:
            raise ValueError(f"t0 must be in [1, 1000], got {t0}")
        if forward_steps < 1 or backward_steps < 1:
            raise ValueError(f"need at least one inversion and one generation step, got {forward_steps}, {backward_steps}")
        forward, backward = uniform_steps(t0 - 1, forward_steps), spaced_steps(spacing, t0 - 1, backward_steps)
        if align:
            for t in forward:
                if t not in backward:
                    nearest = min(range(len(backward)), key=lambda i: abs(backward[i] - t))
                    backward[nearest] = t
            backward = sorted(set(backward))
        return cls(forward, backward, stop_index(t0, stop_consistency_t, len(backward)))


@torch.no_grad()
def da_inversion(prior: EpsPrior, x: torch.Tensor, steps: list[int], eta: float, noise: NoiseSource,
                 schedule: NoiseSchedule = DEFAULT_SCHEDULE, hook: StepHook | None = None) -> torch.Tensor:
    """DA inversion from ``x`` at ``steps[0]`` to ``steps[-1]`` (SSD Eq. 10).

    ``x_{k+1} = sqrt(a_{k+1}) x0 + sqrt(1 - a_{k+1} - eta b) eps + sqrt(eta b) z`` with
    ``b = 1 - a_{k+1} / a_k``; ``eta = 0`` is plain DDIM inversion.
    """
    for k in range(len(steps) - 1):
        t, t_next = steps[k], steps[k + 1]
        if hook:
            hook("inversion", k, t, x)
        eps = prior(x, t)
        x0 = predict_x0(x, eps, schedule.alpha_bar_at(t))
        a_next = schedule.alpha_bar_at(t_next)
        beta = 1.0 - a_next / schedule.alpha_bar_at(t)
        sigma = math.sqrt(max(eta * beta, 0.0))
        x = ddim_move(x0, eps, a_next, sigma, noise.like(x) if sigma > 0 else None)
    return x


@torch.no_grad()
def generate_with_projection(prior: EpsPrior, x: torch.Tensor, steps: list[int], operator: LinearOperator | None,
                             y: torch.Tensor | None, projected: int, ddim_eta: float, noise: NoiseSource,
                             schedule: NoiseSchedule = DEFAULT_SCHEDULE, hook: StepHook | None = None,
                             sigma_y: float = 0.0) -> torch.Tensor:
    """DDIM generation down ``steps`` (walked from the last), projecting x0 at the first ``projected`` steps.

    ``x0 <- x0 - A^+(A x0 - y)`` (SSD Eq. 12), then
    ``x = sqrt(a_prev) x0 + sqrt(1 - e^2) sqrt(1 - a_prev) eps + e sqrt(1 - a_prev) z``;
    at the last step ``a_prev = 1`` and the result is the projected x0. With a noisy ``y``
    (``sigma_y > 0``) the projection and move are DDNM+'s noise-aware update instead, which
    corrects only as far as ``y`` is less noisy than the current state. ``operator=None``
    generates without projection.
    """
    for i, k in enumerate(range(len(steps) - 1, -1, -1)):
        t = steps[k]
        if hook:
            hook("generation", i, t, x)
        eps = prior(x, t)
        x0 = predict_x0(x, eps, schedule.alpha_bar_at(t))
        a_prev = schedule.alpha_bar_at(steps[k - 1] if k > 0 else -1)
        if operator is not None and i < projected and sigma_y > 0:
            x = noise_aware_update(operator, x0, eps, y, a_prev, ddim_eta, sigma_y, noise)
            continue
        if operator is not None and i < projected:
            x0 = operator.project(x0, y)
        sigma = ddim_eta * math.sqrt(1.0 - a_prev)
        x = ddim_move(x0, eps, a_prev, sigma, noise.like(x) if sigma > 0 else None)
    return x


def ssd(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 30, t0: int = 550, eta: float = 0.4,
        ddim_eta: float | None = None, stop_consistency_t: int | None = None, forward_steps: int | None = None,
        backward_steps: int | None = None, seed: int | None = 0, inversion: str = "da", sampler: str = "ddim",
        spacing: str = "uniform", order: int = 2, edict_p: float = DEFAULT_MIX, back_projection: bool = True,
        sigma_y: float = 0.0, align_steps: bool = False, hook: StepHook | None = None) -> Restoration:
    """Restore ``x`` from ``y = A x`` with SSD (``stop_consistency_t`` None) or SSD+ (e.g. 200).

    ``inversion="da"`` is DA inversion with noise ``eta`` (``eta=0``: DDIM inversion);
    ``inversion="sdedit"`` skips inversion and noises ``A^+ y`` to ``t0`` with ``q(x_t0 | x0)``
    (CCDF / SDEdit start); ``inversion="edict"`` inverts exactly with EDICT (mixing ``edict_p``,
    two calls per step); ``back_projection=False`` drops the projection (an ablation).
    ``sampler`` generates: ``ddim`` (the paper's, with ``ddim_eta``, default 0.8), a multistep
    solver of :mod:`samplers` (``dpm-solver++``, ``sde-dpm-solver++``, ``unipc``, of ``order``) or
    ``edict`` (the exact inverse of EDICT inversion); ``spacing`` places the generation steps
    (:data:`~ssdiff.schedule.SPACINGS`; ``uniform`` is the paper's). Every sampler projects
    the clean-image estimate before it uses it.
    ``sigma_y`` > 0 (the std of Gaussian noise on ``y``, in [-1, 1] units) makes the
    back-projection noise-aware (DDNM+ style), so that the noise of ``y`` is not copied into x.
    """
    check_sampler(sampler, order)
    if inversion not in INVERSIONS:
        raise ValueError(f"unknown inversion {inversion!r}; choose from: {', '.join(INVERSIONS)}")
    if ddim_eta is not None and sampler != "ddim":
        raise ValueError(f"ddim_eta applies to the ddim sampler only, not to {sampler!r}")
    if sigma_y > 0 and sampler != "ddim":
        raise ValueError(f"a noisy measurement (sigma_y > 0) needs the ddim sampler (noise-aware update), not {sampler!r}")
    ddim_eta = 0.8 if ddim_eta is None else ddim_eta
    if forward_steps is None or backward_steps is None:
        default_forward, default_backward = split_budget(nfe)
        # EDICT spends two calls per step: fewer steps keep the budget
        forward_cost, backward_cost = (2 if inversion == "edict" else 1), (2 if sampler == "edict" else 1)
        forward_steps = forward_steps or max(2, (default_forward - 1) // forward_cost + 1)
        backward_steps = backward_steps or max(1, default_backward // backward_cost)
    plan = SSDSchedule.build(t0, forward_steps, backward_steps, stop_consistency_t, align=align_steps, spacing=spacing)
    check_sampler(sampler, order, len(plan.backward))
    schedule: NoiseSchedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter = CallCounter(prior)
    noise = NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    x = operator.A_pinv(y).float()
    pair = None
    if inversion == "da":
        x = da_inversion(counter, x, plan.forward, eta, noise, schedule, hook)
    elif inversion == "sdedit":
        a = schedule.alpha_bar_at(plan.forward[-1])
        x = math.sqrt(a) * x + math.sqrt(1 - a) * noise.like(x)
    else:  # EDICT from the clean A+ y, through the inversion's levels above 0
        pair = edict_invert(counter, x, [-1] + plan.forward[1:], edict_p, schedule, hook)
        x = pair[0]

    def correct(x0: torch.Tensor, i: int, t: int) -> torch.Tensor:
        return operator.project(x0, y) if back_projection and i < plan.projected else x0

    if sampler == "ddim":
        x = generate_with_projection(counter, x, plan.backward, operator if back_projection else None, y,
                                     plan.projected, ddim_eta, noise, schedule, hook, sigma_y)
    elif sampler == "edict":
        x = edict_generate(counter, pair or (x, x.clone()), [-1] + plan.backward, edict_p,
                           projected_eps(correct, schedule), schedule, hook)
        # EDICT ends on a mix of its two chains, not on a projected estimate: project it as the
        # other samplers' last step does
        x = correct(x, len(plan.backward) - 1, -1)
    else:
        x = multistep_generate(counter, x, plan.backward, correct, sampler=sampler, noise=noise, schedule=schedule,
                               order=order, hook=hook)
    extras = {"t0": t0, "eta": eta, "inversion": inversion, "sampler": sampler, "spacing": spacing,
              "ddim_eta": ddim_eta if sampler == "ddim" else None, "forward_steps": plan.forward,
              "backward_steps": plan.backward, "projected_steps": plan.projected, "sigma_y": sigma_y}
    return Restoration(image=x, nfe=counter.calls, extras=extras)
