"""DDRM (Kawar et al., NeurIPS 2022): denoising diffusion restoration in the operator's SVD space."""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, predict_x0


@torch.no_grad()
def ddrm(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 20, eta: float = 0.85,
         eta_b: float = 1.0, sigma_y: float = 0.0, seed: int | None = 0) -> Restoration:
    """DDRM's ``efficient_generalized_steps`` (Eqs. 7-8), in variance-exploding coordinates ``x_t / sqrt(a_t)``.

    Per coefficient of ``V^T x`` with singular value ``s`` and ``y_bar = V^T A^+ y``:
    null space: ``x0 + sqrt(1 - eta^2) sigma' V^T eps + eta sigma' z``;
    ``s sigma' < sigma_y``: ``x0 + sqrt(1 - eta^2) sigma' s (y_bar - x0) / sigma_y + eta sigma' z``;
    ``s sigma' > sigma_y``: ``eta_b y_bar + (1 - eta_b) x0 + sqrt(sigma'^2 - eta_b^2 sigma_y^2 / s^2) z``.
    Defaults are the paper's (eta = 0.85, eta_b = 1); time steps ``0, T/n, ...`` as its runner.
    """
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    steps = leading_steps(nfe, schedule.num_train_timesteps)
    x = noise.draw(operator.image_batch_shape(y), y.device)
    s = operator.singular_map(x).expand_as(x)
    measured = s > 0
    s_safe = torch.where(measured, s, torch.ones_like(s))
    y_bar = operator.Vt(operator.A_pinv(y))

    # x_T from p(x_T | y): the measured coefficients where y is less noisy than x_T (DDRM Eq. 7).
    sigma_T = math.sqrt(1 - schedule.alpha_bar_at(steps[-1])) / math.sqrt(schedule.alpha_bar_at(steps[-1]))
    large = measured & (s * sigma_T > sigma_y)
    known_std = torch.where(large, sigma_y / s_safe, torch.zeros_like(s))
    start = torch.where(large, y_bar, torch.zeros_like(y_bar)) + (sigma_T**2 - known_std**2).clamp_min(0).sqrt() * x
    x = operator.V(start / sigma_T)

    for t, t_prev in descending_pairs(steps):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        eps = counter(x, t)
        x0 = operator.Vt(predict_x0(x, eps, a, clip=False))
        sigma_next = math.sqrt(1 - a_prev) / math.sqrt(a_prev)
        std, tilde = sigma_next * eta, sigma_next * math.sqrt(1 - eta**2)
        out = x0 + tilde * operator.Vt(eps) + std * noise.like(x)
        after = measured & (s * sigma_next < sigma_y)
        if after.any():
            guided = x0 + tilde * s * (y_bar - x0) / max(sigma_y, 1e-12) + std * noise.like(x)
            out = torch.where(after, guided, out)
        before = measured & (s * sigma_next > sigma_y)
        if before.any():
            spread = (sigma_next**2 - (sigma_y / s_safe) ** 2 * eta_b**2).clamp_min(0).sqrt()
            pinned = eta_b * y_bar + (1 - eta_b) * x0 + spread * noise.like(x)
            out = torch.where(before, pinned, out)
        x = math.sqrt(a_prev) * operator.V(out)
    return Restoration(image=x, nfe=counter.calls, extras={"eta": eta, "eta_b": eta_b, "sigma_y": sigma_y})
