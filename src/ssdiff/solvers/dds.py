"""DDS, the Decomposed Diffusion Sampler (Chung, Lee and Ye, ICLR 2024): DDIM with a few
conjugate-gradient steps of data consistency on every x0 estimate.

CG on the normal equations ``A^T A x = A^T y``, started from Tweedie's x0, stays in the affine
space ``x0 + range(A^T)``: a few steps move x0 towards the measurement set along the directions
the measurement constrains, without an SVD or a pseudo-inverse (Sec. 3.2, Eq. 13). The update
that follows mixes fresh noise and the network's epsilon (Eq. 14).
"""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator, conjugate_gradient
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, predict_x0


def cg_consistency(operator: LinearOperator, x0: torch.Tensor, y: torch.Tensor, iterations: int,
                   gamma: float | None = None) -> torch.Tensor:
    """DDS's data step from ``x0``: ``iterations`` CG steps on ``A^T A x = A^T y`` (noise-free), or on
    ``(I + gamma A^T A) x = x0 + gamma A^T y`` for a noisy measurement (``gamma`` set)."""
    AT_y = operator.A_adjoint(y)
    if gamma is None:
        return conjugate_gradient(lambda x: operator.A_adjoint(operator.A(x)), AT_y, x0, iterations)
    return conjugate_gradient(lambda x: x + gamma * operator.A_adjoint(operator.A(x)), x0 + gamma * AT_y, x0, iterations)


@torch.no_grad()
def dds(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 50, eta: float = 0.85,
        cg_iterations: int = 5, sigma_y: float = 0.0, gamma: float = 1.0, seed: int | None = 0) -> Restoration:
    """DDS (Alg. 1 of the paper, the authors' defaults): ``nfe`` DDIM steps ``0, T/nfe, ...`` from pure
    noise; at each, x0 from the network, ``cg_iterations`` (5) CG steps of data consistency from it
    (:func:`cg_consistency`; with ``sigma_y > 0`` the regularised system with ``gamma``), then
    ``x = sqrt(a') x0 + sqrt(1 - a') (eta z + sqrt(1 - eta^2) eps)`` with ``eta`` 0.85. The step to
    time 0 returns the consistent x0 itself, as the authors' code does.
    """
    if not 0 <= eta <= 1:
        raise ValueError(f"dds: eta must be in [0, 1], got {eta}")
    if cg_iterations < 1:
        raise ValueError(f"dds: cg_iterations must be at least 1, got {cg_iterations}")
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    steps = leading_steps(nfe, schedule.num_train_timesteps)
    x = noise.draw((y.shape[0], 3, *operator.image_shape(y)), y.device)
    for t, t_prev in descending_pairs(steps):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        eps = counter(x, t)
        x0 = cg_consistency(operator, predict_x0(x, eps, a, clip=False), y, cg_iterations,
                            gamma if sigma_y > 0 else None)
        if t_prev <= 0:
            x = x0
            continue
        spread = math.sqrt(1 - a_prev)
        x = math.sqrt(a_prev) * x0 + spread * (eta * noise.like(x) + math.sqrt(1 - eta**2) * eps)
    return Restoration(image=x, nfe=counter.calls,
                       extras={"eta": eta, "cg_iterations": cg_iterations, "sigma_y": sigma_y, "steps": steps})
