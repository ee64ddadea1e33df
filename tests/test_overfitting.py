"""The overfitting study's configurations, gap and final training accuracy (core.experiments.overfitting)."""

import numpy as np
import pytest

from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.experiments.overfitting import Study, gap_points, study_configs
from core.networks.base import ModelConfig
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train
from core.training.runs import Run

BASE = RunConfig(ModelConfig("linear"), SplitConfig(val_size=5000, per_class=1000),
                 TrainConfig("sgd", 0.1, batch_size=256, epochs=100))


def test_each_size_once_smallest_first_with_the_same_validation_and_epochs():
    configs = study_configs(BASE, [2000, 100, 2000, 50_000], epochs=3, val_size=200)
    assert [c.data.train_size for c in configs] == [100, 2000, 50_000]
    assert {c.data.val_size for c in configs} == {200} and {c.train.epochs for c in configs} == {3}
    assert all(c.data.per_class is None for c in configs)  # the size replaces the base's per-digit subset
    assert [c.train.batch_size for c in configs] == [100, 256, 256]  # shrunk to fit the smallest set
    assert {c.model for c in configs} == {BASE.model}


def test_every_size_is_validated_on_the_same_held_out_images(tiny_mnist):
    configs = study_configs(BASE, [50, 300, 900], epochs=1, val_size=150)
    splits = [make_splits(tiny_mnist, config.data) for config in configs]
    assert all(np.array_equal(s.val_index, splits[0].val_index) for s in splits)
    assert [len(s.y_train) for s in splits] == [50, 300, 900]
    assert all(not set(s.train_index) & set(s.val_index) for s in splits)


@pytest.mark.parametrize("sizes, val_size, message", [
    ([5, 100], 200, "10 images or more"), ([], 200, "at least one"), ([100], 0, "hold out at least 1"),
])
def test_bad_studies_are_refused(sizes, val_size, message):
    with pytest.raises(ConfigError, match=message):
        study_configs(BASE, sizes, epochs=1, val_size=val_size)


def test_gap_in_points():
    assert gap_points(1.0, 0.9) == pytest.approx(10.0)
    assert gap_points(None, 0.9) is None and gap_points(0.9, None) is None


def test_final_training_accuracy_is_the_final_networks_measured_once(tiny_mnist):
    [config] = study_configs(BASE, [300], epochs=2, val_size=100)
    splits = make_splits(tiny_mnist, config.data)
    run = Run("study", config, splits.spec)
    for progress in train(config, splits):
        run.record(progress)
    study = Study("linear", 2, [(300, run)])
    accuracy = study.final_train_accuracy(run, splits)
    assert accuracy == run.evaluate(splits.x_train, splits.y_train).accuracy
    study.train_accuracy[run.run_id] = 0.5  # measured once: not again
    assert study.final_train_accuracy(run, splits) == 0.5
    assert study.final_train_accuracy(Run("untrained", config, splits.spec), splits) is None
