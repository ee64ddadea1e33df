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

from core.data.registry import REGISTRY, DatasetInfo, DatasetName, Layout
from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import DataError, DigitLabError

IDX_UBYTE, IDX_INT32 = 0x08, 0x0C  # the IDX type codes Digit Lab reads: uint8 pixels and labels, int32 (QMNIST)
IDX_DTYPES = {IDX_UBYTE: np.dtype(np.uint8), IDX_INT32: np.dtype(">i4")}

MAX_FILE_BYTES = 1 << 30  # a file a user gives may hold this much once decompressed (EMNIST byclass' images: 547 MB)


KERAS_ARRAYS = ("x_train", "y_train", "x_test", "y_test")  # the arrays of Keras' mnist.npz


MAT_ITEM_BYTES = {"int8": 1, "uint8": 1, "logical": 1, "char": 2, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
                  "single": 4}  # a .mat variable's bytes per element by class (others, double included: 8)


def _too_large(name: str, declared: int) -> str:
    return (f"{name} declares {size_text(declared)} of data, more than the {size_text(MAX_FILE_BYTES)} Digit Lab reads "
            "from one file.")


@dataclass(frozen=True)
class Dataset:
    """The whole dataset as uint8 arrays: images (n, height, width) or (n, height, width, channels), labels (n,),
    and the description of its examples (`spec`)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # human-readable: where the files came from
    verified: bool = False  # every file matched its published checksum
    spec: DataSpec = MNIST_SPEC
    skipped: tuple[str, ...] = ()  # what could not be read, each naming its file and why (the rest was loaded)

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
        if path.stat().st_size > MAX_FILE_BYTES:
            raise error(_too_large(str(path), path.stat().st_size))
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def size_text(n: int) -> str:
    """A byte count for messages: '1,024.0 MB', or '10,000 bytes' below a megabyte."""
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,} bytes"


GUNZIP_STEP = 1 << 24  # bytes inflated at a time: memory grows with the data, never with what a header claims


def gunzip(raw: bytes, name: str, limit: int | None = None) -> bytes:
    """Gzipped bytes decompressed a step at a time, never past `limit` bytes (default MAX_FILE_BYTES): a
    decompression bomb is refused as it inflates, not expanded."""
    limit = MAX_FILE_BYTES if limit is None else limit
    parts, total = [], 0
    try:
        while raw:
            stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = raw
            while not stream.eof:
                part = stream.decompress(pending, GUNZIP_STEP)
                total += len(part)
                if total > limit:
                    allowed = "its header declares" if limit < MAX_FILE_BYTES else "Digit Lab reads from one file"
                    raise DataError(f"{name}: decompresses to more than {size_text(limit)}, more than {allowed}.")
                parts.append(part)
                pending = stream.unconsumed_tail
                if not pending and len(part) < GUNZIP_STEP:
                    break
            if not stream.eof:
                raise DataError(f"{name}: corrupt or truncated gzip data (it ends before its stream does).")
            raw = stream.unused_data  # a further gzip member, if any
    except zlib.error as exc:
        raise DataError(f"{name}: corrupt or truncated gzip data ({exc}).") from None
    return b"".join(parts)


def inflate_idx(raw: bytes, name: str) -> bytes:
    """An IDX file's bytes, inflated when they are gzipped (detected by their magic bytes): never to more than its
    header declares (and MAX_FILE_BYTES), so a small file that would inflate to gigabytes is refused as it
    inflates."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    head = _gunzip_head(raw)
    header = 4 + 4 * (head[3] if len(head) >= 4 else 0)
    dims = [int.from_bytes(head[i:i + 4], "big") for i in range(4, min(header, len(head)) - 3, 4)]
    itemsize = IDX_DTYPES[head[2]].itemsize if len(head) >= 3 and head[2] in IDX_DTYPES else 8
    return gunzip(raw, name, min(header + math.prod(dims) * itemsize, MAX_FILE_BYTES))


def _gunzip_head(raw: bytes, size: int = 4 + 4 * 4) -> bytes:
    """The first bytes of gzipped data (an IDX header: at most four dimensions), b"" when they cannot be read."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, size)
    except zlib.error:
        return b""


def parse_idx(data: bytes, name: str, *, ndim: int, dtype: int = IDX_UBYTE,
              image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Parse IDX bytes of `ndim` dimensions and element type `dtype`, checking magic number, dimensions (images of
    `image_size`) and length (the header's promise is checked against the bytes before anything is allocated)."""
    magic = dtype << 8 | ndim
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: file is too short to hold an IDX header ({len(data)} bytes).")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = {1: "labels", 2: "labels (rows of int32)", 3: "images"}.get(ndim, f"{ndim}-dimensional")
        raise DataError(f"{name}: bad magic number {found} (expected {magic} for an IDX {kind} file).")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if image_size is not None and dims[1:] != image_size:
        raise DataError(f"{name}: images are {dims[1]}x{dims[2]}, expected {image_size[0]}x{image_size[1]}.")
    expected = math.prod(dims) * IDX_DTYPES[dtype].itemsize
    body = len(data) - header
    if body != expected:
        raise DataError(f"{name}: header promises {expected} bytes of data but the file holds {body} (truncated?).")
    return np.frombuffer(data, dtype=IDX_DTYPES[dtype], offset=header).reshape(dims)


def _class_labels(raw: np.ndarray, name: str, info: DatasetInfo) -> np.ndarray:
    """Stored labels as class indices 0..classes-1 (uint8): QMNIST's first column, EMNIST letters' 1..26 shifted."""
    labels = raw[:, 0] if raw.ndim == 2 else raw
    low, high = info.label_offset, info.label_offset + info.spec.num_classes - 1
    outside = labels[(labels < low) | (labels > high)]
    if outside.size:
        raise DataError(f"{name}: label {int(outside[0])} is out of range {low}..{high}.")
    return (labels.astype(np.int64) - info.label_offset).astype(np.uint8)


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


def _md5_matches(data: bytes, known_hash: str | None) -> bool:
    return known_hash is not None and hashlib.md5(data).hexdigest() == known_hash.removeprefix("md5:")


def read_zip_member(archive: zipfile.ZipFile, member: str, name: str, limit: int | None = None) -> bytes:
    """One file of a zip archive, read to at most `limit` bytes (default MAX_FILE_BYTES) whatever the archive
    declares: a bomb is refused."""
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        with archive.open(member) as stream:
            data = stream.read(limit + 1)
    except KeyError:
        raise DataError(f"{name}: holds no {member}.") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise DataError(f"{name}: its {member} is corrupt or cannot be unpacked ({exc}).") from None
    if len(data) > limit:
        raise DataError(f"{name}: its {member} unpacks to more than {size_text(limit)}.")
    return data


class _Files:
    """A registered dataset's four files in a folder (or, for EMNIST, in its zip or unpacked beside it): each file's
    decompressed bytes, and whether each matched its published checksum."""

    def __init__(self, directory: Path, info: DatasetInfo, zip_path: Path | None = None):
        self.directory, self.info, self.verified, self.archive = directory, info, True, None
        zips = [directory / name for name in info.downloads if info.layout is Layout.EMNIST]
        self.zip_path = zip_path or next((path for path in zips if path.is_file()), None)

    def _open_zip(self) -> zipfile.ZipFile:
        if self.archive is None:
            raw = _read_file(self.zip_path)
            self.verified &= _md5_matches(raw, next(iter(self.info.downloads.values())))
            try:
                self.archive = zipfile.ZipFile(io.BytesIO(raw))
            except zipfile.BadZipFile:
                raise DataError(f"{self.zip_path}: not a zip archive (corrupt or truncated download?).") from None
        return self.archive

    def find(self, stem: str) -> Path | None:
        if self.zip_path is not None:
            return self.zip_path
        return _find_idx_file(self.directory, stem) or _find_idx_file(self.directory, Path(stem).name)

    def read(self, stem: str) -> tuple[bytes, str]:
        """The file's decompressed bytes and its name for messages."""
        if self.zip_path is not None:
            name = f"{self.zip_path} ({stem}.gz)"
            return inflate_idx(read_zip_member(self._open_zip(), f"{stem}.gz", str(self.zip_path)), name), name
        path = self.find(stem)
        if path is None:
            raise DataError(f"{self.directory}: missing {stem}(.gz).")
        raw = _read_file(path)
        data = inflate_idx(raw, str(path))
        known = (self.info.raw_sha256 or {}).get(stem)
        self.verified &= (hashlib.sha256(data).hexdigest() == known if known
                          else _md5_matches(raw, self.info.downloads.get(path.name)))
        return data, str(path)


def load_idx_dir(directory: Path, info: DatasetInfo = REGISTRY[DatasetName.MNIST], *,
                 zip_path: Path | None = None) -> Dataset:
    """Load a registered dataset's four IDX files (gzipped or raw; EMNIST's in its zip, or `zip_path`) from
    `directory`."""
    files = _Files(directory, info, zip_path)
    parts = []
    for images_stem, labels_stem in (info.files[:2], info.files[2:]):
        data, name = files.read(images_stem)
        images = parse_idx(data, name, ndim=3, image_size=(info.spec.height, info.spec.width))
        if info.layout is Layout.EMNIST:  # stored column by column
            images = np.ascontiguousarray(images.transpose(0, 2, 1))
        data, name = files.read(labels_stem)
        qmnist = info.layout is Layout.QMNIST
        raw = parse_idx(data, name, ndim=2 if qmnist else 1, dtype=IDX_INT32 if qmnist else IDX_UBYTE)
        if len(images) != len(raw):
            raise DataError(f"{directory} ({Path(images_stem).name}): {len(images)} images but {len(raw)} labels.")
        parts.append((images, _class_labels(raw, name, info)))
    (train_images, train_labels), (test_images, test_labels) = parts
    if info.test_limit is not None:
        test_images, test_labels = test_images[:info.test_limit], test_labels[:info.test_limit]
    return Dataset(train_images, train_labels, test_images, test_labels,
                   source=f"IDX files in {files.zip_path or directory}", verified=files.verified, spec=info.spec)


def missing_files(directory: Path, info: DatasetInfo) -> list[str]:
    """The registered dataset's files missing from `directory` (none: it is there)."""
    if not directory.is_dir():
        return list(info.files)
    files = _Files(directory, info)
    return [stem for stem in info.files if files.find(stem) is None]


def load_mat(path: Path) -> Dataset:
    """Load the course-handout `mnist_all.mat` (keys train0..train9, test0..test9; rows of 28×28 = 784 uint8)."""
    from scipy.io import loadmat, whosmat

    data = _read_file(path)
    try:
        declared = sum(math.prod(shape) * MAT_ITEM_BYTES.get(kind, 8) for _, shape, kind in whosmat(io.BytesIO(data)))
        if declared > MAX_FILE_BYTES:
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


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _check_npz_sizes(buffer: io.BytesIO, name: str, invalid: str, error: type[DigitLabError]) -> None:
    """Every member of an .npz checked from its header before any array is allocated (numpy allocates what a header
    promises before reading it): the entries hold at most MAX_FILE_BYTES once inflated, each is a plain NumPy array,
    and each array's header declares no more data than its entry holds."""
    with zipfile.ZipFile(buffer) as archive:
        entries = archive.infolist()
        for entry in entries:
            key = entry.filename.removesuffix(".npy")
            if not entry.filename.endswith(".npy"):
                raise error(f"{invalid}: '{key}' is not a NumPy array.")
            try:
                with archive.open(entry) as member:  # reads (inflates) only the header
                    reader = _NPY_HEADER_READERS.get(np.lib.format.read_magic(member))
                    if reader is None:
                        raise error(f"{invalid}: its array '{key}' is in a .npy version Digit Lab does not read.")
                    shape, _, dtype = reader(member)
                    header = member.tell()
            except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error):
                dtype = None
            if dtype is None or dtype.hasobject:
                raise error(f"{invalid}: its array '{key}' is corrupt or holds Python objects, which Digit Lab never "
                            "unpickles.")
            size = math.prod(shape) * dtype.itemsize
            if size > entry.file_size - header:
                raise error(f"{invalid}: its array '{key}' declares {size:,} bytes but holds "
                            f"{entry.file_size - header:,}.")
            if size > MAX_FILE_BYTES:
                raise error(f"{name}: its array '{key}' would take {size_text(size)}, more than the "
                            f"{size_text(MAX_FILE_BYTES)} Digit Lab reads.")
        declared = sum(entry.file_size for entry in entries)
        if declared > MAX_FILE_BYTES:
            raise error(_too_large(name, declared))
    buffer.seek(0)


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
        _check_npz_sizes(buffer, name, invalid, error)
        with np.load(buffer, allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = npz[key]
                if not isinstance(arrays[key], np.ndarray):  # a zip member that is not an .npy file
                    raise error(f"{invalid}: '{key}' is not a NumPy array.")
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error):  # numpy's texts would suggest unpickling
        what = "the archive" if key is None else f"its array '{key}'"
        raise error(f"{invalid}: {what} is corrupt or holds Python objects, which Digit Lab never unpickles.") from None
    return arrays


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


def load_path(path: Path | str, info: DatasetInfo = REGISTRY[DatasetName.MNIST]) -> Dataset:
    """Load a registered dataset (MNIST unless `info` says otherwise) from a directory of its IDX files, or from a
    file: an arrays `.npz` in Keras' layout (any dataset), MNIST's `mnist_all.mat`, EMNIST's zip."""
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path)
        if info.layout is Layout.EMNIST:
            return load_idx_dir(path.parent, info, zip_path=path)
        return load_mat(path)
    for name, loader in (("mnist.npz", load_npz), ("mnist_all.mat", load_mat)):
        if info.name is DatasetName.MNIST and (path / name).is_file() and _find_idx_file(path, info.files[0]) is None:
            return loader(path / name)
    return load_idx_dir(path, info)
