"""What a network's layers make of the test digits: a layer's activations for up to 10,000 digits, projected to two
dimensions by PCA (in JAX, from the covariance's eigenvectors) or t-SNE (openTSNE)."""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core.errors import ConfigError
from core.networks.base import Model, Params, seed_key
from core.training.programs import compiler_options

INPUT = "input"  # the layer name of the pixels themselves
LOGITS = "logits"  # every network's last layer (`Model.apply` returns it)
MAX_POINTS = 10_000  # test digits a map holds at most
BATCH = 1000  # test digits per compiled forward pass (the last batch padded: one program per layer)
TSNE_INPUT_DIMENSIONS = 50  # t-SNE starts from the first principal components of wider layers (the usual practice)
PERPLEXITY_RANGE = (2.0, 100.0)
TSNE_EARLY_ITERATIONS, TSNE_ITERATIONS = 250, 500  # openTSNE's defaults: early exaggeration, then refinement
TSNE_PROGRESS_EVERY = 25  # iterations between progress reports


class Method(enum.StrEnum):
    PCA = "pca"
    TSNE = "tsne"

    @property
    def title(self) -> str:
        return {Method.PCA: "PCA", Method.TSNE: "t-SNE"}[self]


class Projection(NamedTuple):
    """Points (n, 2) and, for PCA, the fraction of the total variance along each of the two axes (else None)."""

    points: np.ndarray
    explained: np.ndarray | None


@functools.lru_cache(maxsize=64)
def layer_shapes(model: Model) -> Mapping[str, tuple[int, ...]]:
    """The layers a map can show, in order, with the shape of one digit's activations (a map flattens them): the
    input pixels, each layer's output after its nonlinearity (pre-activations left out; of a CNN, the pooled maps,
    not the unpooled `feature_maps` before them), and the logits. Read-only: cached per model."""
    order = []

    def forward(params, x):
        out = model.forward(params, x)
        order.extend(out)  # the forward pass's order (the shapes come back as a pytree, its keys sorted)
        return out

    params = jax.eval_shape(model.init, seed_key(0))
    shapes = jax.eval_shape(forward, params, jax.ShapeDtypeStruct((1, model.spec.num_pixels), jnp.float32))
    skipped = {"probabilities", *model.network.feature_maps}
    return MappingProxyType({INPUT: (model.spec.num_pixels,), **{
        name: tuple(shapes[name].shape[1:]) for name in order if "/" not in name and name not in skipped}})


def last_hidden_layer(model: Model) -> str:
    """The layer before the logits (the input itself for softmax regression)."""
    return list(layer_shapes(model))[-2]


def initial_params(model: Model, seed: int) -> Params:
    """A run's parameters at initialisation: its seed's key draws the same weights again."""
    return model.init(seed_key(seed))


@functools.lru_cache(maxsize=16)
def _layer_program(model: Model, layer: str) -> Callable:
    """Jitted (params, x) -> the layer's activations flattened to (batch, width), kept for the last few layers."""
    return jax.jit(lambda params, x: model.forward(params, x)[layer].reshape(x.shape[0], -1),
                   compiler_options=compiler_options())


def activations(params: Params, model: Model, layer: str, x: np.ndarray) -> np.ndarray:
    """The layer's activations (n, width) for images x (n, pixels), in fixed-size compiled batches."""
    x = np.asarray(x, np.float32)
    if layer == INPUT:
        return x
    if layer not in layer_shapes(model):
        raise ConfigError(f"{model.describe()} has no layer '{layer}'; choose one of {', '.join(layer_shapes(model))}.")
    program = _layer_program(model, layer)
    out = []
    for start in range(0, len(x), BATCH):
        batch = x[start:start + BATCH]
        padded = np.concatenate([batch, np.zeros((BATCH - len(batch), x.shape[1]), np.float32)])
        out.append(np.asarray(program(params, padded))[:len(batch)])
    return np.concatenate(out) if out else np.zeros((0, math.prod(layer_shapes(model)[layer])), np.float32)


@functools.partial(jax.jit, static_argnames="components")
def _pca(x: jax.Array, components: int) -> tuple[jax.Array, jax.Array]:
    centred = x - x.mean(axis=0)
    covariance = centred.T @ centred / (x.shape[0] - 1)
    variances, vectors = jnp.linalg.eigh(covariance)  # ascending
    top = vectors[:, ::-1][:, :components]
    top = top * jnp.sign(top[jnp.argmax(jnp.abs(top), axis=0), jnp.arange(components)])  # largest loading positive
    return centred @ top, variances[::-1][:components] / jnp.maximum(jnp.trace(covariance), jnp.finfo(x.dtype).tiny)


def pca(x: np.ndarray, components: int = 2) -> Projection:
    """x (n, features) projected onto its covariance's leading eigenvectors, each signed so that its largest
    loading is positive (the same data gives the same picture)."""
    x = np.asarray(x, np.float32)
    if len(x) < 2:
        raise ConfigError(f"A PCA needs at least two points, got {len(x)}.")
    components = min(components, x.shape[1])
    points, explained = _pca(x, components)
    return Projection(np.asarray(points), np.asarray(explained))


def check_perplexity(perplexity: float, points: int) -> None:
    low, high = PERPLEXITY_RANGE
    if not low <= perplexity <= high:
        raise ConfigError(f"The perplexity must be between {low:g} and {high:g}, got {perplexity:g}.")
    if points <= 3 * perplexity:
        raise ConfigError(f"t-SNE with perplexity {perplexity:g} needs more than {3 * perplexity:g} points (each "
                          f"point's neighbourhood is about three perplexities wide), got {points}.")


def tsne(x: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
         progress: Callable[[float, str], None] | None = None) -> Projection:
    """x (n, features) embedded in two dimensions by openTSNE (FFT-accelerated t-SNE, on every core), from the
    first TSNE_INPUT_DIMENSIONS principal components of wider data. `progress(fraction, what)` hears about each
    stage and every TSNE_PROGRESS_EVERY iterations."""
    from openTSNE import TSNE  # ~1 s to import: only when a t-SNE is asked for

    x = np.asarray(x, np.float32)
    check_perplexity(perplexity, len(x))
    report = progress or (lambda fraction, what: None)
    if x.shape[1] > TSNE_INPUT_DIMENSIONS:
        report(0.0, f"reducing {x.shape[1]} dimensions to {TSNE_INPUT_DIMENSIONS} by PCA")
        x = pca(x, TSNE_INPUT_DIMENSIONS).points
    report(0.0, "finding each point's nearest neighbours")
    total = TSNE_EARLY_ITERATIONS + TSNE_ITERATIONS
    done = [0]

    def iterated(iteration: int, error: float, embedding: np.ndarray) -> bool:
        done[0] += TSNE_PROGRESS_EVERY
        stage = "early exaggeration" if done[0] <= TSNE_EARLY_ITERATIONS else "refining"
        report(min(done[0] / total, 1.0), f"{stage}: iteration {done[0]} of {total}, KL divergence {error:.3f}")
        return False  # keep going

    embedding = TSNE(perplexity=perplexity, early_exaggeration_iter=TSNE_EARLY_ITERATIONS, n_iter=TSNE_ITERATIONS,
                     n_jobs=-1, random_state=seed, callbacks=iterated,
                     callbacks_every_iters=TSNE_PROGRESS_EVERY).fit(np.asarray(x, np.float64))
    return Projection(np.asarray(embedding, np.float32), None)


def project(x: np.ndarray, method: Method, *, perplexity: float = 30.0, seed: int = 0,
            progress: Callable[[float, str], None] | None = None) -> Projection:
    """x (n, features) in two dimensions by `method`; a ConfigError for activations that are not all finite (a
    diverged network's)."""
    if not np.isfinite(x).all():
        raise ConfigError("Some of these activations are infinite or NaN (the weights blew up): there is nothing to "
                          "map. Pick another layer or run.")
    if Method(method) is Method.PCA:
        return pca(x)
    return tsne(x, perplexity=perplexity, seed=seed, progress=progress)
