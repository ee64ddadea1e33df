"""XLA's own CPU dot kernels against YNNPACK's and oneDNN's, side by side in one process: why
`core.training.programs.compiler_options` turns YNNPACK's dot fusions off for the engine's programs and leaves
oneDNN's off.

For each network it compiles the engine's training chunk (the benchmark settings of epoch_vs_pytorch.py, plus
the 784-64-10 sigmoid MLP of the sweep benchmark) and its 1,000-image evaluation pass with each set of kernels,
then times them alternately and prints the best and lower-quartile times and their ratios to XLA's.

    python benchmarks/cpu_dot_kernels.py [--repeats 25]
"""

from __future__ import annotations

import argparse
import random
import time

import jax
import jax.numpy as jnp
import numpy as np

from core.data.spec import MNIST_SPEC
from core.networks.base import Model, ModelConfig, seed_key
from core.training.config import TrainConfig
from core.training.optimizers import make_optimizer
from core.training.programs import TrainState, dropout_key_data, make_chunk_fn, make_train_step

SETTINGS = {
    "softmax regression, SGD, batch 50": (ModelConfig("linear"), TrainConfig("sgd", 0.01, batch_size=50)),
    "784-64-10 sigmoid, momentum, batch 50": (ModelConfig("mlp", (64,), "sigmoid"),
                                              TrainConfig("momentum", 0.1, batch_size=50)),
    "784-300-10 tanh, Adam, batch 50": (ModelConfig("mlp", (300,), "tanh"), TrainConfig("adam", 1e-3, batch_size=50)),
    "LeNet-5, Adam, batch 64": (ModelConfig("lenet5"), TrainConfig("adam", 1e-3, batch_size=64)),
}
XLA_DOTS = {"xla_cpu_experimental_ynn_fusion_type": ""}
KERNELS = {
    "XLA": XLA_DOTS,
    "YNNPACK": {},
    "oneDNN": {**XLA_DOTS, "xla_cpu_use_onednn": True,
               "xla_cpu_experimental_onednn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"},
}
IMAGES = 20_000
STEPS = 100


def programs(config: ModelConfig, tc: TrainConfig) -> dict[tuple[str, str], callable]:
    """(task, kernels) -> a no-argument call that runs the compiled program once and waits for it."""
    model = Model(config, MNIST_SPEC)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((IMAGES, MNIST_SPEC.num_pixels), np.float32))
    y = jnp.asarray(rng.integers(0, MNIST_SPEC.num_classes, IMAGES, dtype=np.int32))
    batches = jnp.asarray(rng.permutation(IMAGES)[:STEPS * tc.batch_size].reshape(STEPS, -1).astype(np.int32))
    active = jnp.ones(STEPS, bool)
    steps = jnp.arange(STEPS, dtype=jnp.int32)
    optimizer = make_optimizer(tc, model, IMAGES // tc.batch_size)
    params = model.init(seed_key(0))
    state = TrainState(params, optimizer.init(params), dropout_key_data(0))
    chunk = jax.jit(make_chunk_fn(make_train_step(model, optimizer), masked=False))
    forward = jax.jit(lambda p, images: jax.nn.softmax(model.apply(p, images)))
    calls = {}
    for name, options in KERNELS.items():
        train_chunk = chunk.lower(state, x, y, batches, active, steps).compile(compiler_options=options or None)
        evaluate = forward.lower(params, x[:1000]).compile(compiler_options=options or None)
        calls["train step", name] = lambda f=train_chunk: jax.block_until_ready(f(state, x, y, batches, active, steps))
        calls["evaluate 1,000", name] = lambda f=evaluate: jax.block_until_ready(f(params, x[:1000]))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, jax {jax.__version__}, backend {jax.default_backend()}; "
          f"times in ms (train step: per step of a {STEPS}-step chunk), alternated {args.repeats} times\n")
    others = [name for name in KERNELS if name != "XLA"]
    print("| network | task | " + " | ".join(f"{name} best | {name} q25" for name in KERNELS) + " | "
          + " | ".join(f"{name} ÷ XLA (q25)" for name in others) + " |")
    print("|---|---|" + "--:|" * (2 * len(KERNELS) + len(others)))
    q = args.repeats // 4
    for network, (model, tc) in SETTINGS.items():
        calls = programs(model, tc)
        for call in calls.values():
            call()
        times = {key: [] for key in calls}
        order = list(calls) * args.repeats
        random.shuffle(order)
        for key in order:
            started = time.perf_counter()
            calls[key]()
            times[key].append((time.perf_counter() - started) * 1e3 / (STEPS if key[0] == "train step" else 1))
        for task in ("train step", "evaluate 1,000"):
            ranked = {name: sorted(times[task, name]) for name in KERNELS}
            cells = [f"{ranked[name][0]:.3f} | {ranked[name][q]:.3f}" for name in KERNELS]
            ratios = [f"{ranked[name][q] / ranked['XLA'][q]:.2f}×" for name in others]
            print(f"| {network} | {task} | " + " | ".join(cells + ratios) + " |", flush=True)

if __name__ == "__main__":
    main()
