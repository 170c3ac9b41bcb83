"""Running the benchmark: each batch restored and measured (quality, time, peak memory), sharded over
torchrun's processes, each image's result written as it finishes; rank 0 then writes the results."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..io import write_bytes, write_image
from ..metrics import consistency, psnr, ssim
from ..models import load_model
from ..pipeline import bicubic_upsample, interpolate_missing, simulate_measurement
from ..progress import synchronize
from ..solvers import restore
from .inputs import load_truths, task_operator
from .plots import plot_results, sample_grids
from .report import aggregate
from .specs import BenchConfig, Run


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
    if rank != 0:
        return None
    rows = aggregate(config, runs, stems, truths)
    plot_results(out, rows)
    sample_grids(out, config, runs, stems, truths)
    return out / "table.md"

