"""``ssdiff app``: restore a photo in the browser, a thin Gradio layer over what ``ssdiff restore`` runs.

The page takes an image (previewed as it is uploaded, or one of :data:`EXAMPLES`, one per task
on public-domain pictures), the task and that task's options only (:data:`TASK_OPTIONS`), the
method, the budget and the seed, and runs :func:`ssdiff.runner.restore_files` on it, the function
behind ``ssdiff restore``, with a progress bar fed by its network forwards. It shows a large
before/after slider (the input as a person sees it | the restoration), PSNR/SSIM when the upload was a
clean image degraded here, the PNG to download, and, folded away, the measurement, ``A+y`` and the
restoration side by side. :func:`restore_upload` is the whole handler without Gradio; the page
only converts its :class:`AppError` into a message in the page.

A page shared by several people, so that no request can take the server for itself:

- a request's work, the restored image's megapixels times its network calls, is bounded
  (:class:`Limits`, ``ssdiff app --max-work``), and so are an upload's pixels and bytes;
- its time is estimated before it starts, from one timed forward of the network (:class:`Estimate`);
- it can be cancelled: it stops within one network forward and keeps nothing (:class:`Cancelled`);
- :class:`JobQueue` decides who computes: one restoration at a time, small ones first, and a large
  one pauses between its network forwards while a small one waits.

Its files live in a private folder of this process (:class:`Workspace`), removed at exit.
Offline by construction: Gradio's analytics are off, the theme uses the system's fonts (no web
fonts), and the server binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import os
import re
import shutil
import tempfile
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from .errors import BudgetError
from .io import InputError, read_image, write_image
from .metrics import psnr, ssim
from .operators import OPERATORS, OperatorError, parse_task
from .pipeline import display_measurement, image_to_measurement
from .progress import time_forward
from .runner import restore_files
from .solvers import METHODS, default_method
from .tasks import TaskSpec, photo_frame

MAX_PIXELS = 4_000_000  # per upload: larger photos take minutes per call on a CPU
MAX_BYTES = 20 * 1024 * 1024
MAX_WORK = 20.0  # megapixel-calls a request may ask for: a 256x256 photo at 100 calls is 6.6
LARGE_WORK = 1.0  # megapixel-calls above which a job is large: it pauses while small ones run
CONCURRENCY = 4  # requests the page takes in at once (each waits in a Gradio worker); one computes at a time
BATCH = 8  # images or tiles per network forward
AUTO = "auto (ssd, ssd-fast at 10 calls or less)"
CANCELLED = "**cancelled**: nothing of this restoration is kept"
TASKS = ["sr_bicubic", "sr_average", "colorization", "deblur_gauss", "deblur_kernel", "inpaint", "denoise"]
PAGE_OPTIONS = ("scale", "mask", "kernel")  # the operator options the page has a control for (sigma_y: every task's)


def task_options(task: str) -> tuple[str, ...]:
    """The page's options that ``task``'s operator takes (those of :data:`PAGE_OPTIONS` its builder
    accepts), in the order of :data:`PAGE_OPTIONS`; none for an unknown task."""
    base, _ = parse_task(task)
    if base not in OPERATORS:
        return ()
    accepted = inspect.signature(OPERATORS[base][0]).parameters
    return tuple(option for option in PAGE_OPTIONS if option in accepted)


# Which option controls the page shows for each task: the table the form's visibility follows
TASK_OPTIONS = {task: task_options(task) for task in TASKS}


class AppError(ValueError):
    """A problem with the request, shown to the user as one line in the page."""


class Cancelled(AppError):
    """The user cancelled the restoration; nothing of it is kept."""


class StopJob(BaseException):
    """Unwinds a cancelled job from its wait or from inside its network forwards. A BaseException, as
    :class:`asyncio.CancelledError` is, so that the runner's ``except Exception`` (one bad file never
    stops a folder run) lets it through."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (``ssdiff app --max-upload-pixels --max-work``)."""

    max_pixels: int = MAX_PIXELS  # of an upload, and of the restoration of a real photo
    max_bytes: int = MAX_BYTES
    max_work: float = MAX_WORK  # megapixel-calls: the restored image's megapixels x the network calls


@dataclass
class AppResult:
    measurement: Path  # a picture of the measurement at the restored size
    pinv: Path | None  # A+y (None where the measurement is no picture)
    restored: Path
    report: str
    scores: dict[str, float] = field(default_factory=dict)
    estimate: Estimate | None = None  # what the restoration was expected to take, told before it started


def check_upload(path: str | os.PathLike | None, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> torch.Tensor:
    """The uploaded image (3 x H x W in [-1, 1]), or :class:`AppError` saying what is wrong with it."""
    if not path:
        raise AppError("upload an image first (or pick an example)")
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise AppError(f"{path.name}: {path.stat().st_size / 2**20:.1f} MB is more than the {max_bytes / 2**20:.0f} MB "
                       "this page accepts")
    from PIL import Image

    try:
        with Image.open(path) as probe:
            width, height = probe.size
    except Image.DecompressionBombError:  # Pillow refuses it from its header alone: far too large
        raise AppError(f"{path.name}: far more than the {_amount(max_pixels / 1e6)} megapixels this page restores; "
                       "crop or shrink it, or use `ssdiff restore`") from None
    except (OSError, ValueError):
        raise AppError(f"{path.name}: not an image this page can read (PNG, JPEG, BMP, TIFF, WebP)") from None
    if width * height > max_pixels:
        raise AppError(f"{path.name}: {width}x{height} is more than the {_amount(max_pixels / 1e6)} megapixels this "
                       "page restores; crop or shrink it, or use `ssdiff restore`")
    try:  # decoded in full: a truncated or corrupt file, whose header read, fails here
        return read_image(path)
    except BudgetError as error:
        raise AppError(str(error).replace(str(path), path.name)) from None
    except InputError as error:  # named as the user named it: not by the server's folder
        reason = str(error).removeprefix(f"{path}: ")
        raise AppError(f"{path.name}: not an image this page can read ({reason})") from None


def task_params(task: str, scale: int | None, mask: str | None, kernel: str | None) -> dict[str, Any]:
    """The operator options the page sets for ``task``: those of its :func:`task_options` (the others
    keep their defaults, and a control the task does not take is ignored). Masks and kernels are specs
    only: a file path typed into the page must not open files on the server."""
    options = task_options(task)
    params: dict[str, Any] = {}
    if "scale" in options and scale:
        params["scale"] = int(scale)
    if "mask" in options and mask:
        if not re.fullmatch(r"center|(random|box):[\d.]+", mask.strip()):
            raise AppError(f"mask {mask!r}: this page takes center, box:F (F of each side missing) or random:F "
                           "(F, the fraction of pixels missing)")
        params["mask"] = mask.strip()
    if "kernel" in options:
        if not re.fullmatch(r"(gauss|motion|disk):[\d.,\s-]+", (kernel or "").strip()):
            raise AppError(f"kernel {kernel!r}: this page takes gauss:SIGMA, motion:LENGTH,ANGLE or disk:RADIUS")
        params["kernel"] = kernel.strip()
    return params


def plan_restoration(name: str, image: torch.Tensor, clean: bool, task: str, params: dict[str, Any],
                     max_pixels: int) -> tuple[TaskSpec, tuple[int, int]]:
    """The task and the size it restores at (a clean upload padded to what the operator takes, a photo
    times the scale), or :class:`AppError` before any work."""
    try:
        spec = TaskSpec(task, params)
        height, width = image.shape[-2:]
        if clean:
            return spec, spec.valid_size(height, width)
        size = (height * spec.scale, width * spec.scale)
    except (InputError, OperatorError) as error:
        raise AppError(str(error)) from None
    if size[0] * size[1] > max_pixels:
        raise AppError(f"{name}: restored {spec.scale}x larger it would be more than the "
                       f"{_amount(max_pixels / 1e6)} megapixels this page restores; use `ssdiff restore`")
    return spec, size


def check_work(name: str, height: int, width: int, nfe: int, max_work: float) -> float:
    """The work of restoring ``height`` x ``width`` at ``nfe`` network calls, in megapixel-calls, or
    :class:`AppError` when it is more than ``max_work`` (the time a request takes grows with both)."""
    work = height * width * nfe / 1e6
    if work > max_work:
        raise AppError(f"{name}: restoring {width}x{height} at {nfe} calls is {_amount(work)} megapixel-calls, more "
                       f"than the {_amount(max_work)} this page allows; lower the calls, crop or shrink the photo, "
                       "or use `ssdiff restore`")
    return work


def _amount(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


# ---- the estimate ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """What a restoration should take: its network calls x forwards per call x seconds per forward."""

    calls: int
    forwards_per_call: int
    seconds_per_forward: float

    @property
    def seconds(self) -> float:
        return self.calls * self.forwards_per_call * self.seconds_per_forward

    def __str__(self) -> str:
        forwards = "1 forward" if self.forwards_per_call == 1 else f"{self.forwards_per_call} forwards"
        return f"about {_duration(self.seconds)} ({self.calls} calls x {forwards} x {self.seconds_per_forward:.2g} s)"


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def estimate(prior, height: int, width: int, nfe: int) -> Estimate | None:
    """How long restoring ``height`` x ``width`` at ``nfe`` calls should take: the image's tiles go
    through the network :data:`BATCH` at a time (None when the prior records no resolution to time)."""
    tiles = prior.tiles_per_image(height, width) if hasattr(prior, "tiles_per_image") else 1
    seconds = _seconds_per_forward(prior, min(tiles, BATCH))
    return None if seconds is None else Estimate(nfe, -(-tiles // BATCH), seconds)


_TIMINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> {batch: seconds per forward}


def _seconds_per_forward(prior, batch: int) -> float | None:
    """One forward of ``batch`` images at the prior's resolution, timed once per network and batch."""
    timings = _TIMINGS.setdefault(getattr(prior, "network", prior), {})
    if batch not in timings:
        timings[batch] = time_forward(prior, batch, warm_up=not timings)
    return timings[batch]


# ---- who computes next ---------------------------------------------------------------------------------------

class Job:
    """One request's place in a :class:`JobQueue`; ``checkpoint`` goes between its network forwards."""

    def __init__(self, queue: JobQueue, large: bool, cancel: threading.Event, on_status: Callable[[str], None]):
        self.queue, self.large, self.cancel, self.on_status = queue, large, cancel, on_status

    def checkpoint(self) -> None:
        """Stop (:class:`StopJob`) when cancelled; a large job lets the small jobs waiting go first."""
        if self.cancel.is_set():
            raise StopJob
        if self.large:
            self.queue.yield_to_small(self)


class JobQueue:
    """Who computes next, one job at a time.

    One at a time: jobs share the network; on one GPU or a few CPU cores two at once would each
    run at half speed; and the runner and this module swap process-wide state around a job (the
    prior's hooks, ``sys.stderr``, the warnings filters), which stays right only while jobs nest.
    Small jobs go first, in order of arrival; large ones (above ``large_work`` megapixel-calls) go
    one at a time, in order, and the running large job pauses between network forwards while a
    small one waits: a small job waits at most one forward of a large one, and the large one goes
    on where it stopped. At most ``max_large`` large jobs are taken in (running or waiting), so
    that with more Gradio workers than that a small job always finds one; more get
    :class:`AppError`. ``on_status`` callbacks run under the queue's lock: they must not block.
    """

    def __init__(self, large_work: float = LARGE_WORK, max_large: int = CONCURRENCY - 1, poll_seconds: float = 0.1):
        self.large_work, self.max_large, self.poll_seconds = large_work, max_large, poll_seconds
        self._changed = threading.Condition()
        self._small: deque[Job] = deque()  # small jobs waiting for their turn, oldest first
        self._large: deque[Job] = deque()  # large jobs taken in, the running or paused one first
        self._running: Job | None = None

    def jobs(self) -> int:
        """Jobs taken in: running, paused or waiting."""
        with self._changed:
            return len(self._small) + len(self._large) + (self._running is not None and not self._running.large)

    @contextlib.contextmanager
    def job(self, work: float, cancel: threading.Event | None = None,
            on_status: Callable[[str], None] | None = None) -> Iterator[Job]:
        """The turn of a job of ``work`` megapixel-calls, once it comes (:class:`StopJob` if ``cancel``
        is set meanwhile)."""
        job = Job(self, work > self.large_work, cancel or threading.Event(), on_status or _ignore)
        with self._changed:
            if job.large and len(self._large) >= self.max_large:
                raise AppError(f"the page is busy with {len(self._large)} large restorations; try again in a few "
                               "minutes, or lower the calls, or crop or shrink the photo")
            (self._large if job.large else self._small).append(job)
        try:
            with self._changed:
                self._take_turn(job, "waiting for {} restoration(s) before this one")
            yield job
        finally:
            with self._changed:
                self._leave(job)

    def yield_to_small(self, job: Job) -> None:
        """Pause the running large ``job`` while small jobs wait, then take the turn back."""
        with self._changed:
            if self._small:
                self._running = None
                self._changed.notify_all()
                self._take_turn(job, "paused while {} smaller restoration(s) run")

    def _take_turn(self, job: Job, waiting: str) -> None:
        if not self._is_next(job):
            job.on_status(waiting.format(self._ahead(job)))
        while not self._is_next(job):
            if job.cancel.is_set():
                raise StopJob
            self._changed.wait(self.poll_seconds)  # woken by any change, and now and then to see a cancel
        self._running = job
        if not job.large:
            self._small.popleft()

    def _is_next(self, job: Job) -> bool:
        if self._running is not None:
            return False
        return (not self._small and self._large[0] is job) if job.large else self._small[0] is job

    def _ahead(self, job: Job) -> int:
        lane = self._large if job.large else self._small
        ahead = lane.index(job) + (len(self._small) if job.large else 0)
        return ahead + (self._running is not None and self._running not in lane)

    def _leave(self, job: Job) -> None:
        for lane in (self._small, self._large):
            if job in lane:
                lane.remove(job)
        if self._running is job:
            self._running = None
        self._changed.notify_all()


def _ignore(_: str) -> None:
    pass


def job_prior(prior, method: str, large: bool):
    """The prior one job runs on: its own hooks and encoder-reuse state (the runner sets them on the
    prior, and a paused large job must keep its own while a small one runs) on the shared network;
    a large ``ssd-attn`` job, which may pause, gets its own copy of the network as well: attention
    injection swaps the network's attention processors while it runs."""
    own = copy.copy(prior)
    if large and method == "ssd-attn" and hasattr(prior, "network"):
        own.network, own.compiled = copy.deepcopy(prior.network), None
    return own


# ---- files -------------------------------------------------------------------------------------------------

class Workspace:
    """This process's private folder for uploads, results and examples.

    Made by :func:`tempfile.mkdtemp` (mode 0700, an unpredictable name), so no other user can put
    a symlink where the page writes or cleans up. Clean-up removes only folders this object made
    and recorded, and only while they are still real folders, never through a symlink; the rest
    goes when the process exits (or at ``close()``), and the root with it if nothing else is left.
    """

    def __init__(self, keep: int = 16, parent: str | os.PathLike | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="ssdiff_app-", dir=parent))
        self.keep = keep
        self._made: list[Path] = []  # folders made here and not removed yet
        self._finished: deque[Path] = deque()  # request folders whose request is over, oldest first
        self._lock = threading.Lock()
        self.close = weakref.finalize(self, _remove_folders, self.root, self._made)  # runs at exit too

    def folder(self, prefix: str) -> Path:
        """A new private folder in the root."""
        with self._lock:
            folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))
            self._made.append(folder)
        return folder

    @contextlib.contextmanager
    def request(self) -> Iterator[Path]:
        """A new folder for one request. Once the request is over, only the newest ``keep`` such
        folders are kept (the page has shown their files by then); a running request's is never removed."""
        folder = self.folder("request-")
        try:
            yield folder
        finally:
            with self._lock:
                self._finished.append(folder)
                while len(self._finished) > self.keep:
                    old = self._finished.popleft()
                    self._made.remove(old)
                    _remove_own_folder(old)


def _remove_own_folder(folder: Path) -> None:
    # a real folder only: whatever took its place is left alone (rmtree itself removes the
    # symlinks inside a folder without following them)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


def _remove_folders(root: Path, made: list[Path]) -> None:
    for folder in made:
        _remove_own_folder(folder)
    made.clear()
    with contextlib.suppress(OSError):  # not empty: what is left was not made by this process
        root.rmdir()


_workspace: Workspace | None = None
_workspace_lock = threading.Lock()


def workspace() -> Workspace:
    """The app's private folder in this process, made at first use."""
    global _workspace
    with _workspace_lock:
        if _workspace is None:
            _workspace = Workspace()
        return _workspace


# ---- the handler ---------------------------------------------------------------------------------------------

def restore_upload(prior, upload: str | os.PathLike | None, *, clean: bool, task: str, scale: int | None = 4,
                   sigma_y: float = 0.0, mask: str | None = None, kernel: str | None = None, method: str | None = None,
                   nfe: int = 30, seed: int = 0, work: str | os.PathLike | None = None, limits: Limits = Limits(),
                   queue: JobQueue | None = None, cancel: threading.Event | None = None,
                   on_progress: Callable[[int, int], None] | None = None,
                   on_status: Callable[[str], None] | None = None) -> AppResult:
    """Restore one upload as ``ssdiff restore`` would (``--from-clean`` when ``clean``).

    Files go to ``work`` (default: a new folder of :func:`workspace`). It runs when ``queue`` gives
    it the turn (default: at once); ``on_status`` is told its wait and its estimate, ``on_progress``
    its network forwards; setting ``cancel`` stops it within one forward, with :class:`Cancelled`.
    """

    if task not in OPERATORS:
        raise AppError(f"unknown task {task!r}; choose from: {', '.join(OPERATORS)}")
    method = default_method(int(nfe)) if not method or method == AUTO else method
    if method not in METHODS:
        raise AppError(f"unknown method {method!r}; choose from: {', '.join(METHODS)}")
    image = check_upload(upload, limits.max_pixels, limits.max_bytes)
    name, nfe = Path(upload).name, int(nfe)
    spec, size = plan_restoration(name, image, clean, task, task_params(task, scale, mask, kernel), limits.max_pixels)
    megapixel_calls = check_work(name, *size, nfe, limits.max_work)
    with contextlib.nullcontext(Path(work)) if work else workspace().request() as folder:
        stem = re.sub(r"[^\w.-]", "_", Path(upload).stem)[:60] or "upload"
        source = folder / "in" / f"{stem}.png"
        write_image(image, source)  # the upload as the PNG the runner reads, whatever its format
        run = partial(restore_files, [source], folder / "out", spec=spec, method=method, nfe=nfe, seed=int(seed),
                      from_clean=clean, sigma_y=float(sigma_y), batch_size=BATCH)
        try:
            with (queue if queue is not None else JobQueue()).job(megapixel_calls, cancel, on_status) as job:
                outcome, lines, guess = _run_in_turn(run, job, prior, method, size, nfe, on_progress)
        except StopJob:  # nothing to download: the runner writes a result only once it is restored
            raise Cancelled("cancelled") from None
        except (InputError, OperatorError, ValueError) as error:
            raise AppError(str(error)) from None
        messages = [re.sub(r"^ssdiff: (error|warning): ", r"\1: ", line.replace(f"{source}: ", "")) for line in lines]
        restored_path = folder / "out" / f"{stem}.png"
        if outcome.failed or not restored_path.is_file():
            raise AppError(next((m for m in messages if m.startswith("error")), "the restoration failed").removeprefix("error: "))
        restored = read_image(restored_path)
        measurement_picture = read_image(folder / "out" / f"{stem}_measurement.png") if clean else image
        shown, pinv = _pictures(spec, clean, measurement_picture, tuple(restored.shape[-2:]), folder)
        scores = {"PSNR": psnr(restored, image), "SSIM": ssim(restored, image)} if clean else {}
        told = [f"- estimated before it started: {guess}"] if guess else []
        report = "\n".join([*outcome.lines, *told, *(f"- {m}" for m in messages)])
        return AppResult(shown, pinv, restored_path, report, scores, guess)


def _run_in_turn(run: Callable, job: Job, prior, method: str, size: tuple[int, int], nfe: int,
                 on_progress: Callable[[int, int], None] | None):
    """``run`` (the runner on one upload) in ``job``'s turn: estimated first, and with the job's
    checkpoint after each network forward; its outcome, its messages and the estimate."""
    # timed in the turn, on the shared network: beside a running job, a forward would time both
    guess = estimate(prior, *size, nfe)
    job.on_status(f"restoring, {guess}" if guess else "restoring")
    job.checkpoint()

    def after_forward(done: int, total: int) -> None:
        if on_progress:
            on_progress(done, total)
        job.checkpoint()

    with captured_messages() as lines:
        outcome = run(prior=job_prior(prior, method, job.large), on_progress=after_forward)
    return outcome, lines, guess


@contextlib.contextmanager
def captured_messages() -> Iterator[list[str]]:
    """The runner's one-line errors and warnings (on stderr) and the library's warnings (an untuned
    ssd-fast, ...) while the block runs, as lines ``ssdiff: warning: ...``, filled in at its end."""
    stderr, lines = io.StringIO(), []
    try:
        with contextlib.redirect_stderr(stderr), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield lines
    finally:
        lines += [in_app_words(line) for line in stderr.getvalue().splitlines() if line.startswith("ssdiff: ")]
        lines += [in_app_words(f"ssdiff: warning: {w.message}") for w in caught if issubclass(w.category, UserWarning)]


# The command line's options that messages name, as the page's controls (or nothing, where the page
# has no such control and the advice is the command line's only)
APP_WORDS = {
    " (crop the photo to the face, or --frame tiles to silence this)": " (crop the photo to the face)",
    " with --frame tiles": " (on the command line, with --frame tiles)",
    " (or use --frame tiles)": "",
    "; --frame tiles restores it in tiles instead)": ")",
    "use --from-clean": 'tick "the upload is clean"',
    "a larger --nfe": "more network calls (the NFE slider)",
    "--sigma-y": "the measurement noise slider",
}


def in_app_words(line: str) -> str:
    """A message of the command line in the page's words: its controls named, not its options."""
    for option, control in APP_WORDS.items():
        line = line.replace(option, control)
    return line


def _pictures(spec: TaskSpec, clean: bool, measurement_picture: torch.Tensor, size: tuple[int, int],
              folder: Path) -> tuple[Path, Path | None]:
    """The input as a person sees it at the restored ``size``, and A+y (None where the measurement is no picture)."""
    height, width = size
    shown, pinv = folder / "measurement.png", None
    try:  # A+y at the size the operator took (a clean upload is padded to a multiple of the scale)
        valid = spec.valid_size(height, width)
        operator = spec.operator(valid) if clean else spec.photo_operator(tuple(measurement_picture.shape[-2:]))
        y = image_to_measurement(operator, measurement_picture, "the measurement")
        write_image(display_measurement(operator, y, valid, "bicubic")[..., :height, :width], shown)
        pinv = folder / "pinv.png"
        write_image(photo_frame(operator, operator.A_pinv(y[None]))[0].clamp(-1, 1)[..., :height, :width], pinv)
    except (InputError, OperatorError):
        pinv = None
    if not shown.is_file():
        write_image(measurement_picture, shown)
    return shown, pinv


def example_images(folder: Path) -> dict[str, Path]:
    """Public-domain pictures from scikit-image's data, written once into ``folder`` (by name): the
    astronaut's face framed as ``ssdiff demo`` frames it, and the whole portrait."""
    from PIL import Image
    from skimage import data

    from .demo import astronaut_face
    from .io import pil_to_tensor

    folder.mkdir(parents=True, exist_ok=True)
    makers = {"astronaut_face.png": lambda: astronaut_face(64),
              "astronaut.png": lambda: torch.nn.functional.interpolate(
                  pil_to_tensor(Image.fromarray(data.astronaut()))[None], size=(256, 256), mode="area")[0]}
    paths = {}
    for name, make in makers.items():
        paths[name] = folder / name
        if not paths[name].is_file():
            write_image(make(), paths[name])
    return paths


# What the option controls hold until the user or an example changes them
OPTION_DEFAULTS = {"scale": 4, "mask": "center", "kernel": "motion:9,30", "sigma_y": 0.0}


@dataclass(frozen=True)
class Example:
    """One of the page's examples: a task shown off on one of :func:`example_images`' pictures, a
    clean image degraded here, with the task's own options (of :data:`TASK_OPTIONS`) and sigma_y."""

    label: str
    picture: str
    task: str
    options: dict[str, Any] = field(default_factory=dict)

    def row(self, pictures: dict[str, Path]) -> list[Any]:
        """Its values for the page's controls, given :func:`example_images`: the picture, clean, the task,
        then those of :data:`EXAMPLE_CONTROLS` (the defaults where the task has no such option)."""
        values = {**OPTION_DEFAULTS, **self.options}
        return [str(pictures[self.picture]), True, self.task, *(values[name] for name in EXAMPLE_CONTROLS)]


EXAMPLE_CONTROLS = (*PAGE_OPTIONS, "sigma_y")
# One per task, each chosen to show it off with the built-in face prior at the page's default budget
EXAMPLES = (
    Example("super-resolution x4 (bicubic)", "astronaut_face.png", "sr_bicubic", {"scale": 4}),
    Example("super-resolution x4 (box average) of a whole portrait", "astronaut.png", "sr_average", {"scale": 4}),
    Example("colorization", "astronaut_face.png", "colorization"),
    Example("deblurring a strong Gaussian blur", "astronaut_face.png", "deblur_gauss"),
    Example("deblurring a motion blur", "astronaut_face.png", "deblur_kernel", {"kernel": "motion:15,45"}),
    Example("inpainting a box over the face", "astronaut_face.png", "inpaint", {"mask": "center"}),
    Example("denoising (noise of sigma_y 0.2)", "astronaut_face.png", "denoise", {"sigma_y": 0.2}),
)


# ---- the page ------------------------------------------------------------------------------------------------

class CancelFlags:
    """The cancel flags of each browser session's running restorations (by Gradio's session hash):
    what the session's Cancel button sets."""

    def __init__(self):
        self._flags: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def job(self, session: str) -> Iterator[threading.Event]:
        flag = threading.Event()
        with self._lock:
            self._flags.setdefault(session, set()).add(flag)
        try:
            yield flag
        finally:
            with self._lock:
                self._flags[session].discard(flag)
                if not self._flags[session]:
                    del self._flags[session]

    def cancel(self, session: str) -> int:
        """Set the session's flags; how many there were."""
        with self._lock:
            flags = list(self._flags.get(session, ()))
        for flag in flags:
            flag.set()
        return len(flags)


def build_app(prior, examples_dir: Path | None = None, limits: Limits = Limits(), concurrency: int = CONCURRENCY,
              large_work: float = LARGE_WORK):
    """The Gradio page around :func:`restore_upload` for ``prior``, with :data:`EXAMPLES` written into
    ``examples_dir`` (a private folder, such as one of :func:`workspace`): ``concurrency`` requests
    taken in at once (Gradio's queue holds the rest), at most ``concurrency - 1`` of them large."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    if concurrency < 2:
        raise ValueError("concurrency must be at least 2: one request that is large, and one that is not")
    queue, running = JobQueue(large_work, max_large=concurrency - 1), CancelFlags()

    # Gradio finds the progress bar by this default value: its documented way, hence the noqa
    def run(upload, clean, task, scale, sigma_y, mask, kernel, method, nfe, seed, request: gr.Request,
            progress=gr.Progress()):  # noqa: B008
        status = "starting"

        def show_status(text: str) -> None:
            nonlocal status
            status = text
            progress(None, desc=text)

        def report_progress(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"{done}/{total} network forwards; {status}")

        upload = (upload or {}).get("path")  # the upload's payload, unpreprocessed: the uploaded file's path
        with running.job(request.session_hash) as cancel:
            try:
                result = restore_upload(prior, upload, clean=clean, task=task, scale=scale, sigma_y=sigma_y, mask=mask,
                                        kernel=kernel, method=method, nfe=nfe, seed=seed, limits=limits, queue=queue,
                                        cancel=cancel, on_progress=report_progress, on_status=show_status)
            except Cancelled:  # the user's own doing: said in the report, not as an error
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), CANCELLED, gr.skip()
            except AppError as error:
                raise gr.Error(str(error), print_exception=False) from None
        scores = "  \n".join(f"**{k}** {v:.2f}" if k == "PSNR" else f"**{k}** {v:.3f}" for k, v in result.scores.items())
        # the scores of a clean upload are those of a simulated measurement: far above a real photo's
        simulated = "on the simulated measurement:  \n" if scores else ""
        report = (simulated + scores + "\n\n" if scores else "") + result.report
        # the slider compares the input as a person sees it (enlarged bicubically) with the result
        return (str(result.measurement), str(result.pinv) if result.pinv else None, str(result.restored),
                (str(result.measurement), str(result.restored)), report, str(result.restored))

    def cancel(request: gr.Request) -> str:
        running.cancel(request.session_hash)
        return CANCELLED

    # Gradio passes the request to parameters annotated gr.Request; this module's annotations are
    # strings (__future__), which it resolves in the module's globals, where gradio is not imported
    run.__annotations__["request"] = cancel.__annotations__["request"] = gr.Request

    font = ["ui-sans-serif", "system-ui", "sans-serif"]  # system fonts: no web-font download
    theme = gr.themes.Default(font=font, font_mono=["ui-monospace", "monospace"])
    shown = TASK_OPTIONS[TASKS[0]]
    with gr.Blocks(title="ssdiff", analytics_enabled=False) as page:
        gr.Markdown(f"# ssdiff: zero-shot restoration with a diffusion prior\nPrior: **{prior.name}**. Upload a photo "
                    "(or pick an example), choose the task and the method, and restore. With *the upload is clean*, "
                    "it is degraded here first and the result is scored against it. A restoration may take at most "
                    f"{_amount(limits.max_work)} megapixel-calls (the restored image's megapixels x the network "
                    "calls); its estimated time shows when it starts.")
        with gr.Row():
            with gr.Column(scale=2):
                # the handler gets the file as sent (see the Restore event): its own message for what is no image
                upload = gr.Image(label="image", type="filepath", sources=["upload", "clipboard"], height=260,
                                  elem_id="upload")
                clean = gr.Checkbox(value=True, label="the upload is clean: degrade it first (and score the result)",
                                    elem_id="clean")
                task = gr.Dropdown(TASKS, value=TASKS[0], label="task", elem_id="task")
                # each task's own options only (TASK_OPTIONS), shown as the task changes
                controls = {
                    "scale": gr.Dropdown([2, 4, 8], value=OPTION_DEFAULTS["scale"], label="SR scale", elem_id="scale",
                                         visible="scale" in shown),
                    "mask": gr.Textbox(value=OPTION_DEFAULTS["mask"], label="inpainting mask: center, box:F or random:F",
                                       elem_id="mask", visible="mask" in shown),
                    "kernel": gr.Textbox(value=OPTION_DEFAULTS["kernel"], label="blur kernel: gauss:S, motion:L,A or disk:R",
                                         elem_id="kernel", visible="kernel" in shown),
                    "sigma_y": gr.Slider(0, 0.2, value=OPTION_DEFAULTS["sigma_y"], step=0.01, elem_id="sigma_y",
                                         label="measurement noise sigma_y ([-1, 1] units)"),
                }
                method = gr.Dropdown([AUTO, *METHODS], value=AUTO, label="method", elem_id="method")
                nfe = gr.Slider(2, 100, value=10, step=1, label="network calls (NFE)", elem_id="nfe")
                seed = gr.Number(value=0, precision=0, label="seed")
                with gr.Row():
                    go = gr.Button("Restore", variant="primary", elem_id="restore")
                    stop = gr.Button("Cancel", elem_id="cancel")
                if examples_dir is not None:  # each fills in the upload, the task and its options
                    pictures = example_images(examples_dir)
                    gr.Examples([example.row(pictures) for example in EXAMPLES],
                                inputs=[upload, clean, task, *(controls[name] for name in EXAMPLE_CONTROLS)],
                                example_labels=[example.label for example in EXAMPLES], label="examples, one per task",
                                elem_id="examples")
            with gr.Column(scale=3):
                # the comparison a person judges by: the input as they see it (enlarged bicubically) and the result
                slider = gr.ImageSlider(label="input | restored (drag to compare)", type="filepath", height=560,
                                        max_height=560, interactive=False, elem_id="slider")
                report = gr.Markdown(elem_id="report")
                download = gr.File(label="download the PNG", interactive=False, height=110, elem_id="download")
                with gr.Accordion("the measurement, A+y and the restoration side by side", open=False,
                                  elem_id="panels"), gr.Row():
                    shown_as = {"type": "filepath", "interactive": False, "height": 240, "buttons": ["download", "fullscreen"]}
                    measurement = gr.Image(label="input (enlarged)", elem_id="measurement", **shown_as)
                    pinv = gr.Image(label="A+y", elem_id="pinv", **shown_as)
                    restored = gr.Image(label="restored", elem_id="restored", **shown_as)

        def show_options(chosen: str) -> list:
            return [gr.update(visible=option in TASK_OPTIONS.get(chosen, ())) for option in PAGE_OPTIONS]

        # .change, not .input: an example that sets the task shows its options too
        task.change(show_options, task, [controls[option] for option in PAGE_OPTIONS], queue=False,
                    show_progress="hidden")
        # No Gradio-level lane: its queue is one line per event, and whether a request is large is
        # known only inside the handler, so JobQueue orders the requests that Gradio lets in.
        # Unpreprocessed (restore_upload converts and checks every value itself), so that the handler gets
        # the uploaded file as the user sent it, which Gradio's upload route stores unchanged: gr.Image's
        # preprocessing would open it with Pillow first (a file that is no image getting Gradio's error,
        # which names the server's folder, instead of check_upload's) and save an image of another mode
        # anew in RGB (an RGBA PNG's transparent pixels in their colour, where ssdiff.io puts white). So
        # check_upload counts the user's own pixels and bytes. Gradio still checks that the file is one
        # uploaded to it.
        restoring = go.click(run, [upload, clean, task, *(controls[name] for name in ("scale", "sigma_y", "mask", "kernel")),
                                   method, nfe, seed],
                             [measurement, pinv, restored, slider, report, download], concurrency_limit=concurrency,
                             preprocess=False)
        # `cancels` drops a request still waiting in Gradio's queue; a running one (a thread, which
        # Gradio lets finish) stops at its next network forward through its flag
        stop.click(cancel, None, report, cancels=[restoring], queue=False)
    page.queue(max_size=16)
    page.ssdiff_theme, page.ssdiff_queue = theme, queue
    return page


# The folded-away pictures fill their boxes, as the slider's do (gr.Image shows a small image at its own size)
CSS = "#panels img { width: 100%; height: 100%; object-fit: contain; }"


def launch(page, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Serve the page on ``host:port`` (local only by default), without telemetry."""
    return page.launch(server_name=host, server_port=port, max_file_size=MAX_BYTES, prevent_thread_lock=not block,
                       quiet=True, theme=page.ssdiff_theme, css=CSS, footer_links=[], share=False, show_error=True,
                       ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False)
