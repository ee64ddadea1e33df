"""A drawing (or a photo's digit) prepared the way MNIST's digits were: the ink's bounding box, scaled with its
aspect ratio kept and anti-aliasing to fit a 20×20 box, pasted into 28×28, then shifted by whole pixels so that
its intensity-weighted centre of mass sits at the image's centre. Each step is kept, so a student can see what
the network receives.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import DataError

INK_THRESHOLD = 0.1  # a pixel this bright (of 1) or more counts as ink when finding the bounding box
MIN_INK_PIXELS = 4  # fewer inked pixels is an empty canvas, not a digit
BOX_FRACTION = 20 / 28  # the digit's box within the image, as MNIST's 20 of 28


class Prepared(NamedTuple):
    """Every step, each an image with values in [0, 1], ink bright; `image` is what the network receives."""

    cropped: np.ndarray  # the ink's bounding box, at the drawing's resolution
    scaled: np.ndarray  # fitted into the box (e.g. 20×20), aspect ratio kept
    pasted: np.ndarray  # in the middle of the full-size image
    image: np.ndarray  # shifted so that its centre of mass is at the centre


def ink_box(image: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns that hold ink (pixels at or above INK_THRESHOLD); a DataError for a (nearly) empty
    image."""
    inked = image >= INK_THRESHOLD
    if inked.sum() < MIN_INK_PIXELS:
        raise DataError("Nothing is drawn yet: draw a digit (or choose an image with one) first.")
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def fit_into(image: np.ndarray, box: int) -> np.ndarray:
    """`image` scaled so that its longer side is `box` pixels, aspect ratio kept; blurred first by as much as it
    shrinks, so thin strokes average into grey rather than vanish between samples (anti-aliasing)."""
    factor = box / max(image.shape)
    if factor < 1:
        image = ndimage.gaussian_filter(image, sigma=(1 / factor - 1) / 2)
    shape = tuple(max(1, round(side * factor)) for side in image.shape)
    zoom = [new / old for new, old in zip(shape, image.shape)]
    return np.clip(ndimage.zoom(image, zoom, order=1, grid_mode=True, mode="grid-constant"), 0.0, 1.0)


def centre_of_mass_shift(image: np.ndarray) -> tuple[int, int]:
    """The whole-pixel (rows, columns) shift that brings the intensity-weighted centre of mass nearest the centre,
    as MNIST has it: pixel (14, 14) of 28×28 (measured: its test digits' centres of mass average (13.99, 14.00),
    half a pixel below and right of the geometric centre)."""
    centre = np.asarray(image.shape) // 2
    mass = np.asarray(ndimage.center_of_mass(image))
    return tuple(int(v) for v in np.round(centre - mass))


def shifted(image: np.ndarray, by: tuple[int, int]) -> np.ndarray:
    """`image` moved by whole pixels, zeros coming in at the edges."""
    return ndimage.shift(image, by, order=0, mode="constant", cval=0.0)


def prepare(drawing: np.ndarray, spec: DataSpec = MNIST_SPEC) -> Prepared:
    """A grey drawing (height, width), ink bright, values in [0, 1], prepared as the training images of `spec`
    were; a DataError when nothing is drawn."""
    drawing = np.asarray(drawing, np.float64)
    if drawing.ndim != 2:
        raise DataError(f"A drawing is one grey image (height × width), not an array of shape {drawing.shape}.")
    rows, cols = ink_box(drawing)
    cropped = drawing[rows, cols]
    scaled = fit_into(cropped, round(BOX_FRACTION * min(spec.height, spec.width)))
    pasted = np.zeros((spec.height, spec.width))
    top, left = (spec.height - scaled.shape[0]) // 2, (spec.width - scaled.shape[1]) // 2
    pasted[top:top + scaled.shape[0], left:left + scaled.shape[1]] = scaled
    image = shifted(pasted, centre_of_mass_shift(pasted))
    return Prepared(cropped, scaled, pasted, image.astype(np.float32))
