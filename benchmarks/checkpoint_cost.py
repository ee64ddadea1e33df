"""What writing a run to the history as it trains costs: the app's default run (784-300-10 ReLU, Adam, batch 50,
3 epochs) trained with and without checkpoints, alternately, in one process; prints each variant's best training
time and the training thread's seconds spent on checkpoints.

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/checkpoint_cost.py --repeats 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.networks.base import ModelConfig
from core.store.history import CHECKPOINT_SECONDS, Checkpoints, RunHistory
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train
from core.training.runs import Run

CONFIG = RunConfig(ModelConfig("mlp", (300,), "relu", "he"), SplitConfig(), TrainConfig(epochs=3))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    splits = make_splits(load_mnist(), CONFIG.data)
    timed(splits, None)  # compile once
    plain, checked = [], []
    with tempfile.TemporaryDirectory() as folder:
        history = RunHistory(Path(folder) / "runs.sqlite3")
        for _ in range(args.repeats):
            plain.append(timed(splits, None)[0])
            checked.append(timed(splits, history))
    best_plain = min(plain)
    best = min(checked)
    print(f"default run, 3 epochs; checkpoints at each epoch end and every {CHECKPOINT_SECONDS:.0f} s, best of "
          f"{args.repeats}")
    print(f"without checkpoints: {best_plain:.2f} s   with: {best[0]:.2f} s "
          f"({100 * (best[0] / best_plain - 1):+.1f}%)   writing: {best[1]:.3f} s in {best[2]} writes "
          f"({100 * best[1] / best_plain:.1f}% of the best run without)")
    print("all runs without:", " ".join(f"{t:.2f}" for t in plain), " with:",
          " ".join(f"{t:.2f}/{s:.3f}" for t, s, _ in checked))


if __name__ == "__main__":
    main()
