"""Weights: what each network learned, as images, at the end of a run or after any saved epoch."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import DigitLabError
from core.networks.base import Params, WeightImages
from core.summaries import feature_map_images, strongest_feeders
from core.training.runs import Run
from dashboard import export, figures, state
from dashboard.widgets import DATA_HINT, diverged_note, one_of, pick_run, show_error

UNITS_PER_PAGE = 36
GRID_COLUMNS = 6
FEEDERS = 6
FIRST_MAPS_WIDTH = 720  # pixels: the first feature maps share their row with the test image
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


def unit_images(run: Run, weights: WeightImages, when: str) -> None:
    """Every unit's incoming weights as an image, a page of units at a time."""
    images = np.asarray(weights.images)
    units = len(images)
    st.subheader(f"Incoming weights of the {units} units of layer {weights.layer}")
    st.caption(weights.caption)
    pages = -(-units // UNITS_PER_PAGE)
    page = (st.number_input(f"Page (of {pages}, {UNITS_PER_PAGE} units each)", 1, pages, 1, key="unit_page")
            if pages > 1 else 1)
    shown = range((page - 1) * UNITS_PER_PAGE, min(page * UNITS_PER_PAGE, units))
    columns = units if units <= GRID_COLUMNS else min(GRID_COLUMNS, -(-units // 2))  # ten classes: two rows of 5
    export.chart(figures.image_grid(images[shown.start:shown.stop], weights.titles[shown.start:shown.stop],
                                    columns=columns),
                 run_name=run.name, what=f"{weights.layer} weights {shown.start}-{shown.stop - 1} {when}",
                 key="unit_images")


def feeders(run: Run, weights: WeightImages, when: str) -> None:
    """The units with the largest weights into one output class: their incoming and their outgoing weights."""
    st.subheader(f"Which units vote for a {run.spec.class_noun}")
    labels = run.spec.class_labels
    chosen = one_of("Output", list(range(run.spec.num_classes)), key="feeder_digit", format_func=labels.__getitem__)
    output = np.asarray(weights.outputs)
    top = strongest_feeders(output, chosen, FEEDERS)
    st.caption(f"The {FEEDERS} units with the largest weight into the output for {labels[chosen]}: their incoming "
               f"weights (top) and their weights into all {run.spec.num_classes} outputs (bottom).")
    titles = [f"{weights.titles[u]} (→{run.spec.class_names[chosen]}: {output[u, chosen]:+.2f})" for u in top]
    export.chart(figures.image_grid(np.asarray(weights.images)[top], titles, columns=FEEDERS), run_name=run.name,
                 what=f"units feeding {labels[chosen]} {when}", key="feeder_units")
    export.chart(figures.outgoing_weight_bars(output[top], [weights.titles[u] for u in top], run.spec.class_names,
                                              columns=FEEDERS),
                 run_name=run.name, what=f"outgoing weights feeding {labels[chosen]} {when}", key="feeder_bars")


def feature_maps(run: Run, params: Params, when: str) -> None:
    """The network's feature maps (after ReLU) for one test image."""
    st.subheader("Feature maps for one test image")
    try:
        x_test = state.splits_for(run.spec, run.config.data).x_test
    except DigitLabError as exc:  # the feature maps need a test image from the data folder
        show_error(exc, DATA_HINT)
        return
    index = st.number_input("Test image index", 0, len(x_test) - 1, 0, key="feature_digit")
    with st.spinner("Computing the feature maps…"):
        computed = run.model.forward(params, x_test[index:index + 1])
        maps = {name: feature_map_images(computed[name]) for name in run.model.network.feature_maps}
    for i, (name, images) in enumerate(maps.items()):
        count, height, width = images.shape
        titles = [f"map {m}" for m in range(count)]
        what = f"{name} maps test {index} {when}"
        if i == 0:
            image, first = st.columns([1, 4])
            image.image(x_test[index].reshape(run.spec.image_shape).squeeze(-1) if run.spec.channels == 1 else
                        x_test[index].reshape(run.spec.image_shape), width=140, caption=f"test image #{index}")
            with first:
                st.caption(f"{name} after ReLU: {count} maps of {height}×{width}")
                export.chart(figures.image_grid(images, titles, columns=min(count, 8), diverging=False,
                                                width=FIRST_MAPS_WIDTH),
                             run_name=run.name, what=what, key=f"{name}_maps")
        else:
            st.caption(f"{name} after ReLU: {count} maps of {height}×{width}")
            export.chart(figures.image_grid(images, titles, columns=min(count, 8), diverging=False),
                         run_name=run.name, what=what, key=f"{name}_maps")


def main() -> None:
    st.title("Weights")
    run = pick_run()
    if run is None:
        return
    if run.diverged:
        st.warning(diverged_note(run, "weights"))
    when, params = pick_params(run)
    weights = run.model.weight_images(params)
    unit_images(run, weights, when)
    if weights.outputs is not None:
        feeders(run, weights, when)
    if run.model.network.feature_maps:
        feature_maps(run, params, when)


main()
