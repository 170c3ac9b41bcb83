"""Tables, target checks and quality-against-time plots of benchmarks/few_step.md, from `ssdiff bench` results.

    python benchmarks/few_step.py --bench ../runs/bench_few_step/main ../runs/bench_few_step/inpaint_refs \
        --embryo ../runs/bench_few_step/embryo --plots benchmarks/few_step

The 30- and 100-NFE rows of SR, colorization and deblurring are those of benchmarks/celeba64.md: the
same 200 faces, measurements, seeds and code path (DDNM, DDRM, PiGDM and SSD are unchanged), so they
are read from that document's tables rather than recomputed (7 hours on this machine); their
seconds per image come from that run (0.022 s per image-call against 0.0165 here), so
benchmarks/few_step.md also times a subset of them in one run with ssd-fast.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from ssdiff.bench import pareto_front, plot_frontier

HERE = Path(__file__).resolve().parent
TASK_COLUMNS = {"SR x4": "sr_bicubic4", "SR x8": "sr_bicubic8", "colorization": "colorization", "deblurring": "deblur_gauss"}
REFERENCES = ("ddnm@100", "ddrm@100", "pigdm@100", "ssd@100", "ddnm@30", "ddrm@30", "pigdm@30", "ssd@30")


def celeba64_cells(doc: Path) -> dict[tuple[str, str], dict[str, float]]:
    """The quality tables of celeba64.md: (task, method@NFE) -> PSNR, SSIM and SWD, the task by its
    bench name and ``A+y`` as ``pinv``."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for table in re.findall(r"(\| method@NFE \|.*?)(?:\n\n|\Z)", doc.read_text(), re.DOTALL):
        lines = table.strip().splitlines()
        header = [h.strip() for h in lines[0].strip("|").split("|")]
        for line in lines[2:]:
            values = [c.strip().strip("*") for c in line.strip("|").split("|")]
            row = values[0].replace(" (`A+y`)", "")
            for column, value in zip(header[1:], values[1:]):
                task, _, metric = column.rpartition(" ")
                if task in TASK_COLUMNS and metric in ("PSNR", "SSIM", "SWD") and value:
                    cells.setdefault((TASK_COLUMNS[task], row), {})[metric] = float(value)
    return cells


def references_from_celeba64(doc: Path) -> list[dict]:
    """The 30- and 100-NFE rows of celeba64.md's quality tables, with its measured seconds per image."""
    seconds = {m.group(1): float(m.group(2))
               for m in re.finditer(r"^\| (\S+@(?:30|100)) \| \d+ \| \d+ \| ([\d.]+) \|", doc.read_text(), re.MULTILINE)}
    rows = []
    for (task, row), metrics in celeba64_cells(doc).items():
        if row in REFERENCES:
            method, budget = row.split("@")
            rows.append({"task": task, "row": row, "method": method, "nfe_budget": int(budget),
                         "NFE": int(budget) - (method == "ssd"), "consistency": None,
                         "seconds_per_image": seconds.get(row), "source": "celeba64.md", **metrics})
    return rows


def load_rows(folders: list[Path]) -> list[dict]:
    """The rows of several bench folders; a (task, method@NFE) of a later folder replaces an earlier one."""
    rows: dict[tuple[str, str], dict] = {}
    for folder in folders:
        for row in json.loads((folder / "results.json").read_text()):
            if not row["sweep"]:
                rows[row["task"], row["row"]] = {**row, "source": folder.name}
    return list(rows.values())


def fmt(value, digits: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def task_table(rows: list[dict]) -> str:
    lines = ["| method@NFE | calls | PSNR | SSIM | SWD | mean abs(A x - y) | s/image |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: (r["NFE"] == 0, r["seconds_per_image"] or 0, r["row"])):
        consistency = "" if r.get("consistency") is None else f"{r['consistency']:.1e}"
        lines.append(f"| {r['row']} | {r['NFE']} | {fmt(r.get('PSNR'), 2)} | {fmt(r.get('SSIM'), 4)} | {fmt(r.get('SWD'), 2)} "
                     f"| {consistency} | {fmt(r['seconds_per_image'], 3)} |")
    return "\n".join(lines)


def targets(rows: list[dict]) -> str:
    """The issue's targets, each measured: at 10 NFEs against the 100-NFE baselines, at 4-6 against CM4IR."""
    lines = [("| task | ssd-fast@10 PSNR / SWD | DDNM@100 | DDRM@100 | PSNR margin (worst) | SWD margin (worst) |"
              " ssd-fast@4 vs cm4ir@4 (PSNR / SWD) | ssd-fast@6 vs cm4ir@6 |"),
             "| --- | --- | --- | --- | ---: | ---: | --- | --- |"]
    for task in dict.fromkeys(r["task"] for r in rows):
        by = {r["row"]: r for r in rows if r["task"] == task}
        if "ssd-fast@10" not in by:
            continue
        fast = by["ssd-fast@10"]
        refs = [by[k] for k in ("ddnm@100", "ddrm@100") if k in by]
        psnr_margin = min((fast["PSNR"] - r["PSNR"] for r in refs), default=float("nan"))
        swd_margin = min((r["SWD"] - fast["SWD"] for r in refs), default=float("nan"))

        def pair(key: str, by: dict = by) -> str:
            return f"{by[key]['PSNR']:.2f} / {by[key]['SWD']:.2f}" if key in by else "not run"

        def versus(budget: int, by: dict = by) -> str:
            a, b = by.get(f"ssd-fast@{budget}"), by.get(f"cm4ir@{budget}")
            return f"{a['PSNR'] - b['PSNR']:+.2f} dB / {b['SWD'] - a['SWD']:+.2f}" if a and b else "not run"

        lines.append(f"| {task} | {pair('ssd-fast@10')} | {pair('ddnm@100')} | {pair('ddrm@100')} | {psnr_margin:+.2f} dB "
                     f"| {swd_margin:+.2f} | {versus(4)} | {versus(6)} |")
    lines.append("\n(margins: ssd-fast minus the better baseline in PSNR, the baseline minus ssd-fast in SWD; positive is a win)")
    return "\n".join(lines)


def timing_table(rows: list[dict]) -> str:
    """Seconds per image of methods timed in one process, and each against the fastest 100-call reference."""
    reference = min((r["seconds_per_image"] for r in rows if r["nfe_budget"] == 100), default=None)
    lines = ["| method@NFE | calls | s/image | s per call | time against the fastest 100-call method | PSNR | SWD |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: r["seconds_per_image"]):
        share = f"{r['seconds_per_image'] / reference:.2f}" if reference else ""
        lines.append(f"| {r['row']} | {r['NFE']} | {r['seconds_per_image']:.3f} | {r['seconds_per_image'] / r['NFE']:.4f} | "
                     f"{share} | {r['PSNR']:.2f} | {r['SWD']:.2f} |")
    return "\n".join(lines)


def presets_table(path: Path) -> str:
    """The shipped presets, budget by budget, with their frontiers' sizes and what each search cost."""
    presets = json.loads(path.read_text())["presets"]

    def listed(value: object, word: str) -> object:
        return f"{word}: {', '.join(f'{v:g}' for v in value)}" if isinstance(value, list) else value

    header = ("| task | NFE | sampler | spacing | t0 | eta | inversion calls | ddim_eta | null_eta | eps_scale | start "
              "| PSNR / SWD (on the 16 tuning faces, or on the check faces where checked) | frontier points | configurations scored | network calls |")
    lines = [header, "| --- | ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | ---: | ---: | ---: |"]
    for task, budgets in presets.items():
        for budget in sorted(budgets, key=int):
            entry = budgets[budget]
            c, search = entry["config"], entry["search"]
            check = search.get("check")
            checked = f" (checked on {check['images']})" if check else ""
            scored = f"{search['evaluations']}" + (f" + {check['evaluations']} on the check faces" if check else "")
            calls = search["network_calls"] + (check["network_calls"] if check else 0)
            lines.append(f"| {task} | {budget} | {c.get('sampler', 'ddim')} | {listed(c['spacing'], 'searched')} | {c['t0']} | "
                         f"{c['eta']} | {c['inversion_calls']} | {listed(c.get('ddim_eta', ''), 'per step')} | "
                         f"{listed(c.get('null_eta', ''), 'per step')} | {c.get('eps_scale', '')} | "
                         f"{c.get('start', 'pinv')} | {entry['psnr']:.2f} / {entry['swd']:.1f}{checked} | {len(entry.get('frontier', []))} | "
                         f"{scored} | {calls} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", nargs="+", type=Path, required=True, help="ssdiff bench output folders")
    parser.add_argument("--embryo", type=Path, help="the bench folder of the Embryo ablation")
    parser.add_argument("--plots", type=Path, help="write frontier_<task>.png here")
    parser.add_argument("--timing", type=Path, help="a bench folder timing ssd-fast and the references in one run")
    args = parser.parse_args()
    rows = load_rows(args.bench) + references_from_celeba64(HERE / "celeba64.md")
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        print(f"\n### {task}\n\n{task_table(mine)}")
        timed = [r for r in mine if r["NFE"] and r["seconds_per_image"]]
        front = pareto_front([(r["seconds_per_image"], r["PSNR"]) for r in timed], higher_is_better=True)
        names = [next(r["row"] for r in timed if (r["seconds_per_image"], r["PSNR"]) == p) for p in front]
        print(f"\nPSNR Pareto front (by seconds per image): {', '.join(names)}")
        if args.plots:
            plot_frontier(args.plots, task, timed)
    print("\n### Targets\n\n" + targets(rows))
    if args.embryo:
        print("\n### Embryo ablation\n\n" + task_table(load_rows([args.embryo])))
    print("\n### Presets\n\n" + presets_table(HERE.parent / "src" / "ssdiff" / "presets" / "celeba64.json"))
    if args.timing:
        print("\n### Timed in one run\n\n" + timing_table(load_rows([args.timing])))


if __name__ == "__main__":
    main()
