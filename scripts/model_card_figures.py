"""Figures and numbers for docs/model_card_celeba64.md, from a training run and a validation bench.

    python scripts/model_card_figures.py --run RUN_DIR [--bench BENCH_DIR] [--out docs]

Writes ``celeba64_loss.png`` (training loss and validation loss against steps) and
``celeba64_samples.png`` (16 unconditional DDIM samples, 50 steps, from the packaged weights),
and prints the training summary and, with ``--bench``, the validation table in markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import ssdiff
from ssdiff.io import image_grid, write_image
from ssdiff.solvers.unconditional import ddim_sample


def loss_figure(run: Path, out: Path) -> dict:
    with open(run / "loss.csv") as log:
        rows = list(csv.DictReader(log))
    steps = [int(r["step"]) for r in rows]
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(steps, [float(r["loss"]) for r in rows], linewidth=0.7, label="training loss (10-step mean)")
    val = [(int(r["step"]), float(r["val_loss"])) for r in rows if r["val_loss"]]
    axis.plot([s for s, _ in val], [v for _, v in val], "o-", markersize=3, label="validation loss (EMA weights)")
    axis.set_yscale("log")
    axis.set_xlabel("step (batch 32)")
    axis.set_ylabel("epsilon MSE")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "celeba64_loss.png", dpi=90)
    # Wall time from the logged throughput: each row covers (step - previous step) * 32 images.
    seconds, previous = 0.0, 0
    for step, row in zip(steps, rows):
        seconds += (step - previous) * 32 / float(row["images_per_s"])
        previous = step
    best = min(val, key=lambda v: v[1]) if val else (None, None)
    return {"steps": steps[-1], "hours": seconds / 3600, "best_val_step": best[0], "best_val_loss": best[1],
            "last_train_loss": float(rows[-1]["loss"])}


def samples_figure(out: Path) -> None:
    prior = ssdiff.load_model("celeba64")
    samples = ddim_sample(prior, (16, 3, 64, 64), num_steps=50, seed=0)
    write_image(image_grid(samples.clamp(-1, 1), columns=8), out / "celeba64_samples.png")


def bench_table(bench: Path) -> str:
    rows = json.loads((bench / "results.json").read_text())
    lines = ["| task | method | NFE | PSNR | SSIM | SWD | mean abs(Ax-y) | s/image | images |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['row']} | {r['NFE']} | {r['PSNR']:.2f} | {r['SSIM']:.3f} | {r['SWD']:.1f} | "
                     f"{r['consistency']:.1e} | {r['seconds_per_image']:.2f} | {r['images']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--bench", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    print(json.dumps(loss_figure(args.run, args.out), indent=1))
    samples_figure(args.out)
    if args.bench:
        print(bench_table(args.bench))


if __name__ == "__main__":
    main()
