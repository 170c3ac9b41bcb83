"""Pretrained diffusion networks: presets, converters to diffusers' UNet2DModel, and load_model."""

from .catalog import KNOWN_MODELS, find_known_model
from .convert import CheckpointError, detect_format
from .encoder_reuse import EncoderReuse, EncoderReuseError
from .fetch import fetch_model, verify_checkpoint
from .loading import load_model, read_state_dict, resolve_device
from .prior import DiffusionPrior

__all__ = ["KNOWN_MODELS", "CheckpointError", "DiffusionPrior", "EncoderReuse", "EncoderReuseError", "detect_format", "fetch_model",
           "find_known_model", "load_model", "read_state_dict", "resolve_device", "verify_checkpoint"]
