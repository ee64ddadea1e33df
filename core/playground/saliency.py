"""Why the network decided: attributions of one class's score (its logit) to the pixels of one image.

Every method takes the image as the network does, a vector of pixels in [0, 1], and returns a (height, width) map
(channels summed), positive where the pixel raises the class's score:
- `vanilla_gradient`: ∂ logit / ∂ pixel;
- `gradient_times_input`: the gradient times the pixel;
- `smoothgrad`: the gradient averaged over copies of the image with Gaussian noise (Smilkov et al., 2017);
- `integrated_gradients`: (x − baseline) times the gradient averaged along the straight path from a black baseline
  to the image (Sundararajan et al., 2017); the attributions add up to logit(x) − logit(baseline) (completeness);
- `occlusion`: how much the logit drops when a square patch is blacked out, averaged over the patches covering
  each pixel (Zeiler & Fergus, 2014).
Each is one compiled program per network (batched with vmap where it evaluates many images).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from core.networks.base import Model, Params


def _logit(model: Model, params: Params, image: jax.Array, target: int) -> jax.Array:
    return model.apply(params, image[None])[0, target]


def _as_map(model: Model, values: jax.Array) -> np.ndarray:
    """Per-pixel values (pixels,) as a (height, width) map, channels summed."""
    return np.asarray(values).reshape(model.spec.image_shape).sum(axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def _gradient(model: Model, params: Params, image: jax.Array, target: jax.Array) -> jax.Array:
    return jax.grad(_logit, argnums=2)(model, params, image, target)


def vanilla_gradient(model: Model, params: Params, image: np.ndarray, target: int) -> np.ndarray:
    return _as_map(model, _gradient(model, params, jnp.asarray(image, jnp.float32), target))


def gradient_times_input(model: Model, params: Params, image: np.ndarray, target: int) -> np.ndarray:
    image = jnp.asarray(image, jnp.float32)
    return _as_map(model, _gradient(model, params, image, target) * image)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _smoothgrad(model: Model, params: Params, image: jax.Array, target: jax.Array, samples: int, noise: jax.Array,
                key: jax.Array) -> jax.Array:
    noisy = image + noise * jax.random.normal(key, (samples, *image.shape), image.dtype)
    return jax.vmap(lambda x: jax.grad(_logit, argnums=2)(model, params, x, target))(noisy).mean(axis=0)


def smoothgrad(model: Model, params: Params, image: np.ndarray, target: int, *, samples: int = 32,
               noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """`noise` is the standard deviation of the Gaussian noise, as a fraction of the pixels' range [0, 1]."""
    key = jax.random.key(seed)
    return _as_map(model, _smoothgrad(model, params, jnp.asarray(image, jnp.float32), target, samples,
                                      jnp.float32(noise), key))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _integrated_gradients(model: Model, params: Params, image: jax.Array, target: jax.Array,
                          steps: int) -> tuple[jax.Array, jax.Array]:
    baseline = jnp.zeros_like(image)
    alphas = (jnp.arange(steps, dtype=image.dtype) + 0.5) / steps  # the midpoint rule along the path
    path = baseline + alphas[:, None] * (image - baseline)
    grads = jax.vmap(lambda x: jax.grad(_logit, argnums=2)(model, params, x, target))(path)
    attributions = (image - baseline) * grads.mean(axis=0)
    gap = _logit(model, params, image, target) - _logit(model, params, baseline, target)
    return attributions, gap


def integrated_gradients(model: Model, params: Params, image: np.ndarray, target: int, *,
                         steps: int = 64) -> tuple[np.ndarray, float]:
    """The attribution map and logit(x) − logit(black), which the map's sum approaches as `steps` grows."""
    attributions, gap = _integrated_gradients(model, params, jnp.asarray(image, jnp.float32), target, steps)
    return _as_map(model, attributions), float(gap)


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _occlusion(model: Model, params: Params, image: jax.Array, target: jax.Array, patch: int,
               stride: int) -> jax.Array:
    height, width, channels = model.spec.image_shape
    picture = image.reshape(height, width, channels)
    tops, lefts = np.arange(0, height - patch + 1, stride), np.arange(0, width - patch + 1, stride)
    corners = jnp.asarray([(top, left) for top in tops for left in lefts])
    rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]

    def covered(corner):
        return ((rows >= corner[0]) & (rows < corner[0] + patch) & (cols >= corner[1]) & (cols < corner[1] + patch))

    masks = jax.vmap(covered)(corners).astype(image.dtype)  # (patches, height, width)
    occluded = (picture[None] * (1 - masks)[..., None]).reshape(len(corners), -1)
    drops = _logit(model, params, image, target) - model.apply(params, occluded)[:, target]
    coverage = masks.sum(axis=0)
    return jnp.where(coverage > 0, (drops[:, None, None] * masks).sum(axis=0) / jnp.maximum(coverage, 1), 0.0)


def occlusion(model: Model, params: Params, image: np.ndarray, target: int, *, patch: int = 4,
              stride: int = 2) -> np.ndarray:
    """The drop of the class's logit when a `patch`×`patch` square is blacked out, every `stride` pixels."""
    height, width, _ = model.spec.image_shape
    if not 1 <= patch <= min(height, width) or stride < 1:
        raise ValueError(f"The patch must be 1 to {min(height, width)} pixels and the stride at least 1.")
    return np.asarray(_occlusion(model, params, jnp.asarray(image, jnp.float32), target, patch, stride))
