"""Robustness curves under corruptions, and the accuracy a network keeps when it may decline to answer."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import SplitConfig, make_splits
from core.networks.base import Model, ModelConfig
from core.playground import robustness
from core.playground.robustness import Corruption
from core.summaries import confidence
from core.training.config import RunConfig, TrainConfig
from core.training.evaluation import evaluate
from core.training.loop import train


@pytest.fixture(scope="module")
def trained(tiny_mnist):
    config = RunConfig(ModelConfig("mlp", (32,), "relu", "he"), SplitConfig(val_size=200), TrainConfig(epochs=3))
    splits = make_splits(tiny_mnist, config.data)
    return Model(config.model, splits.spec), list(train(config, splits))[-1].params, splits.x_test, splits.y_test


@pytest.mark.parametrize("corruption", list(Corruption))
def test_severity_zero_is_the_plain_test_accuracy_and_the_most_changes_the_images(trained, corruption):
    model, params, x, y = trained
    curve = robustness.robustness_curve(model, params, x, y, corruption)
    assert len(curve) == len(robustness.SEVERITIES)
    assert curve[0] == evaluate(params, model, x, y).accuracy
    images = x.reshape(-1, 28, 28)
    assert np.array_equal(robustness.corrupted(images, corruption, 0.0), images)
    worst = robustness.corrupted(images, corruption, 1.0)
    assert worst.shape == images.shape and worst.min() >= 0 and worst.max() <= 1
    assert np.abs(worst - images).mean() > 0.01


def test_the_corruptions_do_what_they_say():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 8:20, 13:15] = 1.0  # a vertical bar
    thicker = robustness.corrupted(image, Corruption.THICKER, 1.0)
    thinner = robustness.corrupted(image, Corruption.THINNER, 0.5)
    assert thicker.sum() > image.sum() > thinner.sum()
    assert robustness.corrupted(image, Corruption.CONTRAST, 1.0).max() == pytest.approx(0.1)
    shifted = robustness.corrupted(image, Corruption.SHIFT, 1.0)
    assert shifted[0, 15:27, 20:22].sum() == image.sum()  # seven pixels down and right
    erased = robustness.corrupted(image, Corruption.ERASED_PATCH, 1.0)
    assert erased[0, 7:21, 7:21].sum() == 0
    rotated = robustness.corrupted(image, Corruption.ROTATION, 0.75)  # 45°: the bar now leans
    assert rotated[0, 8:20, 13:15].sum() < 0.5 * image.sum()
    with pytest.raises(ValueError, match="severity"):
        robustness.corrupted(image, Corruption.BLUR, 1.5)


def test_answering_fewer_images_raises_the_accuracy_on_those_answered(trained):
    model, params, x, y = trained
    evaluation = evaluate(params, model, x, y)
    curve = robustness.coverage_curve(confidence(evaluation), evaluation.predictions == evaluation.labels)
    assert curve.coverage[0] == 1.0 and curve.accuracy[0] == pytest.approx(evaluation.accuracy)
    assert np.all(np.diff(curve.thresholds) > 0) and np.all(np.diff(curve.coverage) < 0)
    threshold = curve.threshold_for(curve.accuracy.max())
    answered = confidence(evaluation) >= threshold
    assert (evaluation.predictions == evaluation.labels)[answered].mean() == curve.accuracy.max()


def test_ties_in_confidence_are_answered_together():
    curve = robustness.coverage_curve(np.array([0.9, 0.5, 0.9, 0.7]), np.array([True, False, False, True]))
    assert curve.thresholds.tolist() == [0.5, 0.7, 0.9]
    assert curve.coverage.tolist() == [1.0, 0.75, 0.5] and curve.accuracy.tolist() == [0.5, 2 / 3, 0.5]
    assert curve.threshold_for(0.6) == 0.7 and curve.threshold_for(0.99) is None
