"""The benchmark's figures: quality against NFE, against time (the Pareto front), along each sweep, and sample grids."""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import atomic_path, image_grid, read_image, write_bytes, write_image
from ..pipeline import display_measurement
from .inputs import task_operator
from .specs import BenchConfig, Run


def plot_results(out: Path, rows: list[dict]) -> None:
    """Per task, quality against NFE and against time; per sweep and task, faithfulness against realism."""
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


def sample_grids(out: Path, config: BenchConfig, runs: list[Run], stems: list[str], truths: torch.Tensor) -> None:
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
