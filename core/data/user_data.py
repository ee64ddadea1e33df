"""The user's own data: a folder of class subfolders (PNG, JPEG or BMP of any size, grey or colour; with `train/`
and `test/` subfolders, or split here, seeded and stratified), a CSV in the Kaggle "Digit Recognizer" layout, or a
zip of either. What cannot be read is reported by name in one message and the rest still loads when enough
remains to train on.
"""

from __future__ import annotations

import enum
import math
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from core.data.formats import Dataset, read_zip_member
from core.data.images import Ink, as_drawing, read_grey, read_pixels
from core.data.preprocess import prepare
from core.data.spec import DataSpec
from core.data.splits import MAX_SEED, proportional_counts, stratified_take
from core.errors import ConfigError, DataError
from core.parsing import whole

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SPLIT_FOLDERS = ("train", "test")
MAX_SIDE = 256  # converted images are at most this many pixels a side
MAX_ZIP_ENTRIES = 200_000
MAX_ZIP_BYTES = 2 << 30  # what a zip may unpack to, all entries together
MAX_LISTED = 8  # problems named in a message; the rest are counted

ReadProgress = Callable[[int, int], None]
"""Called as (image files read, image files in all)."""


class Fit(enum.StrEnum):
    """How an image becomes the chosen size."""

    RESIZE = "resize"  # the whole image scaled to the size
    MNIST = "mnist"  # handwriting as MNIST's: the ink's box fitted into 20×20 of 28×28, centre of mass centred


@dataclass(frozen=True)
class ImageOptions:
    """How the user's images are converted, and how a test set is held out when the data brings none."""

    height: int = 28
    width: int = 28
    colour: bool = False  # three channels (LeNet-5 convolves them; the dense networks see them flattened)
    fit: Fit = Fit.RESIZE
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "fit", Fit(self.fit))
        if not (whole(self.height, 8, MAX_SIDE) and whole(self.width, 8, MAX_SIDE)):
            raise ConfigError(f"Images are converted to 8 to {MAX_SIDE} pixels a side, not {self.height}×{self.width}.")
        if self.colour and self.fit is Fit.MNIST:
            raise ConfigError("MNIST-style normalisation is for grey handwriting: choose grey images, or resizing.")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"The test fraction must be between 0 and 1, got {self.test_fraction}.")
        if not whole(self.seed, 0, MAX_SEED):
            raise ConfigError(f"The split seed must be a whole number from 0 to {MAX_SEED}.")


def problems_text(problems: list[str] | tuple[str, ...]) -> str:
    """Problems in one message: the first MAX_LISTED, then how many more."""
    listed = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    return listed + (f"; and {more} more" if more > 0 else "")


def _fail(what: str, problems: list[str]) -> DataError:
    return DataError(what + (f" Problems: {problems_text(problems)}." if problems else ""))


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name != "__MACOSX"


def _root(folder: Path) -> Path:
    """The folder itself, or the one folder it wraps (a zip of `digits/` unpacks to a folder holding `digits/`)."""
    entries = [entry for entry in folder.iterdir() if _visible(entry)]
    if len(entries) == 1 and entries[0].is_dir() and any(e.is_dir() for e in entries[0].iterdir() if _visible(e)):
        return _root(entries[0])
    return folder


def _convert(path: Path, spec: DataSpec, fit: Fit) -> np.ndarray:
    """One image file as uint8 pixels of the spec's size (a DataError naming the file when it cannot be)."""
    if fit is Fit.MNIST:
        drawing = as_drawing(read_grey(path), Ink.AUTO)
        try:
            prepared = prepare(drawing, spec).image
        except DataError:  # (its message speaks to someone drawing)
            raise DataError(f"{path}: holds no ink (a blank image)") from None
        return np.round(prepared * 255).astype(np.uint8)
    pixels = read_pixels(path, "RGB" if spec.channels == 3 else "L")
    if pixels.shape[:2] != (spec.height, spec.width):
        image = Image.fromarray(pixels).resize((spec.width, spec.height), Image.Resampling.LANCZOS)
        pixels = np.asarray(image)
    return pixels


def _listed(folder: Path, classes: list[str], problems: list[str], outside: str) -> dict[Path, list[Path]]:
    """The image files under each folder/CLASS/ (any depth); what is not one goes to `problems`."""
    listed = {}
    for entry in sorted(folder.iterdir()):
        if not _visible(entry):
            continue
        if not entry.is_dir():
            problems.append(f"{entry}: not in a class folder")
        elif entry.name not in classes:
            problems.append(f"{entry}: {outside}")
        else:
            listed[entry] = []
            for path in sorted(p for p in entry.rglob("*") if p.is_file() and _visible(p)):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    listed[entry].append(path)
                else:
                    problems.append(f"{path}: not a PNG, JPEG or BMP image")
    return listed


def _read(listed: dict[Path, list[Path]], classes: list[str], spec: DataSpec, fit: Fit, problems: list[str],
          count: Callable[[], None]) -> tuple[np.ndarray, np.ndarray]:
    """The listed images converted, with their class indices; what cannot be read goes to `problems`. `count()` is
    called after each file."""
    images, labels = [], []
    for folder, paths in listed.items():
        found = 0
        for path in paths:
            try:
                images.append(_convert(path, spec, fit))
                labels.append(classes.index(folder.name))
                found += 1
            except DataError as exc:
                problems.append(str(exc).rstrip("."))
            count()
        if not found:
            problems.append(f"{folder}: a class folder with no images")
    empty = np.zeros((0, *spec.image_shape[:2], *((3,) if spec.channels == 3 else ())), np.uint8)
    return np.stack(images) if images else empty, np.asarray(labels, np.int64)


def _held_out(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded, stratified test set: `fraction` of each class's images (indices into labels)."""
    sizes = np.bincount(labels)
    return stratified_take(labels, np.arange(len(labels)), proportional_counts(sizes, round(fraction * len(labels))),
                            np.random.default_rng(seed))


def _dataset(images: np.ndarray, labels: np.ndarray, spec: DataSpec, source: str, options: ImageOptions,
             problems: list[str], test: tuple[np.ndarray, np.ndarray] | None = None) -> Dataset:
    """The Dataset, with a test set held out when `test` is None; one DataError (with every problem) when too little
    remains to train on."""
    present = np.unique(labels)
    if len(present) < 2:
        raise _fail(f"{source}: a classifier needs images of at least two classes; "
                    f"{'only ' + spec.class_names[present[0]] if len(present) else 'none'} could be read.", problems)
    if len(present) < spec.num_classes:  # drop the classes left without images, renumbering the rest
        names = spec.class_names
        spec = DataSpec(spec.name, spec.height, spec.width, spec.channels, tuple(names[c] for c in present),
                        spec.class_noun)
        renumber = np.full(max(int(labels.max()), int(test[1].max()) if test else 0) + 1, 255, np.int64)
        renumber[present] = np.arange(len(present))
        labels = renumber[labels]
        if test is not None:
            keep = renumber[test[1]] != 255
            for c in np.unique(test[1][~keep]):
                problems.append(f"{source}: {np.sum(test[1] == c)} test images of {names[c]} left out "
                                "(no training image of it could be read)")
            test = test[0][keep], renumber[test[1][keep]]
    if test is None:
        test_index = _held_out(labels, options.test_fraction, options.seed)
        train = np.setdiff1d(np.arange(len(labels)), test_index, assume_unique=True)
        if not len(test_index) or not len(train):
            raise _fail(f"{source}: {len(labels)} images are too few to hold out a test set.", problems)
        test, images, labels = (images[test_index], labels[test_index]), images[train], labels[train]
    if not len(test[1]):
        raise _fail(f"{source}: no test image could be read.", problems)
    return Dataset(images, labels.astype(np.uint8), test[0], test[1].astype(np.uint8), source=source, spec=spec,
                   skipped=tuple(problems))


def load_image_folder(folder: Path | str, options: ImageOptions = ImageOptions(), *, name: str | None = None,
                      problems: list[str] | None = None, progress: ReadProgress | None = None) -> Dataset:
    """A folder of class subfolders (class names from the folder names), or of `train/` and `test/` holding such
    folders, as a Dataset of the chosen size; named `name` (default: the folder's name). `progress(done, total)`
    hears of each image file read."""
    folder = Path(folder).expanduser()
    problems = [] if problems is None else problems
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder.")
    root = _root(folder)
    parts = {entry.name.lower(): entry for entry in root.iterdir() if entry.is_dir()}
    has_split = all(part in parts for part in SPLIT_FOLDERS)
    train_folder = parts["train"] if has_split else root
    classes = sorted(entry.name for entry in train_folder.iterdir() if entry.is_dir() and _visible(entry))
    source = f"image folder {folder}"
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise _fail(f"{source}: a classifier needs at least two class folders ({'train/' if has_split else ''}"
                    f"CLASS/IMAGE files, one folder per class); found {found}.", problems)
    spec = DataSpec(name or root.name, options.height, options.width, 3 if options.colour else 1, tuple(classes))
    listed = {part: _listed(where, classes, problems, "a class the training images do not have")
              for part, where in (("train", train_folder), ("test", parts.get("test"))) if where is not None}
    total, done = sum(len(paths) for files in listed.values() for paths in files.values()), 0

    def count() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    read = {part: _read(files, classes, spec, options.fit, problems, count) for part, files in listed.items()}
    return _dataset(*read["train"], spec, source, options, problems, read["test"] if has_split else None)


def _csv_lines(rows: np.ndarray) -> str:
    return ", ".join(str(row + 2) for row in rows[:MAX_LISTED]) + (f" and {len(rows) - MAX_LISTED} more"
                                                                  if len(rows) > MAX_LISTED else "")


def read_csv_pixels(path: Path | str, *, labelled: bool) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """A Kaggle-layout CSV (`label,pixel0,…` or, unlabelled, `pixel0,…`): square uint8 images, the labels (None when
    unlabelled), and the rows that could not be read (by line number)."""
    path = Path(path).expanduser()
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({str(exc).strip().splitlines()[0]}).") from None
    columns = list(table.columns)
    has_label = bool(columns) and columns[0].strip().lower() == "label"
    if labelled and not has_label:
        raise DataError(f"{path}: its first column is {columns[0] if columns else 'missing'!r}, not 'label' (the "
                        "Kaggle layout: label,pixel0,pixel1,…); an unlabelled test file can only be predicted.")
    pixels_at = 1 if has_label else 0
    side = math.isqrt(len(columns) - pixels_at)
    if side < 8 or side * side != len(columns) - pixels_at:
        raise DataError(f"{path}: {len(columns) - pixels_at} pixel columns do not make a square image of at least "
                        "8×8 (Kaggle's layout has 784: 28×28).")
    values = table.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad_pixels = ~(np.isfinite(values[:, pixels_at:]) & (values[:, pixels_at:] >= 0) & (values[:, pixels_at:] <= 255)
                   & (np.mod(values[:, pixels_at:], 1) == 0)).all(axis=1)
    labels = values[:, 0] if has_label else None
    bad_labels = np.zeros(len(values), bool) if labels is None else ~(np.isfinite(labels) & (labels >= 0) & (
        labels <= 255) & (np.mod(labels, 1) == 0))
    problems = []
    if bad_pixels.any():
        problems.append(f"{path}: line {_csv_lines(np.flatnonzero(bad_pixels))}: pixels that are not whole numbers "
                        "0 to 255")
    if bad_labels.any():
        problems.append(f"{path}: line {_csv_lines(np.flatnonzero(bad_labels & ~bad_pixels))}: a label outside the "
                        "classes (whole numbers 0 to 255)")
    good = ~(bad_pixels | bad_labels)
    images = values[good, pixels_at:].astype(np.uint8).reshape(-1, side, side)
    return images, None if labels is None else labels[good].astype(np.int64), problems


def load_csv(path: Path | str, options: ImageOptions = ImageOptions(), *, name: str | None = None,
             problems: list[str] | None = None) -> Dataset:
    """A labelled Kaggle "Digit Recognizer" CSV (`label,pixel0…pixel783`) as a Dataset: classes 0 to the largest
    label, a seeded stratified test set held out (the image size is the file's; `options` gives the split)."""
    path = Path(path).expanduser()
    problems = [] if problems is None else problems
    images, labels, bad = read_csv_pixels(path, labelled=True)
    problems += bad
    source = f"CSV file {path}"
    if not len(labels):
        raise _fail(f"{source}: holds no readable rows.", problems)
    side = images.shape[1]
    names = tuple(str(c) for c in range(int(labels.max()) + 1 if len(labels) else 0))
    if len(names) < 2:
        raise _fail(f"{source}: a classifier needs at least two classes; every label is 0.", problems)
    spec = DataSpec(name or path.stem, side, side, 1, names)
    return _dataset(images, labels, spec, source, options, problems)


def _safe_member(member: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's path inside the folder it unpacks to, or None when it would climb out of it or is a link."""
    path = PurePosixPath(member.filename.replace("\\", "/"))
    is_link = stat.S_ISLNK(member.external_attr >> 16)
    if is_link or path.is_absolute() or ".." in path.parts or ":" in member.filename or "\0" in member.filename:
        return None
    return path


def unpack_zip(archive_path: Path, into: Path) -> list[str]:
    """Unpack the zip into the folder `into`, refusing members that climb out of it or are links (each reported),
    within MAX_ZIP_ENTRIES and MAX_ZIP_BYTES whatever the archive declares. Returns the problems."""
    problems = []
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_ENTRIES:
                raise DataError(f"{archive_path}: {len(members):,} files, more than the {MAX_ZIP_ENTRIES:,} Digit Lab "
                                "unpacks.")
            budget = MAX_ZIP_BYTES
            for member in members:
                if member.is_dir():
                    continue
                inside = _safe_member(member)
                if inside is None:
                    problems.append(f"{archive_path}: {member.filename}: refused (a path outside the zip's folder, "
                                    "or a link)")
                    continue
                data = read_zip_member(archive, member.filename, str(archive_path), budget)
                budget -= len(data)
                target = into.joinpath(*inside.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive_path}: not a zip archive Digit Lab can unpack ({exc}).") from None
    return problems


def load_user_data(path: Path | str, options: ImageOptions = ImageOptions(),
                   progress: ReadProgress | None = None) -> Dataset:
    """The user's data at `path`: a folder of images, a Kaggle CSV, or a zip holding either (`progress` as
    `load_image_folder`'s)."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".csv":
        return load_csv(path, options)
    if path.suffix.lower() != ".zip":
        return load_image_folder(path, options, progress=progress)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    with tempfile.TemporaryDirectory(prefix="digit-lab-zip-") as unpacked:
        def as_in_zip(text: str) -> str:  # files named as the zip holds them, not by the folder they went to
            return text.replace(f"{unpacked}/", f"{path}: ").replace(unpacked, str(path))

        problems = unpack_zip(path, Path(unpacked))
        csvs = [p for p in Path(unpacked).rglob("*.csv") if _visible(p)]
        images = [p for p in Path(unpacked).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        try:
            if len(csvs) == 1 and not images:
                dataset = load_csv(csvs[0], options, name=path.stem, problems=problems)
            else:
                dataset = load_image_folder(unpacked, options, name=path.stem, problems=problems, progress=progress)
        except DataError as exc:
            raise DataError(as_in_zip(str(exc))) from None
    return Dataset(dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels,
                   source=f"zip file {path}", spec=dataset.spec,
                   skipped=tuple(as_in_zip(problem) for problem in dataset.skipped))
