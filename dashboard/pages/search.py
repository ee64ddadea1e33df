"""Search: an Optuna hyperparameter study of MLPs, run here (live, with a Stop that keeps the finished trials) or by
`python -m core search` workers, whose trials show here after a Refresh."""

from __future__ import annotations

import itertools
import time

import optuna
import optuna.visualization as ov
import pandas as pd
import streamlit as st
from optuna.trial import FrozenTrial, TrialState
from streamlit.delta_generator import DeltaGenerator

from core.data.splits import SplitConfig
from core.errors import DigitLabError
from core.networks.base import Activation
from core.search.space import Budget, Pruner, Sampler, SearchSetup, SearchSpace
from core.search.study import (
    RUN_ID_ATTR,
    RUN_NAME_ATTR,
    STATUS_ATTR,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    search,
    storage_url,
    study_names,
)
from core.training.config import OPTIMIZER_LABELS, Optimizer
from core.training.drive import REDRAW_SECONDS, Pace
from core.training.runs import Run
from dashboard import access, export, figures, state
from dashboard.widgets import MISSING, show_error, stop_button

VIEWED_KEY = "search.viewed"  # the study shown below the form
FOLLOW_KEY = "search.follow"  # whether the study shown is redrawn every FOLLOW_SECONDS
FOLLOW_SECONDS = 5
BATCH_SIZES = (16, 32, 50, 64, 100, 128, 256, 512)
SAMPLER_LABELS = {Sampler.TPE: "TPE (learns from the trials so far)", Sampler.RANDOM: "Random",
                  Sampler.GRID: "Grid (3 values per range)"}
PRUNER_LABELS = {Pruner.MEDIAN: "Median (below earlier trials' median)", Pruner.HALVING: "Successive halving",
                 Pruner.NONE: "None (every trial runs to the end)"}
SPACE, SETUP = SearchSpace(), SearchSetup()


@st.cache_resource(max_entries=4, show_spinner="Opening the study storage...")
def storage(url: str) -> optuna.storages.RDBStorage:
    """One storage (an SQLAlchemy engine and its connection pool) per URL, shared by every session."""
    return open_storage(url)


def storage_setting(key) -> str:
    """The storage URL box; the run history's own file when it is left empty (always, with sign-in on: visitors name
    no databases on the server)."""
    if access.sign_in_configured():
        return storage_url(state.history())
    url = st.text_input("Study storage (SQLAlchemy URL)", key=key("storage"),
                        placeholder=storage_url(state.history()),
                        help="Empty: the run history's own SQLite file. Workers started with `python -m core search "
                        "--storage URL` on the same URL (e.g. postgresql+psycopg://user:password@host/db) share "
                        "its studies.")
    return url.strip() or storage_url(state.history())


def search_form(key) -> dict | None:
    """The space, the trials' data and the search's sampler, pruner and budget; their values when "Run the search"
    is pressed, else None."""
    with st.form("search"):
        space, trials, how = st.columns(3, border=True)
        with space:
            st.markdown("**Search space** (MLPs)")
            low, high = st.columns(2)
            lr_low = low.number_input("Learning rate from", format="%g", key=key("lr_low"))
            lr_high = high.number_input("to (log-uniform)", format="%g", key=key("lr_high"))
            depth = st.slider("Hidden layers", 1, 4, key=key("depth"))
            width_low = low.number_input("Widths from", step=8, key=key("width_low"))
            width_high = high.number_input("to (log-uniform)", step=8, key=key("width_high"))
            dropout = st.slider("Dropout", 0.0, 0.9, step=0.01, key=key("dropout"))
            batch_sizes = st.multiselect("Batch sizes", BATCH_SIZES, key=key("batch_sizes"))
            optimizers = st.multiselect("Optimisers", list(Optimizer), format_func=OPTIMIZER_LABELS.get,
                                        key=key("optimizers"))
            momentum = st.slider("Momentum (SGD with momentum)", 0.0, 0.99, step=0.01, key=key("momentum"))
            low, high = st.columns(2)
            decay_low = low.number_input("Weight decay from", format="%g", key=key("decay_low"), min_value=0.0)
            decay_high = high.number_input("to (0, 0: none)", format="%g", key=key("decay_high"), min_value=0.0)
            activation = st.selectbox("Activation", list(Activation), key=key("activation"))
        with trials:
            st.markdown("**Each trial**")
            epochs = st.number_input("Epochs", 1, 100, key=key("epochs"))
            evaluations = st.number_input("Evaluations per epoch", 1, 20, key=key("evaluations"),
                                          help="Validation points; a pruner may stop a trial at each.")
            train_size = st.number_input("Training images", 1, 60000, step=1000, key=key("train_size"))
            val_size = st.number_input("Validation images", 1, 30000, step=500, key=key("val_size"))
        with how:
            st.markdown("**Search**")
            study = st.text_input("Study name", key=key("study"),
                                  help="A study that exists continues, with its own space: workers and earlier "
                                  "searches add to it.")
            sampler = st.selectbox("Sampler", list(Sampler), format_func=SAMPLER_LABELS.get, key=key("sampler"))
            pruner = st.selectbox("Pruner", list(Pruner), format_func=PRUNER_LABELS.get, key=key("pruner"))
            unit = st.radio("Budget in", ["trials", "minutes"], horizontal=True, key=key("unit"))
            amount = st.number_input("Budget", 1, 10000, key=key("amount"),
                                     help="Trials to run, or minutes after which no trial starts.")
        start = st.form_submit_button("Run the search", type="primary", icon=":material/play_arrow:")
    if not start:
        return None
    return dict(space=dict(learning_rate=(lr_low, lr_high), depth=depth, width=(int(width_low), int(width_high)),
                           dropout=dropout, batch_sizes=tuple(sorted(batch_sizes)), optimizers=tuple(optimizers),
                           momentum=momentum, weight_decay=(decay_low, decay_high), activation=activation),
                data=dict(train_size=int(train_size), val_size=int(val_size)), epochs=int(epochs),
                evaluations=int(evaluations), study=study, sampler=sampler, pruner=pruner,
                budget=Budget(trials=int(amount)) if unit == "trials" else Budget(minutes=float(amount)))


def trials_table(trials: list[FrozenTrial]) -> pd.DataFrame:
    """One row per trial: its state, validation accuracy, how its run ended, its run and its settings."""
    rows = [{"trial": t.number, "state": t.state.name.lower(), "val accuracy": t.value,
             "status": t.user_attrs.get(STATUS_ATTR, MISSING), "run": t.user_attrs.get(RUN_NAME_ATTR, MISSING),
             "seconds": round(t.duration.total_seconds(), 1) if t.duration else None, **t.params} for t in trials]
    return pd.DataFrame(rows)


def show_table(place: DeltaGenerator, trials: list[FrozenTrial]) -> None:
    place.dataframe(trials_table(trials), hide_index=True,
                    column_config={"val accuracy": st.column_config.NumberColumn(format="percent"),
                                   "learning_rate": st.column_config.NumberColumn(format="%.2e"),
                                   "weight_decay": st.column_config.NumberColumn(format="%.2e")})


def run_search(live: DeltaGenerator, values: dict, url: str) -> None:
    """Run this session's search in `live`, trial by trial, chunk by chunk; then rerun to show the study."""
    asked = SearchSetup(SearchSpace(**values["space"]), SplitConfig(**values["data"]), values["epochs"],
                        values["evaluations"])
    budget = values["budget"]
    study, setup = open_study(storage(url), values["study"], asked,
                              make_sampler(values["sampler"], asked.space), make_pruner(values["pruner"]))
    if setup != asked:
        study.sampler = make_sampler(values["sampler"], setup.space)
        live.info(f"The study '{study.study_name}' exists: its trials go on with its own space and data.")
    splits = state.splits(state.data_source(), setup.data)
    st.session_state[VIEWED_KEY] = study.study_name  # shown after the search, or after a Stop
    done: list[FrozenTrial] = []
    with live:
        stop_button("the finished trials are kept, and the trial in progress is saved as stopped")
        total = f"{budget.trials} trials" if budget.trials else f"{budget.minutes:g} minutes"
        overall = st.progress(0.0, text=f"Search: {total}, compiling the first trial...")
        trial_bar = st.progress(0.0, text="")
        chart, table, history = st.empty(), st.empty(), st.empty()
        pace, started, draws = Pace(REDRAW_SECONDS), time.perf_counter(), itertools.count()

        def on_chunk(number: int, run: Run) -> None:
            last = run.history[-1]
            if pace.due(last=len(run.history) == 1):  # each trial's first chunk shown at once
                val = next((r["val_accuracy"] for r in reversed(run.history) if r["val_accuracy"] is not None), None)
                trial_bar.progress(min(1.0, last["epoch"] / setup.epochs), text=f"Trial {number}: {run.name}, "
                                   f"epoch {last['epoch']:.2f} of {setup.epochs}" +
                                   (f", validation accuracy {val:.2%}" if val is not None else ""))
                chart.plotly_chart(figures.training_curves([run]), key=f"search.curves{next(draws)}")

        def on_trial(trial: FrozenTrial) -> None:
            done.append(trial)
            fraction = (len(done) / budget.trials if budget.trials else
                        (time.perf_counter() - started) / budget.seconds)
            overall.progress(min(1.0, fraction), text=f"Search: {len(done)} trials ended of {total}")
            show_table(table, done)
            if any(t.state is TrialState.COMPLETE for t in done):  # the study's, other workers' trials included
                with history.container():
                    export.chart(untitled(ov.plot_optimization_history(study, target_name="validation accuracy")),
                                 run_name=study.study_name, what="optimisation history", key=f"search.live{len(done)}")

        search(study, setup, splits, state.history(), budget, on_chunk=on_chunk, on_trial=on_trial)
    st.rerun()


def untitled(fig):
    """An Optuna figure without its own title: the page's heading says what it shows (and a saved file gets it)."""
    return fig.update_layout(title=None)


def charts(study: optuna.Study) -> None:
    """Optuna's own plots of the study, each exportable."""
    name = study.study_name
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    if not complete:
        st.info("No trial of this study has completed yet: the plots come with the first.")
        return
    left, right = st.columns(2)
    with left:
        st.subheader("Optimisation history")
        export.chart(untitled(ov.plot_optimization_history(study, target_name="validation accuracy")), run_name=name,
                     what="optimisation history", key="search.history")
    with right:
        st.subheader("Validation accuracy at each evaluation point")
        intermediate = ov.plot_intermediate_values(study).update_layout(
            xaxis_title="evaluation point", yaxis_title="validation accuracy")
        export.chart(untitled(intermediate), run_name=name, what="intermediate values",
                     key="search.intermediate")
    st.subheader("Parallel coordinates")
    export.chart(untitled(ov.plot_parallel_coordinate(study, target_name="validation accuracy")), run_name=name,
                 what="parallel coordinates", key="search.parallel")
    st.subheader("Hyperparameter importances")
    if len(complete) < 2:
        st.info("Importances need at least two completed trials.")
    else:
        export.chart(untitled(ov.plot_param_importances(study, target_name="validation accuracy")), run_name=name,
                     what="hyperparameter importances", key="search.importances")


def promote(study: optuna.Study) -> None:
    """Put a trial's run among this session's runs (for the Results, Weights and Playground pages)."""
    with_runs = {t.number: t for t in study.trials if RUN_ID_ATTR in t.user_attrs and t.state.is_finished()}
    if not with_runs:
        return
    st.subheader("Promote a trial to a run")
    best = study.best_trial.number if any(t.state is TrialState.COMPLETE for t in study.trials) else None
    numbers = sorted(with_runs, key=lambda n: (n != best, n))
    chosen = st.selectbox("Trial", numbers, format_func=lambda n: f"#{n} {with_runs[n].user_attrs.get(RUN_NAME_ATTR)}"
                          + (" (best)" if n == best else ""), key="search.promoted")
    if st.button("Promote to run", icon=":material/upgrade:",
                 help="Adds the trial's run, from the run history, to this session's runs."):
        try:
            name = state.reload_run(with_runs[chosen].user_attrs[RUN_ID_ATTR])
        except DigitLabError as exc:
            show_error(exc, "A worker saves its trials' runs to its own run history: promote them where that is.")
            return
        st.session_state[state.SELECTED_RUN_KEY] = name
        st.success(f"Kept as run '{name}': see it on the Results, Weights and Playground pages.")


def study_view(url: str, following: bool) -> None:
    """A study of the storage, chosen by name, as it stands (workers may be adding to it: Refresh, or Follow, which
    redraws this part of the page every FOLLOW_SECONDS while `following`). A fragment: it shows its own errors."""
    try:
        show_study(url, following)
    except DigitLabError as exc:
        show_error(exc)


def show_study(url: str, following: bool) -> None:
    names = study_names(storage(url))
    if not names:
        st.info("No study in this storage yet: run a search above, or start workers with `python -m core search`.")
        return
    st.header("Study")
    pick, refresh, follow = st.columns([4, 1, 1], vertical_alignment="bottom")
    viewed = st.session_state.get(VIEWED_KEY)
    chosen = pick.selectbox("Study", names, index=names.index(viewed) if viewed in names else len(names) - 1)
    st.session_state[VIEWED_KEY] = chosen
    refresh.button("Refresh", icon=":material/refresh:", help="Show the trials that workers have added since.")
    if follow.toggle("Follow", key=FOLLOW_KEY, help=f"Refresh every {FOLLOW_SECONDS} s.") != following:
        st.rerun()  # the whole page, to start or stop the timed redraws
    study, setup = open_study(storage(url), chosen)
    states = pd.Series([t.state.name.lower() for t in study.trials]).value_counts()
    st.caption(f"{len(study.trials)} trials ({', '.join(f'{n} {s}' for s, n in states.items())}); each trains "
               f"{setup.epochs} epochs on {setup.data.train_size or 'all'} images, validated on "
               f"{setup.data.val_size}, {setup.evaluations_per_epoch} times per epoch.")
    with st.expander("Search space (JSON)"):
        st.code(setup.space.to_json(), language="json")
    show_table(st, study.trials)
    charts(study)
    promote(study)


def main() -> None:
    st.title("Search")
    st.write("Search the settings of an MLP with Optuna: each trial trains one network with settings drawn from the "
             "space below and reports its validation accuracy at each evaluation point, where the pruner stops the "
             "trials that fall behind. Every trial's run goes to the run history. Workers started with "
             "`python -m core search --study NAME` on the same storage run trials of the same study in parallel.")
    key = state.setting_keys({
        "lr_low": SPACE.learning_rate[0], "lr_high": SPACE.learning_rate[1], "depth": SPACE.depth,
        "width_low": SPACE.width[0], "width_high": SPACE.width[1], "dropout": SPACE.dropout,
        "batch_sizes": list(SPACE.batch_sizes), "optimizers": list(SPACE.optimizers), "momentum": SPACE.momentum,
        "decay_low": SPACE.weight_decay[0], "decay_high": SPACE.weight_decay[1], "activation": SPACE.activation,
        "epochs": SETUP.epochs, "evaluations": SETUP.evaluations_per_epoch, "train_size": SETUP.data.train_size,
        "val_size": SETUP.data.val_size, "study": "digits", "sampler": Sampler.TPE, "pruner": Pruner.MEDIAN,
        "unit": "trials", "amount": 10, "storage": ""}, "search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        url = storage_setting(key)
        live = st.container()  # above the form: the Stop, the progress and the trials so far in sight at once
        if (values := search_form(key)) is not None:
            try:
                run_search(live, values, url)
            except DigitLabError as exc:
                with live:
                    show_error(exc)
        following = st.session_state.get(FOLLOW_KEY, False)
        st.fragment(study_view, run_every=FOLLOW_SECONDS if following else None)(url, following)
    except DigitLabError as exc:
        show_error(exc)


main()
