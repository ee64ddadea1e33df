"""How long a user waits for the first point of a training curve, in a freshly started process.

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/first_point.py [--arch mlp] [--repeats 3] [--compile-cache DIR]

For each network (the app's default 784-300-10 ReLU MLP with Adam, softmax regression and LeNet-5), a new
Python process imports the engine, loads MNIST, and starts `core.training.loop.train`; it reports the import and data
times, the seconds from starting the run to its first progress record (initialisation, compilation of the
training and validation programs, and the first chunk of steps) and the compilation part of them. With
--repeats N each network is measured in N fresh processes and the median is printed. Compilation is cold unless
--compile-cache DIR names a folder for the compiled programs (`core.training.compile_cache`, which the app and
the CLI use): an untimed process then fills it first, and the timed ones load from it, as a restarted app does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {"mlp": ("mlp", (300,), "relu", "he"), "linear": ("linear",), "lenet5": ("lenet5",)}

CHILD = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from core.training import compile_cache
if sys.argv[3]:
    compile_cache.enable(Path(sys.argv[3]))
from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.networks.base import ModelConfig
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train
imported = time.perf_counter()
splits = make_splits(load_mnist(sys.argv[2] or None), SplitConfig())
loaded = time.perf_counter()
first = next(train(RunConfig(ModelConfig(*json.loads(sys.argv[1])), train=TrainConfig(epochs=3)), splits))
print(json.dumps({"imports": imported - started, "data": loaded - imported,
                  "first_point": time.perf_counter() - loaded, "compile": first.compile_seconds}))
"""


def measure(network: tuple, data_dir: str | None, cache_dir: str | None) -> dict:
    """One fresh process's timings for `network` (ModelConfig arguments)."""
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(network), data_dir or "", cache_dir or ""],
                            cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=list(NETWORKS), help="network (repeatable; default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per network; the median is shown")
    parser.add_argument("--data-dir", help="MNIST directory (default: $MNIST_DATA_DIR, then the cache)")
    parser.add_argument("--compile-cache", help="keep compiled programs in this folder and time warm starts")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"{'network':<8} {'imports s':>9} {'data s':>7} {'first point s':>14} {'of which compile s':>19}")
    for arch in args.arch or list(NETWORKS):
        if args.compile_cache:
            measure(NETWORKS[arch], args.data_dir, args.compile_cache)  # fills the cache
        runs = [measure(NETWORKS[arch], args.data_dir, args.compile_cache) for _ in range(args.repeats)]
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"{arch:<8} {median['imports']:9.2f} {median['data']:7.2f} {median['first_point']:14.2f} "
              f"{median['compile']:19.2f}", flush=True)


if __name__ == "__main__":
    main()
