"""DDNM and DDNM+ (Wang et al., ICLR 2023): null-space refinement of every x0 estimate."""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps
from .common import (
    CallCounter,
    EpsPrior,
    NoiseSource,
    Restoration,
    ddim_move,
    noise_aware_update,
    predict_x0,
)


@torch.no_grad()
def ddnm(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 100, eta: float = 0.85,
         sigma_y: float = 0.0, seed: int | None = 0) -> Restoration:
    """DDNM (Alg. 1): from pure noise, ``x0 <- x0 - A^+(A x0 - y)`` (Eq. 13), then a DDIM step with ``eta``.

    With ``sigma_y > 0`` this is DDNM+ (Eqs. 17-19) in the operator's SVD view: the correction is
    scaled by ``lambda_t`` and the noise re-balanced where the measurement is noisier than ``x_t``,
    as in the authors' ``Lambda`` / ``Lambda_noise``. Time steps ``990, 980, ..., 0`` for 100 NFEs.
    """
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    shape = (y.shape[0], 3, *operator.image_shape(y))
    x = noise.draw(shape, y.device)
    for t, t_prev in descending_pairs(leading_steps(nfe, schedule.num_train_timesteps)):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        eps = counter(x, t)
        x0 = predict_x0(x, eps, a, clip=False)
        if sigma_y <= 0:
            x0 = operator.project(x0, y)
            x = ddim_move(x0, eps, a_prev, eta * math.sqrt(1 - a_prev), noise.like(x))
        else:
            x = noise_aware_update(operator, x0, eps, y, a_prev, eta, sigma_y, noise)
    return Restoration(image=x, nfe=counter.calls, extras={"eta": eta, "sigma_y": sigma_y})
