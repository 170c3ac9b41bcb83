"""FID and KID of benchmarks/celeba64.md's main table, from its rerun with `--fid-reference 8000:9000`,
and the check that the rerun reproduces the table's PSNR, SSIM and SWD.

    python benchmarks/realism.py --bench ../runs/main17/bench

The rerun measures colorization as `colorization_mean`, the weights the main table was measured
with, so that every cell can be compared.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from few_step import HERE, celeba64_cells

TASKS = {"sr_bicubic4": "SR x4", "sr_bicubic8": "SR x8", "colorization_mean": "colorization", "deblur_gauss": "deblurring"}
# the main table's name of each rerun task
MAIN_TABLE_TASK = {"colorization_mean": "colorization"}


def realism_table(rows: list[dict]) -> str:
    """Rows method@NFE, columns task x (FID, KID ± its deviation over subsets), the lowest per column in bold."""
    by = {(r["task"], r["row"]): r for r in rows if r.get("FID") is not None}
    tasks = [t for t in TASKS if any(task == t for task, _ in by)]
    best = {(t, m): min(r[m] for (task, _), r in by.items() if task == t) for t in tasks for m in ("FID", "KID")}
    lines = ["| method@NFE | " + " | ".join(f"{TASKS[t]} {m}" for t in tasks for m in ("FID", "KID")) + " |",
             "| --- |" + " ---: |" * (2 * len(tasks))]
    for name in dict.fromkeys(r["row"] for r in rows):
        cells = []
        for t in tasks:
            r = by.get((t, name))
            for m in ("FID", "KID"):
                text = "" if r is None else f"{r[m]:.2f}"
                text = f"**{text}**" if r is not None and r[m] == best[(t, m)] else text
                cells.append(text + (f" ± {r['KID_std']:.2f}" if m == "KID" and r and r.get("KID_std") is not None else ""))
        label = "pinv (`A+y`)" if name == "pinv" else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reproduction(rows: list[dict], doc: Path) -> str:
    """The largest difference, per metric, between the rerun and the main table's cells."""
    published = celeba64_cells(doc)
    worst: dict[str, tuple[float, str]] = {}
    for r in rows:
        cells = published.get((MAIN_TABLE_TASK.get(r["task"], r["task"]), r["row"]), {})
        for metric, value in cells.items():
            gap = abs(round(r[metric], 4 if metric == "SSIM" else 2) - value)
            if gap >= worst.get(metric, (-1.0, ""))[0]:
                worst[metric] = (gap, f"{r['task']} {r['row']}")
    return "; ".join(f"{metric} within {gap:.{4 if metric == 'SSIM' else 2}f} ({where})" if gap > 1e-9
                     else f"{metric} identical in every cell" for metric, (gap, where) in worst.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", type=Path, required=True, help="the ssdiff bench output folder of the rerun")
    args = parser.parse_args()
    rows = [r for r in json.loads((args.bench / "results.json").read_text()) if not r["sweep"]]
    note = re.search(r"FID and KID \(x1e3\).*", (args.bench / "table.md").read_text())
    print(realism_table(rows))
    print(f"\n{note.group(0) if note else ''}\n\nImages per row: {sorted({r['images'] for r in rows})}.")
    print(f"Against the main table: {reproduction(rows, HERE / 'celeba64.md')}.")


if __name__ == "__main__":
    main()
