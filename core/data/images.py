"""Image files read safely (a size limit checked before decoding), and a user's image of a handwritten digit (a
scan, a photo, a drawing saved as a file) as a grey drawing, ink bright on black, ready for
`core.data.preprocess.prepare`."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import DataError

BORDER = 0.05  # the outer 5% of each side: what the paper (or the canvas) looks like
MAX_IMAGE_PIXELS = 40_000_000  # larger images are refused before decoding (a decompression bomb, or no digit)


class Ink(enum.StrEnum):
    """Which way round the image is: told from its border, or said by the user."""

    AUTO = "auto"
    DARK = "dark"  # dark ink on light paper (a scan, a photo)
    LIGHT = "light"  # light ink on a dark ground (MNIST's way, a drawing canvas)


MAX_SIDE = 1024  # larger images are shrunk to this longer side first: plenty for one digit, and quick to prepare


def read_pixels(source: Path | str | BinaryIO, mode: str = "L", name: str | None = None) -> np.ndarray:
    """An image file (a path, or an open binary file such as an upload, called `name` in messages) as uint8 pixels
    in PIL `mode` ("L" grey, "RGB" colour), its longer side at most MAX_SIDE, transparent parts on white; a
    DataError naming the file when it is not an image or holds more than MAX_IMAGE_PIXELS pixels (checked from its
    header, before anything is decoded)."""
    name = name or str(source)
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DataError(f"{name}: {width}×{height} pixels is more than the {MAX_IMAGE_PIXELS:,} Digit Lab "
                                "decodes (a decompression bomb?).")
            image.draft(mode, (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale when that is enough
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            if image.mode in ("RGBA", "LA", "P", "PA"):
                white = Image.new("RGBA", image.size, "white")
                image = Image.alpha_composite(white, image.convert("RGBA"))
            return np.asarray(image.convert(mode))
    except FileNotFoundError:
        raise DataError(f"{name}: no such file.") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: not an image Digit Lab can read ({exc}).") from None


def read_grey(source: Path | str | BinaryIO, name: str | None = None) -> np.ndarray:
    """The image file as grey levels in [0, 1] (`read_pixels`); a DataError naming the file when it is not an image
    or too small to hold a digit."""
    name = name or str(source)
    grey = read_pixels(source, name=name) / 255
    if min(grey.shape) < 8:
        raise DataError(f"{name}: {grey.shape[1]}×{grey.shape[0]} pixels is too small to hold a digit.")
    return grey


def canvas_grey(rgba: np.ndarray) -> np.ndarray:
    """A drawing canvas's RGBA pixels (height, width, 4), light ink on a dark or transparent ground, as grey levels
    in [0, 1] over black: what `preprocess.prepare` takes."""
    rgba = np.asarray(rgba, np.float64) / 255
    if rgba.ndim != 3 or rgba.shape[-1] != 4:
        raise DataError(f"A canvas image is height × width × RGBA, not an array of shape {rgba.shape}.")
    return rgba[..., :3].mean(axis=-1) * rgba[..., 3]


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
