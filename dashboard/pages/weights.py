"""Weights: what each network learned, as images, at the end of a run or after any saved epoch."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.data.spec import IMAGE_SIDE
from core.errors import DigitLabError
from core.models import Params, lenet5_feature_maps
from core.summaries import (
    feature_map_images,
    filter_images,
    input_weight_images,
    strongest_feeders,
)
from core.training.runs import Run
from dashboard import export, figures, state
from dashboard.widgets import DATA_HINT, diverged_note, one_of, pick_run, show_error

UNITS_PER_PAGE = 36
GRID_COLUMNS = 6
FEEDERS = 6
CONV1_MAPS_WIDTH = 720  # pixels: the conv1 feature maps share their row with the test digit
END = "end of the run"
BEFORE_DIVERGING = "before it diverged"  # a diverged run's kept parameters


def pick_params(run: Run) -> tuple[str, Params]:
    """An epoch slider over the run's per-epoch snapshots (plus the end of the run, or the parameters a diverged run
    kept, when it differs)."""
    points = {f"epoch {epoch}": params for epoch, params in run.snapshots}
    end = BEFORE_DIVERGING if run.diverged else END
    if not points or run.snapshots[-1][0] != run.epochs_completed:  # (a reloaded run's arrays are copies)
        points[end] = run.params
    if len(points) == 1:
        label = next(iter(points))
        st.caption(f"Showing the weights at the {label}." if label == end else
                   f"Showing the weights after {label} (the {end}).")
    else:
        label = st.select_slider("Weights after", list(points), value=list(points)[-1], key=f"epoch.{run.name}")
    return label, points[label]


def softmax_regression(run: Run, params: Params, when: str) -> None:
    st.subheader("The ten weight images")
    st.caption("Each output unit's 784 incoming weights drawn as a 28×28 image, all on one scale centred on zero: "
               "red pixels push towards that digit, blue pixels against it.")
    images = input_weight_images(params["output"]["w"])
    export.chart(figures.image_grid(images, [f"digit {d}" for d in range(10)], columns=5),
                 run_name=run.name, what=f"output weights {when}", key="linear_weights")


def mlp(run: Run, params: Params, when: str) -> None:
    first = input_weight_images(params["hidden_0"]["w"])
    units = len(first)
    st.subheader(f"First hidden layer: the incoming weights of its {units} units")
    pages = -(-units // UNITS_PER_PAGE)
    page = st.number_input(f"Page (of {pages}, {UNITS_PER_PAGE} units each)", 1, pages, 1, key="unit_page") if pages > 1 else 1
    start = (page - 1) * UNITS_PER_PAGE
    shown = range(start, min(start + UNITS_PER_PAGE, units))
    export.chart(figures.image_grid(first[start:shown.stop], [f"unit {u}" for u in shown], columns=GRID_COLUMNS),
                 run_name=run.name, what=f"hidden units {shown.start}-{shown.stop - 1} {when}", key="hidden_units")

    st.subheader("Which hidden units vote for a digit")
    if len(run.config.model.hidden) > 1:
        st.info("This MLP has more than one hidden layer, so no first-layer unit feeds the outputs directly; "
                "train a one-hidden-layer MLP to see which units vote for each digit.")
        return
    digit = one_of("Output digit", list(range(10)), key="feeder_digit")
    output = np.asarray(params["output"]["w"])
    top = strongest_feeders(output, digit, FEEDERS)
    st.caption(f"The {FEEDERS} hidden units with the largest weight into output {digit}: their incoming weights "
               "(top) and their weights into all ten outputs (bottom).")
    titles = [f"unit {u} (→{digit}: {output[u, digit]:+.2f})" for u in top]
    export.chart(figures.image_grid(first[top], titles, columns=FEEDERS), run_name=run.name,
                 what=f"units feeding {digit} {when}", key="feeder_units")
    export.chart(figures.outgoing_weight_bars(output[top], [f"unit {u}" for u in top], columns=FEEDERS),
                 run_name=run.name, what=f"outgoing weights feeding {digit} {when}", key="feeder_bars")


def lenet5(run: Run, params: Params, when: str) -> None:
    filters = filter_images(params["conv1"]["w"])
    st.subheader("The six first-layer 5×5 filters")
    export.chart(figures.image_grid(filters, [f"filter {i}" for i in range(6)], columns=6),
                 run_name=run.name, what=f"conv1 filters {when}", key="conv1_filters")
    st.subheader("Feature maps for one test digit")
    try:
        x_test = state.splits(state.data_dir(), run.config.data).x_test
    except DigitLabError as exc:  # the feature maps need a test image from the data folder
        show_error(exc, DATA_HINT)
        return
    index = st.number_input("Test image index", 0, len(x_test) - 1, 0, key="feature_digit")
    with st.spinner("Computing the feature maps…"):
        computed = lenet5_feature_maps(params, x_test[index:index + 1])
        maps = {name: feature_map_images(computed[name]) for name in ("conv1", "conv2")}
    image, first = st.columns([1, 4])
    image.image(x_test[index].reshape(IMAGE_SIDE, IMAGE_SIDE), width=140, caption=f"test image #{index}")
    with first:
        st.caption("conv1 after ReLU: 6 maps of 24×24")
        export.chart(figures.image_grid(maps["conv1"], [f"map {i}" for i in range(6)], columns=6, diverging=False,
                                        width=CONV1_MAPS_WIDTH),
                     run_name=run.name, what=f"conv1 maps test {index} {when}", key="conv1_maps")
    st.caption("conv2 after ReLU: 16 maps of 8×8")
    export.chart(figures.image_grid(maps["conv2"], [f"map {i}" for i in range(16)], columns=8, diverging=False),
                 run_name=run.name, what=f"conv2 maps test {index} {when}", key="conv2_maps")


st.title("Weights")
run = pick_run()
if run is not None:
    if run.diverged:
        st.warning(diverged_note(run, "weights"))
    when, params = pick_params(run)
    {"linear": softmax_regression, "mlp": mlp, "lenet5": lenet5}[run.config.model.arch](run, params, when)
