"""Evaluation: a network's predictions on a labelled set in fixed-size compiled batches, and their summaries.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np

from core.networks.base import Model, Params
from core.training.programs import compiler_options, cross_entropy

EVAL_BATCH = 1000


@dataclass(frozen=True)
class Evaluation:
    """A network's predictions on a labelled set, and the summaries computed from them."""

    predictions: np.ndarray  # (n,) predicted class
    probabilities: np.ndarray  # (n, classes) softmax
    losses: np.ndarray  # (n,) per-example cross-entropy
    labels: np.ndarray  # (n,) true class
    accuracy: float
    loss: float
    per_class_accuracy: np.ndarray  # (classes,) accuracy on images of each true class (NaN for a class with none)
    confusion: np.ndarray  # (classes, classes) counts, rows = true class, columns = predicted

    @property
    def misclassified(self) -> np.ndarray:
        """Indices of the wrongly classified examples."""
        return np.flatnonzero(self.predictions != self.labels)


@functools.lru_cache(maxsize=16)
def _forward(model: Model, stacked: bool) -> Callable:
    """Jitted (params, x, y) -> (probabilities, losses) for fixed-size batches, kept for the last few networks;
    with `stacked`, vmapped over parameters whose leaves carry a leading variant axis (a sweep's)."""
    def forward(params, x, y):
        logits = model.apply(params, x)
        return jax.nn.softmax(logits), cross_entropy(logits, y)
    return jax.jit(jax.vmap(forward, in_axes=(0, None, None)) if stacked else forward,
                   compiler_options=compiler_options())


def _batched(model: Model, params: Params, x: np.ndarray, y: np.ndarray,
             stacked: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (..., n, classes) and losses (..., n) over a whole set, in fixed batches (the last one padded)."""
    evaluated = model.for_programs()  # without dropout, which evaluation never applies: one program for all rates
    forward = _forward(Model(dataclasses.replace(evaluated.config, dropout=()), model.spec), stacked)
    n = len(y)
    batch = min(EVAL_BATCH, max(n, 1))
    probs, losses = [], []
    for start in range(0, n, batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        pad = batch - len(yb)
        if pad:
            xb = np.concatenate([xb, np.zeros((pad, xb.shape[1]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
        batch_probs, batch_losses = forward(params, xb, yb)
        probs.append(np.asarray(batch_probs)[..., : batch - pad, :])
        losses.append(np.asarray(batch_losses)[..., : batch - pad])
    return np.concatenate(probs, axis=-2), np.concatenate(losses, axis=-1)


def probabilities(params: Params, model: Model, x: np.ndarray) -> np.ndarray:
    """Every class's probability (n, classes) for unlabelled images x, by the same compiled batches."""
    x = np.asarray(x, np.float32).reshape(-1, model.spec.num_pixels)
    return _batched(model, params, x, np.zeros(len(x), np.int32))[0]


def loss_and_accuracy(params: Params, model: Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on (x, y)."""
    probs, losses = _batched(model, params, x, y)
    return float(losses.mean()), float((probs.argmax(-1) == y).mean())


def variants_loss_and_accuracy(stacked: Params, model: Model, x: np.ndarray,
                               y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy and accuracy on (x, y) of every variant of a sweep's stacked parameters: arrays (V,)."""
    probs, losses = _batched(model, stacked, x, y, stacked=True)
    return losses.mean(-1), (probs.argmax(-1) == y).mean(-1)


def evaluate(params: Params, model: Model, x: np.ndarray, y: np.ndarray) -> Evaluation:
    """Predictions, probabilities, accuracy, per-class accuracy and confusion matrix on (x, y)."""
    probs, losses = _batched(model, params, x, y)
    predictions = probs.argmax(-1)
    confusion = np.zeros((model.spec.num_classes, model.spec.num_classes), np.int64)
    np.add.at(confusion, (y, predictions), 1)
    counts = confusion.sum(1)
    per_class = np.where(counts > 0, np.diag(confusion) / np.maximum(counts, 1), np.nan)  # NaN: no such class
    return Evaluation(
        predictions=predictions,
        probabilities=probs,
        losses=losses,
        labels=np.asarray(y),
        accuracy=float((predictions == y).mean()),
        loss=float(losses.mean()),
        per_class_accuracy=per_class,
        confusion=confusion,
    )
