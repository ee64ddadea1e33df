"""The overfitting study: one configuration trained on several training-set sizes, compared by the gap between
its final training and validation accuracy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.data.splits import Splits
from core.errors import ConfigError
from core.training.config import RunConfig
from core.training.runs import Run

MIN_SIZE = 10  # training images; fewer make no curve worth comparing


def study_configs(base: RunConfig, sizes: Sequence[int], *, epochs: int, val_size: int) -> list[RunConfig]:
    """`base` on each training-set size (smallest first, each once): the same held-out validation images and
    epochs for every size, the batch shrunk to fit a small set."""
    if val_size < 1:
        raise ConfigError("The study compares training with validation accuracy: hold out at least 1 image.")
    if not sizes or min(sizes) < MIN_SIZE:
        raise ConfigError(f"Give at least one training-set size, each of {MIN_SIZE} images or more.")
    return [dataclasses.replace(
        base, data=dataclasses.replace(base.data, val_size=val_size, train_size=size, per_class=None),
        train=dataclasses.replace(base.train, epochs=epochs, batch_size=min(base.train.batch_size, size)))
        for size in sorted(set(sizes))]


def gap_points(train_accuracy: float | None, val_accuracy: float | None) -> float | None:
    """The generalisation gap in percentage points: training minus validation accuracy (None if either is)."""
    return None if train_accuracy is None or val_accuracy is None else 100 * (train_accuracy - val_accuracy)


@dataclass
class Study:
    """A study's runs, one per training-set size, and their final networks' accuracy on their own training set."""

    setup: str
    epochs: int
    runs: list[tuple[int, Run]] = field(default_factory=list)  # (training-set size, run), smallest first
    train_accuracy: dict[str, float] = field(default_factory=dict)  # run_id -> final weights on their training set

    def final_train_accuracy(self, run: Run, splits: Splits) -> float | None:
        """The final weights' accuracy on the run's own training images (measured once; None without weights).
        Not the running accuracy of training's last chunk, which lags behind the final weights."""
        if run.params is None or run.diverged:
            return None
        if run.run_id not in self.train_accuracy:
            self.train_accuracy[run.run_id] = run.evaluate(splits.x_train, splits.y_train).accuracy
        return self.train_accuracy[run.run_id]
