"""The plotly figure builders every page shares. Each takes what `core` returns and only lays it out.

Sections: training curves · evaluation (confusion, per-class, probabilities) · images and weights.
Add new builders at the end, in a section of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.data.spec import DataSpec
from core.experiments.overfitting import gap_points
from core.summaries import symmetric_limit
from core.training.runs import Run
from dashboard.axes import log_axis_range, spans_decades

PALETTE = qualitative.Plotly
DIVERGING = "RdBu_r"  # negative blue, zero white, positive red
GRID_WIDTH = 900  # image grids: the width (pixels) their square cells are laid out for
GRID_TITLE_BAND = 24  # pixels above each row of an image grid, for the titles
GRID_COLOURBAR_MARGIN = 70  # the right margin of an image grid, which holds its colour bar
GRID_COLOURBAR_MAX_LENGTH = 400  # pixels: a tall grid's colour bar stays beside its first rows
LABEL_INSIDE_FROM = 0.3  # per-class accuracy bars at least this tall hold their label inside
LABELLED_BARS_MAX = 12  # with more classes the bars are too narrow for labels: their accuracy is in the hover
CURVES_PLOT_HEIGHT = 360  # training curves: pixels for the plots and their titles, without the legend
CURVES_AXIS_TITLE_BAND = 50  # pixels under the plots for the tick labels and axis titles
CURVES_LEGEND_ROW = 22  # pixels per legend row
EXPORT_WIDTH = 700  # pixels: the width charts are saved at (plotly's default; the app draws them wider)
LEGEND_PX_PER_CHAR, LEGEND_PX_PER_ENTRY = 7, 60  # a legend entry's width: its name's, plus its line sample and gap


def square_axes(fig: go.Figure) -> go.Figure:
    """Images: no ticks or tick labels, y pointing down, square pixels, each plot area shrunk to its image."""
    plain = dict(showticklabels=False, ticks="", showgrid=False, zeroline=False, showline=False, constrain="domain")
    fig.update_xaxes(**plain)
    fig.update_yaxes(**plain, autorange="reversed", scaleanchor="x")
    return fig


# ---------------------------------------------------------------------------------------------- training curves


def training_curves(runs: Sequence[Run]) -> go.Figure:
    """Loss and accuracy against updates: each run one colour, training solid, validation dashed with markers; the
    loss on a log axis when its values span decades. The legend, below the plots, names each run once (clicking
    it hides both its curves) after a key to the two line styles, and the figure grows by its rows."""
    log_loss = spans_decades([row[key] for run in runs for row in run.history for key in ("train_loss", "val_loss")
                              if row[key] is not None])
    loss_title = "Loss (cross-entropy, log scale)" if log_loss else "Loss (cross-entropy)"
    fig = make_subplots(rows=1, cols=2, subplot_titles=(loss_title, "Accuracy"), horizontal_spacing=0.08)
    for style, dash, symbol in (("training", "solid", "circle"), ("validation", "dash", "diamond")):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines+markers", name=style, hoverinfo="skip",
                                 line=dict(color="#7f7f7f", dash=dash), marker_symbol=symbol), row=1, col=1)
    for i, run in enumerate(runs):
        colour = PALETTE[i % len(PALETTE)]
        validated = [row for row in run.history if row["val_accuracy"] is not None]
        for col, metric in ((1, "loss"), (2, "accuracy")):
            fig.add_trace(go.Scatter(
                x=[row["step"] for row in run.history], y=[row[f"train_{metric}"] for row in run.history],
                mode="lines+markers", marker_size=4, line=dict(color=colour), name=run.name, legendgroup=run.name,
                showlegend=col == 1,
                hovertemplate=f"{run.name} · training {metric}: %{{y:.4g}} at update %{{x}}<extra></extra>",
            ), row=1, col=col)
            fig.add_trace(go.Scatter(
                x=[row["step"] for row in validated], y=[row[f"val_{metric}"] for row in validated],
                mode="lines+markers", line=dict(color=colour, dash="dash"), marker_symbol="diamond",
                name=f"{run.name} · validation", legendgroup=run.name, showlegend=False,
                hovertemplate=f"{run.name} · validation {metric}: %{{y:.4g}} at update %{{x}}<extra></extra>",
            ), row=1, col=col)
    fig.update_xaxes(title_text="updates (optimiser steps)", automargin=True)
    fig.update_yaxes(automargin=True)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    if log_loss:
        fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    longest = max((len(run.name) for run in runs), default=0)
    per_row = max(1, EXPORT_WIDTH // (LEGEND_PX_PER_CHAR * longest + LEGEND_PX_PER_ENTRY))
    legend_height = CURVES_LEGEND_ROW * -(-(len(runs) + 2) // per_row)
    # the legend sits in the bottom margin, under the axis titles, however many rows it takes; the left margin
    # holds the loss tick labels even where an exporter does not apply automargin
    fig.update_layout(height=CURVES_PLOT_HEIGHT + legend_height,
                      margin=dict(l=50, r=20, t=40, b=CURVES_AXIS_TITLE_BAND + legend_height),
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left"))
    return fig


# ---------------------------------------------------------------------------------------------- evaluation


def _class_axis(spec: DataSpec) -> dict:
    """An axis with one tick per class (at 0 .. classes-1), labelled by the class names."""
    return dict(tickvals=list(range(spec.num_classes)), ticktext=list(spec.class_names))


def confusion_heatmap(matrix: np.ndarray, spec: DataSpec, *, percentages: bool) -> go.Figure:
    """The confusion matrix (rows true, columns predicted) with a clickable point on every cell; cells are at the
    class indices, labelled by the class names."""
    classes = list(range(spec.num_classes))
    text = [[f"{v:.1f}%" if percentages else f"{int(v)}" for v in row] for row in matrix]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=classes, y=classes, text=text, texttemplate="%{text}", colorscale="Blues", hoverinfo="skip",
        colorbar=dict(title="% of row" if percentages else "images"),
    ))
    cells_x, cells_y = np.meshgrid(classes, classes)
    names = np.asarray(spec.class_names, dtype=object)
    fig.add_trace(go.Scatter(  # invisible markers on the cells: they carry the hover label and make cells clickable
        x=cells_x.ravel(), y=cells_y.ravel(), mode="markers",
        customdata=np.stack([np.ravel(text), names[cells_y.ravel()], names[cells_x.ravel()]], axis=-1),
        marker=dict(size=28 * 10 / max(spec.num_classes, 10), opacity=0.01, symbol="square"), showlegend=False,
        hovertemplate="true %{customdata[1]}, predicted %{customdata[2]}: %{customdata[0]}<extra></extra>",
    ))
    last = spec.num_classes - 0.5
    fig.update_xaxes(title_text=f"predicted {spec.class_noun}", **_class_axis(spec), side="top", range=[-0.5, last],
                     showgrid=False, constrain="domain")
    fig.update_yaxes(title_text=f"true {spec.class_noun}", **_class_axis(spec), range=[last, -0.5], scaleanchor="x",
                     showgrid=False, constrain="domain")
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=10), clickmode="event+select", dragmode=False)
    return fig


def per_class_accuracy(accuracy: np.ndarray, spec: DataSpec) -> go.Figure:
    """Accuracy on the images of each true class, bars from 0% ("no images" where the test set has none)."""
    # labels run up the bars, so they stay large however narrow the column: inside a bar tall enough to hold
    # one, above a short bar (never clipped by the axes)
    heights = np.nan_to_num(accuracy)  # (no bar where there are no images)
    texts = ["no images" if np.isnan(a) else f"{a:.1%}" for a in accuracy]
    fig = go.Figure(go.Bar(
        x=list(range(spec.num_classes)), y=heights, text=texts if spec.num_classes <= LABELLED_BARS_MAX else None,
        textangle=-90, insidetextanchor="end", constraintext="none",
        textposition=["inside" if a >= LABEL_INSIDE_FROM else "outside" for a in heights],
        cliponaxis=False, textfont_size=15, insidetextfont_color="white", outsidetextfont_color="#31333f",
        customdata=texts, hovertemplate="%{customdata}<extra></extra>"))
    fig.update_xaxes(title_text=f"true {spec.class_noun}", tickangle=0, **_class_axis(spec))
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.02])
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=20, b=10))
    return fig


def probability_bars(probabilities: np.ndarray, true_class: int | None, predicted_class: int,
                     spec: DataSpec) -> go.Figure:
    """Every class's probability for one image; the true class green, a wrong prediction red (blue when the true
    class is not known: a drawing)."""
    classes = list(range(spec.num_classes))
    predicted_colour = "#1f77b4" if true_class is None else "#d62728"
    colours = ["#2ca02c" if c == true_class else predicted_colour if c == predicted_class else "#9aa5b1"
               for c in classes]
    texts = [f"{p:.1%}" for p in probabilities]
    fig = go.Figure(go.Bar(x=classes, y=probabilities, marker_color=colours, textposition="outside",
                           text=texts if spec.num_classes <= LABELLED_BARS_MAX else None,
                           customdata=texts, hovertemplate="%{customdata}<extra></extra>"))
    roles = {predicted_class: "predicted", true_class: "true"}  # the true class is named even at 0%, its bar unseen
    fig.update_xaxes(title_text=spec.class_noun, tickvals=classes, tickangle=0,
                     ticktext=[f"{name}<br>{roles[c]}" if c in roles else name
                               for c, name in enumerate(spec.class_names)])
    fig.update_yaxes(title_text="probability", range=[0, 1.1], tickformat=".0%")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=20, b=10))
    return fig


# ---------------------------------------------------------------------------------------------- images and weights


def digit_gallery(tile: np.ndarray, spec: DataSpec) -> go.Figure:
    """A tiled grid of images, one row per class, rows labelled by the class names."""
    rows, classes = tile.shape[0], spec.num_classes
    fig = go.Figure(go.Heatmap(z=tile, colorscale="gray_r", showscale=False, hoverinfo="skip"))
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(tickvals=[(r + 0.5) * rows / classes - 1 for r in range(classes)], ticktext=list(spec.class_names),
                     showgrid=False, zeroline=False, autorange="reversed", scaleanchor="x", title_text=spec.class_noun)
    fig.update_layout(height=60 * classes, margin=dict(l=10, r=10, t=10, b=10), title=None)
    return fig


def image_grid(images: np.ndarray, titles: Sequence[str], *, columns: int, diverging: bool = True,
               width: int = GRID_WIDTH, colorscale: str = "Viridis") -> go.Figure:
    """Small heatmaps (n, h, w) in a grid, on one shared colour scale, sized so that at `width` pixels (the
    figure's width in exports; the app stretches it to the page) each image fills a square cell.

    diverging: weights, on a zero-centred red/blue scale; otherwise activations or pixels, on `colorscale`.
    """
    rows = max(1, -(-len(images) // columns))
    margin, spacing = dict(l=10, r=GRID_COLOURBAR_MARGIN, t=GRID_TITLE_BAND, b=10), 0.02
    cell = (width - margin["l"] - margin["r"]) * (1 - (columns - 1) * spacing) / columns
    plot_height = rows * cell + (rows - 1) * GRID_TITLE_BAND
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=spacing,
                        vertical_spacing=GRID_TITLE_BAND / plot_height)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        fig.add_trace(go.Heatmap(z=image, coloraxis="coloraxis", hovertemplate="%{z:.3f}<extra></extra>"),
                      row=r + 1, col=c + 1)
    if diverging:
        limit = symmetric_limit(images)
        fig.update_layout(coloraxis=dict(colorscale=DIVERGING, cmin=-limit, cmax=limit, cmid=0))
    else:
        fig.update_layout(coloraxis=dict(colorscale=colorscale))
    fig.update_layout(coloraxis_colorbar=dict(thickness=14, xpad=8, y=1, yanchor="top",
                                              len=min(1.0, GRID_COLOURBAR_MAX_LENGTH / plot_height)))
    fig.update_annotations(font_size=11)
    fig.update_layout(width=width, height=round(plot_height) + margin["t"] + margin["b"], margin=margin,
                      plot_bgcolor="rgba(0,0,0,0)")
    return square_axes(fig)


def outgoing_weight_bars(weights: np.ndarray, titles: Sequence[str], class_names: Sequence[str], *,
                         columns: int) -> go.Figure:
    """For each hidden unit (row of `weights`, shape (units, classes)), its weights into every output as bars."""
    n = len(weights)
    rows = max(1, -(-n // columns))
    limit = symmetric_limit(weights)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=0.03,
                        vertical_spacing=0.15 / rows)
    for i, row in enumerate(weights):
        r, c = divmod(i, columns)
        fig.add_trace(go.Bar(x=list(class_names), y=row, marker_color=np.where(row >= 0, "#d62728", "#1f77b4"),
                             showlegend=False, hovertemplate="to %{x}: %{y:.3f}<extra></extra>"), row=r + 1, col=c + 1)
    fig.update_xaxes(type="category", tickfont_size=9)
    fig.update_yaxes(range=[-limit * 1.05, limit * 1.05], tickfont_size=9)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=170 * rows + 30, margin=dict(l=10, r=10, t=30, b=10))
    return fig


# --- gradient lab ---


def error_vs_h(points: Sequence, best: dict[str, float]) -> go.Figure:
    """Log-log total and max absolute error of central differences against h, per precision, best h starred."""
    fig = go.Figure()
    for i, dtype in enumerate(dict.fromkeys(p.dtype for p in points)):
        rows = [p for p in points if p.dtype == dtype]
        colour = PALETTE[i % len(PALETTE)]
        h = [p.h for p in rows]
        fig.add_scatter(x=h, y=[p.total_abs_error for p in rows], mode="lines+markers", name=f"{dtype}: total |error|",
                        line=dict(color=colour))
        fig.add_scatter(x=h, y=[p.max_abs_error for p in rows], mode="lines+markers", name=f"{dtype}: max |error|",
                        line=dict(color=colour, dash="dot"))
        star = next(p for p in rows if p.h == best[dtype])
        fig.add_scatter(x=[star.h], y=[star.total_abs_error], mode="markers", name=f"{dtype}: best h = {star.h:.0e}",
                        marker=dict(symbol="star", size=16, color=colour, line=dict(color="black", width=1)))
    fig.update_xaxes(type="log", title="step size h", autorange="reversed", exponentformat="power")
    fig.update_yaxes(type="log", title="absolute error (approx − analytic)", exponentformat="power")
    fig.update_layout(height=420, margin=dict(t=30, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def difference_histograms(differences: dict[str, np.ndarray]) -> go.Figure:
    """One histogram of (approx − analytic) per parameter tensor."""
    fig = make_subplots(rows=1, cols=len(differences), subplot_titles=list(differences))
    for i, values in enumerate(differences.values()):
        fig.add_histogram(x=values, nbinsx=40, row=1, col=i + 1, showlegend=False,
                          marker_color=PALETTE[i % len(PALETTE)])
    fig.update_xaxes(exponentformat="e", title_text="approx − analytic")
    fig.update_yaxes(title_text="weights", col=1)
    fig.update_layout(height=320, margin=dict(t=40, b=50), bargap=0.05)
    return fig


def hand_training_accuracy(runs: dict[str, object]) -> go.Figure:
    """Validation accuracy against step for gradient descent driven by each hand gradient (NaN = diverged). The
    first (the correct gradient) is dashed and drawn last, so it stays visible where the curves coincide."""
    fig = go.Figure()
    for i, (label, run) in reversed(list(enumerate(runs.items()))):
        fig.add_scatter(x=run.steps, y=run.accuracy, mode="lines+markers", name=label, legendrank=i,
                        line=dict(color=PALETTE[i % len(PALETTE)], dash="dash" if i == 0 else "solid"))
    fig.update_yaxes(title="validation accuracy", range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title="step")
    fig.update_layout(height=360, margin=dict(t=30, b=40))
    return fig


def timing_chart(rows: Sequence, titles: dict[str, str], vary: str) -> go.Figure:
    """Log-log seconds per gradient against batch size or hidden width (`vary`); extrapolated points hollow."""
    fig = go.Figure()
    for i, method in enumerate(titles):
        mine = sorted((r for r in rows if r.method == method), key=lambda r: getattr(r, vary))
        if not mine:
            continue
        fig.add_scatter(
            x=[getattr(r, vary) for r in mine], y=[r.seconds for r in mine], mode="lines+markers", name=titles[method],
            line=dict(color=PALETTE[i % len(PALETTE)]),
            marker=dict(size=10, symbol=["circle-open" if r.extrapolated else "circle" for r in mine]),
            hovertext=["extrapolated" if r.extrapolated else "measured" for r in mine])
    sizes = sorted({getattr(r, vary) for r in rows})
    fig.update_xaxes(type="log", title={"batch_size": "batch size", "hidden": "hidden width"}[vary],
                     range=log_axis_range(sizes), tickvals=sizes)
    fig.update_yaxes(type="log", title="seconds per gradient (hollow = extrapolated)", dtick=1,
                     exponentformat="power")
    fig.update_layout(height=420, margin=dict(t=30, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def landscape_contour(landscape, paths: dict[str, object], titles: dict[str, str], *,
                      center_label: str = "trained values") -> go.Figure:
    """The cost over two weights as filled contours, each optimiser's path step by step (its legend entry says so
    when it leaves the computed grid, where the plot cuts it) and the trained point on top."""
    first, second = landscape.pair
    fig = go.Figure(go.Contour(x=landscape.first, y=landscape.second, z=landscape.cost, colorscale="Viridis",
                               ncontours=30, colorbar=dict(title="cost")))
    low = np.array([landscape.first[0], landscape.second[0]])
    high = np.array([landscape.first[-1], landscape.second[-1]])
    for i, (name, path) in enumerate(paths.items()):
        leaves = bool(np.any((path.points < low) | (path.points > high)))
        fig.add_scatter(x=path.points[:, 0], y=path.points[:, 1], mode="lines+markers",
                        name=titles[name] + (" (leaves the plotted area)" if leaves else ""),
                        line=dict(color=PALETTE[(i + 1) % len(PALETTE)], width=2), marker=dict(size=5))
    fig.add_scatter(x=[landscape.center[0]], y=[landscape.center[1]], mode="markers", name=center_label,
                    marker=dict(symbol="x", size=14, color="white", line=dict(color="black", width=2)))
    fig.update_xaxes(title=first.label(), range=[landscape.first[0], landscape.first[-1]])
    fig.update_yaxes(title=second.label(), range=[landscape.second[0], landscape.second[-1]])
    fig.update_layout(height=520, margin=dict(t=30, b=40), legend=dict(orientation="h", y=-0.15))
    return fig


def path_costs(paths: dict[str, object], titles: dict[str, str]) -> go.Figure:
    """The cost at each step of each optimiser."""
    fig = go.Figure()
    for i, (name, path) in enumerate(paths.items()):
        fig.add_scatter(y=path.costs, mode="lines+markers", name=titles[name],
                        line=dict(color=PALETTE[(i + 1) % len(PALETTE)]), marker=dict(size=4))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="cost")
    fig.update_layout(height=520, margin=dict(t=30, b=40), legend=dict(orientation="h", y=-0.15))
    return fig


# --- experiments ---


def generalisation_gap(sizes: Sequence[int], train: Sequence[float | None], val: Sequence[float | None]) -> go.Figure:
    """Final training vs validation accuracy against training-set size (log axis), the gap shaded and labelled."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(sizes), y=list(val), mode="lines+markers", name="validation",
                             line=dict(color=PALETTE[1])))
    fig.add_trace(go.Scatter(x=list(sizes), y=list(train), mode="lines+markers", name="training", fill="tonexty",
                             fillcolor="rgba(239,85,59,0.15)", line=dict(color=PALETTE[0])))
    for size, t, v in zip(sizes, train, val):
        if gap_points(t, v) is not None:
            fig.add_annotation(x=np.log10(size), y=(t + v) / 2, text=f"gap {gap_points(t, v):.1f} pt", showarrow=False,
                               xshift=34, font=dict(size=11))
    fig.update_xaxes(type="log", title="training images", tickvals=list(sizes), ticktext=[f"{s:,}" for s in sizes])
    fig.update_yaxes(title="final accuracy", tickformat=".0%")
    fig.update_layout(title="Generalisation gap: training minus validation accuracy", height=420,
                      margin=dict(t=60, b=40), legend=dict(orientation="h", y=-0.2))
    return fig


def learning_curves_side_by_side(titles: Sequence[str], runs: Sequence[Run],
                                 final_train: Sequence[float | None]) -> go.Figure:
    """One panel per run: training accuracy (running, per chunk) and validation accuracy against epochs, and a
    bracket from the final validation accuracy to the final network's training accuracy (`final_train`)."""
    fig = make_subplots(rows=1, cols=max(len(runs), 1), subplot_titles=list(titles), shared_yaxes=True,
                        horizontal_spacing=0.03)
    for col, (run, train) in enumerate(zip(runs, final_train), start=1):
        validated = [row for row in run.history if row["val_accuracy"] is not None]
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in run.history], y=[r["train_accuracy"] for r in run.history],
                                 mode="lines", name="training", line=dict(color=PALETTE[0]), legendgroup="train",
                                 showlegend=col == 1), row=1, col=col)
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in validated], y=[r["val_accuracy"] for r in validated],
                                 mode="lines+markers", name="validation", line=dict(color=PALETTE[1], dash="dash"),
                                 legendgroup="val", showlegend=col == 1), row=1, col=col)
        val = run.val_accuracy
        if train is not None and val is not None:
            end = run.history[-1]["epoch"]
            fig.add_trace(go.Scatter(x=[end, end], y=[val, train], mode="lines", line=dict(color="black", width=3),
                                     name="gap", legendgroup="gap", showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(tickformat=".0%", row=1, col=1, title="accuracy")
    fig.update_layout(height=380, margin=dict(t=50, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def sweep_parallel_coordinates(table: Sequence[dict]) -> go.Figure:
    """Hyperparameters (learning rate on a log axis, momentum where the optimiser has one, seed) against
    validation accuracy (test accuracy when no variant has one), one line per variant that has it (diverged
    variants have none and are left out)."""
    metric, title = ("val_accuracy", "validation") if any(row["val_accuracy"] is not None for row in table) else (
        "test_accuracy", "test")
    rows = [row for row in table if row[metric] is not None]
    rates = sorted({row["learning_rate"] for row in rows})
    accuracy = [row[metric] for row in rows]
    dimensions = [
        dict(label="learning rate (log scale)", values=[float(np.log10(row["learning_rate"])) for row in rows],
             tickvals=[float(np.log10(r)) for r in rates], ticktext=[f"{r:g}" for r in rates]),
        *([dict(label="momentum", values=[row["momentum"] for row in rows],
                tickvals=sorted({row["momentum"] for row in rows}))]  # ticks at the swept values only
          if any(row["momentum"] is not None for row in rows) else []),
        dict(label="seed", values=[row["seed"] for row in rows], tickvals=sorted({row["seed"] for row in rows})),
        dict(label=f"{title} accuracy", values=accuracy, tickformat=".1%"),
    ]
    fig = go.Figure(go.Parcoords(line=dict(color=accuracy, colorscale="Viridis", showscale=True,
                                           colorbar=dict(title=f"{title}<br>accuracy", tickformat=".0%")),
                                 dimensions=dimensions))
    fig.update_layout(height=380, margin=dict(t=60, l=60, r=60, b=30))
    return fig


def reproduction_dots(rows: Sequence[dict]) -> go.Figure:
    """Reported vs measured test accuracy per preset, as dots (the axis zooms in on the values, so no bars that
    would exaggerate the gaps; presets without a reported number show ours only). Each run of a preset is a dot;
    a row's `caveat` (a quick check on a subset, a stopped run) makes its dots hollow and is in their hover text."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[row["preset"] for row in rows], y=[row["reported"] for row in rows], name="reported",
                             mode="markers", marker=dict(color=PALETTE[2], size=13, symbol="diamond")))
    for caveat, name, symbol in ((False, "Digit Lab", "circle"), (True, "Digit Lab (quick check or stopped)",
                                                                 "circle-open")):
        dots = [(row["preset"], accuracy, f"{run}: {row['caveat'] or 'as reported'}")
                for row in rows if bool(row["caveat"]) == caveat for run, accuracy in row["runs"].items()]
        if dots:
            x, y, text = zip(*dots)
            fig.add_trace(go.Scatter(x=x, y=y, text=text, name=name, mode="markers", hovertemplate="%{text}: %{y:.2%}",
                                     marker=dict(color=PALETTE[0], size=13, symbol=symbol, line=dict(width=2))))
    measured = [a for row in rows for a in (row["reported"], *row["runs"].values()) if a is not None]
    low = max(0.0, min(measured) - 0.02) if measured else 0.0
    fig.update_yaxes(range=[low, 1.0], tickformat=".1%", title="test accuracy")
    fig.update_layout(height=380, margin=dict(t=30, b=40), legend=dict(orientation="h", y=1.1))
    return fig


# ---------------------------------------------------------------------------------------------- embeddings and data


def embedding_scatter(points: np.ndarray, indices: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                      spec: DataSpec, *, axis_titles: tuple[str, str]) -> go.Figure:
    """Test digits as points (n, 2), one colour per true class; the misclassified ringed in black on top. Each
    point's customdata starts with its test index (what a selection reads); its hover names the digit, its true
    class and the prediction."""
    names = np.asarray(spec.class_names, dtype=object)
    customdata = np.stack([indices, names[labels], names[predictions]], axis=-1)
    hover = (f"test #%{{customdata[0]}}: {spec.class_noun} %{{customdata[1]}}, predicted %{{customdata[2]}}"
             "<extra></extra>")
    fig = go.Figure()
    for c, name in enumerate(spec.class_names):
        mine = labels == c
        fig.add_trace(go.Scattergl(x=points[mine, 0], y=points[mine, 1], mode="markers", name=name,
                                   marker=dict(color=PALETTE[c % len(PALETTE)], size=4, opacity=0.75),
                                   customdata=customdata[mine], hovertemplate=hover))
    wrong = labels != predictions
    fig.add_trace(go.Scattergl(x=points[wrong, 0], y=points[wrong, 1], mode="markers",
                               name=f"misclassified ({wrong.sum():,})",
                               marker=dict(symbol="circle-open", color="black", size=8, line_width=1),
                               customdata=customdata[wrong], hovertemplate=hover))
    fig.update_xaxes(title_text=axis_titles[0], zeroline=False, showticklabels=False)
    fig.update_yaxes(title_text=axis_titles[1], zeroline=False, showticklabels=False)
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=10, b=10), dragmode="select",
                      legend=dict(title=f"true {spec.class_noun}", itemsizing="constant"))
    return fig


def grey_level_histogram(counts: np.ndarray) -> go.Figure:
    """How many pixels take each grey level (0 = background), on a log axis: most pixels are blank."""
    fig = go.Figure(go.Bar(x=np.arange(len(counts)), y=counts, marker_color=PALETTE[0], marker_line_width=0,
                           hovertemplate="grey level %{x}: %{y:,} pixels<extra></extra>"))
    fig.update_xaxes(title_text="grey level (0 blank … 255 full ink)")
    fig.update_yaxes(title_text="pixels (log scale)", type="log", exponentformat="power")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), bargap=0)
    return fig
