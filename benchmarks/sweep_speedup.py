"""Vmapped sweep vs the same variants trained one by one, measured side by side in one run.

    python benchmarks/sweep_speedup.py [--data-dir DIR] [--variants 8] [--epochs 1] [--train-size N] [--repeats N]
                                       [--wide] [--lenet] [--shared-matmul-max-width W]

Settings as the sweeps were specified: SGD with momentum, batch 50, a spread of learning rates; softmax regression,
784-64-10 sigmoid and 784-300-10 tanh (784-800-10 ReLU with --wide, LeNet-5 with --lenet).
--shared-matmul-max-width sets `core.experiments.sweep.SHARED_MATMUL_MAX_WIDTH` for the run (0: every network's
variants get their own first-layer matmul; 10000: one shared matmul for all), to measure that choice. "One by one" is
the normal engine, `core.training.loop.train`, once per variant; "vmapped" is
`core.experiments.sweep.train_sweep(vmapped=True)` (one program for all variants) and "in turn" its fallback
`vmapped=False` (one program, compiled once, run per variant each chunk). Seconds are training time (compilation
excluded, validation each epoch included), the best of --repeats runs of each mode taken in alternation; compile times
(of the first run) are printed beside them.

"Bound" is the most any sweep of the network could gain on this machine: the one-by-one time divided by
the time of the first layer's work alone for all variants at once (its forward matmul, weight-gradient matmul
and weight update over the same steps, with the weights of every variant side by side: one matmul each).
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np

from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.errors import DigitLabError
from core.experiments import sweep
from core.experiments.sweep import SweepConfig, train_sweep
from core.networks.base import Model, ModelConfig
from core.training.config import RunConfig, TrainConfig
from core.training.loop import chunks, epoch_steps, train

NETWORKS = {
    "softmax regression": ModelConfig("linear"),
    "784-64-10 sigmoid": ModelConfig("mlp", (64,), "sigmoid"),
    "784-300-10 tanh": ModelConfig("mlp", (300,), "tanh"),
}


def one_by_one(variants, splits) -> tuple[float, float]:
    """(training seconds, compile seconds) summed over the variants trained one after another."""
    seconds = compile_seconds = 0.0
    for config in variants:
        progress = deque(train(config, splits), maxlen=1).pop()  # the run's last progress record
        seconds += progress.elapsed
        compile_seconds += progress.compile_seconds
    return seconds, compile_seconds


def swept(variants, splits, vmapped: bool) -> tuple[float, float]:
    for records in train_sweep(variants, splits, vmapped=vmapped):
        last = next(r for r in records if r is not None)
    return last.elapsed, last.compile_seconds


def first_layer_seconds(variants, splits) -> float:
    """Training-time floor: the first layer's two matmuls and weight update, all variants in one matmul each,
    over every step of the run (best of three)."""
    tc = variants[0].train
    n_in, width = next(iter(Model(variants[0].model, splits.spec).weight_shapes().values()))
    weights = jnp.zeros((n_in, width * len(variants)), jnp.float32)
    x_train, _ = splits.train_on_device
    n_train = len(splits.y_train)
    batches = np.concatenate([c.batch_index for c in chunks(tc, n_train, epoch_steps(tc, n_train))])

    @jax.jit
    def run(weights, batches):
        def step(w, index):
            x = x_train[index]
            return w - 1e-3 * (x.T @ (x @ w)), None
        return jax.lax.scan(step, weights, batches)[0]

    run(weights, batches).block_until_ready()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        run(weights, batches).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, help="train on a stratified subset (default: all 55,000)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each mode, alternating; the best is kept")
    parser.add_argument("--lenet", action="store_true", help="also measure LeNet-5 (slow)")
    parser.add_argument("--wide", action="store_true",
                        help="also measure 784-800-10 ReLU (wider than the vmapped MLPs: its variants take turns)")
    parser.add_argument("--shared-matmul-max-width", type=int, default=sweep.SHARED_MATMUL_MAX_WIDTH,
                        help="first layers up to this wide are one matmul for all variants, wider ones a batched "
                             "matmul per variant (default %(default)s)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    sweep.SHARED_MATMUL_MAX_WIDTH = args.shared_matmul_max_width
    networks = dict(NETWORKS, **({"784-800-10 relu": ModelConfig("mlp", (800,), "relu", "he")} if args.wide else {}),
                    **({"LeNet-5": ModelConfig("lenet5")} if args.lenet else {}))
    try:
        mnist = load_mnist(args.data_dir)
    except DigitLabError as exc:
        parser.exit(1, f"error: {exc}\n")
    split = SplitConfig(train_size=args.train_size)
    splits = make_splits(mnist, split)
    learning_rates = tuple(0.005 * 1.5 ** i for i in range(args.variants))
    print(f"{args.variants} variants (learning rates {learning_rates[0]:g}..{learning_rates[-1]:.3g}), SGD momentum "
          f"0.9, batch 50, {args.epochs} epoch(s) of {len(splits.y_train):,} images; {mnist.source}")
    print(f"{'network':<20} {'one by one s':>12} {'vmapped s':>10} {'speed-up':>9} {'in turn s':>10} {'speed-up':>9} "
          f"{'bound':>7} {'compile s: one by one / vmapped / in turn':>42}")
    for title, model in networks.items():
        base = RunConfig(model, split, TrainConfig("momentum", 0.01, momentum=0.9, batch_size=50, epochs=args.epochs))
        variants = SweepConfig(base, learning_rates=learning_rates).variants()
        runs = {"one by one": [], "vmapped": [], "in turn": []}
        for _ in range(args.repeats):  # alternate the three, so load drift on a shared machine hits all alike
            runs["one by one"].append(one_by_one(variants, splits))
            runs["vmapped"].append(swept(variants, splits, vmapped=True))
            runs["in turn"].append(swept(variants, splits, vmapped=False))
        # best training time of each; compilation from the first repeat (later ones reuse the compiled programs)
        (sequential, together, in_turn), (sequential_compile, together_compile, in_turn_compile) = zip(
            *[(min(seconds for seconds, _ in timings), timings[0][1]) for timings in runs.values()])
        dense = len(next(iter(Model(model, splits.spec).weight_shapes().values()))) == 2  # the floor is a dense layer's
        bound = f"{sequential / first_layer_seconds(variants, splits):6.2f}×" if dense else f"{'—':>7}"
        print(f"{title:<20} {sequential:12.2f} {together:10.2f} {sequential / together:8.2f}× {in_turn:10.2f} "
              f"{sequential / in_turn:8.2f}× {bound} {sequential_compile:20.2f} / {together_compile:.2f} / "
              f"{in_turn_compile:.2f}", flush=True)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(total {time.perf_counter() - started:.0f} s)")
