"""Shortcut Sampling for Diffusion (SSD, Liu et al., IJCAI 2024, arXiv 2305.16965).

1. Distortion Adaptive (DA) inversion: from ``x = A^+ y`` run ``Nf - 1`` DDIM inversion steps up
   to ``t0``, each adding fresh noise of variance ``eta * beta`` (Eq. 10), which yields the
   "Embryo", a noisy state that is faithful to ``y`` and realistic enough to generate from;
2. generation: ``Nb`` DDIM steps from ``t0`` down to 0, back-projecting every x0 estimate onto
   ``{x : A x = y}`` (Eq. 12). SSD+ stops the projection near the end (``stop_consistency_t``),
   which trades a little consistency for realism.

The time steps, the noise and the coefficients follow the released code (see ``schedule``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule, uniform_steps
from .common import (
    CallCounter,
    EpsPrior,
    NoiseSource,
    Restoration,
    ddim_move,
    noise_aware_update,
    predict_x0,
)

# Hook called at every network evaluation: (phase, step index, time step, x_t) -> None.
StepHook = Callable[[str, int, int, torch.Tensor], None]


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
              align: bool = False) -> SSDSchedule:
        """``align`` moves the generation step nearest to each inversion step onto it (what attention
        injection needs; the paper's 5/25 and 15/85 splits are aligned already)."""
        if not 1 <= t0 <= DEFAULT_SCHEDULE.num_train_timesteps:
            raise ValueError(f"t0 must be in [1, 1000], got {t0}")
        if forward_steps < 1 or backward_steps < 1:
            raise ValueError(f"need at least one inversion and one generation step, got {forward_steps}, {backward_steps}")
        forward, backward = uniform_steps(t0 - 1, forward_steps), uniform_steps(t0 - 1, backward_steps)
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
        ddim_eta: float = 0.8, stop_consistency_t: int | None = None, forward_steps: int | None = None,
        backward_steps: int | None = None, seed: int | None = 0, inversion: str = "da",
        back_projection: bool = True, sigma_y: float = 0.0, align_steps: bool = False,
        hook: StepHook | None = None) -> Restoration:
    """Restore ``x`` from ``y = A x`` with SSD (``stop_consistency_t`` None) or SSD+ (e.g. 200).

    ``inversion="da"`` is DA inversion with noise ``eta`` (``eta=0``: DDIM inversion);
    ``inversion="sdedit"`` skips inversion and noises ``A^+ y`` to ``t0`` with ``q(x_t0 | x0)``
    (CCDF / SDEdit start); ``back_projection=False`` drops the projection (an ablation).
    ``sigma_y`` > 0 (the std of Gaussian noise on ``y``, in [-1, 1] units) makes the
    back-projection noise-aware (DDNM+ style), so that the noise of ``y`` is not copied into x.
    """
    if forward_steps is None or backward_steps is None:
        default_forward, default_backward = split_budget(nfe)
        forward_steps = forward_steps or default_forward
        backward_steps = backward_steps or default_backward
    plan = SSDSchedule.build(t0, forward_steps, backward_steps, stop_consistency_t, align=align_steps)
    schedule: NoiseSchedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter = CallCounter(prior)
    noise = NoiseSource(seed, y.shape[0], y.device)

    x = operator.A_pinv(y).float()
    if inversion == "da":
        x = da_inversion(counter, x, plan.forward, eta, noise, schedule, hook)
    elif inversion == "sdedit":
        a = schedule.alpha_bar_at(plan.forward[-1])
        x = math.sqrt(a) * x + math.sqrt(1 - a) * noise.like(x)
    else:
        raise ValueError(f"unknown inversion {inversion!r}; use 'da' or 'sdedit'")
    x = generate_with_projection(counter, x, plan.backward, operator if back_projection else None, y.float(),
                                 plan.projected, ddim_eta, noise, schedule, hook, sigma_y)
    extras = {"t0": t0, "eta": eta, "ddim_eta": ddim_eta, "forward_steps": plan.forward, "backward_steps": plan.backward,
              "projected_steps": plan.projected, "sigma_y": sigma_y}
    return Restoration(image=x, nfe=counter.calls, extras=extras)
