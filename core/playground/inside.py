"""One input's way through a network: every layer's activations from the layer-by-layer forward pass, and what
the layer feeding the output contributes to each class's score.

The output layer of every network is dense (`Network.readout` names it), so each class's logit is exactly
bias + Σ_u input_u × weight_{u,class}: the contributions below add up to the logits. For softmax regression the
inputs of that layer are the pixels (template matching, pixel × weight); for an MLP they are the last hidden
layer's units.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core.networks.base import Model, Params

PIXELS = "pixels"  # the readout layer's inputs when the network has no hidden layer


class Pass(NamedTuple):
    """One image through the network: its probabilities, every hidden layer's units and feature maps, and the
    readout layer's inputs with their contributions to each class."""

    probabilities: np.ndarray  # (classes,)
    units: dict[str, np.ndarray]  # hidden layer name -> (units,) activations, in forward order
    maps: dict[str, np.ndarray]  # feature-map layer name -> (channels, height, width), in forward order
    readout_layer: str  # the name of the layer whose values feed the output layer (PIXELS for the input)
    readout_inputs: np.ndarray  # (inputs,) that layer's values
    contributions: np.ndarray  # (inputs, classes): value × weight into each class
    bias: np.ndarray  # (classes,) the output layer's bias: logits = contributions.sum(0) + bias

    @property
    def logits(self) -> np.ndarray:
        return self.contributions.sum(axis=0) + self.bias

    @property
    def ranked(self) -> np.ndarray:
        """The classes, most probable first."""
        return np.argsort(-self.probabilities, kind="stable")


@functools.partial(jax.jit, static_argnums=0)
def _forward(model: Model, params: Params, image: jax.Array) -> dict[str, jax.Array]:
    return model.forward(params, image[None])


def _hidden(name: str) -> bool:
    """An intermediate a user looks at: not a pre-activation, not the outputs."""
    return not name.endswith("/pre") and name not in ("logits", "probabilities")


def one_pass(model: Model, params: Params, image: np.ndarray) -> Pass:
    """`image` (pixels,) through the network, in one compiled call (per network)."""
    image = np.asarray(image, np.float32).reshape(model.spec.num_pixels)
    out = {name: np.asarray(value)[0] for name, value in _forward(model, params, jnp.asarray(image)).items()}
    units = {name: value for name, value in out.items() if _hidden(name) and value.ndim == 1}
    maps = {name: np.moveaxis(value, -1, 0) for name, value in out.items() if _hidden(name) and value.ndim == 3}
    readout = params[model.network.readout]
    weights, bias = np.asarray(readout["w"]), np.asarray(readout["b"])
    fed_by = [name for name, value in units.items() if value.shape == weights.shape[:1]]
    layer = fed_by[-1] if fed_by else PIXELS
    inputs = units[layer] if fed_by else image
    return Pass(out["probabilities"], units, maps, layer, inputs, inputs[:, None] * weights, bias)


def strongest_inputs(contributions: np.ndarray, classes: list[int], count: int) -> np.ndarray:
    """The `count` readout inputs with the largest contribution, in absolute value, to any of `classes` (largest
    first)."""
    strength = np.abs(contributions[:, classes]).max(axis=1)
    return np.argsort(-strength, kind="stable")[:count]


def unit_grid(values: np.ndarray) -> np.ndarray:
    """A layer's units (n,) laid out as a near-square grid (rows, columns), the last row padded with NaN."""
    columns = int(np.ceil(np.sqrt(len(values))))
    rows = -(-len(values) // columns)
    grid = np.full(rows * columns, np.nan)
    grid[: len(values)] = values
    return grid.reshape(rows, columns)
