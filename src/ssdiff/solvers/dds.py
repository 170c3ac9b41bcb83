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

from ..operators import LinearOperator
from ..schedule import descending_pairs, leading_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, predict_x0, schedule_of
from .consistency import ConjugateGradient, Step


@torch.no_grad()
def dds(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 50, eta: float = 0.85,
        cg_iterations: int = 5, sigma_y: float = 0.0, gamma: float = 1.0, seed: int | None = 0) -> Restoration:
    """DDS (Alg. 1 of the paper, the authors' defaults): ``nfe`` DDIM steps ``0, T/nfe, ...`` from pure
    noise; at each, x0 from the network, ``cg_iterations`` (5) CG steps of data consistency from it
    (:class:`~.consistency.ConjugateGradient`; with ``sigma_y > 0`` the regularised system with
    ``gamma``), then ``x = sqrt(a') x0 + sqrt(1 - a') (eta z + sqrt(1 - eta^2) eps)`` with ``eta``
    0.85 (Eq. 14). The step to time 0 returns the consistent x0 itself, as the authors' code does
    (which is why this is not the ddim sampler: that one moves to the level of time 0).
    """
    if not 0 <= eta <= 1:
        raise ValueError(f"dds: eta must be in [0, 1], got {eta}")
    if cg_iterations < 1:
        raise ValueError(f"dds: cg_iterations must be at least 1, got {cg_iterations}")
    schedule = schedule_of(prior)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    steps = leading_steps(nfe, schedule.num_train_timesteps)
    x = noise.draw(operator.image_batch_shape(y), y.device)
    consistency = ConjugateGradient(operator, y, cg_iterations, gamma if sigma_y > 0 else None)
    for i, (t, t_prev) in enumerate(descending_pairs(steps)):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        eps = counter(x, t)
        x0 = consistency(predict_x0(x, eps, a, clip=False), Step(i, t, a, a_prev))
        if t_prev <= 0:
            x = x0
            continue
        spread = math.sqrt(1 - a_prev)
        x = math.sqrt(a_prev) * x0 + spread * (eta * noise.like(x) + math.sqrt(1 - eta**2) * eps)
    return Restoration(image=x, nfe=counter.calls,
                       extras={"eta": eta, "cg_iterations": cg_iterations, "sigma_y": sigma_y, "steps": steps})
