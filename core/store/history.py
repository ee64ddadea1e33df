"""Persistent run history: every run, with its curves, metrics, confusion matrix and parameters, in a database.

By default one SQLite file in the user's data directory ($DIGIT_LAB_HOME, else the OS user data dir for
"digit-lab"); any other SQLite file or a PostgreSQL database is named by a SQLAlchemy URL ($DIGIT_LAB_DATABASE_URL),
so that app processes on one server or several share one history. It is reached through SQLAlchemy Core, and Alembic
keeps its schema (`core.store.migrations`, under a version table of its own: Optuna's studies may share the
database, with theirs), upgrading an older history in place, a file from before Alembic included. Parameters are
stored as the engine's safe model format (`core.store.checkpoint.model_bytes`) in binary columns, in the database,
so every server sees them. A run in training is written as it trains (`Checkpoints`: its curves, last parameters and
epoch snapshots, marked "running" by the process that writes it); if that process dies, the run reads back as
"interrupted at step N", with the parameters of its last checkpoint. Every operation runs one short transaction (on
SQLite: on a connection of its own, WAL mode, a busy timeout), so several app sessions and processes can write at
once without losing anything. A database that is not a Digit Lab history, is corrupt, or comes from a newer schema
is reported as a `HistoryError` and never written.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import platformdirs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import DigitLabError, HistoryError
from core.networks.base import Params
from core.store.checkpoint import flatten, load_checkpoint, load_model, model_bytes
from core.store.location import DATABASE_URL_ENV, HOME_ENV, Viewer, default_location
from core.store.processes import this_writer, writer_alive
from core.store.schema import HEAD, OPTUNA_TABLES, REVISIONS, SCHEMA_VERSION, VERSION_TABLE, runs
from core.store.schema import snapshots as snapshot_table
from core.training.config import Optimizer, RunConfig, Schedule
from core.training.runs import Run, ended, numbered_name
from core.training.status import RunStatus, parse_status, status_text

BUSY_TIMEOUT_SECONDS = 30.0


SAVED_STATUSES = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED, RunStatus.LOADED, RunStatus.RUNNING,
                  RunStatus.INTERRUPTED)


CHECKPOINT_SECONDS = 30.0  # a run in training is written at every epoch's end and at least this often


MIGRATION_LOCK = 0x_D161_7AB  # the PostgreSQL advisory lock a process holds while it upgrades the schema
NAMING_LOCK = 0x_D161_7AC  # and the one held while a new run takes its number (on SQLite: the write lock)


WRITE, SYNCED = "digit_lab_write", "digit_lab_synced"  # a transaction's execution options (see `_sqlite_begin`)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedRun:
    """One row of the history listing (no curves, no parameters)."""

    run_id: str
    name: str
    status: str
    arch: str
    architecture: str
    val_accuracy: float | None
    test_accuracy: float | None
    epochs: float
    train_seconds: float
    created: str
    saved: str
    dataset: str  # the name of the data it trained on
    owner: str | None  # who saved it (None: saved without signing in)


RUN_COLUMNS = tuple(runs.columns.keys())


@functools.cache
def _engine(url: str, *, sqlite: bool) -> sa.Engine:
    """One engine per database for the whole process, whichever session or viewer opens it (an app keeps a history
    per session). PostgreSQL: one pool of connections. SQLite: a connection of its own for each operation (as a file
    deleted under the history must not be kept open), its transactions begun by `_sqlite_begin`."""
    if not sqlite:
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
    sa.event.listen(engine, "connect", _sqlite_connected)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


class _Busy(HistoryError):
    """The database stayed locked by another process."""


class RunHistory:
    """The run history in one database (a file path or a SQLAlchemy URL: `sqlite:///...`,
    `postgresql+psycopg://user@host/db`); opening it checks the database and upgrades an older schema. A SQLite file
    deleted while the object is in use (an app keeps one for hours) is created afresh by the next operation.

    With a `viewer`, the runs it saves are theirs, and it lists, loads, renames and deletes only their own runs (a
    teacher lists and loads everyone's); any other run is reported exactly as a missing one. Without one, every run
    is open to it and the runs it saves have no owner."""

    def __init__(self, path_or_url: Path | str | None = None, *, viewer: Viewer | None = None):
        location = str(path_or_url).strip() if path_or_url else default_location()
        self.url, self.path = _database(location)
        self.location = str(self.path) if self.path else self.url.render_as_string(hide_password=True)
        self.viewer = viewer
        try:
            self._engine = _engine(self.url.render_as_string(hide_password=False), sqlite=self.path is not None)
        except (sa.exc.NoSuchModuleError, ImportError) as exc:  # a driver that is not installed
            raise HistoryError(f"The run history {self.location} cannot be used: {exc}.") from None
        self._prepare()

    def _prepare(self) -> None:
        """Check the database and bring its schema up to date, creating a SQLite file and its folder if missing."""
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"Cannot create the run history folder {self.path.parent} ({exc.strerror or exc}); "
                                   f"set {HOME_ENV} to a writable folder.") from None
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                revision = self._open()
                break
            except _Busy:  # SQLite answers "locked" at once, without waiting, while another process creates
                if time.monotonic() > deadline:  # the file or switches it to WAL: try again shortly
                    raise
                time.sleep(0.05)
        if revision != HEAD:
            self._migrate()

    def _open(self) -> str | None:
        """Check the database's schema (and switch a SQLite file to WAL); returns its revision."""
        with self._connect() as conn:  # one consistent snapshot, even while another process migrates
            revision, _ = self._check_schema(conn)
        if self.path is not None:
            with self._connect(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        return revision

    # ------------------------------------------------------------------------------------------ opening

    def _unusable(self, reason: str) -> HistoryError:
        kind = "database" if self.path is None else "file"
        return HistoryError(
            f"The run history {self.location} {reason}. Digit Lab left the {kind} untouched. Move or rename it, or "
            f"use another {kind} (on the Runs page, or {DATABASE_URL_ENV}), to start a new history; your runs in "
            "this session are kept."
        )

    def _check_schema(self, conn: sa.Connection) -> tuple[str | None, bool]:
        """The database's schema revision (None: no history in it yet) and whether Alembic's version table records
        it (a SQLite file from before Alembic has its `user_version` instead), after read-only checks: ours, not
        newer, and not corrupt."""
        tables = set(sa.inspect(conn).get_table_names())
        version = conn.exec_driver_sql("PRAGMA user_version").scalar() if self.path is not None else 0
        recorded = VERSION_TABLE in tables
        if recorded:
            revision = conn.execute(sa.select(sa.column("version_num")).select_from(sa.table(VERSION_TABLE))).scalar()
        else:
            revision = REVISIONS[version - 1] if 0 < version <= SCHEMA_VERSION else None
        if version > SCHEMA_VERSION or (recorded and revision not in REVISIONS):
            found = version if version > SCHEMA_VERSION else revision
            raise self._unusable(f"was written by a newer Digit Lab (schema {found}; this version reads up to "
                                 f"{SCHEMA_VERSION}); upgrade Digit Lab to use it")
        if revision is None and tables - OPTUNA_TABLES:
            raise self._unusable(f"is {'an SQLite' if self.path else 'a'} database that Digit Lab did not create")
        if self.path is not None:
            problems = [line for check in conn.exec_driver_sql("PRAGMA quick_check").scalars()
                        for line in check.splitlines() if not line.startswith("*** in database")]
            if problems != ["ok"]:
                more = f"; {len(problems)} problems in all, listed in {self._log_problems(problems)}" \
                    if len(problems) > 1 else ""
                raise self._unusable(f"is corrupt ({problems[0][:120]}{more})")
        return revision, recorded

    def _log_problems(self, problems: list[str]) -> Path | str:
        """Write SQLite's list of what is corrupt to the user log folder; returns the file (or where it was shown)."""
        log_file = Path(platformdirs.user_log_dir("digit-lab", appauthor=False)) / "run-history-check.log"
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text(f"{datetime.now(UTC).isoformat(timespec='seconds')} {self.path}\n"
                                + "\n".join(problems) + "\n")
        except OSError:
            log.warning("The run history %s is corrupt:\n%s", self.path, "\n".join(problems))
            return "the log"
        return log_file

    def _migrate(self) -> None:
        """Bring the schema to the newest revision in one transaction, holding the lock that keeps other processes
        from doing the same meanwhile (one may have done it already: checked again under the lock)."""
        from core.store import migrations  # Alembic: imported only when a database needs it

        with self._connect(**{WRITE: True}) as conn:
            if self.path is None:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
            revision, recorded = self._check_schema(conn)
            if revision == HEAD:
                return
            migrations.upgrade(conn, None if recorded else revision)
            if self.path is not None:  # so that a Digit Lab from before Alembic refuses it as newer
                conn.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _recreate_if_deleted(self) -> None:
        """Start a new, empty history if the SQLite file was deleted since this object opened it. (Only a missing
        file: in WAL mode a live history's main file may well be empty, its writes still in the -wal file.)"""
        if self.path is not None and not self.path.exists():
            self._prepare()

    @contextmanager
    def _connect(self, **options) -> Iterator[sa.Connection]:
        """A connection with these execution options, in one transaction (committed unless an error leaves it);
        database errors become HistoryErrors that name the history."""
        try:
            with self._engine.connect() as conn:
                conn.execution_options(**options)
                with conn.begin():
                    yield conn
        except sa.exc.OperationalError as exc:
            detail = _first_line(exc.orig or exc)
            if self.path is not None and ("locked" in detail or "busy" in detail):
                raise _Busy(f"The run history {self.location} stayed busy for {BUSY_TIMEOUT_SECONDS:.0f} s "
                            "(another session is writing); try again.") from None
            raise HistoryError(f"The run history {self.location} cannot be used: {detail}.") from None
        except sa.exc.DatabaseError as exc:  # (SQLite reads a file's header itself: opening and closing the file here
            detail = _first_line(exc.orig or exc)  # would drop the locks this process's connections hold on it)
            if self.path is None:
                raise HistoryError(f"The run history {self.location} cannot be used: {detail}.") from None
            if "not a database" in detail:
                raise self._unusable("is not a database (it is not an SQLite file)") from None
            raise self._unusable(f"is corrupt ({detail})") from None

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A transaction for the operations' reads (the file created afresh if it was deleted)."""
        self._recreate_if_deleted()
        with self._connect() as conn:
            yield conn

    @contextmanager
    def _write(self, *, synced: bool = True) -> Iterator[sa.Connection]:
        """One short write transaction, on SQLite taken with the write lock up front so it never deadlocks (the file
        created afresh if it was deleted). Not `synced`: the commit does not wait for the disk (a checkpoint of a
        run in training: it survives the process dying, a power cut may lose it, and the next one comes soon)."""
        self._recreate_if_deleted()
        with self._connect(**{WRITE: True, SYNCED: synced}) as conn:
            if self.path is None and not synced:
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            yield conn

    def _insert(self, table: sa.Table):
        """An INSERT that can be an upsert (ON CONFLICT), in the database's dialect."""
        return (sqlite.insert if self.path is not None else postgresql.insert)(table)

    def _dataset(self) -> sa.ColumnElement:
        """The name of the data a run trained on (NULL: MNIST, all that early versions trained on)."""
        name = sa.func.json_extract(runs.c.data, "$.name") if self.path is not None \
            else sa.cast(runs.c.data, postgresql.JSONB)["name"].astext
        return sa.func.coalesce(name, MNIST_SPEC.name)

    # ------------------------------------------------------------------------------------------ ownership

    def _may_see(self, owner: str | None) -> bool:
        return self.viewer is None or self.viewer.teacher or owner == self.viewer.name

    def _may_change(self, owner: str | None) -> bool:
        return self.viewer is None or owner == self.viewer.name

    def _visible(self) -> list[sa.ColumnElement]:
        """The conditions that keep to the runs the viewer may see."""
        return [] if self.viewer is None or self.viewer.teacher else [runs.c.owner == self.viewer.name]

    def _check_may_change(self, conn: sa.Connection, run_id: str) -> bool:
        """Whether run `run_id` is saved (its row locked until the transaction ends); a HistoryError if it is one
        the viewer may not change (for a run they cannot see, the very error of a missing run)."""
        row = conn.execute(sa.select(runs.c.name, runs.c.owner).where(runs.c.run_id == run_id).with_for_update()
                           ).first()
        if row is None:
            return False
        name, owner = row
        if self._may_change(owner):
            return True
        if self._may_see(owner):
            raise HistoryError(f"Run '{name}' is not yours ({owner or 'saved without signing in'}): you may open it, "
                               "but rename, delete or save over only your own runs.")
        raise _missing(run_id)

    # ------------------------------------------------------------------------------------------ operations

    def save(self, run: Run) -> None:
        """Insert or replace (by run_id) an ended run, with its test-set confusion matrix, its parameters and all its
        epoch snapshots."""
        if not ended(run):
            raise HistoryError(f"Run '{run.name}' ({run.status_text}) is not over and measured yet; only ended runs "
                               "are saved.")
        row = self._row(run, run.status_text, None)
        self._write_rows(row, self._snapshot_blobs(row, run, run.snapshots), ended=True)

    def save_progress(self, run: Run, new_snapshots: list[tuple[int, Params]]) -> None:
        """Write a run that is training, marked running by this process: its curves and parameters so far (none
        before its first chunk), and the epoch snapshots not written before (`new_snapshots`)."""
        self.progress_writer(run, new_snapshots)()

    def progress_writer(self, run: Run, new_snapshots: list[tuple[int, Params]]) -> Callable[[], None]:
        """What `save_progress` writes, prepared now (the row, the parameters' bytes); calling the result writes it,
        from any thread. A run saved as ended in the meantime is left as it was saved."""
        row = self._progress_row(run)
        return functools.partial(self._write_rows, row, self._snapshot_blobs(row, run, new_snapshots), ended=False)

    def start_numbered(self, run: Run, taken: Iterable[str] = ()) -> None:
        """Write a new run as it starts (as `save_progress` does), named `NAME #N` after its name NAME, N one more
        than the highest number of NAME among the runs the viewer sees in the history and the `taken` names. One
        transaction numbers and writes it, so runs started at once, by any processes, each get a number of their
        own."""
        prefix = run.name
        with self._write() as conn:
            if self.path is None:  # (SQLite's write transaction holds the database's one write lock already)
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(NAMING_LOCK)))
            start = f"{prefix} #"
            saved = conn.execute(sa.select(runs.c.name).where(
                sa.func.substr(runs.c.name, 1, len(start)) == start, *self._visible())).scalars()
            run.name = numbered_name(prefix, [*saved, *taken])
            self._write_rows_in(conn, self._progress_row(run), [], ended=False)

    def _progress_row(self, run: Run) -> dict:
        """A run in training's row: marked running by this process, not measured yet."""
        row = self._row(run, status_text(RunStatus.RUNNING), this_writer())
        row.update(val_accuracy=None, test_accuracy=None, confusion=None)
        return row

    def _row(self, run: Run, status: str, writer: str | None) -> dict:
        return {
            "run_id": run.run_id, "name": run.name, "status": status, "arch": run.config.model.arch,
            "architecture": run.model.describe(), "data": json.dumps(run.spec.to_dict()),
            "config": run.config.to_json(), "curves": json.dumps(run.history),
            "val_accuracy": run.val_accuracy, "test_accuracy": run.test_accuracy, "epochs": run.epochs_completed,
            "compile_seconds": run.compile_seconds, "train_seconds": run.train_seconds,
            "samples_per_second": run.samples_per_second, "created": run.created,
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
            "params": None if run.params is None else model_bytes(run.params, run.config, run.spec,
                                                                  opt_state=run.opt_state, step=run.steps_done),
            "confusion": None if run.test_confusion is None else json.dumps(np.asarray(run.test_confusion).tolist()),
            "writer": writer, "owner": None if self.viewer is None else self.viewer.name,
        }

    @staticmethod
    def _snapshot_blobs(row: dict, run: Run, snapshots: list[tuple[int, Params]]) -> list[dict]:
        """(an epoch's end: its snapshot is the run's parameters, already in the row)"""
        return [{"run_id": run.run_id, "epoch": epoch,
                 "params": row["params"] if params is run.params else model_bytes(params, run.config, run.spec)}
                for epoch, params in snapshots]

    def _write_rows(self, row: dict, blobs: list[dict], *, ended: bool) -> None:
        """Write a run's row and snapshots in a transaction of their own (its commit synced to the disk when the run
        has ended)."""
        with self._write(synced=ended) as conn:
            self._write_rows_in(conn, row, blobs, ended=ended)

    def _write_rows_in(self, conn: sa.Connection, row: dict, blobs: list[dict], *, ended: bool) -> None:
        """An ended run replaces its row and all its snapshots; a run in training adds its new snapshots and updates
        its row unless that was saved as ended (its writer cleared). A run keeps the owner it was first saved by (a
        viewer's row written meanwhile by another is left alone, as checked)."""
        insert = self._insert(runs).values(row)
        keep = [] if ended else [runs.c.writer.is_not(None)]
        keep += [] if self.viewer is None else [runs.c.owner == self.viewer.name]
        upsert = insert.on_conflict_do_update(
            index_elements=[runs.c.run_id], where=sa.and_(*keep) if keep else None,
            set_={c: insert.excluded[c] for c in RUN_COLUMNS if c not in ("run_id", "owner")})
        snapshot = self._insert(snapshot_table)
        snapshot = snapshot.on_conflict_do_update(index_elements=list(snapshot_table.primary_key),
                                                  set_={"params": snapshot.excluded.params})
        self._check_may_change(conn, row["run_id"])
        conn.execute(upsert)
        if ended:
            conn.execute(sa.delete(snapshot_table).where(snapshot_table.c.run_id == row["run_id"]))
        if blobs:
            conn.execute(snapshot, blobs)

    def _settle_interrupted(self) -> None:
        """Mark "interrupted at step N" the runs whose writing process has died (killed, crashed, a reboot)."""
        with self._read() as conn:
            running = conn.execute(sa.select(runs.c.run_id, runs.c.writer, runs.c.curves)
                                   .where(runs.c.writer.is_not(None))).all()
        dead = [{"new_status": status_text(RunStatus.INTERRUPTED, _last_step(curves)), "id": run_id, "by": writer}
                for run_id, writer, curves in running if not writer_alive(writer)]
        if dead:
            with self._write() as conn:  # unless its writer wrote it again meanwhile
                conn.execute(sa.update(runs).where(runs.c.run_id == sa.bindparam("id"),
                                                   runs.c.writer == sa.bindparam("by"))
                             .values(status=sa.bindparam("new_status"), writer=None), dead)

    def list(self, *, arch: str | None = None, status: RunStatus | None = None, name_contains: str = "",
             min_test_accuracy: float | None = None, dataset: str | None = None) -> list[SavedRun]:
        """Saved runs, newest first; `status` is one of SAVED_STATUSES, `min_test_accuracy` a fraction, `dataset` the
        name of the data."""
        conditions = self._visible()
        if dataset:
            conditions.append(self._dataset() == dataset)
        if arch:
            conditions.append(runs.c.arch == arch)
        if status:  # a stored status text starts with its status's value
            conditions.append(sa.func.substr(runs.c.status, 1, len(str(status))) == str(status))
        if name_contains.strip():
            conditions.append(runs.c.name.icontains(name_contains.strip(), autoescape=True))
        if min_test_accuracy is not None:  # a typed 91.26% / 100 is 0.9126000000000001: keep 0.9126
            conditions.append(runs.c.test_accuracy >= min_test_accuracy - 1e-9)
        columns = [self._dataset() if f.name == "dataset" else runs.c[f.name] for f in dataclasses.fields(SavedRun)]
        self._settle_interrupted()
        with self._read() as conn:
            rows = conn.execute(sa.select(*columns).where(*conditions)
                                .order_by(runs.c.created.desc(), runs.c.saved.desc())).all()
        return [SavedRun(*row) for row in rows]

    def load(self, run_id: str, *, snapshots: bool = True) -> Run:
        """A saved run with its curves and parameters (and its per-epoch snapshots unless told not to)."""
        self._settle_interrupted()
        with self._read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
            if row is None or not self._may_see(row.owner):
                raise _missing(run_id)
            blobs = conn.execute(sa.select(snapshot_table.c.epoch, snapshot_table.c.params)
                                 .where(snapshot_table.c.run_id == run_id).order_by(snapshot_table.c.epoch)
                                 ).all() if snapshots else []
        saved = row._asdict()
        try:
            config = RunConfig.from_json(saved["config"])
            spec = MNIST_SPEC if saved["data"] is None else DataSpec.from_dict(json.loads(saved["data"]))
            stored = None if saved["params"] is None else load_checkpoint(bytes(saved["params"]))
            epochs = [(epoch, load_model(bytes(blob))[0]) for epoch, blob in blobs]
            status, step = parse_status(saved["status"])
        except (DigitLabError, ValueError) as exc:
            raise HistoryError(f"Saved run '{saved['name']}' in {self.location} cannot be loaded: {exc}") from None
        return Run(
            name=saved["name"], config=config, spec=spec, status=status, params=stored and stored.params,
            opt_state=stored and stored.opt_state,
            diverged_at=step if status is RunStatus.DIVERGED else None,
            history=json.loads(saved["curves"]), snapshots=epochs, compile_seconds=saved["compile_seconds"],
            train_seconds=saved["train_seconds"], samples_per_second=saved["samples_per_second"],
            val_accuracy=saved["val_accuracy"], test_accuracy=saved["test_accuracy"], created=saved["created"],
            run_id=saved["run_id"], test_confusion=_confusion_matrix(saved["confusion"]),
        )

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise HistoryError("A run's name cannot be empty.")
        with self._write() as conn:
            if not self._check_may_change(conn, run_id):
                raise _missing(run_id)
            conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(name=name))

    def delete(self, run_id: str) -> None:
        """Remove a run and its snapshots (a run already gone is not an error without a viewer; with one, it is, as
        a run that is not theirs is)."""
        with self._write() as conn:
            if not self._check_may_change(conn, run_id) and self.viewer is not None:
                raise _missing(run_id)
            conn.execute(sa.delete(snapshot_table).where(snapshot_table.c.run_id == run_id))
            conn.execute(sa.delete(runs).where(runs.c.run_id == run_id))


def shown_location(location: str) -> str:
    """A history's location as shown to people: a file's path, or a URL without its password."""
    try:
        url, path = _database(location)
    except HistoryError:
        return location if "://" not in location else location.split("://", 1)[0] + "://..."
    return str(path) if path else url.render_as_string(hide_password=True)


def same_server(location: str, other: str) -> bool:
    """Whether `location` is a PostgreSQL database on the same server (host and port) as the history at `other`."""
    try:
        (url, path), (other_url, other_path) = _database(location), _database(other)
    except HistoryError:
        return False
    return path is None and other_path is None and (url.host, url.port) == (other_url.host, other_url.port)


def _database(location: str) -> tuple[sa.URL, Path | None]:
    """The SQLAlchemy URL of a history's location (a URL, or a SQLite file's path) and, for SQLite, its file."""
    if "://" not in location:
        path = Path(location).expanduser()
        return sa.URL.create("sqlite", database=str(path)), path
    try:
        url = sa.make_url(location)
    except sa.exc.ArgumentError:
        raise HistoryError(f"'{location}' is not a database URL (sqlite:///FILE or "
                           "postgresql+psycopg://USER@HOST/DATABASE).") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return url, Path(url.database).expanduser()
    if url.get_backend_name() == "postgresql":
        return (url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url), None
    raise HistoryError(f"The run history must be a SQLite file or a PostgreSQL database "
                       f"(postgresql+psycopg://USER@HOST/DATABASE), not {url.render_as_string(hide_password=True)}.")


def _sqlite_connected(dbapi_connection, _record) -> None:
    """Leave transactions to SQLAlchemy's begin (`_sqlite_begin`), not to Python's sqlite3, which begins none
    before a read or a schema change."""
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: sa.Connection) -> None:
    """Begin a SQLite transaction: a write takes the write lock up front (so two never deadlock), and one that
    need not wait for the disk lowers the connection's synchronous level first."""
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":  # (a statement that must run outside a transaction)
        return
    if not options.get(SYNCED, True):
        conn.exec_driver_sql("PRAGMA synchronous = NORMAL")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE) else "BEGIN")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Checkpoints:
    """Writes a run to the history while it trains: as it starts (its name taken, so the next run's number follows
    it), after its first chunk, at every epoch's end and at least every `every` seconds. Call `start()` before
    training, the object after each record, then `wait()` before saving the ended run (or `discard()` if it trained
    nothing). The training thread only prepares each checkpoint (its curves as JSON, its parameters' bytes); a
    thread of its own commits it, so the training does not wait for the disk; a checkpoint due while the last is
    still being written goes with the next record, or, at an epoch's end, waits for it. A history that cannot be
    written stops the checkpoints, never the training: `error` says why (None: all written); `writes` counts them
    and `seconds` is the training thread's time spent on them."""

    def __init__(self, history: RunHistory | None, run: Run, every: float = CHECKPOINT_SECONDS) -> None:
        self.history, self.run, self.every = history, run, every
        self.error: HistoryError | None = None
        self.seconds = 0.0
        self.writes = 0
        self._written_snapshots = 0
        self._last = -math.inf
        self._first_chunk_written = False
        self._committer: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: concurrent.futures.Future | None = None

    def start(self, numbered_after: Iterable[str] | None = None) -> None:
        """Write the run, before it trains (at once, in this thread). Given `numbered_after`, it is a new run, named
        `NAME #N` after its name NAME as it is written (`RunHistory.start_numbered`: after these names and the
        history's runs); without a history (or one that cannot be written), after these names alone."""
        prefix = self.run.name
        taken = None if numbered_after is None else list(numbered_after)
        if self.history is not None:
            if taken is None:
                self._settle(self.history.save_progress, self.run, [])
            else:
                self._settle(self.history.start_numbered, self.run, taken)
            self.writes += 1
        if taken is not None and (self.history is None or self.error is not None):
            self.run.name = numbered_name(prefix, taken)

    def __call__(self) -> None:
        new = self.run.snapshots[self._written_snapshots:]
        if self._pending is not None and (new or self._pending.done()):  # an epoch's end waits for the last one
            started = time.perf_counter()
            self._settle(self._pending.result)
            self.seconds += time.perf_counter() - started
        if self.history is None or self.error is not None or self._pending is not None:
            return
        if not (new or not self._first_chunk_written or time.monotonic() - self._last >= self.every):
            return
        started = time.perf_counter()
        write = self.history.progress_writer(self.run, new)
        self._committer = self._committer or concurrent.futures.ThreadPoolExecutor(1, "checkpoints")
        try:
            self._pending = self._committer.submit(write)
        except RuntimeError:  # the interpreter is shutting down (an app told to stop): no new threads, write here
            self._settle(write)
        self.seconds += time.perf_counter() - started
        self.writes += 1
        self._written_snapshots += len(new)
        self._last = time.monotonic()
        self._first_chunk_written = True

    def wait(self) -> None:
        """Until the last checkpoint is written (before the ended run is saved over it)."""
        if self._pending is not None:
            self._settle(self._pending.result)
        if self._committer is not None:
            self._committer.shutdown()
            self._committer = None

    def discard(self) -> None:
        """Take the run out of the history again if it trained nothing (stopped or refused while compiling)."""
        self.wait()
        if self.history is not None and not self.run.history:
            with contextlib.suppress(HistoryError):
                self.history.delete(self.run.run_id)

    def _settle(self, write: Callable, *args) -> None:
        """Run `write` (a write, or a pending write's result), keeping the HistoryError it raises as `error`."""
        self._pending = None
        try:
            write(*args)
        except HistoryError as exc:
            log.warning("Checkpoints of run %s stopped: %s", self.run.name, exc)
            self.error = exc


def _missing(run_id: str) -> HistoryError:
    return HistoryError(f"No saved run has the id {run_id}; it may have been deleted by another session.")


def _last_step(curves: str) -> int:
    history = json.loads(curves)
    return history[-1]["step"] if history else 0


def _confusion_matrix(stored: str | None) -> np.ndarray | None:
    return None if stored is None else np.array(json.loads(stored), np.int64)


def config_diff(configs: dict[str, RunConfig]) -> list[dict]:
    """The settings on which the labelled configs differ: one row per setting, one column per label.

    A setting the network, optimiser or schedule ignores (an MLP's widths for softmax regression, momentum under
    Adam, the decay factor under a constant schedule) counts as absent: None.
    """
    flat = {label: _used_settings(config) for label, config in configs.items()}
    settings = sorted({key for values in flat.values() for key in values})
    rows = []
    for setting in settings:
        values = {label: values.get(setting) for label, values in flat.items()}
        if len({json.dumps(v) for v in values.values()}) > 1:
            rows.append({"setting": setting, **values})
    return rows


def _used_settings(config: RunConfig) -> dict:
    """The config's settings, flattened, without those its network, optimiser or schedule ignore (no dropout counts
    as absent too: a network without it and one that has none to offer do not differ)."""
    model, tc = config.model, config.train
    used = {"arch", "init", *model.network.hyperparameters, *(("init_std",) * (model.init == "normal"))}
    used -= {"dropout"} if not model.dropout else set()
    ignored = {*(("train.momentum", "train.nesterov") * (tc.optimizer is not Optimizer.MOMENTUM)),
               *(("train.decay",) * (tc.schedule is not Schedule.EXPONENTIAL))}
    settings = flatten(config.to_dict(), separator=".")
    return {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()
            if (not key.startswith("model.") or key[6:] in used) and key not in ignored}
