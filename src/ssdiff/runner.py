"""Folders in, PNGs out: the file-level work behind ``ssdiff restore`` and ``ssdiff degrade``.

Rules a user can rely on:
- every input is read strictly; a bad file gets one line naming it and the problem, the other
  files are still processed, and the command exits non-zero at the end;
- outputs are written atomically, an input is never overwritten, existing outputs are skipped
  unless ``overwrite`` (so an interrupted folder run finishes the rest when rerun: the restored
  PNG is written last and marks an image as done);
- any image size works: a clean image is mirror-padded to the nearest size the operator takes
  (multiples of the SR scale, powers of two for compressed sensing) and its restoration is
  cropped back; a real measurement restores to ``scale x`` its size;
- a restoration with NaN or Inf is reported and not saved.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .io import InputError, ensure_output_dir, read_image, write_image
from .metrics import consistency, psnr, ssim
from .operators import LinearOperator, OperatorError, check_task, get_operator, task_scale, valid_image_size
from .pipeline import (
    display_measurement,
    image_to_measurement,
    measurement_to_image,
    pad_to,
    side_by_side,
    simulate_measurement,
)


def report_error(message: str) -> None:
    print(f"ssdiff: error: {message}", file=sys.stderr)


def report_warning(message: str) -> None:
    print(f"ssdiff: warning: {message}", file=sys.stderr)


@dataclass
class Outcome:
    """What a folder run did; ``failed`` > 0 makes the command exit non-zero."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 2 if self.failed else 0

    def summary(self, verb: str) -> str:
        parts = [f"{verb} {self.done}"]
        if self.skipped:
            parts.append(f"skipped {self.skipped} already done (--overwrite to redo)")
        if self.failed:
            parts.append(f"failed {self.failed}")
        return ", ".join(parts)


@dataclass
class TaskSpec:
    """A task and its options, building operators for any image size (cached per size)."""

    task: str
    params: dict[str, Any]
    _cache: dict[tuple[int, int], LinearOperator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_task(self.task, self.params)  # unknown tasks and options fail before any work

    @property
    def scale(self) -> int:
        return task_scale(self.task, self.params)

    def operator(self, size: tuple[int, int]) -> LinearOperator:
        if size not in self._cache:
            self._cache[size] = get_operator(self.task, image_size=size, **self.params)
        return self._cache[size]

    def valid_size(self, height: int, width: int) -> tuple[int, int]:
        return valid_image_size(self.task, height, width, self.params)


def plan_outputs(files: list[Path], out: Path, overwrite: bool, outcome: Outcome) -> list[tuple[Path, Path]]:
    """(input, output) pairs still to do; refuses outputs that would overwrite an input."""
    inputs = {f.resolve() for f in files}
    todo = []
    for path in files:
        target = out / f"{path.stem}.png"
        if target.resolve() in inputs:
            report_error(f"{path}: refusing to overwrite the input with its result; choose another --out")
            outcome.failed += 1
        elif target.exists() and not overwrite:
            outcome.skipped += 1
        else:
            todo.append((path, target))
    return todo


def degrade_files(files: list[Path], out: str | Path, spec: TaskSpec, sigma_y: float = 0.0, jpeg: int | None = None,
                  seed: int = 0, overwrite: bool = False) -> Outcome:
    """Write the simulated measurement of every clean image (noise seeded per image)."""
    out, outcome = ensure_output_dir(out), Outcome()
    for path, target in plan_outputs(files, out, overwrite, outcome):
        try:
            x = read_image(path)
            x = pad_to(x, spec.valid_size(*x.shape[-2:]))
            operator = spec.operator(tuple(x.shape[-2:]))
            generator = torch.Generator().manual_seed(seed)
            y = simulate_measurement(operator, x[None], sigma_y, jpeg, generator)[0]
            write_image(measurement_to_image(operator, y), target)
        except (InputError, OperatorError) as error:
            report_error(_prefixed(path, error))
            outcome.failed += 1
            continue
        outcome.done += 1
        outcome.lines.append(f"wrote {target}")
    return outcome


def _prefixed(path: Path, error: Exception) -> str:
    text = str(error)
    return text if text.startswith(str(path)) else f"{path}: {text}"


@dataclass
class Item:
    """One image on its way through a restoration."""

    path: Path
    target: Path
    operator: LinearOperator
    y: torch.Tensor  # C x h x w
    truth: torch.Tensor | None = None  # the clean image (its original size) with --from-clean
    crop: tuple[int, int] | None = None  # the size to crop the restoration back to


def prepare(path: Path, target: Path, spec: TaskSpec, from_clean: bool, sigma_y: float, jpeg: int | None,
            seed: int, model_resolution: tuple[int, int] | None) -> Item:
    """Read one input and turn it into a measurement and the operator that made it."""
    image = read_image(path)
    if from_clean:
        size = tuple(image.shape[-2:])
        padded = pad_to(image, spec.valid_size(*size))
        operator = spec.operator(tuple(padded.shape[-2:]))
        y = simulate_measurement(operator, padded[None], sigma_y, jpeg, torch.Generator().manual_seed(seed))[0]
        item = Item(path, target, operator, y, truth=image, crop=size)
    else:
        size = (image.shape[-2] * spec.scale, image.shape[-1] * spec.scale)
        operator = spec.operator(size)
        item = Item(path, target, operator, image_to_measurement(operator, image, str(path)))
    restored = operator.image_shape(item.y[None])
    if model_resolution and max(restored) < min(model_resolution) / 2:
        raise InputError(
            f"{path}: restores to {restored[0]}x{restored[1]}, far smaller than the model's "
            f"{model_resolution[0]}x{model_resolution[1]} training images; use a model of matching resolution"
        )
    return item


def restore_files(files: list[Path], out: str | Path, prior, spec: TaskSpec, *, method: str = "ssd", nfe: int = 30,
                  seed: int = 0, hparams: dict[str, Any] | None = None, from_clean: bool = False,
                  sigma_y: float = 0.0, jpeg: int | None = None, overwrite: bool = False, batch_size: int = 1,
                  restore_fn: Callable | None = None) -> Outcome:
    """Restore every file into ``out``; see the module docstring for the rules."""
    from . import restore

    restore_fn = restore_fn or restore
    hparams = dict(hparams or {})
    if sigma_y > 0:
        hparams["sigma_y"] = sigma_y
    out, outcome = ensure_output_dir(out), Outcome()
    todo = plan_outputs(files, out, overwrite, outcome)
    pending: list[Item] = []
    with tqdm(total=len(todo), desc="restoring", unit="image", disable=None) as bar:

        def flush() -> None:
            if pending:
                _restore_batch(pending, prior, method, nfe, seed, hparams, restore_fn, batch_size, outcome)
                bar.update(len(pending))
                pending.clear()

        for path, target in todo:
            try:
                item = prepare(path, target, spec, from_clean, sigma_y, jpeg, seed, getattr(prior, "resolution", None))
            except (InputError, OperatorError) as error:
                report_error(_prefixed(path, error))
                outcome.failed += 1
                bar.update(1)
                continue
            if pending and (item.operator is not pending[0].operator or item.y.shape != pending[0].y.shape):
                flush()
            pending.append(item)
            if len(pending) >= batch_size:
                flush()
        flush()
    return outcome


def _restore_batch(items: list[Item], prior, method: str, nfe: int, seed: int, hparams: dict[str, Any],
                   restore_fn: Callable, batch_size: int, outcome: Outcome) -> None:
    operator = items[0].operator
    device = getattr(prior, "device", torch.device("cpu"))
    y = torch.stack([item.y for item in items]).to(device)
    try:
        result = restore_fn(prior, operator, y, method=method, nfe=nfe, seed=seed, **hparams)
    except ValueError as error:  # a bad method or option: the same for every image, so stop
        raise InputError(str(error)) from None
    except torch.cuda.OutOfMemoryError:
        raise InputError(f"CUDA ran out of memory restoring a batch of {batch_size} image(s) of "
                         f"{tuple(y.shape[-2:])}: try a smaller --batch-size, or --fp16") from None
    for index, item in enumerate(items):
        restored = result.image[index].detach().float().cpu()
        if not torch.isfinite(restored).all():
            report_error(f"{item.path}: the restoration contains NaN or Inf values; nothing was written for it")
            outcome.failed += 1
            continue
        line = f"{item.path.name}: {method}, {result.nfe} network calls, {result.extras.get('seconds', 0.0):.1f} s"
        consistent = consistency(operator, result.image[index : index + 1].clamp(-1, 1).cpu(), item.y[None].cpu())
        if item.truth is not None:
            height, width = item.crop
            cropped = restored[..., :height, :width]
            panel = display_measurement(operator, item.y.cpu(), tuple(restored.shape[-2:]))[..., :height, :width]
            write_image(item.truth, item.target.with_name(f"{item.path.stem}_truth.png"))
            write_image(side_by_side([panel, cropped, item.truth]), item.target.with_name(f"{item.path.stem}_compare.png"))
            try:
                write_image(measurement_to_image(operator, item.y.cpu()), item.target.with_name(f"{item.path.stem}_measurement.png"))
            except InputError:
                pass  # compressed-sensing measurements are not pictures
            line += f", PSNR {psnr(cropped, item.truth):.2f} dB, SSIM {ssim(cropped, item.truth):.3f}"
            restored = cropped
        line += f", mean|Ax-y| {consistent:.4f}"
        write_image(restored, item.target)  # last: its presence marks the image as done
        outcome.done += 1
        outcome.lines.append(line)
        tqdm.write(line)
