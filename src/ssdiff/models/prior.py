"""DiffusionPrior: a pretrained epsilon-prediction network behind one call, ``prior(x_t, t) -> eps``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule


@dataclass
class DiffusionPrior:
    """A noise-prediction network with the schedule it was trained with.

    ``prior(x_t, t)`` returns epsilon (B x 3 x H x W) for images in [-1, 1] and integer time
    steps ``t`` of the 1000-step schedule (an int or a length-B tensor). Networks that also
    predict a variance (OpenAI "learned sigma", 6 output channels) are sliced to epsilon.
    """

    network: nn.Module
    image_size: int | tuple[int, int]
    schedule: NoiseSchedule = field(default_factory=lambda: DEFAULT_SCHEDULE)
    eps_channels: int = 3
    name: str = "unnamed"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.network.parameters()).dtype

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    @property
    def resolution(self) -> tuple[int, int]:
        size = self.image_size
        return (size, size) if isinstance(size, int) else tuple(size)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "DiffusionPrior":
        self.network.to(device=device, dtype=dtype)
        return self

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(t) or t.ndim == 0:
            t = torch.full((x_t.shape[0],), int(t), device=x_t.device, dtype=torch.long)
        out = self.network(x_t.to(self.dtype), t.to(x_t.device))
        out = getattr(out, "sample", out)  # diffusers returns an output object
        return out[:, : self.eps_channels].to(x_t.dtype)
