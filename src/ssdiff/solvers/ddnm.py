"""DDNM and DDNM+ (Wang et al., ICLR 2023): null-space refinement of every x0 estimate."""

from __future__ import annotations

import torch

from ..operators import LinearOperator
from ..schedule import leading_steps, spaced_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, schedule_of
from .consistency import back_projection
from .samplers import MULTISTEP, sampler_spec


@torch.no_grad()
def ddnm(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 100, eta: float | None = None,
         sigma_y: float = 0.0, sampler: str = "ddim", spacing: str | None = None, order: int | None = None,
         seed: int | None = 0) -> Restoration:
    """DDNM (Alg. 1): from pure noise, ``x0 <- x0 - A^+(A x0 - y)`` (Eq. 13), then a DDIM step with ``eta`` (0.85).

    With ``sigma_y > 0`` this is DDNM+ (Eqs. 17-19) in the operator's SVD view: the correction is
    scaled by ``lambda_t`` and, with ddim, the noise re-balanced where the measurement is noisier
    than ``x_t``, as in the authors' ``Lambda`` / ``Lambda_noise`` (:mod:`.consistency`). Time steps
    ``990, 980, ..., 0`` for 100 NFEs, or ``spacing`` (:data:`~ssdiff.schedule.SPACINGS`) over the
    whole schedule. Another ``sampler`` (a multistep solver of :mod:`samplers`, of ``order``)
    integrates the same corrected x0.
    """
    generating = sampler_spec(sampler)
    if sampler not in ("ddim", *MULTISTEP):
        raise ValueError(f"DDNM generates with ddim or a multistep sampler ({', '.join(MULTISTEP)}), not {sampler!r}")
    if sampler != "ddim" and eta is not None:
        raise ValueError(f"eta applies to DDNM's ddim sampler only, not to {sampler!r}")
    if sampler == "ddim" and order is not None:
        raise ValueError(f"order applies to the multistep samplers ({', '.join(MULTISTEP)}), not to ddim")
    schedule = schedule_of(prior)
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    last = schedule.num_train_timesteps - 1
    if spacing is None:
        steps = leading_steps(nfe, schedule.num_train_timesteps) if sampler == "ddim" else spaced_steps("trailing", last, nfe)
    else:
        steps = spaced_steps(spacing, last, nfe, schedule)
    if sampler == "ddim":
        options = {"eta": 0.85 if eta is None else eta}
    else:
        options = {"order": 2 if order is None else order}  # the sampler checks it before its first call
    x = noise.draw(operator.image_batch_shape(y), y.device)
    x = generating.function(counter, x, steps, back_projection(operator, y, sigma_y), noise, clip=False, **options)
    extras = {"sigma_y": sigma_y, "sampler": sampler, "steps": steps, **({"eta": options["eta"]} if sampler == "ddim" else {})}
    return Restoration(image=x, nfe=counter.calls, extras=extras)
