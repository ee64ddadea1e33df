"""Small pure computations the dashboard shows: example selection, confusion percentages, weight rankings, ETA.

Everything here takes and returns plain numpy arrays, so the pages only lay out what these functions return.
"""

from __future__ import annotations

import numpy as np

from core.training.evaluation import Evaluation

SORT_KEYS = ("confidence", "loss")


ENORMOUS_LOSS = 100.0  # a mean cross-entropy no sane network has: guessing gives ln 10 ≈ 2.3


def enormous(loss: float) -> bool:
    """Whether a mean cross-entropy is infinite, NaN or far beyond any sane network's (a far too high rate)."""
    return not loss <= ENORMOUS_LOSS


def learned_next_to_nothing(accuracy: float, num_classes: int) -> bool:
    """Whether an accuracy is under twice chance (20% for ten classes; with few classes, under halfway from chance
    to perfect: 75% for two): training failed, or has hardly begun."""
    chance = 1 / num_classes
    return accuracy < min(2 * chance, (1 + chance) / 2)


def eta_seconds(step: int, total_steps: int, elapsed: float) -> float | None:
    """Seconds left at the pace so far (None before the first step)."""
    if step <= 0 or elapsed <= 0:
        return None
    return (total_steps - step) * elapsed / step


def row_percentages(confusion: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix as percentages of its true class (rows with no images stay 0)."""
    totals = confusion.sum(axis=1, keepdims=True)
    return 100.0 * confusion / np.maximum(totals, 1)


def confidence(evaluation: Evaluation) -> np.ndarray:
    """The probability the network gave to its own prediction, per example."""
    return evaluation.probabilities[np.arange(len(evaluation.predictions)), evaluation.predictions]


def select_examples(
    evaluation: Evaluation,
    *,
    correct: bool = False,
    true_digit: int | None = None,
    predicted_digit: int | None = None,
    sort_by: str = "confidence",
) -> np.ndarray:
    """Indices of the correctly (or wrongly) classified examples matching the filters, most confident /
    highest loss first."""
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by must be one of {SORT_KEYS}, got {sort_by!r}")
    keep = (evaluation.predictions == evaluation.labels) == correct
    if true_digit is not None:
        keep &= evaluation.labels == true_digit
    if predicted_digit is not None:
        keep &= evaluation.predictions == predicted_digit
    index = np.flatnonzero(keep)
    key = confidence(evaluation) if sort_by == "confidence" else evaluation.losses
    return index[np.argsort(-key[index], kind="stable")]


def digit_gallery(images: np.ndarray, labels: np.ndarray, per_digit: int, num_classes: int,
                  seed: int = 0) -> np.ndarray:
    """A tiled grid with a row per class of up to `per_digit` seeded random examples of it (blank cells where a
    class has fewer images)."""
    rng = np.random.default_rng(seed)
    cells = np.zeros((num_classes, per_digit, *images.shape[1:]), images.dtype)
    for digit in range(num_classes):
        of_digit = np.flatnonzero(labels == digit)
        chosen = rng.choice(of_digit, min(per_digit, len(of_digit)), replace=False)
        cells[digit, :len(chosen)] = images[chosen]
    return tile_images(cells.reshape(-1, *images.shape[1:]), columns=per_digit)


def random_subset(candidates: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded random choice of at most `size` of the candidates, none twice, in ascending order."""
    candidates = np.asarray(candidates)
    return np.sort(np.random.default_rng(seed).choice(candidates, min(size, len(candidates)), replace=False))


def tile_images(images: np.ndarray, columns: int, pad: int = 2) -> np.ndarray:
    """Lay (n, h, w) images out in a grid `columns` wide with `pad` pixels of background between them."""
    n, h, w = images.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * (h + pad) - pad, columns * (w + pad) - pad), images.dtype)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = image
    return grid


def feature_map_images(maps: np.ndarray) -> np.ndarray:
    """One image's feature maps (1, h, w, channels) → one image per channel (channels, h, w)."""
    return np.moveaxis(np.asarray(maps)[0], -1, 0)


def strongest_feeders(output_weights: np.ndarray, digit: int, count: int) -> np.ndarray:
    """The `count` hidden units with the largest weight into output `digit` (largest first).

    `output_weights` is the (hidden, classes) matrix from the last hidden layer into the outputs.
    """
    column = np.asarray(output_weights)[:, digit]
    return np.argsort(-column, kind="stable")[:count]


def symmetric_limit(*arrays: np.ndarray) -> float:
    """The largest absolute value over the arrays: the bound of a zero-centred colour scale (1.0 if all zero)."""
    limit = max(float(np.abs(np.asarray(a)).max()) for a in arrays)
    return limit or 1.0
