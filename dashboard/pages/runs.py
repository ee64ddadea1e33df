"""Runs: every ended run saved on this computer, to filter, compare, rename, delete and reload."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import HistoryError
from core.networks.base import NETWORKS
from core.store.history import (
    SAVED_STATUSES,
    RunHistory,
    SavedRun,
    config_diff,
    same_server,
    shown_location,
)
from core.store.location import default_location, default_path
from core.training.runs import CONTINUABLE, Continuation, Run
from core.training.status import RunStatus, parse_status
from dashboard import access, continuing, export, figures, state
from dashboard.widgets import MISSING, TRAIN_PAGE, format_epochs, format_or_dash, show_error

SELECTION_KEY = "runs_page.selection"
CONFIRM_DELETE_KEY = "runs_page.confirm_delete"
MESSAGE_KEY = "runs_page.message"  # (kind, text) shown once after an action's rerun
PATH_INPUT_KEY = "runs_page.path_input"


def _report(kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = (kind, text)


def _use_database() -> None:
    """Use the typed file, in the history's folder, for this session (a bare name is taken there), or the typed
    PostgreSQL URL of a database on the server of the app's own history; a path elsewhere, or another server, is
    refused: the server never creates or opens files, nor connects to hosts, where a visitor points it."""
    typed = st.session_state[PATH_INPUT_KEY].strip()
    if "://" in typed and not typed.startswith("sqlite:"):
        if not same_server(typed, default_location()):
            _report("error", "A run history given as a URL must be a database on the PostgreSQL server of the app's "
                             f"own history ({shown_location(default_location())}); type its URL, such as "
                             "postgresql+psycopg://user:password@host/class_2, or a file name.")
            return
        st.session_state[state.HISTORY_PATH_KEY] = typed
        st.session_state[SELECTION_KEY] = []
        return
    typed = typed.removeprefix("sqlite:///")
    folder = default_path().parent.resolve()
    chosen = (folder / typed).resolve() if typed else None
    if chosen is not None and chosen.parent != folder:
        _report("error", f"A run history file must be in the history's folder {folder}; type a file name, such "
                         f"as class-2.sqlite3 (set DIGIT_LAB_HOME when starting the app to use another folder).")
        return
    st.session_state[state.HISTORY_PATH_KEY] = None if chosen is None else str(chosen)
    st.session_state[SELECTION_KEY] = []


def storage_setting(location: str, *, expanded: bool = False) -> None:
    """Where the history lives, and a way to use another database for this session."""
    with st.expander("Where the run history is stored", expanded=expanded):
        st.write(f"Database: `{shown_location(location)}`")
        st.caption(f"The default is `{shown_location(default_location())}` (set the environment variable "
                   "DIGIT_LAB_DATABASE_URL to a PostgreSQL URL to share one history between app servers, or "
                   "DIGIT_LAB_HOME to move the file).")
        st.text_input("Use another database for this session: a file in the history's folder, or a database on its "
                      "PostgreSQL server as a URL (empty: the default)",
                      key=PATH_INPUT_KEY, placeholder=default_path().name)
        st.button("Use this file", on_click=_use_database)


def _reload(ids: list[str]) -> None:
    try:
        names = [state.reload_run(run_id) for run_id in ids]
    except HistoryError as exc:
        _report("error", str(exc))
        return
    st.session_state[state.SELECTED_RUN_KEY] = names[-1]
    _report("success", f"Loaded {', '.join(repr(n) for n in names)} into this session: "
                       f"the Results and Weights pages now show {'them' if len(names) > 1 else 'it'}.")


def _continue(run_id: str, more: Continuation) -> None:
    """Reload the saved run into this session and ask the Train page to continue it."""
    try:
        name = state.reload_run(run_id)
    except HistoryError as exc:
        _report("error", str(exc))
        return
    continuing.request(name, more)


def continue_section(store: RunHistory, saved: SavedRun) -> None:
    """The form that trains a finished, stopped or interrupted saved run further, on the Train page."""
    if parse_status(saved.status)[0] not in CONTINUABLE:
        return
    run = store.load(saved.run_id, snapshots=False)
    with st.expander(f"Continue training '{saved.name}'", icon=":material/fast_forward:"):
        st.caption("It is loaded into this session and trains on the Train page, from its last parameters"
                   + (" (its last checkpoint: its process died)." if run.status is RunStatus.INTERRUPTED else "."))
        continuing.form(run, "runs_continue", lambda more: _continue(saved.run_id, more))


def _rename(store: RunHistory, run_id: str, name_key: str) -> None:
    """Rename the saved run, and this session's copy of it if the session has one."""
    new = st.session_state[name_key].strip()
    try:
        store.rename(run_id, new)
    except HistoryError as exc:
        _report("error", str(exc))
        return
    in_session = next((name for name, run in state.runs().items() if run.run_id == run_id), None)
    if in_session is not None:
        new = state.rename_run(in_session, new)
    _report("success", f"Renamed to '{new}'.")


def _delete(store: RunHistory, ids: list[str]) -> None:
    """Delete the saved runs for good: this session's copies go too, so that nothing saves them again."""
    try:
        for run_id in ids:
            store.delete(run_id)
            state.forget_run(run_id)
    except HistoryError as exc:
        _report("error", str(exc))
        return
    finally:
        st.session_state.pop(CONFIRM_DELETE_KEY, None)
    st.session_state[SELECTION_KEY] = []
    _report("success", f"Deleted {len(ids)} run{'s' * (len(ids) > 1)}.")


def _labels(saved: list[SavedRun]) -> dict[str, str]:
    """A distinct label per run: its name, plus the start of its id where names repeat."""
    names = [r.name for r in saved]
    return {r.run_id: r.name if names.count(r.name) == 1 else f"{r.name} [{r.run_id[:6]}]" for r in saved}


def _cell(value) -> str:
    """A table cell as text, so columns of mixed types display as they are (MISSING for a missing value)."""
    return MISSING if value is None else str(value)


def _minutes(timestamp: str) -> str:
    """An ISO timestamp as "2026-01-31 14:05"."""
    return timestamp.replace("T", " ")[:16]


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def final_metrics(run: Run) -> dict[str, str]:
    """A run's final metrics as table cells under readable labels, accuracies in percent."""
    trained_here = bool(run.history)  # a model loaded from a file brings no record of its training
    return {
        "status": run.status_text,
        "network": run.model.describe(),
        "validation accuracy": format_or_dash(run.val_accuracy, ".2%"),
        "test accuracy": format_or_dash(run.test_accuracy, ".2%"),
        **({"epochs": format_epochs(run.epochs_completed), "training time": f"{run.train_seconds:.1f} s",
            "compile time": f"{run.compile_seconds:.1f} s", "samples per second": f"{run.samples_per_second:,.0f}"}
           if trained_here else dict.fromkeys(("epochs", "training time", "compile time", "samples per second"),
                                               MISSING)),
        "created (UTC)": _minutes(run.created),
    }


def owner_filter(everything: list[SavedRun]) -> str | None:
    """A teacher's choice of student (None: everyone's runs)."""
    return st.selectbox("Owner", [None, *sorted({r.owner or "" for r in everything})],
                        format_func=lambda owner: "Everyone" if owner is None else owner or "(no sign-in)")


def filters(everything: list[SavedRun]) -> dict:
    dataset_col, arch_col, status_col, name_col, accuracy_col = st.columns(5)
    dataset = dataset_col.selectbox("Dataset", [None, *sorted({r.dataset for r in everything})],
                                    format_func=lambda name: "All" if name is None else name)
    arch = arch_col.selectbox("Architecture", [None, *NETWORKS],
                              format_func=lambda name: "All" if name is None else NETWORKS[name].title)
    status = status_col.selectbox("Status", [None, *SAVED_STATUSES],
                                  format_func=lambda s: "All" if s is None else s.value)
    name = name_col.text_input("Name contains")
    accuracy = accuracy_col.number_input("Minimum test accuracy (%)", 0.0, 100.0, 0.0, step=0.5)
    return dict(arch=arch, status=status, name_contains=name, min_test_accuracy=accuracy / 100 if accuracy else None,
                dataset=dataset)


def table(saved: list[SavedRun], labels: dict[str, str], *, owners: bool) -> None:
    """The saved runs, each named by its label in the selector below (runs of one name told apart by id), with their
    owners for a teacher. A model loaded from a file has no epochs or training time on record: a dash, not 0."""
    loaded = [not r.epochs and not r.train_seconds for r in saved]
    st.dataframe(pd.DataFrame({
        "name": [labels[r.run_id] for r in saved],
        **({"owner": [_cell(r.owner) for r in saved]} if owners else {}),
        "dataset": [r.dataset for r in saved],
        "architecture": [r.architecture for r in saved],
        "status": [r.status for r in saved],
        "test accuracy (%)": [_percent(r.test_accuracy) for r in saved],
        "validation accuracy (%)": [_percent(r.val_accuracy) for r in saved],
        "epochs": [MISSING if from_file else format_epochs(r.epochs) for r, from_file in zip(saved, loaded)],
        "training time (s)": [None if from_file else r.train_seconds for r, from_file in zip(saved, loaded)],
        "created (UTC)": [_minutes(r.created) for r in saved],
    }), hide_index=True, column_config={
        "test accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
        "validation accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
        "training time (s)": st.column_config.NumberColumn(format="%.1f"),
    })


def _ask_to_delete(ids: list[str]) -> None:
    st.session_state[CONFIRM_DELETE_KEY] = list(ids)


def _cancel_delete() -> None:
    st.session_state.pop(CONFIRM_DELETE_KEY, None)


def actions(store: RunHistory, selected: list[SavedRun]) -> None:
    ids = [r.run_id for r in selected]
    reload_col, rename_col, delete_col = st.columns(3)
    reload_col.button(f"Reload into this session ({len(ids)})", on_click=_reload, args=(ids,),
                      help="Puts the selected runs back among this session's runs for the Results and Weights pages.")
    if store.viewer is not None and any(r.owner != store.viewer.name for r in selected):  # a teacher's choice
        rename_col.caption("Only its owner can rename or delete a run.")
        return
    if len(selected) == 1:
        name_key = f"runs_page.rename.{ids[0]}"
        with rename_col.form(f"runs_page.rename_form.{ids[0]}", border=False):  # Enter in the field renames too
            st.text_input("New name", value=selected[0].name, key=name_key)
            st.form_submit_button("Rename", on_click=_rename, args=(store, ids[0], name_key))
    else:
        rename_col.caption("Select one run to rename it.")
    if st.session_state.get(CONFIRM_DELETE_KEY) == ids:
        delete_col.warning(f"Delete {len(ids)} run{'s' * (len(ids) > 1)} for good? This cannot be undone.")
        yes, no = delete_col.columns(2)
        yes.button("Yes, delete", type="primary", on_click=_delete, args=(store, ids))
        no.button("Cancel", on_click=_cancel_delete)
    else:
        delete_col.button(f"Delete ({len(ids)})", on_click=_ask_to_delete, args=(ids,))


def compare(store: RunHistory, selected: list[SavedRun], labels: dict[str, str]) -> None:
    with st.spinner("Loading the selected runs..."):
        loaded = [store.load(r.run_id, snapshots=False) for r in selected]
    for run in loaded:  # these are copies for display: label them distinctly
        run.name = labels[run.run_id]
    datasets = sorted({run.spec.name for run in loaded})
    if len(datasets) > 1:
        st.warning(f"These runs trained on different datasets ({', '.join(datasets)}): their accuracies measure "
                   "different tasks and do not compare.")
    st.subheader("Learning curves")
    export.chart(figures.training_curves(loaded), run_name="saved runs", what="curves", key="runs_page.curves")
    st.subheader("Final metrics")
    st.dataframe(pd.DataFrame({run.name: final_metrics(run) for run in loaded}))
    if len(loaded) > 1:
        st.subheader("Settings that differ")
        diff = config_diff({run.name: run.config for run in loaded})
        if diff:
            st.dataframe(pd.DataFrame([{k: _cell(v) for k, v in row.items()} for row in diff]).set_index("setting"))
        else:
            st.info("These runs have identical settings.")
    else:
        st.caption("Select two or more runs to compare their settings.")
    st.subheader("Confusion matrices on the test set")
    tabs = st.tabs([run.name for run in loaded])
    for tab, run in zip(tabs, loaded):
        if run.test_confusion is None:
            why = "it diverged, so it was never evaluated" if run.diverged else "it has no parameters"
            tab.info(f"No confusion matrix was saved with this run ({why}).")
        else:
            with tab:
                export.chart(figures.confusion_heatmap(run.test_confusion, run.spec, percentages=False),
                             run_name=run.name, what="confusion matrix", key=f"runs_page.confusion.{run.run_id}")


def last_message() -> None:
    """What the last action did, shown once after its rerun."""
    if MESSAGE_KEY in st.session_state:
        kind, text = st.session_state.pop(MESSAGE_KEY)
        (st.success if kind == "success" else st.error)(text)


def saved_runs(store: RunHistory) -> None:
    """The filtered table of saved runs, and the actions on and the comparison of the ones selected."""
    everything = store.list()
    if not everything:
        st.info("No saved runs yet. Train a network: every run that finishes or is stopped is saved here.")
        return
    teacher = store.viewer is not None and store.viewer.teacher
    owner = owner_filter(everything) if teacher else None
    saved = [r for r in store.list(**filters(everything)) if owner is None or (r.owner or "") == owner]
    st.caption(f"{len(saved)} of {len(everything)} saved runs match.")
    if not saved:
        st.info("No saved run matches these filters.")
        return
    labels = _labels(saved)
    table(saved, labels, owners=teacher)
    # Set afresh on every run: the widget keeps its choice as labels, and a label that changed (a rename,
    # here or in another tab) would no longer match its run.
    st.session_state[SELECTION_KEY] = [i for i in st.session_state.get(SELECTION_KEY, []) if i in labels]
    selected = st.multiselect("Select runs to compare, rename, delete or reload", list(labels),
                              format_func=lambda run_id: labels.get(run_id, run_id),  # a crafted id: no crash
                              key=SELECTION_KEY)
    if selected:
        chosen = [r for r in saved if r.run_id in selected]
        actions(store, chosen)
        if len(chosen) == 1:
            continue_section(store, chosen[0])
        compare(store, chosen, labels)


def main() -> None:
    if continuing.REQUEST_KEY in st.session_state:  # a saved run to continue: the Train page trains it
        st.switch_page(TRAIN_PAGE)
    st.title("Runs")
    st.caption("Saved run history. Every run is saved here automatically as it trains, with its curves, metrics, "
               "confusion matrix and parameters; the history survives restarts of the app, and a run whose process "
               "died (killed, crashed, a reboot) is kept as \"interrupted at step N\" with its last parameters.")
    paths_shown = not access.sign_in_configured()  # with sign-in, the history is the deployment's setting
    try:
        store = state.history()
    except HistoryError as exc:
        show_error(exc, "The other pages still work; runs you train now are kept in this session only.")
        if paths_shown:
            storage_setting(state.history_path(), expanded=True)
        return
    if paths_shown:
        storage_setting(state.history_path())
    last_message()
    try:
        saved_runs(store)
    except HistoryError as exc:
        show_error(exc)


main()
