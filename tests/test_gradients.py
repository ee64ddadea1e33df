"""Hand-derived gradients against jax.grad and finite differences; planted bugs; the CLI."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.cli import main
from core.data.spec import MNIST_SPEC
from core.errors import ConfigError
from core.lab.backprop import BUGS
from core.lab.gradient_check import (
    finite_differences,
    gradient_check,
    hand_vs_autodiff,
    max_relative_error,
    relative_error,
    sample_indices,
)
from core.lab.hand_training import HandTraining, train_by_hand
from core.networks.base import Model, ModelConfig, seed_key
from core.training.config import RunConfig

MODELS = [Model(config, MNIST_SPEC) for config in
          (ModelConfig("linear"), ModelConfig("mlp", (12,), "tanh"), ModelConfig("mlp", (12,), "sigmoid"))]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.random((40, 784)).astype(np.float32), rng.integers(0, 10, 40).astype(np.int32)


def params_for(model, seed=0):
    return model.init(seed_key(seed))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.describe())
def test_hand_gradient_matches_autodiff_in_float64(model, batch):
    errors = hand_vs_autodiff(params_for(model), *batch, model)
    hidden = {"hidden_0/w", "hidden_0/b"} if model.config.arch == "mlp" else set()
    assert set(errors) == {"output/w", "output/b"} | hidden
    assert max(errors.values()) < 1e-10


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.describe())
def test_finite_differences_at_1e6_agree_in_float64(model, batch):
    params = params_for(model)
    check = gradient_check(params, *batch, model, weights=300, dtypes=("float64",), step_sizes=(1e-6,))
    assert check.points[0].rel_error < 1e-7
    assert check.passed


def test_incremental_differences_equal_full_forward_differences(batch):
    model = MODELS[1]
    params = params_for(model)
    indices = sample_indices(params, 200, seed=1)
    fast = finite_differences(params, *batch, model, indices, (1e-2, 1e-5), "float64")
    full = finite_differences(params, *batch, model, indices, (1e-2, 1e-5), "float64", method="full")
    assert np.abs(fast - full).max() < 1e-9


def test_every_weight_of_softmax_regression_is_checked(batch):
    model = MODELS[0]
    check = gradient_check(params_for(model), *batch, model, dtypes=("float64",), step_sizes=(1e-5,))
    assert len(check.indices) == 7850 and check.passed


def test_error_against_h_is_u_shaped_and_float32_is_worse(batch):
    model = MODELS[1]
    check = gradient_check(params_for(model), *batch, model, weights=200)
    best64, best32 = check.best("float64"), check.best("float32")
    assert 1e-7 <= best64.h <= 1e-3 and best64.h < best32.h
    assert best32.total_abs_error > 100 * best64.total_abs_error
    errors = {p.h: p.total_abs_error for p in check.points if p.dtype == "float64"}
    assert errors[1.0] > 100 * best64.total_abs_error and errors[1e-9] > 10 * best64.total_abs_error
    assert set(check.differences()) == {"hidden_0/w", "hidden_0/b", "output/w", "output/b"}


def test_the_verdict_is_per_tensor(batch):
    model = MODELS[1]
    check = gradient_check(params_for(model), *batch, model, weights=300, dtypes=("float32",))
    assert check.passed and set(check.tensor_errors("float32")) == {"hidden_0/w", "hidden_0/b", "output/w", "output/b"}
    approx = check.approx["float32"].copy()
    approx[:, check.tensors == "hidden_0/b"] *= 1.05  # 5% off in b₁ alone: its 12 weights barely move the overall error
    wrong = dataclasses.replace(check, approx={"float32": approx})
    assert relative_error(approx[check.step_sizes.index(check.best("float32").h)], check.analytic) < 1e-2
    assert not wrong.passed and wrong.worst_tensor()[0] == "hidden_0/b"
    assert wrong.to_dict()["tensor_errors"]["float32"]["hidden_0/b"] > 0.02


@pytest.mark.parametrize("bug", list(BUGS))
def test_every_planted_bug_is_detected(bug, batch):
    model = MODELS[2]
    check = gradient_check(params_for(model), *batch, model, weights=300, bug=bug, dtypes=("float64",),
                           step_sizes=(1e-5,))
    assert not check.passed
    assert check.points[0].rel_error > 1e-4


def test_bug_for_the_wrong_architecture_is_a_clear_error(batch):
    with pytest.raises(ConfigError, match="hidden layer"):
        gradient_check(params_for(MODELS[0]), *batch, MODELS[0], bug="derivative-on-weights")
    with pytest.raises(ConfigError, match="one tanh or sigmoid"):
        hand_vs_autodiff({}, *batch, Model(ModelConfig("mlp", (8, 8)), MNIST_SPEC))


def test_float64_stays_inside_the_check(batch):
    gradient_check(params_for(MODELS[0]), *batch, MODELS[0], weights=50, step_sizes=(1e-3,))
    assert jnp.ones(1).dtype == jnp.float32
    assert not jax.config.jax_enable_x64


def test_training_engine_stays_float32_after_a_check(tiny_mnist, batch):
    from core.data.splits import SplitConfig, make_splits
    from core.training.config import RunConfig, TrainConfig
    from core.training.loop import train
    gradient_check(params_for(MODELS[0]), *batch, MODELS[0], weights=50, step_sizes=(1e-3,))
    splits = make_splits(tiny_mnist, SplitConfig(val_size=100))
    last = list(train(RunConfig(ModelConfig("linear"), SplitConfig(val_size=100), TrainConfig(epochs=1)), splits))[-1]
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(last.params)} == {jnp.dtype("float32")}


def test_training_with_a_buggy_gradient_fails_and_the_right_one_learns(tiny_mnist):
    from core.data.splits import SplitConfig, make_splits
    splits = make_splits(tiny_mnist, SplitConfig(val_size=200))
    model = Model(ModelConfig("mlp", (16,), "tanh"), MNIST_SPEC)
    params = params_for(model)
    args = (params, model, splits.x_train, splits.y_train, splits.x_val, splits.y_val)
    good = train_by_hand(*args, steps=100, learning_rate=0.5, eval_every=25)
    bad = train_by_hand(*args, bug="sign", steps=100, learning_rate=0.5, eval_every=25)
    assert list(good.steps) == [0, 25, 50, 75, 100]
    assert good.accuracy[-1] > 0.8 and not good.diverged
    assert np.nan_to_num(bad.accuracy[-1]) < 0.5
    nan = float("nan")  # how train_by_hand records a loss that became NaN/Inf
    diverged = HandTraining(None, np.arange(3), np.array([0.1, nan, nan]), np.array([2.3, nan, nan]))
    assert diverged.diverged and not diverged.about_as_good_as(good) and not good.about_as_good_as(diverged)
    assert not bad.about_as_good_as(good) and good.about_as_good_as(good)
    close = HandTraining("logits", good.steps, good.accuracy - 0.005, good.loss)
    assert close.about_as_good_as(good) and not close.about_as_good_as(good, within=0.001)


def test_gradcheck_of_a_saved_model_notes_the_network_flags_it_ignores(tiny_data_dir, tmp_path, capsys):
    from core.store.checkpoint import save_model
    model = Model(ModelConfig("mlp", (6,), "sigmoid"), MNIST_SPEC)
    save_model(tmp_path / "m.npz", params_for(model), RunConfig(model=model.config), MNIST_SPEC)
    assert main(["gradcheck", "--data-dir", str(tiny_data_dir), "--model", str(tmp_path / "m.npz"), "--arch", "linear",
                 "--hidden", "5", "--weights", "50", "--batch-size", "10", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["architecture"] == "784-6-10 sigmoid"
    assert "note: --arch has no effect with --model; the saved network is 784-6-10 sigmoid." in err
    assert "note: --hidden has no effect with --model" in err and "--activation" not in err


def test_gradcheck_cli_json(tiny_data_dir, capsys):
    assert main(["gradcheck", "--data-dir", str(tiny_data_dir), "--arch", "mlp", "--hidden", "6",
                 "--weights", "80", "--batch-size", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["passed"] and len(out["points"]) == 10
    assert {"total_abs_error", "max_abs_error", "max_rel_error", "h"} <= set(out["points"][0])
    assert out["best"]["float64"]["h"] in [p["h"] for p in out["points"]]


def test_gradcheck_cli_reports_a_bug_and_rejects_bad_flags(tiny_data_dir, capsys):
    assert main(["gradcheck", "--data-dir", str(tiny_data_dir), "--weights", "50", "--batch-size", "10",
                 "--bug", "logits"]) == 0
    assert "DISAGREES" in capsys.readouterr().out
    assert main(["gradcheck", "--data-dir", str(tiny_data_dir), "--bug", "missing-transpose"]) == 2
    with pytest.raises(SystemExit):
        main(["gradcheck", "--weights", "lots"])


def test_gradcheck_cli_exits_1_when_the_gradient_is_wrong_without_a_planted_bug(tiny_data_dir, capsys, monkeypatch):
    from core.commands import gradcheck as command

    def wrong_gradient(*args, **kwargs):  # a hand gradient with a mistake nobody planted on purpose
        return gradient_check(*args, **{**kwargs, "bug": "sign"})

    monkeypatch.setattr(command, "gradient_check", wrong_gradient)
    flags = ["gradcheck", "--data-dir", str(tiny_data_dir), "--weights", "50", "--batch-size", "10"]
    assert main(flags) == 1
    assert "DISAGREES" in capsys.readouterr().out
    assert main([*flags, "--json"]) == 1
    assert not json.loads(capsys.readouterr().out.strip().splitlines()[-1])["passed"]
    assert main([*flags, "--bug", "logits"]) == 0  # a planted bug is meant to disagree


def test_gradcheck_help_states_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    assert "1 when it disagrees with no bug planted" in " ".join(capsys.readouterr().out.split())


def test_max_relative_error_ignores_rounding_noise_where_the_gradient_is_zero_but_not_a_wrong_zero():
    analytic = np.array([0.0, 0.5, -0.2])
    approx = np.array([3e-10, 0.5001, -0.2])  # rounding noise where the gradient is zero
    assert max_relative_error(approx, analytic) == pytest.approx(0.0001 / 1.0001)
    wrongly_zero = np.array([0.3, 0.5, -0.2])  # a hand gradient of 0 where the true one is 0.3
    assert max_relative_error(wrongly_zero, analytic) == pytest.approx(1.0)


def test_a_passing_check_reports_small_relative_errors(batch):
    model = Model(ModelConfig("linear"), MNIST_SPEC)
    result = gradient_check(params_for(model), *batch, model, weights=200)
    assert result.passed and result.best("float64").max_rel_error < 1e-4  # blank pixels no longer read as 100%
