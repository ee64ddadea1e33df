"""Reproduction: train presets and tabulate our test accuracy beside the reported one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig, Splits
from core.experiments.presets import MNIST_TRAINING_IMAGES, Preset
from core.training.config import RunConfig
from core.training.loop import train
from core.training.runs import Run

TABLE_KEYS = ("preset", "arch", "reported", "test_accuracy", "epochs", "seconds")


def on_subset(config: RunConfig, train_size: int | None) -> RunConfig:
    """The config on at most `train_size` training images and as many validation images (for quick checks).

    The batch shrinks to fit the subset; a size at least the preset's own training set leaves it as it is.
    """
    data = config.data
    own = data.train_size or (data.per_class * MNIST_SPEC.num_classes if data.per_class
                              else MNIST_TRAINING_IMAGES - data.val_size)
    if train_size is None or train_size >= own:
        return config
    data = dataclasses.replace(data, train_size=train_size, per_class=None, val_size=min(data.val_size, train_size))
    return dataclasses.replace(config, data=data, train=dataclasses.replace(
        config.train, batch_size=min(config.train.batch_size, train_size)))


def run_name(preset: Preset, index: int) -> str:
    return f"{preset.name}: {preset.labels[index]}" if preset.labels else preset.name


def train_preset(preset: Preset, splits_for: Callable[[SplitConfig], Splits], *,
                 train_size: int | None = None) -> Iterator[list[Run]]:
    """Train each of the preset's configs in turn, yielding its runs so far after every chunk.

    Each run is finished (validation and test accuracy measured) as soon as its training ends.
    """
    runs: list[Run] = []
    for index, config in enumerate(preset.configs):
        config = on_subset(config, train_size)
        splits = splits_for(config.data)
        run = Run(name=run_name(preset, index), config=config, spec=splits.spec)
        runs.append(run)
        for progress in train(config, splits):
            run.record(progress)
            yield runs
        run.finish(splits)
        yield runs


def table_row(preset: Preset, runs: list[Run], seconds: float) -> dict:
    """One row of the reproduction table. With several runs, test_accuracy is the last one's; all are in `runs`."""
    return {
        "preset": preset.name,
        "arch": preset.arch,
        "reported": preset.reported,
        "reported_text": preset.reported_text,
        "test_accuracy": runs[-1].test_accuracy,
        "status": runs[-1].status_text,
        "epochs": runs[-1].epochs_completed,
        "seconds": seconds,
        "runs": {run.name: run.test_accuracy for run in runs},
    }


def format_accuracy(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def format_row(row: dict) -> str:
    """A Markdown table line for the README and the terminal."""
    ours = " / ".join(format_accuracy(a) for a in row["runs"].values())
    reported = row["reported_text"] or format_accuracy(row["reported"])
    return (f"| {row['preset']} | {row['arch']} | {reported} | {ours} | {row['epochs']:g} | "
            f"{row['seconds']:.0f} s |")


TABLE_HEADER = ("| preset | architecture | reported test accuracy | our test accuracy | epochs | wall time |\n"
                "|---|---|---|---|---|---|")
