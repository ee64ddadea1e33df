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


MEMINFO = Path("/proc/meminfo")


CGROUP_ROOT = Path("/sys/fs/cgroup")  # where the cgroup hierarchies are mounted (v2 at the root, v1 memory below it)


OWN_CGROUPS = Path("/proc/self/cgroup")  # this process's cgroup in each hierarchy


# The memory controller's files in cgroup v2 and v1: (its folder under CGROUP_ROOT, the limit, the usage, the
# memory.stat key of the inactive page cache, which the kernel reclaims before it runs out)
CGROUP_MEMORY_FILES = (("", "memory.max", "memory.current", "inactive_file"),
                       ("memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))


def available_bytes(meminfo: Path = MEMINFO, cgroup_root: Path = CGROUP_ROOT,
                    own_cgroups: Path = OWN_CGROUPS) -> int:
    """The memory this process could get now without swapping: the machine's (MemAvailable; else its physical
    memory), or less where a cgroup limits it (a container's memory limit; `cgroup_available_bytes`)."""
    machine = meminfo_available_bytes(meminfo)
    if machine is None:
        machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limited = cgroup_available_bytes(cgroup_root, own_cgroups)
    return machine if limited is None else min(machine, limited)


def meminfo_available_bytes(meminfo: Path = MEMINFO) -> int | None:
    """MemAvailable of /proc/meminfo, in bytes (None where it cannot be read)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cgroup_available_bytes(cgroup_root: Path = CGROUP_ROOT, own_cgroups: Path = OWN_CGROUPS) -> int | None:
    """What the memory limits of this process's cgroup and of its parents leave, cgroup v2 or v1: the least of each
    limit less its usage (the inactive page cache, which the kernel reclaims first, not counted; v1's "no limit" is a
    number near 2**63); None where no limit is set or none can be read. A container sees its own cgroup at the
    hierarchy's mount, whatever path `own_cgroups` names."""
    paths = _own_cgroup_paths(own_cgroups)
    left = []
    for hierarchy, limit_file, usage_file, inactive_key in CGROUP_MEMORY_FILES:
        mount = cgroup_root / hierarchy
        own = mount / paths.get(hierarchy, "/").lstrip("/")
        for folder in (own, *own.parents[:len(own.relative_to(mount).parts)]):  # up to the mount
            try:
                limit = (folder / limit_file).read_text().strip()
                if limit != "max":  # (cgroup v2's "no limit here")
                    usage = int((folder / usage_file).read_text()) - _memory_stat(folder, inactive_key)
                    left.append(max(0, int(limit) - usage))
            except (OSError, ValueError):  # no such cgroup here, or no memory controller
                pass
    return min(left, default=None)


def _own_cgroup_paths(own_cgroups: Path) -> dict[str, str]:
    """This process's cgroup path in the hierarchies CGROUP_MEMORY_FILES names: "" for v2's unified one, "memory"
    for v1's memory controller (from lines such as `0::/user.slice` and `4:memory:/docker/1f2e`)."""
    paths = {}
    try:
        lines = own_cgroups.read_text().splitlines()
    except OSError:
        return paths
    for _, controllers, path in (line.split(":", 2) for line in lines if line.count(":") >= 2):
        if controllers == "":
            paths[""] = path
        elif "memory" in controllers.split(","):
            paths["memory"] = path
    return paths


def _memory_stat(folder: Path, key: str) -> int:
    """One count of a cgroup's memory.stat (0 when it is not there)."""
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


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
