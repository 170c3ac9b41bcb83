"""A user's task and its options as operators: built for whatever size each image has (cached for
the last few sizes), and for a real photo the operator that made it, whose restoration
:func:`photo_frame` cuts back to the photo's frame. Unknown tasks, options and kernels fail when
the task is given, before any work."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from .operators import (
    LinearOperator,
    OperatorError,
    ValidBlur,
    check_task,
    get_operator,
    make_kernel,
    parse_task,
    task_scale,
    valid_image_size,
)


@dataclass
class TaskSpec:
    """A task and its options, building operators for any image size (cached per size)."""

    task: str
    params: dict[str, Any]
    _cache: dict[tuple[int, int], LinearOperator] = field(default_factory=dict)
    CACHED_SIZES: ClassVar[int] = 4

    def __post_init__(self) -> None:
        # unknown tasks and options, and bad kernels, fail before any work
        base, params = check_task(self.task, self.params)
        if base in ("deblur_kernel", "sr_kernel"):
            if isinstance(params.get("kernel"), list):
                raise OperatorError(f"{self.task} is a benchmark task (a set of kernels, one per image); for your "
                                    "photos give one kernel: --task deblur_kernel --kernel FILE|gauss:S|motion:L,A|disk:R")
            make_kernel(params.get("kernel"))
        if str(params.get("mask", "")).startswith(("random:", "box:")):  # a mask spec: its fraction is checked before any work
            get_operator("inpaint", image_size=(1, 1), mask=params["mask"])

    @property
    def scale(self) -> int:
        return task_scale(self.task, self.params)

    def operator(self, size: tuple[int, int]) -> LinearOperator:
        if size not in self._cache:
            if len(self._cache) >= self.CACHED_SIZES:  # a folder of many sizes must not keep every size's factors
                del self._cache[next(iter(self._cache))]
            self._cache[size] = get_operator(self.task, image_size=size, **self.params)
        return self._cache[size]

    def valid_size(self, height: int, width: int) -> tuple[int, int]:
        return valid_image_size(self.task, height, width, self.params)

    def photo_operator(self, size: tuple[int, int]) -> LinearOperator:
        """The operator that made a real photo of ``size``: for a user's kernel, a camera's blur of a
        scene larger than the photo (:class:`ValidBlur`; restored on a larger canvas, cropped after),
        otherwise the task's operator at the restored size."""
        if parse_task(self.task)[0] in ("deblur_kernel", "sr_kernel"):
            return self._camera_blur
        return self.operator((size[0] * self.scale, size[1] * self.scale))

    @functools.cached_property
    def _camera_blur(self) -> ValidBlur:
        return ValidBlur(self.params.get("kernel"), scale=self.scale)


def photo_frame(operator: LinearOperator, x: torch.Tensor) -> torch.Tensor:
    """A restoration cut to the photo's frame: the canvas around a camera-blurred photo, which
    only the prior filled, is cropped away."""
    return operator.crop(x) if isinstance(operator, ValidBlur) else x
