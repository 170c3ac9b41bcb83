"""DiffPIR (Zhu et al., CVPR-W 2023): plug-and-play restoration with a diffusion denoiser.

Every step (Alg. 1): Tweedie's ``x0`` (clamped), the data proximal step
``x0 <- argmin_x |y - A x|^2 + rho_t |x - x0|^2`` with ``rho_t = lambda sigma_n^2 / sigma_bar_t^2``
and ``sigma_bar_t^2 = (1 - a_t) / a_t`` (Eq. 13), then the move to the next level with the eps
implied by the new ``x0`` mixed with fresh noise, ``sqrt(1 - zeta) eps_hat + sqrt(zeta) z`` (Eq. 14).

Adapted here: the proximal step is solved exactly in the operator's SVD view (the authors
solve SR and deblurring by FFT for circular kernels, which our operators are not); ``sigma_n`` is
kept in [0, 1] units as in the authors' code, ``max(0.001, sigma_y / 2)`` for our [-1, 1]
``sigma_y``, so that their ``lambda`` values carry over; the time steps are theirs by default
(``spacing="diffpir"``, their ``quad``: :func:`~ssdiff.schedule.diffpir_steps`; ``quadratic``, DDIM's
quad, is what this implementation used before), and the last step returns the proximal ``x0``
rather than spending a network call at ``t = 0`` whose result their code discards.
"""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator
from ..schedule import descending_pairs, spaced_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, predict_x0, schedule_of
from .consistency import Proximal, Step


@torch.no_grad()
def diffpir(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 20, lam: float = 1.0,
            zeta: float = 0.25, sigma_y: float = 0.0, spacing: str = "diffpir", seed: int | None = 0) -> Restoration:
    """DiffPIR from pure noise at ``t = 999`` in ``nfe`` steps (one network call each); the authors'
    per-task ``lam`` and ``zeta`` are in the method registry (:mod:`.methods`)."""
    if lam <= 0 or not 0 <= zeta <= 1:
        raise ValueError(f"DiffPIR needs lam > 0 and zeta in [0, 1], got lam={lam}, zeta={zeta}")
    schedule = schedule_of(prior)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    steps = spaced_steps(spacing, schedule.num_train_timesteps - 1, nfe, schedule)
    sigma_n = max(0.001, sigma_y / 2)
    # rho_t = lambda sigma_n^2 / sigma_bar_t^2 (Eq. 13)
    proximal = Proximal(operator, y, lambda step: lam * sigma_n**2 * step.alpha_bar / (1 - step.alpha_bar))
    x = noise.draw(operator.image_batch_shape(y), y.device)
    for i, (t, t_prev) in enumerate(descending_pairs(steps)):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        x0 = proximal(predict_x0(x, counter(x, t), a), Step(i, t, a, a_prev))
        eps_hat = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * (math.sqrt(1 - zeta) * eps_hat + math.sqrt(zeta) * noise.like(x))
    return Restoration(image=x, nfe=counter.calls, extras={"lam": lam, "zeta": zeta, "steps": steps})
