"""AppTest tests of every page, with and without runs, on the tiny synthetic MNIST."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from core.data.locate import load_mnist
from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig, make_splits
from core.networks.base import Model, ModelConfig, seed_key
from core.store.checkpoint import model_bytes
from core.store.history import RunHistory
from core.store.location import HOME_ENV
from core.summaries import select_examples
from core.training.config import RunConfig, TrainConfig
from core.training.evaluation import evaluate
from core.training.runs import Run
from core.training.status import RunStatus
from dashboard import export
from dashboard.widgets import RUN_PICKER_KEY

PAGES = ["data", "train", "results", "weights"]
TIMEOUT = 120
SPLIT = SplitConfig(val_size=200)


def app(page: str | None = None) -> AppTest:
    """The app at `page`; the Train page holding out 200 validation images of the tiny MNIST's 1,200."""
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    if page == "train":
        at.session_state["setting.val_size"] = 200
    if page:
        at.switch_page(f"dashboard/pages/{page}.py")
    return at


def made_run(arch: str, tiny_data_dir, *, hidden=(20,), seed=0, status=RunStatus.FINISHED,
             diverged_at: int | None = None) -> Run:
    """A run with freshly initialised (untrained) parameters: it gets many test digits wrong."""
    config = RunConfig(ModelConfig(arch=arch, hidden=hidden), SPLIT, TrainConfig(epochs=1))
    params = Model(config.model, MNIST_SPEC).init(seed_key(seed))
    run = Run(f"{arch} run", config, MNIST_SPEC, params=params, status=status, diverged_at=diverged_at)
    if status is RunStatus.FINISHED:
        run.finish(make_splits(load_mnist(tiny_data_dir), SPLIT))
    return run


def with_runs(at: AppTest, *runs: Run) -> AppTest:
    at.session_state["runs"] = {run.name: run for run in runs}
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures by widget key (the end of the element id)."""
    found = {}
    for element in at.get("plotly_chart"):
        key = element.proto.id.rsplit("-", 1)[-1]
        found[key] = json.loads(element.proto.spec)
    return found


def heatmaps(figure: dict) -> int:
    return sum(trace.get("type") == "heatmap" for trace in figure["data"])


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_runs(data_env, page):
    at = app(page).run()
    assert not at.exception
    assert not at.error
    if page in ("results", "weights"):
        assert "No trained run yet" in at.info[0].value


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_a_run(data_env, page):
    at = with_runs(app(page), made_run("mlp", data_env)).run()
    assert not at.exception
    assert not at.error


def test_data_page_shows_counts_and_gallery(data_env, tiny_mnist):
    at = app().run()
    table = at.dataframe[0].value
    assert list(table["test"]) == list(np.bincount(tiny_mnist.test_labels, minlength=10))
    assert "gallery" in charts(at)


def test_data_page_without_data_explains_and_accepts_uploads(tmp_path, data_env):
    at = app()
    at.session_state["setting.data_dir"] = str(tmp_path)  # a folder with no MNIST in it
    at.run()
    assert not at.exception
    assert "No MNIST data could be loaded" in at.error[0].value
    files = [(p.name, p.read_bytes(), "application/gzip") for p in sorted(data_env.iterdir())]
    at.file_uploader[0].set_value(files[:2]).run()  # two of the four: the error says which are missing
    assert "missing: " + ", ".join(Path(name).name.split(".")[0] for name, _, _ in files[2:]) in at.error[0].value
    broken = [(files[0][0], files[0][1][:-100], "application/gzip"), *files[1:]]
    at.file_uploader[0].set_value(broken).run()  # the uploader lists every file added so far, one of them cut short
    assert "truncated" in at.error[0].value or "corrupt" in at.error[0].value
    at.file_uploader[0].set_value(files).run()  # the broken one removed and uploaded again: only these count
    assert not at.error
    assert "IDX files in" in at.success[0].value
    folder = at.session_state["setting.data_dir"]
    again = app()
    again.session_state["setting.data_dir"] = str(tmp_path)
    again.run().file_uploader[0].set_value(files).run()  # the same files in another session: the same folder
    assert again.session_state["setting.data_dir"] == folder and "IDX files in" in again.success[0].value


def test_an_uploaded_file_that_is_not_mnist_is_named_in_the_error(tmp_path, data_env):
    at = app()
    at.session_state["setting.data_dir"] = str(tmp_path)
    at.run().file_uploader[0].set_value([("my-digits.npz", b"not a zip", "application/octet-stream")]).run()
    assert not at.exception and "my-digits.npz is not a valid .npz file" in at.error[0].value


def test_training_through_the_widgets_keeps_a_run_with_curves_and_accuracy(data_env):
    at = app("train").run()
    at.number_input(key="setting.val_size").set_value(200)
    at.number_input(key="setting.epochs").set_value(1)
    at.text_input(key="setting.hidden").set_value("32")
    button(at.run(), "Train").click().run()
    assert not at.exception and not at.error
    (run,) = at.session_state["runs"].values()
    assert run.status == "finished"
    assert run.history and run.history[-1]["val_accuracy"] is not None
    assert run.config.model.hidden == (32,) and run.config.data.val_size == 200
    # the form is not shown while training (the live view takes its place); the settings stay as they were
    assert at.text_input(key="setting.hidden").value == "32" and at.number_input(key="setting.val_size").value == 200
    assert 0.5 < run.test_accuracy <= 1.0
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{run.test_accuracy:.2%}"
    assert "overlay_chart" in charts(at)


def test_invalid_settings_show_an_error_not_a_traceback(data_env):
    at = app("train").run()
    at.number_input(key="setting.val_size").set_value(200)
    at.radio(key="setting.subset").set_value("total").run()
    at.number_input(key="setting.train_size").set_value(30)
    at.number_input(key="setting.batch_size").set_value(100).run()
    assert not at.exception  # checked against the data at once: no run is started to be refused
    assert "The batch size (100) is larger than the training set (30 images)" in at.error[0].value
    assert button(at, "Train").disabled and not at.session_state["runs"]
    at.text_input(key="setting.hidden").set_value("3x0").run()
    assert "whole numbers" in at.error[0].value
    assert button(at, "Train").disabled
    at.number_input(key="setting.batch_size").set_value(10)
    at.radio(key="setting.arch").set_value("linear").run()  # the widths box is an MLP's: gone, and not read
    assert not at.error and not button(at, "Train").disabled


def small_training(at: AppTest) -> AppTest:
    """Settings for a quick run on the tiny MNIST."""
    at.number_input(key="setting.val_size").set_value(200)
    at.number_input(key="setting.epochs").set_value(1)
    at.text_input(key="setting.hidden").set_value("32")
    return at


def test_a_huge_learning_rate_is_what_trains(data_env):
    """A typed value beyond the old widget bounds is used, not silently replaced by an earlier one."""
    at = small_training(app("train").run())
    at.number_input(key="setting.learning_rate").set_value(100.0)
    button(at.run(), "Train").click().run()
    assert not at.exception
    assert at.number_input(key="setting.learning_rate").value == 100.0
    (run,) = at.session_state["runs"].values()
    assert run.config.train.learning_rate == 100.0 and run.test_accuracy is not None


def test_out_of_range_values_are_refused_with_a_message(data_env):
    at = app("train").run()
    at.number_input(key="setting.val_size").set_value(70_000).run()  # checked against the data at once
    assert not at.exception
    assert "Validation size must be between 0 and 1199, got 70000" in at.error[0].value
    assert button(at, "Train").disabled and not at.session_state["runs"]
    at.number_input(key="setting.val_size").set_value(200)
    at.number_input(key="setting.learning_rate").set_value(0.0).run()
    assert "learning rate must be a positive number" in at.error[0].value
    assert button(at, "Train").disabled


def test_small_rates_are_shown_as_they_are(data_env):
    at = app("train").run()
    for key in ("setting.learning_rate", "setting.weight_decay"):
        shown = at.number_input(key=key).proto.format % 4e-06
        assert float(shown) == 4e-06, key


def test_a_run_that_cannot_be_saved_says_so_after_training(data_env, monkeypatch, tmp_path):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    (tmp_path / "runs.sqlite3").write_bytes(b"not a database" * 100)
    at = small_training(app("train").run())
    button(at.run(), "Train").click().run()
    assert not at.exception
    (run,) = at.session_state["runs"].values()
    assert run.status == "finished"
    assert f"Run '{run.name}' is kept in this session but could not be saved" in at.warning[0].value


def test_an_interrupted_run_is_kept_stopped_and_evaluated(data_env):
    """Stop (or a page switch) reruns the script mid-loop; the run left 'running' becomes 'stopped'."""
    run = made_run("linear", data_env, status=RunStatus.RUNNING)
    run.history.append({"step": 5, "epoch": 0.3, "train_loss": 2.0, "train_accuracy": 0.2, "val_loss": None,
                        "val_accuracy": None, "learning_rate": 1e-3, "elapsed": 0.1, "samples_per_second": 100.0})
    at = with_runs(app("train"), run).run()
    assert not at.exception
    kept = at.session_state["runs"][run.name]
    assert kept.status == "stopped"
    assert kept.test_accuracy is not None
    assert "Stopped after 0.30 of 1 epochs" in at.warning[0].value
    assert at.metric[2].label == "Epochs" and at.metric[2].value == "0.30"
    table = at.dataframe[0].value
    assert list(table.columns) == ["name", "network", "status", "validation accuracy", "test accuracy", "epochs",
                                   "training (s)", "compiling (s)", "samples/s"]
    assert table["epochs"].tolist() == ["0.30"]


def test_weight_initialisation_follows_the_network_until_the_user_picks_one(data_env):
    at = app("train").run()
    init = lambda: at.selectbox(key="setting.init").value  # noqa: E731
    assert init() == "he"  # the default ReLU MLP
    at.selectbox(key="setting.activation").set_value("tanh").run()
    assert init() == "glorot"
    at.radio(key="setting.arch").set_value("lenet5").run()
    assert init() == "he"
    at.radio(key="setting.arch").set_value("linear").run()
    assert init() == "glorot"
    at.selectbox(key="setting.init").set_value("he").run()  # the user's choice sticks from now on
    at.radio(key="setting.arch").set_value("mlp").run()
    at.selectbox(key="setting.activation").set_value("sigmoid").run()
    assert init() == "he"
    assert not at.exception


def test_diverged_run_suggests_a_lower_learning_rate(data_env):
    run = made_run("linear", data_env, status=RunStatus.DIVERGED, diverged_at=7)
    at = with_runs(app("train"), run).run()
    assert "diverged at step 7" in at.error[0].value
    assert "try 0.0001" in at.error[0].value


def test_runs_can_be_renamed_and_removed(data_env):
    at = with_runs(app("train"), made_run("linear", data_env), made_run("mlp", data_env)).run()
    at.selectbox(key=RUN_PICKER_KEY).set_value("linear run").run()
    at.text_input(key="rename.linear run").set_value("first")
    button(at, "Rename").click().run()
    assert list(at.session_state["runs"]) == ["first", "mlp run"] and "Renamed to 'first'." in at.success[0].value
    at.text_input(key="rename.first").set_value("  ")
    button(at, "Rename").click().run()
    assert list(at.session_state["runs"]) == ["first", "mlp run"] and "cannot be empty" in at.error[0].value
    at.text_input(key="rename.first").set_value("mlp run")
    button(at, "Rename").click().run()  # the name field and Rename are one form
    assert "Renamed to 'mlp run (2)' ('mlp run' is another run's)." in at.success[0].value
    button(at, "Remove this run").click().run()
    assert not at.exception
    assert len(at.session_state["runs"]) == 1


def test_results_filters_select_exactly_the_chosen_mistakes(data_env):
    run = made_run("linear", data_env)
    mnist = load_mnist(data_env)
    splits = make_splits(mnist, SPLIT)
    evaluation = evaluate(run.params, run.model, splits.x_test, splits.y_test)
    true_digit, predicted = np.argwhere(evaluation.confusion - np.diag(np.diag(evaluation.confusion)))[0]
    expected = select_examples(evaluation, true_digit=true_digit, predicted_digit=predicted)
    at = with_runs(app("results"), run).run()
    assert not at.exception
    at.selectbox(key="filter.true").set_value(int(true_digit))
    at.selectbox(key="filter.predicted").set_value(int(predicted)).run()
    assert any(f"**{len(expected):,}** misclassified images match" in m.value for m in at.markdown)
    captions = at.image[0].captions  # the grid of mistakes comes first
    assert len(captions) == min(len(expected), 40)
    assert captions == [f"{true_digit}→{predicted}\u00a0·\u00a0{evaluation.probabilities[i].max():.0%} #{i}"
                        for i in expected[:40]]
    assert {"confusion_chart", "per_class_chart", "probability_chart"} <= set(charts(at))
    at.selectbox(key="filter.predicted").set_value(int(true_digit)).run()  # a diagonal cell: correct digits
    assert "counts the correctly classified images" in at.info[0].value


@pytest.mark.parametrize("arch, expected", [
    ("linear", {"unit_images": 10}),
    ("mlp", {"unit_images": 20, "feeder_units": 6}),
    ("lenet5", {"unit_images": 6, "conv1_maps": 6, "conv2_maps": 16}),
])
def test_weights_page_shows_one_heatmap_per_unit(data_env, arch, expected):
    at = with_runs(app("weights"), made_run(arch, data_env)).run()
    assert not at.exception and not at.error
    found = charts(at)
    assert {key: heatmaps(found[key]) for key in expected} == expected
    assert ("feeder_units" in found) == (arch == "mlp")  # units feeding the outputs directly: one hidden layer
    assert ("conv1_maps" in found) == (arch == "lenet5")  # feature maps: the networks that have them


def test_weights_of_a_wide_mlp_are_paged(data_env):
    at = with_runs(app("weights"), made_run("mlp", data_env, hidden=(50,))).run()
    assert heatmaps(charts(at)["unit_images"]) == 36
    at.number_input(key="unit_page").set_value(2).run()
    assert heatmaps(charts(at)["unit_images"]) == 14


def test_model_file_round_trip_and_tampered_file(data_env):
    run = made_run("mlp", data_env)
    at = app("train").run()
    at.file_uploader(key="model_upload").set_value(("saved.npz", model_bytes(run.params, run.config, run.spec),
                                                    "application/octet-stream")).run()
    assert not at.exception and not at.error
    (loaded,) = at.session_state["runs"].values()
    assert loaded.name == "saved" and loaded.test_accuracy == pytest.approx(run.test_accuracy)
    metrics = {metric.label: metric.value for metric in at.metric}  # a file brings no record of its training
    assert metrics["Epochs"] == metrics["Training time"] == metrics["Samples per second"] == "—"
    at.file_uploader(key="model_upload").set_value(("bad.npz", b"not a model", "application/octet-stream")).run()
    assert "bad.npz was not loaded" in at.error[0].value
    assert len(at.session_state["runs"]) == 1


def test_runs_taken_off_the_chart_stay_off_and_new_runs_go_on(data_env):
    first, second = made_run("linear", data_env), made_run("mlp", data_env)
    at = with_runs(app("train"), first, second).run()
    chart_runs = at.multiselect(key="setting.chart_runs")
    assert chart_runs.value == [first.name, second.name]
    chart_runs.unselect(first.name).run()
    at.switch_page("dashboard/pages/results.py").run()
    at.session_state["runs"][made_run("lenet5", data_env).name] = made_run("lenet5", data_env)
    at.switch_page("dashboard/pages/train.py").run()
    assert at.multiselect(key="setting.chart_runs").value == [second.name, "lenet5 run"]
    at.selectbox(key=RUN_PICKER_KEY).set_value(first.name).run()  # renamed, the run taken off stays off
    at.text_input(key=f"rename.{first.name}").set_value("first, renamed")
    next(b for b in at.button if b.label == "Rename").click().run()
    assert "first, renamed" in at.session_state["runs"]
    assert at.multiselect(key="setting.chart_runs").value == [second.name, "lenet5 run"]


def test_export_file_names_say_run_chart_and_date():
    name = export.file_name("784-300-10 relu #1", "confusion matrix", "png")
    assert name == f"784-300-10-relu-1_confusion-matrix_{date.today().isoformat()}.png"


@pytest.mark.parametrize("chrome", [None, "/usr/bin/chromium"])
def test_png_and_svg_downloads_or_how_to_enable_them(data_env, monkeypatch, chrome):
    monkeypatch.setattr(export, "chrome_path", lambda: chrome)
    at = with_runs(app("weights"), made_run("linear", data_env)).run()
    labels = [b.label for b in at.get("download_button")]
    assert "HTML (interactive, works offline)" in labels
    if chrome is None:
        assert "PNG" not in labels and any("needs Chrome or Chromium" in c.value for c in at.caption)
    else:
        assert {"PNG", "SVG"} <= set(labels)


def test_weights_can_be_viewed_after_each_saved_epoch(data_env):
    run = made_run("linear", data_env)
    first = run.model.init(seed_key(1))
    run.history = [{"epoch": 1.0}, {"epoch": 2.0}]
    run.snapshots = [(1, first), (2, jax.tree_util.tree_map(np.array, run.params))]  # copies, as a reloaded run's
    at = with_runs(app("weights"), run).run()
    slider = at.select_slider(key=f"epoch.{run.name}")
    assert slider.options == ["epoch 1", "epoch 2"] and slider.value == "epoch 2"  # epoch 2 is the end of the run
    final_limit = charts(at)["unit_images"]["layout"]["coloraxis"]["cmax"]
    slider.set_value("epoch 1").run()
    first_limit = charts(at)["unit_images"]["layout"]["coloraxis"]["cmax"]
    assert first_limit == pytest.approx(float(np.abs(first["output"]["w"]).max()))
    assert first_limit != final_limit
    run.history.append({"epoch": 2.5})  # stopped half-way through epoch 3: its end is a point of its own
    at = with_runs(app("weights"), run).run()
    assert at.select_slider(key=f"epoch.{run.name}").options == ["epoch 1", "epoch 2", "end of the run"]


def test_a_first_use_download_shows_progress(monkeypatch, tiny_data_dir):
    """The data page passes a progress callback to the download, which runs outside the cached loader: the page
    still works on the next rerun (a callback drawing inside a cached function broke the replay)."""
    from dashboard import state

    calls = []

    def fake_download(source, progress=None):
        if not calls:  # first use: the cache is empty, so the files are downloaded once
            for done in (0, 5, 10):
                progress("train-images-idx3-ubyte.gz", done, 10)
                calls.append(done)
        return dataclasses.replace(source, path=str(tiny_data_dir))

    monkeypatch.setattr(state, "located", fake_download)
    at = app()
    at.session_state["setting.data_dir"] = "downloading-for-this-test"
    at.run()
    assert not at.exception and not at.error
    assert calls == [0, 5, 10]
    assert str(tiny_data_dir) in at.success[0].value
    at.run()
    assert not at.exception and not at.error and str(tiny_data_dir) in at.success[0].value


def test_every_finished_chart_has_the_save_chart_menu():
    # st.plotly_chart directly only for the live curves and layer statistics redrawn while training; every other
    # chart goes through export.chart, which adds the "Save chart" menu (HTML, PNG, SVG)
    live = ("chart.plotly_chart(figures.training_curves(",
            "statistics_chart.plotly_chart(dynamics_figures.layer_statistics(")
    for path in sorted((REPO / "dashboard").rglob("*.py")):
        if path.name == "export.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "plotly_chart(" in line:
                assert line.strip().startswith(live), f"{path.name}:{number}"


def test_results_metric_shows_the_count_and_the_total_apart(data_env):
    at = with_runs(app("results"), made_run("mlp", data_env)).run()
    metric = next(m for m in at.metric if m.label == "Misclassified test images")
    assert "of" not in metric.value and metric.delta == "of 300"


def test_data_page_shows_the_train_pages_split(data_env):
    at = app()
    at.session_state["setting.val_size"] = 200
    at.session_state["setting.subset"] = "per_class"
    at.session_state["setting.per_class"] = 50
    at.session_state["setting.train_size"] = 100
    at.session_state["setting.seed"] = 0
    at.run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Training images"] == "500" and values["Validation images"] == "200"
    assert any("split set on the Train page" in c.value for c in at.caption)


def test_data_page_shrinks_the_default_split_for_small_data_and_says_when_a_split_cannot_be_made(data_env):
    at = app().run()  # the default 5,000 validation images are more than the tiny MNIST's 1,200: a fifth of them
    assert not at.exception and not at.error
    values = {m.label: m.value for m in at.metric}
    assert values["Training images"] == "960" and values["Validation images"] == "240"
    assert "train (all 1,200)" in at.dataframe[0].value.columns
    at.session_state["setting.val_size"] = 5000
    at.session_state["setting.subset"] = "all"
    at.session_state["setting.seed"] = 0
    at.run()
    assert {m.label: m.value for m in at.metric}["Training images"] == "—"
    assert any("the split set on the Train page cannot be made" in c.value for c in at.caption)


def test_data_page_shows_data_with_digits_missing_or_rare(tmp_path, data_env):
    labels = np.r_[np.arange(50) % 5, [7, 7]]  # digits 0-4, two 7s, no 5, 6, 8 or 9
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((52, 28, 28), np.uint8), y_train=labels,
             x_test=np.zeros((10, 28, 28), np.uint8), y_test=np.arange(10))
    at = app()
    at.session_state["setting.data_dir"] = str(tmp_path)
    at.run()
    assert not at.exception and "gallery" in charts(at)
    assert list(at.dataframe[0].value["train (all 52)"]) == [10, 10, 10, 10, 10, 0, 0, 2, 0, 0]
    assert "(fewer of 5, 6, 7, 8, 9: blank cells)" in " ".join(h.value for h in at.subheader)


def test_weights_page_warns_about_a_diverged_run(data_env):
    run = made_run("mlp", data_env, status=RunStatus.DIVERGED, diverged_at=5)
    at = with_runs(app("weights"), run).run()
    assert not at.exception
    assert "diverged at step 5" in at.warning[0].value and "initial, untrained weights" in at.warning[0].value
    assert any("before it diverged" in c.value for c in at.caption)
    run.history = [{"step": 40, "epoch": 1.25}]  # kept after 40 updates
    at = with_runs(app("results"), run).run()
    assert "after 40 updates (epoch 1.25)" in at.warning[0].value


def test_results_warn_about_an_enormous_loss(data_env):
    run = made_run("linear", data_env)
    run.params = jax.tree_util.tree_map(lambda leaf: leaf * 1e30, run.params)  # what a far too high rate leaves
    at = with_runs(app("results"), run).run()
    assert not at.exception and "test loss is enormous" in at.warning[0].value


def test_results_say_when_an_enormous_loss_comes_with_chance_accuracy(data_env):
    run = made_run("linear", data_env)
    bias = np.zeros(10, np.float32)
    bias[0] = 1e4  # every digit called a 0, and the others given a probability of e^-10000
    run.params = {"output": {"w": np.zeros((784, 10), np.float32), "b": bias}}
    at = with_runs(app("results"), run).run()
    assert not at.exception
    [warning] = [w.value for w in at.warning if "test loss is enormous" in w.value]
    assert "about chance" in warning


def test_pages_point_at_the_saved_runs_when_the_session_has_none(data_env):
    RunHistory().save(made_run("linear", data_env))
    for page in ("results", "weights"):
        at = app(page).run()
        assert "reload one of the 1 saved in the run history" in at.info[0].value


@pytest.mark.parametrize("page", ["results", "weights", "train"])
def test_a_data_folder_without_mnist_is_an_error_not_a_traceback(data_env, tmp_path, page):
    at = with_runs(app(page), made_run("lenet5", data_env))
    at.session_state["setting.data_dir"] = str(tmp_path)  # changed on the Data page after training
    at.run()
    assert not at.exception
    assert "holds no MNIST" in at.error[0].value and "Data page" in at.error[0].value  # (an empty folder)
    if page == "train":
        assert button(at, "Train").disabled


def test_output_digit_choice_cannot_be_emptied(data_env):
    at = with_runs(app("weights"), made_run("mlp", data_env)).run()
    digits = at.button_group(key="feeder_digit")
    digits.set_value(3).run()
    assert "the output for digit 3" in " ".join(c.value for c in at.caption)
    at.button_group(key="feeder_digit").set_value(None).run()
    assert at.button_group(key="feeder_digit").value == 3
    assert "the output for digit 3" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("page", ["results", "train"])
def test_a_run_that_learned_next_to_nothing_is_called_so(data_env, page):
    run = made_run("linear", data_env)  # untrained weights: about one digit in ten right
    assert run.test_accuracy < 0.2
    at = with_runs(app(page), run).run()
    assert not at.exception
    [warning] = [w.value for w in at.warning if "little better than guessing" in w.value]
    assert f"{run.test_accuracy:.2%}" in warning and "try 0.0001 instead of 0.001" in warning


def test_the_train_page_starts_with_a_validation_set_the_data_can_spare(data_env):
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)
    at.switch_page("dashboard/pages/train.py").run()  # the tiny MNIST: a fifth of its training images, not 5,000
    assert not at.exception and not at.error
    expected = len(load_mnist(data_env).train_labels) // 5
    assert at.number_input(key="setting.val_size").value == expected and not button(at, "Train").disabled
