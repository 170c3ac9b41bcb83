"""The DDPM noise schedule and the time-step spacings that SSD and the baselines use.

All public checkpoints that ssdiff targets (and its built-in prior) were trained with the
DDPM linear schedule over 1000 steps, beta from 1e-4 to 2e-2 (Ho et al. 2020, Sec. 4).
Time steps are always integers of that 1000-step schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000


@dataclass(frozen=True)
class NoiseSchedule:
    """Linear-beta DDPM schedule; ``alpha_bar[t] = prod_{s<=t} (1 - beta_s)`` (Ho et al. 2020, Eq. 4)."""

    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
    beta_start: float = 1e-4
    beta_end: float = 2e-2

    @cached_property
    def betas(self) -> np.ndarray:
        # float64, as the reference code keeps them, so that respacing loses nothing.
        scale = 1000 / self.num_train_timesteps
        return np.linspace(scale * self.beta_start, scale * self.beta_end, self.num_train_timesteps, dtype=np.float64)

    @cached_property
    def alpha_bar(self) -> np.ndarray:
        return np.cumprod(1.0 - self.betas)

    def alpha_bar_at(self, t: int) -> float:
        """alpha-bar at integer step ``t``; ``t = -1`` means the clean image (alpha-bar = 1)."""
        return 1.0 if t < 0 else float(self.alpha_bar[t])

    def alpha_bar_tensor(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(self.alpha_bar, device=device, dtype=dtype)


DEFAULT_SCHEDULE = NoiseSchedule()


def uniform_steps(t_end: int, count: int) -> list[int]:
    """``count`` integer steps spread uniformly over ``[0, t_end]`` with Python ``round``.

    This is the spacing of the SSD reference (``create_space_timesteps``): the float stride
    ``t_end / (count - 1)`` is accumulated and each position rounded, so both ends are hit
    exactly, e.g. ``uniform_steps(549, 5) == [0, 137, 274, 412, 549]``. Duplicates (more steps
    than integers) collapse, as they do in the reference's ``set``.
    """
    if count < 1:
        raise ValueError(f"need at least one time step, got {count}")
    if t_end < 0:
        raise ValueError(f"the last time step must be >= 0, got {t_end}")
    if count == 1:
        return [t_end]
    stride = t_end / (count - 1)
    steps, position = [], 0.0
    for _ in range(count):
        steps.append(round(position))
        position += stride
    return sorted(set(steps))


def ddim_steps(num_steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> list[int]:
    """Evenly spaced steps over the whole schedule for unconditional DDIM sampling, ascending."""
    return uniform_steps(num_train_timesteps - 1, num_steps)


def respaced_betas(alpha_bar: np.ndarray, steps: list[int]) -> np.ndarray:
    """Betas of the respaced chain: ``beta_k = 1 - alpha_bar[s_k] / alpha_bar[s_{k-1}]`` (DDIM, Eq. 16 setting)."""
    previous = np.concatenate([[1.0], alpha_bar[steps[:-1]]])
    return 1.0 - alpha_bar[steps] / previous


def leading_steps(count: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> list[int]:
    """``count`` steps ``0, T/count, 2T/count, ...`` (floored), ascending: DDRM's and DDNM's spacing.

    For ``count`` dividing 1000 this is exactly their ``range(0, 1000, 1000 // count)``.
    """
    if not 1 <= count <= num_train_timesteps:
        raise ValueError(f"need between 1 and {num_train_timesteps} steps, got {count}")
    return [i * num_train_timesteps // count for i in range(count)]


def descending_pairs(steps: list[int]) -> list[tuple[int, int]]:
    """``(t, t_prev)`` from the last step down, ``t_prev = -1`` (the clean image) at the end."""
    previous = [-1] + list(steps[:-1])
    return list(zip(reversed(steps), reversed(previous)))


def log_snr(alpha_bar: np.ndarray | float) -> np.ndarray:
    """Half the log signal-to-noise ratio, ``lambda = log(sqrt(a) / sqrt(1 - a))`` (DPM-Solver's time variable)."""
    alpha_bar = np.asarray(alpha_bar, dtype=np.float64)
    return 0.5 * (np.log(alpha_bar) - np.log1p(-alpha_bar))


def _strictly_increasing(steps: list[int]) -> list[int]:
    # Rounding can map two grid points near t = 0 to one integer; push the later ones up so that
    # a budget of n steps always makes n network calls.
    out: list[int] = []
    for t in steps:
        out.append(max(t, out[-1] + 1) if out else t)
    return out


def explicit_steps(steps, t_end: int, count: int) -> list[int]:
    """``steps`` given one by one, checked: ``count`` ascending integers in [0, t_end], the last ``t_end``."""
    steps = [int(t) for t in steps]
    if len(steps) != count or steps[-1] != t_end or steps[0] < 0 or any(a >= b for a, b in pairwise(steps)):
        raise ValueError(f"explicit time steps must be {count} ascending integers from 0 up, ending at {t_end}; got {steps}")
    return steps


def refit_steps(steps: Sequence[int], t_end: int, count: int) -> list[int]:
    """Listed steps (a step search's) stretched to ``count`` steps ending at ``t_end``: the same shape,
    each step's share of the way from the clean end as a function of its place in the list,
    sampled at the new count (what a preset searched at one budget and ``t0`` runs at another)."""
    if list(steps)[-1:] == [t_end] and len(steps) == count:
        return [int(t) for t in steps]
    places = np.arange(1, len(steps) + 1) / len(steps)
    shares = np.asarray(steps, dtype=np.float64) / max(steps[-1], 1)
    wanted = np.interp(np.arange(1, count + 1) / count, np.append(0.0, places), np.append(0.0, shares)) * t_end
    fitted = _strictly_increasing([round(float(t)) for t in wanted])
    return explicit_steps(fitted[:-1] + [t_end], t_end, count)


def refit_per_step(values: Sequence[float], count: int) -> list[float]:
    """Per-step values (in the order the steps are taken) for ``count`` steps: each new step takes
    the value of the listed step at the nearest place. The last step lands on the clean image,
    where a noise share means nothing (and the search never moved it): it stays last, and the
    others are fitted to the listed steps before it."""
    values = [float(v) for v in values]
    if len(values) == count:
        return values
    if len(values) == 1:
        return values * count
    body = values[:-1]
    return [body[round(k * (len(body) - 1) / max(count - 2, 1))] for k in range(count - 1)] + values[-1:]


def spaced_steps(spacing: str | Sequence[int], t_end: int, count: int, schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> list[int]:
    """``count`` ascending generation steps ending at ``t_end``, under one of :data:`SPACINGS`.

    ``uniform`` is the released SSD spacing (``uniform_steps``: both ends hit, so the last call is
    at ``t = 0``). The others place ``count`` points on the grid ``u = k / count, k = 1..count`` of
    a monotone map ``u -> t`` with ``t(0) = 0``, so that no call is spent at ``t = 0`` where the
    sample is already clean (the solver steps from the smallest one to the clean image):
    ``trailing`` is linear in t, ``quadratic`` is ``t_end u^2`` (denser near the clean end, as
    DDIM's ``quad``), ``logsnr`` is uniform in ``lambda = log(sqrt(a) / sigma)`` between
    ``lambda(t_end)`` and ``lambda(0)`` (DPM-Solver's choice, Lu et al. 2022, Sec. 3.3).
    ``diffpir`` is the DiffPIR authors' ``quad`` (:func:`diffpir_steps`). A list instead of a name
    gives the steps themselves (:func:`explicit_steps`; ``ssdiff tune``'s step search writes them).
    """
    if not isinstance(spacing, str):
        return explicit_steps(spacing, t_end, count)
    if spacing not in SPACINGS:
        raise ValueError(f"unknown time-step spacing {spacing!r}; choose from: {', '.join(SPACINGS)}")
    if count < 1:
        raise ValueError(f"need at least one time step, got {count}")
    if not 0 <= t_end < schedule.num_train_timesteps:
        raise ValueError(f"the last time step must be in [0, {schedule.num_train_timesteps - 1}], got {t_end}")
    if spacing == "uniform":
        return uniform_steps(t_end, count)
    if spacing == "diffpir":
        return diffpir_steps(t_end, count)
    if count > t_end:
        raise ValueError(f"{count} steps do not fit in (0, {t_end}] with the {spacing!r} spacing")
    u = np.arange(1, count + 1, dtype=np.float64) / count
    if spacing == "trailing":
        t = t_end * u
    elif spacing == "quadratic":
        t = t_end * u**2
    else:  # logsnr: interpolate the schedule's (decreasing) lambda(t) at uniformly spaced values
        lambdas = log_snr(schedule.alpha_bar[: t_end + 1])
        targets = lambdas[0] + u * (lambdas[-1] - lambdas[0])
        t = np.interp(-targets, -lambdas, np.arange(t_end + 1, dtype=np.float64))
    steps = _strictly_increasing([round(float(v)) for v in t])
    steps = [min(s, t_end) for s in steps]
    if len(set(steps)) != count:  # pushed past t_end: too many steps for this range
        raise ValueError(f"{count} steps do not fit in (0, {t_end}] with the {spacing!r} spacing")
    return steps


def diffpir_steps(t_end: int, count: int) -> list[int]:
    """The DiffPIR authors' ``quad`` steps (their main_ddpir_*.py), ascending: ``t_end - s_k`` with
    ``s_k = int(sqrt(k / count) (t_end + 1))``, k = 0 .. count - 1, computed as they compute it
    (``sqrt`` of a ``linspace`` of squares). Unlike DDIM's quad their gaps shrink slowly: at 19
    calls 999, 770, 675, ... 54, 26. Their sequence for N iterations ends with a call at ``t = 0``
    whose prediction they discard; here it is not spent, so ``count`` calls are their N = count + 1."""
    offsets = np.sqrt(np.linspace(0, (t_end + 1) ** 2, count + 1)).astype(int)[:count]
    steps = sorted(t_end - int(s) for s in offsets)
    if len(set(steps)) != count:
        raise ValueError(f"{count} steps do not fit in (0, {t_end}] with the 'diffpir' spacing")
    return steps


SPACINGS = ("uniform", "trailing", "quadratic", "logsnr", "diffpir")
