"""``ssdiff tune`` and the ``ssd-fast`` presets: SSD's configuration searched per (prior, task, budget).

At a few network calls the paper's settings are far from the best ones: which sampler, which
time steps, how far to invert (``t0``), how much noise the inversion adds (``eta``) and how many of
the calls the inversion gets all interact. :func:`tune` searches them by coordinate descent on
images of the prior's own domain (never on the images a benchmark reports), scoring each
configuration by ``PSNR - swd_weight * SWD`` so that the faithful but blurry corner does not win.
A *preset* is the winner for one (prior, task, budget); preset files hold several:
``{"prior": ..., "presets": {task: {nfe: entry}}}``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .operators import LinearOperator, parse_task
from .solvers.common import EpsPrior, Restoration
from .solvers.samplers import MULTISTEP

# The knobs and the values the search visits; ``inversion_calls`` 0 is an SDEdit start (A+y noised).
SEARCH_SPACE: dict[str, list[Any]] = {
    "sampler": ["ddim", *MULTISTEP],
    "spacing": ["uniform", "trailing", "quadratic", "logsnr"],
    "t0": [250, 350, 450, 550, 650, 750, 850],
    "eta": [0.0, 0.2, 0.4, 0.8],
    "inversion_calls": [0, 1, 2, 3],
    "ddim_eta": [0.0, 0.3, 0.6, 0.8],  # fresh noise of the ddim sampler (the others ignore it)
}
# Where the search starts, and what a prior without presets gets: the solver with the paper's t0
# and eta, one inversion call, deterministic generation.
UNTUNED: dict[str, Any] = {"sampler": "dpm-solver++", "spacing": "logsnr", "inversion_calls": 1, "ddim_eta": 0.0}
SWD_WEIGHT = 0.15


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration without knobs its sampler ignores (so that equal runs are scored once)."""
    return {k: v for k, v in config.items() if not (k == "ddim_eta" and config.get("sampler", "ddim") != "ddim")}


def config_to_hparams(config: dict[str, Any], nfe: int) -> dict[str, Any]:
    """SSD keyword arguments that spend exactly ``nfe`` network calls with this configuration."""
    calls = int(config.get("inversion_calls", 1))
    if nfe - calls < 1:
        raise ValueError(f"a budget of {nfe} NFEs leaves no generation step after {calls} inversion calls")
    hparams = {k: v for k, v in normalize(config).items() if k != "inversion_calls"}
    hparams.update(forward_steps=calls + 1, backward_steps=nfe - calls)
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


def find_preset(presets: dict[str, Any] | None, prior_name: str, task: str, nfe: int) -> tuple[dict[str, Any], str]:
    """The configuration for (prior, task, nfe) and where it came from.

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
    return dict(by_budget[str(budgets[-1])]["config"]), f"tuned{borrowed} at {budgets[-1]} NFEs"


def nearest_scale(task: str, tasks: Any) -> str | None:
    """Among ``tasks``, the super-resolution of the same kind whose factor is nearest (in ratio) to ``task``'s."""
    base, params = parse_task(task)
    if "scale" not in params:
        return None
    same = [(other, parse_task(other)[1]["scale"]) for other in tasks
            if parse_task(other)[0] == base and "scale" in parse_task(other)[1]]
    return min(same, key=lambda pair: abs(math.log(pair[1] / params["scale"])), default=(None,))[0]


def evaluate(prior: EpsPrior, operator: LinearOperator, truths: torch.Tensor, config: dict[str, Any], nfe: int,
             seed: int = 0, batch_size: int = 16, swd_weight: float = SWD_WEIGHT) -> dict[str, float]:
    """Restore ``truths`` from their measurements with one SSD configuration; PSNR, SWD and the score."""
    from . import restore
    from .metrics import mean_psnr, swd

    restored, calls = [], 0
    for start in range(0, len(truths), batch_size):
        chunk = truths[start : start + batch_size]
        seeds = [seed + start + i for i in range(len(chunk))]
        result: Restoration = restore(prior, operator, operator.A(chunk), method="ssd", nfe=nfe, seed=seeds,
                                      **config_to_hparams(config, nfe))
        restored.append(result.image.clamp(-1, 1).cpu())
        calls += result.nfe * len(chunk)
    images = torch.cat(restored)
    quality = mean_psnr(images, truths.cpu())
    realism = swd(images, truths.cpu(), seed=seed)["avg"]
    return {"psnr": quality, "swd": realism, "score": quality - swd_weight * realism, "calls": calls}


def tune(prior: EpsPrior, operator: LinearOperator, truths: torch.Tensor, nfe: int, *, task_defaults: dict[str, Any],
         space: dict[str, list[Any]] | None = None, rounds: int = 2, seed: int = 0, batch_size: int = 16,
         swd_weight: float = SWD_WEIGHT, progress: bool = True, start: dict[str, Any] | None = None,
         log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Coordinate descent over ``space`` from ``start`` (default: the untuned configuration); returns the preset entry.

    Each round visits every knob in turn and keeps the value with the best score, the others
    fixed; a round that changes nothing ends the search. The ``ddim`` sampler is visited with
    each of its ``ddim_eta`` values: that knob means nothing to the other samplers, so from one of
    them a single ``ddim`` candidate would be judged at whatever ``ddim_eta`` was left over.
    Configurations that cannot spend the budget (more inversion calls than it allows) are skipped.
    """
    space = space or SEARCH_SPACE
    best = {**task_defaults, **UNTUNED, **(start or {})}
    best = {k: best[k] for k in space if k in best}
    cache: dict[str, dict[str, float]] = {}
    started = time.perf_counter()

    def score(config: dict[str, Any]) -> dict[str, float] | None:
        config = normalize(config)
        key = json.dumps(config, sort_keys=True)
        if key not in cache:
            try:
                config_to_hparams(config, nfe)
            except ValueError:
                return None
            cache[key] = evaluate(prior, operator, truths, config, nfe, seed, batch_size, swd_weight)
            if log:
                log({"config": config, **cache[key]})
        return cache[key]

    def candidates(knob: str) -> list[dict[str, Any]]:
        found = []
        for value in space[knob]:
            if knob == "sampler" and value == "ddim" and "ddim_eta" in space:
                found += [{**best, knob: value, "ddim_eta": ddim_eta} for ddim_eta in space["ddim_eta"]]
            else:
                found.append({**best, knob: value})
        return found

    current = score(best)
    bar = tqdm(total=rounds * len(space), desc=f"tune {operator.name}@{nfe}", unit="knob", disable=not progress)
    for _ in range(rounds):
        changed = False
        for knob in space:
            for candidate in candidates(knob):
                result = score(candidate)
                if result is not None and result["score"] > current["score"] + 1e-9:
                    best, current, changed = candidate, result, True
            bar.update(1)  # a knob is done when all its candidates are scored
        if not changed:
            break
    bar.close()
    return {"config": normalize(best), "psnr": current["psnr"], "swd": current["swd"], "score": current["score"],
            "search": {"evaluations": len(cache), "network_calls": int(sum(r["calls"] for r in cache.values())),
                       "minutes": round((time.perf_counter() - started) / 60, 2), "images": len(truths),
                       "swd_weight": swd_weight, "rounds": rounds}}


def merge_preset(path: Path, prior_name: str, task: str, nfe: int, entry: dict[str, Any]) -> dict[str, Any]:
    """The preset file at ``path`` (new if missing) with ``entry`` for (task, nfe) added or replaced."""
    data = read_presets(path) if path.exists() else {"prior": prior_name, "presets": {}}
    if data["prior"] != prior_name:
        raise ValueError(f"{path}: holds presets of the prior {data['prior']!r}, not {prior_name!r}")
    data["presets"].setdefault(task, {})[str(nfe)] = entry
    return data


def ssd_fast(prior: EpsPrior, operator: LinearOperator, y: torch.Tensor, *, nfe: int = 10,
             preset: str | Path | dict | None = None, seed: int | Sequence[int] | None = 0, **overrides: Any) -> Restoration:
    """SSD with the configuration tuned for this prior, task and budget (``ssdiff tune``).

    ``preset`` is a preset file (or its parsed content); by default the presets that ship for
    the prior (the built-in ``celeba64``). Other priors fall back to :data:`UNTUNED` with a
    warning. Keyword arguments override single knobs of the configuration.
    """
    from .solvers import task_defaults
    from .solvers.ssd import ssd

    name = getattr(prior, "name", "unnamed")
    if isinstance(preset, (str, Path)):
        presets = {**read_presets(preset), "source": "file"}
    else:
        presets = preset if preset is not None else builtin_presets(name)
    config, origin = find_preset(presets, name, operator.name, nfe)
    config = {**task_defaults(operator), **config, **overrides}
    if overrides.get("sigma_y", 0) > 0 and config.get("sampler") != "ddim":
        # the presets are tuned on clean measurements; only the ddim update is noise-aware (DDNM+)
        config["sampler"], origin = "ddim", f"{origin}, ddim sampler for the noisy measurement"
    result = ssd(prior, operator, y, nfe=nfe, seed=seed, **config_to_hparams(config, nfe))
    result.extras.update(preset=origin, config=config)
    return result
