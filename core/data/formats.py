"""Reading a dataset's files: IDX (gzipped or not), the course handout's `mnist_all.mat`, Keras' `mnist.npz`;
every file validated and reported by name when it is not what it claims.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core.data import download
from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import DataError, DigitLabError

IDX_IMAGES_MAGIC = 2051


IDX_LABELS_MAGIC = 2049


KERAS_ARRAYS = ("x_train", "y_train", "x_test", "y_test")  # the arrays of Keras' mnist.npz


MAX_DATA_BYTES = 2**30  # what one file a user gives may hold once decompressed: MNIST's largest holds 47 MB


MAT_ITEM_BYTES = {"int8": 1, "uint8": 1, "logical": 1, "char": 2, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
                  "single": 4}  # a .mat variable's bytes per element by class (others, double included: 8)


def _too_large(name: str, declared: int) -> str:
    return (f"{name} declares {declared / 1e6:,.0f} MB of data, more than the {MAX_DATA_BYTES / 1e6:,.0f} MB Digit Lab "
            "reads from one file.")


@dataclass(frozen=True)
class Dataset:
    """The whole dataset as uint8 arrays: images (n, height, width) or (n, height, width, channels), labels (n,),
    and the description of its examples (`spec`)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # human-readable: where the files came from
    verified: bool = False  # decompressed bytes matched the published SHA-256
    spec: DataSpec = MNIST_SPEC

    def __post_init__(self):
        shapes = {self.spec.image_shape} | ({self.spec.image_shape[:2]} if self.spec.channels == 1 else set())
        for images, labels, part in ((self.train_images, self.train_labels, "training"),
                                     (self.test_images, self.test_labels, "test")):
            if images.shape[1:] not in shapes:
                raise DataError(f"{self.source}: {part} images have shape {images.shape[1:]}, expected "
                                f"{self.spec.height}×{self.spec.width}×{self.spec.channels} for {self.spec.name}.")
            _check_pair(images, labels, f"{self.source} ({part})", self.spec.num_classes)
        for array in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            array.setflags(write=False)


def _read_file(path: Path, error: type[DigitLabError] = DataError) -> bytes:
    """The file's content; `error` naming the file and the reason when it cannot be read or is too large."""
    try:
        if path.stat().st_size > MAX_DATA_BYTES:
            raise error(_too_large(str(path), path.stat().st_size))
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def _read_bytes(path: Path) -> bytes:
    """The IDX file's content, inflated when it is gzipped (detected by its magic bytes): never to more than its
    header declares (and MAX_DATA_BYTES), so a small file that would inflate to gigabytes is refused as it inflates."""
    raw = _read_file(path)
    if raw[:2] != b"\x1f\x8b":
        return raw
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        head = inflate.decompress(raw, 4)
        header = 4 + 4 * (head[3] if len(head) == 4 else 0)
        head += inflate.decompress(inflate.unconsumed_tail, header - len(head))
        dims = [int.from_bytes(head[i:i + 4], "big") for i in range(4, len(head) - 3, 4)]
        expected = min(header + math.prod(dims), MAX_DATA_BYTES)
        data = head + inflate.decompress(inflate.unconsumed_tail, expected - len(head))
        beyond = b"" if inflate.eof else inflate.decompress(inflate.unconsumed_tail, 1)
    except zlib.error as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc}).") from None
    if beyond:
        raise DataError(f"{path}: holds more data than its header declares (or than the "
                        f"{MAX_DATA_BYTES / 1e6:,.0f} MB Digit Lab reads from one file).")
    if not inflate.eof:
        raise DataError(f"{path}: corrupt or truncated gzip data (its compressed stream ends early).")
    return data


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
    if expect_images and dims[1:] != (MNIST_SPEC.height, MNIST_SPEC.width):
        raise DataError(f"{name}: images are {dims[1]}x{dims[2]}, expected {MNIST_SPEC.height}x{MNIST_SPEC.width}.")
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


def _check_pair(images: np.ndarray, labels: np.ndarray, name: str, num_classes: int = MNIST_SPEC.num_classes) -> None:
    if labels.ndim != 1:
        raise DataError(f"{name}: labels have shape {labels.shape}, expected one label per image, shape (n,).")
    if len(images) != len(labels):
        raise DataError(f"{name}: {len(images)} images but {len(labels)} labels.")
    if not len(labels):
        raise DataError(f"{name}: holds no images.")
    if labels.max() >= num_classes:
        raise DataError(f"{name}: label {int(labels.max())} is out of range 0..{num_classes - 1}.")


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def load_idx_dir(directory: Path) -> Dataset:
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
    return Dataset(*train, *test, source=f"IDX files in {directory}", verified=verified)


def load_mat(path: Path) -> Dataset:
    """Load the course-handout `mnist_all.mat` (keys train0..train9, test0..test9; rows of 28×28 = 784 uint8)."""
    from scipy.io import loadmat, whosmat

    data = _read_file(path)
    try:
        declared = sum(math.prod(shape) * MAT_ITEM_BYTES.get(kind, 8) for _, shape, kind in whosmat(io.BytesIO(data)))
        if declared > MAX_DATA_BYTES:
            raise DataError(_too_large(str(path), declared))
        mat = loadmat(io.BytesIO(data))
    except DataError:
        raise
    except Exception as exc:  # scipy raises several unrelated types for a bad file
        raise DataError(f"{path} is not a valid MATLAB .mat file ({exc}).") from None
    parts = {}
    for split in ("train", "test"):
        images, labels = [], []
        for digit in range(MNIST_SPEC.num_classes):
            key = f"{split}{digit}"
            if key not in mat:
                raise DataError(f"{path}: key '{key}' is missing.")
            rows = np.asarray(mat[key])
            if rows.ndim != 2 or rows.shape[1] != MNIST_SPEC.num_pixels:
                raise DataError(f"{path}: '{key}' has shape {rows.shape}, expected (n, {MNIST_SPEC.num_pixels}).")
            images.append(_as_uint8(rows, f"{path}: '{key}'").reshape(-1, MNIST_SPEC.height, MNIST_SPEC.width))
            labels.append(np.full(len(rows), digit, np.uint8))
        parts[split] = np.concatenate(images), np.concatenate(labels)
        _check_pair(*parts[split], f"{path} ({split})")
    return Dataset(*parts["train"], *parts["test"], source=f"MATLAB file {path}")


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
        _check_npz_sizes(buffer, name, error)
        with np.load(buffer, allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = npz[key]
                if not isinstance(arrays[key], np.ndarray):  # a zip member that is not an .npy file
                    raise error(f"{invalid}: '{key}' is not a NumPy array.")
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error):  # numpy's texts would suggest unpickling
        what = "the archive" if key is None else f"its array '{key}'"
        raise error(f"{invalid}: {what} is corrupt or holds Python objects, which Digit Lab never unpickles.") from None
    return arrays


def _check_npz_sizes(buffer: io.BytesIO, name: str, error: type[DigitLabError]) -> None:
    """Before any array is allocated: the archive's entries hold at most MAX_DATA_BYTES once inflated, and each
    array's header declares no more data than its entry holds (numpy would allocate what the header says)."""
    with zipfile.ZipFile(buffer) as archive:
        entries = archive.infolist()
        declared = sum(entry.file_size for entry in entries)
        if declared > MAX_DATA_BYTES:
            raise error(_too_large(name, declared))
        for entry in entries:
            if not entry.filename.endswith(".npy"):
                continue
            invalid = f"{name} is not a valid .npz file: its array '{entry.filename[:-4]}'"
            try:
                with archive.open(entry) as member:  # reads (inflates) only the header
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(member)]
                    shape, _, dtype = read_header(member)
                    header = member.tell()
            except (KeyError, ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error):
                dtype = None
            if dtype is None or dtype.hasobject:
                raise error(f"{invalid} is corrupt or holds Python objects, which Digit Lab never unpickles.")
            if math.prod(shape) * dtype.itemsize > entry.file_size - header:
                raise error(f"{invalid} declares {math.prod(shape) * dtype.itemsize:,} bytes but holds "
                            f"{entry.file_size - header:,}.")
    buffer.seek(0)


def load_npz(path: Path) -> Dataset:
    """Load a dataset of arrays x_train, y_train, x_test, y_test: Keras' `mnist.npz`, or any other image dataset in
    that layout, images (n, height, width) or (n, height, width, channels), with an optional `class_names` array
    (one name per label) and `name` (the dataset's). Without either, 28×28 images are MNIST."""
    arrays = read_npz(path, str(path))
    missing = [key for key in KERAS_ARRAYS if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (a Keras mnist.npz holds {', '.join(KERAS_ARRAYS)}).")
    shape = arrays["x_train"].shape[1:]
    for key in ("x_train", "x_test"):
        if arrays[key].ndim not in (3, 4) or arrays[key].shape[1:] != shape:
            raise DataError(f"{path}: '{key}' has shape {arrays[key].shape}; expected images (n, height, width) or "
                            f"(n, height, width, channels), the same size in x_train and x_test.")
    names, title = arrays.get("class_names"), arrays.get("name")
    images = {key: _as_uint8(arrays[key], f"{path}: '{key}'") for key in KERAS_ARRAYS}
    if names is None and title is None and shape == (MNIST_SPEC.height, MNIST_SPEC.width):
        spec, source = MNIST_SPEC, f"Keras file {path}"
    else:
        labels = max(int(images["y_train"].max(initial=0)), int(images["y_test"].max(initial=0))) + 1
        names = [str(c) for c in range(labels)] if names is None else [str(n) for n in np.ravel(names)]
        spec = DataSpec(path.stem if title is None else str(title), shape[0], shape[1],
                        shape[2] if len(shape) == 3 else 1, tuple(names))
        source = f"arrays file {path}"
    return Dataset(images["x_train"], images["y_train"], images["x_test"], images["y_test"], source=source, spec=spec)


def load_path(path: Path | str) -> Dataset:
    """Load MNIST from a directory of IDX files (or one holding mnist_all.mat / mnist.npz), or from such a file."""
    path = Path(path).expanduser()
    if path.is_file():
        return load_npz(path) if path.suffix == ".npz" else load_mat(path)
    for name, loader in (("mnist.npz", load_npz), ("mnist_all.mat", load_mat)):
        if (path / name).is_file() and _find_idx_file(path, download.MNIST_FILES[0]) is None:
            return loader(path / name)
    return load_idx_dir(path)
