"""UI helpers the pages share."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st

from core.data.splits import SplitConfig
from core.errors import DigitLabError
from core.summaries import learned_next_to_nothing
from core.training.evaluation import Evaluation
from core.training.runs import Run
from dashboard import state

TRAIN_PAGE = "dashboard/pages/train.py"
RESULTS_PAGE = "dashboard/pages/results.py"
WEIGHTS_PAGE = "dashboard/pages/weights.py"
RUNS_PAGE = "dashboard/pages/runs.py"
PLAYGROUND_PAGE = "dashboard/pages/playground.py"
DRAW, UPLOAD, TEST = "Draw", "Upload an image", "Test image"  # the Playground's inputs
PLAYGROUND_SOURCE_KEY = "playground.source"
PLAYGROUND_TEST_INDEX = "playground.test_index"  # a setting (state.kept): the Playground's test image
GO_TO_PLAYGROUND_KEY = "playground.go"
MISSING = "—"
DATA_HINT = "Check the data folder on the Data page."


def run_label(run: Run) -> str:
    accuracy = "" if run.test_accuracy is None else f", test {run.test_accuracy:.2%}"
    return f"{run.name} ({run.model.describe()}, {run.status_text}{accuracy})"


RUN_PICKER_KEY = "run_picker"


def pick_run(*, need_params: bool = True) -> Run | None:
    """A select box of this session's runs (the same choice on every page); None, with a hint, when there is none."""
    runs = {name: run for name, run in state.runs().items() if run.params is not None or not need_params}
    if not runs:
        saved = _saved_run_count()
        if saved:
            st.info(f"No run in this session yet. Train a network, or reload one of the {saved:,} saved in the run "
                    "history from the Runs page.")
            st.page_link(RUNS_PAGE, label="Go to Runs", icon=":material/history:")
        else:
            st.info("No trained run yet. Train a network first; its results appear here.")
        st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/model_training:")
        return None
    names = list(runs)
    if st.session_state.get(state.SELECTED_RUN_KEY) not in runs:
        st.session_state[state.SELECTED_RUN_KEY] = names[-1]
    # The picker shows the shared choice and changes it only when the user picks: a rerun can send the browser's
    # stale value of a picker not drawn since (Stop, while the Train page showed a run training), which would
    # otherwise select the run before the one just stopped.
    st.session_state[RUN_PICKER_KEY] = st.session_state[state.SELECTED_RUN_KEY]
    st.selectbox("Run", names, key=RUN_PICKER_KEY, format_func=lambda n: run_label(runs[n]), on_change=_picked)
    return runs[st.session_state[state.SELECTED_RUN_KEY]]


def _picked() -> None:
    st.session_state[state.SELECTED_RUN_KEY] = st.session_state[RUN_PICKER_KEY]


def _saved_run_count() -> int:
    try:
        return len(state.history().list())
    except DigitLabError:  # the Runs page says what is wrong with the history
        return 0


def send_to_playground(index: int) -> None:
    """Open test image `index` in the Playground: a callback, so the page switch happens on the next run
    (`follow_to_playground`)."""
    st.session_state[PLAYGROUND_SOURCE_KEY] = TEST
    st.session_state[state.SETTINGS_PREFIX + PLAYGROUND_TEST_INDEX] = index
    st.session_state[GO_TO_PLAYGROUND_KEY] = True


def follow_to_playground() -> None:
    """Switch to the Playground when `send_to_playground` asked for it."""
    if st.session_state.pop(GO_TO_PLAYGROUND_KEY, False):
        st.switch_page(PLAYGROUND_PAGE)


def failed_training_warning(run: Run) -> None:
    """A warning when a run that did not diverge still ends little better than guessing."""
    if (run.diverged or run.test_accuracy is None
            or not learned_next_to_nothing(run.test_accuracy, run.spec.num_classes)):
        return
    rate = run.config.train.learning_rate
    st.warning(f"Test accuracy {run.test_accuracy:.2%} is little better than guessing (10%): the network has learned "
               f"next to nothing. A learning rate far too high is the usual cause (try {rate / 10:g} instead of "
               f"{rate:g}); otherwise it trained too little: more epochs or images.")


def begin_action(key: str) -> None:
    """Mark a button's action that takes seconds as running; `end_action(key)` when it is done. A rerun (another
    click, a page switch) cuts a script run short, and `cut_off(key)` then tells so on the next run."""
    st.session_state[f"{key}.running"] = True


def end_action(key: str) -> None:
    st.session_state.pop(f"{key}.running", None)


def cut_off(key: str) -> bool:
    """Whether the action `key` was interrupted before it ended (told once)."""
    return st.session_state.pop(f"{key}.running", False)


def stop_button(kept: str) -> None:
    """The Stop button of a page training in its script run, with what it keeps and what else stops training."""
    st.button("Stop", icon=":material/stop:", help=f"Stops after the current chunk; {kept}.")
    st.caption("Opening another page or reloading this one stops training too, and keeps what is trained so far "
               "(after a reload, in the run history on the Runs page).")


def diverged_note(run: Run, what: str) -> str:
    """What a diverged run's `what` (results, weights) come from: the parameters from before its chunk that diverged."""
    steps = run.history[-1]["step"] if run.history else 0
    if not steps:
        return (f"This run {run.status_text}, within its first chunk of updates, so these {what} come from its "
                "initial, untrained weights. Lower the learning rate and train again.")
    return (f"This run {run.status_text}; these {what} come from its parameters after {steps:,} updates "
            f"(epoch {format_epochs(run.epochs_completed)}), the last kept before the loss became NaN or infinite.")


def one_of(label: str, options: Sequence, *, key: str, format_func: Callable = str):
    """A segmented control that always has exactly one of `options` selected, the first at the start: clicking
    the selected option again keeps it (a plain st.segmented_control would be left with none)."""
    previous = f"{key}.previous"
    st.session_state.setdefault(key, options[0])

    def keep_a_choice() -> None:
        if st.session_state[key] is None:
            st.session_state[key] = st.session_state.get(previous, options[0])

    choice = st.segmented_control(label, options, key=key, on_change=keep_a_choice, format_func=format_func)
    st.session_state[previous] = choice
    return choice


def train_page_split() -> SplitConfig | None:
    """The data split set on the Train page in this session; None when that page has not been opened."""
    if state.SETTINGS_PREFIX + "val_size" not in st.session_state:
        return None
    setting = state.setting
    return SplitConfig(val_size=int(setting("val_size")), seed=int(setting("seed")),
                       train_size=int(setting("train_size")) if setting("subset") == "total" else None,
                       per_class=int(setting("per_class")) if setting("subset") == "per_class" else None)


def show_error(exc: DigitLabError, hint: str = "") -> None:
    """A project error as an st.error with what to do next."""
    st.error(f"{exc} {hint}".strip())


def format_or_dash(value: float | None, spec: str) -> str:
    """`value` formatted with `spec`, or an em dash when there is none (not measured, not run yet)."""
    return MISSING if value is None else format(value, spec)


def format_epochs(epochs: float) -> str:
    """Epochs as "2" when whole and "0.75" when a run stopped part-way through one."""
    return f"{epochs:.0f}" if round(epochs, 2) == round(epochs) else f"{epochs:.2f}"


def as_picture(pixels: np.ndarray, spec) -> np.ndarray:
    """A pixel vector as an image st.image shows: height × width, or height × width × channels in colour."""
    return np.asarray(pixels).reshape(spec.image_shape if spec.channels > 1 else spec.image_shape[:2])


def test_images(run: Run, indices) -> list[np.ndarray]:
    """The test images at `indices`, as height × width (× channels) arrays."""
    x_test = state.splits_for(run.spec, run.config.data).x_test
    return [as_picture(x_test[i], run.spec) for i in indices]


def caption(run: Run, evaluation: Evaluation, sure: np.ndarray, index: int) -> str:
    """"6→0 · 93%" on the first line (non-breaking spaces keep it together), the test index "#965" on the second."""
    names = run.spec.class_names
    return (f"{names[evaluation.labels[index]]}→{names[evaluation.predictions[index]]}\u00a0·\u00a0{sure[index]:.0%} "
            f"#{index}")
