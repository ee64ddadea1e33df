"""Train: choose a network and its hyperparameters, watch it learn live, keep and compare runs."""

from __future__ import annotations

import itertools
import time

import streamlit as st

from core.data.formats import Dataset
from core.data.spec import DataSpec
from core.data.splits import Splits, default_split
from core.errors import DataError, DigitLabError
from core.networks.base import NETWORKS, Activation, Init, Model, ModelConfig
from core.parsing import number_list
from core.store.history import Checkpoints
from core.summaries import eta_seconds
from core.training.config import OPTIMIZER_LABELS, SCHEDULE_LABELS, Optimizer, RunConfig, Schedule, TrainConfig
from core.training.drive import drive
from core.training.loop import Progress, StartPoint, check_run, epoch_steps, train
from core.training.programs import describe_devices
from core.training.runs import Continuation, Run, continuation_note, continued
from core.training.statistics import stuck_name
from core.training.status import RunStatus
from dashboard import continuing, dynamics_figures, export, figures, state, tuning
from dashboard.widgets import (
    DATA_HINT,
    MISSING,
    RESULTS_PAGE,
    WEIGHTS_PAGE,
    failed_training_warning,
    format_epochs,
    format_or_dash,
    pick_run,
    stop_button,
    train_page_split,
)

S = state.SETTINGS_PREFIX
TRAIN_REQUEST_KEY = "train_request"
TRAIN_ERROR_KEY = "train_error"  # why the last Train press could not start, shown after the rerun
UNSAVED_KEY = "train_unsaved"  # why the run just finished could not be saved to the history, shown after the rerun
INIT_CHOSEN_KEY = S + "init_chosen"  # True once the user picks an initialisation: it stops following the network
RENAMED_KEY = "train_renamed"  # what the last Rename did, shown once
CONTINUED_KEY = "train_continued"  # how the run just continued went on (optimiser state kept or fresh), shown once
SUBSET_CHOICES = {"all": "All remaining images", "total": "A total number", "per_class": "A number per class"}
INIT_NAMES = {Init.NORMAL: "Gaussian (chosen std)", Init.GLOROT: "Glorot", Init.HE: "He"}
# Defaults: a 784-300-10 ReLU MLP with Adam reaches about 97.4% test accuracy in 3 epochs (about 10 s here).
DEFAULTS = {
    "arch": "mlp", "hidden": "300", "activation": Activation.RELU, "dropout": "0", "init": Init.HE, "init_std": 0.1,
    "optimizer": Optimizer.ADAM, "learning_rate": 1e-3, "momentum": 0.9, "nesterov": False,
    "schedule": Schedule.CONSTANT, "decay": 0.97, "weight_decay": 0.0, "batch_size": 50, "epochs": 3, "subset": "all",
    "train_size": 10000, "per_class": 1000, "val_size": 5000, "seed": 0, "eval_every": 0, "steps_per_chunk": 0,
    "devices": 1, "statistics": True,
}
# Setups that show how gradients flow, each with what to look for in its layer statistics.
DYNAMICS_PRESETS = {
    "Vanishing gradients": (
        {"arch": "mlp", "hidden": "100,100,100,100,100,100", "activation": Activation.SIGMOID, "init": Init.NORMAL,
         "init_std": 0.1, "optimizer": Optimizer.SGD, "learning_rate": 0.1, "epochs": 2, "statistics": True},
        "Six sigmoid layers with small random weights (N(0, 0.1²)). Look at the gradient norms: each layer nearer the "
        "input gets about a quarter of the one above it (on MNIST, 0.3 at the last hidden layer, 0.0004 at the "
        "first), so the first layers' update/weight ratio is around 1e-6, a thousandth of the rule of thumb, and "
        "they hardly learn: after two epochs the network still guesses (about 11% right)."),
    "Healthy gradients": (
        {"arch": "mlp", "hidden": "100,100,100,100,100,100", "activation": Activation.RELU, "init": Init.HE,
         "optimizer": Optimizer.SGD, "learning_rate": 0.1, "epochs": 2, "statistics": True},
        "The same depth with ReLU and He's initialisation: the gradient norms stay within a factor of about three "
        "of each other from the output to the input, every layer's update/weight ratio settles near 1e-3, and the "
        "network learns at once (about 96% after two epochs). A few units die; watch their fraction."),
    "Exploding updates": (
        {"arch": "mlp", "hidden": "300", "activation": Activation.RELU, "init": Init.HE, "optimizer": Optimizer.SGD,
         "learning_rate": 2.0, "epochs": 1, "statistics": True},
        "A learning rate far too high: the first updates are a tenth to half the size of the weights (the rule of "
        "thumb is a thousandth) and within a few chunks nearly every ReLU unit is dead (96% on MNIST by step 110). "
        "The loss only says that the network stopped improving (about 38% right)."),
}


CHOICES = {"arch": list(NETWORKS), "activation": list(Activation), "init": list(Init), "optimizer": list(Optimizer),
           "schedule": list(Schedule), "subset": list(SUBSET_CHOICES)}  # the settings that are one of a few
LISTS = {"hidden": int, "dropout": float}  # the settings that are lists of numbers
ADDRESS_READ_KEY = "train_address_read"  # the page's address has given its settings (once a session)
ADDRESS_NOTES_KEY = "train_address_notes"  # what in the address could not be used, shown once


def read_address(defaults: dict) -> None:
    """The settings in the page's address (a shared setup), once a session, before the widgets are drawn; what is
    not a setting or not a valid value is noted, and that setting keeps its default."""
    if st.session_state.get(ADDRESS_READ_KEY):
        return
    st.session_state[ADDRESS_READ_KEY] = True
    values, notes = tuning.settings_from_address(st.query_params.to_dict(), defaults, CHOICES, LISTS)
    for name, value in values.items():
        st.session_state[S + name] = value
    if "init" in values:
        st.session_state[INIT_CHOSEN_KEY] = True
    if notes:
        st.session_state[ADDRESS_NOTES_KEY] = notes


def write_address(defaults: dict) -> None:
    """The settings that differ from their defaults into the page's address: copying it shares the setup."""
    st.query_params.from_dict(tuning.address_of({name: state.setting(name) for name in defaults}, defaults))


def _request_training() -> None:
    st.session_state[TRAIN_REQUEST_KEY] = True


def _follow_network_init() -> None:
    """Until the user picks an initialisation, keep the one that suits the chosen architecture and activation."""
    if not st.session_state.get(INIT_CHOSEN_KEY):
        network = NETWORKS[st.session_state[S + "arch"]]
        activation = st.session_state.get(S + "activation", DEFAULTS["activation"])
        st.session_state[S + "init"] = network.recommended_init(ModelConfig(network.name, activation=activation))


def _mark_init_chosen() -> None:
    st.session_state[INIT_CHOSEN_KEY] = True


def settings_form() -> None:
    """Every hyperparameter of the engine as widgets."""
    v = state.setting
    network, data, optimiser = st.columns(3, border=True)
    with network:
        st.subheader("Network")
        st.radio("Architecture", list(NETWORKS), key=S + "arch", horizontal=True, on_change=_follow_network_init,
                 format_func=lambda name: NETWORKS[name].title, help="See the Data page for what each one is.")
        uses = NETWORKS[v("arch")].hyperparameters
        st.caption(NETWORKS[v("arch")].description)
        if "hidden" in uses:
            tuning.hidden_layers("Hidden layer widths", "hidden",
                                 help="Comma-separated, one number per hidden layer: 300 or 500,150; or the sliders.")
        if "activation" in uses:
            st.selectbox("Activation", list(Activation), key=S + "activation", on_change=_follow_network_init)
        if "dropout" in uses:
            tuning.slider("Dropout rate", "dropout", tuning.DROPOUTS, text=True, write="{:g}".format,
                          read=lambda text: number_list(text, float, "Dropout rates")[0],
                          help="The fraction of hidden units dropped at each training step (0 turns dropout off): "
                               "one rate for every hidden dense layer, or one per layer separated by commas. "
                               "Evaluation always uses the whole network.")
        st.selectbox("Weight initialisation", list(Init), key=S + "init", format_func=INIT_NAMES.get,
                     on_change=_mark_init_chosen,
                     help="Biases start at zero. Glorot suits softmax regression and tanh/sigmoid, He suits ReLU "
                          "networks and LeNet-5; this follows the network you choose until you pick one yourself.")
        if v("init") == "normal":
            st.number_input("Init standard deviation", step=0.01, format="%g", key=S + "init_std")
    with data:
        st.subheader("Data")
        st.number_input("Validation images", step=1000, key=S + "val_size",
                        help="Held out of the training images (stratified); 0 turns validation off.")
        st.radio("Train on", list(SUBSET_CHOICES), key=S + "subset", format_func=SUBSET_CHOICES.get, horizontal=True)
        if v("subset") == "total":
            tuning.slider("Training images", "train_size", tuning.TRAIN_SIZES, step=1000)
        elif v("subset") == "per_class":
            tuning.slider("Training images per class", "per_class", tuning.PER_CLASS, step=100)
        st.number_input("Random seed", step=1, key=S + "seed",
                        help="Same seed and settings give the same curves, bit for bit.")
    with optimiser:
        st.subheader("Training")
        st.selectbox("Optimiser", list(Optimizer), key=S + "optimizer", format_func=OPTIMIZER_LABELS.get)
        tuning.slider("Learning rate", "learning_rate", tuning.LEARNING_RATES, step=1e-4, format="%g",
                      help="Much too high a rate makes the loss blow up: the run stops as diverged (NaN or "
                           "infinity), or ends with huge weights, a huge loss and about chance accuracy (the "
                           "results then say so). A rate a little too high trains badly, one too low slowly.")
        if v("optimizer") == Optimizer.MOMENTUM:
            tuning.slider("Momentum", "momentum", tuning.MOMENTA, step=0.05, format="%g")
            st.checkbox("Nesterov", key=S + "nesterov")
        st.selectbox("Learning-rate schedule", list(Schedule), key=S + "schedule", format_func=SCHEDULE_LABELS.get)
        if v("schedule") == Schedule.EXPONENTIAL:
            tuning.slider("Decay factor per epoch", "decay", tuning.DECAYS, step=0.01, format="%g")
        tuning.slider("L2 weight decay", "weight_decay", tuning.WEIGHT_DECAYS, step=1e-4, format="%g")
        tuning.slider("Batch size", "batch_size", tuning.BATCH_SIZES, step=10)
        tuning.slider("Epochs", "epochs", tuning.EPOCHS, step=1)
        with st.expander("Advanced"):
            st.number_input("Validate every N updates (0: at each epoch end)", step=100,
                            key=S + "eval_every",
                            help="Validation runs at a chart refresh: at the first one after every N updates (an "
                                 "automatic refresh interval is kept to N updates at most). Small N slows training.")
            st.number_input("Updates per chart refresh (0: automatic, about 4 a second)", step=10,
                            key=S + "steps_per_chunk")
            st.checkbox("Record layer statistics", key=S + "statistics",
                        help="After each chunk: every layer's weight, gradient and update norms, dead or saturated "
                             "units and activations, drawn live under the curves (a few percent of the time).")
            st.number_input("Devices", min_value=1, step=1, key=S + "devices",
                            help=f"Split each batch across this many devices (the curves stay the same, to float "
                                 f"rounding); the batch size must divide evenly. Here: {describe_devices()}.")


def chosen_config() -> RunConfig:
    """The run the settings describe (a DigitLabError if they are invalid)."""
    v = state.setting
    uses = NETWORKS[v("arch")].hyperparameters  # a field's box is shown, and read, for networks that use it
    hidden = number_list(v("hidden"), int, "Hidden layer widths") if "hidden" in uses else ModelConfig().hidden
    dropout = number_list(v("dropout"), float, "Dropout rates") if "dropout" in uses else ()
    model = ModelConfig(arch=v("arch"), hidden=hidden, activation=v("activation"), init=v("init"),
                        init_std=float(v("init_std")), dropout=dropout)
    split = train_page_split()
    training = TrainConfig(
        optimizer=v("optimizer"), learning_rate=float(v("learning_rate")), momentum=float(v("momentum")),
        nesterov=bool(v("nesterov")), schedule=v("schedule"), decay=float(v("decay")),
        weight_decay=float(v("weight_decay")), batch_size=int(v("batch_size")), epochs=int(v("epochs")),
        seed=int(v("seed")), eval_every=int(v("eval_every")), steps_per_chunk=int(v("steps_per_chunk")),
        devices=int(v("devices")))
    return RunConfig(model=model, data=split, train=training)


def training_summary(config: RunConfig, spec: DataSpec) -> str:
    """e.g. "784-300-10 relu · Adam, learning rate 0.001 · batch 50 · 3 epochs"."""
    tc = config.train
    return (f"{Model(config.model, spec).describe()} · {OPTIMIZER_LABELS[tc.optimizer]}, "
            f"learning rate {tc.learning_rate:g} · "
            f"batch {tc.batch_size} · {tc.epochs} epoch{'s' * (tc.epochs != 1)}")


def progress_text(p: Progress, epochs: int, wall_seconds: float, first_step: int = 0) -> str:
    """The live progress line; its ETA goes by the wall-clock pace since `first_step`, live drawing included."""
    eta = eta_seconds(p.step - first_step, p.total_steps - first_step, wall_seconds)
    parts = [f"Epoch {p.epoch:.2f} of {epochs}", f"update {p.step:,} of {p.total_steps:,}",
             f"{p.samples_per_second:,.0f} samples/s", "ETA " + ("…" if eta is None else f"{eta:.0f} s")]
    return " · ".join(parts)


def _refuse(exc: DigitLabError, hint: str = "Change the settings and press Train again.") -> None:
    """Rerun with the settings enabled again, showing why training could not start."""
    st.session_state[TRAIN_ERROR_KEY] = f"{exc} {hint}"
    st.rerun()


def new_run(config: RunConfig) -> tuple[Run, Splits]:
    """A new run of these settings (named by its network until `run_training` numbers it), and its data."""
    try:
        data = state.splits(state.data_source(), config.data)
    except DigitLabError as exc:
        _refuse(exc, DATA_HINT)
    return Run(Model(config.model, data.spec).describe(), config, data.spec), data  # numbered as it starts


def continued_run(base: Run, more: Continuation) -> tuple[Run, Splits, StartPoint]:
    """The run that trains `base` further, its data (the data `base` trained on) and where it starts."""
    try:
        data = state.splits_for(base.spec, base.config.data)
        run, start = continued(base, more, epoch_steps(base.config.train, len(data.y_train)))
    except DigitLabError as exc:
        _refuse(exc, "")
    return run, data, start


def run_training(run: Run, data: Splits, start: StartPoint | None = None) -> None:
    """Train in this script run, updating the live view after every chunk. The run is named (a new one numbered, a
    continued one made unique) and kept in the session from its first chunk on; Stop (or any rerun) interrupts this
    loop and `state.settle_interrupted_runs` finishes it."""
    config = run.config
    stop_button("the model trained so far is kept and evaluated")
    if start is not None:
        st.info(continuation_note(config, start), icon=":material/fast_forward:")
    status = st.empty()
    bar = st.empty()
    chart = st.empty()
    statistics_chart = st.empty()
    status.info("Compiling the network for this batch size (a few seconds, once per run)…",
                icon=":material/hourglass_top:")
    # In the session before it trains: a Stop is taken at the first Streamlit call after a click (session state
    # included), so a run stored only after its first chunk could be lost with that chunk trained.
    name = run.name
    run.name = state.unique_name(name)  # a new run's number comes as it is written to the history, below
    state.keep_run(run)  # (dropped on the next rerun if it trains nothing: state.settle_interrupted_runs)
    try:
        checkpoints = Checkpoints(state.history(), run)
    except DigitLabError:  # the history cannot be used: the run is kept in this session only, as Runs says
        checkpoints = Checkpoints(None, run)
    if start is None:  # numbered (`NAME #N`) after this session's runs and the history's, as it is written there
        session_runs, kept_as = state.runs(), run.name
        run.name = name
        checkpoints.start(numbered_after=session_runs)
        session_runs[run.name] = session_runs.pop(kept_as)  # (a plain dict: no Streamlit call, so no Stop, here)
    else:
        checkpoints.start()
    st.session_state[state.SELECTED_RUN_KEY] = run.name  # the pages show it as soon as it exists
    started, first = None, start or StartPoint(None)

    def record(progress: Progress) -> None:
        nonlocal started
        run.record(progress)
        checkpoints()  # in the run history as it trains: an app that dies leaves it there, interrupted
        if started is None:  # training began this first chunk's compute time ago
            started = time.perf_counter() - (progress.elapsed - first.elapsed)

    def show(progress: Progress) -> None:
        status.empty()
        bar.progress(min(progress.step / progress.total_steps, 1.0), text=progress_text(
            progress, config.train.epochs, time.perf_counter() - started, first.step))
        chart.plotly_chart(figures.training_curves([run]))
        if run.statistics:
            statistics_chart.plotly_chart(dynamics_figures.layer_statistics(run.statistics, stuck_name(run.model)))

    try:
        with state.saved_if_the_session_ends(lambda: [(run, data)]):
            progress = train(config, data, start=start, statistics=bool(state.setting("statistics")))
            drive(itertools.takewhile(lambda _: run.status is not RunStatus.STOPPED, progress),
                  record=record, show=show, every=state.redraw_seconds)
            if run.status is RunStatus.STOPPED:  # a rerun already settled this run: keep the model it stopped with
                return
            checkpoints.wait()  # (a checkpoint still being written cannot overwrite the ended run saved after it)
            with st.spinner("Measuring validation and test accuracy…"):
                run.finish(data)
            unsaved = state.keep_run(run)
            if checkpoints.error is not None and not unsaved:
                unsaved = f"Run '{run.name}' was not written to the run history while it trained: {checkpoints.error}"
    except DigitLabError as exc:
        _refuse(exc)
    if unsaved:  # the rerun wipes the warning keep_run showed
        st.session_state[UNSAVED_KEY] = unsaved
    if start is not None:
        st.session_state[CONTINUED_KEY] = f"'{run.name}': {continuation_note(config, start)}"
    st.rerun()


def layer_statistics(run: Run) -> None:
    """The run's layer statistics against steps, and one layer's histograms over time."""
    st.subheader("Inside the training: layer statistics")
    export.chart(dynamics_figures.layer_statistics(run.statistics, stuck_name(run.model)), run_name=run.name,
                 what="layer statistics", key="statistics_chart")
    what_col, layer_col = st.columns(2)
    what = what_col.segmented_control("Histograms of", list(dynamics_figures.HISTOGRAM_KINDS), default="weights",
                                      key="histogram_kind") or "weights"
    kind = dynamics_figures.HISTOGRAM_KINDS[what][0]
    layers = list(run.statistics[0][1][kind])
    if not layers:
        st.caption(f"{run.model.describe()} has no hidden layers, so no activations to show.")
        return
    layer = layer_col.selectbox("Layer", layers, index=len(layers) - 1 if kind == "units" else 0,
                                key=f"histogram_layer.{kind}")
    export.chart(dynamics_figures.histogram_over_time(run.statistics, what, layer), run_name=run.name,
                 what=f"{layer} {what} histograms", key="histogram_chart")
    st.download_button("Layer statistics (CSV)", run.statistics_csv(), on_click="ignore", mime="text/csv",
                       file_name=export.file_name(run.name, "layer-statistics", "csv"), key="statistics_csv")


def presets() -> None:
    """Setups that show vanishing, healthy and exploding gradients, each with what to look for."""
    with st.expander("Training dynamics presets: vanishing, healthy and exploding gradients"):
        for name, (settings, caption) in DYNAMICS_PRESETS.items():
            left, right = st.columns([1, 3])
            left.button(name, key=f"preset.{name}", on_click=_apply_preset, args=(settings,))
            right.caption(caption)


def _apply_preset(settings: dict) -> None:
    for name, value in settings.items():
        st.session_state[S + name] = value
    st.session_state[INIT_CHOSEN_KEY] = True


def run_outcome(run: Run) -> None:
    """How the latest run ended, its final accuracies and links to look inside it."""
    st.subheader(f"Latest run: {run.name}")
    if CONTINUED_KEY in st.session_state:
        st.info(st.session_state.pop(CONTINUED_KEY), icon=":material/fast_forward:")
    if run.diverged:
        lower = run.config.train.learning_rate / 10
        st.error(f"This run **{run.status_text}**: the loss became NaN or infinite, so its accuracy is not reported. "
                 f"The learning rate ({run.config.train.learning_rate:g}) is probably too high; try {lower:g}.")
    elif run.status is RunStatus.STOPPED:
        st.warning(f"Stopped after {format_epochs(run.epochs_completed)} of {run.config.train.epochs} epochs; "
                   "the model trained so far is kept and evaluated below.")
    failed_training_warning(run)
    cols = st.columns(5)
    cols[0].metric("Validation accuracy", format_or_dash(run.val_accuracy, ".2%"))
    cols[1].metric("Test accuracy", format_or_dash(run.test_accuracy, ".2%"))
    trained_here = bool(run.history)  # a model loaded from a file brings no record of its training
    cols[2].metric("Epochs", format_epochs(run.epochs_completed) if trained_here else MISSING)
    cols[3].metric("Training time", f"{run.train_seconds:.1f} s" if trained_here else MISSING,
                   help=f"The training steps and validation, plus {run.compile_seconds:.1f} s compiling; drawing the "
                        "live charts is not counted." if trained_here else "Not known for a loaded model.")
    cols[4].metric("Samples per second", f"{run.samples_per_second:,.0f}" if trained_here else MISSING)
    if run.params is not None and not run.diverged:
        links = st.columns(2)
        with links[0]:
            st.page_link(RESULTS_PAGE, label="See its results: confusion matrix and mistakes",
                         icon=":material/analytics:")
        with links[1]:
            st.page_link(WEIGHTS_PAGE, label="Look at its weights", icon=":material/grid_view:")
    if run.statistics:
        layer_statistics(run)


def _rename(old: str) -> None:
    wanted = st.session_state[f"rename.{old}"].strip()
    if not wanted:
        st.session_state[RENAMED_KEY] = ("error", "A run's name cannot be empty.")
        return
    new = state.rename_run(old, wanted)
    taken = f" ('{wanted}' is another run's)" if new != wanted else ""
    st.session_state[RENAMED_KEY] = ("success", f"Renamed to '{new}'{taken}.")


def _chart_choice(runs: dict) -> str:
    """The key of the runs-on-the-chart choice: it starts with the last three runs, keeps what the user removed
    off the chart, and adds each new run."""
    seen = st.session_state.setdefault(state.CHART_SEEN_KEY, set())
    if state.CHART_RUNS_KEY not in st.session_state:
        st.session_state[state.CHART_RUNS_KEY] = list(runs)[-3:]
        seen.update(runs)
    chosen = [name for name in st.session_state[state.CHART_RUNS_KEY] if name in runs]
    st.session_state[state.CHART_RUNS_KEY] = chosen + [name for name in runs if name not in seen and name not in chosen]
    seen.update(runs)
    return state.CHART_RUNS_KEY


def runs_section() -> None:
    """All runs of the session: overlaid curves, a table, rename / remove, downloads, and loading a model file."""
    runs = state.runs()
    st.header("Runs in this session")
    if runs:
        shown = st.multiselect("Runs on the chart", list(runs), key=_chart_choice(runs))
        export.chart(figures.training_curves([runs[name] for name in shown]), run_name="runs", what="curves",
                     key="overlay_chart")
        st.dataframe([{
            "name": run.name, "network": run.model.describe(), "status": run.status_text,
            "validation accuracy": run.val_accuracy, "test accuracy": run.test_accuracy,
            **({"epochs": format_epochs(run.epochs_completed), "training (s)": run.train_seconds,
                "compiling (s)": run.compile_seconds, "samples/s": round(run.samples_per_second)} if run.history else
               {"epochs": MISSING, "training (s)": None, "compiling (s)": None, "samples/s": None}),
        } for run in runs.values()], hide_index=True, column_config={
            "validation accuracy": st.column_config.NumberColumn(format="percent"),
            "test accuracy": st.column_config.NumberColumn(format="percent"),
            "training (s)": st.column_config.NumberColumn(format="%.1f", help="Training time, compiling excluded"),
            "compiling (s)": st.column_config.NumberColumn(format="%.1f", help="Time spent compiling the network"),
            "samples/s": st.column_config.NumberColumn(format="localized", help="Training images per second")})
        name = pick_run(need_params=False).name
        rename, remove = st.columns([3, 1], vertical_alignment="bottom")
        with rename.form(f"rename_form.{name}", border=False):  # Enter in the name field renames too
            st.text_input("New name", value=name, key=f"rename.{name}")
            st.form_submit_button("Rename", on_click=_rename, args=(name,))
        remove.button("Remove this run", on_click=state.remove_run, args=(name,), type="tertiary",
                      icon=":material/delete:")
        if RENAMED_KEY in st.session_state:
            kind, message = st.session_state.pop(RENAMED_KEY)
            getattr(st, kind)(message)
        export.run_downloads(runs[name], key="run_downloads")
        if continuing.can_continue(runs[name]):
            with st.expander(f"Continue training '{name}'", icon=":material/fast_forward:"):
                continuing.form(runs[name], "train_continue", lambda more: continuing.request(name, more))
    else:
        st.caption("No runs yet: press Train above, or load a saved model file.")
    export.model_uploader()


def local_data() -> tuple[Dataset | None, DataError | None]:
    """The data here (None when there is none yet: it would be downloaded), or why the folder asked for has none."""
    try:
        return state.local_dataset(), None
    except DataError as exc:
        return None, exc


def checked_config(local: Dataset | None, data_error: DataError | None) -> tuple[RunConfig | None, str | None]:
    """The run the settings describe, checked against the data here; or None and what to fix."""
    try:
        if data_error:
            raise data_error
        config = chosen_config()
        if local is not None:  # the split, batch size and network checked against the data now, not at Train
            check_run(config, local.train_labels, local.spec)
    except DataError as exc:
        return None, f"{exc} {DATA_HINT}"
    except DigitLabError as exc:
        return None, f"{exc} Fix this setting to train."
    return config, None


def settings_section(config_error: str | None) -> None:
    """The settings form, then why the settings, the last Train press or the last save went wrong."""
    if ADDRESS_NOTES_KEY in st.session_state:
        notes = "; ".join(st.session_state.pop(ADDRESS_NOTES_KEY))
        st.warning(f"This page's address holds what cannot be used ({notes}): those settings keep their defaults.")
    presets()
    settings_form()
    if config_error:
        st.error(config_error)
    if TRAIN_ERROR_KEY in st.session_state:
        st.error(st.session_state.pop(TRAIN_ERROR_KEY))
    if UNSAVED_KEY in st.session_state:
        st.warning(st.session_state.pop(UNSAVED_KEY))


def main() -> None:
    st.title("Train a network")
    local, data_error = local_data()
    # on a small dataset the default validation set shrinks, as on the Data page
    defaults = DEFAULTS if local is None else {**DEFAULTS, "val_size": default_split(len(local.train_labels)).val_size}
    state.setting_keys(defaults)
    read_address(defaults)
    requested = st.session_state.pop(TRAIN_REQUEST_KEY, False)
    continue_request = st.session_state.pop(continuing.REQUEST_KEY, None)
    config, config_error = checked_config(local, data_error)
    base = continue_request and state.runs().get(continue_request[0])
    training = base is not None or (requested and config is not None)
    if base is not None:
        st.markdown(f"**Continuing '{base.name}': {training_summary(base.config, base.spec)} so far**")
    elif training:  # the live view takes the settings' place, so it is in sight at once
        st.markdown(f"**Training {training_summary(config, state.expected_spec(local))}**")
    else:
        settings_section(config_error)
    write_address(defaults)
    st.button("Train", type="primary", icon=":material/play_arrow:", on_click=_request_training,
              disabled=config is None or training)
    if base is not None:
        run_training(*continued_run(base, continue_request[1]))
    elif training:
        run_training(*new_run(config))
    else:
        if state.runs():
            run_outcome(list(state.runs().values())[-1])
        runs_section()


main()
