"""core.data.download against a local HTTP server: verification, mirror fallback, cleanup, caching."""

from __future__ import annotations

import gzip
import hashlib
import random
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.data.download import MNIST_FILES, default_cache_dir, download_mnist
from core.errors import DataError, DataNotFoundError

# Big enough to span several of the downloader's 64 KiB chunks.
SIZES = {name: 200_000 if name == MNIST_FILES[0] else 3_000 for name in MNIST_FILES}


def _fake_gz(name: str, size: int, seed: int) -> bytes:
    """Incompressible bytes, gzipped, so the .gz is about ``size`` bytes long."""
    return gzip.compress(random.Random(f"{name}{seed}").randbytes(size), mtime=0)


class _Handler(SimpleHTTPRequestHandler):
    """Serves the root dir, records every request and truncates anything under /trunc/."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if not self.path.startswith("/trunc/"):
            return super().do_GET()
        body = (Path(self.directory) / self.path.removeprefix("/trunc/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A server with mirrors /good/ (right files), /bad/ (wrong bytes), /trunc/good/ (cut short)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    root = tmp_path / "www"
    files = {}
    for name in MNIST_FILES:
        files[name] = _fake_gz(name, SIZES[name], seed=0)
        for mirror, seed in (("good", 0), ("bad", 1)):
            (root / mirror).mkdir(parents=True, exist_ok=True)
            (root / mirror / f"{name}.gz").write_bytes(_fake_gz(name, SIZES[name], seed))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.url = lambda mirror: f"{base}{mirror}/"
    httpd.files = files
    httpd.hashes = {n: "md5:" + hashlib.md5(b).hexdigest() for n, b in files.items()}
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def closed_port_url():
    """A base URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _assert_complete(dest: Path, server) -> None:
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)
    for name, data in server.files.items():
        assert (dest / f"{name}.gz").read_bytes() == data


def test_good_mirror_downloads_and_reports_progress(server, tmp_path):
    calls = []
    dest = tmp_path / "cache" / "mnist"
    result = download_mnist(
        str(dest),
        mirrors=[server.url("good")],
        hashes=server.hashes,
        progress=lambda *args: calls.append(args),
        timeout=5,
    )
    assert result == dest
    _assert_complete(dest, server)

    name = f"{MNIST_FILES[0]}.gz"
    size = len(server.files[MNIST_FILES[0]])
    done = [d for n, d, _ in calls if n == name]
    assert len(done) >= 3
    assert done == sorted(done) and done[0] < size and done[-1] == size
    assert {t for n, _, t in calls if n == name} == {size}
    assert {n for n, _, _ in calls} == {f"{n}.gz" for n in MNIST_FILES}


def test_checksum_mismatch_falls_through_to_next_mirror(server, tmp_path):
    dest = tmp_path / "dest"
    download_mnist(dest, mirrors=[server.url("bad"), server.url("good")], hashes=server.hashes)
    _assert_complete(dest, server)
    assert f"/bad/{MNIST_FILES[0]}.gz" in server.requests
    assert f"/good/{MNIST_FILES[0]}.gz" in server.requests


def test_every_mirror_failing_raises_and_leaves_no_file(server, tmp_path, closed_port_url):
    dest = tmp_path / "dest"
    hashes = dict(server.hashes, **{MNIST_FILES[-1]: "md5:" + "0" * 32})
    mirrors = [server.url("bad"), closed_port_url, server.url("missing"), server.url("good")]
    dest.mkdir()
    (dest / f"{MNIST_FILES[-1]}.gz").write_bytes(b"stale copy")  # bad local copy must go too
    with pytest.raises(DataNotFoundError) as info:
        download_mnist(dest, mirrors=mirrors, hashes=hashes, timeout=5)

    # The three good files arrived; nothing (not even a temp file) for the failing one.
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES[:-1])
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"Could not download {MNIST_FILES[-1]}.gz from any mirror")
    for mirror, reason in zip(mirrors, ("checksum mismatch", "could not connect", "HTTP 404", "checksum mismatch")):
        assert f"{mirror}{MNIST_FILES[-1]}.gz: {reason}" in message


def test_offline_with_no_data_anywhere_is_one_line_naming_where_it_looked(server, tmp_path, monkeypatch, capsys,
                                                                        closed_port_url):
    from core import cli
    from core.data import download
    from core.data.locate import load_mnist

    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("DIGIT_LAB_CACHE_DIR", str(cache))
    monkeypatch.setenv("DIGIT_LAB_COMPILE_CACHE", "off")
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    offline = partial(download.download_mnist, mirrors=[closed_port_url, server.url("missing")], timeout=5)
    monkeypatch.setattr(download, "download_mnist", offline)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist()
    message = str(info.value)
    assert "\n" not in message
    assert "no data directory was given" in message and "$MNIST_DATA_DIR is unset" in message and str(cache) in message
    assert "could not connect" in message and "HTTP 404" in message
    assert "Give a data directory (or set $MNIST_DATA_DIR) holding the four IDX files" in message
    assert all(name in message for name in MNIST_FILES) and "connect to the internet once" in message
    assert list(cache.iterdir()) == []

    assert cli.main(["data"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"  # one line: no downloader chatter, no traceback


def test_truncated_response_leaves_no_partial_file(server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(DataNotFoundError, match="connection dropped"):
        download_mnist(dest, mirrors=[server.url("trunc/good")], hashes=server.hashes)
    assert list(dest.iterdir()) == []

    download_mnist(dest, mirrors=[server.url("trunc/good"), server.url("good")], hashes=server.hashes)
    _assert_complete(dest, server)
    assert f"/trunc/good/{MNIST_FILES[0]}.gz" in server.requests


def test_mirror_down_then_second_mirror_succeeds(server, tmp_path, closed_port_url):
    for i, first in enumerate((closed_port_url, server.url("missing"))):
        dest = tmp_path / f"dest{i}"
        download_mnist(dest, mirrors=[first, server.url("good")], hashes=server.hashes, timeout=5)
        _assert_complete(dest, server)


def test_valid_files_are_not_downloaded_again(server, tmp_path):
    download_mnist(tmp_path / "d", mirrors=[server.url("good")], hashes=server.hashes)
    assert len(server.requests) == len(MNIST_FILES)

    server.requests.clear()
    download_mnist(tmp_path / "d", mirrors=[server.url("good")], hashes=server.hashes)
    assert server.requests == []

    # A corrupt local copy is replaced, and only that file is fetched.
    corrupt = tmp_path / "d" / f"{MNIST_FILES[1]}.gz"
    corrupt.write_bytes(b"garbage")
    download_mnist(tmp_path / "d", mirrors=[server.url("good")], hashes=server.hashes)
    assert server.requests == [f"/good/{MNIST_FILES[1]}.gz"]
    _assert_complete(tmp_path / "d", server)


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGIT_LAB_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("DIGIT_LAB_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == ("digit-lab", "mnist")


def test_a_download_folder_that_cannot_be_written_is_a_data_error(server, tmp_path, monkeypatch):
    """A full disk or a read-only cache folder is the folder's problem, not the mirror's, and no traceback."""
    import pooch

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pooch, "retrieve", no_space)
    with pytest.raises(DataError, match="Cannot write .* into the download folder .*: No space left on device"):
        download_mnist(tmp_path / "dest", mirrors=[server.url("good")], hashes=server.hashes)
