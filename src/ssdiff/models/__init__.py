"""Pretrained diffusion networks: presets, converters to diffusers' UNet2DModel, and load_model."""

from .convert import CheckpointError, detect_format
from .encoder_reuse import EncoderReuse, EncoderReuseError
from .loading import load_model, read_state_dict, resolve_device
from .presets import PRESETS, find_preset
from .prior import DiffusionPrior

__all__ = ["PRESETS", "CheckpointError", "DiffusionPrior", "EncoderReuse", "EncoderReuseError", "detect_format", "find_preset", "load_model",
           "read_state_dict", "resolve_device"]
