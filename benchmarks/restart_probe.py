"""Does Restart sampling (Xu et al. 2023) buy realism at a few calls? A probe, under the tuner's protocol.

Within one budget ``N``: ``ssd-fast`` at ``N - K m`` calls, then ``K`` restarts, each a jump of the
restored image to time step ``t_j`` with fresh noise (``sqrt(a) x0 + sqrt(1 - a) z``) and ``m``
DDIM calls back down with back-projection. Scored as ``ssdiff tune`` scores (PSNR - 0.15 SWD on
the 16 training faces 007001..007016), beside the points of the budget's stored frontier, so a
restart that wins shows up as a point no frontier point beats. The library does not ship a
restart sampler: in this probe restarts trace the frontier, and null-space noise (``null_eta``) beats them
(``few_step/restart_probe.txt``).

    python benchmarks/restart_probe.py --data ../shared/data/celeba_aligned
"""

from __future__ import annotations

import argparse
import math

import torch

from ssdiff.bench import BenchConfig, load_truths
from ssdiff.metrics import mean_psnr, swd
from ssdiff.models import load_model
from ssdiff.operators import get_operator
from ssdiff.schedule import uniform_steps
from ssdiff.solvers.common import CallCounter, NoiseSource
from ssdiff.solvers.consistency import BackProjection
from ssdiff.solvers.fast import SWD_WEIGHT, builtin_presets, find_preset, ssd_fast
from ssdiff.solvers.samplers import ddim

# (task, main budget's realism, jump time step, calls per restart, restarts, ddim_eta of the re-descent)
PROBES = [
    ("sr_bicubic_x4", None, 300, 3, 1, 0.0), ("sr_bicubic_x4", None, 300, 4, 1, 0.8),
    ("sr_bicubic_x4", None, 500, 4, 1, 0.8), ("sr_bicubic_x4", None, 400, 2, 2, 0.8),
    ("sr_bicubic_x8", 0, 300, 4, 1, 0.8), ("sr_bicubic_x8", 0, 500, 4, 1, 0.8), ("sr_bicubic_x8", 0, 400, 3, 1, 0.5),
    ("inpaint", None, 300, 3, 1, 0.0), ("inpaint", None, 500, 3, 1, 0.5), ("inpaint", None, 300, 2, 1, 0.0),
]


def restarted(prior, operator, y, seeds, nfe, realism, jump_t, calls, restarts, eta):
    x0 = ssd_fast(prior, operator, y, nfe=nfe - restarts * calls, realism=realism, seed=seeds).image.clamp(-1, 1)
    noise, counter, consistency = NoiseSource([10_000 + s for s in seeds], len(seeds), y.device), CallCounter(prior), BackProjection(operator, y)
    a = prior.schedule.alpha_bar_at(jump_t)
    for _ in range(restarts):
        x = math.sqrt(a) * x0 + math.sqrt(1 - a) * noise.like(x0)
        x0 = ddim(counter, x, uniform_steps(jump_t, calls), consistency, noise, eta=eta).clamp(-1, 1)
    assert counter.calls == restarts * calls
    return x0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--subset", default="7000:7016", help="the tuner's faces (never the validation ones)")
    parser.add_argument("--nfe", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    prior = load_model("celeba64", device="cpu")
    _, truths = load_truths(BenchConfig(data=args.data, out="", subset=args.subset, crop_top=10), (64, 64))
    seeds = list(range(len(truths)))
    presets = builtin_presets("celeba64")["presets"]
    for task in dict.fromkeys(p[0] for p in PROBES):
        operator = get_operator(task, image_size=(64, 64))
        y = operator.A(truths)
        print(f"{task} at {args.nfe} calls; the preset's frontier (PSNR / SWD):",
              ", ".join(f"{e['psnr']:.2f} / {e['swd']:.2f}" for e in presets[task][str(args.nfe)]["frontier"]))
        for _, realism, jump_t, calls, restarts, eta in (p for p in PROBES if p[0] == task):
            image = restarted(prior, operator, y, seeds, args.nfe, realism, jump_t, calls, restarts, eta)
            psnr, realness = mean_psnr(image, truths), swd(image, truths, seed=0)["avg"]
            _, origin = find_preset({"prior": "celeba64", "presets": presets}, "celeba64", task, args.nfe - restarts * calls, realism)
            print(f"  main: {origin}; {restarts} x (jump to {jump_t}, {calls} ddim calls, eta {eta}): "
                  f"{psnr:.2f} / {realness:.2f}, score {psnr - SWD_WEIGHT * realness:.2f}", flush=True)


if __name__ == "__main__":
    main()
