"""Noise-aware back-projection against pasting a noisy measurement, per sampler (SR x4, sigma_y 0.05).

The same restoration twice per sampler: with ``sigma_y`` given (DDNM+'s rule, every sampler since
the solver core became components) and without (the exact back-projection copies y's noise).
Training faces, so that the choice it informs is not made on the validation faces.

    python benchmarks/noise_aware.py --data ../shared/data/celeba_aligned --subset 0:32
"""

from __future__ import annotations

import argparse

import torch

import ssdiff
from ssdiff.bench import BenchConfig, load_truths
from ssdiff.metrics import mean_psnr, swd
from ssdiff.operators import get_operator

RUNS = [("ddim", 30, "uniform"), ("dpm-solver++", 30, "logsnr"), ("dpm-solver++", 10, "logsnr"),
        ("sde-dpm-solver++", 30, "logsnr")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/celeba_aligned")
    parser.add_argument("--subset", default="0:32")
    parser.add_argument("--sigma-y", type=float, default=0.05)
    args = parser.parse_args()
    prior = ssdiff.load_model("celeba64")
    _, truths = load_truths(BenchConfig(data=args.data, out="", subset=args.subset, crop_top=10), prior.resolution)
    operator = get_operator("sr_bicubic", image_size=prior.resolution, scale=4)
    clean = operator.A(truths)
    y = clean + args.sigma_y * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    seeds = list(range(len(truths)))
    print("| sampler@NFE | pasted PSNR | SWD | noise-aware PSNR | SWD |\n| --- | ---: | ---: | ---: | ---: |")
    for sampler, nfe, spacing in RUNS:
        scores = []
        for sigma_y in (0.0, args.sigma_y):
            image = ssdiff.restore(prior, operator, y, nfe=nfe, seed=seeds, sampler=sampler, spacing=spacing,
                                   sigma_y=sigma_y).image.clamp(-1, 1)
            scores += [mean_psnr(image, truths), swd(image, truths)["avg"]]
        print(f"| {sampler}@{nfe} | {scores[0]:.2f} | {scores[1]:.2f} | {scores[2]:.2f} | {scores[3]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
