"""IDX parsing and validation, the three loaders, locating the data, and splits."""

import zipfile

import numpy as np
import pytest
from scipy.io import savemat

from core.data import download
from core.data.formats import Dataset, load_idx_dir, load_path
from core.data.locate import load_mnist, locate_mnist
from core.data.spec import MNIST_SPEC, DataSpec
from core.data.splits import SplitConfig, check_split, class_counts, make_splits
from core.errors import ConfigError, DataError, DataNotFoundError
from tests.conftest import idx_bytes, synthetic_mnist, write_idx_dir


def test_idx_round_trip_gz_and_raw(tmp_path, tiny_mnist):
    for gz in (True, False):
        loaded = load_path(write_idx_dir(tmp_path / str(gz), tiny_mnist, gz=gz))
        np.testing.assert_array_equal(loaded.train_images, tiny_mnist.train_images)
        np.testing.assert_array_equal(loaded.test_labels, tiny_mnist.test_labels)
        assert not loaded.verified  # synthetic bytes are not the published MNIST
        assert loaded.spec == MNIST_SPEC and make_splits(loaded, SplitConfig(val_size=100)).spec == MNIST_SPEC


@pytest.mark.parametrize("corrupt, message", [
    (lambda b: (1234).to_bytes(4, "big") + b[4:], "bad magic number 1234"),
    (lambda b: b[:-100], "truncated"),
    (lambda b: b[:6], "too short"),
    (lambda b: b[:8] + (27).to_bytes(4, "big") + b[12:], "27x28"),
])
def test_bad_image_files_name_file_and_problem(tmp_path, tiny_mnist, corrupt, message):
    directory = write_idx_dir(tmp_path, tiny_mnist, gz=False)
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match=message) as err:
        load_path(directory)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_label_out_of_range_and_count_mismatch(tmp_path, tiny_mnist):
    directory = write_idx_dir(tmp_path, tiny_mnist, gz=False)
    labels = tiny_mnist.train_labels.copy()
    labels[3] = 10
    (directory / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    with pytest.raises(DataError, match="label 10 is out of range"):
        load_path(directory)
    (directory / "train-labels-idx1-ubyte").write_bytes(idx_bytes(tiny_mnist.train_labels[:-1]))
    with pytest.raises(DataError, match="1200 images but 1199 labels"):
        load_path(directory)


def test_truncated_gzip_is_a_data_error(tmp_path, tiny_mnist):
    directory = write_idx_dir(tmp_path, tiny_mnist)
    path = directory / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_path(directory)


def test_missing_file_is_named(tmp_path, tiny_mnist):
    directory = write_idx_dir(tmp_path, tiny_mnist)
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_idx_dir(directory)


def test_mat_and_npz_loaders(tmp_path, tiny_mnist):
    mat = {}
    for split, images, labels in (("train", tiny_mnist.train_images, tiny_mnist.train_labels),
                                  ("test", tiny_mnist.test_images, tiny_mnist.test_labels)):
        for d in range(10):
            mat[f"{split}{d}"] = images[labels == d].reshape(-1, 784)
    savemat(tmp_path / "mnist_all.mat", mat)
    from_mat = load_path(tmp_path / "mnist_all.mat")
    assert from_mat.train_images.shape == (1200, 28, 28)
    np.testing.assert_array_equal(np.bincount(from_mat.train_labels), np.bincount(tiny_mnist.train_labels))
    # every image of digit 3 is there, in the .mat's order
    np.testing.assert_array_equal(from_mat.train_images[from_mat.train_labels == 3], mat["train3"].reshape(-1, 28, 28))

    np.savez(tmp_path / "mnist.npz", x_train=tiny_mnist.train_images, y_train=tiny_mnist.train_labels,
             x_test=tiny_mnist.test_images, y_test=tiny_mnist.test_labels)
    from_npz = load_path(tmp_path)  # a directory holding mnist.npz
    np.testing.assert_array_equal(from_npz.test_images, tiny_mnist.test_images)


def test_bad_mat_and_npz(tmp_path, tiny_mnist):
    savemat(tmp_path / "mnist_all.mat", {"train0": np.zeros((2, 784), np.uint8)})
    with pytest.raises(DataError, match="key 'train1' is missing"):
        load_path(tmp_path / "mnist_all.mat")
    np.savez(tmp_path / "mnist.npz", x_train=tiny_mnist.train_images)
    with pytest.raises(DataError, match="'y_train' is missing|y_train"):
        load_path(tmp_path / "mnist.npz")
    np.savez(tmp_path / "obj.npz", x_train=np.array([object()]), y_train=np.zeros(1),
             x_test=np.zeros(1), y_test=np.zeros(1))
    with pytest.raises(DataError, match="obj.npz"):
        load_path(tmp_path / "obj.npz")


def test_lookup_order_and_not_found_message(tmp_path, monkeypatch, tiny_data_dir):
    monkeypatch.setenv("DIGIT_LAB_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError, match="MNIST_DATA_DIR") as err:
        load_mnist(allow_download=False)
    assert "empty-cache" in str(err.value)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
    assert str(tiny_data_dir) in load_mnist(allow_download=False).source
    other = write_idx_dir(tmp_path / "explicit", synthetic_mnist(100, 50, seed=1))
    assert str(other) in load_mnist(other).source  # an explicit directory wins over the variable
    with pytest.raises(DataNotFoundError, match="nothing-here does not exist"):
        load_mnist(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="empty holds no MNIST"):
        load_mnist(tmp_path / "empty")
    partial = write_idx_dir(tmp_path / "partial", synthetic_mnist(100, 50, seed=1))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        next(partial.glob(name + "*")).unlink()
    with pytest.raises(DataNotFoundError, match="missing: t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"):
        load_mnist(partial)
    with pytest.raises(DataNotFoundError, match="is a single file; give the folder"):
        load_mnist(next(other.glob("train-images-idx3-ubyte*")))
    assert locate_mnist(f" {other} \n") == other  # a pasted path's stray spaces


def test_download_is_used_when_nothing_local(tmp_path, monkeypatch, tiny_mnist):
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("DIGIT_LAB_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(download, "download_mnist",
                        lambda dest, progress=None: calls.append(dest) or write_idx_dir(dest, tiny_mnist))
    loaded = load_mnist()
    assert calls == [tmp_path / "cache"] and loaded.source == f"IDX files in {tmp_path / 'cache'}"
    assert load_mnist().source.startswith("IDX files")  # second time: from the cache, no download
    assert len(calls) == 1


def test_splits_sizes_stratified_disjoint(tiny_mnist):
    s = make_splits(tiny_mnist, SplitConfig(val_size=200, seed=3))
    assert len(s.y_val) == 200 and len(s.y_train) == 1000 and len(s.y_test) == 300
    assert not set(s.train_index) & set(s.val_index)
    np.testing.assert_array_equal(class_counts(s.y_val, 10), np.full(10, 20))
    assert s.x_train.dtype == np.float32 and s.x_train.shape == (1000, 784)
    assert s.x_train.min() == 0.0 and s.x_train.max() == 1.0
    np.testing.assert_array_equal(s.y_train, tiny_mnist.train_labels[s.train_index])
    again = make_splits(tiny_mnist, SplitConfig(val_size=200, seed=3))
    np.testing.assert_array_equal(again.val_index, s.val_index)
    other = make_splits(tiny_mnist, SplitConfig(val_size=200, seed=4))
    assert not np.array_equal(other.val_index, s.val_index)


def test_subsets(tiny_mnist):
    per_class = make_splits(tiny_mnist, SplitConfig(val_size=100, per_class=30))
    np.testing.assert_array_equal(class_counts(per_class.y_train, 10), np.full(10, 30))
    total = make_splits(tiny_mnist, SplitConfig(val_size=100, train_size=555))
    assert len(total.y_train) == 555
    assert np.ptp(class_counts(total.y_train, 10)) <= 1
    assert not set(total.train_index) & set(total.val_index)


@pytest.mark.parametrize("settings, message", [
    (dict(val_size=5000), "Validation size"),  # more than the tiny training set
    (dict(val_size=100, train_size=10, per_class=1), "not both"),
    (dict(val_size=100, per_class=1000), "per class"),
    (dict(val_size=100, train_size=0), "training-subset size"),
    (dict(val_size=100, train_size=2.5), "training-subset size must be a whole number"),
    (dict(val_size=-1), "validation size"),
    (dict(val_size="100"), "validation size"),
    (dict(per_class=True), "per class must be a whole number"),
    (dict(seed=-1), "split seed"),
    (dict(seed=2**32), "split seed"),
])
def test_bad_split_configs(tiny_mnist, settings, message):
    """Each one is refused with its message, at construction (a model file's config) or against the data."""
    with pytest.raises(ConfigError, match=f"(?i){message}"):
        make_splits(tiny_mnist, SplitConfig(**settings))


def test_real_mnist_loads_verified(real_mnist_dir):
    mnist = load_path(real_mnist_dir)
    assert mnist.verified
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    s = make_splits(mnist)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (55000, 5000, 10000)


@pytest.mark.parametrize("content", [
    b"hello, this is a text file\n",  # numpy would call it pickled data and suggest allow_pickle
    b"PK\x03\x04 a zip header and then garbage",
    b"\x93NUMPY\x01\x00 an .npy header, not an .npz",
])
def test_garbage_npz_is_named_and_never_suggests_unpickling(tmp_path, content):
    (tmp_path / "mnist.npz").write_bytes(content)
    with pytest.raises(DataError, match="is not a valid .npz file") as err:
        load_mnist(tmp_path)
    assert str(tmp_path / "mnist.npz") in str(err.value) and "pickle" not in str(err.value)


def test_npz_of_the_wrong_kind_or_cut_short(tmp_path, tiny_mnist):
    np.save(tmp_path / "array.npy", tiny_mnist.train_images)
    (tmp_path / "mnist.npz").write_bytes((tmp_path / "array.npy").read_bytes())  # a plain .npy under the name
    with pytest.raises(DataError, match="is not a valid .npz file"):
        load_path(tmp_path / "mnist.npz")
    np.savez_compressed(tmp_path / "full.npz", x_train=tiny_mnist.train_images, y_train=tiny_mnist.train_labels,
                        x_test=tiny_mnist.test_images, y_test=tiny_mnist.test_labels)
    (tmp_path / "mnist.npz").write_bytes((tmp_path / "full.npz").read_bytes()[:-200])  # central directory lost
    with pytest.raises(DataError, match="mnist.npz is not a valid .npz file"):
        load_path(tmp_path / "mnist.npz")
    np.savez(tmp_path / "objects.npz", x_train=np.array([None, 1]), y_train=np.zeros(1))
    with pytest.raises(DataError, match="objects.npz is not a valid .npz file: its array 'x_train' is corrupt or holds "
                                        "Python objects, which Digit Lab never unpickles"):
        load_path(tmp_path / "objects.npz")
    with zipfile.ZipFile(tmp_path / "plain-zip.npz", "w") as archive:
        archive.writestr("x_train", b"not an array")
    with pytest.raises(DataError, match="plain-zip.npz is not a valid .npz file: 'x_train' is not a NumPy array"):
        load_path(tmp_path / "plain-zip.npz")
    np.savez(tmp_path / "text.npz", x_train=np.full((2, 28, 28), "a"), y_train=np.zeros(2, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    with pytest.raises(DataError, match=r"text.npz: 'x_train' holds <U1 values, not real numbers"):
        load_path(tmp_path / "text.npz")


@pytest.mark.parametrize("arrays, message", [
    ({"y_train": np.zeros((20, 1), np.uint8)}, r"labels have shape \(20, 1\), expected one label per image"),
    ({"x_train": np.full((20, 28, 28), 0.5)}, "'x_train' holds values that are not whole numbers, such as 0.5"),
    ({"x_train": np.r_[np.zeros((19, 28, 28)), np.full((1, 28, 28), 0.5)]}, "not whole numbers, such as 0.5"),
    ({"y_train": np.r_[np.zeros(19), np.nan]}, "'y_train' holds NaN or infinite values"),
    ({"y_train": np.zeros(20, np.complex64)}, "'y_train' holds complex64 values, not real numbers"),
    ({"x_train": np.full((20, 28, 28), 300.0)}, "'x_train' holds values from 300 to 300"),
    ({"y_train": np.full(20, -1)}, "'y_train' holds values from -1 to -1"),
    ({"y_train": np.full(20, 3.7)}, "'y_train' holds values that are not whole numbers, such as 3.7"),
    ({"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.uint8)}, r"\(test\): holds no images"),
])
def test_npz_values_and_shapes_that_are_not_mnist_are_refused(tmp_path, arrays, message):
    good = {"x_train": np.zeros((20, 28, 28), np.uint8), "y_train": np.zeros(20, np.uint8),
            "x_test": np.zeros((5, 28, 28), np.uint8), "y_test": np.zeros(5, np.uint8)}
    np.savez(tmp_path / "mnist.npz", **{**good, **arrays})
    with pytest.raises(DataError, match=message):
        load_mnist(tmp_path)


def test_an_arrays_file_of_other_images_brings_its_own_description(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 256, (12, 16, 16, 3), np.uint8), rng.integers(0, 256, (4, 16, 16, 3), np.uint8)
    y_train, y_test = np.arange(12, dtype=np.uint8) % 4, np.arange(4, dtype=np.uint8)
    np.savez(tmp_path / "shapes.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             class_names=np.array(["circle", "square", "cross", "bar"]), name=np.array("Shapes"))
    shapes = load_path(tmp_path / "shapes.npz")
    assert shapes.spec == DataSpec("Shapes", 16, 16, 3, ("circle", "square", "cross", "bar"))
    np.testing.assert_array_equal(shapes.train_images, x_train)
    splits = make_splits(shapes, SplitConfig(val_size=4))
    assert splits.spec == shapes.spec and splits.x_train.shape == (8, 16 * 16 * 3)
    np.savez(tmp_path / "unnamed.npz", x_train=x_train[..., 0], y_train=y_train, x_test=x_test[..., 0], y_test=y_test)
    unnamed = load_path(tmp_path / "unnamed.npz")  # the file's name, and the labels as class names
    assert unnamed.spec == DataSpec("unnamed", 16, 16, 1, ("0", "1", "2", "3"))
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((20, 28, 28), np.uint8), y_train=np.arange(20) % 10,
             x_test=np.zeros((5, 28, 28), np.uint8), y_test=np.zeros(5, np.uint8))
    assert load_path(tmp_path / "mnist.npz").spec == MNIST_SPEC  # Keras' layout of 28×28 images: MNIST
    np.savez(tmp_path / "mixed.npz", x_train=x_train, y_train=y_train, x_test=x_test[:, :8], y_test=y_test)
    with pytest.raises(DataError, match="the same size in x_train and x_test"):
        load_path(tmp_path / "mixed.npz")
    np.savez(tmp_path / "few-names.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             class_names=np.array(["circle", "square"]))
    with pytest.raises(DataError, match="label 3 is out of range 0..1"):
        load_path(tmp_path / "few-names.npz")


def test_whole_float_pixels_are_read_as_bytes(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.full((20, 28, 28), 255.0), y_train=np.arange(20) % 10,
             x_test=np.zeros((5, 28, 28)), y_test=np.zeros(5, np.int64))
    mnist = load_mnist(tmp_path)
    assert mnist.train_images.dtype == np.uint8 and mnist.train_images.max() == 255


def test_an_empty_mat_is_refused(tmp_path):
    savemat(tmp_path / "mnist_all.mat", {f"{split}{d}": np.zeros((0, 784), np.uint8)
                                         for split in ("train", "test") for d in range(10)})
    with pytest.raises(DataError, match=r"\(train\): holds no images"):
        load_mnist(tmp_path)


def test_garbage_mat_is_a_clear_data_error(tmp_path):
    (tmp_path / "mnist_all.mat").write_text("hello, this is a text file\n" * 20)
    with pytest.raises(DataError, match="mnist_all.mat is not a valid MATLAB .mat file") as err:
        load_mnist(tmp_path)
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)


def test_a_split_is_checked_from_the_label_counts_as_make_splits_would(tiny_mnist):
    labels = tiny_mnist.train_labels
    for config in (SplitConfig(val_size=100), SplitConfig(val_size=100, per_class=50),
                   SplitConfig(val_size=100, train_size=len(labels) - 100)):
        assert check_split(labels, config, MNIST_SPEC) == len(make_splits(tiny_mnist, config).y_train)
    left = np.bincount(make_splits(tiny_mnist, SplitConfig(val_size=100)).y_train, minlength=10)
    with pytest.raises(ConfigError, match=f"between 1 and {left.min()}"):
        check_split(labels, SplitConfig(val_size=100, per_class=int(left.min()) + 1), MNIST_SPEC)
    with pytest.raises(ConfigError, match=f"between 1 and {len(labels) - 100}"):
        check_split(labels, SplitConfig(val_size=100, train_size=len(labels) - 99), MNIST_SPEC)


def test_a_number_per_class_with_a_digit_missing_says_which():
    labels = np.repeat(np.array([0, 1, 2, 3, 4, 5, 6, 8, 9]), 30)  # no 7
    with pytest.raises(ConfigError, match="no training image is left of digit 7. Train on a total number instead."):
        check_split(labels, SplitConfig(val_size=10, per_class=5), MNIST_SPEC)


def test_splits_of_other_data_follow_its_description():
    letters = DataSpec("letters", 16, 16, 1, tuple("ABCDE"), "letter")
    labels = np.repeat(np.array([0, 1, 3, 4]), 30)  # no C
    with pytest.raises(ConfigError, match="no training image is left of letter C. Train on a total number instead."):
        check_split(labels, SplitConfig(val_size=10, per_class=5), letters)
    np.testing.assert_array_equal(class_counts(labels, letters.num_classes), [30, 30, 0, 30, 30])
    images = np.zeros((len(labels), 16, 16), np.uint8)
    dataset = Dataset(images, labels.astype(np.uint8), images[:5], np.arange(5, dtype=np.uint8), source="letters",
                      spec=letters)
    splits = make_splits(dataset, SplitConfig(val_size=20, train_size=40))
    assert splits.spec == letters and splits.x_train.shape == (40, 256) and splits.x_val.shape == (20, 256)
    np.testing.assert_array_equal(class_counts(splits.y_train, 5), [10, 10, 0, 10, 10])
    assert make_splits(dataset, SplitConfig(val_size=0)).x_val.shape == (0, 256)  # no validation images


def test_validation_and_subset_are_drawn_in_proportion_to_unequal_class_sizes():
    sizes = np.arange(1, 11) * 20  # digit d has 20·(d+1) training images
    labels = np.repeat(np.arange(10), sizes).astype(np.uint8)
    mnist = Dataset(np.zeros((len(labels), 28, 28), np.uint8), labels, np.zeros((10, 28, 28), np.uint8),
                    np.arange(10, dtype=np.uint8), source="unequal")
    splits = make_splits(mnist, SplitConfig(val_size=110, train_size=220))
    np.testing.assert_array_equal(np.bincount(splits.y_val, minlength=10), sizes // 10)  # 10% of each digit
    np.testing.assert_array_equal(np.bincount(splits.y_train, minlength=10), (sizes - sizes // 10) * 220 // 990)
