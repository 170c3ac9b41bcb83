"""DiffusionPrior: a pretrained epsilon-prediction network behind one call, ``prior(x_t, t) -> eps``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
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

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this for the network's down/up-sampling to line up."""
        levels = len(getattr(self.network.config, "block_out_channels", (0,)))
        return 2 ** (levels - 1)

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(t) or t.ndim == 0:
            t = torch.full((x_t.shape[0],), int(t), device=x_t.device, dtype=torch.long)
        height, width = x_t.shape[-2:]
        # Sides the network cannot take are reflect-padded up to a multiple and the noise
        # prediction cropped back: a reflected noisy image is still a plausible noisy image.
        pad_h, pad_w = -height % self.size_multiple, -width % self.size_multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x_t = F.pad(x_t, (0, pad_w, 0, pad_h), mode=mode)
        out = self.network(x_t.to(self.dtype), t.to(x_t.device))
        out = getattr(out, "sample", out)  # diffusers returns an output object
        return out[:, : self.eps_channels, :height, :width].to(x_t.dtype)
