"""Results: accuracy, per-class accuracy, the confusion matrix, and the images the network gets wrong."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import DigitLabError
from core.summaries import (
    SORT_KEYS,
    confidence,
    enormous,
    learned_next_to_nothing,
    random_subset,
    row_percentages,
    select_examples,
)
from core.training.evaluation import Evaluation
from core.training.runs import Run
from dashboard import export, figures, state
from dashboard.widgets import (
    DATA_HINT,
    diverged_note,
    failed_training_warning,
    format_or_dash,
    one_of,
    pick_run,
    show_error,
)

TRUE_KEY, PREDICTED_KEY = "filter.true", "filter.predicted"
CONFUSION_KEY = "confusion_chart"
CLICKED_KEY = "confusion_clicked"  # the (true, predicted) cell clicked last
PAGE_SIZE = 40
ANY = "any"


def _select_cell() -> None:
    """Clicking a confusion-matrix cell filters the mistakes to that (true, predicted) pair. Clicking the selected
    cell again deselects it in the chart; it still means that cell (the filters may have been changed since)."""
    points = st.session_state[CONFUSION_KEY].selection.points
    if points:
        st.session_state[CLICKED_KEY] = (int(points[0]["y"]), int(points[0]["x"]))
    if CLICKED_KEY in st.session_state:
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = st.session_state[CLICKED_KEY]


def _class(choice) -> int | None:
    return None if choice == ANY else int(choice)


def class_choice(label: str, run: Run, key: str) -> None:
    """A selectbox of 'any' or one class, by name."""
    names = run.spec.class_names
    st.selectbox(label, [ANY, *range(run.spec.num_classes)], key=key,
                 format_func=lambda c: c if c == ANY else names[c])


def test_images(run: Run, indices) -> list[np.ndarray]:
    """The test images at `indices`, as height × width (× channels) arrays."""
    x_test = state.splits_for(run.spec, run.config.data).x_test
    shape = run.spec.image_shape if run.spec.channels > 1 else run.spec.image_shape[:2]
    return [x_test[i].reshape(shape) for i in indices]


def caption(run: Run, evaluation: Evaluation, sure: np.ndarray, index: int) -> str:
    """"6→0 · 93%" on the first line (non-breaking spaces keep it together), the test index "#965" on the second."""
    names = run.spec.class_names
    return (f"{names[evaluation.labels[index]]}→{names[evaluation.predictions[index]]}\u00a0·\u00a0{sure[index]:.0%} "
            f"#{index}")


def summary(run: Run, evaluation: Evaluation) -> None:
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{evaluation.accuracy:.2%}")
    cols[1].metric("Validation accuracy", format_or_dash(run.val_accuracy, ".2%"))
    cols[2].metric("Test loss", f"{evaluation.loss:.4g}")
    cols[3].metric("Misclassified test images", f"{len(evaluation.misclassified):,}",
                   delta=f"of {len(evaluation.labels):,}", delta_color="off", delta_arrow="off")
    if enormous(evaluation.loss):
        chance = (f" (here {evaluation.accuracy:.2%}, about chance)"
                  if learned_next_to_nothing(evaluation.accuracy, run.spec.num_classes) else "")
        st.warning("The test loss is enormous (or infinite): the weights are so large that the network gives some "
                   f"images a probability of (almost) zero for their true class. The accuracy still counts the most "
                   f"probable {run.spec.class_noun}{chance}, but the learning rate was far too high: lower it and "
                   "train again.")
    else:
        failed_training_warning(run)
    matrix_col, class_col = st.columns([3, 2])
    with matrix_col:
        st.subheader("Confusion matrix")
        as_percent = one_of("Show", ["counts", "row %"], key="confusion_mode") == "row %"
        matrix = row_percentages(evaluation.confusion) if as_percent else evaluation.confusion
        st.caption(f"Rows: the true {run.spec.class_noun}; columns: what the network said. **Click a cell** to list "
                   "those mistakes.")
        export.chart(figures.confusion_heatmap(matrix, run.spec, percentages=as_percent), run_name=run.name,
                     what="confusion matrix", key=CONFUSION_KEY, on_select=_select_cell)
    with class_col:
        st.subheader(f"Accuracy per {run.spec.class_noun}")
        export.chart(figures.per_class_accuracy(evaluation.per_class_accuracy, run.spec), run_name=run.name,
                     what="per-class accuracy", key="per_class_chart")


def mistakes(run: Run, evaluation: Evaluation) -> list[int]:
    """The filtered, sorted, paged grid of misclassified test images; returns the indices shown."""
    noun, names = run.spec.class_noun, run.spec.class_names
    st.header("Misclassified test images")
    for key in (TRUE_KEY, PREDICTED_KEY):
        st.session_state.setdefault(key, ANY)
    cols = st.columns(4)
    with cols[0]:
        class_choice(f"True {noun}", run, TRUE_KEY)
    with cols[1]:
        class_choice(f"Predicted {noun}", run, PREDICTED_KEY)
    sort_by = cols[2].selectbox("Sort by", SORT_KEYS, key="sort_by", format_func={
        "confidence": "confidence (most sure first)", "loss": "loss (highest first)"}.get)
    chosen = select_examples(evaluation, true_digit=_class(st.session_state[TRUE_KEY]),
                             predicted_digit=_class(st.session_state[PREDICTED_KEY]), sort_by=sort_by)
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = cols[3].number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key=f"page.{pages}")
    shown = chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    true_class, predicted_class = _class(st.session_state[TRUE_KEY]), _class(st.session_state[PREDICTED_KEY])
    if true_class is not None and true_class == predicted_class:
        st.info(f"True and predicted {noun} are both {names[true_class]}: that cell of the confusion matrix counts "
                f"the correctly classified images, so no mistake matches. A sample of correctly classified images (of "
                f"every {noun}) is further down.")
    st.markdown(f"**{len(chosen):,}** misclassified images match; showing {len(shown)}. "
                f"Each caption: true {noun} → predicted {noun} · confidence, then the test index.")
    if len(shown):
        sure = confidence(evaluation)
        st.image(test_images(run, shown), caption=[caption(run, evaluation, sure, i) for i in shown], width=84)
    else:
        st.info("No misclassified image matches these filters.")
    return [int(i) for i in shown]


def correct_sample(run: Run, evaluation: Evaluation) -> list[int]:
    st.header("A sample of correctly classified images")
    correct = select_examples(evaluation, correct=True)
    sample = random_subset(correct, 20, seed=0)
    if len(sample):
        sure = confidence(evaluation)
        st.image(test_images(run, sample), caption=[caption(run, evaluation, sure, i) for i in sample], width=84)
    return [int(i) for i in sample]


def probabilities(run: Run, evaluation: Evaluation, candidates: list[int]) -> None:
    st.header("Class probabilities of one image")
    if not candidates:
        st.caption("No image to show.")
        return
    sure, names = confidence(evaluation), run.spec.class_names
    index = st.selectbox("Image (test index)", candidates, key="probability_digit", format_func=lambda i: (
        f"#{i}: true {names[evaluation.labels[i]]} → {names[evaluation.predictions[i]]} ({sure[i]:.0%})"))
    image, bars = st.columns([1, 3])
    image.image(test_images(run, [index])[0], width=160, caption=f"test image #{index}")
    with bars:
        export.chart(figures.probability_bars(evaluation.probabilities[index], int(evaluation.labels[index]),
                                              int(evaluation.predictions[index]), run.spec),
                     run_name=run.name, what=f"probabilities test {index}", key="probability_chart")


def main() -> None:
    st.title("Results")
    run = pick_run()
    if run is None:
        return
    if run.diverged:
        st.warning(diverged_note(run, "results"))
    try:
        with st.spinner("Classifying the test images…"):
            evaluation = state.test_evaluation(run)
    except DigitLabError as exc:  # the test images are read from the data folder
        show_error(exc, DATA_HINT)
        return
    summary(run, evaluation)
    shown = mistakes(run, evaluation)
    sample = correct_sample(run, evaluation)
    probabilities(run, evaluation, shown + sample)
    st.header("Download this run")
    export.run_downloads(run, key="results_downloads")


main()
