"""The training engine: optax optimisers, chunked jit-compiled training with `lax.scan`, and evaluation.

`train(config, splits)` is a generator of `Progress` records, one per chunk of steps. Each record carries the
parameters trained so far, so a consumer that stops iterating keeps its model. Chunks all have the same
shapes and run one ahead-of-time compiled program: nothing recompiles after the first chunk.

`run_chunks` is the chunk loop itself, for any number of variants trained together (a run is one; a sweep's
are many): it times each chunk, checks it for divergence and validates when due, yielding a `ChunkResult`
from which `progress_for` makes each variant's `Progress`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import jax
import numpy as np
import optax

from core.data.spec import DataSpec
from core.data.splits import Splits, check_split
from core.errors import ConfigError
from core.networks.base import Model, Params, seed_key
from core.training.budget import check_budget
from core.training.config import RunConfig, TrainConfig
from core.training.evaluation import EVAL_BATCH, loss_and_accuracy
from core.training.optimizers import fresh_state_at, learning_rate_schedule, make_optimizer
from core.training.programs import (
    TrainState,
    all_finite,
    compiled_chunk,
    device_mesh,
    dropout_key_data,
    program_settings,
    replicated,
    steps_per_chunk,
)
from core.training.statistics import PROBE_BATCHES, bin_edges, compiled_probe, measured, with_edges
from core.training.status import RunStatus

T = TypeVar("T")
PerVariant = tuple[np.ndarray, np.ndarray]  # per-variant values, e.g. (losses, accuracies) each of shape (V,)


@dataclass(frozen=True)
class Progress:
    """One record per chunk. `params` are the parameters trained so far (if diverged, those from before the chunk
    that diverged: the last ones checked finite)."""

    step: int
    total_steps: int
    epoch: float  # fractional epochs completed
    train_loss: float  # mean over the chunk's steps
    train_accuracy: float
    val_loss: float | None  # set when validation ran after this chunk
    val_accuracy: float | None
    learning_rate: float
    elapsed: float  # training seconds so far, validation included, compilation excluded
    compile_seconds: float
    samples_per_second: float  # training images processed per second of the training steps alone
    status: RunStatus  # RUNNING, FINISHED or DIVERGED
    diverged_at: int | None  # the step whose loss or update was not finite, when DIVERGED
    params: Params = field(repr=False)
    opt_state: optax.OptState | None = field(repr=False, default=None)  # the optimiser's state that goes with `params`
    statistics: tuple = ()  # (step, layer statistics) measured since the previous record (`train(statistics=True)`)

    @property
    def done(self) -> bool:
        return self.status is not RunStatus.RUNNING

    @property
    def diverged(self) -> bool:
        return self.status is RunStatus.DIVERGED


def first_bad_step(losses: np.ndarray, params_finite: bool) -> int:
    """The chunk's first step (1-based) whose loss or update is not finite; 0 when all are. A step's loss comes
    before its update, so a non-finite update in the chunk's last step shows only in the parameters after it."""
    finite = np.isfinite(losses)
    if not finite.all():
        return int(np.argmin(finite)) + 1
    return 0 if params_finite else len(losses)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The shuffled order of training examples for one epoch: a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class Chunk(NamedTuple):
    """One compiled call's worth of steps: batch indices (K, B), which steps are real, and where it ends."""

    batch_index: np.ndarray
    active: np.ndarray
    epoch_end: bool


def chunks(tc: TrainConfig, n: int, k: int, start: int = 0) -> Iterator[Chunk]:
    """Every epoch's shuffled batches, K steps at a time, from step `start` on (a continued run: it must be where a
    chunk begins); the last chunk of an epoch is padded and masked."""
    steps_per_epoch = n // tc.batch_size
    chunks_per_epoch = -(-steps_per_epoch // k)
    first_epoch, offset = divmod(start, steps_per_epoch)
    if offset % k:
        raise ConfigError(f"Cannot continue from step {start:,}: it is not where a chunk of {k} steps begins, so the "
                          "batches would not line up with those of an uninterrupted run.")
    for epoch in range(first_epoch, tc.epochs):
        shuffled = epoch_order(tc.batch_order_seed, epoch, n)
        order = shuffled[: steps_per_epoch * tc.batch_size].reshape(steps_per_epoch, -1)
        padded = np.zeros((chunks_per_epoch * k, tc.batch_size), np.int32)
        padded[:steps_per_epoch] = order
        for c in range(offset // k if epoch == first_epoch else 0, chunks_per_epoch):
            active = np.arange(c * k, (c + 1) * k) < steps_per_epoch
            yield Chunk(padded[c * k:(c + 1) * k], active, c == chunks_per_epoch - 1)


def epoch_steps(tc: TrainConfig, n: int) -> int:
    """Full batches per epoch of n images (the last partial batch is dropped)."""
    if n < tc.batch_size:
        raise ConfigError(f"The batch size ({tc.batch_size}) is larger than the training set ({n} images).")
    return n // tc.batch_size


def check_run(config: RunConfig, train_labels: np.ndarray, spec: DataSpec) -> None:
    """A ConfigError when the run cannot train on training images with these labels (its split cannot be made, its
    batch is larger than the training set it leaves, its network cannot take these images or would not fit the memory
    budget, or it asks for more devices than there are), from the label counts and the data's description alone."""
    check_budget(config, spec, epoch_steps(config.train, check_split(train_labels, config.data, spec)))
    device_mesh(config.train.devices)


def validation_due(tc: TrainConfig, step: int, steps_in_chunk: int, epoch_end: bool) -> bool:
    """Validate at each epoch's end, and also each time the step count passes a multiple of eval_every."""
    passed = tc.eval_every and step // tc.eval_every > (step - steps_in_chunk) // tc.eval_every
    return bool(epoch_end or passed)


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk did to every variant trained together (V of them; a single run is one)."""

    step_before: int
    step_after: int
    losses: np.ndarray  # (steps, V): the chunk's active steps
    correct: np.ndarray  # (steps, V): correctly classified training images per step
    first_bad_steps: np.ndarray  # (V,): the chunk's first step whose loss or update was not finite; 0 when none
    validation: PerVariant | None  # (losses, accuracies) after the chunk, when validation ran
    elapsed: float  # training seconds so far, validation included
    stepping: float  # the steps' seconds so far, validation excluded

    def diverged(self, variant: int) -> bool:
        return bool(self.first_bad_steps[variant])


def compile_timed(compile_chunk: Callable[[], T],
                  validate_sample: Callable[[], object] | None) -> tuple[T, float]:
    """The compiled chunk program and the seconds spent compiling it and, when given, the validation pass (run on a
    sample, so that no compilation lands inside training time)."""
    started = time.perf_counter()
    program = compile_chunk()
    if validate_sample is not None:
        validate_sample()
    return program, time.perf_counter() - started


def run_chunks(tc: TrainConfig, n: int, k: int, advance: Callable[[Chunk, np.ndarray], PerVariant],
               finite: Callable[[], np.ndarray],
               validate: Callable[[], PerVariant] | None, start: int = 0,
               elapsed: float = 0.0) -> Iterator[ChunkResult]:
    """Train chunk by chunk from step `start` (with `elapsed` training seconds behind it): `advance(chunk,
    step_numbers)` runs one chunk for every variant and returns its per-step (losses, correct counts), each (K, V);
    `finite()` tells which variants' parameters are finite (V,); `validate()` gives per-variant (losses,
    accuracies) (None: no validation images). Validation runs when due and some variant is still finite."""
    stepping, step = 0.0, start
    for chunk in chunks(tc, n, k, start):
        started = time.perf_counter()
        losses, correct = advance(chunk, np.arange(step, step + k, dtype=np.int32))
        losses, correct = losses[chunk.active], correct[chunk.active]
        spent = time.perf_counter() - started
        stepping += spent
        elapsed += spent
        params_finite = finite()
        bad_steps = np.array([first_bad_step(losses[:, v], bool(params_finite[v])) for v in range(losses.shape[1])])
        validation = None
        if (validate is not None and not bad_steps.all()
                and validation_due(tc, step + len(losses), len(losses), chunk.epoch_end)):
            started = time.perf_counter()
            validation = validate()
            elapsed += time.perf_counter() - started
        yield ChunkResult(step, step + len(losses), losses, correct, bad_steps, validation, elapsed, stepping)
        step += len(losses)


@dataclass(frozen=True)
class RunShape:
    """What every Progress record of one run shares."""

    tc: TrainConfig
    steps_per_epoch: int
    compile_seconds: float
    first_step: int = 0  # where training began (a continued run: where it went on)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.tc.epochs

    @functools.cached_property
    def schedule(self) -> Callable:
        """Step -> learning rate."""
        return learning_rate_schedule(self.tc, self.steps_per_epoch)


def progress_for(result: ChunkResult, variant: int, shape: RunShape, params: Params,
                 statistics: tuple = (), opt_state: optax.OptState | None = None) -> Progress:
    """One variant's Progress after a chunk, with its `params` (the last checked finite) and their `opt_state`. A
    variant that diverged in the chunk stays at the step the chunk began from, with the chunk's finite losses and no
    validation."""
    losses, correct = result.losses[:, variant], result.correct[:, variant]
    bad_step = int(result.first_bad_steps[variant])
    if bad_step:
        finite = np.isfinite(losses)
        losses, correct, step, validation = losses[finite], correct[finite], result.step_before, None
    else:
        step, validation = result.step_after, result.validation
    seen = len(losses) * shape.tc.batch_size
    return Progress(
        step=step,
        total_steps=shape.total_steps,
        epoch=step / shape.steps_per_epoch,
        train_loss=float(losses.mean()) if len(losses) else float("nan"),
        train_accuracy=float(correct.sum() / seen) if seen else float("nan"),
        val_loss=None if validation is None else float(validation[0][variant]),
        val_accuracy=None if validation is None else float(validation[1][variant]),
        learning_rate=float(shape.schedule(max(step - 1, 0))),
        elapsed=result.elapsed,
        compile_seconds=shape.compile_seconds,
        samples_per_second=((step - shape.first_step) * shape.tc.batch_size / result.stepping if result.stepping
                            else 0.0),
        status=(RunStatus.DIVERGED if bad_step else
                RunStatus.FINISHED if step == shape.total_steps else RunStatus.RUNNING),
        diverged_at=result.step_before + bad_step if bad_step else None,
        params=params,
        opt_state=opt_state,
        statistics=statistics,
    )


@dataclass(frozen=True)
class StartPoint:
    """Where training starts when not from the seed's initial weights: parameters, the optimiser's state that goes
    with them (None: a fresh optimiser) and the step and training seconds reached. Batches and dropout masks are
    drawn from (seed, epoch) and (seed, step), so a run continued from here trains exactly as it would have."""

    params: Params
    opt_state: optax.OptState | None = None
    step: int = 0
    elapsed: float = 0.0


def train(config: RunConfig, splits: Splits, *, start: StartPoint | None = None,
          statistics: bool = False) -> Iterator[Progress]:
    """Train, yielding a `Progress` after every chunk; the last record has status finished or diverged. With
    `statistics`, each record also holds the layer statistics after its chunk (the first: at its start too)."""
    tc = config.train
    n = len(splits.y_train)
    steps_per_epoch = epoch_steps(tc, n)
    check_budget(config, splits.spec, steps_per_epoch)
    model = Model(config.model, splits.spec)
    k = steps_per_chunk(tc, model, steps_per_epoch)
    optimizer = make_optimizer(tc, model, steps_per_epoch)
    start = start or StartPoint(model.init(seed_key(tc.seed)))
    if start.step >= steps_per_epoch * tc.epochs:
        raise ConfigError(f"The run has trained {start.step:,} steps already; it ends at step "
                          f"{steps_per_epoch * tc.epochs:,}: train for more epochs.")
    params = start.params
    opt_state = (start.opt_state if start.opt_state is not None else
                 fresh_state_at(optimizer.init(params), start.step))
    state = TrainState(params, opt_state, dropout_key_data(tc.seed))
    x_train, y_train = splits.train_on_device
    if tc.devices > 1:  # the compiled chunk takes them replicated on every device of its mesh
        state, x_train, y_train = jax.device_put((state, x_train, y_train), replicated(device_mesh(tc.devices)))

    def validate() -> PerVariant:
        loss, accuracy = loss_and_accuracy(state.params, model, splits.x_val, splits.y_val)
        return np.array([loss]), np.array([accuracy])

    validated = len(splits.y_val) > 0
    program, compile_seconds = compile_timed(
        lambda: compiled_chunk(model, tc, n, k),
        (lambda: loss_and_accuracy(params, model, splits.x_val[:EVAL_BATCH], splits.y_val[:EVAL_BATCH]))
        if validated else None)
    shape = RunShape(tc, steps_per_epoch, compile_seconds, start.step)

    batches = next(chunks(tc, n, k, start.step)).batch_index[:PROBE_BATCHES] if statistics else None  # the probe's
    if statistics:
        probe = compiled_probe(model.for_programs(), program_settings(tc), steps_per_epoch)
        edges = bin_edges(model, params, splits.x_train[batches[0]])

        def measure(step: int) -> tuple:
            return step, measured(probe(state, x_train, y_train, batches, edges))

        initial_step, initial = measure(start.step)
        pending = [(initial_step, with_edges(initial, edges))]

    def advance(chunk: Chunk, step_numbers: np.ndarray) -> PerVariant:
        nonlocal state, batches
        state, losses, correct = program(state, x_train, y_train, chunk.batch_index, chunk.active, step_numbers)
        batches = chunk.batch_index[:PROBE_BATCHES]
        return np.asarray(losses)[:, None], np.asarray(correct)[:, None]

    for result in run_chunks(tc, n, k, advance, lambda: np.asarray(all_finite(state.params))[None],
                             validate if validated else None, start.step, start.elapsed):
        if result.diverged(0):  # the parameters from before the chunk: `params`, the last ones checked finite
            yield progress_for(result, 0, shape, params, tuple(pending) if statistics else (), opt_state)
            return
        params, opt_state = state.params, state.opt_state
        if statistics:
            pending.append(measure(result.step_after))
        yield progress_for(result, 0, shape, params, tuple(pending) if statistics else (), opt_state)
        pending = []
