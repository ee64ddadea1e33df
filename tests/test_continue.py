"""Issue #17 part 3: any ended run trains further with the optimiser state it had, its curves going on from the
step it reached; continued with the same settings it is the same run, bit for bit, as one uninterrupted run of the
total length (in the engine, through model files and the run history, and with `train --resume`)."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO, as_if_its_writer_died, write_idx_dir

from core.cli import main
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError, ModelFileError
from core.networks.base import ModelConfig
from core.store.checkpoint import OPTIMIZER_PREFIX, load_checkpoint, load_model, model_bytes, save_model
from core.store.history import Checkpoints, RunHistory
from core.store.location import DATABASE_NAME
from core.training.config import RunConfig, Schedule, TrainConfig
from core.training.loop import chunks, epoch_steps, train
from core.training.runs import Continuation, Run, continuation_note, continued
from core.training.status import RunStatus

CURVES = ("step", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate")  # not timings


def config(optimizer: str, epochs: int = 3, **settings) -> RunConfig:
    model = ModelConfig("mlp", hidden=(32,), activation="relu", dropout=(0.3,) if optimizer == "adam" else ())
    return RunConfig(model, SplitConfig(val_size=200),
                     TrainConfig(optimizer, batch_size=32, epochs=epochs, steps_per_chunk=7, **settings))


@pytest.fixture(scope="module")
def splits(tiny_mnist):
    return make_splits(tiny_mnist, SplitConfig(val_size=200))


def trained(run: Run, splits, start=None, chunks: int | None = None) -> Run:
    """`run` trained from `start` (its seed's weights when None), stopped after `chunks` chunks when given."""
    for i, progress in enumerate(train(run.config, splits, start=start), 1):
        run.record(progress)
        if i == chunks:
            run.status = RunStatus.STOPPED
            break
    return run


def curves(run: Run) -> list[dict]:
    return [{name: row[name] for name in CURVES} for row in run.history]


def assert_same_params(a, b) -> None:
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def from_file(run: Run) -> Run:
    """The run as read back from its model file's bytes (the optimiser state through the npz format)."""
    saved = load_checkpoint(model_bytes(run.params, run.config, run.spec, opt_state=run.opt_state,
                                        step=run.steps_done))
    assert saved.step == run.steps_done
    return dataclasses.replace(run, params=saved.params, opt_state=saved.opt_state)


def from_history(run: Run, tmp_path) -> Run:
    """The run as a dead process leaves it in the run history: interrupted at its last checkpoint, here its last
    chunk."""
    history = RunHistory(tmp_path / "runs.sqlite3")
    checkpoints = Checkpoints(history, run)
    checkpoints.start()
    checkpoints()
    checkpoints.wait()
    as_if_its_writer_died(history)
    loaded = history.load(run.run_id)
    assert loaded.status is RunStatus.INTERRUPTED and loaded.steps_done == run.steps_done
    return loaded


@pytest.mark.parametrize("optimizer, settings, first_chunks, through", [
    ("adam", {}, 5, "file"),  # Adam with dropout, to the end of the first epoch (31 steps in 5 chunks), a model file
    ("momentum", {"schedule": "exponential", "decay": 0.5, "nesterov": True}, 7, "history"),  # stopped mid-epoch 2
])
def test_a_continued_run_is_the_uninterrupted_run_bit_for_bit(splits, tmp_path, optimizer, settings, first_chunks,
                                                              through):
    whole = trained(Run("whole", config(optimizer, **settings), splits.spec), splits)
    first = trained(Run("first", config(optimizer, **settings), splits.spec), splits, chunks=first_chunks)
    assert 0 < first.steps_done < whole.steps_done and first.opt_state is not None
    first = from_file(first) if through == "file" else from_history(first, tmp_path)
    steps_per_epoch = epoch_steps(first.config.train, len(splits.y_train))
    added = 3 - first.steps_done // steps_per_epoch
    again, start = continued(first, Continuation(added), steps_per_epoch)
    assert again.name == "first (continued)" and again.run_id != first.run_id
    assert again.config == whole.config  # the same settings: its schedule carries on
    assert "with its optimiser state" in continuation_note(again.config, start)
    trained(again, splits, start)
    assert again.status is RunStatus.FINISHED and again.steps_done == whole.steps_done
    assert_same_params(again.params, whole.params)
    assert curves(again) == curves(whole)  # the first run's curves, then the continuation's: evaluations line up
    assert [epoch for epoch, _ in again.snapshots] == [1, 2, 3]
    assert again.train_seconds > first.train_seconds  # the training time goes on too


def test_a_new_learning_rate_restarts_the_schedule_where_the_run_stopped(splits):
    first = trained(Run("cosine", config("adam", epochs=1, schedule="cosine", learning_rate=3e-3), splits.spec),
                    splits)
    steps_per_epoch = epoch_steps(first.config.train, len(splits.y_train))
    again, start = continued(first, Continuation(2, learning_rate=1e-2), steps_per_epoch)
    tc = again.config.train
    assert (tc.epochs, tc.learning_rate, tc.schedule, tc.schedule_start) == (3, 1e-2, Schedule.COSINE, 31)
    assert "starts again at 0.01 there (cosine to zero over the added epochs)" in continuation_note(again.config, start)
    trained(again, splits, start)
    rates = [row["learning_rate"] for row in again.history]
    assert rates[:5] == [row["learning_rate"] for row in first.history]  # the first run's curve is kept
    # a new cosine over the 62 added steps: the rate of the first chunk's last step (6 steps in), then near zero
    assert rates[5] == pytest.approx(1e-2 * (1 + np.cos(np.pi * 6 / 62)) / 2, rel=1e-5) and rates[-1] < 1e-4
    assert int(again.opt_state[0].count) == 93  # the same Adam state went on (its count is the step)
    assert again.history[-1]["val_accuracy"] > 0.8


def test_an_old_run_without_optimiser_state_continues_with_a_fresh_optimiser_and_says_so(splits):
    settings = {"schedule": "exponential", "decay": 0.5}
    whole = trained(Run("whole", config("momentum", **settings), splits.spec), splits)
    first = trained(Run("old", config("momentum", epochs=1, **settings), splits.spec), splits)
    old_blob = model_bytes(first.params, first.config, first.spec)  # as saved before the state was kept
    saved = load_checkpoint(old_blob)
    assert saved.opt_state is None and saved.step is None
    assert_same_params(load_model(old_blob)[0], first.params)
    old = dataclasses.replace(first, params=saved.params, opt_state=None)
    again, start = continued(old, Continuation(2), epoch_steps(old.config.train, len(splits.y_train)))
    assert "with a fresh SGD with momentum optimiser" in continuation_note(again.config, start)
    trained(again, splits, start)
    # the schedule goes on from the step it reached, but the momentum started again: other parameters
    assert [row["learning_rate"] for row in again.history] == [row["learning_rate"] for row in whole.history]
    assert again.steps_done == whole.steps_done and again.history[-1]["val_accuracy"] > 0.8
    assert not np.array_equal(again.params["output"]["w"], whole.params["output"]["w"])


def test_what_cannot_continue_is_refused_in_one_clear_line(splits):
    diverged = trained(Run("boom", config("sgd", learning_rate=1e8), splits.spec), splits)
    assert diverged.diverged
    with pytest.raises(ConfigError, match="diverged at step .*only a finished, stopped or interrupted run"):
        continued(diverged, Continuation(1), 31)
    tc = config("adam").train
    assert [c.batch_index.tolist() for c in chunks(tc, 1000, 7, start=14)] == [
        c.batch_index.tolist() for c in list(chunks(tc, 1000, 7))[2:]]  # the same batches from there on
    with pytest.raises(ConfigError, match="not where a chunk of 7 steps begins"):
        next(chunks(tc, 1000, 7, start=3))
    finished = trained(Run("ok", config("adam", epochs=1), splits.spec), splits)
    with pytest.raises(ConfigError, match="at least one"):
        continued(finished, Continuation(0), 31)
    blob = model_bytes(finished.params, dataclasses.replace(finished.config, train=TrainConfig("sgd")),
                       finished.spec, opt_state=finished.opt_state, step=31)  # Adam's state under SGD's config
    with pytest.raises(ModelFileError, match="optimiser state does not match"):
        load_checkpoint(blob)
    arrays = dict(np.load(io.BytesIO(model_bytes(finished.params, finished.config, finished.spec,
                                                                 opt_state=finished.opt_state, step=31))))
    assert sum(key.startswith(OPTIMIZER_PREFIX) for key in arrays) == 10  # Adam's mu and nu, two counts
    arrays[next(key for key in arrays if key.endswith(".mu['output']['w']"))][0, 0] = np.nan
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(ModelFileError, match="not finite"):
        load_checkpoint(buffer.getvalue())


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True, env=env,
                          timeout=600)


TINY = ("--arch", "mlp", "--hidden", "32", "--dropout", "0.2", "--val-size", "200", "--batch-size", "32")


def test_train_resume_continues_a_model_file_or_a_history_run_exactly(tiny_data_dir, tmp_path):
    import os
    env = {**os.environ, "MNIST_DATA_DIR": str(tiny_data_dir), "DIGIT_LAB_HOME": str(tmp_path / "home"),
           "DIGIT_LAB_COMPILE_CACHE": "off", "PYTHONPATH": str(REPO)}
    whole = cli("train", *TINY, "--epochs", "3", "--save", str(tmp_path / "whole.npz"), "--json", env=env)
    first = cli("train", *TINY, "--epochs", "1", "--save", str(tmp_path / "first.npz"), "--json", env=env)
    assert whole.returncode == first.returncode == 0, (whole.stderr, first.stderr)
    resumed = cli("train", "--resume", str(tmp_path / "first.npz"), "--epochs", "2", "--save",
                  str(tmp_path / "resumed.npz"), "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "Continues from update 31 with its optimiser state (Adam), to the end of epoch 3." in resumed.stderr
    expected, got = load_checkpoint(tmp_path / "whole.npz"), load_checkpoint(tmp_path / "resumed.npz")
    assert got.step == expected.step == 93 and got.config == expected.config
    assert_same_params(got.params, expected.params)
    assert_same_params(got.opt_state, expected.opt_state)
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["test_accuracy"] == json.loads(whole.stdout.strip().splitlines()[-1])["test_accuracy"]

    history = RunHistory(tmp_path / "home" / DATABASE_NAME)
    first_id = json.loads(first.stdout.strip().splitlines()[-1])["run_id"]
    by_run = cli("train", "--resume", first_id, "--epochs", "2", "--lr", "0.0005", "--json", env=env)
    assert by_run.returncode == 0, by_run.stderr
    assert "The learning rate starts again at 0.0005 there (constant)." in by_run.stderr
    run = history.load(json.loads(by_run.stdout.strip().splitlines()[-1])["run_id"])
    assert run.name == f"{history.load(first_id).name} (continued)" and run.steps_done == 93
    first_curves = history.load(first_id).history
    assert run.history[:len(first_curves)] == first_curves and len(run.history) > len(first_curves)
    assert run.history[-1]["learning_rate"] == pytest.approx(5e-4)


def test_train_resume_refuses_what_it_cannot_continue_in_one_line(tiny_mnist, tiny_data_dir, tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
    monkeypatch.setenv("FASHION_MNIST_DATA_DIR", str(write_idx_dir(tmp_path / "fashion", tiny_mnist)))
    model = tmp_path / "m.npz"
    run = trained(Run("m", config("adam", epochs=1), tiny_mnist.spec),
                  make_splits(tiny_mnist, SplitConfig(val_size=200)))
    save_model(model, run.params, run.config, run.spec, opt_state=run.opt_state, step=run.steps_done)
    for flags, message in [(("--arch", "linear"), "--arch cannot be given with --resume"),
                           (("--hidden", "8", "--seed", "3"), "--hidden, --seed cannot be given with --resume"),
                           (("--optimizer", "sgd"), "--optimizer cannot change when continuing a run"),
                           ((), "--resume needs --epochs N"),
                           (("--epochs", "1", "--dataset", "fashion-mnist"), "'m' was trained on MNIST"),
                           (("--epochs", "0"), "Add a whole number of epochs, at least one")]:
        assert main(["train", "--resume", str(model), *flags, "--no-history"]) == 2, flags
        assert message in capsys.readouterr().err, flags
    assert main(["train", "--resume", "no-such-run", "--epochs", "1"]) == 2
    assert "neither a model file nor a run of the history" in capsys.readouterr().err
