"""The memory plan of a folder run: each batch's memory estimated before it runs, from the budgets of
:mod:`ssdiff.limits`. Batches are lists of the runner's items (each with its ``path``, ``operator``,
measurement ``y`` and ``face`` plan)."""

from __future__ import annotations

from tqdm.auto import tqdm

from .limits import available_memory, check_memory, gigabytes, peak_resident_memory, restoration_bytes
from .solvers import NEEDS_NETWORK_GRADIENT


def _restored_size(items: list) -> tuple[int, int]:
    return items[0].operator.image_shape(items[0].y[None])


class MemoryPlan:
    """The memory of each batch, estimated before it runs (:func:`ssdiff.limits.restoration_bytes`):
    an image that alone would not fit is refused, a batch grows only while it fits, and each new
    size of work is announced with its estimate of the process's peak."""

    def __init__(self, prior, method: str):
        # methods that back-propagate through the network keep several times its activations
        self.prior, self.gradient = prior, method in NEEDS_NETWORK_GRADIENT
        self.announced: set[tuple] = set()

    def needed(self, items: list) -> int:
        return restoration_bytes(self.prior, items[0].operator, len(items), *_restored_size(items), self.gradient)

    def check(self, items: list) -> None:
        height, width = _restored_size(items)
        check_memory(str(items[0].path), self.needed(items), f"restoring it at {width}x{height}")

    def fits(self, items: list) -> bool:
        available = available_memory()
        return available is None or self.needed(items) <= available

    def announce(self, items: list) -> None:
        height, width = _restored_size(items)
        key = (height, width, len(items), items[0].face is not None)
        if key not in self.announced:
            self.announced.add(key)
            tqdm.write(f"memory: {len(items)} image(s) of {width}x{height} at once: at most about "
                       f"{gigabytes(peak_resident_memory() + self.needed(items), round_up=True)} for this process (estimate)")
