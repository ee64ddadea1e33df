"""The playground's preprocessing: a drawing prepared as MNIST's digits were."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core.data.formats import load_path
from core.data.preprocess import prepare
from core.data.spec import DataSpec
from core.errors import DataError


def stroke(canvas: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    canvas[rows, cols] = 1.0
    return canvas


def test_the_ink_box_is_cropped_and_fitted_keeping_its_aspect_ratio():
    canvas = stroke(np.zeros((280, 280)), slice(40, 200), slice(150, 190))  # 160 tall, 40 wide, off-centre
    prepared = prepare(canvas)
    assert prepared.cropped.shape == (160, 40)
    assert prepared.scaled.shape == (20, 5)  # the longer side fits the 20-pixel box; 4:1 kept
    assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.float32
    assert prepared.image.min() >= 0.0 and prepared.image.max() <= 1.0


@pytest.mark.parametrize("rows, cols", [(slice(10, 60), slice(200, 270)), (slice(150, 270), slice(5, 30)),
                                        (slice(100, 103), slice(20, 260))])
def test_the_centre_of_mass_ends_within_half_a_pixel_of_the_centre(rows, cols):
    canvas = stroke(np.zeros((280, 280)), rows, cols)
    canvas = stroke(canvas, slice(rows.start, rows.start + 8), slice(cols.start, cols.stop))  # lopsided ink
    image = prepare(canvas).image
    centre = np.asarray(image.shape) // 2  # MNIST's: pixel (14, 14)
    assert np.abs(np.asarray(ndimage.center_of_mass(image)) - centre).max() <= 0.5


def test_thin_strokes_shrink_to_grey_rather_than_vanish():
    canvas = np.zeros((280, 280))
    canvas[20:260, 100] = 1.0  # one pixel wide, shrunk twelvefold
    canvas[20, 100:180] = 1.0
    image = prepare(canvas).image
    assert image.sum() > 1.0 and 0 < image.max() < 1.0  # blurred in, not sampled away


@pytest.mark.parametrize("canvas", [np.zeros((280, 280)), np.full((280, 280), 0.05),
                                    stroke(np.zeros((280, 280)), slice(5, 6), slice(5, 8))])
def test_an_empty_canvas_is_refused(canvas):
    with pytest.raises(DataError, match="Nothing is drawn yet"):
        prepare(canvas)


def test_a_colour_array_is_refused():
    with pytest.raises(DataError, match="one grey image"):
        prepare(np.ones((28, 28, 3)))


def test_the_size_follows_the_data_description():
    spec = DataSpec("letters", 32, 32, 1, tuple("AB"))
    image = prepare(stroke(np.zeros((100, 100)), slice(10, 90), slice(30, 50)), spec).image
    assert image.shape == (32, 32)


def test_a_real_test_digit_drawn_larger_and_off_centre_comes_back_close(real_mnist_dir):
    digits = load_path(real_mnist_dir).test_images[:20].astype(np.float64) / 255
    for original in digits:
        canvas = np.zeros((280, 280))
        canvas[30:30 + 196, 60:60 + 196] = np.kron(original, np.ones((7, 7)))  # 7× larger, nearer the top left
        back = prepare(canvas).image
        assert np.corrcoef(back.ravel(), original.ravel())[0, 1] > 0.95  # same place, same shape
        assert np.abs(back - original).mean() < 0.03
