"""The Data page's statistics: what the training images hold, class by class and pixel by pixel, and the nearest
training images of any test digit (why a nearest-neighbour classifier does so well)."""

from __future__ import annotations

import jax
import numpy as np
import streamlit as st

from core.data.formats import Dataset
from core.data.splits import to_features
from core.explore.statistics import (
    PixelStatistics,
    mean_difference,
    nearest_neighbour_accuracy,
    nearest_neighbours,
    neighbour_pool,
    pixel_statistics,
)
from dashboard import export, figures

NEIGHBOURS = 8
NN_TEST_CHOICES = (1000, 2000, 5000)  # and the whole test set
NN_RESULTS_KEY = "stats_nn_accuracy"  # (source, spec, digits) -> the measured accuracy
SMALL_WIDTH = 420  # pixels: a single image's chart (one grid cell) is drawn at this width


@st.cache_resource(max_entries=2, show_spinner="Computing the pixel statistics…")
def _statistics(source: str, _mnist: Dataset) -> PixelStatistics:
    """Per dataset location, shared read-only (the dataset itself is cached per location by dashboard.state)."""
    return pixel_statistics(_mnist.train_images, _mnist.train_labels, _mnist.spec.num_classes)


@st.cache_resource(max_entries=2, show_spinner="Copying the training images to the device…")
def _pool(source: str, _mnist: Dataset) -> jax.Array:
    return neighbour_pool(_mnist.train_images)


def _images(flat: np.ndarray, mnist: Dataset) -> np.ndarray:
    """(n, pixels) → (n, height, width), channels averaged, as the gallery draws them."""
    return flat.reshape(len(flat), *mnist.spec.image_shape).mean(axis=-1)


def class_means(mnist: Dataset, stats: PixelStatistics) -> None:
    spec = mnist.spec
    st.subheader(f"The mean image of each {spec.class_noun}")
    st.caption(f"Every training image of a {spec.class_noun} averaged, pixel by pixel ({len(mnist.train_labels):,} "
               "images in all): dark where that class usually has ink.")
    export.chart(figures.image_grid(_images(stats.class_means, mnist), spec.class_labels,
                                    columns=min(spec.num_classes, 10), diverging=False, colorscale="gray_r"),
                 run_name=spec.name, what="mean images", key="stats_means")


def spread(mnist: Dataset, stats: PixelStatistics) -> None:
    spec = mnist.spec
    std_column, histogram_column = st.columns(2)
    with std_column:
        st.subheader("Per-pixel standard deviation")
        constant = int((stats.pixel_std == 0).sum())
        st.caption(f"How much each pixel varies over the training images (grey levels scaled to 0-1). {constant:,} of "
                   f"the {spec.num_pixels:,} pixels never change: they carry no information for any classifier.")
        export.chart(figures.image_grid(_images(stats.pixel_std[None], mnist), ["standard deviation"], columns=1,
                                        diverging=False, width=SMALL_WIDTH),
                     run_name=spec.name, what="pixel standard deviation", key="stats_std")
    with histogram_column:
        st.subheader("Grey levels")
        blank, full = stats.histogram[[0, -1]] / stats.histogram.sum()
        st.caption(f"How many training pixels take each grey level: {blank:.1%} are blank (0), {full:.1%} full "
                   "ink (255), and the rest the levels between (anti-aliased edges, in scanned digits).")
        export.chart(figures.grey_level_histogram(stats.histogram), run_name=spec.name, what="grey levels",
                     key="stats_histogram")


def difference(mnist: Dataset, stats: PixelStatistics) -> None:
    spec = mnist.spec
    st.subheader(f"Where two {spec.class_noun}s differ")
    classes = list(range(spec.num_classes))
    first_default, second_default = (3, 8) if spec.num_classes > 8 else (0, 1)
    cols = st.columns([1, 1, 3])
    first = cols[0].selectbox("Mean of", classes, index=first_default, key="stats_first",
                              format_func=spec.class_labels.__getitem__)
    second = cols[1].selectbox("minus mean of", classes, index=second_default, key="stats_second",
                               format_func=spec.class_labels.__getitem__)
    cols[2].caption(f"Red where {spec.class_labels[first]} has more ink on average, blue where "
                    f"{spec.class_labels[second]} has, white where they agree: the pixels a linear classifier can "
                    "weigh to tell them apart (compare softmax regression's weight images on the Weights page).")
    names = spec.class_names
    export.chart(figures.image_grid(_images(mean_difference(stats, first, second)[None], mnist),
                                    [f"mean {names[first]} − mean {names[second]}"], columns=1, width=SMALL_WIDTH),
                 run_name=spec.name, what=f"mean {names[first]} minus mean {names[second]}", key="stats_difference")


def neighbours(mnist: Dataset) -> None:
    spec = mnist.spec
    st.subheader("Nearest training images of a test digit")
    index = st.number_input("Test image index", 0, len(mnist.test_labels) - 1, 0, key="stats_test_index")
    query = to_features(mnist.test_images[index:index + 1])
    with st.spinner("Searching the training images…"):
        found = nearest_neighbours(query, _pool(mnist.source, mnist), NEIGHBOURS)
    label = int(mnist.test_labels[index])
    labels = mnist.train_labels[found.indices[0]]
    agree = int((labels == label).sum())
    st.caption(f"The {NEIGHBOURS} training images closest to test image #{index} ({spec.class_labels[label]}) by "
               f"Euclidean distance between their pixels, nearest first: {agree} of {NEIGHBOURS} are "
               f"{spec.class_noun} {spec.class_names[label]}. A nearest-neighbour classifier answers with the "
               "nearest one's label, with no training at all (measure how often it is right below).")
    images = np.concatenate([_images(query, mnist), _images(to_features(mnist.train_images[found.indices[0]]), mnist)])
    titles = [f"test #{index}: {spec.class_names[label]}"] + [
        f"#{i}: {spec.class_names[c]} · {d:.2f}" for i, c, d in zip(found.indices[0], labels, found.distances[0])]
    export.chart(figures.image_grid(images, titles, columns=NEIGHBOURS + 1, diverging=False, colorscale="gray_r"),
                 run_name=spec.name, what=f"nearest training images of test {index}", key="stats_neighbours")


def nearest_neighbour_classifier(mnist: Dataset) -> None:
    """Measure the 1-nearest-neighbour classifier on the first N test digits, with progress (seconds per thousand)."""
    spec = mnist.spec
    n_test = len(mnist.test_labels)
    choices = [n for n in NN_TEST_CHOICES if n < n_test] + [n_test]
    cols = st.columns([1, 3])
    count = cols[0].selectbox("Test digits to classify", choices, key=f"stats_nn_count.{n_test}",
                              format_func=lambda n: f"{n:,}")
    key = (mnist.source, spec, count)
    measured = st.session_state.setdefault(NN_RESULTS_KEY, {})
    if cols[0].button("Classify them by their nearest neighbour", key="stats_nn_button"):
        bar = st.progress(0.0, text="Comparing with every training image…")
        measured[key] = nearest_neighbour_accuracy(
            to_features(mnist.test_images[:count]), mnist.test_labels[:count], _pool(mnist.source, mnist),
            mnist.train_labels, progress=lambda done: bar.progress(done, text=f"{done:.0%} classified"))
        bar.empty()
    if key in measured:
        cols[1].metric(f"Nearest-neighbour accuracy on the first {count:,} test digits", f"{measured[key]:.2%}",
                       help=f"Each test digit gets the label of the nearest of the {len(mnist.train_labels):,} "
                            "training images by pixel distance.")


def statistics_section(mnist: Dataset) -> None:
    """Class means, pixel spread, grey levels, the difference of two classes' means, and nearest neighbours."""
    st.header("What the images hold")
    stats = _statistics(mnist.source, mnist)
    class_means(mnist, stats)
    spread(mnist, stats)
    difference(mnist, stats)
    neighbours(mnist)
    nearest_neighbour_classifier(mnist)
