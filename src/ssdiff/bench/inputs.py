"""What every run restores: the benchmark's images, and each task's operator for a batch of them."""

from __future__ import annotations

import torch

from ..data import load_folder, to_unit_range
from ..operators import get_operator, parse_task
from .specs import BenchConfig


def load_truths(config: BenchConfig, size: tuple[int, int]) -> tuple[list[str], torch.Tensor]:
    """The benchmark images in [-1, 1]: sorted, sliced, limited, square-cropped and resized to the model's size."""
    stems, pixels = load_folder(config.data, size, config.subset, config.crop_top, config.limit)
    return stems, to_unit_range(pixels)


def task_operator(task: str, size: tuple[int, int], images: list[int]):
    """The operator of a benchmark task for a batch of the benchmark's images (by index): a task
    with a set of kernels (``deblur_motion``) blurs image ``i`` with kernel ``i mod n``."""
    base, params = parse_task(task)
    if isinstance(params.get("kernel"), list):
        params["kernel"] = [params["kernel"][i % len(params["kernel"])] for i in images]
    return get_operator(base, image_size=size, **params)
