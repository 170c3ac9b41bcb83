"""The DDPM noise schedule and the time-step spacings that SSD and the baselines use.

All public checkpoints that ssdiff targets (and its built-in prior) were trained with the
DDPM linear schedule over 1000 steps, beta from 1e-4 to 2e-2 (Ho et al. 2020, Sec. 4).
Time steps are always integers of that 1000-step schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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
