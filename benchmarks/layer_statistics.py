"""What recording layer statistics costs: one epoch per network with the statistics off and on, alternately in one
process, best of --repeats (the issue's bar: at most 10% of an epoch's training time).

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/layer_statistics.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.networks.base import ModelConfig
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train

NETWORKS = {
    "softmax regression": ModelConfig("linear"),
    "784-300-10 ReLU MLP (the default)": ModelConfig("mlp", (300,), "relu", "he"),
    "LeNet-5": ModelConfig("lenet5"),
}


def epoch_seconds(config: RunConfig, splits, statistics: bool) -> float:
    """Wall-clock seconds of one epoch after compilation (the probe's first call compiles it: counted)."""
    started = time.perf_counter()
    *_, last = train(config, splits, statistics=statistics)
    return time.perf_counter() - started - last.compile_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    splits = make_splits(load_mnist(args.data_dir), SplitConfig(val_size=0))
    print("| network | epoch without statistics s | with statistics s | overhead |\n|---|--:|--:|--:|")
    for name, model in NETWORKS.items():
        config = RunConfig(model, SplitConfig(val_size=0), TrainConfig(epochs=1))
        epoch_seconds(config, splits, True)  # compile both programs once
        off, on = [], []
        for _ in range(args.repeats):
            off.append(epoch_seconds(config, splits, False))
            on.append(epoch_seconds(config, splits, True))
        print(f"| {name} | {min(off):.2f} | {min(on):.2f} | {min(on) / min(off) - 1:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
