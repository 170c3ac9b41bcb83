"""DDNM and DDNM+ (Wang et al., ICLR 2023): null-space refinement of every x0 estimate."""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, descending_pairs, leading_steps
from .common import CallCounter, EpsPrior, Restoration, ddim_move, gaussian_like, make_generator, predict_x0


@torch.no_grad()
def ddnm(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 100, eta: float = 0.85,
         sigma_y: float = 0.0, seed: int | None = 0) -> Restoration:
    """DDNM (Alg. 1): from pure noise, ``x0 <- x0 - A^+(A x0 - y)`` (Eq. 13), then a DDIM step with ``eta``.

    With ``sigma_y > 0`` this is DDNM+ (Eqs. 17-19) in the operator's SVD view: the correction is
    scaled by ``lambda_t`` and the noise re-balanced where the measurement is noisier than ``x_t``,
    as in the authors' ``Lambda`` / ``Lambda_noise``. Time steps ``990, 980, ..., 0`` for 100 NFEs.
    """
    schedule = getattr(prior, "schedule", DEFAULT_SCHEDULE)
    counter, generator = CallCounter(prior), make_generator(seed, y.device)
    y = y.float()
    shape = (y.shape[0], 3, *operator.image_shape(y))
    x = torch.randn(shape, generator=generator, device=y.device)
    for t, t_prev in descending_pairs(leading_steps(nfe, schedule.num_train_timesteps)):
        a, a_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
        eps = counter(x, t)
        x0 = predict_x0(x, eps, a, clip=False)
        if sigma_y <= 0:
            x0 = operator.project(x0, y)
            x = ddim_move(x0, eps, a_prev, eta * math.sqrt(1 - a_prev), gaussian_like(x, generator))
        else:
            x = _ddnm_plus_step(operator, x0, eps, y, a_prev, eta, sigma_y, generator)
    return Restoration(image=x, nfe=counter.calls, extras={"eta": eta, "sigma_y": sigma_y})


def _ddnm_plus_step(operator: LinearOperator, x0: torch.Tensor, eps: torch.Tensor, y: torch.Tensor, a_prev: float,
                    eta: float, sigma_y: float, generator: torch.Generator) -> torch.Tensor:
    """One DDNM+ update: ``x0_hat = x0 - V Lambda V^T A^+(A x0 - y)``, ``x = sqrt(a) x0_hat + V(D1 z + D2 V^T eps)``."""
    sigma_t, scale = math.sqrt(1 - a_prev), math.sqrt(a_prev)
    s = operator.singular_map(x0).expand_as(x0)
    measured = s > 0
    noise_floor = scale * sigma_y / torch.where(measured, s, torch.ones_like(s))  # a * sigma_y / s
    noisier = measured & (sigma_t < noise_floor)  # y is noisier than x_t: correct only partly
    cleaner = measured & (sigma_t > noise_floor)
    lam = torch.where(noisier, s * sigma_t * math.sqrt(1 - eta**2) / max(scale * sigma_y, 1e-12), torch.ones_like(s))
    x0_hat = x0 - operator.V(lam * operator.Vt(operator.A_pinv(operator.A(x0) - y)))
    d1 = torch.full_like(s, sigma_t * eta)
    d1 = torch.where(cleaner, (sigma_t**2 - noise_floor**2).clamp_min(0).sqrt(), d1)
    d2 = torch.where(noisier | cleaner, torch.zeros_like(s), torch.full_like(s, sigma_t * math.sqrt(1 - eta**2)))
    noise = d1 * gaussian_like(x0, generator) + d2 * operator.Vt(eps)
    return scale * x0_hat + operator.V(noise)
