"""Results: accuracy, per-class accuracy, the confusion matrix, and the digits the network gets wrong."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.data.spec import IMAGE_SIDE
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
DIGIT_CHOICES = [ANY, *range(10)]


def _select_cell() -> None:
    """Clicking a confusion-matrix cell filters the mistakes to that (true, predicted) pair. Clicking the selected
    cell again deselects it in the chart; it still means that cell (the filters may have been changed since)."""
    points = st.session_state[CONFUSION_KEY].selection.points
    if points:
        st.session_state[CLICKED_KEY] = (int(points[0]["y"]), int(points[0]["x"]))
    if CLICKED_KEY in st.session_state:
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = st.session_state[CLICKED_KEY]


def _digit(choice) -> int | None:
    return None if choice == ANY else int(choice)


def test_images(run: Run, indices) -> list[np.ndarray]:
    """The 28×28 test images at `indices`."""
    x_test = state.splits(state.data_dir(), run.config.data).x_test
    return [x_test[i].reshape(IMAGE_SIDE, IMAGE_SIDE) for i in indices]


def caption(evaluation: Evaluation, sure: np.ndarray, index: int) -> str:
    """"6→0 · 93%" on the first line (non-breaking spaces keep it together), the test index "#965" on the second."""
    return f"{evaluation.labels[index]}→{evaluation.predictions[index]}\u00a0·\u00a0{sure[index]:.0%} #{index}"


def summary(run: Run, evaluation: Evaluation) -> None:
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{evaluation.accuracy:.2%}")
    cols[1].metric("Validation accuracy", format_or_dash(run.val_accuracy, ".2%"))
    cols[2].metric("Test loss", f"{evaluation.loss:.4g}")
    cols[3].metric("Misclassified test digits", f"{len(evaluation.misclassified):,}",
                   delta=f"of {len(evaluation.labels):,}", delta_color="off", delta_arrow="off")
    if enormous(evaluation.loss):
        chance = (f" (here {evaluation.accuracy:.2%}, about chance)" if learned_next_to_nothing(evaluation.accuracy)
                  else "")
        st.warning("The test loss is enormous (or infinite): the weights are so large that the network gives some "
                   f"digits a probability of (almost) zero for their true class. The accuracy still counts the most "
                   f"probable digit{chance}, but the learning rate was far too high: lower it and train again.")
    else:
        failed_training_warning(run)
    matrix_col, class_col = st.columns([3, 2])
    with matrix_col:
        st.subheader("Confusion matrix")
        as_percent = one_of("Show", ["counts", "row %"], key="confusion_mode") == "row %"
        matrix = row_percentages(evaluation.confusion) if as_percent else evaluation.confusion
        st.caption("Rows: the true digit; columns: what the network said. **Click a cell** to list those mistakes.")
        export.chart(figures.confusion_heatmap(matrix, percentages=as_percent), run_name=run.name,
                     what="confusion matrix", key=CONFUSION_KEY, on_select=_select_cell)
    with class_col:
        st.subheader("Accuracy per digit")
        export.chart(figures.per_class_accuracy(evaluation.per_class_accuracy), run_name=run.name,
                     what="per-class accuracy", key="per_class_chart")


def mistakes(run: Run, evaluation: Evaluation) -> list[int]:
    """The filtered, sorted, paged grid of misclassified test digits; returns the indices shown."""
    st.header("Misclassified test digits")
    for key in (TRUE_KEY, PREDICTED_KEY):
        st.session_state.setdefault(key, ANY)
    cols = st.columns(4)
    cols[0].selectbox("True digit", DIGIT_CHOICES, key=TRUE_KEY)
    cols[1].selectbox("Predicted digit", DIGIT_CHOICES, key=PREDICTED_KEY)
    sort_by = cols[2].selectbox("Sort by", SORT_KEYS, key="sort_by", format_func={
        "confidence": "confidence (most sure first)", "loss": "loss (highest first)"}.get)
    chosen = select_examples(evaluation, true_digit=_digit(st.session_state[TRUE_KEY]),
                             predicted_digit=_digit(st.session_state[PREDICTED_KEY]), sort_by=sort_by)
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = cols[3].number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key=f"page.{pages}")
    shown = chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    true_digit, predicted_digit = _digit(st.session_state[TRUE_KEY]), _digit(st.session_state[PREDICTED_KEY])
    if true_digit is not None and true_digit == predicted_digit:
        st.info(f"True and predicted digit are both {true_digit}: that cell of the confusion matrix counts the "
                "correctly classified digits, so no mistake matches. A sample of correctly classified digits (of every "
                "digit) is further down.")
    st.markdown(f"**{len(chosen):,}** misclassified digits match; showing {len(shown)}. "
                "Each caption: true digit → predicted digit · confidence, then the test index.")
    if len(shown):
        sure = confidence(evaluation)
        st.image(test_images(run, shown), caption=[caption(evaluation, sure, i) for i in shown], width=84)
    else:
        st.info("No misclassified digit matches these filters.")
    return [int(i) for i in shown]


def correct_sample(run: Run, evaluation: Evaluation) -> list[int]:
    st.header("A sample of correctly classified digits")
    correct = select_examples(evaluation, correct=True)
    sample = random_subset(correct, 20, seed=0)
    if len(sample):
        sure = confidence(evaluation)
        st.image(test_images(run, sample), caption=[caption(evaluation, sure, i) for i in sample], width=84)
    return [int(i) for i in sample]


def probabilities(run: Run, evaluation: Evaluation, candidates: list[int]) -> None:
    st.header("Class probabilities of one digit")
    if not candidates:
        st.caption("No digit to show.")
        return
    sure = confidence(evaluation)
    index = st.selectbox("Digit (test index)", candidates, key="probability_digit", format_func=lambda i: (
        f"#{i}: true {evaluation.labels[i]} → {evaluation.predictions[i]} ({sure[i]:.0%})"))
    image, bars = st.columns([1, 3])
    image.image(test_images(run, [index])[0], width=160, caption=f"test image #{index}")
    with bars:
        export.chart(figures.probability_bars(evaluation.probabilities[index], int(evaluation.labels[index]),
                                              int(evaluation.predictions[index])),
                     run_name=run.name, what=f"probabilities test {index}", key="probability_chart")


st.title("Results")
run = pick_run()
if run is not None:
    if run.diverged:
        st.warning(diverged_note(run, "results"))
    try:
        with st.spinner("Classifying the 10,000 test digits…"):
            evaluation = state.test_evaluation(run)
    except DigitLabError as exc:  # the test images are read from the data folder
        show_error(exc, DATA_HINT)
        st.stop()
    summary(run, evaluation)
    shown = mistakes(run, evaluation)
    sample = correct_sample(run, evaluation)
    probabilities(run, evaluation, shown + sample)
    st.header("Download this run")
    export.run_downloads(run, key="results_downloads")
