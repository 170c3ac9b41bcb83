"""Measure the mean colour of the built-in prior's training faces: what ``start="mean-colour"``
(:mod:`ssdiff.solvers.starts`) puts in the part of an image a measurement does not see.

The prior is trained on these faces, so their mean colour is the prior's own (its samples drawn in
a few steps are greyer: they are not the right reference). Writes nothing; its output is
``mean_colour.txt``, and the figures are ``CELEBA64.mean_colour`` in ``ssdiff.models.catalog``.

    python benchmarks/mean_colour.py --data ../shared/data/celeba_aligned --subset 0:8000
"""

from __future__ import annotations

import argparse

from ssdiff.bench import BenchConfig, load_truths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--subset", default="0:8000", help="training faces only (never the validation ones)")
    parser.add_argument("--crop-top", type=int, default=10, help="the prior's training framing")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    _, faces = load_truths(BenchConfig(data=args.data, out="", subset=args.subset, crop_top=args.crop_top),
                           (args.size, args.size))
    per_face = faces.mean((2, 3))
    mean, spread = per_face.mean(0), per_face.std(0)
    print(f"faces: {len(faces)} ({args.subset}), {args.size} x {args.size}, crop_top {args.crop_top}")
    print("mean colour, R G B in [-1, 1]: " + " ".join(f"{v:.4f}" for v in mean.tolist()))
    print("std of the faces' own mean colours: " + " ".join(f"{v:.4f}" for v in spread.tolist()))


if __name__ == "__main__":
    main()
