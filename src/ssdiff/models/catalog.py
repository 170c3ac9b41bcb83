"""The known models: the two public checkpoints ssdiff is built to reproduce, and the built-in prior
(named networks; not to be confused with ``ssd-fast``'s tuned presets, :mod:`ssdiff.solvers.fast`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FaceTemplate:
    """Where OpenCV's frontal-face cascade puts its box on a face prior's own training images, in the
    prior's frame (``size`` x ``size`` pixels; continuous coordinates, pixel i spans [i, i+1))."""

    size: int
    center: tuple[float, float]  # box centre (x, y), median over the training faces
    width: float  # box side, median


@dataclass(frozen=True)
class KnownModel:
    """A known network: its format, the reference code's configuration, and where its weights come from."""

    name: str
    format: str  # "openai" | "ddpm" | "diffusers"
    config: dict[str, Any]
    description: str
    filename: str | None = None  # the public file name users download
    source: str | None = None  # where users get it
    url: str | None = None  # where ``ssdiff models fetch`` downloads it from (the authors' own release link)
    num_params: int | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    face_template: FaceTemplate | None = None  # face priors: how their training faces are framed
    # the mean colour (R, G, B in [-1, 1]) of the images it was trained on, for start="mean-colour"
    mean_colour: tuple[float, float, float] | None = None


OPENAI_256_UNCOND = KnownModel(
    name="openai-256-uncond",
    format="openai",
    config={
        "image_size": 256, "in_channels": 3, "model_channels": 256, "out_channels": 6,
        "num_res_blocks": 2, "attention_resolutions": [8, 16, 32], "dropout": 0.0,
        "channel_mult": [1, 1, 2, 2, 4, 4], "conv_resample": True, "dims": 2,
        "num_head_channels": 64, "num_heads_upsample": 4,
        "use_scale_shift_norm": True, "resblock_updown": True, "use_new_attention_order": False,
    },
    description="OpenAI guided-diffusion ImageNet 256x256 unconditional (ADM), learned sigma",
    filename="256x256_diffusion_uncond.pt",
    source="https://github.com/openai/guided-diffusion (model card: 256x256_diffusion_uncond.pt)",
    # the download link of guided-diffusion's README
    url="https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
    num_params=552_814_086,
    aliases=("256x256_diffusion_uncond", "imagenet256"),
    # ImageNet's per-channel mean (0.485, 0.456, 0.406), as torchvision documents it, mapped to [-1, 1]
    mean_colour=(-0.030, -0.088, -0.188),
)

SDEDIT_CELEBA_HQ_256 = KnownModel(
    name="celeba-hq-256",
    format="ddpm",
    config={
        "ch": 128, "out_ch": 3, "ch_mult": [1, 1, 2, 2, 4, 4], "num_res_blocks": 2,
        "attn_resolutions": [16], "dropout": 0.0, "in_channels": 3, "image_size": 256,
        "resamp_with_conv": True,
    },
    description="DDPM CelebA-HQ 256x256 as released with SDEdit and used by DDRM, DDNM and SSD",
    filename="celeba_hq.ckpt",
    source="the SDEdit release (celeba_hq.ckpt), also linked from the DDRM/DDNM/SSD READMEs",
    # SDEdit's README link; DDRM's and DDNM's runners download the file from the same address
    url="https://image-editing-test-12345.s3-us-west-2.amazonaws.com/checkpoints/celeba_hq.ckpt",
    num_params=113_673_219,
    aliases=("celeba_hq", "sdedit-celeba-hq"),
)

# The built-in prior: a small diffusers UNet2DModel sized for CPU (about 40 ms per 64x64 call
# on 2 cores); attention only at the two coarsest levels, where it is cheap.
CELEBA64_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [32, 64, 96, 128],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "attention_head_dim": 32,
    "norm_num_groups": 16,
    "dropout": 0.0,
}

CELEBA64 = KnownModel(
    name="celeba64",
    format="diffusers",
    config=CELEBA64_UNET_CONFIG,
    description="built-in 64x64 face prior trained by ssdiff on CelebA (see docs/model_card_celeba64.md)",
    aliases=("builtin", "default"),
    # measured on training faces 000001..001500 by benchmarks/face_template.py (its output: face_template.txt)
    face_template=FaceTemplate(size=64, center=(32.0, 37.5), width=37.7),
    # measured on its training faces 000001..008000 by benchmarks/mean_colour.py (mean_colour.txt)
    mean_colour=(0.0163, -0.1552, -0.2460),
)

KNOWN_MODELS: dict[str, KnownModel] = {p.name: p for p in (CELEBA64, OPENAI_256_UNCOND, SDEDIT_CELEBA_HQ_256)}


def find_known_model(name: str) -> KnownModel | None:
    """The model called ``name`` (or one of its aliases), else None."""
    for model in KNOWN_MODELS.values():
        if name == model.name or name in model.aliases:
            return model
    return None


@cache
def manifests() -> dict[str, dict[str, Any]]:
    """The key manifests of the public checkpoints, by model name (``models/manifests.json``): the
    file name, the reference configuration, the parameter count, and every state-dict key with its
    shape, read from the public files; what a downloaded file is checked against."""
    return json.loads((resources.files("ssdiff") / "models" / "manifests.json").read_text())


def manifest_of(model: KnownModel) -> dict[str, Any] | None:
    """The key manifest of a known model (None for one without a public file, such as the built-in prior)."""
    return manifests().get(model.name)


def builtin_weights_dir() -> Path:
    """The folder inside the installed package that holds the built-in prior (a diffusers folder)."""
    return Path(str(resources.files("ssdiff") / "weights"))
