"""Reproduction: the course reports' setups as presets, reported vs measured test accuracy."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.errors import DigitLabError
from core.presets import PRESETS
from core.reproduce import format_accuracy, table_row, train_preset
from dashboard import figures, state
from dashboard.widgets import format_or_dash, show_error

ROWS_KEY = "reproduce.rows"  # preset name -> measured table row, this session


def _table(rows: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "preset": p.name,
        "architecture": p.arch,
        "reported": p.reported_text or format_accuracy(p.reported),
        "ours (test)": " / ".join(format_accuracy(a) for a in rows[p.name]["runs"].values()) if p.name in rows else "not run",
        "epochs": rows[p.name]["epochs"] if p.name in rows else max(c.train.epochs for c in p.configs),
        "wall time (s)": format_or_dash(rows[p.name]["seconds"] if p.name in rows else None, ".0f"),
        "kind": "our best" if p.ours else "report",
    } for p in PRESETS.values()])


def _run(names: list[str], train_size: int | None) -> None:
    rows = st.session_state.setdefault(ROWS_KEY, {})
    bar = st.progress(0.0, text="Compiling...")
    for done, name in enumerate(names):
        preset = PRESETS[name]
        started, last_draw = time.perf_counter(), 0.0
        for runs in train_preset(preset, lambda c: state.splits(state.data_dir(), c), train_size=train_size):
            history = runs[-1].history
            now = time.perf_counter()
            if history and now - last_draw > 0.3:
                last_draw = now
                within = (len(runs) - 1 + min(1.0, history[-1]["epoch"] / runs[-1].config.train.epochs)) / len(
                    preset.configs)
                bar.progress(min(1.0, (done + within) / len(names)),
                             text=f"{name} ({done + 1}/{len(names)}): {runs[-1].name}, epoch "
                                  f"{history[-1]['epoch']:.1f} of {runs[-1].config.train.epochs}")
        rows[name] = table_row(preset, runs, time.perf_counter() - started)
        for run in runs:
            run.name = state.unique_name(run.name)
            state.keep_run(run)
    bar.progress(1.0, text="Done.")


st.title("Reproduction")
st.write("Each preset is a setup from the course reports (with the accuracy the report gives) or our own best "
         "for an architecture. Train them here or with `python -m core reproduce`; finished runs also appear on "
         "the Results and Weights pages.")
rows = st.session_state.setdefault(ROWS_KEY, {})
st.dataframe(_table(rows), hide_index=True, column_config={
    "reported": st.column_config.TextColumn(width=260, help="The test accuracy (or result) the course report gives."),
    "wall time (s)": st.column_config.TextColumn(help="Seconds this session took to train the preset; — = not run yet.")})
with st.expander("What each preset is"):
    for preset in PRESETS.values():
        st.markdown(f"**{preset.name}** — {preset.description}")

with st.form("reproduce"):
    names = st.multiselect("Presets to train", list(PRESETS), default=["mlp-300-tanh-adam"],
                           help="The LeNet-5 presets take a few minutes each on a 2-core CPU.")
    quick = st.number_input("Train on at most this many images (0 = the full set, as the reports did)", 0, 55000,
                            0, step=1000, help="A quick check; accuracies are then lower than the reports'.")
    start = st.form_submit_button("Train selected presets", type="primary", icon=":material/play_arrow:")
if start:
    if not names:
        st.error("Choose at least one preset to train.")
    else:
        try:
            _run(names, int(quick) or None)
            st.rerun()
        except DigitLabError as exc:
            show_error(exc, "Check the data directory on the Data page, or use a larger training subset.")

measured = [rows[name] for name in PRESETS if name in rows]
if measured:
    st.subheader("Reported vs measured")
    st.plotly_chart(figures.reproduction_bars(measured))
    compared = [run for name, run in state.runs().items() if name.startswith("softmax-momentum:")]
    if compared:
        st.subheader("Full-batch gradient descent with and without momentum")
        st.plotly_chart(figures.training_curves(compared[-2:]))
