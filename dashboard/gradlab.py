"""What the gradient-lab pages share: choosing a network (a trained run or a fresh one) and a batch of data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import streamlit as st

from core.data.splits import MAX_SEED, Splits, default_split
from core.errors import ConfigError, DigitLabError
from core.lab.backprop import HAND_ACTIVATIONS, check_supported, hand_networks
from core.networks.base import NETWORKS, Model, ModelConfig, Params, seed_key
from core.summaries import random_subset
from dashboard import state
from dashboard.widgets import DATA_HINT, run_label, show_error

TRAINED, FRESH = "A trained run", "A freshly initialised network"


@dataclass(frozen=True)
class LabNetwork:
    name: str
    identity: str  # which parameters these are: a run's id, or the fresh network's shape and seed
    model: Model
    params: Params
    splits: Splits
    trained: bool  # a run of this session, rather than a freshly initialised network


class Batch(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    seed: int  # with len(y), which images these are


def _supported_runs() -> dict:
    runs = {}
    for name, run in state.runs().items():
        try:
            check_supported(run.model)
        except ConfigError:
            continue
        if run.params is not None and not run.diverged:
            runs[name] = run
    return runs


def default_splits() -> Splits:
    """The standard split, with the validation set shrunk to a fifth of the training images on a small dataset."""
    source = state.data_source()
    return state.splits(source, default_split(len(state.dataset(source).train_labels)))


def pick_network(key: str) -> LabNetwork:
    """Widgets choosing a trained softmax regression or one-hidden-layer tanh/sigmoid MLP of this session, or a
    freshly initialised one; if the data cannot be loaded, the page says why and stops."""
    try:
        runs = _supported_runs()
        sources = [TRAINED, FRESH] if runs else [FRESH]
        if not runs:
            st.caption("No trained softmax regression or one-hidden-layer tanh/sigmoid MLP in this session yet, so "
                       "the lab uses a freshly initialised network.")
        source = st.radio("Network", sources, horizontal=True, key=state.kept(f"{key}.source", sources[0],
                                                                               lambda s: s in sources))
        if source == TRAINED:
            name = st.selectbox("Run", list(runs), key=state.kept(f"{key}.run", list(runs)[-1], lambda n: n in runs),
                                format_func=lambda n: run_label(runs[n]))
            run = runs[name]
            return LabNetwork(name, run.run_id, run.model, run.params,
                           state.splits_for(run.spec, run.config.data), True)
        left, middle, right, last = st.columns(4)
        covered = hand_networks()
        arch = left.selectbox("Architecture", covered, key=state.kept(f"{key}.arch", covered[-1], covered.__contains__),
                              format_func=lambda name: NETWORKS[name].title)
        flat = "hidden" not in NETWORKS[arch].hyperparameters  # no hidden layer to size or activate
        hidden = middle.number_input("Hidden width", 1, 1024, key=state.kept(f"{key}.hidden", 30), disabled=flat)
        activation = right.selectbox("Activation", HAND_ACTIVATIONS, key=state.kept(f"{key}.activation", "tanh"),
                                     disabled=flat)
        seed = last.number_input("Seed", 0, MAX_SEED, key=state.kept(f"{key}.seed", 0))
        splits = default_splits()
        model = Model(ModelConfig(arch, (int(hidden),), activation), splits.spec)
        name = f"fresh {model.describe()}"
        return LabNetwork(name, f"{name}, seed {int(seed)}", model, model.init(seed_key(int(seed))), splits, False)
    except DigitLabError as exc:
        show_error(exc, DATA_HINT)
        st.stop()


def pick_batch(network: LabNetwork, key: str, *, default: int = 100, limit: int = 2000) -> Batch:
    """A slider for the batch size and a seed; the batch is drawn from the network's training split."""
    n = len(network.splits.y_train)
    left, right = st.columns(2)
    most = min(limit, n)
    size = left.slider("Batch size (training images)", 1, most,
                       key=state.kept(f"{key}.batch", min(default, n), lambda size: 1 <= size <= most))
    seed = right.number_input("Batch seed", 0, MAX_SEED, key=state.kept(f"{key}.batch_seed", 0))
    index = random_subset(np.arange(n), size, int(seed))
    return Batch(network.splits.x_train[index], network.splits.y_train[index], int(seed))
