"""Hyperparameter search with Optuna: a space of MLP settings, trials trained by the chunked engine and pruned at
its evaluation points, and studies kept in an SQLAlchemy database shared by any number of workers.

A study's `SearchSetup` (the space, the data split, epochs and evaluation points) is stored in the study itself, so
every worker that joins it (`python -m core search --study NAME --storage URL`, or the Search page) trains the
same kind of trial. Samplers, pruners and budgets belong to one worker. Every trial's run goes to the run history
under a name holding the study and the trial number; the trial keeps the run's id (`RUN_ID_ATTR`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, Trial, TrialState

from core.data.splits import SplitConfig, Splits
from core.errors import ConfigError, StudyError
from core.networks.base import Activation, Model, ModelConfig
from core.parsing import member_of, whole
from core.store.history import RunHistory
from core.training.config import FLOAT32_MAX, FLOAT32_TINY, Optimizer, RunConfig, TrainConfig
from core.training.loop import epoch_steps, train
from core.training.runs import Run

SETUP_ATTR = "digit_lab_setup"  # the study's SearchSetup, as a dict, in its user attributes
RUN_ID_ATTR = "run_id"  # a trial's run in the run history
RUN_NAME_ATTR = "run_name"
STATUS_ATTR = "status"  # how a trial's run ended: "finished", "pruned at epoch 0.50", "diverged at step 12"...
PRUNER_STARTUP_TRIALS = 2  # the median pruner lets this many trials finish before it compares
DROPOUT_STEP = 0.01  # dropout rates are drawn in steps of this
GRID_POINTS = 3  # values per range in a grid search (log-spaced for log ranges)
SQLITE_BUSY_SECONDS = 30.0  # how long a worker waits for another one's write to the shared SQLite file
CREATE_ATTEMPTS = 5  # tries at opening a storage while another worker creates its tables


class Sampler(enum.StrEnum):
    """How the next trial's settings are chosen."""

    TPE = "tpe"  # Tree-structured Parzen Estimator: learns from the trials so far
    RANDOM = "random"
    GRID = "grid"  # every combination of GRID_POINTS values per range


class Pruner(enum.StrEnum):
    """How a trial is stopped early at an evaluation point."""

    MEDIAN = "median"  # below the median of earlier trials at the same point
    HALVING = "halving"  # asynchronous successive halving: only the best third go on at each rung
    NONE = "none"


def _range(values, kind: type, what: str) -> tuple:
    """A (low, high) pair of `kind`, low <= high; a ConfigError naming `what` otherwise."""
    try:
        low, high = (kind(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"The {what} range must be two numbers, low and high; got {values!r}.") from None
    if kind is int and any(not whole(v, -math.inf) for v in values):
        raise ConfigError(f"The {what} range must be whole numbers, got {values!r}.")
    if not low <= high:
        raise ConfigError(f"The {what} range must go from low to high, got {low:g} to {high:g}.")
    return low, high


@dataclass(frozen=True)
class SearchSpace:
    """The MLP settings a search draws from. A range with low == high fixes that setting."""

    learning_rate: tuple[float, float] = (1e-4, 1e-1)  # log-uniform
    depth: tuple[int, int] = (1, 2)  # hidden layers
    width: tuple[int, int] = (32, 256)  # each hidden layer's width, log-uniform
    dropout: tuple[float, float] = (0.0, 0.3)
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    optimizers: tuple[Optimizer, ...] = (Optimizer.ADAM, Optimizer.MOMENTUM)
    momentum: tuple[float, float] = (0.8, 0.95)  # for Optimizer.MOMENTUM
    weight_decay: tuple[float, float] = (0.0, 0.0)  # log-uniform; (0, 0): none
    activation: Activation = Activation.RELU

    def __post_init__(self):
        ranges = {"learning_rate": (float, "learning-rate"), "depth": (int, "depth"), "width": (int, "width"),
                  "dropout": (float, "dropout"), "momentum": (float, "momentum"),
                  "weight_decay": (float, "weight-decay")}
        for name, (kind, what) in ranges.items():
            object.__setattr__(self, name, _range(getattr(self, name), kind, what))
        try:
            batch_sizes, optimizers = tuple(self.batch_sizes), tuple(self.optimizers)
        except TypeError:
            raise ConfigError("Batch sizes and optimisers are lists.") from None
        object.__setattr__(self, "optimizers", tuple(member_of(Optimizer, o, "optimiser") for o in optimizers))
        object.__setattr__(self, "activation", member_of(Activation, self.activation, "activation"))
        object.__setattr__(self, "batch_sizes", batch_sizes)
        decay_low, decay_high = self.weight_decay
        checks = [
            (self.learning_rate[0] >= FLOAT32_TINY and self.learning_rate[1] <= FLOAT32_MAX,
             "Learning rates must be positive numbers a float32 can hold."),
            (self.depth[0] >= 1, "A searched MLP has at least one hidden layer."),
            (self.width[0] >= 1, "Hidden layers are at least 1 unit wide."),
            (self.dropout[0] >= 0 and self.dropout[1] < 1, "Dropout rates go from 0 up to (not including) 1."),
            (batch_sizes and all(whole(b, 1) for b in batch_sizes) and len(set(batch_sizes)) == len(batch_sizes),
             "Batch sizes must be whole numbers, at least 1, each once (give at least one)."),
            (optimizers and len(set(self.optimizers)) == len(optimizers), "Give each optimiser once, at least one."),
            (self.momentum[0] >= 0 and self.momentum[1] < 1, "Momentum must be in [0, 1)."),
            (decay_high == 0 or 0 < decay_low <= decay_high <= FLOAT32_MAX,
             "The weight-decay range is log-uniform: both ends above 0, or both 0 for none."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def searches_momentum(self) -> bool:
        return Optimizer.MOMENTUM in self.optimizers

    @property
    def searches_weight_decay(self) -> bool:
        return self.weight_decay[1] > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> SearchSpace:
        return _from_dict(cls, d, "search space")

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(_json_object(text, "search space"))

    def suggest(self, trial: Trial) -> dict:
        """Draw one trial's settings (Optuna's suggest_* calls; momentum only for SGD with momentum)."""
        depth = trial.suggest_int("depth", *self.depth)
        params = {
            "learning_rate": trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            "depth": depth,
            **{f"width_{i}": trial.suggest_int(f"width_{i}", *self.width, log=True) for i in range(1, depth + 1)},
            "dropout": trial.suggest_float("dropout", *self.dropout, step=DROPOUT_STEP),
            "batch_size": trial.suggest_categorical("batch_size", self.batch_sizes),
            "optimizer": trial.suggest_categorical("optimizer", [str(o) for o in self.optimizers]),
        }
        if params["optimizer"] == Optimizer.MOMENTUM:
            params["momentum"] = trial.suggest_float("momentum", *self.momentum)
        if self.searches_weight_decay:
            params["weight_decay"] = trial.suggest_float("weight_decay", *self.weight_decay, log=True)
        return params

    def grid(self, points: int = GRID_POINTS) -> dict[str, list]:
        """The grid sampler's values: `points` per range (log-spaced where the range is log-uniform)."""
        def spaced(low, high, log=False, kind=float):
            values = (np.geomspace if log else np.linspace)(low, high, points)
            return sorted({kind(round(v)) if kind is int else float(v) for v in values})

        grid = {
            "learning_rate": spaced(*self.learning_rate, log=True),
            "depth": list(range(self.depth[0], self.depth[1] + 1)),
            **{f"width_{i}": spaced(*self.width, log=True, kind=int) for i in range(1, self.depth[1] + 1)},
            "dropout": sorted({round(v, 2) for v in spaced(*self.dropout)}),
            "batch_size": list(self.batch_sizes),
            "optimizer": [str(o) for o in self.optimizers],
        }
        if self.searches_momentum:
            grid["momentum"] = spaced(*self.momentum)
        if self.searches_weight_decay:
            grid["weight_decay"] = spaced(*self.weight_decay, log=True)
        return grid


@dataclass(frozen=True)
class SearchSetup:
    """What every trial of a study shares: the space, the data split, epochs and evaluation points per epoch."""

    space: SearchSpace = field(default_factory=SearchSpace)
    data: SplitConfig = field(default_factory=lambda: SplitConfig(val_size=5000, train_size=10000))
    epochs: int = 2
    evaluations_per_epoch: int = 4  # validation (and pruning) points per epoch
    seed: int = 0  # every trial's initial weights and batch order, so trials differ by their settings alone

    def __post_init__(self):
        if not whole(self.epochs, 1) or not whole(self.evaluations_per_epoch, 1):
            raise ConfigError("Epochs and evaluations per epoch must be whole numbers, at least 1.")
        if self.data.val_size < 1:
            raise ConfigError("A search compares trials by validation accuracy: hold out some validation images.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> SearchSetup:
        d = dict(d)
        parts = {"space": SearchSpace.from_dict(d.pop("space", {})),
                 "data": _from_dict(SplitConfig, d.pop("data", {}), "data split")}
        return _from_dict(cls, {**d, **parts}, "search setup")

    @classmethod
    def from_json(cls, text: str) -> SearchSetup:
        return cls.from_dict(_json_object(text, "search setup"))

    def run_config(self, params: dict, n_train: int) -> RunConfig:
        """The run a trial's settings (`SearchSpace.suggest`'s dict) describe, on `n_train` training images."""
        optimizer = Optimizer(params["optimizer"])
        hidden = tuple(params[f"width_{i}"] for i in range(1, params["depth"] + 1))
        model = ModelConfig("mlp", hidden, self.space.activation, dropout=(params["dropout"],) * len(hidden))
        model = dataclasses.replace(model, init=model.network.recommended_init(model))
        tc = TrainConfig(optimizer=optimizer, learning_rate=params["learning_rate"],
                         momentum=params.get("momentum", TrainConfig.momentum),
                         weight_decay=params.get("weight_decay", 0.0), batch_size=params["batch_size"],
                         epochs=self.epochs, seed=self.seed)
        every = max(1, epoch_steps(tc, n_train) // self.evaluations_per_epoch)
        return RunConfig(model, self.data, dataclasses.replace(tc, eval_every=every))


def _json_object(text: str, what: str) -> dict:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Not a valid {what}: {exc}.") from None
    if not isinstance(d, dict):
        raise ConfigError(f"Not a valid {what}: a JSON object is needed.")
    return d


def _from_dict(cls, d: dict, what: str):
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"Unknown {what} setting(s): {', '.join(sorted(unknown))}.")
    return cls(**d)


def make_sampler(kind: Sampler, space: SearchSpace, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Optuna's sampler of that kind. TPE runs with the constant liar, so parallel workers do not all try the same
    region while each other's trials are still running."""
    kind = member_of(Sampler, kind, "sampler")
    if kind is Sampler.TPE:
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if kind is Sampler.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler(space.grid(), seed=seed)


def make_pruner(kind: Pruner) -> optuna.pruners.BasePruner:
    kind = member_of(Pruner, kind, "pruner")
    if kind is Pruner.MEDIAN:
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS)
    if kind is Pruner.HALVING:
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class Budget:
    """How much one worker runs: a number of trials, or minutes (no trial starts after them), or both."""

    trials: int | None = None
    minutes: float | None = None

    def __post_init__(self):
        if self.trials is None and self.minutes is None:
            raise ConfigError("Give a budget: a number of trials or of minutes.")
        if self.trials is not None and not whole(self.trials, 1):
            raise ConfigError("The number of trials must be a whole number, at least 1.")
        if self.minutes is not None and not (isinstance(self.minutes, int | float) and 0 < self.minutes < math.inf):
            raise ConfigError("The minutes must be a number above 0.")

    @property
    def seconds(self) -> float | None:
        return None if self.minutes is None else 60 * self.minutes


def storage_url(history: RunHistory) -> str:
    """The default study storage: the run history's own SQLite file (opened as the history first, so that the
    history's checks find its own schema there before Optuna adds its tables)."""
    return f"sqlite:///{Path(history.path).absolute()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at an SQLAlchemy URL (`sqlite:///path`, `postgresql+psycopg://user@host/db`...).
    A StudyError says why it cannot be opened."""
    sqlite = url.startswith("sqlite")
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_SECONDS}} if sqlite else None)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError) as exc:
            # workers started together on a new database race to create Optuna's tables: the loser's CREATE
            # fails ("already exists", a duplicate type on PostgreSQL); a moment later the tables are there
            racing = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in str(exc)
            if not racing or attempt == CREATE_ATTEMPTS - 1:
                raise _storage_error(url, exc) from None
            time.sleep(0.5 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, RuntimeError) as exc:
            raise _storage_error(url, exc) from None
    raise AssertionError("unreachable")


def _storage_error(url: str, exc: Exception) -> StudyError:
    return StudyError(f"Cannot open the study storage {_without_password(url)}: {str(exc).splitlines()[0]}")


def _without_password(url: str) -> str:
    try:
        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The studies in a storage, oldest first."""
    return [s.study_name for s in storage.get_all_studies()]


def open_study(storage: optuna.storages.BaseStorage, name: str, setup: SearchSetup | None = None,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Study, SearchSetup]:
    """The study `name` and its setup: created with `setup` when it does not exist yet; an existing study keeps the
    setup stored in it. Without `setup`, the study must exist (a StudyError otherwise)."""
    name = name.strip()
    if not name:
        raise ConfigError("Name the study.")
    if setup is None and name not in study_names(storage):
        raise StudyError(f"There is no study '{name}' in this storage.")
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                    sampler=sampler, pruner=pruner)
        if study.direction is not optuna.study.StudyDirection.MAXIMIZE:
            raise StudyError(f"The study '{name}' was not made by Digit Lab (it minimises).")
        stored = study.user_attrs.get(SETUP_ATTR)
        if stored is None:
            if setup is None:
                raise StudyError(f"The study '{name}' was not made by Digit Lab (it holds no search setup).")
            study.set_user_attr(SETUP_ATTR, setup.to_dict())
            return study, setup
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StudyError(f"The study storage cannot be used: {str(exc).splitlines()[0]}") from None
    try:
        return study, SearchSetup.from_dict(stored)
    except (ConfigError, TypeError) as exc:
        raise StudyError(f"The study '{name}' holds a search setup this Digit Lab cannot read: {exc}") from None


def trial_run_name(study: str, number: int, run_config: RunConfig, splits: Splits) -> str:
    """e.g. 'digits #3 784-128-10 relu': the study, the trial number and the network."""
    return f"{study} #{number} {Model(run_config.model, splits.spec).describe()}"


def search(study: optuna.Study, setup: SearchSetup, splits: Splits, history: RunHistory, budget: Budget, *,
           on_chunk: Callable[[int, Run], None] = lambda number, run: None,
           on_trial: Callable[[FrozenTrial], None] = lambda trial: None,
           stop_requested: Callable[[], bool] = lambda: False) -> None:
    """Run this worker's trials of `study` (Optuna's `optimize`, which other workers may run on the same study at
    the same time). Each trial trains with the chunked engine, reports the validation accuracy at every evaluation
    point and is pruned when the study's pruner says so; its run (pruned ones stopped where they were) goes to
    `history`. `on_chunk(trial number, run)` hears each chunk; `on_trial` each ended trial; `stop_requested()`,
    read after each trial, ends the search there. An exception that ends a trial midway (a Stop on a page) marks
    it failed, with its run saved as stopped, and is raised."""
    current: list[int] = []  # the trial being trained, until it is told

    def objective(trial: Trial) -> float:
        current[:] = [trial.number]
        config = setup.run_config(setup.space.suggest(trial), len(splits.y_train))
        run = Run(name=trial_run_name(study.study_name, trial.number, config, splits), config=config,
                  spec=splits.spec)
        trial.set_user_attr(RUN_ID_ATTR, run.run_id)
        trial.set_user_attr(RUN_NAME_ATTR, run.name)
        pruned, evaluations = False, 0
        try:
            for progress in train(config, splits):
                run.record(progress)
                on_chunk(trial.number, run)
                if progress.val_accuracy is not None:
                    evaluations += 1
                    trial.report(progress.val_accuracy, evaluations)
                    if not progress.done and trial.should_prune():
                        pruned = True
                        break
        finally:
            run.finish(splits)
            status = f"pruned at epoch {run.epochs_completed:.2f}" if pruned else run.status_text
            trial.set_user_attr(STATUS_ATTR, status)
            if run.history:  # not stopped while it compiled
                history.save(run)
        if pruned:
            raise optuna.TrialPruned(status)
        return math.nan if run.val_accuracy is None else run.val_accuracy  # NaN (diverged): a failed trial

    def ended(study_: optuna.Study, trial: FrozenTrial) -> None:
        current.clear()
        on_trial(trial)
        if stop_requested():
            study_.stop()

    try:
        study.optimize(objective, n_trials=budget.trials, timeout=budget.seconds, callbacks=[ended],
                       catch=(), gc_after_trial=False)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StudyError(f"The study storage failed: {str(exc).splitlines()[0]}") from None
    except BaseException:
        if current:  # stopped inside a trial by something Optuna does not catch: do not leave it running
            with contextlib.suppress(RuntimeError, ValueError, sqlalchemy.exc.SQLAlchemyError):  # already told
                study.tell(current[0], state=TrialState.FAIL)
        raise
