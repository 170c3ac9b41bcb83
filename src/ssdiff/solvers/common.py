"""The pieces every sampler shares, each written once: x0 from epsilon, the DDIM-style move, noise."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..operators import Kind, LinearOperator
from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule


class EpsPrior(Protocol):
    """Anything that maps ``(x_t, t)`` to a noise prediction: a loaded prior, or an analytic one in tests."""

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor: ...


# Called before every network evaluation of a sampler or an inversion: (phase, step index, t, x_t)
StepCallback = Callable[[str, int, int, torch.Tensor], None]


def schedule_of(prior: EpsPrior) -> NoiseSchedule:
    """The prior's noise schedule (the linear-beta one of DDPM for priors that carry none)."""
    return getattr(prior, "schedule", DEFAULT_SCHEDULE)


@dataclass
class Restoration:
    """What a solver returns: the restored images, the network calls made, and per-method extras."""

    image: torch.Tensor
    nfe: int
    extras: dict = field(default_factory=dict)


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float, clip: bool = True) -> torch.Tensor:
    """Tweedie's estimate of the clean image, ``x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)`` (DDIM, Eq. 9)."""
    x0 = (x_t - math.sqrt(1.0 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)
    return x0.clamp(-1.0, 1.0) if clip else x0


def ddim_move(
    x0: torch.Tensor, eps: torch.Tensor, alpha_bar_to: float, sigma: float, noise: torch.Tensor | None
) -> torch.Tensor:
    """Move to the noise level ``alpha_bar_to``: ``sqrt(a) x0 + sqrt(1 - a - sigma^2) eps + sigma z`` (DDIM, Eq. 12).

    The same move serves DDIM generation (``a`` the previous level) and SSD's DA inversion
    (``a`` the next level, ``sigma^2 = eta * beta``, SSD Eq. 10).
    """
    direction = max(1.0 - alpha_bar_to - sigma**2, 0.0)
    x = math.sqrt(alpha_bar_to) * x0 + math.sqrt(direction) * eps
    if sigma > 0:
        x = x + sigma * noise
    return x


def ddim_sigma(alpha_bar_t: float, alpha_bar_prev: float, eta: float) -> float:
    """The DDIM noise scale ``eta * sqrt((1 - a_prev)/(1 - a_t)) * sqrt(1 - a_t/a_prev)`` (DDIM, Eq. 16)."""
    return eta * math.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t)) * math.sqrt(1.0 - alpha_bar_t / alpha_bar_prev)


def ddpm_posterior(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar_t: float, alpha_bar_prev: float) -> tuple[torch.Tensor, float]:
    """Mean and std of ``q(x_prev | x_t, x0)`` between two (possibly respaced) levels (DDPM, Eqs. 6-7)."""
    alpha = alpha_bar_t / alpha_bar_prev
    beta = 1.0 - alpha
    mean = (math.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar_t)) * x0 + (math.sqrt(alpha) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)) * x_t
    return mean, math.sqrt(beta * (1 - alpha_bar_prev) / (1 - alpha_bar_t))


def defaults_for(operator: LinearOperator, table: dict[Kind, dict], fallback: dict) -> dict:
    """A method's per-task defaults: the entry of ``table`` for the operator's :class:`Kind`."""
    return dict(table.get(getattr(operator, "kind", Kind.OTHER), fallback))


def make_generator(seed: int | None, device: torch.device | str) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (a fresh random seed when None)."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator


class NoiseSource:
    """Gaussian noise with one generator per batch element.

    An image's restoration then depends on its own seed only, not on the batch it is in: with
    one ``seed`` every element draws the same stream, and a list gives each element its own.
    """

    def __init__(self, seed: int | Sequence[int] | None, batch: int, device: torch.device | str):
        seeds = list(seed) if isinstance(seed, (list, tuple)) else [seed] * batch
        if len(seeds) != batch:
            raise ValueError(f"got {len(seeds)} seeds for a batch of {batch}")
        self.generators = [make_generator(s, device) for s in seeds]

    def draw(self, shape: Sequence[int], device: torch.device | str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal noise of ``shape`` (batch first), each element from its own generator."""
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g, device=device, dtype=dtype) for g in self.generators])

    def like(self, x: torch.Tensor) -> torch.Tensor:
        return self.draw(x.shape, x.device, x.dtype)


class CallCounter:
    """Wraps a prior and counts its calls, so every solver reports NFEs from real network calls."""

    def __init__(self, prior: Callable[[torch.Tensor, int | torch.Tensor], torch.Tensor]):
        self.prior = prior
        self.calls = 0

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.prior(x_t, t)

    def __getattr__(self, name: str):
        return getattr(self.prior, name)


class ScaledNoise:
    """A prior whose noise prediction is divided by ``scale``: Epsilon Scaling (Ning et al., ICLR 2024,
    arXiv 2308.15321) with its uniform schedule, one factor for every step.

    A sampler feeds the network its own estimates of ``x_t``, which drift from the training
    distribution as its errors pile up (exposure bias); a prediction scaled down slightly (``scale``
    just above 1) moves the trajectory back toward the one learned; at a few steps the result is
    less smooth (``benchmarks/few_step.md``, round 5). Below 1 it is enlarged, which a 4-step
    preset prefers.
    """

    def __init__(self, prior: EpsPrior, scale: float):
        self.prior, self.scale = prior, scale

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        return self.prior(x_t, t) / self.scale

    def __getattr__(self, name: str):
        return getattr(self.prior, name)
