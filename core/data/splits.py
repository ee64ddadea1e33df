"""Seeded, stratified train / validation / test splits of a loaded dataset, as float32 features in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import numpy as np

from core.data.formats import Dataset
from core.data.spec import DataSpec
from core.errors import ConfigError
from core.parsing import whole

MAX_SEED = 2**32 - 1  # JAX's keys take 32 bits of a seed (s and s + 2**32 draw the same weights); numpy's need s >= 0


@dataclass(frozen=True)
class SplitConfig:
    """How to carve train / validation out of the 60,000 training images; test is always the full test set."""

    val_size: int = 5000
    train_size: int | None = None  # total training images (stratified); None = all that remain
    per_class: int | None = None  # training images per digit; exclusive with train_size
    seed: int = 0

    def __post_init__(self):
        checks = [
            (whole(self.val_size, 0), "The validation size must be a whole number, 0 or more."),
            (self.train_size is None or whole(self.train_size, 1),
             "The training-subset size must be a whole number, 1 or more."),
            (self.per_class is None or whole(self.per_class, 1), "Images per class must be a whole number, 1 or more."),
            (self.train_size is None or self.per_class is None,
             "Choose either a training-subset size or a number per class, not both."),
            (whole(self.seed, 0, MAX_SEED), f"The split seed must be a whole number from 0 to {MAX_SEED}."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass(frozen=True)
class Splits:
    """Float32 images flattened to (n, pixels) in [0, 1] with int32 labels, the indices into the dataset's training
    images, and the description of the examples (`spec`). `train_on_device` holds (x_train, y_train) as device arrays,
    copied once: every run and sweep on these splits shares them instead of copying the training set again (~0.25 s
    for 55,000 images, waited for at the first chunk)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    spec: DataSpec
    train_on_device: tuple[jax.Array, jax.Array] = field(init=False, repr=False, compare=False)

    def __post_init__(self):  # filled eagerly: a Splits is shared read-only by every app session
        object.__setattr__(self, "train_on_device", (jax.device_put(self.x_train), jax.device_put(self.y_train)))


def stratified_take(labels: np.ndarray, pool: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Take counts[c] random indices of class c from `pool` (indices into labels)."""
    taken = [rng.permutation(pool[labels[pool] == c])[: counts[c]] for c in range(len(counts))]
    return np.sort(np.concatenate(taken))


def proportional_counts(class_sizes: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to their sizes (largest remainders), summing exactly."""
    exact = class_sizes * total / class_sizes.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: total - counts.sum()]] += 1
    return np.minimum(counts, class_sizes)


def check_split(labels: np.ndarray, config: SplitConfig, spec: DataSpec) -> int:
    """How many training images `config` leaves from training images with these labels, or a ConfigError when it
    cannot be carved out of them (from the counts alone: nothing is drawn or copied)."""
    n = len(labels)
    if not 0 <= config.val_size < n:
        raise ConfigError(f"Validation size must be between 0 and {n - 1}, got {config.val_size}.")
    class_sizes = np.bincount(labels, minlength=spec.num_classes)
    left = class_sizes - proportional_counts(class_sizes, config.val_size)
    if config.per_class is not None and not 1 <= config.per_class <= left.min():
        if left.min() < 1:
            missing = ", ".join(spec.class_names[c] for c in np.flatnonzero(left < 1))
            raise ConfigError("A number per class cannot be drawn: no training image is left of "
                              f"{spec.class_noun} {missing}. Train on a total number instead.")
        raise ConfigError(f"Images per class must be between 1 and {left.min()}, got {config.per_class}.")
    if config.train_size is not None and not 1 <= config.train_size <= left.sum():
        raise ConfigError(f"Training-subset size must be between 1 and {left.sum()}, got {config.train_size}.")
    if config.per_class is not None:
        return config.per_class * spec.num_classes
    return int(left.sum()) if config.train_size is None else config.train_size


def default_split(n_train: int) -> SplitConfig:
    """The standard split of n_train training images, its validation set shrunk to a fifth of them on a small
    dataset (where 5,000 would leave too few, or none, to train on)."""
    return SplitConfig(val_size=min(SplitConfig().val_size, n_train // 5))


def make_splits(dataset: Dataset, config: SplitConfig = SplitConfig()) -> Splits:
    """Seeded, stratified validation hold-out and optional training subset; pixels scaled to [0, 1]."""
    labels = dataset.train_labels
    num_classes = dataset.spec.num_classes
    check_split(labels, config, dataset.spec)
    rng = np.random.default_rng(config.seed)
    everything = np.arange(len(labels))
    class_sizes = np.bincount(labels, minlength=num_classes)
    val_index = stratified_take(labels, everything, proportional_counts(class_sizes, config.val_size), rng)
    remaining = np.setdiff1d(everything, val_index, assume_unique=True)
    if config.per_class is not None:
        train_index = stratified_take(labels, remaining, np.full(num_classes, config.per_class), rng)
    elif config.train_size is not None:
        left = np.bincount(labels[remaining], minlength=num_classes)
        train_index = stratified_take(labels, remaining, proportional_counts(left, config.train_size), rng)
    else:
        train_index = remaining
    return Splits(
        x_train=to_features(dataset.train_images[train_index]),
        y_train=labels[train_index].astype(np.int32),
        x_val=to_features(dataset.train_images[val_index]),
        y_val=labels[val_index].astype(np.int32),
        x_test=to_features(dataset.test_images),
        y_test=dataset.test_labels.astype(np.int32),
        train_index=train_index,
        val_index=val_index,
        spec=dataset.spec,
    )


def to_features(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, height, width[, channels]) → float32 (n, pixels) in [0, 1]."""
    pixels = math.prod(images.shape[1:])  # (not -1: an empty set has no size to infer it from)
    return np.multiply(images.reshape(len(images), pixels), np.float32(1 / 255), dtype=np.float32)


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Number of images of each class."""
    return np.bincount(labels, minlength=num_classes)
