"""Unconditional DDIM sampling from a prior: the model card's sample grids and a sanity check of a prior."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule, ddim_steps
from .common import EpsPrior, NoiseSource, ddim_move, ddim_sigma, predict_x0


@torch.no_grad()
def ddim_sample(
    prior: EpsPrior,
    shape: tuple[int, int, int, int],
    num_steps: int = 50,
    eta: float = 0.0,
    seed: int | None = 0,
    device: torch.device | str = "cpu",
    schedule: NoiseSchedule = DEFAULT_SCHEDULE,
    progress: bool = False,
) -> torch.Tensor:
    """Draw ``shape`` images from pure noise with ``num_steps`` DDIM steps (Song et al. 2021, Eq. 12)."""
    # one stream per sample, seeded seed, seed + 1, ...: a batch of distinct samples
    noise = NoiseSource(None if seed is None else [seed + i for i in range(shape[0])], shape[0], device)
    steps = ddim_steps(num_steps, schedule.num_train_timesteps)
    x = noise.draw(shape, device)
    for k in tqdm(range(len(steps) - 1, -1, -1), desc="DDIM sampling", disable=not progress):
        ab_t = schedule.alpha_bar_at(steps[k])
        ab_prev = schedule.alpha_bar_at(steps[k - 1] if k > 0 else -1)
        eps = prior(x, steps[k])
        x0 = predict_x0(x, eps, ab_t)
        x = ddim_move(x0, eps, ab_prev, ddim_sigma(ab_t, ab_prev, eta), noise.like(x) if eta > 0 else None)
    return x
