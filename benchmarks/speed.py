"""Cost of one network call and of one SSD@30 restoration, per architecture, memory layout and batch.

The two public architectures are built with random weights in the shapes of their checkpoints
(the presets' configurations: ADM 256 unconditional, 552,814,086 parameters; DDPM CelebA-HQ 256,
113,673,219), so nothing is downloaded; the built-in prior is the shipped one. Each architecture
runs in its own process, so the peak resident memory printed is its own.

    python benchmarks/speed.py --archs celeba64,celeba-hq-256,openai-256-uncond --batches 1,8

``--levers`` instead times whole restorations of the built-in prior at batch 16 (4x SR of 16
validation faces) with each lever that changes the cost of a call (memory layout, encoder
reuse), in one process, and prints the cost per call as a ratio against eager contiguous float32:

    python benchmarks/speed.py --levers --data ../shared/data/celeba_aligned
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def build(name: str):
    import ssdiff
    from ssdiff.models import DiffusionPrior
    from ssdiff.models.catalog import KNOWN_MODELS
    from ssdiff.models.loading import _unet_config

    if name == "celeba64":
        return ssdiff.load_model("celeba64", channels_last=False)
    from diffusers import UNet2DModel

    preset = KNOWN_MODELS[name]
    torch.manual_seed(0)
    network = UNet2DModel(**_unet_config(preset.format, preset.config)).eval().requires_grad_(False)
    return DiffusionPrior(network=network, image_size=preset.config["image_size"],
                          eps_channels=3, name=name, info={"preset": None})


def seconds_per_call(prior, batch: int, repeats: int) -> float:
    size = prior.resolution
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        prior(x, 500)  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            prior(x, 500)
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def measure(name: str, batches: list[int], repeats: int) -> dict:
    import torch.nn.functional as F
    from skimage import data

    import ssdiff
    from ssdiff.io import pil_to_tensor

    prior = build(name)
    prior.max_batch = max(batches)
    row: dict = {"arch": name, "parameters": prior.num_parameters, "calls": {}}
    for layout in ("contiguous", "channels_last"):
        prior.use_channels_last(layout == "channels_last")
        for batch in batches:
            row["calls"][f"{layout}@{batch}"] = seconds_per_call(prior, batch, repeats if batch == 1 else 1)
    # SSD@30 on the astronaut (4x SR), in the layout load_model picks on this device
    prior.use_channels_last(True)
    from PIL import Image

    truth = pil_to_tensor(Image.fromarray(data.astronaut()))[None]
    truth = F.interpolate(truth, size=prior.resolution, mode="bilinear", antialias=True, align_corners=False)
    operator = ssdiff.get_operator("sr_bicubic", image_size=prior.resolution, scale=4)
    started = time.perf_counter()
    result = ssdiff.restore(prior, operator, operator.A(truth), method="ssd", nfe=30, seed=0)
    row["ssd30_seconds"] = time.perf_counter() - started
    row["ssd30_calls"] = result.nfe
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return row


LEVERS = [  # (label, channels-last, reuse_encoder)
    ("eager, contiguous", False, None),
    ("channels-last (default)", True, None),
    ("channels-last + reuse_encoder=2", True, 2),
    ("channels-last + reuse_encoder=3", True, 3),
    ("channels-last + reuse_encoder=4", True, 4),
]


def levers(data: str, budgets: list[tuple[str, int]], repeats: int) -> None:
    """Seconds per call of whole restorations with each lever, against eager contiguous in the same run."""
    import ssdiff
    from ssdiff.bench import BenchConfig, load_truths
    from ssdiff.metrics import psnr

    prior = ssdiff.load_model("celeba64")
    _, truths = load_truths(BenchConfig(data=data, out="", subset="8000:8016", crop_top=10), prior.resolution)
    operator = ssdiff.get_operator("sr_bicubic", scale=4)
    y = operator.A(truths)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU; 16 faces in one batch, "
          f"best of {repeats}\n")
    print("| method | lever | s per restoration | s per call | cheaper per call | PSNR (dB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for method, nfe in budgets:
        reference = None
        for label, channels_last, reuse in LEVERS:
            prior.use_channels_last(channels_last)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                result = ssdiff.restore(prior, operator, y, method=method, nfe=nfe, seed=list(range(16)),
                                        reuse_encoder=reuse)
                times.append(time.perf_counter() - started)
            per_call = min(times) / result.nfe
            reference = reference or per_call
            print(f"| {method}@{nfe} | {label} | {min(times):.2f} | {per_call:.4f} | {reference / per_call:.2f}x | "
                  f"{sum(map(psnr, result.image, truths)) / len(truths):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="celeba64,celeba-hq-256,openai-256-uncond")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls at batch 1 (median); larger batches: 1")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: one architecture, JSON out
    parser.add_argument("--levers", action="store_true", help="time restorations with each lever instead")
    parser.add_argument("--data", default="../shared/data/celeba_aligned", help="--levers: the CelebA folder")
    args = parser.parse_args()
    if args.levers:
        levers(args.data, [("ssd", 30), ("ssd-fast", 10)], args.repeats)
        return
    batches = [int(b) for b in args.batches.split(",")]
    if args.one:
        print(json.dumps(measure(args.one, batches, args.repeats)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU\n")
    print("| architecture | parameters | batch | s/call contiguous | s/call channels-last | ratio | SSD@30, batch 1 | "
          "peak GB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.archs.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", name, "--batches", args.batches,
                              "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        for batch in batches:
            plain, fast = row["calls"][f"contiguous@{batch}"], row["calls"][f"channels_last@{batch}"]
            ssd = f"{row['ssd30_seconds']:.1f} s ({row['ssd30_calls']} calls)" if batch == batches[0] else ""
            print(f"| {name} | {row['parameters']:,} | {batch} | {plain:.3f} | {fast:.3f} | {plain / fast:.2f} | {ssd} | "
                  f"{row['peak_gb']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
