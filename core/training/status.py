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
    INTERRUPTED = "interrupted"  # its process died while it trained: the history kept it as of its last checkpoint

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
    RunStatus.INTERRUPTED: "interrupted at step {step}",
}


AT_STEP = (RunStatus.DIVERGED, RunStatus.INTERRUPTED)  # the statuses whose text names a step


def status_text(status: RunStatus, step: int | None = None) -> str:
    """The status as users see it and the run history stores it: "finished", "diverged at step 12"..."""
    return STATUS_TEXTS[status].format(step=step)


def parse_status(text: str) -> tuple[RunStatus, int | None]:
    """The status and step that `status_text` wrote as `text`; a ValueError for any other text."""
    for status in AT_STEP:
        step = text.removeprefix(STATUS_TEXTS[status].removesuffix("{step}"))
        if step != text and step.isdecimal():
            return status, int(step)
    for status, shown in STATUS_TEXTS.items():
        if shown == text and status not in AT_STEP:
            return status, None
    raise ValueError(f"'{text}' is not a run status")
