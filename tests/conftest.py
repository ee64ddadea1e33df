"""Shared fixtures: a tiny learnable MNIST written as real IDX files, and the real MNIST when present."""

from __future__ import annotations

import glob
import gzip
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import streamlit as st

from core.data.formats import Dataset

REPO = Path(__file__).resolve().parents[1]


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (magic 2049 for labels, 2051 for images)."""
    magic = 2051 if array.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_dir(directory: Path, mnist: Dataset, gz: bool = True) -> Path:
    """Write `mnist` as the four standard IDX files (gzipped unless gz=False)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": mnist.train_images, "train-labels-idx1-ubyte": mnist.train_labels,
        "t10k-images-idx3-ubyte": mnist.test_images, "t10k-labels-idx1-ubyte": mnist.test_labels,
    }
    for name, array in files.items():
        data = idx_bytes(array)
        (directory / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    return directory


def synthetic_mnist(n_train: int = 1200, n_test: int = 300, seed: int = 0) -> Dataset:
    """Learnable fake digits: each class is a fixed random 28×28 template plus noise."""
    rng = np.random.default_rng(seed)
    templates = rng.random((10, 28, 28)) < 0.25

    def draw(n):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        noise = rng.random((n, 28, 28)) < 0.08
        images = np.where(templates[labels] ^ noise, 255, 0).astype(np.uint8)
        return images, labels.astype(np.uint8)

    return Dataset(*draw(n_train), *draw(n_test), source="synthetic")


@pytest.fixture(scope="session")
def tiny_mnist() -> Dataset:
    return synthetic_mnist()


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, tiny_mnist) -> Path:
    """A directory of gzipped IDX files holding the tiny synthetic MNIST."""
    return write_idx_dir(tmp_path_factory.mktemp("tiny_mnist"), tiny_mnist)


@pytest.fixture(autouse=True)
def fresh_app_caches():
    """Each test starts with the app's shared caches empty (`st.cache_resource`, `st.cache_data`): several test files
    share a worker process, and a dataset cached by one under the same key would leak into the next."""
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def data_env(monkeypatch, tiny_data_dir) -> Path:
    """The tiny MNIST as the data the app and the CLI find (through $MNIST_DATA_DIR)."""
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
    return tiny_data_dir


def real_mnist_path() -> Path | None:
    """The full MNIST: $MNIST_DATA_DIR, else ../shared/datasets/mnist beside the checkout; None if absent."""
    for candidate in (os.environ.get("MNIST_DATA_DIR"), REPO.parent / "shared" / "datasets" / "mnist"):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_mnist_dir() -> Path:
    path = real_mnist_path()
    if path is None:
        pytest.skip("the real MNIST is not available (set MNIST_DATA_DIR)")
    return path


@pytest.fixture(autouse=True)
def no_compile_cache(monkeypatch):
    """Tests compile afresh and write no compiled programs to the user's cache (one test turns it on)."""
    monkeypatch.setenv("DIGIT_LAB_COMPILE_CACHE", "off")


@pytest.fixture(autouse=True)
def private_run_history(monkeypatch, tmp_path_factory):
    """Every test saves its runs to a run history of its own, never to the user's (ended runs are saved)."""
    monkeypatch.setenv("DIGIT_LAB_HOME", str(tmp_path_factory.mktemp("digit_lab_home")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl): on PATH, else Debian's."""
    found = shutil.which("initdb")
    candidates = [found] if found else sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).resolve().parent if candidates else None


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of its own in a temporary folder, on a free port (its URL, without a database); stopped
    and removed after the tests."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's initdb and pg_ctl are missing in CI (.ci/run installs the postgresql package)")
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    folder = Path(tempfile.mkdtemp(prefix="digit-lab-pg-"))
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres (else nobody) user
        runuser = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")  # (root's tools)
        if runuser is None:
            pytest.fail("PostgreSQL will not run as root, and runuser (util-linux) is missing to run it as postgres")
        user = "postgres" if _user_exists("postgres") else "nobody"
        shutil.chown(folder, user)
        as_user = [runuser, "-u", user, "--"]
    data, port = folder / "data", free_port()
    subprocess.run([*as_user, bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-l", folder / "log", "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield sa.URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port)
    finally:
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database on the tests' PostgreSQL server, as a SQLAlchemy URL; dropped after the test."""
    name = f"test_{secrets.token_hex(6)}"
    server = sa.create_engine(postgres_server.set(database="postgres"), isolation_level="AUTOCOMMIT",
                              poolclass=sa.pool.NullPool)
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        server.dispose()


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
