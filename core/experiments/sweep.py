"""Sweeps: train up to 16 variants of one network in one compiled program with `jax.vmap`.

The variants differ only in learning rate, momentum and seed. They share the batches (each variant's config
says so: its `shuffle_seed` is the first variant's seed, while its own seed draws its initial weights, so a
variant's config trained alone gives the same run), so the images of a step are
fed once, and for narrow networks every variant's first layer is one matmul over all variants (vmap of a
dense layer whose input is not batched becomes a single dot with the weights of all variants side by side;
see `_make_sweep_step`). Learning rate and momentum are arrays inside the program, so one compilation serves
every variant.

On this 2-core CPU the vmapped program measured faster than the variants one by one for softmax regression and
MLPs up to 300 units wide (8 variants, best of three: 784-300-10 1.06–1.37×); for 784-800-10 it was at best no
faster than taking turns (`benchmarks/sweep_speedup.py --wide --repeats 2`: 1.06× vmapped, 1.13× in turn; timed
once each, 0.8–0.85× vmapped), so MLPs wider than VMAP_MAX_WIDTH and LeNet-5 run the same program, compiled
for one variant, once per variant in turn (`train_sweep(vmapped=...)`).

`train_sweep(variants, splits)` yields, after each chunk, one `Progress` per variant (None for a variant
that already diverged), so each variant folds into a normal `core.training.runs.Run` exactly as a single run does.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.data.spec import DataSpec
from core.data.splits import Splits
from core.errors import ConfigError
from core.networks.base import Model, Params, seed_key
from core.training.budget import check_budget
from core.training.config import Optimizer, RunConfig, TrainConfig
from core.training.evaluation import EVAL_BATCH, variants_loss_and_accuracy
from core.training.loop import (
    Chunk,
    PerVariant,
    Progress,
    RunShape,
    compile_timed,
    epoch_steps,
    progress_for,
    run_chunks,
)
from core.training.optimizers import make_optimizer
from core.training.programs import (
    TrainState,
    all_finite,
    compile_chunk,
    device_mesh,
    dropout_key_data,
    make_train_step,
    program_settings,
    replicated,
    split_along_devices,
    steps_per_chunk,
)

MAX_VARIANTS = 16


SWEPT = ("learning_rate", "momentum", "seed")  # the TrainConfig fields that may differ between variants


@dataclass(frozen=True)
class SweepConfig:
    """A base run and the values to sweep: every combination of learning rate × momentum × seed."""

    base: RunConfig
    learning_rates: tuple[float, ...] = ()  # empty: the base's
    momenta: tuple[float, ...] = ()  # empty: the base's (only Optimizer.MOMENTUM uses it)
    seeds: tuple[int, ...] = ()  # empty: the base's

    def variants(self) -> list[RunConfig]:
        """One RunConfig per combination, validated; at most MAX_VARIANTS."""
        tc = self.base.train
        if len(self.momenta) > 1 and tc.optimizer is not Optimizer.MOMENTUM:
            raise ConfigError(f"Only SGD with momentum uses a momentum; with {tc.optimizer} the {len(self.momenta)} "
                              "momenta would train identical variants.")
        for values, what in ((self.learning_rates, "learning rate"), (self.momenta, "momentum"), (self.seeds, "seed")):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ConfigError(f"Each {what} once, please: {', '.join(f'{v:g}' for v in repeated)} is given more "
                                  "than once, which would train identical variants.")
        grid = list(itertools.product(self.learning_rates or (tc.learning_rate,), self.momenta or (tc.momentum,),
                                      self.seeds or (tc.seed,)))
        if len(grid) > MAX_VARIANTS:
            raise ConfigError(f"A sweep trains at most {MAX_VARIANTS} variants; this grid has {len(grid)}. "
                              "Use fewer learning rates, momenta or seeds.")
        order = grid[0][2] if tc.shuffle_seed is None else tc.shuffle_seed  # one batch order for all
        return [dataclasses.replace(self.base, train=dataclasses.replace(
                    tc, learning_rate=float(lr), momentum=float(m), seed=int(s),
                    shuffle_seed=None if int(s) == order else int(order)))
                for lr, m, s in grid]


def run_name(config: RunConfig, spec: DataSpec) -> str:
    """A variant's name as a run, in the run history among others: 'sweep 784-64-10 sigmoid: lr 0.1 · seed 0'."""
    return f"sweep {Model(config.model, spec).describe()}: {variant_name(config)}"


def variant_name(config: RunConfig) -> str:
    """A short label such as 'lr 0.001 · m 0.9 · seed 1' (momentum only for the momentum optimiser)."""
    tc = config.train
    momentum = f" · m {tc.momentum:g}" if tc.optimizer is Optimizer.MOMENTUM else ""
    return f"lr {tc.learning_rate:g}{momentum} · seed {tc.seed}"


class SweepState(NamedTuple):
    """One variant's training state and its hyperparameters (arrays, so vmap can batch them)."""

    params: Params
    opt_state: optax.OptState
    learning_rate: jax.Array
    momentum: jax.Array
    dropout_key: jax.Array


def _check_variants(variants: Sequence[RunConfig]) -> None:
    if not 1 <= len(variants) <= MAX_VARIANTS:
        raise ConfigError(f"A sweep trains 1 to {MAX_VARIANTS} variants, got {len(variants)}.")
    first = variants[0]
    for v in variants[1:]:
        same_train = dataclasses.replace(v.train, shuffle_seed=first.train.shuffle_seed,
                                         **{f: getattr(first.train, f) for f in SWEPT})
        if v.model != first.model or v.data != first.data or same_train != first.train:
            raise ConfigError("The variants of a sweep may differ only in learning rate, momentum and seed.")
        if v.train.batch_order_seed != first.train.batch_order_seed:
            raise ConfigError("The variants of a sweep share one batch order: give them one shuffle_seed "
                              "(SweepConfig.variants does).")


def _variant_optimizer(tc, model: Model, steps_per_epoch: int, learning_rate,
                       momentum) -> optax.GradientTransformation:
    """The optimiser of `tc` with its learning rate and momentum given as (traced) arrays."""
    unit = dataclasses.replace(tc, learning_rate=1.0)  # the schedule's shape; scaled by the variant's rate
    return optax.chain(make_optimizer(unit, model, steps_per_epoch, momentum=momentum), optax.scale(learning_rate))


SHARED_MATMUL_MAX_WIDTH = 64  # first layers up to this wide: one matmul for all variants (see _make_sweep_step)


def _make_sweep_step(model: Model, tc, steps_per_epoch: int) -> Callable:
    """(stacked SweepState, x, y) -> (state, (losses (V,), correct (V,))): one update of every variant.

    Up to SHARED_MATMUL_MAX_WIDTH units, the first layers of all variants are one matmul with the shared batch
    (vmap of a dense layer whose input is not batched); wider, the batch is broadcast to every variant and each
    variant's layer is its own matmul in one batched call. Measured here (8 variants, SGD with momentum;
    `benchmarks/sweep_speedup.py --shared-matmul-max-width 0` or `10000` forces either), the shared matmul
    makes softmax regression 2.4× faster than the batched one and a 64-unit MLP as fast, but from 128 units
    on it measured 4-30% slower (the benchmark's best of three at 300 units: 1.02× over one by one against
    1.06×; interleaved program timings: 15-30%): XLA then transposes the stacked weights on every step.
    """
    share_first_layer = next(iter(model.weight_shapes().values()))[-1] <= SHARED_MATMUL_MAX_WIDTH

    def variant_step(state: SweepState, x, y, step_number):
        optimizer = _variant_optimizer(tc, model, steps_per_epoch, state.learning_rate, state.momentum)
        train_state = TrainState(state.params, state.opt_state, state.dropout_key)
        new, metrics = make_train_step(model, optimizer)(train_state, x, y, step_number)
        return state._replace(params=new.params, opt_state=new.opt_state), metrics

    def step(state: SweepState, x, y, step_number):
        if share_first_layer:
            return jax.vmap(variant_step, in_axes=(0, None, None, None))(state, x, y, step_number)
        batches = jnp.broadcast_to(x, (len(state.learning_rate), *x.shape))
        return jax.vmap(variant_step, in_axes=(0, 0, None, None))(state, batches, y, step_number)

    return step


def _init_state(variants: Sequence[RunConfig], model: Model, steps_per_epoch: int) -> SweepState:
    """Every variant's initial state, stacked; each variant's weights drawn from its own seed, as a run's are.
    (Stacked on the host and the optimiser state built by one compiled call: operation by operation, or as a
    vmapped init, this took 1–4 s of compilation the first time.)"""
    tc = variants[0].train
    lrs = jnp.asarray([v.train.learning_rate for v in variants], jnp.float32)
    momenta = jnp.asarray([v.train.momentum for v in variants], jnp.float32)
    per_variant = [Model(v.model, model.spec).init(seed_key(v.train.seed)) for v in variants]
    params = jax.tree_util.tree_map(lambda *leaves: jnp.asarray(np.stack(leaves)), *per_variant)
    opt_state = _optimizer_init(_program(tc), model.for_programs(), steps_per_epoch)(params, lrs, momenta)
    dropout_keys = jnp.stack([dropout_key_data(v.train.seed) for v in variants])
    return SweepState(params, opt_state, lrs, momenta, dropout_keys)


def _program(tc: TrainConfig) -> TrainConfig:
    """What a sweep's compiled programs depend on: the settings bar the swept values (arrays in the program)."""
    return dataclasses.replace(program_settings(tc), **{name: getattr(TrainConfig(), name) for name in SWEPT})


@functools.lru_cache(maxsize=16)
def _optimizer_init(tc: TrainConfig, model: Model, steps_per_epoch: int) -> Callable:
    """(stacked params, learning rates, momenta) -> stacked optimiser state: compiled once per setup."""
    def variant_init(params, lr, momentum):
        return _variant_optimizer(tc, model, steps_per_epoch, lr, momentum).init(params)
    return jax.jit(jax.vmap(variant_init))


variants_all_finite = jax.jit(jax.vmap(all_finite))  # (stacked params) -> (V,) bools


@jax.jit
def unstack(stacked: Params) -> list[Params]:
    """Every variant's parameters out of the stacked pytree, in one compiled call."""
    count = jax.tree_util.tree_leaves(stacked)[0].shape[0]
    return [jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], stacked) for i in range(count)]


_SWEEP_PROGRAMS: dict = {}  # (model, settings, images, chunk, variants per program) -> compiled chunk, oldest first
_SWEEP_PROGRAMS_LOCK = threading.Lock()  # the app's sessions share them


MAX_SWEEP_PROGRAMS = 8


def _compiled_sweep_chunk(model: Model, tc: TrainConfig, n: int, k: int, state: SweepState) -> Callable:
    """The compiled chunk program for a group of variants shaped like `state`, kept for the last few setups
    (swept values aside), so a second sweep of the same setup starts at once, as a second run does. (Compiled
    outside the lock: two sessions starting the same setup at once may both compile it.)"""
    group = jax.tree_util.tree_leaves(state.params)[0].shape[0]
    key = (model, tc, n, k, group)
    with _SWEEP_PROGRAMS_LOCK:
        program = _SWEEP_PROGRAMS.get(key)
    if program is not None:
        return program
    program = compile_chunk(_make_sweep_step(model, tc, n // tc.batch_size), state, model.spec, n, tc.batch_size, k,
                            tc.devices, split_variants=_split_variants(tc, group))
    with _SWEEP_PROGRAMS_LOCK:
        if key not in _SWEEP_PROGRAMS:
            while len(_SWEEP_PROGRAMS) >= MAX_SWEEP_PROGRAMS:  # forget the oldest
                del _SWEEP_PROGRAMS[next(iter(_SWEEP_PROGRAMS))]
            _SWEEP_PROGRAMS[key] = program
        return _SWEEP_PROGRAMS[key]


def _split_variants(tc: TrainConfig, group: int) -> bool:
    """On several devices, a group of variants that divides evenly among them is split across them (each trains its
    share on whole batches); otherwise each batch is."""
    return tc.devices > 1 and group % tc.devices == 0


def _placed(state: SweepState, tc: TrainConfig) -> SweepState:
    """A group's state on the devices its compiled chunk expects."""
    if tc.devices == 1:
        return state
    mesh = device_mesh(tc.devices)
    group = len(state.learning_rate)
    return jax.device_put(state, split_along_devices(mesh) if _split_variants(tc, group) else replicated(mesh))


def train_sweep(variants: Sequence[RunConfig], splits: Splits, *,
                vmapped: bool | None = None) -> Iterator[list[Progress | None]]:
    """Train all variants, yielding after each chunk one Progress per variant (None once it ended).

    vmapped=True trains all variants in one vmapped program; False runs the same program (compiled once,
    for one variant) for each variant in turn, chunk by chunk, so all curves still advance together.
    None chooses by network: vmapped where it measured faster than one by one (`Network.sweep_vmap_pays`).
    """
    _check_variants(variants)
    first = variants[0]
    tc, model = first.train, Model(first.model, splits.spec).for_programs()
    if vmapped is None:
        vmapped = model.network.sweep_vmap_pays(model.config, model.spec)
    n = len(splits.y_train)
    steps_per_epoch = epoch_steps(tc, n)
    check_budget(first, splits.spec, steps_per_epoch, len(variants))
    k = steps_per_chunk(tc, model, steps_per_epoch)
    groups = [list(range(len(variants)))] if vmapped else [[i] for i in range(len(variants))]
    states = [_placed(_init_state([variants[i] for i in group], model, steps_per_epoch), tc) for group in groups]
    x_train, y_train = splits.train_on_device
    if tc.devices > 1:
        x_train, y_train = jax.device_put((x_train, y_train), replicated(device_mesh(tc.devices)))
    ended = [False] * len(variants)

    def validate() -> PerVariant:
        per_group = [variants_loss_and_accuracy(state.params, model, splits.x_val, splits.y_val) for state in states]
        return np.concatenate([r[0] for r in per_group]), np.concatenate([r[1] for r in per_group])

    validated = len(splits.y_val) > 0
    program, compile_seconds = compile_timed(
        lambda: _compiled_sweep_chunk(model, _program(tc), n, k, states[0]),
        (lambda: variants_loss_and_accuracy(states[0].params, model, splits.x_val[:EVAL_BATCH],
                                            splits.y_val[:EVAL_BATCH])) if validated else None)
    shapes = [RunShape(v.train, steps_per_epoch, compile_seconds) for v in variants]

    def advance(chunk: Chunk, step_numbers: np.ndarray) -> PerVariant:
        losses, correct = [], []
        for g, group in enumerate(groups):
            if all(ended[i] for i in group):  # not run again (NaN losses, as ended variants in a vmapped group have)
                losses.append(np.full((k, len(group)), np.nan))
                correct.append(np.zeros((k, len(group))))
                continue
            states[g], group_losses, group_correct = program(states[g], x_train, y_train, chunk.batch_index,
                                                             chunk.active, step_numbers)
            losses.append(np.asarray(group_losses))
            correct.append(np.asarray(group_correct))
        return np.concatenate(losses, axis=1), np.concatenate(correct, axis=1)

    def finite() -> np.ndarray:
        return np.concatenate([np.asarray(variants_all_finite(state.params)) for state in states])

    def variants_params() -> list[Params]:
        return [params for state in states for params in unstack(state.params)]

    kept = variants_params()  # each variant's last parameters checked finite
    for result in run_chunks(tc, n, k, advance, finite, validate if validated else None):
        params_now = variants_params()
        records: list[Progress | None] = []
        for i in range(len(variants)):
            if ended[i]:
                records.append(None)
                continue
            if result.diverged(i):
                ended[i] = True
            else:
                kept[i] = params_now[i]
            records.append(progress_for(result, i, shapes[i], kept[i]))
        yield records
        if all(ended):
            return
