"""Fast generation with a correction of every clean-image estimate: multistep ODE/SDE solvers.

A restoration sampler differs from an unconditional one in one place: the data prediction
``x0`` of every step is corrected (SSD's and DDNM's back-projection ``x0 - A^+(A x0 - y)``)
before the solver uses it. The solvers here are diffusers' schedulers configured to take the
data prediction itself (``prediction_type="sample"``), so the corrected ``x0`` enters their
update as is, with no round trip through epsilon:

- ``dpm-solver++``: multistep DPM-Solver++(2M), data prediction (Lu et al. 2022, Alg. 2);
- ``sde-dpm-solver++``: its stochastic counterpart, SDE-DPM-Solver++(2M) (Lu et al. 2022,
  Sec. 5 / diffusers), which re-injects fresh noise at every step, for realism;
- ``unipc``: UniPC-2 with the B(h) = e^h - 1 variant (bh2) and its corrector UniC (Zhao et
  al. 2023), data prediction.

DDIM, the paper's sampler, stays in :mod:`ssd` and :mod:`ddnm`, where it reproduces the
released code step for step. Every solver here steps from the smallest time step to the clean
image (sigma = 0) without another network call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule
from .common import EpsPrior, NoiseSource, predict_x0

# (x0, index of the generation step from the first, time step) -> corrected x0
X0Correction = Callable[[torch.Tensor, int, int], torch.Tensor]
StepHook = Callable[[str, int, int, torch.Tensor], None]

SAMPLERS = ("ddim", "dpm-solver++", "sde-dpm-solver++", "unipc", "edict")
# the samplers whose generation is carried out by a diffusers scheduler here
MULTISTEP = ("dpm-solver++", "sde-dpm-solver++", "unipc")
STOCHASTIC = ("sde-dpm-solver++",)


def check_sampler(sampler: str, order: int = 2, steps: int | None = None) -> None:
    """Raise ValueError for an unknown sampler, a bad order, or fewer ``steps`` than the order needs."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from: {', '.join(SAMPLERS)}")
    if sampler in MULTISTEP and not 1 <= order <= 3:
        raise ValueError(f"solver order must be 1, 2 or 3, got {order}")
    if sampler in MULTISTEP and steps is not None and steps < order:
        raise ValueError(f"{sampler} of order {order} needs at least {order} generation steps, got {steps}: "
                         f"raise the budget or lower order=")


def make_scheduler(sampler: str, steps: list[int], schedule: NoiseSchedule = DEFAULT_SCHEDULE, order: int = 2):
    """A diffusers scheduler for ``sampler`` that visits exactly ``steps`` (ascending) from the last.

    The schedulers are built on the prior's own linear-beta schedule and told that the model
    output is the clean image, so that the corrected x0 is what they integrate.
    """
    common = {"num_train_timesteps": schedule.num_train_timesteps, "beta_start": schedule.beta_start,
              "beta_end": schedule.beta_end, "beta_schedule": "linear", "prediction_type": "sample",
              "solver_order": order, "lower_order_final": True, "final_sigmas_type": "zero"}
    descending = [int(t) for t in reversed(steps)]
    if sampler in ("dpm-solver++", "sde-dpm-solver++"):
        scheduler = DPMSolverMultistepScheduler(algorithm_type=sampler.replace("-solver", "solver"), **common)
        scheduler.set_timesteps(timesteps=descending)
        return scheduler
    if sampler == "unipc":
        scheduler = UniPCMultistepScheduler(predict_x0=True, solver_type="bh2", **common)
        # UniPC's set_timesteps has no custom time steps for a discrete schedule (only for flow
        # matching), so it is set up for the right count, which resets its multistep state, and
        # given our steps and their sigmas exactly as DPMSolverMultistepScheduler stores custom ones.
        scheduler.set_timesteps(len(descending))
        alpha_bar = schedule.alpha_bar
        sigmas = np.sqrt((1 - alpha_bar[descending]) / alpha_bar[descending])
        scheduler.timesteps = torch.tensor(descending, dtype=torch.int64)
        scheduler.sigmas = torch.from_numpy(np.append(sigmas, 0.0).astype(np.float32))
        return scheduler
    raise ValueError(f"{sampler!r} is not a multistep sampler; choose from: {', '.join(MULTISTEP)}")


@torch.no_grad()
def multistep_generate(prior: EpsPrior, x: torch.Tensor, steps: list[int], correct: X0Correction | None, *,
                       sampler: str, noise: NoiseSource, schedule: NoiseSchedule = DEFAULT_SCHEDULE,
                       clip: bool = True, order: int = 2, hook: StepHook | None = None) -> torch.Tensor:
    """Generate from ``x`` at ``steps[-1]`` down to the clean image with a multistep solver.

    At every step: ``eps = prior(x, t)``, ``x0`` by Tweedie's formula (clamped to [-1, 1] when
    ``clip``), ``x0 <- correct(x0, i, t)``, then the solver's update from the corrected ``x0``.
    One network call per step; the stochastic sampler draws its noise from ``noise``.
    """
    check_sampler(sampler, order, len(steps))
    scheduler = make_scheduler(sampler, steps, schedule, order)
    for i, t in enumerate(scheduler.timesteps.tolist()):
        if hook:
            hook("generation", i, t, x)
        x0 = predict_x0(x, prior(x, t), schedule.alpha_bar_at(t), clip=clip)
        if correct is not None:
            x0 = correct(x0, i, t)
        fresh = {"variance_noise": noise.like(x)} if sampler in STOCHASTIC else {}
        x = scheduler.step(x0, t, x, **fresh).prev_sample
    return x
