"""DDNM and DDNM+ (Wang et al., ICLR 2023): null-space refinement of every x0 estimate."""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps, spaced_steps
from .common import (
    CallCounter,
    EpsPrior,
    NoiseSource,
    Restoration,
    ddim_move,
    noise_aware_update,
    predict_x0,
)
from .samplers import MULTISTEP, check_sampler, multistep_generate


@torch.no_grad()
def ddnm(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 100, eta: float | None = None,
         sigma_y: float = 0.0, sampler: str = "ddim", spacing: str | None = None, order: int = 2,
         seed: int | None = 0) -> Restoration:
    """DDNM (Alg. 1): from pure noise, ``x0 <- x0 - A^+(A x0 - y)`` (Eq. 13), then a DDIM step with ``eta`` (0.85).

    With ``sigma_y > 0`` this is DDNM+ (Eqs. 17-19) in the operator's SVD view: the correction is
    scaled by ``lambda_t`` and the noise re-balanced where the measurement is noisier than ``x_t``,
    as in the authors' ``Lambda`` / ``Lambda_noise``. Time steps ``990, 980, ..., 0`` for 100 NFEs,
    or ``spacing`` (:data:`~ssdiff.schedule.SPACINGS`) over the whole schedule. Another
    ``sampler`` (a multistep solver of :mod:`samplers`) integrates the same projected x0.
    """
    check_sampler(sampler, order)
    if sampler not in ("ddim", *MULTISTEP):
        raise ValueError(f"DDNM generates with ddim or a multistep sampler ({', '.join(MULTISTEP)}), not {sampler!r}")
    if sampler != "ddim" and (eta is not None or sigma_y > 0):
        raise ValueError(f"eta and a noisy measurement (sigma_y > 0) apply to DDNM's ddim sampler only, not to {sampler!r}")
    eta = 0.85 if eta is None else eta
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    shape = (y.shape[0], 3, *operator.image_shape(y))
    x = noise.draw(shape, y.device)
    last = schedule.num_train_timesteps - 1
    if spacing is None:
        steps = leading_steps(nfe, schedule.num_train_timesteps) if sampler == "ddim" else spaced_steps("trailing", last, nfe)
    else:
        steps = spaced_steps(spacing, last, nfe, schedule)
    check_sampler(sampler, order, len(steps))
    if sampler != "ddim":
        x = multistep_generate(counter, x, steps, lambda x0, i, t: operator.project(x0, y), sampler=sampler,
                               noise=noise, schedule=schedule, clip=False, order=order)
        return Restoration(image=x, nfe=counter.calls, extras={"sampler": sampler, "steps": steps})
    for t, t_prev in descending_pairs(steps):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        eps = counter(x, t)
        x0 = predict_x0(x, eps, a, clip=False)
        if sigma_y <= 0:
            x0 = operator.project(x0, y)
            x = ddim_move(x0, eps, a_prev, eta * math.sqrt(1 - a_prev), noise.like(x))
        else:
            x = noise_aware_update(operator, x0, eps, y, a_prev, eta, sigma_y, noise)
    return Restoration(image=x, nfe=counter.calls, extras={"eta": eta, "sigma_y": sigma_y, "sampler": sampler, "steps": steps})
