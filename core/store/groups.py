"""The runs of a sweep, a study or a preset written to the run history as they train, each through its own
`Checkpoints`, so that a process that dies leaves every one of them there, "interrupted at step N", with its
parameters.
"""

from __future__ import annotations

from core.store.history import CHECKPOINT_SECONDS, Checkpoints, RunHistory
from core.training.runs import Run


class GroupCheckpoints:
    """Checkpoints of runs that train together or one after another (a sweep's variants, a study's sizes, a
    preset's runs): call the object with a run after each of its records (its first begins its checkpoints, so a
    run that trains nothing leaves no trace), and `wait()` before the ended runs are saved. With no history (None)
    nothing is written."""

    def __init__(self, history: RunHistory | None, every: float = CHECKPOINT_SECONDS) -> None:
        self.history, self.every = history, every
        self._each: dict[str, Checkpoints] = {}  # by run_id

    def __call__(self, run: Run) -> None:
        if run.run_id not in self._each:
            self._each[run.run_id] = Checkpoints(self.history, run, self.every)
        self._each[run.run_id]()

    def wait(self) -> None:
        """Until every run's last checkpoint is written."""
        for checkpoints in self._each.values():
            checkpoints.wait()

    @property
    def writes(self) -> int:
        """The checkpoints written, all runs together."""
        return sum(checkpoints.writes for checkpoints in self._each.values())

    @property
    def seconds(self) -> float:
        """The training thread's time spent on the checkpoints."""
        return sum(checkpoints.seconds for checkpoints in self._each.values())
