"""The plotly figure builders' layouts (dashboard.figures): what exports and the app draw."""

import numpy as np
import plotly.graph_objects as go
import pytest

from core.data.spec import MNIST_SPEC, DataSpec
from core.data.splits import SplitConfig
from core.networks.base import ModelConfig
from core.training.config import RunConfig, TrainConfig
from core.training.runs import Run
from dashboard import figures


def test_per_class_bars_start_at_zero_and_no_label_is_clipped():
    accuracy = np.array([0.95, 0.97, 0.8, 0.7, 0.75, 0.19, 0.9, 0.85, 0.6, 0.02])
    bar = figures.per_class_accuracy(accuracy, MNIST_SPEC)
    assert bar.layout.yaxis.range[0] == 0
    trace = bar.data[0]
    assert trace.cliponaxis is False
    assert [p for a, p in zip(accuracy, trace.textposition) if a < figures.LABEL_INSIDE_FROM] == ["outside", "outside"]
    assert {p for a, p in zip(accuracy, trace.textposition) if a >= figures.LABEL_INSIDE_FROM} == {"inside"}


def test_a_digit_without_test_images_is_labelled_so_not_drawn_as_zero_accuracy():
    accuracy = np.full(10, 0.9)
    accuracy[7] = np.nan
    bar = figures.per_class_accuracy(accuracy, MNIST_SPEC).data[0]
    assert bar.text[7] == "no images" and bar.y[7] == 0 and bar.text[6] == "90.0%"


def test_training_curves_leave_room_for_the_tick_labels():
    run = Run("run", RunConfig(ModelConfig(), SplitConfig(), TrainConfig()), MNIST_SPEC, history=[
        dict(step=s, epoch=s / 10, train_loss=2.3 / (s + 1), train_accuracy=0.5, val_loss=None, val_accuracy=None,
             learning_rate=1e-3, elapsed=s, samples_per_second=1.0) for s in range(5)])
    curves = figures.training_curves([run])
    assert curves.layout.margin.l >= 40
    assert all(axis.automargin for axis in (curves.layout.yaxis, curves.layout.yaxis2, curves.layout.xaxis))


def _run_with_losses(name: str, losses) -> Run:
    return Run(name, RunConfig(ModelConfig(), SplitConfig(), TrainConfig()), MNIST_SPEC, history=[
        dict(step=s + 1, epoch=s / 10, train_loss=loss, train_accuracy=0.5, val_loss=None, val_accuracy=None,
             learning_rate=1e-3, elapsed=s, samples_per_second=1.0) for s, loss in enumerate(losses)])


def test_the_loss_axis_turns_logarithmic_when_one_run_s_loss_is_decades_above_the_others():
    sane = _run_with_losses("lr 0.1", [2.3, 0.8, 0.4])
    assert figures.training_curves([sane]).layout.yaxis.type in (None, "linear")
    exploded = _run_with_losses("lr 1e9", [2.3, 1.5e10, 3e9])
    both = figures.training_curves([sane, exploded])
    assert both.layout.yaxis.type == "log" and "log scale" in both.layout.annotations[0].text
    assert both.layout.yaxis2.type in (None, "linear")  # accuracy stays linear


def _axes(fig, kind: str) -> list:
    return [fig.layout[name] for name in fig.layout if name.startswith(kind) and fig.layout[name].domain]


@pytest.mark.parametrize("count, columns", [(10, 5), (36, 6), (6, 6), (16, 8)])
def test_image_grid_cells_are_square_and_have_no_ticks(count, columns):
    images = np.random.default_rng(0).normal(size=(count, 28, 28))
    grid = figures.image_grid(images, [f"unit {i}" for i in range(count)], columns=columns)
    layout = grid.layout
    plot_width = layout.width - layout.margin.l - layout.margin.r
    plot_height = layout.height - layout.margin.t - layout.margin.b
    for x, y in zip(_axes(grid, "xaxis"), _axes(grid, "yaxis")):
        width = (x.domain[1] - x.domain[0]) * plot_width
        height = (y.domain[1] - y.domain[0]) * plot_height
        assert height == pytest.approx(width, abs=1)  # no empty band above or below the image
    for axis in _axes(grid, "xaxis") + _axes(grid, "yaxis"):
        assert axis.ticks == "" and axis.showticklabels is False and axis.constrain == "domain"


def sweep_row(lr, momentum, val, test=0.9, seed=0):
    return {"variant": f"lr {lr}", "learning_rate": lr, "momentum": momentum, "seed": seed, "val_accuracy": val,
            "test_accuracy": test, "status": "finished", "train_seconds": 1.0}


def test_sweep_chart_shows_momentum_only_where_the_optimiser_has_one():
    labels = lambda fig: [d.label for d in fig.data[0].dimensions]  # noqa: E731
    with_momentum = figures.sweep_parallel_coordinates([sweep_row(0.1, 0.9, 0.8), sweep_row(0.01, 0.5, 0.7)])
    assert labels(with_momentum) == ["learning rate (log scale)", "momentum", "seed", "validation accuracy"]
    adam = figures.sweep_parallel_coordinates([sweep_row(0.1, None, 0.8), sweep_row(0.01, None, 0.7)])
    assert labels(adam) == ["learning rate (log scale)", "seed", "validation accuracy"]
    unvalidated = figures.sweep_parallel_coordinates([sweep_row(0.1, None, None, 0.85), sweep_row(0.01, None, None)])
    assert labels(unvalidated)[-1] == "test accuracy" and list(unvalidated.data[0].dimensions[-1].values) == [0.85, 0.9]
    diverged = figures.sweep_parallel_coordinates([sweep_row(0.1, None, 0.8), sweep_row(10.0, None, None, None)])
    assert len(diverged.data[0].dimensions[0].values) == 1  # a variant without an accuracy is left out


def test_reproduction_chart_has_a_dot_per_run_and_hollow_dots_for_caveats():
    rows = [{"preset": "softmax-momentum", "reported": None, "caveat": "",
             "runs": {"gradient descent": 0.91, "momentum 0.9": 0.92}},
            {"preset": "mlp-300-tanh-adam", "reported": 0.97, "caveat": "a quick check on at most 300 images",
             "runs": {"mlp-300-tanh-adam": 0.85}}]
    fig = figures.reproduction_dots(rows)
    _reported, full, caveated = fig.data
    assert list(full.y) == [0.91, 0.92] and full.marker.symbol == "circle"  # both runs of a two-run preset
    assert list(caveated.y) == [0.85] and caveated.marker.symbol == "circle-open"
    assert "quick check on at most 300 images" in caveated.text[0]
    assert fig.layout.yaxis.range[0] == pytest.approx(0.83)  # zoomed in on every value shown


def test_saved_charts_are_drawn_in_real_colours_not_streamlits_placeholders():
    import plotly.io as pio
    import streamlit  # noqa: F401 - importing it makes its template, of colour placeholders, the default

    from dashboard.export import for_files

    fig = figures.per_class_accuracy(np.full(10, 0.9), MNIST_SPEC)
    assert pio.templates.default == "streamlit" and "#000001" in fig.to_json()
    saved = for_files(fig)
    assert "#000001" not in saved.to_json() and "#000001" in fig.to_json()  # a copy: the app's chart is untouched


def test_charts_save_as_png_and_svg_through_one_browser():
    import shutil
    if not (shutil.which("chromium") or shutil.which("google-chrome")):
        pytest.skip("no Chrome/Chromium for kaleido")
    from dashboard.export import for_files, image

    fig = for_files(figures.per_class_accuracy(np.full(10, 0.9), MNIST_SPEC))
    assert image(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert image(fig, "svg").lstrip().startswith(b"<svg")


def test_the_curves_legend_names_each_run_once_and_the_figure_grows_to_hold_it():
    runs = [_run_with_losses(f"sweep 784-64-10 sigmoid: lr {0.005 * 1.5 ** i:.3g} · seed {i % 2}", [2.3, 0.8, 0.4])
            for i in range(8)]
    one, eight = figures.training_curves(runs[:1]), figures.training_curves(runs)
    legend = [t.name for t in eight.data if t.showlegend is not False]
    assert legend == ["training", "validation", *(r.name for r in runs)]
    assert eight.layout.legend.yref == "container" and eight.layout.legend.y == 0  # in the bottom margin
    assert eight.layout.margin.b - one.layout.margin.b == eight.layout.height - one.layout.height >= 3 * 22


def test_a_saved_chart_says_what_it_shows_in_a_band_of_its_own():
    from dashboard.export import FILE_TITLE_BAND, for_files

    bars = figures.per_class_accuracy(np.full(10, 0.9), MNIST_SPEC)
    saved = for_files(bars, "Per-class accuracy · LeNet-5 #3")
    assert saved.layout.title.text == "Per-class accuracy · LeNet-5 #3" and not bars.layout.title.text
    assert saved.layout.height == bars.layout.height + FILE_TITLE_BAND
    assert saved.layout.margin.t == bars.layout.margin.t + FILE_TITLE_BAND
    titled = go.Figure(layout=dict(title="its own"))
    assert for_files(titled, "another").layout.title.text == "its own"


def test_the_probability_chart_names_the_true_and_predicted_digits_even_at_zero_probability():
    probabilities = np.zeros(10)
    probabilities[3] = 1.0
    bars = figures.probability_bars(probabilities, true_class=0, predicted_class=3, spec=MNIST_SPEC)
    ticks = bars.layout.xaxis.ticktext
    assert ticks[0] == "0<br>true" and ticks[3] == "3<br>predicted" and ticks[5] == "5"
    assert figures.probability_bars(probabilities, 3, 3, MNIST_SPEC).layout.xaxis.ticktext[3] == "3<br>true"


LETTERS = DataSpec("letters", 32, 32, 1, tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "letter")


def test_every_class_figure_is_labelled_with_the_data_s_class_names():
    """A dataset of 26 letters: one tick per class, named by the class, and axis titles with its class noun."""
    rng = np.random.default_rng(0)
    confusion = figures.confusion_heatmap(rng.integers(0, 5, (26, 26)), LETTERS, percentages=False)
    assert list(confusion.layout.xaxis.ticktext) == list(LETTERS.class_names) == list(confusion.layout.yaxis.ticktext)
    assert list(confusion.layout.xaxis.tickvals) == list(range(26))
    assert confusion.layout.xaxis.title.text == "predicted letter"
    assert confusion.layout.yaxis.title.text == "true letter"
    assert confusion.data[0].z.shape == (26, 26) and len(confusion.data[1].x) == 26 * 26
    cell = confusion.data[1].customdata[2 * 26 + 1]  # row 2 (true C), column 1 (predicted B)
    assert (cell[1], cell[2]) == ("C", "B") and "true %{customdata[1]}, predicted %{customdata[2]}" in \
        confusion.data[1].hovertemplate
    bars = figures.per_class_accuracy(np.full(26, 0.5), LETTERS)
    assert list(bars.layout.xaxis.ticktext) == list(LETTERS.class_names) and len(bars.data[0].y) == 26
    assert bars.layout.xaxis.title.text == "true letter"
    probabilities = np.full(26, 1 / 26)
    ticks = figures.probability_bars(probabilities, 25, 0, LETTERS).layout
    assert ticks.xaxis.ticktext[25] == "Z<br>true" and ticks.xaxis.ticktext[0] == "A<br>predicted"
    assert ticks.xaxis.title.text == "letter"
    gallery = figures.digit_gallery(np.zeros((26 * 34 - 2, 3 * 34 - 2)), LETTERS)
    assert list(gallery.layout.yaxis.ticktext) == list(LETTERS.class_names)
    assert gallery.layout.yaxis.title.text == "letter"
    outgoing = figures.outgoing_weight_bars(rng.normal(size=(3, 26)), ["unit 0", "unit 1", "unit 2"],
                                            LETTERS.class_names, columns=3)
    assert [list(trace.x) for trace in outgoing.data] == [list(LETTERS.class_names)] * 3


def test_the_landscape_says_which_path_leaves_it_and_draws_the_trained_point_on_top():
    from types import SimpleNamespace
    weight = SimpleNamespace(label=lambda: "w")
    grid = np.linspace(-1, 1, 5)
    landscape = SimpleNamespace(pair=(weight, weight), first=grid, second=grid, cost=np.ones((5, 5)), center=(0, 0))
    paths = {"sgd": SimpleNamespace(points=np.array([[0.5, 0.5], [0.2, 0.1]])),
             "adam": SimpleNamespace(points=np.array([[0.5, 0.5], [-1.4, 0.3]]))}
    fig = figures.landscape_contour(landscape, paths, {"sgd": "SGD", "adam": "Adam"})
    assert [trace.name for trace in fig.data[1:]] == ["SGD", "Adam (leaves the plotted area)", "trained values"]
