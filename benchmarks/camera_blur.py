"""Real blurry photos: the photo as the valid part of a larger scene's blur, against a circular blur.

A camera's blur is linear: the photo's border pixels saw the scene beyond the frame. Here each
face is resized to 64 px plus the kernel's reach on each side (the scene), blurred, cut to the
valid part (the photo: 64 x 64, or 64/scale for ``sr_kernel``) and rounded to 8 bits, as a
saved photo is. Three ways to restore it with SSD:

- ``circular``: the photo as a circular blur of an image of its own frame;
- ``mirror``: the photo mirrored by the kernel's reach, restored as a circular blur, cropped;
- ``valid cgN``: :class:`ssdiff.operators.ValidBlur` (what ``ssdiff restore`` does), with N
  conjugate-gradient steps per back-projection.

Faces 000001.. are training faces: this chose ValidBlur's default number of CG steps.

    python benchmarks/camera_blur.py --data ../shared/data/celeba_aligned
"""

from __future__ import annotations

import argparse

import torch.nn.functional as F

import ssdiff
from ssdiff.bench import BenchConfig, load_truths
from ssdiff.metrics import mean_psnr
from ssdiff.operators import ValidBlur, get_operator

CASES = [("deblur_kernel", "motion:9,30", 1), ("deblur_kernel", "gauss:2", 1), ("sr_kernel", "gauss:1.5", 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/celeba_aligned")
    parser.add_argument("--images", type=int, default=8, help="training faces 000001.. (default 8)")
    parser.add_argument("--iterations", default="10,20,50,100", help="CG steps per back-projection for ValidBlur")
    parser.add_argument("--method", default="ssd")
    parser.add_argument("--nfe", type=int, default=30)
    args = parser.parse_args()
    prior = ssdiff.load_model("celeba64")
    side = prior.resolution[0]
    seeds = list(range(args.images))
    print(f"{args.images} training faces, {args.method}@{args.nfe}, PSNR (dB) of the photo's 64 x 64 frame\n")
    print("| task | kernel | photo, upsampled | circular | mirror | " + " | ".join(
        f"valid cg{n}" for n in args.iterations.split(",")) + " |")
    print("| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in args.iterations.split(",")) + " |")
    for task, kernel, scale in CASES:
        camera = ValidBlur(kernel, scale=scale)
        reach = camera.margin * scale  # scene pixels beyond the frame on each side
        _, scenes = load_truths(BenchConfig(data=args.data, out="", subset=f"0:{args.images}", crop_top=10),
                                (side + 2 * reach, side + 2 * reach))
        photo = camera.A(scenes)
        photo = ((photo + 1) * 127.5).round() / 127.5 - 1  # saved as 8 bits
        truths = camera.crop(scenes)
        params = {"kernel": kernel, **({"scale": scale} if scale > 1 else {})}
        row = [mean_psnr(F.interpolate(photo, scale_factor=scale, mode="bicubic"), truths)]
        circular = get_operator(task, image_size=(side, side), **params)
        row.append(mean_psnr(ssdiff.restore(prior, circular, photo, method=args.method, nfe=args.nfe, seed=seeds).image,
                             truths))
        pad = camera.margin
        mirrored = F.pad(photo, (pad,) * 4, mode="reflect")
        operator = get_operator(task, image_size=(side + 2 * reach, side + 2 * reach), **params)
        restored = ssdiff.restore(prior, operator, mirrored, method=args.method, nfe=args.nfe, seed=seeds).image
        row.append(mean_psnr(camera.crop(restored), truths))
        for count in args.iterations.split(","):
            valid = ValidBlur(kernel, scale=scale, cg_iterations=int(count))
            restored = ssdiff.restore(prior, valid, photo, method=args.method, nfe=args.nfe, seed=seeds).image
            row.append(mean_psnr(valid.crop(restored), truths))
        print(f"| {task} | {kernel}{f' x{scale}' if scale > 1 else ''} | " + " | ".join(f"{v:.2f}" for v in row) + " |",
              flush=True)


if __name__ == "__main__":
    main()
