"""The one timing helper the benchmark scripts share (run them as `python benchmarks/NAME.py`, which puts this
folder on the import path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def first_and_later(work: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Seconds of the first call (compiling included) and of each of `repeats` later calls."""
    started = time.perf_counter()
    work()
    first = time.perf_counter() - started
    later = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        later.append(time.perf_counter() - started)
    return first, later
