"""Training by hand: plain gradient descent with the hand-derived gradients (bugs and all), so a planted
mistake shows in the curves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from core.lab.backprop import check_bug, check_supported, hand_gradient
from core.networks.base import Model, Params
from core.training.programs import cross_entropy


@dataclass(frozen=True)
class HandTraining:
    """Plain gradient descent driven by a hand gradient: validation accuracy and loss per check-point (NaN from
    a divergence on)."""

    bug: str | None
    steps: np.ndarray
    accuracy: np.ndarray
    loss: np.ndarray

    @property
    def diverged(self) -> bool:
        return bool(np.isnan(self.loss).any())

    def about_as_good_as(self, other: HandTraining, within: float = 0.01) -> bool:
        """Whether both trained without diverging to final validation accuracies within `within` of each other."""
        return not (self.diverged or other.diverged) and abs(self.accuracy[-1] - other.accuracy[-1]) < within


@functools.partial(jax.jit, static_argnames=("model", "bug"))
def _descend(params, x, y, batch_index, learning_rate, model: Model, bug: str | None):
    """Steps of θ ← θ − η·grad over the batches in batch_index (steps, batch), in one `lax.scan`."""

    def step(params, index):
        grads = hand_gradient(params, x[index], y[index], model, bug)
        return jax.tree_util.tree_map(lambda p, g: p - learning_rate * g, params, grads), None

    return jax.lax.scan(step, params, batch_index)[0]


@functools.partial(jax.jit, static_argnames="model")
def _loss_and_accuracy(params, x, y, model: Model):
    logits = model.apply(params, x)
    return cross_entropy(logits, y).mean(), (logits.argmax(-1) == y).mean()


def train_by_hand(params: Params, model: Model, x_train, y_train, x_val, y_val, *, bug: str | None = None,
                  steps: int = 300, learning_rate: float = 0.1, batch_size: int = 50, eval_every: int = 25,
                  seed: int = 0) -> HandTraining:
    """Train with minibatch gradient descent on the hand gradient (float32), measuring every `eval_every` steps.
    A diverged loss (NaN/Inf) is kept as NaN, not reported as an accuracy."""
    check_supported(model)
    check_bug(bug, model)
    batch_size = min(batch_size, len(y_train))
    chunks = max(1, -(-steps // eval_every))  # whole chunks of eval_every steps: one compilation
    steps = chunks * eval_every
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(y_train)) for _ in range(-(-steps * batch_size // len(y_train)))])
    batches = order[: steps * batch_size].reshape(chunks, eval_every, batch_size).astype(np.int32)
    x_train, y_train, x_val, y_val = map(jnp.asarray, (x_train, y_train, x_val, y_val))
    loss, accuracy = [], []
    for chunk in range(chunks + 1):
        if chunk:
            params = _descend(params, x_train, y_train, batches[chunk - 1], learning_rate, model, bug)
        value_loss, value_accuracy = map(float, _loss_and_accuracy(params, x_val, y_val, model))
        finite = np.isfinite(value_loss)
        loss.append(value_loss if finite else np.nan)
        accuracy.append(value_accuracy if finite else np.nan)
    return HandTraining(bug, np.arange(chunks + 1) * eval_every, np.array(accuracy), np.array(loss))
