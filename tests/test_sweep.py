"""The vmapped sweep trains like the runs one by one; variants become normal runs."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

from core.cli import main
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.experiments.sweep import SweepConfig, train_sweep, variant_name
from core.networks.base import ModelConfig
from core.store.history import RunHistory
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train
from core.training.runs import Run

BASE = RunConfig(ModelConfig("mlp", (16,), "sigmoid"), SplitConfig(val_size=200),
                 TrainConfig("momentum", 0.1, batch_size=50, epochs=2, schedule="exponential", decay=0.9))


@pytest.fixture(scope="module")
def splits(tiny_mnist):
    return make_splits(tiny_mnist, BASE.data)


def curves(records_per_chunk, i):
    return [(p.step, p.train_loss, p.train_accuracy, p.val_loss) for p in (r[i] for r in records_per_chunk)]


@pytest.mark.parametrize("vmapped, width", [(True, 16), (True, 96), (False, 16)])
def test_sweep_matches_runs_one_by_one(splits, vmapped, width):
    # 16 units: one matmul for all variants' first layers; 96: the batch broadcast to each variant's own
    base = dataclasses.replace(BASE, model=ModelConfig("mlp", (width,), "sigmoid"))
    variants = SweepConfig(base, learning_rates=(0.05, 0.5), momenta=(0.5, 0.9)).variants()
    assert len(variants) == 4
    swept = list(train_sweep(variants, splits, vmapped=vmapped))
    for i, variant in enumerate(variants):
        alone = [(p.step, p.train_loss, p.train_accuracy, p.val_loss) for p in train(variant, splits)]
        together = curves(swept, i)
        assert [c[0] for c in together] == [c[0] for c in alone]
        np.testing.assert_allclose(np.array(together, float), np.array(alone, float), rtol=1e-4, atol=1e-5)
    final = swept[-1]
    assert all(p.status == "finished" for p in final)
    assert len({round(p.train_loss, 6) for p in final}) == 4, "different hyperparameters give different curves"


def test_seed_variants_share_batches_and_differ_in_init(splits):
    variants = SweepConfig(dataclasses.replace(BASE, model=ModelConfig("linear")), seeds=(3, 0)).variants()
    assert [v.train.batch_order_seed for v in variants] == [3, 3] and variants[1].train.seed == 0
    swept = list(train_sweep(variants, splits, vmapped=True))
    for i, variant in enumerate(variants):
        # a variant's config, trained alone, is that variant: batches in the shared order, its own initial weights
        alone = list(train(variant, splits))
        np.testing.assert_allclose([p.train_loss for p in (r[i] for r in swept)], [p.train_loss for p in alone],
                                   rtol=1e-4)
    assert swept[-1][0].train_loss != swept[-1][1].train_loss


def test_variants_with_different_batch_orders_are_refused(splits):
    other_order = dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, seed=1))
    with pytest.raises(ConfigError, match="one batch order"):
        next(train_sweep([BASE, other_order], splits))


def test_a_diverging_variant_ends_alone(splits):
    linear = dataclasses.replace(BASE, model=ModelConfig("linear"),
                                 train=dataclasses.replace(BASE.train, optimizer="sgd"))
    variants = SweepConfig(linear, learning_rates=(0.1, 1e37)).variants()
    last = [None, None]
    for records in train_sweep(variants, splits):
        for i, p in enumerate(records):
            if p is not None:
                last[i] = p
    assert last[0].status == "finished"
    assert last[1].diverged and all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(last[1].params))


def test_variants_limits_and_checks(splits):
    with pytest.raises(ConfigError, match="at most 16"):
        SweepConfig(BASE, learning_rates=tuple(0.01 * (i + 1) for i in range(9)), seeds=(0, 1)).variants()
    other_batch = dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, batch_size=20))
    with pytest.raises(ConfigError, match="differ only"):
        next(train_sweep([BASE, other_batch], splits))
    with pytest.raises(ConfigError, match="Each learning rate once, please: 0.1 is given"):
        SweepConfig(BASE, learning_rates=(0.1, 0.2, 0.1)).variants()
    with pytest.raises(ConfigError, match="Each seed once"):
        SweepConfig(BASE, seeds=(4, 4)).variants()
    adam = dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, optimizer="adam"))
    with pytest.raises(ConfigError, match="with adam the 2 momenta would train identical variants"):
        SweepConfig(adam, momenta=(0.5, 0.9)).variants()
    with pytest.raises(ConfigError, match="Seeds must be"):
        SweepConfig(BASE, seeds=(0, -1)).variants()


def test_a_variant_promotes_to_a_normal_run(splits):
    variants = SweepConfig(BASE, learning_rates=(0.1, 0.3)).variants()
    runs = [Run(variant_name(v), v, splits.spec) for v in variants]
    for records in train_sweep(variants, splits):
        for run, p in zip(runs, records):
            run.record(p)
    runs[1].finish(splits)
    assert runs[1].name == "lr 0.3 · m 0.9 · seed 0"
    assert runs[1].status == "finished" and runs[1].snapshots and runs[1].test_accuracy is not None
    assert json.loads(runs[1].to_json())["config"]["train"]["learning_rate"] == 0.3
    assert runs[1].params["hidden_0"]["w"].shape == (784, 16)


def test_sweep_cli(tiny_data_dir, capsys):
    code = main(["sweep", "--data-dir", str(tiny_data_dir), "--arch", "linear", "--optimizer", "momentum",
                 "--lr", "0.01", "--lr", "0.1", "--momentum", "0.5,0.9", "--seeds", "0,1", "--epochs", "1",
                 "--val-size", "200", "--json"])  # list flags may also be repeated
    assert code == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 8
    accuracies = [row["val_accuracy"] for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert {(r["learning_rate"], r["momentum"], r["seed"]) for r in rows} == {
        (lr, m, s) for lr in (0.01, 0.1) for m in (0.5, 0.9) for s in (0, 1)}
    assert len(RunHistory().list()) == 8  # every variant saved, as a run of `train` is
    assert "saved 8 runs to the run history" in err
    assert main(["sweep", "--data-dir", str(tiny_data_dir), "--arch", "linear", "--optimizer", "adam", "--momentum",
                 "0.5", "--epochs", "1", "--val-size", "200", "--no-history"]) == 0
    err = capsys.readouterr().err
    assert "note: --momentum has no effect with --optimizer adam" in err and "saved" not in err
    assert len(RunHistory().list()) == 8
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--data-dir", str(tiny_data_dir), "--lr", "0.1,abc"])
    assert exit_info.value.code == 2


def test_ctrl_c_stops_a_sweep_between_chunks_and_keeps_every_variant(tiny_data_dir, capsys, monkeypatch):
    import signal

    from core.commands import sweep as sweep_command
    real_sweep = sweep_command.train_sweep

    def ctrl_c_while_compiling(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        yield from real_sweep(*args, **kwargs)

    monkeypatch.setattr(sweep_command, "train_sweep", ctrl_c_while_compiling)
    code = main(["sweep", "--data-dir", str(tiny_data_dir), "--arch", "linear", "--lr", "0.01,0.1", "--epochs", "3",
                 "--val-size", "200", "--json", "--no-history"])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 130 and [row["status"] for row in rows] == ["stopped", "stopped"]
    assert all(row["test_accuracy"] is not None for row in rows) and "Traceback" not in err


def test_a_second_sweep_of_the_same_setup_compiles_nothing(splits, caplog):
    import logging
    list(train_sweep(SweepConfig(BASE, learning_rates=(0.05, 0.5)).variants(), splits))
    other_values = SweepConfig(dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, learning_rate=0.2)),
                               learning_rates=(0.01, 0.3), seeds=(4,)).variants()
    with jax.log_compiles(True), caplog.at_level(logging.DEBUG, logger="jax"):
        records = list(train_sweep(other_values, splits))
    assert records[-1][0].status == "finished"
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]


def test_only_the_last_few_sweep_programs_are_kept(splits, monkeypatch):
    import core.experiments.sweep
    monkeypatch.setattr(core.experiments.sweep, "MAX_SWEEP_PROGRAMS", 1)
    for width in (8, 12):
        base = dataclasses.replace(BASE, model=ModelConfig("mlp", (width,), "sigmoid"),
                                   train=dataclasses.replace(BASE.train, epochs=1))
        list(train_sweep(SweepConfig(base, learning_rates=(0.1, 0.2)).variants(), splits))
        assert [key[0].config.hidden for key in core.experiments.sweep._SWEEP_PROGRAMS] == [(width,)]
