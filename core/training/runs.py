"""A run: its config, the curves recorded while it trained, its parameters and final metrics.

Both the app and the CLI drive `train()` and fold each `Progress` into a `Run` with `Run.record`, so a run
that stops early (Stop button, Ctrl-C, divergence) still holds everything trained so far.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from core.data.spec import DataSpec, describe_data
from core.data.splits import Splits
from core.errors import ConfigError
from core.networks.base import Model, Params
from core.training.config import RunConfig
from core.training.evaluation import Evaluation, evaluate
from core.training.loop import Progress
from core.training.status import RunStatus, status_text

CURVE_FIELDS = ("step", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
                "elapsed", "samples_per_second")


@dataclass
class Run:
    """One training run. `history` holds one dict per chunk with CURVE_FIELDS; `snapshots` the params per epoch."""

    name: str
    config: RunConfig
    spec: DataSpec  # the data it trains on
    params: Params | None = None
    status: RunStatus = RunStatus.COMPILING  # its value is taken too: Run(..., status="finished")
    diverged_at: int | None = None  # the step whose loss or update was not finite, when DIVERGED
    history: list[dict] = field(default_factory=list)
    snapshots: list[tuple[int, Params]] = field(default_factory=list)  # (epoch, params) at each epoch's end
    compile_seconds: float = 0.0
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_confusion: np.ndarray | None = None  # (classes, classes) counts on the test set, rows = true class
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # stable identity in the run history
    _test: tuple | None = field(default=None, init=False, repr=False, compare=False)  # (params, their Evaluation)

    def __post_init__(self):
        self.status = RunStatus(self.status)

    def record(self, progress: Progress) -> None:
        """Fold one progress record into the run."""
        self.params = progress.params
        self.status, self.diverged_at = progress.status, progress.diverged_at
        self.compile_seconds = progress.compile_seconds
        self.train_seconds = progress.elapsed
        self.samples_per_second = progress.samples_per_second
        row = {name: getattr(progress, name) for name in CURVE_FIELDS}
        if progress.statistics:
            row["statistics"] = [list(entry) for entry in progress.statistics]
        self.history.append(row)
        if float(progress.epoch).is_integer() and not progress.diverged:  # an epoch's end (a divergence keeps
            # the parameters of its chunk's start, already kept if that was an epoch's end)
            self.snapshots.append((int(progress.epoch), progress.params))

    def finish(self, splits: Splits) -> None:
        """Mark a run that ended (or was stopped) and measure its validation and test accuracy (and test
        confusion matrix)."""
        if self.status.in_progress:
            self.status = RunStatus.STOPPED
        if self.params is None or self.diverged:
            return
        if splits.spec != self.spec:
            raise ConfigError(f"'{self.name}' was trained on {describe_data(self.spec)}; the data here is "
                              f"{describe_data(splits.spec)}, so it cannot be evaluated on it.")
        if len(splits.y_val):
            self.val_accuracy = self.evaluate(splits.x_val, splits.y_val).accuracy
        test = self.test_evaluation(splits)
        self.test_accuracy, self.test_confusion = test.accuracy, test.confusion

    def test_evaluation(self, splits: Splits) -> Evaluation:
        """The evaluation on the test set, computed once per parameters (`finish` and the Results page share it)."""
        if self._test is None or self._test[0] is not self.params:
            self._test = (self.params, self.evaluate(splits.x_test, splits.y_test))
        return self._test[1]

    @property
    def diverged(self) -> bool:
        return self.status is RunStatus.DIVERGED

    @property
    def status_text(self) -> str:
        """The status as shown and stored: "finished", "diverged at step 12"..."""
        if self.status is RunStatus.INTERRUPTED:
            return status_text(self.status, self.steps_done)
        return status_text(self.status, self.diverged_at)

    @property
    def steps_done(self) -> int:
        return self.history[-1]["step"] if self.history else 0

    @property
    def epochs_completed(self) -> float:
        return self.history[-1]["epoch"] if self.history else 0.0

    @property
    def model(self) -> Model:
        return Model(self.config.model, self.spec)

    def evaluate(self, x, y) -> Evaluation:
        return evaluate(self.params, self.model, x, y)

    def summary(self) -> dict:
        """Final metrics as plain JSON-able data."""
        return {
            "name": self.name,
            "status": self.status_text,
            "architecture": self.model.describe(),
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "epochs": self.epochs_completed,
            "train_seconds": round(self.train_seconds, 3),
            "compile_seconds": round(self.compile_seconds, 3),
            "samples_per_second": round(self.samples_per_second, 1),
            "created": self.created,
        }

    @property
    def statistics(self) -> list[tuple[int, dict]]:
        """The layer statistics recorded while it trained, (step, statistics) in order (empty when not recorded)."""
        return [(step, stats) for row in self.history for step, stats in row.get("statistics", ())]

    def statistics_csv(self) -> str:
        """The layer statistics as CSV, one row per step, layer and quantity (histograms left out: see the JSON)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("step", "kind", "layer", "quantity", "value"))
        for step, stats in self.statistics:
            for kind, layers in stats.items():
                for layer, values in layers.items():
                    writer.writerows((step, kind, layer, quantity, value) for quantity, value in values.items()
                                     if not isinstance(value, list))
        return out.getvalue()

    def curves_csv(self) -> str:
        """The per-chunk curves as CSV (empty cells where validation did not run)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CURVE_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items() if k in CURVE_FIELDS}
                         for row in self.history)
        return out.getvalue()

    def to_json(self) -> str:
        """Config, final metrics and curves as one JSON document."""
        return json.dumps({"config": self.config.to_dict(), "metrics": self.summary(), "curves": self.history},
                          indent=1)


def ranked_by_validation(runs: list[Run]) -> list[Run]:
    """Best validation accuracy first; runs without one (diverged, or no validation images) last."""
    return sorted(runs, key=lambda run: -1 if run.val_accuracy is None else run.val_accuracy, reverse=True)
