"""The ``ssdiff`` command line: degrade, restore, train, demo, bench, models."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .io import InputError


def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a diffusion prior on a folder of images",
        description="Train an epsilon-prediction DDPM (linear betas, 1000 steps, the public checkpoints' schedule) "
        "as a diffusers UNet2DModel on a folder of images. Rerunning the same command resumes from OUT/state.pt.",
    )
    p.add_argument("data", help="folder of training images")
    p.add_argument("--out", required=True, help="run folder: resumable state, loss log, samples, EMA weights")
    p.add_argument("--size", type=int, default=64, help="training resolution in pixels (square)")
    p.add_argument("--steps", type=int, default=10_000, help="total optimizer steps to reach")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate after warm-up")
    p.add_argument("--warmup", type=int, default=500, help="linear learning-rate warm-up steps")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clipping threshold")
    p.add_argument("--ema-decay", type=float, default=0.999, help="decay of the exponential moving average of the weights")
    p.add_argument("--checkpoint-every", type=int, default=250, help="save state, validate and export every N steps")
    p.add_argument("--sample-every", type=int, default=1000, help="write a 4x4 DDIM sample grid every N steps (0: never)")
    p.add_argument("--subset", help="train on a slice of the sorted files, e.g. ':8000' (default: all)")
    p.add_argument("--val-subset", help="validate on a slice of the sorted files, e.g. '8000:8512'")
    p.add_argument("--crop-top", type=int, help="vertical offset of the square crop in pixels (default: centred)")
    p.add_argument("--init", help="warm-start from this diffusers folder when OUT has no state yet")
    p.add_argument("--export", help="also write the best EMA weights (float16) to this diffusers folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from .train import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        data=args.data, out=args.out, size=args.size, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        warmup=args.warmup, grad_clip=args.grad_clip, ema_decay=args.ema_decay,
        checkpoint_every=args.checkpoint_every, sample_every=args.sample_every, seed=args.seed,
        subset=args.subset, val_subset=args.val_subset, crop_top=args.crop_top, init=args.init, export=args.export,
    )
    trainer = train(config)
    print(f"trained to step {trainer.step}; EMA weights in {trainer.out / 'ema'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssdiff",
        description="Zero-shot image restoration with a pretrained diffusion model (Shortcut Sampling for Diffusion).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as error:
        print(f"ssdiff: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssdiff: interrupted; completed outputs are kept, rerun to finish the rest", file=sys.stderr)
        return 130
