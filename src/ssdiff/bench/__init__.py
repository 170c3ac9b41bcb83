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

From the bottom: :mod:`.specs` (the runs of a config), :mod:`.inputs` (the images, each task's
operator), :mod:`.realism` (FID/KID's reference and features), :mod:`.report` (rows and tables),
:mod:`.plots` (figures), :mod:`.execute` (the restorations and :func:`run_bench`).
"""

from .execute import peak_memory_mb, reset_peak_memory, run_bench
from .inputs import load_truths, task_operator
from .plots import pareto_front, plot_frontier
from .report import markdown_table
from .specs import BenchConfig, parse_method, split_method

__all__ = ["BenchConfig", "load_truths", "markdown_table", "pareto_front", "parse_method", "peak_memory_mb", "plot_frontier",
           "reset_peak_memory", "run_bench", "split_method", "task_operator"]
