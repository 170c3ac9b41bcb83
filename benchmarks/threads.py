"""One restoration alone and with a second one beside it, per thread setting (the threads issue).

Each run is a fresh process that restores 4 faces (the demo's public-domain face, SR x4, SSD@30)
and prints the seconds of ``restore()`` alone (loading excluded). "Shared" starts two such
processes at once and reports the mean of their times; "busy loop" runs one beside a pure-Python
``while True: pass`` (another program keeping a core busy). Settings: ``SSDIFF_THREADS`` 1, 2, and
unset (ssdiff's default: adapt to the other processes, see ``ssdiff.threads``); ``torch`` is
torch's own default with ssdiff's adaptation off (the behaviour before).

    python benchmarks/threads.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

WORK = """
import sys, time, torch, ssdiff
from ssdiff.demo import astronaut_face
from ssdiff import threads
if sys.argv[1] == "torch":
    threads.set_threads(torch.get_num_threads())  # torch's default count, never adapted
prior = ssdiff.load_model("celeba64")
x = astronaut_face().expand(4, -1, -1, -1).contiguous()
op = ssdiff.get_operator("sr_bicubic", image_size=(64, 64), scale=4)
y = op.A(x)
ssdiff.restore(prior, op, y[:1], nfe=3, seed=0)  # warm-up
started = time.perf_counter()
ssdiff.restore(prior, op, y, nfe=30, seed=list(range(4)))
print(time.perf_counter() - started)
"""
SETTINGS = {"1": {"SSDIFF_THREADS": "1"}, "2": {"SSDIFF_THREADS": "2"}, "torch": {}, "auto (default)": {}}


def run(setting: str, copies: int, busy_loop: bool = False) -> float:
    """Mean seconds of ``copies`` restorations started together (beside a pure-Python busy loop if asked)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "SSDIFF_THREADS")}
    env.update(SETTINGS[setting])
    mode = "torch" if setting == "torch" else "ssdiff"
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy_loop else None
    try:
        processes = [subprocess.Popen([sys.executable, "-c", WORK, mode], env=env, stdout=subprocess.PIPE, text=True)
                     for _ in range(copies)]
        times = [float(p.communicate()[0].strip().splitlines()[-1]) for p in processes]
    finally:
        if loop:
            loop.kill()
    return statistics.mean(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for setting in SETTINGS:
        alone = statistics.median(run(setting, 1) for _ in range(args.repeats))
        shared = statistics.median(run(setting, 2) for _ in range(args.repeats))
        busy = statistics.median(run(setting, 1, busy_loop=True) for _ in range(args.repeats))
        results[setting] = (alone, shared, busy)
        print(f"{setting}: alone {alone:.2f} s, shared {shared:.2f} s, busy {busy:.2f} s", file=sys.stderr, flush=True)
    best = min(alone for alone, _, _ in results.values())
    print(f"{os.cpu_count()} cores, median of {args.repeats} runs; seconds of restore() for 4 faces, SR x4, SSD@30\n")
    print("| threads | alone (s) | vs best alone | beside a second restoration (s) | slowdown | beside a busy loop (s) "
          "| slowdown |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for setting, (alone, shared, busy) in results.items():
        print(f"| {setting} | {alone:.2f} | {alone / best:.2f}x | {shared:.2f} | {shared / alone:.2f}x | {busy:.2f} "
              f"| {busy / alone:.2f}x |")


if __name__ == "__main__":
    main()
