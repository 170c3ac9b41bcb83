"""Progress of a restoration counted in network forwards (the prior's ``on_forward`` hook, set for
each batch by :func:`temporarily`, as a run sets the prior's ``max_batch``), and the timing of one
forward, synchronised with the device, that estimates what a run will take."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

import torch
from tqdm.auto import tqdm


@contextlib.contextmanager
def temporarily(target, attribute: str, value) -> Iterator[None]:
    """Set ``target.attribute`` to ``value`` inside the block, and back after it (targets without
    the attribute, such as plain callables standing in for a prior, are left alone)."""
    if not hasattr(target, attribute):
        yield
        return
    previous = getattr(target, attribute)
    setattr(target, attribute, value)
    try:
        yield
    finally:
        setattr(target, attribute, previous)


def time_forward(prior, batch: int, warm_up: bool = False) -> float | None:
    """Seconds of one forward of ``batch`` images at the prior's resolution (None when it records none).

    Synchronised: a GPU runs asynchronously, and without it only the launch would be timed.
    ``warm_up`` first runs one image, as the first forward of a process pays one-off costs
    (CUDA context, lazy kernels)."""
    resolution = getattr(prior, "resolution", None)
    if resolution is None:
        return None
    device = torch.device(getattr(prior, "device", "cpu"))
    x = torch.zeros(batch, getattr(prior, "channels", 3), *resolution, device=device)  # RGB unless it says
    with torch.no_grad():
        if warm_up:
            prior(x[:1], 500)
        synchronize(device)
        started = time.perf_counter()
        prior(x, 500)
        synchronize(device)
    return time.perf_counter() - started


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timing on a GPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Progress:
    """Progress over network forwards (a call is one forward per ``max_batch`` images or tiles).

    On a terminal, a bar per batch of images with its ETA; otherwise (logs) a line at most every
    :attr:`LOG_SECONDS` while a batch runs, besides the line each finished image gets. A batch of
    many forwards (a large image) is announced with its size of work before it starts.
    """

    LOG_SECONDS = 30.0
    ANNOUNCE_FORWARDS = 300

    def __init__(self, prior, images: int, hook: Callable[[int, int], None] | None = None):
        self.prior, self.images, self.images_done, self.hook = prior, images, 0, hook
        self.seconds_per_input: float | None = None  # measured on the batches so far

    def measure(self, batch: int) -> float | None:
        """Seconds per image of one network forward at the prior's resolution (for the first estimate)."""
        seconds = time_forward(self.prior, batch)
        return None if seconds is None else seconds / batch

    @contextlib.contextmanager
    def batch(self, name: str, calls: int, inputs_per_call: int) -> Iterator[None]:
        """Count the forwards of ``calls`` network calls of ``inputs_per_call`` images or tiles each."""
        max_batch = getattr(self.prior, "max_batch", None) or inputs_per_call
        per_call = -(-inputs_per_call // max_batch)
        total, inputs = calls * per_call, calls * inputs_per_call
        if total >= self.ANNOUNCE_FORWARDS:
            if self.seconds_per_input is None:
                self.seconds_per_input = self.measure(min(max_batch, inputs_per_call))
            estimate = f", about {self.seconds_per_input * inputs / 60:.1f} min" if self.seconds_per_input else ""
            tqdm.write(f"{name}: {inputs_per_call} images or tiles per network call, up to {calls} calls: {total} "
                       f"network forwards of at most {max_batch}{estimate}")
        bar = tqdm(total=total, desc=f"[{self.images_done + 1}/{self.images}] {name}", unit="forward",
                   disable=None, leave=False)
        started = last_log = time.perf_counter()
        done = 0

        def advance(_: int) -> None:
            nonlocal done, last_log
            done += 1
            bar.update(1)
            if self.hook:
                self.hook(done, total)
            now = time.perf_counter()
            if bar.disable and now - last_log >= self.LOG_SECONDS:  # not a terminal: a log line now and then
                left = (now - started) / done * max(total - done, 0)
                print(f"{name}: {done}/{total} network forwards, {now - started:.0f} s, about {left:.0f} s left",
                      file=sys.stderr, flush=True)
                last_log = now

        try:
            with temporarily(self.prior, "on_forward", advance):
                yield
            if done < total:  # the budget was an upper bound (SSD's first inversion step needs no call): settle at what ran
                bar.total = done
                bar.refresh()
                if self.hook:
                    self.hook(done, done)
        finally:
            bar.close()
            if done:
                self.seconds_per_input = (time.perf_counter() - started) / (done * inputs_per_call / per_call)
