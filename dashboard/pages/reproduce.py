"""Reproduction: the course reports' setups as presets, reported vs measured test accuracy."""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.data.splits import SplitConfig, Splits
from core.errors import DigitLabError
from core.experiments.presets import PRESETS
from core.experiments.reproduce import (
    format_accuracy,
    on_subset,
    table_row,
    train_preset,
)
from core.store.groups import GroupCheckpoints
from core.training.drive import drive
from core.training.runs import Run, ended
from core.training.status import RunStatus
from dashboard import export, figures, state
from dashboard.widgets import (
    MISSING,
    format_epochs,
    format_or_dash,
    show_error,
    stop_button,
)

RESULTS_KEY = "reproduce.results"  # preset name -> PresetResult, this session


@dataclass
class PresetResult:
    """A preset's runs as they train (the same Run objects as in the session's runs) and how long it took."""

    preset: str
    runs: list[Run]
    seconds: float
    train_size: int | None  # the quick-check subset, or None: the preset's own data

    def row(self) -> dict:
        """The table row, with a `caveat` when it is not the preset as the report trained it."""
        caveats = ([f"a quick check on at most {self.train_size:,} images"] if self.train_size else []) + [
            f"{run.status_text} after {format_epochs(run.epochs_completed)} of {run.config.train.epochs} epochs"
            for run in self.runs if run.status is not RunStatus.FINISHED]
        return {**table_row(PRESETS[self.preset], self.runs, self.seconds), "caveat": "; ".join(caveats)}


def _table(results: dict[str, PresetResult]) -> pd.DataFrame:
    def cell(name, measured, not_run):
        return measured(results[name]) if name in results and results[name].runs else not_run
    return pd.DataFrame([{  # what the comparison needs first, so it shows on a laptop screen without scrolling
        "preset": p.name,
        "reported": "(our own preset)" if p.ours else p.reported_text or format_accuracy(p.reported),
        "ours (test)": cell(p.name, lambda r: " / ".join(format_accuracy(run.test_accuracy) for run in r.runs),
                            "not run"),
        "training images": cell(p.name, lambda r: "as reported" if r.train_size is None
                                else f"≤ {r.train_size:,} (quick)", MISSING),
        "status": cell(p.name, lambda r: r.runs[-1].status_text, MISSING),
        "epochs": cell(p.name, lambda r: format_epochs(r.row()["epochs"]),
                       format_epochs(max(c.train.epochs for c in p.configs))),
        "wall time (s)": format_or_dash(results[p.name].seconds if p.name in results else None, ".0f"),
        "architecture": p.arch,
    } for p in PRESETS.values()])


def _run(names: list[str], train_size: int | None) -> None:
    results = st.session_state.setdefault(RESULTS_KEY, {})
    stop_button("the runs trained so far are kept, evaluated and listed on the Results page")
    bar = st.progress(0.0, text="Compiling...")
    chart = st.empty()
    draws = itertools.count()  # each live chart its own key
    checkpoints = GroupCheckpoints(state.writable_history())
    training: list[Run] = []  # the runs of the preset in training
    data: dict[SplitConfig, Splits] = {}  # each run's, to evaluate it if the session ends while it trains

    def splits_for(config: SplitConfig) -> Splits:
        data[config] = state.splits(state.mnist_source(), config)
        return data[config]

    def record(name: str, started: float, runs: list[Run]) -> None:
        training[:] = runs
        if ended(runs[-1]):
            checkpoints.wait()  # (before the ended run is saved over its checkpoints)
        else:
            checkpoints(runs[-1])  # in the run history as it trains: an app that dies leaves it there, interrupted
        # from the first chunk on: a Stop keeps the runs so far (state.settle_interrupted_runs)
        as_reported = all(on_subset(config, train_size) == config for config in PRESETS[name].configs)
        results[name] = PresetResult(name, runs, time.perf_counter() - started, None if as_reported else train_size)
        for run in runs:
            if run.name not in state.runs() or state.runs()[run.name] is not run:
                run.name = state.unique_name(run.name)
            state.keep_run(run)

    def show(done: int, name: str, runs: list[Run]) -> None:
        chart.plotly_chart(figures.training_curves(runs), key=f"live{next(draws)}")
        last = runs[-1].history[-1]
        within = (len(runs) - 1 + min(1.0, last["epoch"] / runs[-1].config.train.epochs)) / len(PRESETS[name].configs)
        bar.progress(min(1.0, (done + within) / len(names)),
                     text=f"{name} ({done + 1}/{len(names)}): {runs[-1].name}, epoch "
                          f"{last['epoch']:.1f} of {runs[-1].config.train.epochs}")

    with state.saved_if_the_session_ends(lambda: [(run, data[run.config.data]) for run in training if not ended(run)]):
        for done, name in enumerate(names):
            drive(train_preset(PRESETS[name], splits_for, train_size=train_size),
                  record=functools.partial(record, name, time.perf_counter()), show=functools.partial(show, done, name))
    bar.progress(1.0, text="Done.")


def presets_table(results: dict[str, PresetResult]) -> None:
    """Every preset, reported vs measured, and what each preset is."""
    st.dataframe(_table(results), hide_index=True, column_config={
        "reported": st.column_config.TextColumn(help="The test accuracy (or result) the course report gives."),
        "training images": st.column_config.TextColumn(help="A quick check trains on at most that many images and "
                                                       "gives lower accuracies than the reports'."),
        "wall time (s)": st.column_config.TextColumn(help="Seconds this session took to train the preset; "
                                                     "— = not run yet.")})
    with st.expander("What each preset is"):
        for preset in PRESETS.values():
            st.markdown(f"**{preset.name}** — {preset.description}")


def presets_form() -> tuple[list[str], int | None] | None:
    """The presets to train and the subset (None: the full set) when "Train selected presets" is pressed, else None."""
    with st.form("reproduce"):
        names = st.multiselect("Presets to train", list(PRESETS),
                               key=state.kept("reproduce.presets", ["mlp-300-tanh-adam"]),
                               help="The LeNet-5 presets take a few minutes each on a 2-core CPU.")
        quick = st.number_input("Train on at most this many images (0 = the full set, as the reports did)", 0, None,
                                step=1000, key=state.kept("reproduce.at_most", 0),
                                help="A quick check; accuracies are then lower than the reports'. A number "
                                "at least as large as a preset's own training set trains the preset as it is.")
        start = st.form_submit_button("Train selected presets", type="primary", icon=":material/play_arrow:")
    return (names, int(quick) or None) if start else None


def start_training(live: DeltaGenerator, names: list[str], train_size: int | None) -> None:
    """Train the presets in `live`, then rerun to show them; or say there why they cannot train."""
    with live:
        if not names:
            st.error("Choose at least one preset to train.")
        else:
            try:
                _run(names, train_size)
                st.rerun()
            except DigitLabError as exc:
                show_error(exc, "Check the data directory on the Data page, or use a larger training subset.")


def measured_charts(results: dict[str, PresetResult]) -> None:
    """The presets trained this session, reported vs measured, and the momentum comparison once it is trained."""
    measured = [results[name].row() for name in PRESETS if name in results and results[name].runs]
    if not measured:
        return
    st.subheader("Reported vs measured")
    export.chart(figures.reproduction_dots(measured), run_name="reproduction", what="reported vs measured",
                 key="reproduce.chart")
    compared = [run for name, run in state.runs().items() if name.startswith("softmax-momentum:")]
    if compared:
        st.subheader("Full-batch gradient descent with and without momentum")
        export.chart(figures.training_curves(compared[-2:]), run_name="softmax-momentum", what="curves",
                     key="reproduce.momentum")


def main() -> None:
    st.title("Reproduction")
    st.write("Each preset is a setup from the course reports (with the accuracy the report gives) or our own best "
             "for an architecture. Train them here or with `python -m core reproduce`; finished runs also appear on "
             "the Results and Weights pages.")
    results = st.session_state.setdefault(RESULTS_KEY, {})
    presets_table(results)
    live = st.container()  # above the form, where a training's Stop, progress and curves are in sight at once
    if (pressed := presets_form()) is not None:
        start_training(live, *pressed)
    measured_charts(results)


main()
