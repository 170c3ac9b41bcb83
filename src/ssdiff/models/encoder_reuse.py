"""Encoder propagation (Li et al. 2023, "Faster Diffusion: Rethinking the Role of UNet Encoder in
Diffusion Models", Sec. 3.2): the UNet's encoder features change little from one sampling step to
the next while its decoder's do, so the encoder (input convolution, down blocks, mid block) runs
only at *key* calls; the calls in between run the decoder alone on the last key call's features,
with their own time embedding.

A decoder-only call does not see its input ``x_t``: its noise prediction is the decoder's reading
of the last key call's features at the new time step. Solvers still use ``x_t`` in the update, so
back-projected data stays in the sample; what is lost is the network's response to it until the
next key call. The quality cost is measured in ``benchmarks/speed.md``.

diffusers' ``UNet2DModel`` has no way to run its halves apart, so :func:`encode` and
:func:`decode` follow its ``forward`` step for step (score-SDE's skip-sample blocks, Fourier time
embeddings and class conditioning are not supported: no checkpoint ssdiff loads uses them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class EncoderReuseError(ValueError):
    """The network cannot be split into an encoder and a decoder."""


def check_splittable(network: nn.Module) -> None:
    """Raise :class:`EncoderReuseError` unless ``network`` is a UNet2DModel that :func:`encode` and
    :func:`decode` can run in halves."""
    config = getattr(network, "config", None)
    blocks = (getattr(network, "down_blocks", None), getattr(network, "up_blocks", None))
    if config is None or any(b is None for b in blocks) or not hasattr(network, "time_embedding"):
        raise EncoderReuseError(f"encoder reuse needs a diffusers UNet2DModel, not {type(network).__name__}")
    unsupported = [name for name, bad in (
        ("skip-sample blocks", any(hasattr(b, "skip_conv") for block in blocks for b in block)),
        ("Fourier time embedding", config.time_embedding_type == "fourier"),
        ("class conditioning", getattr(network, "class_embedding", None) is not None),
        ("input centring", config.center_input_sample)) if bad]
    if unsupported:
        raise EncoderReuseError(f"encoder reuse does not support this UNet's {', '.join(unsupported)}")


def time_embedding(network: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """The UNet's embedding of integer time steps ``t`` (length B)."""
    return network.time_embedding(network.time_proj(t).to(dtype=network.dtype))


def encode(network: nn.Module, x_t: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The encoder half: the mid block's output and the skip features the decoder consumes."""
    h = network.conv_in(x_t)
    skips = (h,)
    for block in network.down_blocks:
        h, res = block(hidden_states=h, temb=emb)
        skips += res
    if network.mid_block is not None:
        h = network.mid_block(h, emb)
    return h, skips


def decode(network: nn.Module, h: torch.Tensor, skips: tuple[torch.Tensor, ...], emb: torch.Tensor) -> torch.Tensor:
    """The decoder half: up blocks over the skip features, then the output layers."""
    for block in network.up_blocks:
        count = len(block.resnets)
        h = block(h, skips[-count:], emb)
        skips = skips[:-count]
    return network.conv_out(network.conv_act(network.conv_norm_out(h)))


def key_calls(every: int, budget: int) -> list[int]:
    """The key calls of a restoration of ``budget`` calls: every ``every``-th call, and each call of
    the last quarter of the budget, whose small time steps set the fine detail. On SSD@30 (SR x4,
    16 training faces) placing the decoder-only calls early kept 0.9 dB that the same number of
    calls spread evenly lost (benchmarks/speed.md)."""
    if every < 1:
        raise EncoderReuseError(f"reuse_encoder must be a positive call interval, got {every}")
    last = budget - max(1, budget // 4)
    return [call for call in range(budget) if call % every == 0 or call >= last]


class EncoderReuse:
    """Runs a UNet with its encoder at key calls only (see the module's docstring).

    ``key_calls`` is either an int ``k`` (the encoder runs at calls 0, k, 2k, ...) or the indices
    of the key calls (call 0 is always one). A call of a prior may take several forwards (batches
    bounded by ``max_batch``, tiles); each forward's features are kept apart, and a forward whose
    input shape does not match what was kept runs whole and becomes the new key. ``encoder_calls``
    and ``decoder_calls`` count the prior calls of each kind. The network's ``torch.compile``
    (:meth:`DiffusionPrior.compile`) is not used for the halves: they run eagerly.
    """

    def __init__(self, network: nn.Module, key_calls: int | Sequence[int]) -> None:
        check_splittable(network)
        if isinstance(key_calls, int):
            if key_calls < 1:
                raise EncoderReuseError(f"reuse_encoder must be a positive call interval, got {key_calls}")
            self.is_key = lambda call: call % key_calls == 0
        else:
            keys = {int(c) for c in key_calls} | {0}
            self.is_key = keys.__contains__
        self.network = network
        self.call = -1
        self.encoder_calls = 0
        self.decoder_calls = 0
        self._forward = 0
        self._features: list[tuple[torch.Size, torch.Tensor, tuple[torch.Tensor, ...]]] = []
        self._encoded_this_call = False
        self._counted_as_decoder = False

    def start_call(self) -> None:
        """Called by the prior once per call, before its forwards."""
        self.call += 1
        self._forward = 0
        self._encoded_this_call = self.is_key(self.call)
        if self._encoded_this_call:
            self._features = []
            self.encoder_calls += 1
        else:
            self.decoder_calls += 1
        self._counted_as_decoder = not self._encoded_this_call

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        index, self._forward = self._forward, self._forward + 1
        emb = time_embedding(self.network, t)
        kept = self._features[index] if index < len(self._features) else None
        if self._encoded_this_call or kept is None or kept[0] != x_t.shape:
            if self._counted_as_decoder:  # a shape change: this call ran the encoder after all
                self.decoder_calls, self.encoder_calls, self._counted_as_decoder = self.decoder_calls - 1, self.encoder_calls + 1, False
            h, skips = encode(self.network, x_t, emb)
            if kept is None:
                self._features.append((x_t.shape, h, skips))
            else:  # a key call, or a shape change mid-run: this forward's features start over
                self._features[index] = (x_t.shape, h, skips)
        else:
            _, h, skips = kept
        return decode(self.network, h, skips, emb)
