"""The training engine: optax optimisers, chunked jit-compiled training with `lax.scan`, and evaluation.

`train(config, splits)` is a generator of `Progress` records, one per chunk of steps. Each record carries the
parameters trained so far, so a consumer that stops iterating keeps its model. Chunks all have the same
shapes and run one ahead-of-time compiled program: nothing recompiles after the first chunk.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.data import MAX_SEED, NUM_CLASSES, SplitConfig, Splits, check_split
from core.errors import ConfigError
from core.parsing import whole
from core.models import ModelConfig, Params, apply, init, seed_key

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "exponential", "cosine")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # a learning rate above it is infinity inside the program
FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # and one below it (1.2e-38) zero, or nearly: nothing would train
CHUNK_SECONDS = 0.25  # aim for this much work per compiled call, so live curves update several times a second
CHUNKS_PER_EPOCH = 10  # and at least this many curve points per epoch, however fast the network


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule and loop settings."""

    optimizer: str = "adam"  # sgd | momentum | adam
    learning_rate: float = 1e-3
    momentum: float = 0.9  # for "momentum"
    nesterov: bool = False  # for "momentum"
    schedule: str = "constant"  # constant | exponential (per epoch) | cosine
    decay: float = 0.97  # learning-rate factor per epoch for "exponential"
    weight_decay: float = 0.0  # L2 penalty coefficient
    batch_size: int = 50
    epochs: int = 3
    seed: int = 0  # initial weights, and the batch order unless shuffle_seed is set
    shuffle_seed: int | None = None  # the batch order's seed (a sweep's seed variants share one order)
    eval_every: int = 0  # also validate at the first chunk end after every N steps; 0 = at epoch ends only
    steps_per_chunk: int = 0  # 0 = chosen from the network's cost

    def __post_init__(self):
        checks = [
            (self.optimizer in OPTIMIZERS, f"Unknown optimiser '{self.optimizer}'; choose one of {', '.join(OPTIMIZERS)}."),
            (self.schedule in SCHEDULES, f"Unknown schedule '{self.schedule}'; choose one of {', '.join(SCHEDULES)}."),
            (FLOAT32_TINY <= self.learning_rate <= FLOAT32_MAX,
             f"The learning rate must be a positive number a float32 can hold ({FLOAT32_TINY:.1e} to {FLOAT32_MAX:.1e})."),
            (0 <= self.momentum < 1, "Momentum must be in [0, 1)."),
            (0 < self.decay <= 1, "The decay factor must be in (0, 1]."),
            (0 <= self.weight_decay <= FLOAT32_MAX, "Weight decay must be zero or a positive number a float32 can hold."),
            (whole(self.batch_size, 1), "The batch size must be a whole number, at least 1."),
            (whole(self.epochs, 1), "Train for a whole number of epochs, at least one."),
            (whole(self.eval_every, 0) and whole(self.steps_per_chunk, 0), "Step counts must be whole numbers, 0 or more."),
            (all(whole(seed, 0, MAX_SEED) for seed in (self.seed, self.batch_order_seed)),
             f"Seeds must be whole numbers from 0 to {MAX_SEED}."),
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
    def from_dict(cls, d: dict) -> "RunConfig":
        parts = {}
        for name, part in (("model", ModelConfig), ("data", SplitConfig), ("train", TrainConfig)):
            values = dict(d.get(name, {}))
            unknown = set(values) - {f.name for f in dataclasses.fields(part)}
            if unknown:
                raise ConfigError(f"Unknown {name} setting(s): {', '.join(sorted(unknown))}.")
            parts[name] = part(**values)
        return cls(**parts)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise ConfigError(f"Not a valid run configuration: {exc}.") from None


class TrainState(NamedTuple):
    params: Params
    opt_state: optax.OptState


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
    status: str  # "running" | "finished" | "diverged at step N"
    params: Params = field(repr=False)

    @property
    def done(self) -> bool:
        return self.status != "running"

    @property
    def diverged(self) -> bool:
        return self.status.startswith("diverged")


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example negative log-likelihood of integer labels under softmax(logits)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """The learning rate as a function of the step count."""
    if config.schedule == "exponential":
        return optax.exponential_decay(config.learning_rate, steps_per_epoch, config.decay, staircase=True)
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(config.learning_rate, steps_per_epoch * config.epochs)
    return optax.constant_schedule(config.learning_rate)


def make_optimizer(config: TrainConfig, model: ModelConfig, steps_per_epoch: int, *,
                   momentum=None) -> optax.GradientTransformation:
    """The optax transformation for this config (L2 weight decay first, when set).

    LeNet-5's ten small tensors are updated as one flat vector (`optax.flatten`): one update kernel instead
    of ten, so its Adam chunk compiles ~0.4 s faster and steps as fast. The dense networks keep one update per
    tensor: XLA's CPU concatenation of their weight gradients costs more than it saves (measured per step:
    784-64-10 with momentum 0.33 ms instead of 0.18, 784-300-10 with Adam 4 ms instead of 0.8).
    `momentum` overrides `config.momentum`; it may be a traced array (a sweep vmaps over it).
    """
    lr = learning_rate_schedule(config, steps_per_epoch)
    momentum = config.momentum if momentum is None else momentum
    optimizer = {
        "sgd": lambda: optax.sgd(lr),
        "momentum": lambda: optax.sgd(lr, momentum=momentum, nesterov=config.nesterov),
        "adam": lambda: optax.adam(lr),
    }[config.optimizer]()
    if config.weight_decay:
        optimizer = optax.chain(optax.add_decayed_weights(config.weight_decay), optimizer)
    return optax.flatten(optimizer) if model.arch == "lenet5" else optimizer


def make_train_step(model: ModelConfig, optimizer: optax.GradientTransformation) -> Callable:
    """(state, x, y) -> (state, (loss, correct)): one optimiser update on one batch."""

    def loss_fn(params, x, y):
        logits = apply(params, x, model)
        return cross_entropy(logits, y).mean(), logits

    def step(state: TrainState, x, y):
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x, y)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        correct = (logits.argmax(-1) == y).sum()
        return TrainState(optax.apply_updates(state.params, updates), opt_state), (loss, correct)

    return step


def make_chunk_fn(step: Callable, masked: bool = True) -> Callable:
    """(state, x_all, y_all, batch_index (K, B), active (K,)) -> (state, losses (K,), correct (K,)).

    Runs K steps in one `lax.scan`. When `masked`, steps whose `active` flag is off leave the state
    unchanged, so the last, shorter chunk of an epoch keeps the same shapes; when K divides the epoch no
    step is ever inactive and the program skips the mask (about 10% faster for an MLP).
    """

    def chunk(state, x_all, y_all, batch_index, active):
        def body(state, inputs):
            index, is_active = inputs
            new_state, (loss, correct) = step(state, x_all[index], y_all[index])
            if masked:
                new_state = jax.tree_util.tree_map(lambda new, old: jnp.where(is_active, new, old), new_state, state)
            return new_state, (loss, correct)

        state, (losses, correct) = jax.lax.scan(body, state, (batch_index, active))
        return state, losses, correct

    return chunk


def steps_per_chunk(config: RunConfig, steps_per_epoch: int) -> int:
    """Steps per compiled call (unless the config sets it): about CHUNK_SECONDS of work but at least
    CHUNKS_PER_EPOCH points per epoch and no more than `eval_every` steps (validation runs between chunks, at the
    first chunk end at or after each multiple of eval_every), and of the sizes down to half that, the one that
    pads the epoch's last chunk least: a divisor of the epoch where there is one (then no step needs masking),
    else one whose padded steps, computed and discarded, are few (LeNet-5's 937-step epoch: 47 steps per chunk
    pads 3 steps; 54 would pad 35)."""
    if config.train.steps_per_chunk:
        return min(config.train.steps_per_chunk, steps_per_epoch)
    samples_per_second = {"linear": 350_000, "mlp": 2e7 / (sum(config.model.hidden) + 30), "lenet5": 14_000}  # measured here
    target = max(1, int(CHUNK_SECONDS * samples_per_second[config.model.arch] / config.train.batch_size))
    target = max(1, min(target, steps_per_epoch // CHUNKS_PER_EPOCH, config.train.eval_every or steps_per_epoch))
    sizes = range(target, max(1, target // 2) - 1, -1)  # largest first: the first of equally good sizes wins
    return min(sizes, key=lambda k: -(-steps_per_epoch // k) * k - steps_per_epoch)


def program_settings(tc: TrainConfig) -> TrainConfig:
    """The settings a compiled chunk depends on: `tc` with the rest (seed, validation, epochs bar a cosine
    schedule's) reset, so runs that differ only in those share one compiled program."""
    epochs = tc.epochs if tc.schedule == "cosine" else 1
    return dataclasses.replace(tc, seed=0, shuffle_seed=None, eval_every=0, epochs=epochs)


def program_model(model: ModelConfig) -> ModelConfig:
    """The network settings a compiled program depends on: `model` with its initialisation (the parameters are
    the program's inputs) and, bar an MLP, the MLP's fields reset, so such runs share one program."""
    default = ModelConfig()
    if model.arch == "mlp":
        return dataclasses.replace(model, init=default.init, init_std=default.init_std)
    return ModelConfig(model.arch, default.hidden, default.activation)


@functools.cache
def compiler_options() -> dict:
    """XLA options for the engine's training and evaluation programs. On CPU, dots run on XLA's own kernels
    rather than YNNPACK's, which measured slower on these small per-step matmuls (benchmarks/cpu_dot_kernels.py):
    LeNet-5 steps ~1.2× and 784-64-10 MLP steps ~1.5× faster, the others the same or a little faster."""
    return {"xla_cpu_experimental_ynn_fusion_type": ""} if jax.default_backend() == "cpu" else {}


@functools.lru_cache(maxsize=16)
def _compiled_chunk(model: ModelConfig, tc: TrainConfig, n_train: int, k: int) -> Callable:
    """The ahead-of-time compiled chunk program, cached per network, settings (bar the seed) and data size,
    so a second run of the same setup starts at once."""
    optimizer = make_optimizer(tc, model, n_train // tc.batch_size)
    params = jax.eval_shape(functools.partial(init, config=model), seed_key(0))
    state = TrainState(params, jax.eval_shape(optimizer.init, params))
    return compile_chunk(make_train_step(model, optimizer), state, n_train, tc.batch_size, k)


def compile_chunk(step: Callable, state, n_train: int, batch_size: int, k: int) -> Callable:
    """`make_chunk_fn(step)` compiled ahead of time for a training set of n_train images and chunks of k
    batches (masked when k does not divide the epoch), for training states shaped like `state`."""
    shapes = (
        jax.ShapeDtypeStruct((n_train, 784), jnp.float32),
        jax.ShapeDtypeStruct((n_train,), jnp.int32),
        jax.ShapeDtypeStruct((k, batch_size), jnp.int32),
        jax.ShapeDtypeStruct((k,), jnp.bool_),
    )
    masked = (n_train // batch_size) % k != 0
    chunk = jax.jit(make_chunk_fn(step, masked))
    return chunk.lower(state, *shapes).compile(compiler_options=compiler_options())


@jax.jit
def all_finite(params: Params) -> jax.Array:
    """Whether every parameter is a finite number."""
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(params)]))


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


def check_run(config: RunConfig, train_labels: np.ndarray) -> None:
    """A ConfigError when the run cannot train on training images with these labels (its split cannot be made, or
    its batch is larger than the training set it leaves), from the label counts alone."""
    epoch_steps(config.train, check_split(train_labels, config.data))


def validation_due(tc: TrainConfig, step: int, steps_in_chunk: int, epoch_end: bool) -> bool:
    """Validate at each epoch's end, and also each time the step count passes a multiple of eval_every."""
    passed = tc.eval_every and step // tc.eval_every > (step - steps_in_chunk) // tc.eval_every
    return bool(epoch_end or passed)


def train(config: RunConfig, splits: Splits, *, initial_params: Params | None = None) -> Iterator[Progress]:
    """Train, yielding a `Progress` after every chunk; the last record has status finished or diverged."""
    tc = config.train
    n = len(splits.y_train)
    steps_per_epoch = epoch_steps(tc, n)
    k = steps_per_chunk(config, steps_per_epoch)
    total_steps = steps_per_epoch * tc.epochs
    optimizer = make_optimizer(tc, config.model, steps_per_epoch)
    schedule = learning_rate_schedule(tc, steps_per_epoch)
    params = initial_params if initial_params is not None else init(seed_key(tc.seed), config.model)
    state = TrainState(params, optimizer.init(params))
    x_train, y_train = splits.train_on_device

    started = time.perf_counter()
    compiled = _compiled_chunk(program_model(config.model), program_settings(tc), n, k)
    if len(splits.y_val):  # compile the validation pass too, so no compilation lands inside training time
        loss_and_accuracy(params, config.model, splits.x_val[:EVAL_BATCH], splits.y_val[:EVAL_BATCH])
    compile_seconds = time.perf_counter() - started

    elapsed, stepping, step = 0.0, 0.0, 0  # all training time; the steps' alone
    for chunk in chunks(tc, n, k):
        t0 = time.perf_counter()
        previous = state.params
        state, losses, correct = compiled(state, x_train, y_train, chunk.batch_index, chunk.active)
        losses, correct = np.asarray(losses)[chunk.active], np.asarray(correct)[chunk.active]
        spent = time.perf_counter() - t0
        stepping += spent
        elapsed += spent
        bad_step = first_bad_step(losses, bool(all_finite(state.params)))
        if bad_step:
            finite = np.isfinite(losses)
            yield progress_record(step, total_steps, steps_per_epoch, losses[finite], correct[finite], tc, None,
                                  schedule, elapsed, stepping, compile_seconds, f"diverged at step {step + bad_step}", previous)
            return
        step += len(losses)
        validation = None
        if validation_due(tc, step, len(losses), chunk.epoch_end) and len(splits.y_val):
            t0 = time.perf_counter()
            validation = loss_and_accuracy(state.params, config.model, splits.x_val, splits.y_val)
            elapsed += time.perf_counter() - t0
        status = "finished" if step == total_steps else "running"
        yield progress_record(step, total_steps, steps_per_epoch, losses, correct, tc, validation, schedule,
                              elapsed, stepping, compile_seconds, status, state.params)


def progress_record(step, total_steps, steps_per_epoch, losses, correct, tc, validation, schedule, elapsed,
                    stepping, compile_seconds, status, params) -> Progress:
    """The Progress after a chunk, from its per-step losses and correct counts."""
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
        status=status,
        params=params,
    )


# ---------------------------------------------------------------------------------------------- evaluation

EVAL_BATCH = 1000


@dataclass(frozen=True)
class Evaluation:
    """A network's predictions on a labelled set, and the summaries computed from them."""

    predictions: np.ndarray  # (n,) predicted digit
    probabilities: np.ndarray  # (n, 10) softmax
    losses: np.ndarray  # (n,) per-example cross-entropy
    labels: np.ndarray  # (n,) true digit
    accuracy: float
    loss: float
    per_class_accuracy: np.ndarray  # (10,) accuracy on images of each true digit (NaN for a digit with none)
    confusion: np.ndarray  # (10, 10) counts, rows = true digit, columns = predicted

    @property
    def misclassified(self) -> np.ndarray:
        """Indices of the wrongly classified examples."""
        return np.flatnonzero(self.predictions != self.labels)


@functools.lru_cache(maxsize=16)
def _forward(model: ModelConfig, stacked: bool) -> Callable:
    """Jitted (params, x, y) -> (probabilities, losses) for fixed-size batches, kept for the last few networks;
    with `stacked`, vmapped over parameters whose leaves carry a leading variant axis (a sweep's)."""
    def forward(params, x, y):
        logits = apply(params, x, model)
        return jax.nn.softmax(logits), cross_entropy(logits, y)
    return jax.jit(jax.vmap(forward, in_axes=(0, None, None)) if stacked else forward,
                   compiler_options=compiler_options())


def _batched(model: ModelConfig, params: Params, x: np.ndarray, y: np.ndarray,
             stacked: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (..., n, 10) and losses (..., n) over a whole set, in fixed batches (the last one padded)."""
    forward = _forward(program_model(model), stacked)
    n = len(y)
    batch = min(EVAL_BATCH, max(n, 1))
    probs, losses = [], []
    for start in range(0, n, batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        pad = batch - len(yb)
        if pad:
            xb = np.concatenate([xb, np.zeros((pad, xb.shape[1]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
        p, l = forward(params, xb, yb)
        probs.append(np.asarray(p)[..., : batch - pad, :])
        losses.append(np.asarray(l)[..., : batch - pad])
    return np.concatenate(probs, axis=-2), np.concatenate(losses, axis=-1)


def loss_and_accuracy(params: Params, model: ModelConfig, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on (x, y)."""
    probs, losses = _batched(model, params, x, y)
    return float(losses.mean()), float((probs.argmax(-1) == y).mean())


def variants_loss_and_accuracy(stacked: Params, model: ModelConfig, x: np.ndarray,
                               y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy and accuracy on (x, y) of every variant of a sweep's stacked parameters: arrays (V,)."""
    probs, losses = _batched(model, stacked, x, y, stacked=True)
    return losses.mean(-1), (probs.argmax(-1) == y).mean(-1)


def evaluate(params: Params, model: ModelConfig, x: np.ndarray, y: np.ndarray) -> Evaluation:
    """Predictions, probabilities, accuracy, per-class accuracy and confusion matrix on (x, y)."""
    probs, losses = _batched(model, params, x, y)
    predictions = probs.argmax(-1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(confusion, (y, predictions), 1)
    counts = confusion.sum(1)
    per_class = np.where(counts > 0, np.diag(confusion) / np.maximum(counts, 1), np.nan)  # NaN: no such digit
    return Evaluation(
        predictions=predictions,
        probabilities=probs,
        losses=losses,
        labels=np.asarray(y),
        accuracy=float((predictions == y).mean()),
        loss=float(losses.mean()),
        per_class_accuracy=per_class,
        confusion=confusion,
    )
