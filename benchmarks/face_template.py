"""Measure where OpenCV's frontal-face cascade puts its box on the built-in prior's training faces.

ssdiff's face framing (``ssdiff.faces``) maps a photo's detected face box onto this box in the
prior's 64 x 64 frame, so that the face lands where the prior's training faces are. The detector
runs on the frames enlarged ``--zoom`` times (photos are detected at about that size too).

    python benchmarks/face_template.py --data ../shared/data/celeba_aligned --subset 0:1500
"""

from __future__ import annotations

import argparse

import numpy as np
import torch.nn.functional as F

from ssdiff.bench import BenchConfig, load_truths
from ssdiff.faces import detect_face


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--subset", default="0:1500", help="training faces only (the prior's own framing)")
    parser.add_argument("--crop-top", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--zoom", type=int, default=3)
    args = parser.parse_args()
    _, frames = load_truths(BenchConfig(data=args.data, out="", subset=args.subset, crop_top=args.crop_top),
                            (args.size, args.size))
    boxes, tilts = [], []
    for frame in frames:
        face = detect_face(F.interpolate(frame[None], scale_factor=args.zoom, mode="bicubic", align_corners=False)[0])
        if face is not None:
            x, y, side = (v / args.zoom for v in face.box)
            boxes.append((x + side / 2, y + side / 2, side))
            tilts.append(np.degrees(face.tilt))
    boxes = np.array(boxes)
    print(f"faces found: {len(boxes)} of {len(frames)}")
    for name, column in zip(("centre x", "centre y", "side"), boxes.T):
        print(f"  {name:>8}: median {np.median(column):.1f}  mean {column.mean():.2f}  std {column.std():.2f}")
    tilts = np.array([t for t in tilts if t != 0.0])
    print(f"  eye-line tilt where both eyes were found ({len(tilts)}): median {np.median(tilts):.1f} deg, "
          f"std {tilts.std():.1f}")


if __name__ == "__main__":
    main()
