"""AppTest of the Experiments pages (Reproduction, Overfitting, Sweep) on the tiny synthetic MNIST."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO

TIMEOUT = 240


@pytest.fixture
def data_env(monkeypatch, tiny_data_dir):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))


def app(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    at.switch_page(f"dashboard/pages/{page}.py")
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
    row = at.session_state["reproduce.rows"]["softmax-minibatch"]
    assert 0.5 < row["test_accuracy"] <= 1.0
    table = at.dataframe[0].value
    assert table.set_index("preset").loc["softmax-minibatch", "ours (test)"] != "not run"
    wall_times = table.set_index("preset")["wall time (s)"]
    assert wall_times["softmax-minibatch"] != "—" and wall_times["lenet5-sgd"] == "—"  # not run yet
    assert "softmax-minibatch" in at.session_state["runs"]


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
    sizes, runs = at.session_state["overfitting.result"]
    assert sizes == [100, 400] and all(run.status == "finished" for run in runs)
    assert list(at.dataframe[0].value["training images"]) == [100, 400]


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
    before = len(at.session_state["runs"])
    promote = next(b for b in at.button if b.label == "Promote to run")
    promote.click().run()
    assert len(at.session_state["runs"]) == before + 1
    assert "Kept as run" in at.success[0].value


def test_sweep_too_many_variants_is_a_clear_error(data_env):
    at = app("sweep").run()
    at.text_input[1].set_value(",".join(str(0.01 * (i + 1)) for i in range(17)))
    at.button[0].click().run()
    assert "at most 16" in at.error[0].value
