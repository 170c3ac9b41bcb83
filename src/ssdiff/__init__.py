"""ssdiff: zero-shot image restoration with pretrained diffusion models (Shortcut Sampling for Diffusion)."""

__version__ = "0.1.0"
