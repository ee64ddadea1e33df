"""What each layer does while the network trains: the size of its weights, gradients and updates, and how its units
behave. After each chunk one compiled probe looks at the training state and the chunk's first batches:

- per weight tensor: its norm, the norm of the loss's gradient on the chunk's first batch, the norm of the update
  the optimiser would make from that gradient divided by the weights' norm (healthy training keeps it near 1e-3),
  and histograms of the weights and of log10 |gradient|;
- per hidden layer: the mean and spread of its units' activations on the probe's images, the fraction of units
  that never pass a gradient on any of them (ReLU units never active: dead; tanh/sigmoid units always within 1% of
  their bounds: saturated), and a histogram of the activations.
Histogram bins are fixed for the whole run (from the initial weights and activations), so histograms at different
steps line up as the columns of a heatmap.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.networks.base import Activation, Model, Params
from core.training.config import TrainConfig
from core.training.optimizers import make_optimizer
from core.training.programs import TrainState, compiler_options, cross_entropy

PROBE_BATCHES = 4  # the chunk's first batches whose images the activations are measured on
BINS = 30
HISTOGRAM_SAMPLE = 8192  # values a histogram counts (an even sample of a larger tensor): it costs little per chunk
GRADIENT_DECADES = (-10.0, 0.0)  # log10 |gradient| histogram range
SATURATED = 0.98  # a tanh unit beyond ±0.98 (a sigmoid beyond 0.01/0.99) passes under 4% of the gradient
HEALTHY_UPDATE_RATIO = 1e-3  # the rule of thumb: each step changes the weights by about a thousandth

Stats = dict[str, dict[str, dict[str, Any]]]  # {"weights": {layer: {...}}, "units": {layer: {...}}}


def unit_activation(model: Model) -> Activation:
    """The hidden layers' nonlinearity (networks without the setting use ReLU)."""
    return Activation(model.config.activation) if model.config.activation else Activation.RELU


def hidden_units(intermediates: dict) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Each dense hidden layer's (pre-activations, activations), (images, units)."""
    return {name: (intermediates[f"{name}/pre"], value) for name, value in intermediates.items()
            if f"{name}/pre" in intermediates and value.ndim == 2}


def bin_edges(model: Model, params: Params, images: np.ndarray) -> dict[str, np.ndarray]:
    """Fixed histogram bins for the run: weights over ±4 standard deviations of their initial values (±1 when they
    start at zero), activations over their function's range (ReLU: up to 3× the largest initial activation)."""
    edges = {}
    for layer, tensors in params.items():
        spread = 4 * float(np.std(np.asarray(tensors["w"]))) or 1.0
        edges[f"w/{layer}"] = np.linspace(-spread, spread, BINS + 1, dtype=np.float32)
    activation = unit_activation(model)
    for name, (_, value) in hidden_units(model.forward(params, jnp.asarray(images))).items():
        low, high = {Activation.TANH: (-1.0, 1.0), Activation.SIGMOID: (0.0, 1.0)}.get(
            activation, (0.0, 3 * max(float(jnp.max(value)), 1e-3)))
        edges[f"a/{name}"] = np.linspace(low, high, BINS + 1, dtype=np.float32)
    return edges


def _stuck(activation: Activation, pre: jax.Array, post: jax.Array) -> jax.Array:
    """Per unit: whether it passes (almost) no gradient on every image."""
    if activation is Activation.RELU:
        return jnp.all(pre <= 0, axis=0)
    if activation is Activation.TANH:
        return jnp.all(jnp.abs(post) > SATURATED, axis=0)
    return jnp.all(jnp.abs(post - 0.5) > SATURATED / 2, axis=0)


def _histogram(values: jax.Array, edges: jax.Array) -> jax.Array:
    """Counts per (evenly spaced) bin as fractions, from an even sample of at most HISTOGRAM_SAMPLE values; values
    beyond the edges go to the outermost bins."""
    sample = values.ravel()[::max(1, values.size // HISTOGRAM_SAMPLE)]
    width = (edges[-1] - edges[0]) / BINS
    index = jnp.clip(jnp.floor((sample - edges[0]) / width), 0, BINS - 1).astype(jnp.int32)
    return (index[:, None] == jnp.arange(BINS)).sum(axis=0) / sample.size


def make_probe(model: Model, optimizer: optax.GradientTransformation) -> Callable:
    """(state, x_all, y_all, batch_index (batches, B), edges) -> statistics, as arrays."""
    activation = unit_activation(model)

    def probe(state: TrainState, x_all, y_all, batch_index, edges):
        first = batch_index[0]

        def loss(params):
            return cross_entropy(model.apply(params, x_all[first]), y_all[first]).mean()

        grads = jax.grad(loss)(state.params)
        updates, _ = optimizer.update(grads, state.opt_state, state.params)
        weights = {}
        for layer, tensors in state.params.items():
            w, g, u = tensors["w"], grads[layer]["w"], updates[layer]["w"]
            norm = jnp.linalg.norm(w)
            weights[layer] = {
                "norm": norm, "gradient_norm": jnp.linalg.norm(g),
                "update_ratio": jnp.linalg.norm(u) / jnp.maximum(norm, 1e-12),
                "histogram": _histogram(w, edges[f"w/{layer}"]),
                "gradient_histogram": _histogram(jnp.log10(jnp.abs(g) + 1e-30),
                                                 jnp.linspace(*GRADIENT_DECADES, BINS + 1)),
            }
        images = x_all[batch_index.reshape(-1)]
        units = {}
        for name, (pre, post) in hidden_units(model.forward(state.params, images)).items():
            units[name] = {"mean": post.mean(), "std": post.std(), "stuck": _stuck(activation, pre, post).mean(),
                           "histogram": _histogram(post, edges[f"a/{name}"])}
        return {"weights": weights, "units": units}

    return probe


@functools.lru_cache(maxsize=8)
def compiled_probe(model: Model, tc: TrainConfig, steps_per_epoch: int) -> Callable:
    """The probe for a network and its optimiser, jitted (compiled at its first call), kept per setup."""
    return jax.jit(make_probe(model, make_optimizer(tc, model, steps_per_epoch)),
                   compiler_options=compiler_options())


def measured(stats) -> Stats:
    """The probe's arrays as plain numbers and lists (JSON-able)."""
    return jax.tree_util.tree_map(lambda value: value.tolist() if np.ndim(value) else float(value),
                                  jax.device_get(stats))


def with_edges(stats: Stats, edges: dict[str, np.ndarray]) -> Stats:
    """`stats` with each histogram's bin edges added (the run's first record carries them for the whole run)."""
    for kind, prefix in (("weights", "w/"), ("units", "a/")):
        for layer, values in stats[kind].items():
            values["edges"] = edges[prefix + layer].tolist()
    return stats


def stuck_name(model: Model) -> str:
    """What a unit that passes no gradient is called for this network: "dead" (ReLU) or "saturated"."""
    return "dead" if unit_activation(model) is Activation.RELU else "saturated"
