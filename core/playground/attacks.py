"""Fooling the network: small changes to an image, at most ε per pixel, that change its answer.

FGSM (Goodfellow et al., 2015) takes one step of size ε along the sign of the loss's gradient; PGD (Madry et al.,
2018), iterated FGSM, takes `steps` smaller ones, each projected back into the ε-box around the image and into
[0, 1]. Untargeted, a step raises the loss of the true class; targeted ("make it say k"), it lowers the loss of
class k. Everything works on batches of images (pixel vectors), one compiled program per network and setting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.networks.base import Model, Params
from core.training.evaluation import probabilities

BATCH = 500  # images per compiled call when a whole test set is attacked


def _loss(model: Model, params: Params, images: jax.Array, labels: jax.Array) -> jax.Array:
    """The summed cross-entropy: its gradient for each image is that image's own loss's."""
    return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, images), labels).sum()


@functools.partial(jax.jit, static_argnums=(0, 5))
def _attack(model: Model, params: Params, images: jax.Array, labels: jax.Array, eps: jax.Array, steps: int,
            targets: jax.Array, targeted: jax.Array, step_size: jax.Array) -> jax.Array:
    aimed = jnp.where(targeted, targets, labels)
    direction = jnp.where(targeted, -1.0, 1.0)  # away from the true class, or towards the target

    def step(x, _):
        grad = jax.grad(_loss, argnums=2)(model, params, x, aimed)
        x = x + direction * step_size * jnp.sign(grad)
        return jnp.clip(jnp.clip(x, images - eps, images + eps), 0.0, 1.0), None

    return jax.lax.scan(step, images, None, length=steps)[0]


PGD_STEP_SCALE = 2.5  # PGD's usual step, 2.5 ε / steps: the ε-box is crossed within the steps


def step_size(eps: float, steps: int, scale: float = PGD_STEP_SCALE) -> float:
    """FGSM's one step is ε; PGD's each `scale` × ε / steps."""
    return eps if steps == 1 else scale * eps / steps


def attack(model: Model, params: Params, images: np.ndarray, labels: np.ndarray, eps: float, *, steps: int = 1,
           target: int | None = None, step_scale: float = PGD_STEP_SCALE) -> np.ndarray:
    """The perturbed images (n, pixels): FGSM with `steps` 1, PGD with more (each of `step_size`); towards class
    `target` if given."""
    if eps < 0 or steps < 1 or step_scale <= 0:
        raise ValueError("ε must be 0 or more, the steps 1 or more and the step size above 0.")
    images, labels = np.atleast_2d(np.asarray(images, np.float32)), np.atleast_1d(np.asarray(labels, np.int32))
    targets = np.full_like(labels, -1 if target is None else target)
    return np.asarray(_attack(model, params, jnp.asarray(images), jnp.asarray(labels), jnp.float32(eps), steps,
                              jnp.asarray(targets), jnp.asarray(target is not None),
                              jnp.float32(step_size(eps, steps, step_scale))))


def predictions(model: Model, params: Params, images: np.ndarray) -> np.ndarray:
    """The predicted class of each image, by the engine's compiled evaluation."""
    return probabilities(params, model, images).argmax(-1)


def smallest_flipping_eps(model: Model, params: Params, image: np.ndarray, label: int, *, steps: int = 1,
                          target: int | None = None, step_scale: float = PGD_STEP_SCALE,
                          tolerance: float = 1e-3) -> float | None:
    """The smallest ε (to `tolerance`) at which the attack changes the answer (to `target`, if given), by bisection
    over [0, 1]; None when even ε = 1 does not."""
    def fooled(eps: float) -> bool:
        answer = predictions(model, params, attack(model, params, image, label, eps, steps=steps, target=target,
                                                    step_scale=step_scale))[0]
        return answer == target if target is not None else answer != label

    if not fooled(1.0):
        return None
    low, high = 0.0, 1.0
    while high - low > tolerance:
        middle = (low + high) / 2
        low, high = (low, middle) if fooled(middle) else (middle, high)
    return high


def accuracy_under_attack(model: Model, params: Params, images: np.ndarray, labels: np.ndarray,
                          epsilons: list[float], *, steps: int = 1, step_scale: float = PGD_STEP_SCALE,
                          progress: Callable[[float], None] | None = None) -> list[float]:
    """The accuracy on (images, labels) when every image is attacked with each ε, in batches of BATCH."""
    accuracies = []
    for i, eps in enumerate(epsilons):
        right = 0
        for start in range(0, len(labels), BATCH):
            batch, truth = images[start:start + BATCH], labels[start:start + BATCH]
            right += int((predictions(model, params, attack(model, params, batch, truth, eps, steps=steps,
                                                                step_scale=step_scale)) ==
                          truth).sum())
            if progress:
                progress((i + min(start + BATCH, len(labels)) / len(labels)) / len(epsilons))
        accuracies.append(right / len(labels))
    return accuracies
