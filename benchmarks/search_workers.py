"""A study run by one worker, then the same number of trials by several workers at once, on a fresh SQLite history.

    python benchmarks/search_workers.py [--data-dir DIR] [--trials 6] [--workers 2] [--train-size 10000] [--epochs 1]
                                        [--storage URL]

Each worker is a `python -m core search` process (TPE, median pruner, seeded samplers); the one-worker study runs
--trials trials, the parallel one --workers processes of --trials / --workers each. Prints the wall time of each
(process start, data loading and compiling included), the trials per minute and how the trials ended.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]


def study(name: str, workers: int, trials: int, storage: str, args, env: dict) -> None:
    command = [sys.executable, "-m", "core", "search", "--study", name, "--storage", storage, "--trials",
               str(trials // workers), "--train-size", str(args.train_size), "--epochs", str(args.epochs), "--json"]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    started = time.perf_counter()
    processes = [subprocess.Popen([*command, "--sampler-seed", str(i)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for i in range(workers)]
    for process in processes:
        process.communicate()
        if process.returncode:
            sys.exit(f"a worker failed (exit {process.returncode})")
    seconds = time.perf_counter() - started
    ended = optuna.load_study(study_name=name, storage=storage).trials
    states = collections.Counter(t.state.name.lower() for t in ended)
    best = max((t.value for t in ended if t.value is not None and t.state.name == "COMPLETE"), default=None)
    print(f"{workers} worker(s) × {trials // workers} trials: {seconds:6.1f} s  "
          f"{60 * len(ended) / seconds:5.1f} trials/min  {dict(states)}  best val acc "
          f"{'—' if best is None else f'{best:.4f}'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--storage", help="default: the fresh history's SQLite file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DIGIT_LAB_HOME": home, "PYTHONPATH": str(REPO)}
        storage = args.storage or f"sqlite:///{home}/runs.sqlite3"
        print(f"{os.cpu_count()} CPUs; MLP trials on {args.train_size} images, {args.epochs} epoch(s) each")
        study("one-worker", 1, args.trials, storage, args, env)
        study("parallel", args.workers, args.trials, storage, args, env)


if __name__ == "__main__":
    main()
