"""Sweep: train up to 16 variants of one network at once (learning rate × momentum × seed), sharing the batches."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.data.splits import SplitConfig
from core.errors import DigitLabError
from core.experiments.sweep import (
    MAX_VARIANTS,
    SweepConfig,
    run_name,
    train_sweep,
    variant_name,
)
from core.networks.base import NETWORKS, Activation, ModelConfig
from core.networks.mlp import VMAP_MAX_WIDTH
from core.parsing import number_list
from core.store.groups import GroupCheckpoints
from core.summaries import enormous, learned_next_to_nothing
from core.training.config import OPTIMIZER_LABELS, Optimizer, RunConfig, TrainConfig
from core.training.drive import drive
from core.training.loop import Progress
from core.training.runs import Run, ranked_by_validation
from dashboard import export, figures, state
from dashboard.widgets import MISSING, show_error, stop_button

RUNS_KEY = "sweep.runs"  # this session's last sweep: one Run per variant


def _sweep(sweep: SweepConfig) -> None:
    variants = sweep.variants()
    splits = state.splits(state.data_source(), sweep.base.data)
    runs = [Run(name=run_name(v, splits.spec), config=v, spec=splits.spec) for v in variants]
    # in the session before compiling: a Stop is taken at the next Streamlit call, and keeps what is trained by then
    previous = st.session_state.get(RUNS_KEY, [])
    st.session_state[RUNS_KEY] = runs
    stop_button("every variant keeps what it has learned so far and is evaluated")
    bar = st.progress(0.0, text=f"Compiling one program for {len(variants)} variants...")
    chart = st.empty()
    draws = itertools.count()  # each live chart its own key
    checkpoints = GroupCheckpoints(state.writable_history())

    def record(records: list[Progress | None]) -> None:
        for run, progress in zip(runs, records):
            if progress is not None:
                run.record(progress)
                checkpoints(run)  # in the run history as it trains: an app that dies leaves it there, interrupted

    def show(records: list[Progress | None]) -> None:
        latest = max((r for r in records if r is not None), key=lambda p: p.step)
        bar.progress(latest.step / latest.total_steps, text=f"epoch {latest.epoch:.2f} of "
                     f"{sweep.base.train.epochs}, {len(variants)} variants")
        chart.plotly_chart(figures.training_curves(runs), key=f"live{next(draws)}")

    with state.saved_if_the_session_ends(lambda: [(run, splits) for run in runs]):
        try:
            drive(train_sweep(variants, splits), record=record, show=show)
        except DigitLabError:  # refused before anything trained (the error says why): the last sweep stays
            st.session_state[RUNS_KEY] = previous
            raise
        checkpoints.wait()  # (before the ended runs are saved over their checkpoints)
        with st.spinner("Measuring every variant's validation and test accuracy..."):
            for run in runs:
                run.finish(splits)
        for run in runs:
            state.save_to_history(run)


def _wrecked(runs: list[Run]) -> list[str]:
    """The variants that ended with an enormous loss or about chance accuracy without diverging, and which."""
    wrecked = []
    for run in runs:
        if run.diverged or run.test_accuracy is None:
            continue
        loss = run.history[-1]["train_loss"]
        if enormous(loss):
            wrecked.append(f"{variant_name(run.config)} (final training loss {loss:.3g})")
        elif learned_next_to_nothing(run.test_accuracy, run.spec.num_classes):
            wrecked.append(f"{variant_name(run.config)} (test accuracy {run.test_accuracy:.1%}, about chance)")
    return wrecked


def _results_table(runs: list[Run]) -> list[dict]:
    return [{
        "variant": variant_name(run.config), "learning_rate": run.config.train.learning_rate,
        "momentum": run.config.train.momentum if run.config.train.optimizer is Optimizer.MOMENTUM else None,
        "seed": run.config.train.seed, "train_loss": run.history[-1]["train_loss"] if run.history else None,
        "val_accuracy": run.val_accuracy, "test_accuracy": run.test_accuracy,
        "status": run.status_text, "train_seconds": round(run.train_seconds, 1),
    } for run in ranked_by_validation(runs)]


def sweep_form(key: Callable[[str], str]) -> dict | None:
    """The sweep's settings; what they hold when "Train the sweep" is pressed, else None."""
    with st.form("sweep"):
        network, training, swept = st.columns(3, border=True)
        with network:
            arch = st.radio("Architecture", list(NETWORKS), format_func=lambda name: NETWORKS[name].title,
                            horizontal=True, key=key("arch"))
            hidden = st.text_input("MLP hidden widths", key=key("hidden"), help="Comma-separated, one per hidden "
                                   "layer. MLPs only: softmax regression and LeNet-5 ignore it.")
            activation = st.selectbox("MLP activation", list(Activation), key=key("activation"),
                                      help="MLPs only: softmax regression has no hidden layer and LeNet-5 uses ReLU.")
            st.caption("The two MLP settings apply only when the architecture is MLP.")
        with training:
            optimizer = st.selectbox("Optimiser", list(Optimizer), format_func=OPTIMIZER_LABELS.get,
                                     key=key("optimizer"))
            batch_size = st.number_input("Batch size", step=10, key=key("batch_size"))
            epochs = st.number_input("Epochs", step=1, key=key("epochs"))
            train_size = st.number_input("Training images (0 = all that remain)", step=1000, key=key("train_size"))
            val_size = st.number_input("Validation images", step=500, key=key("val_size"),
                                       help="Held out of the training images (stratified).")
        with swept:
            lrs = st.text_input("Learning rates", key=key("lrs"))
            momenta = st.text_input("Momenta (SGD with momentum only)", key=key("momenta"))
            seeds = st.text_input("Seeds", key=key("seeds"))
        start = st.form_submit_button("Train the sweep", type="primary", icon=":material/play_arrow:")
    if not start:
        return None
    return dict(arch=arch, hidden=hidden, activation=activation, optimizer=optimizer, batch_size=batch_size,
                epochs=epochs, train_size=train_size, val_size=val_size, lrs=lrs, momenta=momenta, seeds=seeds)


def sweep_config(arch, hidden, activation, optimizer, batch_size, epochs, train_size, val_size, lrs, momenta,
                 seeds) -> SweepConfig:
    """The sweep the form's values describe (a DigitLabError if they are invalid)."""
    uses = NETWORKS[arch].hyperparameters
    model = ModelConfig(arch, number_list(hidden, int, "Hidden widths") if "hidden" in uses else ModelConfig().hidden,
                        activation)
    model = dataclasses.replace(model, init=model.network.recommended_init(model))
    base = RunConfig(model, SplitConfig(int(val_size), int(train_size) or None),
                     TrainConfig(optimizer, batch_size=int(batch_size), epochs=int(epochs)))
    return SweepConfig(base, number_list(lrs, float, "Learning rates"),
                       number_list(momenta, float, "Momenta") if optimizer == Optimizer.MOMENTUM else (),
                       number_list(seeds, int, "Seeds"))


def start_sweep(live: DeltaGenerator, values: dict) -> None:
    """Train the sweep in `live`, then rerun to show it; or say there why it cannot train."""
    try:
        sweep = sweep_config(**values)
        with live:
            _sweep(sweep)
        st.rerun()
    except DigitLabError as exc:
        with live:
            show_error(exc)


def last_sweep() -> list[Run]:
    """This session's last sweep: dropped if it was stopped while compiling, settled if it was stopped later."""
    runs: list[Run] = st.session_state.get(RUNS_KEY, [])
    if runs and not runs[0].history:  # stopped while compiling
        runs = st.session_state[RUNS_KEY] = []
        st.info("The sweep was stopped while it compiled, before any update: nothing was trained.")
    if settled := state.settle(runs):
        for run in settled:
            state.save_to_history(run)
        st.warning("The sweep was stopped before it finished; each variant keeps the model it had then.")
    return runs


def results(runs: list[Run]) -> list[dict]:
    """The sweep's curves, its results table and its hyperparameters chart; returns the table's rows, best first."""
    model = runs[0].model
    mode = "one vmapped program" if model.network.sweep_vmap_pays(model.config, model.spec) else "variants in turn"
    st.caption(f"{len(runs)} variants of {model.describe()} ({mode}).")
    export.chart(figures.training_curves(runs), run_name="sweep", what="curves", key="sweep.curves")
    table = _results_table(runs)
    st.subheader("Results (click a column header to sort)")
    if wrecked := _wrecked(runs):
        st.warning(f"Far too high a learning rate, most likely, for {'; '.join(wrecked)}: finite, so not diverged, "
                   "but not a network that learned.")
    shown = pd.DataFrame(table).dropna(axis="columns", how="all")
    shown["learning_rate"] = shown["learning_rate"].map("{:g}".format)  # (the table's own %g spells out 1e9)
    shown["train_loss"] = shown["train_loss"].map(lambda loss: MISSING if pd.isna(loss) else f"{loss:.4g}")
    st.dataframe(shown, hide_index=True,
                 column_config={"val_accuracy": st.column_config.NumberColumn("validation accuracy", format="percent"),
                                "test_accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
                                "learning_rate": st.column_config.TextColumn("learning rate"),
                                "train_loss": st.column_config.TextColumn("final training loss"),
                                "train_seconds": st.column_config.NumberColumn("training (s)", format="%.1f")})
    export.chart(figures.sweep_parallel_coordinates(table), run_name="sweep", what="hyperparameters",
                 key="sweep.parcoords")
    return table


def promote(runs: list[Run], table: list[dict]) -> None:
    """Keep one variant among this session's runs."""
    st.subheader("Promote a variant to a run")
    by_variant = {variant_name(run.config): run for run in runs}
    chosen = st.selectbox("Variant", [row["variant"] for row in table])
    if st.button("Promote to run", icon=":material/upgrade:",
                 help="Adds it to this session's runs, for the Results and Weights pages."):
        variant = by_variant[chosen]
        already = any(run.run_id == variant.run_id for run in state.runs().values())
        run = state.keep_copy(variant, variant.name)
        (st.info if already else st.success)(f"{'Already kept' if already else 'Kept'} as run '{run.name}'.")


def main() -> None:
    st.title("Sweep")
    st.write(f"Train up to {MAX_VARIANTS} variants of one network together: every combination of the learning "
             "rates, momenta and seeds below. All variants see the same batches in the same order; each seed "
             f"draws different initial weights. Softmax regression and MLPs up to {VMAP_MAX_WIDTH} units wide train "
             "all variants in one vmapped program; LeNet-5's and wider networks' variants take turns chunk by chunk "
             "in one program compiled for one variant, which measured faster here for them.")
    key = state.setting_keys({"arch": "mlp", "hidden": "64", "activation": "sigmoid", "optimizer": Optimizer.MOMENTUM,
                              "batch_size": 50, "epochs": 3, "train_size": 10000, "val_size": 5000,
                              "lrs": "0.01, 0.03, 0.1, 0.3", "momenta": "0.9", "seeds": "0"}, "sweep")
    live = st.container()  # above the form, where a training's Stop, progress and curves are in sight at once
    if (values := sweep_form(key)) is not None:
        start_sweep(live, values)
    runs = last_sweep()
    if runs and runs[0].history:
        table = results(runs)
        promote(runs, table)


main()
