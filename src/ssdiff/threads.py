"""How many CPU threads the network runs on: all the cores the process may use while it has them to
itself, fewer while other programs keep them busy.

Why: torch's OpenMP threads spin while they wait for each other. When another busy process shares
the cores, a spinning thread burns the time slice the other needed and both slow down many times
over (SSD@30 on 4 faces, 2 cores: 2.4 s alone, 9.4-10 s each with a second process beside it, in
``benchmarks/speed.md``). One thread per core the others leave free avoids that, and all of them
when nobody else is there loses nothing.

So, by default, :func:`adapt` (called by the prior before each forward) looks at most every
:data:`INTERVAL` seconds at how much CPU the *other* processes used since the last look (Linux's
``/proc/stat`` minus this process's ``/proc/self/stat``) and sets ``torch.set_num_threads`` to the
cores the process may use (its affinity) minus those the others keep busy, at least 1.

A fixed count turns it off: ``--threads N`` on every command, ``SSDIFF_THREADS=N``, ``set_threads(N)``,
or ``OMP_NUM_THREADS`` set by the user. A thread count set by the caller with
``torch.set_num_threads`` after ssdiff's last change is respected as fixed too. Without ``/proc``
(macOS, Windows) the count stays torch's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

ENV = "SSDIFF_THREADS"
INTERVAL = 0.5  # seconds between two looks at the other processes' CPU use
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _Governor:
    def __init__(self) -> None:
        self.fixed: int | None = None
        self.last_set: int | None = None
        self.sample: tuple[float, float, float] | None = None  # (wall, busy ticks of all CPUs, ours)

    def cores(self) -> int:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1

    def set_fixed(self, threads: int | None) -> None:
        self.fixed = threads
        if threads is not None:
            torch.set_num_threads(threads)
            self.last_set = threads

    def adapt(self) -> None:
        if self.fixed is not None:
            return
        if self.last_set is not None and torch.get_num_threads() != self.last_set:
            self.fixed = torch.get_num_threads()  # the caller chose a count since: theirs stands
            return
        now = time.monotonic()
        if self.sample is not None and now - self.sample[0] < INTERVAL:
            return
        reading = _cpu_ticks()
        if reading is None:
            self.fixed = torch.get_num_threads()  # no /proc: leave torch's count alone from now on
            return
        previous, self.sample = self.sample, (now, *reading)
        if previous is None:
            return
        elapsed = (now - previous[0]) * _TICKS
        others = max(0.0, (reading[0] - previous[1]) - (reading[1] - previous[2])) / max(elapsed, 1e-9)
        cores = self.cores()
        threads = max(1, min(cores, round(cores - others)))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self.last_set = threads


def _cpu_ticks() -> tuple[float, float] | None:
    """Busy ticks of all CPUs (user, nice, system, irq, softirq, steal) and this process's (user, system)."""
    try:
        with open("/proc/stat") as handle:
            fields = [float(v) for v in handle.readline().split()[1:]]
        with open("/proc/self/stat") as handle:
            ours = handle.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    busy = sum(fields[:3]) + sum(fields[5:8])  # all but idle and iowait
    return busy, float(ours[11]) + float(ours[12])


_GOVERNOR = _Governor()


def parse_threads(text: str | None) -> int | None:
    """``"4"`` -> 4, ``"auto"`` / empty -> None (adaptive); anything else is a ValueError."""
    if text is None or text.strip().lower() in ("", "auto"):
        return None
    value = int(text)
    if value < 1:
        raise ValueError(f"threads must be a positive integer or 'auto', got {text!r}")
    return value


def set_threads(threads: int | None) -> None:
    """A fixed thread count for the network (None: adapt to the other processes, the default)."""
    _GOVERNOR.set_fixed(threads)


def configure(threads: int | None = None) -> None:
    """Apply ``threads`` if given, else ``SSDIFF_THREADS``, else keep a user's ``OMP_NUM_THREADS``
    fixed, else adapt. The commands call this before their first torch computation."""
    if threads is None:
        threads = parse_threads(os.environ.get(ENV))
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        threads = torch.get_num_threads()
    set_threads(threads)


def adapt() -> None:
    """Called before each network forward: follow the other processes' load (see the module)."""
    _GOVERNOR.adapt()


@contextmanager
def configured(threads: int | None) -> Iterator[None]:
    """:func:`configure` for the length of a command; torch's count and the mode are restored after
    (a command may run inside a longer process: the tests, the app). ``SSDIFF_THREADS`` carries a
    fixed count to the command's worker processes (the benchmark's)."""
    saved = (_GOVERNOR.fixed, _GOVERNOR.last_set, torch.get_num_threads(), os.environ.get(ENV))
    try:
        if threads is not None:
            os.environ[ENV] = str(threads)
        configure(threads)
        yield
    finally:
        _GOVERNOR.fixed, _GOVERNOR.last_set = saved[0], saved[1]
        torch.set_num_threads(saved[2])
        if saved[3] is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved[3]


try:
    configure()
except ValueError:  # a bad SSDIFF_THREADS: the commands say so in one line; the library adapts meanwhile
    pass
