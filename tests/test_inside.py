"""One input's pass through each network: layers, feature maps, and contributions that add up to the logits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.images import MAX_SIDE, canvas_grey, read_grey
from core.data.spec import MNIST_SPEC
from core.errors import DataError
from core.networks.base import Model, ModelConfig, seed_key
from core.playground import inside

IMAGE = np.random.default_rng(0).random(MNIST_SPEC.num_pixels).astype(np.float32)


@pytest.mark.parametrize("config, units, maps, readout", [
    (ModelConfig("linear"), {}, {}, inside.PIXELS),
    (ModelConfig("mlp", (30,), "tanh"), {"hidden_0": 30}, {}, "hidden_0"),
    (ModelConfig("mlp", (30, 20), "relu"), {"hidden_0": 30, "hidden_1": 20}, {}, "hidden_1"),
    (ModelConfig("lenet5"), {"fc1": 120, "fc2": 84},
     {"conv1": (6, 24, 24), "pool1": (6, 12, 12), "conv2": (16, 8, 8), "pool2": (16, 4, 4)}, "fc2"),
])
def test_a_pass_names_every_layer_and_its_contributions_add_up_to_the_logits(config, units, maps, readout):
    model = Model(config, MNIST_SPEC)
    params = model.init(seed_key(1))
    passed = inside.one_pass(model, params, IMAGE)
    assert {name: len(v) for name, v in passed.units.items()} == units
    assert {name: v.shape for name, v in passed.maps.items()} == maps
    assert passed.readout_layer == readout
    logits = np.asarray(model.apply(params, IMAGE[None]))[0]
    np.testing.assert_allclose(passed.logits, logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(passed.probabilities.sum(), 1, rtol=1e-5)
    expected_inputs = IMAGE if readout == inside.PIXELS else passed.units[readout]
    np.testing.assert_allclose(passed.contributions, expected_inputs[:, None] * np.asarray(params["output"]["w"]))
    assert passed.probabilities[passed.ranked[0]] == passed.probabilities.max()


def test_strongest_inputs_rank_by_the_largest_contribution_to_either_class():
    contributions = np.array([[0.1, 0.0, 5.0], [-3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, 0.0]])
    assert list(inside.strongest_inputs(contributions, [0, 1], 3)) == [1, 2, 3]


def test_a_layer_is_laid_out_as_a_near_square_grid():
    grid = inside.unit_grid(np.arange(10.0))
    assert grid.shape == (3, 4)
    assert list(grid.ravel()[:10]) == list(range(10)) and np.isnan(grid.ravel()[10:]).all()


def test_a_canvas_is_light_ink_over_black():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 255, 255, 255)  # ink
    rgba[1, 1] = (255, 255, 255, 0)  # transparent: nothing drawn
    rgba[2, 2] = (255, 255, 255, 128)  # a half-covered edge of a stroke
    grey = canvas_grey(rgba)
    assert grey[0, 0] == 1 and grey[1, 1] == 0 and grey[2, 2] == pytest.approx(128 / 255)
    with pytest.raises(DataError, match="RGBA"):
        canvas_grey(np.zeros((4, 4)))


def png(size: tuple[int, int]) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def test_an_upload_is_read_from_its_open_file_and_a_large_photo_is_shrunk():
    grey = read_grey(png((3000, 1500)), "photo.png")
    assert grey.shape == (MAX_SIDE // 2, MAX_SIDE)


def test_an_image_beyond_the_pixel_budget_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr("core.data.images.MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match="huge.png: 100×100 pixels is more than the 1,000"):
        read_grey(png((100, 100)), "huge.png")
