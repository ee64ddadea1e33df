"""The multilayer perceptron: fully connected hidden layers of any depth and width, then a softmax output layer."""

from __future__ import annotations

import itertools

import jax

from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import ConfigError
from core.networks.base import (
    MAX_HIDDEN_WIDTH,
    Activation,
    Init,
    Intermediates,
    ModelConfig,
    Network,
    Params,
    WeightImages,
    dense,
    dropout,
    pixel_images,
)


class MLP(Network):
    name = "mlp"
    title = "MLP"
    description = ("Fully connected hidden layers of any depth and width with tanh, sigmoid or ReLU, then a softmax "
                   "output layer.")
    hyperparameters = ("hidden", "activation", "dropout")

    def check(self, config: ModelConfig) -> None:
        if not config.hidden or min(config.hidden) < 1:
            raise ConfigError("An MLP needs at least one hidden layer, each of width 1 or more.")
        if max(config.hidden) > MAX_HIDDEN_WIDTH:
            raise ConfigError(f"A hidden layer can have at most {MAX_HIDDEN_WIDTH} units, got {max(config.hidden)}.")

    def dropout_layers(self, config: ModelConfig) -> int:
        return len(config.hidden)

    def weight_shapes(self, config: ModelConfig, spec: DataSpec) -> dict[str, tuple[int, ...]]:
        sizes = (spec.num_pixels, *config.hidden, spec.num_classes)
        shapes = list(itertools.pairwise(sizes))
        return {**{f"hidden_{i}": shape for i, shape in enumerate(shapes[:-1])}, "output": shapes[-1]}

    def forward(self, params: Params, x: jax.Array, config: ModelConfig, spec: DataSpec, *, train: bool = False,
                key: jax.Array | None = None) -> Intermediates:
        out, h = {}, x
        activation = Activation(config.activation).function
        for i in range(len(config.hidden)):
            pre = dense(params[f"hidden_{i}"], h)
            h = activation(pre)
            out[f"hidden_{i}/pre"], out[f"hidden_{i}"] = pre, h
            if train and config.dropout:
                h = dropout(h, config.dropout[i], jax.random.fold_in(key, i) if key is not None else None)
        out["logits"] = dense(params["output"], h)
        return out

    def recommended_init(self, config: ModelConfig) -> Init:
        """He for ReLU, Glorot for tanh and sigmoid."""
        return Init.HE if config.activation == Activation.RELU else Init.GLOROT

    def describe(self, config: ModelConfig, spec: DataSpec) -> str:
        name = "-".join(map(str, (spec.num_pixels, *config.hidden, spec.num_classes))) + f" {config.activation}"
        return name + (f" dropout {'/'.join(f'{r:g}' for r in config.dropout)}" if config.dropout else "")

    def weight_images(self, params: Params, config: ModelConfig, spec: DataSpec) -> WeightImages:
        images = pixel_images(params["hidden_0"]["w"], spec)
        deeper = ("" if len(config.hidden) == 1 else " With more than one hidden layer no first-layer unit feeds the "
                  f"outputs directly: a one-hidden-layer MLP shows which units vote for each {spec.class_noun}.")
        return WeightImages(
            "hidden_0", images, [f"unit {u}" for u in range(len(images))],
            f"The first hidden layer: each unit's {spec.num_pixels} incoming weights as a {spec.height}×{spec.width} "
            f"image, all on one scale centred on zero.{deeper}",
            params["output"]["w"] if len(config.hidden) == 1 else None)

    def samples_per_second(self, config: ModelConfig, spec: DataSpec) -> float:
        # measured here on MNIST, scaled by image size
        return 2e7 / (sum(config.hidden) + 30) * MNIST_SPEC.num_pixels / spec.num_pixels

    def sweep_vmap_pays(self, config: ModelConfig, spec: DataSpec) -> bool:
        return max(config.hidden) <= VMAP_MAX_WIDTH


VMAP_MAX_WIDTH = 300  # up to this width a vmapped sweep measured faster than one by one (benchmarks/sweep_speedup.py)

NETWORK = MLP()
