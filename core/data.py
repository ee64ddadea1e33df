"""MNIST: reading (IDX, mnist_all.mat, mnist.npz), validating, locating, and splitting.

The loaded dataset is plain uint8 arrays; `make_splits` turns it into float32 train / validation / test
arrays in [0, 1], stratified and seeded.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import jax
import numpy as np

from core import download
from core.errors import ConfigError, DataError, DataNotFoundError, DigitLabError
from core.parsing import whole

IMAGE_SIDE = 28
NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
DATA_DIR_ENV = "MNIST_DATA_DIR"
MAX_SEED = 2**32 - 1  # JAX's keys take 32 bits of a seed (s and s + 2**32 draw the same weights); numpy's need s >= 0
KERAS_ARRAYS = ("x_train", "y_train", "x_test", "y_test")  # the arrays of Keras' mnist.npz


@dataclass(frozen=True)
class MNIST:
    """The whole dataset as uint8 arrays: images (n, 28, 28), labels (n,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # human-readable: where the files came from
    verified: bool = False  # decompressed bytes matched the published SHA-256

    def __post_init__(self):
        for array in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            array.setflags(write=False)


# ---------------------------------------------------------------------------------------------- reading


def _read_file(path: Path, error: type[DigitLabError] = DataError) -> bytes:
    """The file's content; `error` naming the file and the reason when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzipped (detected by its magic bytes)."""
    raw = _read_file(path)
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc}).") from None


def parse_idx(data: bytes, name: str, *, expect_images: bool) -> np.ndarray:
    """Parse IDX bytes into a uint8 array, checking magic number, dimensions and length."""
    magic, ndim = (IDX_IMAGES_MAGIC, 3) if expect_images else (IDX_LABELS_MAGIC, 1)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: file is too short to hold an IDX header ({len(data)} bytes).")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = "images" if expect_images else "labels"
        raise DataError(f"{name}: bad magic number {found} (expected {magic} for an IDX {kind} file).")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if expect_images and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{name}: images are {dims[1]}x{dims[2]}, expected 28x28.")
    expected = int(np.prod(dims))
    body = len(data) - header
    if body != expected:
        raise DataError(f"{name}: header promises {expected} bytes of data but the file holds {body} (truncated?).")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _as_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """The array as uint8; DataError unless it holds whole numbers 0..255 (pixels as bytes, labels as digits)."""
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating) or array.dtype == bool):
        raise DataError(f"{name} holds {array.dtype} values, not real numbers.")
    whole_bytes = "MNIST stores whole numbers 0..255 (pixels as bytes, labels as digits)"
    if array.dtype not in (np.uint8, bool) and array.size:
        if not np.isfinite(array).all():
            raise DataError(f"{name} holds NaN or infinite values; {whole_bytes}.")
        low, high = array.min(), array.max()
        if low < 0 or high > 255:
            raise DataError(f"{name} holds values from {low:g} to {high:g}; {whole_bytes}.")
        fractional = array[np.mod(array, 1) != 0]
        if fractional.size:
            raise DataError(f"{name} holds values that are not whole numbers, such as {fractional.flat[0]:g}; "
                            f"{whole_bytes}.")
    return array.astype(np.uint8)


def _check_pair(images: np.ndarray, labels: np.ndarray, name: str) -> None:
    if labels.ndim != 1:
        raise DataError(f"{name}: labels have shape {labels.shape}, expected one label per image, shape (n,).")
    if len(images) != len(labels):
        raise DataError(f"{name}: {len(images)} images but {len(labels)} labels.")
    if not len(labels):
        raise DataError(f"{name}: holds no images.")
    if labels.max() >= NUM_CLASSES:
        raise DataError(f"{name}: label {int(labels.max())} is out of range 0..9.")


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def load_idx_dir(directory: Path) -> MNIST:
    """Load the four IDX files (gzipped or raw) from `directory`."""
    arrays, verified = {}, True
    for stem in download.MNIST_FILES:
        path = _find_idx_file(directory, stem)
        if path is None:
            raise DataError(f"{directory}: missing {stem}(.gz).")
        data = _read_bytes(path)
        verified &= hashlib.sha256(data).hexdigest() == download.RAW_SHA256[stem]
        arrays[stem] = parse_idx(data, str(path), expect_images="images" in stem)
    train = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    test = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    _check_pair(*train, f"{directory} (train)")
    _check_pair(*test, f"{directory} (t10k)")
    return MNIST(*train, *test, source=f"IDX files in {directory}", verified=verified)


def load_mat(path: Path) -> MNIST:
    """Load the course-handout `mnist_all.mat` (keys train0..train9, test0..test9; rows of 784 uint8)."""
    from scipy.io import loadmat

    data = _read_file(path)
    try:
        mat = loadmat(io.BytesIO(data))
    except Exception as exc:  # scipy raises several unrelated types for a bad file
        raise DataError(f"{path} is not a valid MATLAB .mat file ({exc}).") from None
    parts = {}
    for split in ("train", "test"):
        images, labels = [], []
        for digit in range(NUM_CLASSES):
            key = f"{split}{digit}"
            if key not in mat:
                raise DataError(f"{path}: key '{key}' is missing.")
            rows = np.asarray(mat[key])
            if rows.ndim != 2 or rows.shape[1] != NUM_PIXELS:
                raise DataError(f"{path}: '{key}' has shape {rows.shape}, expected (n, 784).")
            images.append(_as_uint8(rows, f"{path}: '{key}'").reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
            labels.append(np.full(len(rows), digit, np.uint8))
        parts[split] = np.concatenate(images), np.concatenate(labels)
        _check_pair(*parts[split], f"{path} ({split})")
    return MNIST(*parts["train"], *parts["test"], source=f"MATLAB file {path}")


def read_npz(source: Path | str | bytes | BinaryIO, name: str,
             error: type[DigitLabError] = DataError) -> dict[str, np.ndarray]:
    """Every array of an .npz file (a path, its bytes or a binary file), never unpickling; `error`, naming
    the file as `name`, when it is not a valid .npz of plain arrays."""
    if isinstance(source, (str, Path)):
        source = _read_file(Path(source), error)
    buffer = io.BytesIO(source if isinstance(source, bytes) else source.read())
    invalid = f"{name} is not a valid .npz file"
    if not zipfile.is_zipfile(buffer):
        raise error(f"{invalid} (not a zip archive of NumPy arrays).")
    buffer.seek(0)
    arrays, key = {}, None
    try:
        with np.load(buffer, allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = npz[key]
                if not isinstance(arrays[key], np.ndarray):  # a zip member that is not an .npy file
                    raise error(f"{invalid}: '{key}' is not a NumPy array.")
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error):  # numpy's texts would suggest unpickling
        what = "the archive" if key is None else f"its array '{key}'"
        raise error(f"{invalid}: {what} is corrupt or holds Python objects, which Digit Lab never unpickles.") from None
    return arrays


def load_npz(path: Path) -> MNIST:
    """Load the Keras `mnist.npz` (x_train, y_train, x_test, y_test)."""
    arrays = read_npz(path, str(path))
    missing = [key for key in KERAS_ARRAYS if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (a Keras mnist.npz holds {', '.join(KERAS_ARRAYS)}).")
    for key in ("x_train", "x_test"):
        if arrays[key].shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DataError(f"{path}: '{key}' has shape {arrays[key].shape}, expected (n, 28, 28).")
    arrays = {key: _as_uint8(arrays[key], f"{path}: '{key}'") for key in KERAS_ARRAYS}
    _check_pair(arrays["x_train"], arrays["y_train"], f"{path} (train)")
    _check_pair(arrays["x_test"], arrays["y_test"], f"{path} (test)")
    return MNIST(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], source=f"Keras file {path}")


def load_path(path: Path | str) -> MNIST:
    """Load MNIST from a directory of IDX files (or one holding mnist_all.mat / mnist.npz), or from such a file."""
    path = Path(path).expanduser()
    if path.is_file():
        return load_npz(path) if path.suffix == ".npz" else load_mat(path)
    for name, loader in (("mnist.npz", load_npz), ("mnist_all.mat", load_mat)):
        if (path / name).is_file() and _find_idx_file(path, download.MNIST_FILES[0]) is None:
            return loader(path / name)
    return load_idx_dir(path)


# ---------------------------------------------------------------------------------------------- locating


def _has_data(directory: Path) -> bool:
    return directory.is_dir() and (
        all(_find_idx_file(directory, stem) for stem in download.MNIST_FILES)
        or (directory / "mnist.npz").is_file()
        or (directory / "mnist_all.mat").is_file()
    )


def _what_is_missing(path: Path) -> str:
    expected = (f"the four IDX files ({', '.join(download.MNIST_FILES)}, gzipped or raw), mnist_all.mat or "
                "mnist.npz")
    if not path.exists():
        return "does not exist"
    if path.is_file():
        return f"is a single file; give the folder holding {expected}, or one of the last two files itself"
    missing = [stem for stem in download.MNIST_FILES if _find_idx_file(path, stem) is None]
    if len(missing) < len(download.MNIST_FILES):
        return f"holds only some of the four IDX files; missing: {', '.join(missing)} (gzipped or raw)"
    return f"holds no MNIST: expected {expected}"


def locate_mnist(
    data_dir: Path | str | None = None,
    *,
    allow_download: bool = True,
    progress: download.ProgressCallback | None = None,
) -> Path:
    """Where MNIST is: `data_dir`, then $MNIST_DATA_DIR, then the user cache, then a download into the cache.

    An explicit `data_dir` or $MNIST_DATA_DIR that holds no data is an error (the user asked for it).
    """
    for label, chosen in (("data directory", data_dir), (DATA_DIR_ENV, os.environ.get(DATA_DIR_ENV))):
        if chosen and str(chosen).strip():
            path = Path(str(chosen).strip()).expanduser()  # (a pasted path often brings a space along)
            if not (path.suffix in (".npz", ".mat") and path.is_file() or _has_data(path)):
                raise DataNotFoundError(f"The {label} {path} {_what_is_missing(path)}.")
            return path
    cache = download.default_cache_dir()
    if _has_data(cache):
        return cache
    looked = (f"No MNIST found: no data directory was given (the CLI's --data-dir, the app's Data page), "
              f"${DATA_DIR_ENV} is unset and the cache folder {cache} holds none")
    advice = (f"Give a data directory (or set ${DATA_DIR_ENV}) holding the four IDX files "
              f"({', '.join(download.MNIST_FILES)}; gzipped or raw), or connect to the internet once to download "
              f"them to the cache.")
    if not allow_download:
        raise DataNotFoundError(f"{looked}. {advice}")
    try:
        download.download_mnist(cache, progress=progress)
    except DataNotFoundError as exc:
        raise DataNotFoundError(f"{looked}, and the download failed: {exc} {advice}") from None
    return cache


def load_mnist(
    data_dir: Path | str | None = None,
    *,
    allow_download: bool = True,
    progress: download.ProgressCallback | None = None,
) -> MNIST:
    """Find MNIST (`locate_mnist`) and load it."""
    return load_path(locate_mnist(data_dir, allow_download=allow_download, progress=progress))


# ---------------------------------------------------------------------------------------------- splitting


@dataclass(frozen=True)
class SplitConfig:
    """How to carve train / validation out of the 60,000 training images; test is always the full test set."""

    val_size: int = 5000
    train_size: int | None = None  # total training images (stratified); None = all that remain
    per_class: int | None = None  # training images per digit; exclusive with train_size
    seed: int = 0

    def __post_init__(self):
        checks = [
            (whole(self.val_size, 0), "The validation size must be a whole number, 0 or more."),
            (self.train_size is None or whole(self.train_size, 1), "The training-subset size must be a whole number, 1 or more."),
            (self.per_class is None or whole(self.per_class, 1), "Images per class must be a whole number, 1 or more."),
            (self.train_size is None or self.per_class is None,
             "Choose either a training-subset size or a number per class, not both."),
            (whole(self.seed, 0, MAX_SEED), f"The split seed must be a whole number from 0 to {MAX_SEED}."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass(frozen=True)
class Splits:
    """Float32 images flattened to (n, 784) in [0, 1] with int32 labels, plus the indices into MNIST.train."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray

    @functools.cached_property
    def train_on_device(self) -> tuple[jax.Array, jax.Array]:
        """(x_train, y_train) as device arrays, copied once: every run and sweep on these splits shares them
        instead of copying the training set again (~0.25 s for 55,000 images, waited for at the first chunk)."""
        return jax.device_put(self.x_train), jax.device_put(self.y_train)


def _stratified_take(labels: np.ndarray, pool: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Take counts[c] random indices of class c from `pool` (indices into labels)."""
    taken = [rng.permutation(pool[labels[pool] == c])[: counts[c]] for c in range(NUM_CLASSES)]
    return np.sort(np.concatenate(taken))


def _proportional_counts(class_sizes: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to their sizes (largest remainders), summing exactly."""
    exact = class_sizes * total / class_sizes.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: total - counts.sum()]] += 1
    return np.minimum(counts, class_sizes)


def check_split(labels: np.ndarray, config: SplitConfig) -> int:
    """How many training images `config` leaves from training images with these labels, or a ConfigError when it
    cannot be carved out of them (from the counts alone: nothing is drawn or copied)."""
    n = len(labels)
    if not 0 <= config.val_size < n:
        raise ConfigError(f"Validation size must be between 0 and {n - 1}, got {config.val_size}.")
    class_sizes = np.bincount(labels, minlength=NUM_CLASSES)
    left = class_sizes - _proportional_counts(class_sizes, config.val_size)
    if config.per_class is not None and not 1 <= config.per_class <= left.min():
        if left.min() < 1:
            missing = ", ".join(str(d) for d in np.flatnonzero(left < 1))
            raise ConfigError(f"A number per class cannot be drawn: no training image is left of digit {missing}. "
                              "Train on a total number instead.")
        raise ConfigError(f"Images per class must be between 1 and {left.min()}, got {config.per_class}.")
    if config.train_size is not None and not 1 <= config.train_size <= left.sum():
        raise ConfigError(f"Training-subset size must be between 1 and {left.sum()}, got {config.train_size}.")
    if config.per_class is not None:
        return config.per_class * NUM_CLASSES
    return int(left.sum()) if config.train_size is None else config.train_size


def default_split(n_train: int) -> SplitConfig:
    """The standard split of n_train training images, its validation set shrunk to a fifth of them on a small
    dataset (where 5,000 would leave too few, or none, to train on)."""
    return SplitConfig(val_size=min(SplitConfig().val_size, n_train // 5))


def make_splits(mnist: MNIST, config: SplitConfig = SplitConfig()) -> Splits:
    """Seeded, stratified validation hold-out and optional training subset; pixels scaled to [0, 1]."""
    labels = mnist.train_labels
    check_split(labels, config)
    rng = np.random.default_rng(config.seed)
    everything = np.arange(len(labels))
    class_sizes = np.bincount(labels, minlength=NUM_CLASSES)
    val_index = _stratified_take(labels, everything, _proportional_counts(class_sizes, config.val_size), rng)
    remaining = np.setdiff1d(everything, val_index, assume_unique=True)
    if config.per_class is not None:
        train_index = _stratified_take(labels, remaining, np.full(NUM_CLASSES, config.per_class), rng)
    elif config.train_size is not None:
        left = np.bincount(labels[remaining], minlength=NUM_CLASSES)
        train_index = _stratified_take(labels, remaining, _proportional_counts(left, config.train_size), rng)
    else:
        train_index = remaining
    return Splits(
        x_train=to_features(mnist.train_images[train_index]),
        y_train=labels[train_index].astype(np.int32),
        x_val=to_features(mnist.train_images[val_index]),
        y_val=labels[val_index].astype(np.int32),
        x_test=to_features(mnist.test_images),
        y_test=mnist.test_labels.astype(np.int32),
        train_index=train_index,
        val_index=val_index,
    )


def to_features(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) → float32 (n, 784) in [0, 1]."""
    return np.multiply(images.reshape(len(images), NUM_PIXELS), np.float32(1 / 255), dtype=np.float32)


def class_counts(labels: np.ndarray) -> np.ndarray:
    """Number of images of each digit."""
    return np.bincount(labels, minlength=NUM_CLASSES)
