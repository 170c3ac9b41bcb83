"""RED-diff (Mardani et al., ICLR 2024): variational restoration with a diffusion regulariser."""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration


def red_diff(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 100, lr: float = 0.1,
             lam: float = 0.25, obs_weight: float = 1.0, sigma_y: float = 0.0, seed: int | None = 0) -> Restoration:
    """RED-diff, Algorithm 1: Adam over the image ``mu`` (started at ``A^+ y``), from high noise to low,
    minimising ``obs_weight * |y - A mu|^2 / 2 + lam * (sigma_t / alpha_t) * <sg(eps(x_t, t) - eps), mu>``
    with ``x_t = alpha_t mu + sigma_t eps`` (Eq. 12, "linear" SNR weighting). No gradient flows
    through the network. Defaults from the authors' config (lr 0.1, lambda 0.25, Adam betas
    0.9/0.99). Means are taken per image and summed over the batch so that images do not interact.
    A noisy ``y`` needs no other handling (``sigma_y`` is accepted and recorded): the fidelity
    term is a least-squares fit and the regulariser keeps the noise out, as in the authors' code.
    """
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    mu = operator.A_pinv(y).detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([mu], lr=lr, betas=(0.9, 0.99))
    for t, _ in descending_pairs(leading_steps(nfe, schedule.num_train_timesteps)):
        a = schedule.alpha_bar_at(t)
        z = noise.like(mu)
        with torch.no_grad():
            eps = counter(math.sqrt(a) * mu + math.sqrt(1 - a) * z, t)
        with torch.enable_grad():
            fidelity = ((y - operator.A(mu)) ** 2).flatten(1).mean(1).sum() / 2
            regulariser = ((eps - z) * mu).flatten(1).mean(1).sum()
            loss = obs_weight * fidelity + lam * math.sqrt(1 - a) / math.sqrt(a) * regulariser
            optimizer.zero_grad()
            loss.backward()
        optimizer.step()
    return Restoration(image=mu.detach(), nfe=counter.calls, extras={"lr": lr, "lambda": lam, "sigma_y": sigma_y})
