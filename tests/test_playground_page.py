"""AppTest of the Playground page: a drawing injected as the canvas's value, each view for each network, a test
image sent from the Results page."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_other_datasets import array
from test_pages import app, charts, made_run, with_runs

CANVAS_KEY = "playground.canvas.0"  # the first canvas of a session (Clear makes a new one)


def canvas_value(strokes: list[list[tuple[int, int]]], width: int = 18) -> dict:
    """What the canvas component sends after drawing `strokes` (white on black, 280×280): its PNG as a data URL."""
    picture = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    pen = ImageDraw.Draw(picture)
    for stroke in strokes:
        pen.line(stroke, fill=(255, 255, 255, 255), width=width, joint="curve")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}] * len(strokes)}, "data": url}, "backgroundFit": None}


SEVEN = [[(70, 60), (210, 60), (120, 230)]]
ONE = [[(140, 50), (140, 230)]]


def drawn(at, strokes):
    at.session_state[CANVAS_KEY] = canvas_value(strokes)
    return at.run()


def bars(at) -> list[float]:
    return list(array(charts(at)["playground.bars"]["data"][0]["y"]))


@pytest.fixture
def mlp_run(data_env):
    return made_run("mlp", data_env)


def test_without_a_run_the_page_says_to_train_one(data_env):
    at = app("playground").run()
    assert not at.exception
    assert any("Train a network" in info.value for info in at.info)


def test_an_empty_canvas_is_a_note_not_a_prediction(mlp_run):
    at = with_runs(app("playground"), mlp_run).run()
    assert not at.exception
    assert any("Nothing is drawn yet" in info.value for info in at.info)
    assert "playground.bars" not in charts(at)
    at = drawn(at, [])  # the canvas sends a blank picture after its own reset button
    assert "playground.bars" not in charts(at)
    assert any("Nothing is drawn yet" in info.value for info in at.info)


def test_a_drawing_is_prepared_step_by_step_and_classified(mlp_run):
    at = drawn(with_runs(app("playground"), mlp_run).run(), SEVEN)
    assert not at.exception
    probabilities = bars(at)
    assert len(probabilities) == 10 and sum(probabilities) == pytest.approx(1, abs=1e-5)
    steps = [image.proto.imgs[0].caption for image in at.get("image")]
    assert steps[-1] == "centre of mass centred: the input" and len(steps) == 4
    first = probabilities
    at = drawn(at, ONE)
    assert bars(at) != first  # another drawing, another prediction


@pytest.mark.parametrize("arch, expected", [
    ("mlp", {"playground.units.hidden_0", "playground.contributions", "playground.incoming"}),
    ("linear", {"playground.pixel_contributions"}),
    ("lenet5", {"playground.maps.conv1", "playground.maps.pool1", "playground.maps.conv2", "playground.maps.pool2",
                "playground.units.fc1", "playground.units.fc2", "playground.contributions"}),
])
def test_inside_shows_each_networks_layers(data_env, arch, expected):
    at = drawn(with_runs(app("playground"), made_run(arch, data_env)).run(), SEVEN)
    assert not at.exception
    assert expected <= set(charts(at))


def test_linear_contributions_are_pixel_times_weight_per_class(data_env):
    run = made_run("linear", data_env)
    at = drawn(with_runs(app("playground"), run).run(), SEVEN)
    maps = [array(trace["z"]) for trace in charts(at)["playground.pixel_contributions"]["data"]]
    assert len(maps) == 10
    logits = np.log(bars(at))
    sums = np.array([np.nansum(m) for m in maps]) + np.asarray(run.params["output"]["b"])
    np.testing.assert_allclose(sums - sums.max(), logits - logits.max(), atol=1e-3)  # softmax ignores a shift


@pytest.mark.parametrize("method", ["Gradient", "Gradient × input", "SmoothGrad", "Integrated gradients",
                                    "Occlusion"])
def test_why_draws_each_method_over_the_input(mlp_run, method):
    at = drawn(with_runs(app("playground"), mlp_run).run(), SEVEN)
    at.segmented_control(key="playground.view").set_value("Why").run()
    at.radio(key="playground.method").set_value(method).run()
    assert not at.exception
    figure = charts(at)["playground.attribution"]
    assert [trace["type"] for trace in figure["data"]] == ["heatmap"] * 4
    if method == "Integrated gradients":
        assert any("Completeness" in md.value for md in at.markdown)


def test_fool_it_attacks_the_drawing_and_the_test_set(mlp_run):
    at = drawn(with_runs(app("playground"), mlp_run).run(), SEVEN)
    at.segmented_control(key="playground.view").set_value("Fool it").run()
    assert not at.exception
    assert {"playground.attack_images", "playground.attack_bars"} <= set(charts(at))
    assert any("smallest ε" in md.value for md in at.markdown)
    at.text_input(key="playground.eps_values").set_value("0, 0.1").run()
    next(b for b in at.button if b.label.startswith("Attack the test set")).click().run()
    assert not at.exception
    curve = charts(at)["playground.eps_chart"]["data"][0]
    assert list(array(curve["x"])) == [0.0, 0.1]
    assert array(curve["y"])[0] == pytest.approx(mlp_run.test_accuracy)  # ε = 0 is the plain test accuracy


def test_a_bad_eps_list_is_one_message(mlp_run):
    at = drawn(with_runs(app("playground"), mlp_run).run(), SEVEN)
    at.segmented_control(key="playground.view").set_value("Fool it").run()
    at.text_input(key="playground.eps_values").set_value("0, lots").run()
    assert not at.exception
    assert any("ε values are numbers" in error.value for error in at.error)


def test_stress_it_measures_corruptions_and_coverage(mlp_run):
    at = with_runs(app("playground"), mlp_run).run()  # needs no input
    at.segmented_control(key="playground.view").set_value("Stress it").run()
    assert "playground.coverage" in charts(at)
    at.multiselect(key="playground.corruptions").set_value(["noise"]).run()
    next(b for b in at.button if b.label.startswith("Measure")).click().run()
    assert not at.exception
    curve = charts(at)["playground.robust_chart"]["data"][0]
    assert array(curve["y"])[0] == pytest.approx(mlp_run.test_accuracy)  # severity 0: the plain test accuracy


def test_results_sends_a_mistake_to_the_playground(mlp_run):
    at = with_runs(app("results"), mlp_run).run()
    mistakes = next(group for group in at.get("button_group") if group.label == "Open in the Playground")
    index = int(mistakes.options[3].lstrip("#"))
    mistakes.set_value(index).run()
    assert not at.exception
    assert at.session_state["playground.source"] == "Test image"
    assert at.session_state["setting.playground.test_index"] == index
    assert any(f"test image #{index}" in image.caption for image in at.get("image")[0].proto.imgs)
    assert "playground.bars" in charts(at)
