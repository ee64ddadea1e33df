"""The two-weight loss grid and the optimiser paths across it."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from core.data import SplitConfig, make_splits
from core.errors import ConfigError
from core.gradients import mean_loss
from core.landscape import OPTIMISERS, WeightRef, default_pair, loss_landscape, optimiser_path, optimiser_paths
from core.models import ModelConfig, init
from core.train import RunConfig, TrainConfig, train


@pytest.fixture(scope="module")
def trained(tiny_mnist):
    splits = make_splits(tiny_mnist, SplitConfig(val_size=100))
    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=100), TrainConfig(optimizer="sgd", epochs=1, learning_rate=1e-2))
    params = list(train(config, splits))[-1].params
    return params, splits.x_train[:300], splits.y_train[:300], config.model


def test_default_pair_is_two_largest_weights_into_one_unit(trained):
    params = trained[0]
    first, second = default_pair(params)
    w = np.abs(np.asarray(params["output"]["w"]))
    assert first.index[1] == second.index[1] == np.unravel_index(w.argmax(), w.shape)[1]
    assert abs(first.value(params)) == w.max()
    assert abs(second.value(params)) == np.sort(w[:, first.index[1]])[-2]


def test_grid_shape_and_minimum_near_the_optimum(trained):
    _, x, y, config = trained
    params = init(jax.random.PRNGKey(1), config)  # untrained: its cost is far from zero, so it is well resolved
    pair = (WeightRef("output", "b", (0,)), WeightRef("output", "b", (1,)))  # convex, with a finite optimum
    # move the pair to its optimum with everything else fixed, then look around it
    best = optimiser_path(params, x, y, config, pair, (pair[0].value(params), pair[1].value(params)), "adam", 0.05,
                          steps=300).points[-1]
    params = {"output": {"w": params["output"]["w"], "b": params["output"]["b"].at[:2].set(best)}}
    grid = loss_landscape(params, x, y, config, pair, span=1.0, resolution=21)
    assert grid.cost.shape == (21, 21) and grid.first.shape == grid.second.shape == (21,)
    assert grid.center == pytest.approx(tuple(best), abs=1e-6)
    low_first, low_second, low_cost = grid.minimum()
    step = 2.0 / 20
    assert abs(low_first - best[0]) <= 1.01 * step and abs(low_second - best[1]) <= 1.01 * step
    assert low_cost == pytest.approx(grid.cost.min())
    # cost[i, j] is the cost at (first[j], second[i])
    moved = {"output": {"w": params["output"]["w"],
                        "b": params["output"]["b"].at[:2].set([grid.first[3], grid.second[15]])}}
    assert grid.cost[15, 3] == pytest.approx(float(mean_loss(moved, x, y, config)), rel=1e-4)
    assert abs(grid.cost[15, 3] - grid.cost[3, 15]) > 1e-4  # so the check above tells rows from columns


def test_each_optimiser_lowers_the_cost(trained):
    params, x, y, config = trained
    pair = default_pair(params)
    start = (pair[0].value(params) - 1.0, pair[1].value(params) + 1.0)
    paths = optimiser_paths(params, x, y, config, pair, start, learning_rate=0.5, momentum=0.9, steps=30)
    assert set(paths) == set(OPTIMISERS)
    for path in paths.values():
        assert path.points.shape == (31, 2) and path.costs.shape == (31,)
        assert tuple(path.points[0]) == pytest.approx(start)
        assert path.costs[-1] < path.costs[0]


def test_bad_choices_are_clear_errors(trained):
    params, x, y, config = trained
    with pytest.raises(ConfigError, match="outside"):
        loss_landscape(params, x, y, config, (WeightRef("output", "w", (784, 0)), WeightRef("output", "w", (0, 0))))
    with pytest.raises(ConfigError, match="different"):
        loss_landscape(params, x, y, config, (WeightRef("output", "b", (1,)),) * 2)
    with pytest.raises(ConfigError, match="learning rate"):
        optimiser_path(params, x, y, config, default_pair(params), (0.0, 0.0), "gd", -1.0)
