"""Attention injection, the third mechanism of SSD's first version (arXiv 2305.16965v1, Sec. 3.3).

During DA inversion the self-attention maps ``softmax(Q K^T / sqrt(d))`` of chosen attention
layers are stored at every inversion step; during generation, at the steps whose time step
matches a stored one, the maps computed from the current features are replaced by the stored
ones (as Prompt-to-Prompt does), so that the layout of the input carries into the output.

It works through diffusers' attention-processor API: every chosen ``Attention`` module gets a
processor (``Attention.set_processor``) that runs diffusers' own ``AttnProcessor`` and
intercepts only its attention probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor

from ..operators import LinearOperator
from .common import EpsPrior, Restoration
from .ssd import split_budget, ssd

LAYER_GROUPS = {"up": ("up_blocks.",), "mid": ("mid_block.",), "down": ("down_blocks.",),
                "decoder": ("up_blocks.", "mid_block."), "all": ("",)}


class _InterceptingProcessor(AttnProcessor):
    """diffusers' reference attention, with the probabilities routed through the injector."""

    def __init__(self, injector: AttentionInjector, name: str):
        self.injector, self.name = injector, name

    def __call__(self, attn, hidden_states, *args, **kwargs):
        compute = attn.get_attention_scores

        def scores(query, key, attention_mask=None):
            return self.injector.route(self.name, compute(query, key, attention_mask))

        attn.get_attention_scores = scores
        try:
            return super().__call__(attn, hidden_states, *args, **kwargs)
        finally:
            del attn.get_attention_scores  # back to the class's method


class AttentionInjector:
    """Stores attention maps during inversion and injects them during generation.

    ``layers`` chooses the attention layers: "up" (decoder, the default), "mid", "decoder"
    (up + mid), "down" or "all". ``steps`` chooses which inversion steps (by index, 0 = the
    first, at t = 0) have their maps injected; None injects at every aligned step.
    """

    def __init__(self, network: torch.nn.Module, layers: str = "up", steps: Sequence[int] | None = None):
        if not isinstance(network, torch.nn.Module):
            raise TypeError("attention injection needs a diffusers network (a loaded DiffusionPrior)")
        if layers not in LAYER_GROUPS:
            raise ValueError(f"unknown layer group {layers!r}; choose from {', '.join(LAYER_GROUPS)}")
        self.steps = None if steps is None else set(steps)
        self.modules = {name: module for name, module in network.named_modules()
                        if isinstance(module, Attention) and name.startswith(LAYER_GROUPS[layers])}
        if not self.modules:
            raise ValueError(f"the network has no attention layers in group {layers!r}")
        self.store: dict[int, dict[str, torch.Tensor]] = {}
        self.mode, self.t = "off", None
        self.injected = 0

    def hook(self, phase: str, index: int, t: int, x: torch.Tensor) -> None:
        """Called before every network evaluation of the SSD loop (``ssd(callback=...)``)."""
        self.t = t
        if phase == "inversion":
            self.mode = "store" if self.steps is None or index in self.steps else "off"
        else:
            self.mode = "inject" if t in self.store else "off"

    def route(self, name: str, probs: torch.Tensor) -> torch.Tensor:
        if self.mode == "store":
            self.store.setdefault(self.t, {})[name] = probs.detach()
        elif self.mode == "inject" and name in self.store[self.t]:
            stored = self.store[self.t][name]
            if stored.shape == probs.shape:
                self.injected += 1
                return stored.to(probs.dtype)
        return probs

    @contextmanager
    def attached(self) -> Iterator[AttentionInjector]:
        """Install the intercepting processors on the chosen layers; restore the originals after."""
        original = {name: module.processor for name, module in self.modules.items()}
        for name, module in self.modules.items():
            module.set_processor(_InterceptingProcessor(self, name))
        try:
            yield self
        finally:
            for name, module in self.modules.items():
                module.set_processor(original[name])


def ssd_attention_injection(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, inject_layers: str = "up",
                            inject_steps: list[int] | None | str = "released", **kwargs: Any) -> Restoration:
    """SSD with attention injection: maps stored at the inversion steps replace the generation's
    maps at the same time steps (``inject_layers``: up, mid, decoder, down, all; ``inject_steps``:
    indices of the inversion steps whose maps are used, default 2 and 3 as the released code's
    ``--aligned_timestep 2 3``, those of them that the budget's inversion has; None uses all)."""
    forward = kwargs.get("forward_steps") or split_budget(kwargs.get("nfe", 30))[0]
    evaluated = forward - 1  # the inversion evaluates the network at its first forward - 1 steps
    if inject_steps == "released":
        inject_steps = [i for i in (2, 3) if i < evaluated]
    if inject_steps is not None and any(not 0 <= int(i) < evaluated for i in inject_steps):
        raise ValueError(f"inject_steps {list(inject_steps)} out of range: this budget's inversion evaluates the "
                         f"network at steps 0..{evaluated - 1}")
    injector = AttentionInjector(getattr(prior, "network", None), inject_layers, inject_steps)
    with injector.attached():
        result = ssd(prior, operator, y, callback=injector.hook, **{"align_steps": True, **kwargs})
    result.extras.update(injected_maps=injector.injected, inject_layers=inject_layers,
                         inject_steps=None if inject_steps is None else list(inject_steps))
    return result
