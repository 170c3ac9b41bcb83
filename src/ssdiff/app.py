"""``ssdiff app``: restore a photo in the browser, a thin Gradio layer over what ``ssdiff restore`` runs.

The page takes an upload (or a bundled public-domain example), the task and its options, the
method, the budget and the seed, and runs :func:`ssdiff.runner.restore_files` on it, the function
behind ``ssdiff restore``, with a progress bar fed by its network forwards. It shows the
measurement, ``A+y`` and the restoration, a before/after slider, PSNR/SSIM when the upload was a
clean image degraded here, and the PNG to download. :func:`restore_upload` is the whole handler
without Gradio; the page only converts its :class:`AppError` into a message in the page.

Offline by construction: Gradio's analytics are off, the theme uses the system's fonts (no web
fonts), the server binds to 127.0.0.1 unless told otherwise, and one restoration runs at a time
(others wait in Gradio's queue).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .io import InputError, read_image, write_image
from .metrics import psnr, ssim
from .operators import OPERATORS, OperatorError, parse_task
from .pipeline import display_measurement, image_to_measurement
from .runner import TaskSpec, photo_frame, restore_files
from .solvers import METHODS

MAX_PIXELS = 4_000_000  # per upload: larger photos take minutes per call on a CPU
MAX_BYTES = 20 * 1024 * 1024
AUTO = "auto (ssd, ssd-fast at 10 calls or less)"
TASKS = ["sr_bicubic", "sr_average", "colorization", "deblur_gauss", "deblur_kernel", "inpaint", "denoise"]


class AppError(ValueError):
    """A problem with the request, shown to the user as one line in the page."""


@dataclass
class AppResult:
    measurement: Path  # a picture of the measurement at the restored size
    pinv: Path | None  # A+y (None where the measurement is no picture)
    restored: Path
    report: str
    scores: dict[str, float] = field(default_factory=dict)


def check_upload(path: str | os.PathLike | None, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> torch.Tensor:
    """The uploaded image (3 x H x W in [-1, 1]), or :class:`AppError` saying what is wrong with it."""
    if not path:
        raise AppError("upload an image first (or pick an example)")
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise AppError(f"{path.name}: {path.stat().st_size / 2**20:.1f} MB is more than the {max_bytes / 2**20:.0f} MB "
                       "this page accepts")
    try:
        from PIL import Image

        with Image.open(path) as probe:
            width, height = probe.size
    except (OSError, ValueError):
        raise AppError(f"{path.name}: not an image this page can read (PNG, JPEG, BMP, TIFF, WebP)") from None
    if width * height > max_pixels:
        raise AppError(f"{path.name}: {width}x{height} is more than the {max_pixels / 1e6:.0f} megapixels this page "
                       "restores; crop or shrink it, or use `ssdiff restore`")
    try:
        return read_image(path)
    except InputError as error:
        raise AppError(str(error)) from None


def task_params(task: str, scale: int | None, mask: str | None, kernel: str | None) -> dict[str, Any]:
    """The operator options the page sets for ``task`` (the others keep their defaults). Masks and
    kernels are specs only: a file path typed into the page must not open files on the server."""
    base, _ = parse_task(task)
    params: dict[str, Any] = {}
    if base.startswith("sr_") and scale:
        params["scale"] = int(scale)
    if base == "inpaint" and mask:
        if not re.fullmatch(r"center|(random|box):[\d.]+", mask.strip()):
            raise AppError(f"mask {mask!r}: this page takes center, box:F (F of each side missing) or random:F "
                           "(F, the fraction of pixels missing)")
        params["mask"] = mask.strip()
    if base in ("deblur_kernel", "sr_kernel"):
        if not re.fullmatch(r"(gauss|motion|disk):[\d.,\s-]+", (kernel or "").strip()):
            raise AppError(f"kernel {kernel!r}: this page takes gauss:SIGMA, motion:LENGTH,ANGLE or disk:RADIUS")
        params["kernel"] = kernel.strip()
    return params


def _request_folder(keep: int = 16) -> Path:
    """A fresh folder for one request under the app's own temporary folder, keeping only the
    newest ``keep`` (the page has shown their files by then)."""
    root = Path(tempfile.gettempdir()) / "ssdiff_app"
    root.mkdir(exist_ok=True)
    for old in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))


def restore_upload(prior, upload: str | os.PathLike | None, *, clean: bool, task: str, scale: int | None = 4,
                   sigma_y: float = 0.0, mask: str | None = None, kernel: str | None = None, method: str | None = None,
                   nfe: int = 30, seed: int = 0, work: str | os.PathLike | None = None, on_progress=None) -> AppResult:
    """Restore one upload as ``ssdiff restore`` would (``--from-clean`` when ``clean``); files go to ``work``."""
    from .cli import default_method

    if task not in OPERATORS:
        raise AppError(f"unknown task {task!r}; choose from: {', '.join(OPERATORS)}")
    method = default_method(int(nfe)) if not method or method == AUTO else method
    if method not in METHODS:
        raise AppError(f"unknown method {method!r}; choose from: {', '.join(METHODS)}")
    image = check_upload(upload)
    params = task_params(task, scale, mask, kernel)
    if not clean and params.get("scale", 1) ** 2 * image.shape[-2] * image.shape[-1] > MAX_PIXELS:
        raise AppError(f"{Path(upload).name}: restored {params['scale']}x larger it would be more than the "
                       f"{MAX_PIXELS / 1e6:.0f} megapixels this page restores; use `ssdiff restore`")
    work = Path(work) if work else _request_folder()
    stem = re.sub(r"[^\w.-]", "_", Path(upload).stem)[:60] or "upload"
    source = work / "in" / f"{stem}.png"
    write_image(image, source)  # the upload as the PNG the runner reads, whatever its format
    warnings_text = io.StringIO()
    try:
        spec = TaskSpec(task, params)
        with contextlib.redirect_stderr(warnings_text), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = restore_files([source], work / "out", prior, spec, method=method, nfe=int(nfe), seed=int(seed),
                                    from_clean=clean, sigma_y=float(sigma_y), batch_size=8, on_progress=on_progress)
    except (InputError, OperatorError, ValueError) as error:
        raise AppError(str(error)) from None
    # the runner's one-line errors and warnings, and the library's warnings (an untuned ssd-fast, ...)
    messages = [re.sub(r"^ssdiff: (error|warning): ", r"\1: ", line.replace(f"{source}: ", ""))
                for line in warnings_text.getvalue().splitlines() if line.startswith("ssdiff: ")]
    messages += [f"warning: {w.message}" for w in caught if issubclass(w.category, UserWarning)]
    restored_path = work / "out" / f"{stem}.png"
    if outcome.failed or not restored_path.is_file():
        raise AppError(next((m for m in messages if m.startswith("error")), "the restoration failed").removeprefix("error: "))
    restored = read_image(restored_path)
    measurement_picture = read_image(work / "out" / f"{stem}_measurement.png") if clean else image
    height, width = restored.shape[-2:]
    shown, pinv = work / "measurement.png", None
    try:  # A+y at the size the operator took (a clean upload is padded to a multiple of the scale)
        size = spec.valid_size(height, width)
        operator = spec.operator(size) if clean else spec.photo_operator(tuple(measurement_picture.shape[-2:]))
        y = image_to_measurement(operator, measurement_picture, "the measurement")
        write_image(display_measurement(operator, y, size)[..., :height, :width], shown)
        pinv = work / "pinv.png"
        write_image(photo_frame(operator, operator.A_pinv(y[None]))[0].clamp(-1, 1)[..., :height, :width], pinv)
    except (InputError, OperatorError):
        pinv = None
    if not shown.is_file():
        write_image(measurement_picture, shown)
    scores = {"PSNR": psnr(restored, image), "SSIM": ssim(restored, image)} if clean else {}
    report = "\n".join([*outcome.lines, *(f"- {m}" for m in messages)])
    return AppResult(shown, pinv, restored_path, report, scores)


def example_images(folder: Path) -> list[Path]:
    """Public-domain examples from scikit-image's data, written once into ``folder``: the astronaut's
    face framed as ``ssdiff demo`` frames it, the whole portrait, and the coffee cup."""
    from skimage import data

    from .demo import astronaut_face
    from .io import pil_to_tensor

    folder.mkdir(parents=True, exist_ok=True)
    makers = {"astronaut_face.png": lambda: astronaut_face(64),
              "astronaut.png": lambda: torch.nn.functional.interpolate(
                  pil_to_tensor(_pil(data.astronaut()))[None], size=(256, 256), mode="area")[0],
              "coffee.png": lambda: pil_to_tensor(_pil(data.coffee()).resize((200, 133)))}
    paths = []
    for name, make in makers.items():
        path = folder / name
        if not path.is_file():
            write_image(make(), path)
        paths.append(path)
    return paths


def _pil(array):
    from PIL import Image

    return Image.fromarray(array)


def build_app(prior, examples_dir: Path | None = None):
    """The Gradio page around :func:`restore_upload` for ``prior``."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    # Gradio finds the progress bar by this default value: its documented way, hence the noqa
    def run(upload, clean, task, scale, sigma_y, mask, kernel, method, nfe, seed, progress=gr.Progress()):  # noqa: B008
        def report_progress(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"{done}/{total} network forwards")

        try:
            result = restore_upload(prior, upload, clean=clean, task=task, scale=scale, sigma_y=sigma_y, mask=mask,
                                    kernel=kernel, method=method, nfe=nfe, seed=seed, on_progress=report_progress)
        except AppError as error:
            raise gr.Error(str(error), print_exception=False) from None
        scores = "  \n".join(f"**{k}** {v:.2f}" if k == "PSNR" else f"**{k}** {v:.3f}" for k, v in result.scores.items())
        report = (scores + "\n\n" if scores else "") + result.report
        before = str(result.pinv or result.measurement)
        return (str(result.measurement), str(result.pinv) if result.pinv else None, str(result.restored),
                (before, str(result.restored)), report, str(result.restored))

    font = ["ui-sans-serif", "system-ui", "sans-serif"]  # system fonts: no web-font download
    theme = gr.themes.Default(font=font, font_mono=["ui-monospace", "monospace"])
    with gr.Blocks(title="ssdiff", analytics_enabled=False) as page:
        gr.Markdown(f"# ssdiff: zero-shot restoration with a diffusion prior\nPrior: **{prior.name}**. Upload a photo "
                    "(or pick an example), choose the task and the method, and restore. With *the upload is clean*, "
                    "it is degraded here first and the result is scored against it.")
        with gr.Row():
            with gr.Column():
                # any file: what is not an image gets this page's own message (restore_upload), not a silent refusal
                upload = gr.File(label="image", type="filepath", elem_id="upload")
                clean = gr.Checkbox(value=True, label="the upload is clean: degrade it first (and score the result)",
                                    elem_id="clean")
                task = gr.Dropdown(TASKS, value="sr_bicubic", label="task", elem_id="task")
                scale = gr.Dropdown([2, 4, 8], value=4, label="SR scale", elem_id="scale")
                sigma_y = gr.Slider(0, 0.2, value=0, step=0.01, label="measurement noise sigma_y ([-1, 1] units)")
                mask = gr.Textbox(value="center", label="inpainting mask: center, box:F or random:F")
                kernel = gr.Textbox(value="motion:9,30", label="deblur_kernel: gauss:S, motion:L,A or disk:R")
                method = gr.Dropdown([AUTO, *METHODS], value=AUTO, label="method", elem_id="method")
                nfe = gr.Slider(2, 100, value=10, step=1, label="network calls (NFE)", elem_id="nfe")
                seed = gr.Number(value=0, precision=0, label="seed")
                go = gr.Button("Restore", variant="primary", elem_id="restore")
            with gr.Column():
                with gr.Row():
                    measurement = gr.Image(label="measurement", type="filepath", elem_id="measurement")
                    pinv = gr.Image(label="A+y", type="filepath", elem_id="pinv")
                    restored = gr.Image(label="restored", type="filepath", elem_id="restored")
                slider = gr.ImageSlider(label="A+y | restored", type="filepath")
                report = gr.Markdown(elem_id="report")
                download = gr.File(label="download the PNG", elem_id="download")
        if examples_dir is not None:
            gr.Examples([[str(p)] for p in example_images(examples_dir)], inputs=[upload], label="examples")
        go.click(run, [upload, clean, task, scale, sigma_y, mask, kernel, method, nfe, seed],
                 [measurement, pinv, restored, slider, report, download])
    page.queue(default_concurrency_limit=1, max_size=16)  # one restoration at a time; the rest wait their turn
    page.ssdiff_theme = theme
    return page


def launch(page, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Serve the page on ``host:port`` (local only by default), without telemetry."""
    return page.launch(server_name=host, server_port=port, max_file_size=MAX_BYTES, prevent_thread_lock=not block,
                       quiet=True, theme=page.ssdiff_theme, footer_links=[], share=False, show_error=True,
                       ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False)
