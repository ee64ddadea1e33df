"""The "Continue training" form the Train and Runs pages share: epochs to add, and optionally a new learning rate or
schedule; submitting it asks the Train page to train the run further."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.training.config import SCHEDULE_LABELS, Schedule
from core.training.runs import CONTINUABLE, Continuation, Run, continued_name

REQUEST_KEY = "continue_request"  # (the session's name of the run, Continuation): the Train page continues it


def can_continue(run: Run) -> bool:
    return run.status in CONTINUABLE and run.params is not None


def form(run: Run, key: str, ask: Callable[[Continuation], None]) -> None:
    """The form for `run` (widget keys start with `key`); `ask(continuation)` runs when it is submitted."""
    tc = run.config.train
    keys = {name: f"{key}.{name}.{run.run_id}" for name in ("epochs", "learning_rate", "schedule", "decay")}
    with st.form(f"{key}.form.{run.run_id}", border=False):
        epochs, rate, schedule, decay = st.columns(4)
        epochs.number_input("Epochs to add", min_value=1, max_value=100_000, value=1, step=1, key=keys["epochs"],
                            help="Whole epochs; a run stopped within an epoch finishes it as the first of them.")
        rate.number_input("Learning rate", min_value=1e-8, value=float(tc.learning_rate), format="%g",
                          key=keys["learning_rate"])
        schedule.selectbox("Learning-rate schedule", list(Schedule), index=list(Schedule).index(tc.schedule),
                           format_func=SCHEDULE_LABELS.get, key=keys["schedule"])
        decay.number_input("Decay factor per epoch", min_value=0.01, max_value=1.0, value=float(tc.decay),
                           format="%g", key=keys["decay"], help="For the exponential schedule.")
        st.caption(
            "It goes on with the optimiser state the run had (Adam's moments, momentum) from the update it reached, "
            "and its curves go on from there. With the run's own learning rate and schedule it trains exactly as one "
            "uninterrupted run of the total length would; a new learning rate, schedule or decay factor starts the "
            "schedule again where it goes on (a cosine then falls to zero over the added epochs, as a cosine run "
            f"always does when continued). It is kept as a new run, '{continued_name(run.name)}', with the curves of "
            "both parts; the run it continues stays as it was. A run saved without its optimiser state (by an "
            "older version, or a sweep) goes on with a fresh optimiser, and says so.")
        st.form_submit_button("Continue training", type="primary", icon=":material/fast_forward:",
                              on_click=lambda: ask(_chosen(keys)))


def _chosen(keys: dict[str, str]) -> Continuation:
    value = st.session_state.__getitem__
    return Continuation(int(value(keys["epochs"])), float(value(keys["learning_rate"])),
                        Schedule(value(keys["schedule"])), float(value(keys["decay"])))


def request(name: str, more: Continuation) -> None:
    """Ask the Train page to continue the session's run `name`."""
    st.session_state[REQUEST_KEY] = (name, more)
