"""Folders of images as datasets: a slice of the sorted files, square-cropped and resized.

The benchmark's truths, the training set and the tuning faces are all read this way, so that a
``--subset 8000:8200`` means the same files to every command.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .io import InputError, collect_images, crop_square, open_image, resize


def parse_slice(text: str | None) -> slice:
    """``"a:b"`` -> ``slice(a, b)``; None -> everything."""
    if not text:
        return slice(None)
    parts = text.split(":")
    if len(parts) != 2:
        raise InputError(f"subset must look like START:END, got {text!r}")
    start, stop = (int(p) if p.strip() else None for p in parts)
    return slice(start, stop)


def load_folder(folder: str, size: int | tuple[int, int], subset: str | None = None, crop_top: int | None = None,
                limit: int | None = None, progress: bool = False) -> tuple[list[str], torch.Tensor]:
    """The stems and pixels (N x 3 x H x W, uint8) of ``folder``'s images: the sorted files, sliced by
    ``subset`` (``"START:END"``), at most ``limit`` of them, square-cropped (``crop_top`` rows from
    the top, else centred) and resized to ``size``."""
    found = collect_images([folder])
    files = found[parse_slice(subset)][:limit] if limit else found[parse_slice(subset)]
    if not files:
        raise InputError(f"{folder}: --subset {subset or ':'} selects none of its {len(found)} images")
    arrays = [np.asarray(resize(crop_square(open_image(f), crop_top), size).convert("RGB"))
              for f in tqdm(files, desc="loading images", leave=False, disable=not progress)]
    return [f.stem for f in files], torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1]."""
    return images.float() / 127.5 - 1.0
