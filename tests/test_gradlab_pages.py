"""AppTest renders each gradient-lab page on the tiny synthetic MNIST, with and without a trained run."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, synthetic_mnist, write_idx_dir
from streamlit.testing.v1 import AppTest

from core.data.formats import Dataset
from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig
from core.networks.base import Model, ModelConfig, seed_key
from core.training.config import RunConfig, TrainConfig
from core.training.runs import Run

TIMEOUT = 180


def page(name: str, runs: tuple[Run, ...] = (), data_dir: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    at.switch_page(f"dashboard/pages/{name}.py")
    at.session_state["runs"] = {run.name: run for run in runs}
    if data_dir:
        at.session_state["setting.data_dir"] = data_dir
    return at.run()


def mlp_run() -> Run:
    config = RunConfig(ModelConfig("mlp", (8,), "sigmoid"), SplitConfig(val_size=200), TrainConfig(epochs=1))
    params = Model(config.model, MNIST_SPEC).init(seed_key(0))
    return Run("small mlp", config, MNIST_SPEC, params=params, status="finished")


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def charts_with_save_menus(at: AppTest) -> int:
    """How many charts the page shows, after checking each has its "Save chart" menu (an HTML download)."""
    charts = at.get("plotly_chart")
    html = [b for b in at.get("download_button") if b.proto.label.startswith("HTML")]
    assert len(html) == len(charts)
    return len(charts)


def weight_input(at: AppTest, which: str, axis: int):
    """The landscape's row (axis 0) or column (axis 1) box of its first or second output weight."""
    return next(box for box in at.number_input if box.key.endswith(f".{which}.output.w.{axis}"))


def trace_names(at: AppTest, index: int) -> list[str]:
    return [trace.get("name") for trace in json.loads(at.get("plotly_chart")[index].proto.spec)["data"]]


def test_gradient_check_page_runs_the_check_and_catches_a_bug(data_env):
    at = page("gradient_check", (mlp_run(),))
    no_errors(at)
    assert at.radio(key="setting.gradcheck.source").value == "A trained run"
    assert len(at.latex) >= 4
    at.toggle(key="setting.gradcheck.all.mlp").set_value(False)
    at.number_input(key="setting.gradcheck.k").set_value(60)
    at.slider(key="setting.gradcheck.batch").set_value(20)
    at.button(key="gradcheck.check").click().run()
    no_errors(at)
    assert "agrees" in at.success[0].value
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 20  # 10 step sizes × 2 precisions
    at.selectbox(key="setting.gradcheck.bug.mlp").set_value("derivative-at-activation").run()
    at.button(key="gradcheck.check").click().run()
    assert not at.exception
    assert "WRONG" in at.error[0].value
    at.slider(key="setting.gradcheck.steps").set_value(50)
    at.button(key="gradcheck.train").click().run()
    assert not at.exception
    assert charts_with_save_menus(at) == 3
    assert list(at.session_state["gradcheck.training"][1]) == ["correct gradient", "bug: σ′ at the activation"]


def test_gradient_check_trains_with_the_bug_planted_after_the_page_loaded(data_env):
    at = page("gradient_check")
    at.selectbox(key="setting.gradcheck.bug.mlp").set_value("no-mean").run()
    at.slider(key="setting.gradcheck.steps").set_value(50)
    at.button(key="gradcheck.train").click().run()
    no_errors(at)
    assert list(at.session_state["gradcheck.training"][1]) == ["correct gradient", "bug: Sum instead of mean"]
    # and a bug chosen for training alone, then another planted: training follows the newly planted one
    at.selectbox(key="setting.gradcheck.train_bug.mlp.no-mean").set_value("logits")
    at.button(key="gradcheck.train").click().run()
    assert list(at.session_state["gradcheck.training"][1])[1] == "bug: Logits instead of probabilities"
    at.selectbox(key="setting.gradcheck.bug.mlp").set_value("sign").run()
    at.button(key="gradcheck.train").click().run()
    assert list(at.session_state["gradcheck.training"][1])[1] == "bug: Y − P instead of P − Y"


def test_a_check_cut_off_by_another_click_says_so_once(data_env):
    at = page("gradient_check")
    at.session_state["gradcheck.result.running"] = True  # as a check cut short by a rerun leaves it
    at.run()
    assert "The finite-difference check was cut off before it finished" in at.warning[0].value
    at.run()
    assert not [w for w in at.warning if "cut off" in w.value]
    at.button(key="gradcheck.check").click().run()  # a check that ends leaves no mark behind
    at.run()
    assert not [w for w in at.warning if "cut off" in w.value] and "gradcheck.result.running" not in at.session_state


def test_gradient_check_page_without_runs_uses_a_fresh_network(data_env):
    at = page("gradient_check")
    no_errors(at)
    assert at.radio(key="setting.gradcheck.source").value == "A freshly initialised network"


def test_gradient_check_results_belong_to_the_weights_and_batch_they_were_computed_for(data_env):
    """Another seed draws other weights: the check's table and the training curves go. Another batch seed
    draws other images: the check goes, the training curves (on the whole training split) stay."""
    at = page("gradient_check")
    at.toggle(key="setting.gradcheck.all.mlp").set_value(False)
    at.number_input(key="setting.gradcheck.k").set_value(20)
    at.slider(key="setting.gradcheck.batch").set_value(10)
    at.slider(key="setting.gradcheck.steps").set_value(50)
    for widget, charts_left in (("setting.gradcheck.seed", 0), ("setting.gradcheck.batch_seed", 1)):
        at.button(key="gradcheck.check").click().run()
        at.button(key="gradcheck.train").click().run()
        assert len(at.dataframe) == 1 and charts_with_save_menus(at) == 3
        at.number_input(key=widget).set_value(7).run()
        no_errors(at)
        assert not at.dataframe and "Press the button" in at.info[0].value
        assert charts_with_save_menus(at) == charts_left


def test_backprop_timing_page(data_env):
    at = page("backprop_timing")
    no_errors(at)
    at.multiselect(key="setting.timing.batches").set_value([1, 10, 100])
    at.multiselect(key="setting.timing.widths").set_value([4])
    at.button(key="timing.run").click().run()
    no_errors(at)
    assert charts_with_save_menus(at) == 2
    headings = [m.value for m in at.markdown]
    assert "**Growing batch** (hidden width 4)" in headings and "**Growing hidden layer** (batch 10)" in headings
    assert "×" in at.dataframe[0].value.iloc[0]["over the naive loop"]
    measurements = at.dataframe[1].value
    assert (measurements["calls"] >= 1).all() and measurements["calls"].max() > 3  # fast methods are called often
    assert "extrapolated from 2 of 10 examples" in measurements["how"].tolist()
    # pressed again, nothing compiles: the table says so rather than showing 0.00 s
    at.button(key="timing.run").click().run()
    compile_column = at.dataframe[1].value.set_index("method")["compile seconds"]
    assert set(compile_column) == {"already compiled", "not compiled (plain Python)"}
    assert compile_column["naive per-example, per-weight loop"].eq("not compiled (plain Python)").all()


def test_landscape_page(data_env):
    at = page("landscape", (mlp_run(),))
    no_errors(at)
    assert charts_with_save_menus(at) == 2
    assert "trained values" in trace_names(at, 0)
    at.slider(key="setting.landscape.steps").set_value(5).run()
    no_errors(at)


def test_landscape_page_for_a_fresh_network_speaks_of_initial_values(data_env):
    at = page("landscape")
    no_errors(at)
    assert "initial values" in trace_names(at, 0) and "trained values" not in trace_names(at, 0)
    assert any("curvature at the initial point" in c.value for c in at.caption)
    assert not [c.value for c in at.caption if "trained point" in c.value or "trained values" in c.value]


def test_landscape_page_lets_weights_the_cost_ignores_be_explored_by_hand(tmp_path):
    digits = synthetic_mnist()
    train_images, test_images = digits.train_images.copy(), digits.test_images.copy()
    train_images[:, 0, 0] = test_images[:, 0, 0] = 0  # pixel 0 is blank in every image
    digits = Dataset(train_images, digits.train_labels, test_images, digits.test_labels, source="synthetic")
    at = page("landscape", data_dir=str(write_idx_dir(tmp_path / "blank_pixel", digits)))
    at.selectbox(key="setting.landscape.arch").set_value("linear").run()
    for weight, column in (("first", 0), ("second", 1)):
        weight_input(at, weight, 0).set_value(0)
        weight_input(at, weight, 1).set_value(column)
    at.run()
    no_errors(at)
    assert "not curved upwards" in at.warning[0].value and "set them by hand" in at.warning[0].value
    inputs = {number.label: number for number in at.number_input}
    assert inputs["Grid half-width"].value == 1.0 and inputs["Learning rate"].value == pytest.approx(0.1)
    inputs["Learning rate"].set_value(0.5).run()  # the advice can be followed
    no_errors(at)
    assert charts_with_save_menus(at) == 2


def test_gradient_check_settings_and_results_survive_a_page_switch(data_env):
    at = page("gradient_check", (mlp_run(),))
    at.toggle(key="setting.gradcheck.all.mlp").set_value(False)
    at.number_input(key="setting.gradcheck.k").set_value(60)
    at.selectbox(key="setting.gradcheck.bug.mlp").set_value("no-mean").run()
    at.button(key="gradcheck.check").click().run()
    charts = charts_with_save_menus(at)
    assert charts >= 1
    at.switch_page("dashboard/pages/data.py").run()
    at.switch_page("dashboard/pages/gradient_check.py").run()
    assert not at.exception
    assert at.selectbox(key="setting.gradcheck.bug.mlp").value == "no-mean"
    assert at.number_input(key="setting.gradcheck.k").value == 60
    assert charts_with_save_menus(at) == charts  # the check's results are shown again, not lost


def test_lab_settings_survive_a_page_switch(data_env):
    at = page("landscape")
    at.slider(key="setting.landscape.steps").set_value(7).run()
    at.switch_page("dashboard/pages/backprop_timing.py").run()
    at.multiselect(key="setting.timing.widths").set_value([4]).run()
    at.switch_page("dashboard/pages/landscape.py").run()
    assert not at.exception and at.slider(key="setting.landscape.steps").value == 7
    at.switch_page("dashboard/pages/backprop_timing.py").run()
    assert at.multiselect(key="setting.timing.widths").value == [4]


def test_landscape_page_says_when_the_valley_is_longer_than_the_grid(tmp_path):
    digits = synthetic_mnist()
    train_images, test_images = digits.train_images.copy(), digits.test_images.copy()
    train_images[:, 0, 0] = test_images[:, 0, 0] = 0  # pixel 0 is blank in every image: its weights are flat
    digits = Dataset(train_images, digits.train_labels, test_images, digits.test_labels, source="synthetic")
    at = page("landscape", data_dir=str(write_idx_dir(tmp_path / "blank_pixel", digits)))
    at.selectbox(key="setting.landscape.arch").set_value("linear").run()
    weight_input(at, "first", 0).set_value(0)  # the blank pixel's weight into unit 0
    weight_input(at, "second", 0).set_value(400)  # a pixel the digits use
    weight_input(at, "second", 1).set_value(0)
    at.run()
    no_errors(at)
    assert any("almost flat along one direction" in c.value for c in at.caption)
    assert any("one of many points about as low" in c.value for c in at.caption)


def test_landscape_weights_follow_the_network_until_picked(data_env):
    at = page("landscape")
    at.number_input(key="setting.landscape.hidden").set_value(5).run()
    no_errors(at)
    suggested = next(c.value for c in at.caption if c.value.startswith("Default:"))
    first = (weight_input(at, "first", 0).value, weight_input(at, "first", 1).value)
    assert f"output.w[{first[0]}, {first[1]}]" in suggested  # the new network's own suggestion, not the last one's


def test_gradient_check_offers_no_bug_as_a_choice_not_a_placeholder(data_env):
    at = page("gradient_check")
    choice = at.selectbox(key="setting.gradcheck.bug.mlp")
    assert choice.value == "none" and choice.format_func(choice.value) == "none: the correct gradient"
