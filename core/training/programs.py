"""The compiled programs: one optimiser step, K steps in one `lax.scan`, compiled ahead of time with the
engine's XLA options and cached per setup.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from core.data.spec import DataSpec
from core.errors import ConfigError
from core.networks.base import DROPOUT_KEY_IMPL, Model, Params, dropout_key, seed_key
from core.training.config import Schedule, TrainConfig
from core.training.optimizers import make_optimizer

CHUNK_SECONDS = 0.25  # aim for this much work per compiled call, so live curves update several times a second


CHUNKS_PER_EPOCH = 10  # and at least this many curve points per epoch, however fast the network


class TrainState(NamedTuple):
    """What a step updates, and the run's dropout key (raw key data: masked chunks select states with `where`)."""

    params: Params
    opt_state: optax.OptState
    dropout_key: jax.Array


def dropout_key_data(seed: int) -> jax.Array:
    """The run's dropout key as the raw data TrainState holds."""
    return jax.random.key_data(dropout_key(seed))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example negative log-likelihood of integer labels under softmax(logits)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def make_train_step(model: Model, optimizer: optax.GradientTransformation) -> Callable:
    """(state, x, y, step number) -> (state, (loss, correct)): one optimiser update on one batch, in training mode
    (dropout masks drawn from `fold_in(dropout key, step number)`: the same seed gives the same masks)."""

    def loss_fn(params, x, y, key):
        logits = model.apply(params, x, train=True, key=key)
        return cross_entropy(logits, y).mean(), logits

    def step(state: TrainState, x, y, step_number):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.dropout_key, impl=DROPOUT_KEY_IMPL), step_number)
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x, y, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        correct = (logits.argmax(-1) == y).sum()
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.dropout_key), (loss, correct)

    return step


def make_chunk_fn(step: Callable, masked: bool = True) -> Callable:
    """(state, x_all, y_all, batch_index (K, B), active (K,), step_numbers (K,)) -> (state, losses (K,), correct (K,)).

    Runs K steps in one `lax.scan`. When `masked`, steps whose `active` flag is off leave the state
    unchanged, so the last, shorter chunk of an epoch keeps the same shapes; when K divides the epoch no
    step is ever inactive and the program skips the mask (about 10% faster for an MLP).
    """

    def chunk(state, x_all, y_all, batch_index, active, step_numbers):
        def body(state, inputs):
            index, is_active, step_number = inputs
            new_state, (loss, correct) = step(state, x_all[index], y_all[index], step_number)
            if masked:
                new_state = jax.tree_util.tree_map(lambda new, old: jnp.where(is_active, new, old), new_state, state)
            return new_state, (loss, correct)

        state, (losses, correct) = jax.lax.scan(body, state, (batch_index, active, step_numbers))
        return state, losses, correct

    return chunk


def steps_per_chunk(tc: TrainConfig, model: Model, steps_per_epoch: int) -> int:
    """Steps per compiled call (unless the config sets it): about CHUNK_SECONDS of work but at least
    CHUNKS_PER_EPOCH points per epoch and no more than `eval_every` steps (validation runs between chunks, at the
    first chunk end at or after each multiple of eval_every), and of the sizes down to half that, the one that
    pads the epoch's last chunk least: a divisor of the epoch where there is one (then no step needs masking),
    else one whose padded steps, computed and discarded, are few (LeNet-5's 937-step epoch: 47 steps per chunk
    pads 3 steps; 54 would pad 35)."""
    if tc.steps_per_chunk:
        return min(tc.steps_per_chunk, steps_per_epoch)
    samples_per_second = model.network.samples_per_second(model.config, model.spec)
    target = max(1, int(CHUNK_SECONDS * samples_per_second / tc.batch_size))
    target = max(1, min(target, steps_per_epoch // CHUNKS_PER_EPOCH, tc.eval_every or steps_per_epoch))
    sizes = range(target, max(1, target // 2) - 1, -1)  # largest first: the first of equally good sizes wins
    return min(sizes, key=lambda k: -(-steps_per_epoch // k) * k - steps_per_epoch)


def program_settings(tc: TrainConfig) -> TrainConfig:
    """The settings a compiled chunk depends on: `tc` with the rest (seed, validation, epochs bar a cosine
    schedule's, a constant schedule's start) reset, so runs that differ only in those share one compiled program."""
    epochs = tc.epochs if tc.schedule is Schedule.COSINE else 1
    schedule_start = 0 if tc.schedule is Schedule.CONSTANT else tc.schedule_start
    return dataclasses.replace(tc, seed=0, shuffle_seed=None, eval_every=0, epochs=epochs,
                               schedule_start=schedule_start)


def compiler_options() -> dict:
    """XLA options for the engine's training and evaluation programs (a new dict each call: a cached one would be
    shared by every caller). On CPU, dots run on XLA's own kernels rather than YNNPACK's, which measured slower on
    these small per-step matmuls (benchmarks/cpu_dot_kernels.py): LeNet-5 steps ~1.2× and 784-64-10 MLP steps ~1.5×
    faster, the others the same or a little faster."""
    return {"xla_cpu_experimental_ynn_fusion_type": ""} if jax.default_backend() == "cpu" else {}


def compiled_chunk(model: Model, tc: TrainConfig, n_train: int, k: int) -> Callable:
    """The ahead-of-time compiled chunk program, cached per network, settings (bar the seed and initialisation) and
    data size, so a second run of the same setup starts at once."""
    return _compiled_chunk(model.for_programs(), program_settings(tc), n_train, k)


@functools.lru_cache(maxsize=16)
def _compiled_chunk(model: Model, tc: TrainConfig, n_train: int, k: int) -> Callable:
    optimizer = make_optimizer(tc, model, n_train // tc.batch_size)
    params = jax.eval_shape(model.init, seed_key(0))
    state = TrainState(params, jax.eval_shape(optimizer.init, params), jax.eval_shape(dropout_key_data, 0))
    return compile_chunk(make_train_step(model, optimizer), state, model.spec, n_train, tc.batch_size, k,
                         tc.devices)


DEVICES_AXIS = "devices"  # the device mesh's one axis: a batch's examples, or a sweep's variants, split along it


def device_mesh(devices: int) -> Mesh:
    """The first `devices` devices as a one-axis mesh; a ConfigError when there are fewer."""
    available = jax.devices()
    if devices > len(available):
        raise ConfigError(f"{devices} devices asked for, but this machine has {len(available)} "
                          f"({describe_devices()}).")
    return jax.make_mesh((devices,), (DEVICES_AXIS,), axis_types=(AxisType.Auto,), devices=available[:devices])


def describe_devices() -> str:
    """e.g. "1 CPU device" or "4 GPU devices (NVIDIA H200)"."""
    available = jax.devices()
    kinds = sorted({device.device_kind for device in available})
    platform = available[0].platform.upper()
    detail = "" if platform == "CPU" else f" ({', '.join(kinds)})"
    return f"{len(available)} {platform} device{'s' * (len(available) != 1)}{detail}"


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds all of it (parameters, optimiser state, the training set)."""
    return NamedSharding(mesh, PartitionSpec())


def split_along_devices(mesh: Mesh, axis: int = 0) -> NamedSharding:
    """Arrays cut along `axis` into one part per device."""
    return NamedSharding(mesh, PartitionSpec(*[None] * axis, DEVICES_AXIS))


def compile_chunk(step: Callable, state, spec: DataSpec, n_train: int, batch_size: int, k: int,
                  devices: int = 1, split_variants: bool = False) -> Callable:
    """`make_chunk_fn(step)` compiled ahead of time for a training set of n_train images described by `spec` and
    chunks of k batches (masked when k does not divide the epoch), for training states shaped like `state`.

    On several devices the training set is replicated and either each batch's examples are split across them, the
    state replicated (XLA sums the gradients across devices, so every device applies the same update), or, with
    `split_variants`, a sweep's stacked variants are: each device trains its share of them on the whole batch."""
    shapes = (
        jax.ShapeDtypeStruct((n_train, spec.num_pixels), jnp.float32),
        jax.ShapeDtypeStruct((n_train,), jnp.int32),
        jax.ShapeDtypeStruct((k, batch_size), jnp.int32),
        jax.ShapeDtypeStruct((k,), jnp.bool_),
        jax.ShapeDtypeStruct((k,), jnp.int32),
    )
    masked = (n_train // batch_size) % k != 0
    shardings = {}
    if devices > 1:
        mesh = device_mesh(devices)
        everywhere, per_step = replicated(mesh), split_along_devices(mesh, axis=1)
        states, batches, outputs = ((split_along_devices(mesh), everywhere, per_step) if split_variants else
                                    (everywhere, per_step, everywhere))
        shardings = dict(in_shardings=(states, everywhere, everywhere, batches, everywhere, everywhere),
                         out_shardings=(states, outputs, outputs))
    chunk = jax.jit(make_chunk_fn(step, masked), **shardings)
    return chunk.lower(state, *shapes).compile(compiler_options=compiler_options())


@jax.jit
def all_finite(params: Params) -> jax.Array:
    """Whether every parameter is a finite number."""
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(params)]))
