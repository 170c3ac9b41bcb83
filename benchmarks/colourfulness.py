"""Colourfulness (Hasler and Suesstrunk 2003) of restorations against their truths, per image.

Reads a folder written by ``ssdiff restore --from-clean`` (``NAME.png`` beside ``NAME_truth.png``)
and prints each image's colourfulness, truth and result, their ratio and the PSNR; the baseline of
the issue on colourless photo colorization (target: the result at least 70 % of the truth's):

    ssdiff restore ../shared/data/face_photos --task colorization --from-clean --nfe 10 --out runs/colour
    python benchmarks/colourfulness.py runs/colour
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from ssdiff.io import read_image
from ssdiff.metrics import colourfulness, psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="an output folder of ssdiff restore --from-clean")
    folder = Path(parser.parse_args().folder)
    print("| image | truth | result | result / truth | PSNR |\n| --- | ---: | ---: | ---: | ---: |")
    rows = []
    for truth_path in sorted(folder.glob("*_truth.png")):
        stem = truth_path.name[: -len("_truth.png")]
        truth, result = read_image(truth_path), read_image(folder / f"{stem}.png")
        rows.append((colourfulness(truth), colourfulness(result), psnr(result, truth)))
        print(f"| {stem} | {rows[-1][0]:.1f} | {rows[-1][1]:.1f} | {rows[-1][1] / rows[-1][0]:.2f} | {rows[-1][2]:.2f} |")
    truth, result, quality = (statistics.mean(column) for column in zip(*rows))
    print(f"| mean of {len(rows)} | {truth:.1f} | {result:.1f} | {result / truth:.2f} | {quality:.2f} |")


if __name__ == "__main__":
    main()
