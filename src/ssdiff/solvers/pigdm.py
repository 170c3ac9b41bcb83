"""PiGDM (Song et al., ICLR 2023): pseudo-inverse guided diffusion."""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, ddim_sigma, predict_x0


def pigdm(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 100, eta: float = 0.0,
          guidance: float = 1.0, sigma_y: float = 0.0, seed: int | None = 0) -> Restoration:
    """PiGDM, Algorithm 1: a DDIM step plus ``sqrt(a_prev a_t) * g`` with the guidance
    ``g = (r^T d x0 / d x_t)^T`` (Eq. 7), a vector-Jacobian product through the network, where
    ``r = A^+ y - A^+ A x0`` for a noiseless ``y``.

    For a noisy ``y`` (Eq. 8), ``(r_t^2 A A^T + sigma_y^2)^{-1}`` weighs each coefficient of the
    residual in the operator's SVD view by ``s^2 / (s^2 + sigma_y^2 / r_t^2)`` with
    ``r_t^2 = 1 - a_t``. Weights and start (``A^+ y`` noised to the first step) as in the RED-diff
    authors' implementation of PiGDM (``awd``, ``grad_term_weight = 1``, ``eta = 0``).
    """
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    steps = leading_steps(nfe, schedule.num_train_timesteps)
    target = operator.A_pinv(y)
    a_start = schedule.alpha_bar_at(steps[-1])
    x = math.sqrt(a_start) * target + math.sqrt(1 - a_start) * noise.like(target)
    for t, t_prev in descending_pairs(steps):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            eps = counter(x, t)
            x0 = predict_x0(x, eps, a, clip=False)
            residual = (target - operator.A_pinv(operator.A(x0))).detach()
            if sigma_y > 0:
                s = operator.singular_map(residual)
                weight = s**2 / (s**2 + sigma_y**2 / (1 - a))
                residual = operator.V(weight * operator.Vt(residual))
            (g,) = torch.autograd.grad((residual * x0).sum(), x)
        sigma = ddim_sigma(a, a_prev, eta)
        x = (math.sqrt(a_prev) * x0.detach() + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps.detach()
             + guidance * math.sqrt(a_prev * a) * g)
        if sigma > 0:
            x = x + sigma * noise.like(x)
    return Restoration(image=x.detach(), nfe=counter.calls,
                       extras={"backward_passes": counter.calls, "eta": eta, "sigma_y": sigma_y})
