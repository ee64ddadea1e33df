"""Softmax regression: one weight per pixel per class plus a bias; the softmax of the scores is the prediction."""

from __future__ import annotations

import jax

from core.data.spec import MNIST_SPEC, DataSpec
from core.networks.base import Intermediates, ModelConfig, Network, Params, WeightImages, dense, pixel_images


class SoftmaxRegression(Network):
    name = "linear"
    title = "Softmax regression"
    description = ("Pixels → classes: one weight per pixel per class plus a bias; the softmax of the class scores is "
                   "the predicted distribution.")

    def weight_shapes(self, config: ModelConfig, spec: DataSpec) -> dict[str, tuple[int, ...]]:
        return {"output": (spec.num_pixels, spec.num_classes)}

    def forward(self, params: Params, x: jax.Array, config: ModelConfig, spec: DataSpec, *, train: bool = False,
                key: jax.Array | None = None) -> Intermediates:
        return {"logits": dense(params["output"], x)}

    def weight_images(self, params: Params, config: ModelConfig, spec: DataSpec) -> WeightImages:
        return WeightImages(
            "output", pixel_images(params["output"]["w"], spec), list(spec.class_labels),
            f"Each output unit's {spec.num_pixels} incoming weights drawn as a {spec.height}×{spec.width} image, all "
            "on one scale centred on zero: red pixels push towards that class, blue pixels against it.", None)

    def samples_per_second(self, config: ModelConfig, spec: DataSpec) -> float:
        return 350_000 * MNIST_SPEC.num_pixels / spec.num_pixels  # measured here on MNIST, scaled by image size

    def sweep_vmap_pays(self, config: ModelConfig, spec: DataSpec) -> bool:
        return True


NETWORK = SoftmaxRegression()
