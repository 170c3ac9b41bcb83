"""State-dict converters: OpenAI guided-diffusion (ADM) and DDPM/SDEdit ``Model`` -> diffusers ``UNet2DModel``.

Both reference architectures map onto ``UNet2DModel`` layer for layer; what differs is naming
and a few representation details that this module handles in one place each:

- 1x1 convolutions of the attention layers become linear layers (squeeze the kernel);
- ADM's fused ``qkv`` uses the "legacy" layout: per head, q, k and v blocks of ``head_dim``;
- time embeddings: ADM is ``[cos, sin]`` with frequencies ``10000^(-i/half)`` (flip_sin_to_cos,
  shift 0); DDPM is ``[sin, cos]`` with ``10000^(-i/(half-1))`` (no flip, shift 1);
- norm eps: ADM's GroupNorm32 uses 1e-5, DDPM's ``Normalize`` 1e-6;
- downsampling: DDPM pads (0, 1, 0, 1) and convolves with no padding (``downsample_padding=0``),
  ADM's conv downsampling pads 1; ADM with ``resblock_updown`` resamples inside ResBlocks
  (average pooling / nearest upsampling), which is diffusers' ``downsample_type="resnet"``.

Each converter consumes every key of the source exactly once and fills every key of the
target, or raises :class:`CheckpointError` listing the missing and unexpected keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

StateDict = dict[str, torch.Tensor]


class ConvertedState(dict):
    """A converted state dict that remembers, for every diffusers key, the source key it comes from."""

    def __init__(self, tensors: StateDict, origin: dict[str, str]):
        super().__init__(tensors)
        self.origin = origin


class CheckpointError(ValueError):
    """A checkpoint does not match the architecture it is loaded as."""


def _format_keys(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def detect_format(state_dict: Mapping[str, Any]) -> str:
    """``"openai"``, ``"ddpm"`` or ``"diffusers"`` from the key names, else :class:`CheckpointError`."""
    keys = set(state_dict)
    if "input_blocks.0.0.weight" in keys and any(k.startswith("time_embed.") for k in keys):
        return "openai"
    if "temb.dense.0.weight" in keys and "conv_in.weight" in keys:
        return "ddpm"
    if "time_embedding.linear_1.weight" in keys and "conv_in.weight" in keys:
        return "diffusers"
    sample = _format_keys(sorted(keys), 5)
    raise CheckpointError(f"unknown architecture: keys match neither OpenAI guided-diffusion, DDPM/SDEdit nor diffusers ({sample})")


# --------------------------------------------------------------------------------------------
# Configurations: infer the reference config from shapes, and translate it to UNet2DModel's.
# --------------------------------------------------------------------------------------------

def _levels(keys: set[str], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in keys if (m := re.match(pattern, k))})


def infer_ddpm_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The DDPM ``Model`` arguments (reference names) that produce these keys and shapes."""
    keys = set(state_dict)
    ch = state_dict["conv_in.weight"].shape[0]
    levels = _levels(keys, r"down\.(\d+)\.block\.")
    blocks = _levels(keys, r"down\.0\.block\.(\d+)\.")
    ch_mult = [state_dict[f"down.{i}.block.0.conv1.weight"].shape[0] // ch for i in levels]
    image_size = None
    attn_levels = [i for i in levels if f"down.{i}.attn.0.q.weight" in keys]
    return {
        "ch": ch,
        "out_ch": state_dict["conv_out.weight"].shape[0],
        "ch_mult": ch_mult,
        "num_res_blocks": len(blocks),
        "attn_levels": attn_levels,  # resolution-free form; attn_resolutions needs image_size
        "dropout": 0.0,
        "in_channels": state_dict["conv_in.weight"].shape[1],
        "image_size": image_size,
        "resamp_with_conv": f"down.{levels[0]}.downsample.conv.weight" in keys,
    }


def ddpm_attention_levels(config: Mapping[str, Any]) -> list[int]:
    """Levels (0 = full resolution) that carry attention, from ``attn_resolutions`` or ``attn_levels``."""
    if "attn_levels" in config and config["attn_levels"] is not None:
        return list(config["attn_levels"])
    size = config["image_size"]
    return [i for i in range(len(config["ch_mult"])) if size // 2**i in set(config["attn_resolutions"])]


def _unet_levels(image_size: int | None, in_channels: int, out_channels: int, base: int, mult: list[int],
                 res_blocks: int, attention: set[int], plain: tuple[str, str]) -> dict[str, Any]:
    """The level structure both reference UNets share: widths, blocks, and where attention is."""
    levels = range(len(mult))
    return {
        "sample_size": image_size,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "block_out_channels": [base * m for m in mult],
        "layers_per_block": res_blocks,
        "down_block_types": ["AttnDownBlock2D" if lv in attention else plain[0] for lv in levels],
        "up_block_types": ["AttnUpBlock2D" if lv in attention else plain[1] for lv in reversed(levels)],
    }


def ddpm_unet_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """UNet2DModel keyword arguments equivalent to a DDPM/SDEdit ``Model`` config."""
    if not config.get("resamp_with_conv", True):
        raise CheckpointError("DDPM models without resampling convolutions are not supported")
    return {
        **_unet_levels(config.get("image_size"), config.get("in_channels", 3), config["out_ch"], config["ch"],
                       config["ch_mult"], config["num_res_blocks"], set(ddpm_attention_levels(config)),
                       ("DownBlock2D", "UpBlock2D")),
        "attention_head_dim": None,  # one head spanning all channels
        "norm_num_groups": 32,
        "norm_eps": 1e-6,
        "downsample_padding": 0,
        "flip_sin_to_cos": False,
        "freq_shift": 1,
        "dropout": config.get("dropout", 0.0),
    }


def infer_openai_config(state_dict: Mapping[str, torch.Tensor], num_head_channels: int = 64) -> dict[str, Any]:
    """The guided-diffusion ``UNetModel`` arguments (reference names) for these keys and shapes.

    The number of attention heads and the qkv order leave no trace in the weights:
    ``num_head_channels`` (64 in both public checkpoints) and the legacy order are assumed
    unless a config says otherwise. The resolution is not recorded either (``image_size`` None).
    """
    keys = set(state_dict)
    model_channels = state_dict["input_blocks.0.0.weight"].shape[0]
    num_out = len(_levels(keys, r"output_blocks\.(\d+)\."))

    def has_upsampler(k: int) -> bool:
        return any(f"output_blocks.{k}.{j}.{leaf}" in keys for j in (1, 2) for leaf in ("in_layers.0.weight", "conv.weight"))

    upsampling = [k for k in range(num_out) if has_upsampler(k)]
    num_res_blocks = upsampling[0] if upsampling else num_out - 1
    num_levels = num_out // (num_res_blocks + 1)
    first = [1 + level * (num_res_blocks + 1) for level in range(num_levels)]
    emb_out = state_dict["input_blocks.1.0.emb_layers.1.weight"].shape[0]
    updown = num_levels > 1 and f"input_blocks.{num_res_blocks + 1}.0.in_layers.0.weight" in keys
    return {
        "image_size": None,
        "in_channels": state_dict["input_blocks.0.0.weight"].shape[1],
        "model_channels": model_channels,
        "out_channels": state_dict["out.2.weight"].shape[0],
        "num_res_blocks": num_res_blocks,
        "attention_resolutions": [2**lv for lv, b in enumerate(first) if f"input_blocks.{b}.1.qkv.weight" in keys],
        "dropout": 0.0,
        "channel_mult": [state_dict[f"input_blocks.{b}.0.out_layers.3.weight"].shape[0] // model_channels for b in first],
        "conv_resample": updown or num_levels < 2 or f"input_blocks.{num_res_blocks + 1}.0.op.weight" in keys,
        "dims": 2,
        "num_head_channels": num_head_channels,
        "num_heads_upsample": -1,
        "use_scale_shift_norm": emb_out == 2 * state_dict["input_blocks.1.0.out_layers.3.weight"].shape[0],
        "resblock_updown": updown,
        "use_new_attention_order": False,
    }


def openai_head_dim(config: Mapping[str, Any]) -> int:
    """Channels per attention head; UNet2DModel needs one value for every attention layer."""
    if config.get("num_head_channels", -1) != -1:
        return config["num_head_channels"]
    mult = config["channel_mult"]
    attn_channels = {config["model_channels"] * mult[lv] for lv in range(len(mult)) if 2**lv in config["attention_resolutions"]}
    attn_channels.add(config["model_channels"] * mult[-1])  # the middle block
    heads = {config.get("num_heads", 1)}
    if config.get("num_heads_upsample", -1) not in (-1, config.get("num_heads", 1)):
        heads.add(config["num_heads_upsample"])
    dims = {c // h for c in attn_channels for h in heads}
    if len(dims) != 1:
        raise CheckpointError("this OpenAI UNet uses a fixed head count over levels of different width, "
                              "which diffusers' UNet2DModel cannot represent")
    return dims.pop()


def openai_unet_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """UNet2DModel keyword arguments equivalent to a guided-diffusion ``UNetModel`` config."""
    if config.get("dims", 2) != 2:
        raise CheckpointError("only 2-D OpenAI UNets are supported")
    updown = config.get("resblock_updown", False)
    if not updown and not config.get("conv_resample", True):
        raise CheckpointError("OpenAI UNets with parameter-free resampling are not supported")
    attention = {lv for lv in range(len(config["channel_mult"])) if 2**lv in set(config["attention_resolutions"])}
    plain = ("ResnetDownsampleBlock2D", "ResnetUpsampleBlock2D") if updown else ("DownBlock2D", "UpBlock2D")
    return {
        **_unet_levels(config.get("image_size"), config.get("in_channels", 3), config["out_channels"],
                       config["model_channels"], config["channel_mult"], config["num_res_blocks"], attention, plain),
        "downsample_type": "resnet" if updown else "conv",
        "upsample_type": "resnet" if updown else "conv",
        "attention_head_dim": openai_head_dim(config),
        "norm_num_groups": 32,
        "attn_norm_num_groups": 32,
        "norm_eps": 1e-5,
        "resnet_time_scale_shift": "scale_shift" if config.get("use_scale_shift_norm", False) else "default",
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "dropout": config.get("dropout", 0.0),
    }


# --------------------------------------------------------------------------------------------
# Key mapping.
# --------------------------------------------------------------------------------------------

DDPM_RESNET = {"norm1": "norm1", "conv1": "conv1", "temb_proj": "time_emb_proj", "norm2": "norm2",
               "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
DDPM_ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
OPENAI_RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
                 "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
OPENAI_ATTENTION = {"norm": "group_norm", "proj_out": "to_out.0"}  # qkv is split separately
ATTENTION_LINEAR = ("to_q", "to_k", "to_v", "to_out.0")


class _Converter:
    """Moves tensors from a source state dict to diffusers names, remembering what it consumed."""

    def __init__(self, source: Mapping[str, torch.Tensor]):
        self.source = source
        self.target: StateDict = {}
        self.used: set[str] = set()
        self.origin: dict[str, str] = {}  # diffusers key -> source key, also for absent sources

    def take(self, key: str) -> torch.Tensor:
        if key not in self.source:
            raise CheckpointError(f"checkpoint is missing key {key}")
        self.used.add(key)
        return self.source[key]

    def put(self, key: str, tensor: torch.Tensor) -> None:
        # 1x1 convolutions of attention layers are linear layers in diffusers.
        if tensor.ndim > 2 and any(f".{name}." in key for name in ATTENTION_LINEAR):
            tensor = tensor.reshape(tensor.shape[0], -1)
        self.target[key] = tensor

    def rename(self, src: str, dst: str, names: Mapping[str, str]) -> None:
        """Copy ``src.<a>.{weight,bias}`` to ``dst.<names[a]>.{weight,bias}`` for every ``a`` present."""
        for old, new in names.items():
            for leaf in ("weight", "bias"):
                key = ".".join(p for p in (src, old, leaf) if p)
                target = ".".join(p for p in (dst, new, leaf) if p)
                self.origin[target] = key
                if key in self.source:
                    self.put(target, self.take(key))

    def split_qkv(self, src: str, dst: str, head_dim: int, legacy: bool) -> None:
        """ADM's fused qkv -> to_q, to_k, to_v. Legacy order interleaves per head: [q_h, k_h, v_h] blocks."""
        for leaf in ("weight", "bias"):
            fused = self.take(f"{src}.qkv.{leaf}")
            channels = fused.shape[0] // 3
            if legacy:
                parts = fused.reshape(channels // head_dim, 3, head_dim, *fused.shape[1:]).unbind(1)
            else:
                parts = fused.reshape(3, channels, *fused.shape[1:]).unbind(0)
            for name, part in zip(("to_q", "to_k", "to_v"), parts):
                self.origin[f"{dst}.{name}.{leaf}"] = f"{src}.qkv.{leaf}"
                self.put(f"{dst}.{name}.{leaf}", part.reshape(channels, *fused.shape[1:]))

    def unused(self) -> list[str]:
        return sorted(set(self.source) - self.used)


def convert_ddpm(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> StateDict:
    """DDPM/SDEdit ``Model`` state dict -> UNet2DModel state dict (see :func:`ddpm_unet_config`)."""
    c = _Converter(state_dict)
    levels, blocks = len(config["ch_mult"]), config["num_res_blocks"]
    attn = set(ddpm_attention_levels(config))
    c.rename("temb", "time_embedding", {"dense.0": "linear_1", "dense.1": "linear_2"})
    c.rename("", "", {"conv_in": "conv_in", "norm_out": "conv_norm_out", "conv_out": "conv_out"})
    for i in range(levels):
        for j in range(blocks):
            c.rename(f"down.{i}.block.{j}", f"down_blocks.{i}.resnets.{j}", DDPM_RESNET)
            if i in attn:
                c.rename(f"down.{i}.attn.{j}", f"down_blocks.{i}.attentions.{j}", DDPM_ATTENTION)
        if i != levels - 1:
            c.rename(f"down.{i}.downsample", f"down_blocks.{i}.downsamplers.0", {"conv": "conv"})
    c.rename("mid.block_1", "mid_block.resnets.0", DDPM_RESNET)
    c.rename("mid.attn_1", "mid_block.attentions.0", DDPM_ATTENTION)
    c.rename("mid.block_2", "mid_block.resnets.1", DDPM_RESNET)
    for i in range(levels):
        u = levels - 1 - i
        for j in range(blocks + 1):
            c.rename(f"up.{i}.block.{j}", f"up_blocks.{u}.resnets.{j}", DDPM_RESNET)
            if i in attn:
                c.rename(f"up.{i}.attn.{j}", f"up_blocks.{u}.attentions.{j}", DDPM_ATTENTION)
        if i != 0:
            c.rename(f"up.{i}.upsample", f"up_blocks.{u}.upsamplers.0", {"conv": "conv"})
    return _finish(c)


def convert_openai(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> StateDict:
    """Guided-diffusion ``UNetModel`` state dict -> UNet2DModel state dict (see :func:`openai_unet_config`)."""
    c = _Converter(state_dict)
    levels, blocks = len(config["channel_mult"]), config["num_res_blocks"]
    attn = {lv for lv in range(levels) if 2**lv in set(config["attention_resolutions"])}
    updown = config.get("resblock_updown", False)
    head_dim, legacy = openai_head_dim(config), not config.get("use_new_attention_order", False)

    def attention(src: str, dst: str) -> None:
        c.rename(src, dst, OPENAI_ATTENTION)
        c.split_qkv(src, dst, head_dim, legacy)

    c.rename("time_embed", "time_embedding", {"0": "linear_1", "2": "linear_2"})
    c.rename("", "", {"input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"})
    for lv in range(levels):
        for j in range(blocks):
            b = 1 + lv * (blocks + 1) + j
            c.rename(f"input_blocks.{b}.0", f"down_blocks.{lv}.resnets.{j}", OPENAI_RESNET)
            if lv in attn:
                attention(f"input_blocks.{b}.1", f"down_blocks.{lv}.attentions.{j}")
        if lv != levels - 1:
            b = 1 + lv * (blocks + 1) + blocks
            if updown:
                c.rename(f"input_blocks.{b}.0", f"down_blocks.{lv}.downsamplers.0", OPENAI_RESNET)
            else:
                c.rename(f"input_blocks.{b}.0", f"down_blocks.{lv}.downsamplers.0", {"op": "conv"})
    c.rename("middle_block.0", "mid_block.resnets.0", OPENAI_RESNET)
    attention("middle_block.1", "mid_block.attentions.0")
    c.rename("middle_block.2", "mid_block.resnets.1", OPENAI_RESNET)
    for u in range(levels):
        lv = levels - 1 - u
        for j in range(blocks + 1):
            k = u * (blocks + 1) + j
            c.rename(f"output_blocks.{k}.0", f"up_blocks.{u}.resnets.{j}", OPENAI_RESNET)
            if lv in attn:
                attention(f"output_blocks.{k}.1", f"up_blocks.{u}.attentions.{j}")
            if lv != 0 and j == blocks:
                src = f"output_blocks.{k}.{2 if lv in attn else 1}"
                names = OPENAI_RESNET if updown else {"conv": "conv"}
                c.rename(src, f"up_blocks.{u}.upsamplers.0", names)
    return _finish(c)


def _finish(converter: _Converter) -> StateDict:
    unused = converter.unused()
    if unused:
        raise CheckpointError(f"checkpoint has {len(unused)} unexpected key(s) for this architecture: {_format_keys(unused)}")
    return ConvertedState(converter.target, converter.origin)


def check_keys(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointError` naming missing/unexpected keys and shape mismatches.

    Keys are named as the checkpoint names them when the state dict was converted.
    """
    expected = model.state_dict()
    origin = getattr(state_dict, "origin", {})
    missing = sorted(origin.get(k, k) for k in set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{origin.get(k, k)} {tuple(state_dict[k].shape)} != {tuple(expected[k].shape)}"
             for k in sorted(set(expected) & set(state_dict)) if state_dict[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_format_keys(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_format_keys(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {_format_keys(wrong, 4)}")
    if problems:
        raise CheckpointError("checkpoint does not match the network: " + "; ".join(problems))
