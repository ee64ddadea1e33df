"""Hyperparameter search: the space's JSON, searches on the tiny synthetic MNIST, pruning, and worker processes
sharing one study on SQLite and on a real PostgreSQL server started here."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from conftest import REPO

from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.search.space import Budget, Pruner, Sampler, SearchSetup, SearchSpace
from core.search.study import (
    RUN_ID_ATTR,
    STATUS_ATTR,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    search,
    storage_url,
)
from core.store.history import RunHistory
from core.training.config import Optimizer

TINY = SearchSetup(SearchSpace(width=(8, 24), depth=(1, 2), batch_sizes=(32, 64), learning_rate=(1e-3, 3e-2)),
                   SplitConfig(val_size=200, train_size=600), epochs=1, evaluations_per_epoch=3)
TINY_FLAGS = ("--train-size", "600", "--val-size", "200", "--epochs", "1", "--evaluations", "3", "--width-range",
              "8,24", "--batch-sizes", "32,64", "--lr-range", "1e-3,3e-2")


def test_the_space_and_setup_round_trip_through_json():
    space = SearchSpace(learning_rate=(1e-5, 1.0), depth=(1, 3), width=(16, 512), dropout=(0.1, 0.5),
                        batch_sizes=(50, 100), optimizers=(Optimizer.SGD, Optimizer.MOMENTUM), momentum=(0.5, 0.99),
                        weight_decay=(1e-6, 1e-3), activation="tanh")
    assert SearchSpace.from_json(space.to_json()) == space
    assert json.loads(space.to_json())["optimizers"] == ["sgd", "momentum"]
    setup = SearchSetup(space, SplitConfig(val_size=100, train_size=500), epochs=3, evaluations_per_epoch=5)
    assert SearchSetup.from_json(setup.to_json()) == setup


@pytest.mark.parametrize(("change", "message"), [
    ({"learning_rate": (0.1, 0.01)}, "must go from low to high"),
    ({"weight_decay": (0.0, 1e-3)}, "both ends above 0, or both 0"),
    ({"batch_sizes": (32, 32)}, "each once"),
    ({"optimizers": ("adamw",)}, "Unknown optimiser 'adamw'"),
    ({"depth": (0, 2)}, "at least one hidden layer"),
])
def test_a_bad_space_is_a_config_error(change, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace(**change)
    with pytest.raises(ConfigError, match="Unknown search space setting"):
        SearchSpace.from_json('{"widths": [1, 2]}')
    with pytest.raises(ConfigError, match="a number of trials or of minutes"):
        Budget()


def test_the_grid_spaces_each_range():
    grid = SearchSpace(learning_rate=(1e-4, 1e-2), depth=(1, 2), width=(16, 64), optimizers=("adam",)).grid()
    assert grid["learning_rate"] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert grid["width_1"] == grid["width_2"] == [16, 32, 64] and grid["depth"] == [1, 2]
    assert "momentum" not in grid and "weight_decay" not in grid


def tiny_splits():
    return make_splits(load_mnist(), TINY.data)


def new_study(name: str, sampler: Sampler = Sampler.TPE, pruner: Pruner = Pruner.MEDIAN, setup: SearchSetup = TINY):
    history = RunHistory()
    study, setup = open_study(open_storage(storage_url(history)), name, setup,
                              make_sampler(sampler, setup.space, seed=0), make_pruner(pruner))
    return study, setup, history


@pytest.mark.parametrize(("sampler", "pruner"), zip(Sampler, (Pruner.MEDIAN, Pruner.HALVING, Pruner.NONE)))
def test_a_tiny_search_saves_every_trial_run_to_the_history(data_env, sampler, pruner):
    study, setup, history = new_study(f"tiny-{sampler}", sampler, pruner)
    chunks, ended = [], []
    search(study, setup, tiny_splits(), history, Budget(trials=3),
           on_chunk=lambda number, run: chunks.append(number), on_trial=ended.append)
    assert [t.number for t in ended] == [0, 1, 2] and sorted(set(chunks)) == [0, 1, 2]
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)
    saved = {run.run_id: run for run in history.list()}
    for trial in study.trials:
        run = saved[trial.user_attrs[RUN_ID_ATTR]]
        assert run.name.startswith(f"tiny-{sampler} #{trial.number} 784-")
    loaded = history.load(study.trials[0].user_attrs[RUN_ID_ATTR])
    params = study.trials[0].params
    assert loaded.config.train.learning_rate == params["learning_rate"]
    assert loaded.config.model.hidden[0] == params["width_1"] and loaded.config.train.eval_every > 0


def test_pruning_stops_a_trial_that_learns_nothing_early(data_env):
    space = dataclasses.replace(TINY.space, learning_rate=(1e-7, 1e-1), optimizers=(Optimizer.ADAM, Optimizer.SGD))
    study, setup, history = new_study("pruning", pruner=Pruner.MEDIAN, setup=dataclasses.replace(TINY, space=space))
    sane = {"learning_rate": 1e-2, "depth": 1, "width_1": 16, "dropout": 0.0, "batch_size": 32, "optimizer": "adam"}
    for _ in range(2):  # the median pruner's startup trials
        study.enqueue_trial(sane)
    study.enqueue_trial({**sane, "learning_rate": 1e-7, "optimizer": "sgd", "batch_size": 64})  # learns nothing
    search(study, setup, tiny_splits(), history, Budget(trials=3))
    first, _, bad = study.trials
    assert first.state is optuna.trial.TrialState.COMPLETE and first.value > 0.5
    assert bad.state is optuna.trial.TrialState.PRUNED
    assert bad.user_attrs[STATUS_ATTR].startswith("pruned at epoch")
    run = history.load(bad.user_attrs[RUN_ID_ATTR])
    assert run.status == "stopped" and run.epochs_completed < setup.epochs


def worker(study: str, storage: str, trials: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "search", "--study", study, "--storage", storage,
                             "--trials", str(trials), "--json", *TINY_FLAGS, *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def check_two_workers(storage: str, study_name: str) -> None:
    """Two worker processes, 3 trials each, on one study: 6 trials, each run once, all in the run history in the
    study's database."""
    workers = [worker(study_name, storage, 3), worker(study_name, storage, 3)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    reported = [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]
    assert [len(lines) for lines in reported] == [3, 3]  # each worker ran its own three trials
    numbers = sorted(line["trial"] for lines in reported for line in lines)
    assert numbers == list(range(6))  # none lost, none run twice
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)
    run_ids = [t.user_attrs[RUN_ID_ATTR] for t in study.trials]
    assert len(set(run_ids)) == 6
    saved = [run.run_id for run in RunHistory(storage).list(name_contains=study_name)]  # the study's database
    assert sorted(saved) == sorted(run_ids)  # every trial's run, once


def test_two_workers_share_a_study_in_the_history_file(data_env):
    check_two_workers(storage_url(RunHistory()), "workers")


def test_two_workers_share_a_study_on_postgresql(data_env, postgres_url):
    check_two_workers(postgres_url, "workers-pg")


def test_sigterm_stops_a_worker_after_its_current_trial(data_env):
    storage = storage_url(RunHistory())
    w = worker("stopped", storage, 50, "--pruner", "none")
    first = w.stdout.readline()  # the first trial has ended
    assert json.loads(first)["trial"] == 0
    w.send_signal(signal.SIGTERM)
    out, err = w.communicate(timeout=300)
    assert w.returncode == 130, err
    assert "stopping after this trial" in err
    study = optuna.load_study(study_name="stopped", storage=storage)
    assert 1 <= len(study.trials) <= 2 and all(t.state.is_finished() for t in study.trials)
    assert len(study.trials) == 1 + len(out.splitlines())


@pytest.mark.parametrize(("flags", "message"), [
    (("--lr-range", "0.1"), "learning rates: give two numbers"),
    (("--storage", "nosuchdb://x"), "Cannot open the study storage nosuchdb://x"),
    (("--trials", "2", "--minutes", "1"), "not allowed with argument"),
    (("--optimizers", "adamw"), "choose from sgd, momentum, adam"),
])
def test_bad_search_flags_are_one_line(data_env, flags, message):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "core", "search", "--study", "s", *flags], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, (
        result.stderr, time.perf_counter() - started)


class PageStop(BaseException):
    """Like Streamlit's StopException (a Stop, a page switch): a BaseException that Optuna does not catch."""


def test_a_stop_inside_a_trial_keeps_the_finished_trials_and_leaves_none_running(data_env):
    study, setup, history = new_study("page-stop", pruner=Pruner.NONE)
    search(study, setup, tiny_splits(), history, Budget(trials=1))

    def stop_in_second_trial(number, run):
        if number == 1 and len(run.history) == 2:
            raise PageStop

    with pytest.raises(PageStop):
        search(study, setup, tiny_splits(), history, Budget(trials=5), on_chunk=stop_in_second_trial)
    finished, stopped = study.trials
    assert finished.state is optuna.trial.TrialState.COMPLETE
    assert stopped.state is optuna.trial.TrialState.FAIL and stopped.user_attrs[STATUS_ATTR] == "stopped"
    run = history.load(stopped.user_attrs[RUN_ID_ATTR])
    assert run.status == "stopped" and len(run.history) == 2 and run.test_accuracy is not None


def test_a_budget_in_minutes_starts_no_trial_after_them(data_env):
    study, setup, history = new_study("minutes", pruner=Pruner.NONE)
    search(study, setup, tiny_splits(), history, Budget(minutes=0.001))  # over before the first trial has ended
    assert len(study.trials) == 1 and study.trials[0].state is optuna.trial.TrialState.COMPLETE
