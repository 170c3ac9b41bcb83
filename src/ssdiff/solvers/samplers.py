"""Generation samplers, each a short function of one signature (as k-diffusion's)::

    sampler(prior, x, steps, consistency, noise, callback=None, **options) -> x0

from ``x`` at the last of ``steps`` (ascending time steps) down to the clean image. Every sampler
hands each clean-image estimate to ``consistency`` (:mod:`.consistency`) before it uses it, draws
fresh noise from ``noise`` only, and calls ``callback(phase, index, t, x)`` before each network
evaluation. A new sampler is one new function and one line of :data:`SAMPLERS`.

- ``ddim``: DDIM (Song et al. 2021, Eq. 12) with fresh noise ``eta sqrt(1 - a_prev)`` (0 by
  default; SSD's 0.8 and DDNM's 0.85 are theirs), the paper's sampler, step for step as the released code;
- ``dpm-solver++``: multistep DPM-Solver++(2M), data prediction (Lu et al. 2022, Alg. 2);
- ``sde-dpm-solver++``: its stochastic counterpart (Lu et al. 2022, Sec. 5), fresh noise every step;
- ``unipc``: UniPC-2 with B(h) = e^h - 1 (bh2) and its corrector UniC (Zhao et al. 2023);
- ``edict``: EDICT's coupled pair of DDIM chains (Wallace et al. 2023), the exact inverse of
  EDICT inversion, two calls per step;
- ``cm4ir-noise``: DDIM's walk with CM4IR's noise injection (Garber and Tirer 2025): fresh noise
  mixed with the negated predicted noise.

The three multistep solvers are diffusers' schedulers configured to take the data prediction
itself (``prediction_type="sample"``), so the corrected x0 enters their update as is.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

from ..schedule import NoiseSchedule, descending_pairs
from .common import EpsPrior, NoiseSource, StepCallback, predict_x0, schedule_of
from .consistency import UNCONSTRAINED, Consistency, Step
from .edict import DEFAULT_MIX, edict_generate, projected_eps

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # EDICT inversion hands over a pair of chains


def first(x: State) -> torch.Tensor:
    """The image of a state: a pair's first chain (EDICT's ``x``)."""
    return x[0] if isinstance(x, tuple) else x


@torch.no_grad()
def ddim(prior: EpsPrior, x: State, steps: list[int], consistency: Consistency = UNCONSTRAINED,
         noise: NoiseSource | None = None, callback: StepCallback | None = None, *, eta: float | Sequence[float] = 0.0,
         clip: bool = True) -> torch.Tensor:
    """DDIM: ``x0`` by Tweedie, corrected, then ``sqrt(a') x0 + sqrt(1 - a' - s^2) eps + s z`` with
    ``s = eta sqrt(1 - a')`` (the consistency's :meth:`~.consistency.Consistency.move`); ``eta`` one
    number, or one per step in the order they are taken (``ssdiff tune``'s step search writes them)."""
    schedule, x = schedule_of(prior), first(x)
    pairs = descending_pairs(steps)
    for i, ((t, t_prev), eta_i) in enumerate(zip(pairs, per_step(eta, len(pairs), "ddim"))):
        if callback:
            callback("generation", i, t, x)
        a = schedule.alpha_bar_at(t)
        eps = prior(x, t)
        x = consistency.move(predict_x0(x, eps, a, clip=clip), eps, Step(i, t, a, schedule.alpha_bar_at(t_prev)), eta_i, noise)
    return x


def per_step(eta: float | Sequence[float], count: int, name: str) -> list[float]:
    """``eta`` for each of ``count`` steps: one number for all, or a list of one per step."""
    try:
        if isinstance(eta, (str, bytes)):
            raise TypeError(eta)
        etas = [float(eta)] * count if isinstance(eta, numbers.Real) else [float(e) for e in eta]
    except (TypeError, ValueError):
        etas = []
    if len(etas) != count or not all(0 <= e <= 1 for e in etas):
        raise ValueError(f"{name} takes one eta in [0, 1], or one per step ({count}); got {eta!r}")
    return etas


CM4IR_ETA = 0.1  # the CM4IR authors' share of fresh noise


@torch.no_grad()
def cm4ir_noise(prior: EpsPrior, x: State, steps: list[int], consistency: Consistency = UNCONSTRAINED,
                noise: NoiseSource | None = None, callback: StepCallback | None = None, *,
                eta: float | Sequence[float] = CM4IR_ETA, clip: bool = True) -> torch.Tensor:
    """DDIM's walk with CM4IR's noise injection (Garber and Tirer 2025, Sec. 3.3): the next state is
    ``sqrt(a') x0 + sqrt(1 - a') (eta z + sqrt(1 - eta^2) d)`` with ``d = (sqrt(a) x0 - x) / sqrt(1 - a)``,
    the *negated* noise the corrected estimate implies, where DDIM re-uses the network's; CM4IR's
    variance-exploding update written in SSD's variance-preserving states: DDIM's move with ``d`` in
    place of the network's noise. ``eta`` as ddim's; at 1 both are the same fresh-noise step."""
    schedule, x = schedule_of(prior), first(x)
    pairs = descending_pairs(steps)
    for i, ((t, t_prev), eta_i) in enumerate(zip(pairs, per_step(eta, len(pairs), "cm4ir-noise"))):
        if callback:
            callback("generation", i, t, x)
        a = schedule.alpha_bar_at(t)
        step = Step(i, t, a, schedule.alpha_bar_at(t_prev))
        x0 = consistency(predict_x0(x, prior(x, t), a, clip=clip), step)
        negated = (math.sqrt(a) * x0 - x) / math.sqrt(1 - a)
        x = consistency.advance(x0, negated, step, eta_i, noise)
    return x


def make_scheduler(sampler: str, steps: list[int], schedule: NoiseSchedule, order: int = 2):
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
    # UniPC's set_timesteps has no custom time steps for a discrete schedule (only for flow
    # matching), so it is set up for the right count, which resets its multistep state, and
    # given our steps and their sigmas exactly as DPMSolverMultistepScheduler stores custom ones.
    scheduler = UniPCMultistepScheduler(predict_x0=True, solver_type="bh2", **common)
    scheduler.set_timesteps(len(descending))
    alpha_bar = schedule.alpha_bar
    sigmas = np.sqrt((1 - alpha_bar[descending]) / alpha_bar[descending])
    scheduler.timesteps = torch.tensor(descending, dtype=torch.int64)
    scheduler.sigmas = torch.from_numpy(np.append(sigmas, 0.0).astype(np.float32))
    return scheduler


@torch.no_grad()
def _multistep(solver: str, prior: EpsPrior, x: State, steps: list[int], consistency: Consistency,
               noise: NoiseSource | None, callback: StepCallback | None, order: int, clip: bool) -> torch.Tensor:
    """One network call per step: ``x0`` by Tweedie (clamped when ``clip``), corrected, then the
    solver's update from it; the last step reaches the clean image without another call."""
    schedule, x = schedule_of(prior), first(x)
    check_order(solver, order, len(steps))
    scheduler = make_scheduler(solver, steps, schedule, order)
    timesteps = scheduler.timesteps.tolist()
    for i, t in enumerate(timesteps):
        if callback:
            callback("generation", i, t, x)
        a = schedule.alpha_bar_at(t)
        step = Step(i, t, a, schedule.alpha_bar_at(timesteps[i + 1] if i + 1 < len(timesteps) else -1))
        x0 = consistency(predict_x0(x, prior(x, t), a, clip=clip), step)
        fresh = {"variance_noise": noise.like(x)} if solver == "sde-dpm-solver++" else {}
        x = scheduler.step(x0, t, x, **fresh).prev_sample
    return x


def dpm_solver_pp(prior: EpsPrior, x: State, steps: list[int], consistency: Consistency = UNCONSTRAINED,
                  noise: NoiseSource | None = None, callback: StepCallback | None = None, *, order: int = 2,
                  clip: bool = True) -> torch.Tensor:
    """Multistep DPM-Solver++ of ``order`` (2M by default), data prediction."""
    return _multistep("dpm-solver++", prior, x, steps, consistency, noise, callback, order, clip)


def sde_dpm_solver_pp(prior: EpsPrior, x: State, steps: list[int], consistency: Consistency = UNCONSTRAINED,
                      noise: NoiseSource | None = None, callback: StepCallback | None = None, *, order: int = 2,
                      clip: bool = True) -> torch.Tensor:
    """SDE-DPM-Solver++ of ``order``: fresh noise from ``noise`` at every step."""
    return _multistep("sde-dpm-solver++", prior, x, steps, consistency, noise, callback, order, clip)


def unipc(prior: EpsPrior, x: State, steps: list[int], consistency: Consistency = UNCONSTRAINED,
          noise: NoiseSource | None = None, callback: StepCallback | None = None, *, order: int = 2,
          clip: bool = True) -> torch.Tensor:
    """UniPC of ``order`` (bh2) with its corrector."""
    return _multistep("unipc", prior, x, steps, consistency, noise, callback, order, clip)


@torch.no_grad()
def edict(prior: EpsPrior, x: State, steps: list[int], consistency: Consistency = UNCONSTRAINED,
          noise: NoiseSource | None = None, callback: StepCallback | None = None, *, p: float = DEFAULT_MIX,
          clip: bool = True) -> torch.Tensor:
    """EDICT generation with mixing ``p`` from a pair (EDICT inversion's) or from ``x`` twice. The
    coupling ends on a mix of its chains, not on a corrected estimate: it is corrected once more,
    as every other sampler's last estimate is."""
    schedule = schedule_of(prior)
    pair = x if isinstance(x, tuple) else (x, x.clone())
    x = edict_generate(prior, pair, [-1] + list(steps), p, projected_eps(consistency, schedule, clip), schedule, callback)
    return consistency(x, Step(len(steps) - 1, -1, 1.0, 1.0))


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler and the network calls it spends per step."""

    function: Callable[..., torch.Tensor]
    calls_per_step: int = 1


SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec(ddim),
    "dpm-solver++": SamplerSpec(dpm_solver_pp),
    "sde-dpm-solver++": SamplerSpec(sde_dpm_solver_pp),
    "unipc": SamplerSpec(unipc),
    "edict": SamplerSpec(edict, calls_per_step=2),
    "cm4ir-noise": SamplerSpec(cm4ir_noise),
}
ETA_SAMPLERS = ("ddim", "cm4ir-noise")  # the samplers whose share of fresh noise is SSD's ddim_eta
MULTISTEP = ("dpm-solver++", "sde-dpm-solver++", "unipc")  # the diffusers solvers, of an order 1 to 3


def check_order(sampler: str, order: int, steps: int | None = None) -> None:
    """Raise ValueError for a bad multistep order, or fewer ``steps`` than the order needs."""
    if not 1 <= order <= 3:
        raise ValueError(f"solver order must be 1, 2 or 3, got {order}")
    if steps is not None and steps < order:
        raise ValueError(f"{sampler} of order {order} needs at least {order} generation steps, got {steps}: "
                         f"raise the budget or lower order=")


def sampler_spec(name: str) -> SamplerSpec:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]
