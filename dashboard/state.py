"""Shared app state: the dataset (once per process, read-only) and this session's runs.

Pages read and write runs only through these functions, so a rerun (Stop, a widget change, a page switch)
never loses one: a run is kept in `st.session_state` from its first chunk on.
"""

from __future__ import annotations

import streamlit as st

from core.data import MNIST, SplitConfig, Splits, load_mnist, make_splits
from core.runs import Run

RUNS_KEY = "runs"
DATA_DIR_KEY = "data_dir"


def data_dir() -> str | None:
    """The data directory chosen in this session (None: $MNIST_DATA_DIR, the cache, then a download)."""
    return st.session_state.get(DATA_DIR_KEY) or None


@st.cache_resource(show_spinner="Loading MNIST...")
def dataset(directory: str | None) -> MNIST:
    """MNIST, loaded once per process per directory and shared read-only by every session."""
    return load_mnist(directory)


@st.cache_resource(max_entries=8, show_spinner="Preparing the data split...")
def splits(directory: str | None, config: SplitConfig) -> Splits:
    """The train / validation / test arrays for one split config, shared read-only."""
    return make_splits(dataset(directory), config)


def runs() -> dict[str, Run]:
    """This session's runs by name, oldest first."""
    return st.session_state.setdefault(RUNS_KEY, {})


def unique_name(name: str) -> str:
    """`name`, or `name (2)`, `name (3)`... so no two runs in the session share a name."""
    taken, candidate, i = runs(), name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name} ({i})"
    return candidate


def keep_run(run: Run) -> None:
    """Store (or update) a run in the session under its name."""
    runs()[run.name] = run


def rename_run(old: str, new: str) -> str:
    """Rename a run, keeping its position; returns the name actually used."""
    store = runs()
    new = new.strip() or old
    if new == old:
        return old
    new = unique_name(new)
    items = [(new if k == old else k, v) for k, v in store.items()]
    store.clear()
    store.update(items)
    store[new].name = new
    return new


def remove_run(name: str) -> None:
    runs().pop(name, None)
