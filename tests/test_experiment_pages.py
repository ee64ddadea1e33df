"""AppTest of the Experiments pages (Reproduction, Overfitting, Sweep) on the tiny synthetic MNIST."""

from __future__ import annotations

import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from core.data.locate import load_mnist
from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig, make_splits
from core.networks.base import ModelConfig
from core.store.history import RunHistory
from core.training.config import RunConfig, TrainConfig

TIMEOUT = 240


def app(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    at.switch_page(f"dashboard/pages/{page}.py")
    return at


def sweep_with(at: AppTest, **settings) -> AppTest:
    """Set the Sweep page's settings (named as in their widget keys, `setting.sweep.<name>`), then train."""
    widgets = {w.key: w for kind in ("radio", "selectbox", "number_input", "text_input") for w in getattr(at, kind)}
    for name, value in settings.items():
        widgets[f"setting.sweep.{name}"].set_value(value)
    at.button[0].click().run()
    return at


@pytest.mark.parametrize("page", ["reproduce", "overfitting", "sweep"])
def test_pages_render_without_errors(page, data_env):
    at = app(page).run()
    assert not at.exception and not at.error
    assert at.title[0].value in {"Reproduction", "Overfitting", "Sweep"}


def test_reproduce_trains_a_preset_and_remembers_the_row(data_env):
    at = app("reproduce").run()
    at.multiselect[0].set_value(["softmax-minibatch"])
    at.number_input[0].set_value(300)
    at.button[0].click().run()
    assert not at.exception and not at.error
    row = at.session_state["reproduce.results"]["softmax-minibatch"].row()
    assert 0.5 < row["test_accuracy"] <= 1.0 and row["status"] == "finished"
    table = at.dataframe[0].value.set_index("preset")
    assert table.loc["softmax-minibatch", "ours (test)"] == f"{100 * row['test_accuracy']:.2f}%"
    assert table.loc["softmax-minibatch", "training images"] == "≤ 300 (quick)"
    assert table.loc["lenet5-sgd", "ours (test)"] == "not run" and table.loc["lenet5-sgd", "epochs"] == "8"
    assert table.loc["best-lenet5", "reported"] == "(our own preset)"
    assert table.loc["softmax-minibatch", "epochs"] == "5"
    table = at.dataframe[0].value
    wall_times = table.set_index("preset")["wall time (s)"]
    assert wall_times["softmax-minibatch"] != "—" and wall_times["lenet5-sgd"] == "—"  # not run yet
    # the session's run is the table's: settling an interrupted run (a Stop) updates both
    results = at.session_state["reproduce.results"]
    assert at.session_state["runs"]["softmax-minibatch"] is results["softmax-minibatch"].runs[0]


def test_reproduce_without_a_preset_says_so(data_env):
    at = app("reproduce").run()
    at.multiselect[0].set_value([])
    at.button[0].click().run()
    assert "Choose at least one preset" in at.error[0].value


def test_overfitting_study(data_env):
    at = app("overfitting").run()
    at.text_input[0].set_value("100, 400")
    at.number_input[0].set_value(2)  # epochs
    at.number_input[1].set_value(200)  # validation images
    at.button[0].click().run()
    assert not at.exception and not at.error
    study = at.session_state["overfitting.result"]
    assert [size for size, _ in study.runs] == [100, 400]
    assert all(run.status == "finished" for _, run in study.runs)
    table = at.dataframe[0].value
    assert list(table["training images"]) == [100, 400]
    # the final network on its own training images, not the running mean of the last chunk
    run = study.runs[0][1]
    splits = make_splits(load_mnist(), run.config.data)
    assert table["final training accuracy"][0] == run.evaluate(splits.x_train, splits.y_train).accuracy
    saved = {row.run_id: row for row in RunHistory().list()}  # every size's run is in the run history
    assert set(saved) == {r.run_id for _, r in study.runs}
    keep = next(b for b in at.button if b.label == "Keep these runs")
    keep.click().run()
    kept = [r for r in at.session_state["runs"].values() if r.name.startswith(study.setup)]
    assert [r.run_id for r in kept] == [r.run_id for _, r in study.runs]  # the same runs: saved once
    assert len(RunHistory().list()) == 2
    assert not any(b.label == "Keep these runs" for b in at.button) and "are kept" in at.caption[-1].value
    at.text_input[0].set_value("60000")  # an error keeps the study on the page
    at.button[0].click().run()
    assert at.error and at.session_state["overfitting.result"] is study and at.dataframe


def test_overfitting_rejects_bad_sizes(data_env):
    at = app("overfitting").run()
    at.text_input[0].set_value("100, lots")
    at.button[0].click().run()
    assert "whole numbers" in at.error[0].value


def test_sweep_trains_ranks_and_promotes(data_env):
    at = app("sweep").run()
    at.radio[0].set_value("linear")
    at.number_input[1].set_value(1)  # epochs
    at.number_input[2].set_value(500)  # training images
    at.number_input[3].set_value(200)  # validation images
    at.text_input[1].set_value("0.01, 0.3")  # learning rates
    at.text_input[3].set_value("0, 1")  # seeds
    at.button[0].click().run()
    assert not at.exception and not at.error
    runs = at.session_state["sweep.runs"]
    assert len(runs) == 4 and all(run.status == "finished" for run in runs)
    accuracies = list(at.dataframe[0].value["val_accuracy"])
    assert accuracies == sorted(accuracies, reverse=True)
    assert {row.run_id for row in RunHistory().list()} == {run.run_id for run in runs}  # every variant is saved
    before = len(at.session_state["runs"])
    promote = next(b for b in at.button if b.label == "Promote to run")
    promote.click().run()
    assert len(at.session_state["runs"]) == before + 1
    assert "Kept as run" in at.success[0].value
    next(b for b in at.button if b.label == "Promote to run").click().run()  # twice: still one run
    assert len(at.session_state["runs"]) == before + 1 and "Already kept as run" in at.info[0].value
    [promoted] = list(at.session_state["runs"].values())[before:]
    saved = {row.run_id: row.name for row in RunHistory().list()}
    assert len(saved) == 4 and saved[promoted.run_id] == promoted.name  # saved once, under its new name
    at.number_input[0].set_value(4096)  # a batch larger than the training set: an error, the sweep stays
    at.button[0].click().run()
    assert "larger than the training set" in at.error[0].value
    assert at.session_state["sweep.runs"] is runs and at.dataframe


def test_a_sweep_variant_wrecked_by_a_far_too_high_rate_is_pointed_out(real_mnist_dir):
    at = app("sweep")
    at.session_state["setting.data_dir"] = str(real_mnist_dir)  # the tiny synthetic digits survive any rate
    sweep_with(at.run(), arch="linear", optimizer="sgd", epochs=1, train_size=500, val_size=200, lrs="0.1, 1e9")
    assert not at.exception
    [warning] = [w.value for w in at.warning if "Far too high a learning rate" in w.value]
    assert "lr 1e+09" in warning and "lr 0.1 " not in warning
    assert "lr 1e+09 · seed 0 (final training loss " in warning
    losses = at.dataframe[0].value.set_index("learning_rate")["train_loss"]
    assert float(losses["1e+09"]) > 100 > float(losses["0.1"])


def test_a_sweep_interrupted_by_a_rerun_is_settled(data_env):
    from core.experiments.sweep import SweepConfig, train_sweep
    from core.training.runs import Run
    base = RunConfig(ModelConfig("linear"), SplitConfig(val_size=200, train_size=500),
                     TrainConfig("sgd", 0.1, batch_size=10, epochs=2, steps_per_chunk=5))
    variants = SweepConfig(base, learning_rates=(0.1, 0.2)).variants()
    runs = [Run(f"v{i}", v, MNIST_SPEC) for i, v in enumerate(variants)]
    for records in train_sweep(variants, make_splits(load_mnist(), base.data)):
        for run, progress in zip(runs, records):
            run.record(progress)
        break  # as a Stop click or a page switch leaves it
    assert all(run.status == "running" for run in runs)
    at = app("sweep")
    at.session_state["sweep.runs"] = runs
    at.run()
    assert not at.exception
    assert all(run.status == "stopped" and run.test_accuracy is not None for run in runs)
    assert "stopped before it finished" in at.warning[0].value
    assert list(at.dataframe[0].value["status"]) == ["stopped", "stopped"]
    assert "momentum" not in at.dataframe[0].value.columns  # SGD: no column of empty cells


def test_a_sweep_stopped_while_compiling_says_nothing_was_trained(data_env):
    from core.experiments.sweep import SweepConfig
    from core.training.runs import Run
    base = RunConfig(ModelConfig("linear"), SplitConfig(val_size=200, train_size=500), TrainConfig("sgd", 0.1))
    at = app("sweep")
    variants = SweepConfig(base, (0.1, 0.2)).variants()
    at.session_state["sweep.runs"] = [Run(f"v{i}", v, MNIST_SPEC) for i, v in enumerate(variants)]
    at.run()
    assert not at.exception and not at.warning and not at.dataframe
    assert "nothing was trained" in at.info[0].value and at.session_state["sweep.runs"] == []


@pytest.mark.parametrize("learning_rates, message", [
    (",".join(str(0.01 * (i + 1)) for i in range(17)), "at most 16"),
    (" , ", "Learning rates: give at least one"),
])
def test_sweep_bad_learning_rates_are_a_clear_error(data_env, learning_rates, message):
    at = app("sweep").run()
    at.text_input[1].set_value(learning_rates)
    at.button[0].click().run()
    assert message in at.error[0].value


def test_sweep_settings_survive_a_page_switch(data_env):
    at = app("sweep").run()
    at.text_input[1].set_value("0.5, 0.7, 0.5")  # refused (repeated), but kept as typed
    at.button[0].click().run()
    assert "Each learning rate once" in at.error[0].value
    at.switch_page("dashboard/pages/overfitting.py").run()
    at.switch_page("dashboard/pages/sweep.py").run()
    assert at.text_input[1].value == "0.5, 0.7, 0.5"


def test_a_relu_sweep_initialises_as_the_train_page_does(data_env):
    """He initialisation for ReLU, as the Train page picks, so a promoted variant is the network one would train."""
    at = sweep_with(app("sweep").run(), activation="relu", hidden="16", epochs=1, train_size=300, val_size=100,
                    lrs="0.1")
    assert not at.exception and not at.error
    relu = ModelConfig("mlp", activation="relu")
    assert [run.config.model.init for run in at.session_state["sweep.runs"]] == [relu.network.recommended_init(relu)]
    assert relu.network.recommended_init(relu) == "he"
