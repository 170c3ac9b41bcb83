"""``ssdiff app``: the handler without a browser, and the page in headless Chromium."""

import shutil
import socket
from pathlib import Path

import pytest
from conftest import write_images
from PIL import Image

from ssdiff.app import AppError, check_upload, restore_upload


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
])
def test_bad_uploads_get_a_message(tmp_path, make, message):
    path = None
    if make:
        path = tmp_path / "upload.png"
        make(path)
    with pytest.raises(AppError, match=message):
        check_upload(path)


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


@pytest.mark.filterwarnings("ignore:ssd-fast. no tuned preset")  # the tiny test network has no presets
def test_the_page_in_a_real_browser(tiny_ddpm, photo, tmp_path, browser):
    pytest.importorskip("gradio")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ssdiff.app import build_app, launch

    page = build_app(tiny_ddpm)
    port = _free_port()
    launch(page, port=port, block=False)
    try:
        wait = WebDriverWait(browser, 120)
        browser.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))

        def upload(path: Path) -> None:
            browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
            wait.until(lambda d: path.stem in d.find_element(By.ID, "upload").text)

        def restored_width() -> int:
            return browser.execute_script(
                "const img = document.querySelector('#restored img'); return img && img.complete ? img.naturalWidth : 0")

        not_an_image = tmp_path / "notes.txt"
        not_an_image.write_text("not a picture")
        upload(not_an_image)
        browser.find_element(By.ID, "restore").click()
        wait.until(lambda d: "not an image this page can read" in d.page_source)
        browser.find_element(By.CSS_SELECTOR, "#upload button[aria-label=Clear]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
        upload(photo)  # the server is still serving: the next request works
        browser.find_element(By.ID, "restore").click()
        wait.until(lambda d: restored_width() > 0)
        assert restored_width() == 32  # 8x8 measurement of the 32x32 upload, restored 4x
        assert "PSNR" in browser.find_element(By.ID, "report").text
        browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        page.close()


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
