"""The Runs page (AppTest): empty history, listing, filters, compare, rename, delete, reload, unusable files."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig
from core.networks.base import ModelConfig
from core.store import history as history_module
from core.store.history import RunHistory
from core.store.location import DATABASE_URL_ENV, HOME_ENV, default_path
from core.training.config import RunConfig, TrainConfig
from core.training.runs import CURVE_FIELDS, Run
from dashboard import state
from dashboard.widgets import RUN_PICKER_KEY

PAGE = str(Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "runs.py")
SELECTION = "runs_page.selection"


def saved_run(name: str, config: RunConfig, accuracy: float) -> Run:
    """An ended run with plausible curves and (zero) parameters, no training needed."""
    history = [
        dict.fromkeys(CURVE_FIELDS, 0.0) | {"step": step, "epoch": step / 10, "train_loss": 1 / step,
                                                  "train_accuracy": accuracy - 0.1 / step,
                                                  "val_loss": None if step % 10 else 1 / step,
                                                  "val_accuracy": None if step % 10 else accuracy}
        for step in range(1, 21)
    ]
    params = {"output": {"w": np.zeros((784, 10), np.float32), "b": np.zeros(10, np.float32)}}
    return Run(name, config, MNIST_SPEC, params=params, status="finished", history=history,
               snapshots=[(1, params), (2, params)], val_accuracy=accuracy, test_accuracy=accuracy)


@pytest.fixture
def home(monkeypatch, tmp_path):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def two_runs(home) -> list[Run]:
    linear = RunConfig(model=ModelConfig(arch="linear"), data=SplitConfig(val_size=200))  # fits the tiny MNIST
    runs = [
        saved_run("slow sgd", RunConfig(linear.model, linear.data, TrainConfig(optimizer="sgd", learning_rate=0.01)),
                  0.90),
        saved_run("fast adam", linear, 0.92),
    ]
    history = RunHistory(default_path())
    for i, run in enumerate(runs):
        run.test_confusion = np.diag(np.full(10, 100 + i))
        history.save(run)
    return runs


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_empty_history(home):
    at = page()
    assert "No saved runs yet" in texts(at.info)
    assert not at.error and not at.dataframe
    assert (home / "runs.sqlite3").exists()
    assert str(home / "runs.sqlite3") in texts(at.markdown)


def test_lists_filters_and_compares(two_runs):
    at = page()
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["fast adam", "slow sgd"]
    assert sorted(table["test accuracy (%)"].round(6)) == [90.0, 92.0]
    assert at.title[0].value == "Runs"
    assert table["epochs"].tolist() == ["2", "2"]  # whole epochs without decimals

    name_filter = next(t for t in at.text_input if t.label == "Name contains")
    name_filter.set_value("adam").run()
    assert at.dataframe[0].value["name"].tolist() == ["fast adam"]
    assert "1 of 2" in texts(at.caption)
    name_filter.set_value("").run()
    next(n for n in at.number_input if n.label.startswith("Minimum test accuracy")).set_value(91.0).run()
    assert at.dataframe[0].value["name"].tolist() == ["fast adam"]
    next(n for n in at.number_input if n.label.startswith("Minimum test accuracy")).set_value(0.0).run()

    at.multiselect(key=SELECTION).set_value([r.run_id for r in two_runs]).run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 1 + 2  # the overlaid curves, then one confusion matrix per run
    metrics, diff = at.dataframe[1].value, at.dataframe[2].value
    assert set(metrics.columns) == {"slow sgd", "fast adam"}
    assert metrics.loc["test accuracy", "fast adam"] == "92.00%"
    assert sorted(diff.index) == ["train.learning_rate", "train.optimizer"]
    assert diff.loc["train.optimizer", "slow sgd"] == "sgd" and diff.loc["train.optimizer", "fast adam"] == "adam"


def test_rename_delete_and_reload(two_runs):
    slow, _fast = two_runs
    history = RunHistory(default_path())
    at = page()
    at.multiselect(key=SELECTION).set_value([slow.run_id]).run()
    at.text_input(key=f"runs_page.rename.{slow.run_id}").set_value("baseline")  # field and Rename are one form
    next(b for b in at.button if b.label == "Rename").click().run()
    assert "Renamed to 'baseline'" in texts(at.success)
    assert {r.name for r in history.list()} == {"baseline", "fast adam"}

    next(b for b in at.button if b.label.startswith("Reload")).click().run()
    assert not at.exception, at.exception
    session_runs = at.session_state[state.RUNS_KEY]
    assert list(session_runs) == ["baseline"] and session_runs["baseline"].run_id == slow.run_id
    assert len(session_runs["baseline"].snapshots) == 2
    assert at.session_state[state.SELECTED_RUN_KEY] == "baseline"
    at.text_input(key=f"runs_page.rename.{slow.run_id}").set_value("final")
    next(b for b in at.button if b.label == "Rename").click().run()  # the session's copy follows
    assert list(at.session_state[state.RUNS_KEY]) == ["final"] and at.multiselect(key=SELECTION).value == [slow.run_id]
    next(b for b in at.button if b.label == "Rename").click().run()  # and the renamed selection still works
    assert not at.exception, at.exception

    next(b for b in at.button if b.label.startswith("Delete")).click().run()
    assert "cannot be undone" in texts(at.warning)
    assert len(history.list()) == 2  # nothing deleted before the confirmation
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert len(history.list()) == 2 and not at.warning
    next(b for b in at.button if b.label.startswith("Delete")).click().run()
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not at.exception, at.exception
    assert [r.name for r in history.list()] == ["fast adam"]
    assert at.dataframe[0].value["name"].tolist() == ["fast adam"]
    assert at.multiselect(key=SELECTION).value == []
    assert "final" not in at.session_state[state.RUNS_KEY]  # deleted for good: no copy left to be saved again


def test_a_reloaded_run_appears_on_the_results_page(two_runs, monkeypatch, tiny_data_dir):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=120)
    at.switch_page("dashboard/pages/runs.py").run()
    assert not at.exception, at.exception
    at.multiselect(key=SELECTION).set_value([two_runs[1].run_id]).run()
    next(b for b in at.button if b.label.startswith("Reload")).click().run()
    at.switch_page("dashboard/pages/results.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key=RUN_PICKER_KEY).value == "fast adam"
    assert not at.error


@pytest.mark.parametrize("content, message", [
    (b"not a database at all" * 50, "not a database"),
    (None, "newer Digit Lab"),
], ids=["not-sqlite", "newer-schema"])
def test_unusable_file_is_reported_and_left_alone(home, content, message):
    path = home / "runs.sqlite3"
    if content is None:
        RunHistory(path)
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA user_version = 99")
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    at = page()
    error = texts(at.error)
    assert message in error and str(path) in error and "other pages still work" in error
    assert path.read_bytes() == before


def _keep_runs_script():
    """Trains nothing: keeps a run while it runs, after it is measured (twice), then renames it."""
    import numpy as np
    import streamlit as st

    from core.data.spec import MNIST_SPEC
    from core.data.splits import SplitConfig
    from core.networks.base import ModelConfig
    from core.training.config import RunConfig
    from core.training.runs import Run
    from core.training.status import RunStatus
    from dashboard import state

    config = RunConfig(model=ModelConfig(arch="linear"), data=SplitConfig(val_size=200))
    params = {"output": {"w": np.zeros((784, 10), np.float32), "b": np.zeros(10, np.float32)}}
    run = Run("mine", config, MNIST_SPEC, params=params, status="running")
    state.keep_run(run)
    st.session_state["saved while running"] = len(state.history().list())
    run.status = RunStatus.FINISHED
    state.keep_run(run)  # the last chunk said "finished" but nothing is measured yet
    st.session_state["saved before finish"] = len(state.history().list())
    run.finish(state.splits(state.data_source(), config.data))
    state.keep_run(run)
    state.keep_run(run)  # unchanged: not saved again
    state.rename_run("mine", "renamed")


def test_keep_run_saves_ended_runs_once_with_their_confusion_matrix(home, tiny_data_dir):
    at = AppTest.from_function(_keep_runs_script, default_timeout=60)
    at.session_state[state.DATA_DIR_KEY] = str(tiny_data_dir)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["saved while running"] == at.session_state["saved before finish"] == 0
    [row] = RunHistory(default_path()).list()
    assert row.name == "renamed" and row.status == "finished" and row.test_accuracy == pytest.approx(0.1)
    confusion = RunHistory(default_path()).load(row.run_id).test_confusion
    assert confusion.sum() == 300 and confusion[:, 0].sum() == 300  # zero weights: every test image is called 0
    assert list(at.session_state[state.RUNS_KEY]) == ["renamed"]


def _keep_measured_run_script():
    import numpy as np

    from core.data.spec import MNIST_SPEC
    from core.networks.base import ModelConfig
    from core.training.config import RunConfig
    from core.training.runs import Run
    from dashboard import state

    params = {"output": {"w": np.zeros((784, 10), np.float32), "b": np.zeros(10, np.float32)}}
    state.keep_run(Run("mine", RunConfig(model=ModelConfig(arch="linear")), MNIST_SPEC, params=params,
                       status="stopped", test_accuracy=0.5))


def test_keep_run_keeps_the_run_when_the_history_is_unusable(home, monkeypatch):
    path = home / "runs.sqlite3"
    path.write_bytes(b"garbage" * 100)
    monkeypatch.setattr(state, "test_evaluation", lambda run: pytest.fail("nothing to evaluate: the save fails first"))
    at = AppTest.from_function(_keep_measured_run_script, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    warning = texts(at.warning)
    assert "kept in this session but could not be saved" in warning and str(path) in warning
    assert list(at.session_state[state.RUNS_KEY]) == ["mine"]
    assert path.read_bytes() == b"garbage" * 100


def _open_history_script():
    import streamlit as st

    from dashboard import state

    st.session_state.setdefault("histories", []).append(state.history())


def test_reloaded_modules_get_a_fresh_history_object(home, monkeypatch):
    """Streamlit reloads edited modules under a running app; a history cached from the old core.history would
    raise the old HistoryError, which the pages' `except HistoryError` no longer catches."""
    at = AppTest.from_function(_open_history_script, default_timeout=60).run()
    reloaded = type("RunHistory", (RunHistory,), {})
    monkeypatch.setattr(history_module, "RunHistory", reloaded)
    at.run()
    assert not at.exception, at.exception
    first, second = at.session_state["histories"]
    assert type(first) is RunHistory and type(second) is reloaded


def test_runs_of_one_name_are_told_apart_in_the_table_as_in_the_selector(home):
    config = RunConfig(model=ModelConfig(arch="linear"), data=SplitConfig(val_size=200))
    runs = [saved_run("Softmax regression", config, accuracy) for accuracy in (0.9, 0.91)]
    for run in runs:
        RunHistory(default_path()).save(run)
    at = page()
    names = at.dataframe[0].value["name"].tolist()
    assert sorted(names) == sorted(f"Softmax regression [{run.run_id[:6]}]" for run in runs)
    selector = at.multiselect(key=SELECTION)
    assert sorted(selector.options) == sorted(names)


def test_runs_record_their_dataset_filter_by_it_and_comparing_across_datasets_says_so(two_runs):
    other = dataclasses.replace(MNIST_SPEC, name="Fashion-MNIST", class_names=tuple("abcdefghij"), class_noun="class")
    fashion = saved_run("on clothes", two_runs[1].config, 0.80)
    fashion.spec = other
    RunHistory(default_path()).save(fashion)
    assert [r.dataset for r in RunHistory(default_path()).list(dataset="Fashion-MNIST")] == ["Fashion-MNIST"]
    at = page()
    assert sorted(at.dataframe[0].value["dataset"]) == ["Fashion-MNIST", "MNIST", "MNIST"]
    at.selectbox[0].set_value("MNIST").run()
    assert sorted(at.dataframe[0].value["name"]) == ["fast adam", "slow sgd"]
    at.selectbox[0].set_value(None).run()
    at.multiselect(key=SELECTION).set_value([two_runs[0].run_id]).run()
    assert not at.warning
    at.multiselect(key=SELECTION).set_value([two_runs[0].run_id, fashion.run_id]).run()
    assert not at.exception and "trained on different datasets (Fashion-MNIST, MNIST)" in at.warning[0].value


def test_a_history_on_postgresql_is_listed_and_another_database_on_its_server_can_be_chosen(home, monkeypatch,
                                                                                           postgres_url):
    linear = RunConfig(model=ModelConfig(arch="linear"))
    RunHistory(postgres_url).save(saved_run("on the server", linear, 0.9))
    monkeypatch.setenv(DATABASE_URL_ENV, postgres_url)
    at = page()
    assert at.dataframe[0].value["name"].tolist() == ["on the server"]
    assert postgres_url in texts(at.markdown)

    other = RunHistory(f"{postgres_url.rsplit('/', 1)[0]}/postgres")  # another database on that server
    other.save(saved_run("in another database", linear, 0.8))
    box = next(t for t in at.text_input if t.label.startswith("Use another database"))
    box.set_value(f"postgresql+psycopg://postgres@elsewhere.example:{other.url.port}/postgres").run()
    next(b for b in at.button if b.label == "Use this file").click().run()
    assert "must be a database on the PostgreSQL server" in texts(at.error)
    assert at.dataframe[0].value["name"].tolist() == ["on the server"]  # no connection to another host was tried
    box.set_value(other.url.render_as_string(hide_password=False)).run()
    next(b for b in at.button if b.label == "Use this file").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["name"].tolist() == ["in another database"]
    assert state.HISTORY_PATH_KEY in at.session_state and not (home / "runs.sqlite3").exists()
