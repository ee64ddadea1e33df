"""Embeddings: how a network's layers arrange the test digits, as PCA and t-SNE maps, side by side."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping

import numpy as np
import streamlit as st

from core.errors import DigitLabError
from core.explore.embeddings import (
    INPUT,
    LOGITS,
    MAX_POINTS,
    PERPLEXITY_RANGE,
    Method,
    Projection,
    activations,
    initial_params,
    last_hidden_layer,
    layer_shapes,
    project,
)
from core.networks.base import Params
from core.summaries import confidence, random_subset
from core.training.runs import Run
from dashboard import export, figures, state
from dashboard.widgets import DATA_HINT, caption, diverged_note, one_of, pick_run, show_error, test_images

PROJECTIONS_KEY = "embeddings.projections"  # (run, its training so far, params, layer, method, ...) -> Projection
KEPT_PROJECTIONS = 24  # the oldest are dropped beyond this (each is tiny, but a session may try many)
POINT_CHOICES = (1000, 2000, 5000, MAX_POINTS)
GALLERY_MAX = 60
SAMPLE_SEED = 0  # the test digits a smaller map shows: the same ones every time


class Panels(enum.StrEnum):
    ONE = "one layer"
    INPUT_VS_HIDDEN = "input | last hidden layer"
    INITIAL_VS_TRAINED = "at initialisation | trained"


class Weights(enum.StrEnum):
    """Which parameters a panel maps: the run's trained ones, or those it started from."""

    TRAINED = "trained"
    INITIAL = "initial"


def layer_label(name: str, shapes: Mapping[str, tuple[int, ...]]) -> str:
    """'fc1 (120 values)', 'pool2 (4×4×16, flattened: 256 values)'."""
    shape = shapes[name]
    values = f"{math.prod(shape):,} values"
    return (f"{'input pixels' if name == INPUT else name} "
            f"({'×'.join(map(str, shape)) + ', flattened: ' if len(shape) > 1 else ''}{values})")


def projection(run: Run, params: Params, which: Weights, layer: str, method: Method, perplexity: float,
               indices: np.ndarray) -> Projection:
    """The layer's map of the test digits at `indices`, computed once per run, its training so far, the parameters
    (`which`), layer, method, perplexity and digits; a t-SNE shows its progress."""
    key = (run.run_id, len(run.history), which, layer, method, perplexity if method is Method.TSNE else None,
           len(indices))
    kept = st.session_state.setdefault(PROJECTIONS_KEY, {})
    if key in kept:
        return kept[key]
    x = state.splits_for(run.spec, run.config.data).x_test[indices]
    with st.spinner(f"Computing the {layer} activations of {len(indices):,} test digits…"):
        values = activations(params, run.model, layer, x)
    if method is Method.PCA:
        with st.spinner("PCA…"):
            result = project(values, method)
    else:
        bar = st.progress(0.0, text="t-SNE: starting")
        result = project(values, method, perplexity=perplexity,
                         progress=lambda fraction, what: bar.progress(fraction, text=f"t-SNE of {layer}: {what}"))
        bar.empty()
    while len(kept) >= KEPT_PROJECTIONS:
        kept.pop(next(iter(kept)))
    kept[key] = result
    return result


def axis_titles(result: Projection, method: Method) -> tuple[str, str]:
    if result.explained is None:
        return f"{method.title} 1", f"{method.title} 2"
    return tuple(f"principal component {i + 1} ({share:.1%} of the variance)"
                 for i, share in enumerate(result.explained))


def controls(run: Run, shapes: Mapping[str, tuple[int, ...]], n_test: int) -> tuple[Panels, str, Method, float, int]:
    cols = st.columns([2, 2, 1, 1])
    panels = cols[0].selectbox("Panels", list(Panels), key="embeddings.panels",
                               help="One layer; the input pixels beside the last hidden layer; or one layer with the "
                                    "weights drawn at initialisation beside the trained ones.")
    layers = list(shapes)
    if st.session_state.get("embeddings.layer") not in layers:
        st.session_state["embeddings.layer"] = last_hidden_layer(run.model)
    layer = cols[1].selectbox("Layer", layers, key="embeddings.layer", disabled=panels is Panels.INPUT_VS_HIDDEN,
                              format_func=lambda name: layer_label(name, shapes))
    with cols[2]:
        method = one_of("Method", list(Method), key="embeddings.method", format_func=lambda m: Method(m).title)
    choices = [n for n in POINT_CHOICES if n < n_test] + [min(n_test, MAX_POINTS)]
    points = cols[3].selectbox("Test digits", choices, index=len(choices) - 1, key=f"embeddings.points.{n_test}",
                               format_func=lambda n: f"{n:,}")
    perplexity = 30.0
    if Method(method) is Method.TSNE:
        low, high = PERPLEXITY_RANGE
        perplexity = float(st.slider("Perplexity (about how many neighbours each digit keeps close)", int(low),
                                     int(high), 30, key="embeddings.perplexity"))
        st.caption(f"t-SNE of {points:,} digits takes up to a minute on two cores; each map is computed once per run, "
                   "layer and perplexity. It keeps neighbours close, but distances between clusters and cluster sizes "
                   "mean little: PCA's are true to scale.")
    return Panels(panels), layer, Method(method), perplexity, points


def panel_specs(run: Run, panels: Panels, layer: str) -> list[tuple[str, Weights, str]]:
    """(title, which parameters, layer) for each panel."""
    name = "input pixels" if layer == INPUT else layer
    if panels is Panels.INPUT_VS_HIDDEN:
        hidden = last_hidden_layer(run.model)
        title = f"Last hidden layer: {hidden}"
        if hidden == INPUT:  # softmax regression
            title, hidden = "No hidden layer: the logits", LOGITS
        return [("Input pixels", Weights.TRAINED, INPUT), (title, Weights.TRAINED, hidden)]
    if panels is Panels.INITIAL_VS_TRAINED:
        return [(f"{name} at initialisation", Weights.INITIAL, layer), (f"{name} trained", Weights.TRAINED, layer)]
    return [(name, Weights.TRAINED, layer)]


def selected_indices(events: list) -> list[int]:
    """The test indices selected in any panel (clicked, boxed or lassoed), each once, in order."""
    chosen = {}
    for event in events:
        for point in event["selection"]["points"] if event else []:
            chosen[int(point["customdata"][0])] = None
    return list(chosen)


def gallery(run: Run, selected: list[int]) -> None:
    st.header("Selected digits")
    if not selected:
        st.caption("Click a point, or drag a box or a lasso (toolbar) over a group of points, to see those digits.")
        return
    evaluation = state.test_evaluation(run)
    wrong = int(sum(evaluation.labels[i] != evaluation.predictions[i] for i in selected))
    counts = np.bincount(evaluation.labels[selected], minlength=run.spec.num_classes)
    common = ", ".join(f"{counts[c]} × {run.spec.class_names[c]}" for c in np.argsort(-counts, kind="stable")[:5]
                       if counts[c])
    shown = selected[:GALLERY_MAX]
    st.markdown(f"**{len(selected):,}** selected ({wrong:,} misclassified; most often {common})"
                + (f"; showing the first {len(shown)}." if len(shown) < len(selected) else ".")
                + f" Each caption: true {run.spec.class_noun} → predicted · confidence, then the test index.")
    sure = confidence(evaluation)
    st.image(test_images(run, shown), caption=[caption(run, evaluation, sure, i) for i in shown],
             width=160 if len(shown) == 1 else 84)


def main() -> None:
    st.title("Embeddings")
    st.markdown("Each test digit as a point: a layer's activations projected to two dimensions, coloured by the true "
                "digit, black rings on the ones the network gets wrong. Hover a point for its digit; click it, or "
                "drag a box or a lasso, to see the images below.")
    run = pick_run()
    if run is None:
        return
    if run.diverged:
        st.warning(diverged_note(run, "maps"))
    try:
        evaluation = state.test_evaluation(run)
    except DigitLabError as exc:  # the test images are read from the data folder
        show_error(exc, DATA_HINT)
        return
    shapes = layer_shapes(run.model)
    n_test = len(evaluation.labels)
    panels, layer, method, perplexity, points = controls(run, shapes, n_test)
    indices = random_subset(np.arange(n_test), points, seed=SAMPLE_SEED)
    specs = panel_specs(run, panels, layer)
    params = {Weights.TRAINED: run.params}
    if panels is Panels.INITIAL_VS_TRAINED:
        params[Weights.INITIAL] = initial_params(run.model, run.config.train.seed)
    try:
        results = [projection(run, params[which], which, shown, method, perplexity, indices)
                   for _, which, shown in specs]
    except DigitLabError as exc:
        show_error(exc)
        return
    events = []
    for column, (title, _, _), result in zip(st.columns(len(specs)), specs, results):
        with column:
            st.subheader(title)
            fig = figures.embedding_scatter(result.points, indices, evaluation.labels[indices],
                                            evaluation.predictions[indices], run.spec,
                                            axis_titles=axis_titles(result, method))
            events.append(export.chart(fig, run_name=run.name, what=f"{method.title} {title}",
                                       key=f"embedding.{len(specs)}.{title}", on_select="rerun",
                                       selection_mode=("points", "box", "lasso")))
    if panels is Panels.INITIAL_VS_TRAINED:
        st.caption(f"The initial weights are drawn again from the run's seed ({run.config.train.seed}). Rings mark the "
                   "digits the trained network gets wrong, in both panels.")
    gallery(run, selected_indices(events))


main()
