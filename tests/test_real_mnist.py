"""Accuracy on the real MNIST (skipped when it is not available)."""

import pytest

from core.data import SplitConfig, load_mnist, make_splits
from core.models import ModelConfig
from core.runs import Run
from core.train import RunConfig, TrainConfig, train


@pytest.fixture(scope="module")
def mnist(real_mnist_dir):
    return load_mnist(real_mnist_dir)


def train_and_test(mnist, config):
    splits = make_splits(mnist, config.data)
    run = Run("real", config)
    for progress in train(config, splits):
        run.record(progress)
    run.finish(splits)
    print(f"{config.model.describe()}: test accuracy {run.test_accuracy:.4f} in {run.train_seconds:.1f} s "
          f"(+{run.compile_seconds:.1f} s compile)")
    return run


def test_softmax_regression_one_epoch(mnist):
    """`python -m core train --arch linear --epochs 1` with the CLI's defaults."""
    run = train_and_test(mnist, RunConfig(model=ModelConfig("linear"), train=TrainConfig(epochs=1)))
    assert run.status == "finished" and run.test_accuracy >= 0.91


def test_mlp_300_tanh_adam_three_epochs(mnist):
    config = RunConfig(model=ModelConfig("mlp", (300,), "tanh"), data=SplitConfig(),
                       train=TrainConfig(optimizer="adam", learning_rate=1e-3, batch_size=50, epochs=3))
    run = train_and_test(mnist, config)
    assert run.status == "finished" and run.test_accuracy >= 0.97
