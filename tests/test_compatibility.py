"""Compatibility with what the code wrote before the core was restructured (tests/fixtures, commit 38ab6dc).

- first_losses.json: the first 20 per-step training losses of softmax regression (SGD), a 784-32-16-10 tanh MLP
  (momentum, weight decay) and LeNet-5 (Adam, cosine) on the synthetic MNIST of conftest, each with the exact
  RunConfig. Every config sets steps_per_chunk=1, so the training generator yields one Progress per step and its
  `train_loss` is that step's loss. Today's engine must reproduce them bit for bit.
- model-v1-mlp.npz, model-v1-lenet5.npz: model files in the v1 format. They hold exactly the parameters after
  those 20 steps (checked below), and must load, round-trip and predict as they did when written.
- history-v1.sqlite3: a run history of schema 2 holding one stopped run ('golden mlp', the MLP above after 20
  steps: its parameters are model-v1-mlp.npz byte for byte). It is only ever opened as a copy in tmp_path: opening
  it migrates it, and opening a WAL database at all, even read-only, leaves -shm / -wal files beside it.

Files from before the data description was stored are MNIST models and runs (MNIST_SPEC). Everything goes
through public, high-level calls (RunConfig, make_splits, train, evaluate, load_model / save_model, RunHistory,
Run, and Model to bind a network to its data), never through a network's own code.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import synthetic_mnist

from core.data.spec import MNIST_SPEC
from core.data.splits import make_splits
from core.networks.base import Model
from core.store.checkpoint import flatten, load_model, save_model
from core.store.history import SCHEMA_VERSION, RunHistory
from core.training.config import RunConfig
from core.training.evaluation import evaluate
from core.training.loop import train
from core.training.runs import Run
from core.training.status import RunStatus

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIRST_LOSSES: dict = json.loads((FIXTURES / "first_losses.json").read_text())
STEPS = 20  # losses per network in first_losses.json

# The parameters each v1 model file holds: name -> shape (all float32).
EXPECTED_PARAMS = {
    "mlp": {
        "hidden_0/w": (784, 32), "hidden_0/b": (32,),
        "hidden_1/w": (32, 16), "hidden_1/b": (16,),
        "output/w": (16, 10), "output/b": (10,),
    },
    "lenet5": {
        "conv1/w": (5, 5, 1, 6), "conv1/b": (6,),
        "conv2/w": (5, 5, 6, 16), "conv2/b": (16,),
        "fc1/w": (256, 120), "fc1/b": (120,),
        "fc2/w": (120, 84), "fc2/b": (84,),
        "output/w": (84, 10), "output/b": (10,),
    },
}

# What each model file predicts on the synthetic test set (300 images), measured with the code that wrote the
# fixtures (38ab6dc; 4a01534, after the split, gives the same): mean cross-entropy, images right, first 8 digits.
EXPECTED_TEST = {
    "mlp": {"loss": float.fromhex("0x1.cdb74cp-3"), "correct": 300, "first_predictions": [6, 6, 7, 8, 0, 4, 5, 3]},
    "lenet5": {"loss": float.fromhex("0x1.07f9fap+1"), "correct": 100, "first_predictions": [6, 6, 3, 6, 3, 4, 3, 3]},
}
LOSS_RTOL = 1e-5  # the mean over 300 images may be summed in another order; a changed network moves it far more

# The one run in history-v1.sqlite3.
SAVED_RUN = {
    "run_id": "a431395589f94c8c8a135a05f74c2b92",
    "name": "golden mlp",
    "status": "stopped",
    "arch": "mlp",
    "architecture": "784-32-16-10 tanh",
    "val_accuracy": 1.0,
    "test_accuracy": 1.0,
    "epochs": 0.4,
    "created": "2026-12-02T19:06:51+00:00",
}

bit_exact = pytest.mark.skipif(
    jax.default_backend() != "cpu",
    reason="the fixtures were written by the CPU build; other backends need not agree bit for bit",
)


# ------------------------------------------------------------------------------------------------ helpers

def first_difference(got: list[float], want: list[float]) -> str | None:
    """None when the losses agree bit for bit, else which step (1-based) differs first and both values."""
    for step, (g, w) in enumerate(zip(got, want), start=1):
        if float(g).hex() != float(w).hex():  # bits, not ==: NaN and -0.0 count too
            return f"step {step}: got {float(g).hex()} ({g!r}), the fixture has {float(w).hex()} ({w!r})"
    if len(got) != len(want):
        return f"got {len(got)} losses, the fixture has {len(want)}"
    return None


def kept_settings(old: dict, new: dict) -> dict:
    """The settings of an old config dict whose value differs in a new one ({} when all are kept); settings added
    since (the new dict's other keys) are not compared."""
    return {f"{part}.{key}": (value, new.get(part, {}).get(key, "<missing>"))
            for part, values in old.items() for key, value in values.items()
            if json.dumps(new.get(part, {}).get(key, "<missing>")) != json.dumps(value)}


def evaluated(params, config: RunConfig, spec, x, y):
    """`evaluate` of the config's network built for `spec` on (x, y)."""
    return evaluate(params, Model(config.model, spec), x, y)


def fixture_config(name: str) -> RunConfig:
    return RunConfig.from_dict(FIRST_LOSSES[name]["config"])


def fixture_splits(config: RunConfig):
    """The splits the fixtures were made on: conftest's synthetic MNIST split by the config's own SplitConfig."""
    return make_splits(synthetic_mnist(), config.data)


def train_first_steps(config: RunConfig, splits, steps: int):
    """(per-step losses, parameters) after the first `steps` steps of the engine's training generator."""
    losses, params = [], None
    progress_records = train(config, splits)
    try:
        for progress in progress_records:
            assert progress.step == len(losses) + 1, (
                f"record {len(losses) + 1} ends at step {progress.step}: the engine no longer yields one record per "
                "step for steps_per_chunk=1, so its train_loss is not a per-step loss")
            losses.append(progress.train_loss)
            params = progress.params
            if len(losses) == steps:
                break
    finally:
        progress_records.close()
    return losses, params


@pytest.fixture(scope="module")
def first_steps():
    """name -> (losses, params) of the fixture's run after STEPS steps, trained once per module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            config = fixture_config(name)
            cache[name] = train_first_steps(config, fixture_splits(config), STEPS)
        return cache[name]

    return get


def history_copy(tmp_path: Path) -> Path:
    """A private copy of history-v1.sqlite3, named as the default history file in a folder of its own."""
    path = tmp_path / "home" / "runs.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(FIXTURES / "history-v1.sqlite3", path)
    return path


def schema_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def same_params(a, b) -> bool:
    """Same names, and every array equal bit for bit (dtype included)."""
    a, b = flatten(jax.device_get(a)), flatten(jax.device_get(b))
    return a.keys() == b.keys() and all(
        np.asarray(a[k]).dtype == np.asarray(b[k]).dtype and np.array_equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------------ training

@bit_exact
@pytest.mark.parametrize("name", sorted(FIRST_LOSSES))
def test_first_losses_are_reproduced_bit_for_bit(name, first_steps):
    entry = FIRST_LOSSES[name]
    assert entry["config"]["train"]["steps_per_chunk"] == 1  # what makes each Progress one step
    want = [float.fromhex(h) for h in entry["losses"]]
    assert len(want) == STEPS
    got, _ = first_steps(name)
    difference = first_difference(got, want)
    assert difference is None, f"{name}: the first differing loss is at {difference}"


def test_the_loss_comparison_catches_one_bit_and_names_the_step():
    want = [float.fromhex(h) for h in FIRST_LOSSES["mlp"]["losses"]]
    assert first_difference(list(want), want) is None
    off = list(want)
    off[6] = float(np.nextafter(np.float32(off[6]), np.float32(np.inf)))  # one float32 ulp at step 7
    message = first_difference(off, want)
    assert message is not None and message.startswith("step 7:")
    assert float(off[6]).hex() in message and FIRST_LOSSES["mlp"]["losses"][6] in message
    assert first_difference(want[:19], want) == "got 19 losses, the fixture has 20"


# ------------------------------------------------------------------------------------------------ model files

@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_a_v1_model_file_loads_and_round_trips(name, tmp_path):
    params, config, spec = load_model(FIXTURES / f"model-v1-{name}.npz")

    assert config == fixture_config(name)  # the file's config is the run of first_losses.json
    assert spec == MNIST_SPEC  # written before files described their data: an MNIST model
    assert kept_settings(FIRST_LOSSES[name]["config"], json.loads(config.to_json())) == {}
    assert RunConfig.from_json(config.to_json()) == config

    flat = {k: np.asarray(v) for k, v in flatten(jax.device_get(params)).items()}
    assert {k: v.shape for k, v in flat.items()} == EXPECTED_PARAMS[name]
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in flat.values())

    again_params, again_config, again_spec = load_model(save_model(tmp_path / f"{name}.npz", params, config, spec))
    assert (again_config, again_spec) == (config, spec)
    assert same_params(again_params, params)


def test_the_settings_comparison_catches_a_changed_setting():
    old = FIRST_LOSSES["mlp"]["config"]
    new = json.loads(json.dumps(old))
    new["model"]["dropout"] = []  # a setting added since is not compared
    assert kept_settings(old, new) == {}
    new["train"]["weight_decay"] = 0.0
    del new["model"]["init"]
    assert kept_settings(old, new) == {"train.weight_decay": (0.0001, 0.0), "model.init": ("glorot", "<missing>")}


@pytest.mark.parametrize("name", sorted(EXPECTED_TEST))
def test_a_v1_model_file_predicts_as_when_it_was_written(name):
    params, config, spec = load_model(FIXTURES / f"model-v1-{name}.npz")
    splits = fixture_splits(config)
    assert splits.spec == spec
    expected = EXPECTED_TEST[name]

    result = evaluated(params, config, spec, splits.x_test, splits.y_test)
    assert np.isfinite(result.probabilities).all() and np.isfinite(result.losses).all()
    np.testing.assert_allclose(result.probabilities.sum(-1), 1.0, rtol=1e-5)
    assert result.predictions[:8].tolist() == expected["first_predictions"]
    assert int((result.predictions == splits.y_test).sum()) == expected["correct"]
    assert result.loss == pytest.approx(expected["loss"], rel=LOSS_RTOL)

    # The tolerance tells networks apart: the same weights 1% larger miss it by far.
    scaled = jax.tree_util.tree_map(lambda p: p * 1.01, params)
    assert evaluated(scaled, config, spec, splits.x_test, splits.y_test).loss != pytest.approx(
        expected["loss"], rel=100 * LOSS_RTOL)


@bit_exact
@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_a_v1_model_file_holds_the_parameters_after_the_fixture_steps(name, first_steps):
    params, _, _ = load_model(FIXTURES / f"model-v1-{name}.npz")
    _, trained = first_steps(name)
    assert same_params(trained, params), f"{name}: 20 steps of today's engine do not give the file's parameters"


# ------------------------------------------------------------------------------------------------ run history

def test_the_v1_history_lists_and_reloads_its_run(tmp_path, monkeypatch):
    path = history_copy(tmp_path)
    assert schema_version(path) == 2  # the fixture's schema: opening it below brings it up to date
    monkeypatch.setenv("DIGIT_LAB_HOME", str(path.parent))
    history = RunHistory()  # the default file in $DIGIT_LAB_HOME: the copy
    assert history.path == path
    assert schema_version(path) == SCHEMA_VERSION

    (row,) = history.list()
    assert {key: getattr(row, key) for key in SAVED_RUN} == SAVED_RUN
    assert [r.run_id for r in history.list(status=RunStatus.STOPPED, arch="mlp")] == [SAVED_RUN["run_id"]]
    assert history.list(status=RunStatus.FINISHED) == [] and history.list(arch="lenet5") == []

    run = history.load(SAVED_RUN["run_id"])
    assert run.name == SAVED_RUN["name"] and run.status is RunStatus.STOPPED and run.status_text == "stopped"
    assert run.config == fixture_config("mlp")
    assert run.spec == MNIST_SPEC  # saved before runs described their data
    assert run.snapshots == []  # it stopped at 0.4 epochs
    assert [record["step"] for record in run.history] == list(range(1, STEPS + 1))
    difference = first_difference([record["train_loss"] for record in run.history],
                                  [float.fromhex(h) for h in FIRST_LOSSES["mlp"]["losses"]])
    assert difference is None, f"the saved curve's first differing loss is at {difference}"

    model_params, _, _ = load_model(FIXTURES / "model-v1-mlp.npz")
    assert same_params(run.params, model_params)

    splits = fixture_splits(run.config)  # its stored metrics are today's metrics of its parameters
    test = evaluated(run.params, run.config, run.spec, splits.x_test, splits.y_test)
    np.testing.assert_array_equal(test.confusion, run.test_confusion)
    assert test.accuracy == run.test_accuracy
    assert evaluated(run.params, run.config, run.spec, splits.x_val, splits.y_val).accuracy == run.val_accuracy


def test_the_v1_history_takes_a_new_run(tmp_path):
    path = history_copy(tmp_path)
    config = fixture_config("linear")
    splits = fixture_splits(config)
    run = Run(name="written after the restructuring", config=config, spec=splits.spec)
    progress_records = train(config, splits)
    for progress, _ in zip(progress_records, range(3)):
        run.record(progress)
    progress_records.close()
    run.finish(splits)
    RunHistory(path).save(run)

    history = RunHistory(path)  # reopened: what was written is in the file
    assert schema_version(path) == SCHEMA_VERSION
    rows = {row.run_id: row for row in history.list()}
    assert rows.keys() == {SAVED_RUN["run_id"], run.run_id}
    assert rows[run.run_id].name == run.name and rows[run.run_id].status == "stopped"
    assert rows[run.run_id].arch == "linear" and rows[run.run_id].epochs == pytest.approx(3 / 50)

    new = history.load(run.run_id)
    assert (new.config, new.spec, new.status) == (config, splits.spec, RunStatus.STOPPED)
    assert same_params(new.params, run.params) and new.test_accuracy == run.test_accuracy
    old = history.load(SAVED_RUN["run_id"])  # the old run is untouched
    assert old.name == SAVED_RUN["name"] and old.test_accuracy == SAVED_RUN["test_accuracy"]
    assert same_params(old.params, load_model(FIXTURES / "model-v1-mlp.npz")[0])
