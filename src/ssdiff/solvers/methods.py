"""Method policy, in one place: every method :func:`~ssdiff.restore` runs, what it is, its per-task
defaults (looked up by the operator's :class:`~ssdiff.operators.Kind`, never by its name), the
method a budget runs when none is named, and what a method needs of the prior.

The solver functions hold the algorithms with plain defaults; this registry holds the choices a
paper's authors made per task, and the variants (SSD+, the ablations) that fix an option.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..operators import Kind, LinearOperator
from .cm4ir import cm4ir
from .common import EpsPrior, Restoration, defaults_for
from .ddnm import ddnm
from .ddrm import ddrm
from .dds import dds
from .diffpir import diffpir
from .dps import dps
from .fast import ssd_fast
from .injection import ssd_attention_injection
from .pigdm import pigdm
from .red_diff import red_diff
from .ssd import ssd

FAST_NFE = 10  # at this many calls or fewer, a restoration runs ssd-fast unless told otherwise


def default_method(nfe: int) -> str:
    """The method a budget runs unless told: SSD as the paper runs it, or tuned at 10 calls or less."""
    return "ssd-fast" if nfe <= FAST_NFE else "ssd"


# SSD (Sec. 5.1): SR and deblurring t0=550, eta=0.4; colorization t0=750, eta=0.8. Tasks the
# paper does not tune (inpainting, CS) have to generate whole regions, so they take
# colorization's stronger setting.
SSD_DEFAULTS: dict[Kind, dict[str, Any]] = {
    Kind.SUPER_RESOLUTION: {"t0": 550, "eta": 0.4},
    Kind.DEBLURRING: {"t0": 550, "eta": 0.4},
    Kind.DENOISING: {"t0": 550, "eta": 0.4},
    Kind.COLORIZATION: {"t0": 750, "eta": 0.8},
    Kind.INPAINTING: {"t0": 750, "eta": 0.8},
    Kind.INPAINTING_SCATTERED: {"t0": 750, "eta": 0.8},
    Kind.COMPRESSED_SENSING: {"t0": 750, "eta": 0.8},
}
SSD_OTHER = {"t0": 550, "eta": 0.4}

# DiffPIR: the authors' configs/*.yaml and experiment loops: zeta 0.25 for SR, 0.3 with lambda 7
# for deblurring, 1 for inpainting; colorization and CS, which they do not run, take SR's.
DIFFPIR_DEFAULTS: dict[Kind, dict[str, Any]] = {
    Kind.SUPER_RESOLUTION: {"lam": 1.0, "zeta": 0.25},
    Kind.DEBLURRING: {"lam": 7.0, "zeta": 0.3},
    Kind.INPAINTING: {"lam": 1.0, "zeta": 1.0},
    Kind.INPAINTING_SCATTERED: {"lam": 1.0, "zeta": 1.0},
}

# CM4IR: (iN, gamma, zeta_reg) of the authors' evaluate_CM4IR.sh (LSUN, sigma_y = 0.025): SR x4
# 400/0.7, deblurring 75/0.01 with zeta 3, inpainting 150/0.2; other tasks the CLI's 250/0.7.
CM4IR_DEFAULTS: dict[Kind, dict[str, Any]] = {
    Kind.SUPER_RESOLUTION: {"start_t": 400, "gamma": 0.7, "zeta_reg": 0.0},
    Kind.DEBLURRING: {"start_t": 75, "gamma": 0.01, "zeta_reg": 3.0},
    Kind.INPAINTING: {"start_t": 150, "gamma": 0.2, "zeta_reg": 0.0},
    Kind.INPAINTING_SCATTERED: {"start_t": 150, "gamma": 0.2, "zeta_reg": 0.0},
}

# DPS: the step sizes of the authors' released configurations (FFHQ): SR and blur 0.3, inpainting 0.5.
DPS_DEFAULTS: dict[Kind, dict[str, Any]] = {Kind.INPAINTING: {"zeta": 0.5}, Kind.INPAINTING_SCATTERED: {"zeta": 0.5}}


def ssd_defaults(operator: LinearOperator) -> dict[str, Any]:
    """The paper's SSD hyper-parameters for this operator's kind of degradation."""
    return defaults_for(operator, SSD_DEFAULTS, SSD_OTHER)


def _ssd_fast(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, **kwargs: Any) -> Restoration:
    # the tuned configuration outranks SSD's per-task defaults, so they go in under it, not over it
    return ssd_fast(prior, operator, y, task_defaults=ssd_defaults(operator), **kwargs)


@dataclass(frozen=True)
class Method:
    """A method: its solver, a one-line description, its per-task defaults (``defaults`` per kind,
    ``other`` for kinds the table leaves out), the options a variant fixes (over the defaults,
    under the user's), whether it differentiates the network, and whether it works in the
    operator's SVD view (``needs_svd``: "always", or "when noisy" for the noise-aware updates)."""

    solver: Callable[..., Restoration]
    description: str
    defaults: Mapping[Kind, Mapping[str, Any]] = field(default_factory=dict)
    other: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    needs_network_gradient: bool = False
    needs_svd: str = ""
    passes_to: tuple[Callable[..., Restoration], ...] = ()  # where a wrapper's other options go

    def options_for(self, operator: LinearOperator) -> dict[str, Any]:
        """The method's options for this operator's kind of degradation, before the user's."""
        return {**defaults_for(operator, self.defaults, self.other), **self.fixed}

    def takes(self, option: str) -> bool:
        """Whether the solver takes ``option`` (a wrapper: it, or the solver it passes options to)."""
        return any(option in _keywords(function) for function in (self.solver, *self.passes_to))


def _keywords(function: Callable[..., Any]) -> set[str]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _ssd(description: str, **fixed: Any) -> Method:
    return Method(ssd, description, SSD_DEFAULTS, SSD_OTHER, fixed=fixed, needs_svd="when noisy")


METHODS: dict[str, Method] = {
    "ssd": _ssd("Shortcut Sampling: DA inversion to t0, then generation with back-projection"),
    "ssd+": _ssd("SSD with back-projection stopped below t=200 (SSD+)", stop_consistency_t=200),
    "ddim-inversion": _ssd("ablation: plain DDIM inversion (eta = 0) instead of DA inversion", eta=0.0),
    "sdedit": _ssd("ablation: noise A+y to t0 with q(x_t0|x0) (CCDF/SDEdit start)", inversion="sdedit"),
    "ssd-noproj": _ssd("ablation: SSD without back-projection", back_projection=False),
    "ssd-attn": Method(ssd_attention_injection, "SSD with attention injection from the inversion (the paper's first version)",
                       SSD_DEFAULTS, SSD_OTHER, needs_svd="when noisy", passes_to=(ssd,)),
    "ddnm": Method(ddnm, "DDNM (Wang et al. 2023): null-space refinement from pure noise; DDNM+ with sigma_y > 0",
                   needs_svd="when noisy"),
    "ddrm": Method(ddrm, "DDRM (Kawar et al. 2022): sampling in the operator's SVD space, eta 0.85, eta_b 1",
                   needs_svd="always"),
    "dps": Method(dps, "DPS (Chung et al. 2023): gradient of |y - A x0| through the network (2 passes per step)",
                  DPS_DEFAULTS, {"zeta": 0.3}, needs_network_gradient=True),
    "pigdm": Method(pigdm, "PiGDM (Song et al. 2023): pseudo-inverse guidance through the network",
                    needs_network_gradient=True, needs_svd="when noisy"),
    "red-diff": Method(red_diff, "RED-diff (Mardani et al. 2024): Adam over x with an SNR-weighted denoiser regulariser"),
    "ssd-fast": Method(_ssd_fast, "SSD with the configuration `ssdiff tune` found for the prior, task and budget",
                       needs_svd="when noisy", passes_to=(ssd_fast, ssd)),
    "diffpir": Method(diffpir, "DiffPIR (Zhu et al. 2023): proximal data step on x0, re-noising with zeta; quadratic steps",
                      DIFFPIR_DEFAULTS, {"lam": 1.0, "zeta": 0.25}),
    "cm4ir": Method(cm4ir, "CM4IR (Garber & Tirer 2025): A+y start, back-projection guidance, its noise injection; diffusion prior",
                    CM4IR_DEFAULTS, {"start_t": 250, "gamma": 0.7, "zeta_reg": 0.0}),
    "dds": Method(dds, "DDS (Chung et al. 2024): DDIM with 5 conjugate-gradient steps of data consistency on every x0"),
}
# The variants of SSD that remove or add one of its mechanisms (the paper's ablation study).
ABLATIONS = ("ddim-inversion", "sdedit", "ssd-noproj", "ssd-attn")
# Methods that differentiate the network's output with respect to x_t: a decoder-only call
# does not see x_t, so its gradient would silently be zero.
NEEDS_NETWORK_GRADIENT = tuple(name for name, method in METHODS.items() if method.needs_network_gradient)
