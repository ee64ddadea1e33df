"""A hyperparameter search's settings, as plain data without Optuna: the space of MLP settings (`SearchSpace`),
what every trial of a study shares (`SearchSetup`), the sampler and pruner kinds and a worker's budget. Frozen,
validated, and serialised to JSON; `core.search.study` runs them with Optuna.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from core.data.splits import SplitConfig
from core.errors import ConfigError
from core.networks.base import Activation, ModelConfig
from core.parsing import member_of, whole
from core.training.config import FLOAT32_MAX, FLOAT32_TINY, Optimizer, RunConfig, TrainConfig
from core.training.loop import epoch_steps

if TYPE_CHECKING:
    from optuna.trial import Trial

PRUNER_STARTUP_TRIALS = 2  # the median pruner lets this many trials finish before it compares
DROPOUT_STEP = 0.01  # dropout rates are drawn in steps of this
GRID_POINTS = 3  # values per range in a grid search (log-spaced for log ranges)


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
