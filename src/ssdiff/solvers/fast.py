"""``ssd-fast``: SSD with the configuration tuned for the prior, the task and the budget.

At a few network calls the paper's settings are far from the best ones; ``ssdiff tune``
(:mod:`ssdiff.tune`) searches them per (prior, task, budget) and writes the winner as a *preset*.
Preset files hold several: ``{"prior": ..., "presets": {task: {nfe: entry}}}``; the presets of
the built-in prior ship in ``ssdiff/presets``. This module reads them and runs SSD with them.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..operators import LinearOperator, parse_task
from ..schedule import refit_per_step, refit_steps
from .common import EpsPrior, Restoration
from .samplers import ETA_SAMPLERS, MULTISTEP
from .ssd import ssd

# The tuner's score is PSNR - SWD_WEIGHT * SWD (so that the faithful but blurry corner does not win)
SWD_WEIGHT = 0.15

# Where the search starts, and what a prior without presets gets: the solver with the paper's t0
# and eta, one inversion call, deterministic generation.
UNTUNED: dict[str, Any] = {"sampler": "dpm-solver++", "spacing": "logsnr", "inversion_calls": 1, "ddim_eta": 0.0}


FRESH_NOISE_KNOBS = ("ddim_eta", "null_eta")  # what only the samplers with fresh noise (ETA_SAMPLERS) take


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration without knobs its sampler ignores, nor defaults (the start ``pinv``, an unset
    ``null_eta`` or one equal to ``ddim_eta``, ``eps_scale`` 1), so that equal runs are scored once."""
    noiseless = config.get("sampler", "ddim") not in ETA_SAMPLERS

    def idle(knob: str, value: Any) -> bool:
        if knob in FRESH_NOISE_KNOBS and (noiseless or value is None):
            return True
        return ((knob == "start" and value == "pinv") or (knob == "null_eta" and value == config.get("ddim_eta"))
                or (knob == "eps_scale" and value == 1))

    return {k: v for k, v in config.items() if not idle(k, v)}


def config_to_hparams(config: dict[str, Any], nfe: int) -> dict[str, Any]:
    """SSD keyword arguments that spend exactly ``nfe`` network calls with this configuration."""
    calls = int(config.get("inversion_calls", 1))
    if nfe - calls < 1:
        raise ValueError(f"a budget of {nfe} NFEs leaves no generation step after {calls} inversion calls")
    hparams = {k: v for k, v in normalize(config).items() if k != "inversion_calls"}
    hparams.update(forward_steps=calls + 1, backward_steps=nfe - calls)
    listed = hparams.get("spacing")
    if listed is not None and not isinstance(listed, str):  # a step search's steps, fitted to this budget and t0
        hparams["spacing"] = refit_steps(listed, int(config.get("t0", listed[-1] + 1)) - 1, nfe - calls)
    for knob in FRESH_NOISE_KNOBS:  # noise shares one per step, fitted to this budget's steps
        if isinstance(hparams.get(knob), list):
            hparams[knob] = refit_per_step(hparams[knob], nfe - calls)
    if calls == 0:
        hparams["inversion"] = "sdedit"
    if hparams.get("sampler") in MULTISTEP and nfe - calls < 2:
        hparams["order"] = 1  # a single step cannot be of second order
    return hparams


def builtin_presets(prior_name: str) -> dict[str, Any] | None:
    """The presets that ship with ssdiff for a named prior (``celeba64``), or None."""
    source = resources.files("ssdiff") / "presets" / f"{prior_name}.json"
    return json.loads(source.read_text()) if source.is_file() else None


def read_presets(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable preset file ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("presets"), dict) or "prior" not in data:
        raise ValueError(f"{path}: not a preset file (needs 'prior' and 'presets')")
    return data


# Tasks without presets of their own that borrow those of the paper's task of the same kind
RELATED_TASKS = {"deblur_kernel": "deblur_gauss", "sr_kernel": "sr_bicubic",
                 # files tuned before masks were told apart hold random masks' presets under "inpaint"
                 "inpaint_scattered": "inpaint"}


def frontier(scored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configurations no other one beats in both PSNR (higher) and SWD (lower), by PSNR descending."""
    ranked = sorted(scored, key=lambda e: (-e["psnr"], e["swd"]))
    front: list[dict[str, Any]] = []
    for entry in ranked:
        if not front or entry["swd"] < front[-1]["swd"]:
            front.append({k: entry[k] for k in ("config", "psnr", "swd")})
    return front


def supported(scored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points of the frontier of ``scored`` that ``realism`` can pick (:func:`on_frontier`): those
    that maximise ``PSNR - w SWD`` for some weight ``w >= 0``, the upper convex hull of the (SWD, PSNR)
    points, by PSNR descending. A point under the chord of its neighbours wins at no weight."""
    hull: list[dict[str, Any]] = []
    for point in sorted(frontier(scored), key=lambda e: (e["swd"], e["psnr"])):  # SWD ascending, so PSNR ascending too
        while len(hull) >= 2 and ((hull[-1]["swd"] - hull[-2]["swd"]) * (point["psnr"] - hull[-2]["psnr"])
                                  >= (hull[-1]["psnr"] - hull[-2]["psnr"]) * (point["swd"] - hull[-2]["swd"])):
            hull.pop()  # hull[-1] lies on or under the chord from hull[-2] to point
        hull.append(point)
    return hull[::-1]


def realism_weight(realism: float, balance: float = SWD_WEIGHT) -> float:
    """The SWD weight of the score that ``realism`` (0..1) maximises along a frontier: 0 at 0 (the
    PSNR-best), ``balance`` (the weight the preset was tuned with) at 0.5, infinite at 1 (the SWD-best)."""
    if not 0 <= realism <= 1:
        raise ValueError(f"realism must be in [0, 1], got {realism}")
    return math.inf if realism == 1 else balance * realism / (1 - realism)


def on_frontier(entry: dict[str, Any], realism: float) -> dict[str, Any]:
    """The configuration of ``entry``'s frontier (the points its search scored) that ``realism`` picks."""
    if not entry.get("frontier"):
        raise ValueError("this preset has no frontier to choose along (tuned before ssdiff recorded them: re-tune it)")
    weight = realism_weight(realism, entry.get("search", {}).get("swd_weight", SWD_WEIGHT))
    if math.isinf(weight):
        return dict(min(entry["frontier"], key=lambda e: (e["swd"], -e["psnr"]))["config"])
    return dict(max(entry["frontier"], key=lambda e: (e["psnr"] - weight * e["swd"], -e["swd"]))["config"])


def find_preset(presets: dict[str, Any] | None, prior_name: str, task: str, nfe: int,
                realism: float | None = None) -> tuple[dict[str, Any], str]:
    """The configuration for (prior, task, nfe) and where it came from; with ``realism`` (0..1), the
    point of the preset's frontier it picks (:func:`on_frontier`) instead of the preset itself.

    The preset of the largest tuned budget not above ``nfe`` (its generation gets the extra
    calls); without one, :data:`UNTUNED`, with a warning. Super-resolution by a factor the
    presets lack (the face frame's x2, say) takes those of the nearest tuned factor, and a blur
    or SR with a user's kernel those of the paper's Gaussian deblurring or bicubic SR
    (:data:`RELATED_TASKS`). A preset file made for another prior or without this task is an error.
    """
    if presets is not None and presets["prior"] != prior_name:
        raise ValueError(f"the presets were tuned for the prior {presets['prior']!r}, not {prior_name!r}")
    by_task = (presets or {}).get("presets", {})
    tuned_for = task if task in by_task else nearest_scale(task, by_task)
    if tuned_for is None and presets is not None:  # a user's kernel: the presets of the paper's task of its kind
        base, params = parse_task(task)
        if base in RELATED_TASKS:
            related = RELATED_TASKS[base] + (f"_x{params['scale']}" if "scale" in params else "")
            tuned_for = related if related in by_task else nearest_scale(related, by_task)
    if presets is not None and presets.get("source") == "file" and tuned_for is None:
        raise ValueError(f"the preset file has no preset for the task {task!r} (it has: {', '.join(presets['presets'])})")
    by_budget = by_task.get(tuned_for)
    budgets = sorted(int(b) for b in by_budget or {} if int(b) <= nfe)
    if not budgets:
        warnings.warn(f"ssd-fast: no tuned preset for prior {prior_name!r}, task {task!r} at <= {nfe} NFEs; "
                      f"using the untuned configuration {UNTUNED} with the task's t0 and eta", stacklevel=3)
        return dict(UNTUNED), "untuned"
    borrowed = "" if tuned_for == task else f" for {tuned_for}"
    entry, origin = by_budget[str(budgets[-1])], f"tuned{borrowed} at {budgets[-1]} NFEs"
    if realism is None:
        return dict(entry["config"]), origin
    return on_frontier(entry, realism), f"{origin}, realism {realism:g} on its frontier"


def nearest_scale(task: str, tasks: Any) -> str | None:
    """Among ``tasks``, the super-resolution of the same kind whose factor is nearest (in ratio) to ``task``'s."""
    base, params = parse_task(task)
    if "scale" not in params:
        return None
    same = [(other, parse_task(other)[1]["scale"]) for other in tasks
            if parse_task(other)[0] == base and "scale" in parse_task(other)[1]]
    return min(same, key=lambda pair: abs(math.log(pair[1] / params["scale"])), default=(None,))[0]


def ssd_fast(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 10,
             preset: str | Path | dict | None = None, realism: float | None = None,
             seed: int | Sequence[int] | None = 0, task_defaults: dict[str, Any] | None = None,
             **overrides: Any) -> Restoration:
    """SSD with the configuration tuned for this prior, task and budget (``ssdiff tune``).

    ``preset`` is a preset file (or its parsed content); by default the presets that ship for
    the prior (the built-in ``celeba64``). Other priors fall back to :data:`UNTUNED` with a
    warning. ``realism`` (0..1) chooses along the preset's measured frontier instead: 0 the
    PSNR-best configuration its search scored, 1 the SWD-best, 0.5 the preset (:func:`realism_weight`).
    ``task_defaults`` (SSD's per-task ``t0`` and ``eta``, which the method registry gives) fill
    what the configuration leaves out; keyword arguments override single knobs of it (None leaves the knob as it is).
    """
    name = getattr(prior, "name", "unnamed")
    if isinstance(preset, (str, Path)):
        presets = {**read_presets(preset), "source": "file"}
    else:
        presets = preset if preset is not None else builtin_presets(name)
    config, origin = find_preset(presets, name, operator.name, nfe, realism)
    overrides = {k: v for k, v in overrides.items() if v is not None}  # None: not given, the preset's value
    config = {**(task_defaults or {}), **config, **overrides}
    if overrides.get("sigma_y", 0) > 0 and config.get("sampler", "ddim") != "ddim":
        # the presets are tuned on clean measurements; only the ddim update is noise-aware (DDNM+)
        config["sampler"], origin = "ddim", f"{origin}, ddim sampler for the noisy measurement"
        for knob in set(FRESH_NOISE_KNOBS) - set(overrides):  # another sampler's noise shares: ddim takes SSD's own
            config.pop(knob, None)
    ignored = [k for k in FRESH_NOISE_KNOBS if k in overrides and config.get("sampler", "ddim") not in ETA_SAMPLERS]
    if ignored:
        raise ValueError(f"{ignored[0]} applies to the {', '.join(ETA_SAMPLERS)} samplers only; the preset ({origin}) "
                         f"uses {config['sampler']!r}: give sampler= too")
    result = ssd(prior, operator, y, nfe=nfe, seed=seed, **config_to_hparams(config, nfe))
    result.extras.update(preset=origin, config=config)
    return result
