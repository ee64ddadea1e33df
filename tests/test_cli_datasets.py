"""`--dataset`, `--images` and `--csv` on the command line: the data command and training on each kind of data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import cli
from core.data.registry import REGISTRY, DatasetName
from tests.test_datasets import generated, stored, write
from tests.test_user_data import CLASSES, write_csv, write_folder


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_command_names_a_registered_datasets_classes(tmp_path, capsys):
    name = DatasetName.KMNIST
    write(tmp_path, stored(name, generated(name)))
    code, out, _ = run(capsys, "data", "--dataset", "kmnist", "--data-dir", str(tmp_path), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["dataset"] == "KMNIST"
    assert summary["class_names"] == list(REGISTRY[name].spec.class_names)
    assert sum(summary["train_counts"]) == 60 and summary["skipped"] == []
    code, out, _ = run(capsys, "data", "--dataset", "kmnist", "--data-dir", str(tmp_path))
    assert out.splitlines()[1].split() == ["character", "train", "test"] and "wo (を)" in out


def test_train_on_a_folder_of_colour_images_with_lenet5(tmp_path, capsys):
    folder = write_folder(tmp_path / "animals", per_class=30)
    (folder / "cat" / "readme.txt").write_text("hello")
    code, out, err = run(capsys, "train", "--images", str(folder), "--colour", "--image-size", "20", "24",
                         "--arch", "lenet5", "--epochs", "3", "--batch-size", "10", "--lr", "0.003", "--no-history",
                         "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["test_accuracy"] > 0.6  # three easy shapes
    assert f"warning: skipped 1 (the rest is loaded): {folder / 'cat' / 'readme.txt'}: not a PNG" in err
    assert "on 58 images" in err  # 72 for training, a fifth of them (14) held out for validation
    assert "reading images: 90 of 90" in err  # (the progress line, written to a log once at the end)


def test_train_on_a_kaggle_csv_and_bad_data_is_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    templates = rng.integers(0, 256, (3, 64))
    labels = np.arange(150) % 3
    csv = write_csv(tmp_path / "train.csv", labels, np.clip(templates[labels] + rng.integers(-20, 20, (150, 64)), 0,
                                                              255))
    code, out, err = run(capsys, "train", "--csv", str(csv), "--arch", "linear", "--epochs", "10", "--batch-size", "10",
                         "--lr", "0.01", "--no-history", "--save", str(tmp_path / "model.npz"), "--json")
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] > 0.9
    unlabelled = write_csv(tmp_path / "test.csv", None, templates[[2, 0, 1, 1]], labelled=False)
    code, out, err = run(capsys, "predict", "--csv", str(unlabelled), "--model", str(tmp_path / "model.npz"))
    assert code == 0, err
    assert out.splitlines() == ["ImageId,Label", "1,2", "2,0", "3,1", "4,1"]  # Kaggle's submission layout
    code, out, err = run(capsys, "predict", "--csv", str(csv), "--model", str(tmp_path / "model.npz"), "x.png")
    assert code == 2 and "Give image files or --csv FILE (one of the two)" in err
    single = write_folder(tmp_path / "one", classes=CLASSES[:1])
    code, out, err = run(capsys, "data", "--images", str(single))
    assert code == 2 and err.count("\n") == 1 and "needs at least two class folders" in err
    with pytest.raises(SystemExit):
        cli.main(["data", "--images", str(single), "--csv", str(csv)])  # one kind of data at a time
