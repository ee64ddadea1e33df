"""AppTest renders each gradient-lab page on the tiny synthetic MNIST, with and without a trained run."""

from __future__ import annotations

import jax
import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO
from core.data import SplitConfig
from core.models import ModelConfig, init, seed_key
from core.runs import Run
from core.train import RunConfig, TrainConfig

TIMEOUT = 180


@pytest.fixture
def data_env(monkeypatch, tiny_data_dir):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
    return tiny_data_dir


def page(name: str, runs: tuple[Run, ...] = ()) -> AppTest:
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    at.switch_page(f"dashboard/pages/{name}.py")
    at.session_state["runs"] = {run.name: run for run in runs}
    return at.run()


def mlp_run() -> Run:
    config = RunConfig(ModelConfig("mlp", (8,), "sigmoid"), SplitConfig(val_size=200), TrainConfig(epochs=1))
    return Run("small mlp", config, params=init(seed_key(0), config.model), status="finished")


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_gradient_check_page_runs_the_check_and_catches_a_bug(data_env):
    at = page("gradient_check", (mlp_run(),))
    no_errors(at)
    assert at.radio(key="gradcheck.source").value == "A trained run"
    assert len(at.latex) >= 4
    at.toggle(key="gradcheck.all").set_value(False)
    at.number_input(key="gradcheck.k").set_value(60)
    at.slider(key="gradcheck.batch").set_value(20)
    at.button(key="gradcheck.check").click().run()
    no_errors(at)
    assert "agrees" in at.success[0].value
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 20  # 10 step sizes × 2 precisions
    at.selectbox(key="gradcheck.bug").set_value("derivative-at-activation").run()
    at.button(key="gradcheck.check").click().run()
    assert not at.exception
    assert "WRONG" in at.error[0].value
    at.slider(key="gradcheck.steps").set_value(50)
    at.button(key="gradcheck.train").click().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3


def test_gradient_check_page_without_runs_uses_a_fresh_network(data_env):
    at = page("gradient_check")
    no_errors(at)
    assert at.radio(key="gradcheck.source").value == "A freshly initialised network"


def test_backprop_timing_page(data_env):
    at = page("backprop_timing")
    no_errors(at)
    at.multiselect(key="timing.batches").set_value([1, 10])
    at.multiselect(key="timing.widths").set_value([4])
    at.button(key="timing.run").click().run()
    no_errors(at)
    assert len(at.get("plotly_chart")) == 2
    assert "×" in at.dataframe[0].value.iloc[0]["over the naive loop"]
    measurements = at.dataframe[1].value.set_index("method")["compile seconds"]
    assert "None" not in measurements.tolist() and "—" in measurements.tolist()  # the naive loop is not compiled


def test_landscape_page(data_env):
    at = page("landscape", (mlp_run(),))
    no_errors(at)
    assert len(at.get("plotly_chart")) == 2
    at.slider(key="landscape.steps").set_value(5).run()
    no_errors(at)
