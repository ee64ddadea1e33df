"""The user's own data: folders of class subfolders (any size, grey or colour, PNG/JPEG/BMP), the Kaggle CSV, zips
(a hostile one included), and bad input reported by name in one message while the rest still loads."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import images as image_files
from core.data import user_data
from core.data.user_data import Fit, ImageOptions, load_csv, load_image_folder, load_user_data, read_csv_pixels
from core.errors import ConfigError, DataError

CLASSES = ("cat", "dog", "owl")


def shape_image(label: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A dark shape on a light page, one shape per class, at any size: a bar, a block, a ring, a diagonal."""
    h, w = size
    y, x = np.mgrid[:h, :w] / np.array([h, w])[:, None, None]
    shapes = [(abs(x - 0.5) < 0.1), (abs(x - 0.5) < 0.3) & (abs(y - 0.5) < 0.3),
              abs(np.hypot(x - 0.5, y - 0.5) - 0.3) < 0.08, abs(x - y) < 0.1]
    return np.where(shapes[label], 20, 235).astype(np.uint8) + rng.integers(0, 10, (h, w), dtype=np.uint8)


def write_folder(root: Path, per_class: int = 10, classes=CLASSES, seed: int = 0) -> Path:
    """Class folders of PNG, JPEG and BMP files, of several sizes, grey and colour."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            grey = shape_image(label, (40 + i, 30 + 2 * i), rng)
            image = Image.fromarray(grey) if i % 2 else Image.fromarray(np.stack([grey] * 3, axis=-1))
            image.save(root / name / f"{i}.{('png', 'jpg', 'bmp')[i % 3]}")
    return root


def test_a_folder_of_class_subfolders_becomes_a_dataset_split_seeded_and_stratified(tmp_path):
    heard = []
    data = load_image_folder(write_folder(tmp_path / "animals"), progress=lambda *args: heard.append(args))
    assert heard == [(i, 30) for i in range(1, 31)]  # each file read
    assert data.spec.class_names == CLASSES and data.spec.name == "animals" and data.spec.image_shape == (28, 28, 1)
    assert data.train_images.shape == (24, 28, 28) and data.test_images.shape == (6, 28, 28)
    assert np.bincount(data.test_labels).tolist() == [2, 2, 2]  # a fifth of each class
    assert data.skipped == ()
    again = load_image_folder(tmp_path / "animals")
    np.testing.assert_array_equal(again.test_images, data.test_images)  # seeded
    other = load_image_folder(tmp_path / "animals", ImageOptions(seed=1))
    assert not np.array_equal(other.test_images, data.test_images)
    bar = data.train_images[data.train_labels == 0].mean(axis=0)
    assert bar[14, 14] < 100 < bar[14, 2]  # the dark bar stays in the middle of the resized image


def test_size_colour_and_mnist_style_normalisation(tmp_path):
    write_folder(tmp_path / "animals")
    colour = load_image_folder(tmp_path / "animals", ImageOptions(height=16, width=20, colour=True))
    assert colour.spec.image_shape == (16, 20, 3) and colour.train_images.shape[1:] == (16, 20, 3)
    mnist_style = load_image_folder(tmp_path / "animals", ImageOptions(fit=Fit.MNIST))
    ink = mnist_style.train_images.astype(float)
    outside = ink.sum() - ink[:, 3:25, 3:25].sum()
    assert outside < 0.01 * ink.sum()  # fitted into 20×20 of 28×28 (give or take the shift), ink bright on black
    rows = (ink.sum(axis=2) * np.arange(28)).sum(axis=1) / ink.sum(axis=(1, 2))
    assert np.all(np.abs(rows - 14) < 1)  # centre of mass at MNIST's centre
    with pytest.raises(ConfigError, match="MNIST-style normalisation is for grey"):
        ImageOptions(colour=True, fit=Fit.MNIST)


def test_train_and_test_subfolders_are_kept_as_given(tmp_path):
    write_folder(tmp_path / "split" / "train", per_class=6)
    write_folder(tmp_path / "split" / "test", per_class=3, classes=(*CLASSES, "emu"), seed=1)
    data = load_image_folder(tmp_path / "split")
    assert len(data.train_labels) == 18 and len(data.test_labels) == 9
    assert data.skipped == (f"{tmp_path / 'split' / 'test' / 'emu'}: a class the training images do not have",)
    for path in (tmp_path / "split" / "train" / "owl").iterdir():
        path.unlink()
    data = load_image_folder(tmp_path / "split")
    assert data.spec.class_names == CLASSES[:2] and len(data.test_labels) == 6
    assert set(data.skipped) == {f"{tmp_path / 'split' / 'train' / 'owl'}: a class folder with no images",
                                 f"{tmp_path / 'split' / 'test' / 'emu'}: a class the training images do not have",
                                 f"image folder {tmp_path / 'split'}: 3 test images of owl left out (no training "
                                 "image of it could be read)"}


def test_bad_files_are_reported_by_name_and_the_rest_still_loads(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "animals")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("L", (300, 300), 255).save(root / "owl" / "huge.png")
    (root / "yak").mkdir()
    (root / "stray.png").write_bytes((root / "cat" / "0.png").read_bytes())
    monkeypatch.setattr(image_files, "MAX_IMAGE_PIXELS", 250 * 250)
    data = load_image_folder(root)
    assert data.spec.class_names == CLASSES  # the empty class folder dropped
    assert len(data.train_labels) + len(data.test_labels) == 30
    reasons = dict(problem.split(": ", 1) for problem in data.skipped)
    assert reasons[str(root / "cat" / "notes.txt")] == "not a PNG, JPEG or BMP image"
    assert reasons[str(root / "dog" / "broken.png")].startswith("not an image Digit Lab can read")
    assert reasons[str(root / "owl" / "huge.png")].startswith("300×300 pixels is more than the 62,500")
    assert reasons[str(root / "yak")] == "a class folder with no images"
    assert reasons[str(root / "stray.png")] == "not in a class folder"


def test_too_little_to_train_on_is_one_message_naming_every_problem(tmp_path):
    root = write_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(DataError, match=r"at least two class folders .* found only 'cat'") as error:
        load_image_folder(root)
    assert "\n" not in str(error.value)
    (root / "dog").mkdir()
    (root / "dog" / "a.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"images of at least two classes; only cat could be read\. Problems: "
                                        r".*dog/a.png: not an image .*dog: a class folder with no images\."):
        load_image_folder(root)


def write_csv(path: Path, labels, images, labelled: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (["label"] if labelled else []) + [f"pixel{i}" for i in range(images.shape[1])]
    labels = labels if labelled else [None] * len(images)
    rows = [",".join(map(str, ([label] if labelled else []) + list(row))) for label, row in zip(labels, images)]
    path.write_text("\n".join([",".join(header), *rows]) + "\n")
    return path


def test_the_kaggle_csv_with_bad_rows_reported_by_line(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (50, 784))
    labels = np.arange(50) % 10
    path = write_csv(tmp_path / "train.csv", labels, pixels)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(",", ",300,", 1).rsplit(",", 1)[0]  # a pixel of 300 (line 4)
    lines[5] = "x" + lines[5][1:]  # a label that is no number (line 6)
    path.write_text("\n".join(lines) + "\n")
    data = load_csv(path)
    assert data.spec.image_shape == (28, 28, 1) and data.spec.class_names == tuple("0123456789")
    assert len(data.train_labels) + len(data.test_labels) == 48 and np.bincount(data.test_labels).min() >= 1
    assert data.skipped == (f"{path}: line 4: pixels that are not whole numbers 0 to 255",
                            f"{path}: line 6: a label outside the classes (whole numbers 0 to 255)")
    first = np.flatnonzero((data.train_images.reshape(len(data.train_images), -1) == pixels[0]).all(axis=1))
    assert len(first) or (data.test_images.reshape(len(data.test_images), -1) == pixels[0]).all(axis=1).any()

    test = write_csv(tmp_path / "test.csv", labels, pixels[:7], labelled=False)
    images, no_labels, problems = read_csv_pixels(test, labelled=False)
    assert images.shape == (7, 28, 28) and no_labels is None and problems == []
    with pytest.raises(DataError, match="its first column is 'pixel0', not 'label'.*can only be predicted"):
        load_csv(test)


def zip_folder(folder: Path, archive: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(folder.parent).as_posix())
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return archive


def test_a_zip_of_the_folder_or_of_the_csv_loads(tmp_path):
    archive = zip_folder(write_folder(tmp_path / "animals"), tmp_path / "animals.zip")
    data = load_user_data(archive)
    assert data.spec.class_names == CLASSES and data.source == f"zip file {archive}" and data.skipped == ()
    csv = write_csv(tmp_path / "digits" / "train.csv", np.arange(30) % 3, np.full((30, 64), 7))
    data = load_user_data(zip_folder(csv.parent, tmp_path / "digits.zip"))
    assert data.spec.image_shape == (8, 8, 1) and data.spec.num_classes == 3


def test_a_hostile_zip_is_refused_entry_by_entry_and_writes_nothing_outside(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "src" / "animals")
    link = zipfile.ZipInfo("animals/cat/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = zip_folder(folder, tmp_path / "hostile.zip", {
        "../escape.png": b"x", "/etc/absolute.png": b"x", "animals/../../up.png": b"x"})
    with zipfile.ZipFile(archive, "a") as out:
        out.writestr(link, "/etc/passwd")
    monkeypatch.setattr(user_data.tempfile, "tempdir", str(tmp_path / "unpack"))
    (tmp_path / "unpack").mkdir()
    data = load_user_data(archive)
    assert data.spec.class_names == CLASSES and len(data.train_labels) + len(data.test_labels) == 30
    refused = [problem.split(": ")[1] for problem in data.skipped]
    assert sorted(refused) == sorted(["../escape.png", "/etc/absolute.png", "animals/../../up.png",
                                      "animals/cat/link.png"])
    assert all(problem.startswith(f"{archive}: ") and "refused" in problem for problem in data.skipped)
    assert not (tmp_path / "escape.png").exists() and not (tmp_path / "up.png").exists()
    assert list((tmp_path / "unpack").iterdir()) == []  # the unpacked copy is gone


def test_a_zip_that_unpacks_past_its_budget_is_refused(tmp_path, monkeypatch):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("a/0/zeros.png", b"\0" * 3_000_000)
    monkeypatch.setattr(user_data, "MAX_ZIP_BYTES", 1_000_000)
    with pytest.raises(DataError, match="bomb.zip: its a/0/zeros.png unpacks to more than 1,000,000 bytes"):
        load_user_data(archive)


def test_a_zip_of_more_files_than_its_budget_is_refused(tmp_path, monkeypatch):
    archive = zip_folder(write_folder(tmp_path / "animals", per_class=2), tmp_path / "many.zip")
    monkeypatch.setattr(user_data, "MAX_ZIP_ENTRIES", 5)
    with pytest.raises(DataError, match="many.zip: 6 files, more than the 5 Digit Lab unpacks"):
        load_user_data(archive)
