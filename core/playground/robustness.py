"""Stressing the network: test accuracy as images are corrupted ever more, and when not to answer.

Each corruption maps (images (n, height, width), severity in [0, 1]) to corrupted images, severity 0 leaving them
as they are; `SEVERITIES` are the levels the curves are drawn at. `coverage_curve` says how accurate the network
is on the images it is most confident about, as it answers fewer of them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from core.networks.base import Model, Params
from core.training.evaluation import evaluate

SEVERITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class Corruption(enum.StrEnum):
    NOISE = "noise"
    ROTATION = "rotation"
    SHIFT = "shift"
    BLUR = "blur"
    ERASED_PATCH = "erased-patch"
    THICKER = "thicker"
    THINNER = "thinner"
    CONTRAST = "contrast"


CORRUPTION_LABELS = {
    Corruption.NOISE: "Gaussian noise (σ up to 0.5)",
    Corruption.ROTATION: "rotation (up to 60°)",
    Corruption.SHIFT: "shift (up to a quarter of the image)",
    Corruption.BLUR: "Gaussian blur (σ up to 2 pixels)",
    Corruption.ERASED_PATCH: "an erased square (up to half the side) in the middle",
    Corruption.THICKER: "thicker strokes (grey dilation, up to 3 pixels)",
    Corruption.THINNER: "thinner strokes (grey erosion, up to 2 pixels)",
    Corruption.CONTRAST: "lower contrast (down to 10%)",
}


def _per_image(images: np.ndarray, corrupt: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.stack([corrupt(image) for image in images])


def corrupted(images: np.ndarray, corruption: Corruption, severity: float, seed: int = 0) -> np.ndarray:
    """`images` (n, height, width), values in [0, 1], corrupted at `severity` (0: unchanged, 1: the most)."""
    if not 0 <= severity <= 1:
        raise ValueError(f"A severity is from 0 to 1, got {severity}.")
    if severity == 0:
        return images.copy()
    side = min(images.shape[1:])
    match Corruption(corruption):
        case Corruption.NOISE:
            noisy = images + np.random.default_rng(seed).normal(0, 0.5 * severity, images.shape)
        case Corruption.ROTATION:
            noisy = ndimage.rotate(images, 60 * severity, axes=(1, 2), reshape=False, order=1)
        case Corruption.SHIFT:
            by = round(side / 4 * severity)
            noisy = ndimage.shift(images, (0, by, by), order=0)
        case Corruption.BLUR:
            noisy = ndimage.gaussian_filter(images, (0, 2 * severity, 2 * severity))
        case Corruption.ERASED_PATCH:
            patch = max(1, round(side / 2 * severity))
            top, left = (images.shape[1] - patch) // 2, (images.shape[2] - patch) // 2
            noisy = images.copy()
            noisy[:, top:top + patch, left:left + patch] = 0
        case Corruption.THICKER:
            size = 1 + round(3 * severity)
            noisy = _per_image(images, lambda image: ndimage.grey_dilation(image, size=(size, size)))
        case Corruption.THINNER:
            size = 1 + round(2 * severity)
            noisy = _per_image(images, lambda image: ndimage.grey_erosion(image, size=(size, size)))
        case Corruption.CONTRAST:
            noisy = images * (1 - 0.9 * severity)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def robustness_curve(model: Model, params: Params, x: np.ndarray, y: np.ndarray, corruption: Corruption,
                     severities=SEVERITIES, progress: Callable[[float], None] | None = None) -> list[float]:
    """Test accuracy at each severity of `corruption`, for pixel vectors x (n, pixels) and labels y."""
    if model.spec.channels != 1:
        raise ValueError("The corruptions are for grey images.")
    images = x.reshape(len(x), model.spec.height, model.spec.width)
    accuracies = []
    for i, severity in enumerate(severities):
        shaken = corrupted(images, corruption, severity).reshape(len(x), -1)
        accuracies.append(evaluate(params, model, shaken, y).accuracy)
        if progress:
            progress((i + 1) / len(severities))
    return accuracies


class Coverage(NamedTuple):
    """As the confidence threshold rises: the share of images answered and the accuracy on them."""

    thresholds: np.ndarray
    coverage: np.ndarray
    accuracy: np.ndarray

    def threshold_for(self, accuracy: float) -> float | None:
        """The lowest threshold at which the answered images are at least `accuracy` right (None: none is)."""
        reached = np.flatnonzero(self.accuracy >= accuracy)
        return float(self.thresholds[reached[0]]) if len(reached) else None


def coverage_curve(confidence: np.ndarray, correct: np.ndarray) -> Coverage:
    """For each image's confidence (its top probability) as the threshold: answering only images at least that
    confident, what share is answered and how many of those are right."""
    order = np.argsort(-confidence, kind="stable")
    answered = np.arange(1, len(order) + 1)
    right = np.cumsum(correct[order])
    thresholds = confidence[order]
    # ties: a threshold answers every image at least that confident, so keep the last of each run of equal values
    last = np.append(thresholds[1:] != thresholds[:-1], True)
    return Coverage(thresholds[last][::-1], (answered / len(order))[last][::-1], (right / answered)[last][::-1])
