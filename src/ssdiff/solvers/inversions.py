"""How SSD reaches its "Embryo": from a clean image at time 0 up to the noise level of ``t0``.

Each inversion is a function of one signature,
``inversion(prior, x, steps, noise, callback=None, **options) -> state``, from ``x`` at
``steps[0]`` (0) to ``steps[-1]`` (``t0 - 1``); its state is what a sampler of :mod:`.samplers`
generates from (EDICT hands over its pair of chains).

- ``da``: Distortion Adaptive inversion (SSD Eq. 10), DDIM inversion with fresh noise ``eta``;
- ``sdedit``: no network call, ``q(x_t0 | x0)`` (the CCDF / SDEdit start);
- ``edict``: EDICT's exact inversion (two calls per step, :mod:`.edict`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .common import EpsPrior, NoiseSource, StepCallback, ddim_move, predict_x0, schedule_of
from .edict import DEFAULT_MIX, edict_invert


@torch.no_grad()
def da_inversion(prior: EpsPrior, x: torch.Tensor, steps: list[int], noise: NoiseSource,
                 callback: StepCallback | None = None, *, eta: float = 0.4) -> torch.Tensor:
    """DA inversion (SSD Eq. 10): ``x_{k+1} = sqrt(a_{k+1}) x0 + sqrt(1 - a_{k+1} - eta b) eps + sqrt(eta b) z``
    with ``b = 1 - a_{k+1} / a_k``; ``eta = 0`` is plain DDIM inversion."""
    schedule = schedule_of(prior)
    for k in range(len(steps) - 1):
        t, t_next = steps[k], steps[k + 1]
        if callback:
            callback("inversion", k, t, x)
        eps = prior(x, t)
        x0 = predict_x0(x, eps, schedule.alpha_bar_at(t))
        a_next = schedule.alpha_bar_at(t_next)
        sigma = math.sqrt(max(eta * (1.0 - a_next / schedule.alpha_bar_at(t)), 0.0))
        x = ddim_move(x0, eps, a_next, sigma, noise.like(x) if sigma > 0 else None)
    return x


def sdedit(prior: EpsPrior, x: torch.Tensor, steps: list[int], noise: NoiseSource,
           callback: StepCallback | None = None) -> torch.Tensor:
    """``sqrt(a) x + sqrt(1 - a) z`` at the last step's level: the forward process in one jump."""
    a = schedule_of(prior).alpha_bar_at(steps[-1])
    return math.sqrt(a) * x + math.sqrt(1 - a) * noise.like(x)


def edict_inversion(prior: EpsPrior, x: torch.Tensor, steps: list[int], noise: NoiseSource,
                    callback: StepCallback | None = None, *, p: float = DEFAULT_MIX) -> tuple[torch.Tensor, torch.Tensor]:
    """EDICT's exact inversion from the clean ``x`` through the levels of ``steps`` above 0."""
    return edict_invert(prior, x, [-1] + list(steps[1:]), p, schedule_of(prior), callback)


@dataclass(frozen=True)
class InversionSpec:
    """An inversion and the network calls it spends per step of its share of the budget."""

    function: Callable[..., torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
    calls_per_step: int = 1


INVERSIONS: dict[str, InversionSpec] = {
    "da": InversionSpec(da_inversion),
    "sdedit": InversionSpec(sdedit),
    "edict": InversionSpec(edict_inversion, calls_per_step=2),
}


def inversion_spec(name: str) -> InversionSpec:
    if name not in INVERSIONS:
        raise ValueError(f"unknown inversion {name!r}; choose from: {', '.join(INVERSIONS)}")
    return INVERSIONS[name]
