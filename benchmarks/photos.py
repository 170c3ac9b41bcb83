"""Real face photos larger than the built-in prior: face framing against tiles and a classical baseline.

Each photo (cropped at the bottom and right to a multiple of 8 px) is the truth; its measurement
is simulated (SR x4, SR x8, colorization, inpainting) and restored three ways: the plain baseline
(bicubic upsampling for SR, ``A+y`` for colorization, the known pixels interpolated by normalised
convolution for inpainting), the whole photo in tiles of the prior's size
(``--frame tiles``), and the face restored in the prior's framing and pasted back (``--frame
auto``, the default, with its fallbacks when no face is found). Results go to ``--out`` as they come (a rerun resumes), then the tables.

    python benchmarks/photos.py --data ../shared/data/face_photos --out runs/photos \
        --methods ssd@30,ssd-fast@10 --tasks sr_bicubic4,sr_bicubic8,colorization
    python benchmarks/photos.py --data ../shared/data/face_photos --out runs/photos \
        --methods ssd-fast@10 --tasks inpaint_random80,inpaint_box30
    python benchmarks/photos.py --data ../shared/data/face_photos --out runs/photos \
        --methods ssd@30 --ways face --tasks inpaint_random80,inpaint_box30
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ssdiff
from ssdiff.faces import face_template, plan_framing, restore_face
from ssdiff.figures import Panel, render
from ssdiff.io import collect_images, read_image, write_bytes, write_image
from ssdiff.metrics import colourfulness, psnr, ssim
from ssdiff.operators import Inpainting, parse_task
from ssdiff.pipeline import bicubic_upsample, display_measurement, interpolate_missing


def restore_photo(prior, operator, y, way: str, method: str, nfe: int, name: str) -> tuple[torch.Tensor, int, float]:
    started = time.perf_counter()
    if way == "baseline":
        if isinstance(operator, Inpainting):
            image = interpolate_missing(y, operator)
        else:
            image = bicubic_upsample(y, operator) if getattr(operator, "scale", 1) > 1 else operator.A_pinv(y)
        calls = 0
    elif way == "tiles":
        result = ssdiff.restore(prior, operator, y, method=method, nfe=nfe, seed=0)
    else:  # the CLI's --frame auto: the face in the prior's frame; without one, what the CLI falls back to
        plan, warning = plan_framing(prior, operator, y[0], "auto", name)
        if warning:
            print(warning, flush=True)
        if plan is None:
            result = ssdiff.restore(prior, operator, y, method=method, nfe=nfe, seed=0)
        else:
            result = restore_face(prior, operator, y, plan, face_template(prior), ssdiff.restore, method=method, nfe=nfe, seed=0)
    if way != "baseline":
        image, calls = result.image, result.nfe
    return image.clamp(-1, 1), calls, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", default="ssd@30,ssd-fast@10")
    parser.add_argument("--tasks", default="sr_bicubic4,sr_bicubic8,colorization")
    parser.add_argument("--ways", default="baseline,tiles,face")
    parser.add_argument("--figure-photos", type=int, default=4, help="photos shown in each task's picture")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.jsonl"
    done = {}
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            row = json.loads(line)
            done[(row["photo"], row["task"], row["method"], row["way"])] = row
    prior = ssdiff.load_model("celeba64")
    prior.max_batch = 8  # the CLI's default
    files = collect_images([args.data])
    methods = [(m.split("@")[0], int(m.split("@")[1])) for m in args.methods.split(",")]
    ways = args.ways.split(",")
    for task in args.tasks.split(","):
        base, params = parse_task(task)
        panels = []
        for index, path in enumerate(files):
            image = read_image(path)
            height, width = image.shape[-2] // 8 * 8, image.shape[-1] // 8 * 8
            truth = image[:, :height, :width]
            operator = ssdiff.get_operator(base, image_size=(height, width), **params)
            y = operator.A(truth[None])
            row_panels = [Panel("measurement", display_measurement(operator, y[0], (height, width)))]
            for method, nfe in methods:
                for way in ways:
                    if way == "baseline" and (method, nfe) != methods[0]:
                        continue
                    key = (path.name, task, f"{method}@{nfe}" if way != "baseline" else "-", way)
                    picture = out / task / f"{path.stem}_{key[2]}_{way}.png"
                    if key not in done:
                        restored, calls, seconds = restore_photo(prior, operator, y, way, method, nfe, path.name)
                        row = {"photo": key[0], "task": key[1], "method": key[2], "way": way, "size": [height, width],
                               "psnr": psnr(restored[0], truth), "ssim": ssim(restored[0], truth), "calls": calls,
                               "seconds": seconds, "consistency": float((operator.A(restored) - y).abs().mean()),
                               "colourfulness": colourfulness(restored[0]), "truth_colourfulness": colourfulness(truth)}
                        picture.parent.mkdir(exist_ok=True)
                        write_image(restored[0], picture)
                        with open(results_file, "a") as handle:
                            handle.write(json.dumps(row) + "\n")
                        done[key] = row
                        print(f"{key}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} {calls} calls {seconds:.1f} s",
                              flush=True)
                    title = f"{key[2]} {way}" if way != "baseline" else (
                        "bicubic" if operator.name.startswith("sr") else
                        "interpolation" if isinstance(operator, Inpainting) else "A+y")
                    row = done[key]
                    row_panels.append(Panel(title, read_image(picture), {"PSNR": row["psnr"], "SSIM": row["ssim"]}))
            row_panels.append(Panel("truth", truth))
            if index < args.figure_photos:
                panels.append(row_panels)
        if panels:
            figure = [render(row, zoom=1) for row in panels]
            widest = max(f.width for f in figure)
            canvas = np.concatenate([np.pad(np.asarray(f), ((0, 0), (0, widest - f.width), (0, 0)), constant_values=255)
                                     for f in figure], axis=0)
            buffer = io.BytesIO()
            Image.fromarray(canvas).save(buffer, format="PNG")
            write_bytes(buffer.getvalue(), out / f"photos_{task}.png")
    report(list(done.values()))


def report(rows: list[dict]) -> None:
    """Per task and restoration: mean PSNR / SSIM over the photos, wins against the baseline, time."""
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task]
        baseline = {r["photo"]: r for r in mine if r["way"] == "baseline"}
        print(f"\n{task} ({len(baseline)} photos)\n")
        # colourfulness (Hasler and Suesstrunk) of the results against the truths', where the rows have it
        colour = all("colourfulness" in r for r in mine)
        print("| restoration | PSNR | SSIM | photos above the baseline (PSNR) | network calls | s / photo |"
              + (" colourfulness / truth's |" if colour else ""))
        print("| --- | --- | --- | --- | --- | --- |" + (" --- |" if colour else ""))
        for (method, way) in sorted({(r["method"], r["way"]) for r in mine}, key=lambda k: (k[1] != "baseline", k)):
            group = [r for r in mine if (r["method"], r["way"]) == (method, way)]
            wins = sum(r["psnr"] > baseline[r["photo"]]["psnr"] for r in group if r["photo"] in baseline)
            name = "baseline" if way == "baseline" else f"{method}, {way}"
            print(f"| {name} | {np.mean([r['psnr'] for r in group]):.2f} | {np.mean([r['ssim'] for r in group]):.3f} | "
                  f"{wins if way != 'baseline' else '-'} / {len(group)} | {np.mean([r['calls'] for r in group]):.0f} | "
                  f"{np.mean([r['seconds'] for r in group]):.1f} |" + (
                      f" {np.mean([r['colourfulness'] for r in group]) / np.mean([r['truth_colourfulness'] for r in group]):.0%} |"
                      if colour else ""))


if __name__ == "__main__":
    main()
