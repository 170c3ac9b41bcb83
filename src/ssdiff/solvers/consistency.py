"""Data consistency: how a solver makes each clean-image estimate agree with the measurement.

One component, several rules. Every sampler calls ``consistency(x0, step)`` on the estimate of
each step; a DDIM-style sampler calls ``consistency.move(x0, eps, step, eta, noise)``, which
corrects and moves to the next level in one, so that a rule that also re-balances the noise
(DDNM+) can do both, and one that builds its own direction from the corrected estimate
(cm4ir-noise) calls ``consistency.advance``. No sampler looks at the operator or the noise level of ``y`` itself.

- :class:`BackProjection`: ``x0 - A^+(A x0 - y)``, the exact projection onto ``{A x = y}`` (SSD Eq. 12,
  DDNM Eq. 13); through CG for a matrix-free operator.
- :class:`NoiseAwareProjection`: DDNM+ (Eqs. 17-19) in the operator's SVD view, for a noisy ``y``.
- :class:`ConjugateGradient`: DDS's few CG steps on the normal equations (any matrix-free operator).
- :class:`Proximal`: ``argmin |y - A x|^2 + rho |x - x0|^2`` (DiffPIR's data step, CM4IR's guidance).
- :class:`FirstSteps`: another rule on the first generation steps only (SSD+).
- :class:`NullSpaceNoise`: another rule, with its own share of fresh noise in the null space of ``A``.
- :func:`back_projection`: the rule a projection method uses for a measurement of noise ``sigma_y``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..operators import LinearOperator, conjugate_gradient
from .common import NoiseSource, ddim_move


@dataclass(frozen=True)
class Step:
    """Where a sampler is when it corrects an estimate: the ``index`` of the generation step (0 the
    first), the time step ``t`` and alpha-bar the estimate was made at, and the alpha-bar of the
    level the sampler moves to next (1 for the clean image)."""

    index: int
    t: int
    alpha_bar: float
    alpha_bar_next: float


class Consistency:
    """The identity rule (no correction); the base of every rule."""

    def __call__(self, x0: torch.Tensor, step: Step) -> torch.Tensor:
        return x0

    def move(self, x0: torch.Tensor, eps: torch.Tensor, step: Step, eta: float, noise: NoiseSource) -> torch.Tensor:
        """Correct ``x0``, then :meth:`advance` from it."""
        return self.advance(self(x0, step), eps, step, eta, noise)

    def advance(self, x0: torch.Tensor, eps: torch.Tensor, step: Step, eta: float, noise: NoiseSource) -> torch.Tensor:
        """DDIM's move from a corrected ``x0`` along ``eps`` to the next level, with fresh noise
        ``eta sqrt(1 - a_next)`` (a sampler that builds its own direction, as cm4ir-noise, calls this)."""
        sigma = eta * math.sqrt(1.0 - step.alpha_bar_next)
        return ddim_move(x0, eps, step.alpha_bar_next, sigma, noise.like(x0) if sigma > 0 else None)


UNCONSTRAINED = Consistency()


class BackProjection(Consistency):
    """``x0 <- x0 - A^+(A x0 - y)`` (the operator's :meth:`~ssdiff.operators.LinearOperator.project`)."""

    def __init__(self, operator: LinearOperator, y: torch.Tensor):
        self.operator, self.y = operator, y

    def __call__(self, x0: torch.Tensor, step: Step) -> torch.Tensor:
        return self.operator.project(x0, self.y)


class NoiseAwareProjection(Consistency):
    """DDNM+'s update for ``y`` with Gaussian noise of std ``sigma_y`` (DDNM Eqs. 17-19, SVD view).

    ``x0_hat = x0 - V Lambda V^T A^+(A x0 - y)`` and ``x = sqrt(a) x0_hat + V(D1 z + D2 V^T eps)``
    for the next level ``a``: where ``y`` is noisier than the next state (``sigma_t < sqrt(a) sigma_y
    / s``) the correction is scaled down to ``s sigma_t sqrt(1 - eta^2) / (sqrt(a) sigma_y)`` and
    the noise shrunk, elsewhere the full correction and re-balanced noise, as the authors'
    ``Lambda`` and ``Lambda_noise``. A deterministic sampler (no move) takes the correction with
    ``eta = 0``. With ``sigma_y = 0`` this is the back-projection.
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, sigma_y: float):
        self.operator, self.y, self.sigma_y = operator, y, sigma_y

    def _terms(self, x0: torch.Tensor, step: Step, eta: float) -> tuple[torch.Tensor, ...]:
        operator = self.operator
        sigma_t, scale = math.sqrt(1 - step.alpha_bar_next), math.sqrt(step.alpha_bar_next)
        s = operator.singular_map(x0).expand_as(x0)
        measured = s > 0
        noise_floor = scale * self.sigma_y / torch.where(measured, s, torch.ones_like(s))  # a * sigma_y / s
        noisier = measured & (sigma_t < noise_floor)  # y is noisier than x_t: correct only partly
        cleaner = measured & (sigma_t > noise_floor)
        lam = torch.where(noisier, s * sigma_t * math.sqrt(1 - eta**2) / max(scale * self.sigma_y, 1e-12),
                          torch.ones_like(s))
        x0_hat = x0 - operator.V(lam * operator.Vt(operator.A_pinv(operator.A(x0) - self.y)))
        return x0_hat, s, noisier, cleaner, noise_floor, sigma_t, scale

    def __call__(self, x0: torch.Tensor, step: Step) -> torch.Tensor:
        return self._terms(x0, step, 0.0)[0]

    def move(self, x0: torch.Tensor, eps: torch.Tensor, step: Step, eta: float, noise: NoiseSource) -> torch.Tensor:
        x0_hat, s, noisier, cleaner, noise_floor, sigma_t, scale = self._terms(x0, step, eta)
        d1 = torch.full_like(s, sigma_t * eta)
        d1 = torch.where(cleaner, (sigma_t**2 - noise_floor**2).clamp_min(0).sqrt(), d1)
        d2 = torch.where(noisier | cleaner, torch.zeros_like(s), torch.full_like(s, sigma_t * math.sqrt(1 - eta**2)))
        fresh = d1 * noise.like(x0) + d2 * self.operator.Vt(eps)
        return scale * x0_hat + self.operator.V(fresh)


class ConjugateGradient(Consistency):
    """DDS's data step (Sec. 3.2, Eq. 13): ``iterations`` CG steps from ``x0`` on ``A^T A x = A^T y``,
    or, for a noisy measurement (``gamma`` set), on ``(I + gamma A^T A) x = x0 + gamma A^T y``.
    Started from x0, CG stays in ``x0 + range(A^T)``: it moves x0 only along what ``y`` measures."""

    def __init__(self, operator: LinearOperator, y: torch.Tensor, iterations: int, gamma: float | None = None):
        self.operator, self.y, self.iterations, self.gamma = operator, y, iterations, gamma
        self.AT_y = operator.A_adjoint(y)

    def __call__(self, x0: torch.Tensor, step: Step) -> torch.Tensor:
        A, AT = self.operator.A, self.operator.A_adjoint
        if self.gamma is None:
            return conjugate_gradient(lambda x: AT(A(x)), self.AT_y, x0, self.iterations)
        gamma = self.gamma
        return conjugate_gradient(lambda x: x + gamma * AT(A(x)), x0 + gamma * self.AT_y, x0, self.iterations)


class Proximal(Consistency):
    """``x0 <- argmin_x |y - A x|^2 + rho |x - x0|^2``, solved in the operator's SVD view (or by CG);
    ``rho`` a number or a function of the step (DiffPIR's ``rho_t``)."""

    def __init__(self, operator: LinearOperator, y: torch.Tensor, rho: float | Callable[[Step], float]):
        self.operator, self.y, self.rho = operator, y, rho

    def __call__(self, x0: torch.Tensor, step: Step) -> torch.Tensor:
        rho = self.rho(step) if callable(self.rho) else self.rho
        return self.operator.project(x0, self.y, rho=rho)


class FirstSteps(Consistency):
    """``rule`` at the first ``count`` generation steps, no correction after (SSD+'s stop)."""

    def __init__(self, rule: Consistency, count: int):
        self.rule, self.count = rule, count

    def __call__(self, x0: torch.Tensor, step: Step) -> torch.Tensor:
        return self.rule(x0, step) if step.index < self.count else x0

    def move(self, x0: torch.Tensor, eps: torch.Tensor, step: Step, eta: float, noise: NoiseSource) -> torch.Tensor:
        if step.index < self.count:
            return self.rule.move(x0, eps, step, eta, noise)
        return UNCONSTRAINED.move(x0, eps, step, eta, noise)


class NullSpaceNoise(Consistency):
    """``rule``'s correction and move, but with fresh-noise share ``eta`` in the null space of ``A``
    (what ``y`` does not measure: a hole, the frequencies SR loses, the colour) and the sampler's own
    share in the range of ``A^T``: a mask-aware noise schedule, for any operator. ``eta`` is one
    number, or one per generation step in the order they are taken. At ``eta = 1`` the
    null-space part of the next state is ``sqrt(a') x0 + sqrt(1 - a') z``: the sampler's direction
    (the network's noise, or cm4ir-noise's negated one) is dropped there.

    The rule moves twice from one draw of fresh noise, once with each share; the result is the
    first plus the null-space part, ``v - A^+(A v)``, of their difference ``v`` (for DDNM+'s rule,
    which moves per SVD component, exactly its move with ``eta`` on the components of zero singular
    value). The split is exact where ``A^+`` is the (truncated) Moore-Penrose inverse, as in the SVD
    view, and approximate where it is solved by CG. :meth:`move` corrects twice and :meth:`advance`
    not at all, plus the one ``A^+ A`` of the split: projections cost far less than a network call
    (three CG solves a step for a matrix-free operator)."""

    def __init__(self, rule: Consistency, operator: LinearOperator, eta: float | Sequence[float]):
        self.rule, self.operator, self.eta = rule, operator, eta

    def __call__(self, x0: torch.Tensor, step: Step) -> torch.Tensor:
        return self.rule(x0, step)

    def share(self, step: Step) -> float:
        """The null space's share of fresh noise at ``step``."""
        return self.eta[step.index] if isinstance(self.eta, Sequence) else self.eta

    def move(self, x0: torch.Tensor, eps: torch.Tensor, step: Step, eta: float, noise: NoiseSource) -> torch.Tensor:
        return self._split(lambda share, drawn: self.rule.move(x0, eps, step, share, drawn), eta, self.share(step),
                           noise.like(x0))

    def advance(self, x0: torch.Tensor, eps: torch.Tensor, step: Step, eta: float, noise: NoiseSource) -> torch.Tensor:
        return self._split(lambda share, drawn: self.rule.advance(x0, eps, step, share, drawn), eta, self.share(step),
                           noise.like(x0))

    def _split(self, moved: Callable[[float, Drawn], torch.Tensor], eta: float, null_eta: float,
               z: torch.Tensor) -> torch.Tensor:
        x = moved(eta, Drawn(z))
        if null_eta == eta:
            return x
        v = moved(null_eta, Drawn(z)) - x
        return x + v - self.operator.A_pinv(self.operator.A(v))


class Drawn:
    """Noise drawn once, in a :class:`~.common.NoiseSource`'s place: every ``like`` returns the same
    draw, so that the two moves of :class:`NullSpaceNoise` share it."""

    def __init__(self, z: torch.Tensor):
        self.z = z

    def like(self, x: torch.Tensor) -> torch.Tensor:
        return self.z


def back_projection(operator: LinearOperator, y: torch.Tensor, sigma_y: float = 0.0) -> Consistency:
    """The projection methods' rule for ``y`` with noise ``sigma_y``: exact back-projection for a clean
    measurement, DDNM+'s noise-aware one (which needs the operator's SVD view) for a noisy one."""
    return NoiseAwareProjection(operator, y, sigma_y) if sigma_y > 0 else BackProjection(operator, y)
