"""Driving a run for a consumer (an app page, a command): fold each record in, redraw at a steady pace, stop on
request. Training yields a record per chunk, often faster than a chart or a progress line is worth redrawing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

REDRAW_SECONDS = 0.4  # live views redraw at most this often: a chart costs more to draw than a small network's chunk


class Pace:
    """`due()` is true at most every `every` seconds (the first time included), and always when told `last`;
    `every` is a number of seconds, or a function giving it afresh at each `due()`."""

    def __init__(self, every: float | Callable[[], float]) -> None:
        self.every = every if callable(every) else lambda: every
        self.last = -math.inf

    def due(self, last: bool = False) -> bool:
        now = time.perf_counter()
        if last or now - self.last >= self.every():
            self.last = now
            return True
        return False


def drive(records: Iterable[T], *, record: Callable[[T], None], show: Callable[[T], None],
          stop_requested: Callable[[], bool] = lambda: False,
          every: float | Callable[[], float] = REDRAW_SECONDS) -> bool:
    """Hand each record to `record`, then to `show` at most every `every` seconds (see `Pace`) and always for the
    last one;
    `stop_requested()` is read after each record and ends the loop there. Returns whether it stopped so."""
    pace = Pace(every)
    item, shown, stopped = None, True, False
    for item in records:
        record(item)
        stopped = stop_requested()
        shown = pace.due(last=stopped)
        if shown:
            show(item)
        if stopped:
            break
    if not shown:  # the last record
        show(item)
    return stopped
