"""Layer statistics against plain NumPy on a small network; the probe's records in a run, its exports and the CLI;
the Train page's statistics charts and presets."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_pages import app, button, charts

from core.data.spec import DataSpec
from core.data.splits import SplitConfig, make_splits
from core.networks.base import Model, ModelConfig, seed_key
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train
from core.training.optimizers import make_optimizer
from core.training.programs import TrainState, dropout_key_data
from core.training.runs import Run
from core.training.statistics import BINS, bin_edges, make_probe, measured

SPEC = DataSpec("toy", 4, 4, 1, tuple("abc"))


def test_the_probe_matches_numpy_on_a_small_network_with_dead_units():
    model = Model(ModelConfig("mlp", (6,), "relu"), SPEC)
    params = model.init(seed_key(3))
    dead = [1, 4]  # biases so negative that these units never fire
    params["hidden_0"]["b"] = params["hidden_0"]["b"].at[jnp.array(dead)].set(-100.0)
    tc = TrainConfig("sgd", 0.5, batch_size=5)
    optimizer = make_optimizer(tc, model, 4)
    state = TrainState(params, optimizer.init(params), dropout_key_data(0))
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 16), np.float32), rng.integers(0, 3, 20).astype(np.int32)
    batches = np.arange(20, dtype=np.int32).reshape(4, 5)
    edges = {key: jnp.asarray(value) for key, value in bin_edges(model, params, x[:5]).items()}
    stats = measured(jax.jit(make_probe(model, optimizer))(state, x, y, batches, edges))

    w1, b1 = np.asarray(params["hidden_0"]["w"]), np.asarray(params["hidden_0"]["b"])
    w2, b2 = np.asarray(params["output"]["w"]), np.asarray(params["output"]["b"])
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0)
    never_active = np.all(pre <= 0, axis=0)
    assert never_active[dead].all()
    assert stats["units"]["hidden_0"]["stuck"] == pytest.approx(never_active.mean())
    assert stats["units"]["hidden_0"]["mean"] == pytest.approx(hidden.mean(), rel=1e-5)
    assert stats["units"]["hidden_0"]["std"] == pytest.approx(hidden.std(), rel=1e-5)
    # the gradient of the first batch's mean cross-entropy, by hand
    h, first = hidden[:5], y[:5]
    logits = h @ w2 + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta = (p - np.eye(3)[first]) / 5
    grad_w2 = h.T @ delta
    grad_w1 = x[:5].T @ ((delta @ w2.T) * (pre[:5] > 0))
    for layer, w, g in (("output", w2, grad_w2), ("hidden_0", w1, grad_w1)):
        values = stats["weights"][layer]
        assert values["norm"] == pytest.approx(np.linalg.norm(w), rel=1e-5)
        assert values["gradient_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-4)
        assert values["update_ratio"] == pytest.approx(0.5 * np.linalg.norm(g) / np.linalg.norm(w), rel=1e-4)  # SGD
        assert len(values["histogram"]) == BINS and sum(values["histogram"]) == pytest.approx(1)
    counts, _ = np.histogram(np.clip(w1, edges["w/hidden_0"][0], edges["w/hidden_0"][-1]),
                             bins=np.asarray(edges["w/hidden_0"]))
    np.testing.assert_allclose(stats["weights"]["hidden_0"]["histogram"], counts / w1.size, atol=1e-6)


@pytest.fixture(scope="module")
def vanishing(tiny_mnist):
    config = RunConfig(ModelConfig("mlp", (50,) * 6, "sigmoid", "normal", 0.1), SplitConfig(val_size=200),
                       TrainConfig("sgd", 0.1, epochs=1))
    splits = make_splits(tiny_mnist, config.data)
    run = Run("vanishing", config, splits.spec)
    for progress in train(config, splits, statistics=True):
        run.record(progress)
    return run


def test_a_run_records_statistics_from_initialisation_on_and_shows_vanishing_gradients(vanishing):
    steps = [step for step, _ in vanishing.statistics]
    assert steps[0] == 0 and steps[1:] == [row["step"] for row in vanishing.history]
    first, last = vanishing.statistics[0][1], vanishing.statistics[-1][1]
    assert "edges" in first["weights"]["hidden_0"] and "edges" not in last["weights"]["hidden_0"]
    norms = [last["weights"][f"hidden_{i}"]["gradient_norm"] for i in range(6)]
    assert norms[0] < norms[5] / 100  # each sigmoid layer nearer the input gets a fraction of the gradient above


def test_statistics_are_exported_in_the_csv_and_the_json(vanishing):
    rows = vanishing.statistics_csv().splitlines()
    assert rows[0] == "step,kind,layer,quantity,value"
    assert any(row.startswith("0,weights,hidden_0,gradient_norm,") for row in rows)
    curves = json.loads(vanishing.to_json())["curves"]
    assert curves[0]["statistics"][0][0] == 0
    assert "statistics" not in vanishing.curves_csv().splitlines()[0]


def test_the_train_page_draws_statistics_live_and_after_a_preset(data_env):
    at = app("train").run()
    button(at, "Vanishing gradients").click().run()
    assert at.text_input(key="setting.hidden").value == "100,100,100,100,100,100"
    at.select_slider(key="setting.epochs.slider").set_value(1).run()
    button(at, "Train").click().run()
    assert not at.exception
    drawn = charts(at)
    assert {"statistics_chart", "histogram_chart"} <= set(drawn)
    assert len([t for t in drawn["statistics_chart"]["data"] if t.get("name") == "hidden_0"]) == 5  # 4 panels
    at.segmented_control(key="histogram_kind").set_value("activations").run()
    assert not at.exception and "histogram_chart" in charts(at)
    assert any(b.label == "Layer statistics (CSV)" for b in at.get("download_button"))
