"""Adversarial examples: FGSM and PGD, the smallest ε that fools the network, accuracy against ε."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from core.data.splits import SplitConfig, make_splits
from core.networks.base import Model, ModelConfig
from core.playground import attacks
from core.training.config import RunConfig, TrainConfig
from core.training.evaluation import evaluate
from core.training.loop import train


@pytest.fixture(scope="module", params=["linear", "mlp"])
def trained(request, tiny_mnist):
    config = RunConfig(ModelConfig(request.param, (32,), "relu", "he"), SplitConfig(val_size=200),
                       TrainConfig("adam", 3e-3, epochs=3))
    splits = make_splits(tiny_mnist, config.data)
    params = list(train(config, splits))[-1].params
    return Model(config.model, splits.spec), params, splits.x_test[:100], splits.y_test[:100]


def probability_of(model, params, images, labels):
    probs = np.asarray(jax.nn.softmax(model.apply(params, images)))
    return probs[np.arange(len(labels)), labels]


def test_fgsm_stays_within_eps_and_lowers_the_true_class(trained):
    model, params, x, y = trained
    adversarial = attacks.attack(model, params, x, y, 0.1)
    assert np.abs(adversarial - x).max() <= 0.1 + 1e-6 and adversarial.min() >= 0 and adversarial.max() <= 1
    before, after = probability_of(model, params, x, y), probability_of(model, params, adversarial, y)
    assert (after < before).mean() > 0.95 and after.mean() < before.mean()


def test_pgd_fools_more_than_fgsm_at_the_same_eps(trained):
    model, params, x, y = trained
    fgsm, pgd = (attacks.accuracy_under_attack(model, params, x, y, [0.05], steps=steps)[0] for steps in (1, 20))
    assert pgd <= fgsm


def test_a_targeted_attack_moves_towards_its_target(trained):
    model, params, x, y = trained
    others = y != 3
    towards = attacks.attack(model, params, x[others], y[others], 0.3, steps=20, target=3)
    assert (attacks.predictions(model, params, towards) == 3).mean() > 0.8
    assert probability_of(model, params, towards, np.full(others.sum(), 3)).mean() > \
        probability_of(model, params, x[others], np.full(others.sum(), 3)).mean()


def test_accuracy_at_eps_zero_is_the_plain_accuracy(trained):
    model, params, x, y = trained
    seen = []
    curve = attacks.accuracy_under_attack(model, params, x, y, [0.0, 0.05, 0.3], progress=seen.append)
    assert curve[0] == evaluate(params, model, x, y).accuracy
    assert curve[0] >= curve[1] >= curve[2]
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_the_smallest_eps_flips_the_answer_and_a_little_less_does_not(trained):
    model, params, x, y = trained
    right = int(np.flatnonzero(attacks.predictions(model, params, x) == y)[0])
    eps = attacks.smallest_flipping_eps(model, params, x[right], int(y[right]), tolerance=1e-3)
    assert eps is not None and 0 < eps <= 1

    def answer(e):
        return attacks.predictions(model, params, attacks.attack(model, params, x[right], y[right], e))[0]

    assert answer(eps) != y[right] and answer(eps - 1e-3) == y[right]


def test_a_network_that_ignores_its_input_cannot_be_fooled(trained):
    model, params, x, y = trained
    blind = jax.tree_util.tree_map(lambda leaf: np.zeros_like(leaf), params)
    blind["output"]["b"] = np.eye(model.spec.num_classes, dtype=np.float32)[int(y[0])]  # always says y[0]
    assert attacks.smallest_flipping_eps(model, blind, x[0], int(y[0])) is None
    with pytest.raises(ValueError, match="ε"):
        attacks.attack(model, params, x, y, -0.1)


def test_pgd_takes_steps_of_the_chosen_size(trained):
    """One PGD step of scale s moves each pixel by s × ε / steps at most (before the ε-box clips it)."""
    model, params, x, y = trained
    assert attacks.step_size(0.1, 1) == 0.1 and attacks.step_size(0.1, 10, 2.0) == pytest.approx(0.02)
    one_step = attacks.attack(model, params, x, y, 0.3, steps=1, step_scale=1.0)
    small = attacks.attack(model, params, x, y, 0.3, steps=3, step_scale=0.5)
    assert np.abs(small - x).max() <= 0.5 * 0.3 + 1e-6  # three steps of 0.05
    assert np.abs(one_step - x).max() > 0.5 * 0.3
    with pytest.raises(ValueError, match="step size"):
        attacks.attack(model, params, x, y, 0.1, steps=3, step_scale=0)
