"""ssdiff's DDRM and DiffPIR against deepinv 0.5.0's: the same prior, operators, faces, measurements and noise.

deepinv is the independent peer library; it is imported here only, never by ssdiff. Each method
and task runs three times on the same faces and measurements: ssdiff, deepinv as shipped (its
defaults, at ssdiff's budget of network calls), and deepinv aligned (each known deviation from the
papers or from ssdiff's conventions undone by one named option of :data:`ALIGNMENTS`, with
ssdiff's random draws replayed into deepinv's ``torch.randn_like`` calls), so that the aligned
run can be compared with ssdiff image to image. See benchmarks/peers.md for what each option is.

    python -m venv ../peers-venv && . ../peers-venv/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1 deepinv==0.5.0 && pip install -e .
    OMP_NUM_THREADS=1 python benchmarks/peers.py --data ../shared/data/celeba_aligned --images 50
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import deepinv as dinv
import numpy as np
import torch

import ssdiff
from ssdiff.bench import BenchConfig, load_truths
from ssdiff.metrics import mean_psnr
from ssdiff.operators import LinearOperator, get_operator
from ssdiff.operators.inpaint import random_mask
from ssdiff.operators.kernel import KernelBlur, gaussian_kernel_2d
from ssdiff.operators.physics import physics_operator
from ssdiff.schedule import leading_steps, spaced_steps
from ssdiff.solvers.common import NoiseSource
from ssdiff.solvers.methods import DIFFPIR_DEFAULTS

# Each alignment undoes one deviation of deepinv (or one convention that differs from ssdiff's);
# benchmarks/peers.md says where each lives in deepinv's and ssdiff's source.
ALIGNMENTS = {
    "steps": "ssdiff's time steps (DDRM: 0, T/n, ... as the paper's runner; DiffPIR: the authors' quad) "
             "and a last move to the clean image",
    "noise_level": "the noise level of a noise-free y: 0 for DDRM (deepinv falls back to 0.01), "
                   "sigma_n = 0.001 for DiffPIR (deepinv's default is 0.05)",
    "strict_last_step": "DDRM's last step (sigma' = 0 = sigma_y) keeps x0 on the measured coefficients, as the reference "
                        "code's strict s sigma' > sigma_y does and ssdiff follows; deepinv's >= pins them to y "
                        "(emulated by a noise level of 1e-30)",
    "task_parameters": "DiffPIR's per-task lambda and zeta of its authors (deepinv: lambda 7, zeta 0.1 everywhere)",
    "lambda_convention": "DiffPIR's lambda halved: deepinv's prox (gamma = 1 / (2 rho)) weighs |x - x0|^2 by 2 rho",
    "float64_schedule": "DiffPIR's alpha-bar in float64 (deepinv accumulates the cumprod in float32)",
    "no_eps": "DDRM divides by the singular value itself (deepinv adds eps = 1e-6)",
    "replay_noise": "ssdiff's draws fed to deepinv: DDRM's noise times sqrt(2) (deepinv divides by sqrt(2)), "
                    "each start from ssdiff's x_T (DDRM: the reference's x_T / sigma_T; DiffPIR: pure noise)",
    "float64": "deepinv's iterates and physics in float64 (the prox of a float32 physics leaks round-off)",
    "generic_prox": "colorization: deepinv's generic LinearPhysics prox (CG) instead of DecomposablePhysics.prox_l2, "
                    "which drops the chroma of an economic SVD (Decolorize)",
}
# the alignments that touch each method (the others do not change its run)
METHOD_ALIGNMENTS = {"ddrm": ("steps", "noise_level", "strict_last_step", "no_eps", "replay_noise", "float64"),
                     "diffpir": ("steps", "noise_level", "task_parameters", "lambda_convention", "float64_schedule",
                                 "replay_noise", "float64", "generic_prox")}
BLUR_SIGMA = 2.0  # px, of the Gaussian deblurring kernel (13 x 13)
CUTOFF = 1e-2  # singular values under it are dropped from both sides' blur (ssdiff's KernelBlur default)


class PriorDenoiser(dinv.models.Denoiser):
    """ssdiff's epsilon-prediction prior as a deepinv denoiser: ``forward(x01, sigma)`` -> x0 in [0, 1].

    deepinv's noise std ``sigma`` is in [0, 1] units, so ``2 sigma`` in the prior's [-1, 1]; the
    DDPM step ``t`` whose ``sqrt((1 - abar) / abar)`` equals it is found, the image scaled to
    ``x_t = sqrt(abar) (2 x01 - 1)`` and ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)``, not
    clipped (the samplers clip where their papers do). Off the grid (deepinv's own sigma lists)
    the nearest step is the network's input and the exact ``abar = 1 / (1 + 4 sigma^2)`` the
    scaling. At ``sigma = 0`` the exact denoiser is the identity: no network call.
    """

    def __init__(self, prior):
        super().__init__()
        self.prior = prior
        self.alpha_bar = torch.as_tensor(prior.schedule.alpha_bar, dtype=torch.float64)
        self.levels = ((1 - self.alpha_bar) / self.alpha_bar).sqrt()
        self.calls = 0

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float64).flatten()
        if sigma.numel() > 1 and not bool((sigma == sigma[0]).all()):
            raise ValueError("one noise level per batch: deepinv's DDRM and DiffPIR pass a scalar")
        level = 2 * float(sigma[0])
        if level == 0:
            return x
        t = int((self.levels - level).abs().argmin())
        on_grid = abs(float(self.levels[t]) - level) <= 1e-6 * level
        a = float(self.alpha_bar[t]) if on_grid else 1 / (1 + level**2)
        x_t = math.sqrt(a) * (2 * x.double() - 1)
        self.calls += 1
        eps = self.prior(x_t.float(), t).double()
        x0 = (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a)
        return ((x0 + 1) / 2).to(x.dtype)


# ---- the random draws: recorded from ssdiff, replayed into deepinv -------------------------------

@contextmanager
def recording() -> Iterator[list[torch.Tensor]]:
    """Every tensor ssdiff's NoiseSource draws, in order."""
    draws: list[torch.Tensor] = []
    original = NoiseSource.draw

    def draw(self, *args, **kwargs):
        draws.append(original(self, *args, **kwargs))
        return draws[-1]

    NoiseSource.draw = draw
    try:
        yield draws
    finally:
        NoiseSource.draw = original


@contextmanager
def replaying(noises: list[torch.Tensor]) -> Iterator[None]:
    """deepinv's ``torch.randn_like`` calls return ``noises`` in order (each checked against the call's shape)."""
    queue = list(noises)
    original = torch.randn_like

    def randn_like(like, *args, **kwargs):
        if not queue:
            raise RuntimeError("deepinv drew more noise than was recorded")
        noise = queue.pop(0)
        if noise.shape != like.shape:
            raise RuntimeError(f"replayed noise {tuple(noise.shape)} where deepinv drew {tuple(like.shape)}")
        return noise.to(like.dtype)

    torch.randn_like = randn_like
    try:
        yield
    finally:
        torch.randn_like = original
    if queue:
        raise RuntimeError(f"deepinv drew {len(noises) - len(queue)} of the {len(noises)} recorded noises")


# ---- tasks: one ssdiff operator and one deepinv physics doing the same thing ---------------------

@dataclass
class Task:
    name: str
    ours: LinearOperator  # ssdiff's operator, images in [-1, 1]
    physics: Callable[[torch.dtype], dinv.physics.LinearPhysics]  # deepinv's, images in [0, 1]
    note: str

    def operator(self, y01: torch.Tensor) -> LinearOperator:
        """ssdiff's operator; for a deepinv physics object, what ssdiff's adapter makes of it."""
        return self.ours if isinstance(self.ours, LinearOperator) else physics_operator(self.ours, y01)


def inpainting_task(size: tuple[int, int]) -> Task:
    mask = random_mask(*size, missing=0.8, seed=0)
    # one mask object for both: ssdiff reads deepinv's Inpainting through its adapter (restore() takes
    # the physics); deepinv's DDRM needs the mask in every channel (1 x 3 x H x W)
    physics = dinv.physics.Inpainting(img_size=(3, *size), mask=mask.expand(3, *size).clone())
    return Task("inpainting, random 80 %", physics, lambda dtype: physics if dtype == physics.mask.dtype else copy.deepcopy(physics).to(dtype),
                "the same `Inpainting` object on both sides (a float64 copy for the float64 alignment)")


def deblurring_task(size: tuple[int, int]) -> Task:
    kernel = torch.from_numpy(gaussian_kernel_2d(BLUR_SIGMA))
    ours = KernelBlur(kernel, zero=CUTOFF)

    def physics(dtype: torch.dtype) -> dinv.physics.BlurFFT:
        blur = dinv.physics.BlurFFT(img_size=(3, *size), filter=(kernel / kernel.sum())[None, None].to(dtype))
        # the same truncated operator: transfer values under the cut-off are dropped from A itself, as ssdiff's
        # KernelBlur does (without it DDRM divides float round-off by singular values of 1e-10)
        blur.mask = torch.where(blur.mask > CUTOFF * blur.mask.amax(), blur.mask, 0)
        return blur

    return Task(f"deblurring, Gaussian sigma {BLUR_SIGMA:g} px (circular)", ours, physics,
                f"ssdiff `deblur_kernel` (`gauss:{BLUR_SIGMA:g}`, cut-off {CUTOFF:g}) = deepinv `BlurFFT`, same cut-off")


def super_resolution_task(size: tuple[int, int]) -> Task:
    ours = get_operator("sr_average", image_size=size, scale=4)
    # deepinv convolves (flips the filter) and centres it: a 7 x 7 filter with the 4 x 4 box in its corner
    # averages exactly the blocks ssdiff's sr_average averages
    box = torch.zeros(1, 1, 7, 7)
    box[..., :4, :4] = 1 / 16

    def physics(dtype: torch.dtype) -> dinv.physics.Downsampling:
        return dinv.physics.Downsampling(img_size=(3, *size), filter=box.to(dtype), factor=4, padding="circular")

    return Task("SR x4, box average", ours, physics, "ssdiff `sr_average` = deepinv `Downsampling` (4 x 4 box, circular)")


def colorization_task(size: tuple[int, int]) -> Task:
    ours = get_operator("colorization")
    weights = tuple(float(w) for w in ours.weights)

    def physics(dtype: torch.dtype) -> dinv.physics.Decolorize:
        return dinv.physics.Decolorize(srf=weights).to(dtype)

    return Task("colorization", ours, physics, f"ssdiff `colorization` = deepinv `Decolorize(srf={weights})`")


def generic(physics: dinv.physics.LinearPhysics) -> dinv.physics.LinearPhysics:
    """The same A as a plain LinearPhysics, whose prox_l2 solves the normal equations by CG."""
    return dinv.physics.LinearPhysics(A=physics.A, A_adjoint=physics.A_adjoint, max_iter=100, tol=1e-12, solver="CG",
                                      implicit_backward_solver=False)


# ---- ssdiff -------------------------------------------------------------------------------------

def run_ssdiff(prior, task: Task, truths: torch.Tensor, method: str, nfe: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """ssdiff's restoration in [0, 1] (one seed per face) and the noise it drew."""
    seeds = list(range(len(truths)))
    with recording() as draws:
        if isinstance(task.ours, LinearOperator):
            image = (ssdiff.restore(prior, task.ours, task.ours.A(truths), method, nfe, seed=seeds).image + 1) / 2
        else:  # a deepinv physics object: ssdiff's adapter, images in [0, 1]
            image = ssdiff.restore(prior, task.ours, task.ours.A((truths + 1) / 2), method, nfe, seed=seeds).image
    return image, list(draws)


# ---- deepinv's DDRM -----------------------------------------------------------------------------

def ddrm_replay(ours: LinearOperator, physics, y01: torch.Tensor, draws: list[torch.Tensor], steps: list[int],
                schedule, eta: float) -> list[torch.Tensor]:
    """What deepinv's DDRM must draw for its chain to be ssdiff's (both noise-free, eta_b = 1).

    ssdiff draws x_T, then per step the null space's noise and the measured coefficients' (none at
    the last step), in its operator's V basis. deepinv draws one tensor per step in its own V basis
    and scales it by its std / sqrt(2): the image-domain noise is mapped into deepinv's basis and
    divided by that std. The start is the reference's x_T = V(y_bar + sigma_T z) / sigma_T.
    """
    ours = ours if isinstance(ours, LinearOperator) else physics_operator(ours, y01)
    levels = [math.sqrt((1 - schedule.alpha_bar_at(t)) / schedule.alpha_bar_at(t)) for t in reversed(steps)]
    measured_ours = ours.singular_map(draws[0]).expand_as(draws[0]) > 0
    mask = torch.cat([physics.mask.abs()] * y01.shape[0], dim=0)
    case = mask > 0
    y_bar = torch.where(case, physics.U_adjoint(y01) / torch.where(case, mask, 1), 0)
    sigma_T = levels[0]
    start = torch.where(measured_ours, ours.Vt(ours.A_pinv(2 * y01 - ours.A(torch.ones_like(draws[0])))), 0) + sigma_T * draws[0]
    target01 = (ours.V(start) / (sigma_T * math.sqrt(1 / (1 + sigma_T**2))) + 1) / 2  # what the wrapper must see
    noises = [math.sqrt(2) * (physics.V_adjoint(target01) - y_bar) / (sigma_T / 2)]
    queue = draws[1:]
    for i, sigma in enumerate([*levels[1:], 0.0]):
        null = queue.pop(0)
        pinned = queue.pop(0) if i < len(levels) - 1 else null
        image = ours.V(torch.where(measured_ours, sigma * pinned, eta * sigma * null))
        std = torch.where(case, sigma, eta * sigma)
        noises.append(math.sqrt(2) * physics.V_adjoint(image) / (std if sigma > 0 else 1))
    return noises


def run_deepinv_ddrm(denoiser, task: Task, truths: torch.Tensor, nfe: int, draws, schedule, aligned: set[str]) -> torch.Tensor:
    dtype = torch.float64 if "float64" in aligned else torch.float32
    physics = task.physics(dtype)
    if not isinstance(physics, dinv.physics.DecomposablePhysics):
        raise TypeError(f"deepinv's DDRM needs a DecomposablePhysics; {type(physics).__name__} is not")
    y01 = physics.A(((truths + 1) / 2).to(dtype))
    steps = leading_steps(nfe, schedule.num_train_timesteps)
    if "steps" in aligned:  # ssdiff's levels in [0, 1] units, then the clean image (the wrapper's identity)
        sigmas = [math.sqrt((1 - schedule.alpha_bar_at(t)) / schedule.alpha_bar_at(t)) / 2 for t in reversed(steps)] + [0.0]
    else:  # deepinv's default, linspace(1, 0, 100), at this budget
        sigmas = list(np.linspace(1, 0, nfe + 1))
    model = dinv.sampling.DDRM(denoiser, sigmas=np.array(sigmas), eta=0.85, etab=1.0, eps=0.0 if "no_eps" in aligned else 1e-6)
    noise_model = physics.noise_model
    if "noise_level" in aligned:  # a positive level as small as float32 holds makes deepinv's >= a strict >
        physics.noise_model = dinv.physics.GaussianNoise(sigma=1e-30 if "strict_last_step" in aligned else 0.0)
    try:
        if "replay_noise" in aligned:
            noises = ddrm_replay(task.ours, physics, y01, [d.to(dtype) for d in draws], steps, schedule, eta=0.85)
            with replaying(noises):
                out = model(y01, physics)
        else:
            torch.manual_seed(0)
            out = model(y01, physics)
    finally:
        physics.noise_model = noise_model
    return out.float()


# ---- deepinv's DiffPIR --------------------------------------------------------------------------

class ScheduledDiffPIR(dinv.sampling.DiffPIR):
    """deepinv's DiffPIR, its loop unchanged, on ssdiff's time steps and float64 schedule.

    deepinv indexes its tables by the step nearest each noise level; here the tables get one more
    entry in front, the clean image (alpha-bar 1, noise 0), so that its last move lands on x0
    itself, as ssdiff's (and the authors', whose last prediction is x0), and its last call, at
    noise 0, is the wrapper's identity instead of a network call whose result deepinv discards.
    """

    def __init__(self, *args, steps: list[int], schedule, float64: bool, **kwargs):
        self.steps, self.schedule_, self.float64 = steps, schedule, float64
        super().__init__(*args, **kwargs)

    def _alpha_bar(self) -> torch.Tensor:
        if self.float64:
            alpha_bar = torch.as_tensor(self.schedule_.alpha_bar, dtype=torch.float64)
        else:  # deepinv's own float32 table
            betas = torch.linspace(self.beta_start, self.beta_end, self.num_train_timesteps, dtype=torch.float32)
            alpha_bar = torch.cumprod(1 - betas, 0).double()
        return torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar])

    def get_alpha_beta(self):
        a = self._alpha_bar()
        return (1 - a).sqrt(), ((1 - a) / a).sqrt(), a.sqrt(), (1 / a).sqrt(), (1 / a - 1).sqrt(), None

    def get_noise_schedule(self, sigma):
        levels = self.reduced_alpha_cumprod
        rhos = self.lambda_ * sigma**2 / levels**2  # the clean entry's is never used: no data step there
        seq = torch.tensor([t + 1 for t in reversed(self.steps)] + [0])
        return rhos, levels, seq

    def get_alpha_prod(self, *args, **kwargs):
        a = self._alpha_bar()
        return (1 / a).sqrt(), (1 / a - 1).sqrt()


def run_deepinv_diffpir(denoiser, task: Task, truths: torch.Tensor, nfe: int, draws, schedule, aligned: set[str]) -> torch.Tensor:
    dtype = torch.float64 if "float64" in aligned else torch.float32
    physics = task.physics(dtype)
    y01 = physics.A(((truths + 1) / 2).to(dtype))
    if "generic_prox" in aligned and isinstance(physics, dinv.physics.Decolorize):
        physics = generic(physics)
    params = DIFFPIR_DEFAULTS.get(task.operator(y01).kind, {"lam": 1.0, "zeta": 0.25})
    lam, zeta = (params["lam"], params["zeta"]) if "task_parameters" in aligned else (7.0, 0.1)
    options = {"sigma": 0.001 if "noise_level" in aligned else 0.05, "zeta": zeta,
               "lambda_": lam / 2 if "lambda_convention" in aligned else lam, "max_iter": nfe + 1}
    if "steps" in aligned:
        steps = spaced_steps("diffpir", schedule.num_train_timesteps - 1, nfe, schedule)
        model = ScheduledDiffPIR(denoiser, dinv.optim.L2(), steps=steps, schedule=schedule,
                                 float64="float64_schedule" in aligned, **options)
    else:
        model = dinv.sampling.DiffPIR(denoiser, dinv.optim.L2(), **options)
    if "replay_noise" in aligned:
        # the start: deepinv draws x_T = sqrt(level^2 - 4 sigma^2) n sqrt(abar_T) around 2 A^T y - 1; from
        # x_init = 1/2 (zero in [-1, 1]) ssdiff's pure noise is n = z / (that factor)
        level = float(model.sigmas[model.seq[0]])
        scale = math.sqrt(level**2 - 4 * options["sigma"] ** 2) / float(model.get_alpha_prod()[0][-1])
        noises = [draws[0].to(dtype) / scale] + [d.to(dtype) for d in draws[1:]]
        with replaying(noises):
            out = model(y01, physics, x_init=torch.full_like(truths, 0.5, dtype=dtype))
    else:
        torch.manual_seed(0)
        out = model(y01, physics)
    return out.float()


RUNNERS = {"ddrm": run_deepinv_ddrm, "diffpir": run_deepinv_diffpir}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/celeba_aligned")
    parser.add_argument("--images", type=int, default=50, help="validation faces 008001.. (default 50)")
    parser.add_argument("--nfe", type=int, default=20)
    parser.add_argument("--methods", default="ddrm,diffpir")
    parser.add_argument("--tasks", default="inpainting,deblurring,sr4,colorization")
    parser.add_argument("--ablate", action="store_true",
                        help="also run the aligned deepinv without each alignment in turn (its max difference)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    prior = ssdiff.load_model("celeba64")
    size = prior.resolution
    _, truths = load_truths(BenchConfig(data=args.data, out="", subset=f"8000:{8000 + args.images}", crop_top=10), size)
    builders = {"inpainting": inpainting_task, "deblurring": deblurring_task, "sr4": super_resolution_task,
                "colorization": colorization_task}
    denoiser = PriorDenoiser(prior)
    print(f"{len(truths)} validation faces (008001..) at {size[0]}x{size[1]}, {args.nfe} network calls per method\n")
    print("| method | task | ssdiff PSNR | deepinv shipped PSNR | deepinv aligned PSNR | max abs(ssdiff - aligned) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    ablations, failures = [], {}
    for method in args.methods.split(","):
        for key in args.tasks.split(","):
            task = builders[key](size)
            ours, draws = run_ssdiff(prior, task, truths, method, args.nfe)
            cells = [f"{mean_psnr(2 * ours - 1, truths):.2f}"]
            aligned_image = None
            for aligned in (set(), set(ALIGNMENTS)):
                try:
                    image = RUNNERS[method](denoiser, task, truths, args.nfe, draws, prior.schedule, aligned)
                    cells.append(f"{mean_psnr(2 * image - 1, truths):.2f}")
                    aligned_image = image if aligned else None
                except (TypeError, IndexError, RuntimeError) as error:  # a combination deepinv cannot run
                    cells.append(f"fails ({type(error).__name__})")
                    failures[f"{method}, {task.name}"] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
            gap = f"{(ours - aligned_image).abs().max():.1e}" if aligned_image is not None else ""
            print(f"| {method} | {task.name} | {' | '.join(cells)} | {gap} |", flush=True)
            if args.ablate and aligned_image is not None:
                for name in METHOD_ALIGNMENTS[method]:
                    if name == "generic_prox" and "colorization" not in task.name:
                        continue
                    try:
                        image = RUNNERS[method](denoiser, task, truths, args.nfe, draws, prior.schedule, set(ALIGNMENTS) - {name})
                        ablations.append((method, task.name, name, f"{(ours - image).abs().max():.1e}",
                                          f"{mean_psnr(2 * image - 1, truths):.2f}"))
                    except (TypeError, IndexError, RuntimeError) as error:
                        ablations.append((method, task.name, name, f"fails: {type(error).__name__}", ""))
    for where, error in failures.items():
        print(f"\n{where}: deepinv fails with {error}")
    if ablations:
        print("\nThe aligned deepinv without one alignment (max abs difference from ssdiff, PSNR):\n")
        print("| method | task | without | max abs(ssdiff - deepinv) | PSNR |")
        print("| --- | --- | --- | ---: | ---: |")
        for row in ablations:
            print("| " + " | ".join(row) + " |")
    print("\nOperators: " + "; ".join(builders[k](size).note for k in args.tasks.split(",")))


if __name__ == "__main__":
    main()
