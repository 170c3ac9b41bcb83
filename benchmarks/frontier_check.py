"""Score a shipped preset's frontier points on 200 *training* faces: is there one with both targets?

The tuner scores on 16 faces, where SWD is a poor judge (its bias shrinks with the number of
faces, and differently per configuration). Scoring the stored frontier points (what ``realism``
chooses along) on 200 faces the benchmark never reports, ``007017..007216``, gives SWD on the
validation set's scale without choosing on the validation faces. Output: ``frontier_check.txt``.

    python benchmarks/frontier_check.py --data ../shared/data/celeba_aligned --task sr_bicubic_x4 --psnr 23.3 26

``--methods ddnm@100`` scores baselines on the same faces, seeds and measures (the targets on
these faces); ``--config JSON`` (repeatable) scores a configuration that is not on the frontier;
``--psnr 99 99`` skips the frontier.
"""

from __future__ import annotations

import argparse
import json

import torch

from ssdiff.bench import BenchConfig, load_truths
from ssdiff.models import load_model
from ssdiff.operators import get_operator
from ssdiff.solvers.fast import builtin_presets
from ssdiff.tune import evaluate, evaluate_method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--task", required=True, help="a task of the shipped presets, e.g. sr_bicubic_x4")
    parser.add_argument("--nfe", type=int, default=10)
    parser.add_argument("--subset", default="7016:7216", help="training faces the tuner did not use")
    parser.add_argument("--psnr", type=float, nargs=2, default=(0.0, 99.0), metavar=("LOW", "HIGH"),
                        help="score only the frontier points whose tuning PSNR is in this range")
    parser.add_argument("--methods", default="", help="baselines to score as well, e.g. ddnm@100,ddrm@100")
    parser.add_argument("--config", action="append", default=[], help="a configuration (JSON) to score as well")
    args = parser.parse_args()
    torch.manual_seed(0)
    prior = load_model("celeba64", device="cpu")
    _, truths = load_truths(BenchConfig(data=args.data, out="", subset=args.subset, crop_top=10), (64, 64))
    operator = get_operator(args.task, image_size=(64, 64))
    print(f"{args.task} at {args.nfe} calls, {len(truths)} faces [{args.subset}]: PSNR / SWD on 16 tuning faces | on these")
    for point in builtin_presets("celeba64")["presets"][args.task][str(args.nfe)]["frontier"]:
        if args.psnr[0] <= point["psnr"] <= args.psnr[1]:
            result = evaluate(prior, operator, truths, point["config"], args.nfe)
            print(f"  {point['psnr']:.2f} / {point['swd']:.2f} | {result['psnr']:.2f} / {result['swd']:.2f}  "
                  f"{json.dumps(point['config'])}", flush=True)
    for config in args.config:
        result = evaluate(prior, operator, truths, json.loads(config), args.nfe)
        print(f"  (given) | {result['psnr']:.2f} / {result['swd']:.2f}  {config}", flush=True)
    for spec in filter(None, args.methods.split(",")):
        method, nfe = spec.split("@")
        result = evaluate_method(prior, operator, truths, method, int(nfe))
        print(f"  {spec} | {result['psnr']:.2f} / {result['swd']:.2f}", flush=True)


if __name__ == "__main__":
    main()
