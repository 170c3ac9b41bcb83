"""Zero-shot restoration solvers behind one call: ``restore(prior, operator, y, method, nfe, seed)``.

The algorithms live one per module; :mod:`.methods` holds the policy (which methods exist, their
per-task defaults, the default method of a budget); :mod:`.consistency`, :mod:`.samplers` and
:mod:`.inversions` are the components the projection methods are composed of.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from ..limits import check_pixels
from ..models.encoder_reuse import EncoderReuse, key_calls
from ..operators import LinearOperator
from ..operators.physics import from_ours, is_physics, physics_noise, physics_operator, to_ours
from .common import EpsPrior, Restoration
from .methods import ABLATIONS, FAST_NFE, METHODS, NEEDS_NETWORK_GRADIENT, default_method, ssd_defaults
from .ssd import split_budget


def restore(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, method: str = "ssd", nfe: int = 30,
            seed: int | None = 0, reuse_encoder: int | Sequence[int] | None = None, **hparams: Any) -> Restoration:
    """Restore images from measurements ``y = operator.A(x)`` with a pretrained ``prior``.

    ``prior`` is any callable ``(x_t, t) -> eps`` (a loaded :class:`~ssdiff.models.DiffusionPrior`,
    or an analytic denoiser); ``method`` one of :data:`METHODS`; ``nfe`` the budget of network
    evaluations (the result reports the calls actually made); ``seed`` makes runs reproducible.
    SSD's hyper-parameters go by name: ``t0``, ``eta`` (DA-inversion noise), ``ddim_eta``,
    ``null_eta``, ``eps_scale``, ``stop_consistency_t``; unset ones take the paper's per-task defaults.

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
    spec = METHODS[method]
    refused = [name for name in hparams if not spec.takes(name)]
    if refused:
        raise ValueError(f"method {method!r} does not take the option {refused[0]}")
    _check_capability(method, operator, hparams.get("sigma_y") or 0.0)
    with _encoder_reuse(prior, method, reuse_encoder) as reuse:
        defaults = spec.options_for(operator)
        given = {name: value for name, value in hparams.items() if value is not None or name not in defaults}
        result = spec.solver(prior, operator, y, nfe=nfe, seed=seed, **{**defaults, **given})  # None: the default
    result.extras.update(method=method, seconds=time.perf_counter() - started)
    if reuse is not None:
        result.extras.update(encoder_calls=reuse.encoder_calls, decoder_only_calls=reuse.decoder_calls)
    return result


# Options that are noise levels or weights: a negative one has no meaning
NON_NEGATIVE_OPTIONS = ("sigma_y", "eta", "ddim_eta", "null_eta", "eta_b", "zeta", "lam", "churn")
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


def _check_capability(method: str, operator: LinearOperator, sigma_y: float) -> None:
    """Refuse, before any work, a method that needs the operator's SVD view when it has none."""
    needs = METHODS[method].needs_svd
    noisy = sigma_y > 0 and needs == "when noisy"
    if operator.has_svd or not (needs == "always" or noisy):
        return
    raise ValueError(f"{method}{' with a noisy measurement' if noisy else ''} works in the operator's SVD view, which "
                     f"{operator.name} does not have; use dds, diffpir, cm4ir, red-diff, or ssd / ddnm on a noise-free "
                     "measurement")


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


__all__ = ["ABLATIONS", "FAST_NFE", "METHODS", "NEEDS_NETWORK_GRADIENT", "Restoration", "default_method", "restore",
           "split_budget", "ssd_defaults"]
