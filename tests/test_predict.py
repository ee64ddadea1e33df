"""Image files of handwritten digits: read, told which way round they are, and classified by `python -m core
predict`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from core.data.formats import load_path
from core.data.images import Ink, as_drawing, read_grey
from core.data.splits import SplitConfig, make_splits
from core.errors import DataError
from core.networks.base import ModelConfig
from core.store.checkpoint import save_model
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train


def page_with(digit: np.ndarray, *, dark_ink: bool, scale: int = 9, size=(400, 330), at=(60, 40)) -> np.ndarray:
    """A digit (uint8, ink bright) drawn `scale`× larger on a page, dark ink on white or light ink on black."""
    big = np.kron(digit, np.ones((scale, scale), np.uint8))
    page = np.zeros(size, np.uint8)
    page[at[0]:at[0] + big.shape[0], at[1]:at[1] + big.shape[1]] = big
    return 255 - page if dark_ink else page


def test_dark_ink_on_paper_and_light_ink_on_black_give_the_same_drawing(tmp_path):
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255
    for dark in (True, False):
        Image.fromarray(page_with(digit, dark_ink=dark)).save(tmp_path / f"{dark}.png")
    paper, ground = (as_drawing(read_grey(tmp_path / f"{dark}.png")) for dark in (True, False))
    np.testing.assert_allclose(paper, ground)
    assert paper.max() == 1.0 and paper[0, 0] == 0.0  # ink bright, the background levelled to black
    told_wrong = as_drawing(read_grey(tmp_path / "True.png"), Ink.LIGHT)  # nothing is lighter than white paper
    assert told_wrong.max() == 0.0


def test_a_grey_background_is_levelled_and_transparency_is_paper(tmp_path):
    grey = np.full((60, 60), 200, np.uint8)
    grey[10:50, 28:32] = 40
    Image.fromarray(grey).save(tmp_path / "grey.png")
    drawing = as_drawing(read_grey(tmp_path / "grey.png"))
    assert drawing[0, 0] == 0.0 and drawing[30, 30] == 1.0
    rgba = np.zeros((60, 60, 4), np.uint8)  # black strokes on a transparent page
    rgba[10:50, 28:32] = (0, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    np.testing.assert_allclose(as_drawing(read_grey(tmp_path / "clear.png")), (drawing > 0).astype(float))


def test_files_that_are_no_image_say_so(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match="text.png: not an image"):
        read_grey(tmp_path / "text.png")
    with pytest.raises(DataError, match="no such file"):
        read_grey(tmp_path / "missing.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(DataError, match="too small"):
        read_grey(tmp_path / "tiny.png")


@pytest.fixture(scope="module")
def mnist_model(real_mnist_dir, tmp_path_factory):
    """A 784-128-10 ReLU MLP trained for two epochs on the real MNIST (about 97% on its test set), saved."""
    config = RunConfig(ModelConfig("mlp", (128,), "relu", "he"), SplitConfig(val_size=0), TrainConfig(epochs=2))
    data = load_path(real_mnist_dir)
    splits = make_splits(data, config.data)
    params = list(train(config, splits))[-1].params
    path = save_model(tmp_path_factory.mktemp("model") / "mlp.npz", params, config, splits.spec)
    return path, data


def test_predict_reads_photos_of_test_digits_as_their_labels(mnist_model, tmp_path, capsys):
    path, data = mnist_model
    files = []
    for i in range(20):
        name = tmp_path / f"digit{i}.png"
        Image.fromarray(page_with(data.test_images[i], dark_ink=i % 2 == 0)).save(name)  # both ways round
        files.append(str(name))
    assert main(["predict", *files, "--model", str(path), "--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in results] == files
    right = sum(r["prediction"] == str(label) for r, label in zip(results, data.test_labels[:20]))
    assert right >= 18  # the network is about 97% right on these digits as MNIST has them
    for r in results:
        assert set(r["probabilities"]) == {str(d) for d in range(10)}
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4
        assert r["probabilities"][r["prediction"]] == max(r["probabilities"].values())


def test_a_bad_file_costs_one_line_and_the_others_are_still_classified(mnist_model, tmp_path, capsys):
    path, data = mnist_model
    Image.fromarray(page_with(data.test_images[0], dark_ink=True)).save(tmp_path / "seven.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    Image.fromarray(np.full((80, 80), 255, np.uint8)).save(tmp_path / "blank.png")
    code = main(["predict", str(tmp_path / "broken.png"), str(tmp_path / "seven.png"), str(tmp_path / "blank.png"),
                 "--model", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.startswith(f"{tmp_path / 'seven.png'}: 7 (") and len(out.splitlines()) == 1
    errors = err.splitlines()
    assert len(errors) == 2 and "broken.png: not an image" in errors[0] and "Nothing is drawn yet" in errors[1]
