"""What the images themselves hold: each class's mean image, the per-pixel spread, the grey-level histogram, and
each digit's nearest training images by pixel distance (batched in JAX)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core.data.splits import to_features
from core.errors import ConfigError

GREY_LEVELS = 256
QUERY_BATCH = 16  # digits whose neighbours one compiled call finds (fewer are padded: one program per pool)
PROGRESS_BATCH = 20 * QUERY_BATCH  # digits classified between progress reports


class PixelStatistics(NamedTuple):
    """Over a set of uint8 images (n, pixels): each class's mean image and count, every pixel's standard deviation
    (in [0, 1] units), and how many pixels take each grey level 0-255."""

    class_means: np.ndarray  # (classes, pixels) in [0, 1]; NaN for a class with no images
    class_counts: np.ndarray  # (classes,)
    pixel_std: np.ndarray  # (pixels,)
    histogram: np.ndarray  # (256,) counts


@functools.partial(jax.jit, static_argnames="num_classes")
def _pixel_statistics(images: jax.Array, labels: jax.Array, num_classes: int):
    x = images.astype(jnp.float32) / 255
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    counts = one_hot.sum(axis=0)
    means = (one_hot.T @ x) / counts[:, None]  # 0/0 = NaN for an empty class
    return means, counts, x.std(axis=0), jnp.bincount(images.ravel(), length=GREY_LEVELS)


def pixel_statistics(images: np.ndarray, labels: np.ndarray, num_classes: int) -> PixelStatistics:
    """Statistics of uint8 images (n, height, width[, channels]) with labels (n,)."""
    if images.dtype != np.uint8:
        raise ConfigError(f"Pixel statistics are of uint8 images, got {images.dtype}.")
    flat = np.asarray(images).reshape(len(images), -1)
    means, counts, std, histogram = _pixel_statistics(flat, np.asarray(labels, np.int32), num_classes)
    return PixelStatistics(np.asarray(means), np.asarray(counts).astype(np.int64), np.asarray(std),
                           np.asarray(histogram).astype(np.int64))


def mean_difference(statistics: PixelStatistics, first: int, second: int) -> np.ndarray:
    """The first class's mean image minus the second's (pixels,): positive where the first has more ink."""
    return statistics.class_means[first] - statistics.class_means[second]


@functools.partial(jax.jit, static_argnames="k")
def _nearest(queries: jax.Array, pool: jax.Array, pool_norms: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    squared = (queries ** 2).sum(axis=1)[:, None] - 2 * queries @ pool.T + pool_norms[None, :]
    negated, indices = jax.lax.top_k(-squared, k)
    return indices, jnp.sqrt(jnp.maximum(-negated, 0.0))


class Neighbours(NamedTuple):
    indices: np.ndarray  # (queries, k) into the pool, nearest first
    distances: np.ndarray  # (queries, k) Euclidean pixel distances


def neighbour_pool(images: np.ndarray) -> jax.Array:
    """uint8 images (n, height, width[, channels]) as the device array (n, pixels) in [0, 1] that
    `nearest_neighbours` searches, copied once."""
    return jnp.asarray(to_features(images))


def nearest_neighbours(queries: np.ndarray, pool: np.ndarray | jax.Array, k: int) -> Neighbours:
    """The k images of `pool` (n, pixels) nearest to each of `queries` (q, pixels) by Euclidean distance, in
    compiled batches of QUERY_BATCH queries against the whole pool. Pass the pool as a device array
    (`jnp.asarray`) to keep it there between calls."""
    queries = np.asarray(queries, np.float32).reshape(len(queries), -1)
    pool = jnp.asarray(pool, jnp.float32)
    if not 1 <= k <= len(pool):
        raise ConfigError(f"Ask for 1 to {len(pool)} neighbours, not {k}.")
    if queries.shape[1] != pool.shape[1]:
        raise ConfigError(f"The digits have {queries.shape[1]} pixels and the pool's images {pool.shape[1]}.")
    norms = (pool ** 2).sum(axis=1)
    indices, distances = [], []
    for start in range(0, len(queries), QUERY_BATCH):
        batch = queries[start:start + QUERY_BATCH]
        padded = np.concatenate([batch, np.zeros((QUERY_BATCH - len(batch), batch.shape[1]), np.float32)])
        found, far = _nearest(padded, pool, norms, k)
        indices.append(np.asarray(found)[:len(batch)])
        distances.append(np.asarray(far)[:len(batch)])
    if not indices:
        return Neighbours(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
    return Neighbours(np.concatenate(indices), np.concatenate(distances))


def nearest_neighbour_accuracy(queries: np.ndarray, labels: np.ndarray, pool: jax.Array, pool_labels: np.ndarray,
                               progress: Callable[[float], None] | None = None) -> float:
    """The accuracy on (queries, labels) of the classifier that answers with the label of the nearest image in
    `pool`; `progress(fraction done)` after each PROGRESS_BATCH queries."""
    if not len(queries):
        raise ConfigError("Give at least one digit to classify.")
    right = 0
    for start in range(0, len(queries), PROGRESS_BATCH):
        found = nearest_neighbours(queries[start:start + PROGRESS_BATCH], pool, 1)
        right += int((np.asarray(pool_labels)[found.indices[:, 0]] == labels[start:start + PROGRESS_BATCH]).sum())
        if progress:
            progress(min(start + PROGRESS_BATCH, len(queries)) / len(queries))
    return right / len(queries)
