"""Figures of a run's layer statistics (`core.training.statistics`): per layer against steps, and histograms over
time as heatmaps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.training.statistics import BINS, GRADIENT_DECADES, HEALTHY_UPDATE_RATIO
from dashboard.figures import PALETTE

HISTOGRAM_KINDS = {  # what a histogram heatmap can show: (kind of layer, histogram key, its axis title)
    "weights": ("weights", "histogram", "weight"),
    "gradients": ("weights", "gradient_histogram", "log10 |gradient|"),
    "activations": ("units", "histogram", "activation"),
}


def _series(statistics: Sequence[tuple[int, dict]], kind: str, quantity: str) -> dict[str, tuple[list, list]]:
    """Each layer's (steps, values) of one quantity."""
    layers: dict[str, tuple[list, list]] = {}
    for step, stats in statistics:
        for layer, values in stats[kind].items():
            steps, series = layers.setdefault(layer, ([], []))
            steps.append(step)
            series.append(values[quantity])
    return layers


def layer_statistics(statistics: Sequence[tuple[int, dict]], stuck: str) -> go.Figure:
    """Four panels against steps, one line per layer: gradient norm, update-to-weight ratio (the 1e-3 rule of thumb
    dotted), the fraction of dead or saturated units, and the activations' mean (solid) and spread (dotted)."""
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.1, vertical_spacing=0.16, subplot_titles=(
        "Gradient norm (log)", "Update / weight norm (log)", f"Fraction of {stuck} units",
        "Activations: mean (solid), standard deviation (dotted)"))
    layers = list(dict.fromkeys(layer for _, stats in statistics for kind in stats for layer in stats[kind]))
    colour = {layer: PALETTE[i % len(PALETTE)] for i, layer in enumerate(layers)}
    panels = [((1, 1), "weights", "gradient_norm", "solid"), ((1, 2), "weights", "update_ratio", "solid"),
              ((2, 1), "units", "stuck", "solid"), ((2, 2), "units", "mean", "solid"), ((2, 2), "units", "std", "dot")]
    shown = set()
    for (row, col), kind, quantity, dash in panels:
        for layer, (steps, values) in _series(statistics, kind, quantity).items():
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=layer, legendgroup=layer,
                                     showlegend=layer not in shown, line=dict(color=colour[layer], dash=dash),
                                     hovertemplate=f"{layer} {quantity}: %{{y:.3g}} at step %{{x}}<extra></extra>"),
                          row=row, col=col)
            shown.add(layer)
    fig.add_hline(y=HEALTHY_UPDATE_RATIO, line_dash="dot", line_color="#7f7f7f", row=1, col=2,
                  annotation_text="1e-3", annotation_position="top left")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=2, col=1)
    fig.update_xaxes(title_text="updates", row=2)
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.12))
    return fig


def bin_centres(statistics: Sequence[tuple[int, dict]], what: str, layer: str) -> np.ndarray:
    """The centres of a histogram's bins (the gradients' are fixed; weights' and activations' edges are the run's,
    recovered from the first record's range)."""
    if what == "gradients":
        edges = np.linspace(*GRADIENT_DECADES, BINS + 1)
    else:
        kind, _, _ = HISTOGRAM_KINDS[what]
        edges = np.asarray(statistics[0][1][kind][layer]["edges"])
    return (edges[:-1] + edges[1:]) / 2


def histogram_over_time(statistics: Sequence[tuple[int, dict]], what: str, layer: str) -> go.Figure:
    """One layer's histogram at every recorded step as a heatmap (steps across, values up), and beside it the
    histogram now against at initialisation."""
    kind, key, title = HISTOGRAM_KINDS[what]
    steps = [step for step, _ in statistics]
    counts = np.array([stats[kind][layer][key] for _, stats in statistics]).T  # (bins, steps)
    centres = bin_centres(statistics, what, layer)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.72, 0.28], shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=(f"{layer}: {what} over training", "now and at initialisation"))
    fig.add_trace(go.Heatmap(x=steps, y=centres, z=counts, colorscale="Viridis", colorbar=dict(thickness=12, x=0.7),
                             hovertemplate="step %{x}, " + title + " %{y:.3g}: %{z:.1%}<extra></extra>"), row=1, col=1)
    for index, name, colour in ((0, "at initialisation", "#7f7f7f"), (-1, "now", PALETTE[0])):
        fig.add_trace(go.Scatter(x=counts[:, index], y=centres, mode="lines", name=name, line=dict(color=colour),
                                 line_shape="hvh", hovertemplate=f"{name}: %{{x:.1%}}<extra></extra>"), row=1, col=2)
    fig.update_yaxes(title_text=title, row=1, col=1)
    fig.update_xaxes(title_text="updates", row=1, col=1)
    fig.update_xaxes(title_text="share", tickformat=".0%", row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    return fig
