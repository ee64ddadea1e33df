"""Download a dataset's files with pooch, verifying each and falling back across mirrors (MNIST's four .gz files
are stated here; the other datasets' in `core.data.registry`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pooch
import requests

from core.errors import DataError, DataNotFoundError

MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


RAW_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


"""SHA-256 of the decompressed files."""


GZ_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}


"""MD5 of the original NAME.gz files, as torchvision lists them."""


MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


ProgressCallback = Callable[[str, int, int], None]


"""Called as (file name, bytes done, bytes total or 0 if unknown)."""


CACHE_ENV = "DIGIT_LAB_CACHE_DIR"


_CHUNK_SIZE = 64 * 1024


pooch.get_logger().setLevel("WARNING")  # its "Downloading data from URL" lines: the progress callback reports instead


def default_cache_dir() -> Path:
    """Where downloaded MNIST files live: $DIGIT_LAB_CACHE_DIR if set, else the OS cache dir."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(pooch.os_cache("digit-lab")) / "mnist"


class _ProgressAdapter:
    """The tqdm-like object pooch's HTTPDownloader drives, forwarded to a ProgressCallback.

    pooch sets ``total`` from Content-Length (0 if absent), calls ``update(chunk_size)`` per chunk
    (even for a shorter last chunk), then ``reset()``, ``update(total)`` and ``close()``; counts are
    clamped to ``total`` so the callback sees non-decreasing values ending at the true size.
    """

    def __init__(self, name: str, callback: ProgressCallback) -> None:
        self.name = name
        self.callback = callback
        self.total = 0
        self.done = 0

    def update(self, n: int) -> None:
        if not n:
            return
        self.done += n
        if self.total:
            self.done = min(self.done, self.total)
        self.callback(self.name, self.done, self.total)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass


def _is_valid(path: Path, known_hash: str) -> bool:
    """Whether the file's digest matches ``known_hash`` ("algo:hex"; bare hex means sha256)."""
    algorithm, _, expected = known_hash.rpartition(":")
    return pooch.file_hash(str(path), alg=algorithm or "sha256") == expected.lower()


def _reason(exc: Exception, timeout: float) -> str:
    """A one-line, traceback-free description of why a mirror failed."""
    if isinstance(exc, ValueError):
        return "checksum mismatch"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}".strip()
    if isinstance(exc, requests.Timeout):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection dropped before the file was complete"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return type(exc).__name__


def _fetch(
    fname: str,
    known_hash: str,
    dest: Path,
    mirrors: Sequence[str],
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    """Put a verified ``dest/fname`` in place, trying each mirror in turn."""
    target = dest / fname
    try:
        if target.exists():
            if _is_valid(target, known_hash):
                return
            target.unlink()
    except OSError as exc:
        raise DataError(f"Cannot replace the bad file {target}: {exc.strerror or exc}") from None
    failures = []
    for base in mirrors:
        url = base + fname
        downloader = pooch.HTTPDownloader(
            progressbar=_ProgressAdapter(fname, progress) if progress else False,
            chunk_size=_CHUNK_SIZE,
            timeout=timeout,
        )
        try:
            # pooch streams into a temp file in ``dest``, checks the hash, then renames it into
            # place; the temp file is deleted on any failure.
            pooch.retrieve(url, known_hash, fname=fname, path=dest, downloader=downloader)
            return
        except (ValueError, requests.RequestException) as exc:
            failures.append(f"{url}: {_reason(exc, timeout)}")
        except OSError as exc:  # after RequestException, which is one: here the folder could not be written
            raise DataError(f"Cannot write {fname} into the download folder {dest}: {exc.strerror or exc}") from None
    raise DataNotFoundError(f"Could not download {fname} from any mirror ({'; '.join(failures)}).")


def download_files(
    dest_dir: Path | str,
    files: Mapping[str, str],
    mirrors: Sequence[str],
    *,
    progress: ProgressCallback | None = None,
    timeout: float = 30,
) -> Path:
    """Download `files` (file name -> "algo:hex") into ``dest_dir`` and return it.

    Files already present with the right checksum are kept; others are fetched from ``mirrors`` (base URLs ending
    in "/") in order and verified. Raises DataNotFoundError if every mirror fails for a file, and DataError if
    ``dest_dir`` cannot be created. No partial or bad file is left behind.
    """
    dest = Path(dest_dir).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create the download folder {dest}: {exc.strerror}") from None
    for fname, known_hash in files.items():
        _fetch(fname, known_hash, dest, mirrors, progress, timeout)
    return dest


def download_mnist(
    dest_dir: Path | str,
    *,
    mirrors: Sequence[str] = MIRRORS,
    hashes: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30,
) -> Path:
    """Download the four MNIST NAME.gz files into ``dest_dir`` (`download_files`), verified against ``hashes``
    (NAME -> "algo:hex", default: the published md5 of each .gz)."""
    if hashes is None:
        hashes = {name: f"md5:{digest}" for name, digest in GZ_MD5.items()}
    return download_files(dest_dir, {f"{name}.gz": hashes[name] for name in MNIST_FILES}, mirrors,
                          progress=progress, timeout=timeout)
