"""The app end to end on data that is not MNIST: 16×16 images of 4 classes and 32×32 images of 26, written by the
tests as arrays files. Train, Results and Weights by AppTest, for every network: nothing may assume 28×28 images
or ten classes."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from core.data.formats import load_path
from core.networks.base import NETWORKS

TIMEOUT = 180
DATASETS = {  # name: (side, class names)
    "Shapes": (16, ("circle", "square", "cross", "bar")),
    "Letters": (32, tuple(chr(ord("A") + i) for i in range(26))),
}


def write_dataset(path, side: int, names: tuple[str, ...], seed: int = 0):
    """A learnable dataset: each class a fixed random template, each image its class's template with pixel noise."""
    rng = np.random.default_rng(seed)
    templates = rng.random((len(names), side, side)) < 0.25

    def draw(n):
        labels = np.arange(n) % len(names)
        noise = rng.random((n, side, side)) < 0.05
        return np.where(templates[labels] ^ noise, 255, 0).astype(np.uint8), labels.astype(np.uint8)

    (x_train, y_train), (x_test, y_test) = draw(100 * len(names)), draw(10 * len(names))
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=np.array(names),
             name=np.array(path.stem.title()))
    return path


@pytest.fixture(params=list(DATASETS), scope="module")
def dataset_file(request, tmp_path_factory):
    side, names = DATASETS[request.param]
    return write_dataset(tmp_path_factory.mktemp("data") / f"{request.param.lower()}.npz", side, names)


def array(value) -> np.ndarray:
    """A figure's data array as plotly writes it: a list, or {"dtype", "bdata" (base64), "shape"} for numpy data."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def figures(at: AppTest) -> dict[str, dict]:
    return {element.proto.id.rsplit("-", 1)[-1]: json.loads(element.proto.spec) for element in at.get("plotly_chart")}


def test_the_arrays_file_describes_its_data(dataset_file):
    data = load_path(dataset_file)
    side, names = DATASETS[dataset_file.stem.title()]
    assert (data.spec.height, data.spec.width, data.spec.channels) == (side, side, 1)
    assert data.spec.class_names == names and data.spec.name == dataset_file.stem.title()


@pytest.mark.parametrize("arch", list(NETWORKS))
def test_train_results_and_weights_pages_follow_the_data(arch, dataset_file, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(dataset_file))
    side, names = DATASETS[dataset_file.stem.title()]
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert f"{side} × {side}" in [metric.value for metric in at.metric]  # the Data page's image size

    at.switch_page("dashboard/pages/train.py").run()
    at.radio(key="setting.arch").set_value(arch).run()
    at.number_input(key="setting.epochs").set_value(2).run()
    at.number_input(key="setting.learning_rate").set_value(0.01).run()
    next(button for button in at.button if button.label == "Train").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = next(iter(at.session_state["runs"].values()))
    assert run.spec.class_names == names
    assert run.test_confusion.shape == (len(names), len(names))
    assert run.test_accuracy > 2 / len(names)  # it learned: these classes are easy

    at.switch_page("dashboard/pages/results.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    confusion = figures(at)["confusion_chart"]
    assert confusion["layout"]["xaxis"]["ticktext"] == list(names)
    assert array(confusion["data"][0]["z"]).shape == (len(names), len(names))
    bars = figures(at)["per_class_chart"]
    assert len(array(bars["data"][0]["y"])) == len(names)

    at.switch_page("dashboard/pages/weights.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    units = figures(at)["unit_images"]
    heatmaps = [trace for trace in units["data"] if trace["type"] == "heatmap"]
    drawn = run.model.weight_images(run.params)  # LeNet-5's 5×5 filters, the dense networks' pixel weights
    assert array(heatmaps[0]["z"]).shape == drawn.images.shape[1:]
    assert drawn.layer == "conv1" or drawn.images.shape[1:] == (side, side)
    if drawn.layer == "output":  # softmax regression: one image per class, titled by the class
        assert len(heatmaps) == len(names)
        assert [a["text"] for a in units["layout"]["annotations"]][:2] == [f"class {n}" for n in names[:2]]
