"""A run's settings: the training config and the run config that bundles network, split and training.
Frozen, validated, and serialised to JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field

import numpy as np

from core.data.splits import MAX_SEED, SplitConfig
from core.errors import ConfigError
from core.networks.base import ModelConfig
from core.parsing import member_of, whole


class Optimizer(enum.StrEnum):
    """The optimisers a run trains with (optax's)."""

    SGD = "sgd"
    MOMENTUM = "momentum"  # SGD with momentum, Nesterov's if asked
    ADAM = "adam"


OPTIMIZER_LABELS = {Optimizer.SGD: "SGD", Optimizer.MOMENTUM: "SGD with momentum", Optimizer.ADAM: "Adam"}


class Schedule(enum.StrEnum):
    """How the learning rate changes over a run."""

    CONSTANT = "constant"
    EXPONENTIAL = "exponential"  # a factor per epoch
    COSINE = "cosine"  # down to zero at the run's end


SCHEDULE_LABELS = {Schedule.CONSTANT: "Constant", Schedule.EXPONENTIAL: "Exponential decay per epoch",
                   Schedule.COSINE: "Cosine to zero"}

FLOAT32_MAX = float(np.finfo(np.float32).max)  # a learning rate above it is infinity inside the program


FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # and one below it (1.2e-38) zero, or nearly: nothing would train


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule and loop settings."""

    optimizer: Optimizer = Optimizer.ADAM  # its string is taken too: TrainConfig("sgd")
    learning_rate: float = 1e-3
    momentum: float = 0.9  # for Optimizer.MOMENTUM
    nesterov: bool = False  # for Optimizer.MOMENTUM
    schedule: Schedule = Schedule.CONSTANT  # its string is taken too
    decay: float = 0.97  # learning-rate factor per epoch for Schedule.EXPONENTIAL
    weight_decay: float = 0.0  # L2 penalty coefficient
    schedule_start: int = 0  # the step the schedule starts from: a run continued with a new one restarts it there
    batch_size: int = 50
    epochs: int = 3
    seed: int = 0  # initial weights, and the batch order unless shuffle_seed is set
    shuffle_seed: int | None = None  # the batch order's seed (a sweep's seed variants share one order)
    eval_every: int = 0  # also validate at the first chunk end after every N steps; 0 = at epoch ends only
    steps_per_chunk: int = 0  # 0 = chosen from the network's cost
    devices: int = 1  # devices each batch is split across (data parallel: the same curves, to float rounding)

    def __post_init__(self):
        object.__setattr__(self, "optimizer", member_of(Optimizer, self.optimizer, "optimiser"))
        object.__setattr__(self, "schedule", member_of(Schedule, self.schedule, "schedule"))
        checks = [
            (FLOAT32_TINY <= self.learning_rate <= FLOAT32_MAX,
             "The learning rate must be a positive number a float32 can hold "
             f"({FLOAT32_TINY:.1e} to {FLOAT32_MAX:.1e})."),
            (0 <= self.momentum < 1, "Momentum must be in [0, 1)."),
            (0 < self.decay <= 1, "The decay factor must be in (0, 1]."),
            (0 <= self.weight_decay <= FLOAT32_MAX,
             "Weight decay must be zero or a positive number a float32 can hold."),
            (whole(self.batch_size, 1), "The batch size must be a whole number, at least 1."),
            (whole(self.epochs, 1), "Train for a whole number of epochs, at least one."),
            (whole(self.eval_every, 0) and whole(self.steps_per_chunk, 0) and whole(self.schedule_start, 0),
             "Step counts must be whole numbers, 0 or more."),
            (all(whole(seed, 0, MAX_SEED) for seed in (self.seed, self.batch_order_seed)),
             f"Seeds must be whole numbers from 0 to {MAX_SEED}."),
            (whole(self.devices, 1), "The number of devices must be a whole number, at least 1."),
            (not whole(self.devices, 1) or not whole(self.batch_size, 1) or self.batch_size % self.devices == 0,
             f"The batch size ({self.batch_size}) must split evenly across the {self.devices} devices."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def batch_order_seed(self) -> int:
        return self.seed if self.shuffle_seed is None else self.shuffle_seed


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run: network, data split and training. Serialises to JSON."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: SplitConfig = field(default_factory=SplitConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        parts = {}
        for name, part in (("model", ModelConfig), ("data", SplitConfig), ("train", TrainConfig)):
            values = dict(d.get(name, {}))
            unknown = set(values) - {f.name for f in dataclasses.fields(part)}
            if unknown:
                raise ConfigError(f"Unknown {name} setting(s): {', '.join(sorted(unknown))}.")
            parts[name] = part(**values)
        return cls(**parts)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise ConfigError(f"Not a valid run configuration: {exc}.") from None
