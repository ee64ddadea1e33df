"""How long each saliency method takes for one image, per network: the first call (compiling included) and the
median of later calls. The issue's bar: under 1 s for the MLP and 3 s for LeNet-5 on this CPU.

    python benchmarks/saliency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from core.data.spec import MNIST_SPEC
from core.networks.base import NETWORKS, Model, ModelConfig, seed_key
from core.playground import saliency

METHODS = {
    "vanilla gradient": lambda m, p, x: saliency.vanilla_gradient(m, p, x, 3),
    "gradient × input": lambda m, p, x: saliency.gradient_times_input(m, p, x, 3),
    "SmoothGrad (32 samples)": lambda m, p, x: saliency.smoothgrad(m, p, x, 3, samples=32),
    "integrated gradients (64 steps)": lambda m, p, x: saliency.integrated_gradients(m, p, x, 3, steps=64),
    "occlusion (4×4, stride 2)": lambda m, p, x: saliency.occlusion(m, p, x, 3, patch=4, stride=2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    image = np.random.default_rng(0).random(MNIST_SPEC.num_pixels).astype(np.float32)
    print(f"| network | method | first call s | later calls ms (median of {args.repeats}) |\n|---|---|--:|--:|")
    for name in NETWORKS:
        model = Model(ModelConfig(name, (300,), "relu"), MNIST_SPEC)
        params = model.init(seed_key(0))
        for method, run in METHODS.items():
            started = time.perf_counter()
            run(model, params, image)
            first = time.perf_counter() - started
            later = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                run(model, params, image)
                later.append(time.perf_counter() - started)
            print(f"| {model.describe()} | {method} | {first:.2f} | {1000 * statistics.median(later):.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
