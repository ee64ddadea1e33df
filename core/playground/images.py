"""A user's image of a handwritten digit (a scan, a photo, a drawing saved as a file) as a grey drawing, ink bright
on black, ready for `core.playground.preprocess.prepare`."""

from __future__ import annotations

import enum
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import DataError

BORDER = 0.05  # the outer 5% of each side: what the paper (or the canvas) looks like


MAX_PIXELS = 50_000_000  # a 50-megapixel photo; a larger image is refused before its pixels are decoded


class Ink(enum.StrEnum):
    """Which way round the image is: told from its border, or said by the user."""

    AUTO = "auto"
    DARK = "dark"  # dark ink on light paper (a scan, a photo)
    LIGHT = "light"  # light ink on a dark ground (MNIST's way, a drawing canvas)


def read_grey(path: Path | str) -> np.ndarray:
    """The image file as grey levels in [0, 1] (transparent parts count as the page's white); a DataError naming the
    file when it is not an image."""
    path = Path(path)
    try:
        with Image.open(path) as image:  # reads the header alone
            if image.width * image.height > MAX_PIXELS:
                raise DataError(f"{path}: {image.width}×{image.height} pixels is more than the "
                                f"{MAX_PIXELS / 1e6:.0f} megapixels Digit Lab reads; scale it down.")
            image.load()
            if image.mode in ("RGBA", "LA", "P"):
                white = Image.new("RGBA", image.size, "white")
                image = Image.alpha_composite(white, image.convert("RGBA"))
            grey = np.asarray(image.convert("L"), np.float64) / 255
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not an image Digit Lab can read ({exc}).") from None
    if min(grey.shape) < 8:
        raise DataError(f"{path}: {grey.shape[1]}×{grey.shape[0]} pixels is too small to hold a digit.")
    return grey


def border_level(grey: np.ndarray) -> float:
    """The median grey level of the image's border: its background."""
    h, w = grey.shape
    dy, dx = max(1, round(BORDER * h)), max(1, round(BORDER * w))
    border = np.concatenate([grey[:dy].ravel(), grey[-dy:].ravel(), grey[:, :dx].ravel(), grey[:, -dx:].ravel()])
    return float(np.median(border))


def as_drawing(grey: np.ndarray, ink: Ink = Ink.AUTO) -> np.ndarray:
    """Ink bright on black, the background levelled to 0 and the strongest ink stretched to 1. AUTO takes a light
    border for paper (dark ink) and a dark one for a dark ground."""
    background = border_level(grey)
    if ink is Ink.AUTO:
        ink = Ink.DARK if background >= 0.5 else Ink.LIGHT
    signal = (background - grey) if ink is Ink.DARK else (grey - background)
    signal = np.clip(signal, 0.0, None)
    peak = signal.max()
    return signal / peak if peak > 0 else signal
