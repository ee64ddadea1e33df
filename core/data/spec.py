"""What a dataset's examples look like: the one place an image size or a class count is written down.

A `DataSpec` travels with the loaded data and its splits into every network's `init` and every figure, so
nothing downstream assumes 28×28 images or ten classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class DataSpec:
    """A dataset's name, image shape (height × width × channels) and class names (their count is the classes')."""

    name: str
    height: int
    width: int
    channels: int
    class_names: tuple[str, ...]
    class_noun: str = "class"  # what one class is called in labels: "digit 3", "class T-shirt"

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(name) for name in self.class_names))
        if min(self.height, self.width, self.channels) < 1:
            raise ConfigError(f"{self.name}: images must be at least 1×1×1, got {self.image_shape}.")
        if len(self.class_names) < 2:
            raise ConfigError(f"{self.name}: a classification dataset needs at least two classes.")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels

    @property
    def num_pixels(self) -> int:
        """Features per example: the flattened image."""
        return math.prod(self.image_shape)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_labels(self) -> tuple[str, ...]:
        """Each class as figures and captions name it: 'digit 3'."""
        return tuple(f"{self.class_noun} {name}" for name in self.class_names)

    def to_dict(self) -> dict:
        return {"name": self.name, "height": self.height, "width": self.width, "channels": self.channels,
                "class_names": list(self.class_names), "class_noun": self.class_noun}

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        try:
            return cls(d["name"], int(d["height"]), int(d["width"]), int(d["channels"]), tuple(d["class_names"]),
                       str(d.get("class_noun", "class")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"Not a valid data description: {exc}.") from None


def describe_data(spec: DataSpec) -> str:
    """e.g. 'MNIST (28×28 images, 10 classes)'."""
    channels = f"×{spec.channels}" if spec.channels > 1 else ""
    return f"{spec.name} ({spec.height}×{spec.width}{channels} images, {spec.num_classes} classes)"


MNIST_SPEC = DataSpec("MNIST", 28, 28, 1, tuple(str(digit) for digit in range(10)), "digit")
