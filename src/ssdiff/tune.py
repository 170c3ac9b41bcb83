"""``ssdiff tune``: SSD's few-step configuration searched per (prior, task, budget), for ``ssd-fast``.

At a few network calls the paper's settings are far from the best ones: which sampler, which
time steps, how far to invert (``t0``), how much noise the inversion adds (``eta``), how many of
the calls the inversion gets and how much generation scales the noise prediction down
(``eps_scale``) all interact. :func:`tune` searches them by coordinate descent on images of the
prior's own domain (never on the images a benchmark reports), scoring each
configuration by ``PSNR - swd_weight * SWD`` so that the faithful but blurry corner does not win.
A *preset* is the winner for one (prior, task, budget); :mod:`ssdiff.solvers.fast` reads the
preset files and runs ``ssd-fast`` with them. A search runs on a few images, which rank close
configurations by chance; :func:`judge` scores its result on many others before it ships.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .io import write_bytes
from .metrics import mean_psnr, swd
from .operators import LinearOperator
from .schedule import spaced_steps
from .solvers import restore, ssd_defaults
from .solvers.common import EpsPrior, Restoration
from .solvers.fast import FRESH_NOISE_KNOBS, SWD_WEIGHT, UNTUNED, config_to_hparams, frontier, normalize, read_presets, supported
from .solvers.samplers import ETA_SAMPLERS, MULTISTEP, per_step
from .solvers.ssd import DEFAULT_ETAS, noise_scale

# The knobs and the values the search visits; ``inversion_calls`` 0 is an SDEdit start (A+y noised).
SEARCH_SPACE: dict[str, list[Any]] = {
    "sampler": ["ddim", *MULTISTEP, "cm4ir-noise"],
    "spacing": ["uniform", "trailing", "quadratic", "logsnr"],
    "t0": [250, 350, 450, 550, 650, 750, 850],
    "eta": [0.0, 0.2, 0.4, 0.8],
    "inversion_calls": [0, 1, 2, 3, 4],
    "ddim_eta": [0.0, 0.1, 0.3, 0.6, 0.8, 1.0],  # fresh noise of ddim and cm4ir-noise (the others ignore it)
    "start": ["pinv", "mean-colour"],  # what the inversion starts from (solvers/starts.py)
    "null_eta": [None, 0.5, 1.0],  # their fresh noise in the null space of A instead (None: ddim_eta's)
    "eps_scale": [0.99, 1.0, 1.005, 1.01, 1.02],  # generation's noise prediction divided by it (Epsilon Scaling)
}


def evaluate(prior: EpsPrior, operator: LinearOperator, truths: torch.Tensor, config: dict[str, Any], nfe: int,
             seed: int = 0, batch_size: int = 16, swd_weight: float = SWD_WEIGHT) -> dict[str, float]:
    """Restore ``truths`` from their measurements with one SSD configuration; PSNR, SWD and the score."""
    return evaluate_method(prior, operator, truths, "ssd", nfe, seed, batch_size, swd_weight, **config_to_hparams(config, nfe))


def evaluate_method(prior: EpsPrior, operator: LinearOperator, truths: torch.Tensor, method: str, nfe: int,
                    seed: int = 0, batch_size: int = 16, swd_weight: float = SWD_WEIGHT, **options: Any) -> dict[str, float]:
    """:func:`evaluate` for any method of :func:`ssdiff.restore` and its options (a baseline scored
    on the same images, seeds and measures as the tuner's configurations)."""
    restored, calls = [], 0
    for start in range(0, len(truths), batch_size):
        chunk = truths[start : start + batch_size]
        seeds = [seed + start + i for i in range(len(chunk))]
        result: Restoration = restore(prior, operator, operator.A(chunk), method=method, nfe=nfe, seed=seeds, **options)
        restored.append(result.image.clamp(-1, 1).cpu())
        calls += result.nfe * len(chunk)
    images = torch.cat(restored)
    quality = mean_psnr(images, truths.cpu())
    realism = swd(images, truths.cpu(), seed=seed)["avg"]
    return {"psnr": quality, "swd": realism, "score": quality - swd_weight * realism, "calls": calls}


def tune(prior: EpsPrior, operator: LinearOperator, truths: torch.Tensor, nfe: int, *, task_defaults: dict[str, Any],
         space: dict[str, list[Any]] | None = None, rounds: int = 2, seed: int = 0, batch_size: int = 16,
         swd_weight: float = SWD_WEIGHT, progress: bool = True, start: dict[str, Any] | None = None,
         steps: bool = False, scored: dict[str, dict[str, float]] | None = None,
         log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Coordinate descent over ``space`` from ``start`` (default: the untuned configuration); returns the preset entry.

    Each round visits every knob in turn and keeps the value with the best score, the others
    fixed; a round that changes nothing ends the search. The samplers with fresh noise (``ddim``,
    ``cm4ir-noise``) are visited with each pair of ``ddim_eta`` and ``null_eta`` values: those knobs mean
    nothing to the other samplers, so from one of them a single candidate would be judged at whatever was left over.
    Configurations that cannot spend the budget (more inversion calls than it allows) are skipped.

    With ``steps``, the winner's steps are then searched one by one (:func:`step_moves`, AutoDiffusion's
    idea under the same score): each generation time step, and for ``ddim`` and ``cm4ir-noise`` each
    step's fresh noise (and its null-space share, where the winner has one). A start with listed
    steps (from another budget) is fitted to this one.
    ``scored`` holds configurations scored before (a resumed run replays them without network calls).
    """
    space = space or SEARCH_SPACE
    if getattr(prior, "mean_colour", None) is None and "start" in space:  # a prior without one cannot start from it
        space = {**space, "start": [s for s in space["start"] if s != "mean-colour"] or ["pinv"]}
    if start is not None and "sampler" not in start:  # what ssd() runs without one (a search whose space left it out)
        start = {**start, "sampler": "ddim"}
    best = {**task_defaults, **UNTUNED, **(start or {})}
    best = {k: best[k] for k in space if k in best}
    cache: dict[str, dict[str, float]] = dict(scored or {})
    visited: set[str] = set()  # what this search scored (or replayed): its cost
    started = time.perf_counter()

    def score(config: dict[str, Any]) -> dict[str, float] | None:
        config = normalize(config)
        key = config_key(config)
        visited.add(key)
        if key not in cache:
            if not spends(config, nfe):
                return None
            cache[key] = evaluate(prior, operator, truths, config, nfe, seed, batch_size, swd_weight)
            if log:
                log({"config": config, **cache[key]})
        return cache[key]

    def knob_move(knob: str) -> Move:
        def candidates(config: dict[str, Any]) -> list[dict[str, Any]]:
            found = []
            noise_knobs = [k for k in FRESH_NOISE_KNOBS if k in space]
            for value in space[knob]:
                if knob == "sampler" and value in ETA_SAMPLERS and noise_knobs:
                    found += [{**config, knob: value, **dict(zip(noise_knobs, values))}
                              for values in itertools.product(*(space[k] for k in noise_knobs))]
                else:
                    found.append({**config, knob: value})
            return found

        return candidates

    def descend(config: dict[str, Any], moves: list[Move], rounds: int, what: str) -> tuple[dict[str, Any], dict]:
        current = score(config)
        bar = tqdm(total=rounds * len(moves), desc=f"tune {operator.name}@{nfe} {what}", unit="move",
                   disable=not progress or not moves)
        for _ in range(rounds):
            changed = False
            for move in moves:
                for candidate in move(config):
                    result = score(candidate)
                    if result is not None and result["score"] > current["score"] + 1e-9:
                        config, current, changed = candidate, result, True
                bar.update(1)  # a move is done when all its candidates are scored
            if not changed:
                break
        bar.close()
        return config, current

    best, current = descend(best, [knob_move(knob) for knob in space], rounds, "families")
    families = len(visited)
    if steps:
        best = explicit_config(best, nfe, task_defaults.get("t0"))
        best, current = descend(best, step_moves(best, nfe), rounds, "steps")
    scored_here = [cache[key] for key in visited if key in cache]
    return {"config": normalize(best), "psnr": current["psnr"], "swd": current["swd"], "score": current["score"],
            "search": {"evaluations": len(scored_here), "network_calls": int(sum(r["calls"] for r in scored_here)),
                       "minutes": round((time.perf_counter() - started) / 60, 2), "images": len(truths),
                       "swd_weight": swd_weight, "rounds": rounds,
                       **({"step_search_evaluations": len(visited) - families} if steps else {})}}


Move = Callable[[dict[str, Any]], list[dict[str, Any]]]  # a configuration -> its neighbours along one direction

STEP_FRACTIONS = (0.25, 0.5, 0.75)  # where a moved time step may go between its neighbours


def explicit_config(config: dict[str, Any], nfe: int, t0: int | None = None) -> dict[str, Any]:
    """``config`` with its ``t0`` (``t0`` when it has none), its generation time steps and, for the
    samplers with fresh noise, each step's share of it (and of null-space noise, where it has
    ``null_eta``) written out one per step."""
    config = {"t0": t0, **config} if "t0" not in config and t0 is not None else dict(config)
    hparams = config_to_hparams(config, nfe)
    steps = spaced_steps(hparams.get("spacing", "uniform"), config["t0"] - 1, hparams["backward_steps"])
    explicit = {**config, "spacing": steps}
    sampler = config.get("sampler", "ddim")
    if sampler in ETA_SAMPLERS:
        eta = hparams.get("ddim_eta", DEFAULT_ETAS[sampler])
        for knob, value in (("ddim_eta", eta), ("null_eta", hparams.get("null_eta"))):
            if value is not None:
                explicit[knob] = per_step(value, len(steps), knob)
    return explicit


def step_moves(config: dict[str, Any], nfe: int) -> list[Move]:
    """The step search's moves for an explicit configuration: step ``i`` (all but the last, which is
    ``t0 - 1``) to :data:`STEP_FRACTIONS` of the way between its neighbours (the clean end, -1, below
    the first), and for the samplers with fresh noise that of each step but the last to the values
    of :data:`SEARCH_SPACE`'s ``ddim_eta``, for ``ddim_eta`` and, where it is set, ``null_eta``."""
    count = len(config["spacing"])

    def time_step(i: int) -> Move:
        def candidates(config: dict[str, Any]) -> list[dict[str, Any]]:
            steps = config["spacing"]
            low, high = steps[i - 1] if i else -1, steps[i + 1]
            moved = sorted({low + max(1, round(f * (high - low))) for f in STEP_FRACTIONS} - {steps[i]})
            return [{**config, "spacing": [*steps[:i], t, *steps[i + 1:]]} for t in moved if low < t < high]

        return candidates

    def noise(knob: str, i: int) -> Move:
        def candidates(config: dict[str, Any]) -> list[dict[str, Any]]:
            etas = config[knob]
            return [{**config, knob: [*etas[:i], e, *etas[i + 1:]]} for e in SEARCH_SPACE["ddim_eta"] if e != etas[i]]

        return candidates

    moves = [time_step(i) for i in range(count - 1)]
    # the last step lands on the clean image, where no noise is added whatever its eta
    return moves + [noise(knob, i) for knob in FRESH_NOISE_KNOBS if isinstance(config.get(knob), list)
                    for i in range(count - 1)]


def merge_preset(path: Path, prior_name: str, task: str, nfe: int, entry: dict[str, Any]) -> dict[str, Any]:
    """The preset file at ``path`` (new if missing) with ``entry`` for (task, nfe) added or replaced."""
    data = read_presets(path) if path.exists() else {"prior": prior_name, "presets": {}}
    if data["prior"] != prior_name:
        raise ValueError(f"{path}: holds presets of the prior {data['prior']!r}, not {prior_name!r}")
    data["presets"].setdefault(task, {})[str(nfe)] = entry
    return data


def check_space(space: Any) -> dict[str, list[Any]]:
    """A search space: an object of non-empty lists over knobs of :data:`SEARCH_SPACE`; ValueError otherwise."""
    if not isinstance(space, dict) or not all(isinstance(v, list) and v for v in space.values()):
        raise ValueError(f"the search space needs a JSON object of non-empty lists, got {space!r}")
    unknown = set(space) - set(SEARCH_SPACE)
    if unknown:
        raise ValueError(f"unknown knob {min(unknown)!r} in the search space; choose from: {', '.join(SEARCH_SPACE)}")
    for value in space.get("eps_scale", []):  # checked here, or the search would stop at it after hours
        noise_scale(value)
    return space


def tune_into(out: Path, prior: EpsPrior, operator: LinearOperator, truths: torch.Tensor, budgets: list[int], *,
              source: str, check: tuple[torch.Tensor, str] | None = None, **search: Any) -> list[dict[str, Any]]:
    """Tune ``operator`` at each budget and merge each winner into the preset file ``out`` as soon as
    it is found, so that an interrupted run keeps what it finished; every configuration scored goes
    to ``out.log.jsonl`` as it is scored, and a rerun replays those of the same task, budget, images
    and seed instead of scoring them again (it resumes where it stopped). A budget starts from its own
    preset when the file has one (a re-tune), else from that of the nearest smaller budget already
    in the file. ``search`` are :func:`tune`'s options; ``source`` names the images.

    ``check`` (images, their name): other images of the same domain that judge the search's result
    (:func:`judge`), since a few images rank close configurations by chance."""
    refuse_dropping_a_check(out, operator.name, budgets, check)
    log, entries = out.with_suffix(".log.jsonl"), []
    seed, swd_weight = search.get("seed", 0), search.get("swd_weight", SWD_WEIGHT)
    for nfe in budgets:
        tuned = (read_presets(out)["presets"] if out.exists() else {}).get(operator.name, {})
        smaller = max((int(b) for b in tuned if int(b) < nfe), default=None)
        # a re-tune starts from the budget's own preset (it can only raise its score), else the nearest smaller one's
        start = tuned[str(nfe)]["config"] if str(nfe) in tuned else tuned[str(smaller)]["config"] if smaller else None
        lines = read_log(log)  # a run's lines are its images' own: the check's are not the search's
        with open(log, "a") as handle:
            scored, record = logged(handle, lines, {"task": operator.name, "nfe": nfe, "data": source, "seed": seed})
            entry = tune(prior, operator, truths, nfe, task_defaults=ssd_defaults(operator), start=start, log=record,
                         scored=as_cache(scored, swd_weight), **search)
            entry["search"].update(data=source, start=start or "untuned")
            # every configuration this search (and any earlier one on the same images) scored: what
            # ssd-fast's realism chooses along
            entry["frontier"] = frontier(scored)
            if check is not None:
                checked, record = logged(handle, lines, {"task": operator.name, "nfe": nfe, "data": check[1], "seed": seed})
                # a re-tune's start and the points its preset's frontier let realism pick are judged too
                earlier = [start] if start else []
                earlier += [p["config"] for p in supported(tuned[str(nfe)].get("frontier", []))] if str(nfe) in tuned else []
                entry = judge(entry, earlier, prior, operator, check, nfe, checked, record, seed=seed,
                              batch_size=search.get("batch_size", 16), swd_weight=swd_weight,
                              progress=search.get("progress", True))
        write_bytes(json.dumps(merge_preset(out, prior.name, operator.name, nfe, entry), indent=1).encode(), out)
        entries.append(entry)
    return entries


def refuse_dropping_a_check(out: Path, task: str, budgets: list[int], check: Any) -> None:
    """ValueError if re-tuning without a check would replace a preset of ``out`` that was judged on
    other images (its frontier would go back to the few images' scores, and a winner the check
    refused could ship)."""
    tuned = read_presets(out)["presets"].get(task, {}) if check is None and out.exists() else {}
    for nfe in budgets:
        judged = tuned.get(str(nfe), {}).get("search", {}).get("check")
        if judged:
            raise ValueError(f"{out}: the {task} preset at {nfe} NFEs was judged on {judged['data']}; re-tune it with "
                             "--check on those images too, or write to another file")


def config_key(config: dict[str, Any]) -> str:
    """A configuration's identity in the search's cache and the log (its JSON with sorted keys)."""
    return json.dumps(config, sort_keys=True)


def spends(config: dict[str, Any], nfe: int) -> bool:
    """Whether ``config`` can spend a budget of ``nfe`` calls (not more inversion calls than it allows)."""
    try:
        config_to_hparams(config, nfe)
    except ValueError:
        return False
    return True


def logged(handle: Any, lines: list[dict[str, Any]], run: dict[str, Any]) -> tuple[list[dict[str, Any]], Callable]:
    """The log's configurations of one run (task, budget, images, seed), and the function that appends
    a newly scored one to both the log file ``handle`` and that list."""
    scored = [e for e in lines if all(e.get(k) == v for k, v in run.items())]

    def record(entry: dict[str, Any]) -> None:
        handle.write(json.dumps({**run, **entry}) + "\n")
        handle.flush()
        scored.append(entry)

    return scored, record


def as_cache(scored: list[dict[str, Any]], swd_weight: float) -> dict[str, dict[str, float]]:
    """Logged configurations as :func:`tune`'s ``scored``: keyed by the configuration, with the score."""
    return {config_key(e["config"]): {"psnr": e["psnr"], "swd": e["swd"], "calls": e["calls"],
                                                     "score": e["psnr"] - swd_weight * e["swd"]} for e in scored}


def judge(entry: dict[str, Any], earlier: list[dict[str, Any]], prior: EpsPrior, operator: LinearOperator,
          check: tuple[torch.Tensor, str], nfe: int, checked: list[dict[str, Any]], record: Callable, *, seed: int,
          batch_size: int, swd_weight: float, progress: bool) -> dict[str, Any]:
    """``entry`` (a search's result on its few images) judged on the images of ``check`` (images, their name).

    Scored there: the points of the search's frontier that ``realism`` can pick (:func:`supported`;
    the others are left out to keep the check's cost down), the winner, and ``earlier``
    configurations (what the search started from). The preset becomes the best of everything scored
    on these images (``checked``: what earlier checks of this budget scored too, from the log), and
    the frontier theirs, with their PSNR and SWD, so that a winner of the few images that loses
    here is not shipped and ``realism`` does not pick it either.
    """
    started = time.perf_counter()
    candidates = [p["config"] for p in supported(entry["frontier"])] + [entry["config"], *earlier]
    judged = {config_key(c): c for c in map(normalize, candidates) if spends(c, nfe)}
    done = {config_key(e["config"]) for e in checked}
    todo = [config for key, config in judged.items() if key not in done]
    for config in tqdm(todo, desc=f"check {operator.name}@{nfe}", unit="config", disable=not progress or not todo):
        record({"config": config, **evaluate(prior, operator, check[0], config, nfe, seed, batch_size, swd_weight)})
    best = max(checked, key=lambda e: (e["psnr"] - swd_weight * e["swd"], -e["swd"]))
    # what judging this search costs, replayed configurations included (as tune() counts its own)
    calls = sum(e["calls"] for e in checked if config_key(e["config"]) in judged)
    return {**entry, "config": best["config"], "psnr": best["psnr"], "swd": best["swd"],
            "score": best["psnr"] - swd_weight * best["swd"], "frontier": frontier(checked),
            "search": {**entry["search"], "check": {
                "data": check[1], "images": len(check[0]), "evaluations": len(judged), "network_calls": int(calls),
                "minutes": round((time.perf_counter() - started) / 60, 2),
                "search_winner": {"config": entry["config"], "psnr": entry["psnr"], "swd": entry["swd"]}}}}


def read_log(path: Path) -> list[dict[str, Any]]:
    """The configurations a tuning log holds (a line cut short by an interruption is skipped)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and {"config", "psnr", "swd", "calls"} <= set(entry):
            entries.append({k: entry[k] for k in ("task", "nfe", "data", "seed", "config", "psnr", "swd", "calls") if k in entry})
    return entries
