"""Folders in, PNGs out: the file-level work behind ``ssdiff restore`` and ``ssdiff degrade``.

Rules a user can rely on:
- every input is read strictly; a bad file gets one line naming it and the problem, the other
  files are still processed, and the command exits non-zero at the end;
- outputs are written atomically, an input is never overwritten, existing outputs are skipped
  unless ``overwrite`` (so an interrupted folder run finishes the rest when rerun: the restored
  PNG is written last and marks an image as done);
- any image size works: a clean image is mirror-padded to the nearest size the operator takes
  (multiples of the SR scale, powers of two for compressed sensing) and its restoration is
  cropped back; a real measurement restores to ``scale x`` its size (a photo blurred with a
  user's kernel, on a canvas larger by the kernel's support, cropped back to the photo's frame);
- a restoration with NaN or Inf is reported and not saved.
"""

from __future__ import annotations

import contextlib
import errno
import math
import numbers
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .faces import FacePlan, WholePhoto, check_frame, face_template, plan_framing, restore_face
from .figures import Panel, render
from .io import InputError, output_dir, read_image, write_image
from .limits import check_pixels
from .memory import MemoryPlan
from .metrics import consistency, psnr, ssim
from .operators import Colorization, Inpainting, LinearOperator, OperatorError, WalshHadamardCS
from .pipeline import (
    consistency_warning,
    display_measurement,
    image_to_measurement,
    input_title,
    measurement_to_image,
    pad_to,
    simulate_measurement,
)
from .progress import Progress, temporarily
from .solvers import restore, valid_seed
from .tasks import TaskSpec, photo_frame


def one_line(message: str) -> str:
    """``message`` with control characters (a newline in a file name, ...) escaped: one line, as promised."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)


def report_error(message: str) -> None:
    print(f"ssdiff: error: {one_line(message)}", file=sys.stderr)


def report_warning(message: str) -> None:
    print(f"ssdiff: warning: {one_line(message)}", file=sys.stderr)


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


# What --from-clean writes beside each result: <stem>_<kind>.png
DERIVED = ("truth", "measurement", "compare")


def output_names(path: Path, derived: tuple[str, ...] = ()) -> list[str]:
    """The files an input's restoration writes: its result first, then the derived pictures."""
    return [f"{path.stem}.png", *(f"{path.stem}_{kind}.png" for kind in derived)]


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def plan_outputs(files: list[Path], out: Path, overwrite: bool, outcome: Outcome,
                 derived: tuple[str, ...] = ()) -> list[tuple[Path, Path]]:
    """(input, result) pairs still to do, decided before any work, as rsync decides before copying.

    Refused, one line each (counted as failed; the others go on): an output name longer than the
    folder allows; two inputs whose outputs share a name (``y.jpg`` and ``y.png``); an output
    that would replace an input (even with ``overwrite``); a derived picture (``_truth``, ...)
    that exists already while its result does not, unless ``overwrite``. Inputs whose result
    exists are skipped unless ``overwrite``.
    """
    inputs = {f.resolve(): f for f in files}
    limit = _name_max(out)
    claims: dict[str, list[Path]] = {}
    for path in files:
        for name in output_names(path, derived):
            claims.setdefault(name, []).append(path)

    def refusal(path: Path, names: list[str]) -> str | None:
        longest = max(names, key=lambda name: len(os.fsencode(name)))
        if len(os.fsencode(longest)) > limit:
            return f"the output name {longest!r} is longer than the {limit} bytes {out} allows; rename the input"
        replaced = next((inputs[(out / name).resolve()] for name in names if (out / name).resolve() in inputs), None)
        if replaced is not None:
            return f"refusing to overwrite the input {replaced} with a result; choose another --out"
        clash = next(((name, other) for name in names for other in claims[name] if other != path), None)
        if clash:
            return (f"its output {clash[0]} would also be written for {clash[1]}; rename one, or restore them into "
                    "separate --out folders")
        strangers = [name for name in names[1:] if (out / name).exists()]
        if strangers and not overwrite and not (out / names[0]).exists():
            return (f"{out / strangers[0]} exists and is not this input's result; --overwrite replaces it, "
                    "or choose another --out")
        return None

    todo = []
    for path in files:
        names = output_names(path, derived)
        failure = refusal(path, names)
        if failure:
            report_error(f"{path}: {failure}")
            outcome.failed += 1
        elif (out / names[0]).exists() and not overwrite:
            outcome.skipped += 1
        else:
            todo.append((path, out / names[0]))
    return todo


def degrade_files(files: list[Path], out: str | Path, spec: TaskSpec, sigma_y: float = 0.0, jpeg: int | None = None,
                  seed: int = 0, overwrite: bool = False) -> Outcome:
    """Write the simulated measurement of every clean image (noise seeded per image)."""
    check_noise_options(seed, sigma_y)
    outcome = Outcome()
    with output_dir(out) as folder:
        _degrade_all(files, folder, spec, sigma_y, jpeg, seed, overwrite, outcome)
    return outcome


def _degrade_all(files: list[Path], out: Path, spec: TaskSpec, sigma_y: float, jpeg: int | None, seed: int,
                 overwrite: bool, outcome: Outcome) -> None:
    for path, target in plan_outputs(files, out, overwrite, outcome):
        try:
            x = read_image(path)
            size = spec.valid_size(*x.shape[-2:])
            check_pixels(str(path), *size, what="the image padded to a size the operator takes")
            operator = spec.operator(size)
            generator = torch.Generator().manual_seed(seed)
            y = simulate_measurement(operator, pad_to(x, size)[None], sigma_y, jpeg, generator)[0]
            write_outputs(path, [(measurement_to_image(operator, y), target)])
        except DiskFull as error:
            report_error(str(error))
            outcome.failed += 1
            return
        except Exception as error:  # noqa: BLE001 - one bad file never stops a folder run
            report_error(_describe(path, error))
            outcome.failed += 1
            continue
        outcome.done += 1
        outcome.lines.append(f"wrote {target}")


def check_noise_options(seed: int, sigma_y: float) -> None:
    """The seed and the noise level of a folder run, refused before any work when no generator or noise can take them."""
    if not valid_seed(seed):
        raise InputError(f"the seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    if not (isinstance(sigma_y, numbers.Real) and math.isfinite(sigma_y) and sigma_y >= 0):
        raise InputError(f"sigma_y, the measurement noise, must be a finite number >= 0, got {sigma_y!r}")


def _prefixed(path: Path, error: Exception) -> str:
    text = str(error)
    return text if text.startswith(str(path)) else f"{path}: {text}"


def _describe(path: Path, error: Exception) -> str:
    """One line for a failure of one input: the message of the errors users cause, or the kind
    and first line of an unexpected one (a fault of ssdiff's; the other inputs go on)."""
    if isinstance(error, (InputError, OperatorError)):
        return _prefixed(path, error)
    lines = str(error).strip().splitlines()
    return f"{path}: failed ({type(error).__name__}: {lines[0][:300] if lines else 'no message'})"


class DiskFull(InputError):
    """The output's device is full: the run stops, keeping every result already written."""


def write_outputs(path: Path, outputs: list[tuple[Any, Path]]) -> None:
    """Write the files of one input in order (its result last: its presence marks the input done).

    If one cannot be written, those already written for it are removed again, so that a rerun
    redoes the input whole; a full device raises :class:`DiskFull` (stop the run), any other
    write error an :class:`InputError` for this input alone.
    """
    written: list[Path] = []
    for picture, target in outputs:
        try:
            write_image(picture, target)
        except OSError as error:
            for done in written:
                with contextlib.suppress(OSError):
                    done.unlink()
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"{path}: no space left on the device writing {target}; stopped here, the results "
                               "written so far are kept (free some space and rerun the same command for the rest)") from None
            raise InputError(f"{path}: cannot write {target} ({error.strerror or error})") from None
        written.append(target)


@dataclass
class Item:
    """One image on its way through a restoration."""

    path: Path
    target: Path
    operator: LinearOperator
    y: torch.Tensor  # C x h x w
    truth: torch.Tensor | None = None  # the clean image (its original size) with --from-clean
    crop: tuple[int, int] | None = None  # the size to crop the restoration back to
    face: FacePlan | WholePhoto | None = None  # restore the face (or the whole photo) in the prior's frame (see ssdiff.faces)


MIN_SIDE = 8  # px: a smaller image is no picture to restore (and SSIM's 7 x 7 window needs it)


def prepare(path: Path, target: Path, spec: TaskSpec, from_clean: bool, sigma_y: float, jpeg: int | None,
            seed: int, model_resolution: tuple[int, int] | None) -> Item:
    """Read one input and turn it into a measurement and the operator that made it."""
    image = read_image(path)
    height, width = image.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise InputError(f"{path}: {width}x{height} is too small to restore; each side needs at least {MIN_SIDE} px")
    if from_clean:
        size = spec.valid_size(height, width)
        check_pixels(str(path), *size, what="the image padded to a size the operator takes")
        operator = spec.operator(size)
        y = simulate_measurement(operator, pad_to(image, size)[None], sigma_y, jpeg, torch.Generator().manual_seed(seed))[0]
        item = Item(path, target, operator, y, truth=image, crop=(height, width))
    else:
        check_pixels(str(path), height * spec.scale, width * spec.scale, what="its restoration")
        operator = spec.photo_operator((height, width))
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
                  sigma_y: float = 0.0, jpeg: int | None = None, overwrite: bool = False, batch_size: int = 8,
                  frame: str = "auto", restore_fn: Callable | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Outcome:
    """Restore every file into ``out``; see the module docstring for the rules.

    ``batch_size`` images of one size are restored together, and at most that many images or
    tiles go through the network at once; ``frame`` (:data:`ssdiff.faces.policy.FRAMES`) as
    :func:`ssdiff.faces.plan_framing`.
    ``on_progress(done, total)`` is told the network forwards of each batch as they run.
    """

    check_frame(frame)
    check_noise_options(seed, sigma_y)
    restore_fn = restore_fn or restore
    hparams = dict(hparams or {})
    if sigma_y > 0:
        hparams["sigma_y"] = sigma_y
    outcome = Outcome()
    with output_dir(out) as folder, temporarily(prior, "max_batch", batch_size):
        todo = plan_outputs(files, folder, overwrite, outcome, derived=DERIVED if from_clean else ())
        pending: list[Item] = []
        progress = Progress(prior, len(todo), on_progress)
        memory = MemoryPlan(prior, method)

        def flush() -> None:
            if pending:
                memory.announce(pending)
                _restore_batch(pending, prior, method, nfe, seed, hparams, restore_fn, batch_size, outcome, progress)
                pending.clear()

        try:
            for path, target in todo:
                try:
                    item = prepare(path, target, spec, from_clean, sigma_y, jpeg, seed, getattr(prior, "resolution", None))
                    item.face, warning = plan_framing(prior, item.operator, item.y, frame, str(item.path))
                    if warning:
                        report_warning(warning)
                    memory.check([item])
                except Exception as error:  # noqa: BLE001 - one bad file never stops a folder run
                    report_error(_describe(path, error))
                    outcome.failed += 1
                    progress.images_done += 1
                    continue
                if pending and (item.face or pending[0].face or item.operator is not pending[0].operator
                                or item.y.shape != pending[0].y.shape or not memory.fits([*pending, item])):
                    flush()
                pending.append(item)
                if item.face or len(pending) >= batch_size:
                    flush()
            flush()
        except DiskFull as error:
            report_error(str(error))
            outcome.failed += 1
    return outcome


def result_title(method: str, result) -> str:
    """The restoration's caption: the method and its network calls, or in words why it made none."""
    if result.nfe == 0:
        kept = result.extras.get("face_restored") is False
        return "no detail added: face already at the prior's scale" if kept else f"{method}: no network call"
    return f"{method} ({result.nfe} NFE)"


def _restore_batch(items: list[Item], prior, method: str, nfe: int, seed: int, hparams: dict[str, Any],
                   restore_fn: Callable, batch_size: int, outcome: Outcome, progress: Progress) -> None:
    operator = items[0].operator
    device = getattr(prior, "device", torch.device("cpu"))
    y = torch.stack([item.y for item in items]).to(device)
    name = items[0].path.name + (f" and {len(items) - 1} more" if len(items) > 1 else "")
    face = items[0].face
    if face is not None:  # one image; the frame's batch: the face (and the whole photo, for colorization and inpainting)
        inputs = 2 if isinstance(face, FacePlan) and isinstance(operator, (Colorization, Inpainting)) else 1
    else:
        inputs = len(items) * (prior.tiles_per_image(*operator.image_shape(y)) if hasattr(prior, "tiles_per_image") else 1)
    started = time.perf_counter()
    try:
        with progress.batch(name, nfe, inputs):
            if face is not None:
                result = restore_face(prior, operator, y, face, face_template(prior), restore_fn, method=method,
                                      nfe=nfe, seed=seed, **hparams)
            else:
                result = restore_fn(prior, operator, y, method=method, nfe=nfe, seed=seed, **hparams)
    except torch.cuda.OutOfMemoryError:
        raise InputError(f"CUDA ran out of memory restoring a batch of {batch_size} image(s) of "
                         f"{tuple(y.shape[-2:])}: try a smaller --batch-size, or --fp16") from None
    except Exception as error:  # noqa: BLE001 - see below
        if type(error) in (ValueError, TypeError):  # a bad method or option: the same for every image, so stop
            raise InputError(str(error)) from None
        for item in items:  # what these images' sizes or contents caused: they fail, the others go on
            report_error(_describe(item.path, error))
        outcome.failed += len(items)
        progress.images_done += len(items)
        return
    progress.images_done += len(items)
    seconds = time.perf_counter() - started
    for index, item in enumerate(items):
        restored = result.image[index].detach().float().cpu()
        if not torch.isfinite(restored).all():
            report_error(f"{item.path}: the restoration contains NaN or Inf values; nothing was written for it")
            outcome.failed += 1
            continue
        line = f"{item.path.name}: {method}, {result.nfe} network calls, {seconds / len(items):.1f} s"
        if isinstance(face, WholePhoto):
            line += f", no face: the whole photo restored in the prior's frame, enlarged {result.extras['whole_photo_magnification']:.1f}x"
        elif face is not None:
            sr = f" (x{face.frame_scale} SR there)" if getattr(operator, "scale", 1) > 1 else ""
            line += (f", face restored in the prior's frame{sr}" if result.extras["face_restored"]
                     else ", face kept at the input's detail")
        consistent = consistency(operator, result.image[index : index + 1].clamp(-1, 1).cpu(), item.y[None].cpu())
        outputs = []
        if item.truth is not None:
            height, width = item.crop
            cropped = restored[..., :height, :width]
            panel = display_measurement(operator, item.y.cpu(), tuple(restored.shape[-2:]), "bicubic")[..., :height, :width]
            scores = {"PSNR": psnr(cropped, item.truth), "SSIM": ssim(cropped, item.truth)}
            panels = [Panel(input_title(operator), panel), Panel(result_title(method, result), cropped, scores),
                      Panel("truth (y simulated from it)", item.truth)]
            named = {"truth": item.truth, "compare": render(panels)}
            if not isinstance(operator, WalshHadamardCS):  # compressed-sensing measurements are not pictures
                named["measurement"] = measurement_to_image(operator, item.y.cpu())
            outputs = [(named[kind], item.target.with_name(f"{item.path.stem}_{kind}.png")) for kind in DERIVED if kind in named]
            line += f", on a simulated measurement PSNR {scores['PSNR']:.2f} dB, SSIM {scores['SSIM']:.3f}"
            restored = cropped
        line += f", mean|Ax-y| {consistent:.4f}"
        warning = consistency_warning(str(item.path), consistent, method, result.nfe, hparams.get("sigma_y", 0.0))
        if warning:
            report_warning(warning)
        try:
            write_outputs(item.path, [*outputs, (photo_frame(operator, restored), item.target)])
        except DiskFull:
            raise
        except InputError as error:
            report_error(str(error))
            outcome.failed += 1
            continue
        outcome.done += 1
        outcome.lines.append(line)
        tqdm.write(line)
