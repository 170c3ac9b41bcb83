"""Write into a preset file, for every (task, budget), the frontier of the configurations its tuning
scored: what ``ssd-fast``'s ``realism`` chooses along (0: the PSNR-best, 1: the SWD-best).

``ssdiff tune`` records the frontier of each search it runs; this script rebuilds them from the
tuning logs for presets tuned before it did, and merges several logs of searches on the same
images (the shipped presets' first tuning, then their re-tuning). The first lines of the first
log, written before the log named its task, are SR x4's (4 and 10 calls). A preset judged on
other images (``ssdiff tune --check``) gets the frontier of what was scored on those.

    python benchmarks/frontiers.py src/ssdiff/presets/celeba64.json \
        benchmarks/few_step/tune_celeba64.log.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ssdiff.io import write_bytes
from ssdiff.solvers.fast import frontier, read_presets
from ssdiff.tune import read_log

UNNAMED_TASK = "sr_bicubic_x4"  # the task of the log lines that do not name theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", help="preset file to complete (rewritten in place)")
    parser.add_argument("logs", nargs="+", help="tuning logs of searches on the presets' images")
    args = parser.parse_args()
    path = Path(args.presets)
    data = read_presets(path)
    scored = [entry for log in args.logs for entry in read_log(Path(log))]
    checks = {e["search"]["check"]["data"] for b in data["presets"].values() for e in b.values() if "check" in e["search"]}
    for task, by_budget in data["presets"].items():
        for nfe, entry in by_budget.items():
            check = entry["search"].get("check", {}).get("data")
            mine = [e for e in scored if e.get("task", UNNAMED_TASK) == task and e["nfe"] == int(nfe)
                    and (e.get("data") == check if check else e.get("data") not in checks)]
            entry["frontier"] = frontier(mine)
            ends = entry["frontier"][0], entry["frontier"][-1]
            print(f"{task}@{nfe}: {len(mine)} configurations, {len(entry['frontier'])} on the frontier, from "
                  f"PSNR {ends[0]['psnr']:.2f} / SWD {ends[0]['swd']:.2f} to PSNR {ends[1]['psnr']:.2f} / SWD {ends[1]['swd']:.2f}")
    write_bytes(json.dumps(data, indent=1).encode(), path)


if __name__ == "__main__":
    main()
