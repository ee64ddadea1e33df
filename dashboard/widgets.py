"""UI helpers the pages share."""

from __future__ import annotations

import streamlit as st

from core.errors import DigitLabError
from core.runs import Run
from dashboard import state

TRAIN_PAGE = "dashboard/pages/train.py"
RESULTS_PAGE = "dashboard/pages/results.py"
WEIGHTS_PAGE = "dashboard/pages/weights.py"
MISSING = "—"


def run_label(run: Run) -> str:
    accuracy = "" if run.test_accuracy is None else f", test {run.test_accuracy:.2%}"
    return f"{run.name} ({run.config.model.describe()}, {run.status}{accuracy})"


def pick_run(*, need_params: bool = True) -> Run | None:
    """A select box of this session's runs (the same choice on every page); None, with a hint, when there is none."""
    runs = {name: run for name, run in state.runs().items() if run.params is not None or not need_params}
    if not runs:
        st.info("No trained run yet. Train a network first; its results appear here.")
        st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/model_training:")
        return None
    names = list(runs)
    if st.session_state.get(state.SELECTED_RUN_KEY) not in runs:
        st.session_state[state.SELECTED_RUN_KEY] = names[-1]
    name = st.selectbox("Run", names, key=state.SELECTED_RUN_KEY, format_func=lambda n: run_label(runs[n]))
    return runs[name]


def show_error(exc: DigitLabError, hint: str = "") -> None:
    """A project error as an st.error with what to do next."""
    st.error(f"{exc} {hint}".strip())


def format_or_dash(value: float | None, spec: str) -> str:
    """`value` formatted with `spec`, or an em dash when there is none (not measured, not run yet)."""
    return MISSING if value is None else format(value, spec)


def format_epochs(epochs: float) -> str:
    """Epochs as "2" when whole and "0.75" when a run stopped part-way through one."""
    return f"{epochs:.0f}" if round(epochs, 2) == round(epochs) else f"{epochs:.2f}"
