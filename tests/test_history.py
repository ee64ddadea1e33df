"""core.store.history: SQLite round trip, filters, concurrent writers, corrupt / newer / foreign files, migrations."""

from __future__ import annotations

import dataclasses
import io
import json
import multiprocessing
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import types
from contextlib import closing
from pathlib import Path

import jax
import numpy as np
import optuna
import pytest
import sqlalchemy as sa
from conftest import REPO

from core.data.spec import MNIST_SPEC, DataSpec
from core.data.splits import SplitConfig, make_splits
from core.errors import HistoryError
from core.networks.base import ModelConfig, seed_key
from core.store import migrations
from core.store.checkpoint import CONFIG_KEY, flatten, model_bytes
from core.store.history import SCHEMA_VERSION, Checkpoints, RunHistory, config_diff, same_server, shown_location
from core.store.location import DATABASE_URL_ENV, HOME_ENV, Viewer, default_location, default_path
from core.store.schema import HEAD, OPTUNA_TABLES, REVISIONS, VERSION_TABLE, runs
from core.store.schema import snapshots as snapshot_table
from core.training.config import Optimizer, RunConfig, Schedule, TrainConfig
from core.training.loop import train
from core.training.runs import Run
from core.training.status import RunStatus

CONFIG = RunConfig(
    model=ModelConfig(arch="mlp", hidden=(16,), activation="tanh"),
    data=SplitConfig(val_size=200),
    train=TrainConfig(optimizer="adam", learning_rate=3e-3, batch_size=50, epochs=2, steps_per_chunk=5),
)


@pytest.fixture(scope="module")
def splits(tiny_mnist):
    return make_splits(tiny_mnist, CONFIG.data)


@pytest.fixture(scope="module")
def trained(splits) -> Run:
    run = Run("tiny mlp", CONFIG, splits.spec)
    for progress in train(CONFIG, splits):
        run.record(progress)
    run.finish(splits)
    return run


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path) -> str:
    """Where a test's history is: a new SQLite file, or a new database on the tests' PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite3")
    return request.getfixturevalue("postgres_url")


def query(location: str, statement: str) -> list:
    """Run one SQL statement on a history's database directly (as another program would) and commit; its rows."""
    engine = sa.create_engine(location if "://" in location else f"sqlite:///{location}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        result = conn.exec_driver_sql(statement)
        return result.all() if result.returns_rows else []


def copy_of(run: Run, **changes) -> Run:
    """Another run (new id) like `run`, with some fields changed."""
    fresh = Run(run.name, run.config, run.spec)
    return dataclasses.replace(run, run_id=fresh.run_id, **changes)


def flat(params) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(params)]


def assert_same_params(a, b) -> None:
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(flat(a), flat(b)):
        np.testing.assert_array_equal(x, y)


def test_round_trip_survives_reopening(location, trained, splits):
    path = location
    evaluation = trained.evaluate(splits.x_test, splits.y_test)
    RunHistory(path).save(trained)

    history = RunHistory(path)  # a restart: a new object on the same file
    [row] = history.list()
    assert (row.run_id, row.name, row.status, row.arch) == (trained.run_id, "tiny mlp", "finished", "mlp")
    assert row.test_accuracy == trained.test_accuracy and row.architecture == "784-16-10 tanh"

    loaded = history.load(trained.run_id)
    assert loaded.config == trained.config
    assert loaded.summary() == trained.summary()
    assert json.dumps(loaded.history) == json.dumps(trained.history)  # None and NaN kept as they were
    assert len(trained.history) > 2
    assert_same_params(loaded.params, trained.params)
    assert [e for e, _ in loaded.snapshots] == [e for e, _ in trained.snapshots] == [1, 2]
    for (_, a), (_, b) in zip(loaded.snapshots, trained.snapshots):
        assert_same_params(a, b)
    again = loaded.evaluate(splits.x_test, splits.y_test)
    np.testing.assert_array_equal(again.predictions, evaluation.predictions)
    np.testing.assert_array_equal(loaded.test_confusion, evaluation.confusion)
    np.testing.assert_array_equal(trained.test_confusion, evaluation.confusion)  # measured by finish()
    assert history.load(trained.run_id, snapshots=False).snapshots == []


def test_saving_again_updates_instead_of_duplicating(location, trained):
    history = RunHistory(location)
    history.save(trained)
    renamed = dataclasses.replace(trained, name="renamed", snapshots=trained.snapshots[:1])
    history.save(renamed)
    [row] = history.list()
    assert row.name == "renamed"
    assert len(history.load(trained.run_id).snapshots) == 1
    np.testing.assert_array_equal(history.load(trained.run_id).test_confusion, trained.test_confusion)


def test_only_ended_runs_are_saved(location, trained):
    history = RunHistory(location)
    with pytest.raises(HistoryError, match="not over"):
        history.save(copy_of(trained, status="running"))
    with pytest.raises(HistoryError, match="not over"):  # the last chunk said "finished", but not yet measured
        history.save(copy_of(trained, test_accuracy=None, val_accuracy=None))
    assert history.list() == []
    history.save(copy_of(trained, status=RunStatus.DIVERGED, diverged_at=3, test_accuracy=None))  # nothing to measure
    history.save(copy_of(trained, status="stopped", params=None, test_accuracy=None))  # stopped while compiling
    assert len(history.list()) == 2


def test_filters(location, trained):
    history = RunHistory(location)
    linear = RunConfig(model=ModelConfig(arch="linear"))
    runs = [
        copy_of(trained, name="Good MLP", test_accuracy=0.97),
        copy_of(trained, name="stopped mlp", status="stopped", test_accuracy=0.80),
        copy_of(trained, name="softmax", config=linear, params=None, snapshots=[], test_accuracy=0.9126),
        copy_of(trained, name="exploded", status=RunStatus.DIVERGED, diverged_at=7, test_accuracy=None),
    ]
    for run in runs:
        history.save(run)

    def names(**filters):
        return sorted(r.name for r in history.list(**filters))

    assert names() == sorted(r.name for r in runs)
    assert names(arch="linear") == ["softmax"]
    assert names(arch="lenet5") == []
    assert names(status="stopped") == ["stopped mlp"]
    assert names(status=RunStatus.DIVERGED) == ["exploded"]
    assert [r.status for r in history.list(status=RunStatus.DIVERGED)] == ["diverged at step 7"]  # the text shown
    exploded = history.load(runs[3].run_id)
    assert (exploded.status, exploded.diverged_at, exploded.status_text) == (
        RunStatus.DIVERGED, 7, "diverged at step 7")
    assert names(name_contains="MLP") == ["Good MLP", "stopped mlp"]
    assert names(name_contains="%") == []  # no LIKE wildcards
    assert names(min_test_accuracy=0.9) == ["Good MLP", "softmax"]
    assert names(arch="mlp", min_test_accuracy=0.9) == ["Good MLP"]
    assert 91.26 / 100 > 0.9126 and names(min_test_accuracy=91.26 / 100) == ["Good MLP", "softmax"]  # as typed
    assert names(min_test_accuracy=0.9127) == ["Good MLP"]
    softmax = history.load(runs[2].run_id)
    assert softmax.params is None and softmax.config == linear


def test_rename_and_delete(location, trained):
    history = RunHistory(location)
    keep, drop = copy_of(trained, name="keep"), copy_of(trained, name="drop")
    history.save(keep)
    history.save(drop)
    history.rename(keep.run_id, "  kept  ")
    assert history.load(keep.run_id).name == "kept"
    with pytest.raises(HistoryError, match="empty"):
        history.rename(keep.run_id, "   ")
    with pytest.raises(HistoryError, match="No saved run"):
        history.rename("missing", "x")
    history.delete(drop.run_id)
    assert [r.name for r in history.list()] == ["kept"]
    with pytest.raises(HistoryError, match="No saved run"):
        history.load(drop.run_id)
    assert query(location, f"SELECT count(*) FROM snapshots WHERE run_id = '{drop.run_id}'") == [(0,)]


ADA, BOB, TEACHER = Viewer("ada@school.org"), Viewer("bob@school.org"), Viewer("teacher@school.org", teacher=True)


def assert_missing_to(history: RunHistory, run_id: str) -> None:
    """Loading, renaming and deleting run `run_id` all fail with a missing run's error."""
    missing = f"No saved run has the id {run_id}; it may have been deleted by another session."
    with pytest.raises(HistoryError) as loading:
        history.load(run_id)
    with pytest.raises(HistoryError) as renaming:
        history.rename(run_id, "mine")
    with pytest.raises(HistoryError) as deleting:
        history.delete(run_id)
    assert str(loading.value) == str(renaming.value) == str(deleting.value) == missing


def test_each_student_sees_and_changes_only_their_own_runs(location, trained):
    path = location
    ada, bob = RunHistory(path, viewer=ADA), RunHistory(path, viewer=BOB)
    assert ada.viewer == ADA
    adas, bobs, local = copy_of(trained, name="ada's"), copy_of(trained, name="bob's"), copy_of(trained, name="local")
    ada.save(adas)
    bob.save(bobs)
    RunHistory(path).save(local)  # saved without signing in: no owner

    assert [(r.name, r.owner) for r in ada.list()] == [("ada's", ADA.name)]
    assert [(r.name, r.owner) for r in bob.list()] == [("bob's", BOB.name)]
    assert sorted((r.name, r.owner) for r in RunHistory(path).list()) == [
        ("ada's", ADA.name), ("bob's", BOB.name), ("local", None)]
    numbered, bobs_namesake = copy_of(trained, name="ada's"), copy_of(trained, name="ada's #9")
    bob.save(bobs_namesake)
    ada.start_numbered(numbered, taken=["ada's #2"])  # numbered after her runs and those taken: Bob's is not hers
    assert numbered.name == "ada's #3"
    ada.delete(numbered.run_id)
    bob.delete(bobs_namesake.run_id)
    assert ada.load(adas.run_id).name == "ada's"
    for run_id in (bobs.run_id, local.run_id, "gone"):  # another's run reads exactly as a missing one
        assert_missing_to(ada, run_id)
    with pytest.raises(HistoryError, match=f"No saved run has the id {bobs.run_id}; it may"):  # saving over it
        ada.save(dataclasses.replace(bobs, name="taken over"))
    assert [(r.name, r.owner) for r in bob.list()] == [("bob's", BOB.name)]
    assert bob.load(bobs.run_id).name == "bob's"

    ada.rename(adas.run_id, "renamed")
    ada.save(dataclasses.replace(adas, name="saved again"))
    assert [(r.name, r.owner) for r in ada.list()] == [("saved again", ADA.name)]
    ada.delete(adas.run_id)
    assert ada.list() == [] and len(RunHistory(path).list()) == 2


def test_a_teacher_sees_everyones_runs_and_changes_only_their_own(location, trained):
    path = location
    adas, teachers = copy_of(trained, name="ada's"), copy_of(trained, name="teacher's")
    RunHistory(path, viewer=ADA).save(adas)
    teacher = RunHistory(path, viewer=TEACHER)
    teacher.save(teachers)
    assert sorted((r.name, r.owner) for r in teacher.list()) == [("ada's", ADA.name), ("teacher's", TEACHER.name)]
    assert teacher.load(adas.run_id).name == "ada's"
    for attempt in (lambda: teacher.rename(adas.run_id, "x"), lambda: teacher.delete(adas.run_id),
                    lambda: teacher.save(dataclasses.replace(adas, name="x"))):
        with pytest.raises(HistoryError, match=f"'ada's' is not yours \\({ADA.name}\\)"):
            attempt()
    assert [r.name for r in RunHistory(path, viewer=ADA).list()] == ["ada's"]
    teacher.rename(teachers.run_id, "mine")
    teacher.delete(teachers.run_id)
    assert [r.name for r in teacher.list()] == ["ada's"]
    RunHistory(path).rename(adas.run_id, "renamed locally")  # without a viewer everything is open, as before
    assert [(r.name, r.owner) for r in RunHistory(path, viewer=ADA).list()] == [("renamed locally", ADA.name)]


def test_checkpoints_record_the_owner_of_a_run_in_training(location, splits):
    path = location
    ada = RunHistory(path, viewer=ADA)
    run = Run("training", CONFIG, splits.spec)
    checkpoints = Checkpoints(ada, run)
    checkpoints.start()
    for progress in train(CONFIG, splits):
        run.record(progress)
        checkpoints()
    checkpoints.wait()
    assert checkpoints.error is None
    assert [(r.name, r.status, r.owner) for r in ada.list()] == [("training", "running", ADA.name)]
    assert RunHistory(path, viewer=BOB).list() == []
    bobs_checkpoints = Checkpoints(RunHistory(path, viewer=BOB), dataclasses.replace(run, name="hijack"))
    bobs_checkpoints.start()  # a run id of another's: refused, as a missing run
    assert "No saved run" in str(bobs_checkpoints.error)
    run.finish(splits)
    ada.save(run)
    assert [(r.name, r.status, r.owner) for r in ada.list()] == [("training", "finished", ADA.name)]


def test_the_command_line_lists_the_history_its_environment_names(location, trained):
    RunHistory(location, viewer=ADA).save(trained)
    result = subprocess.run([sys.executable, "-m", "core", "runs", "--json"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, DATABASE_URL_ENV: location, "PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["run_id"], row["name"], row["owner"]) == (trained.run_id, "tiny mlp", ADA.name)


def sql(path: Path | str, *statements: str | tuple) -> list:
    """Run statements on the file directly (as another program would), commit and close; the last one's rows."""
    with closing(sqlite3.connect(path)) as conn, conn:
        for statement in statements:
            rows = conn.execute(*((statement,) if isinstance(statement, str) else statement)).fetchall()
    return rows


def _save_many(path: str, prefix: str, count: int, barrier) -> None:
    """Worker: open the (possibly still missing) history and save `count` small runs as fast as possible."""
    config = RunConfig(model=ModelConfig(arch="linear"))
    params = {"output": {"w": np.full((784, 10), 0.01, np.float32), "b": np.zeros(10, np.float32)}}
    barrier.wait()
    history = RunHistory(path)
    for i in range(count):
        run = Run(f"{prefix}-{i}", config, MNIST_SPEC, params=params, status="finished", snapshots=[(1, params)],
                  test_accuracy=0.1,
                  test_confusion=np.eye(10, dtype=np.int64))
        history.save(run)


def _start_numbered_runs(path: str, count: int, barrier) -> None:
    """Worker: start `count` runs of one name in the history, numbering each as it is written."""
    config = RunConfig(model=ModelConfig(arch="linear"))
    history = RunHistory(path)
    barrier.wait()
    for _ in range(count):
        history.start_numbered(Run("Softmax regression", config, MNIST_SPEC))


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_runs_started_by_four_processes_at_once_get_numbers_of_their_own(engine, request, tmp_path, monkeypatch):
    location = str(tmp_path / "runs.sqlite3") if engine == "sqlite" else request.getfixturevalue("postgres_url")
    RunHistory(location)
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # (as below)
    context = multiprocessing.get_context("spawn")
    processes, count = 4, 10
    barrier = context.Barrier(processes)
    workers = [context.Process(target=_start_numbered_runs, args=(location, count, barrier)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * processes
    names = sorted((r.name for r in RunHistory(location).list()), key=lambda name: int(name.split("#")[1]))
    assert names == [f"Softmax regression #{number}" for number in range(1, processes * count + 1)]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_four_processes_writing_at_once_lose_nothing(engine, request, tmp_path, monkeypatch):
    # neither process finds a history: all race to create it (a new file, or a database without tables)
    location = str(tmp_path / "shared" / "runs.sqlite3") if engine == "sqlite" else request.getfixturevalue(
        "postgres_url")
    # spawned workers re-run the parent's __main__ file; an AppTest earlier in the session leaves its page script there
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    context = multiprocessing.get_context("spawn")
    prefixes, count = "abcd", 50
    barrier = context.Barrier(len(prefixes))
    workers = [context.Process(target=_save_many, args=(location, prefix, count, barrier)) for prefix in prefixes]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * len(prefixes)
    names = [r.name for r in RunHistory(location).list()]
    assert len(names) == len(prefixes) * count == 200
    assert set(names) == {f"{p}-{i}" for p in prefixes for i in range(count)}
    assert query(location, "SELECT count(*) FROM snapshots") == [(len(prefixes) * count,)]
    assert query(location, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    if engine == "sqlite":
        assert sql(location, "PRAGMA journal_mode") == [("wal",)]
        assert sql(location, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def _refused(path: Path, match: str) -> HistoryError:
    """Opening `path` raises a HistoryError naming the file, and leaves its bytes exactly as they were."""
    before = path.read_bytes()
    with pytest.raises(HistoryError, match=match) as caught:
        RunHistory(path)
    assert str(path) in str(caught.value) and "untouched" in str(caught.value)
    assert path.read_bytes() == before
    return caught.value


def test_a_file_that_is_not_a_database_is_reported_and_left_alone(tmp_path):
    path = tmp_path / "runs.sqlite3"
    path.write_bytes(b"these are my lecture notes, not a database\n" * 100)
    _refused(path, "not a database")


def test_a_corrupt_database_is_reported_and_left_alone(tmp_path, trained):
    path = tmp_path / "runs.sqlite3"
    history = RunHistory(path)
    for i in range(3):
        history.save(copy_of(trained, name=f"run {i}"))
    data = bytearray(path.read_bytes())
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size:3 * page_size] = b"\xa5" * (2 * page_size)  # scribble over the pages after the schema page
    path.write_bytes(bytes(data))
    _refused(path, "corrupt")


def test_a_newer_schema_is_reported_and_left_alone(tmp_path, trained):
    path = tmp_path / "runs.sqlite3"
    RunHistory(path).save(trained)
    sql(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    error = _refused(path, "newer Digit Lab")
    assert f"schema {SCHEMA_VERSION + 1}" in str(error)


def test_another_programs_sqlite_file_is_reported_and_left_alone(tmp_path):
    path = tmp_path / "runs.sqlite3"
    sql(path, "CREATE TABLE contacts (name TEXT)", "INSERT INTO contacts VALUES ('Ada')")
    _refused(path, "did not create")


def test_a_file_deleted_while_in_use_is_created_afresh(tmp_path, trained):
    """An app keeps one RunHistory for hours; deleting the file under it must not break it until a restart."""
    path = tmp_path / "runs.sqlite3"
    history = RunHistory(path)
    history.save(copy_of(trained, name="before"))
    path.unlink()
    assert history.list() == []
    history.save(trained)
    assert [row.run_id for row in RunHistory(path).list()] == [trained.run_id]


def test_a_run_on_other_data_keeps_its_data_description(location):
    letters = DataSpec("letters", 16, 16, 1, tuple("ABCD"), "letter")
    config = RunConfig(model=ModelConfig(arch="mlp", hidden=(8,), activation="tanh"))
    run = Run("letters", config, letters, status="stopped", test_accuracy=0.25,
              test_confusion=np.eye(4, dtype=np.int64))
    run.params = run.model.init(seed_key(0))
    run.snapshots = [(1, run.params)]
    history = RunHistory(location)
    history.save(run)
    [row] = history.list()
    assert row.architecture == "256-8-4 tanh"
    loaded = history.load(run.run_id)
    assert loaded.spec == letters and loaded.model.describe() == "256-8-4 tanh"
    np.testing.assert_array_equal(loaded.test_confusion, np.eye(4))
    assert_same_params(loaded.params, run.params) and loaded.snapshots[0][1]["output"]["w"].shape == (8, 4)


# The schema as version 1 wrote it (no confusion matrix, no snapshots): a fixed record of an old file.
SCHEMA_1 = """CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, arch TEXT NOT NULL,
    architecture TEXT NOT NULL, config TEXT NOT NULL, curves TEXT NOT NULL, val_accuracy REAL,
    test_accuracy REAL, epochs REAL NOT NULL, compile_seconds REAL NOT NULL, train_seconds REAL NOT NULL,
    samples_per_second REAL NOT NULL, created TEXT NOT NULL, saved TEXT NOT NULL, params BLOB)"""


def model_bytes_before_data_descriptions(params, config: RunConfig) -> bytes:
    """A model file as Digit Lab wrote it before model files held the data description."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in flatten(params).items()},
                        **{CONFIG_KEY: np.array(config.to_json())})
    return buffer.getvalue()


def test_a_version_1_database_is_migrated(tmp_path, trained, splits):
    path = tmp_path / "runs.sqlite3"
    row = (trained.run_id, "old run", trained.status, "mlp", "784-16-10 tanh", trained.config.to_json(),
           json.dumps(trained.history), trained.val_accuracy, trained.test_accuracy, trained.epochs_completed,
           trained.compile_seconds, trained.train_seconds, trained.samples_per_second, trained.created,
           trained.created, model_bytes_before_data_descriptions(trained.params, trained.config))
    sql(path, SCHEMA_1, (f"INSERT INTO runs VALUES ({', '.join('?' * len(row))})", row), "PRAGMA user_version = 1")

    history = RunHistory(path)
    assert sql(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    [row] = history.list()
    assert row.name == "old run" and row.test_accuracy == trained.test_accuracy
    old = history.load(trained.run_id)
    assert old.snapshots == [] and history.load(trained.run_id).test_confusion is None
    assert old.spec == MNIST_SPEC  # written before the data description was stored: MNIST
    assert_same_params(old.params, trained.params)
    confusion = old.evaluate(splits.x_test, splits.y_test).confusion
    old.test_confusion = confusion
    history.save(old)  # the new columns and table work on the migrated file
    np.testing.assert_array_equal(RunHistory(path).load(trained.run_id).test_confusion, confusion)
    assert sql(path, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]


# The numbered migrations that took a file from user_version 1 to 2, 3 and 4 before Alembic, as released: a fixed
# record to write old files with.
SCHEMA_2_TO_4 = (
    "ALTER TABLE runs ADD COLUMN confusion TEXT",
    "CREATE TABLE snapshots (run_id TEXT NOT NULL, epoch INTEGER NOT NULL, params BLOB NOT NULL, "
    "PRIMARY KEY (run_id, epoch))",
    "CREATE INDEX runs_by_created ON runs (created)",
    "ALTER TABLE runs ADD COLUMN data TEXT",
    "ALTER TABLE runs ADD COLUMN writer TEXT",
)


def columns(location: str, table: str) -> list[str]:
    engine = sa.create_engine(location if "://" in location else f"sqlite:///{location}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return [column["name"] for column in sa.inspect(conn).get_columns(table)]


def test_a_version_4_database_is_upgraded_in_place_keeping_its_runs(tmp_path, trained):
    path = tmp_path / "runs.sqlite3"
    params = model_bytes(trained.params, trained.config, trained.spec)
    row = (trained.run_id, "version 4 run", "interrupted at step 7", "mlp", "784-16-10 tanh", trained.config.to_json(),
           json.dumps(trained.history), None, None, 1.0, 0.5, 2.0, 1000.0, trained.created, trained.created, params,
           None, json.dumps(trained.spec.to_dict()), None)
    sql(path, SCHEMA_1, *SCHEMA_2_TO_4, (f"INSERT INTO runs VALUES ({', '.join('?' * len(row))})", row),
        ("INSERT INTO snapshots VALUES (?, 1, ?)", (trained.run_id, params)), "PRAGMA user_version = 4")

    history = RunHistory(path)
    assert sql(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert sql(path, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert columns(str(path), "runs") == list(runs.columns.keys())  # as the queries expect
    [saved] = history.list()
    assert (saved.name, saved.status, saved.owner, saved.dataset) == ("version 4 run", "interrupted at step 7", None,
                                                                       MNIST_SPEC.name)
    old = history.load(trained.run_id)
    assert old.status is RunStatus.INTERRUPTED and [epoch for epoch, _ in old.snapshots] == [1]
    assert_same_params(old.params, trained.params)
    assert [r.name for r in RunHistory(path, viewer=TEACHER).list()] == ["version 4 run"]


def test_a_new_history_has_the_tables_its_queries_use_at_the_newest_revision(location):
    RunHistory(location)
    assert migrations.revisions() == list(REVISIONS)  # (the revisions Alembic finds, in order)
    assert columns(location, "runs") == list(runs.columns.keys())
    assert columns(location, "snapshots") == list(snapshot_table.columns.keys())
    assert query(location, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]


def test_optunas_tables_share_the_database_untouched(location):
    url = location if "://" in location else f"sqlite:///{location}"
    optuna.storages.RDBStorage(url)  # Optuna first: a database holding only its tables is a new history
    optunas_revision = query(location, "SELECT version_num FROM alembic_version")
    RunHistory(location).save(Run("run", RunConfig(model=ModelConfig(arch="linear")), MNIST_SPEC, status="stopped"))
    study = optuna.create_study(storage=url, study_name="shared")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert query(location, "SELECT version_num FROM alembic_version") == optunas_revision
    assert [r.name for r in RunHistory(location).list()] == ["run"]
    assert len(optuna.load_study(study_name="shared", storage=url).trials) == 2
    from optuna.storages._rdb.models import BaseModel  # (Optuna's table definitions)

    assert {*BaseModel.metadata.tables, "alembic_version"} == OPTUNA_TABLES


def database_state(location: str) -> list:
    """Every table of the database and what it holds (to check that a refused database is left as it was)."""
    engine = sa.create_engine(location if "://" in location else f"sqlite:///{location}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        tables = sorted(sa.inspect(conn).get_table_names())
        return [(table, sorted(map(repr, conn.exec_driver_sql(f"SELECT * FROM {table}").all()))) for table in tables]


@pytest.mark.parametrize("change", ["newer revision", "another program's table"])
def test_a_newer_or_foreign_database_is_reported_in_one_line_and_left_alone(location, trained, change):
    if change == "newer revision":
        RunHistory(location).save(trained)
        query(location, f"UPDATE {VERSION_TABLE} SET version_num = '9f3c1e2a7b6d'")
        expected = "was written by a newer Digit Lab (schema 9f3c1e2a7b6d; this version reads up to"
    else:
        query(location, "CREATE TABLE contacts (name TEXT)")
        expected = "database that Digit Lab did not create"
    before = database_state(location)
    with pytest.raises(HistoryError, match=re.escape(expected)) as caught:
        RunHistory(location)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400 and "untouched" in message
    assert database_state(location) == before


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "history-v1.sqlite3"  # written before statuses were types


def test_a_history_written_before_the_status_and_optimiser_types_loads_and_is_written_as_before(tmp_path):
    path = tmp_path / "runs.sqlite3"
    shutil.copyfile(FIXTURE, path)  # a copy: opening a WAL database, even to read, writes files beside it
    before = sql(path, "SELECT status, config FROM runs")
    assert [status for status, _ in before] == ["stopped"]
    history = RunHistory(path)

    [row] = history.list(status=RunStatus.STOPPED)
    assert row.name == "golden mlp" and row.status == "stopped"
    assert history.list(status=RunStatus.FINISHED) == history.list(status=RunStatus.DIVERGED) == []
    run = history.load(row.run_id)
    assert (run.status, run.diverged_at, run.status_text) == (RunStatus.STOPPED, None, "stopped")
    assert (run.config.train.optimizer, run.config.train.schedule) == (Optimizer.MOMENTUM, Schedule.CONSTANT)

    history.save(dataclasses.replace(run, name="saved again"))  # the same run: its row is replaced
    [(status, config)] = sql(path, "SELECT status, config FROM runs")
    assert status == "stopped"
    train_part = '"train": '  # the last part of the sorted JSON: the same text as before, bar settings added since
    added = ('"devices": 1, ', '"schedule_start": 0, ')
    now = config[config.index(train_part):].replace(added[0], "").replace(added[1], "")
    assert now == before[0][1][before[0][1].index(train_part):]
    assert history.load(row.run_id).status is RunStatus.STOPPED


def test_config_diff_shows_only_what_differs():
    a = RunConfig(model=ModelConfig(arch="mlp", hidden=(300,)), train=TrainConfig(learning_rate=1e-3))
    b = RunConfig(model=ModelConfig(arch="mlp", hidden=(64,)), train=TrainConfig(learning_rate=1e-3, epochs=5))
    rows = config_diff({"a": a, "b": b})
    assert rows == [
        {"setting": "model.hidden", "a": [300], "b": [64]},
        {"setting": "train.epochs", "a": 3, "b": 5},
    ]
    assert config_diff({"a": a, "same": a}) == []
    linear = RunConfig(model=ModelConfig(arch="linear", hidden=(64,), init="normal", init_std=0.1))
    assert config_diff({"mlp": a, "linear": linear}) == [  # widths, activation, dropout: not softmax regression's
        {"setting": "model.activation", "mlp": "tanh", "linear": None},
        {"setting": "model.arch", "mlp": "mlp", "linear": "linear"},
        {"setting": "model.hidden", "mlp": [300], "linear": None},
        {"setting": "model.init", "mlp": "glorot", "linear": "normal"},
        {"setting": "model.init_std", "mlp": None, "linear": 0.1},
    ]
    dropped = RunConfig(model=dataclasses.replace(a.model, dropout=(0.5,)))
    assert config_diff({"a": a, "dropped": dropped}) == [{"setting": "model.dropout", "a": None, "dropped": [0.5]}]
    other_widths = RunConfig(model=ModelConfig(arch="linear", hidden=(7,), init="normal", init_std=0.1))
    assert config_diff({"a": linear, "b": other_widths}) == []


def test_config_diff_leaves_out_training_settings_the_optimiser_or_schedule_ignores():
    adam = RunConfig(train=TrainConfig(optimizer="adam", momentum=0.9, nesterov=True, decay=0.9))
    other_adam = RunConfig(train=TrainConfig(optimizer="adam", momentum=0.5, decay=0.5))
    assert config_diff({"a": adam, "b": other_adam}) == []
    momentum = RunConfig(train=TrainConfig(optimizer="momentum", momentum=0.5, schedule="exponential", decay=0.5))
    assert config_diff({"adam": adam, "momentum": momentum}) == [
        {"setting": "train.decay", "adam": None, "momentum": 0.5},
        {"setting": "train.momentum", "adam": None, "momentum": 0.5},
        {"setting": "train.nesterov", "adam": None, "momentum": False},
        {"setting": "train.optimizer", "adam": "adam", "momentum": "momentum"},
        {"setting": "train.schedule", "adam": "constant", "momentum": "exponential"},
    ]


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / "runs.sqlite3"
    assert default_location() == str(tmp_path / "home" / "runs.sqlite3")
    monkeypatch.setenv(DATABASE_URL_ENV, " postgresql+psycopg://u:secret@db.example.org/runs ")
    assert default_location() == "postgresql+psycopg://u:secret@db.example.org/runs"
    assert shown_location(default_location()) == "postgresql+psycopg://u:***@db.example.org/runs"
    assert same_server("postgresql://v@db.example.org/other", default_location())
    assert not same_server("postgresql://v@elsewhere.example.org/other", default_location())
    assert not same_server(str(tmp_path / "runs.sqlite3"), str(tmp_path / "other.sqlite3"))
    monkeypatch.delenv(HOME_ENV)
    assert "digit-lab" in str(default_path())


def test_a_class_of_viewers_shares_one_pool_of_connections(postgres_url):
    """An app opens a history per signed-in session: thirty of them must not hold thirty connections."""
    histories = [RunHistory(postgres_url, viewer=Viewer(f"student{i}@school.org")) for i in range(30)]
    for history in histories:
        assert history.list() == []
    database = sa.make_url(postgres_url).database
    (connections,), = query(postgres_url, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'")
    assert connections <= 6  # the shared pool's (at most 5) and the query's own
