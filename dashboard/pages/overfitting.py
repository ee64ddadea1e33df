"""Overfitting: one configuration trained on several training-set sizes; training vs validation accuracy."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.errors import DigitLabError
from core.experiments.overfitting import Study, gap_points, study_configs
from core.experiments.presets import PRESETS
from core.parsing import number_list
from core.store.groups import GroupCheckpoints
from core.training.drive import drive
from core.training.loop import Progress, train
from core.training.runs import Run, ended
from dashboard import export, figures, state
from dashboard.widgets import show_error, stop_button

RESULT_KEY = "overfitting.result"  # the last study, this session: Study
SETUPS = {name: PRESETS[name] for name in ("mlp-64-sigmoid-sgd", "mlp-300-tanh-adam", "softmax-minibatch", "best-mlp")}


def _final_train_accuracy(study: Study, run: Run) -> float | None:
    return study.final_train_accuracy(run, state.splits_for(run.spec, run.config.data))


def _study(setup: str, epochs: int, val_size: int, sizes: list[int]) -> None:
    configs = study_configs(SETUPS[setup].configs[0], sizes, epochs=epochs, val_size=val_size)
    all_splits = [state.splits(state.mnist_source(), config.data) for config in configs]  # all checked before training
    sizes = [config.data.train_size for config in configs]
    study = Study(setup, epochs)
    stop_button("the sizes trained so far are kept")
    bar = st.progress(0.0, text="Compiling...")
    chart = st.empty()
    draws = itertools.count()  # each live chart its own key
    checkpoints = GroupCheckpoints(state.writable_history())

    def record(run: Run, progress: Progress) -> None:
        run.record(progress)
        checkpoints(run)  # in the run history as it trains: an app that dies leaves it there, interrupted
        st.session_state[RESULT_KEY] = study  # from the first chunk on, so a Stop keeps what is done

    def show(i: int, size: int, progress: Progress) -> None:
        so_far = [trained for _, trained in study.runs]
        chart.plotly_chart(figures.training_curves(so_far), key=f"live{next(draws)}")
        bar.progress((i + progress.step / progress.total_steps) / len(sizes),
                     text=f"{size:,} images ({i + 1}/{len(sizes)}): epoch {progress.epoch:.1f} of {epochs}")

    with state.saved_if_the_session_ends(lambda: [(run, data) for (_, run), data in zip(study.runs, all_splits)
                                                  if not ended(run)]):
        for i, (size, config, splits) in enumerate(zip(sizes, configs, all_splits)):
            run = Run(name=f"{setup} on {size:,} images", config=config, spec=splits.spec)
            study.runs.append((size, run))
            drive(train(config, splits), record=functools.partial(record, run), show=functools.partial(show, i, size))
            checkpoints.wait()  # (before the ended run is saved over its checkpoints)
            with st.spinner(f"Measuring the {size:,}-image network's accuracy..."):
                run.finish(splits)
                _final_train_accuracy(study, run)
            state.save_to_history(run)


def study_form(key: Callable[[str], str]) -> tuple[str, int, int, str] | None:
    """The study's settings; (setup, epochs, val_size, sizes_text) when "Train all sizes" is pressed, else None."""
    with st.form("overfitting"):
        setup = st.selectbox("Configuration", list(SETUPS), format_func=lambda n: f"{n}: {SETUPS[n].arch}",
                             key=key("setup"), help="The presets' networks and optimisers; see the Reproduction page.")
        st.caption(f"{SETUPS[setup].description} (The study trains for the epochs set below.)")
        left, middle, right = st.columns(3)
        sizes_text = left.text_input("Training-set sizes", key=key("sizes"),
                                     help="Comma-separated numbers of training images (stratified), at most those "
                                          "the validation set leaves.")
        epochs = right.number_input("Epochs", step=1, key=key("epochs"), help="The same for every size. More epochs: "
                                    "more overfitting on the small sets (the report trained 100).")
        val_size = middle.number_input("Validation images", step=500, key=key("val_size"),
                                       help="The same held-out images for every size; at least 1.")
        start = st.form_submit_button("Train all sizes", type="primary", icon=":material/play_arrow:")
    return (setup, int(epochs), int(val_size), sizes_text) if start else None


def start_study(live: DeltaGenerator, setup: str, epochs: int, val_size: int, sizes_text: str) -> None:
    """Train the study in `live`, then rerun to show it; or say there why it cannot train."""
    try:
        with live:
            _study(setup, epochs, val_size, number_list(sizes_text, int, "Training-set sizes"))
        st.rerun()  # the Stop button and the progress bar give way to the results
    except DigitLabError as exc:
        with live:
            show_error(exc)


def study_results(study: Study) -> None:
    """The sizes trained: training vs validation accuracy, their learning curves, a table, and keeping the runs."""
    if settled := state.settle(run for _, run in study.runs):
        for run in settled:
            state.save_to_history(run)
        st.warning("The study was stopped before it finished; the sizes trained so far are shown.")
    done = [(size, run) for size, run in study.runs if run.history]
    if not done:
        return
    sizes, runs = [size for size, _ in done], [run for _, run in done]
    finals = [_final_train_accuracy(study, run) for run in runs]
    st.subheader(f"{study.setup}: {runs[0].model.describe()}, {study.epochs} epochs")
    st.caption("Training accuracy is the final network's on its own training images; validation accuracy on "
               "the same held-out images for every size.")
    export.chart(figures.generalisation_gap(sizes, finals, [run.val_accuracy for run in runs]),
                 run_name=study.setup, what="generalisation gap", key="overfitting.gap")
    export.chart(figures.learning_curves_side_by_side([f"{size:,} images" for size in sizes], runs, finals),
                 run_name=study.setup, what="learning curves", key="overfitting.curves")
    st.dataframe(pd.DataFrame([{
        "training images": size, "status": run.status_text, "final training accuracy": final,
        "validation accuracy": run.val_accuracy, "test accuracy": run.test_accuracy,
        "gap (points)": gap_points(final, run.val_accuracy),
    } for size, run, final in zip(sizes, runs, finals)]), hide_index=True, column_config={
        **{column: st.column_config.NumberColumn(format="percent") for column in
           ("final training accuracy", "validation accuracy", "test accuracy")},
        "gap (points)": st.column_config.NumberColumn(format="%.1f", help="Training minus validation accuracy, "
                                                      "in percentage points")})
    in_session = {run.run_id for run in state.runs().values()}
    if all(run.run_id in in_session for run in runs):
        st.caption("These runs are kept in this session's runs (Results and Weights pages).")
    elif st.button("Keep these runs", help="Adds them to this session's runs (Results and Weights pages)."):
        for run in runs:
            state.keep_copy(run, run.name)
        st.rerun()  # the button gives way to the caption above


def main() -> None:
    st.title("Overfitting")
    st.write("Train the same network on training sets of different sizes. With few images it fits them perfectly "
             "yet does worse on images it has not seen: the gap between training and validation accuracy is "
             "overfitting, and it shrinks as the training set grows. Like the reproduction table, the study is the "
             "course's and trains on MNIST, whatever dataset the Data page chose.")
    key = state.setting_keys({"setup": "mlp-300-tanh-adam", "sizes": "500, 2000, 10000, 50000", "epochs": 20,
                              "val_size": 5000}, "overfitting")
    live = st.container()  # above the form, where a training's Stop, progress and curves are in sight at once
    if (pressed := study_form(key)) is not None:
        start_study(live, *pressed)
    study: Study | None = st.session_state.get(RESULT_KEY)
    if study is not None:
        study_results(study)


main()
