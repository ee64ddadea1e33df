"""Backprop timing: four ways to compute one gradient, as the batch and the hidden layer grow."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data.splits import Splits
from core.errors import DigitLabError
from core.lab.backprop_timing import METHODS, MIN_SECONDS, Timing, speedups, time_methods
from dashboard import export, figures, state
from dashboard.gradlab import default_splits
from dashboard.widgets import DATA_HINT, show_error

RESULT_KEY = "backprop_timing.result"
Settings = tuple[tuple[int, ...], tuple[int, ...], str]  # batch sizes and hidden widths (sorted), activation


def timing_settings(images: int) -> Settings | None:
    """The batch sizes, hidden widths (each sorted) and activation to time; None while either list is empty."""
    left, middle, right = st.columns(3)
    batch_options = [size for size in (1, 10, 100, 1000, 5000) if size <= images]
    width_options = [4, 16, 64, 256, 1024]
    default_batches = [size for size in (10, 100, 1000) if size <= images]
    batch_sizes = left.multiselect("Batch sizes", batch_options, key=state.kept(
        "timing.batches", default_batches, lambda chosen: set(chosen) <= set(batch_options)))
    hidden_widths = middle.multiselect("Hidden widths", width_options, key=state.kept("timing.widths", [16, 64, 256]))
    activation = right.selectbox("Activation", ("tanh", "sigmoid"), key=state.kept("timing.activation", "tanh"))
    if not batch_sizes or not hidden_widths:
        st.info("Choose at least one batch size and one hidden width.")
        return None
    return tuple(sorted(batch_sizes)), tuple(sorted(hidden_widths)), activation


def time_them(splits: Splits, settings: Settings, fixed_batch: int, fixed_hidden: int) -> list[Timing] | None:
    """The button that times every method; the timings of these settings, if any."""
    if st.button("Time them", type="primary", key="timing.run"):
        batch_sizes, hidden_widths, activation = settings
        try:
            with st.status("Timing...", expanded=True) as status:
                bar = st.progress(0.0)
                rows = time_methods(splits.x_train, splits.y_train, splits.spec, batch_sizes, hidden_widths,
                                    fixed_hidden=fixed_hidden, fixed_batch=fixed_batch, activation=activation,
                                    progress=lambda done, text: bar.progress(done, f"timing {text}"))
                status.update(label="Timed", state="complete", expanded=False)
            st.session_state[RESULT_KEY] = (settings, rows)
        except DigitLabError as exc:
            show_error(exc)
    stored = st.session_state.get(RESULT_KEY)
    return stored[1] if stored and stored[0] == settings else None


def timing_charts(rows: list[Timing], fixed_batch: int, fixed_hidden: int) -> None:
    """Time per gradient as the batch grows and as the hidden layer grows."""
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Growing batch** (hidden width {fixed_hidden})")
        export.chart(figures.timing_chart([r for r in rows if r.hidden == fixed_hidden], METHODS, "batch_size"),
                     run_name="backprop timing", what="growing batch", key="timing.batch_chart")
    with right:
        st.markdown(f"**Growing hidden layer** (batch {fixed_batch})")
        export.chart(figures.timing_chart([r for r in rows if r.batch_size == fixed_batch], METHODS, "hidden"),
                     run_name="backprop timing", what="growing hidden layer", key="timing.width_chart")


def speedup_table(rows: list[Timing]) -> None:
    """How many times faster the hand-vectorised gradient is than each other method, at every size."""
    ratios = speedups(rows)
    autodiff_ratio = speedups(rows, over="autodiff")
    fd_ratio = speedups(rows, over="finite-differences")
    st.subheader("Speed-up of the hand-vectorised gradient")
    st.dataframe(pd.DataFrame([{"batch": b, "hidden": h, "over the naive loop": f"{ratios[(b, h)]:,.0f}×",
                                "over finite differences": f"{fd_ratio[(b, h)]:,.0f}×",
                                "over jax.grad": f"{autodiff_ratio[(b, h)]:.2f}×"} for (b, h) in ratios]),
                 hide_index=True)
    if any(ratio < 1 for ratio in autodiff_ratio.values()):
        st.caption("A speed-up below 1× over jax.grad means the hand-vectorised gradient was the slower of the two at "
                   "that size: jax.grad builds essentially the same matrix products and XLA compiles both, so they "
                   "run neck and neck and small differences are timing noise — the big wins are over the loops and "
                   "finite differences.")


def measurements_table(rows: list[Timing]) -> None:
    """Every timing, as measured."""
    st.subheader("Every measurement")
    st.dataframe(pd.DataFrame([{
        "method": METHODS[r.method], "batch": r.batch_size, "hidden": r.hidden, "parameters": r.parameters,
        "run seconds": r.seconds, "calls": r.calls, "compile seconds": r.compile_text(), "how": r.how_measured(),
    } for r in rows]), hide_index=True, column_config={
        "run seconds": st.column_config.NumberColumn(format="%.2e",
                                                     help="The median call (extrapolated when so marked)."),
        "calls": st.column_config.NumberColumn(help=f"How many calls the median is taken over: as many as fit in "
                                                    f"{MIN_SECONDS} s, at least one."),
        "compile seconds": st.column_config.TextColumn(
            help="Time JAX spent tracing and compiling the method's programs during this press (or loading them from "
                 "its on-disk cache). Programs compiled by an earlier press are reused: 'already compiled'."),
    })


def main() -> None:
    st.title("Backprop timing")
    st.caption("One gradient of a one-hidden-layer MLP, four ways: the hand-vectorised backward pass and jax.grad "
               "(both jitted; compilation timed separately), the nested per-example, per-weight loops of a first "
               "attempt, and finite differences (two forward passes per weight), each on freshly initialised networks "
               f"and a batch of training images. Each method is called until its calls add up to {MIN_SECONDS} s and "
               "the median call is shown. The slow two run on a few examples or weights and are extrapolated to the "
               "full size — drawn hollow and labelled as such.")
    try:
        splits = default_splits()
    except DigitLabError as exc:
        show_error(exc, DATA_HINT)
        return
    settings = timing_settings(len(splits.y_train))
    if settings is None:
        return
    batch_sizes, hidden_widths, _ = settings  # the middle ones stay fixed while the other grows
    fixed_batch, fixed_hidden = batch_sizes[len(batch_sizes) // 2], hidden_widths[len(hidden_widths) // 2]
    rows = time_them(splits, settings, fixed_batch, fixed_hidden)
    if rows is None:
        st.info("Press the button to time every method at these sizes (a few seconds per size on a small CPU; "
                "the images come from the training split).")
        return
    timing_charts(rows, fixed_batch, fixed_hidden)
    speedup_table(rows)
    measurements_table(rows)


main()
