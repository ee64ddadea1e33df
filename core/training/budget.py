"""What a run may ask of the machine, checked from its settings alone, before anything is compiled or allocated:
the memory its network needs to train against a share of the memory available, and how many steps it may run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp

from core.data.spec import DataSpec
from core.errors import ConfigError
from core.networks.base import Model
from core.training.config import Optimizer, RunConfig
from core.training.evaluation import EVAL_BATCH

SHARE_ENV = "DIGIT_LAB_MEMORY_SHARE"  # the share of the available memory one run may plan to use


DEFAULT_SHARE = 0.5


MAX_STEPS = 2**31 - 1  # the step counter is an int32 inside the compiled programs


MAX_EPOCHS = 100_000  # a run of more would not finish in any reasonable time, even on a tiny training set


OPTIMIZER_SLOTS = {Optimizer.SGD: 0, Optimizer.MOMENTUM: 1, Optimizer.ADAM: 2}  # state arrays per parameter


FLOAT_BYTES = 4


def available_bytes() -> int:
    """The memory the OS could give now without swapping (MemAvailable; else the physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_share() -> float:
    """$DIGIT_LAB_MEMORY_SHARE (a fraction in (0, 1]), else DEFAULT_SHARE."""
    text = os.environ.get(SHARE_ENV, "").strip()
    if not text:
        return DEFAULT_SHARE
    try:
        share = float(text)
    except ValueError:
        share = math.nan
    if not 0 < share <= 1:
        raise ConfigError(f"${SHARE_ENV} must be a fraction of the available memory in (0, 1], not '{text}'.")
    return share


def memory_budget() -> int:
    """The bytes one run may plan to use: a share of the memory available now."""
    return int(memory_share() * available_bytes())


def training_bytes(config: RunConfig, spec: DataSpec) -> int:
    """A run's memory for training, from its shapes (nothing is allocated): the parameters and the optimiser's state
    twice (a compiled chunk's input and output), the gradients and the update, and each intermediate of a training
    batch twice (kept for the backward pass, and its gradient), or of an evaluation batch once, whichever is more."""
    model = Model(config.model, spec)
    shapes = model.weight_shapes()
    parameters = sum(math.prod(shape) + shape[-1] for shape in shapes.values())
    state = 2 * (1 + OPTIMIZER_SLOTS[config.train.optimizer]) + 2
    params = {name: {"w": jax.ShapeDtypeStruct(shape, jnp.float32), "b": jax.ShapeDtypeStruct(shape[-1:], jnp.float32)}
              for name, shape in shapes.items()}

    def intermediates(batch: int) -> int:
        x = jax.ShapeDtypeStruct((batch, spec.num_pixels), jnp.float32)
        return sum(math.prod(out.shape) for out in jax.tree_util.tree_leaves(jax.eval_shape(model.forward, params, x)))

    activations = max(2 * intermediates(config.train.batch_size), intermediates(EVAL_BATCH))
    return FLOAT_BYTES * (state * parameters + activations)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_budget(config: RunConfig, spec: DataSpec, steps_per_epoch: int, variants: int = 1) -> None:
    """A ConfigError, before anything is compiled, when the run (or a sweep of `variants` of it, all held at once)
    would not fit the memory budget (saying what it needs and what is available) or could not finish (too many
    epochs or steps)."""
    tc = config.train
    if tc.epochs > MAX_EPOCHS:
        raise ConfigError(f"{tc.epochs:,} epochs would not finish; train for at most {MAX_EPOCHS:,}.")
    if tc.epochs * steps_per_epoch > MAX_STEPS:
        raise ConfigError(f"{tc.epochs:,} epochs of {steps_per_epoch:,} steps would not finish; at most "
                          f"{MAX_STEPS:,} steps in all.")
    needed, budget = variants * training_bytes(config, spec), memory_budget()
    if needed > budget:
        sweep = f" ({variants} variants)" if variants > 1 else ""
        raise ConfigError(
            f"{Model(config.model, spec).describe()}{sweep} with batch {tc.batch_size} needs about {_gb(needed)} of "
            f"memory to train; this run may use {_gb(budget)} ({memory_share():.0%} of the "
            f"{_gb(available_bytes())} available; ${SHARE_ENV} sets the share). Use fewer or narrower layers, or a "
            "smaller batch.")
