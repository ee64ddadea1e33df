"""Where MNIST is: a named directory, `$MNIST_DATA_DIR`, the user cache, or a download into it.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.data import download
from core.data.formats import Dataset, _find_idx_file, load_path
from core.errors import DataNotFoundError

DATA_DIR_ENV = "MNIST_DATA_DIR"


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
            if not ((path.suffix in (".npz", ".mat") and path.is_file()) or _has_data(path)):
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
) -> Dataset:
    """Find MNIST (`locate_mnist`) and load it."""
    return load_path(locate_mnist(data_dir, allow_download=allow_download, progress=progress))
