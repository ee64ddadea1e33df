"""AppTest of "Continue training" (issue #17 part 3): on the Train page for a run of the session, and from the Runs
page for a saved run (an interrupted one included), with the curves going on and the continued run saved."""

from __future__ import annotations

import pytest
from conftest import REPO, as_if_its_writer_died
from streamlit.testing.v1 import AppTest

from core.data.locate import load_mnist
from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig, make_splits
from core.networks.base import ModelConfig
from core.store.checkpoint import model_bytes
from core.store.history import Checkpoints, RunHistory
from core.store.location import HOME_ENV, default_path
from core.training.config import RunConfig, Schedule, TrainConfig
from core.training.loop import train
from core.training.runs import CURVE_FIELDS, Run
from core.training.status import RunStatus

TIMEOUT = 180
STEPS_PER_EPOCH = 1000 // 50  # the tiny MNIST's 1,200 images less 200 for validation, in batches of 50


@pytest.fixture
def home(monkeypatch, tmp_path, data_env):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    return tmp_path


def app(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    at.session_state["setting.val_size"] = 200
    at.switch_page(f"dashboard/pages/{page}.py")
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_run_of_the_session_continues_on_the_train_page_with_its_curves_going_on(home):
    at = app("train").run()
    at.number_input(key="setting.epochs").set_value(1)
    at.text_input(key="setting.hidden").set_value("32")
    button(at.run(), "Train").click().run()
    assert not at.exception and not at.error
    (first,) = at.session_state["runs"].values()
    assert first.status is RunStatus.FINISHED and first.opt_state is not None
    key = f"train_continue.%s.{first.run_id}"
    at.number_input(key=key % "epochs").set_value(2)
    at.number_input(key=key % "learning_rate").set_value(3e-4)
    button(at, "Continue training").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    runs = at.session_state["runs"]
    again = runs[f"{first.name} (continued)"]
    assert list(runs) == [first.name, again.name] and first.steps_done == STEPS_PER_EPOCH  # the first run as it was
    assert again.status is RunStatus.FINISHED and again.steps_done == 3 * STEPS_PER_EPOCH
    assert again.history[:len(first.history)] == first.history  # its curves go on from the first run's
    assert again.history[len(first.history)]["step"] > first.steps_done
    tc = again.config.train
    assert (tc.epochs, tc.learning_rate, tc.schedule_start) == (3, 3e-4, STEPS_PER_EPOCH)
    assert again.history[-1]["learning_rate"] == pytest.approx(3e-4)
    assert again.test_accuracy > 0.5 and [epoch for epoch, _ in again.snapshots] == [1, 2, 3]
    note = at.info[0].value
    assert f"'{again.name}': Continues from update {STEPS_PER_EPOCH} with its optimiser state (Adam)" in note
    assert "starts again at 0.0003 there" in note
    saved = {row.name: row for row in RunHistory(default_path()).list()}
    assert saved[again.name].status == "finished" and saved[again.name].epochs == 3
    assert saved[first.name].epochs == 1  # the run it continued stays as it was
    assert "overlay_chart" in {element.proto.id.rsplit("-", 1)[-1] for element in at.get("plotly_chart")}


def interrupted_run(tiny_data_dir, optimizer_state: bool) -> Run:
    """A run left in the history by a process that died after its first epoch (its last checkpoint)."""
    config = RunConfig(ModelConfig("mlp", hidden=(32,)), SplitConfig(val_size=200),
                       TrainConfig(epochs=3, schedule=Schedule.EXPONENTIAL, decay=0.5))
    run = Run("cut short", config, MNIST_SPEC)
    checkpoints = Checkpoints(RunHistory(default_path()), run)
    checkpoints.start()
    for progress in train(config, make_splits(load_mnist(tiny_data_dir), config.data)):
        run.record(progress)
        if not optimizer_state:
            run.opt_state = None  # as an older version saved it
        checkpoints()
        if run.snapshots:
            break
    checkpoints.wait()
    as_if_its_writer_died(RunHistory(default_path()))
    return run


@pytest.mark.parametrize("optimizer_state", [True, False])
def test_a_saved_interrupted_run_continues_from_the_runs_page(home, data_env, optimizer_state):
    cut = interrupted_run(data_env, optimizer_state)
    at = app("runs").run()
    assert at.dataframe[0].value["status"].tolist() == [f"interrupted at step {cut.steps_done}"]
    at.multiselect(key="runs_page.selection").set_value([cut.run_id]).run()
    assert not at.exception, at.exception
    assert at.number_input(key=f"runs_continue.epochs.{cut.run_id}").value == 1
    assert at.number_input(key=f"runs_continue.decay.{cut.run_id}").value == 0.5  # the run's own settings
    at.number_input(key=f"runs_continue.epochs.{cut.run_id}").set_value(2)
    button(at, "Continue training").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    runs = at.session_state["runs"]
    assert list(runs) == ["cut short", "cut short (continued)"]  # reloaded, then continued on the Train page
    again = runs["cut short (continued)"]
    assert again.status is RunStatus.FINISHED and again.steps_done == 3 * STEPS_PER_EPOCH
    assert again.history[:len(cut.history)] == cut.history
    assert again.config.train == cut.config.train  # its own schedule goes on: the decay per epoch carries on
    assert again.history[-1]["learning_rate"] == pytest.approx(1e-3 * 0.5 ** 2)
    note = at.info[0].value
    if optimizer_state:
        assert "with its optimiser state (Adam)" in note
    else:
        assert "with a fresh Adam optimiser: its optimiser state was not kept" in note
    statuses = {row.name: row.status for row in RunHistory(default_path()).list()}
    assert statuses == {"cut short": f"interrupted at step {cut.steps_done}", "cut short (continued)": "finished"}


def test_a_model_file_loaded_in_the_app_trains_further_from_its_parameters(home, data_env):
    config = RunConfig(ModelConfig("mlp", hidden=(32,)), SplitConfig(val_size=200), TrainConfig(epochs=1))
    run = Run("file", config, MNIST_SPEC)
    for progress in train(config, make_splits(load_mnist(data_env), config.data)):
        run.record(progress)
    at = app("train").run()
    at.file_uploader(key="model_upload").set_value(("saved.npz", model_bytes(run.params, run.config, run.spec),
                                                    "application/octet-stream")).run()
    (loaded,) = at.session_state["runs"].values()
    assert loaded.status is RunStatus.LOADED
    button(at, "Continue training").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    again = at.session_state["runs"]["saved (continued)"]
    assert again.status is RunStatus.FINISHED and again.steps_done == STEPS_PER_EPOCH  # a file: from update 0
    assert again.history[0]["train_loss"] < run.history[0]["train_loss"]  # it began from the file's trained weights
    assert again.test_accuracy > 0.5
    assert "Continues from update 0 with a fresh Adam optimiser" in at.info[0].value



    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=200), TrainConfig(epochs=1))
    diverged = Run("boom", config, MNIST_SPEC, params={}, status=RunStatus.DIVERGED, diverged_at=3,
                   history=[dict.fromkeys(CURVE_FIELDS, 0.0) | {"step": 3, "val_loss": None, "val_accuracy": None}])
    at = app("train")
    at.session_state["runs"] = {"boom": diverged}
    at.run()
    assert not at.exception
    assert not [b for b in at.button if b.label == "Continue training"]
    assert not [e for e in at.expander if e.label.startswith("Continue training")]
