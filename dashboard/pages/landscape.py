"""Loss landscape: the cost over two weights, and how gradient descent, momentum and Adam cross it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import DigitLabError
from core.lab.landscape import (
    Curvature,
    Landscape,
    OptimiserPath,
    WeightRef,
    curvature,
    default_pair,
    loss_landscape,
    optimiser_paths,
)
from core.networks.base import Params
from core.training.config import OPTIMIZER_LABELS, Optimizer
from dashboard import export, figures, state
from dashboard.gradlab import LabNetwork, pick_batch, pick_network
from dashboard.widgets import show_error


def weight_picker(params: Params, label: str, default: WeightRef, key: str) -> WeightRef:
    """Layer, array and position of one weight, defaulting to `default`."""
    cols = st.columns(4)
    layers = list(params)
    layer = cols[0].selectbox(f"{label}: layer", layers,
                              key=state.kept(f"{key}.layer", default.layer, lambda name: name in layers))
    array = cols[1].selectbox("array", ("w", "b"), key=state.kept(f"{key}.array", default.array))
    shape = params[layer][array].shape
    index = [min(default.index[i], n - 1) if layer == default.layer and array == default.array else 0
             for i, n in enumerate(shape)]
    def position(label: str, axis: int, column: int) -> int:  # kept per layer and array, whose sizes differ
        n = shape[axis]
        return int(cols[column].number_input(label, 0, n - 1, key=state.kept(
            f"{key}.{layer}.{array}.{axis}", index[axis], lambda i: 0 <= i < n)))

    if array == "w":
        return WeightRef(layer, array, (position("row (input)", 0, 2), position("column (unit)", 1, 3)))
    unit = position("unit", 0, 2)
    return WeightRef(layer, array, (unit,))


def pick_pair(network: LabNetwork, x: np.ndarray) -> tuple[WeightRef, WeightRef]:
    """The two weights that move, by default the pair the cost is most sharply curved in."""
    suggested = default_pair(network.params, x, network.model)
    with st.expander("Which two weights", expanded=False):
        st.caption(f"Default: the two output weights the cost is most sharply curved in, into one output unit "
                   f"({suggested[0].label()} and {suggested[1].label()}).")
        picked = f"landscape.{network.identity}"  # another network: its own suggested pair, not the last one's
        return (weight_picker(network.params, "First weight", suggested[0], f"{picked}.first"),
                weight_picker(network.params, "Second weight", suggested[1], f"{picked}.second"))


def curvature_note(view: Curvature, pair: tuple[WeightRef, WeightRef], here: str) -> None:
    """How the cost curves at the pair, and the grid and learning rate that suggests."""
    low_curvature, high_curvature = view.eigenvalues
    if view.fitted:
        extent = ("the cost is almost flat along one direction, a valley far longer than the grid, which shows its "
                  "middle" if view.capped else
                  "the grid spans about three 'widths' of the bowl along its flattest direction")
        st.caption(f"Defaults from the cost's curvature at the {here} point (Hessian eigenvalues {low_curvature:.3g} "
                   f"and {high_curvature:.3g}): {extent}, and the learning rate {view.learning_rate:.3g} is the "
                   "largest that does not make gradient descent bounce across the steepest one. Adam moves each "
                   "weight by about the learning rate per step whatever the slope, so it may zig-zag at this rate. "
                   "Change them to explore.")
    else:
        st.warning(f"The cost is not curved upwards in {pair[0].label()} and {pair[1].label()} at the {here} point "
                   f"(Hessian eigenvalues {low_curvature:.3g} and {high_curvature:.3g}), so there is no bowl to fit "
                   "the grid and learning rate to (the weights of a pixel blank in every image of the batch, for "
                   f"one, do not change the cost at all). The grid half-width and learning rate below start at "
                   f"{view.span:g} and {view.learning_rate:g}: set them by hand, or choose other weights or a larger "
                   "batch.")


def descent_settings(view_key: str, view: Curvature) -> tuple[float, float, float, int, int]:
    """The grid half-width, learning rate, momentum, steps and grid points a side."""
    cols = st.columns(5)
    span = cols[0].number_input("Grid half-width", 0.05, 50.0,
                                key=state.kept(f"landscape.span.{view_key}", view.span))
    learning_rate = cols[1].number_input("Learning rate", 1e-4, 100.0, format="%.4f", key=state.kept(
        f"landscape.lr.{view_key}", min(max(view.learning_rate, 1e-4), 100.0)))
    momentum = cols[2].slider("Momentum", 0.0, 0.99, key=state.kept("landscape.momentum", 0.9))
    steps = cols[3].slider("Steps K", 1, 300, key=state.kept("landscape.steps", 50))
    resolution = cols[4].slider("Grid points a side", 11, 81, step=10, key=state.kept("landscape.resolution", 41))
    return span, learning_rate, momentum, steps, resolution


def start_point(center: tuple[float, float], span: float, here: str) -> tuple[float, float]:
    """Where the optimisers start, chosen as an offset from the centre in grid half-widths."""
    start_x, start_y = st.columns(2)
    start = (start_x.slider(f"Start, first weight (offset from {here}, in grid half-widths)", -1.0, 1.0, step=0.05,
                            key=state.kept("landscape.sx", -0.8)),
             start_y.slider(f"Start, second weight (offset from {here}, in grid half-widths)", -1.0, 1.0, step=0.05,
                            key=state.kept("landscape.sy", 0.8)))
    return center[0] + start[0] * span, center[1] + start[1] * span


def landscape_charts(network: LabNetwork, landscape: Landscape, paths: dict[Optimizer, OptimiserPath],
                     view: Curvature, center: tuple[float, float], here: str) -> None:
    """The contour with the optimisers' paths, their costs step by step, and the lowest and final costs."""
    left, right = st.columns([3, 2])
    with left:
        export.chart(figures.landscape_contour(landscape, paths, OPTIMIZER_LABELS, center_label=f"{here} values"),
                     run_name=network.name, what="loss landscape", key="landscape.contour")
    with right:
        export.chart(figures.path_costs(paths, OPTIMIZER_LABELS), run_name=network.name, what="optimiser costs",
                     key="landscape.costs")
    low = landscape.minimum()
    st.caption(f"Lowest grid cost {low[2]:.4f} at ({low[0]:.3f}, {low[1]:.3f})"
               + (" (one of many points about as low, along the flat valley)" if view.capped else "")
               + f"; {here} values ({center[0]:.3f}, {center[1]:.3f}). Final cost — "
               + ", ".join(f"{OPTIMIZER_LABELS[optimiser]}: {path.costs[-1]:.4g}" for optimiser, path in paths.items()))
    if any(path.diverged for path in paths.values()):
        st.warning("An optimiser's cost became NaN/Inf: its learning rate is too large for this landscape.")


def main() -> None:
    st.title("Loss landscape")
    st.caption("Two weights move, every other weight stays where it is: the cost over a grid around them, and the "
               "paths of plain gradient descent, momentum and Adam started from the same point.")
    network = pick_network("landscape")
    x, y, _ = pick_batch(network, "landscape", default=500)
    params = network.params
    here = "trained" if network.trained else "initial"  # where the network's weights are: a run's, or a fresh network's
    pair = pick_pair(network, x)
    if pair[0] == pair[1]:
        st.error("Choose two different weights.")
        return
    center = (pair[0].value(params), pair[1].value(params))
    try:
        view = curvature(params, x, y, network.model, pair)
    except DigitLabError as exc:
        show_error(exc)
        return
    curvature_note(view, pair, here)
    view_key = f"{network.identity}.{pair[0].label()}.{pair[1].label()}"  # new weights or network: new defaults
    span, learning_rate, momentum, steps, resolution = descent_settings(view_key, view)
    start = start_point(center, span, here)
    try:
        with st.status("Evaluating the grid and running the optimisers...", expanded=False) as status:
            landscape = loss_landscape(params, x, y, network.model, pair, span, resolution)
            paths = optimiser_paths(params, x, y, network.model, pair, start, learning_rate, momentum, steps)
            status.update(label=f"{resolution}×{resolution} grid and {steps} steps of each optimiser", state="complete")
    except DigitLabError as exc:
        show_error(exc)
        return
    landscape_charts(network, landscape, paths, view, center, here)


main()
