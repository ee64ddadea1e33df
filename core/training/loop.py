"""The training engine: optax optimisers, chunked jit-compiled training with `lax.scan`, and evaluation.

`train(config, splits)` is a generator of `Progress` records, one per chunk of steps. Each record carries the
parameters trained so far, so a consumer that stops iterating keeps its model. Chunks all have the same
shapes and run one ahead-of-time compiled program: nothing recompiles after the first chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import numpy as np

from core.data.splits import Splits, check_split
from core.errors import ConfigError
from core.data.spec import DataSpec
from core.networks.base import Model, Params, seed_key
from core.training.config import RunConfig, TrainConfig
from core.training.evaluation import EVAL_BATCH, loss_and_accuracy
from core.training.optimizers import learning_rate_schedule, make_optimizer
from core.training.programs import (
    TrainState,
    all_finite,
    compiled_chunk,
    dropout_key_data,
    steps_per_chunk,
)
from core.training.status import RunStatus


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


def chunks(tc: TrainConfig, n: int, k: int) -> Iterator[Chunk]:
    """Every epoch's shuffled batches, K steps at a time; the last chunk of an epoch is padded and masked."""
    steps_per_epoch = n // tc.batch_size
    chunks_per_epoch = -(-steps_per_epoch // k)
    for epoch in range(tc.epochs):
        order = epoch_order(tc.batch_order_seed, epoch, n)[: steps_per_epoch * tc.batch_size].reshape(steps_per_epoch, -1)
        padded = np.zeros((chunks_per_epoch * k, tc.batch_size), np.int32)
        padded[:steps_per_epoch] = order
        for c in range(chunks_per_epoch):
            active = np.arange(c * k, (c + 1) * k) < steps_per_epoch
            yield Chunk(padded[c * k:(c + 1) * k], active, c == chunks_per_epoch - 1)


def epoch_steps(tc: TrainConfig, n: int) -> int:
    """Full batches per epoch of n images (the last partial batch is dropped)."""
    if n < tc.batch_size:
        raise ConfigError(f"The batch size ({tc.batch_size}) is larger than the training set ({n} images).")
    return n // tc.batch_size


def check_run(config: RunConfig, train_labels: np.ndarray, spec: DataSpec) -> None:
    """A ConfigError when the run cannot train on training images with these labels (its split cannot be made, its
    batch is larger than the training set it leaves, or its network cannot take these images), from the label
    counts and the data's description alone."""
    epoch_steps(config.train, check_split(train_labels, config.data, spec))
    Model(config.model, spec).weight_shapes()


def validation_due(tc: TrainConfig, step: int, steps_in_chunk: int, epoch_end: bool) -> bool:
    """Validate at each epoch's end, and also each time the step count passes a multiple of eval_every."""
    passed = tc.eval_every and step // tc.eval_every > (step - steps_in_chunk) // tc.eval_every
    return bool(epoch_end or passed)


def train(config: RunConfig, splits: Splits, *, initial_params: Params | None = None) -> Iterator[Progress]:
    """Train, yielding a `Progress` after every chunk; the last record has status finished or diverged."""
    tc = config.train
    n = len(splits.y_train)
    steps_per_epoch = epoch_steps(tc, n)
    model = Model(config.model, splits.spec)
    k = steps_per_chunk(tc, model, steps_per_epoch)
    total_steps = steps_per_epoch * tc.epochs
    optimizer = make_optimizer(tc, model, steps_per_epoch)
    schedule = learning_rate_schedule(tc, steps_per_epoch)
    params = initial_params if initial_params is not None else model.init(seed_key(tc.seed))
    state = TrainState(params, optimizer.init(params), dropout_key_data(tc.seed))
    x_train, y_train = splits.train_on_device

    started = time.perf_counter()
    compiled = compiled_chunk(model, tc, n, k)
    if len(splits.y_val):  # compile the validation pass too, so no compilation lands inside training time
        loss_and_accuracy(params, model, splits.x_val[:EVAL_BATCH], splits.y_val[:EVAL_BATCH])
    compile_seconds = time.perf_counter() - started

    elapsed, stepping, step = 0.0, 0.0, 0  # all training time; the steps' alone
    for chunk in chunks(tc, n, k):
        t0 = time.perf_counter()
        previous = state.params
        state, losses, correct = compiled(state, x_train, y_train, chunk.batch_index, chunk.active,
                                          np.arange(step, step + len(chunk.active), dtype=np.int32))
        losses, correct = np.asarray(losses)[chunk.active], np.asarray(correct)[chunk.active]
        spent = time.perf_counter() - t0
        stepping += spent
        elapsed += spent
        bad_step = first_bad_step(losses, bool(all_finite(state.params)))
        if bad_step:
            finite = np.isfinite(losses)
            yield progress_record(step, total_steps, steps_per_epoch, losses[finite], correct[finite], tc, None,
                                  schedule, elapsed, stepping, compile_seconds, previous, diverged_at=step + bad_step)
            return
        step += len(losses)
        validation = None
        if validation_due(tc, step, len(losses), chunk.epoch_end) and len(splits.y_val):
            t0 = time.perf_counter()
            validation = loss_and_accuracy(state.params, model, splits.x_val, splits.y_val)
            elapsed += time.perf_counter() - t0
        yield progress_record(step, total_steps, steps_per_epoch, losses, correct, tc, validation, schedule,
                              elapsed, stepping, compile_seconds, state.params)


def progress_record(step, total_steps, steps_per_epoch, losses, correct, tc, validation, schedule, elapsed,
                    stepping, compile_seconds, params, diverged_at: int | None = None) -> Progress:
    """The Progress after a chunk, from its per-step losses and correct counts: finished at the last step, diverged
    when `diverged_at` is given."""
    seen = len(losses) * tc.batch_size
    return Progress(
        step=step,
        total_steps=total_steps,
        epoch=step / steps_per_epoch,
        train_loss=float(losses.mean()) if len(losses) else float("nan"),
        train_accuracy=float(correct.sum() / seen) if seen else float("nan"),
        val_loss=None if validation is None else validation[0],
        val_accuracy=None if validation is None else validation[1],
        learning_rate=float(schedule(max(step - 1, 0))),
        elapsed=elapsed,
        compile_seconds=compile_seconds,
        samples_per_second=step * tc.batch_size / stepping if stepping else 0.0,
        status=(RunStatus.DIVERGED if diverged_at is not None else
                RunStatus.FINISHED if step == total_steps else RunStatus.RUNNING),
        diverged_at=diverged_at,
        params=params,
    )
