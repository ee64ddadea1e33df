"""What writing runs to the history as they train costs: the app's default run (784-300-10 ReLU, Adam, batch 50,
3 epochs) and the Sweep page's default sweep (784-64-10 sigmoid, momentum 0.9, batch 50, 3 epochs on 10,000
images, 4 learning rates; `--sweep-seeds 4` makes it 16 variants) trained with and without checkpoints,
alternately, in one process; prints each one's best training time and the training thread's seconds spent on
checkpoints.

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/checkpoint_cost.py --repeats 3 [--sweep-seeds 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.experiments.sweep import SweepConfig, train_sweep
from core.networks.base import ModelConfig
from core.store.groups import GroupCheckpoints
from core.store.history import CHECKPOINT_SECONDS, Checkpoints, RunHistory
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train
from core.training.runs import Run

CONFIG = RunConfig(ModelConfig("mlp", (300,), "relu", "he"), SplitConfig(), TrainConfig(epochs=3))
SWEEP_BASE = RunConfig(ModelConfig("mlp", (64,), "sigmoid", "glorot"), SplitConfig(5000, 10000),
                       TrainConfig("momentum", batch_size=50, epochs=3))
SWEEP_RATES = (0.01, 0.03, 0.1, 0.3)


def timed(splits, history: RunHistory | None) -> tuple[float, float, int]:
    """Seconds from the first progress record to the last checkpoint written (compilation excluded), the training
    thread's seconds on checkpoints (preparing them: a thread of their own commits them), and the writes."""
    run = Run("benchmark", CONFIG, splits.spec)
    checkpoints = Checkpoints(history, run)
    checkpoints.start()  # before compiling: not in the timed training, but counted in the writes
    first = None
    for progress in train(CONFIG, splits):
        run.record(progress)
        checkpoints()
        first = first or time.perf_counter() - progress.elapsed
    checkpoints.wait()  # as the app and the CLI do before saving the ended run
    return time.perf_counter() - first, checkpoints.seconds, checkpoints.writes


def timed_sweep(variants: list[RunConfig], splits, history: RunHistory | None) -> tuple[float, float, int]:
    """`timed` for a sweep: every variant written as it trains, as the Sweep page and `python -m core sweep` do."""
    runs = [Run(f"benchmark {i}", variant, splits.spec) for i, variant in enumerate(variants)]
    checkpoints = GroupCheckpoints(history)
    first = None
    for records in train_sweep(variants, splits):
        for run, progress in zip(runs, records):
            if progress is not None:
                run.record(progress)
                checkpoints(run)
                first = first or time.perf_counter() - progress.elapsed
    checkpoints.wait()
    return time.perf_counter() - first, checkpoints.seconds, checkpoints.writes


def report(what: str, repeats: int, plain: list[float], checked: list[tuple[float, float, int]]) -> None:
    best_plain, best = min(plain), min(checked)
    print(f"{what}; checkpoints at each epoch end and every {CHECKPOINT_SECONDS:.0f} s, best of {repeats}")
    print(f"  without checkpoints: {best_plain:.2f} s   with: {best[0]:.2f} s "
          f"({100 * (best[0] / best_plain - 1):+.1f}%)   writing: {best[1]:.3f} s in {best[2]} writes "
          f"({100 * best[1] / best_plain:.1f}% of the best run without)")
    print("  all runs without:", " ".join(f"{t:.2f}" for t in plain), " with (time/writing):",
          " ".join(f"{t:.2f}/{s:.3f}" for t, s, _ in checked))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep-seeds", type=int, default=1, help="seeds per learning rate (4 rates)")
    args = parser.parse_args()
    mnist = load_mnist()
    splits = make_splits(mnist, CONFIG.data)
    variants = SweepConfig(SWEEP_BASE, SWEEP_RATES, (0.9,), tuple(range(args.sweep_seeds))).variants()
    sweep_splits = make_splits(mnist, SWEEP_BASE.data)
    timed(splits, None)  # compile once
    timed_sweep(variants, sweep_splits, None)
    plain, checked, sweep_plain, sweep_checked = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        history = RunHistory(Path(folder) / "runs.sqlite3")
        for _ in range(args.repeats):
            plain.append(timed(splits, None)[0])
            checked.append(timed(splits, history))
            sweep_plain.append(timed_sweep(variants, sweep_splits, None)[0])
            sweep_checked.append(timed_sweep(variants, sweep_splits, history))
    report("default run, 3 epochs", args.repeats, plain, checked)
    report(f"default sweep, {len(variants)} variants of 784-64-10 sigmoid, 3 epochs on 10,000 images", args.repeats,
           sweep_plain, sweep_checked)


if __name__ == "__main__":
    main()
