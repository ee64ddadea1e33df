"""A run: its config, the curves recorded while it trained, its parameters and final metrics.

Both the app and the CLI drive `train()` and fold each `Progress` into a `Run` with `Run.record`, so a run
that stops early (Stop button, Ctrl-C, divergence) still holds everything trained so far.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import optax

from core.data.spec import DataSpec, describe_data
from core.data.splits import Splits
from core.errors import ConfigError
from core.networks.base import Model, Params
from core.parsing import whole
from core.training.config import OPTIMIZER_LABELS, SCHEDULE_LABELS, RunConfig, Schedule
from core.training.evaluation import Evaluation, evaluate
from core.training.loop import Progress, StartPoint
from core.training.status import AT_STEP, RunStatus, status_text

CURVE_FIELDS = ("step", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
                "elapsed", "samples_per_second")


@dataclass
class Run:
    """One training run. `history` holds one dict per chunk with CURVE_FIELDS; `snapshots` the params per epoch."""

    name: str
    config: RunConfig
    spec: DataSpec  # the data it trains on
    params: Params | None = None
    opt_state: optax.OptState | None = None  # the optimiser's state that goes with `params` (None: not kept)
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
        self.params, self.opt_state = progress.params, progress.opt_state
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


CONTINUABLE = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.INTERRUPTED,
               RunStatus.LOADED)  # the runs that can train further (a loaded model: from its file's step)


CONTINUED_SUFFIX = " (continued)"


def continued_name(name: str) -> str:
    """The name of a run continued from the run `name` ("NAME (continued)", once)."""
    return name if name.endswith(CONTINUED_SUFFIX) else name + CONTINUED_SUFFIX


@dataclass(frozen=True)
class Continuation:
    """How to train a run further: whole epochs to add (the epoch in progress counts as the first), and optionally a
    new learning rate, schedule or decay factor (None: the run's own)."""

    epochs: int
    learning_rate: float | None = None
    schedule: Schedule | None = None
    decay: float | None = None


def continuation_config(config: RunConfig, step: int, steps_per_epoch: int, more: Continuation) -> RunConfig:
    """The settings of a run continued from `step`: it ends `more.epochs` epochs after the start of the epoch in
    progress. A new learning rate, schedule or decay factor, or a cosine schedule (which reached zero at the run's
    end), restarts the schedule at `step`: the cosine then runs over the added steps; otherwise it carries on."""
    tc = config.train
    changed = dataclasses.replace(tc, **{name: value for name, value in dataclasses.asdict(more).items()
                                         if name != "epochs" and value is not None})
    restart = changed.schedule is Schedule.COSINE or (changed.learning_rate, changed.schedule, changed.decay) != (
        tc.learning_rate, tc.schedule, tc.decay)
    return dataclasses.replace(config, train=dataclasses.replace(
        changed, epochs=step // steps_per_epoch + more.epochs, schedule_start=step if restart else tc.schedule_start))


def continued(run: Run, more: Continuation, steps_per_epoch: int, step: int | None = None) -> tuple[Run, StartPoint]:
    """A new run, "NAME (continued)", that carries on from where `run` ended (its curves, epoch snapshots and
    training time so far included), and where its training starts; a ConfigError when `run` cannot continue.
    `step`: the step a loaded model's file holds (a run trained here has it in its curves)."""
    if run.status not in CONTINUABLE or run.params is None:
        raise ConfigError(f"'{run.name}' is {run.status_text}: only a finished, stopped or interrupted run (or a "
                          "loaded model) can be trained further.")
    if not whole(more.epochs, 1):
        raise ConfigError("Add a whole number of epochs, at least one, to continue a run.")
    step = run.steps_done if step is None else step
    config = continuation_config(run.config, step, steps_per_epoch, more)
    copy = Run(continued_name(run.name), config, run.spec, params=run.params, opt_state=run.opt_state,
               history=list(run.history), snapshots=list(run.snapshots), compile_seconds=run.compile_seconds,
               train_seconds=run.train_seconds, samples_per_second=run.samples_per_second)
    return copy, StartPoint(run.params, run.opt_state, step, run.train_seconds)


def continuation_note(config: RunConfig, start: StartPoint) -> str:
    """What continuing from `start` with `config` does, in a sentence or two: with the optimiser state kept or a
    fresh optimiser, and from which step a new schedule runs."""
    tc, step = config.train, start.step
    optimizer = OPTIMIZER_LABELS[tc.optimizer]
    kept = (f"with its optimiser state ({optimizer})" if start.opt_state is not None else
            f"with a fresh {optimizer} optimiser: its optimiser state was not kept with it (saved by an older "
            "version or a sweep, or loaded from a model file), so the optimiser starts again and the curves may "
            "jump there")
    text = f"Continues from update {step:,} {kept}, to the end of epoch {tc.epochs}."
    if tc.schedule_start == step and step:
        text += (f" The learning rate starts again at {tc.learning_rate:g} there "
                 f"({SCHEDULE_LABELS[tc.schedule].lower()}"
                 f"{' over the added epochs' if tc.schedule is Schedule.COSINE else ''}).")
    return text


def ranked_by_validation(runs: list[Run]) -> list[Run]:
    """Best validation accuracy first; runs without one (diverged, or no validation images) last."""
    return sorted(runs, key=lambda run: -1 if run.val_accuracy is None else run.val_accuracy, reverse=True)


def ended(run: Run) -> bool:
    """Whether a run is over and measured (`Run.finish` has run, or its process died while it trained), so that it
    belongs in the history as it is."""
    if run.status.in_progress:
        return False
    return run.params is None or run.status in AT_STEP or run.test_accuracy is not None


def numbered_name(prefix: str, taken: Iterable[str]) -> str:
    """`prefix #N`, N one more than the highest number after `prefix #` among the `taken` names (1 when none is)."""
    start = f"{prefix} #"
    numbers = [int(name[len(start):]) for name in taken if name.startswith(start) and name[len(start):].isdecimal()]
    return f"{start}{max(numbers, default=0) + 1}"
