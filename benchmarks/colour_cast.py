"""Global colour cast of colorization results: how far an image's mean colour is from grey.

    python benchmarks/colour_cast.py --bench ../runs/bench_celeba64 --data ../shared/data/celeba_aligned \
        --subset 8000:8200 --crop-top 10 [--unconditional 30,100]

For the true faces and for every method's saved restorations of the ``colorization`` task, prints
the mean over images of ``|mean over pixels of (x - grey(x))|`` in 8-bit units (the global cast)
and of ``mean |x - grey(x)|`` (the colourfulness). ``--unconditional`` adds 16 unconditional DDIM
samples (eta 0.85, as DDNM's generation) of the built-in prior for each number of steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import ssdiff
from ssdiff.bench import BenchConfig, load_truths
from ssdiff.io import read_image
from ssdiff.solvers.unconditional import ddim_sample


def colour_cast(images: torch.Tensor) -> tuple[float, float]:
    """Mean global cast and mean colourfulness of images in [-1, 1] (B x 3 x H x W), in 8-bit units."""
    x = (images.clamp(-1, 1) + 1) * 127.5
    chroma = x - x.mean(1, keepdim=True)
    return chroma.mean((2, 3)).norm(dim=1).mean().item(), chroma.abs().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True, help="an `ssdiff bench --out` folder")
    parser.add_argument("--data", required=True)
    parser.add_argument("--subset", default=None)
    parser.add_argument("--crop-top", type=int, default=None)
    parser.add_argument("--unconditional", default="", help="comma-separated DDIM step counts")
    args = parser.parse_args()

    prior = ssdiff.load_model("celeba64")
    size = prior.require_resolution()
    stems, truths = load_truths(BenchConfig(data=args.data, out=args.bench, subset=args.subset,
                                            crop_top=args.crop_top), size)
    print("| images | global cast | colourfulness |\n| --- | ---: | ---: |")
    print("| truth | {:.1f} | {:.1f} |".format(*colour_cast(truths)))
    for folder in sorted(p for p in (Path(args.bench) / "runs" / "colorization").iterdir() if p.is_dir()):
        if all((folder / f"{s}.png").exists() for s in stems):
            restored = torch.stack([read_image(folder / f"{s}.png") for s in stems])
            print(f"| {folder.name} | " + "{:.1f} | {:.1f} |".format(*colour_cast(restored)))
    for steps in [int(s) for s in args.unconditional.split(",") if s]:
        samples = ddim_sample(prior, (16, 3, *size), num_steps=steps, eta=0.85, seed=0)
        print(f"| unconditional, {steps} steps | " + "{:.1f} | {:.1f} |".format(*colour_cast(samples)))


if __name__ == "__main__":
    main()
