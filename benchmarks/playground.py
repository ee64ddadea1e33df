"""The Playground's timings, per network: a drawing's prediction, each saliency method, and the accuracy-against-ε
pass over the test set.

    python benchmarks/playground.py [--repeats 20] [--data-dir DIR]

- prediction: from the PNG the canvas component sends (a base64 data URL, as `CanvasResult.image_data` decodes it)
  to the probabilities and every layer's activations: decoding, `canvas_grey`, `prepare` (MNIST's preprocessing)
  and `inside.one_pass` (bar: 50 ms);
- saliency: one image, one class (bars: 1 s for the MLP, 3 s for LeNet-5);
- attack pass: FGSM on all test images at four ε (MNIST's 10,000 when found, else as many random images).
Each row gives the first call (compiling included) and the median of the later calls.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image, ImageDraw
from timing import first_and_later

from core.data.formats import load_path
from core.data.images import canvas_grey
from core.data.locate import locate_mnist
from core.data.preprocess import prepare
from core.data.spec import MNIST_SPEC
from core.errors import DataNotFoundError
from core.networks.base import Model, ModelConfig, seed_key
from core.playground import attacks, inside, saliency

NETWORKS = {
    "softmax regression": ModelConfig("linear"),
    "784-300-10 ReLU MLP (the default)": ModelConfig("mlp", (300,), "relu"),
    "LeNet-5": ModelConfig("lenet5"),
}
SALIENCY = {
    "vanilla gradient": lambda m, p, x: saliency.vanilla_gradient(m, p, x, 3),
    "gradient × input": lambda m, p, x: saliency.gradient_times_input(m, p, x, 3),
    "SmoothGrad (32 samples)": lambda m, p, x: saliency.smoothgrad(m, p, x, 3, samples=32),
    "integrated gradients (64 steps)": lambda m, p, x: saliency.integrated_gradients(m, p, x, 3, steps=64),
    "occlusion (4×4, stride 2)": lambda m, p, x: saliency.occlusion(m, p, x, 3, patch=4, stride=2),
}
EPSILONS = [0.05, 0.1, 0.15, 0.2]


def canvas_png() -> str:
    """A drawn 7 as the canvas sends it: a 280×280 PNG, white on black, as a data URL."""
    picture = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(picture).line([(70, 60), (210, 60), (120, 230)], fill=(255, 255, 255, 255), width=20)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def predict(model: Model, params, url: str) -> np.ndarray:
    rgba = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(";base64,", 1)[1]))))
    return inside.one_pass(model, params, prepare(canvas_grey(rgba)).image).probabilities


def timed(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Seconds of the first call (compiling included) and the median of `repeats` later ones."""
    first, later = first_and_later(work, repeats)
    return first, statistics.median(later)


def workloads(model: Model, params, url: str, image: np.ndarray, x: np.ndarray,
              y: np.ndarray) -> dict[str, Callable[[], object]]:
    """What the Playground computes for one network, by name."""
    return {"prediction of a drawing": lambda: predict(model, params, url),
            **{method: partial(run, model, params, image) for method, run in SALIENCY.items()},
            f"FGSM on {len(y):,} test images at {len(EPSILONS)} ε":
                lambda: attacks.accuracy_under_attack(model, params, x, y, EPSILONS)}


def test_images(data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        data = load_path(locate_mnist(data_dir, allow_download=False))
        return data.test_images.reshape(len(data.test_images), -1) / np.float32(255), data.test_labels, "MNIST's"
    except DataNotFoundError:
        rng = np.random.default_rng(0)
        return rng.random((10_000, MNIST_SPEC.num_pixels), np.float32), rng.integers(0, 10, 10_000), "random"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    url = canvas_png()
    drawing = canvas_grey(np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))))
    image = prepare(drawing).image.reshape(-1)
    x, y, source = test_images(args.data_dir)
    print(f"Test images: {source}.")
    print(f"| network | what | first call s | later calls ms (median of {args.repeats}) |\n|---|---|--:|--:|")
    for name, config in NETWORKS.items():
        model = Model(config, MNIST_SPEC)
        params = model.init(seed_key(0))
        for what, work in workloads(model, params, url, image, x, y).items():
            first, later = timed(work, 2 if what.startswith("FGSM") else args.repeats)
            print(f"| {name} | {what} | {first:.2f} | {1000 * later:.1f} |", flush=True)


if __name__ == "__main__":
    main()
