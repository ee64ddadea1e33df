"""The Playground's plotly figures: one input's layers, its attributions, its attacks, and the test-set curves
under attack and corruption. Each takes what `core.playground` returns and only lays it out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.summaries import symmetric_limit
from dashboard.figures import DIVERGING, PALETTE, square_axes

# Attributions over the input: blue against the class, red for it, zero fully transparent.
OVERLAY_SCALE = [[0.0, "rgba(33,102,172,0.95)"], [0.5, "rgba(255,255,255,0)"], [1.0, "rgba(178,24,43,0.95)"]]
PIXELS = 300  # a single image's plot, square


def unit_grid(grid: np.ndarray, title: str) -> go.Figure:
    """A layer's units as a grid of cells coloured by activation (zero-centred when some are negative)."""
    rows, columns = grid.shape
    negative = np.nanmin(grid) < 0
    limit = symmetric_limit(np.nan_to_num(grid))
    unit = np.arange(rows * columns).reshape(rows, columns)
    fig = go.Figure(go.Heatmap(
        z=grid, customdata=unit, colorscale=DIVERGING if negative else "Viridis",
        zmid=0 if negative else None, zmin=-limit if negative else 0, zmax=limit if negative else None,
        hovertemplate="unit %{customdata}: %{z:.3f}<extra></extra>", colorbar=dict(thickness=12)))
    fig.update_layout(title=dict(text=title, font_size=13), height=PIXELS, width=PIXELS + 60,
                      margin=dict(l=10, r=10, t=40, b=10))
    return square_axes(fig)


def contribution_bars(contributions: np.ndarray, unit_titles: Sequence[str], class_titles: Sequence[str]) -> go.Figure:
    """Each of the strongest inputs of the output layer (rows of `contributions`, (units, 2)): its contribution
    (value × weight) to the predicted class and to the runner-up, side by side."""
    fig = go.Figure([go.Bar(x=list(unit_titles), y=contributions[:, i], name=title, marker_color=PALETTE[i],
                            hovertemplate="%{x}: %{y:+.3f}<extra>" + title + "</extra>")
                     for i, title in enumerate(class_titles)])
    fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis_title="contribution to the logit", legend=dict(orientation="h", y=1.12))
    return fig


def attribution(image: np.ndarray, attributions: np.ndarray, title: str) -> go.Figure:
    """The input (grey), the attribution map on a zero-centred diverging scale, and the map over the input."""
    limit = symmetric_limit(attributions) or 1.0
    fig = make_subplots(rows=1, cols=3, subplot_titles=("input", title, "over the input"), horizontal_spacing=0.04)
    grey = dict(z=image, colorscale="gray", zmin=0, zmax=1, showscale=False, hoverinfo="skip")
    scale = dict(zmin=-limit, zmax=limit, zmid=0, hovertemplate="%{z:+.4f}<extra></extra>")
    fig.add_trace(go.Heatmap(**grey), row=1, col=1)
    fig.add_trace(go.Heatmap(z=attributions, colorscale=DIVERGING, colorbar=dict(thickness=12), **scale),
                  row=1, col=2)
    fig.add_trace(go.Heatmap(**grey), row=1, col=3)
    fig.add_trace(go.Heatmap(z=attributions, colorscale=OVERLAY_SCALE, showscale=False, **scale), row=1, col=3)
    fig.update_layout(height=PIXELS, margin=dict(l=10, r=10, t=30, b=10))
    return square_axes(fig)


def attack_images(original: np.ndarray, perturbed: np.ndarray, titles: Sequence[str]) -> go.Figure:
    """The input, the perturbation (diverging, zero white) and the perturbed input."""
    change = perturbed - original
    limit = symmetric_limit(change) or 1.0
    fig = make_subplots(rows=1, cols=3, subplot_titles=list(titles), horizontal_spacing=0.04)
    for col, image in ((1, original), (3, perturbed)):
        fig.add_trace(go.Heatmap(z=image, colorscale="gray", zmin=0, zmax=1, showscale=False,
                                 hovertemplate="%{z:.2f}<extra></extra>"), row=1, col=col)
    fig.add_trace(go.Heatmap(z=change, colorscale=DIVERGING, zmin=-limit, zmax=limit, zmid=0,
                             colorbar=dict(thickness=12), hovertemplate="%{z:+.3f}<extra></extra>"), row=1, col=2)
    fig.update_layout(height=PIXELS, margin=dict(l=10, r=10, t=30, b=10))
    return square_axes(fig)


def accuracy_against(x: Sequence[float], curves: dict[str, Sequence[float]], x_title: str) -> go.Figure:
    """Test accuracy against ε or severity: one line per run."""
    fig = go.Figure([go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=name,
                                line=dict(color=PALETTE[i % len(PALETTE)]),
                                hovertemplate=f"{x_title} %{{x:g}}: %{{y:.2%}}<extra>{name}</extra>")
                     for i, (name, y) in enumerate(curves.items())])
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=20, b=10), legend=dict(orientation="h", y=-0.25),
                      xaxis_title=x_title, yaxis=dict(title="test accuracy", tickformat=".0%", range=[0, 1.02]))
    return fig


def robustness_curves(severities: Sequence[float], curves: dict[str, dict[str, Sequence[float]]]) -> go.Figure:
    """One small chart per corruption, test accuracy against severity, one line per run (the same colour in each)."""
    corruptions = list(curves)
    columns = min(4, len(corruptions))
    rows = -(-len(corruptions) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=corruptions, shared_yaxes=True,
                        horizontal_spacing=0.04, vertical_spacing=0.6 / rows / max(rows, 2))
    runs = list(dict.fromkeys(run for by_run in curves.values() for run in by_run))
    for i, corruption in enumerate(corruptions):
        r, c = divmod(i, columns)
        for run, accuracy in curves[corruption].items():
            colour = PALETTE[runs.index(run) % len(PALETTE)]
            fig.add_trace(go.Scatter(x=list(severities), y=list(accuracy), mode="lines+markers", name=run,
                                     legendgroup=run, showlegend=i == 0, line=dict(color=colour),
                                     hovertemplate=f"severity %{{x:g}}: %{{y:.2%}}<extra>{run}</extra>"),
                          row=r + 1, col=c + 1)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    fig.update_xaxes(title_text="severity", title_standoff=2)
    fig.update_layout(height=260 * rows + 60, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=-0.12))
    return fig


def coverage(answered: np.ndarray, accuracy: np.ndarray, thresholds: np.ndarray, marked: int | None,
             target: float) -> go.Figure:
    """Accuracy on the answered images against the share answered, as the confidence threshold rises; the point
    that first reaches `target` accuracy marked."""
    fig = go.Figure(go.Scatter(x=answered, y=accuracy, mode="lines", name="answered", customdata=thresholds,
                               hovertemplate="threshold %{customdata:.3f}: answers %{x:.1%}, "
                                             "%{y:.2%} right<extra></extra>"))
    if marked is not None:
        fig.add_trace(go.Scatter(x=[answered[marked]], y=[accuracy[marked]], mode="markers+text",
                                 marker=dict(size=11, color="#d62728"), name=f"{target:.0%} accurate",
                                 text=[f"threshold {thresholds[marked]:.3f}"], textposition="bottom left",
                                 hoverinfo="skip"))
    fig.add_hline(y=target, line_dash="dot", line_color="#7f7f7f")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=20, b=10), showlegend=False,
                      xaxis=dict(title="coverage (share of test images answered)", tickformat=".0%",
                                 autorange="reversed"),
                      yaxis=dict(title="accuracy on those answered", tickformat=".1%"))
    return fig
