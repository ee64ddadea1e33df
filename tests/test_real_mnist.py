"""Accuracy, and a gradient check, on the real MNIST (skipped when it is not available)."""

import pytest

from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.lab.gradient_check import PASS_RELATIVE_ERROR, gradient_check
from core.networks.base import Model, ModelConfig, seed_key
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train
from core.training.runs import Run


@pytest.fixture(scope="module")
def mnist(real_mnist_dir):
    return load_mnist(real_mnist_dir)


def train_and_test(mnist, config):
    splits = make_splits(mnist, config.data)
    run = Run("real", config, splits.spec)
    for progress in train(config, splits):
        run.record(progress)
    run.finish(splits)
    print(f"{run.model.describe()}: test accuracy {run.test_accuracy:.4f} in {run.train_seconds:.1f} s "
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


def test_float32_gradient_check_catches_a_mistake_confined_to_the_hidden_layer(mnist):
    """`gradcheck --arch mlp --hidden 100 --activation sigmoid --dtype float32 --bug derivative-at-activation
    --weights 1000`: over all checked weights together the error is below the float32 threshold (the correct output
    layer's larger gradients dilute it), but W₁'s and b₁'s own errors are not."""
    splits = make_splits(mnist, SplitConfig(val_size=0))
    model = Model(ModelConfig("mlp", (100,), "sigmoid"), splits.spec)
    check = gradient_check(model.init(seed_key(0)), splits.x_train[:100], splits.y_train[:100], model,
                           weights=1000, bug="derivative-at-activation", dtypes=("float32",))
    assert check.best("float32").rel_error < PASS_RELATIVE_ERROR["float32"]
    assert not check.passed and check.worst_tensor()[0].startswith("hidden_0")
