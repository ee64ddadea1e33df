"""How long the Embeddings page's maps and the Data page's statistics take on MNIST: PCA and t-SNE of the 10,000 test
digits (the issue's bars: under 1 s and under 60 s on this 2-core CPU), a layer's activations, the pixel
statistics of the training images, and nearest-neighbour search.

    MNIST_DATA_DIR=/path/to/mnist python benchmarks/embeddings.py [--repeats 5] [--perplexity 30] [--skip-nn-accuracy]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from datetime import date

import jax
from timing import first_and_later

from core.data.locate import load_mnist
from core.data.splits import to_features
from core.explore.embeddings import activations, pca, tsne
from core.explore.statistics import nearest_neighbour_accuracy, nearest_neighbours, neighbour_pool, pixel_statistics
from core.networks.base import Model, ModelConfig, seed_key


def timed(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Seconds of the first call (compiling included) and the best of `repeats` later ones."""
    first, later = first_and_later(work, repeats)
    return first, min(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--skip-nn-accuracy", action="store_true", help="skip the ~30 s nearest-neighbour classifier")
    args = parser.parse_args()
    mnist = load_mnist(args.data_dir)
    x_test, x_train = to_features(mnist.test_images), to_features(mnist.train_images)
    print(f"{date.today()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
          f"jax {jax.__version__} · {len(x_test):,} test and {len(x_train):,} training digits\n")
    print("| what | first call s (compiling included) | later calls s (best) |\n|---|--:|--:|")

    def row(what: str, work: Callable, repeats: int = args.repeats) -> None:
        first, best = timed(work, repeats)
        print(f"| {what} | {first:.2f} | {best:.3f} |", flush=True)

    row(f"PCA of {len(x_test):,} × {x_test.shape[1]} pixels", lambda: pca(x_test))
    lenet = Model(ModelConfig(arch="lenet5"), mnist.spec)
    params = lenet.init(seed_key(0))
    pool1 = activations(params, lenet, "pool1", x_test)
    row(f"LeNet-5 pool1 activations of {len(x_test):,} digits", lambda: activations(params, lenet, "pool1", x_test))
    row(f"PCA of {len(pool1):,} × {pool1.shape[1]} (LeNet-5 pool1, the widest layer offered)", lambda: pca(pool1))
    row(f"pixel statistics of {len(x_train):,} training images",
        lambda: pixel_statistics(mnist.train_images, mnist.train_labels, mnist.spec.num_classes))
    pool = neighbour_pool(mnist.train_images)
    row(f"8 nearest of {len(x_train):,} training images, one test digit",
        lambda: nearest_neighbours(x_test[:1], pool, 8), repeats=args.repeats * 4)

    stages = {}
    started = time.perf_counter()

    def note(fraction: float, what: str) -> None:
        stages.setdefault(what.split(":")[0], time.perf_counter() - started)

    tsne(x_test, perplexity=args.perplexity, progress=note)
    total = time.perf_counter() - started
    neighbours_done = stages.get("early exaggeration", total)
    print(f"| t-SNE of {len(x_test):,} digits, perplexity {args.perplexity:g} (openTSNE, all cores) | {total:.1f} | "
          f"(PCA to 50 and neighbours {neighbours_done:.1f}, 750 iterations {total - neighbours_done:.1f}) |")
    if not args.skip_nn_accuracy:
        started = time.perf_counter()
        accuracy = nearest_neighbour_accuracy(x_test, mnist.test_labels, pool, mnist.train_labels)
        print(f"| nearest-neighbour classifier on all {len(x_test):,} test digits: accuracy {accuracy:.2%} | "
              f"{time.perf_counter() - started:.1f} | |")


if __name__ == "__main__":
    main()
