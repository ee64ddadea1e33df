"""`python -m core robustness` and `python -m core attack` on a saved model and the data it was trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.cli import main
from core.data.formats import Dataset
from core.data.spec import DataSpec
from core.data.splits import SplitConfig, make_splits
from core.networks.base import Model, ModelConfig
from core.playground.robustness import SEVERITIES, Corruption
from core.store.checkpoint import save_model
from core.training.config import RunConfig, TrainConfig
from core.training.evaluation import evaluate
from core.training.loop import train


@pytest.fixture(scope="module")
def saved(tiny_mnist, tmp_path_factory):
    """A small MLP trained on the tiny MNIST, saved, and its plain test accuracy."""
    config = RunConfig(ModelConfig("mlp", (32,), "relu", "he"), SplitConfig(val_size=200), TrainConfig(epochs=3))
    splits = make_splits(tiny_mnist, config.data)
    params = list(train(config, splits))[-1].params
    path = save_model(tmp_path_factory.mktemp("model") / "mlp.npz", params, config, splits.spec)
    accuracy = evaluate(params, Model(config.model, splits.spec), splits.x_test, splits.y_test).accuracy
    return path, accuracy


def test_robustness_starts_at_the_test_accuracy(saved, tiny_data_dir, capsys):
    path, accuracy = saved
    code = main(["robustness", "--model", str(path), "--data-dir", str(tiny_data_dir), "--corruption", "noise",
                 "--corruption", "blur", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["severities"] == list(SEVERITIES)
    assert set(result["accuracy"]) == {Corruption.NOISE, Corruption.BLUR}
    for curve in result["accuracy"].values():
        assert curve[0] == accuracy and len(curve) == len(SEVERITIES)


def test_attack_starts_at_the_test_accuracy_and_falls(saved, tiny_data_dir, capsys):
    path, accuracy = saved
    assert main(["attack", "--model", str(path), "--data-dir", str(tiny_data_dir), "--eps", "0,0.2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "FGSM" and result["eps"] == [0.0, 0.2]
    assert result["accuracy"][0] == accuracy > result["accuracy"][1]
    assert main(["attack", "--model", str(path), "--data-dir", str(tiny_data_dir), "--eps", "0.2", "--steps", "5"]) == 0
    assert "PGD, 5 steps" in capsys.readouterr().out


def test_a_model_of_other_data_is_refused_in_one_line(saved, tmp_path, capsys):
    path, _ = saved
    rng = np.random.default_rng(0)
    letters = Dataset(rng.integers(0, 255, (40, 16, 16), np.uint8), np.arange(40, dtype=np.uint8) % 4,
                      rng.integers(0, 255, (8, 16, 16), np.uint8), np.arange(8, dtype=np.uint8) % 4, source="test",
                      spec=DataSpec("Shapes", 16, 16, 1, tuple("ABCD")))
    np.savez(tmp_path / "shapes.npz", x_train=letters.train_images, y_train=letters.train_labels,
             x_test=letters.test_images, y_test=letters.test_labels, class_names=np.array(list("ABCD")),
             name=np.array("Shapes"))
    assert main(["robustness", "--model", str(path), "--data-dir", str(tmp_path / "shapes.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was trained on MNIST (28×28 images, 10 classes)" in err
    assert main(["attack", "--model", str(path), "--data-dir", str(tmp_path / "shapes.npz"), "--eps", "-1"]) == 2
    assert "ε values are 0 or more" in capsys.readouterr().err
