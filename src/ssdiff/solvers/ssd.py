"""Shortcut Sampling for Diffusion (SSD, Liu et al., IJCAI 2024, arXiv 2305.16965).

1. Distortion Adaptive (DA) inversion: from ``x = A^+ y`` run ``Nf - 1`` DDIM inversion steps up
   to ``t0``, each adding fresh noise of variance ``eta * beta`` (Eq. 10), which yields the
   "Embryo", a noisy state that is faithful to ``y`` and realistic enough to generate from;
2. generation: ``Nb`` DDIM steps from ``t0`` down to 0, back-projecting every x0 estimate onto
   ``{x : A x = y}`` (Eq. 12). SSD+ stops the projection near the end (``stop_consistency_t``),
   which trades a little consistency for realism.

SSD is composed, not flagged: an inversion (:mod:`.inversions`: DA, SDEdit, EDICT) x a sampler
(:mod:`.samplers`: DDIM, DPM-Solver++, SDE-DPM-Solver++, UniPC, EDICT) x a data consistency
(:mod:`.consistency`: back-projection, DDNM+'s noise-aware one for a noisy ``y``), over time
steps placed by a ``spacing``. The default composition is the paper's, and its time steps, noise
and coefficients follow the released code (see ``schedule``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..operators import LinearOperator
from ..schedule import DEFAULT_SCHEDULE, spaced_steps, uniform_steps
from .common import CallCounter, EpsPrior, NoiseSource, Restoration, ScaledNoise, StepCallback
from .consistency import UNCONSTRAINED, FirstSteps, NullSpaceNoise
from .consistency import back_projection as projection_rule  # ssd()'s back_projection is the ablation switch
from .edict import DEFAULT_MIX
from .inversions import inversion_spec
from .samplers import CM4IR_ETA, ETA_SAMPLERS, MULTISTEP, check_order, per_step, sampler_spec
from .starts import start_function

PAPER_DDIM_ETA = 0.8  # the fresh noise of SSD's DDIM generation in the released code
DEFAULT_ETAS = {"ddim": PAPER_DDIM_ETA, "cm4ir-noise": CM4IR_ETA}  # SSD's ddim_eta when none is given


def split_budget(nfe: int) -> tuple[int, int]:
    """Map an NFE budget to (Nf, Nb) as the paper splits it: 30 -> (5, 25), 100 -> (15, 85).

    ``Nf = ceil(3 nfe / 20)`` inversion steps and ``Nb = nfe - Nf`` generation steps; the
    network is called ``Nf - 1 + Nb = nfe - 1`` times.
    """
    if nfe < 3:
        raise ValueError(f"SSD needs an NFE budget of at least 3, got {nfe}")
    forward = max(2, (3 * nfe + 19) // 20)
    return forward, nfe - forward


def stop_index(t0: int, stop_t: int | None, backward_steps: int) -> int:
    """How many generation steps (from the first) are projected in SSD+; the rest are not.

    The reference computes ``int((t0 - stop_t) / t0 * Nb)``; None means every step is projected.
    """
    if stop_t is None:
        return backward_steps
    return max(0, min(backward_steps, int((t0 - stop_t) / t0 * backward_steps)))


@dataclass(frozen=True)
class SSDSchedule:
    """The two time-step lists of one SSD run."""

    forward: list[int]  # DA inversion steps F[0] = 0 .. F[-1] = t0 - 1
    backward: list[int]  # generation steps, ascending; walked from the last to the first
    projected: int  # generation steps (from the first) that use back-projection

    @classmethod
    def build(cls, t0: int, forward_steps: int, backward_steps: int, stop_consistency_t: int | None = None,
              align: bool = False, spacing: str | Sequence[int] = "uniform") -> SSDSchedule:
        """``align`` moves the generation step nearest to each inversion step onto it (what attention
        injection needs; the paper's 5/25 and 15/85 splits are aligned already); ``spacing``
        places the generation steps, or lists them (the inversion's are always uniform, as the paper's)."""
        if not 1 <= t0 <= DEFAULT_SCHEDULE.num_train_timesteps:
            raise ValueError(f"t0 must be in [1, 1000], got {t0}")
        if forward_steps < 1 or backward_steps < 1:
            raise ValueError(f"need at least one inversion and one generation step, got {forward_steps}, {backward_steps}")
        forward, backward = uniform_steps(t0 - 1, forward_steps), spaced_steps(spacing, t0 - 1, backward_steps)
        if align:
            for t in forward:
                if t not in backward:
                    nearest = min(range(len(backward)), key=lambda i: abs(backward[i] - t))
                    backward[nearest] = t
            backward = sorted(set(backward))
        return cls(forward, backward, stop_index(t0, stop_consistency_t, len(backward)))


def ssd(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 30, t0: int = 550, eta: float = 0.4,
        seed: int | None = 0, start: str = "pinv", inversion: str = "da", sampler: str = "ddim",
        spacing: str | Sequence[int] = "uniform",
        ddim_eta: float | Sequence[float] | None = None, null_eta: float | Sequence[float] | None = None,
        order: int | None = None, eps_scale: float | None = None,
        edict_p: float | None = None, stop_consistency_t: int | None = None, back_projection: bool = True, sigma_y: float = 0.0,
        forward_steps: int | None = None, backward_steps: int | None = None, align_steps: bool = False,
        callback: StepCallback | None = None) -> Restoration:
    """Restore ``x`` from ``y = A x`` with SSD (``stop_consistency_t`` None) or SSD+ (e.g. 200).

    The composition: ``inversion`` (``da`` with noise ``eta``, 0 being DDIM inversion; ``sdedit``;
    ``edict``) from ``start`` (:data:`~.starts.STARTS`: ``A^+ y``, or its null space filled with the
    prior's mean colour) to ``t0``, then ``sampler`` over generation steps placed by ``spacing``
    (:data:`~ssdiff.schedule.SPACINGS`), correcting every x0 estimate by back-projection (none with
    ``back_projection=False``, an ablation), noise-aware for a measurement with Gaussian noise of std
    ``sigma_y`` (in [-1, 1] units), so that the noise of ``y`` is not copied into x.
    Component options: ``ddim_eta`` (the ddim sampler's fresh noise, default 0.8; cm4ir-noise's, default
    0.1; one per step or one for all), ``null_eta`` (their share of fresh noise in the null space of
    ``A`` instead, :class:`~.consistency.NullSpaceNoise`, one per step or one for all; default:
    ``ddim_eta`` everywhere), ``order`` (a multistep sampler's, default 2), ``edict_p`` (EDICT's
    mixing, default 0.93), ``eps_scale`` (generation divides the network's noise prediction by it:
    Epsilon Scaling, :class:`~.common.ScaledNoise`; default 1, the network's own, which the
    inversion always keeps; so EDICT's generation with a scale no longer retraces its inversion).
    ``forward_steps`` / ``backward_steps`` override the budget's split; ``align_steps`` moves
    generation steps onto the inversion's (what attention injection needs); ``callback(phase,
    index, t, x)`` is called before every network evaluation.
    """
    starting, inverting, generating = start_function(start), inversion_spec(inversion), sampler_spec(sampler)
    if edict_p is not None and "edict" not in (inversion, sampler):
        raise ValueError("edict_p applies to the edict inversion and sampler only")
    sampler_options = _component_options(sampler, ddim_eta=ddim_eta, order=order, edict_p=edict_p if sampler == "edict" else None)
    if sampler in DEFAULT_ETAS:
        sampler_options.setdefault("eta", DEFAULT_ETAS[sampler])
    if null_eta is not None and sampler not in ETA_SAMPLERS:  # a consistency option, for the samplers that move through it
        raise ValueError(f"null_eta applies to the {', '.join(ETA_SAMPLERS)} samplers only, not to {sampler!r}")
    if forward_steps is None or backward_steps is None:
        default_forward, default_backward = split_budget(nfe)
        # EDICT spends two calls per step: fewer steps keep the budget
        forward_steps = forward_steps or max(2, (default_forward - 1) // inverting.calls_per_step + 1)
        backward_steps = backward_steps or max(1, default_backward // generating.calls_per_step)
    plan = SSDSchedule.build(t0, forward_steps, backward_steps, stop_consistency_t, align=align_steps, spacing=spacing)
    if sampler in MULTISTEP:
        check_order(sampler, sampler_options.get("order", 2), len(plan.backward))
    # the noise shares, checked here, before any call: a list needs the number of generation steps
    if "eta" in sampler_options and sampler in ETA_SAMPLERS:
        per_step(sampler_options["eta"], len(plan.backward), "ddim_eta")
    if null_eta is not None:
        shares = per_step(null_eta, len(plan.backward), "null_eta")
        null_eta = shares[0] if isinstance(null_eta, numbers.Real) else shares
    eps_scale = noise_scale(eps_scale)
    counter = CallCounter(prior)
    noise = NoiseSource(seed, y.shape[0], y.device)
    y = y.float()
    inversion_options = {"da": {"eta": eta}, "edict": {"p": DEFAULT_MIX if edict_p is None else edict_p}}.get(inversion, {})
    embryo = inverting.function(counter, starting(prior, operator, y).float(), plan.forward, noise, callback, **inversion_options)
    consistency = FirstSteps(projection_rule(operator, y, sigma_y), plan.projected) if back_projection else UNCONSTRAINED
    if null_eta is not None:
        consistency = NullSpaceNoise(consistency, operator, null_eta)
    x = generating.function(ScaledNoise(counter, eps_scale), embryo, plan.backward, consistency, noise, callback, **sampler_options)
    extras = {"t0": t0, "eta": eta, "start": start, "inversion": inversion, "sampler": sampler, "spacing": spacing,
              "ddim_eta": sampler_options.get("eta"), "null_eta": null_eta, "eps_scale": eps_scale,
              "forward_steps": plan.forward, "backward_steps": plan.backward, "projected_steps": plan.projected,
              "sigma_y": sigma_y}
    return Restoration(image=x, nfe=counter.calls, extras=extras)


def noise_scale(eps_scale: object) -> float:
    """``eps_scale`` as a float (None: 1); ValueError for anything but a finite number above 0."""
    if eps_scale is None:
        return 1.0
    if isinstance(eps_scale, bool) or not isinstance(eps_scale, numbers.Real) or not 0 < eps_scale < math.inf:
        raise ValueError(f"eps_scale must be a positive number (about 1: 1.005 shrinks the noise prediction by 0.5%), "
                         f"got {eps_scale!r}")
    return float(eps_scale)


# SSD's names for the samplers' options, and the samplers that take each
_OPTION_NAMES = {"ddim_eta": ("eta", ETA_SAMPLERS), "order": ("order", MULTISTEP), "edict_p": ("p", ("edict",))}


def _component_options(sampler: str, **given: object) -> dict:
    """The options given for ``sampler`` under its own names; one meant for another sampler is an error."""
    options = {}
    for name, value in given.items():
        if value is None:
            continue
        own, takers = _OPTION_NAMES[name]
        if sampler not in takers:
            plural = "s" if len(takers) > 1 else ""
            raise ValueError(f"{name} applies to the {', '.join(takers)} sampler{plural} only, not to {sampler!r}")
        options[own] = value
    return options
