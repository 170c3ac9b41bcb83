"""CM4IR (Garber & Tirer, CVPR 2025): few-step guidance with back-projection and a new noise injection.

The authors' loop (``functions/cm4ir_scheme.py``), in variance-exploding coordinates
``x = x0 + sigma z``, at K noise levels with ``a_0 = alpha_bar[iN + 1]``,
``a_{k+1} = min(a_k (1 + gamma), 0.9999)``, ``sigma_k = sqrt(1 - a_k)``:

1. start: ``x = A^+ y + sigma_0 z``;
2. every step: a clean estimate ``x0`` (clamped), the back-projection guidance
   ``x <- x0 - A_reg^+ (A x0 - y)`` (Tikhonov pseudo-inverse, ``reg = (2 sigma_y)^2 zeta_reg`` in
   the authors' [0, 1] units, plain ``A^+`` for a noiseless y),
3. then the noise injection ``x <- x + sigma_{k+1} (eta z + sqrt(1 - eta^2) (x0 - x_k) / sigma_k)``:
   fresh noise mixed with the *negated* predicted noise of the step, not DDIM's re-use of it;
4. the last step returns the guided ``x``.

Adapted here: the paper's denoiser is a consistency model; ours is a diffusion model's Tweedie
estimate, called at the integer time step whose noise-to-signal ratio ``sqrt((1 - a_t) / a_t)``
is nearest to ``sigma_k`` (the state handed to it is ``sqrt(a_t) x``, the VP form of the VE
state). The paper notes its injection also helps guided diffusion models at low NFEs; the
noise levels, their rule and the defaults (eta 0.1; per-task iN and gamma in :mod:`.methods`) are the authors'.
Inpainting starts from ``A^+ y`` as every other task (the authors fill the holes with a median first).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, predict_x0, schedule_of
from .consistency import Proximal, Step


def cm4ir_levels(start_t: int, gamma: float, count: int, schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> list[tuple[float, int]]:
    """The K VE noise levels ``sigma_k`` of CM4IR and the time step the prior is called at for each."""
    ratios = np.sqrt((1 - schedule.alpha_bar) / schedule.alpha_bar)
    a, levels = schedule.alpha_bar_at(start_t + 1), []
    for _ in range(count):
        sigma = min(max(math.sqrt(1 - a), 0.002), 80.0)
        levels.append((sigma, int(np.abs(ratios - sigma).argmin())))
        a = min(a * (1 + gamma), 0.9999)
    return levels


@torch.no_grad()
def cm4ir(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 4, start_t: int = 250,
          gamma: float = 0.7, eta: float = 0.1, zeta_reg: float = 0.0, sigma_y: float = 0.0,
          seed: int | None = 0) -> Restoration:
    """CM4IR's K = ``nfe`` steps from ``A^+ y`` noised to the level of ``start_t`` (one call each); the
    authors' per-task ``start_t``, ``gamma`` and ``zeta_reg`` are in the method registry (:mod:`.methods`)."""
    schedule = schedule_of(prior)
    if not 0 <= start_t < schedule.num_train_timesteps - 1 or gamma < 0 or not 0 <= eta <= 1:
        raise ValueError(f"CM4IR needs 0 <= start_t < {schedule.num_train_timesteps - 1}, gamma >= 0 and eta in [0, 1]; "
                         f"got start_t={start_t}, gamma={gamma}, eta={eta}")
    counter, noise = CallCounter(prior), NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    reg = sigma_y**2 * zeta_reg  # (2 sigma_y)^2 in the authors' [0, 1] units is our sigma_y^2
    levels = cm4ir_levels(start_t, gamma, nfe, schedule)
    guidance = Proximal(operator, y, reg)
    x = operator.A_pinv(y) + levels[0][0] * noise.like(operator.A_pinv(y))
    for k, (sigma, t) in enumerate(levels):
        a = schedule.alpha_bar_at(t)
        sigma_t = math.sqrt((1 - a) / a)  # the prior's own level, nearest to sigma
        x0 = predict_x0(math.sqrt(a) * x, counter(math.sqrt(a) * x, t), a)
        step_noise = (x0 - x) / sigma_t
        a_next = schedule.alpha_bar_at(levels[k + 1][1]) if k + 1 < len(levels) else 1.0
        x = guidance(x0, Step(k, t, a, a_next))
        if k + 1 < len(levels):
            x = x + levels[k + 1][0] * (eta * noise.like(x) + math.sqrt(1 - eta**2) * step_noise)
    return Restoration(image=x, nfe=counter.calls, extras={"start_t": start_t, "gamma": gamma, "eta": eta,
                                                              "levels": [sigma for sigma, _ in levels]})
