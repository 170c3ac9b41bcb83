"""Zero-shot restoration solvers behind one call: ``restore(prior, operator, y, method, nfe, seed)``."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from ..limits import check_pixels
from ..models.encoder_reuse import EncoderReuse, key_calls
from ..operators import Kind, LinearOperator
from ..operators.physics import from_ours, is_physics, physics_noise, physics_operator, to_ours
from .cm4ir import cm4ir
from .common import EpsPrior, Restoration, defaults_for
from .ddnm import ddnm
from .ddrm import ddrm
from .dds import dds
from .diffpir import diffpir
from .dps import dps
from .injection import AttentionInjector
from .pigdm import pigdm
from .red_diff import red_diff
from .ssd import split_budget, ssd

# Per-task SSD defaults from the paper (Sec. 5.1): SR and deblurring t0=550, eta=0.4;
# colorization t0=750, eta=0.8. Tasks the paper does not tune (inpainting, CS) have to
# generate whole regions, so they take colorization's stronger setting.
TASK_DEFAULTS: dict[Kind, dict[str, Any]] = {
    Kind.SUPER_RESOLUTION: {"t0": 550, "eta": 0.4},
    Kind.DEBLURRING: {"t0": 550, "eta": 0.4},
    Kind.DENOISING: {"t0": 550, "eta": 0.4},
    Kind.COLORIZATION: {"t0": 750, "eta": 0.8},
    Kind.INPAINTING: {"t0": 750, "eta": 0.8},
    Kind.INPAINTING_SCATTERED: {"t0": 750, "eta": 0.8},
    Kind.COMPRESSED_SENSING: {"t0": 750, "eta": 0.8},
}
OTHER_DEFAULTS = {"t0": 550, "eta": 0.4}


def task_defaults(operator: LinearOperator) -> dict[str, Any]:
    """The paper's SSD hyper-parameters for this operator's kind of degradation."""
    return defaults_for(operator, TASK_DEFAULTS, OTHER_DEFAULTS)


def _ssd_variant(**fixed: Any) -> Callable[..., Restoration]:
    def run(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, **kwargs: Any) -> Restoration:
        params = {**task_defaults(operator), **fixed, **kwargs}
        return ssd(prior, operator, y, **params)

    return run


def ssd_attention_injection(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, inject_layers: str = "up",
                            inject_steps: list[int] | None | str = "released", **kwargs: Any) -> Restoration:
    """SSD with attention injection: maps stored at the inversion steps replace the generation's
    maps at the same time steps (``inject_layers``: up, mid, decoder, down, all; ``inject_steps``:
    indices of the inversion steps whose maps are used, default 2 and 3 as the released code's
    ``--aligned_timestep 2 3``, those of them that the budget's inversion has; None uses all)."""
    forward = kwargs.get("forward_steps") or split_budget(kwargs.get("nfe", 30))[0]
    evaluated = forward - 1  # the inversion evaluates the network at its first forward - 1 steps
    if inject_steps == "released":
        inject_steps = [i for i in (2, 3) if i < evaluated]
    if inject_steps is not None and any(not 0 <= int(i) < evaluated for i in inject_steps):
        raise ValueError(f"inject_steps {list(inject_steps)} out of range: this budget's inversion evaluates the "
                         f"network at steps 0..{evaluated - 1}")
    injector = AttentionInjector(getattr(prior, "network", None), inject_layers, inject_steps)
    with injector.attached():
        result = ssd(prior, operator, y, callback=injector.hook, **{**task_defaults(operator), "align_steps": True, **kwargs})
    result.extras.update(injected_maps=injector.injected, inject_layers=inject_layers,
                         inject_steps=None if inject_steps is None else list(inject_steps))
    return result


# method -> (solver, description)
METHODS: dict[str, tuple[Callable[..., Restoration], str]] = {
    "ssd": (_ssd_variant(), "Shortcut Sampling: DA inversion to t0, then generation with back-projection"),
    "ssd+": (_ssd_variant(stop_consistency_t=200), "SSD with back-projection stopped below t=200 (SSD+)"),
    "ddim-inversion": (_ssd_variant(eta=0.0), "ablation: plain DDIM inversion (eta = 0) instead of DA inversion"),
    "sdedit": (_ssd_variant(inversion="sdedit"), "ablation: noise A+y to t0 with q(x_t0|x0) (CCDF/SDEdit start)"),
    "ssd-noproj": (_ssd_variant(back_projection=False), "ablation: SSD without back-projection"),
    "ssd-attn": (ssd_attention_injection, "SSD with attention injection from the inversion (the paper's first version)"),
    "ddnm": (ddnm, "DDNM (Wang et al. 2023): null-space refinement from pure noise; DDNM+ with sigma_y > 0"),
    "ddrm": (ddrm, "DDRM (Kawar et al. 2022): sampling in the operator's SVD space, eta 0.85, eta_b 1"),
    "dps": (dps, "DPS (Chung et al. 2023): gradient of |y - A x0| through the network (2 passes per step)"),
    "pigdm": (pigdm, "PiGDM (Song et al. 2023): pseudo-inverse guidance through the network"),
    "red-diff": (red_diff, "RED-diff (Mardani et al. 2024): Adam over x with an SNR-weighted denoiser regulariser"),
    "ssd-fast": (lambda *a, **k: _ssd_fast(*a, **k), "SSD with the configuration `ssdiff tune` found for the prior, task and budget"),
    "diffpir": (diffpir, "DiffPIR (Zhu et al. 2023): proximal data step on x0, re-noising with zeta; quadratic steps"),
    "cm4ir": (cm4ir, "CM4IR (Garber & Tirer 2025): A+y start, back-projection guidance, its noise injection; diffusion prior"),
    "dds": (dds, "DDS (Chung et al. 2024): DDIM with 5 conjugate-gradient steps of data consistency on every x0"),
}
# The variants of SSD that remove or add one of its mechanisms (the paper's ablation study).
ABLATIONS = ("ddim-inversion", "sdedit", "ssd-noproj", "ssd-attn")


def _ssd_fast(*args: Any, **kwargs: Any) -> Restoration:
    from ..tune import ssd_fast  # tune builds on the solvers: imported when first used

    return ssd_fast(*args, **kwargs)


def restore(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, method: str = "ssd", nfe: int = 30,
            seed: int | None = 0, reuse_encoder: int | Sequence[int] | None = None, **hparams: Any) -> Restoration:
    """Restore images from measurements ``y = operator.A(x)`` with a pretrained ``prior``.

    ``prior`` is any callable ``(x_t, t) -> eps`` (a loaded :class:`~ssdiff.models.DiffusionPrior`,
    or an analytic denoiser); ``method`` one of :data:`METHODS`; ``nfe`` the budget of network
    evaluations (the result reports the calls actually made); ``seed`` makes runs reproducible.
    SSD's hyper-parameters go by name: ``t0``, ``eta`` (DA-inversion noise), ``ddim_eta``,
    ``stop_consistency_t``; unset ones take the paper's per-task defaults.

    ``operator`` may also be a deepinv physics object (duck-typed: ``A``, ``A_adjoint``, and for
    the SVD view ``U``, ``U_adjoint``, ``V``, ``V_adjoint``, ``mask``): then ``y`` and the returned
    image are in deepinv's [0, 1], and its noise model's ``sigma`` is the default ``sigma_y``.

    ``reuse_encoder`` (any method but DPS and PiGDM) runs the UNet's encoder only every that many
    calls and at each call of the budget's last quarter (:func:`~ssdiff.models.encoder_reuse.key_calls`),
    or at the given call indices, and its decoder alone in between (Faster Diffusion's encoder
    propagation, :class:`~ssdiff.models.EncoderReuse`): cheaper calls at a quality cost measured
    in ``benchmarks/speed.md``; the result's extras count both kinds of call.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from: {', '.join(METHODS)}")
    check_arguments(prior, operator, y, nfe, seed, hparams)
    if is_physics(operator):  # a deepinv physics object: images in [0, 1] at the boundary
        physics = operator
        operator = physics_operator(physics, y)
        if hparams.get("sigma_y") is None and physics_noise(physics):
            hparams["sigma_y"] = physics_noise(physics)
        result = restore(prior, operator, to_ours(operator, y), method, nfe, seed, reuse_encoder, **hparams)
        result.image = from_ours(result.image)
        result.extras["physics"] = type(physics).__name__
        return result
    started = time.perf_counter()
    if isinstance(reuse_encoder, numbers.Integral):
        reuse_encoder = key_calls(int(reuse_encoder), nfe)
    with _encoder_reuse(prior, method, reuse_encoder) as reuse:
        try:
            result = METHODS[method][0](prior, operator, y, nfe=nfe, seed=seed, **hparams)
        except TypeError as error:
            if "unexpected keyword argument" not in str(error):
                raise
            option = str(error).rsplit(" ", 1)[-1].strip("'")
            raise ValueError(f"method {method!r} does not take the option {option}") from None
        except NotImplementedError as error:  # DDRM, and the noise-aware updates, work in the SVD view
            if "has no SVD view" not in str(error):
                raise
            noisy = " with a noisy measurement" if hparams.get("sigma_y", 0) > 0 else ""
            raise ValueError(f"{method}{noisy} works in the operator's SVD view, which {operator.name} does not have; "
                             "use dds, diffpir, cm4ir, red-diff, or ssd / ddnm on a noise-free measurement") from None
    result.extras.update(method=method, seconds=time.perf_counter() - started)
    if reuse is not None:
        result.extras.update(encoder_calls=reuse.encoder_calls, decoder_only_calls=reuse.decoder_calls)
    return result


# Options that are noise levels or weights: a negative one has no meaning
NON_NEGATIVE_OPTIONS = ("sigma_y", "eta", "ddim_eta", "eta_b", "zeta", "lam", "churn")
MAX_SEED = 2**63 - 1


def valid_seed(value: Any) -> bool:
    """An integer a torch generator takes, and that ``seed + i`` per image keeps taking: 0 .. 2**63 - 1."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value <= MAX_SEED


def check_arguments(prior: Any, operator: Any, y: Any, nfe: Any, seed: Any, hparams: dict[str, Any]) -> None:
    """Refuse, with a sentence a user understands, what would otherwise fail deep inside torch or
    diffusers or silently give NaN: wrong types, empty or misshapen measurements, NaN or infinite
    numbers, negative noise levels, seeds a generator cannot take, images beyond the pixel budget."""
    if not callable(prior):
        raise TypeError(f"prior must be a callable (x_t, t) -> eps, such as ssdiff.load_model(...), not {type(prior).__name__}")
    if not (isinstance(operator, LinearOperator) or is_physics(operator)):
        raise TypeError("operator must be an ssdiff operator (ssdiff.get_operator(...)) or a deepinv physics object, "
                        f"not {type(operator).__name__}")
    if not torch.is_tensor(y):
        hint = " (torch.from_numpy(y) converts a numpy array)" if type(y).__module__ == "numpy" else ""
        raise TypeError(f"y must be a torch.Tensor, not {type(y).__name__}{hint}")
    if y.device.type == "meta":
        raise ValueError("y is on the meta device, which holds no values; give a measurement on cpu, cuda or mps")
    if not y.is_floating_point():
        raise TypeError(f"y must hold floating-point values in [-1, 1], not {y.dtype}")
    if isinstance(operator, LinearOperator):
        _check_measurement_shape(operator, y)
    if y.numel() and not bool(torch.isfinite(y).all()):
        raise ValueError("y holds NaN or infinite values; a measurement must be finite")
    if isinstance(nfe, bool) or not isinstance(nfe, numbers.Integral) or nfe < 1:
        raise ValueError(f"nfe must be a positive integer (network calls), got {nfe!r}")
    for value in seed if isinstance(seed, (list, tuple)) else [seed]:
        if value is not None and not valid_seed(value):
            raise ValueError(f"seed must be None or an integer from 0 to 2**63 - 1, got {value!r}")
    for name, value in hparams.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if name in NON_NEGATIVE_OPTIONS and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")


def _check_measurement_shape(operator: LinearOperator, y: torch.Tensor) -> None:
    ndim, channels = operator.measurement_ndim, operator.measurement_channels
    form = "B x C x m" if ndim == 3 else "B x C x h x w"
    if ndim is not None and y.ndim != ndim:
        raise ValueError(f"y must be a batch of {operator.name} measurements, {form}, got shape {tuple(y.shape)}"
                         + (" (y[None] adds the batch axis)" if y.ndim == ndim - 1 else ""))
    if y.ndim < 2 or 0 in y.shape:
        raise ValueError(f"y is empty (shape {tuple(y.shape)}); give at least one measurement")
    if channels is not None and y.shape[1] != channels:
        raise ValueError(f"{operator.name} measurements have {channels} channel(s), y has {y.shape[1]} (shape {tuple(y.shape)})")
    if ndim == 4:
        check_pixels(operator.name, *operator.image_shape(y), what="the restored image")


# Methods that differentiate the network's output with respect to x_t: a decoder-only call
# does not see x_t, so its gradient would silently be zero.
NEEDS_NETWORK_GRADIENT = ("dps", "pigdm")


@contextmanager
def _encoder_reuse(prior: EpsPrior, method: str, key_calls: int | Sequence[int] | None) -> Iterator[EncoderReuse | None]:
    if key_calls is None:
        yield None
        return
    if method in NEEDS_NETWORK_GRADIENT:
        raise ValueError(f"reuse_encoder does not work with {method}: it differentiates the network with respect "
                         "to x_t, which a decoder-only call does not see")
    if not hasattr(prior, "reusing_encoder"):
        raise ValueError(f"reuse_encoder needs a UNet prior (a loaded DiffusionPrior), not {type(prior).__name__}")
    with prior.reusing_encoder(key_calls) as reuse:
        yield reuse


__all__ = ["ABLATIONS", "METHODS", "Restoration", "restore", "split_budget", "task_defaults"]
