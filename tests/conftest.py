"""Shared fixtures: a tiny learnable MNIST written as real IDX files, and the real MNIST when present."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
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
