"""Realism against real images: FID and KID's reference set, and Inception features cached on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path, tensor_to_uint8
from .inputs import load_truths
from .specs import BenchConfig


def fid_reference(config: BenchConfig, stems: list[str], truths: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """The real images FID and KID compare against: ``config.fid_reference`` (a slice of the data
    folder, e.g. ``8000:9000``, prepared as the benchmark's images), else the benchmark's truths."""
    if not config.fid_reference:
        return stems, truths
    return load_truths(replace(config, subset=config.fid_reference, limit=None), tuple(truths.shape[-2:]))


def cached_features(path: Path, images: torch.Tensor, weights: str | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Inception features of ``images``, kept in ``path`` under a digest of their 8-bit pixels and
    the network file, and recomputed when either changes."""
    pixels = b"".join(tensor_to_uint8(image).tobytes() for image in images)
    digest = hashlib.sha256(pixels + str(weights).encode()).hexdigest()
    if path.is_file():
        with np.load(path) as kept:
            if str(kept["digest"]) == digest:
                return kept["features"]
    features = compute()
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        np.savez(handle, digest=np.array(digest), features=features)
    return features
