"""Backprop timing: four ways to compute one gradient, as the batch and the hidden layer grow."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import DigitLabError
from core.lab.backprop_timing import METHODS, MIN_SECONDS, speedups, time_methods
from dashboard import export, figures, state
from dashboard.gradlab import default_splits
from dashboard.widgets import DATA_HINT, show_error

RESULT_KEY = "backprop_timing.result"

st.title("Backprop timing")
st.caption("One gradient of a one-hidden-layer MLP, four ways: the hand-vectorised backward pass and jax.grad (both "
           "jitted; compilation timed separately), the nested per-example, per-weight loops of a first attempt, and "
           "finite differences (two forward passes per weight), each on freshly initialised networks and a batch of "
           f"training images. Each method is called until its calls add up to {MIN_SECONDS} s and the median call "
           "is shown. The slow two run on a few examples or weights and are extrapolated to the full size — drawn "
           "hollow and labelled as such.")

try:
    splits = default_splits()
except DigitLabError as exc:
    show_error(exc, DATA_HINT)
    st.stop()
x, y = splits.x_train, splits.y_train
left, middle, right = st.columns(3)
batch_options = [size for size in (1, 10, 100, 1000, 5000) if size <= len(y)]
width_options = [4, 16, 64, 256, 1024]
default_batches = [size for size in (10, 100, 1000) if size <= len(y)]
batch_sizes = left.multiselect("Batch sizes", batch_options, key=state.kept(
    "timing.batches", default_batches, lambda chosen: set(chosen) <= set(batch_options)))
hidden_widths = middle.multiselect("Hidden widths", width_options, key=state.kept("timing.widths", [16, 64, 256]))
activation = right.selectbox("Activation", ("tanh", "sigmoid"), key=state.kept("timing.activation", "tanh"))
settings = (tuple(sorted(batch_sizes)), tuple(sorted(hidden_widths)), activation)
if not batch_sizes or not hidden_widths:
    st.info("Choose at least one batch size and one hidden width.")
    st.stop()
fixed_batch, fixed_hidden = settings[0][len(settings[0]) // 2], settings[1][len(settings[1]) // 2]  # the middle ones

if st.button("Time them", type="primary", key="timing.run"):
    try:
        with st.status("Timing...", expanded=True) as status:
            bar = st.progress(0.0)
            rows = time_methods(x, y, splits.spec, settings[0], settings[1],
                                fixed_hidden=fixed_hidden, fixed_batch=fixed_batch, activation=activation,
                                progress=lambda done, text: bar.progress(done, f"timing {text}"))
            status.update(label="Timed", state="complete", expanded=False)
        st.session_state[RESULT_KEY] = (settings, rows)
    except DigitLabError as exc:
        show_error(exc)
stored = st.session_state.get(RESULT_KEY)
if not stored or stored[0] != settings:
    st.info("Press the button to time every method at these sizes (a few seconds per size on a small CPU; "
            "the images come from the training split).")
    st.stop()
rows = stored[1]
left, right = st.columns(2)
with left:
    st.markdown(f"**Growing batch** (hidden width {fixed_hidden})")
    export.chart(figures.timing_chart([r for r in rows if r.hidden == fixed_hidden], METHODS, "batch_size"),
                 run_name="backprop timing", what="growing batch", key="timing.batch_chart")
with right:
    st.markdown(f"**Growing hidden layer** (batch {fixed_batch})")
    export.chart(figures.timing_chart([r for r in rows if r.batch_size == fixed_batch], METHODS, "hidden"),
                 run_name="backprop timing", what="growing hidden layer", key="timing.width_chart")

ratios = speedups(rows)
autodiff_ratio = speedups(rows, over="autodiff")
fd_ratio = speedups(rows, over="finite-differences")
st.subheader("Speed-up of the hand-vectorised gradient")
st.dataframe(pd.DataFrame([{"batch": b, "hidden": h, "over the naive loop": f"{ratios[(b, h)]:,.0f}×",
                            "over finite differences": f"{fd_ratio[(b, h)]:,.0f}×",
                            "over jax.grad": f"{autodiff_ratio[(b, h)]:.2f}×"} for (b, h) in ratios]), hide_index=True)
if any(ratio < 1 for ratio in autodiff_ratio.values()):
    st.caption("A speed-up below 1× over jax.grad means the hand-vectorised gradient was the slower of the two at "
               "that size: jax.grad builds essentially the same matrix products and XLA compiles both, so they run "
               "neck and neck and small differences are timing noise — the big wins are over the loops and finite "
               "differences.")
st.subheader("Every measurement")
st.dataframe(pd.DataFrame([{
    "method": METHODS[r.method], "batch": r.batch_size, "hidden": r.hidden, "parameters": r.parameters,
    "run seconds": r.seconds, "calls": r.calls, "compile seconds": r.compile_text(), "how": r.how_measured(),
} for r in rows]), hide_index=True, column_config={
    "run seconds": st.column_config.NumberColumn(format="%.2e", help="The median call (extrapolated when so marked)."),
    "calls": st.column_config.NumberColumn(help=f"How many calls the median is taken over: as many as fit in "
                                                f"{MIN_SECONDS} s, at least one."),
    "compile seconds": st.column_config.TextColumn(
        help="Time JAX spent tracing and compiling the method's programs during this press (or loading them from "
             "its on-disk cache). Programs compiled by an earlier press are reused: 'already compiled'."),
})
