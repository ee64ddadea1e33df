"""The small computations behind the dashboard's views (core.summaries)."""

import numpy as np
import pytest

from core.data.spec import MNIST_SPEC, DataSpec
from core.networks.base import Model, ModelConfig
from core.summaries import (
    confidence,
    digit_gallery,
    eta_seconds,
    feature_map_images,
    learned_next_to_nothing,
    random_subset,
    row_percentages,
    select_examples,
    strongest_feeders,
    symmetric_limit,
    tile_images,
)
from core.training.evaluation import Evaluation
from dashboard.axes import log_axis_range


def make_evaluation(labels, predictions, probabilities) -> Evaluation:
    labels, predictions, probabilities = map(np.asarray, (labels, predictions, probabilities))
    losses = -np.log(probabilities[np.arange(len(labels)), labels])
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (labels, predictions), 1)
    return Evaluation(predictions, probabilities, losses, labels, float((labels == predictions).mean()),
                      float(losses.mean()), np.zeros(10), confusion)


def one_hotish(pairs):
    """Probability rows giving `p` to the predicted digit and the rest spread evenly."""
    rows = []
    for predicted, p in pairs:
        row = np.full(10, (1 - p) / 9)
        row[predicted] = p
        rows.append(row)
    return np.array(rows)


EVALUATION = make_evaluation(
    labels=[3, 3, 3, 5, 1, 3],
    predictions=[5, 5, 3, 3, 1, 8],
    probabilities=one_hotish([(5, 0.6), (5, 0.9), (3, 0.8), (3, 0.7), (1, 0.99), (8, 0.5)]),
)


def test_select_examples_filters_by_true_and_predicted_digit_and_sorts():
    assert list(select_examples(EVALUATION, true_digit=3, predicted_digit=5)) == [1, 0]  # most confident first
    assert list(select_examples(EVALUATION, true_digit=3)) == [1, 0, 5]
    assert list(select_examples(EVALUATION, predicted_digit=3)) == [3]
    assert list(select_examples(EVALUATION, correct=True)) == [4, 2]
    by_loss = select_examples(EVALUATION, true_digit=3, sort_by="loss")
    assert list(EVALUATION.losses[by_loss]) == sorted(EVALUATION.losses[by_loss], reverse=True)
    with pytest.raises(ValueError):
        select_examples(EVALUATION, sort_by="name")


def test_confidence_is_the_probability_of_the_prediction():
    assert confidence(EVALUATION) == pytest.approx([0.6, 0.9, 0.8, 0.7, 0.99, 0.5])


def test_row_percentages_sum_to_100_and_keep_empty_rows_zero():
    percent = row_percentages(EVALUATION.confusion)
    assert percent[3, 5] == pytest.approx(50.0)
    assert percent.sum(axis=1)[[1, 3, 5]] == pytest.approx([100, 100, 100])
    assert percent[0].sum() == 0


def test_eta():
    assert eta_seconds(0, 100, 0.0) is None
    assert eta_seconds(25, 100, 5.0) == pytest.approx(15.0)


def test_the_gallery_shows_each_digit_in_its_row_seeded_and_blank_where_a_digit_has_too_few():
    labels = np.r_[np.arange(200) % 10, [3]]  # 20 images of each digit and one more 3
    labels = labels[~((labels == 7) & (np.arange(len(labels)) > 30))]  # but only three 7s
    images = np.broadcast_to((labels + 1)[:, None, None], (len(labels), 2, 2)).astype(np.uint8)  # digit d: all d+1
    tile = digit_gallery(images, labels, 4, 10, seed=1)
    cells = np.pad(tile, ((0, 2), (0, 2))).reshape(10, 4, 4, 4)[:, :2, :, :2]  # (digit, row, example, column)
    expected = np.broadcast_to(np.arange(1, 11)[:, None, None, None], cells.shape).copy()
    expected[7, :, 3, :] = 0  # the fourth 7 is missing: a blank cell
    np.testing.assert_array_equal(cells, expected)
    np.testing.assert_array_equal(tile, digit_gallery(images, labels, 4, 10, seed=1))
    assert digit_gallery(images, labels[::-1].copy(), 4, 10, seed=1).shape == tile.shape


def test_the_gallery_has_a_row_per_class_of_the_data():
    labels = np.arange(12) % 4  # four classes, three images each
    images = np.broadcast_to((labels + 1)[:, None, None], (12, 3, 3)).astype(np.uint8)
    tile = digit_gallery(images, labels, 3, 4, seed=0)
    assert tile.shape == (4 * 5 - 2, 3 * 5 - 2)
    cells = np.pad(tile, ((0, 2), (0, 2))).reshape(4, 5, 3, 5)[:, :3, :, :3]  # (class, row, example, column)
    np.testing.assert_array_equal(cells, np.broadcast_to(np.arange(1, 5)[:, None, None, None], cells.shape))
    assert digit_gallery(images, labels, 3, 6, seed=0).shape == (6 * 5 - 2, 3 * 5 - 2)  # classes 4, 5: blank rows


def test_tile_images_places_each_image():
    images = np.arange(5 * 2 * 3).reshape(5, 2, 3) + 1
    grid = tile_images(images, columns=2, pad=1)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    assert (grid[3:5, 4:7] == images[3]).all()
    assert grid[2].sum() == 0


def test_learned_next_to_nothing_is_under_twice_chance():
    assert learned_next_to_nothing(0.19, 10) and not learned_next_to_nothing(0.2, 10)
    assert learned_next_to_nothing(0.07, 26) and not learned_next_to_nothing(0.08, 26)  # chance is 1/26
    assert learned_next_to_nothing(0.74, 2) and not learned_next_to_nothing(0.75, 2)  # not 100%: halfway to perfect


def test_input_weight_images_and_strongest_feeders():
    weights = np.zeros((784, 3))
    weights[0, 2] = 1.0
    weights[783, 1] = -2.0
    model = Model(ModelConfig("mlp", (3,)), MNIST_SPEC)
    images = model.weight_images({"hidden_0": {"w": weights, "b": np.zeros(3)},
                                  "output": {"w": np.ones((3, 10)), "b": np.zeros(10)}})
    assert images.layer == "hidden_0" and images.images.shape == (3, 28, 28)
    assert images.images[2, 0, 0] == 1.0 and images.images[1, 27, 27] == -2.0 and np.abs(images.images).sum() == 3.0
    assert images.outputs.shape == (3, 10)  # one hidden layer: it feeds the output layer directly
    wide = np.zeros((16 * 8 * 3, 4))  # a 16×8 RGB image: a unit's image averages the three channels of a pixel
    wide[:3, 0] = (3.0, 6.0, 0.0)
    rgb = DataSpec("rgb", 16, 8, 3, tuple("ab"))
    linear = Model(ModelConfig("linear"), rgb).weight_images({"output": {"w": wide[:, :2], "b": np.zeros(2)}})
    assert linear.images.shape == (2, 16, 8) and linear.images[0, 0, 0] == 3.0 and linear.outputs is None
    assert linear.titles == ["class a", "class b"]
    output = np.array([[0.1, -1.0], [0.5, 0.2], [-0.3, 0.9]])
    assert list(strongest_feeders(output, 0, 2)) == [1, 0]
    assert list(strongest_feeders(output, 1, 3)) == [2, 1, 0]


def test_symmetric_limit():
    assert symmetric_limit(np.array([-3.0, 1.0]), np.array([2.0])) == 3.0
    assert symmetric_limit(np.zeros(3)) == 1.0


def test_log_axis_range_pads_around_the_data_in_decades():
    assert log_axis_range([100]) == pytest.approx((1.5, 2.5))
    assert log_axis_range([10, 1000], pad_decades=0.25) == pytest.approx((0.75, 3.25))


def test_random_subset_is_seeded_sorted_and_never_repeats():
    candidates = np.arange(100, 200, 3)
    first = random_subset(candidates, 10, seed=4)
    assert len(first) == 10 == len(set(first)) and set(first) <= set(candidates)
    assert list(first) == sorted(first) and (first == random_subset(candidates, 10, seed=4)).all()
    assert not (first == random_subset(candidates, 10, seed=5)).all()
    assert list(random_subset(candidates[:3], 10, seed=0)) == list(candidates[:3])  # at most all of them
    assert len(random_subset(np.array([], int), 5, seed=0)) == 0


def test_convolution_filters_and_feature_maps_become_one_image_per_channel():
    kernels = np.arange(5 * 5 * 6, dtype=np.float32).reshape(5, 5, 1, 6)
    filters = Model(ModelConfig("lenet5"), MNIST_SPEC).weight_images({"conv1": {"w": kernels, "b": np.zeros(6)}})
    images = filters.images
    assert filters.layer == "conv1" and images.shape == (6, 5, 5) and (images[2] == kernels[:, :, 0, 2]).all()
    assert filters.titles == [f"filter {i}" for i in range(6)] and filters.outputs is None
    maps = np.arange(8 * 8 * 16).reshape(1, 8, 8, 16)
    assert feature_map_images(maps).shape == (16, 8, 8) and (feature_map_images(maps)[5] == maps[0, :, :, 5]).all()
