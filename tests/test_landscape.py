"""The two-weight loss grid and the optimiser paths across it."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.lab.backprop import mean_loss
from core.lab.landscape import (
    FALLBACK_LEARNING_RATE,
    FALLBACK_SPAN,
    OptimiserPath,
    WeightRef,
    curvature,
    default_pair,
    loss_landscape,
    optimiser_path,
    optimiser_paths,
    output_curvatures,
)
from core.networks.base import Model, ModelConfig, seed_key
from core.training.config import Optimizer, RunConfig, TrainConfig
from core.training.loop import train


@pytest.fixture(scope="module")
def trained(tiny_mnist):
    splits = make_splits(tiny_mnist, SplitConfig(val_size=100))
    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=100),
                       TrainConfig(optimizer="sgd", epochs=1, learning_rate=1e-2))
    params = list(train(config, splits))[-1].params
    return params, splits.x_train[:300], splits.y_train[:300], Model(config.model, splits.spec)


def test_default_pair_is_the_two_most_curved_output_weights_of_one_unit(trained):
    params, x, y, model = trained
    curved = output_curvatures(params, x, model)
    first, second = default_pair(params, x, model)
    assert first.index[1] == second.index[1] == np.unravel_index(curved.argmax(), curved.shape)[1]
    assert curved[first.index] == curved.max()
    assert curved[second.index] == np.sort(curved[:, first.index[1]])[-2]
    # each is the exact second derivative of the cost in that one weight
    for ref in (first, second, WeightRef("output", "w", (5, 3))):
        def cost(value, ref=ref):
            w = params["output"]["w"].at[ref.index].set(value)
            return mean_loss({**params, "output": {**params["output"], "w": w}}, x, y, model)
        assert curved[ref.index] == pytest.approx(float(jax.hessian(cost)(ref.value(params))), rel=1e-3, abs=1e-7)


def test_grid_shape_and_minimum_near_the_optimum(trained):
    _, x, y, model = trained
    params = model.init(seed_key(1))  # untrained: its cost is far from zero, so it is well resolved
    pair = (WeightRef("output", "b", (0,)), WeightRef("output", "b", (1,)))  # convex, with a finite optimum
    # move the pair to its optimum with everything else fixed, then look around it
    best = optimiser_path(params, x, y, model, pair, (pair[0].value(params), pair[1].value(params)), "adam", 0.05,
                          steps=300).points[-1]
    params = {"output": {"w": params["output"]["w"], "b": params["output"]["b"].at[:2].set(best)}}
    grid = loss_landscape(params, x, y, model, pair, span=1.0, resolution=21)
    assert grid.cost.shape == (21, 21) and grid.first.shape == grid.second.shape == (21,)
    assert grid.center == pytest.approx(tuple(best), abs=1e-6)
    low_first, low_second, low_cost = grid.minimum()
    step = 2.0 / 20
    assert abs(low_first - best[0]) <= 1.01 * step and abs(low_second - best[1]) <= 1.01 * step
    assert low_cost == pytest.approx(grid.cost.min())
    # cost[i, j] is the cost at (first[j], second[i])
    moved = {"output": {"w": params["output"]["w"],
                        "b": params["output"]["b"].at[:2].set([grid.first[3], grid.second[15]])}}
    assert grid.cost[15, 3] == pytest.approx(float(mean_loss(moved, x, y, model)), rel=1e-4)
    assert abs(grid.cost[15, 3] - grid.cost[3, 15]) > 1e-4  # so the check above tells rows from columns


def test_each_optimiser_lowers_the_cost(trained):
    params, x, y, model = trained
    pair = default_pair(params, x, model)
    start = (pair[0].value(params) - 1.0, pair[1].value(params) + 1.0)
    paths = optimiser_paths(params, x, y, model, pair, start, learning_rate=0.5, momentum=0.9, steps=30)
    assert list(paths) == list(Optimizer)
    for path in paths.values():
        assert path.points.shape == (31, 2) and path.costs.shape == (31,)
        assert tuple(path.points[0]) == pytest.approx(start)
        assert path.costs[-1] < path.costs[0] and not path.diverged
    assert OptimiserPath(Optimizer.SGD, np.zeros((3, 2)), np.array([1.0, 3e38, np.inf])).diverged


def test_curvature_matches_finite_differences_and_sets_span_and_learning_rate(trained):
    params, x, y, model = trained
    pair = default_pair(params, x, model)
    found = curvature(params, x, y, model, pair, widths=3.0, max_anisotropy=1e6)
    h = 1e-2
    centre = np.array([ref.value(params) for ref in pair])

    def cost(offset):
        values = centre + offset
        moved = {layer: dict(arrays) for layer, arrays in params.items()}
        for ref, value in zip(pair, values):
            moved[ref.layer][ref.array] = moved[ref.layer][ref.array].at[ref.index].set(value)
        return float(mean_loss(moved, x, y, model))

    steps = np.eye(2) * h
    hessian = np.array([[(cost(a + b) - cost(a - b) - cost(b - a) + cost(-a - b)) / (4 * h * h) for b in steps]
                        for a in steps])
    assert found.eigenvalues == pytest.approx(tuple(np.linalg.eigvalsh(hessian)), rel=0.05)
    low, high = found.eigenvalues
    assert found.learning_rate == pytest.approx(1 / high) and found.fitted
    assert found.span == pytest.approx(min(50.0, 3.0 / np.sqrt(low)))
    assert found.capped == (3.0 / np.sqrt(low) > 50.0)
    capped = curvature(params, x, y, model, pair, widths=3.0, max_anisotropy=1.0)
    assert capped.span == pytest.approx(3.0 / np.sqrt(high))  # the flat direction may be at most 1× wider
    assert capped.capped == (low < high)  # and then the grid shows only the middle of the longer valley


def test_suggested_view_is_a_bowl_the_optimisers_descend(trained):
    params, x, y, model = trained
    pair = default_pair(params, x, model)
    view = curvature(params, x, y, model, pair)
    grid = loss_landscape(params, x, y, model, pair, span=view.span, resolution=21)
    assert grid.cost.max() - grid.cost.min() > 1.0  # not a flat slope: the cost rises well across the grid
    start = (grid.center[0] - 0.8 * view.span, grid.center[1] + 0.8 * view.span)
    paths = optimiser_paths(params, x, y, model, pair, start, view.learning_rate, momentum=0.9, steps=100)
    for path in paths.values():
        assert path.costs[-1] < path.costs[0] - 0.5 * (path.costs[0] - grid.cost.min())


def test_bad_choices_are_clear_errors(trained):
    params, x, y, model = trained
    with pytest.raises(ConfigError, match="outside"):
        loss_landscape(params, x, y, model, (WeightRef("output", "w", (784, 0)), WeightRef("output", "w", (0, 0))))
    with pytest.raises(ConfigError, match="different"):
        loss_landscape(params, x, y, model, (WeightRef("output", "b", (1,)),) * 2)
    with pytest.raises(ConfigError, match="learning rate"):
        optimiser_path(params, x, y, model, default_pair(params, x, model), (0.0, 0.0), Optimizer.SGD, -1.0)
    with pytest.raises(ConfigError, match="Unknown optimiser 'gd'; choose one of sgd, momentum, adam"):
        optimiser_path(params, x, y, model, default_pair(params, x, model), (0.0, 0.0), "gd", 0.1)


def test_weights_the_cost_ignores_get_a_view_to_set_by_hand(trained):
    params, x, y, model = trained
    x = x.copy()
    x[:, 0] = 0  # pixel 0 blank in every image: its weights do not change the cost
    pair = (WeightRef("output", "w", (0, 0)), WeightRef("output", "w", (0, 1)))
    view = curvature(params, x, y, model, pair)
    assert not view.fitted and view.eigenvalues == (0.0, 0.0)
    assert (view.span, view.learning_rate) == (FALLBACK_SPAN, FALLBACK_LEARNING_RATE)
    grid = loss_landscape(params, x, y, model, pair, view.span, resolution=11)
    assert np.ptp(grid.cost) < 1e-6  # flat, as the view says
