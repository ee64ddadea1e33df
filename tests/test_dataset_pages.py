"""The Data page's dataset picker end to end: a registered dataset's description, classes and gallery; the user's
own images uploaded as a zip, trained on and looked at; and a run of other data than the data chosen."""

from __future__ import annotations

import io
import zipfile

import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from core.data.registry import REGISTRY, DatasetName
from dashboard import state
from dashboard.pages.data import OWN_UPLOAD_KEY
from tests.test_datasets import generated, stored, write
from tests.test_user_data import CLASSES, write_folder

TIMEOUT = 180


def app() -> AppTest:
    return AppTest.from_file(str(REPO / "Home.py"), default_timeout=TIMEOUT)


def train(at: AppTest, arch: str) -> None:
    at.switch_page("dashboard/pages/train.py").run()
    at.radio(key="setting.arch").set_value(arch).run()
    at.number_input(key="setting.epochs").set_value(2).run()
    at.number_input(key="setting.batch_size").set_value(10).run()  # (these datasets are small)
    next(button for button in at.button if button.label == "Train").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_a_registered_dataset_is_described_counted_and_trained_on(tmp_path, monkeypatch):
    name = DatasetName.FASHION_MNIST
    monkeypatch.setenv("FASHION_MNIST_DATA_DIR", str(write(tmp_path, stored(name, generated(name)))))
    at = app().run()
    at.selectbox(key=state.DATASET_KEY).set_value(name).run()
    assert not at.exception and not at.error
    info = REGISTRY[name]
    assert info.description in [m.value for m in at.markdown]
    assert f"Cite: {info.citation}" in [c.value for c in at.caption]
    assert at.success[0].value.startswith("Loaded **Fashion-MNIST** from **IDX files in")
    table = at.dataframe[0].value
    assert list(table["class"]) == list(info.spec.class_names) and list(table["test"]) == [3] * 10
    train(at, "mlp")
    run = next(iter(at.session_state["runs"].values()))
    assert run.spec == info.spec  # what the run history records as its dataset
    at.switch_page("dashboard/pages/results.py").run()
    assert not at.exception and not at.error
    assert any("Ankle boot" in chart.proto.spec for chart in at.get("plotly_chart"))  # classes named on every chart
    at.switch_page("dashboard/pages/data.py").run()
    at.selectbox(key=state.DATASET_KEY).set_value(DatasetName.MNIST).run()
    at.switch_page("dashboard/pages/results.py").run()  # a registered dataset's run is found whatever the choice
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Ankle boot" in chart.proto.spec for chart in at.get("plotly_chart"))


def test_own_images_uploaded_as_a_zip_train_lenet5_in_colour_and_other_data_is_said(tmp_path, data_dir_env):
    folder = write_folder(tmp_path / "animals", per_class=20)
    (folder / "owl" / "notes.txt").write_text("not an image")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(tmp_path).as_posix())
    at = app().run()
    at.selectbox(key=state.DATASET_KEY).set_value(state.OWN_DATA).run()
    assert not at.exception and "Upload a zip or CSV" in at.info[0].value
    at.checkbox(key=state.IMAGE_OPTION_KEYS["colour"]).check().run()
    at.file_uploader(key=OWN_UPLOAD_KEY).set_value(("animals.zip", buffer.getvalue(), "application/zip")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "from **zip file" in at.success[0].value
    assert at.warning[0].value.startswith("**Skipped 1** (everything else is loaded):")
    assert "animals/owl/notes.txt: not a PNG, JPEG or BMP image" in at.warning[0].value
    assert list(at.dataframe[0].value["class"]) == list(CLASSES)
    assert "28 × 28 × 3" in [metric.value for metric in at.metric]
    train(at, "lenet5")
    run = next(iter(at.session_state["runs"].values()))
    assert run.spec.channels == 3 and run.spec.class_names == CLASSES
    for page in ("results", "weights"):  # colour images and three-channel filters drawn, classes named
        at.switch_page(f"dashboard/pages/{page}.py").run()
        assert not at.exception and not at.error, (page, at.exception, [e.value for e in at.error])
        assert any("owl" in chart.proto.spec for chart in at.get("plotly_chart")) or page == "weights"

    at.switch_page("dashboard/pages/data.py").run()
    at.selectbox(key=state.DATASET_KEY).set_value(DatasetName.MNIST).run()
    at.switch_page("dashboard/pages/results.py").run()
    assert not at.exception
    assert any("This run was trained on animals (28×28×3 images, 3 classes), but the data chosen on the Data page is "
               "MNIST" in error.value for error in at.error)


@pytest.fixture
def data_dir_env(monkeypatch, tiny_data_dir):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
