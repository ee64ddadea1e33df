"""A run's status (`RunStatus`), and its text: what users see and the run history stores."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Where a run stands. Each value starts its status text, so the run history filters by it."""

    COMPILING = "compiling"
    RUNNING = "running"
    STOPPED = "stopped"  # ended early (Stop, Ctrl-C, a page switch), evaluated as it was
    FINISHED = "finished"
    DIVERGED = "diverged"  # a NaN/Inf loss, at the step held beside the status (`diverged_at`)
    LOADED = "loaded"  # a model loaded from a file, not trained here

    @property
    def in_progress(self) -> bool:
        """Whether the run is still compiling or training."""
        return self in (RunStatus.COMPILING, RunStatus.RUNNING)


STATUS_TEXTS = {
    RunStatus.COMPILING: "compiling",
    RunStatus.RUNNING: "running",
    RunStatus.STOPPED: "stopped",
    RunStatus.FINISHED: "finished",
    RunStatus.DIVERGED: "diverged at step {step}",
    RunStatus.LOADED: "loaded from file",
}


DIVERGED_PREFIX = STATUS_TEXTS[RunStatus.DIVERGED].removesuffix("{step}")


def status_text(status: RunStatus, diverged_at: int | None = None) -> str:
    """The status as users see it and the run history stores it: "finished", "diverged at step 12"..."""
    return STATUS_TEXTS[status].format(step=diverged_at)


def parse_status(text: str) -> tuple[RunStatus, int | None]:
    """The status and divergence step that `status_text` wrote as `text`; a ValueError for any other text."""
    step = text.removeprefix(DIVERGED_PREFIX)
    if step != text and step.isdecimal():
        return RunStatus.DIVERGED, int(step)
    for status, shown in STATUS_TEXTS.items():
        if shown == text and status is not RunStatus.DIVERGED:
            return status, None
    raise ValueError(f"'{text}' is not a run status")
