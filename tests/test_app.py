"""``ssdiff app``: the handler without a browser, and the page in headless Chromium."""

import io
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from conftest import write_images
from PIL import Image

from ssdiff import app
from ssdiff.app import (
    MAX_WORK,
    AppError,
    CancelFlags,
    Cancelled,
    JobQueue,
    Limits,
    StopJob,
    Workspace,
    check_upload,
    check_work,
    estimate,
    job_prior,
    restore_upload,
)
from ssdiff.io import read_image

try:  # for the tests in a real browser, which skip without it
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:
    By = Keys = None


@pytest.fixture()
def photo(tmp_path, images) -> Path:
    return write_images(tmp_path / "in", images[:1], ["face"]) / "face.png"


def test_handler_restores_a_clean_upload_and_scores_it(tiny_ddpm, photo, tmp_path):
    seen = []
    result = restore_upload(tiny_ddpm, photo, clean=True, task="sr_bicubic", scale=4, method="ssd", nfe=4, seed=0,
                            work=tmp_path / "work", on_progress=lambda done, total: seen.append((done, total)))
    assert Image.open(result.restored).size == (32, 32) and Image.open(result.measurement).size == (32, 32)
    assert Image.open(result.pinv).size == (32, 32)
    assert set(result.scores) == {"PSNR", "SSIM"} and "3 network calls" in result.report
    untuned = restore_upload(tiny_ddpm, photo, clean=True, task="sr_bicubic", method="ssd-fast", nfe=4)
    assert "warning: ssd-fast: no tuned preset" in untuned.report  # the library's warnings reach the page
    # one forward per call, of the budget's 4 at most; SSD's first inversion step needs none, so the bar settles at 3
    assert seen == [(1, 4), (2, 4), (3, 4), (3, 3)]


def test_handler_restores_a_real_measurement(tiny_ddpm, photo, tmp_path):
    small = tmp_path / "small.png"
    Image.open(photo).resize((8, 8)).save(small)
    result = restore_upload(tiny_ddpm, small, clean=False, task="sr_bicubic", scale=4, method="ssd", nfe=4)
    assert Image.open(result.restored).size == (32, 32) and result.scores == {}
    # a blurry photo: restored on a larger canvas, shown (A+y too) in the photo's frame
    blurry = restore_upload(tiny_ddpm, photo, clean=False, task="deblur_kernel", kernel="motion:5,30", method="ssd", nfe=4)
    assert Image.open(blurry.restored).size == Image.open(blurry.pinv).size == Image.open(photo).size


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("hello"), "not an image this page can read"),
    (lambda p: Image.new("RGB", (2100, 2000)).save(p, format="PNG"), "more than the 4 megapixels"),
    (None, "upload an image first"),
    (lambda p: p.write_bytes(_png(Image.new("RGB", (64, 64), (10, 200, 30)))[:-100]),  # its header reads
     r"^upload.png: not an image this page can read \(cannot decode image \(image file is truncated\)\)$"),
])
def test_bad_uploads_get_a_message(tmp_path, make, message):
    path = None
    if make:
        path = tmp_path / "upload.png"
        make(path)
    with pytest.raises(AppError, match=message):
        check_upload(path)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_each_task_has_its_own_options_from_one_table():
    assert app.TASK_OPTIONS == {"sr_bicubic": ("scale",), "sr_average": ("scale",), "colorization": (),
                                "deblur_gauss": (), "deblur_kernel": ("kernel",), "inpaint": ("mask",), "denoise": ()}
    assert app.task_options("sr_kernel") == ("scale", "kernel") and app.task_options("nope") == ()
    # the controls of other tasks, hidden but still sent by the page, are ignored
    assert app.task_params("colorization", 8, "not a mask", "not a kernel") == {}
    assert app.task_params("sr_average", 8, "not a mask", None) == {"scale": 8}
    assert app.task_params("inpaint", 8, " box:0.3 ", "not a kernel") == {"mask": "box:0.3"}


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("examples")
    app.example_images(folder)
    return folder


def test_one_example_per_task_with_that_tasks_options(tiny_ddpm, examples_dir):
    pictures = app.example_images(examples_dir)  # written once: the same files again
    assert sorted(example.task for example in app.EXAMPLES) == sorted(app.TASKS)
    for example in app.EXAMPLES:
        assert set(example.options) <= {*app.TASK_OPTIONS[example.task], "sigma_y"}
        path, clean, task, *values = example.row(pictures)
        assert (clean, task) == (True, example.task) and len(values) == len(app.EXAMPLE_CONTROLS)
        options = dict(zip(app.EXAMPLE_CONTROLS, values))
        image = check_upload(path)  # each goes through what a request goes through before any work, at 10 calls
        params = app.task_params(task, options["scale"], options["mask"], options["kernel"])
        assert params == {k: v for k, v in example.options.items() if k != "sigma_y"}
        _, size = app.plan_restoration(Path(path).name, image, clean, task, params, app.MAX_PIXELS)
        assert check_work(Path(path).name, *size, 10, MAX_WORK) <= app.LARGE_WORK  # small: never paused


@pytest.mark.parametrize("options,message", [
    ({"task": "nope"}, "unknown task 'nope'"), ({"task": "sr_bicubic", "method": "magic"}, "unknown method 'magic'"),
    ({"task": "deblur_kernel", "kernel": "gauss:0"}, "the size must be positive"),
    ({"task": "inpaint", "mask": "random:3"}, "random:F"), ({"task": "inpaint", "mask": "box:2"}, "box:F"),
])
def test_bad_options_get_a_message(tiny_ddpm, photo, options, message):
    with pytest.raises(AppError, match=message):
        restore_upload(tiny_ddpm, photo, clean=True, nfe=4, **options)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


class Page:
    """What a person does on the page, in one browser window (its own Gradio session)."""

    def __init__(self, driver, url: str):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        # Gradio re-renders its components: an element found a moment ago may be gone, so a wait
        # looks again rather than fail (on a busy machine this happens often)
        self.driver, self.wait = driver, WebDriverWait(driver, 120, ignored_exceptions=(StaleElementReferenceException,))
        driver.get(url)
        self.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))

    def shown(self, elem_id: str) -> bool:
        return any(element.is_displayed() for element in self.driver.find_elements(By.ID, elem_id))

    def options_shown(self) -> set[str]:
        return {option for option in app.PAGE_OPTIONS if self.shown(option)}

    def choose_task(self, task: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, "#task input").click()
        self.driver.find_element(By.CSS_SELECTOR, f"[role=option][aria-label={task}]").click()
        self.wait.until(lambda _: self.options_shown() == set(app.TASK_OPTIONS[task]))

    def upload(self, path: Path, previewed: bool = True) -> None:
        """Upload ``path`` in place of what is there, and wait for its preview (once it is uploaded)."""
        if self.driver.find_elements(By.CSS_SELECTOR, "#upload button[aria-label='Remove Image']"):
            self.driver.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Remove Image']").click()
        self.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
        self.driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
        if previewed:
            self.wait.until(lambda _: self.uploaded())

    def uploaded(self) -> bool:  # the preview is there (loaded or not: a broken file shows a broken picture)
        return bool(self.driver.find_elements(By.CSS_SELECTOR, "#upload img"))

    def set_calls(self, calls: int) -> None:
        field = self.driver.find_element(By.CSS_SELECTOR, "#nfe input[type=number]")
        field.clear()
        field.send_keys(str(calls), Keys.TAB)

    def restore(self) -> None:
        self.driver.find_element(By.ID, "restore").click()

    def compared_widths(self) -> list[int]:
        """The natural widths of the slider's pictures, once all are loaded."""
        return self.driver.execute_script(
            "const imgs = [...document.querySelectorAll('#slider img')];"
            "return imgs.every(img => img.complete) ? imgs.map(img => img.naturalWidth) : [];")

    def text(self, elem_id: str) -> str:
        return self.driver.find_element(By.ID, elem_id).text

    def told(self, start: str) -> bool:
        """Whether a message (a toast) has a line that starts with ``start``."""
        toasts = self.driver.find_elements(By.CSS_SELECTOR, "[data-testid=toast-body]")
        return any(line.startswith(start) for toast in toasts for line in toast.text.splitlines())


@pytest.fixture()
def serve(tiny_ddpm):
    """Serve a page for ``tiny_ddpm`` (build_app's options as keywords); closed at the test's end."""
    from ssdiff.app import build_app, launch

    pages = []

    def start(**options) -> tuple[object, str]:
        page = build_app(tiny_ddpm, **options)
        pages.append(page)
        port = _free_port()
        launch(page, port=port, block=False)
        return page, f"http://127.0.0.1:{port}/"

    yield start
    for page in pages:
        page.close()


@pytest.mark.filterwarnings("ignore:ssd-fast. no tuned preset")  # the tiny test network has no presets
def test_the_page_in_a_real_browser(photo, tmp_path, browser, serve, monkeypatch, examples_dir):
    pytest.importorskip("gradio")
    handled = []  # what reached the handler: the upload's file as the user sent it, and the result

    def recorded(prior, upload, **options):
        handled.append(Path(upload).read_bytes() if upload else None)
        result = restore_upload(prior, upload, **options)
        handled.append(result)
        return result

    monkeypatch.setattr(app, "restore_upload", recorded)
    _, url = serve(examples_dir=examples_dir, limits=Limits(max_pixels=100_000))
    page = Page(browser, url)

    # the form shows the chosen task's options only, and an example sets a task and its options
    assert page.options_shown() == set(app.TASK_OPTIONS["sr_bicubic"]) == {"scale"} and page.shown("sigma_y")
    for task in app.TASKS:
        page.choose_task(task)
        assert page.shown("sigma_y")  # every task's
    assert page.options_shown() == set()  # denoise, the last, has none but the noise
    browser.find_element(By.XPATH, "//*[@id='examples']//button[contains(., 'inpainting')]").click()
    page.wait.until(lambda _: page.options_shown() == {"mask"} and page.uploaded())
    assert browser.find_element(By.CSS_SELECTOR, "#task input").get_attribute("value") == "inpaint"
    page.choose_task("sr_bicubic")

    # what the browser's image input refuses itself, and what the server refuses with its own message
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.upload(notes, previewed=False)
    page.wait.until(lambda _: page.told("Invalid file type: notes.txt"))
    assert not page.uploaded()
    truncated = tmp_path / "truncated.png"  # an image by its name and header, cut off: no preview, no decode
    Image.open(photo).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-200])
    page.upload(truncated)
    page.restore()
    page.wait.until(lambda _: page.told("truncated.png: not an image this page can read"))  # no server folder
    wide = tmp_path / "wide.png"  # more pixels than this server takes: counted on the file as sent
    Image.new("RGB", (400, 300), (90, 120, 40)).save(wide)
    page.upload(wide)
    page.restore()
    page.wait.until(lambda _: page.told("wide.png: 400x300 is more than the 0.1 megapixels"))

    # restore, compare, download; the server is still serving after the refusals
    see_through = tmp_path / "see_through.png"  # RGBA: gr.Image's own preprocessing would save it anew in RGB
    rgba = Image.open(photo).convert("RGBA")
    rgba.putpixel((0, 0), (255, 0, 0, 0))
    rgba.save(see_through)
    handled.clear()
    page.upload(see_through)
    page.restore()
    page.wait.until(lambda _: len(page.compared_widths()) == 2)
    assert page.compared_widths() == [32, 32]  # 8x8 measurement of the 32x32 upload shown enlarged | restored 4x
    assert handled[0] == see_through.read_bytes()  # the handler read the user's own file, byte for byte
    assert "PSNR" in page.text("report")
    link = browser.find_element(By.CSS_SELECTOR, "#download a")
    with urllib.request.urlopen(link.get_attribute("href")) as response:
        downloaded = response.read()
    assert downloaded[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(io.BytesIO(downloaded)).size == (32, 32)
    assert downloaded == handled[1].restored.read_bytes()
    browser.find_element(By.ID, "panels").click()  # the three pictures side by side, under the comparison
    page.wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#measurement img, #pinv img, #restored img')]"
        ".filter(img => img.complete && img.naturalWidth == 32).length") == 3)
    browser.save_screenshot(str(tmp_path / "page.png"))


@pytest.mark.filterwarnings("ignore:ssd-fast. no tuned preset")
def test_a_second_persons_small_job_finishes_while_a_large_one_runs(photo, tmp_path, browser, serve):
    pytest.importorskip("gradio")
    server, url = serve()
    large = tmp_path / "large.png"  # 225 tiles of the 32x32 network: 29 forwards a call, 2900 at 100 calls
    Image.new("RGB", (256, 256), (90, 120, 40)).save(large)
    first = Page(browser, url)
    first_window = browser.current_window_handle
    first.upload(large)
    first.set_calls(100)
    first.restore()
    first.wait.until(lambda d: "network forwards; restoring, about" in d.page_source)  # the estimate, while it runs

    browser.switch_to.new_window("window")  # another person: a page load of its own, a Gradio session of its own
    second = Page(browser, url)
    second.upload(photo)
    second.restore()
    second.wait.until(lambda _: second.compared_widths() == [32, 32])
    assert server.ssdiff_queue.jobs() == 1  # done, while the large one is still taken in
    assert "PSNR" in second.text("report")

    browser.switch_to.window(first_window)
    assert not first.compared_widths()  # the large one: still running, its progress still shown
    first.wait.until(lambda d: "network forwards" in d.page_source)
    browser.find_element(By.ID, "cancel").click()
    first.wait.until(lambda _: "cancelled" in first.text("report"))
    stopped = time.monotonic() + 10
    while server.ssdiff_queue.jobs() and time.monotonic() < stopped:  # the job itself stops, not just the page
        time.sleep(0.05)
    assert server.ssdiff_queue.jobs() == 0


def test_clean_uploads_of_any_size_and_spec_only_options(tiny_ddpm, tmp_path):
    odd = tmp_path / "odd.png"
    Image.new("RGB", (30, 22), (120, 80, 40)).save(odd)
    result = restore_upload(tiny_ddpm, odd, clean=True, task="sr_bicubic", scale=4, method="ssd", nfe=3)
    assert Image.open(result.restored).size == Image.open(result.pinv).size == (30, 22)
    with pytest.raises(AppError, match="takes gauss:SIGMA"):
        restore_upload(tiny_ddpm, odd, clean=True, task="deblur_kernel", kernel="/etc/passwd", nfe=3)
    with pytest.raises(AppError, match="takes center, box:F"):
        restore_upload(tiny_ddpm, odd, clean=True, task="inpaint", mask="/etc/hostname", nfe=3)
    big = tmp_path / "big.png"
    Image.new("RGB", (1000, 600)).save(big)
    with pytest.raises(AppError, match="restored 8x larger"):
        restore_upload(tiny_ddpm, big, clean=False, task="sr_bicubic", scale=8, nfe=3)


# ---- the app's own folder (no fixed path in the shared temporary folder) ----

def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _folder_with_a_file(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "keep.txt").write_text("not the app's")
    os.utime(path / "keep.txt", (0, 0))  # older than anything the app makes
    return path


def test_a_symlink_at_the_old_fixed_path_is_never_followed(tiny_ddpm, photo, tmp_path, monkeypatch):
    tmp, victim = tmp_path / "tmp", _folder_with_a_file(tmp_path / "victim")
    tmp.mkdir()
    (tmp / "ssdiff_app").symlink_to(victim, target_is_directory=True)  # the fixed path the app used to clean up
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(app, "_workspace", None)  # this test's process-wide folder, in tmp
    result = restore_upload(tiny_ddpm, photo, clean=True, task="sr_bicubic", method="ssd", nfe=3)
    root = app.workspace().root
    assert root.parent == tmp and root.name.startswith("ssdiff_app-") and _mode(root) == 0o700
    assert result.restored.parent.parent.parent == root and _mode(result.restored.parent.parent) == 0o700
    for _ in range(20):  # more requests than the workspace keeps: its clean-up runs
        with app.workspace().request():
            pass
    assert not result.restored.exists() and (victim / "keep.txt").is_file()
    app.workspace().close()
    assert not root.exists() and sorted(p.name for p in victim.iterdir()) == ["keep.txt"]


def test_clean_up_removes_only_the_oldest_of_its_own_request_folders(tmp_path):
    victim = _folder_with_a_file(tmp_path / "victim")
    workspace = Workspace(keep=2, parent=tmp_path)
    foreign = _folder_with_a_file(workspace.root / "foreign")  # not made by the workspace: never removed
    with workspace.request() as running:  # a running request's folder outlives any number of finished ones
        made = []
        for _ in range(4):
            with workspace.request() as folder:
                (folder / "result.png").write_text("x")
                made.append(folder)
            if len(made) == 1:  # the oldest is swapped for a symlink before its clean-up
                shutil.rmtree(made[0])
                made[0].symlink_to(victim, target_is_directory=True)
        assert running.is_dir() and _mode(running) == 0o700
    assert [folder.is_dir() for folder in made[1:]] == [False, False, True]  # kept: the newest two, made[3] and running
    assert made[0].is_symlink() and (victim / "keep.txt").is_file() and (foreign / "keep.txt").is_file()
    workspace.close()
    assert sorted(p.name for p in workspace.root.iterdir()) == sorted(["foreign", made[0].name])
    assert (victim / "keep.txt").is_file() and (foreign / "keep.txt").is_file()


# ---- a request's work, estimate and cancellation ----

def test_the_work_bound_refuses_before_anything_is_written(tiny_ddpm, photo, tmp_path):
    message = "face.png: restoring 32x32 at 30 calls is 0.031 megapixel-calls, more than the 0.01 this page allows; lower"
    with pytest.raises(AppError, match=message):
        restore_upload(tiny_ddpm, photo, clean=True, task="sr_bicubic", nfe=30, work=tmp_path / "work",
                       limits=Limits(max_work=0.01))
    assert not (tmp_path / "work").exists()
    with pytest.raises(AppError, match="32x32 is more than the 0.001 megapixels"):
        restore_upload(tiny_ddpm, photo, clean=True, task="sr_bicubic", nfe=3, limits=Limits(max_pixels=1000))
    # the default lets a 256x256 photo through at 100 calls, a 64x64 one at any budget the page offers
    assert check_work("a", 256, 256, 100, MAX_WORK) == pytest.approx(6.5536)
    assert check_work("a", 64, 64, 100, MAX_WORK) < MAX_WORK
    with pytest.raises(AppError, match="2048x2048 at 30 calls is 126 megapixel-calls, more than the 20 this page"):
        check_work("a", 2048, 2048, 30, MAX_WORK)


def test_the_estimate_is_told_before_the_first_forward_and_reported(tiny_ddpm, photo):
    told = []
    result = restore_upload(tiny_ddpm, photo, clean=True, task="sr_bicubic", method="ssd", nfe=4,
                            on_status=told.append, on_progress=lambda done, total: told.append(done))
    assert isinstance(told[0], str) and told[0].startswith("restoring, about ") and told[1:] == [1, 2, 3, 3]
    guess = result.estimate
    assert (guess.calls, guess.forwards_per_call) == (4, 1) and guess.seconds == pytest.approx(4 * guess.seconds_per_forward)
    assert f"- estimated before it started: {guess}" in result.report and str(guess) in told[0]
    # a 64x64 image is 9 tiles of the 32x32 network: two forwards of at most 8 per call
    tiled = estimate(tiny_ddpm, 64, 64, 10)
    assert tiled.forwards_per_call == 2 and "10 calls x 2 forwards x" in str(tiled)


def test_cancel_stops_a_restoration_within_a_forward(tiny_ddpm, photo, tmp_path):
    cancel, forwards = threading.Event(), []

    def cancel_at_first(done: int, total: int) -> None:
        forwards.append(done)
        cancel.set()

    with pytest.raises(Cancelled, match="cancelled"):
        restore_upload(tiny_ddpm, photo, clean=True, task="sr_bicubic", method="ssd", nfe=20, cancel=cancel,
                       on_progress=cancel_at_first, work=tmp_path / "work")
    assert forwards == [1] and not (tmp_path / "work" / "out").exists()  # nothing partial to download


def test_cancel_from_another_thread(tiny_ddpm, tmp_path):
    large = tmp_path / "large.png"
    Image.new("RGB", (64, 64), (90, 120, 40)).save(large)
    cancel, started, forwards, outcome = threading.Event(), threading.Event(), [], []

    def restore() -> None:
        try:
            restore_upload(tiny_ddpm, large, clean=True, task="sr_bicubic", method="ssd", nfe=100, cancel=cancel,
                           on_progress=lambda done, total: (forwards.append(done), started.set()))
        except Cancelled as error:
            outcome.append(error)

    thread = threading.Thread(target=restore)
    thread.start()
    assert started.wait(30)
    cancel.set()
    forwards_when_cancelled = len(forwards)
    thread.join(30)
    assert outcome and len(forwards) <= forwards_when_cancelled + 1 < 200


def test_cancel_flags_are_per_session():
    flags = CancelFlags()
    with flags.job("alice") as alice, flags.job("bob") as bob:
        assert flags.cancel("alice") == 1 and alice.is_set() and not bob.is_set()
    assert flags.cancel("alice") == 0  # her job is over: nothing left to cancel


# ---- the queue: small jobs are never stuck behind a large one ----

def _large_job(queue: JobQueue, started: threading.Event, finish: threading.Event, log: list, name: str = "large",
               waits: threading.Event | None = None):
    """A large job whose forwards go on until ``finish`` (5 s at most: a broken queue fails the test
    instead of hanging it), with the queue's checkpoint between them; ``waits`` is set if it must wait."""
    def run() -> None:
        with queue.job(5.0, on_status=lambda _: waits and waits.set()) as job:
            started.set()
            give_up = time.monotonic() + 5
            while not finish.is_set() and time.monotonic() < give_up:
                job.checkpoint()
                log.append(name)
                time.sleep(0.001)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_small_job_runs_while_the_large_one_pauses_between_forwards():
    queue, log, told = JobQueue(large_work=1.0), [], []
    started, finish = threading.Event(), threading.Event()
    thread = _large_job(queue, started, finish, log)
    try:
        assert started.wait(5)
        with queue.job(0.5, on_status=told.append) as small:
            log.append("small starts")
            time.sleep(0.05)  # the large job, had it not paused, would run forwards meanwhile
            log.append("small ends")
        assert not small.large and thread.is_alive() and told == ["waiting for 1 restoration(s) before this one"]
        assert log[log.index("small starts") + 1] == "small ends"  # one job computes at a time
        resumed = time.monotonic() + 5
        while log[-1] != "large" and time.monotonic() < resumed:  # and the large one goes on after it
            time.sleep(0.001)
        assert log[-1] == "large"
    finally:
        finish.set()
        thread.join(5)
    assert queue.jobs() == 0


def test_large_jobs_wait_in_order_and_too_many_are_refused():
    queue, log = JobQueue(large_work=1.0, max_large=2), []
    first_started, second_started, second_waits, finish_first, finish_second = (threading.Event() for _ in range(5))
    first = _large_job(queue, first_started, finish_first, log, "first")
    assert first_started.wait(5)
    second = _large_job(queue, second_started, finish_second, log, "second", second_waits)
    try:
        assert second_waits.wait(5)
        with pytest.raises(AppError, match="busy with 2 large restorations"), queue.job(5.0):
            pass
        with queue.job(0.5):  # a small job still gets its turn
            pass
        assert not second_started.wait(0.05) and queue.jobs() == 2  # the second waits for the first
        finish_first.set()
        assert second_started.wait(5)
    finally:
        finish_first.set()
        finish_second.set()
        first.join(5)
        second.join(5)


def test_a_cancelled_job_leaves_the_queue_while_it_waits():
    queue, started, finish, log = JobQueue(large_work=1.0), threading.Event(), threading.Event(), []
    thread = _large_job(queue, started, finish, log)
    try:
        assert started.wait(5)
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(StopJob), queue.job(5.0, cancel=cancel):  # waits behind the large job till it sees the cancel
            pass
        assert queue.jobs() == 1
    finally:
        finish.set()
        thread.join(5)


def test_a_small_upload_overtakes_a_large_restoration_and_both_come_out_as_alone(tiny_ddpm, photo):
    # The large one injects attention: ssd-attn stores attention maps in its inversion and swaps the
    # network's attention processors while it runs; the small one arrives while maps are stored.
    large = {"clean": True, "task": "sr_bicubic", "method": "ssd-attn", "nfe": 21}  # 0.022 megapixel-calls
    small = {"clean": True, "task": "sr_bicubic", "method": "ssd", "nfe": 4}  # 0.0041
    alone = [read_image(restore_upload(tiny_ddpm, photo, **options).restored) for options in (large, small)]
    queue, log, small_waits, results = JobQueue(large_work=0.008), [], threading.Event(), {}

    def run(name: str, options: dict, after_forward=lambda: None, on_status=None) -> None:
        def forward(done: int, total: int) -> None:
            log.append(name)
            after_forward()

        results[name] = restore_upload(tiny_ddpm, photo, queue=queue, on_progress=forward, on_status=on_status, **options)
        log.append(f"{name} done")

    def told(text: str) -> None:
        log.append(text)
        small_waits.set()

    small_thread = threading.Thread(target=run, args=("small", small), kwargs={"on_status": told})

    def arrive_mid_run() -> None:
        if log.count("large") == 3:  # the inversion's third forward, whose attention maps are stored for injection
            small_thread.start()
            small_waits.wait(30)

    large_thread = threading.Thread(target=run, args=("large", large), kwargs={"after_forward": arrive_mid_run})
    large_thread.start()
    large_thread.join(60)
    small_thread.join(60)
    waited = log.index("waiting for 1 restoration(s) before this one")
    assert log[waited - 3 : waited] == ["large"] * 3 and log[waited + 1].startswith("restoring, about")
    assert log[waited + 2 : waited + 6] == ["small"] * 4  # one job computes at a time
    together = [read_image(results[name].restored) for name in ("large", "small")]
    assert all(torch.equal(a, b) for a, b in zip(alone, together))


def test_each_job_runs_on_its_own_prior(tiny_ddpm):
    own = job_prior(tiny_ddpm, "ssd", large=True)
    own.on_forward, own.max_batch = print, 1  # what the runner sets for its job
    assert tiny_ddpm.on_forward is None and tiny_ddpm.max_batch != 1 and own.network is tiny_ddpm.network
    attention = job_prior(tiny_ddpm, "ssd-attn", large=True)  # a large one may pause: a network of its own
    assert attention.network is not tiny_ddpm.network and job_prior(tiny_ddpm, "ssd-attn", False).network is tiny_ddpm.network


def test_messages_name_the_pages_controls_not_the_command_lines_options():
    from ssdiff.app import in_app_words

    assert in_app_words("ssdiff: warning: x.png: no face found; ... fractured (crop the photo to the face, or "
                        "--frame tiles to silence this)").endswith("fractured (crop the photo to the face)")
    assert in_app_words("ssdiff: warning: x.png: no face found; ... (crop the photo to the face if it has one; "
                        "--frame tiles restores it in tiles instead)").endswith("(crop the photo to the face if it has one)")
    assert in_app_words("ssdiff: error: y.png: compressed-sensing measurements are not images; use --from-clean") \
        .endswith('tick "the upload is clean"')
    assert "--" not in in_app_words("ssdiff: warning: z.png: 12 network calls; a larger --nfe usually closes the gap")
