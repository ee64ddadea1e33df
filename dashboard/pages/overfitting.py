"""Overfitting: one configuration trained on several training-set sizes; training vs validation accuracy."""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
import streamlit as st

from core.errors import DigitLabError
from core.presets import PRESETS
from core.runs import Run
from core.train import train
from dashboard import figures, state
from dashboard.widgets import show_error

RESULT_KEY = "overfitting.result"  # (sizes, runs) of the last study, this session
SETUPS = {name: PRESETS[name] for name in ("mlp-64-sigmoid-sgd", "mlp-300-tanh-adam", "softmax-minibatch", "best-mlp")}


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.replace(";", ",").split(",") if part.strip()})
    except ValueError:
        raise DigitLabError(f"Subset sizes must be whole numbers separated by commas, not '{text}'.") from None
    if not sizes or sizes[0] < 10:
        raise DigitLabError("Give at least one subset size of 10 images or more.")
    return sizes


def _study(setup: str, epochs: int, val_size: int, sizes: list[int]) -> None:
    base = SETUPS[setup].configs[0]
    runs: list[Run] = []
    st.session_state[RESULT_KEY] = (sizes, runs)  # filled as it trains, so a Stop keeps what is done
    bar = st.progress(0.0, text="Compiling...")
    for i, size in enumerate(sizes):
        config = dataclasses.replace(
            base, data=dataclasses.replace(base.data, val_size=val_size, train_size=size, per_class=None),
            train=dataclasses.replace(base.train, epochs=epochs, batch_size=min(base.train.batch_size, size)))
        splits = state.splits(state.data_dir(), config.data)
        run = Run(name=f"{setup} on {size:,} images", config=config)
        runs.append(run)
        last_draw = 0.0
        for progress in train(config, splits):
            run.record(progress)
            if time.perf_counter() - last_draw > 0.3:
                last_draw = time.perf_counter()
                bar.progress((i + progress.step / progress.total_steps) / len(sizes),
                             text=f"{size:,} images ({i + 1}/{len(sizes)}): epoch {progress.epoch:.1f} of {epochs}")
        run.finish(splits)
    bar.progress(1.0, text="Done.")


st.title("Overfitting")
st.write("Train the same network on training sets of different sizes. With few images it fits them perfectly "
         "yet does worse on images it has not seen: the gap between training and validation accuracy is "
         "overfitting, and it shrinks as the training set grows.")
with st.form("overfitting"):
    setup = st.selectbox("Configuration", list(SETUPS), format_func=lambda n: f"{n}: {SETUPS[n].arch}",
                         help="The presets' networks and optimisers; see the Reproduction page.")
    st.caption(SETUPS[setup].description)
    left, middle, right = st.columns(3)
    sizes_text = left.text_input("Training-set sizes", "500, 2000, 10000, 50000",
                                 help="Comma-separated numbers of training images (stratified), at most 55,000.")
    epochs = right.number_input("Epochs", 1, 200, 20, help="The same for every size. More epochs: more overfitting "
                                "on the small sets (the report trained 100).")
    val_size = middle.number_input("Validation images", 1, 30000, 5000, step=500,
                                   help="The same held-out images for every size.")
    start = st.form_submit_button("Train all sizes", type="primary", icon=":material/play_arrow:")
if start:
    try:
        _study(setup, int(epochs), int(val_size), _sizes(sizes_text))
    except DigitLabError as exc:
        show_error(exc)

if RESULT_KEY in st.session_state:
    sizes, runs = st.session_state[RESULT_KEY]
    done = [(size, run) for size, run in zip(sizes, runs) if run.history]
    if done:
        st.plotly_chart(figures.generalisation_gap([s for s, _ in done], [r for _, r in done]))
        st.plotly_chart(figures.learning_curves_side_by_side([f"{s:,} images" for s, _ in done],
                                                             [r for _, r in done]))
        st.dataframe(pd.DataFrame([{
            "training images": size, "status": run.status,
            "final training accuracy": run.history[-1]["train_accuracy"],
            "validation accuracy": run.val_accuracy, "test accuracy": run.test_accuracy,
            "gap (points)": None if run.val_accuracy is None else 100 * (run.history[-1]["train_accuracy"] - run.val_accuracy),
        } for size, run in done]), hide_index=True)
        if st.button("Keep these runs", help="Adds them to this session's runs (Results, Weights, Runs pages)."):
            for _, run in done:
                run.name = state.unique_name(run.name)
                state.keep_run(run)
            st.success(f"Kept {len(done)} runs.")
