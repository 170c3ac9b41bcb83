"""DPS (Chung et al., ICLR 2023): diffusion posterior sampling by gradients through the network."""

from __future__ import annotations

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, ddpm_posterior, predict_x0


def dps(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 100, zeta: float = 0.3,
        seed: int | None = 0, sigma_y: float = 0.0) -> Restoration:
    """DPS, Algorithm 1: an ancestral (DDPM) step, then ``x_{t-1} -= zeta * grad_{x_t} |y - A x0(x_t)|``.

    ``x0(x_t)`` is clipped to [-1, 1] as in the released code; the norm is taken per image (the
    release takes it over the batch, which couples the images of a batch). Every step costs one
    forward and one backward pass through the network: ``extras["backward_passes"]`` counts them.
    ``sigma_y`` needs no special handling: the gradient step is the same for noisy ``y``. The
    authors' per-task step sizes ``zeta`` are in the method registry (:mod:`.methods`).
    """
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    x = noise.draw(operator.image_batch_shape(y), y.device)
    for t, t_prev in descending_pairs(leading_steps(nfe, schedule.num_train_timesteps)):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            eps = counter(x, t)
            x0 = predict_x0(x, eps, a, clip=True)
            distance = (y - operator.A(x0)).flatten(1).norm(dim=1)
            (gradient,) = torch.autograd.grad(distance.sum(), x)
        mean, std = ddpm_posterior(x.detach(), x0.detach(), a, a_prev)
        x = mean + std * noise.like(mean) - zeta * gradient
    return Restoration(image=x.detach(), nfe=counter.calls,
                       extras={"zeta": zeta, "backward_passes": counter.calls})
