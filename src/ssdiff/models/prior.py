"""DiffusionPrior: a pretrained epsilon-prediction network behind one call, ``prior(x_t, t) -> eps``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule
from ..threads import adapt as adapt_threads
from .convert import CheckpointError
from .encoder_reuse import EncoderReuse


@dataclass
class DiffusionPrior:
    """A noise-prediction network with the schedule it was trained with.

    Any image size works: sides the network cannot take are reflect-padded, and images larger
    than ``image_size`` are processed in overlapping tiles of that size (``tiling``); one call
    is still one NFE. At most ``max_batch`` images or tiles go through the network at once (the
    rest in further forwards of the same call), so memory stays bounded for any image size;
    ``on_forward(n)`` is told after each forward of ``n`` images (progress bars use it).

    ``prior(x_t, t)`` returns epsilon (B x 3 x H x W) for images in [-1, 1] and integer time
    steps ``t`` of the 1000-step schedule (an int or a length-B tensor). Networks that also
    predict a variance (OpenAI "learned sigma", 6 output channels) are sliced to epsilon.
    """

    network: nn.Module
    image_size: int | tuple[int, int] | None
    schedule: NoiseSchedule = field(default_factory=lambda: DEFAULT_SCHEDULE)
    eps_channels: int = 3
    name: str = "unnamed"
    info: dict[str, Any] = field(default_factory=dict)
    mean_colour: tuple[float, ...] | None = None  # of its training images, one value per channel in [-1, 1]
    tiling: bool = True  # images larger than the training resolution are processed in tiles
    max_batch: int | None = 16  # images or tiles per network forward (None: all at once)
    channels_last: bool = False  # the network's memory layout (see use_channels_last)
    compiled: Any = field(default=None, repr=False)  # torch.compile of the network (see compile)
    autocast: torch.dtype | None = None  # float16 / bfloat16 mixed precision on a GPU (see load_model)
    reuse: EncoderReuse | None = field(default=None, repr=False)  # see reusing_encoder
    on_forward: Callable[[int], None] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.network.parameters()).dtype

    @property
    def channels(self) -> int:
        """Channels of the images the network takes (its ``in_channels``)."""
        return int(getattr(getattr(self.network, "config", None), "in_channels", 3))

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    @property
    def resolution(self) -> tuple[int, int] | None:
        """(H, W) the network was trained at, or None when the checkpoint does not record it."""
        size = self.image_size
        if size is None:
            return None
        return (size, size) if isinstance(size, int) else tuple(size)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> DiffusionPrior:
        self.network.to(device=device, dtype=dtype)
        return self

    def require_resolution(self) -> tuple[int, int]:
        """The training resolution, or a clear error for checkpoints that do not record it."""
        if self.resolution is None:
            raise CheckpointError(f"{self.name}: the checkpoint does not record its training resolution; "
                                  "give it as image_size in --config / load_model(config=...)")
        return self.resolution

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this for the network's down/up-sampling to line up."""
        levels = len(getattr(getattr(self.network, "config", None), "block_out_channels", (0,)))
        return 2 ** (levels - 1)

    def use_channels_last(self, on: bool = True) -> DiffusionPrior:
        """Run the network in channels-last memory layout (or back): same outputs to float
        tolerance, and on the CPU 1.17-1.55x cheaper calls of the built-in prior (batches 1-32)."""
        self.network.to(memory_format=torch.channels_last if on else torch.contiguous_format)
        self.channels_last = on
        return self

    def compile(self) -> DiffusionPrior:
        """Run the network through ``torch.compile`` (compiled at the first call of each shape).

        Where it cannot compile (no C++ compiler, an unsupported operation), the first call says
        so in one warning and the network runs eagerly from then on. Measured on the 2-core CPU
        with the built-in prior: 1.17x cheaper calls in the default layout, 0.93x (slower) on top
        of channels-last, after 33-54 s of compilation; so it is not a default.
        """
        self.compiled = torch.compile(self.network)
        return self

    @contextmanager
    def reusing_encoder(self, key_calls: int | Sequence[int]) -> Iterator[EncoderReuse]:
        """Within this block, run the UNet's encoder only at key calls and its decoder at every
        call (Faster Diffusion's encoder propagation; see :class:`EncoderReuse`)."""
        reuse = EncoderReuse(self.network, key_calls)
        previous, self.reuse = self.reuse, reuse
        try:
            yield reuse
        finally:
            self.reuse = previous

    def _network(self, x_t: torch.Tensor, t: torch.Tensor):
        if self.autocast is None:
            return self._eager_or_compiled(x_t, t)
        # Autocast, not a cast of the weights: convolutions and matmuls run in half precision
        # while normalisations and the time embedding stay in float32, where half loses digits.
        with torch.autocast(x_t.device.type, dtype=self.autocast):
            return self._eager_or_compiled(x_t, t)

    def _eager_or_compiled(self, x_t: torch.Tensor, t: torch.Tensor):
        if self.reuse is not None:
            return self.reuse(x_t, t)
        if self.compiled is None:
            return self.network(x_t, t)
        try:
            return self.compiled(x_t, t)
        except Exception as error:  # noqa: BLE001 - whatever stopped the compiler, eager still works
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            warnings.warn(f"{self.name}: torch.compile failed ({type(error).__name__}: {message[:200]}); "
                          "running the network without compiling", stacklevel=4)
            self.compiled = None
            return self.network(x_t, t)

    def tiled(self, height: int, width: int) -> bool:
        """Whether an image of this size goes through the network in tiles."""
        return bool(self.tiling and self.image_size) and (height > self.resolution[0] or width > self.resolution[1])

    def tile_grid(self, height: int, width: int) -> tuple[int, int, list[int], list[int]]:
        """Tile height and width, and the tiles' row and column offsets, for an image of this size."""
        tile_h, tile_w = min(self.resolution[0], height), min(self.resolution[1], width)
        return tile_h, tile_w, _tile_starts(height, tile_h), _tile_starts(width, tile_w)

    def tiles_per_image(self, height: int, width: int) -> int:
        """How many tiles one call sees for an image of this size (1 when it is not tiled)."""
        if not self.tiled(height, width):
            return 1
        _, _, rows, cols = self.tile_grid(height, width)
        return len(rows) * len(cols)

    def forward_bytes(self, inputs: int, height: int, width: int, gradient: bool = False) -> int:
        """Memory of one call on ``inputs`` images of ``height`` x ``width`` beyond the images themselves:
        the tiles and their noise predictions, and the activations of the largest forward (at most
        ``max_batch`` images or tiles). A call that is differentiated (DPS, PiGDM) keeps what every
        forward saved for the backward pass: all images or tiles, several times the peak of one."""
        tiled = self.tiled(height, width)
        if tiled:
            tile_h, tile_w, rows, cols = self.tile_grid(height, width)
            inputs *= len(rows) * len(cols)
        else:
            tile_h, tile_w = height + -height % self.size_multiple, width + -width % self.size_multiple
        per_forward = inputs if gradient else min(inputs, self.max_batch or inputs)
        # saved for backward: 3.7 times the inference peak per tile, measured with the built-in prior (memory.md)
        activations = per_forward * _activation_bytes(self.network, tile_h, tile_w) * (5 if gradient else 1)
        tiles = 2 * inputs * self.channels * tile_h * tile_w * 4 if tiled else 0  # the tiles, and their eps, float32
        return activations + tiles

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        adapt_threads()  # as many CPU threads as the other processes leave cores (see ssdiff.threads)
        if not torch.is_tensor(t) or t.ndim == 0:
            t = torch.full((x_t.shape[0],), int(t), device=x_t.device, dtype=torch.long)
        if self.reuse is not None:
            self.reuse.start_call()
        if self.tiled(*x_t.shape[-2:]):
            return self._tiled(x_t, t)
        return self._whole(x_t, t)

    def _tiled(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Epsilon of an image larger than the training resolution, from overlapping tiles of that size.

        Tiles overlap by half; their predictions are blended with a sine window, so the network
        always sees the scale it was trained at and seams do not show (as in MultiDiffusion).
        """
        batch, _, height, width = x_t.shape
        tile_h, tile_w, rows, cols = self.tile_grid(height, width)
        window = torch.outer(_sine_window(tile_h, x_t), _sine_window(tile_w, x_t))
        tiles = torch.cat([x_t[..., r : r + tile_h, c : c + tile_w] for r in rows for c in cols])
        eps_tiles = self._whole(tiles, t.repeat(len(rows) * len(cols)))
        eps = torch.zeros(batch, self.eps_channels, height, width, dtype=x_t.dtype, device=x_t.device)
        weight = torch.zeros(height, width, dtype=x_t.dtype, device=x_t.device)
        for index, (r, c) in enumerate((r, c) for r in rows for c in cols):
            eps[..., r : r + tile_h, c : c + tile_w] += window * eps_tiles[index * batch : (index + 1) * batch]
            weight[r : r + tile_h, c : c + tile_w] += window
        return eps / weight

    def _whole(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.max_batch and x_t.shape[0] > self.max_batch:
            return torch.cat([self._whole(x_t[i : i + self.max_batch], t[i : i + self.max_batch])
                              for i in range(0, x_t.shape[0], self.max_batch)])
        height, width = x_t.shape[-2:]
        # Sides the network cannot take are reflect-padded up to a multiple and the noise
        # prediction cropped back: a reflected noisy image is still a plausible noisy image.
        pad_h, pad_w = -height % self.size_multiple, -width % self.size_multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x_t = F.pad(x_t, (0, pad_w, 0, pad_h), mode=mode)
        if self.channels_last:
            x_t = x_t.contiguous(memory_format=torch.channels_last)
        out = self._network(x_t.to(self.dtype), t.to(x_t.device))
        out = getattr(out, "sample", out).contiguous()  # diffusers returns an output object
        if self.on_forward:
            self.on_forward(x_t.shape[0])
        return out[:, : self.eps_channels, :height, :width].to(x_t.dtype)


def _tile_starts(length: int, tile: int) -> list[int]:
    """Tile offsets covering ``length`` with tiles of ``tile`` that overlap by at least half."""
    if length <= tile:
        return [0]
    stride = max(tile // 2, 1)
    return sorted(set(list(range(0, length - tile, stride)) + [length - tile]))


def _sine_window(length: int, like: torch.Tensor) -> torch.Tensor:
    """A positive bump, largest mid-tile, so overlapping tiles fade into each other."""
    position = (torch.arange(length, dtype=like.dtype, device=like.device) + 0.5) / length
    return torch.sin(torch.pi * position).clamp_min(1e-3)


def _activation_bytes(network: nn.Module, height: int, width: int) -> int:
    """An upper bound of a UNet's memory at its peak for one image of ``height`` x ``width`` (no gradient).

    At each level the encoder keeps ``layers_per_block + 1`` skip tensors for the decoder, which
    concatenates them onto its own and runs a few normalised convolutions on the result; attention
    levels also hold a (pixels x pixels) score matrix per head. Counted in float32, generously.
    """
    config = getattr(network, "config", None)
    channels = list(getattr(config, "block_out_channels", ()) or ())
    if not channels:  # not a UNet2DModel: as many bytes per pixel as a wide network's first level
        return 4 * 8 * 256 * height * width
    layers = getattr(config, "layers_per_block", 2)
    head_dim = getattr(config, "attention_head_dim", None) or 0
    total, largest = 0, 0
    for level, (width_c, block) in enumerate(zip(channels, getattr(config, "down_block_types", ()) or ())):
        pixels = (height >> level) * (width >> level)
        total += (layers + 2) * width_c * pixels
        largest = max(largest, width_c * pixels)
        if block.startswith("Attn"):
            heads = max(1, width_c // head_dim) if head_dim else 1
            total += 2 * heads * pixels * pixels
    return 4 * (2 * total + 12 * largest)
