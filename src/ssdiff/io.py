"""Reading and validating images, and writing files atomically.

Images travel through ssdiff as float tensors in [-1, 1], channels first. Reading is strict:
anything that is not a complete, decodable image raises :class:`InputError` with a one-line
message that names the file. Writing never leaves a partial file: data goes to a temporary
file in the destination folder and is renamed over the target in one step.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BudgetError, InputError
from .limits import HOW_TO_RAISE, check_pixels, max_pixels, megapixels

PILLOW_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb limit (half of where it refuses)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def collect_images(inputs: Sequence[str | os.PathLike], on_skip: Callable[[str], None] | None = None) -> list[Path]:
    """Expand files and folders into a sorted list of image files.

    Folders contribute their image files (not recursively; hidden files, such as the temporary
    files of an interrupted write, are ignored); other files in them are skipped and reported
    to ``on_skip``. A file named twice is taken once. A missing path, or a folder with no
    image, is an :class:`InputError`.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            children = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            images = [p for p in children if p.suffix.lower() in IMAGE_SUFFIXES]
            skipped = [p.name for p in children if p.suffix.lower() not in IMAGE_SUFFIXES]
            if skipped and on_skip:
                more = f" (+{len(skipped) - 5} more)" if len(skipped) > 5 else ""
                on_skip(f"{path}: skipping {len(skipped)} non-image file(s): {', '.join(skipped[:5])}{more}")
            if not images:
                raise InputError(f"{path}: folder contains no image files ({', '.join(IMAGE_SUFFIXES)})")
            found.extend(images)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    unique = []
    for path in found:  # a file named twice (itself and its folder, or two spellings) is one input
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


@contextlib.contextmanager
def opened_image(path: str | os.PathLike, what: str = "image") -> Iterator[Image.Image]:
    """Open an image lazily and size it from its header before anything is decoded: beyond the
    pixel budget (:mod:`ssdiff.limits`) it is refused, as Pillow's decompression-bomb guard
    refuses, in the same one line. Errors name the file; ``what`` says what it was to be."""
    path = Path(path)

    def failed(reason: str) -> InputError:
        return InputError(f"{path}: {reason}" if what == "image" else f"{path}: cannot read {what} ({reason})")

    # Pillow's own guard stays on, at our limit where the user raised ours above its default
    Image.MAX_IMAGE_PIXELS = max(PILLOW_MAX_PIXELS, max_pixels())
    try:
        with Image.open(path) as image:
            check_pixels(str(path), image.height, image.width, what=f"the {what}")
            yield image
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise failed("a folder, not an image file") from None
    except Image.DecompressionBombError as error:
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{megapixels(int(pixels.group(1)))}, " if pixels else ""
        raise BudgetError(f"{path}: the {what} is {size}more than the limit of {megapixels(max_pixels())} "
                          f"(Pillow's decompression-bomb guard; {HOW_TO_RAISE})") from None
    except UnidentifiedImageError:
        raise failed("not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise failed(f"cannot decode {what} ({error})" if what == "image" else str(error)) from None


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open, fully decode and orient an image as 8-bit RGB (sized first: see :func:`opened_image`).

    EXIF orientation is applied. Grayscale is repeated over three channels. 16-bit images are
    scaled to 8 bits. Transparent images (RGBA, LA, palette with transparency) are composited
    onto white, since diffusion priors know nothing of alpha.
    """
    with opened_image(path) as image:  # which turns a failed decode into "cannot decode image"
        image.load()  # decode now, so a truncated file fails here and not later
        image = ImageOps.exif_transpose(image)
    return _to_rgb8(image)


def _to_rgb8(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(np.round(array / peak * 255.0), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def crop_square(image: Image.Image, top: int | None = None) -> Image.Image:
    """The largest centred square; ``top`` fixes its vertical offset instead (as for aligned faces)."""
    width, height = image.size
    side = min(width, height)
    left = (width - side) // 2
    upper = (height - side) // 2 if top is None else min(max(top, 0), height - side)
    return image.crop((left, upper, left + side, upper + side))


def resize(image: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Antialiased resize to ``size`` (an int is a square side; a tuple is (height, width))."""
    height, width = (size, size) if isinstance(size, int) else size
    if image.size == (width, height):
        return image
    return image.resize((width, height), resample=Image.Resampling.BICUBIC, reducing_gap=None)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> float32 tensor 3 x H x W in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous() / 127.5 - 1.0


def tensor_to_uint8(image: torch.Tensor) -> np.ndarray:
    """Tensor 3 x H x W (or 1 x H x W) in [-1, 1] -> H x W x 3 uint8, rounded as image writers do."""
    if image.ndim != 3:
        raise ValueError(f"expected a 3-D image tensor, got shape {tuple(image.shape)}")
    image = image.detach().float().cpu()
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    array = ((image.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return array.permute(1, 2, 0).numpy()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(tensor_to_uint8(image), mode="RGB")


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as a float32 tensor 3 x H x W in [-1, 1] (see :func:`open_image`)."""
    return pil_to_tensor(open_image(path))


# Temporary files are named after the process that writes them (not after the target, whose
# name may already be as long as the file system allows), so a later run can tell those of a
# process that died (SIGKILL, power loss) and sweep them (:func:`sweep_stale_temporaries`).
TEMP_PREFIX = ".ssdiff-"
TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-[^/]*\.tmp[^/]*")


def _temp_prefix() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that processes no longer running left in ``folder``; returns them."""
    swept = []
    for path in Path(folder).glob(f"{TEMP_PREFIX}*"):
        match = TEMP_NAME.fullmatch(path.name)
        if match and path.is_file() and not path.is_symlink() and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                path.unlink()
                swept.append(path)
    return swept


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target`` in one step.

    On any error the temporary file is removed, so no partial output is ever visible.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=_temp_prefix(), suffix=".tmp" + target.suffix[:16], dir=target.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes the file private (0600); outputs get the usual permissions
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def write_image(image: torch.Tensor | Image.Image, path: str | os.PathLike) -> Path:
    """Write a tensor in [-1, 1] (3 x H x W) or a PIL image atomically; the format follows the suffix."""
    path = Path(path)
    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    with atomic_path(path) as temp:
        pil.save(temp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


@contextlib.contextmanager
def output_dir(folder: str | os.PathLike) -> Iterator[Path]:
    """Create ``folder`` if needed and check that files can be written in it (InputError if not),
    sweeping the temporary files of earlier runs that were killed; folders this created are
    removed again on the way out if nothing was written in them, so a run that fails, is
    interrupted, or has nothing to do, leaves no empty folders behind."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=_temp_prefix(), suffix=".tmp", dir=folder)
        os.close(handle)
        os.unlink(probe)
        sweep_stale_temporaries(folder)
    except OSError as error:
        raise InputError(f"{folder}: cannot write to the output folder ({error.strerror or error})") from None
    try:
        yield folder
    finally:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):  # not empty: something was written, keep it
                path.rmdir()


def write_bytes(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def image_grid(images: torch.Tensor, columns: int, padding: int = 2) -> torch.Tensor:
    """Tile B x 3 x H x W images into one 3 x H' x W' image (white padding), row by row."""
    count, channels, height, width = images.shape
    rows = (count + columns - 1) // columns
    grid = torch.ones(channels, rows * (height + padding) + padding, columns * (width + padding) + padding)
    for index in range(count):
        row, col = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        grid[:, top : top + height, left : left + width] = images[index].detach().float().cpu()
    return grid
