"""Screenshot of `ssdiff app` after a restoration, for the README (docs/app.png).

Starts the page with the built-in prior, uploads the astronaut-face example in headless Chromium
(Debian's chromium and chromium-driver), restores it (4x SR, ssd-fast at 10 calls) and saves the page.

    python scripts/app_screenshot.py --out docs/app.png
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import ssdiff
from ssdiff.app import build_app, launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/app.png")
    args = parser.parse_args()
    examples = Path(tempfile.mkdtemp())
    page = build_app(ssdiff.load_model("celeba64"), examples_dir=examples)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch(page, port=port, block=False)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1250"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    try:
        wait = WebDriverWait(browser, 300)
        browser.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(examples / "astronaut_face.png"))
        wait.until(lambda d: "astronaut_face" in d.find_element(By.ID, "upload").text)
        browser.find_element(By.ID, "restore").click()
        wait.until(lambda d: "PSNR" in d.find_element(By.ID, "report").text)
        time.sleep(2)  # let the images settle
        browser.save_screenshot(args.out)
        print(f"wrote {args.out}")
    finally:
        browser.quit()
        page.close()


if __name__ == "__main__":
    main()
