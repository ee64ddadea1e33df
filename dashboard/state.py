"""Shared app state: the dataset (once per process, read-only) and this session's runs.

Pages read and write runs only through these functions, so a rerun (Stop, a widget change, a page switch)
never loses one: a run is kept in `st.session_state` from its first chunk on.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner_utils.exceptions import (
    StopException,  # not public API: Streamlit is pinned
)

from core.data.formats import Dataset
from core.data.registry import REGISTRY, DatasetName
from core.data.sources import DataSource, load_source, located
from core.data.spec import DataSpec, describe_data
from core.data.splits import SplitConfig, Splits, make_splits
from core.data.user_data import ImageOptions
from core.errors import ConfigError, DataError, DataNotFoundError, DigitLabError, HistoryError
from core.store.location import Viewer, default_location
from core.store.processes import process_alive
from core.training.drive import REDRAW_SECONDS
from core.training.evaluation import Evaluation
from core.training.runs import Run, ended
from dashboard import access

if TYPE_CHECKING:
    from core.store.history import RunHistory

RUNS_KEY = "runs"
SETTINGS_PREFIX = "setting."  # widget keys that keep their values across pages
SELECTED_RUN_KEY = "selected_run"  # the run the Results and Weights pages show (the run pickers' shared choice)
DATA_DIR_KEY = SETTINGS_PREFIX + "data_dir"  # where to look for the chosen registered dataset
DATASET_KEY = SETTINGS_PREFIX + "dataset"  # a DatasetName, or OWN_DATA
OWN_DATA = "own"
OWN_PATH_KEY = SETTINGS_PREFIX + "own_data"  # the user's folder, zip or CSV
IMAGE_OPTION_KEYS = {name: SETTINGS_PREFIX + "own." + name for name in ("height", "width", "colour", "fit",
                                                                         "test_fraction")}
HISTORY_PATH_KEY = "history_path"  # this session's choice of run history database (None: the default)
CHART_RUNS_KEY = SETTINGS_PREFIX + "chart_runs"  # the Train page's runs on its chart (kept across pages)
CHART_SEEN_KEY = "chart_runs_seen"  # the runs that chart's choice has met: one not among them is new, and goes on
SAVED_KEY = "saved_runs"  # run_id -> what was last saved of it, so an unchanged run is not saved again


UPLOADS_ROOT = Path(tempfile.gettempdir()) / "digit-lab-uploads"  # one folder per app process, named by its pid


def uploads_dir() -> Path:
    """Where this app process keeps the data files uploaded to it (removed when it exits)."""
    return UPLOADS_ROOT / str(os.getpid())


@st.cache_resource
def clean_uploads() -> None:
    """Once per app process: remove the uploads left by app processes that have ended (killed ones included) or by
    earlier versions, and have this process's removed when it exits."""
    for folder in UPLOADS_ROOT.glob("*"):
        if not (folder.name.isdecimal() and process_alive(int(folder.name))):
            shutil.rmtree(folder, ignore_errors=True)
    atexit.register(shutil.rmtree, uploads_dir(), ignore_errors=True)


def _chosen_path(key: str) -> str | None:
    """A path on the server that this session chose. With sign-in on, visitors choose none (the deployment's
    settings decide): only a path into this process's uploads folder, where an upload put it, is taken."""
    path = st.session_state.get(key) or None
    if path is None or not access.sign_in_configured():
        return path
    return path if Path(os.path.abspath(path)).is_relative_to(uploads_dir()) else None


def data_dir() -> str | None:
    """The data directory chosen in this session (None: the dataset's variable, the cache, then a download)."""
    return _chosen_path(DATA_DIR_KEY)


def own_data_path() -> str | None:
    """The user's own data (a folder, zip or CSV) chosen in this session, if any."""
    return _chosen_path(OWN_PATH_KEY)


def data_choice() -> str:
    """The Data page's choice: a DatasetName value, or OWN_DATA."""
    return st.session_state.get(DATASET_KEY) or DatasetName.MNIST


def image_options() -> ImageOptions:
    """How the user's images are converted, as set on the Data page (a ConfigError when inconsistent)."""
    return ImageOptions(**{name: st.session_state[key] for name, key in IMAGE_OPTION_KEYS.items()
                            if key in st.session_state})


def data_source() -> DataSource:
    """The data this session trains on, as chosen on the Data page; a DataError when its own data is chosen but not
    given yet."""
    if data_choice() != OWN_DATA:
        return DataSource(DatasetName(data_choice()), data_dir())
    if own_data_path() is None:
        raise DataNotFoundError("Your own data is chosen on the Data page, but none is given yet: upload a zip or a "
                                "CSV there, or name a folder.")
    try:
        options = image_options()
    except ConfigError as exc:  # the data cannot be made as asked: a data problem for every page
        raise DataError(f"{exc} (set on the Data page)") from None
    return DataSource(None, own_data_path(), options)


def expected_spec(local: Dataset | None) -> DataSpec:
    """The chosen data's description: the data found here (`local_dataset`), else that of the registered dataset
    still to be downloaded."""
    return local.spec if local is not None else REGISTRY[data_source().dataset].spec


def mnist_source() -> DataSource:
    """MNIST, for the course's presets and reproduction (in the data directory when MNIST is the choice)."""
    return DataSource(DatasetName.MNIST, data_dir() if data_choice() == DatasetName.MNIST else None)


def dataset(source: DataSource, progress: Callable[[str, int, int], None] | None = None) -> Dataset:
    """The source's data, loaded once per process per location and shared read-only by every session.

    `progress(name, done, total)` hears about a first-use download, which runs here, outside the cache: a cached
    function must not draw into elements made outside it (Streamlit replays them on the next cache hit).
    """
    return _load(located(source, progress=progress))


@st.cache_resource(max_entries=4, show_spinner="Loading the data...")
def _load(source: DataSource) -> Dataset:
    return load_source(source, allow_download=False)


@st.cache_resource(max_entries=8, show_spinner="Preparing the data split...")
def splits(source: DataSource, config: SplitConfig) -> Splits:
    """The train / validation / test arrays of one source for one split config, shared read-only."""
    return make_splits(dataset(source), config)


def splits_for(spec: DataSpec, config: SplitConfig) -> Splits:
    """The split `config` of the data a run (or model) of data `spec` trained on: the registered dataset `spec`
    describes (presets and reproduction train on MNIST whatever the choice), else the data chosen on the Data page;
    a DataError when that is other data."""
    registered = next((name for name, info in REGISTRY.items() if info.spec == spec), None)
    if registered is not None and data_choice() != registered:
        return splits(DataSource(registered), config)
    data = splits(data_source(), config)
    if data.spec != spec:
        raise DataError(f"This run was trained on {describe_data(spec)}, but the data chosen on the Data page is "
                        f"{describe_data(data.spec)}: choose its data there to look at it.")
    return data


def local_dataset() -> Dataset | None:
    """The data found here, to check settings against before training, or None when there is none yet (it would be
    downloaded); a DataError when the folder asked for holds no data or the user's own data cannot be read."""
    source = data_source()
    try:
        found = located(source, allow_download=False)
    except DataNotFoundError:
        if source.path or os.environ.get(REGISTRY[source.dataset].env):
            raise
        return None
    return _load(found)


def runs() -> dict[str, Run]:
    """This session's runs by name, oldest first."""
    return st.session_state.setdefault(RUNS_KEY, {})


def unique_name(name: str) -> str:
    """`name`, or `name (2)`, `name (3)`... so no two runs in the session share a name."""
    taken, candidate, i = runs(), name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name} ({i})"
    return candidate


SHUTDOWN_WAIT_SECONDS = 60.0  # how long a stopping app waits for its sessions' trainings to be evaluated and saved


_TRAINING: set[threading.Event] = set()  # one per training loop running in this process, set once it has ended


SHARED_REDRAW_SECONDS = 1.0  # per training, between one training's redraws while several share the process


def redraw_seconds() -> float:
    """How often a training's live charts redraw: every REDRAW_SECONDS while it trains alone in this app process,
    every N × SHARED_REDRAW_SECONDS while N trainings share it. A redraw holds Python's lock for a tenth to a quarter
    of a second (building the plotly figures), which every session's pages need too: so however many sessions train
    at once, their redraws hold it at most about a quarter of the time, and a further session still gets its pages
    (`benchmarks/load.py`: with eight trainings redrawing N times less often than one, a ninth session's Data page
    showed its data after 3.4 s; redrawing as here, after 2.4 s)."""
    trainings = len(_TRAINING)
    return REDRAW_SECONDS if trainings <= 1 else SHARED_REDRAW_SECONDS * trainings


@st.cache_resource
def save_trainings_at_exit() -> None:
    """Once per app process. Told to stop (SIGTERM, Ctrl-C, and SIGHUP: `_hang_up_as_terminated`), Streamlit ends
    every session, so each training loop stops at its next chunk and saves its runs (`saved_if_the_session_ends`);
    its script thread is a daemon, which the process would not wait for: wait for them (at most
    SHUTDOWN_WAIT_SECONDS) before it exits."""
    atexit.register(_wait_for_trainings)
    _hang_up_as_terminated()


def _hang_up_as_terminated() -> None:
    """Have SIGHUP (its terminal closed, `kill -HUP`) stop the app as SIGTERM does, rather than end the process at
    once with its trainings, unless SIGHUP is ignored (`nohup`). Only the main thread may set a signal's handler: the
    server's event loop, which runs there, sets it. (Nothing to do where no server runs: AppTest.)"""
    if not runtime.exists() or signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL:
        return
    loop = runtime.get_instance()._get_async_objs().eventloop  # not public API: Streamlit is pinned
    if isinstance(loop, asyncio.AbstractEventLoop):
        loop.call_soon_threadsafe(signal.signal, signal.SIGHUP, _terminate)


def _terminate(signum: int, frame) -> None:
    """SIGHUP's handler: what SIGTERM does (Streamlit's handler stops the server and ends every session)."""
    signal.raise_signal(signal.SIGTERM)


def _wait_for_trainings() -> None:
    deadline = time.monotonic() + SHUTDOWN_WAIT_SECONDS
    for ended_event in list(_TRAINING):
        ended_event.wait(max(0.0, deadline - time.monotonic()))


@contextmanager
def saved_if_the_session_ends(trained: Callable[[], Iterable[tuple[Run, Splits]]]) -> Iterator[None]:
    """Around a training loop: if the session ends inside it (its tab closed or reloaded, the app told to stop), no
    rerun will come to settle its runs, so finish the `trained()` (run, its data) pairs and save them to the run
    history on the way out. Nothing of Streamlit's may be used then, session state included: the history's path is
    read beforehand."""
    history_file, viewer = history_path(), access.viewer()
    ended_event = threading.Event()
    _TRAINING.add(ended_event)
    try:
        yield
    except StopException:
        for run, data in trained():
            if run.params is None:
                with suppress(DigitLabError):  # written as it started, it trained nothing: no trace left
                    _history_class()(history_file, viewer=viewer).delete(run.run_id)
                continue
            run.finish(data)
            with suppress(DigitLabError):  # no page is left to say so on
                _history_class()(history_file, viewer=viewer).save(run)
        raise
    finally:
        _TRAINING.discard(ended_event)
        ended_event.set()


def keep_copy(run: Run, name: str) -> Run:
    """Keep a run of a sweep or a study among this session's runs under `name` (made unique), or return the copy
    kept already: the same run (same run_id, so the run history holds it once, under the new name)."""
    for kept in runs().values():
        if kept.run_id == run.run_id:
            return kept
    copy = dataclasses.replace(run, name=unique_name(name))
    keep_run(copy)
    return copy


def keep_run(run: Run) -> str | None:
    """Store (or update) a run in the session under its name; once it has ended, save it to the run history.

    Returns why the run could not be saved (already shown as a warning), or None.
    """
    runs()[run.name] = run
    return save_to_history(run) if ended(run) else None


def history_path() -> str:
    """The run history this session uses (a file or a database URL): its own choice (never with sign-in on: the
    deployment's), else $DIGIT_LAB_DATABASE_URL, else the file in $DIGIT_LAB_HOME or the user data dir."""
    chosen = None if access.sign_in_configured() else st.session_state.get(HISTORY_PATH_KEY)
    return chosen or default_location()


def _history_class() -> type[RunHistory]:
    """The run history's class, imported when a page first uses the history rather than with the app: SQLAlchemy
    comes with it, which would delay the first page by about 0.2 s."""
    from core.store.history import RunHistory

    return RunHistory


@st.cache_resource(show_spinner="Opening the run history...")
def _open_history(path: str, viewer: Viewer | None, history_class_id: int) -> RunHistory:
    """One history object per file, per viewer (with sign-in, each user's own runs) and per load of core.history:
    when Streamlit reloads edited modules, the new RunHistory class gets a new object, whose errors are the reloaded
    HistoryError that the pages catch."""
    return _history_class()(path, viewer=viewer)


def history() -> RunHistory:
    """The run history as this session's user sees it (with sign-in, their own runs; a teacher's, everyone's); raises
    HistoryError (with what to do) if its file is corrupt or from a newer version."""
    return _open_history(history_path(), access.viewer(), id(_history_class()))


def writable_history() -> RunHistory | None:
    """The run history to write runs in training to (`GroupCheckpoints`), or None when it cannot be used: the runs
    are then kept in this session alone, and the Runs page says why."""
    try:
        return history()
    except DigitLabError:
        return None


def _saved_version(run: Run) -> tuple:
    return run.name, run.status, len(run.history), run.test_accuracy


def save_to_history(run: Run) -> str | None:
    """Save an ended run with its test-set confusion matrix, unless this version of it is already saved.

    Returns (and shows as a warning) why the run could not be saved, or None.
    """
    saved = st.session_state.setdefault(SAVED_KEY, {})
    if saved.get(run.run_id) == _saved_version(run):
        return None
    try:
        with st.spinner(f"Saving run '{run.name}' to the run history..."):
            history().save(run)
    except DigitLabError as exc:
        message = f"Run '{run.name}' is kept in this session but could not be saved to the run history: {exc}"
        st.warning(message)
        return message
    saved[run.run_id] = _saved_version(run)
    return None


def reload_run(run_id: str) -> str:
    """Put a saved run back into the session (renamed if another run has its name); returns its session name."""
    for name, run in runs().items():
        if run.run_id == run_id:
            return name
    run = history().load(run_id)
    if run.status.in_progress:
        raise HistoryError(f"Run '{run.name}' is still training in another session or process; reload it when it "
                           "has ended.")
    run.name = unique_name(run.name)
    st.session_state.setdefault(SAVED_KEY, {})[run.run_id] = _saved_version(run)
    keep_run(run)
    return run.name


def rename_run(old: str, new: str) -> str:
    """Rename a run, keeping its position; returns the name actually used."""
    store = runs()
    new = new.strip() or old
    if new == old:
        return old
    new = unique_name(new)
    items = [(new if k == old else k, v) for k, v in store.items()]
    store.clear()
    store.update(items)
    store[new].name = new
    if st.session_state.get(SELECTED_RUN_KEY) == old:  # the Results and Weights pages keep showing it
        st.session_state[SELECTED_RUN_KEY] = new
    if CHART_RUNS_KEY in st.session_state:  # on the Train page's chart, or off it, as before
        st.session_state[CHART_RUNS_KEY] = [new if name == old else name for name in st.session_state[CHART_RUNS_KEY]]
    st.session_state.setdefault(CHART_SEEN_KEY, set()).add(new)
    if ended(store[new]):
        save_to_history(store[new])
    return new


def remove_run(name: str) -> None:
    runs().pop(name, None)


def forget_run(run_id: str) -> None:
    """Take a run deleted from the run history out of this session too (a rename or a save would bring it back)."""
    for name in [name for name, run in runs().items() if run.run_id == run_id]:
        remove_run(name)
    st.session_state.get(SAVED_KEY, {}).pop(run_id, None)


def settle(interrupted: Iterable[Run]) -> list[Run]:
    """Finish the runs whose training loop a rerun interrupted (Stop, a page switch): they become "stopped" with
    the parameters of their last chunk and get their validation and test accuracy. Returns the runs settled."""
    settled = [run for run in interrupted if not ended(run)]
    for run in settled:
        run.finish(splits_for(run.spec, run.config.data))
    return settled


def settle_interrupted_runs() -> None:
    """Settle this session's interrupted runs and save them to the run history; a run stopped before its first
    update is dropped, from the history too (nothing was trained)."""
    for name, run in [(name, run) for name, run in runs().items() if run.params is None and not run.history]:
        remove_run(name)
        if run.status.in_progress:  # written to the history as it started (`Checkpoints.start`)
            with suppress(DigitLabError):
                history().delete(run.run_id)
    interrupted = [run for run in runs().values() if not ended(run)]
    if interrupted:
        with st.spinner("Measuring the accuracy of the stopped run..."):
            for run in settle(interrupted):
                keep_run(run)


def setting(name: str):
    """The current value of one of the Train page's settings (kept in session state while its form is not shown)."""
    return st.session_state[SETTINGS_PREFIX + name]


def setting_keys(defaults: dict, page: str = "") -> Callable[[str], str]:
    """Widget keys for a page's settings, each starting at its default and kept across pages (`kept`):
    `key = setting_keys({"epochs": 3}, "sweep")`, then `st.number_input("Epochs", key=key("epochs"))`."""
    prefix = f"{page}." if page else ""
    for name, value in defaults.items():
        kept(prefix + name, value)
    return lambda name: SETTINGS_PREFIX + prefix + name


def kept(name: str, default, valid: Callable[[Any], bool] = lambda value: True) -> str:
    """The key of a widget that starts at `default` and keeps its value while its page is not shown
    (`keep_settings`); a kept value no longer `valid` (the widget's options changed) starts again at `default`.
    Give the widget itself no default: `st.slider("Steps", 50, 1000, key=kept("lab.steps", 300))`."""
    key = SETTINGS_PREFIX + name
    if key not in st.session_state or not valid(st.session_state[key]):
        st.session_state[key] = default
    return key


def keep_settings() -> None:
    """Keep the values of settings widgets while their page is not shown (Streamlit drops unrendered widgets)."""
    for key in [k for k in st.session_state if str(k).startswith(SETTINGS_PREFIX)]:
        st.session_state[key] = st.session_state[key]


def test_evaluation(run: Run) -> Evaluation:
    """The run's evaluation on the test set (computed once per parameters, by `Run.finish` or here)."""
    return run.test_evaluation(splits_for(run.spec, run.config.data))
