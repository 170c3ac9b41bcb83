"""Fixed-seed outputs of every method, sampler, inversion, spacing and task, against a stored
snapshot (``tests/data/solver_snapshot.safetensors``).

The snapshot pins behaviour while the solver core is reorganised: a change of any restoration by
more than 1e-5 fails here. The cases run on a closed-form Gaussian prior (elementwise, so its
output does not depend on the thread count or the CPU, and stable enough that float rounding is
not amplified), except those that need a UNet (attention injection, encoder reuse, and the
reference tiny network end to end), which run it on one thread: a random-weight network
amplifies the rounding differences between thread counts to 1e-4. It was recorded with

    python tests/test_snapshot.py --write

and is rewritten only when a change of results is intended (and then said in the commit).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import GaussianPrior
from safetensors.torch import load_file, save_file

import ssdiff
from ssdiff.operators import get_operator
from ssdiff.solvers import METHODS

DATA = Path(__file__).resolve().parent / "data"
SNAPSHOT = DATA / "solver_snapshot.safetensors"
SIZE = 16
TOLERANCE = 1e-5

TASKS = {
    "sr4": ("sr_bicubic", {"scale": 4}),
    "deblur": ("deblur_gauss", {}),
    "color": ("colorization", {}),
    "box": ("inpaint", {"mask": "box:0.5"}),
    "random": ("inpaint", {"mask": "random:0.5"}),
    "cs": ("cs_walsh_hadamard", {"ratio": 0.25}),
    "kernel": ("deblur_kernel", {"kernel": "gauss:1.5"}),  # matrix-free: CG
    "denoise": ("denoise", {}),
}
SVD_TASKS = ("sr4", "deblur", "color", "box", "random", "cs")


def _cases() -> dict[str, tuple[str, str, int, dict]]:
    """case id -> (method, task, nfe, options)."""
    cases = {}
    for task in SVD_TASKS:
        for method in ("ssd", "ssd+", "ddnm", "ddrm", "diffpir", "cm4ir", "dds"):
            cases[f"{method}-{task}"] = (method, task, 4 if method == "cm4ir" else 8, {})
    for method in ("ddim-inversion", "sdedit", "ssd-noproj", "dps", "pigdm", "red-diff", "ssd-fast"):
        cases[f"{method}-sr4"] = (method, "sr4", 8, {})
    for sampler in ("ddim", "dpm-solver++", "sde-dpm-solver++", "unipc", "edict"):
        for inversion in ("da", "sdedit", "edict"):
            cases[f"ssd-{sampler}-{inversion}-sr4"] = ("ssd", "sr4", 12, {"sampler": sampler, "inversion": inversion})
    cases["ssd-cm4ir-noise-sr4"] = ("ssd", "sr4", 10, {"sampler": "cm4ir-noise", "ddim_eta": [0.0, 0.5, 1.0, 0.3, 0.2, 0.1, 0.0, 0.0]})
    for sampler in ("ddim", "cm4ir-noise"):  # null-space noise, on a hole and on a noisy measurement (DDNM+'s rule)
        cases[f"ssd-{sampler}-null-eta-box"] = ("ssd", "box", 8, {"sampler": sampler, "ddim_eta": 0.2, "null_eta": 1.0})
    cases["ssd-null-eta-noisy-sr4"] = ("ssd", "sr4", 8, {"null_eta": 0.5, "sigma_y": 0.1})
    cases["ssd-null-eta-per-step-sr4"] = ("ssd", "sr4", 8, {"ddim_eta": 0.0, "null_eta": [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]})
    for spacing in ("trailing", "quadratic", "logsnr"):
        cases[f"ssd-dpm-{spacing}-sr4"] = ("ssd", "sr4", 10, {"sampler": "dpm-solver++", "spacing": spacing})
    for order in (1, 3):
        cases[f"ssd-unipc-order{order}-sr4"] = ("ssd", "sr4", 12, {"sampler": "unipc", "order": order})
    cases["ssd-ddim-eta0-sr4"] = ("ssd", "sr4", 10, {"ddim_eta": 0.0, "t0": 400, "eta": 0.6})
    for sampler in ("dpm-solver++", "sde-dpm-solver++", "unipc"):
        cases[f"ddnm-{sampler}-sr4"] = ("ddnm", "sr4", 8, {"sampler": sampler})
    cases["ddnm-logsnr-sr4"] = ("ddnm", "sr4", 8, {"spacing": "logsnr"})
    for method in ("ssd", "ssd+", "ddnm", "ddrm", "diffpir", "cm4ir", "dds"):
        cases[f"{method}-noisy-sr4"] = (method, "sr4", 4 if method == "cm4ir" else 8, {"sigma_y": 0.1})
    for method in ("ssd", "ddnm"):
        cases[f"{method}-noisy-denoise"] = (method, "denoise", 8, {"sigma_y": 0.2})
    for method in ("ssd", "ddnm", "dds", "diffpir", "cm4ir"):
        cases[f"{method}-kernel"] = (method, "kernel", 4 if method == "cm4ir" else 8, {})
    return cases


# cases that need the UNet: its attention maps, its encoder, or its real numerics
UNET_CASES = {
    "unet-ssd-attn-sr4": ("ssd-attn", "sr4", 8, {}),
    "unet-ssd-reuse-encoder-sr4": ("ssd", "sr4", 12, {"reuse_encoder": 2}),
    "unet-ssd-sr4": ("ssd", "sr4", 8, {}),
    "unet-ssd-dpm-solver++-color": ("ssd", "color", 8, {"sampler": "dpm-solver++"}),
    "unet-ddrm-deblur": ("ddrm", "deblur", 8, {}),
    "unet-diffpir-deblur": ("diffpir", "deblur", 8, {}),
}
CASES = {**_cases(), **UNET_CASES}
GAUSSIAN = GaussianPrior(mu=(0.2, -0.1, 0.05), s=0.4)


def truth() -> torch.Tensor:
    coarse = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=False).clamp(-1, 1)


def run_case(prior, case: str) -> torch.Tensor:
    method, task, nfe, options = CASES[case]
    name, task_options = TASKS[task]
    operator = get_operator(name, image_size=(SIZE, SIZE), **task_options)
    y = operator.A(truth())
    sigma_y = options.get("sigma_y", 0.0)
    if sigma_y:
        y = y + sigma_y * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ssd-fast's "no tuned preset" for the tiny network
        return ssdiff.restore(prior, operator, y, method=method, nfe=nfe, seed=3, **options).image.float()


def run(case: str, tiny_unet) -> torch.Tensor:
    """The case's output: on the UNet with one thread, or on the closed-form prior."""
    torch.manual_seed(0)
    if case not in UNET_CASES:
        return run_case(GAUSSIAN, case)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_case(tiny_unet, case)
    finally:
        torch.set_num_threads(threads)


def _tiny_unet():
    configs = json.loads((DATA / "model_configs.json").read_text())
    return ssdiff.load_model(DATA / "ddpm_model_small.safetensors", config=configs["ddpm_model_small"])


@pytest.fixture(scope="module")
def snapshot() -> dict[str, torch.Tensor]:
    return load_file(SNAPSHOT)


def test_the_snapshot_covers_every_case(snapshot):
    assert sorted(snapshot) == sorted(CASES)
    methods = {method for method, *_ in CASES.values()}
    assert methods == set(METHODS)  # a new method joins the snapshot


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_the_snapshot(tiny_ddpm, snapshot, case):
    out = run(case, tiny_ddpm)
    assert out.shape == snapshot[case].shape
    assert torch.isfinite(out).all()
    difference = (out - snapshot[case]).abs().max().item()
    assert difference <= TOLERANCE, f"{case}: differs from the snapshot by {difference:.3g}"


def write_snapshot() -> None:
    unet = _tiny_unet()
    outputs = {}
    for case in sorted(CASES):
        outputs[case] = run(case, unet).contiguous()
        print(f"{case}: {tuple(outputs[case].shape)}")
    save_file(outputs, str(SNAPSHOT))
    print(f"wrote {len(outputs)} outputs to {SNAPSHOT}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_snapshot.py --write")
    write_snapshot()
