"""Where a dataset is: a named directory, its environment variable ($MNIST_DATA_DIR for MNIST), the user cache, or
a download into it.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.data import download
from core.data.formats import Dataset, load_path, missing_files
from core.data.registry import REGISTRY, DatasetInfo, DatasetName, Layout
from core.errors import DataNotFoundError

MNIST = REGISTRY[DatasetName.MNIST]
DATA_DIR_ENV = MNIST.env


def _has_data(directory: Path, info: DatasetInfo) -> bool:
    if not directory.is_dir():
        return False
    mnist_file = (directory / "mnist.npz").is_file() or (directory / "mnist_all.mat").is_file()
    return not missing_files(directory, info) or (info is MNIST and mnist_file)


def _expected(info: DatasetInfo) -> str:
    if info.layout is Layout.EMNIST:
        return f"EMNIST's {', '.join(info.downloads)} (or the four files of its {info.spec.name} split, unpacked)"
    files = f"the four IDX files ({', '.join(info.files)}, gzipped or raw)"
    return f"{files}, mnist_all.mat or mnist.npz" if info is MNIST else files


def _what_is_missing(path: Path, info: DatasetInfo) -> str:
    if not path.exists():
        return "does not exist"
    if path.is_file():
        single = "one of the last two files itself" if info is MNIST else "an arrays .npz file"
        return f"is a single file; give the folder holding {_expected(info)}, or {single}"
    missing = missing_files(path, info)
    if len(missing) < len(info.files):
        return f"holds only some of the four IDX files; missing: {', '.join(missing)} (gzipped or raw)"
    return f"holds no {info.title}: expected {_expected(info)}"


def _is_data_file(path: Path, info: DatasetInfo) -> bool:
    suffixes = (".npz", ".mat") if info is MNIST else (".npz", ".zip") if info.layout is Layout.EMNIST else (".npz",)
    return path.suffix in suffixes and path.is_file()


def cache_dir(info: DatasetInfo) -> Path:
    """The dataset's download folder: MNIST's is `download.default_cache_dir()`; every other dataset has a folder of
    its own beside it (inside it when $DIGIT_LAB_CACHE_DIR is set)."""
    if info is MNIST:
        return download.default_cache_dir()
    base = download.default_cache_dir()
    return (base if os.environ.get(download.CACHE_ENV) else base.parent) / info.folder


def locate(
    name: DatasetName | str = DatasetName.MNIST,
    data_dir: Path | str | None = None,
    *,
    allow_download: bool = True,
    progress: download.ProgressCallback | None = None,
) -> Path:
    """Where the dataset is: `data_dir`, then its environment variable, then its cache folder, then a download into
    that folder. An explicit `data_dir` or variable that holds no data is an error (the user asked for it)."""
    info = REGISTRY[DatasetName(name)]
    for label, chosen in (("data directory", data_dir), (info.env, os.environ.get(info.env))):
        if chosen and str(chosen).strip():
            path = Path(str(chosen).strip()).expanduser()  # (a pasted path often brings a space along)
            if not (_is_data_file(path, info) or _has_data(path, info)):
                raise DataNotFoundError(f"The {label} {path} {_what_is_missing(path, info)}.")
            return path
    cache = cache_dir(info)
    if _has_data(cache, info):
        return cache
    looked = (f"No {info.title} found: no data directory was given (the CLI's --data-dir, the app's Data page), "
              f"${info.env} is unset and the cache folder {cache} holds none")
    advice = (f"Give a data directory (or set ${info.env}) holding {_expected(info)}, or connect to the internet once "
              "to download them to the cache.")
    if not allow_download:
        raise DataNotFoundError(f"{looked}. {advice}")
    try:
        if info is MNIST:
            download.download_mnist(cache, progress=progress)
        else:
            download.download_files(cache, info.downloads, info.mirrors, progress=progress)
    except DataNotFoundError as exc:
        raise DataNotFoundError(f"{looked}, and the download failed: {exc} {advice}") from None
    return cache


def load_dataset(
    name: DatasetName | str = DatasetName.MNIST,
    data_dir: Path | str | None = None,
    *,
    allow_download: bool = True,
    progress: download.ProgressCallback | None = None,
) -> Dataset:
    """Find a registered dataset (`locate`) and load it."""
    path = locate(name, data_dir, allow_download=allow_download, progress=progress)
    return load_path(path, REGISTRY[DatasetName(name)])


def locate_mnist(data_dir: Path | str | None = None, *, allow_download: bool = True,
                 progress: download.ProgressCallback | None = None) -> Path:
    """Where MNIST is (`locate`)."""
    return locate(DatasetName.MNIST, data_dir, allow_download=allow_download, progress=progress)


def load_mnist(data_dir: Path | str | None = None, *, allow_download: bool = True,
               progress: download.ProgressCallback | None = None) -> Dataset:
    """Find MNIST and load it."""
    return load_dataset(DatasetName.MNIST, data_dir, allow_download=allow_download, progress=progress)
